"""Bernoulli CUSUM for an increase in the rate of a binary event."""

from __future__ import annotations

import math
from math import isfinite

from monitor.detectors.base import Detector, forgetting

_REFRESH_MASK = 63  # re-derive the log-likelihood weights every 64 observations
_HOURS = 24
#: Evidence above this fraction of h is not learned as the shape of the day. Learning only at a sum of 0
#: skipped the calls that follow each failure: two thirds of a 3% stream, the profile three times as noisy.
PENDING_FRACTION = 0.5
#: An hour's rate is smoothed over the hours within this many of it, weighted 1, 2, 3, 2, 1 (one more than the radius less the distance).
_RADIUS = 2


def _one_standard_error(ones: float) -> float:
    """The factor that puts a rate estimated from ``ones`` events one standard error above the estimate."""
    return 1.0 + 1.0 / math.sqrt(ones + 1.0)


class HourlyProfile:
    """A rate per hour of the day (UTC), learned over all the history seen: the shape of a daily cycle.

    It is used for every hour once :attr:`complete`; until then only for the hours whose
    neighbourhood it has seen enough of (:meth:`near`), and only where it lies above the
    detector's one rate.
    """

    __slots__ = ("min_count", "n", "ones")

    def __init__(self, min_count: int) -> None:
        self.min_count = min_count
        self.n = [0] * _HOURS
        self.ones = [0] * _HOURS

    def add(self, hour: int, x: bool | int) -> None:
        self.n[hour] += 1
        if x:
            self.ones[hour] += 1

    @property
    def complete(self) -> bool:
        """Every hour of the day has ``min_count`` observations: the profile has seen a whole day."""
        return min(self.n) >= self.min_count

    def near(self, hour: int) -> tuple[int, int]:
        """Observations and ones in the five hours an hour's rate is smoothed over."""
        hours = [(hour + offset) % _HOURS for offset in range(-_RADIUS, _RADIUS + 1)]
        return sum(self.n[h] for h in hours), sum(self.ones[h] for h in hours)

    def rates(self) -> list[float]:
        """Each hour's rate: smoothed over its neighbours (weights 1, 2, 3, 2, 1), then shrunk toward the day's rate.

        A day of an hour's traffic is few events, and a flat rate's hourly estimates
        differ by chance alone: used as they are, they make the detector more sensitive
        at the hours that happened to look quiet (on a flat 5% tool failure rate that
        doubled the false alarms). Each hour's deviation from the day's rate is kept in
        the proportion tau^2 / (tau^2 + v): v is that hour's sampling variance, tau^2
        the variance between hours beyond what sampling explains (the positive-part
        James-Stein estimate, as in Efron and Morris 1975). A real daily cycle is
        followed; chance differences between hours are not.

        An hour with no observation near it (the first day's hours still to come) has the
        day's rate, and the spread between hours is measured over those that have some.
        """
        counts, positives = self.n, self.ones
        overall = (sum(positives) + 0.5) / (sum(counts) + 1.0)
        raw = [0.0] * _HOURS
        variances = [0.0] * _HOURS
        seen = [False] * _HOURS
        spread = sampling = 0.0
        hours_seen = 0
        radius, hours = _RADIUS, _HOURS
        for hour in range(hours):
            n_sum = ones_sum = squares_sum = 0  # whole numbers: the same in any order, and in the compiled build C integers
            for offset in range(-radius, radius + 1):
                index = (hour + offset) % hours
                weight = radius + 1 - max(offset, -offset)  # max, not abs: compiled to C for a C integer
                count, positive = counts[index], positives[index]
                n_sum += weight * count
                ones_sum += weight * positive
                squares_sum += weight * weight * count
            if n_sum == 0:
                continue
            n, ones, squares = float(n_sum), float(ones_sum), float(squares_sum)
            rate = (ones + 0.5) / (n + 1.0)
            v = overall * (1.0 - overall) * squares / (n * n)
            raw[hour], variances[hour], seen[hour] = rate, v, True
            spread += (rate - overall) ** 2
            sampling += v
            hours_seen += 1
        if not hours_seen:
            return [overall] * _HOURS
        between = max(0.0, spread / hours_seen - sampling / hours_seen)
        return [overall + between / (between + variances[hour]) * (raw[hour] - overall) if seen[hour] else overall for hour in range(_HOURS)]


class BernoulliCUSUM(Detector):
    """Log-likelihood-ratio CUSUM for a rise in a Bernoulli rate (refusals, failures).

    Each observation is 1 (the bad outcome happened) or 0. The in-control rate ``p0``
    is either given (a target, as for audit completeness) or learned from the first
    ``warmup`` observations, with a floor ``min_p0`` so that a tool that never failed
    during warm-up does not alarm on its first failure; a learned ``p0`` keeps being
    refined on every later observation until an alarm, and tested one standard error
    above its estimate (see :meth:`_learned_rate`). The out-of-control rate tested
    against is ``p1 = min(ratio * p0, (1 + p0) / 2)``. Each 1 adds ``log(p1/p0)``, each
    0 adds ``log((1-p1)/(1-p0))``; the sum is reflected at 0 and compared with ``h``.

    Parameters
    ----------
    warmup
        Observations used to learn ``p0`` when it is not given (>= 1). No alarm is
        possible before the warm-up has ended, nor within ``warmup`` observations
        after an alarm: with a fixed ``p0`` this paces repeated alarms while the rate
        stays high.
    p0
        A fixed in-control rate in (0, 1) (a target, not learned), or None to learn it.
    ratio
        The rate multiple to detect quickly (> 1); 2.0 means "the rate doubled".
    min_p0
        Floor for a learned ``p0``, in (0, 1).
    h
        Decision threshold on the log-likelihood ratio (> 0); the in-control run
        length grows roughly as ``exp(h)``.
    burst_ratio
        None, or a second rate multiple (> ``ratio``) tested by a second sum beside the
        first: a sum tuned for a doubling gathers evidence slowly from a rate ten times
        its reference, a sum tuned for a larger multiple gathers it fast. Each failure
        weighs ``log(burst_ratio)`` in it, so at the same ``h`` it also crosses sooner on
        in-control data (a chance cluster of failures). The statistic is the larger of
        the two, the burst sum scaled by ``h / burst_h``.
    burst_h
        The burst sum's threshold (default ``h``). A sum tuned for a larger multiple
        gathers in-control evidence in larger steps, so it needs a higher threshold for
        the same false-alarm rate: about ``h + log(KL(burst) / KL(ratio))``, +2.4 for a
        multiple of 6 beside a doubling.
    by_hour
        For a learned ``p0``: the in-control rate follows the hour of the day (UTC) of
        each update's time ``t``. The detector learns a :class:`HourlyProfile` over all
        the history it sees (only while the evidence is under half of ``h``, so an
        incident is not learned as the shape of the day) and, since its last alarm, a level: how the
        stream compares with that profile. ``p0(t) = level * profile(hour of t)``. Rate
        limits likelier at the daily peak are then the profile, and the same rate at
        4 a.m. is a rise; after an alarm only the level is learned again. Until every
        hour has ``warmup / 4`` observations (each hour's rate is smoothed over five, so
        that is a warm-up's worth; the first day, at least), the detector has one rate
        for every hour, as without ``by_hour``, except at the hours it has already seen
        at a higher rate.
    level_memory
        Under ``by_hour``, 0: the level is learned over everything since the last alarm.
        Above 0: over the last ``level_memory`` seconds of event time (exponentially
        weighted, never fewer than ``warmup`` observations), so a weekly pattern or a slow
        trend moves the level and is not read as a rise.

    Examples
    --------
    >>> import random
    >>> rng = random.Random(3)
    >>> stream = [rng.random() < 0.10 for _ in range(2000)] + [rng.random() < 0.20 for _ in range(600)]
    >>> detector = BernoulliCUSUM(warmup=500, ratio=2.0, h=8.5)
    >>> for i, x in enumerate(stream):
    ...     if detector.update(x).drift_detected:
    ...         print(f"rate increase detected at index {i}")
    rate increase detected at index 2187

    References
    ----------
    Reynolds, M. R. and Stoumbos, Z. G. (1999). A CUSUM chart for monitoring a
    proportion when inspecting continuously. Journal of Quality Technology 31(1), 87-108.
    """

    def __init__(self, *, warmup: int = 500, p0: float | None = None, ratio: float = 2.0, min_p0: float = 0.005, h: float = 8.5, burst_ratio: float | None = None, burst_h: float | None = None, by_hour: bool = False,
                 level_memory: float = 0.0):
        if not (isinstance(warmup, int) and warmup >= 1):
            raise ValueError(f"warmup must be an integer >= 1, got {warmup!r}")
        if p0 is not None and not 0.0 < p0 < 1.0:
            raise ValueError(f"p0 must lie in (0, 1) or be None, got {p0!r}")
        if not ratio > 1.0:
            raise ValueError(f"ratio must be > 1, got {ratio!r}")
        if not 0.0 < min_p0 < 1.0:
            raise ValueError(f"min_p0 must lie in (0, 1), got {min_p0!r}")
        if not h > 0:
            raise ValueError(f"h must be > 0, got {h!r}")
        self.warmup = warmup
        self.p0 = p0
        self.ratio = float(ratio)
        self.min_p0 = float(min_p0)
        self.h = float(h)
        if burst_ratio is not None and not burst_ratio > ratio:
            raise ValueError(f"burst_ratio must exceed ratio ({ratio!r}) or be None, got {burst_ratio!r}")
        self.burst_ratio = burst_ratio
        if burst_h is not None and not (burst_ratio is not None and burst_h > 0):
            raise ValueError(f"burst_h must be > 0 and needs a burst_ratio, got burst_h={burst_h!r} with burst_ratio={burst_ratio!r}")
        self.burst_h = self.h if burst_h is None else float(burst_h)
        if by_hour and p0 is not None:
            raise ValueError("by_hour learns the rate's daily profile: it needs a learned p0 (p0: null)")
        self.by_hour = bool(by_hour)
        if not (isinstance(level_memory, (int, float)) and 0 <= level_memory < float("inf")):
            raise ValueError(f"level_memory must be a finite number of seconds >= 0, got {level_memory!r}")
        if level_memory and not by_hour:
            raise ValueError("level_memory is the memory of the level over the hourly profile: it needs by_hour: true")
        self.level_memory = float(level_memory)
        # An hour's rate is smoothed over five hours' observations: a quarter of the warm-up each is a warm-up's worth.
        self._profile = HourlyProfile(max(1, warmup // 4)) if self.by_hour else None
        self._hour: int | None = None  # the hour (since the epoch) the weights were derived for
        # The hour of the latest timed update (since the epoch, and of the day) and the time it
        # starts at: derived from event times, not state (see _place).
        self._at_hour, self._at_slot, self._at_start = 0, 0, float("inf")
        self._drift_detected = False
        self.alarm_statistic = 0.0
        self._relearn()

    def _relearn(self) -> None:
        self._n = 0
        self._ones = 0
        self._sum = 0.0
        self._burst = 0.0  # the burst_ratio's sum
        self._rate = None
        self._since = [0] * _HOURS if self.by_hour else None  # observations per hour of day since the last alarm
        # level_memory: the level's recent observations, ones and the profile's expected ones (exponentially
        # weighted), when they were last folded in, and the in-control observations since then at one hour's rate.
        self._recent = [0.0, 0.0, 0.0]
        self._folded_at: float | None = None
        self._chunk = [0, 0, 0.0]  # observations, ones, the profile's rate of their hour

    def state(self) -> list:
        """The learned state as plain numbers (a snapshot); the parameters come from the thresholds."""
        state = [self._n, self._ones, self._sum, self._rate, self.alarm_statistic, self._burst]
        if self._profile is not None:
            state.append([self._profile.n, self._profile.ones, self._since, self._hour, [*self._recent, self._folded_at, *self._chunk]])
        return state

    def load_state(self, state: list) -> None:
        n, ones, total, rate, alarm = state[:5]
        self._n, self._ones, self._sum, self.alarm_statistic = int(n), int(ones), float(total), float(alarm)
        self._rate = None
        self._burst = float(state[5]) if len(state) > 5 else 0.0  # snapshots before the burst sum have none
        if self._profile is not None and len(state) > 6:
            counts, positives, since, hour, *recent = state[6]
            self._profile.n, self._profile.ones, self._since = [int(c) for c in counts], [int(c) for c in positives], [int(c) for c in since]
            self._hour = None if hour is None else int(hour)
            if recent:  # snapshots before level_memory have no recent level: it is learned again
                n, ones, expected, folded_at, chunk_n, chunk_ones, chunk_rate = recent[0]
                self._recent = [float(n), float(ones), float(expected)]
                self._folded_at = None if folded_at is None else float(folded_at)
                self._chunk = [int(chunk_n), int(chunk_ones), float(chunk_rate)]
        if rate is not None:
            self._set_reference(float(rate))

    def _learned_rate(self, hour: int | None, t: float | None = None) -> float:
        """The in-control rate: one standard error above the estimate since the last alarm, shaped by the hour's profile under ``by_hour``.

        The estimate is Jeffreys' (never exactly 0, so a first failure is not infinitely
        surprising). A rate learned from a warm-up's few events is often well below the
        truth (10 failures in 200 calls estimate 5% within +/- 30%), and the CUSUM then
        reads the true rate as a rise; testing against the upper one-standard-error
        bound, ``p * (1 + 1/sqrt(events + 1))``, removes most of those alarms and fades
        as events accumulate (+3% after a thousand).
        """
        self._hour = hour
        margin = _one_standard_error(self._ones)
        flat = max(self.min_p0, margin * (self._ones + 0.5) / (self._n + 1.0))
        if self._profile is None or hour is None:
            return min(flat, 0.99)
        if not self._profile.complete:
            return min(self._first_day_rate(hour % _HOURS, flat), 0.99)
        rates = self._profile.rates()
        since = self._since
        expected = 0.0  # the profile's count for the hours seen since the last alarm
        for index in range(_HOURS):
            expected += since[index] * rates[index]
        counted = sum(since)
        if not expected > 0 or not counted:
            return min(flat, 0.99)
        level = (self._ones + 0.5) / (expected * (self._n + 1.0) / counted)
        if self.level_memory:
            recent = self._recent_level(rates[hour % _HOURS], t)
            if recent is not None:
                level, margin = recent
        return min(max(self.min_p0, margin * level * rates[hour % _HOURS]), 0.99)

    def _recent_level(self, rate: float, t: float | None) -> tuple[float, float] | None:
        """The level over the last ``level_memory`` seconds and its margin (folding in the observations since the last call), or None while that is under a warm-up's observations.

        The profile is the shape of a day; the level says how this stretch of days compares
        with it. Learned since the last alarm, a week of weekdays outweighed a Saturday,
        whose lighter load left more of its users refused at noon than on a weekday: the
        weekend read as a rise (bench/bench_diurnal.py). Forgetting over hours follows a
        weekly pattern and a slow trend; only in-control observations are learned (the
        evidence under half of ``h``), so an incident is not.
        """
        chunk_n, chunk_ones, chunk_rate = self._chunk
        recent = self._recent
        if t is not None and self._folded_at is not None and t > self._folded_at:
            decay = forgetting(t - self._folded_at, self.level_memory, recent[0], self.warmup)  # never below a warm-up's worth
            recent[0] *= decay
            recent[1] *= decay
            recent[2] *= decay
        if t is not None and (self._folded_at is None or t > self._folded_at):
            self._folded_at = t
        if chunk_rate > 0:  # observations before the profile was complete have no rate to compare with
            recent[0] += chunk_n
            recent[1] += chunk_ones
            recent[2] += chunk_n * chunk_rate
        self._chunk = [0, 0, rate]
        if recent[0] < self.warmup or not recent[2] > 0:
            return None
        return (recent[1] + 0.5) / (recent[2] + 0.5), _one_standard_error(recent[1])

    def _first_day_rate(self, hour: int, flat: float) -> float:
        """Before the profile has seen every hour: the one rate, or this hour's, one standard error above, where that is higher.

        The day's rise of a rate (rate limits likelier at the peak) comes before a whole
        day has been seen: against the one rate learned over the night, the first
        afternoon read as a rise on every model (bench/bench_diurnal.py). An hour whose
        neighbourhood the profile has seen a warm-up's worth of is tested against its own
        rate where that is higher; the profile learns only while the evidence is weak, so
        an incident is not learned as the hour's rate.
        """
        seen, ones = self._profile.near(hour)
        if seen < self._profile.min_count:
            return flat
        local = _one_standard_error(ones) * self._profile.rates()[hour]
        return local if local > flat else flat

    def _set_reference(self, p0: float) -> None:
        p1 = min(self.ratio * p0, (1.0 + p0) / 2.0)
        self._rate = p0
        self._w1 = math.log(p1 / p0)
        self._w0 = math.log((1.0 - p1) / (1.0 - p0))
        if self.burst_ratio is not None:
            burst = min(self.burst_ratio * p0, (1.0 + p0) / 2.0)
            self._b1 = math.log(burst / p0)
            self._b0 = math.log((1.0 - burst) / (1.0 - p0))

    @property
    def warming_up(self) -> bool:
        return self._rate is None

    def statistic_value(self) -> float:
        """The log-likelihood-ratio sum compared with :attr:`threshold` (the larger of the two with ``burst_ratio``)."""
        burst = self._burst * self.h / self.burst_h
        return self._sum if burst <= self._sum else burst

    @property
    def threshold(self) -> float:
        return self.h

    @property
    def reference(self) -> float | None:
        """The in-control rate, or None while warming up."""
        return self._rate

    def _place(self, t: float | None) -> bool:
        """Whether event time ``t`` places an update in the profile's hours; if so, ``_at_hour`` and ``_at_slot`` are its hour since the epoch and of the day.

        Most updates fall in the hour of the one before: two comparisons tell, instead of a
        division. They agree with ``t // 3600`` exactly, since an hour starts at a whole
        multiple of 3600 seconds (exact as a double below 2**52).
        """
        if self._profile is None or t is None:
            return False
        seconds = t
        start = self._at_start
        if start <= seconds < start + 3600.0:
            return True
        if not isfinite(seconds):
            return False
        hour = int(t // 3600.0)
        self._at_hour = hour
        self._at_slot = hour % _HOURS
        start = hour * 3600.0
        self._at_start = start if abs(start) < 2.0**52 else float("inf")
        return True

    def update(self, x: bool | int, t: float | None = None) -> BernoulliCUSUM:
        """Test ``x``; ``t`` is its event time in seconds (only ``by_hour`` reads it)."""
        self._drift_detected = False
        timed = self._place(t)
        hour = self._at_hour if timed else None
        if self._rate is None:
            self._n += 1
            if x:
                self._ones += 1
            if timed:
                self._profile.add(self._at_slot, x)
                self._since[self._at_slot] += 1
            if self._n >= self.warmup:
                if self.p0 is not None:
                    self._set_reference(self.p0)
                else:
                    self._set_reference(self._learned_rate(hour, t))
            return self
        if timed and hour is not self._hour and hour != self._hour:
            self._set_reference(self._learned_rate(hour, t))
        fraction = PENDING_FRACTION
        pending = self._sum > fraction * self.h or self._burst > fraction * self.burst_h
        total = self._sum + (self._w1 if x else self._w0)
        self._sum = total if total > 0.0 else 0.0
        if self.burst_ratio is not None:
            burst = self._burst + (self._b1 if x else self._b0)
            self._burst = burst if burst > 0.0 else 0.0
        if self.p0 is None:
            # Keep refining the learned rate on in-control data: the estimate from the
            # warm-up alone is noisy enough to multiply false alarms.
            self._n += 1
            if x:
                self._ones += 1
            if timed:
                self._since[self._at_slot] += 1
                if not pending:
                    self._profile.add(self._at_slot, x)
                    if self.level_memory:
                        self._chunk[0] += 1
                        if x:
                            self._chunk[1] += 1
            if not self._n & _REFRESH_MASK:
                self._set_reference(self._learned_rate(hour, t))
        if self._sum > self.h or self._burst > self.burst_h:
            self._drift_detected = True
            self.alarm_statistic = self.statistic_value()
            self._relearn()
        return self

    def segment(self) -> None:
        """Start a new segment: zero the sums, keep the reference rate."""
        self._sum = self._burst = 0.0

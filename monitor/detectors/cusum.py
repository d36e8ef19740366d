"""Page's CUSUM for a shift in the mean of a continuous stream."""

from __future__ import annotations

import math
from math import fsum, isfinite

from monitor.detectors.base import Detector, forgetting

_DIRECTIONS = ("up", "down", "both")

#: Warm-up values further than this many robust standard deviations (1.4826 MAD) from the warm-up's
#: median are left out of the reference: a Gaussian value lies that far with probability 2e-9.
ROBUST_WARMUP_SIGMAS = 6.0
#: Beyond this share of the warm-up, values far from the median are not wild but a mode of the
#: stream (8 prompt templates, one of them unlike the rest): they stay in the reference.
MAX_WILD_SHARE = 0.02
#: A following reference adapts only while the statistic is at most this share of ``h``:
#: weak evidence is still the stream, strong evidence may be a shift it must not learn.
#: Adapting only at 0 let a rising daily ramp hold the statistic up, so the reference
#: stopped following exactly when it had to (bench/bench_diurnal.py).
FOLLOW_BELOW = 0.25
#: An alarm whose values average within this many of the earlier reference's deviations
#: of that reference is a return to it, not a new change.
RECOVERY_Z = 1.0
#: A following reference's earlier reference is forgotten this many memories after its
#: alarm: by then the stream has moved on with its day, and a level it held hours ago
#: says nothing (a runaway at 2 a.m. is not a return to the level of a morning ramp).
RECOVERY_MEMORIES = 8.0


class CUSUM(Detector):
    """Page's cumulative-sum detector on standardised values.

    The in-control mean and standard deviation are learned from the first ``warmup``
    values (Welford's algorithm), then frozen: the live stream is compared with that
    reference. The warm-up is robust to a few wild values: any further than
    ``ROBUST_WARMUP_SIGMAS`` robust deviations (median absolute deviation) from the
    warm-up's median are left out of the reference, so one 1e308 ms latency during the
    warm-up cannot inflate the deviation and blind the detector for good. Only a few are:
    when more than ``MAX_WILD_SHARE`` of the warm-up lies that far, those values are a
    mode of the stream, and leaving them out would make every later one look like a
    shift. On clean data nothing is left out and the reference is exactly Welford's. Each standardised value is clipped to ``[-clip, clip]`` so that one
    outlier (a single 30 s request) cannot raise an alarm on its own; a sustained shift
    accumulates. After a detection the detector re-learns its reference, so a shifted
    regime that persists is reported once, not on every event; it keeps the reference
    that alarmed, and an alarm whose evidence lies, on average, within ``RECOVERY_Z``
    deviations of that earlier reference is the stream coming back (a runaway agent
    stopped, a template change rolled back): :attr:`recovered` is set instead of
    :attr:`drift_detected` (a following reference forgets the earlier one after
    ``RECOVERY_MEMORIES`` memories).

    Parameters
    ----------
    warmup
        Values used to learn the reference mean and deviation (>= 2).
    test_after
        The warm-up's floor: from this many values on (2 <= test_after <= warmup; by
        default ``warmup``), each value is already tested against the reference learned
        so far, so a stream shorter than the warm-up, or one that changes during it, is
        not silenced. The reference is frozen (or starts following) at ``warmup``.
    k
        Allowance, in standard deviations: half the smallest shift worth detecting
        quickly (0.5 is optimal for a 1-sigma shift). >= 0.
    h
        Decision threshold, in standard deviations (> 0). Raising it lengthens the
        in-control run length roughly exponentially and the detection delay linearly.
    direction
        ``"up"`` (latency rising), ``"down"`` (scores falling) or ``"both"``.
    clip
        Bound on each standardised value (> k).
    memory
        0: the reference stays as the warm-up learned it (a stationary stream). Above 0:
        the reference follows the stream, an exponentially weighted mean and deviation
        whose weights halve every ``memory * ln 2`` units of time: seconds of event time
        when updates carry one, else observations. It adapts only while the evidence
        is weak (the statistic at most ``FOLLOW_BELOW * h``), so a shift being
        accumulated is not learned away, and it never rests on fewer than ``warmup`` observations' worth
        of weight, so a quiet stream is not judged by its last few values. A daily cycle
        or a slow trend whose lag behind such a reference stays under ``k`` is followed;
        a change faster than that is tested as before.

    Examples
    --------
    >>> import random
    >>> rng = random.Random(7)
    >>> stream = [rng.gauss(100, 10) for _ in range(1000)] + [rng.gauss(110, 10) for _ in range(200)]
    >>> detector = CUSUM(warmup=200, k=0.5, h=12.0)
    >>> for i, x in enumerate(stream):
    ...     if detector.update(x).drift_detected:
    ...         print(f"change detected at index {i}")
    change detected at index 1030

    References
    ----------
    Page, E. S. (1954). Continuous inspection schemes. Biometrika 41(1/2), 100-115.
    Montgomery, D. C. Introduction to Statistical Quality Control, ch. 9 (tabular CUSUM).
    """

    def __init__(self, *, warmup: int = 200, k: float = 0.5, h: float = 12.0, direction: str = "up", clip: float = 4.0, memory: float = 0.0, test_after: int | None = None):
        if not (isinstance(warmup, int) and warmup >= 2):
            raise ValueError(f"warmup must be an integer >= 2, got {warmup!r}")
        if not k >= 0:
            raise ValueError(f"k must be >= 0, got {k!r}")
        if not h > 0:
            raise ValueError(f"h must be > 0, got {h!r}")
        if direction not in _DIRECTIONS:
            raise ValueError(f"direction must be one of {_DIRECTIONS}, got {direction!r}")
        if not clip > k:
            raise ValueError(f"clip must be > k, got clip={clip!r}, k={k!r}")
        if not (memory >= 0 and isfinite(memory)):
            raise ValueError(f"memory must be a finite number >= 0, got {memory!r}")
        if test_after is None:
            test_after = warmup
        if not (isinstance(test_after, int) and 2 <= test_after <= warmup):
            raise ValueError(f"test_after must be an integer in [2, warmup={warmup}], got {test_after!r}")
        self.warmup = warmup
        self.k = float(k)
        self.h = float(h)
        self.direction = direction
        self._rises, self._falls = direction != "down", direction != "up"  # the sides tested (read per update, as flags)
        self.clip = float(clip)
        self.memory = float(memory)
        self.test_after = test_after
        self._drift_detected = False
        self.recovered = False  # the last update ended a change by returning to the earlier reference
        self._earlier_at = 0.0  # when the earlier reference alarmed (event time, else observations)
        self._clock = 0.0  # observations so far, the time of updates that carry none
        self._earlier: tuple[float, float] | None = None  # (level, deviation) of the reference that last alarmed
        self._toward = [0.0, 0, 0.0, 0]  # per side (up, down) since its sum left zero: values standardised by the earlier reference, summed, and their count
        self.alarm_statistic = 0.0
        self._relearn()

    def _relearn(self) -> None:
        self._n = 0
        self._mean = 0.0
        self._level = 0.0  # what values are compared with: the mean, or a following reference's trend-corrected level
        self._smoothed = 0.0  # a following reference's mean of its means (Brown's double smoothing)
        self._m2 = 0.0
        self._sd = 0.0
        self._upper = 0.0
        self._lower = 0.0
        self._warm: list[float] = []  # the warm-up's values, kept until the reference is set
        self._weight = 0.0  # a following reference's weight of observations (memory > 0)
        self._adapted_at: float | None = None

    def state(self) -> list:
        """The learned state as plain numbers (a snapshot); the parameters come from the thresholds."""
        return [self._n, self._mean, self._m2, self._sd, self._upper, self._lower, self.alarm_statistic, list(self._warm), self._weight, self._clock, self._adapted_at, self._smoothed,
                None if self._earlier is None else [*self._earlier, self._earlier_at], list(self._toward)]

    def load_state(self, state: list) -> None:
        n, mean, m2, sd, upper, lower, alarm, warm = state[:8]
        self._n, self._warm = int(n), [float(x) for x in warm]
        self._mean, self._m2, self._sd, self._upper, self._lower, self.alarm_statistic = map(float, (mean, m2, sd, upper, lower, alarm))
        self._smoothed = self._mean
        if len(state) > 8:  # snapshots before the following reference have no weight: it starts from the warm-up's
            weight, clock, adapted_at, smoothed = state[8:12]
            self._weight, self._clock, self._smoothed = float(weight), float(clock), float(smoothed)
            self._adapted_at = None if adapted_at is None else float(adapted_at)
            if len(state) > 12:  # snapshots before the recovery rule keep no earlier reference
                earlier, toward = state[12:14]
                self._earlier = None if earlier is None else (float(earlier[0]), float(earlier[1]))
                self._earlier_at = 0.0 if earlier is None else float(earlier[2])
                self._toward = [float(toward[0]), int(toward[1]), float(toward[2]), int(toward[3])]
        elif not self.warming_up:
            self._weight = float(self.warmup)
            self._m2 = self._sd * self._sd * self._weight
        self._level = 2.0 * self._mean - self._smoothed

    @property
    def warming_up(self) -> bool:
        return self._n < self.warmup

    def statistic_value(self) -> float:
        """The cumulative sum compared with :attr:`threshold` (0 during warm-up, until ``test_after`` values)."""
        if not self._falls:
            return self._upper
        if not self._rises:
            return self._lower
        return max(self._upper, self._lower)

    @property
    def threshold(self) -> float:
        return self.h

    @property
    def reference(self) -> tuple[float, float] | None:
        """The learned in-control (mean, standard deviation), or None while warming up."""
        return None if self.warming_up else (self._level, self._sd)

    def update(self, x: float, t: float | None = None) -> CUSUM:
        """Test ``x``; ``t`` is its event time in seconds (a following reference and the recovery rule read it)."""
        self._drift_detected = self.recovered = False
        self._clock += 1.0
        now = self._clock if t is None else t
        if self._n < self.warmup:
            if self._n >= self.test_after:  # the floor: test against the warm-up's values so far
                sd = math.sqrt(self._m2 / (self._n - 1))
                if sd > 0 and sd - sd == 0.0 and self._step(x, self._mean, sd, now):  # (finite)
                    return self
            self._n += 1
            delta = x - self._mean
            self._mean += delta / self._n
            self._m2 += delta * (x - self._mean)
            self._warm.append(x)
            if self._n == self.warmup:
                self._set_reference()
                self._adapted_at = now
            return self
        follow_below = FOLLOW_BELOW
        if self.memory > 0.0 and self.statistic_value() <= follow_below * self.h:
            self._follow(x, now)
        self._step(x, self._level, self._sd, now)
        return self

    def _step(self, x: float, mean: float, sd: float, now: float) -> bool:
        """Add ``x``, standardised by the reference (mean, sd), to the sums; True (and the reference re-learned) if the threshold was crossed."""
        z = (x - mean) / sd
        if z > self.clip:
            z = self.clip
        elif z < -self.clip:
            z = -self.clip
        if self._rises:
            upper = self._upper + z - self.k
            self._upper = upper if upper > 0.0 else 0.0
        if self._falls:
            lower = self._lower - z - self.k
            self._lower = lower if lower > 0.0 else 0.0
        statistic = self.statistic_value()
        earlier = self._earlier
        toward = self._toward
        if earlier is not None:  # per side: the values since that side's sum left zero, against the earlier reference
            z_earlier = (x - earlier[0]) / earlier[1]
            for side, total in ((0, self._upper), (2, self._lower)):
                if total == 0.0:
                    toward[side], toward[side + 1] = 0.0, 0
                else:
                    toward[side] += z_earlier
                    toward[side + 1] += 1
        if statistic > self.h:
            self.alarm_statistic = statistic
            side = 0 if self._upper >= self._lower else 2
            if earlier is not None and self.memory > 0.0 and now - self._earlier_at > RECOVERY_MEMORIES * self.memory:
                earlier = None
            if earlier is not None and toward[side + 1] and abs(toward[side] / toward[side + 1]) <= RECOVERY_Z:
                self.recovered = True
                self._earlier = None
            else:
                self._drift_detected = True
                self._earlier, self._earlier_at = (mean, sd), now
            self._toward = [0.0, 0, 0.0, 0]
            self._relearn()
            return True
        return False

    def _set_reference(self) -> None:
        values, self._warm = self._warm, []
        inliers = _inliers(values)
        if len(inliers) < len(values):  # wild values: the reference is learned without them
            self._mean = fsum(inliers) / len(inliers)
            self._m2 = fsum((v - self._mean) ** 2 for v in inliers)
            count = len(inliers)
        else:
            count = self._n
        sd = math.sqrt(self._m2 / (count - 1)) if count > 1 else 0.0
        self._sd = sd if sd > 0 and isfinite(sd) else max(abs(self._mean) * 1e-3, 1e-12)
        self._level = self._smoothed = self._mean
        self._weight = float(count)
        self._m2 = self._sd * self._sd * self._weight

    def _follow(self, x: float, t: float) -> None:
        """Move the reference toward ``x``, forgetting over ``memory`` time units (West's weighted update).

        The level compared with is Brown's double smoothing, twice the mean minus the mean
        of the means: a plain exponential mean lags a daily ramp by its memory times the
        slope, this one follows a linear ramp without lag.
        """
        last = self._adapted_at
        elapsed = 0.0
        if last is None:
            self._adapted_at = t
        else:
            previous = last
            if t > previous:
                elapsed = t - previous
                self._adapted_at = t
        decay = forgetting(elapsed, self.memory, self._weight, self.warmup)  # never below warmup observations' worth of weight
        bound = self.clip * self._sd
        x = min(max(x, self._level - bound), self._level + bound)  # a wild value moves it at most as far as a clipped one
        weight = self._weight * decay + 1.0
        delta = x - self._mean
        self._mean += delta / weight
        self._m2 = self._m2 * decay + delta * (x - self._mean)
        self._smoothed += (self._mean - self._smoothed) / weight
        self._level = 2.0 * self._mean - self._smoothed
        self._weight = weight
        sd = math.sqrt(self._m2 / weight) if self._m2 > 0 else 0.0
        if sd > 0 and sd - sd == 0.0:  # (finite)
            self._sd = sd

    def segment(self) -> None:
        """Start a new segment (e.g. a new model version): zero the sums, keep the reference.

        Keeping the reference means a regression introduced by the new version is
        measured against the version before it instead of being learned as normal.
        """
        self._upper = 0.0
        self._lower = 0.0


def _inliers(values: list[float]) -> list[float]:
    """``values`` within ROBUST_WARMUP_SIGMAS robust deviations of their median (all of them when the MAD is 0, or when too many lie beyond)."""
    ordered = sorted(values)
    median = ordered[len(ordered) // 2]
    deviations = sorted(abs(v - median) for v in values)
    mad = deviations[len(deviations) // 2]
    if not mad > 0 or not isfinite(mad):
        return [v for v in values if isfinite(v)] or [median]
    bound = ROBUST_WARMUP_SIGMAS * 1.4826 * mad
    inliers = [v for v in values if abs(v - median) <= bound]
    if len(values) - len(inliers) > max(1, MAX_WILD_SHARE * len(values)) and all(isfinite(v) for v in values):
        return values  # not a few wild values: a second mode, part of what the stream is
    return inliers

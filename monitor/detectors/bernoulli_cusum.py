"""Bernoulli CUSUM for an increase in the rate of a binary event."""

from __future__ import annotations

import math

_REFRESH_MASK = 63  # re-derive the log-likelihood weights every 64 observations


class BernoulliCUSUM:
    """Log-likelihood-ratio CUSUM for a rise in a Bernoulli rate (refusals, failures).

    Each observation is 1 (the bad outcome happened) or 0. The in-control rate ``p0``
    is either given (a target, as for audit completeness) or learned from the first
    ``warmup`` observations, with a floor ``min_p0`` so that a tool that never failed
    during warm-up does not alarm on its first failure; a learned ``p0`` keeps being
    refined on every later observation until an alarm. The out-of-control rate tested
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

    Examples
    --------
    >>> import random
    >>> rng = random.Random(3)
    >>> stream = [rng.random() < 0.10 for _ in range(2000)] + [rng.random() < 0.20 for _ in range(600)]
    >>> detector = BernoulliCUSUM(warmup=500, ratio=2.0, h=8.5)
    >>> for i, x in enumerate(stream):
    ...     if detector.update(x).drift_detected:
    ...         print(f"rate increase detected at index {i}")
    rate increase detected at index 2177

    References
    ----------
    Reynolds, M. R. and Stoumbos, Z. G. (1999). A CUSUM chart for monitoring a
    proportion when inspecting continuously. Journal of Quality Technology 31(1), 87-108.
    """

    def __init__(self, *, warmup: int = 500, p0: float | None = None, ratio: float = 2.0, min_p0: float = 0.005, h: float = 8.5):
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
        self.ratio = ratio
        self.min_p0 = min_p0
        self.h = h
        self._drift_detected = False
        self.alarm_statistic = 0.0
        self._relearn()

    def _relearn(self) -> None:
        self._n = 0
        self._ones = 0
        self._sum = 0.0
        self._rate = None

    def state(self) -> list:
        """The learned state as plain numbers (a snapshot); the parameters come from the thresholds."""
        return [self._n, self._ones, self._sum, self._rate, self.alarm_statistic]

    def load_state(self, state: list) -> None:
        n, ones, total, rate, alarm = state
        self._n, self._ones, self._sum, self.alarm_statistic = int(n), int(ones), float(total), float(alarm)
        self._rate = None
        if rate is not None:
            self._set_reference(float(rate))

    def _set_reference(self, p0: float) -> None:
        p1 = min(self.ratio * p0, (1.0 + p0) / 2.0)
        self._rate = p0
        self._w1 = math.log(p1 / p0)
        self._w0 = math.log((1.0 - p1) / (1.0 - p0))

    @property
    def drift_detected(self) -> bool:
        """True right after the update that crossed the threshold."""
        return self._drift_detected

    @property
    def warming_up(self) -> bool:
        return self._rate is None

    @property
    def statistic(self) -> float:
        """The log-likelihood-ratio sum compared with :attr:`threshold`."""
        return self._sum

    @property
    def threshold(self) -> float:
        return self.h

    @property
    def reference(self) -> float | None:
        """The in-control rate, or None while warming up."""
        return self._rate

    def update(self, x: bool | int) -> BernoulliCUSUM:
        self._drift_detected = False
        if self._rate is None:
            self._n += 1
            if x:
                self._ones += 1
            if self._n >= self.warmup:
                if self.p0 is not None:
                    self._set_reference(self.p0)
                else:
                    # Jeffreys estimate: never exactly 0, so a first failure is not infinitely surprising.
                    self._set_reference(max(self.min_p0, (self._ones + 0.5) / (self._n + 1.0)))
            return self
        total = self._sum + (self._w1 if x else self._w0)
        self._sum = total if total > 0.0 else 0.0
        if self.p0 is None:
            # Keep refining the learned rate on in-control data: the estimate from the
            # warm-up alone is noisy enough to multiply false alarms.
            self._n += 1
            if x:
                self._ones += 1
            if not self._n & _REFRESH_MASK:
                self._set_reference(max(self.min_p0, (self._ones + 0.5) / (self._n + 1.0)))
        if self._sum > self.h:
            self._drift_detected = True
            self.alarm_statistic = self._sum
            self._relearn()
        return self

    def segment(self) -> None:
        """Start a new segment: zero the sum, keep the reference rate."""
        self._sum = 0.0

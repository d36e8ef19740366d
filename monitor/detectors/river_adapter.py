"""Adapter giving river's drift detectors the ``statistic`` / ``threshold`` interface."""

from __future__ import annotations

import importlib
import math

from monitor.detectors.base import Detector

# river is imported on first use: the default thresholds use our CUSUMs only, and
# importing river costs a worker or a replay about half a second at start.
_FACTORIES = {
    "adwin": ("river.drift", "ADWIN"),
    "page_hinkley": ("river.drift", "PageHinkley"),
    "ddm": ("river.drift.binary", "DDM"),
    "hddm_a": ("river.drift.binary", "HDDMA"),
}


def _river_class(method: str):
    module, name = _FACTORIES[method]
    return getattr(importlib.import_module(module), name)


class RiverDetector(Detector):
    """One of river's detectors (ADWIN, PageHinkley, DDM, HDDM_A) behind our interface.

    ``statistic`` and ``threshold`` are what the detector itself compares where it has
    such a pair (Page-Hinkley: the cumulative deviation and its threshold; DDM: p + s
    and p_min + drift_threshold * s_min). ADWIN and HDDM_A test many windows at once
    and have no single pair: their ``statistic`` is the running estimate and their
    ``threshold`` is NaN (dashboards then draw the estimate alone).

    Parameters
    ----------
    method
        One of ``adwin``, ``page_hinkley``, ``ddm``, ``hddm_a``.
    params
        Keyword arguments passed to the river class (its defaults otherwise).

    Examples
    --------
    >>> import random
    >>> rng = random.Random(7)
    >>> stream = [rng.gauss(0, 1) for _ in range(1000)] + [rng.gauss(3, 1) for _ in range(100)]
    >>> detector = RiverDetector("page_hinkley", mode="up")
    >>> for i, x in enumerate(stream):
    ...     if detector.update(x).drift_detected:
    ...         print(f"change detected at index {i}")
    change detected at index 1014

    References
    ----------
    river.drift: https://riverml.xyz/latest/api/overview/#drift
    """

    def __init__(self, method: str, **params: float | int | str):
        if method not in _FACTORIES:
            raise ValueError(f"method must be one of {sorted(_FACTORIES)}, got {method!r}")
        self.method = method
        self.params = params
        self._detector = _river_class(method)(**params)
        self._drift_detected = False

    def state(self) -> None:
        """river's detectors are not data-only (some are compiled objects): a snapshot keeps none of their state.

        After a restore they start afresh, as after :meth:`segment`; the default
        thresholds use our own CUSUMs, whose state is kept.
        """
        return None

    def load_state(self, state: None) -> None:
        if state is not None:
            raise ValueError("a river detector's snapshot holds no state")

    @property
    def warming_up(self) -> bool:
        return False

    def update(self, x: float, t: float | None = None) -> RiverDetector:
        """Test ``x`` (river's detectors take no time: ``t`` is accepted and unused)."""
        self._detector.update(x)
        self._drift_detected = self._detector.drift_detected
        return self

    def segment(self) -> None:
        """river's detectors have no reference to keep: a segment restarts them."""
        self._detector = _river_class(self.method)(**self.params)
        self._drift_detected = False

    def statistic_value(self) -> float:
        d = self._detector
        if self.method == "page_hinkley":
            if d.mode == "down":
                return d._max_decrease - d._sum_decrease
            if d.mode == "up":
                return d._sum_increase - d._min_increase if math.isfinite(d._min_increase) else 0.0
            up = d._sum_increase - d._min_increase if math.isfinite(d._min_increase) else 0.0
            return max(up, d._max_decrease - d._sum_decrease)
        if self.method == "ddm":
            p = d._p.get()
            return p + math.sqrt(p * (1 - p) / d._p.n) if d._p.n else 0.0
        return float(d.estimation) if hasattr(d, "estimation") else math.nan

    @property
    def alarm_statistic(self) -> float:
        """river resets on the update after an alarm, so the statistic is still the alarm's."""
        return self.statistic

    @property
    def threshold(self) -> float:
        d = self._detector
        if self.method == "page_hinkley":
            return float(d.threshold)
        if self.method == "ddm" and d._p_min is not None:
            return d._p_min + d.drift_threshold * d._s_min
        return math.nan

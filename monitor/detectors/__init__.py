"""Incremental change detectors with one interface.

Every detector has ``update(x, t=None) -> self`` (``t``: the value's event time, which
detectors with a following reference read), a read-only ``drift_detected`` (true right
after the update that crossed the threshold; the detector then resets itself), the
``statistic`` it compares with its ``threshold`` (dashboards draw both), the
``alarm_statistic`` at its last alarm, ``warming_up`` and ``segment()`` (a model-version
boundary: zero the accumulated evidence).
"""

from __future__ import annotations

from typing import Any, Protocol

from monitor.detectors.bernoulli_cusum import BernoulliCUSUM
from monitor.detectors.cusum import CUSUM
from monitor.detectors.embedding_drift import EmbeddingDrift
from monitor.detectors.event_rate import EventRate
from monitor.detectors.river_adapter import RiverDetector

METHODS = ("cusum", "bernoulli_cusum", "event_rate", "adwin", "page_hinkley", "ddm", "hddm_a", "embedding_drift")
#: Methods whose ``update`` takes a vector (an embedding), not a number.
VECTOR_METHODS = frozenset({"embedding_drift"})


class Detector(Protocol):
    @property
    def drift_detected(self) -> bool: ...

    @property
    def statistic(self) -> float: ...

    @property
    def threshold(self) -> float: ...

    @property
    def alarm_statistic(self) -> float: ...

    @property
    def warming_up(self) -> bool: ...

    def update(self, x: float, t: float | None = None) -> Detector: ...

    def segment(self) -> None: ...


def build_detector(method: Any, params: dict[str, Any]) -> Detector:
    """A detector from its ``method`` name and keyword parameters (thresholds.yaml)."""
    if method == "cusum":
        return CUSUM(**params)
    if method == "bernoulli_cusum":
        return BernoulliCUSUM(**params)
    if method == "event_rate":
        return EventRate(**params)
    if method in ("adwin", "page_hinkley", "ddm", "hddm_a"):
        return RiverDetector(method, **params)
    if method == "embedding_drift":
        return EmbeddingDrift(**params)
    raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")


__all__ = ["BernoulliCUSUM", "CUSUM", "Detector", "EmbeddingDrift", "EventRate", "METHODS", "RiverDetector", "VECTOR_METHODS", "build_detector"]

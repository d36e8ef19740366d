"""Incremental change detectors with one interface (:class:`~monitor.detectors.base.Detector`).

Every detector has ``update(x, t=None) -> self`` (``t``: the value's event time, which
detectors with a following reference read), a read-only ``drift_detected`` (true right
after the update that crossed the threshold; the detector then resets itself), the
``statistic`` it compares with its ``threshold`` (dashboards draw both), the
``alarm_statistic`` at its last alarm, ``warming_up`` and ``segment()`` (a model-version
boundary: zero the accumulated evidence).
"""

from __future__ import annotations

from functools import partial
from typing import Any

from monitor.detectors.base import Detector
from monitor.detectors.bernoulli_cusum import BernoulliCUSUM
from monitor.detectors.cusum import CUSUM
from monitor.detectors.embedding_drift import EmbeddingDrift
from monitor.detectors.event_rate import EventRate
from monitor.detectors.river_adapter import RiverDetector

#: thresholds.yaml's detector ``method`` -> what builds it from the detector's other settings.
BUILDERS = {
    "cusum": CUSUM,
    "bernoulli_cusum": BernoulliCUSUM,
    "event_rate": EventRate,
    **{method: partial(RiverDetector, method) for method in ("adwin", "page_hinkley", "ddm", "hddm_a")},
    "embedding_drift": EmbeddingDrift,
}
METHODS = tuple(BUILDERS)
#: Methods whose ``update`` takes a vector (an embedding), not a number.
VECTOR_METHODS = frozenset({"embedding_drift"})


def build_detector(method: Any, params: dict[str, Any]) -> Detector:
    """A detector from its ``method`` name and keyword parameters (thresholds.yaml)."""
    builder = BUILDERS.get(method) if isinstance(method, str) else None
    if builder is None:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    return builder(**params)

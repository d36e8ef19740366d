"""The monitoring pipeline: event -> per-event signals -> keyed detectors -> findings.

One facade, :class:`Pipeline` (``process_record``, ``process``, ``snapshot``,
``restore``), over three parts with one reason to change each:

* :mod:`monitor.pipeline.core`: the facade, and per event kind the handler that wires
  the kind's signals to their streams;
* :mod:`monitor.pipeline.streams`: key state, the detector streams of every model,
  agent and tool, derived from the signal registry;
* :mod:`monitor.pipeline.cooldown`: the alert policy of per-violation signals.

Findings are built by :mod:`monitor.findings`. The faust worker and the offline replay
drive the same pipeline, so a threshold tuned on history is exactly the one deployed.
"""

from monitor.pipeline.core import AIFM, OTLP_LOGS, OTLP_SPANS, EventResult, Pipeline, RecordResult, StreamObserver

__all__ = ["AIFM", "OTLP_LOGS", "OTLP_SPANS", "EventResult", "Pipeline", "RecordResult", "StreamObserver"]

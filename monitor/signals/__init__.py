"""Per-event failure signals: pure functions of one event plus small per-key state.

The registry: every signal is listed here, once, by the ``SPEC`` its module declares
(:mod:`monitor.signals.spec`), as river lists its detectors. The names are a public
vocabulary: they appear in findings, metrics, ``alerts/thresholds.yaml`` and alert rules,
and every table of them elsewhere (alert names, severities, finding keys, series labels,
thresholds options, the pipeline's key streams, recording rules) is derived from
:data:`REGISTRY`. Each module's docstring says what its signal proxies and why.
"""

from __future__ import annotations

from monitor.signals import (
    agent_loop,
    audit_gap,
    embedding_drift,
    error_rate,
    feedback,
    hallucination,
    kill_switch,
    latency,
    model_version,
    prompt_injection,
    refusal,
    tool_failure,
    tool_scope,
    usage,
)
from monitor.signals.spec import SignalSpec, StreamSpec

#: Every signal, in the order alerts, rules and tables list them; annotations last.
REGISTRY: tuple[SignalSpec, ...] = (
    refusal.SPEC,
    hallucination.SPEC,
    tool_failure.SPEC,
    tool_scope.SPEC,
    agent_loop.SPEC,
    latency.SPEC,
    error_rate.SPEC,
    audit_gap.SPEC,
    kill_switch.SPEC,
    feedback.SPEC,
    embedding_drift.SPEC,
    prompt_injection.SPEC,
    usage.SPEC,
    model_version.SPEC,
)

SPECS: dict[str, SignalSpec] = {spec.name: spec for spec in REGISTRY}

#: The failure signals (each has its settings in thresholds.yaml): name -> what it proxies.
SIGNALS = {spec.name: spec.proxies for spec in REGISTRY if spec.in_thresholds}

#: Not a failure signal: a serving model version change is an annotation that segments detectors.
MODEL_VERSION = model_version.SPEC.name

#: Every (signal, stream) pair that raises findings, with its stream's spec.
STREAMS: dict[tuple[str, str], StreamSpec] = {(spec.name, stream.detector): stream for spec in REGISTRY for stream in spec.streams}

#: The labels that identify each signal's stream in the ``aifm_signal_*`` counters (the
#: metrics fold events onto them; rules and dashboards aggregate by them).
SERIES_LABELS = {spec.name: spec.series_labels for spec in REGISTRY}

#: The signals whose streams a detector tests (``detector:`` in thresholds.yaml).
SIGNALS_WITH_DETECTOR = frozenset(spec.name for spec in REGISTRY if spec.has_detector)


def keyed_streams(key_kind: str) -> tuple[tuple[str, StreamSpec], ...]:
    """(signal, stream) for every detector stream a key of ``key_kind`` ("model", "agent", "tool") holds."""
    return tuple((spec.name, stream) for spec in REGISTRY for stream in spec.streams if stream.slot is not None and key_kind in stream.key_kinds)

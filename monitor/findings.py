"""Findings: what the monitor concluded, as JSON objects on the alerts topic or in a file.

A finding names a signal, the stream it concerns (``key``: bounded labels such as
``model`` or ``agent``), the event that triggered it, the detector's statistic and
threshold at that moment, and ``started_at``: when the change began (for a detector,
the event time at which its statistic last left zero; for a violation, the violation). ``alert_id`` is a hash of signal, detector, key and the
triggering event, so re-processing the same events yields the same ids and consumers
(or a compacted topic) can deduplicate. Findings never carry prompt or response text.
"""

from __future__ import annotations

import hashlib

import msgspec

from monitor.signals import REGISTRY, STREAMS

#: CamelCase alert name per (signal, detector); shared with the generated alert rules.
ALERT_NAMES = {pair: stream.alert for pair, stream in STREAMS.items()}

#: The key labels findings of each signal may carry.
FINDING_KEYS = {spec.name: spec.finding_keys for spec in REGISTRY}


def finding_severity(thresholds, signal: str, detector: str) -> str:
    """The severity of findings of (signal, detector): its stream's fixed one, or the signal's ``severity`` in thresholds.yaml."""
    fixed = STREAMS[(signal, detector)].severity
    return fixed if fixed is not None else thresholds.signals[signal].severity


class Finding(msgspec.Struct, kw_only=True, omit_defaults=True, gc=False):
    alert_id: str
    type: str  # "finding", or "annotation" for a model-version change (no alert)
    signal: str
    detector: str
    alert: str
    severity: str
    key: dict[str, str]
    ts: float | None
    started_at: float | None = None
    event_id: str | None
    statistic: float
    threshold: float
    summary: str
    details: dict = {}


def alert_id(signal: str, detector: str, key: dict[str, str], event_id: str | None, ts: float | None) -> str:
    """Deterministic id: the same signal, key and triggering event give the same id."""
    labels = ",".join(f"{name}={key[name]}" for name in sorted(key))
    trigger = event_id if event_id is not None else f"ts={ts!r}"
    digest = hashlib.blake2b(f"{signal}|{detector}|{labels}|{trigger}".encode(), digest_size=10)
    return digest.hexdigest()


def make_finding(
    *,
    signal: str,
    detector: str,
    severity: str,
    key: dict[str, str],
    event,
    statistic: float,
    threshold: float,
    details: dict | None = None,
    kind: str = "finding",
    started_at: float | None = None,
) -> Finding:
    return Finding(
        alert_id=alert_id(signal, detector, key, event.event_id, event.ts),
        type=kind,
        signal=signal,
        detector=detector,
        alert=ALERT_NAMES[(signal, detector)],
        severity=severity,
        key=key,
        ts=event.ts,
        started_at=started_at if started_at is not None else event.ts,
        event_id=event.event_id,
        statistic=round(float(statistic), 4),
        threshold=round(float(threshold), 4),
        summary=STREAMS[(signal, detector)].summary,
        details=details or {},
    )


_encoder = msgspec.json.Encoder()


def encode_finding(finding: Finding) -> bytes:
    return _encoder.encode(finding)

"""``aifm replay`` and ``aifm signals``: history through the very pipeline the worker runs."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Callable, Iterable

import msgspec

from monitor.events import Reject
from monitor.findings import Finding, encode_finding
from monitor.pipeline import Pipeline
from monitor.replay.reader import RejectedLine, expand_paths, merged_events, read_lines
from monitor.signals.tool_scope import Boundaries
from monitor.thresholds import Thresholds

_json = msgspec.json.Encoder()


@dataclass
class ReplayReport:
    files: list[str]
    events_by_kind: Counter
    rejects_by_reason: Counter
    findings: list[Finding]
    late_events: int
    seconds: float
    rejected: list[RejectedLine] = field(default_factory=list)
    blocked_tool_calls: Counter = field(default_factory=Counter)  # (agent, tool) -> calls a pre-call gate held
    ignored_spans: Counter = field(default_factory=Counter)  # OTLP spans that are not model or tool calls, by kind

    @property
    def events(self) -> int:
        return sum(self.events_by_kind.values())

    @property
    def rejects(self) -> int:
        return sum(self.rejects_by_reason.values())


def replay(
    paths: list[str | Path],
    *,
    thresholds: Thresholds,
    boundaries: Boundaries | None = None,
    findings_out: IO[bytes] | None = None,
    signals_out: IO[bytes] | None = None,
    sources: list[tuple[str, Iterable[tuple[int, bytes]]]] | None = None,
    pipeline_factory: Callable[..., Pipeline] = Pipeline,
    embedder=None,
) -> ReplayReport:
    """Run every event of ``paths`` (or of ``sources``) through a fresh :class:`Pipeline`, in event-time order.

    Findings (and model-version annotations) are written to ``findings_out`` as JSONL
    as they happen; with ``signals_out``, one line per accepted event says which
    signals it produced. Raises :class:`~monitor.replay.reader.ReplayError` before
    reading anything if a path is unreadable. ``sources`` are (name, records) pairs
    such as the partitions of a Kafka topic (:mod:`monitor.replay.kafka_source`).
    ``pipeline_factory`` builds the pipeline (tuning passes one that records detector inputs);
    an ``embedder`` (:mod:`monitor.embeddings`) embeds a budgeted sample of outputs on the way.
    """
    started = time.perf_counter()
    files = expand_paths(paths)
    inputs = [(str(path), read_lines(path)) for path in files] + list(sources or [])
    pipeline = pipeline_factory(thresholds, boundaries)
    rejected: list[RejectedLine] = []
    order_stats = {"late": 0}
    findings: list[Finding] = []
    events = merged_events(
        inputs,
        window=thresholds.reorder_window,
        max_record_bytes=thresholds.max_record_bytes,
        rejected=rejected,
        order_stats=order_stats,
        decode=pipeline.decode,
    )
    events = _then_held(events, pipeline)
    if embedder is not None:
        events = embedder.batches(events)
    process = pipeline.process_safely
    for event in events:
        result = process(event)
        if isinstance(result, Reject):  # the pipeline failed on this event: kept in the reject report, the replay goes on
            rejected.append(RejectedLine(f"event {event.event_id or '?'}", 0, result, result.raw or b""))
            continue
        if signals_out is not None:
            signals_out.write(_json.encode({"event_id": event.event_id, "kind": event.kind, "ts": event.ts, "signals": result.signals}))
            signals_out.write(b"\n")
        if result.findings:
            findings.extend(result.findings)
            if findings_out is not None:
                for finding in result.findings:
                    findings_out.write(encode_finding(finding))
                    findings_out.write(b"\n")
    for entry in rejected:
        pipeline.count_reject(entry.reject.reason)
    return ReplayReport(
        files=[source[0] for source in inputs],
        events_by_kind=Counter(pipeline.events_by_kind),
        rejects_by_reason=Counter(pipeline.rejects_by_reason),
        findings=findings,
        late_events=order_stats["late"],
        seconds=time.perf_counter() - started,
        rejected=rejected,
        blocked_tool_calls=Counter(pipeline.blocked_tool_calls),
        ignored_spans=Counter(pipeline.otlp.ignored_by_kind),
    )


def _then_held(events: Iterable, pipeline: Pipeline):
    """The events, then the OTLP spans still waiting for log records at the end of the history."""
    yield from events
    yield from pipeline.otlp.flush()


def write_rejects(rejected: list[RejectedLine], out: IO[bytes]) -> None:
    for entry in rejected:
        out.write(_json.encode(entry.to_json()))
        out.write(b"\n")


def format_summary(report: ReplayReport) -> str:
    """The table printed after a replay: events, rejects by reason, findings by signal and key."""
    lines = []
    rate = report.events / report.seconds if report.seconds > 0 else 0.0
    lines.append(f"replayed {report.events:,} events from {len(report.files)} source(s) in {report.seconds:.2f} s ({rate:,.0f} events/s)")
    lines.append("  by kind: " + ", ".join(f"{kind} {count:,}" for kind, count in sorted(report.events_by_kind.items())))
    if report.late_events:
        lines.append(f"  {report.late_events:,} events arrived later than the reorder window and were processed out of order")
    if report.rejects:
        lines.append(f"rejected {report.rejects:,} records: " + ", ".join(f"{reason} {count:,}" for reason, count in sorted(report.rejects_by_reason.items())))
    else:
        lines.append("rejected 0 records")
    if report.ignored_spans:
        lines.append("  OTLP spans that are not model or tool calls (counted, not events): "
                     + ", ".join(f"{kind} {count:,}" for kind, count in sorted(report.ignored_spans.items())))
    blocked = sum(report.blocked_tool_calls.values())
    if blocked:
        lines.append(f"tool calls blocked by a pre-call gate: {blocked:,} (counted, not findings; Control 7)")
    alerts = [f for f in report.findings if f.type == "finding"]
    annotations = [f for f in report.findings if f.type == "annotation"]
    lines.append(f"findings: {len(alerts)}" + (f" (+{len(annotations)} model-version annotations)" if annotations else ""))
    if alerts:
        groups: dict[tuple, list[Finding]] = {}
        for finding in alerts:
            key = ",".join(f"{k}={v}" for k, v in sorted(finding.key.items()))
            groups.setdefault((finding.signal, finding.alert, finding.severity, key), []).append(finding)
        width = max(len(g[3]) for g in groups)
        lines.append(f"  {'signal':14} {'alert':32} {'severity':9} {'key':{width}} {'count':>5}")
        for (signal, alert, severity, key), items in sorted(groups.items()):
            lines.append(f"  {signal:14} {alert:32} {severity:9} {key:{width}} {len(items):>5}")
    return "\n".join(lines)

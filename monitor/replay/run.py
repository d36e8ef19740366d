"""``aifm replay`` and ``aifm signals``: history through the very pipeline the worker runs."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import msgspec

from monitor.events import Reject
from monitor.findings import Finding, encode_finding
from monitor.pipeline import Pipeline, StreamObserver
from monitor.replay.reader import RejectedLine, expand_paths, merged_events, read_lines
from monitor.signals.tool_scope import Boundaries
from monitor.thresholds import Thresholds

_json = msgspec.json.Encoder()


@dataclass
class DriftCoverage:
    """How far one model's output-drift stream got: what it was fed, and whether it could alarm."""

    offered: int  # outputs with text offered to the sampler (0 where only precomputed vectors came)
    embedded: int  # of those, encoded by the monitor
    fed: int  # vectors the drift stream took (embedded or precomputed)
    needed: int  # the minimum-sample floor: vectors before it may alarm
    armed: bool  # past the floor: it could alarm
    relearning: bool  # at the end, learning a new reference (after a finding)


@dataclass
class EmbeddingCoverage:
    """What the replay's embedder did (``mode``: how it sampled) and each model's drift stream."""

    mode: str
    seconds: float
    cached: int
    models: dict[str, DriftCoverage]
    tools: dict[str, tuple[int, int]]  # tool -> (results offered, embedded)


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
    embedding: EmbeddingCoverage | None = None

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
    observer: StreamObserver | None = None,
    embedder=None,
) -> ReplayReport:
    """Run every event of ``paths`` (or of ``sources``) through a fresh :class:`Pipeline`, in event-time order.

    Findings (and model-version annotations) are written to ``findings_out`` as JSONL
    as they happen; with ``signals_out``, one line per accepted event says which
    signals it produced. Raises :class:`~monitor.replay.reader.ReplayError` before
    reading anything if a path is unreadable. ``sources`` are (name, records) pairs
    such as the partitions of a Kafka topic (:mod:`monitor.replay.kafka_source`).
    An ``observer`` is told of every value fed to a detector (tuning records them);
    an ``embedder`` (:mod:`monitor.embeddings`) embeds a budgeted sample of outputs on the way.
    """
    started = time.perf_counter()
    files = expand_paths(paths)
    inputs = [(str(path), read_lines(path)) for path in files] + list(sources or [])
    pipeline = Pipeline(thresholds, boundaries, observer=observer)
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
        embedding=_coverage(pipeline, embedder, thresholds),
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


def _coverage(pipeline: Pipeline, embedder, thresholds: Thresholds) -> EmbeddingCoverage | None:
    """Per model, what was offered, embedded and fed to output drift; None when neither embedder nor vectors were there."""
    needed = thresholds.signals["embedding_drift"].min_samples
    fed = {key["model"]: (count, detector) for signal, name, key, detector, count in pipeline.streams() if (signal, name) == ("embedding_drift", "centroid") and "model" in key}
    sampled = embedder.sampled_by_key() if embedder is not None else {}
    models = {name: (offered, embedded) for (kind, name), (offered, embedded) in sampled.items() if kind == "model"}
    if embedder is None and not fed:
        return None
    rows = {}
    for model in sorted(set(models) | set(fed)):
        count, detector = fed.get(model, (0, None))
        offered, embedded = models.get(model, (0, 0))
        armed = detector is not None and count >= needed
        rows[model] = DriftCoverage(offered, embedded, count, needed, armed, armed and detector.warming_up)
    tools = {name: counts for (kind, name), counts in sampled.items() if kind == "tool"}
    if embedder is None:
        return EmbeddingCoverage("precomputed vectors only", 0.0, 0, rows, tools)
    return EmbeddingCoverage(embedder.mode, embedder.sampler.step_seconds, embedder.cached, rows, tools)


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
    if report.embedding is not None:
        lines.extend(_format_coverage(report.embedding))
    return "\n".join(lines)


def _format_coverage(coverage: EmbeddingCoverage) -> list[str]:
    embedded = sum(row.embedded for row in coverage.models.values()) + sum(done for _, done in coverage.tools.values())
    lines = [f"embeddings: {coverage.mode}; {embedded:,} outputs and tool results embedded in {coverage.seconds:.1f} s ({coverage.cached:,} texts from the cache)"]
    if coverage.models:
        width = max(5, *(len(model) for model in coverage.models))
        lines.append(f"  {'model':{width}} {'offered':>9} {'embedded':>9} {'drift fed':>10}  drift")
        for model, row in coverage.models.items():
            if row.armed:
                state = "armed, re-learning its reference at the end (after a finding)" if row.relearning else "armed"
            else:
                state = f"NOT ARMED (needs {row.needed:,} vectors): could not find drift"
            lines.append(f"  {model:{width}} {row.offered:>9,} {row.embedded:>9,} {row.fed:>10,}  {state}")
    for tool, (offered, done) in sorted(coverage.tools.items()):
        lines.append(f"  tool {tool}: {offered:,} results offered, {done:,} chosen (injection similarity, where they hold text)")
    return lines

"""Per-partition processing: one pipeline per source partition, its snapshots, its outputs.

Kafka messages are keyed by agent or model, so all events of a key land in one
partition, and each partition's detector state lives in its own :class:`Pipeline`.
When a partition moves to another worker (a rebalance) or the worker restarts, its
pipeline is restored from the latest snapshot, and records the snapshot already holds
(offset below the snapshot's next offset) are skipped: no event counts twice in
detector state. A snapshot that cannot be read (corrupt, crafted, an older format) is
discarded, counted and logged, and the partition starts fresh. This module does no
I/O; the faust app moves bytes in and out.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import Counter
from datetime import UTC, datetime

import msgspec

from monitor.events import Event, Reject, encode_event
from monitor.findings import encode_finding
from monitor.metrics import Metrics
from monitor.otel.decoder import ContentTable
from monitor.pipeline import AIFM, OTLP_SPANS, Pipeline, RecordResult
from monitor.signals.tool_scope import Boundaries
from monitor.snapshot import SnapshotError
from monitor.thresholds import Thresholds
from monitor.worker.snapshot_records import StoredSnapshot, snapshot_records

log = logging.getLogger("aifm.worker")

#: A record with more rejected elements than this becomes one dead letter (the whole record, the count in its
#: headers) instead of one per element: a 1 MB batch of ``{}`` would otherwise write 333,000 of them.
MAX_DEAD_LETTERS_PER_RECORD = 100

#: The most a dead letter's value holds: a longer record keeps this prefix, its length and digest in headers.
#: Below Kafka's default 1 MB message limit with room for headers, so a dead letter always fits.
MAX_DEAD_LETTER_BYTES = 900_000


class Taken(msgspec.Struct, frozen=True):
    """One partition's snapshot, taken but not yet known to be written."""

    topic: str
    partition: int
    generation: int
    next_offset: int
    data: bytes

    def records(self) -> list[tuple[bytes, bytes]]:
        """The state-topic records that hold it (:mod:`monitor.worker.snapshot_records`)."""
        return snapshot_records(self.topic, self.partition, self.generation, self.next_offset, self.data)


class Output(msgspec.Struct):
    """What one record produced: findings to publish, dead letters to keep, events to re-key."""

    alerts: list[tuple[bytes, bytes]] = msgspec.field(default_factory=list)  # (key = alert_id, value = finding JSON)
    # (key = source topic:partition:offset[:batch index], value, headers): a record dead-lettered twice (at-least-once) has one key
    dead_letters: list[tuple[bytes, bytes, list[tuple[str, bytes]]]] = msgspec.field(default_factory=list)
    rekeyed: list[tuple[bytes, bytes]] = msgspec.field(default_factory=list)  # (key = model or agent, value = event JSON)
    skipped: bool = False


def partition_key(event: Event) -> bytes:
    """The documented keying (docs/worker.md, "Keying"): model calls and feedback by model, everything else by agent."""
    if event.kind in ("model_call", "feedback") and event.model:
        return event.model.encode()
    return (event.agent or event.target_agent or event.target_model or "unkeyed").encode()


class _PartitionState:
    __slots__ = ("pipeline", "next_offset", "dirty", "generation")

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline
        self.next_offset = 0
        self.dirty = False
        self.generation = 0  # of the latest snapshot known written


class StreamProcessor:
    """The pipelines of the partitions assigned to this worker."""

    def __init__(
        self,
        thresholds: Thresholds,
        boundaries: Boundaries | None = None,
        metrics: Metrics | None = None,
        embedder=None,
        formats: dict[str, str] | None = None,
    ):
        self.thresholds = thresholds
        self.formats = formats or {}  # topic -> what its records hold (see Pipeline.process_record); "aifm" where absent
        # Content of OTLP log records waits here for its spans, whichever partition they come from
        # (transient: a restart loses at most what was not yet joined).
        self.content = ContentTable()
        self.boundaries = boundaries if boundaries is not None else Boundaries()
        self.metrics = metrics
        self.embedder = embedder  # samples model outputs to embed (None: only precomputed embeddings)
        self.embedding_errors = 0
        self._partitions: dict[tuple[str, int], _PartitionState] = {}

    @property
    def assigned(self) -> list[tuple[str, int]]:
        return sorted(self._partitions)

    def has(self, topic: str, partition: int) -> bool:
        return (topic, partition) in self._partitions

    def pipelines(self) -> list[Pipeline]:
        return [state.pipeline for state in self._partitions.values()]

    def assign(self, topic: str, partition: int, stored: StoredSnapshot | None = None) -> str:
        """Take a partition; restore its stored snapshot if there is one. Returns what happened:

        ``fresh`` (none), ``restored``, ``discarded`` (taken under other thresholds) or
        ``corrupt`` (unreadable: logged, and the partition starts fresh).
        """
        state = self._fresh()
        result = "fresh"
        if stored is not None:
            problem = stored.problem
            if problem is None:
                try:
                    result = "restored" if state.pipeline.restore(stored.data) else "discarded"
                except SnapshotError as error:
                    problem = str(error)
            if problem is not None:
                log.warning("the snapshot of %s[%d] is unreadable (%s); the partition starts fresh", topic, partition, problem)
                state, result = self._fresh(), "corrupt"
            if result == "restored":
                state.next_offset = stored.next_offset
            state.generation = stored.generation  # the next snapshot goes to the other slot, whatever this one held
        self._partitions[(topic, partition)] = state
        if self.metrics is not None:
            self.metrics.restores.labels(topic, result).inc()
        return result

    def _fresh(self) -> _PartitionState:
        return _PartitionState(Pipeline(self.thresholds, self.boundaries, content=self.content))

    def revoke(self, topic: str, partition: int) -> Taken | None:
        """Give a partition up; returns its final snapshot (None if it never changed)."""
        state = self._partitions.pop((topic, partition), None)
        if state is None or not state.dirty:
            return None
        return self._snapshot(topic, partition, state)

    def snapshots(self) -> list[Taken]:
        """Snapshots of every partition whose state changed since its last confirmed snapshot.

        Call :meth:`confirm` once they are durably written; until then they count as
        not taken, so a failed write is retried at the next checkpoint.
        """
        return [self._snapshot(topic, partition, state) for (topic, partition), state in self._partitions.items() if state.dirty]

    def confirm(self, taken: list[Taken]) -> None:
        """Mark snapshots as written (unless the partition moved on since they were taken)."""
        for snapshot in taken:
            state = self._partitions.get((snapshot.topic, snapshot.partition))
            if state is None:
                continue
            state.generation = max(state.generation, snapshot.generation)
            if state.next_offset == snapshot.next_offset:
                state.dirty = False

    def _process_embedding(self, pipeline: Pipeline, value: bytes):
        """Process a record with embeddings; the pipeline's work on the vectors the embedder made is charged to its budget.

        That work (up to four drift streams per output) grows with every output a fast
        encoder embeds; left uncharged it would take the worker below its budget's share.
        Where a record mixes precomputed and embedded vectors it is charged pro rata.
        """
        embedder = self.embedder
        seconds, embedded, precomputed = pipeline.embedding_seconds, embedder.embedded, embedder.precomputed
        result = pipeline.process_record(value, prepare=self._embed)
        own = embedder.embedded - embedded
        if own:
            theirs = embedder.precomputed - precomputed
            embedder.sampler.spent(0, (pipeline.embedding_seconds - seconds) * own / (own + theirs))
        return result

    def _embed(self, events) -> None:
        try:
            self.embedder.embed(events)
        except Exception:  # an encoder failure costs the embeddings of this record, never the record
            self.embedding_errors += 1
            log.warning("embedding failed; the record is processed without sampled embeddings", exc_info=True)

    @staticmethod
    def _snapshot(topic: str, partition: int, state: _PartitionState) -> Taken:
        return Taken(topic, partition, state.generation + 1, state.next_offset, state.pipeline.snapshot())

    def handle_safely(self, topic: str, partition: int, offset: int, value: bytes | None) -> Output:
        """:meth:`handle`, with any exception turned into an ``internal_error`` dead letter of the record.

        The agent must never crash: faust would ack the rest of its group of records unprocessed.
        """
        try:
            return self.handle(topic, partition, offset, value)
        except Exception as error:
            log.error("processing failed (%s) at %s[%d]@%d; the record goes to the dead-letter topic", type(error).__name__, topic, partition, offset)
            state = self._partitions.get((topic, partition))
            if state is not None and offset >= state.next_offset:
                state.next_offset = offset + 1
                state.dirty = True
            output = Output()
            reject = Reject(reason="internal_error", detail=f"{type(error).__name__} while processing the record")
            self._outputs(state.pipeline if state is not None else None, RecordResult([], [reject]), output, topic, partition, offset, value, AIFM)
            return output

    def handle(self, topic: str, partition: int, offset: int, value: bytes | None) -> Output:
        """Process one Kafka record. Never raises on bad input.

        Dead letters carry our provenance headers; the caller adds the record's own.
        """
        started = time.perf_counter()
        state = self._partitions.get((topic, partition))
        if state is None:  # a record from a partition we were not told about: treat as assigned, fresh
            self.assign(topic, partition)
            state = self._partitions[(topic, partition)]
        output = Output()
        if offset < state.next_offset:
            output.skipped = True
            if self.metrics is not None:
                self.metrics.skipped.labels(topic).inc()
            return output
        pipeline = state.pipeline
        source = self.formats.get(topic, AIFM)
        if source == AIFM:
            if self.embedder is None:
                result = pipeline.process_record(value)
            else:
                result = self._process_embedding(pipeline, value)
        else:
            result = self._rekey(pipeline, value, source, output)
        state.next_offset = offset + 1
        state.dirty = True
        self._outputs(pipeline, result, output, topic, partition, offset, value, source)
        if self.metrics is not None:
            self.metrics.record_processed(time.perf_counter() - started)
        return output

    def _rekey(self, pipeline: Pipeline, value: bytes | None, source: str, output: Output) -> RecordResult:
        """Decode an OTLP record into events to re-key; nothing is processed here.

        The Collector cannot key spans by model or agent (at best by trace id), so events
        decoded from OTLP partitions are produced again, keyed as documented, to the
        worker's first JSON topic; their detector state then lives with their key's
        partition like any other event's. The OTLP partition keeps only the decoder's
        state: agent ancestry, spans waiting for their log records.
        """
        decoder = pipeline.otlp
        ignored, joined = dict(decoder.ignored_by_kind), decoder.joined_from_logs
        events, rejects = pipeline.decode(value, source)
        limit = self.thresholds.max_record_bytes
        for event in events:
            encoded = encode_event(event)
            if len(encoded) > limit:  # its JSON would be refused downstream: kept as a dead letter instead
                rejects.append(Reject(reason="too_large", detail=f"the span's event is {len(encoded)} bytes as JSON, over the limit of {limit}", raw=encoded))
            else:
                output.rekeyed.append((partition_key(event), encoded))
        for reject in rejects:
            pipeline.count_reject(reject.reason)
        if self.metrics is not None:
            for kind, count in decoder.ignored_by_kind.items():
                if count != ignored.get(kind, 0):
                    self.metrics.otlp_ignored.labels(kind).inc(count - ignored.get(kind, 0))
            if decoder.joined_from_logs != joined:
                self.metrics.otlp_joined.inc(decoder.joined_from_logs - joined)
        return RecordResult([], rejects)

    def release_held(self) -> list[Output]:
        """OTLP spans that have waited a whole checkpoint interval for their agent or log records, as events to re-key."""
        outputs = []
        for state in self._partitions.values():
            if not state.pipeline.otlp.held:
                continue
            events = state.pipeline.otlp.tick()
            if events:
                state.dirty = True
                outputs.append(Output(rekeyed=[(partition_key(event), encode_event(event)) for event in events]))
        if self.metrics is not None:
            self.metrics.otlp_waiting.set(sum(state.pipeline.otlp.held for state in self._partitions.values()))
        return outputs

    def _outputs(self, pipeline: Pipeline, result: RecordResult, output: Output, topic: str, partition: int, offset: int, value, source: str) -> None:
        metrics = self.metrics
        for item in result.results:
            if metrics is not None:
                metrics.observe_event(item.event, item.signals, pipeline.metric_labels(item.event))
            for finding in item.findings:
                output.alerts.append((finding.alert_id.encode(), encode_finding(finding)))
                if metrics is not None:
                    metrics.observe_finding(finding)
        rejects = result.rejects
        if metrics is not None:
            for reject in rejects:
                metrics.observe_reject(reject.reason)
        if len(rejects) > MAX_DEAD_LETTERS_PER_RECORD:
            reasons = Counter(reject.reason for reject in rejects)
            summary = Reject(
                reason=reasons.most_common(1)[0][0],
                detail=f"{len(rejects)} elements rejected ({', '.join(f'{r} {n}' for r, n in sorted(reasons.items()))}); the whole record is kept",
            )
            headers = [*self._provenance(summary, topic, partition, offset), ("aifm.rejected_count", str(len(rejects)).encode())]
            output.dead_letters.append(_dead_letter(f"{topic}:{partition}:{offset}", value if value is not None else b"", headers))
            return
        for reject in rejects:
            original = reject.raw if reject.raw is not None else (value if value is not None else b"")
            dead_headers = self._provenance(reject, topic, partition, offset)
            key = f"{topic}:{partition}:{offset}"
            if reject.index is not None:
                key += f":{reject.index}"
                dead_headers.append(("aifm.batch_index", str(reject.index).encode()))
                if source != AIFM:  # the dead letter is that one span or log record, as it came
                    dead_headers.append(("aifm.otlp.element", b"span" if source == OTLP_SPANS else b"log_record"))
            output.dead_letters.append(_dead_letter(key, original, dead_headers))

    @staticmethod
    def _provenance(reject: Reject, topic: str, partition: int, offset: int) -> list[tuple[str, bytes]]:
        return [
            ("aifm.reason", reject.reason.encode()),
            ("aifm.detail", reject.detail.encode()),
            ("aifm.source.topic", topic.encode()),
            ("aifm.source.partition", str(partition).encode()),
            ("aifm.source.offset", str(offset).encode()),
            ("aifm.rejected_at", datetime.now(UTC).isoformat(timespec="milliseconds").encode()),
        ]


def _dead_letter(key: str, original: bytes, headers: list[tuple[str, bytes]]) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    """A dead letter that always fits: a value over MAX_DEAD_LETTER_BYTES keeps its prefix, with its length and digest in headers.

    The whole record stays on its source topic (aifm.source.* say where) for as long as
    that topic's retention keeps it.
    """
    if len(original) > MAX_DEAD_LETTER_BYTES:
        headers = [
            *headers,
            ("aifm.truncated_from_bytes", str(len(original)).encode()),
            ("aifm.sha256", hashlib.sha256(original).hexdigest().encode()),
        ]
        original = original[:MAX_DEAD_LETTER_BYTES]
    return key.encode(), original, headers

"""The faust-streaming application: Kafka in, the pipeline, findings and dead letters out.

The agent consumes raw bytes, so that a malformed record is decoded (and rejected)
inside the pipeline and goes to the dead-letter topic instead of crashing the agent.
Messages are expected to be keyed by agent or model (docs/worker.md, "Keying"):
all events of a key then share a partition, and so does the detector state for them.

Offsets and detector state move together: offsets are committed only right after the
state snapshots have been written (:meth:`MonitorApp.checkpoint`), so after a crash
the worker resumes at or before its last snapshot and skips what the snapshot holds.
"""

from __future__ import annotations

import asyncio
import logging
import os
import tempfile
import time
from typing import Any

import faust
from aiokafka.errors import KafkaError
from faust.sensors import Sensor

from monitor.metrics import Metrics
from monitor.signals.tool_scope import load_boundaries
from monitor.thresholds import load_thresholds
from monitor.worker.kafka import client_options, ensure_topics, probe, read_snapshots, wait_for_broker
from monitor.worker.processor import StreamProcessor, Taken
from monitor.worker.settings import SettingsError, WorkerSettings

log = logging.getLogger("aifm.worker")

#: Offsets are committed by our checkpoints, not on faust's own schedule.
_NEVER = 10**9

#: The agent takes up to this many records at a time (fewer when no more arrive within
#: TAKE_WITHIN_SECONDS, which is then the most a record waits to be processed).
TAKE_RECORDS = 100
TAKE_WITHIN_SECONDS = 0.1

#: The producer's request limit: a dead letter (at most MAX_DEAD_LETTER_BYTES, plus the record's headers up to
#: MAX_COPIED_HEADER_BYTES and ours) or a snapshot chunk always fits. Brokers keep their own limit (1 MB by default).
MAX_COPIED_HEADER_BYTES = 64 * 1024
PRODUCER_MAX_REQUEST_BYTES = 1_048_576


class _CommitTimer(Sensor):
    """faust sensor timing offset commits for aifm_commit_latency_seconds."""

    def __init__(self, metrics: Metrics, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.metrics = metrics

    def on_commit_initiated(self, consumer) -> float:
        return time.monotonic()

    def on_commit_completed(self, consumer, state: Any) -> None:
        if isinstance(state, float):
            self.metrics.commit_latency.observe(time.monotonic() - state)


class MonitorApp(faust.App):
    """A faust App that owns a :class:`StreamProcessor` and checkpoints its state."""

    settings: WorkerSettings
    processor: StreamProcessor
    metrics: Metrics

    async def on_first_start(self) -> None:
        await wait_for_broker(self.settings, self.metrics)
        counts = await ensure_topics(self.settings)
        log.info("topics ready: %s", ", ".join(f"{t} ({n} partitions)" for t, n in counts.items()))
        await super().on_first_start()

    async def checkpoint(self) -> int:
        """Write every changed partition's snapshot, then commit the offsets they cover."""
        snapshots = self.processor.snapshots()
        await self.store_snapshots(snapshots)
        self.processor.confirm(snapshots)
        return len(snapshots)

    async def store_snapshots(self, snapshots: list[Taken]) -> None:
        """Send snapshots to their state partitions, wait until they are written, then commit offsets.

        Snapshots go straight to the producer: the state topic is never consumed by faust.
        Each is written in chunks under a manifest (:mod:`monitor.worker.snapshot_records`),
        so any size fits the broker's message limit.
        """
        for snapshot in snapshots:
            state_topic = self.settings.state_topic(snapshot.topic)
            for key, value in snapshot.records():
                await self.producer.send(state_topic, key, value, snapshot.partition, None, None)
        if snapshots:
            await self.producer.flush()
            for snapshot in snapshots:
                self.metrics.snapshots.labels(snapshot.topic).inc()
                self.metrics.snapshot_bytes.labels(snapshot.topic).set(len(snapshot.data))
        await self.consumer.commit()
        self.metrics.last_snapshot.set_to_current_time()  # state is durable up to now, whether or not anything changed

    def refresh_metrics(self) -> None:
        self.metrics.refresh_detectors(self.processor.pipelines())
        consumer = self.consumer
        assigned = [tp for tp in consumer.assignment() if tp.topic in self.settings.sources]
        self.metrics.assigned_partitions.set(len(assigned))
        for tp in assigned:
            highwater = consumer.highwater(tp)
            committed = consumer._committed_offset.get(tp) or 0
            if highwater is not None:
                self.metrics.consumer_lag.labels(tp.topic, str(tp.partition)).set(max(0, highwater - committed))


def _embedder(settings: WorkerSettings, thresholds):
    """In sample mode, the embedder with its encoder loaded now: a missing model fails at start, not at the first event."""
    if settings.embeddings != "sample":
        return None
    from monitor.embeddings.embedder import sampling_embedder
    from monitor.embeddings.encoder import EncoderUnavailable

    try:
        embedder = sampling_embedder(settings.embedding_share, thresholds, settings.encoder)
        encoder = embedder.encoder
    except (EncoderUnavailable, ValueError) as error:
        raise SettingsError(f"embeddings: sample mode cannot load its encoder ({error})") from None
    log.info("embedding a sampled share of outputs with the %s encoder on %s (at most %.0f%% of the time)", settings.encoder, encoder.device, settings.embedding_share * 100)
    return embedder


def create_app(settings: WorkerSettings, *, metrics: Metrics | None = None) -> MonitorApp:
    """The monitor's faust app for ``settings`` (files are loaded and checked here, at start)."""
    thresholds = load_thresholds(settings.thresholds)
    boundaries = load_boundaries(settings.boundaries)
    metrics = metrics if metrics is not None else Metrics()
    metrics.expect_findings(thresholds)
    metrics.cap_labels(thresholds.max_values_per_label)
    credentials = _credentials(settings)
    app = MonitorApp(
        settings.group_id,
        broker=settings.broker_url,
        broker_credentials=credentials,
        value_serializer="raw",
        key_serializer="raw",
        store="memory://",
        datadir=_data_directory(settings.group_id),
        web_enabled=False,
        topic_partitions=settings.partitions,
        topic_allow_declare=False,
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=6.0,
        broker_heartbeat_interval=1.0,
        broker_rebalance_timeout=10.0,
        broker_commit_every=_NEVER,
        broker_commit_interval=_NEVER,
        producer_acks=-1,
        producer_max_request_size=PRODUCER_MAX_REQUEST_BYTES,
    )
    app.settings = settings
    app.metrics = metrics
    app.processor = StreamProcessor(thresholds, boundaries, metrics, embedder=_embedder(settings, thresholds), formats=settings.source_formats())
    metrics.embedder = app.processor.embedder
    app.sensors.add(_CommitTimer(metrics))
    app.revoked = set()  # source partitions taken away from this worker and not given back
    app.state_changed = asyncio.Event()  # pulsed whenever partitions are assigned or revoked
    # Held by the agent while it processes a group and by the checkpoint while it snapshots and commits:
    # otherwise records processed while a snapshot is being flushed are acked and committed, though the
    # snapshot does not hold them, and a crash then loses them from detector state.
    app.processing = asyncio.Lock()
    sources = app.topic(*settings.sources, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")
    alerts = app.topic(settings.alerts_topic, key_serializer="raw", value_serializer="raw")
    dead_letters = app.topic(settings.dlq_topic, key_serializer="raw", value_serializer="raw")
    rekeyed = app.topic(settings.topics[0], key_serializer="raw", value_serializer="raw") if settings.topics else None
    processor = app.processor

    async def publish(message, output) -> None:
        for key, value in output.alerts:
            await alerts.send(key=key, value=value)
        copied = _headers(message.headers, message.key) if message is not None else []
        for key, value, headers in output.dead_letters:
            await dead_letters.send(key=key, value=value, headers=copied + headers)
        for key, value in output.rekeyed:  # events decoded from OTLP, keyed by model or agent (StreamProcessor._rekey)
            await rekeyed.send(key=key, value=value)

    @app.agent(sources, name="aifm.monitor")
    async def monitor(stream):
        # Records are taken in groups and each group is processed in one go: the pipeline
        # then runs with warm caches instead of between faust's own steps. faust acks
        # (and our checkpoints commit) a group's offsets only once the whole group is processed.
        async for events in stream.take_events(TAKE_RECORDS, within=TAKE_WITHIN_SECONDS):
            async with app.processing:
                for event in events:
                    message = event.message
                    if not processor.has(message.topic, message.partition) and not await _wait_for_state(app, message.topic, message.partition):
                        continue  # the partition was revoked meanwhile: its new owner processes the record
                    output = processor.handle_safely(message.topic, message.partition, message.offset, message.value)
                    if output.alerts or output.dead_letters or output.rekeyed:
                        await _until_sent(publish, message, output, metrics)

    @app.on_partitions_assigned.connect
    async def on_assigned(app: MonitorApp, assigned, **kwargs) -> None:
        mine = sorted((tp.topic, tp.partition) for tp in assigned if tp.topic in settings.sources)
        new = [tp for tp in mine if tp not in processor.assigned]
        app.metrics.rebalances.inc()
        snapshots = await read_snapshots(settings, new)
        results = [processor.assign(topic, partition, snapshots.get((topic, partition))) for topic, partition in new]
        app.revoked.difference_update(mine)
        _pulse(app)
        log.info("assigned %d partition(s): %s", len(new), ", ".join(f"{t}[{p}] {r}" for (t, p), r in zip(new, results)) or "none new")

    @app.on_partitions_revoked.connect
    async def on_revoked(app: MonitorApp, revoked, **kwargs) -> None:
        mine = [(tp.topic, tp.partition) for tp in revoked if tp.topic in settings.sources]
        app.revoked.update(mine)
        await _write_final_snapshots(app, mine)
        _pulse(app)

    @app.on_before_shutdown.connect
    async def on_shutdown(app: MonitorApp, **kwargs) -> None:
        await _write_final_snapshots(app, processor.assigned)
        log.info("state snapshotted; shutting down")

    @app.timer(settings.snapshot_seconds)
    async def checkpoint() -> None:
        try:
            written = await asyncio.wait_for(_checkpoint_between_groups(app, publish), timeout=max(5.0, settings.snapshot_seconds))
        except Exception as error:  # the broker may be away: report, keep the state, try again next time
            reason = type(error).__name__
            metrics.broker_errors.inc()
            metrics.checkpoint_failures.labels(reason).inc()
            log.warning("checkpoint failed (%s); offsets stay uncommitted until the next one", reason)
            return
        if written:
            log.debug("checkpoint: %d snapshot(s)", written)

    @app.timer(5.0)
    async def health() -> None:
        app.refresh_metrics()
        try:
            await probe(settings, timeout=3.0)
            metrics.broker_up.set(1)
        except Exception as error:  # any failure to reach the broker is reported, never raised
            metrics.broker_up.set(0)
            metrics.broker_errors.inc()
            log.warning("broker %s unreachable (%s); the consumer keeps retrying", settings.bootstrap_servers, type(error).__name__)

    return app


async def _checkpoint_between_groups(app: MonitorApp, publish) -> int:
    """The checkpoint, taken while the agent is between groups: the commit then covers no record the snapshots lack."""
    async with app.processing:
        for output in app.processor.release_held():  # OTLP spans whose agent or log records did not come within an interval
            await publish(None, output)
        return await app.checkpoint()


async def _until_sent(publish, message, output, metrics: Metrics) -> None:
    """Publish, retrying with backoff while the broker is away: the record is acked only once its outputs are sent.

    An error the client calls not retriable (a message over the producer's size limit) is raised as before.
    """
    delay = 0.5
    while True:
        try:
            await publish(message, output)
            return
        except (TimeoutError, KafkaError, OSError) as error:
            if isinstance(error, KafkaError) and not error.retriable:
                raise
            metrics.broker_errors.inc()
            log.warning("could not publish a record's outputs (%s); retrying in %.1f s", type(error).__name__, delay)
            await asyncio.sleep(delay)
            delay = min(30.0, delay * 2)


async def _write_final_snapshots(app: MonitorApp, partitions: list[tuple[str, int]]) -> None:
    finals = [taken for topic, partition in partitions if (taken := app.processor.revoke(topic, partition)) is not None]
    if finals:
        try:
            await asyncio.wait_for(app.store_snapshots(finals), timeout=5.0)
        except Exception as error:  # timeout or broker error: the next owner resumes from the last checkpoint
            app.metrics.checkpoint_failures.labels(type(error).__name__).inc()
            log.warning("could not write %d final snapshot(s) (%s); state resumes from the last checkpoint", len(finals), type(error).__name__)


async def _wait_for_state(app: MonitorApp, topic: str, partition: int) -> bool:
    """Wait until the partition's snapshot is restored; False if the partition is revoked instead.

    faust may deliver a partition's first records before the assignment signal has
    restored its state; processing them on a fresh pipeline would fork the state.
    """
    while not app.processor.has(topic, partition):
        if (topic, partition) in app.revoked:
            return False
        await app.state_changed.wait()
    return True


def _pulse(app: MonitorApp) -> None:
    changed, app.state_changed = app.state_changed, asyncio.Event()
    changed.set()


def _data_directory(group_id: str) -> str:
    """faust writes a small data directory even with in-memory stores: keep it out of the cwd."""
    path = os.path.join(tempfile.gettempdir(), "aifm-faust", group_id)
    os.makedirs(path, exist_ok=True)
    return path


def _headers(headers: Any, key: bytes | None) -> list[tuple[str, bytes]]:
    """The record's own headers and key, copied onto its dead letters (the dead letter's key is its provenance).

    At most MAX_COPIED_HEADER_BYTES of them, so that a dead letter always fits the producer's limit.
    """
    copied: list[tuple[str, bytes]] = []
    budget = MAX_COPIED_HEADER_BYTES
    if key is not None:
        copied.append(("aifm.source.key", key[:budget]))
        budget -= len(copied[0][1])
    items = (headers.items() if isinstance(headers, dict) else headers) if headers else ()
    dropped = 0
    for k, v in items:
        value = v if isinstance(v, bytes) else str(v).encode()
        name = str(k)
        if len(name) + len(value) > budget:
            dropped += 1
            continue
        budget -= len(name) + len(value)
        copied.append((name, value))
    if dropped:
        copied.append(("aifm.headers_dropped", str(dropped).encode()))
    return copied


def _credentials(settings: WorkerSettings):
    if settings.security_protocol == "PLAINTEXT":
        return None
    options = client_options(settings)
    if settings.security_protocol.startswith("SASL"):
        return faust.SASLCredentials(
            username=settings.sasl_username,
            password=settings.sasl_password,
            ssl_context=options.get("ssl_context"),
            mechanism=settings.sasl_mechanism,
        )
    return faust.SSLCredentials(options["ssl_context"])

"""Kafka plumbing the worker needs outside faust: topics, snapshots, broker health.

Uses aiokafka (faust's own client) directly, without joining the consumer group.
"""

from __future__ import annotations

import asyncio
import logging
import ssl

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from monitor.worker.settings import SettingsError, WorkerSettings
from monitor.worker.snapshot_records import StoredSnapshot, assemble

log = logging.getLogger("aifm.worker")


def client_options(settings: WorkerSettings) -> dict:
    """Connection options shared by every aiokafka client the worker makes."""
    options: dict = {"bootstrap_servers": settings.bootstrap_servers, "security_protocol": settings.security_protocol}
    if settings.security_protocol in ("SSL", "SASL_SSL"):
        context = ssl.create_default_context(cafile=settings.ssl_cafile)
        if settings.ssl_certfile:
            context.load_cert_chain(settings.ssl_certfile, settings.ssl_keyfile)
        options["ssl_context"] = context
    if settings.security_protocol.startswith("SASL"):
        options.update(sasl_mechanism=settings.sasl_mechanism, sasl_plain_username=settings.sasl_username, sasl_plain_password=settings.sasl_password)
    return options


async def partition_counts(admin: AIOKafkaAdminClient, topics: list[str]) -> dict[str, int]:
    """Partition count of each existing topic among ``topics``."""
    existing = set(await admin.list_topics())
    wanted = [t for t in topics if t in existing]
    if not wanted:
        return {}
    described = await admin.describe_topics(wanted)
    return {entry["topic"]: len(entry["partitions"]) for entry in described if not entry.get("error_code")}


async def ensure_topics(settings: WorkerSettings) -> dict[str, int]:
    """Create missing topics; fail clearly when a state topic does not match its source.

    Source, alerts and dead-letter topics are created with ``settings.partitions``;
    each source's state topic with the source's own partition count, since snapshots
    of source partition p live in state partition p. Returns the source partition counts.
    """
    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    try:
        plain = [*settings.sources, settings.alerts_topic, settings.dlq_topic]
        counts = await partition_counts(admin, plain)
        missing = [NewTopic(t, settings.partitions, 1) for t in plain if t not in counts]
        await _create(admin, missing)
        counts = await partition_counts(admin, plain)
        state_topics = {settings.state_topic(t): t for t in settings.sources}
        state_counts = await partition_counts(admin, list(state_topics))
        for state_topic, source in state_topics.items():
            if state_topic in state_counts and state_counts[state_topic] != counts[source]:
                raise SettingsError(
                    f"topic {state_topic!r} has {state_counts[state_topic]} partitions but its source {source!r} has "
                    f"{counts[source]}: detector state is kept partition for partition, so they must match. "
                    f"Delete {state_topic!r} (its state is rebuilt from the stream) or restore the source's partition count."
                )
        await _create(
            admin,
            [NewTopic(s, counts[t], 1, topic_configs={"cleanup.policy": "compact"}) for s, t in state_topics.items() if s not in state_counts],
        )
        return {t: counts[t] for t in settings.sources}
    finally:
        await admin.close()


async def _create(admin: AIOKafkaAdminClient, topics: list[NewTopic]) -> None:
    if not topics:
        return
    try:
        await admin.create_topics(topics)
    except TopicAlreadyExistsError:
        pass  # another worker of the group created it first


async def wait_for_broker(settings: WorkerSettings, metrics=None, *, max_delay: float = 30.0) -> None:
    """Block until the brokers answer, retrying with exponential backoff and saying so."""
    delay = 0.5
    while True:
        try:
            await probe(settings)
            if metrics is not None:
                metrics.broker_up.set(1)
            return
        except (TimeoutError, KafkaError, OSError) as error:
            if metrics is not None:
                metrics.broker_up.set(0)
                metrics.broker_errors.inc()
            log.warning("broker %s unreachable (%s); retrying in %.1f s", settings.bootstrap_servers, type(error).__name__, delay)
            await asyncio.sleep(delay)
            delay = min(max_delay, delay * 2)


async def probe(settings: WorkerSettings, timeout: float = 5.0) -> None:
    """One metadata round trip; raises if the brokers do not answer in time."""
    admin = AIOKafkaAdminClient(**client_options(settings), request_timeout_ms=int(timeout * 1000))
    try:
        await asyncio.wait_for(admin.start(), timeout)
        await asyncio.wait_for(admin.list_topics(), timeout)
    finally:
        await admin.close()


async def log_end_offsets(consumer: AIOKafkaConsumer, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
    """Each partition's end offset, never understated.

    Some Kafka-compatible brokers (Tansu, the embedded one) answer ListOffsets with the
    base offset of the last batch, which would leave that batch unread. A fetch
    response's high watermark is right, so the larger of the two is taken. Leaves the
    partitions positioned at their end: callers seek where they want to read from.
    """
    listed = await consumer.end_offsets(tps)
    for tp in tps:
        consumer.seek(tp, listed[tp])
    await consumer.getmany(*tps, timeout_ms=500)
    return {tp: max(listed[tp], consumer.highwater(tp) or 0) for tp in tps}


async def read_snapshots(settings: WorkerSettings, partitions: list[tuple[str, int]], timeout: float = 30.0) -> dict[tuple[str, int], StoredSnapshot]:
    """The latest snapshot of each source partition, read from the state topics to their end.

    A state topic that does not exist (a new deployment, or a broker that lost its
    data) gives no snapshot. If the read does not finish within ``timeout`` the
    partitions start fresh, with a warning: their detectors re-learn from the stream.
    """
    if not partitions:
        return {}
    try:
        return await asyncio.wait_for(_read_snapshots(settings, partitions), timeout)
    except (TimeoutError, KafkaError) as error:
        log.warning("could not read detector snapshots (%s); %d partition(s) start fresh", type(error).__name__, len(partitions))
        return {}


async def _read_snapshots(settings: WorkerSettings, partitions: list[tuple[str, int]]) -> dict[tuple[str, int], StoredSnapshot]:
    records = await read_state_records(settings, partitions)
    stored = {source: assemble(*source, latest) for source, latest in records.items()}
    return {source: snapshot for source, snapshot in stored.items() if snapshot is not None}


async def read_state_records(settings: WorkerSettings, partitions: list[tuple[str, int]]) -> dict[tuple[str, int], dict[bytes, bytes]]:
    """The latest value of each key on the state partition of each source partition (what compaction keeps)."""
    wanted = {(settings.state_topic(topic), partition): (topic, partition) for topic, partition in partitions}
    consumer = AIOKafkaConsumer(**client_options(settings), enable_auto_commit=False, group_id=None, fetch_max_bytes=16 * 1024 * 1024)
    await consumer.start()
    latest: dict[tuple[str, int], dict[bytes, bytes]] = {}
    try:
        existing = await consumer.topics()
        tps = [
            TopicPartition(topic, partition)
            for topic, partition in wanted
            if topic in existing and partition in (consumer.partitions_for_topic(topic) or ())
        ]
        if not tps:
            return latest
        consumer.assign(tps)
        ends = await log_end_offsets(consumer, tps)
        await consumer.seek_to_beginning(*tps)
        remaining = {tp for tp in tps if ends[tp] > 0}
        while remaining:
            batches = await consumer.getmany(*remaining, timeout_ms=1000)
            for tp, records in batches.items():
                for record in records:
                    values = latest.setdefault(wanted[(tp.topic, tp.partition)], {})
                    if record.key is None:
                        continue
                    if record.value is None:
                        values.pop(record.key, None)  # a tombstone
                    else:
                        values[record.key] = record.value
                    if record.offset + 1 >= ends[tp]:
                        remaining.discard(tp)
            if not batches:
                for tp in list(remaining):
                    if await consumer.position(tp) >= ends[tp]:
                        remaining.discard(tp)
    finally:
        await consumer.stop()
    return latest

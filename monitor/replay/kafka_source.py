"""History straight from Kafka: a topic's records from a start offset or time to its current end.

Reads without a consumer group (nothing is committed, the live workers' group is
untouched), partition by partition, in chunks, so memory stays bounded. The end is the
end offset when reading starts: a replay of a live topic finishes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

from aiokafka import AIOKafkaConsumer, TopicPartition

from monitor.replay.reader import ReplayError
from monitor.worker.kafka import client_options, log_end_offsets
from monitor.worker.settings import WorkerSettings

_CHUNK = 2000
_MAX_EMPTY_POLLS = 30  # seconds without a record before a partition counts as stalled


class KafkaHistory:
    """The partitions of ``topic`` as replay sources: ``(name, iterator of (offset, value))``.

    ``start_offset`` applies to every partition; ``start_time`` (epoch seconds) starts
    each partition at its first record at or after that time; neither: the beginning.
    Use as a context manager: it owns an event loop and a consumer.
    """

    def __init__(self, settings: WorkerSettings, topic: str, *, start_offset: int | None = None, start_time: float | None = None):
        if start_offset is not None and start_time is not None:
            raise ValueError("give a start offset or a start time, not both")
        if start_offset is not None and start_offset < 0:
            raise ValueError(f"start offset must be >= 0, got {start_offset}")
        self.settings = settings
        self.topic = topic
        self.start_offset = start_offset
        self.start_time = start_time
        self._loop = asyncio.new_event_loop()
        self._consumer: AIOKafkaConsumer | None = None
        self._ranges: dict[TopicPartition, tuple[int, int]] = {}

    def __enter__(self) -> KafkaHistory:
        try:
            self._loop.run_until_complete(asyncio.wait_for(self._open(), 30))
        except Exception as error:
            self.close()
            raise ReplayError(f"kafka topic {self.topic!r} at {self.settings.bootstrap_servers}: cannot be read ({type(error).__name__}: {error})") from None
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    async def _open(self) -> None:
        consumer = self._consumer = AIOKafkaConsumer(**client_options(self.settings), group_id=None, enable_auto_commit=False)
        await consumer.start()
        if self.topic not in await consumer.topics():
            raise ReplayError(f"no such topic {self.topic!r}")
        tps = [TopicPartition(self.topic, p) for p in sorted(consumer.partitions_for_topic(self.topic) or ())]
        consumer.assign(tps)
        ends = await log_end_offsets(consumer, tps)
        starts = await consumer.beginning_offsets(tps)
        if self.start_time is not None:
            found = await consumer.offsets_for_times({tp: int(self.start_time * 1000) for tp in tps})
            starts = {tp: (found[tp].offset if found[tp] is not None else ends[tp]) for tp in tps}
        elif self.start_offset is not None:
            starts = {tp: max(starts[tp], min(self.start_offset, ends[tp])) for tp in tps}
        self._ranges = {tp: (starts[tp], ends[tp]) for tp in tps}

    def sources(self) -> list[tuple[str, Iterator[tuple[int, bytes]]]]:
        return [(f"kafka:{tp.topic}[{tp.partition}]", self._records(tp)) for tp in self._ranges]

    def _records(self, tp: TopicPartition) -> Iterator[tuple[int, bytes]]:
        start, end = self._ranges[tp]
        if start >= end:
            return
        consumer = self._consumer
        consumer.seek(tp, start)
        next_offset, empty_polls = start, 0
        while next_offset < end:
            batches = self._loop.run_until_complete(consumer.getmany(tp, timeout_ms=1000, max_records=_CHUNK))
            records = batches.get(tp, [])
            if not records:
                empty_polls += 1
                if empty_polls >= _MAX_EMPTY_POLLS:
                    raise ReplayError(f"kafka:{tp.topic}[{tp.partition}]: no records after offset {next_offset} although the end is {end}")
                continue
            empty_polls = 0
            for record in records:
                if record.offset >= end:
                    return
                yield record.offset, record.value if record.value is not None else b""
                next_offset = record.offset + 1

    def close(self) -> None:
        if self._consumer is not None:
            self._loop.run_until_complete(self._consumer.stop())
            self._consumer = None
        if not self._loop.is_closed():
            self._loop.close()

"""Reading historical logs: JSONL and .jsonl.gz files, in event-time order.

Each line is one record (an object or a batch array), decoded exactly as the worker
decodes a Kafka message. Files are read as streams; event-time order is restored with
a bounded reorder window per file and a merge across files, so memory stays bounded
however long the history is.
"""

from __future__ import annotations

import base64
import gzip
import heapq
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from monitor.events import Event, Reject, decode_record

LOG_SUFFIXES = (".jsonl", ".jsonl.gz", ".json", ".json.gz", ".ndjson", ".ndjson.gz")


class ReplayError(Exception):
    """A path that cannot be read as a log."""


@dataclass
class RejectedLine:
    source: str
    line: int
    reject: Reject
    record: bytes

    def to_json(self) -> dict:
        entry = {
            "source": self.source,
            "line": self.line,
            "index": self.reject.index,
            "reason": self.reject.reason,
            "detail": self.reject.detail,
        }
        try:
            entry["record"] = self.record.decode("utf-8")
        except UnicodeDecodeError:
            entry["record_base64"] = base64.b64encode(self.record).decode("ascii")
        return entry


def expand_paths(paths: Iterable[str | Path]) -> list[Path]:
    """Files named, and log files inside directories named; fails on anything unreadable."""
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.is_file() and p.name.endswith(LOG_SUFFIXES))
            if not found:
                raise ReplayError(f"{path}: directory holds no {', '.join(LOG_SUFFIXES)} files")
            files.extend(found)
        elif path.is_file():
            try:
                with path.open("rb"):
                    pass
            except OSError as error:
                raise ReplayError(f"{path}: cannot be read ({error.strerror})") from None
            files.append(path)
        else:
            raise ReplayError(f"{path}: no such file or directory")
    return files


def read_lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """(line number, raw bytes) for each non-blank line; gzip by magic bytes, not by name."""
    with path.open("rb") as probe:
        gzipped = probe.read(2) == b"\x1f\x8b"
    opener = gzip.open if gzipped else open
    number = 0
    try:
        with opener(path, "rb") as handle:
            for line in handle:
                number += 1
                if line.strip():
                    yield number, line
    except (OSError, EOFError, zlib.error) as error:
        raise ReplayError(f"{path}: unreadable after line {number} ({error})") from None


def events_in_order(
    source: str,
    lines: Iterable[tuple[int, bytes]],
    *,
    window: int,
    max_record_bytes: int,
    rejected: list[RejectedLine],
    order_stats: dict,
    decode: Callable[[bytes], tuple[list[Event], list[Reject]]] | None = None,
) -> Iterator[tuple[float, int, Event]]:
    """Decoded events of one source as (ts, sequence, event), reordered by ``ts`` within ``window`` events.

    ``lines`` yields (position, raw record): line numbers for a file, offsets for a
    Kafka partition; rejects are reported at that position.

    Events are buffered; when the buffer holds ``2 * window`` events it is sorted (a
    stable sort, linear on nearly ordered logs) and its first half is released. An
    event that arrives up to ``window`` events late is thus put back in place; one
    later than that is counted in ``order_stats["late"]`` and still processed. Events
    without ``ts`` sort at the latest timestamp seen before them. Rejected lines are
    appended to ``rejected``. ``decode`` turns a record into events and rejects
    (default: :func:`~monitor.events.decode_record`; a pipeline's own also reads OTLP).
    """
    if decode is None:
        def decode(raw: bytes) -> tuple[list[Event], list[Reject]]:
            return decode_record(raw, max_bytes=max_record_bytes)

    pending: list[tuple[float, int, Event]] = []
    sequence = 0
    last_ts = float("-inf")
    emitted = float("-inf")
    for number, line in lines:
        events, rejects = decode(line)
        for reject in rejects:
            rejected.append(RejectedLine(source, number, reject, line.rstrip(b"\r\n")))
        for event in events:
            ts = event.ts
            if ts is None:
                ts = last_ts
            elif ts > last_ts:
                last_ts = ts
            pending.append((ts, sequence, event))
            sequence += 1
        if len(pending) >= 2 * window:
            pending.sort(key=_by_ts)
            released, pending = pending[:window], pending[window:]
            if released[0][0] < emitted:
                order_stats["late"] += sum(1 for item in released if item[0] < emitted)
            emitted = released[-1][0]
            yield from released
    pending.sort(key=_by_ts)
    if pending and pending[0][0] < emitted:
        order_stats["late"] += sum(1 for item in pending if item[0] < emitted)
    yield from pending


def _by_ts(item: tuple[float, int, Event]) -> float:
    return item[0]


def merged_events(
    sources: list[tuple[str, Iterable[tuple[int, bytes]]]],
    *,
    window: int,
    max_record_bytes: int,
    rejected: list[RejectedLine],
    order_stats: dict,
    decode: Callable[[bytes, str], tuple[list[Event], list[Reject]]] | None = None,
) -> Iterator[Event]:
    """All sources' events (files, or partitions of a topic) merged into one event-time ordered stream.

    A source is (name, records) or (name, records, format); ``decode(raw, format)``
    decodes its records ("aifm" where no format is given).
    """
    streams = []
    for source in sources:
        name, lines = source[0], source[1]
        source_format = source[2] if len(source) > 2 else "aifm"
        per_source = None if decode is None else (lambda raw, fmt=source_format: decode(raw, fmt))
        streams.append(
            events_in_order(name, lines, window=window, max_record_bytes=max_record_bytes, rejected=rejected, order_stats=order_stats, decode=per_source)
        )
    if len(streams) == 1:
        return (event for _, _, event in streams[0])
    return (event for _, _, event in heapq.merge(*streams, key=lambda item: (item[0], item[1])))

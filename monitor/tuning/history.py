"""Replaying history once and keeping what every detector was fed: the input of a threshold sweep.

:class:`StreamRecorder` watches the production :class:`~monitor.pipeline.Pipeline`
through its observer hook: every value handed to a detector is also appended to that
stream's record, with its event time, and every model-version segment is marked. For embedding
drift the value recorded is what its CUSUM tests: the logarithm of the output's
distance to the reference centroid (none while the reference is learned). Sweeping a
detector's threshold then replays only these numbers through fresh detectors of the
same class, which is exact (same values, same order, same segments, same minimum-sample
floor) and costs one detector update per value instead of a whole pipeline per event.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass, field

from monitor.replay.run import ReplayReport, replay

_NUMBERS = (float, int, bool)


@dataclass
class StreamRecord:
    """The values one detector saw on one key: event times, values, and segment starts (indices)."""

    signal: str
    detector: str
    key: dict[str, str]
    ts: array = field(default_factory=lambda: array("d"))
    values: array = field(default_factory=lambda: array("d"))
    segments: list[int] = field(default_factory=list)

    @property
    def label(self) -> str:
        return ",".join(f"{name}={value}" for name, value in sorted(self.key.items()))


class StreamRecorder:
    """A :class:`~monitor.pipeline.StreamObserver` that keeps each detector's input stream (for ``aifm tune`` and reports)."""

    def __init__(self) -> None:
        self.records: dict[int, StreamRecord] = {}

    def _record(self, key: dict[str, str], stream) -> StreamRecord:
        record = self.records.get(id(stream))
        if record is None:
            record = self.records[id(stream)] = StreamRecord(stream.signal, stream.detector_name, dict(key))
        return record

    def fed(self, key: dict[str, str], stream, value, ts: float) -> None:
        if value.__class__ not in _NUMBERS:
            value = stream.detector.last_tested  # an embedding: what its CUSUM tested (None while learning the reference)
            if value is None:
                return
        record = self._record(key, stream)
        record.ts.append(ts)
        record.values.append(value)

    def segmented(self, key: dict[str, str], streams) -> None:
        for stream in streams:
            record = self._record(key, stream)
            record.segments.append(len(record.values))


@dataclass
class History:
    """What one replay of history yields for tuning."""

    report: ReplayReport
    streams: list[StreamRecord]
    start: float
    end: float

    @property
    def days(self) -> float:
        return max(self.end - self.start, 1.0) / 86400.0

    def by_signal(self, signal: str) -> list[StreamRecord]:
        return [record for record in self.streams if record.signal == signal]


def record_history(paths, *, thresholds, boundaries, sources=None, findings_out=None, embedder=None) -> History:
    """Replay ``paths`` (and Kafka ``sources``) once through a recording pipeline."""
    recorder = StreamRecorder()
    report = replay(paths, thresholds=thresholds, boundaries=boundaries, sources=sources, findings_out=findings_out, observer=recorder, embedder=embedder)
    streams = [record for record in recorder.records.values() if record.values]
    starts = [record.ts[0] for record in streams]
    ends = [record.ts[-1] for record in streams]
    return History(report=report, streams=streams, start=min(starts, default=0.0), end=max(ends, default=0.0))

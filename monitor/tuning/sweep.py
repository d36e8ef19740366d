"""Sweeping a detector's decision threshold ``h`` over recorded streams, and choosing one.

For each candidate ``h`` the recorded values of every key go through a fresh detector
of the configured class and parameters (only ``h`` differs), with the same segments
and the same minimum-sample floor as the worker. Alarms are scored against labelled
incidents (or, without labels, all count as false alarms on history assumed clean).
The smallest ``h`` whose false alarms fit the budget divided by a safety margin is
found, and the next ``h`` of the grid is chosen. Both guard the budget on histories not
yet seen: measuring exactly at the budget would exceed it on about half of them by
Poisson noise alone, and false-alarm rates vary between histories more than that,
because each detector's reference is learned from a few hundred warm-up values (on
three simulated clean histories of 0.35 days, latency false alarms at one ``h`` ranged
from 1 to 11; the margin alone let two of six train/test pairs exceed the budget, the
extra grid step none).
"""

from __future__ import annotations

import math
import statistics
from bisect import bisect_left
from dataclasses import dataclass, field

from monitor.detectors import build_detector
from monitor.replay.scoring import LabelledIncident
from monitor.thresholds import SignalConfig
from monitor.tuning.history import History, StreamRecord

GRIDS = {
    "bernoulli_cusum": (2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0, 14.0, 16.0, 20.0),
    "cusum": (4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0, 14.0, 16.0, 18.0, 20.0, 24.0),
    "embedding_drift": (8.0, 10.0, 12.0, 14.0, 16.0, 18.0, 20.0, 24.0, 28.0, 32.0),
    "event_rate": (4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0, 14.0, 16.0, 18.0, 20.0, 24.0),
}


@dataclass(frozen=True)
class Alarm:
    stream: StreamRecord
    index: int

    @property
    def ts(self) -> float:
        return self.stream.ts[self.index]


@dataclass
class Detection:
    incident: LabelledIncident
    alarm: Alarm
    delay_seconds: float
    delay_events: int  # values of the alarmed key between the incident's start and the alarm


@dataclass
class Point:
    """The outcome of one ``h`` on one signal."""

    h: float
    alarms: list[Alarm]
    false_alarms: list[Alarm]
    detections: list[Detection]
    missed: list[LabelledIncident]
    days: float

    @property
    def false_alarms_per_day(self) -> float:
        return len(self.false_alarms) / self.days

    @property
    def median_delay_events(self) -> float | None:
        return statistics.median(d.delay_events for d in self.detections) if self.detections else None

    @property
    def median_delay_seconds(self) -> float | None:
        return statistics.median(d.delay_seconds for d in self.detections) if self.detections else None


@dataclass
class SignalTuning:
    signal: str
    method: str
    previous_h: float
    chosen: Point
    curve: list[Point]
    budget_per_day: float
    margin: float
    labelled: bool
    events: int  # values the signal's detectors saw
    budget_met: bool = True
    notes: list[str] = field(default_factory=list)
    stream: str | None = None  # a stream with a detector of its own (``streams.<name>``), else the signal's detector
    burst_offset: float | None = None  # a Bernoulli burst sum's burst_h - h, kept as h moves

    @property
    def chosen_burst_h(self) -> float | None:
        return None if self.burst_offset is None else self.chosen.h + self.burst_offset

    @property
    def name(self) -> str:
        """The signal, or ``signal/stream`` for a stream's own detector."""
        return self.signal if self.stream is None else f"{self.signal}/{self.stream}"

    @property
    def previous(self) -> Point:
        return next(point for point in self.curve if point.h == self.previous_h)


def replay_stream(record: StreamRecord, method: str, params: dict, min_samples: int) -> list[int]:
    """Indices at which a fresh detector alarms on ``record`` (floor applied), exactly as the pipeline would.

    Embedding drift is replayed as its CUSUM on the recorded log distances, which is exact
    up to the first alarm; after one, the real detector learns a new reference centroid
    from the next ``reference`` vectors, approximated here by skipping as many distances
    (the recorded ones were measured against the reference of the recorded run).
    """
    skip_after_alarm, offset = 0, 0
    detector = build_detector(method, params)
    if method == "embedding_drift":
        skip_after_alarm = offset = detector.reference  # the floor counts the reference's vectors too
        detector = detector.distance_cusum
    update = detector.update
    alarms = []
    bounds = [*record.segments, len(record.values)]
    start = 0
    values, times = record.values, record.ts
    skip_until = -1
    for end in bounds:
        if start and start in record.segments:
            detector.segment()
        for index in range(start, end):
            if index < skip_until:
                continue
            if update(values[index], times[index]).drift_detected:
                if index + 1 + offset >= min_samples:
                    alarms.append(index)
                skip_until = index + 1 + skip_after_alarm
        start = end
    return alarms


def score(signal: str, h: float, alarms: list[Alarm], incidents: list[LabelledIncident], days: float) -> Point:
    mine = [incident for incident in incidents if incident.signal == signal]
    false_alarms: list[Alarm] = []
    first: dict[int, Alarm] = {}  # incident number -> its earliest alarm
    for alarm in alarms:
        ts = alarm.ts
        matched = False
        for number, incident in enumerate(mine):
            if incident.start <= ts <= incident.end and all(alarm.stream.key.get(k) == v for k, v in incident.key.items()):
                matched = True
                if number not in first or ts < first[number].ts:
                    first[number] = alarm
        if not matched:
            false_alarms.append(alarm)
    detections = []
    for number, alarm in sorted(first.items()):
        incident = mine[number]
        before = bisect_left(alarm.stream.ts, incident.start)
        detections.append(Detection(incident, alarm, alarm.ts - incident.start, alarm.index - before + 1))
    missed = [incident for number, incident in enumerate(mine) if number not in first]
    return Point(h=h, alarms=alarms, false_alarms=false_alarms, detections=detections, missed=missed, days=days)


def streams_of(history: History, signal: str, config: SignalConfig, stream: str | None = None) -> list[StreamRecord]:
    """The records a detector saw: one stream's own (``stream``), or those of the signal's shared detector."""
    records = history.by_signal(signal)
    if stream is not None:
        return [record for record in records if record.detector == stream]
    return [record for record in records if record.detector not in config.stream_detectors]


def burst_offset(params: dict) -> float | None:
    """How far a burst sum's own threshold lies above ``h``; the sweep moves both together."""
    if params.get("burst_ratio") is None:
        return None
    return float(params.get("burst_h", params["h"])) - float(params["h"])


def sweep_signal(
    history: History, signal: str, config: SignalConfig, incidents: list[LabelledIncident], grid: tuple[float, ...] | None = None, stream: str | None = None
) -> list[Point]:
    spec = config.detector_for(stream)
    grid = sorted({*(grid or GRIDS[spec.method]), float(spec.params["h"])})
    streams = streams_of(history, signal, config, stream)
    points = []
    offset = burst_offset(spec.params)
    for h in grid:
        params = {**spec.params, "h": h}
        if offset is not None:
            params["burst_h"] = h + offset
        alarms = [Alarm(record, index) for record in streams for index in replay_stream(record, spec.method, params, config.min_samples)]
        points.append(score(signal, h, alarms, incidents, history.days))
    return points


SAFETY_STEPS = 1


def choose(points: list[Point], budget_per_day: float, margin: float) -> tuple[Point, bool]:
    """One grid step above the smallest ``h`` whose false alarms fit ``budget / margin``; else the largest ``h`` (budget not met)."""
    allowed = budget_per_day * points[0].days / margin
    ordered = sorted(points, key=lambda p: p.h)
    for index, point in enumerate(ordered):
        if len(point.false_alarms) <= allowed:
            return ordered[min(index + SAFETY_STEPS, len(ordered) - 1)], True
    return ordered[-1], False


def tune_signal(
    history: History, signal: str, config: SignalConfig, incidents: list[LabelledIncident], *, budget_per_day: float, margin: float, stream: str | None = None
) -> SignalTuning:
    curve = sweep_signal(history, signal, config, incidents, stream=stream)
    chosen, met = choose(curve, budget_per_day, margin)
    spec = config.detector_for(stream)
    tuning = SignalTuning(
        signal=signal,
        stream=stream,
        method=spec.method,
        previous_h=float(spec.params["h"]),
        chosen=chosen,
        curve=curve,
        budget_per_day=budget_per_day,
        margin=margin,
        labelled=bool(incidents),
        events=sum(len(record.values) for record in streams_of(history, signal, config, stream)),
        budget_met=met,
        burst_offset=burst_offset(spec.params),
    )
    if not met:
        tuning.notes.append(f"no h in the grid keeps false alarms within {budget_per_day:g}/day / margin {margin:g}; kept the largest, h = {chosen.h:g}")
    shown = poisson_upper(len(chosen.false_alarms), 0.8) / history.days
    if shown > budget_per_day:
        tuning.notes.append(
            f"{history.days:.2f} days of history only show <= {shown:.3g} false alarms/day at 80% confidence ({len(chosen.false_alarms)} seen); replay a longer history to show {budget_per_day:g}/day"
        )
    return tuning


def poisson_upper(count: int, confidence: float) -> float:
    """Upper confidence bound of a Poisson mean after observing ``count`` events.

    >>> round(poisson_upper(0, 0.8), 3)
    1.609
    """
    low, high = 0.0, count + 10.0 * math.sqrt(count + 1) + 10.0
    for _ in range(100):
        mean = (low + high) / 2
        cdf = sum(math.exp(-mean + k * math.log(mean) - math.lgamma(k + 1)) for k in range(count + 1)) if mean > 0 else 1.0
        if cdf > 1 - confidence:
            low = mean
        else:
            high = mean
    return (low + high) / 2

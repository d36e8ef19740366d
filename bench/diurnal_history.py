"""Incident-free and incident-bearing histories whose traffic follows a day and a week.

Real serving is not stationary: load peaks in the afternoon (here 4x the 3 a.m. trough,
0.7x on weekends), latency rises with load, rate limits get likelier at the peak, the
night's users are refused more often and get longer answers. None of that is an
incident, and a detector that pages at every daily peak gets muted within a week.

The incidents are out of place for their hour: a latency rise at night, a refusal rise
at midday, a burst of rate limits in the early morning, a runaway agent (10x its
calls) and a prompt template change that halves one model's input tokens. Each is
labelled as ``monitor.replay.scoring`` reads labels. Used by ``bench/bench_diurnal.py``
and the detector tests.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

from monitor.replay.scoring import LabelledIncident
from monitor.replay.simulate import START, _Traffic

DAY = 86400.0
#: Events per second at the daily trough (3 a.m. UTC); the afternoon peak has 4x as many.
TROUGH_EVENTS_PER_SECOND = 1.0


def load_at(ts: float) -> float:
    """Traffic relative to the trough: 1 at 3 a.m., 4 at 3 p.m., times 0.7 on Saturdays and Sundays.

    The weekend's factor comes and goes over the six hours around midnight: traffic does
    not step at 00:00.
    """
    hour = (ts % DAY) / 3600.0
    daily = 2.5 - 1.5 * math.cos(2 * math.pi * (hour - 3.0) / 24.0)
    return daily * (0.7 + 0.3 * (1.0 - _weekend(ts)))


def _weekend(ts: float) -> float:
    """1 on Saturdays and Sundays, 0 on weekdays, linear over the three hours either side of their midnights."""
    def day_is_weekend(at: float) -> float:
        return 1.0 if (int(at // DAY) + 3) % 7 >= 5 else 0.0  # 1970-01-01 was a Thursday: 0 is Monday

    hour = (ts % DAY) / 3600.0
    if hour < 3.0:  # from the day before toward this one
        return day_is_weekend(ts - DAY) + (day_is_weekend(ts) - day_is_weekend(ts - DAY)) * (hour + 3.0) / 6.0
    if hour > 21.0:
        return day_is_weekend(ts) + (day_is_weekend(ts + DAY) - day_is_weekend(ts)) * (hour - 21.0) / 6.0
    return day_is_weekend(ts)


@dataclass(frozen=True)
class DiurnalIncident:
    signal: str
    key: dict
    day: int
    hour: float
    minutes: float

    def window(self, start: float) -> tuple[float, float]:
        begin = start + self.day * DAY + self.hour * 3600.0
        return begin, begin + self.minutes * 60.0


#: Incidents out of place for their hour (days counted from the history's first midnight).
INCIDENTS = (
    DiurnalIncident("latency", {"model": "llama-3-70b"}, day=2, hour=3.5, minutes=60),
    DiurnalIncident("refusal", {"model": "gpt-4o"}, day=3, hour=12.0, minutes=60),
    DiurnalIncident("error_rate", {"model": "gpt-4o"}, day=4, hour=5.0, minutes=30),
    DiurnalIncident("usage", {"agent": "research-agent"}, day=5, hour=2.0, minutes=30),
    DiurnalIncident("usage", {"model": "claude-sonnet"}, day=6, hour=10.0, minutes=120),
)


class _DiurnalTraffic(_Traffic):
    """The simulator's traffic with its conditions set by the hour before each event."""

    def __init__(self, seed: int, incidents: tuple[DiurnalIncident, ...], start: float):
        super().__init__(seed)
        self.ts = start
        self.windows = [(incident, *incident.window(start)) for incident in incidents]

    def active(self, signal: str) -> DiurnalIncident | None:
        for incident, begin, end in self.windows:
            if incident.signal == signal and begin <= self.ts < end:
                return incident
        return None

    def set_conditions(self) -> None:
        load = load_at(self.ts)
        busy = (load - 1.0) / 3.0  # 0 at the trough, 1 at a weekday peak
        self.events_per_second = TROUGH_EVENTS_PER_SECOND * load
        runaway = self.active("usage")
        if runaway is not None and "agent" in runaway.key:
            self.events_per_second *= 1.6  # the agent's 10x calls, on top of everyone else's
        self.latency_factor = 1.0 + 0.35 * busy
        self.error_rate = 0.003 + 0.009 * busy
        self.refusal_rate = 0.035 - 0.015 * busy
        self.median_tokens = 170 - 50 * busy

    def model_call(self, active):
        event = super().model_call(None)
        model = event["model"]
        incident = self.active("latency")
        if incident is not None and incident.key["model"] == model:
            event["latency_ms"] = round(event["latency_ms"] * 1.6, 1)
        incident = self.active("refusal")
        if incident is not None and incident.key["model"] == model and self.content_rng.random() < 0.04:
            event["output_text"] = "I'm sorry, but I can't help with that request."
        incident = self.active("error_rate")
        if incident is not None and incident.key["model"] == model and "error_type" not in event and self.content_rng.random() < 0.036:
            event["error_type"] = "rate_limit_exceeded"
            event["output_text"] = ""
            event.pop("embedding", None)
        incident = self.active("usage")
        if incident is not None and incident.key.get("model") == model:
            event["input_tokens"] = max(1, event["input_tokens"] // 2)
        return event


def history_start() -> float:
    """The histories' first midnight: the Monday after the simulator's START."""
    return START - START % DAY + 7 * DAY - ((int(START // DAY) + 3) % 7) * DAY  # 1970-01-01 was a Thursday


def diurnal_events(days: float, *, seed: int = 5, incidents: bool = True) -> Iterator[dict]:
    """The events of ``days`` of traffic from a Monday midnight, in time order."""
    start = history_start()
    traffic = _DiurnalTraffic(seed, INCIDENTS if incidents else (), start)
    rng = traffic.rng
    end = start + days * DAY
    while traffic.ts < end:
        traffic.set_conditions()
        roll = rng.random()
        runaway = traffic.active("usage")
        agent_runaway = runaway is not None and "agent" in runaway.key
        if agent_runaway and roll < 0.375:
            event = traffic.common("tool_call", runaway.key["agent"])
            event.update(tool="web_search", status="ok", latency_ms=120.0, args_hash=f"{traffic.sequence:016x}", result={"ok": True, "items": 3})
        else:
            # A roll of its own: everyone else's traffic keeps its mix of model calls, tool calls and feedback.
            event = traffic.next_event(rng.random() if agent_runaway else roll, None)
        yield event


def diurnal_labels(days: float) -> list[LabelledIncident]:
    """The labels of the incidents that fall within ``days``."""
    start = history_start()
    labels = []
    for incident in INCIDENTS:
        if incident.day < days:
            begin, end = incident.window(start)
            labels.append(LabelledIncident(incident.signal, incident.key, begin, end))
    return labels

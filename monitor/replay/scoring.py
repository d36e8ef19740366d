"""Scoring findings against labelled incidents (``incidents.jsonl``).

An incident is ``{"signal", "key", "start", "end"}``. A finding detects it when the
signals are equal, every label of the incident's key has the same value in the
finding's key, and the finding's time lies within [start, end]. Findings matching no
incident are false alarms (model-version annotations are not findings and never count).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from monitor.events import SchemaError, parse_ts
from monitor.findings import Finding


class IncidentsError(ValueError):
    """The incidents file is unreadable or malformed."""


@dataclass(frozen=True)
class LabelledIncident:
    signal: str
    key: dict
    start: float
    end: float

    def matches(self, finding: Finding) -> bool:
        return (
            finding.signal == self.signal
            and finding.ts is not None
            and self.start <= finding.ts <= self.end
            and all(finding.key.get(name) == value for name, value in self.key.items())
        )


@dataclass
class IncidentScore:
    detected: list[tuple[LabelledIncident, float]]  # (incident, delay in seconds)
    missed: list[LabelledIncident]
    false_alarms: list[Finding]

    def format(self) -> str:
        total = len(self.detected) + len(self.missed)
        lines = [f"labelled incidents detected: {len(self.detected)}/{total}; findings outside incidents: {len(self.false_alarms)}"]
        for incident, delay in self.detected:
            key = ",".join(f"{k}={v}" for k, v in sorted(incident.key.items()))
            lines.append(f"  detected {incident.signal:14} {key:40} after {delay:7.1f} s")
        for incident in self.missed:
            key = ",".join(f"{k}={v}" for k, v in sorted(incident.key.items()))
            lines.append(f"  MISSED   {incident.signal:14} {key}")
        for finding in self.false_alarms:
            key = ",".join(f"{k}={v}" for k, v in sorted(finding.key.items()))
            lines.append(f"  outside any incident: {finding.alert} {key} event {finding.event_id}")
        return "\n".join(lines)


def load_incidents(path: str | Path) -> list[LabelledIncident]:
    incidents = []
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise IncidentsError(f"{path}: cannot read the incidents file ({error.strerror})") from None
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
            incident = LabelledIncident(
                signal=str(raw["signal"]),
                key={str(k): str(v) for k, v in raw["key"].items()},
                start=parse_ts(raw["start"]),
                end=parse_ts(raw["end"]),
            )
        except (ValueError, KeyError, TypeError, AttributeError, SchemaError) as error:
            raise IncidentsError(f"{path}:{number}: expected signal, key, start, end ({error})") from None
        incidents.append(incident)
    return incidents


def score(findings: list[Finding], incidents: list[LabelledIncident]) -> IncidentScore:
    alerts = [f for f in findings if f.type == "finding"]
    detected, missed = [], []
    for incident in incidents:
        times = [f.ts for f in alerts if incident.matches(f)]
        if times:
            detected.append((incident, min(times) - incident.start))
        else:
            missed.append(incident)
    false_alarms = [f for f in alerts if not any(incident.matches(f) for incident in incidents)]
    return IncidentScore(detected, missed, false_alarms)

"""The ``alerting`` section of thresholds.yaml: how findings and the monitor's health become pages.

The detectors decide *whether* something changed (their thresholds live with each
signal); this section decides how the generated Prometheus rules turn that into
alerts: which scrape job to select, how long a finding keeps its alert firing, and the
limits of the monitor's own health (lag, dead letters, stale state).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


def duration_seconds(text: str) -> int:
    """Seconds in a Prometheus duration such as ``15m``, ``1h30m`` or ``90s``.

    >>> duration_seconds("1h30m"), duration_seconds("45s")
    (5400, 45)
    """
    match = _DURATION.match(text) if isinstance(text, str) else None
    if not match or not any(match.groups()):
        raise ValueError(f"expected a duration such as 30s, 5m or 1h, got {text!r}")
    hours, minutes, seconds = (int(group or 0) for group in match.groups())
    return hours * 3600 + minutes * 60 + seconds


@dataclass(frozen=True)
class MonitorLimits:
    """Limits of the monitor's own health, each with the ``for:`` of its alert."""

    no_events_for: str
    worker_down_for: str
    lag_messages: int
    lag_for: str
    dead_letter_ratio: float
    dead_letter_for: str
    state_stale_seconds: int
    state_stale_for: str
    checkpoint_failure_window: str


@dataclass(frozen=True)
class AlertingConfig:
    selector: str
    runbook_url: str
    finding_hold: str
    finding_for: str
    monitor: MonitorLimits
    #: Alert name -> why its threshold is what it is, for the monitor's alerts and annotations (a signal's own is its ``why``).
    why: dict[str, str] = field(default_factory=dict)

    @property
    def finding_hold_seconds(self) -> int:
        return duration_seconds(self.finding_hold)


DEFAULTS: dict[str, Any] = {
    "selector": 'job="aifm"',
    "why": {},
    "runbook_url": "https://github.com/ai-failure-monitor/ai-failure-monitor/blob/main/alerts/RUNBOOK.md",
    "finding_hold": "15m",
    "finding_for": "1m",
    "monitor": {
        "no_events_for": "15m",
        "worker_down_for": "5m",
        "lag_messages": 10000,
        "lag_for": "15m",
        "dead_letter_ratio": 0.01,
        "dead_letter_for": "10m",
        "state_stale_seconds": 300,
        "state_stale_for": "5m",
        "checkpoint_failure_window": "10m",
    },
}

_MONITOR_TYPES = {
    "no_events_for": "duration",
    "worker_down_for": "duration",
    "lag_messages": "count",
    "lag_for": "duration",
    "dead_letter_ratio": "ratio",
    "dead_letter_for": "duration",
    "state_stale_seconds": "count",
    "state_stale_for": "duration",
    "checkpoint_failure_window": "duration",
}


def parse_alerting(raw: Any, fail) -> AlertingConfig:
    """Validate the section; ``fail(where, message)`` builds the error to raise."""
    raw = {} if raw is None else raw
    if not isinstance(raw, dict):
        raise fail("alerting", f"expected a mapping, got {type(raw).__name__}")
    unknown = sorted(set(raw) - set(DEFAULTS))
    if unknown:
        raise fail("alerting", f"unknown setting(s) {', '.join(unknown)}; allowed: {', '.join(sorted(DEFAULTS))}")
    merged = {**DEFAULTS, **raw}
    selector = merged["selector"]
    if not isinstance(selector, str) or not re.fullmatch(r'\s*[a-zA-Z_]\w*\s*(=|!=|=~|!~)\s*"[^"]*"(\s*,\s*[a-zA-Z_]\w*\s*(=|!=|=~|!~)\s*"[^"]*")*\s*', selector):
        raise fail("alerting.selector", f'expected PromQL label matchers such as job="aifm", got {selector!r}')
    if not isinstance(merged["runbook_url"], str) or not merged["runbook_url"].startswith(("http://", "https://")):
        raise fail("alerting.runbook_url", f"expected an http(s) URL, got {merged['runbook_url']!r}")
    for name in ("finding_hold", "finding_for"):
        _duration(merged[name], f"alerting.{name}", fail)
    if duration_seconds(merged["finding_for"]) >= duration_seconds(merged["finding_hold"]):
        raise fail("alerting.finding_for", f"must be shorter than finding_hold ({merged['finding_hold']}), or no finding alert could ever fire")
    monitor_raw = merged["monitor"] if "monitor" in raw else {}
    if not isinstance(monitor_raw, dict):
        raise fail("alerting.monitor", f"expected a mapping, got {type(monitor_raw).__name__}")
    unknown = sorted(set(monitor_raw) - set(_MONITOR_TYPES))
    if unknown:
        raise fail("alerting.monitor", f"unknown setting(s) {', '.join(unknown)}; allowed: {', '.join(sorted(_MONITOR_TYPES))}")
    monitor = {**DEFAULTS["monitor"], **monitor_raw}
    for name, kind in _MONITOR_TYPES.items():
        value, where = monitor[name], f"alerting.monitor.{name}"
        if kind == "duration":
            _duration(value, where, fail)
        elif kind == "count" and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            raise fail(where, f"expected an integer >= 1, got {value!r}")
        elif kind == "ratio":
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1:
                raise fail(where, f"must lie in (0, 1), got {value!r}")
            monitor[name] = float(value)
    why = merged["why"]
    if not isinstance(why, dict) or not all(isinstance(name, str) and isinstance(text, str) and text.strip() for name, text in why.items()):
        raise fail("alerting.why", "expected a mapping of alert names to one-line reasons")
    return AlertingConfig(
        selector=selector.strip(),
        runbook_url=merged["runbook_url"],
        finding_hold=merged["finding_hold"],
        finding_for=merged["finding_for"],
        monitor=MonitorLimits(**monitor),
        why={name: " ".join(text.split()) for name, text in why.items()},
    )


def _duration(value: Any, where: str, fail) -> None:
    try:
        if duration_seconds(value) == 0:
            raise ValueError(f"must be longer than 0s, got {value!r}")
    except ValueError as error:
        raise fail(where, str(error)) from None

"""Keeps ``alerts/RUNBOOK.md`` (and the README's signal table) in step with the generated rules.

The runbook's prose is written by people; what comes from thresholds.yaml is generated
between markers: the alerts table (``<!-- aifm:alerts-table -->``) and, in each
alert's section, its current settings (``<!-- aifm:threshold NAME -->``). Every alert
must have a section (``## NAME``) with the subsections an engineer at 3 AM needs. The
README's signal table (``<!-- aifm:signals-table -->``) is the signal registry's.
"""

from __future__ import annotations

import re

from monitor.alerting.catalog import Alert
from monitor.signals import REGISTRY

REQUIRED_SUBSECTIONS = ("Meaning", "Impact", "Diagnosis", "Mitigation", "Why this threshold")
_TABLE = re.compile(r"(<!-- aifm:alerts-table -->\n).*?(<!-- /aifm:alerts-table -->)", re.DOTALL)
_SIGNALS_TABLE = re.compile(r"(<!-- aifm:signals-table -->\n).*?(<!-- /aifm:signals-table -->)", re.DOTALL)
_KEY_WORDS = {("model",): "model", ("agent",): "agent", ("agent", "tool"): "agent and tool", ("model", "agent"): "model and agent"}


class RunbookError(ValueError):
    """The runbook lacks a section or subsection an alert needs."""


def alerts_table(alerts: list[Alert], runbook_link: str = "") -> str:
    """Markdown table: alert, severity, what fires it (from thresholds.yaml), for, why."""
    lines = ["| Alert | Severity | Fires on (from thresholds.yaml) | for | Why |", "|---|---|---|---|---|"]
    for alert in alerts:
        lines.append(f"| [{alert.name}]({runbook_link}#{alert.anchor}) | {alert.severity} | {alert.threshold} | {alert.for_} | {alert.why} |")
    return "\n".join(lines) + "\n"


def signals_table(thresholds, runbook_link: str) -> str:
    """Markdown table of every registered signal: what it proxies, and per stream its alert, detector and key."""
    lines = ["| signal | proxies | findings: alert (detector, per key) |", "|---|---|---|"]
    for spec in REGISTRY:
        config = thresholds.signals.get(spec.name)
        findings = []
        for stream in spec.streams:
            detector = config.detector_for(stream.detector) if config is not None and stream.slot is not None else None
            how = detector.method if detector is not None else "every violation" if spec.in_thresholds else "annotation, no alert routed"
            findings.append(f"[{stream.alert}]({runbook_link}#{stream.alert.lower()}) ({how}, per {_KEY_WORDS[stream.keys]})")
        lines.append(f"| `{spec.name}` | {spec.proxies} | {'<br>'.join(findings)} |")
    return "\n".join(lines) + "\n"


def refresh_signals_table(markdown: str, thresholds, link: str) -> str:
    if not _SIGNALS_TABLE.search(markdown):
        raise RunbookError("missing the markers '<!-- aifm:signals-table -->' ... '<!-- /aifm:signals-table -->'")
    return _SIGNALS_TABLE.sub(lambda m: m.group(1) + signals_table(thresholds, link) + m.group(2), markdown, count=1)


def threshold_block(alert: Alert, hold: str) -> str:
    lines = [f"<!-- aifm:threshold {alert.name} -->", f"- Severity: **{alert.severity}**; `for: {alert.for_}`."]
    if alert.why:
        lines.append(f"- Why (thresholds.yaml): {alert.why}.")
    if alert.group == "findings":
        lines.append(f"- Fires on: {alert.threshold}; the alert stays firing for {hold} after the latest finding (`alerting.finding_hold`).")
    else:
        lines.append(f"- Fires on: {alert.threshold}.")
    lines += ["- Expression:", "", "  ```promql", *(f"  {line}" for line in alert.expr.splitlines()), "  ```", "<!-- /aifm:threshold -->"]
    return "\n".join(lines)


def refresh(markdown: str, alerts: list[Alert], hold: str, table_link: str = "") -> str:
    """The runbook with its generated parts rewritten; raises :class:`RunbookError` if a section is missing."""
    problems = []
    for alert in alerts:
        section = _section(markdown, alert.name)
        if section is None:
            problems.append(f"no section '## {alert.name}'")
            continue
        for heading in REQUIRED_SUBSECTIONS:
            if not re.search(rf"^### {re.escape(heading)}\s*$", section, re.MULTILINE):
                problems.append(f"section {alert.name} lacks '### {heading}'")
        block = re.compile(rf"<!-- aifm:threshold {alert.name} -->.*?<!-- /aifm:threshold -->", re.DOTALL)
        if not block.search(section):
            problems.append(f"section {alert.name} lacks the marker '<!-- aifm:threshold {alert.name} -->' ... '<!-- /aifm:threshold -->'")
            continue
        markdown = block.sub(threshold_block(alert, hold).replace("\\", "\\\\"), markdown, count=1)
    if problems:
        raise RunbookError("alerts/RUNBOOK.md: " + "; ".join(problems))
    return refresh_table(markdown, alerts, table_link)


def refresh_table(markdown: str, alerts: list[Alert], link: str) -> str:
    if not _TABLE.search(markdown):
        raise RunbookError("missing the markers '<!-- aifm:alerts-table -->' ... '<!-- /aifm:alerts-table -->'")
    return _TABLE.sub(lambda m: m.group(1) + alerts_table(alerts, link) + m.group(2), markdown, count=1)


def _section(markdown: str, name: str) -> str | None:
    match = re.search(rf"^## {re.escape(name)}\s*$(.*?)(?=^## |\Z)", markdown, re.MULTILINE | re.DOTALL)
    return match.group(1) if match else None

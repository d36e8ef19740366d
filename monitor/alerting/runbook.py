"""Keeps ``alerts/RUNBOOK.md`` (and the README's rules table) in step with the generated rules.

The runbook's prose is written by people; what comes from thresholds.yaml is generated
between markers: the alerts table (``<!-- aifm:alerts-table -->``) and, in each
alert's section, its current settings (``<!-- aifm:threshold NAME -->``). Every alert
must have a section (``## NAME``) with the subsections an engineer at 3 AM needs.
"""

from __future__ import annotations

import re

from monitor.alerting.catalog import Alert

REQUIRED_SUBSECTIONS = ("Meaning", "Impact", "Diagnosis", "Mitigation", "Why this threshold")
_TABLE = re.compile(r"(<!-- aifm:alerts-table -->\n).*?(<!-- /aifm:alerts-table -->)", re.DOTALL)


class RunbookError(ValueError):
    """The runbook lacks a section or subsection an alert needs."""


def alerts_table(alerts: list[Alert], runbook_link: str = "") -> str:
    """Markdown table: alert, severity, what fires it (from thresholds.yaml), for, why."""
    lines = ["| Alert | Severity | Fires on (from thresholds.yaml) | for | Why |", "|---|---|---|---|---|"]
    for alert in alerts:
        lines.append(f"| [{alert.name}]({runbook_link}#{alert.anchor}) | {alert.severity} | {alert.threshold} | {alert.for_} | {alert.why} |")
    return "\n".join(lines) + "\n"


def threshold_block(alert: Alert, hold: str) -> str:
    lines = [f"<!-- aifm:threshold {alert.name} -->", f"- Severity: **{alert.severity}**; `for: {alert.for_}`."]
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

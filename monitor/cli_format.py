"""One-line renderings shared by the command-line views (replay, demo)."""

from __future__ import annotations

from datetime import UTC, datetime

from monitor.findings import Finding


def format_finding(finding: Finding) -> str:
    """``time severity alert key stat/threshold summary``: no ids, no text from events."""
    when = datetime.fromtimestamp(finding.ts, tz=UTC).strftime("%Y-%m-%d %H:%M:%S") if finding.ts is not None else "-"
    key = ",".join(f"{k}={v}" for k, v in sorted(finding.key.items()))
    return f"{when}  {finding.severity:8} {finding.alert:32} {key:38} stat={finding.statistic:g} thr={finding.threshold:g}  {finding.summary}"

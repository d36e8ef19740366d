"""What ``aifm rules`` writes, computed in one place so that writing and ``--check`` agree.

From one thresholds file: ``rules.yml``, ``tests/rules.test.yml`` and ``RUNBOOK.md``
(its generated parts) in the output directory, and the README's signal table when the
output directory is the repository's ``alerts/``.
"""

from __future__ import annotations

from pathlib import Path

from monitor.alerting.catalog import all_alerts
from monitor.alerting.rule_tests import render_rule_tests
from monitor.alerting.rules import render_rules
from monitor.alerting.runbook import refresh, refresh_signals_table
from monitor.thresholds import REPO_THRESHOLDS, Thresholds

REPO_ALERTS = REPO_THRESHOLDS.parent
REPO_README = REPO_ALERTS.parent / "README.md"


def generated_files(thresholds: Thresholds, out_dir: Path) -> dict[Path, str]:
    """Path -> content of every file ``aifm rules`` owns (wholly or between markers)."""
    alerts = all_alerts(thresholds)
    runbook_source = out_dir / "RUNBOOK.md" if (out_dir / "RUNBOOK.md").exists() else REPO_ALERTS / "RUNBOOK.md"
    files = {
        out_dir / "rules.yml": render_rules(thresholds),
        out_dir / "tests" / "rules.test.yml": render_rule_tests(thresholds),
        out_dir / "RUNBOOK.md": refresh(runbook_source.read_text(encoding="utf-8"), alerts, thresholds.alerting.finding_hold),
    }
    if out_dir.resolve() == REPO_ALERTS and REPO_README.exists():
        files[REPO_README] = refresh_signals_table(REPO_README.read_text(encoding="utf-8"), thresholds, "alerts/RUNBOOK.md")
    return files


def stale_files(files: dict[Path, str]) -> list[Path]:
    return [path for path, text in files.items() if not path.exists() or path.read_text(encoding="utf-8") != text]


def write_files(files: dict[Path, str]) -> list[Path]:
    """Write what changed; return the paths written."""
    changed = stale_files(files)
    for path in changed:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(files[path], encoding="utf-8")
    return changed

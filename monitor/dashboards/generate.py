"""``aifm dashboards``: Grafana JSON generated from ``dashboards/*.dashboard.py`` (grafanalib).

Each source file defines a module-level ``dashboard``; its JSON (sorted keys, stable
``uid`` from the file name) is written next to it as ``NAME.json`` and committed, so
users import or provision the JSON without installing anything. The tests fail when
a committed JSON file differs from what its source generates.
"""

from __future__ import annotations

import json
import runpy
from pathlib import Path

from grafanalib._gen import DashboardEncoder

from monitor.dashboards.common import use_thresholds
from monitor.thresholds import REPO_THRESHOLDS, Thresholds

REPO_DASHBOARDS = REPO_THRESHOLDS.parent.parent / "dashboards"
SUFFIX = ".dashboard.py"


def dashboard_sources(directory: Path = REPO_DASHBOARDS) -> list[Path]:
    sources = sorted(directory.glob(f"*{SUFFIX}"))
    if not sources:
        raise ValueError(f"{directory}: no *{SUFFIX} files")
    return sources


def build(source: Path, thresholds: Thresholds) -> dict:
    """The dashboard defined by ``source`` as a JSON-ready dict."""
    use_thresholds(thresholds)
    namespace = runpy.run_path(str(source))
    if "dashboard" not in namespace:
        raise ValueError(f"{source}: defines no module-level 'dashboard'")
    return json.loads(json.dumps(namespace["dashboard"].to_json_data(), cls=DashboardEncoder))


def render(dashboard: dict) -> str:
    return json.dumps(dashboard, sort_keys=True, indent=2) + "\n"


def generated_files(thresholds: Thresholds, directory: Path = REPO_DASHBOARDS, out_dir: Path | None = None) -> dict[Path, str]:
    """Path -> JSON text for every dashboard source in ``directory``."""
    out_dir = out_dir or directory
    return {out_dir / (source.name.removesuffix(SUFFIX) + ".json"): render(build(source, thresholds)) for source in dashboard_sources(directory)}


def panel_queries(dashboard: dict) -> list[tuple[str, str]]:
    """(panel title, PromQL) for every target of every panel, variables left in."""
    found = []
    for panel in dashboard.get("panels", []):
        for item in [panel, *panel.get("panels", [])]:
            for target in item.get("targets", []) or []:
                if target.get("expr"):
                    found.append((item["title"], target["expr"]))
    return found

"""PNG pictures of a generated dashboard, drawn with matplotlib from the panels' own queries.

No Grafana server runs here, so the README's pictures are made the way Grafana would
fill the panels: each panel's PromQL, with its template variables set to "All", run as
a range query against a real Prometheus, then plotted in the dashboard's grid order.
"""

from __future__ import annotations

import json
import math
import re
import urllib.parse
import urllib.request
from collections.abc import Callable

Series = list[tuple[dict[str, str], list[tuple[float, float]]]]

#: Stand-ins for Grafana's variables when a query runs outside Grafana.
VARIABLES = {"$__rate_interval": "1m", "${datasource}": "", "$model": ".*", "$agent": ".*", "$tool": ".*"}


def resolve(expr: str, rate_interval: str = "1m") -> str:
    """The query Grafana would send with every variable at "All"."""
    for name, value in {**VARIABLES, "$__rate_interval": rate_interval}.items():
        expr = expr.replace(name, value)
    return expr


def prometheus_range(base_url: str, start: float, end: float, step: float) -> Callable[[str], Series]:
    """A fetcher running range queries on ``base_url``; raises on a query Prometheus rejects."""

    def fetch(expr: str) -> Series:
        query = urllib.parse.urlencode({"query": expr, "start": start, "end": end, "step": step})
        with urllib.request.urlopen(f"{base_url}/api/v1/query_range?{query}", timeout=30) as response:
            body = json.load(response)
        if body.get("status") != "success":
            raise ValueError(f"{expr}: {body.get('error')}")
        return [(item["metric"], [(float(t), float(v)) for t, v in item["values"]]) for item in body["data"]["result"]]

    return fetch


def legend(template: str, labels: dict[str, str]) -> str:
    text = re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: labels.get(m.group(1), ""), template or "")
    return text.strip() or ",".join(f"{k}={v}" for k, v in sorted(labels.items()) if k != "__name__") or "value"


def render(dashboard: dict, fetch: Callable[[str], Series], out_png: str, *, origin: float, rate_interval: str = "1m") -> dict[str, int]:
    """Draw every non-row panel, time in seconds since ``origin``; returns panel title -> number of series drawn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    columns = 2
    rows = math.ceil(len(panels) / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(14, 3.0 * rows), squeeze=False)
    drawn: dict[str, int] = {}
    for axis, panel in zip(axes.flat, panels):
        count = 0
        for target in panel.get("targets", []):
            for labels, points in fetch(resolve(target["expr"], rate_interval)):
                finite = [(t, v) for t, v in points if math.isfinite(v)]
                if not finite:
                    continue
                times = [t - origin for t, _ in finite]
                values = [v for _, v in finite]
                axis.plot(times, values, label=legend(target.get("legendFormat", ""), labels)[:40], linewidth=1.2)
                count += 1
        for step in panel.get("fieldConfig", {}).get("defaults", {}).get("thresholds", {}).get("steps", [])[1:]:
            if panel.get("fieldConfig", {}).get("defaults", {}).get("custom", {}).get("thresholdsStyle", {}).get("mode") == "line":
                axis.axhline(step["value"], color="red", linestyle="--", linewidth=1, label=f"threshold {step['value']:g}")
        axis.set_xlabel("seconds", fontsize=7)
        axis.set_title(f"{panel['title']} [{panel['type']}]", fontsize=9)
        axis.tick_params(labelsize=7)
        if count:
            axis.legend(fontsize=6, loc="upper left", ncol=2)
        else:
            axis.text(0.5, 0.5, "no data", ha="center", va="center", transform=axis.transAxes)
        drawn[panel["title"]] = count
    for axis in list(axes.flat)[len(panels) :]:
        axis.set_visible(False)
    figure.suptitle(f"{dashboard['title']} (uid {dashboard['uid']}; queries run on a real Prometheus, drawn with matplotlib)", fontsize=11)
    figure.tight_layout(rect=(0, 0, 1, 0.97))  # room for the title
    figure.savefig(out_png, dpi=80)
    plt.close(figure)
    return drawn

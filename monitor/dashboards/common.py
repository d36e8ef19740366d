"""Shared defaults for the ``dashboards/*.dashboard.py`` files: datasource, variables, panels, units.

Every panel queries through the ``$datasource`` variable and the configured scrape-job
selector; threshold lines come from the thresholds file the generator was given
(:func:`thresholds`), so a tuned file moves the lines with the alerts.
"""

from __future__ import annotations

from grafanalib.core import (
    Annotations,
    Dashboard,
    GridPos,
    RowPanel,
    Stat,
    Table,
    Target,
    Template,
    Templating,
    TimeSeries,
)

from monitor.alerting import queries
from monitor.thresholds import Thresholds, load_thresholds

DATASOURCE = "${datasource}"
RATE = "$__rate_interval"
WIDTH = 24
_current: dict[str, Thresholds] = {}

# Grafana's palette names: one colour per meaning across dashboards.
OK, WARN, BAD = "green", "orange", "red"


def use_thresholds(thresholds: Thresholds) -> None:
    """Set the thresholds the dashboard files read (the generator calls this first)."""
    _current["thresholds"] = thresholds


def thresholds() -> Thresholds:
    if "thresholds" not in _current:
        _current["thresholds"] = load_thresholds()
    return _current["thresholds"]


def job() -> str:
    return thresholds().alerting.selector


def matchers(*variables: str) -> str:
    """The job selector plus ``label=~"$label"`` for each template variable named."""
    return ",".join([job(), *(f'{name}=~"${name}"' for name in variables)])


def target(expr: str, legend: str = "", ref: str = "A", instant: bool = False) -> Target:
    return Target(expr=expr, legendFormat=legend, refId=ref, datasource=DATASOURCE, instant=instant)


def timeseries(title: str, targets: list[Target], *, unit: str = "short", description: str = "", threshold: float | None = None, stack: bool = False, width: int = 12, height: int = 8) -> TimeSeries:
    """A time series panel; ``threshold`` draws a red line at that value (a limit from thresholds.yaml)."""
    steps = [{"color": OK, "value": None}]
    if threshold is not None:
        steps.append({"color": BAD, "value": threshold})
    return TimeSeries(
        title=title,
        description=description,
        dataSource=DATASOURCE,
        targets=targets,
        unit=unit,
        thresholds=steps,
        thresholdsStyleMode="line" if threshold is not None else "off",
        stacking={"mode": "normal", "group": "A"} if stack else {"mode": "none", "group": "A"},
        legendDisplayMode="table",
        legendPlacement="right" if width == WIDTH else "bottom",
        legendCalcs=["lastNotNull", "max"],
        gridPos=GridPos(h=height, w=width, x=0, y=0),
    )


def detector_panel(title: str, signal: str, selector: str, by: tuple[str, ...], legend: str, *, detector: str | None = None, description: str = "") -> TimeSeries:
    """A signal's detector statistic per key (the largest of its streams) against its threshold ``h`` from thresholds.yaml."""
    labels = {"signal": signal} if detector is None else {"signal": signal, "detector": detector}
    statistic = queries.select("aifm_detector_statistic", selector, **labels)
    h = thresholds().signals[signal].detector_for(detector).params.get("h")
    crossing = f"a finding is raised when it crosses h = {h} (alerts/thresholds.yaml), then the detector re-learns"
    return timeseries(
        title,
        [target(f"max by ({', '.join(by)}) ({statistic})", legend)],
        threshold=h,
        description=f"{description} The statistic: {crossing}." if description else f"CUSUM statistic; {crossing}.",
    )


def stat(title: str, targets: list[Target], *, unit: str = "short", description: str = "", bad_at: float | None = None, width: int = 6, height: int = 4) -> Stat:
    steps = [{"color": OK, "value": None}]
    if bad_at is not None:
        steps.append({"color": BAD, "value": bad_at})
    return Stat(title=title, description=description, dataSource=DATASOURCE, targets=targets, format=unit, thresholds=steps, reduceCalc="lastNotNull", graphMode="area", gridPos=GridPos(h=height, w=width, x=0, y=0))


def table(title: str, targets: list[Target], *, description: str = "", width: int = 12, height: int = 8) -> Table:
    return Table(title=title, description=description, dataSource=DATASOURCE, targets=targets, gridPos=GridPos(h=height, w=width, x=0, y=0), transformations=[{"id": "labelsToFields", "options": {}}])


def row(title: str) -> RowPanel:
    return RowPanel(title=title, gridPos=GridPos(h=1, w=WIDTH, x=0, y=0))


def layout(panels: list) -> list:
    """Place panels left to right, wrapping at the dashboard width; rows start a new line."""
    x = y = line_height = 0
    for panel in panels:
        pos = panel.gridPos
        if isinstance(panel, RowPanel) or x + pos.w > WIDTH:
            x, y, line_height = 0, y + line_height, 0
        pos.x, pos.y = x, y
        line_height = max(line_height, pos.h)
        x += pos.w
        if isinstance(panel, RowPanel):
            x, y, line_height = 0, y + pos.h, 0
    return panels


def uid_for(path: str) -> str:
    """Stable dashboard uid from its file name: ``dashboards/model-quality.dashboard.py`` -> ``aifm-model-quality``."""
    name = path.replace("\\", "/").rsplit("/", 1)[-1].removesuffix(".dashboard.py")
    return f"aifm-{name}"


def variable(name: str, metric: str, label: str) -> Template:
    """A multi-value template variable listing ``name`` values of ``metric``; "All" matches series without it too."""
    return Template(
        name=name,
        label=label,
        dataSource=DATASOURCE,
        query={"query": f"label_values({queries.select(metric, job())}, {name})", "refId": f"{name}-values"},
        includeAll=True,
        multi=True,
        allValue=".*",
        default="All",
        refresh=2,
        sort=1,
    )


def datasource_variable() -> Template:
    return Template(name="datasource", label="Data source", query="prometheus", type="datasource", default="Prometheus")


def new_dashboard(*, title: str, uid: str, description: str, panels: list, variables: list[Template] = (), annotations: list[dict] = ()) -> Dashboard:
    return Dashboard(
        title=title,
        uid=uid,
        description=description,
        tags=["aifm", "generated"],
        timezone="utc",
        refresh="30s",
        editable=False,
        panels=layout(panels),
        templating=Templating(list=[datasource_variable(), *variables]),
        annotations=Annotations(list=list(annotations)),
    ).auto_panel_ids()


def version_annotation(model_filter: bool = True) -> dict:
    """Grafana annotation at each moment a (model, version) pair starts serving."""
    return {
        "name": "Model version changes",
        "datasource": DATASOURCE,
        "enable": True,
        "iconColor": "purple",
        "expr": queries.version_changes(matchers("model") if model_filter else job()),
        "step": "1m",
        "titleFormat": "{{model}} now serves {{model_version}}",
        "tagKeys": "model,model_version",
        "useValueForTime": False,
    }

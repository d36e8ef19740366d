"""Generated Grafana dashboards: committed JSON current, stable uids, one datasource variable, thresholds from the file."""

from __future__ import annotations

import copy
import json

import yaml
from conftest import REPO

from monitor.alerting.generate import stale_files
from monitor.cli import main
from monitor.dashboards.generate import REPO_DASHBOARDS, build, dashboard_sources, generated_files, panel_queries
from monitor.thresholds import parse_thresholds


def _panels(dashboard: dict) -> list[dict]:
    return [p for p in dashboard["panels"] if p["type"] != "row"]


def test_committed_json_is_what_the_sources_generate(thresholds):
    files = generated_files(thresholds)
    assert {path.name for path in files} == {"overview.json", "model-quality.json", "agents-tools.json", "monitor-health.json", "signals.json"}
    assert stale_files(files) == [], "run `aifm dashboards` and commit the result"
    assert main(["dashboards", "--check"]) == 0


def test_every_dashboard_has_a_stable_uid_a_datasource_variable_and_selects_the_job():
    selector = 'job="aifm"'
    for path in sorted(REPO_DASHBOARDS.glob("*.json")):
        dashboard = json.loads(path.read_text())
        assert dashboard["uid"] == "aifm-" + path.stem
        variables = {v["name"]: v for v in dashboard["templating"]["list"]}
        assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
        for panel in _panels(dashboard):
            assert panel["datasource"] == "${datasource}", (path.name, panel["title"])
            assert panel["targets"], (path.name, panel["title"])
        for title, expr in panel_queries(dashboard):
            assert selector in expr, (path.name, title, expr)


def test_the_model_and_agent_dashboards_filter_by_their_template_variables():
    quality = json.loads((REPO_DASHBOARDS / "model-quality.json").read_text())
    agents = json.loads((REPO_DASHBOARDS / "agents-tools.json").read_text())
    assert {v["name"] for v in quality["templating"]["list"]} == {"datasource", "model"}
    assert {v["name"] for v in agents["templating"]["list"]} == {"datasource", "agent", "tool"}
    assert all('model=~"$model"' in expr for title, expr in panel_queries(quality))
    assert quality["annotations"]["list"][0]["name"] == "Model version changes"


def test_threshold_lines_follow_the_thresholds_file(thresholds):
    document = yaml.safe_load((REPO / "alerts" / "thresholds.yaml").read_text())
    tuned = copy.deepcopy(document)
    tuned["signals"]["refusal"]["detector"]["h"] = 7.5
    tuned["alerting"]["monitor"]["lag_messages"] = 2500
    sources = {path.name: path for path in dashboard_sources()}

    def line(dashboard: dict, title: str) -> float:
        panel = next(p for p in _panels(dashboard) if p["title"] == title)
        assert panel["fieldConfig"]["defaults"]["custom"]["thresholdsStyle"]["mode"] == "line"
        return panel["fieldConfig"]["defaults"]["thresholds"]["steps"][1]["value"]

    shipped, changed = thresholds, parse_thresholds(tuned)
    assert line(build(sources["model-quality.dashboard.py"], shipped), "Refusal detector vs threshold") == shipped.signals["refusal"].detector.params["h"]
    assert line(build(sources["model-quality.dashboard.py"], changed), "Refusal detector vs threshold") == 7.5
    assert line(build(sources["monitor-health.dashboard.py"], changed), "Consumer lag") == 2500


def test_provisioning_file_points_grafana_at_the_folder():
    provisioning = yaml.safe_load((REPO_DASHBOARDS / "provisioning.yaml").read_text())
    provider = provisioning["providers"][0]
    assert provisioning["apiVersion"] == 1 and provider["type"] == "file" and provider["options"]["path"]

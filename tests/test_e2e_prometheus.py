"""End to end on a real Prometheus: embedded broker, `aifm worker`, and Prometheus loaded with the generated rules.

Simulated traffic with injected incidents goes through the worker in two phases:
the clean stretch before the first incident (no alert may fire or even be pending),
then the rest (the alert of every injected incident must reach firing). Every
dashboard panel's queries then run on Prometheus: each must parse and the panel must
draw data. The pictures in the README come from this run (AIFM_PICTURES_DIR=docs/img).
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest
import yaml
from conftest import REPO
from kafka_helpers import Names, WorkerProcess, produce
from prometheus_client.parser import text_string_to_metric_families
from prometheus_helpers import PrometheusServer

from monitor.alerting.rules import render_rules
from monitor.dashboards import pictures
from monitor.dashboards.generate import REPO_DASHBOARDS, SUFFIX, build, dashboard_sources, panel_queries
from monitor.events import parse_ts
from monitor.replay.simulate import simulate, write_boundaries
from monitor.thresholds import parse_thresholds
from monitor.worker.broker import EmbeddedBroker
from monitor.worker.demo import _message_key

pytestmark = pytest.mark.timeout(300)
RATE_INTERVAL = "10s"


def _records(events: list[dict]) -> list[tuple[bytes, bytes]]:
    return [(_message_key(event), json.dumps(event).encode()) for event in events]


def _wait(condition, timeout: float, what: str, interval: float = 0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """Run both phases once; the tests below assert on what was observed."""
    workdir = tmp_path_factory.mktemp("e2e")
    document = yaml.safe_load((REPO / "alerts" / "thresholds.yaml").read_text())
    document["alerting"]["finding_for"] = "2s"  # the test's clock: seconds, not minutes; everything else as shipped
    thresholds = parse_thresholds(document, source="e2e thresholds")
    rules_path = workdir / "rules.yml"
    rules_path.write_text(render_rules(thresholds))

    events, planned = simulate(44_000, seed=7)
    first_incident = min(incident.start for incident in planned)
    clean = [event for event in events if parse_ts(event["ts"]) < first_incident]
    rest = events[len(clean) :]
    assert len(clean) > 5000 and all(parse_ts(e["ts"]) >= first_incident for e in rest[:100])

    observed: dict = {"thresholds": thresholds, "planned": planned}
    with EmbeddedBroker(log_path=workdir / "tansu.log") as broker:
        names = Names()
        worker = WorkerProcess(broker.bootstrap_servers, names, workdir, extra_env={"AIFM_BOUNDARIES": str(write_boundaries(workdir / "boundaries"))}).start()
        try:
            with PrometheusServer(workdir, targets=[f"127.0.0.1:{worker.metrics_port}"], rule_files=[rules_path]) as prometheus:
                worker.wait_ready()
                started = time.time()

                produce(broker.bootstrap_servers, names.events, _records(clean))
                worker.wait_metric("aifm_events_total", len(clean), timeout=90)
                _wait(lambda: prometheus.api("query", query=f'sum(aifm_events_total{{job="aifm"}}) >= {len(clean)}')["result"], 30, "Prometheus to scrape the clean phase")
                time.sleep(5)  # > finding_for + two evaluations: a finding in the clean phase would now be firing
                observed["clean_alerts"] = prometheus.alerts()

                malformed = [(b"x", b"{not json"), (b"x", b"[1, 2]"), (b"x", b'{"kind": "model_call"}')]
                records = _records(rest)
                produce(broker.bootstrap_servers, names.events, records[:1000] + malformed + records[1000:])
                worker.wait_metric("aifm_events_total", len(events), timeout=120)

                def all_incidents_firing():
                    firing = prometheus.firing()
                    observed["firing"] = firing
                    return all(_matching(incident, firing) for incident in planned)

                try:
                    _wait(all_incidents_firing, 60, "every injected incident's alert to fire", interval=1.0)
                except AssertionError:
                    pass  # asserted below, with the details
                time.sleep(6)  # let the last increments of the stream show in the rate panels before drawing them
                observed["rules"] = prometheus.api("rules")["groups"]
                observed["exposition"] = worker.metrics()
                end = time.time()
                fetch = pictures.prometheus_range(prometheus.url, started - 5, end, 2)
                observed["panels"] = _run_panels(fetch)
                observed["variables"] = _run_variables(prometheus)
                pictures_dir = Path(os.environ.get("AIFM_PICTURES_DIR") or workdir)
                pictures_dir.mkdir(parents=True, exist_ok=True)
                observed["pictures"] = {
                    source.name: pictures.render(
                        build(source, thresholds), fetch, str(pictures_dir / source.name.replace(SUFFIX, ".png")), origin=started, rate_interval=RATE_INTERVAL
                    )
                    for source in dashboard_sources()
                }
                observed["pictures_dir"] = pictures_dir
        finally:
            worker.stop(signal.SIGTERM)
    return observed


def _matching(incident, alerts: list[dict]) -> list[dict]:
    return [a for a in alerts if a["labels"].get("signal") == incident.signal and all(a["labels"].get(k) == v for k, v in incident.key.items())]


def _run_panels(fetch) -> dict:
    """(dashboard, panel) -> [(query, series returned)] for every committed dashboard."""
    results: dict = {}
    for path in sorted(REPO_DASHBOARDS.glob("*.json")):
        dashboard = json.loads(path.read_text())
        for title, expr in panel_queries(dashboard):
            results.setdefault((path.name, title), []).append((expr, len(fetch(pictures.resolve(expr, RATE_INTERVAL)))))
        for annotation in dashboard["annotations"]["list"]:
            results.setdefault((path.name, f"annotation: {annotation['name']}"), []).append((annotation["expr"], len(fetch(pictures.resolve(annotation["expr"])))))
    return results


def _run_variables(prometheus) -> dict:
    """Template variable -> values Prometheus lists for its label_values() query."""
    values = {}
    for path in sorted(REPO_DASHBOARDS.glob("*.json")):
        for variable in json.loads(path.read_text())["templating"]["list"]:
            if variable["type"] != "query":
                continue
            selector, label = variable["query"]["query"].removeprefix("label_values(").removesuffix(")").rsplit(", ", 1)
            values[(path.name, variable["name"])] = prometheus.api(f"label/{label}/values", **{"match[]": selector})
    return values


def test_nothing_fires_or_is_pending_during_the_clean_phase(stack):
    assert stack["clean_alerts"] == []


def test_the_alert_of_every_injected_incident_reaches_firing(stack):
    firing = stack["firing"]
    missed = [(i.signal, i.key) for i in stack["planned"] if not _matching(i, firing)]
    assert not missed, f"no firing alert for {missed}; firing: {[a['labels'] for a in firing]}"
    for alert in firing:
        assert alert["labels"]["alertname"].startswith("AIFM")
        assert alert["labels"]["severity"] in ("critical", "warning", "info")
        assert alert["annotations"]["runbook_url"].endswith("#" + alert["labels"]["alertname"].lower())
        assert "{{" not in alert["annotations"]["description"]


def test_every_rule_evaluates_without_error_on_the_live_worker(stack):
    unhealthy = [(rule["name"], rule.get("lastError")) for group in stack["rules"] for rule in group["rules"] if rule["health"] != "ok"]
    assert not unhealthy


def test_every_dashboard_panel_query_parses_and_the_panel_returns_data(stack):
    empty = [key for key, queries in stack["panels"].items() if not any(count for _, count in queries)]
    assert not empty, f"panels without data: {empty}"
    assert len(stack["panels"]) >= 30


def test_template_variables_list_the_simulated_models_agents_and_tools(stack):
    values = stack["variables"]
    assert {"gpt-4o", "claude-sonnet", "llama-3-70b"} <= set(values[("model-quality.json", "model")])
    assert {"support-bot", "research-agent", "ops-agent"} <= set(values[("agents-tools.json", "agent")])
    assert "fetch_url" in values[("agents-tools.json", "tool")]


def test_every_metric_a_rule_or_panel_references_is_in_the_worker_exposition(stack):
    exposed = {"up"}  # Prometheus's own
    for family in text_string_to_metric_families(stack["exposition"]):
        exposed |= {sample.name for sample in family.samples} | {family.name, f"{family.name}_total"}
    referenced = set()
    texts = [rule["query"] for group in stack["rules"] for rule in group["rules"]]
    texts += [expr for queries in stack["panels"].values() for expr, _ in queries]
    for text in texts:
        referenced |= {name for name in _metric_names(text) if ":" not in name}
    assert referenced, "no metric names found"
    assert referenced <= exposed, f"not in the worker's exposition: {sorted(referenced - exposed)}"


def _metric_names(promql: str) -> set[str]:
    import re

    return set(re.findall(r"\b(aifm_[a-z_]+|up)\b(?=\s*[{\[)])", promql))


def test_pictures_of_every_dashboard_are_drawn_from_the_same_queries(stack):
    for name, drawn in stack["pictures"].items():
        assert (stack["pictures_dir"] / name.replace(SUFFIX, ".png")).stat().st_size > 10_000
        assert all(count > 0 for count in drawn.values()), (name, drawn)

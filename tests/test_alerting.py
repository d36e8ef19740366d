"""Generated alert rules, their promtool tests and the runbook: valid, current, and true to the findings."""

from __future__ import annotations

import copy
import subprocess

import pytest
import yaml
from conftest import REPO, SAMPLE, model_call
from prometheus_client import generate_latest
from prometheus_helpers import PROMTOOL, require

from monitor.alerting.catalog import all_alerts
from monitor.alerting.generate import REPO_ALERTS, generated_files, stale_files
from monitor.alerting.rule_tests import render_rule_tests
from monitor.alerting.rules import render_rules
from monitor.alerting.runbook import RunbookError, refresh
from monitor.cli import main
from monitor.findings import ALERT_NAMES
from monitor.metrics import Metrics
from monitor.replay.run import replay
from monitor.thresholds import ThresholdsError, parse_thresholds

DOCUMENT = yaml.safe_load((REPO / "alerts" / "thresholds.yaml").read_text())


def _with(**alerting) -> dict:
    document = copy.deepcopy(DOCUMENT)
    document["alerting"].update(alerting)
    return document


def test_committed_rules_rule_tests_runbook_and_readme_table_are_what_aifm_rules_generates(thresholds):
    files = generated_files(thresholds, REPO_ALERTS)
    assert {path.name for path in files} == {"rules.yml", "rules.test.yml", "RUNBOOK.md", "README.md"}
    assert stale_files(files) == [], "run `aifm rules` and commit the result"
    assert main(["rules", "--check"]) == 0


def test_promtool_accepts_the_rules_and_their_unit_tests_pass():
    promtool = require(PROMTOOL)
    check = subprocess.run([promtool, "check", "rules", str(REPO_ALERTS / "rules.yml")], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    test = subprocess.run([promtool, "test", "rules", "rules.test.yml"], cwd=REPO_ALERTS / "tests", capture_output=True, text=True)
    assert test.returncode == 0, test.stdout + test.stderr
    assert "SUCCESS" in test.stdout


def test_rule_tests_fail_when_an_alert_fires_before_its_for_elapses(tmp_path, thresholds):
    """The generated promtool tests can fail: a rule without its for: breaks them."""
    (tmp_path / "tests").mkdir()
    (tmp_path / "rules.yml").write_text(render_rules(thresholds).replace("for: 15m", "for: 0m"))
    (tmp_path / "tests" / "rules.test.yml").write_text(render_rule_tests(thresholds))
    result = subprocess.run([require(PROMTOOL), "test", "rules", "rules.test.yml"], cwd=tmp_path / "tests", capture_output=True, text=True)
    assert result.returncode != 0 and "AIFMConsumerLagGrowing" in result.stdout + result.stderr


def test_tuned_for_and_hold_values_reach_the_rules_and_their_tests(tmp_path):
    thresholds = parse_thresholds(_with(finding_for="3m", finding_hold="30m"))
    assert main(["rules", "--thresholds", str(_write(tmp_path, _with(finding_for="3m", finding_hold="30m"))), "--out-dir", str(tmp_path)]) == 0
    rules = yaml.safe_load((tmp_path / "rules.yml").read_text())
    refusal = next(rule for group in rules["groups"] for rule in group["rules"] if rule.get("alert") == "AIFMRefusalRateHigh")
    assert refusal["for"] == "3m" and "< 1800" in refusal["expr"]
    assert (tmp_path / "RUNBOOK.md").exists()
    result = subprocess.run([require(PROMTOOL), "test", "rules", "rules.test.yml"], cwd=tmp_path / "tests", capture_output=True, text=True)
    assert result.returncode == 0, result.stdout
    assert [a.for_ for a in all_alerts(thresholds) if a.group == "findings"] == ["3m"] * len(ALERT_NAMES)


def _write(tmp_path, document) -> str:
    path = tmp_path / "thresholds.yaml"
    path.write_text(yaml.safe_dump(document))
    return str(path)


def test_every_alert_carries_severity_for_summary_description_and_runbook(thresholds):
    rules = yaml.safe_load(render_rules(thresholds))
    alerting = [rule for group in rules["groups"] for rule in group["rules"] if "alert" in rule]
    names = {rule["alert"] for rule in alerting}
    assert set(ALERT_NAMES.values()) <= names
    assert {"AIFMWorkerDown", "AIFMNoEventsReceived", "AIFMConsumerLagGrowing", "AIFMDeadLetterRateHigh", "AIFMDetectorStateStale"} <= names
    for rule in alerting:
        assert rule["alert"].startswith("AIFM") and rule["for"]
        assert rule["labels"]["severity"] in ("critical", "warning", "info")
        annotations = rule["annotations"]
        assert annotations["summary"].endswith(".") and "{{" not in annotations["summary"]
        assert "{{ $labels." in annotations["description"] or "{{ $value" in annotations["description"]
        assert annotations["runbook_url"].endswith("RUNBOOK.md#" + rule["alert"].lower())
    records = [rule["record"] for group in rules["groups"] for rule in group["rules"] if "record" in rule]
    assert records and all(len(record.split(":")) == 3 for record in records)


def test_alert_severities_are_the_severities_of_the_findings_they_page_for(thresholds, sample_boundaries):
    """The alert on the alerts topic and the alert in Alertmanager carry the same name and severity."""
    report = replay([SAMPLE / "events.jsonl.gz"], thresholds=thresholds, boundaries=sample_boundaries)
    by_name = {alert.name: alert for alert in all_alerts(thresholds)}
    assert len({finding.alert for finding in report.findings}) >= 10
    for finding in report.findings:
        assert by_name[finding.alert].severity == finding.severity
        assert by_name[finding.alert].signal == finding.signal


def test_the_worker_exports_when_each_alert_and_key_last_found_something(pipeline):
    metrics = Metrics()
    for i in range(2000):
        result = pipeline.process_record(_json(model_call(i, output_text="I cannot help with that." if i > 1200 and i % 2 else "Sure, here it is.")))
        for event_result in result.results:
            for finding in event_result.findings:
                metrics.observe_finding(finding)
    text = generate_latest(metrics.registry).decode()
    line = next(line for line in text.splitlines() if line.startswith("aifm_last_finding_timestamp_seconds{"))
    assert 'alert="AIFMRefusalRateHigh"' in line and 'model="gpt-4o"' in line and 'severity="warning"' in line
    assert 'aifm_events_rejected_total{reason="invalid_json"} 0.0' in text  # known reasons start at 0


def _json(event: dict) -> bytes:
    import json

    return json.dumps(event).encode()


@pytest.mark.parametrize(
    ("alerting", "message"),
    [
        ({"selector": "job=aifm"}, "alerting.selector: expected PromQL label matchers"),
        ({"finding_for": "20m"}, "alerting.finding_for: must be shorter than finding_hold"),
        ({"finding_hold": "15 minutes"}, "alerting.finding_hold: expected a duration"),
        ({"runbook_url": "RUNBOOK.md"}, "alerting.runbook_url: expected an http(s) URL"),
        ({"pager": True}, "alerting: unknown setting(s) pager"),
        ({"monitor": {"dead_letter_ratio": 5}}, "alerting.monitor.dead_letter_ratio: must lie in (0, 1)"),
        ({"monitor": {"lag_messages": 0}}, "alerting.monitor.lag_messages: expected an integer >= 1"),
    ],
)
def test_invalid_alerting_settings_fail_with_the_setting_named(alerting, message):
    with pytest.raises(ThresholdsError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_thresholds(_with(**alerting), source="t.yaml")


def test_a_runbook_without_a_section_for_an_alert_is_refused(thresholds):
    runbook = (REPO_ALERTS / "RUNBOOK.md").read_text()
    start = runbook.index("## AIFMLatencyShift")
    end = runbook.index("## AIFMLatencyPerTokenShift")
    with pytest.raises(RunbookError, match="no section '## AIFMLatencyShift'"):
        refresh(runbook[:start] + runbook[end:], all_alerts(thresholds), "15m")
    with pytest.raises(RunbookError, match="AIFMRefusalRateHigh lacks '### Mitigation'"):
        refresh(runbook.replace("### Mitigation\n- Caused by a model version", "- Caused by a model version", 1), all_alerts(thresholds), "15m")


def test_check_reports_a_stale_rules_file(tmp_path, capsys):
    path = _write(tmp_path, DOCUMENT)
    assert main(["rules", "--thresholds", path, "--out-dir", str(tmp_path)]) == 0
    (tmp_path / "rules.yml").write_text("groups: []\n")
    assert main(["rules", "--thresholds", path, "--out-dir", str(tmp_path), "--check"]) == 1
    assert "stale:" in capsys.readouterr().err


def test_findings_counters_exist_at_zero_for_every_alert_of_every_key_seen_before_the_first_finding(pipeline, thresholds):
    """increase() cannot count the increment that creates a series: the first finding of a key must not create it."""
    metrics = Metrics()
    metrics.expect_findings(thresholds)
    for i in range(50):
        result = pipeline.process_record(_json(model_call(i)))
        for event_result in result.results:
            metrics.observe_event(event_result.event, event_result.signals, pipeline.metric_labels(event_result.event))
    text = generate_latest(metrics.registry).decode()
    assert 'aifm_findings_total{agent="",alert="AIFMRefusalRateHigh",model="gpt-4o",severity="warning",signal="refusal",tool=""} 0.0' in text
    assert 'aifm_findings_total{agent="support-bot",alert="AIFMKillSwitchEngaged",model="",severity="warning",signal="kill_switch",tool=""} 0.0' in text
    assert 'aifm_kill_switch_events_total{action="kill_switch"} 0.0' in text
    assert 'aifm_findings_total{agent="",alert="AIFMModelVersionChanged"' not in text

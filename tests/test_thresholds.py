"""alerts/thresholds.yaml: the one source of thresholds, validated with clear errors."""

from __future__ import annotations

import copy
import re

import pytest
import yaml
from conftest import REPO

from monitor.pipeline import Pipeline
from monitor.signals import SIGNALS
from monitor.thresholds import ThresholdsError, load_thresholds, parse_thresholds


@pytest.fixture(scope="module")
def document():
    return yaml.safe_load((REPO / "alerts" / "thresholds.yaml").read_text())


def test_the_shipped_file_configures_every_signal(thresholds):
    assert set(thresholds.signals) == set(SIGNALS)
    for name, config in thresholds.signals.items():
        assert config.severity in ("critical", "warning", "info"), name


def test_every_signal_block_in_the_shipped_file_says_why():
    text = (REPO / "alerts" / "thresholds.yaml").read_text()
    signals_section = text.split("\nsignals:\n", 1)[1].split("\nalerting:\n", 1)[0]
    blocks = re.split(r"^  (\w+):\n", signals_section, flags=re.M)[1:]
    commented = {name: "#" in body for name, body in zip(blocks[::2], blocks[1::2])}
    assert commented == {name: True for name in SIGNALS}


def mutate(document, path, value):
    changed = copy.deepcopy(document)
    node = changed
    for part in path[:-1]:
        node = node[part]
    if value is KeyError:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return changed


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("signals", "refusal", "detector", "h"), -1, r"signals.refusal.detector: h must be > 0"),
        (("signals", "refusal", "detector", "method"), "kswin", r"method must be one of"),
        (("signals", "refusal", "detector", "hh"), 3, r"unexpected keyword argument 'hh'"),
        (("signals", "refusal", "flag_score"), 1.5, r"signals.refusal.flag_score: must lie in \[0.0, 1.0\]"),
        (("signals", "refusal", "flag_score"), "high", r"expected float"),
        (("signals", "refusal", "flag_score"), KeyError, r"signals.refusal.flag_score: missing"),
        (("signals", "refusal", "severity"), "page", r"severity: must be one of critical, warning, info"),
        (("signals", "refusal", "treshold"), 3, r"unknown setting\(s\) treshold"),
        (("signals", "tool_scope", "detector"), {"method": "cusum"}, r"takes no detector"),
        (("signals", "agent_loop", "max_repeats"), 0, r"must lie in \[1"),
        (("signals", "latency"), KeyError, r"signals: missing latency"),
        (("signals", "toxicity"), {"severity": "warning"}, r"signals.toxicity: unknown signal"),
        (("keys", "max_values_per_label"), 0, r"keys.max_values_per_label: expected an integer >= 1"),
        (("signals", "usage", "streams", "calls_per_hour"), {"detector": {"method": "cusum"}}, r"signals.usage.streams.calls_per_hour: not a stream of usage; its streams: calls_per_minute, input_tokens, output_tokens"),
        (("signals", "usage", "streams", "calls_per_minute", "detector", "window"), 0, r"signals.usage.streams.calls_per_minute.detector: window must be"),
        (("signals", "latency", "detector", "memory"), -1.0, r"memory must be a finite number >= 0"),
        (("signals", "latency", "detector", "test_after"), 1, r"test_after must be an integer in \[2, warmup=300\]"),
        (("signals", "audit_gap", "detector", "by_hour"), True, r"by_hour learns the rate's daily profile: it needs a learned p0"),
        (("signals", "refusal", "detector", "by_hour"), False, r"signals.refusal.detector: level_memory is the memory of the level over the hourly profile: it needs by_hour: true"),
        (("signals", "refusal", "detector", "level_memory"), -60.0, r"level_memory must be a finite number of seconds >= 0"),
        (("signals", "latency", "why"), "one reason", r"signals.latency.why: latency has several streams \(seconds, per_token_seconds\): give a reason per stream"),
        (("signals", "latency", "why", "p99"), "tail latency", r"signals.latency.why.p99: not a stream of latency"),
        (("signals", "refusal", "why"), "", r"signals.refusal.why.rate: expected a one-line reason"),
        (("alerting", "why", "AIFMWorkerDown"), 5, r"alerting.why: expected a mapping of alert names to one-line reasons"),
    ],
)
def test_invalid_settings_fail_with_the_setting_and_the_valid_range(document, path, value, message):
    with pytest.raises(ThresholdsError, match=message) as error:
        parse_thresholds(mutate(document, path, value), source="t.yaml")
    assert str(error.value).startswith("t.yaml: ")


def test_unreadable_and_malformed_files(tmp_path):
    with pytest.raises(ThresholdsError, match="cannot read the thresholds file"):
        load_thresholds(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("signals: [unclosed\n")
    with pytest.raises(ThresholdsError, match="not valid YAML"):
        load_thresholds(bad)


def test_environment_variable_names_the_default_file(tmp_path, monkeypatch, document):
    custom = tmp_path / "custom.yaml"
    custom.write_text(yaml.safe_dump(mutate(document, ("signals", "refusal", "flag_score"), 0.8)))
    monkeypatch.setenv("AIFM_THRESHOLDS", str(custom))
    assert load_thresholds().signals["refusal"].options["flag_score"] == 0.8


def test_a_stream_can_have_a_detector_of_its_own(thresholds):
    usage = thresholds.signals["usage"]
    assert usage.detector_for("input_tokens") is usage.detector
    assert usage.detector_for("calls_per_minute").method == "event_rate"


def test_rewording_a_reason_keeps_snapshots_restorable(document):
    shipped = Pipeline(parse_thresholds(document))
    reworded = Pipeline(parse_thresholds(mutate(document, ("signals", "refusal", "why"), "another wording")))
    assert reworded.thresholds.signals["refusal"].why == {"rate": "another wording"}
    assert reworded.restore(shipped.snapshot())

"""Checks run over every signal of the registry and every detector method, as river runs its estimator checks.

A new signal or detector that forgets one of the places the monitor needs it fails
here, by name, instead of at its first alarm inside the worker.
"""

from __future__ import annotations

import math
import random
import re

import msgspec
import numpy as np
import pytest
import yaml
from conftest import REPO

from monitor.alerting.catalog import all_alerts, finding_alerts
from monitor.dashboards.generate import build, dashboard_sources, panel_queries
from monitor.detectors import METHODS, VECTOR_METHODS, build_detector
from monitor.events import KINDS, Event
from monitor.pipeline import Pipeline
from monitor.pipeline.streams import KEY_KINDS, KeyStreams
from monitor.replay.reader import read_lines
from monitor.signals import REGISTRY, SIGNALS, SPECS
from monitor.signals.spec import KEY_LABELS

SPEC_IDS = [spec.name for spec in REGISTRY]
RULES = yaml.safe_load((REPO / "alerts" / "rules.yml").read_text())
RUNBOOK = (REPO / "alerts" / "RUNBOOK.md").read_text()


@pytest.fixture(scope="module")
def dashboard_queries(thresholds):
    return [query for source in dashboard_sources() for _, query in panel_queries(build(source, thresholds))]


def test_the_registry_names_each_signal_once_and_each_alert_once():
    assert len(SPECS) == len(REGISTRY)
    alerts = [stream.alert for spec in REGISTRY for stream in spec.streams]
    assert len(set(alerts)) == len(alerts)
    slots = [stream.slot for spec in REGISTRY for stream in spec.streams if stream.slot is not None]
    assert len(set(slots)) == len(slots)


@pytest.mark.parametrize("spec", REGISTRY, ids=SPEC_IDS)
def test_each_signal_has_its_thresholds_and_takes_exactly_its_options(spec, thresholds):
    if not spec.in_thresholds:
        assert spec.name not in thresholds.signals and spec.name not in SIGNALS
        return
    config = thresholds.signals[spec.name]
    assert set(config.options) - {"per_encoder"} == set(spec.options)
    assert (config.detector is not None) == spec.has_detector
    for name, option in spec.options.items():
        assert isinstance(config.options[name], option.kind) or option.kind is dict, name


@pytest.mark.parametrize("spec", REGISTRY, ids=SPEC_IDS)
def test_each_signal_reads_fields_the_event_schema_has(spec):
    fields = set(Event.__struct_fields__)
    for read in spec.reads:
        kind, _, name = read.partition(".")
        assert kind == "*" or kind in KINDS, read
        assert name == "*" or name in fields, read


@pytest.mark.parametrize("spec", REGISTRY, ids=SPEC_IDS)
def test_each_stream_has_its_alert_rule_runbook_section_and_key_labels(spec):
    rules = {rule["alert"]: rule for group in RULES["groups"] for rule in group["rules"] if "alert" in rule}
    assert set(spec.series_labels) <= set(KEY_LABELS)
    for stream in spec.streams:
        rule = rules[stream.alert]
        assert rule["annotations"]["summary"] == stream.summary
        assert stream.summary.endswith("."), stream.alert
        assert re.search(rf"^## {stream.alert}$", RUNBOOK, re.MULTILINE), f"RUNBOOK.md has no section for {stream.alert}"
        assert set(stream.keys) <= set(KEY_LABELS)
        assert all(kind in KEY_KINDS for kind in stream.key_kinds)


@pytest.mark.parametrize("spec", [spec for spec in REGISTRY if spec.has_detector], ids=lambda spec: spec.name)
def test_each_detector_stream_lives_on_the_keys_its_spec_names(spec, thresholds):
    for stream in spec.streams:
        if stream.slot is None:
            continue
        for kind in KEY_KINDS:
            keyed = KeyStreams({"model": "m"} if kind == "model" else {"agent": "a"}, kind, thresholds.signals)
            held = getattr(keyed, stream.slot)
            assert (held is not None) == (kind in stream.key_kinds), (stream.slot, kind)
            if held is not None:
                assert (held.signal, held.detector_name) == (spec.name, stream.detector)


@pytest.mark.parametrize("spec", [spec for spec in REGISTRY if spec.ratio_level is not None], ids=lambda spec: spec.name)
def test_each_recorded_ratio_aggregates_by_the_signals_series_labels(spec):
    recorded = [rule for group in RULES["groups"] for rule in group["rules"] if rule.get("labels", {}).get("signal") == spec.name]
    events = next(rule for rule in recorded if rule["record"] == f"{spec.ratio_level}:aifm_signal_events:rate5m")
    assert f'signal="{spec.name}"' in events["expr"]
    labels = re.search(r"sum by \(([^)]*)\)", events["expr"]).group(1)
    assert tuple(label.strip() for label in labels.split(",")) == spec.series_labels


@pytest.mark.parametrize("spec", [spec for spec in REGISTRY if spec.in_thresholds], ids=lambda spec: spec.name)
def test_each_signal_has_a_dashboard_panel_and_each_detector_its_statistic_drawn(spec, dashboard_queries):
    assert any(f'signal="{spec.name}"' in query for query in dashboard_queries), f"no dashboard panel reads signal {spec.name}"
    if spec.flagged:
        assert any("aifm_signal_flagged_events_total" in query and f'signal="{spec.name}"' in query for query in dashboard_queries), f"no panel counts {spec.name}'s flags"
    if spec.has_detector:
        assert any("aifm_detector_statistic" in query and f'signal="{spec.name}"' in query for query in dashboard_queries), f"no panel draws {spec.name}'s detector"


def test_every_finding_alert_comes_from_a_registered_stream(thresholds):
    streams = {(spec.name, stream.detector): stream for spec in REGISTRY for stream in spec.streams}
    assert {(alert.signal, alert.detector) for alert in finding_alerts(thresholds)} == set(streams)


def test_every_alert_quotes_its_reason_from_the_thresholds_file(thresholds):
    alerts = all_alerts(thresholds)
    assert [alert.name for alert in alerts if not alert.why] == []
    for alert in alerts:
        assert f"- Why (thresholds.yaml): {alert.why}." in RUNBOOK, alert.name


# -- every detector method --------------------------------------------------------------

_RIVER = frozenset({"adwin", "page_hinkley", "ddm", "hddm_a"})
_PARAMS = {
    "cusum": {"warmup": 100, "h": 8.0},
    "bernoulli_cusum": {"warmup": 200, "h": 6.0},
    "event_rate": {"window": 60.0, "warmup": 20, "h": 6.0},
    "embedding_drift": {},
    "page_hinkley": {"threshold": 50.0},
}


def _stream(method: str, seed: int = 5, n: int = 3000, change: int = 1500):
    """(value, event time) pairs with a clear change at ``change``, in the kind of value the method takes."""
    rng = random.Random(seed)
    nprng = np.random.default_rng(seed)
    before, after = nprng.normal(size=16), nprng.normal(size=16)
    for i in range(n):
        changed = i >= change
        if method in VECTOR_METHODS:
            yield list((after if changed else before) + 0.6 * nprng.normal(size=16)), float(i)
        elif method in ("bernoulli_cusum", "ddm", "hddm_a"):
            yield rng.random() < (0.3 if changed else 0.05), float(i)
        elif method == "event_rate":  # one event a second, then four
            yield 1.0, float(i) if not changed else change + (i - change) / 4.0
        else:
            yield rng.gauss(3.0 if changed else 0.0, 1.0), float(i)


def _roundtrip(state):
    return msgspec.msgpack.decode(msgspec.msgpack.encode(state))


@pytest.mark.parametrize("method", METHODS)
def test_each_detector_finds_a_clear_change_and_resets_after_its_alarm(method):
    detector = build_detector(method, _PARAMS.get(method, {}))
    alarms = []
    for i, (value, t) in enumerate(_stream(method)):
        detector.update(value, t)
        if detector.drift_detected:
            alarms.append(i)
            if method not in _RIVER:  # river resets on the update after an alarm
                assert detector.statistic < detector.threshold or math.isnan(detector.threshold)
                assert detector.alarm_statistic >= detector.threshold
    assert alarms and alarms[0] >= 1500 - 5, alarms[:5]
    if method not in _RIVER:
        assert len(alarms) <= 3, alarms  # a lasting change is reported once (plus re-learning at most twice)


@pytest.mark.parametrize("method", METHODS)
def test_each_detector_restores_from_its_snapshot_and_continues_identically(method):
    params = _PARAMS.get(method, {})
    original = build_detector(method, params)
    stream = list(_stream(method))
    for value, t in stream[:1200]:
        original.update(value, t)
    restored = build_detector(method, params)
    restored.load_state(_roundtrip(original.state()))
    if method in _RIVER:  # their state is not data: a restore starts them afresh, as a segment does
        original.segment()
    trace = []
    for value, t in stream[1200:]:
        for detector in (original, restored):
            detector.update(value, t)
        trace.append((original.drift_detected, restored.drift_detected, original.statistic, restored.statistic))
    assert all(a == b and (s == r or (math.isnan(s) and math.isnan(r))) for a, b, s, r in trace)


def test_the_signals_the_sample_produces_are_registered_and_carry_a_flag_as_their_spec_says(thresholds, sample_boundaries):
    pipeline = Pipeline(thresholds, sample_boundaries)
    flags: dict[str, set[bool]] = {}
    for _, raw in read_lines(REPO / "replay" / "samples" / "events.jsonl.gz"):
        for result in pipeline.process_record(raw).results:
            for name, value in result.signals.items():
                flags.setdefault(name, set()).add(value.get("flag") is not None)
    assert set(flags) <= set(SPECS)
    assert len(flags) >= 12
    for name, seen in flags.items():
        assert (True in seen) == SPECS[name].flagged, name

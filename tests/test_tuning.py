"""``aifm tune``: exact sweeps, budgets that hold on unseen history, and a thresholds file that says why."""

from __future__ import annotations

from collections import Counter

import pytest
import yaml
from conftest import REPO, SAMPLE

from monitor.cli import main
from monitor.replay.run import replay
from monitor.replay.scoring import load_incidents, score
from monitor.replay.simulate import write_simulation
from monitor.signals import SIGNALS_WITH_DETECTOR
from monitor.signals.tool_scope import load_boundaries
from monitor.thresholds import load_thresholds, parse_thresholds
from monitor.tuning.history import record_history
from monitor.tuning.run import tune
from monitor.tuning.sweep import GRIDS, sweep_signal

SHIPPED = REPO / "alerts" / "thresholds.yaml"


@pytest.fixture(scope="module")
def sample_history(thresholds, sample_boundaries):
    return record_history([SAMPLE / "events.jsonl.gz"], thresholds=thresholds, boundaries=sample_boundaries)


def test_the_sweep_at_the_configured_h_raises_exactly_the_findings_of_the_replay(sample_history, thresholds):
    """The fast path is exact: same values, segments and floors as the pipeline."""
    detectors = [
        (signal, stream)
        for signal in SIGNALS_WITH_DETECTOR
        for stream in (None, *thresholds.signals[signal].stream_detectors)  # the signal's detector, then each stream's own
        if thresholds.signals[signal].detector_for(stream).method in GRIDS
    ]
    swept_signals = {signal for signal, _ in detectors}
    replayed = Counter((f.signal, f.event_id) for f in sample_history.report.findings if f.type == "finding" and f.signal in swept_signals)
    swept = Counter()
    for signal, stream in detectors:
        config = thresholds.signals[signal]
        configured = float(config.detector_for(stream).params["h"])
        point = next(p for p in sweep_signal(sample_history, signal, config, [], stream=stream) if p.h == configured)
        swept.update((signal, _event_id(sample_history, alarm)) for alarm in point.alarms)
    assert swept == replayed and sum(replayed.values()) >= 7


def _event_id(history, alarm):
    """The finding's event id at an alarm: the replay's finding on that key at that time."""
    for finding in history.report.findings:
        if finding.ts == alarm.ts and finding.key == alarm.stream.key and finding.detector == alarm.stream.detector:
            return finding.event_id
    raise AssertionError(f"no replayed finding at {alarm}")


def test_tuned_thresholds_detect_every_incident_the_defaults_detect_within_the_budget(tmp_path, thresholds, sample_boundaries):
    incidents = load_incidents(SAMPLE / "incidents.jsonl")
    budget = 30.0
    outcome = tune(
        [SAMPLE / "events.jsonl.gz"],
        thresholds=thresholds,
        thresholds_text=SHIPPED.read_text(),
        boundaries=sample_boundaries,
        incidents=incidents,
        budget_per_day=budget,
    )
    tuned_path = tmp_path / "tuned.yaml"
    tuned_path.write_text(outcome.text)
    tuned = load_thresholds(tuned_path)
    # Proof by the real pipeline, not by the sweep: replay with the default and the tuned file.
    default_run = replay([SAMPLE / "events.jsonl.gz"], thresholds=thresholds, boundaries=sample_boundaries)
    tuned_run = replay([SAMPLE / "events.jsonl.gz"], thresholds=tuned, boundaries=sample_boundaries)
    default_score, tuned_score = score(default_run.findings, incidents), score(tuned_run.findings, incidents)
    detected = lambda s: {(i.signal, tuple(sorted(i.key.items()))) for i, _ in s.detected}  # noqa: E731
    assert detected(default_score) <= detected(tuned_score)
    days = outcome.history.days
    for signal in (t.signal for t in outcome.tunings):
        false_alarms = [f for f in tuned_score.false_alarms if f.signal == signal]
        assert len(false_alarms) / days <= budget, (signal, len(false_alarms))
    # ... and more sensitive where the budget allows: some delay got shorter.
    assert any(t.chosen.h < t.previous_h for t in outcome.tunings)
    assert sum(d for _, d in tuned_score.detected) < sum(d for _, d in default_score.detected)


def test_a_budget_calibrated_on_clean_history_holds_on_a_second_unseen_clean_history(tmp_path, thresholds):
    budget = 20.0
    train, test = tmp_path / "train", tmp_path / "test"
    write_simulation(train, 120_000, seed=101, incidents=False)
    write_simulation(test, 120_000, seed=202, incidents=False)
    boundaries = load_boundaries(train / "boundaries")
    outcome = tune([train / "events.jsonl.gz"], thresholds=thresholds, thresholds_text=SHIPPED.read_text(), boundaries=boundaries, incidents=[], budget_per_day=budget)
    assert not any(t.labelled for t in outcome.tunings)
    assert all(t.budget_met for t in outcome.tunings), [(t.signal, t.notes) for t in outcome.tunings]
    assert any(t.chosen.h < t.previous_h for t in outcome.tunings), "the budget allows more sensitive thresholds than the defaults"
    tuned = parse_thresholds(yaml.safe_load(outcome.text))
    unseen = replay([test / "events.jsonl.gz"], thresholds=tuned, boundaries=boundaries)
    unseen_days = record_history([test / "events.jsonl.gz"], thresholds=tuned, boundaries=boundaries).days
    per_signal = Counter(f.signal for f in unseen.findings if f.type == "finding" and f.signal in SIGNALS_WITH_DETECTOR)
    for signal, count in per_signal.items():
        assert count / unseen_days <= budget, (signal, count, unseen_days)


def test_the_written_file_changes_only_h_and_says_what_each_value_was_measured_on(tmp_path, thresholds, sample_boundaries):
    incidents = load_incidents(SAMPLE / "incidents.jsonl")
    original = SHIPPED.read_text()
    first = tune([SAMPLE / "events.jsonl.gz"], thresholds=thresholds, thresholds_text=original, boundaries=sample_boundaries, incidents=incidents, budget_per_day=30.0)
    removed = [line for line in original.splitlines() if line not in first.text.splitlines()]
    assert removed and all(line.strip().startswith(("h:", "burst_h:")) for line in removed)
    # A burst sum's own threshold keeps its distance above h.
    shipped, tuned = yaml.safe_load(original)["signals"], yaml.safe_load(first.text)["signals"]
    bursts = [name for name, signal in shipped.items() if "burst_h" in signal.get("detector", {})]
    assert bursts
    for name in bursts:
        before, after = shipped[name]["detector"], tuned[name]["detector"]
        assert after["burst_h"] - after["h"] == before["burst_h"] - before["h"]
    assert first.text.count("# aifm tune ") == len(first.tunings)
    assert "false alarm(s) =" in first.text and "median delay" in first.text and "h swept on 2026-11-02T08:00Z..2026-11-02T" in first.text
    # Tuning the tuned file again replaces the evidence instead of piling it up.
    again = tune(
        [SAMPLE / "events.jsonl.gz"],
        thresholds=parse_thresholds(yaml.safe_load(first.text)),
        thresholds_text=first.text,
        boundaries=sample_boundaries,
        incidents=incidents,
        budget_per_day=30.0,
    )
    assert again.text.count("# aifm tune ") == len(again.tunings)
    assert [t.chosen.h for t in again.tunings] == [t.chosen.h for t in first.tunings]


def test_aifm_tune_writes_thresholds_rules_can_be_generated_from_and_a_report(tmp_path, capsys):
    out = tmp_path / "tuned" / "thresholds.yaml"
    out.parent.mkdir()
    code = main(
        [
            "tune", str(SAMPLE / "events.jsonl.gz"), "--boundaries", str(SAMPLE / "boundaries"), "--incidents", str(SAMPLE / "incidents.jsonl"),
            "--false-alarms-per-day", "30", "--out", str(out), "--report", str(tmp_path / "report"),
        ]
    )  # fmt: skip
    printed = capsys.readouterr().out
    assert code == 0 and "refusal" in printed and "->" in printed
    assert load_thresholds(out).signals["refusal"].detector.params["h"] != 9.0
    page = (tmp_path / "report" / "index.html").read_text()
    assert "What changed" in page and "refusal-tradeoff.png" in page and "refusal-streams.png" in page
    assert (tmp_path / "report" / "refusal-tradeoff.png").stat().st_size > 5_000
    assert main(["rules", "--thresholds", str(out), "--out-dir", str(out.parent)]) == 0
    assert (out.parent / "rules.yml").exists() and (out.parent / "RUNBOOK.md").exists()


def test_aifm_replay_report_plots_streams_with_findings(tmp_path, capsys):
    code = main(["replay", str(SAMPLE / "events.jsonl.gz"), "--boundaries", str(SAMPLE / "boundaries"), "--incidents", str(SAMPLE / "incidents.jsonl"), "--report", str(tmp_path)])
    assert code == 0
    assert "labelled incidents detected: 11/11" in capsys.readouterr().out
    page = (tmp_path / "index.html").read_text()
    assert "refusal-streams.png" in page and "What changed" not in page


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--false-alarms-per-day", "0"], "--false-alarms-per-day must be > 0"),
        (["--false-alarms-per-day", "5", "--signals", "tool_scope"], "cannot tune tool_scope"),
        (["--false-alarms-per-day", "5", "--margin", "0.5"], "--margin must be >= 1"),
    ],
)
def test_invalid_tune_options_fail_with_a_clear_message(tmp_path, capsys, extra, message):
    code = main(["tune", str(SAMPLE / "events.jsonl.gz"), "--out", str(tmp_path / "t.yaml"), *extra])
    assert code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "t.yaml").exists()


def test_a_river_detector_is_left_as_configured_and_the_output_says_why(tmp_path, sample_boundaries):
    document = yaml.safe_load(SHIPPED.read_text())
    document["signals"]["refusal"]["detector"] = {"method": "adwin"}
    path = tmp_path / "thresholds.yaml"
    path.write_text(yaml.safe_dump(document))
    outcome = tune(
        [SAMPLE / "events.jsonl.gz"],
        thresholds=load_thresholds(path),
        thresholds_text=path.read_text(),
        boundaries=sample_boundaries,
        incidents=[],
        budget_per_day=30.0,
        signals=["refusal", "latency"],
    )
    assert [t.signal for t in outcome.tunings] == ["latency"]
    assert outcome.skipped == ["refusal: method adwin has no decision threshold h to sweep (tuned methods: bernoulli_cusum, cusum, embedding_drift, event_rate)"]


def test_tune_records_drift_distances_and_writes_the_encoders_own_h(tmp_path, capsys):
    pytest.importorskip("tokenizers")
    import sys

    sys.path.insert(0, str(REPO / "bench"))
    from text_history import text_history

    log = tmp_path / "clean.jsonl"
    text_history(log, events=6000, seconds=4 * 3600, shift_share=0.0, pool=400)  # no shift: history assumed clean
    out = tmp_path / "tuned.yaml"
    assert main(["tune", str(log), "--signals", "embedding_drift", "--false-alarms-per-day", "1", "--out", str(out), "--embed", "all", "--encoder", "static"]) == 0
    printed = capsys.readouterr().out
    assert "embedding_drift" in printed and "not tuned" not in printed
    tuned = parse_thresholds(yaml.safe_load(out.read_text()))
    shipped = load_thresholds(SHIPPED)
    assert tuned.signals["embedding_drift"].detector == shipped.signals["embedding_drift"].detector, "the minilm/precomputed h is left alone"
    static_h = tuned.for_encoder("static").signals["embedding_drift"].detector.params["h"]
    assert static_h in GRIDS["embedding_drift"]
    lines = out.read_text().splitlines()
    static = lines.index("      static:", lines.index("    per_encoder:"))
    h_line = next(i for i in range(static, len(lines)) if lines[i].strip().startswith("h:"))
    assert lines[h_line].strip() == f"h: {static_h!r}"
    assert any(line.strip().startswith("# aifm tune") for line in lines[static:h_line]), "the evidence sits above the encoder's h"


def test_a_stream_with_its_own_detector_is_tuned_and_written_in_its_own_place(tmp_path, sample_boundaries):
    outcome = tune(
        [SAMPLE / "events.jsonl.gz"],
        thresholds=load_thresholds(SHIPPED),
        thresholds_text=SHIPPED.read_text(),
        boundaries=sample_boundaries,
        incidents=[],
        budget_per_day=30.0,
        signals=["usage"],
    )
    assert [(t.name, t.method) for t in outcome.tunings] == [("usage", "cusum"), ("usage/calls_per_minute", "event_rate")]
    calls = outcome.tunings[1]
    assert calls.events == sum(len(r.values) for r in outcome.history.by_signal("usage") if r.detector == "calls_per_minute")
    tuned = parse_thresholds(yaml.safe_load(outcome.text))
    assert tuned.signals["usage"].detector_for("calls_per_minute").params["h"] == calls.chosen.h
    assert tuned.signals["usage"].detector.params["h"] == outcome.tunings[0].chosen.h
    lines = outcome.text.splitlines()
    stream = lines.index("      calls_per_minute:")
    h_line = next(i for i in range(stream, len(lines)) if lines[i].strip().startswith("h:"))
    assert any("aifm tune" in line for line in lines[stream:h_line]), "the evidence sits above the stream's h"

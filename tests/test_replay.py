"""Replay of history through the same pipeline: the sample, ordering, rejects, CLI contract."""

from __future__ import annotations

import gzip
import json
import random

import pytest
from conftest import SAMPLE, encode, model_call, tool_call

from monitor.cli import main
from monitor.replay.run import format_summary, replay
from monitor.replay.scoring import load_incidents, score
from monitor.replay.simulate import write_simulation


@pytest.fixture(scope="module")
def sample_report(thresholds, sample_boundaries):
    return replay([SAMPLE / "events.jsonl.gz"], thresholds=thresholds, boundaries=sample_boundaries)


def test_sample_replay_finds_every_labelled_incident_and_nothing_in_clean_stretches(sample_report):
    result = score(sample_report.findings, load_incidents(SAMPLE / "incidents.jsonl"))
    assert [i.signal for i in result.missed] == []
    assert [f.alert for f in result.false_alarms] == []
    assert len(result.detected) == 11


def test_sample_replay_counts_events_and_rejects(sample_report):
    assert sample_report.events == 44_003
    blocked = 0
    for line in gzip.open(SAMPLE / "events.jsonl.gz"):
        try:
            decoded = json.loads(line)
        except ValueError:
            continue
        blocked += sum(1 for e in (decoded if isinstance(decoded, list) else [decoded]) if e.get("status") == "blocked")
    assert sum(sample_report.blocked_tool_calls.values()) == blocked > 0
    assert f"tool calls blocked by a pre-call gate: {blocked:,}" in format_summary(sample_report)
    assert dict(sample_report.rejects_by_reason) == {"invalid_json": 2, "not_utf8": 1, "unknown_kind": 2}
    annotations = [f for f in sample_report.findings if f.type == "annotation"]
    assert [(a.alert, a.key["model_version"]) for a in annotations] == [("AIFMModelVersionChanged", "2024-11-20")]


def test_committed_sample_is_what_the_simulator_writes(tmp_path):
    write_simulation(tmp_path, 44_000, seed=7, bad_lines=5)
    assert gzip.decompress((tmp_path / "events.jsonl.gz").read_bytes()) == gzip.decompress((SAMPLE / "events.jsonl.gz").read_bytes())
    assert (tmp_path / "incidents.jsonl").read_text() == (SAMPLE / "incidents.jsonl").read_text()
    for boundary in (SAMPLE / "boundaries").iterdir():
        assert (tmp_path / "boundaries" / boundary.name).read_text() == boundary.read_text()


def write_lines(path, lines, gz=False):
    data = b"".join(line + b"\n" for line in lines)
    path.write_bytes(gzip.compress(data) if gz else data)


def refusal_events(n=4000):
    rng = random.Random(9)
    return [model_call(i, output_text="I can't help with that." if rng.random() < (0.05 if i < 3000 else 0.2) else "Sure, here it is.") for i in range(n)]


def test_out_of_order_lines_are_replayed_in_event_time_order(tmp_path, thresholds):
    events = refusal_events()
    ordered = tmp_path / "ordered.jsonl"
    write_lines(ordered, [encode(e) for e in events])
    shuffled_events = events[:]
    rng = random.Random(1)
    for start in range(0, len(shuffled_events), 500):  # disorder within blocks smaller than the reorder window
        block = shuffled_events[start : start + 500]
        rng.shuffle(block)
        shuffled_events[start : start + 500] = block
    shuffled = tmp_path / "shuffled.jsonl.gz"
    write_lines(shuffled, [encode(e) for e in shuffled_events], gz=True)
    a = replay([ordered], thresholds=thresholds)
    b = replay([shuffled], thresholds=thresholds)
    assert [f.alert_id for f in a.findings] == [f.alert_id for f in b.findings] != []
    assert b.late_events == 0


def test_several_files_merge_by_event_time_and_batches_are_accepted(tmp_path, thresholds):
    events = refusal_events()
    write_lines(tmp_path / "even.jsonl", [encode(e) for e in events[0::2]])
    odd = events[1::2]
    write_lines(tmp_path / "odd.jsonl", [json.dumps(odd[i : i + 10]).encode() for i in range(0, len(odd), 10)])
    single = replay([tmp_path / "even.jsonl", tmp_path / "odd.jsonl"], thresholds=thresholds)
    whole = tmp_path / "whole.jsonl"
    write_lines(whole, [encode(e) for e in events])
    assert single.events == 4000
    assert [f.alert_id for f in single.findings] == [f.alert_id for f in replay([whole], thresholds=thresholds).findings]


def test_cli_replay_writes_findings_and_keeps_rejects_with_exit_zero(tmp_path, capsys):
    log = tmp_path / "log.jsonl"
    lines = [encode(e) for e in refusal_events()]
    lines.insert(10, b"{broken")
    lines.insert(20, json.dumps([tool_call(1), {"kind": "tool_call"}]).encode())
    write_lines(log, lines)
    out = tmp_path / "findings.jsonl"
    assert main(["replay", str(log), "--out", str(out), "--embed", "off"]) == 0  # embedded, the refusal wave is also a content drift
    printed = capsys.readouterr().out
    assert "rejected 2 records: invalid_json 1, missing_field 1" in printed
    assert "refusal" in printed and "AIFMRefusalRateHigh" in printed
    findings = [json.loads(line) for line in out.read_text().splitlines()]
    assert [f["alert"] for f in findings] == ["AIFMRefusalRateHigh"]
    rejects = [json.loads(line) for line in (tmp_path / "findings.jsonl.rejects.jsonl").read_text().splitlines()]
    assert [(r["line"], r["reason"], r["index"]) for r in rejects] == [(11, "invalid_json", None), (21, "missing_field", 1)]
    assert rejects[0]["record"] == "{broken"


def test_cli_keeps_non_utf8_rejects_as_base64(tmp_path, capsys):
    log = tmp_path / "log.jsonl"
    write_lines(log, [b"\xff\xfe", encode(model_call(0))])
    rejects = tmp_path / "r.jsonl"
    assert main(["replay", str(log), "--rejects", str(rejects)]) == 0
    (entry,) = [json.loads(line) for line in rejects.read_text().splitlines()]
    assert entry["reason"] == "not_utf8" and entry["record_base64"] == "//4="


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--thresholds", "/nonexistent/t.yaml"], "cannot read the thresholds file"),
        (["--boundaries", "/nonexistent/dir"], "not a directory"),
        (["--incidents", "/nonexistent/i.jsonl"], "cannot read the incidents file"),
    ],
)
def test_cli_invalid_configuration_exits_2_with_a_clear_message(tmp_path, capsys, extra, message):
    log = tmp_path / "log.jsonl"
    write_lines(log, [encode(model_call(0))])
    assert main(["replay", str(log), *extra]) == 2
    assert message in capsys.readouterr().err


def test_cli_unreadable_path_exits_2(tmp_path, capsys):
    assert main(["replay", str(tmp_path / "missing.jsonl")]) == 2
    assert "missing.jsonl: no such file or directory" in capsys.readouterr().err


def test_cli_corrupt_gzip_exits_2(tmp_path, capsys):
    log = tmp_path / "log.jsonl.gz"
    log.write_bytes(gzip.compress(b"".join(encode(model_call(i)) + b"\n" for i in range(1000)))[:300])
    assert main(["replay", str(log)]) == 2
    assert "unreadable after line" in capsys.readouterr().err


def test_cli_signals_writes_one_line_per_accepted_event(tmp_path, capsys):
    log = tmp_path / "log.jsonl"
    write_lines(log, [encode(model_call(0, output_text="I must decline.", mean_logprob=-2.0)), b"nope", encode(tool_call(1, status="timeout"))])
    out = tmp_path / "signals.jsonl"
    assert main(["signals", str(log), "--out", str(out)]) == 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["event_id"] for line in lines] == ["m-0", "t-1"]
    assert lines[0]["signals"]["refusal"] == {"score": 0.95, "flag": True}
    assert lines[0]["signals"]["hallucination"]["low_confidence"] is True
    assert lines[1]["signals"]["tool_failure"] == {"flag": True, "failure": "timeout"}
    assert "I must decline" not in json.dumps(lines)


def test_cli_simulate_then_replay_round_trip(tmp_path, capsys):
    assert main(["simulate", "--out", str(tmp_path), "--events", "20000", "--seed", "3"]) == 0
    assert main(["replay", str(tmp_path / "events.jsonl.gz"), "--boundaries", str(tmp_path / "boundaries"), "--incidents", str(tmp_path / "incidents.jsonl")]) == 0
    assert "labelled incidents detected:" in capsys.readouterr().out


def test_replay_embeds_a_text_only_history_by_default_and_finds_a_language_shift_the_same_way_twice(tmp_path, capsys):
    pytest.importorskip("sentence_transformers")
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
    from text_history import text_history

    log, incidents = tmp_path / "history.jsonl", tmp_path / "incidents.jsonl"
    labels = text_history(log, events=4000, seconds=3600, shift_start=0.8, shift_minutes=12, pool=400)
    incidents.write_text("".join(json.dumps(label) + "\n" for label in labels))
    runs = []
    for run in (1, 2):
        out = tmp_path / f"findings-{run}.jsonl"
        assert main(["replay", str(log), "--incidents", str(incidents), "--out", str(out)]) == 0
        runs.append(out.read_bytes())
    printed = capsys.readouterr().out
    assert "detected embedding_drift model=gpt-4o" in printed and "findings outside incidents: 0" in printed
    assert "embeddings: every output" in printed and "NOT ARMED" not in printed
    assert runs[0] == runs[1], "two replays of one history give identical findings"
    assert main(["replay", str(log), "--incidents", str(incidents), "--embed", "off"]) == 0
    off = capsys.readouterr().out
    assert "MISSED   embedding_drift model=gpt-4o" in off, "without embeddings the shift is invisible"

"""The pipeline end to end on seeded streams: exact detection points, floors, caps, segments."""

from __future__ import annotations

import json
import random

from conftest import encode, model_call, tool_call

from monitor.events import decode_record
from monitor.findings import encode_finding
from monitor.pipeline import Pipeline
from monitor.signals.tool_scope import Boundaries

REFUSAL = "I'm sorry, but I can't help with that."
ANSWER = "Here is the answer you asked for."


def run(pipeline: Pipeline, events: list[dict]) -> list[tuple[int, object]]:
    """(index of the triggering event, finding) for every finding."""
    found = []
    for index, raw in enumerate(events):
        for finding in pipeline.process_record(encode(raw)).findings:
            found.append((index, finding))
    return found


def refusal_stream(seed: int, n_before: int, n_after: int, p0: float, p1: float) -> list[dict]:
    rng = random.Random(seed)
    events = []
    for i in range(n_before + n_after):
        p = p0 if i < n_before else p1
        events.append(model_call(i, output_text=REFUSAL if rng.random() < p else ANSWER))
    return events


def test_refusal_rate_doubling_is_found_at_the_expected_event(pipeline):
    found = run(pipeline, refusal_stream(1, 3000, 1500, 0.05, 0.10))
    assert [(i, f.alert, f.key) for i, f in found] == [(3657, "AIFMRefusalRateHigh", {"model": "gpt-4o"})]
    finding = found[0][1]
    assert finding.event_id == "m-3657" and finding.statistic > finding.threshold == 9.0


def test_clean_traffic_raises_nothing(pipeline):
    assert run(pipeline, refusal_stream(2, 20_000, 0, 0.05, 0.05)) == []


def test_latency_shift_is_found_per_call_and_per_token(pipeline):
    rng = random.Random(3)
    events = []
    for i in range(2000):
        slow = 1.5 if i >= 1500 else 1.0
        tokens = rng.randint(50, 150)
        events.append(model_call(i, latency_ms=(200 + 10 * tokens) * slow * rng.lognormvariate(0, 0.1), output_tokens=tokens))
    found = run(pipeline, events)
    assert [(i, f.alert) for i, f in found] == [(1504, "AIFMLatencyPerTokenShift"), (1510, "AIFMLatencyShift")]  # a x1.5 step at event 1500, h 14


def test_a_tool_with_one_failed_call_pages_nobody(pipeline):
    found = run(pipeline, [tool_call(0, status="error")] + [tool_call(i) for i in range(1, 20)])
    assert found == []


def test_tool_failure_rate_rise_per_agent_and_tool(pipeline):
    rng = random.Random(4)
    events = []
    for i in range(3000):
        fail = rng.random() < (0.05 if i < 2000 else 0.25)
        events.append(tool_call(i, tool="get_order", result={"ok": False} if fail else {"ok": True}))
    found = run(pipeline, events)
    assert [(i, f.alert, f.key) for i, f in found] == [(2035, "AIFMToolFailureRateHigh", {"agent": "support-bot", "tool": "get_order"})]


def test_scope_violation_is_critical_and_cooled_down_per_agent_and_tool(pipeline):
    events = [tool_call(i, tool="refund_order") for i in range(5)] + [tool_call(400, tool="refund_order")]
    found = run(pipeline, events)
    assert [(i, f.alert, f.severity, f.details["verdict"]) for i, f in found] == [
        (0, "AIFMToolScopeViolation", "critical", "denied"),
        (5, "AIFMToolScopeViolation", "critical", "denied"),
    ]


def test_blocked_calls_are_counted_not_flagged(pipeline):
    assert run(pipeline, [tool_call(i, tool="refund_order", status="blocked") for i in range(3)]) == []
    assert pipeline.blocked_tool_calls[("support-bot", "refund_order")] == 3


def test_runaway_loop_in_one_session(pipeline):
    events = [tool_call(i, session_id="s-loop", args_hash="same") for i in range(12)]
    found = run(pipeline, events)
    assert [(i, f.alert, f.details["session_id"]) for i, f in found] == [(8, "AIFMAgentLoopRepeatedCall", "s-loop")]


def test_kill_switch_engaged_then_call_after_grace_is_critical(pipeline):
    events = [
        {"kind": "control", "event_id": "c-1", "ts": 1_700_000_000, "caller": "oncall", "action": "kill_switch", "target_agent": "support-bot"},
        tool_call(30),
        tool_call(61),
        tool_call(62),
        {"kind": "control", "event_id": "c-2", "ts": 1_700_000_100, "caller": "oncall", "action": "resume", "target_agent": "support-bot"},
        tool_call(200),
    ]
    found = run(pipeline, events)
    assert [(i, f.alert, f.severity) for i, f in found] == [
        (0, "AIFMKillSwitchEngaged", "warning"),
        (2, "AIFMCallAfterKillSwitch", "critical"),
    ]


def test_audit_gaps_against_the_fixed_target(pipeline):
    events = [tool_call(i, caller=None) for i in range(300)]
    found = run(pipeline, events)
    assert [(i, f.alert, f.key) for i, f in found] == [(205, "AIFMAuditTrailGaps", {"agent": "support-bot"})]


def test_model_version_change_is_an_annotation_and_keeps_the_reference(pipeline):
    events = refusal_stream(5, 3000, 0, 0.05, 0.05)
    events.append(model_call(3000, model_version="v2"))
    events += [model_call(3001 + i, model_version="v2", output_text=REFUSAL if i % 5 == 0 else ANSWER) for i in range(400)]
    found = run(pipeline, events)
    assert [(i, f.type, f.alert) for i, f in found] == [
        (3000, "annotation", "AIFMModelVersionChanged"),
        (3096, "finding", "AIFMRefusalRateHigh"),
    ]
    assert found[0][1].key == {"model": "gpt-4o", "model_version": "v2"}
    assert found[0][1].details == {"previous_version": "v1"}


def test_alert_ids_are_deterministic_across_reprocessing(thresholds):
    events = refusal_stream(1, 3000, 1500, 0.05, 0.10)
    first = run(Pipeline(thresholds, Boundaries()), events)
    second = run(Pipeline(thresholds, Boundaries()), events)
    assert [f.alert_id for _, f in first] == [f.alert_id for _, f in second]
    assert len({f.alert_id for _, f in first}) == len(first)


def test_findings_never_carry_prompt_or_response_text(pipeline):
    secret_in, secret_out = "PROMPT-SECRET-123", "I can't help with RESPONSE-SECRET-456."
    events = [model_call(i, input_text=secret_in, output_text=secret_out) for i in range(2000)]
    events += [tool_call(i, tool="refund_order", result={"text": secret_out}) for i in range(3)]
    found = run(pipeline, events)
    assert found
    for _, finding in found:
        blob = encode_finding(finding).decode()
        assert "SECRET" not in blob


def test_key_cap_folds_a_flood_of_model_names_into_other(thresholds):
    pipeline = Pipeline(thresholds, Boundaries())
    labels = set()
    for i in range(5000):
        for result in pipeline.process_record(encode(model_call(i, model=f"model-{i}"))).results:
            labels.add(pipeline.metric_labels(result.event))
    models = {key["model"] for _, _, key, _, _ in pipeline.streams() if "model" in key}
    assert len(models) == thresholds.max_values_per_label + 1
    assert "other" in models
    assert {model for model, _, _ in labels} == models
    names, label_triples = pipeline.key_streams.cached_names()
    assert names <= 2 * thresholds.max_values_per_label + 2
    assert label_triples <= thresholds.max_values_per_label


def test_process_record_counts_rejects_and_keeps_good_events(pipeline):
    batch = json.dumps([model_call(0), {"kind": "x"}, tool_call(1)]).encode()
    result = pipeline.process_record(batch)
    assert [r.event.event_id for r in result.results] == ["m-0", "t-1"]
    assert [(r.reason, r.index) for r in result.rejects] == [("unknown_kind", 1)]
    pipeline.process_record(b"\xff")
    assert dict(pipeline.rejects_by_reason) == {"unknown_kind": 1, "not_utf8": 1}
    assert dict(pipeline.events_by_kind) == {"model_call": 1, "tool_call": 1}


def test_events_without_timestamp_use_the_latest_event_time(pipeline):
    pipeline.process_record(encode(model_call(10)))
    (event,), _ = decode_record(encode(model_call(11, ts=None)))
    pipeline.process(event)
    assert pipeline.clock == 1_700_000_010


def test_an_exception_inside_the_pipeline_costs_that_event_only_and_keeps_it(thresholds):
    from conftest import encode, model_call

    class Failing(Pipeline):  # the compiled Pipeline is an extension type: its methods are overridden, not patched
        def process(self, event):
            if event.event_id == "m-1":
                raise ZeroDivisionError("a bug")
            return super().process(event)

    pipeline = Failing(thresholds)
    result = pipeline.process_record(encode([model_call(0), model_call(1), model_call(2)]))
    assert [r.event.event_id for r in result.results] == ["m-0", "m-2"]
    (reject,) = result.rejects
    assert reject.reason == "internal_error" and b'"event_id":"m-1"' in reject.raw
    assert "a bug" not in reject.detail and pipeline.rejects_by_reason["internal_error"] == 1


def test_a_detector_finding_states_when_the_change_started_not_only_when_it_was_detected(thresholds):
    rng = random.Random(5)
    pipeline = Pipeline(thresholds)
    change_at = 3000
    findings = []
    for i in range(6000):
        refused = rng.random() < (0.04 if i < change_at else 0.16)
        text = "I'm sorry, but I can't help with that." if refused else "Sure, here it is."
        findings += pipeline.process_record(encode(model_call(i, output_text=text))).findings
    (refusal,) = [f for f in findings if f.signal == "refusal"]
    change_ts = 1_700_000_000 + change_at
    assert refusal.started_at < refusal.ts, "the onset precedes the alarm"
    assert abs(refusal.started_at - change_ts) < (refusal.ts - change_ts) / 2, "and lies nearer the change than the alarm does"
    violation = pipeline.process_record(encode(tool_call(9000, tool="refund_order", status="blocked"))).findings
    assert all(f.started_at == f.ts for f in violation), "a violation starts where it happens"

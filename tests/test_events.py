"""Decoding: every reject reason, batches, OpenTelemetry names, normalisation."""

from __future__ import annotations

import json

import pytest
from conftest import encode, model_call, tool_call

from monitor.events import REJECT_REASONS, decode_record


def reasons(raw) -> list[str]:
    return [r.reason for r in decode_record(raw, max_bytes=2000)[1]]


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (None, "empty"),
        (b"", "empty"),
        (b"   \n", "empty"),
        (b"null", "empty"),
        (b"[]", "empty"),
        (b"{" + b" " * 3000 + b"}", "too_large"),
        (b"\xff\xfe{}", "not_utf8"),
        (b'{"kind": "model_call", "model": "m", "output_text": "\xff"}', "not_utf8"),
        (b'{"kind": "model_call", "model": ', "invalid_json"),
        (b"{bad json}", "invalid_json"),
        (b"42", "not_object"),
        (b'"a string"', "not_object"),
        (b'{"kind": "model_call", "model": 5}', "schema"),
        (b'{"kind": "model_call", "model": "m", "latency_ms": "fast"}', "schema"),
        (b'{"kind": "model_call", "model": "m", "latency_ms": -3}', "schema"),
        (b'{"kind": "model_call", "model": "m", "ts": "yesterday"}', "schema"),
        (b'{"kind": "model_call", "model": "m", "ts": "2026-01-01T00:00:00"}', "schema"),
        (b'{"kind": "model_call", "model": "m", "mean_logprob": 0.5}', "schema"),
        (b'{"kind": "tool_call", "tool": "t", "status": "weird"}', "schema"),
        (b'{"kind": "feedback", "target_event_id": "x", "score": 1.5}', "schema"),
        (b'{"kind": "control", "action": "explode"}', "schema"),
        (b'{"kind": "model_call"}', "missing_field"),
        (b'{"kind": "tool_call", "tool": "t"}', "missing_field"),
        (b'{"kind": "tool_call", "status": "ok"}', "missing_field"),
        (b'{"kind": "feedback", "score": 0.2}', "missing_field"),
        (b'{"kind": "control"}', "missing_field"),
        (b'{"event_id": "no kind"}', "missing_field"),
        (b'{"kind": "telemetry"}', "unknown_kind"),
        (b'{"gen_ai.operation.name": "create_image"}', "unknown_kind"),
    ],
)
def test_each_bad_record_gets_its_reason(raw, reason):
    assert reasons(raw) == [reason]


def test_every_reject_reason_is_exercised():
    # the parametrized cases above cover the whole public vocabulary
    covered = {"empty", "too_large", "not_utf8", "invalid_json", "not_object", "schema", "missing_field", "unknown_kind"}
    covered |= {"otlp_invalid", "internal_error"}  # OTLP requests: tests/test_otel.py; pipeline failures: tests/test_pipeline.py
    assert covered == set(REJECT_REASONS)


def test_reject_detail_names_the_field_but_never_the_value():
    secret = "my-secret-prompt-text"
    _, rejects = decode_record(json.dumps({"kind": "model_call", "model": 7, "output_text": secret}).encode())
    assert rejects[0].reason == "schema"
    assert "$.model" in rejects[0].detail
    assert secret not in rejects[0].detail


def test_a_batch_mixing_good_and_bad_events_keeps_every_good_one():
    batch = [model_call(0), {"kind": "nope"}, 17, tool_call(1), {"kind": "tool_call", "tool": "t"}, model_call(2)]
    events, rejects = decode_record(json.dumps(batch).encode())
    assert [e.event_id for e in events] == ["m-0", "t-1", "m-2"]
    assert [(r.index, r.reason) for r in rejects] == [(1, "unknown_kind"), (2, "not_object"), (4, "missing_field")]


def test_timestamps_rfc3339_and_epoch_normalise_to_epoch_seconds():
    events, _ = decode_record(json.dumps([model_call(0, ts="2026-11-02T08:00:00.500Z"), model_call(1, ts="2026-11-02T09:00:00+01:00"), model_call(2, ts=1793606400)]).encode())
    assert [e.ts for e in events] == [1793606400.5, 1793606400.0, 1793606400.0]


def test_opentelemetry_genai_names_map_onto_the_schema():
    raw = {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "gpt-4o",
        "gen_ai.response.model": "gpt-4o-2024-08-06",
        "gen_ai.provider.name": "openai",
        "gen_ai.usage.input_tokens": 12,
        "gen_ai.usage.output_tokens": 34,
        "gen_ai.response.finish_reasons": ["length"],
        "gen_ai.agent.name": "support-bot",
        "gen_ai.conversation.id": "conv-1",
        "gen_ai.response.id": "resp-1",
        "error.type": "429",
    }
    (event,), rejects = decode_record(json.dumps(raw).encode())
    assert rejects == []
    assert (event.kind, event.model, event.model_version, event.provider) == ("model_call", "gpt-4o", "gpt-4o-2024-08-06", "openai")
    assert (event.input_tokens, event.output_tokens, event.finish_reason) == (12, 34, "length")
    assert (event.agent, event.session_id, event.event_id, event.error_type) == ("support-bot", "conv-1", "resp-1", "429")


def test_older_opentelemetry_names_are_accepted():
    raw = {"gen_ai.operation.name": "text_completion", "gen_ai.system": "anthropic", "gen_ai.request.model": "claude", "gen_ai.usage.prompt_tokens": 5, "gen_ai.usage.completion_tokens": 6}
    (event,), _ = decode_record(json.dumps(raw).encode())
    assert (event.provider, event.input_tokens, event.output_tokens) == ("anthropic", 5, 6)


def test_execute_tool_operation_is_a_tool_call():
    raw = {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "search_kb", "status": "ok"}
    (event,), _ = decode_record(json.dumps(raw).encode())
    assert (event.kind, event.tool) == ("tool_call", "search_kb")


def test_logprobs_list_gives_its_mean():
    (event,), _ = decode_record(encode(model_call(0, logprobs=[-0.5, -1.5])))
    assert event.mean_logprob == -1.0


def test_unknown_fields_are_ignored():
    (event,), rejects = decode_record(encode(model_call(0, custom_attribute={"x": 1})))
    assert rejects == [] and event.model == "gpt-4o"


def test_json_nested_past_the_recursion_limit_is_a_reject_not_an_exception():
    deep = b'{"kind": "tool_call", "tool": "t", "status": "ok", "result": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    events, rejects = decode_record(deep, max_bytes=100_000)
    assert events == [] and [r.reason for r in rejects] == ["schema"]
    events, rejects = decode_record(b"[" + deep + b"]", max_bytes=100_000)
    assert events == [] and [r.reason for r in rejects] == ["schema"]


def test_token_counts_are_bounded_at_decode():
    huge = b'{"kind": "model_call", "model": "m", "latency_ms": 5, "output_tokens": 1' + b"0" * 309 + b"}"
    assert reasons(huge) == ["schema"]


def test_the_monitors_own_scores_are_never_read_from_input():
    raw = b'{"kind": "model_call", "model": "m", "output_text": "Sure.", "aifm.internal.semantic": {"refusal_margin": 0.5}}'
    (event,), _ = decode_record(raw)
    assert event.semantic is None

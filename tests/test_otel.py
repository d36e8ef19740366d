"""OpenTelemetry ingestion: real instrumentation libraries around the real openai SDK, OTLP as the Collector forwards it.

Each library runs in its own process (``otel_app.py``: their settings are read once per
process), against a fake OpenAI-compatible server on loopback. Its exports, encoded by
the OpenTelemetry SDK's own OTLP encoder, are decoded here exactly as the worker
decodes the Collector kafka exporter's messages.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode

from monitor.cli import main
from monitor.events import decode_record
from monitor.otel.otlp import to_otlp_json
from monitor.pipeline import AIFM, OTLP_LOGS, OTLP_SPANS, Pipeline

HERE = Path(__file__).resolve().parent
PLAN = [["hello", 4], ["BOMB please", 2], ["RATE", 1], ["TOOL call it", 1]]


def run_app(library: str, out: Path, plan=PLAN) -> tuple[list[bytes], list[bytes]]:
    """The instrumented app's OTLP requests: (trace requests, log requests)."""
    subprocess.run([sys.executable, str(HERE / "otel_app.py"), library, str(out), json.dumps(plan)], check=True, timeout=120, capture_output=True)
    read = lambda name: [base64.b64decode(line) for line in (out / name).read_text().splitlines()] if (out / name).exists() else []  # noqa: E731
    return read("spans.b64"), read("logs.b64")


@pytest.fixture(scope="module")
def captured(tmp_path_factory) -> dict[str, tuple[list[bytes], list[bytes]]]:
    root = tmp_path_factory.mktemp("otel")
    return {library: run_app(library, root / library) for library in ("openai-v2", "openai-v2-latest", "openinference")}


def decode_all(thresholds, spans: list[bytes], logs: list[bytes], logs_first: bool = True):
    pipeline = Pipeline(thresholds)
    results, rejects = [], []
    order = [(OTLP_LOGS, r) for r in logs] + [(OTLP_SPANS, r) for r in spans]
    if not logs_first:
        order.reverse()
    for source, raw in order:
        result = pipeline.process_record(raw, source=source)
        results += result.results
        rejects += result.rejects
    results += pipeline.release_held().results
    return pipeline, results, rejects


@pytest.mark.parametrize("library", ["openai-v2", "openai-v2-latest", "openinference"])
def test_each_instrumentation_maps_to_model_and_tool_events_with_text_latency_errors_and_agent(captured, thresholds, library):
    pipeline, results, rejects = decode_all(thresholds, *captured[library])
    assert rejects == []
    models = [r for r in results if r.event.kind == "model_call"]
    tools = [r for r in results if r.event.kind == "tool_call"]
    assert len(models) == 8 and len(tools) == 8
    assert pipeline.otlp.ignored_by_kind == {"agent": 8}  # the agent runs, counted once each, not as model calls
    for result in models + tools:
        event = result.event
        assert event.agent == "travel"  # from the invoke_agent ancestor
        assert event.caller == "travel-app"  # service.name
        assert event.latency_ms > 0 and event.ts > 1.7e9
        assert event.session_id == event.trace_id
    assert {r.event.model for r in models} == {"gpt-4o-mini"}
    refused = [r.signals["refusal"]["flag"] for r in models if "refusal" in r.signals]
    assert refused.count(True) == 2 and len(refused) == 6  # 4 answers and 2 refusals have text; the 429 and the tool call none
    failed = [r for r in models if r.event.error_type is not None]
    assert len(failed) == 1 and failed[0].signals["error_rate"] == {"flag": True, "error_class": "rate_limit"}
    assert all(r.event.finish_reason in ("stop", "tool_calls") for r in models if r.event.error_type is None)
    answered = [r for r in models if r.event.error_type is None]
    assert all(r.event.model_version == "gpt-4o-mini-2024-07-18" for r in answered)
    # Control 3 met: the monitor hashed the content it saw, the caller is named, versions come from the response.
    assert [r.signals["audit_gap"]["missing"] for r in results if r.signals["audit_gap"]["flag"]] == [
        ["output_hash"]  # the tool-call answer has no text to hash
    ]
    assert {r.event.status for r in tools} == {"ok"} and all(r.event.args_hash for r in tools)
    assert {r.signals["tool_failure"]["flag"] for r in tools} == {False}


def test_an_openai_agents_agent_under_openinference_reports_its_agent_tool_calls_refusals_and_errors(thresholds, tmp_path):
    spans, _ = run_app("openai-agents", tmp_path / "agents", [["hello", 2], ["BOMB please", 1], ["TOOL weather", 1], ["RATE", 1]])
    pipeline, results, rejects = decode_all(thresholds, spans, [])
    assert rejects == []
    models = [r for r in results if r.event.kind == "model_call"]
    (tool,) = [r for r in results if r.event.kind == "tool_call"]
    assert len(models) == 6  # the tool-using run calls the model twice
    assert {r.event.agent for r in results} == {"travel"} and {r.event.model for r in models} == {"gpt-4o-mini"}
    assert [r.signals["refusal"]["flag"] for r in models if "refusal" in r.signals].count(True) == 1
    assert (tool.event.tool, tool.event.status, tool.event.args_hash is not None) == ("get_weather", "ok", True)
    (failed,) = [r for r in models if r.event.error_type is not None]
    assert failed.signals["error_rate"] == {"flag": True, "error_class": "rate_limit"}
    assert pipeline.otlp.ignored_by_kind["agent"] == 10  # per run: the workflow and the agent, not model calls


def test_legacy_content_joins_from_log_records_that_arrive_after_their_spans(captured, thresholds):
    spans, logs = captured["openai-v2"]
    assert logs, "the legacy convention writes content to log records"
    first, rest = ExportLogsServiceRequest(), ExportLogsServiceRequest()
    first.ParseFromString(logs[0])
    rest.CopyFrom(first)
    del first.resource_logs[0].scope_logs[0].log_records[1:]  # the first call's prompt only
    del rest.resource_logs[0].scope_logs[0].log_records[:1]
    pipeline = Pipeline(thresholds)
    pipeline.process_record(first.SerializeToString(), source=OTLP_LOGS)  # this library is now known to write content to logs
    later = [r for raw in spans for r in pipeline.process_record(raw, source=OTLP_SPANS).results]
    held = pipeline.otlp.held
    later += pipeline.process_record(rest.SerializeToString(), source=OTLP_LOGS).results
    later += pipeline.release_held().results
    texts = [r.event.output_text for r in later if r.event.kind == "model_call"]
    assert held > 0 and pipeline.otlp.held == 0
    assert sum("sorry" in (t or "") for t in texts) == 2


def test_waiting_spans_survive_a_snapshot_and_restore(captured, thresholds):
    spans, logs = captured["openai-v2"]
    first, rest = ExportLogsServiceRequest(), ExportLogsServiceRequest()
    first.ParseFromString(logs[0])
    rest.CopyFrom(first)
    del first.resource_logs[0].scope_logs[0].log_records[1:]
    del rest.resource_logs[0].scope_logs[0].log_records[:1]
    before = Pipeline(thresholds)
    before.process_record(first.SerializeToString(), source=OTLP_LOGS)
    for raw in spans:
        before.process_record(raw, source=OTLP_SPANS)
    waiting = before.otlp.held
    after = Pipeline(thresholds)
    assert after.restore(before.snapshot()) and after.otlp.held == waiting > 0
    released = after.process_record(rest.SerializeToString(), source=OTLP_LOGS).results + after.release_held().results
    assert len(released) == waiting and sum("sorry" in (r.event.output_text or "") for r in released) == 2


def test_spans_without_content_logs_are_not_held(captured, thresholds):
    spans, _ = captured["openai-v2"]
    pipeline = Pipeline(thresholds)
    results = [r for raw in spans for r in pipeline.process_record(raw, source=OTLP_SPANS).results]
    assert pipeline.otlp.held == 0 and len(results) == 16
    assert all(r.event.output_text is None for r in results)  # content capture was in logs that never came


def sdk_spans(build) -> bytes:
    """Spans written with the OpenTelemetry SDK by ``build(tracer)``, as one OTLP request."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "svc"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    build(provider.get_tracer("lib"))
    return encode_spans(exporter.get_finished_spans()).SerializeToString()


def test_openllmetry_openlit_and_litellm_attributes(thresholds):
    def build(tracer):
        # OpenLLMetry (traceloop): gen_ai.prompt.N / gen_ai.completion.N, llm.request.type, traceloop.span.kind
        with tracer.start_as_current_span("travel.agent", attributes={"traceloop.span.kind": "agent", "traceloop.entity.name": "planner"}):
            tracer.start_span("openai.chat", attributes={
                "llm.request.type": "chat", "gen_ai.system": "openai", "gen_ai.request.model": "gpt-4o", "gen_ai.response.model": "gpt-4o-2024-08-06",
                "gen_ai.prompt.0.role": "user", "gen_ai.prompt.0.content": "Plan my trip", "gen_ai.completion.0.role": "assistant",
                "gen_ai.completion.0.content": "I cannot assist with that.", "gen_ai.completion.0.finish_reason": "stop",
                "gen_ai.usage.prompt_tokens": 5, "gen_ai.usage.completion_tokens": 6}).end()
            tool = tracer.start_span("search.tool", attributes={"traceloop.span.kind": "tool", "traceloop.entity.name": "search", "traceloop.entity.input": '{"q": "x"}'})
            tool.set_status(Status(StatusCode.ERROR))
            tool.end()
            tracer.start_span("workflow", attributes={"traceloop.span.kind": "workflow"}).end()
        # openlit: content as span events; LiteLLM: finish reasons as a JSON string, error.code
        span = tracer.start_span("chat claude", attributes={"gen_ai.operation.name": "chat", "gen_ai.request.model": "claude-3", "gen_ai.response.finish_reasons": '["length"]'})
        span.add_event("gen_ai.content.completion", {"gen_ai.completion": "Here is the full itinerary."})
        span.end()
        tracer.start_span("litellm", attributes={"gen_ai.operation.name": "chat", "gen_ai.request.model": "mistral", "error.code": "429"}).end()

    pipeline = Pipeline(thresholds)
    result = pipeline.process_record(sdk_spans(build), source=OTLP_SPANS)
    assert result.rejects == []
    by_model = {r.event.model: r for r in result.results if r.event.kind == "model_call"}
    openllmetry = by_model["gpt-4o"]
    assert openllmetry.event.agent == "planner" and openllmetry.event.input_tokens == 5 and openllmetry.event.model_version == "gpt-4o-2024-08-06"
    assert openllmetry.signals["refusal"]["flag"] is True
    assert by_model["claude-3"].event.output_text == "Here is the full itinerary." and by_model["claude-3"].event.finish_reason == "length"
    assert by_model["mistral"].signals["error_rate"]["error_class"] == "rate_limit"
    (tool,) = [r for r in result.results if r.event.kind == "tool_call"]
    assert (tool.event.tool, tool.event.status, tool.event.agent) == ("search", "error", "planner") and tool.signals["tool_failure"]["flag"]
    assert pipeline.otlp.ignored_by_kind == {"agent": 1, "workflow": 1}


def test_bad_spans_are_rejected_one_by_one_and_never_take_the_good_ones_with_them(captured, thresholds):
    spans, _ = captured["openai-v2-latest"]
    request = ExportTraceServiceRequest()
    request.ParseFromString(spans[0])
    document = json.loads(to_otlp_json(request))
    listed = [span for group in document["resourceSpans"] for scope in group["scopeSpans"] for span in scope["spans"]]
    listed[0]["spanId"] = "abc"  # not 8 bytes
    listed[1]["traceId"] = "not hex at all"
    listed[2]["attributes"].append({"key": "gen_ai.request.model", "value": {"intValue": "5"}})  # a model name of another type
    listed[3]["attributes"].append({"key": "gen_ai.output.messages", "value": {"stringValue": "x" * 500_000}})  # gigantic, still a span
    listed[4]["startTimeUnixNano"] = "not a number"
    pipeline = Pipeline(thresholds)
    events, rejects = pipeline.decode(json.dumps(document).encode(), AIFM)  # OTLP/JSON recognised by content
    assert [(r.reason, r.index) for r in rejects] == [("schema", 0), ("schema", 1), ("schema", 2), ("schema", 4)]
    assert all(r.raw and b"spanId" in r.raw for r in rejects)  # each dead letter is its own span
    assert all("5" not in r.detail and "not a number" not in r.detail for r in rejects)  # details name fields, never values
    assert len(events) == len(listed) - 4 - sum(1 for s in listed[5:] if "invoke_agent" in s["name"])
    assert pipeline.decode(spans[0][:-7], OTLP_SPANS)[1][0].reason == "otlp_invalid"  # truncated protobuf
    assert pipeline.decode(b"\x0a\xff\xff\xff\xff\x0f", OTLP_SPANS)[1][0].reason == "otlp_invalid"
    assert pipeline.decode(b'{"resourceSpans": 3}', AIFM)[1][0].reason == "otlp_invalid"


def test_mutated_requests_never_raise_and_every_reject_has_a_known_reason(captured, thresholds):
    import random

    rng = random.Random(5)
    spans, logs = captured["openai-v2"]
    pipeline = Pipeline(thresholds)
    for _ in range(400):
        source, raw = rng.choice([(OTLP_SPANS, spans[0]), (OTLP_LOGS, logs[0])])
        mutated = bytearray(raw)
        for _ in range(rng.randint(1, 8)):
            mutated[rng.randrange(len(mutated))] = rng.randrange(256)
        result = pipeline.process_record(bytes(mutated), source=source)  # must not raise
        assert all(reject.reason in ("otlp_invalid", "schema", "missing_field") for reject in result.rejects)


def test_replay_and_signals_read_otlp_json_files_as_the_collector_file_exporter_writes_them(captured, tmp_path, capsys):
    spans, logs = captured["openai-v2"]
    lines = []
    for raw, message in [(raw, ExportLogsServiceRequest()) for raw in logs] + [(raw, ExportTraceServiceRequest()) for raw in spans]:
        message.ParseFromString(raw)
        lines.append(to_otlp_json(message))
    path = tmp_path / "otel.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    out = tmp_path / "signals.jsonl"
    assert main(["signals", str(path), "--out", str(out)]) == 0
    signals = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(signals) == 16 and sum(1 for s in signals if s["signals"].get("refusal", {}).get("flag")) == 2
    assert "agent 8" in capsys.readouterr().out  # the summary counts the ignored agent spans


def test_our_json_path_ignores_other_kinds_fields_and_reads_otel_names_as_libraries_write_them():
    (event,), rejects = decode_record(b'{"kind": "model_call", "model": "m", "label": 1, "status": 7}')
    assert rejects == [] and event.model == "m" and event.label is None
    (tool,), _ = decode_record(b'{"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "search"}')
    assert (tool.kind, tool.status) == ("tool_call", "ok")
    (failed,), _ = decode_record(b'{"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "search", "error.type": "Timeout"}')
    assert failed.status == "error"
    (litellm,), _ = decode_record(b'{"gen_ai.operation.name": "chat", "gen_ai.request.model": "m", "gen_ai.response.finish_reasons": "[\\"stop\\"]"}')
    assert litellm.finish_reason == "stop"
    _, rejects = decode_record(b'{"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "a"}')
    assert [r.reason for r in rejects] == ["unknown_kind"]  # an agent run is not a model call


# -- the worker, against the real embedded broker ------------------------------------------

from kafka_helpers import Names, WorkerProcess, produce, read_topic  # noqa: E402

from monitor.worker.broker import EmbeddedBroker  # noqa: E402


def split_by_trace(raw: bytes, request_class) -> list[tuple[bytes, bytes]]:
    """(trace id, request of that trace's spans or log records): the kafka exporter's partitioning by trace id."""
    request = request_class()
    request.ParseFromString(raw)
    by_trace: dict[bytes, object] = {}
    spans = request_class is ExportTraceServiceRequest
    for group in request.resource_spans if spans else request.resource_logs:
        for scope in group.scope_spans if spans else group.scope_logs:
            for item in scope.spans if spans else scope.log_records:
                single = by_trace.setdefault(item.trace_id, request_class())
                target_group = (single.resource_spans if spans else single.resource_logs).add()
                target_group.resource.CopyFrom(group.resource)
                target_scope = (target_group.scope_spans if spans else target_group.scope_logs).add()
                target_scope.scope.CopyFrom(scope.scope)
                (target_scope.spans if spans else target_scope.log_records).add().CopyFrom(item)
    return [(trace_id, message.SerializeToString()) for trace_id, message in by_trace.items()]


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    with EmbeddedBroker(log_path=tmp_path_factory.mktemp("broker") / "tansu.log") as running:
        yield running


@pytest.mark.timeout(300)
def test_the_worker_consumes_the_collector_kafka_exporters_messages_and_finds_refusals_errors_and_tool_failures(broker, tmp_path):
    """600 calls as usual, then a refusal wave, then 429s with failing tools: legacy content (log records on their own topic)."""
    spans, logs = run_app("openai-v2", tmp_path / "app", [["hello", 600], ["BOMB", 120], ["RATE TOOLFAIL", 120]])
    names = Names()
    worker = WorkerProcess(broker.bootstrap_servers, names, tmp_path).start()
    try:
        worker.wait_ready()
        bad = ExportTraceServiceRequest()
        bad.ParseFromString(spans[0])
        bad.resource_spans[0].scope_spans[0].spans[0].span_id = b"\x01\x02"  # one bad span in an otherwise good request
        # As the Collector's kafka exporter writes them with partition_traces_by_id / partition_logs_by_trace_id
        # (docs/otel.md): one message per trace, keyed by trace id. Logs go first, as the SDK's batch processors
        # usually deliver them; an agent span comes in a later request than its children.
        log_records = [record for raw in logs for record in split_by_trace(raw, ExportLogsServiceRequest)]
        produce(broker.bootstrap_servers, names.otlp_logs, log_records)
        worker.wait_metric("aifm_record_processing_seconds_count", len(log_records))  # spans of a library not yet seen logging content do not wait
        requests = [bad.SerializeToString(), *spans[1:]]
        produce(broker.bootstrap_servers, names.otlp_spans, [r for raw in requests for r in split_by_trace(raw, ExportTraceServiceRequest)] + [(None, b"\x0a\xff")])
        worker.wait_metric("aifm_signal_flagged_events_total", 120, signal="tool_failure", agent="travel", tool="get_weather", timeout=120)
        worker.wait_metric("aifm_events_total", 2 * 840 - 1, timeout=30)
        alerts = {json.loads(r.value)["alert"] for r in read_topic(broker.bootstrap_servers, names.alerts, at_least=3, timeout=60)}
        assert {"AIFMRefusalRateHigh", "AIFMProviderErrorRateHigh", "AIFMToolFailureRateHigh"} <= alerts
        assert worker.metric("aifm_events_total") == 2 * 840 - 1  # every span once, the bad one a dead letter
        assert worker.metric("aifm_otlp_spans_ignored_total", kind="agent") == 840
        assert worker.metric("aifm_otlp_log_content_joined_total") >= 700
        dead = read_topic(broker.bootstrap_servers, names.dlq, at_least=2)
        headers = [dict(r.headers) for r in dead]
        assert sorted(h["aifm.reason"] for h in headers) == [b"otlp_invalid", b"schema"]
        (span_letter,) = [h for h in headers if h["aifm.reason"] == b"schema"]
        assert span_letter["aifm.otlp.element"] == b"span" and span_letter["aifm.batch_index"] == b"0"
        assert worker.metric("aifm_signal_flagged_events_total", signal="audit_gap") == 0  # Control 3 met by a well-instrumented app
    finally:
        status, seconds = worker.stop()
    assert status == 0 and seconds < 10


def test_replay_reads_an_otlp_topic_straight_from_kafka(broker, captured, tmp_path, capsys):
    spans, _ = captured["openai-v2-latest"]
    names = Names()
    produce(broker.bootstrap_servers, names.otlp_spans, [(None, raw) for raw in spans])
    out = tmp_path / "signals.jsonl"
    assert main(["signals", "--from-kafka", names.otlp_spans, "--format", "otlp_spans", "--bootstrap-servers", broker.bootstrap_servers, "--out", str(out)]) == 0
    signals = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(signals) == 16 and sum(1 for s in signals if s["signals"].get("refusal", {}).get("flag")) == 2


def test_the_demo_runs_on_otlp_input_and_stops_everything_it_started():
    import os
    import re

    from kafka_helpers import AIFM

    result = subprocess.run(
        [AIFM, "demo", "--otel", "--events", "12000", "--rate", "4000", "--metrics-port", "0", "--exit-when-done"], capture_output=True, text=True, timeout=180
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    assert "model and tool calls as OTLP spans on otlp_spans" in out
    assert re.search(r"\[status\] sent ([\d,]+)/\1  processed \1 ", out), out[-2000:]  # every span became exactly one event
    assert re.search(r"labelled incidents detected: [1-9]\d*/\d+", out), out[-2000:]  # scored as the JSON demo is
    pid = int(re.search(r"embedded broker \(Tansu, memory storage\) on 127\.0\.0\.1:\d+, pid (\d+)", out).group(1))
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)

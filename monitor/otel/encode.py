"""aifm events -> OTLP trace requests, as an application instrumented by the GenAI conventions would export them.

For ``aifm demo --otel``: the simulator's model and tool calls become ``chat`` and
``execute_tool`` spans (latest GenAI conventions, content on the span), sent as the
Collector's kafka exporter would. What OpenTelemetry has no attribute for stays out:
token log-probabilities, precomputed embeddings, pre-call gate blocks, feedback and
control events (the last three come from the platform, not from instrumentation, and go
to the JSON topic as before).
"""

from __future__ import annotations

import hashlib
import json

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from monitor.events import parse_ts


def expressible(event: dict) -> bool:
    """Whether OpenTelemetry instrumentation would report this event as a span."""
    return event.get("kind") == "model_call" or (event.get("kind") == "tool_call" and event.get("status") != "blocked")


def to_request(events: list[dict], service: str = "aifm-demo-app") -> ExportTraceServiceRequest:
    """One trace request holding a span per event (each event must be :func:`expressible`)."""
    request = ExportTraceServiceRequest()
    group = request.resource_spans.add()
    group.resource.attributes.append(_kv("service.name", service))
    scope = group.scope_spans.add()
    scope.scope.name = "aifm.demo"
    for event in events:
        scope.spans.append(_span(event))
    return request


def _span(event: dict) -> Span:
    start = int(parse_ts(event["ts"]) * 1e9)
    span = Span(
        trace_id=_id(event.get("trace_id") or event.get("session_id") or event["event_id"], 16),
        span_id=_id(event["event_id"], 8),
        kind=Span.SPAN_KIND_CLIENT,
        start_time_unix_nano=start,
        end_time_unix_nano=start + int((event.get("latency_ms") or 0.0) * 1e6),
    )
    attributes = {"enduser.id": event.get("caller"), "gen_ai.agent.name": event.get("agent"), "gen_ai.conversation.id": event.get("session_id")}
    if event["kind"] == "model_call":
        span.name = f"chat {event['model']}"
        messages = [{"role": "user", "parts": [{"type": "text", "content": event.get("input_text") or ""}]}]
        for passage in event.get("context") or ():
            messages.append({"role": "tool", "parts": [{"type": "tool_call_response", "response": passage}]})
        attributes.update({
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": event["model"],
            "gen_ai.response.model": event.get("model_version"),
            "gen_ai.provider.name": event.get("provider"),
            "gen_ai.usage.input_tokens": event.get("input_tokens"),
            "gen_ai.usage.output_tokens": event.get("output_tokens"),
            "gen_ai.input.messages": json.dumps(messages),
        })
        if event.get("error_type"):
            attributes["error.type"] = event["error_type"]
        else:
            attributes["gen_ai.response.finish_reasons"] = [event.get("finish_reason") or "stop"]
            output = [{"role": "assistant", "parts": [{"type": "text", "content": event.get("output_text") or ""}], "finish_reason": event.get("finish_reason")}]
            attributes["gen_ai.output.messages"] = json.dumps(output)
    else:
        span.name = f"execute_tool {event['tool']}"
        attributes.update({"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": event["tool"], "gen_ai.tool.call.arguments": event.get("args_hash")})
        if event.get("result") is not None:
            attributes["gen_ai.tool.call.result"] = json.dumps(event["result"])
        if event.get("status") in ("error", "timeout"):
            attributes["error.type"] = event.get("error_type") or ("TimeoutError" if event["status"] == "timeout" else "ToolError")
    if attributes.get("error.type"):
        span.status.CopyFrom(Status(code=Status.STATUS_CODE_ERROR))
    for key, value in attributes.items():
        if value is not None:
            span.attributes.append(_kv(key, value))
    return span


def _id(text: str, size: int) -> bytes:
    return hashlib.blake2b(str(text).encode(), digest_size=size).digest()


def _kv(key: str, value) -> KeyValue:
    return KeyValue(key=key, value=_any(value))


def _any(value) -> AnyValue:
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    if isinstance(value, list):
        result = AnyValue()
        result.array_value.values.extend(_any(item) for item in value)
        return result
    return AnyValue(string_value=str(value))

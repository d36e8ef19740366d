"""One span -> one aifm event: the mapping of every major GenAI instrumentation (docs/otel.md).

Conventions read, in this order where they overlap:

- OpenTelemetry GenAI semantic conventions, latest (``gen_ai.input.messages`` /
  ``gen_ai.output.messages`` as JSON parts) and legacy (``gen_ai.prompt`` /
  ``gen_ai.completion`` span events, as openlit writes them; ``gen_ai.*.message`` and
  ``gen_ai.choice`` log records, joined by :mod:`monitor.otel.decoder`);
- OpenLLMetry (``llm.request.type``, ``traceloop.span.kind``, ``gen_ai.prompt.N.*`` and
  ``gen_ai.completion.N.*``);
- OpenInference (``openinference.span.kind``, ``llm.*``, ``input.value`` /
  ``output.value``, ``tool.name``);
- LiteLLM (finish reasons as a JSON string, ``error.code``).

Time comes from the span itself: ``ts`` is its start, ``latency_ms`` its duration. A
failure marked only in the span's status (ERROR) is an error. Spans that are not model
or tool operations (agent runs, workflows, chains, retrievers ...) are
ignored, counted by a bounded kind (:data:`IGNORED_KINDS`).
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

import msgspec

from monitor.events import Event, SchemaError
from monitor.otel.otlp import STATUS_ERROR, SpanRecord

#: Kinds of spans that are not events, counted by this bounded set (a metric label).
IGNORED_KINDS = ("agent", "workflow", "chain", "retriever", "embedding", "reranker", "guardrail", "evaluator", "task", "other", "unknown")

#: gen_ai.operation.name of model calls (embeddings too: their latency and errors are a model's).
_MODEL_OPERATIONS = frozenset({"chat", "text_completion", "generate_content", "completion", "responses", "embeddings"})
_AGENT_OPERATIONS = frozenset({"invoke_agent", "create_agent"})
_OPENINFERENCE_KINDS = {"LLM": "model_call", "TOOL": "tool_call", "AGENT": "agent", "CHAIN": "chain", "RETRIEVER": "retriever",
                        "EMBEDDING": "embedding", "RERANKER": "reranker", "GUARDRAIL": "guardrail", "EVALUATOR": "evaluator"}
_TRACELOOP_KINDS = {"tool": "tool_call", "agent": "agent", "workflow": "workflow", "task": "task"}

#: Agent names that name no agent (framework defaults).
PLACEHOLDER_AGENT_NAMES = frozenset({"", "agent", "assistant", "unknown", "default", "none", "null", "agent workflow"})

#: At most this many characters of any one text the mapping reads (prompt, output, tool result).
MAX_TEXT_CHARS = 100_000
_MAX_PARTS = 256


class Content(msgspec.Struct, gc=False):
    """Prompt and output text of one model call, from its span or from log records joined to it."""

    input_text: str | None = None
    output_text: str | None = None
    finish_reason: str | None = None
    tool_results: list[str] | None = None


def span_kind(span: SpanRecord) -> str:
    """``model_call``, ``tool_call``, or one of IGNORED_KINDS."""
    attributes = span.attributes
    operation = attributes.get("gen_ai.operation.name")
    if operation == "execute_tool":
        return "tool_call"
    if operation in _AGENT_OPERATIONS:
        return "agent"
    if operation in _MODEL_OPERATIONS:
        return "model_call"
    openinference = attributes.get("openinference.span.kind")
    if isinstance(openinference, str):
        return _OPENINFERENCE_KINDS.get(openinference.upper(), "other")
    traceloop = attributes.get("traceloop.span.kind")
    if isinstance(traceloop, str):
        return _TRACELOOP_KINDS.get(traceloop.lower(), "other")
    if attributes.get("llm.request.type") in ("chat", "completion"):
        return "model_call"
    if operation is not None:
        return "other"
    return "unknown"


def agent_name(span: SpanRecord) -> str | None:
    """The agent a span names (itself, for an agent span), placeholders excepted."""
    attributes = span.attributes
    for name in ("gen_ai.agent.name", "agent.name", "traceloop.entity.name" if attributes.get("traceloop.span.kind") == "agent" else None):
        if name is None:
            continue
        value = attributes.get(name)
        if isinstance(value, str) and value.strip().lower() not in PLACEHOLDER_AGENT_NAMES:
            return value
    if span_kind(span) == "agent" and attributes.get("openinference.span.kind") and span.name.strip().lower() not in PLACEHOLDER_AGENT_NAMES:
        return span.name  # OpenInference names agent spans after the agent
    return None


def span_content(span: SpanRecord) -> Content:
    """The text a span carries itself, in whichever convention its library writes."""
    attributes = span.attributes
    content = Content()
    output_messages = _json_value(attributes.get("gen_ai.output.messages"))
    input_messages = _json_value(attributes.get("gen_ai.input.messages"))
    if output_messages is not None:
        content.output_text, content.finish_reason = _text_of_messages(output_messages)
    if input_messages is not None:
        content.input_text, _ = _text_of_messages(input_messages, roles=("user", "system"))
        content.tool_results = _tool_results_after_last_assistant(input_messages)
    if content.output_text is None:
        content.output_text = _indexed_text(attributes, "gen_ai.completion", "content") or _indexed_text(attributes, "llm.output_messages", "message.content")
    if content.input_text is None:
        content.input_text = _indexed_text(attributes, "gen_ai.prompt", "content", role_suffix="role") or _indexed_text(
            attributes, "llm.input_messages", "message.content", role_suffix="message.role"
        )
    for name, _, event_attributes in span.events:  # openlit and older libraries: span events
        if name == "gen_ai.content.completion" and content.output_text is None:
            content.output_text = _text(event_attributes.get("gen_ai.completion"))
        elif name == "gen_ai.content.prompt" and content.input_text is None:
            content.input_text = _text(event_attributes.get("gen_ai.prompt"))
    if content.output_text is None and attributes.get("openinference.span.kind") == "LLM":
        content.output_text = _openinference_output(attributes.get("output.value"))
    return content


def log_content(event_name: str, body: Any, attributes: dict) -> Content | None:
    """Content carried by one GenAI log record (legacy ``gen_ai.*.message`` / ``gen_ai.choice``, or the latest operation details)."""
    if event_name == "gen_ai.choice" and isinstance(body, dict):
        message = body.get("message")
        text = _text(message.get("content")) if isinstance(message, dict) else None
        finish = body.get("finish_reason")
        return Content(output_text=text, finish_reason=finish if isinstance(finish, str) else None)
    if event_name in ("gen_ai.user.message", "gen_ai.system.message") and isinstance(body, dict):
        return Content(input_text=_text(body.get("content")))
    if event_name == "gen_ai.tool.message" and isinstance(body, dict):
        text = _text(body.get("content"))
        return Content(tool_results=[text] if text else None)
    if event_name == "gen_ai.client.inference.operation.details":
        output_messages = _json_value(attributes.get("gen_ai.output.messages"))
        input_messages = _json_value(attributes.get("gen_ai.input.messages"))
        content = Content()
        if output_messages is not None:
            content.output_text, content.finish_reason = _text_of_messages(output_messages)
        if input_messages is not None:
            content.input_text, _ = _text_of_messages(input_messages, roles=("user", "system"))
            content.tool_results = _tool_results_after_last_assistant(input_messages)
        return content
    return None


def merge_content(into: Content, more: Content) -> Content:
    """Fill what ``into`` lacks from ``more`` (several log records make up one call)."""
    if into.output_text is None:
        into.output_text = more.output_text
    elif more.output_text:
        into.output_text = (into.output_text + "\n" + more.output_text)[:MAX_TEXT_CHARS]
    into.input_text = into.input_text if into.input_text is not None else more.input_text
    into.finish_reason = into.finish_reason or more.finish_reason
    if more.tool_results:
        into.tool_results = (into.tool_results or []) + more.tool_results
    return into


def span_to_event(span: SpanRecord, kind: str, *, agent: str | None, content: Content | None, fallback_model: str | None = None) -> Event:
    """The aifm event of a model or tool span; raises :class:`SchemaError` when it cannot be one."""
    attributes = span.attributes
    start_s = span.start_ns / 1e9
    if not span.start_ns:
        raise SchemaError("missing_field", "span start_time_unix_nano: absent")
    latency_ms = (span.end_ns - span.start_ns) / 1e6 if span.end_ns >= span.start_ns else None
    conversation = _str(attributes, "gen_ai.conversation.id") or _str(attributes, "session.id")
    event = Event(
        kind=kind,
        event_id=span.span_id,
        ts=start_s,
        trace_id=span.trace_id,
        session_id=conversation or span.trace_id,
        caller=_caller(attributes, span.resource),
        agent=agent,
        latency_ms=latency_ms,
    )
    failed = span.status_code == STATUS_ERROR
    error_type = _str(attributes, "error.type") or _str(attributes, "error.code") or (_exception_type(span) if failed else None)
    if failed and error_type is None:
        error_type = span.status_message[:100] or "error"  # e.g. "Error code: 429": classified, never exported as is
    if kind == "model_call":
        _model_fields(event, span, content or Content(), error_type, fallback_model)
    else:
        _tool_fields(event, span, failed, error_type)
    return event


def _model_fields(event: Event, span: SpanRecord, content: Content, error_type: str | None, fallback_model: str | None) -> None:
    attributes = span.attributes
    response_model = _str(attributes, "gen_ai.response.model") or _str(attributes, "llm.model_name")
    event.model = (
        _str(attributes, "gen_ai.request.model") or _str(attributes, "llm.request.model") or _invocation_model(attributes) or response_model or fallback_model
    )
    event.response_model = response_model
    event.model_version = response_model
    event.provider = _str(attributes, "gen_ai.provider.name") or _str(attributes, "gen_ai.system") or _str(attributes, "llm.system") or _str(attributes, "llm.provider")
    event.input_tokens = _int(attributes, "gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens", "llm.token_count.prompt", "llm.usage.prompt_tokens")
    event.output_tokens = _int(attributes, "gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens", "llm.token_count.completion", "llm.usage.completion_tokens")
    event.finish_reason = _finish_reason(attributes)
    event.error_type = error_type
    ttft = _number(attributes, "gen_ai.response.time_to_first_chunk", "gen_ai.server.time_to_first_token", "llm.openai.chat_completions.streaming_time_to_first_token")
    if ttft is not None:
        event.ttft_ms = ttft * 1000.0  # these libraries record seconds
    apply_content(event, content)


def apply_content(event: Event, content: Content) -> Event:
    """Put a model call's text on its event, with the hashes the monitor computes of it.

    The monitor hashes what it sees, for Control 3: OTel carries no hashes of its own.
    """
    event.output_text = content.output_text
    event.input_text = content.input_text
    event.finish_reason = event.finish_reason or content.finish_reason
    if content.tool_results:
        event.context = content.tool_results[:_MAX_PARTS]  # tool results fed back to the model: untrusted content
    event.input_hash = _digest(event.input_text) if event.input_text is not None else None
    event.output_hash = _digest(event.output_text) if event.output_text is not None else None
    return event


def _tool_fields(event: Event, span: SpanRecord, failed: bool, error_type: str | None) -> None:
    attributes = span.attributes
    event.tool = _str(attributes, "gen_ai.tool.name") or _str(attributes, "tool.name") or (
        _str(attributes, "traceloop.entity.name") if attributes.get("traceloop.span.kind") == "tool" else None
    ) or _tool_from_span_name(span.name)
    if event.tool is None:
        raise SchemaError("missing_field", "gen_ai.tool.name: absent on a tool span (or tool.name, or a span named 'execute_tool NAME')")
    if failed:
        event.status = "timeout" if error_type and "timeout" in error_type.lower() else "error"
        event.error_type = error_type
    else:
        event.status = "ok"
    arguments = _first(attributes, "gen_ai.tool.call.arguments", "tool.parameters", "traceloop.entity.input")
    if arguments is None and attributes.get("openinference.span.kind") == "TOOL":
        arguments = attributes.get("input.value")
    if arguments is not None:
        event.args_hash = _digest(arguments if isinstance(arguments, str) else json.dumps(arguments, sort_keys=True, default=str))
    result = _first(attributes, "gen_ai.tool.call.result", "traceloop.entity.output")
    if result is None and attributes.get("openinference.span.kind") == "TOOL":
        result = attributes.get("output.value")
    if result is not None:
        event.result = _json_value(result) if isinstance(result, str) else result


# -- attribute readers -------------------------------------------------------------------


def _str(attributes: dict, name: str) -> str | None:
    value = attributes.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise SchemaError("schema", f"{name}: expected a string attribute")
    return value


def _named(attributes: dict, names: tuple[str, ...]) -> tuple[str, Any]:
    """(name, value) of the first of ``names`` the attributes hold; ("", None) if none."""
    for name in names:
        value = attributes.get(name)
        if value is not None:
            return name, value
    return "", None


def _first(attributes: dict, *names: str) -> Any:
    return _named(attributes, names)[1]


def _int(attributes: dict, *names: str) -> int | None:
    name, value = _named(attributes, names)
    if value is None:
        return None
    if isinstance(value, str) and value.isdigit() and len(value) <= 18:  # OpenInference's agents instrumentation writes counts as strings
        return int(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value != int(value):
        raise SchemaError("schema", f"{name}: expected an integer attribute")
    return int(value)


def _number(attributes: dict, *names: str) -> float | None:
    name, value = _named(attributes, names)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SchemaError("schema", f"{name}: expected a number attribute")
    return float(value)


def _finish_reason(attributes: dict) -> str | None:
    value = _first(attributes, "gen_ai.response.finish_reasons", "gen_ai.completion.0.finish_reason", "llm.finish_reason")
    if isinstance(value, str) and value[:1] == "[":  # LiteLLM writes the list as a JSON string
        value = _json_value(value)
    if isinstance(value, list):
        value = next((item for item in value if isinstance(item, str) and item), None)
    if value is None:
        return None
    if not isinstance(value, str):
        raise SchemaError("schema", "gen_ai.response.finish_reasons: expected strings")
    return value


def _caller(attributes: dict, resource: dict) -> str | None:
    for value in (attributes.get("enduser.id"), attributes.get("user.id"), resource.get("service.name")):
        if isinstance(value, str) and value and not value.startswith("unknown_service"):
            return value
    return None


def _exception_type(span: SpanRecord) -> str | None:
    for name, _, attributes in span.events:
        if name == "exception":
            value = attributes.get("exception.type")
            if isinstance(value, str) and value:
                return value.rsplit(".", 1)[-1]
    return None


def _invocation_model(attributes: dict) -> str | None:
    parameters = _json_value(attributes.get("llm.invocation_parameters"))
    model = parameters.get("model") if isinstance(parameters, dict) else None
    return model if isinstance(model, str) and model else None


def _tool_from_span_name(name: str) -> str | None:
    operation, _, tool = name.partition(" ")
    return tool.strip() or None if operation == "execute_tool" else None


def _json_value(value: Any) -> Any:
    """A JSON-encoded attribute decoded (libraries store messages as JSON strings), else the value."""
    if not isinstance(value, str):
        return value
    head = value.lstrip()[:1]
    if head not in ("[", "{"):
        return value
    try:
        return json.loads(value)
    except (ValueError, RecursionError):
        return value


def _text(value: Any) -> str | None:
    if isinstance(value, str):
        return value[:MAX_TEXT_CHARS] if value else None
    if isinstance(value, list):  # content given as parts
        texts = [part.get("text") or part.get("content") for part in value[:_MAX_PARTS] if isinstance(part, dict)]
        joined = "\n".join(text for text in texts if isinstance(text, str) and text)
        return joined[:MAX_TEXT_CHARS] or None
    return None


def _text_of_messages(messages: Any, roles: tuple[str, ...] | None = None) -> tuple[str | None, str | None]:
    """Text parts of GenAI messages (latest convention), and the first finish reason."""
    if not isinstance(messages, list):
        return None, None
    texts: list[str] = []
    finish = None
    for message in messages[:_MAX_PARTS]:
        if not isinstance(message, dict) or (roles is not None and message.get("role") not in roles):
            continue
        if finish is None and isinstance(message.get("finish_reason"), str):
            finish = message["finish_reason"]
        parts = message.get("parts")
        if isinstance(parts, list):
            for part in parts[:_MAX_PARTS]:
                if isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("content"), str):
                    texts.append(part["content"])
        else:
            text = _text(message.get("content"))
            if text:
                texts.append(text)
    joined = "\n".join(texts)[:MAX_TEXT_CHARS]
    return joined or None, finish


def _tool_results_after_last_assistant(messages: Any) -> list[str] | None:
    """Tool results the model is now reading (the untrusted content of this call), latest convention."""
    if not isinstance(messages, list):
        return None
    results: list[str] = []
    for message in messages[:_MAX_PARTS]:
        if not isinstance(message, dict):
            continue
        if message.get("role") == "assistant":
            results = []
            continue
        for part in message.get("parts") or ():
            if isinstance(part, dict) and part.get("type") == "tool_call_response":
                response = part.get("response", part.get("result"))
                text = response if isinstance(response, str) else json.dumps(response, default=str) if response is not None else None
                if text:
                    results.append(text[:MAX_TEXT_CHARS])
    return results or None


def _indexed_text(attributes: dict, prefix: str, suffix: str, role_suffix: str | None = None) -> str | None:
    """Text of flattened messages (``prefix.N.suffix``: OpenLLMetry and OpenInference), user turns only for prompts."""
    texts = []
    for index in range(_MAX_PARTS):
        value = attributes.get(f"{prefix}.{index}.{suffix}")
        if value is None and f"{prefix}.{index}.{role_suffix or suffix}" not in attributes:
            break
        if role_suffix is not None and attributes.get(f"{prefix}.{index}.{role_suffix}") not in ("user", "system", None):
            continue
        if isinstance(value, str) and value:
            texts.append(value)
    return "\n".join(texts)[:MAX_TEXT_CHARS] or None


def _openinference_output(value: Any) -> str | None:
    """An OpenInference LLM span's ``output.value``: the provider's raw response JSON, or plain text."""
    decoded = _json_value(value)
    if isinstance(decoded, str):
        return decoded[:MAX_TEXT_CHARS] or None
    if isinstance(decoded, dict):
        choices = decoded.get("choices")
        if isinstance(choices, list) and choices and isinstance(choices[0], dict):
            message = choices[0].get("message")
            if isinstance(message, dict):
                return _text(message.get("content"))
    return None


def _digest(text: str) -> str:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()

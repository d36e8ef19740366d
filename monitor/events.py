"""Event schema, decoding and reject reasons.

One record (a Kafka message value or a line of a JSONL log) holds either one JSON
object (one event) or a JSON array (a batch of events). :func:`decode_record` turns a
record into accepted :class:`Event` objects and :class:`Reject` entries; it never raises
on bad input, so one malformed record can never stop a worker or a replay.

Field names follow our own schema (docs/events.md) and, for the same facts, the
OpenTelemetry GenAI semantic conventions (``gen_ai.request.model``,
``gen_ai.usage.input_tokens``, ...), including the older ``gen_ai.system`` and
``gen_ai.usage.prompt_tokens`` / ``completion_tokens`` names.
"""

from __future__ import annotations

import math
import time
from datetime import datetime
from operator import attrgetter
from typing import Annotated, Any

import msgspec

from monitor.semantic import SemanticScores

KINDS = ("model_call", "tool_call", "feedback", "control")
TOOL_STATUSES = ("ok", "error", "timeout", "blocked")
CONTROL_ACTIONS = ("kill_switch", "resume", "rollback", "deploy")

#: Every reason a record can be rejected for. A bounded set: it is a metric label.
REJECT_REASONS = (
    "empty",  # null value, blank line, or an empty batch
    "too_large",  # over the configured size limit, not parsed at all
    "not_utf8",  # bytes that are not UTF-8
    "invalid_json",  # UTF-8 but not JSON
    "not_object",  # JSON, but neither an object nor an array of objects
    "schema",  # a field of the wrong type or out of its range
    "missing_field",  # a field the event's kind requires is absent
    "unknown_kind",  # no kind we know, and none inferable from gen_ai.operation.name
    "otlp_invalid",  # an OTLP request that cannot be parsed at all (truncated protobuf, another message type, not OTLP/JSON)
    "internal_error",  # an accepted event the pipeline failed on (a bug): kept like any reject, the worker goes on
)

#: The largest token count accepted: far above any context window, far below what breaks float arithmetic.
MAX_TOKENS = 10**12
#: Physical ranges (docs/events.md, "Accepted ranges"): one event outside them could poison detector state for good.
MAX_LATENCY_MS = 86_400_000.0  # a day
MIN_MEAN_LOGPROB = -1000.0
MAX_EMBEDDING_VALUE = 1e6
MAX_EMBEDDING_DIMENSIONS = 16_384
MAX_LOGPROB_MAGNITUDE = 1e6
MAX_CONTEXT_ITEMS = 1_000
MAX_ID_CHARS = 1_024  # event, trace and session ids, caller: kept in state (sessions) and findings
#: An event stamped further ahead of this machine's clock is a clock error: its time would silence cooldowns,
#: loop detection and the kill-switch check (which compare event times) until the clock caught up.
MAX_FUTURE_SECONDS = 86_400.0

DEFAULT_MAX_RECORD_BYTES = 1_000_000

#: Vector elements are bounded as they are decoded, so a hostile vector stops the decode at its first
#: element out of range: msgspec parses a number with an exponent near 308 in ~14 us (others in ~0.02 us),
#: and a 1 MB record of them would otherwise cost two seconds of CPU before any check could run.
_Coordinate = Annotated[float, msgspec.Meta(ge=-MAX_EMBEDDING_VALUE, le=MAX_EMBEDDING_VALUE)]
_LogProbability = Annotated[float, msgspec.Meta(ge=-MAX_LOGPROB_MAGNITUDE, le=MAX_LOGPROB_MAGNITUDE)]

#: gen_ai.operation.name values that describe a model call. Agent runs (invoke_agent,
#: create_agent) are not model calls: their model calls come as events of their own.
_MODEL_OPERATIONS = frozenset({"chat", "text_completion", "generate_content", "completion", "responses", "embeddings"})


class Event(msgspec.Struct, kw_only=True, gc=False):
    """An event, decoded straight from our JSON schema (docs/events.md).

    After :func:`decode_record`, ``kind`` is always set, ``ts`` is epoch seconds (None
    when absent), ``model`` is the requested model, and ``model_version`` the serving
    version (falling back to the response model when the provider answered with
    another model than the one requested). Unknown fields are ignored, so producers can
    add attributes without breaking the monitor. ``gc=False``: an event holds no
    reference cycles, and keeping millions of them out of the garbage collector's
    sight is what lets a replay run at full speed.
    """

    kind: str | None = None
    event_id: str | None = None
    ts: datetime | float | None = None
    trace_id: str | None = None
    session_id: str | None = None
    caller: str | None = None
    agent: str | None = None
    # model_call
    model: str | None = None
    model_version: str | None = None
    response_model: str | None = None
    provider: str | None = None
    input_text: str | None = None
    output_text: str | None = None
    input_hash: str | None = None
    output_hash: str | None = None
    context: list[str] | None = None
    embedding: list[_Coordinate] | None = None
    input_embedding: list[_Coordinate] | None = None
    # Filled by the monitor's own encoder for sampled model and tool calls; not read from the wire (see _OtelEvent).
    semantic: SemanticScores | None = None
    latency_ms: float | None = None
    ttft_ms: float | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    finish_reason: str | None = None
    error_type: str | None = None
    mean_logprob: float | None = None
    logprobs: list[_LogProbability] | None = None
    # tool_call
    tool: str | None = None
    status: str | None = None
    args_hash: str | None = None
    result: Any = None
    # feedback
    target_event_id: str | None = None
    score: float | None = None
    label: str | None = None
    # control
    action: str | None = None
    target_agent: str | None = None
    target_model: str | None = None


class _OtelEvent(Event, kw_only=True, gc=False):
    """The wire format: our fields plus the OpenTelemetry GenAI attribute names.

    Every record is decoded into this type (unknown names cost msgspec nearly nothing);
    :func:`normalise` folds the OpenTelemetry values into our fields.
    """

    otel_operation: str | None = msgspec.field(default=None, name="gen_ai.operation.name")
    otel_request_model: str | None = msgspec.field(default=None, name="gen_ai.request.model")
    otel_response_model: str | None = msgspec.field(default=None, name="gen_ai.response.model")
    otel_provider: str | None = msgspec.field(default=None, name="gen_ai.provider.name")
    otel_system: str | None = msgspec.field(default=None, name="gen_ai.system")
    otel_input_tokens: int | None = msgspec.field(default=None, name="gen_ai.usage.input_tokens")
    otel_output_tokens: int | None = msgspec.field(default=None, name="gen_ai.usage.output_tokens")
    otel_prompt_tokens: int | None = msgspec.field(default=None, name="gen_ai.usage.prompt_tokens")
    otel_completion_tokens: int | None = msgspec.field(default=None, name="gen_ai.usage.completion_tokens")
    # A list by the conventions; LiteLLM writes it as a JSON string.
    otel_finish_reasons: list[str] | str | None = msgspec.field(default=None, name="gen_ai.response.finish_reasons")
    otel_tool_name: str | None = msgspec.field(default=None, name="gen_ai.tool.name")
    otel_agent_name: str | None = msgspec.field(default=None, name="gen_ai.agent.name")
    otel_conversation_id: str | None = msgspec.field(default=None, name="gen_ai.conversation.id")
    otel_response_id: str | None = msgspec.field(default=None, name="gen_ai.response.id")
    otel_error_type: str | None = msgspec.field(default=None, name="error.type")
    # The monitor computes these itself: a producer's "semantic" key is an unknown field, ignored,
    # and whatever arrives under this name is discarded by normalise().
    semantic: SemanticScores | None = msgspec.field(default=None, name="aifm.internal.semantic")


class Reject(msgspec.Struct, kw_only=True, gc=False):
    """A record, or one element of a batch, that was not accepted.

    ``detail`` says what was wrong in words a user can act on; it names fields and
    types, never field values. ``index`` is the position in a batch (None for a
    single-event record).
    """

    reason: str
    detail: str
    index: int | None = None
    raw: bytes | None = None  # the element's own bytes, for a rejected element of a batch


class SchemaError(ValueError):
    """A decoded object that breaks the schema; carries the reject reason."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


def finite_float(text: str) -> float:
    """An untyped JSON number with a fraction or an exponent (in a free-form field such as a tool's ``result``), as msgspec would decode it.

    msgspec's own parse of a number with an exponent near 308 takes ~14 us (others ~0.02 us), so
    a 1 MB ``result`` of them cost ~2 s of CPU, twice where its batch is decoded again; Python's
    ``float`` parses them in ~0.2 us, to the same (correctly rounded) value. A number beyond a
    double's range is rejected as msgspec rejects it (``schema``, "Number out of range").

    >>> finite_float("1e308"), finite_float("-2.5E-3")
    (1e+308, -0.0025)
    """
    value = float(text)
    if value - value != 0.0:  # infinite
        raise ValueError("Number out of range")
    return value


# Typed fields are parsed by msgspec (the vectors' bounds stop a hostile one at its first value);
# untyped floats, by finite_float.
_event_decoder = msgspec.json.Decoder(_OtelEvent, float_hook=finite_float)
_batch_decoder = msgspec.json.Decoder(list[_OtelEvent], float_hook=finite_float)
_raw_batch_decoder = msgspec.json.Decoder(list[msgspec.Raw])
_raw_object_decoder = msgspec.json.Decoder(dict[str, msgspec.Raw])
_any_decoder = msgspec.json.Decoder(float_hook=finite_float)
_OTEL_FIELDS = tuple(name for name in _OtelEvent.__struct_fields__ if name.startswith("otel_"))
_otel_values = attrgetter(*_OTEL_FIELDS)


def parse_ts(value: str | float | datetime | None) -> float | None:
    """RFC 3339 string (or datetime) or epoch seconds -> epoch seconds (UTC)."""
    if value is None:
        return None
    if isinstance(value, (int, float)):
        if not math.isfinite(value) or value < 0:
            raise SchemaError("schema", "ts: epoch seconds must be a finite, non-negative number")
        return float(value)
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise SchemaError("schema", "ts: not an RFC 3339 timestamp or epoch seconds") from None
    if value.tzinfo is None:
        raise SchemaError("schema", "ts: RFC 3339 timestamp without a UTC offset")
    return value.timestamp()


def _apply_otel(event: _OtelEvent) -> None:
    """Map OpenTelemetry GenAI attribute names onto ours (ours win where both are given)."""
    if event.kind is None:
        operation = event.otel_operation
        if operation == "execute_tool":
            event.kind = "tool_call"
        elif operation in _MODEL_OPERATIONS:
            event.kind = "model_call"
        elif operation is not None:
            raise SchemaError("unknown_kind", "gen_ai.operation.name: not a model or tool operation (agent runs and workflows are not events)")
    event.model = event.model or event.otel_request_model or event.otel_response_model
    event.response_model = event.response_model or event.otel_response_model
    event.provider = event.provider or event.otel_provider or event.otel_system
    event.event_id = event.event_id or event.otel_response_id
    event.session_id = event.session_id or event.otel_conversation_id
    event.agent = event.agent or event.otel_agent_name
    event.tool = event.tool or event.otel_tool_name
    event.error_type = event.error_type or event.otel_error_type
    if event.input_tokens is None:
        event.input_tokens = event.otel_input_tokens if event.otel_input_tokens is not None else event.otel_prompt_tokens
    if event.output_tokens is None:
        event.output_tokens = event.otel_output_tokens if event.otel_output_tokens is not None else event.otel_completion_tokens
    if event.finish_reason is None and event.otel_finish_reasons:
        event.finish_reason = _first_finish_reason(event.otel_finish_reasons)
    if event.kind == "tool_call" and event.status is None and event.otel_operation == "execute_tool":
        event.status = "error" if event.error_type is not None else "ok"  # OTel marks failure by error.type, not a status


def _first_finish_reason(reasons: list[str] | str) -> str | None:
    if isinstance(reasons, list):
        return reasons[0]
    if reasons[:1] == "[":
        try:
            decoded = msgspec.json.decode(reasons)
        except msgspec.DecodeError:
            raise SchemaError("schema", "gen_ai.response.finish_reasons: a string that is not a JSON list") from None
        if not isinstance(decoded, list) or not all(isinstance(item, str) for item in decoded):
            raise SchemaError("schema", "gen_ai.response.finish_reasons: expected a list of strings")
        return decoded[0] if decoded else None
    return reasons


def normalise(event: Event) -> Event:
    """Validate a decoded event against its kind, in place; raises :class:`SchemaError`."""
    if isinstance(event, _OtelEvent):
        event.semantic = None  # internal: never read from input, so a producer cannot set the monitor's own scores
        if _otel_values(event).count(None) != len(_OTEL_FIELDS):
            _apply_otel(event)
    kind = event.kind
    if kind is None:
        raise SchemaError("missing_field", "kind: absent, and no gen_ai.operation.name to infer it from")
    if kind not in KINDS:
        raise SchemaError("unknown_kind", f"kind: not one of {', '.join(KINDS)}")
    ts = event.ts
    if ts is not None:
        if ts.__class__ is not float:
            ts = event.ts = parse_ts(ts)
        elif not (ts >= 0 and ts != math.inf):
            raise SchemaError("schema", "ts: epoch seconds must be a finite, non-negative number")
        if ts > time.time() + MAX_FUTURE_SECONDS:
            raise SchemaError("schema", "ts: more than a day ahead of the monitor's clock (a producer's clock error)")
    if event.model_version is None and event.response_model is not None and event.response_model != event.model:
        event.model_version = event.response_model
    if event.mean_logprob is None and event.logprobs:
        event.mean_logprob = sum(event.logprobs) / len(event.logprobs)
    if event.mean_logprob is not None and not MIN_MEAN_LOGPROB <= event.mean_logprob <= 0:
        raise SchemaError("schema", f"mean_logprob: log-probabilities lie in [{MIN_MEAN_LOGPROB:g}, 0]")
    if event.latency_ms is not None and not 0 <= event.latency_ms <= MAX_LATENCY_MS:
        raise SchemaError("schema", f"latency_ms: must lie in [0, {MAX_LATENCY_MS:.0f}] (a day)")
    if event.ttft_ms is not None and not 0 <= event.ttft_ms <= MAX_LATENCY_MS:
        raise SchemaError("schema", f"ttft_ms: must lie in [0, {MAX_LATENCY_MS:.0f}] (a day)")
    if event.input_tokens is not None and not 0 <= event.input_tokens <= MAX_TOKENS:
        raise SchemaError("schema", f"input_tokens: must lie in [0, {MAX_TOKENS:.0e}]")
    if event.output_tokens is not None and not 0 <= event.output_tokens <= MAX_TOKENS:
        raise SchemaError("schema", f"output_tokens: must lie in [0, {MAX_TOKENS:.0e}]")
    for name in ("event_id", "trace_id", "session_id", "caller"):
        value = getattr(event, name)
        if value is not None and len(value) > MAX_ID_CHARS:
            raise SchemaError("schema", f"{name}: longer than {MAX_ID_CHARS} characters")
    if kind == "model_call":
        if event.model is None:
            raise SchemaError("missing_field", "model: required for a model_call (or gen_ai.request.model)")
        for name in ("embedding", "input_embedding"):
            vector = getattr(event, name)
            if vector is not None and not _bounded_vector(vector):
                raise SchemaError(
                    "schema", f"{name}: 1 to {MAX_EMBEDDING_DIMENSIONS} finite values within +-{MAX_EMBEDDING_VALUE:g}"
                )
        if event.context is not None and len(event.context) > MAX_CONTEXT_ITEMS:
            raise SchemaError("schema", f"context: more than {MAX_CONTEXT_ITEMS} items")
    elif kind == "tool_call":
        if event.tool is None:
            raise SchemaError("missing_field", "tool: required for a tool_call (or gen_ai.tool.name)")
        if event.status is None:
            raise SchemaError("missing_field", "status: required for a tool_call")
        if event.status not in TOOL_STATUSES:
            raise SchemaError("schema", f"status: not one of {', '.join(TOOL_STATUSES)}")
    elif kind == "feedback":
        if event.target_event_id is None:
            raise SchemaError("missing_field", "target_event_id: required for feedback")
        if event.score is None and event.label is None:
            raise SchemaError("missing_field", "score or label: feedback needs one")
        if event.score is not None and not 0.0 <= event.score <= 1.0:
            raise SchemaError("schema", "score: must lie in [0, 1]")
    elif kind == "control":
        if event.action is None:
            raise SchemaError("missing_field", "action: required for a control event")
        if event.action not in CONTROL_ACTIONS:
            raise SchemaError("schema", f"action: not one of {', '.join(CONTROL_ACTIONS)}")
    return event


def _bounded_vector(vector: list[float]) -> bool:
    if not 0 < len(vector) <= MAX_EMBEDDING_DIMENSIONS:
        return False
    total = sum(vector)  # NaN anywhere makes it NaN; min and max bound the rest (C loops: a few microseconds)
    return total == total and -MAX_EMBEDDING_VALUE <= min(vector) and max(vector) <= MAX_EMBEDDING_VALUE


_event_encoder = msgspec.json.Encoder()


def encode_event(event: Event) -> bytes:
    """An event as our JSON schema (docs/events.md), without the fields it does not have (nor the monitor's own scores)."""
    fields = msgspec.structs.asdict(event)
    return _event_encoder.encode({name: value for name, value in fields.items() if value is not None and name != "semantic" and not name.startswith("otel_")})


def _classify_decode_error(raw: bytes, error: msgspec.DecodeError) -> Reject:
    message = str(error)
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return Reject(reason="not_utf8", detail="the record is not valid UTF-8")
    if isinstance(error, msgspec.ValidationError):
        return Reject(reason="schema", detail=_strip_values(message))
    return Reject(reason="invalid_json", detail=_strip_values(message))


def _strip_values(message: str) -> str:
    # msgspec messages name types and paths (e.g. "Expected `str`, got `int` - at `$.model`"),
    # never the offending value, so they are safe to log and keep.
    return message[:200]


#: The fields each kind reads besides the common ones; a field of another kind is unknown to it, hence ignored.
_COMMON_FIELDS = frozenset({"kind", "event_id", "ts", "trace_id", "session_id", "caller", "agent"})
_KIND_FIELDS = {
    "model_call": frozenset(
        {"model", "model_version", "response_model", "provider", "input_text", "output_text", "input_hash", "output_hash", "context",
         "embedding", "input_embedding", "latency_ms", "ttft_ms", "input_tokens", "output_tokens", "finish_reason", "error_type",
         "mean_logprob", "logprobs"}
    ),
    "tool_call": frozenset({"tool", "status", "error_type", "latency_ms", "args_hash", "result"}),
    "feedback": frozenset({"target_event_id", "score", "label", "model"}),
    "control": frozenset({"action", "target_agent", "target_model", "model_version"}),
}
_WIRE_NAMES = frozenset(field.encode_name for field in msgspec.structs.fields(_OtelEvent) if field.name.startswith("otel_"))


def _without_other_kinds_fields(raw: bytes) -> bytes | None:
    """The object re-encoded without fields that belong to other kinds than its own; None if it has none.

    Only the names and the kind are parsed: every other value stays raw bytes, copied
    verbatim, so finding those fields costs a skim of the record, not a parse of its numbers.
    """
    try:
        document = _raw_object_decoder.decode(raw)
        kind = _value_of(document, "kind")
        operation = _value_of(document, "gen_ai.operation.name")
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        return None
    if kind is None and operation is not None:
        kind = "tool_call" if operation == "execute_tool" else "model_call"
    own = _KIND_FIELDS.get(kind) if isinstance(kind, str) else None
    if own is None:
        return None
    foreign = [name for name in document if name not in _COMMON_FIELDS and name not in own and name not in _WIRE_NAMES]
    if not foreign:
        return None
    for name in foreign:
        del document[name]
    return msgspec.json.encode(document)


def _value_of(document: dict[str, msgspec.Raw], name: str) -> Any:
    value = document.get(name)
    return None if value is None else _any_decoder.decode(value)


def _decode_object(raw: bytes, index: int | None) -> Event | Reject:
    try:
        event = _event_decoder.decode(raw)
    except msgspec.ValidationError as error:
        if raw.lstrip()[:1] != b"{":
            return Reject(reason="not_object", detail="expected a JSON object or an array of objects", index=index)
        cleaned = _without_other_kinds_fields(raw)  # e.g. "label": 1 on a model call: not its field, so ignored
        if cleaned is not None:
            return _decode_object(cleaned, index)
        return Reject(reason="schema", detail=_strip_values(str(error)), index=index)
    except msgspec.DecodeError as error:
        reject = _classify_decode_error(raw, error)
        reject.index = index
        return reject
    except UnicodeDecodeError:
        return Reject(reason="not_utf8", detail="a string in the event is not valid UTF-8", index=index)
    try:
        return normalise(event)
    except SchemaError as error:
        return Reject(reason=error.reason, detail=str(error), index=index)


def _decode_batch(raw: bytes) -> tuple[list[Event], list[Reject]]:
    try:
        events = _batch_decoder.decode(raw)
    except (msgspec.DecodeError, UnicodeDecodeError):
        events = None  # some element is bad: decode element by element below
    if events is not None:
        if not events:
            return [], [Reject(reason="empty", detail="empty batch")]
        return _normalise_batch(raw, events)
    try:
        elements = _raw_batch_decoder.decode(raw)
    except msgspec.DecodeError as error:
        return [], [_classify_decode_error(raw, error)]
    except UnicodeDecodeError:
        return [], [Reject(reason="not_utf8", detail="the record is not valid UTF-8")]
    if not elements:
        return [], [Reject(reason="empty", detail="empty batch")]
    events: list[Event] = []
    rejects: list[Reject] = []
    for index, element in enumerate(elements):
        element_bytes = bytes(element)
        result = _decode_object(element_bytes, index)
        if isinstance(result, Reject):
            result.raw = element_bytes
            rejects.append(result)
        else:
            events.append(result)
    return events, rejects


def _normalise_batch(raw: bytes, events: list[_OtelEvent]) -> tuple[list[Event], list[Reject]]:
    """A batch that decoded as a whole, normalised event by event; an event that fails keeps its element's bytes.

    The events are not decoded a second time: parsing numbers is most of a decode, and a
    batch of 20,000 floats such as 1e308 costs msgspec ~0.2 s to parse (json.loads: 8 ms).
    """
    accepted: list[Event] = []
    failed: list[tuple[int, SchemaError]] = []
    for index, event in enumerate(events):
        try:
            accepted.append(normalise(event))
        except SchemaError as error:
            failed.append((index, error))
    if not failed:
        return accepted, []
    elements = _raw_batch_decoder.decode(raw)  # the elements' bytes, for their dead letters: no number is parsed
    return accepted, [Reject(reason=error.reason, detail=str(error), index=index, raw=bytes(elements[index])) for index, error in failed]


def too_large(raw: bytes, max_bytes: int) -> Reject | None:
    """The reject of a record over the size limit (never parsed), None within it."""
    if len(raw) > max_bytes:
        return Reject(reason="too_large", detail=f"{len(raw)} bytes, over the limit of {max_bytes}")
    return None


def decode_record(raw: bytes | str | None, *, max_bytes: int = DEFAULT_MAX_RECORD_BYTES) -> tuple[list[Event], list[Reject]]:
    """Decode one record (an object or a batch array) into events and rejects.

    Never raises on bad input: each element of a batch is accepted or rejected on its
    own, so a batch mixing good and bad events loses none of the good ones.

    >>> events, rejects = decode_record(b'[{"kind": "tool_call", "tool": "search", "status": "ok"}, {"kind": "nope"}]')
    >>> [e.tool for e in events], [(r.reason, r.index) for r in rejects]
    (['search'], [('unknown_kind', 1)])
    """
    try:
        return _decode_record(raw, max_bytes)
    except RecursionError:  # JSON nested past the decoder's depth: a few kilobytes suffice
        return [], [Reject(reason="schema", detail="nested more deeply than the decoder's recursion limit")]


def _decode_record(raw: bytes | str | None, max_bytes: int) -> tuple[list[Event], list[Reject]]:
    if raw is None:
        return [], [Reject(reason="empty", detail="null record value")]
    if isinstance(raw, str):
        raw = raw.encode("utf-8", "surrogatepass")
    oversized = too_large(raw, max_bytes)
    if oversized is not None:
        return [], [oversized]
    head = raw.lstrip()[:1]
    if head == b"{":
        result = _decode_object(raw, None)
        if isinstance(result, Reject):
            return [], [result]
        return [result], []
    if head == b"[":
        return _decode_batch(raw)
    if not head:
        return [], [Reject(reason="empty", detail="blank record")]
    try:
        _any_decoder.decode(raw)
    except msgspec.DecodeError as error:
        return [], [_classify_decode_error(raw, error)]
    except UnicodeDecodeError:
        return [], [Reject(reason="not_utf8", detail="the record is not valid UTF-8")]
    if raw.strip() == b"null":
        return [], [Reject(reason="empty", detail="null record value")]
    return [], [Reject(reason="not_object", detail="expected a JSON object or an array of objects")]

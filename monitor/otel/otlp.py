"""OTLP requests -> plain span and log records, with the official opentelemetry-proto classes.

The OpenTelemetry Collector's ``kafka`` exporter writes one ``ExportTraceServiceRequest``
(or ``ExportLogsServiceRequest``) per message, as protobuf (``otlp_proto``, its default)
or OTLP/JSON (``otlp_json``); its ``file`` exporter writes OTLP/JSON, one request per
line. Both are parsed here into :class:`SpanRecord` and :class:`LogRecord`: ids as
lower-case hex, times in nanoseconds, attributes as a flat dict of Python values.

A request that cannot be parsed at all is one :class:`OtlpError`. A span or log record
that is bad on its own (ids of the wrong length, an attribute too deeply nested, a
malformed OTLP/JSON element) is returned as a :class:`BadElement`, so that it never
takes its request's other spans with it.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterator
from typing import Any

import msgspec
from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import InstrumentationScope
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord as LogRecordProto
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import Span as SpanProto

from monitor.events import finite_float

#: Which OTLP signal a record holds; the topic (or the JSON's top-level key) says which.
SPANS, LOGS = "spans", "logs"

#: Attribute values nested deeper than this (arrays or maps in arrays ...) make the element bad.
MAX_VALUE_DEPTH = 16

STATUS_UNSET, STATUS_OK, STATUS_ERROR = 0, 1, 2

_OTLP_JSON_HEAD = re.compile(rb'\A\s*\{\s*"resource(Spans|Logs)"')


class OtlpError(ValueError):
    """A whole request that is not OTLP of the expected kind (truncated, another message type, bad JSON)."""


class SpanRecord(msgspec.Struct, gc=False):
    trace_id: str
    span_id: str
    parent_span_id: str | None
    name: str
    start_ns: int
    end_ns: int
    attributes: dict
    events: list  # (name, time_ns, attributes)
    status_code: int
    status_message: str
    resource: dict
    scope: str
    index: int  # position of the span in its request
    raw: bytes  # the span alone, serialised as it came (protobuf or JSON), for its dead letter


class LogRecord(msgspec.Struct, gc=False):
    trace_id: str | None
    span_id: str | None
    time_ns: int
    event_name: str
    body: Any
    attributes: dict
    resource: dict
    scope: str
    index: int
    raw: bytes


class BadElement(msgspec.Struct, gc=False):
    """One span or log record that could not be read; the rest of its request still is."""

    index: int
    detail: str
    raw: bytes


def otlp_json_kind(raw: bytes) -> str | None:
    """SPANS or LOGS when ``raw`` is an OTLP/JSON request (by its top-level key), else None."""
    match = _OTLP_JSON_HEAD.match(raw)
    if match is None:
        return None
    return SPANS if match.group(1) == b"Spans" else LOGS


def parse_request(raw: bytes, kind: str) -> Iterator[SpanRecord | LogRecord | BadElement]:
    """Every span (``kind`` SPANS) or log record (LOGS) of one OTLP request, protobuf or JSON by content.

    Raises :class:`OtlpError` when the request itself cannot be read.
    """
    if raw.lstrip()[:1] == b"{":
        return _parse_json(raw, kind)
    return _parse_proto(raw, kind)


# -- protobuf ---------------------------------------------------------------------------


def _parse_proto(raw: bytes, kind: str) -> Iterator[SpanRecord | LogRecord | BadElement]:
    request = ExportTraceServiceRequest() if kind == SPANS else ExportLogsServiceRequest()
    try:
        request.ParseFromString(raw)
    except (DecodeError, RecursionError) as error:
        raise OtlpError(f"not an OTLP {kind} request in protobuf ({_short(error)})") from None
    return _records(request, kind)


def _records(request, kind: str) -> Iterator[SpanRecord | LogRecord | BadElement]:
    index = 0
    groups = request.resource_spans if kind == SPANS else request.resource_logs
    for group in groups:
        resource = _attributes_or_none(group.resource.attributes) or {}
        scopes = group.scope_spans if kind == SPANS else group.scope_logs
        for scope in scopes:
            items = scope.spans if kind == SPANS else scope.log_records
            for item in items:
                yield _span(item, resource, scope.scope.name, index) if kind == SPANS else _log(item, resource, scope.scope.name, index)
                index += 1


def _span(span: SpanProto, resource: dict, scope: str, index: int) -> SpanRecord | BadElement:
    raw = span.SerializeToString()
    if len(span.trace_id) != 16 or len(span.span_id) != 8 or len(span.parent_span_id) not in (0, 8):
        return BadElement(index, "span ids: trace_id must be 16 bytes, span_id and parent_span_id 8", raw)
    try:
        attributes = _attributes(span.attributes)
        events = [(event.name, event.time_unix_nano, _attributes(event.attributes)) for event in span.events]
    except _TooDeep:
        return BadElement(index, f"attribute value nested deeper than {MAX_VALUE_DEPTH}", raw)
    return SpanRecord(
        trace_id=span.trace_id.hex(),
        span_id=span.span_id.hex(),
        parent_span_id=span.parent_span_id.hex() or None,
        name=span.name,
        start_ns=span.start_time_unix_nano,
        end_ns=span.end_time_unix_nano,
        attributes=attributes,
        events=events,
        status_code=span.status.code,
        status_message=span.status.message,
        resource=resource,
        scope=scope,
        index=index,
        raw=raw,
    )


def _log(record: LogRecordProto, resource: dict, scope: str, index: int) -> LogRecord | BadElement:
    raw = record.SerializeToString()
    if len(record.trace_id) not in (0, 16) or len(record.span_id) not in (0, 8):
        return BadElement(index, "log ids: trace_id must be 16 bytes and span_id 8 (or both empty)", raw)
    try:
        attributes = _attributes(record.attributes)
        body = _value(record.body, 0) if record.HasField("body") else None
    except _TooDeep:
        return BadElement(index, f"attribute value nested deeper than {MAX_VALUE_DEPTH}", raw)
    return LogRecord(
        trace_id=record.trace_id.hex() or None,
        span_id=record.span_id.hex() or None,
        time_ns=record.time_unix_nano or record.observed_time_unix_nano,
        event_name=record.event_name or str(attributes.get("event.name", "")),
        body=body,
        attributes=attributes,
        resource=resource,
        scope=scope,
        index=index,
        raw=raw,
    )


class _TooDeep(Exception):
    pass


def _attributes_or_none(key_values) -> dict | None:
    try:
        return _attributes(key_values)
    except _TooDeep:
        return None


def _attributes(key_values) -> dict:
    return {kv.key: _value(kv.value, 0) for kv in key_values}


def _value(value, depth: int) -> Any:
    which = value.WhichOneof("value")
    if which == "string_value":
        return value.string_value
    if which == "int_value":
        return value.int_value
    if which == "double_value":
        return value.double_value
    if which == "bool_value":
        return value.bool_value
    if depth >= MAX_VALUE_DEPTH:
        raise _TooDeep
    if which == "array_value":
        return [_value(item, depth + 1) for item in value.array_value.values]
    if which == "kvlist_value":
        return {kv.key: _value(kv.value, depth + 1) for kv in value.kvlist_value.values}
    if which == "bytes_value":
        return value.bytes_value.hex()
    return None


# -- OTLP/JSON ----------------------------------------------------------------------------

# OTLP/JSON differs from protobuf's canonical JSON mapping only in its ids, which are hex
# instead of base64: they are converted, then each element is parsed by json_format on its own.
_ID_FIELDS = ("traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id")
_json_decoder = msgspec.json.Decoder(float_hook=finite_float)  # numbers near 1e308 at ~0.2 us each, not msgspec's ~14 us
_json_encoder = msgspec.json.Encoder()


def _parse_json(raw: bytes, kind: str) -> Iterator[SpanRecord | LogRecord | BadElement]:
    try:
        document = _json_decoder.decode(raw)
    except (msgspec.DecodeError, RecursionError) as error:
        raise OtlpError(f"not OTLP/JSON ({_short(error)})") from None
    groups_key = "resourceSpans" if kind == SPANS else "resourceLogs"
    if not isinstance(document, dict) or not isinstance(document.get(groups_key, document.get(_snake(groups_key))), list):
        raise OtlpError(f"not an OTLP/JSON {kind} request: no {groups_key} array")
    return _json_records(document, kind)


def _json_records(document: dict, kind: str) -> Iterator[SpanRecord | LogRecord | BadElement]:
    index = 0
    groups_key, scopes_key, items_key = ("resourceSpans", "scopeSpans", "spans") if kind == SPANS else ("resourceLogs", "scopeLogs", "logRecords")
    for group in _get_list(document, groups_key):
        resource = _parse_part(_get(group, "resource"), Resource)
        resource_attributes = (_attributes_or_none(resource.attributes) or {}) if resource is not None else {}
        for scope in _get_list(group, scopes_key):
            scope_message = _parse_part(_get(scope, "scope"), InstrumentationScope)
            scope_name = scope_message.name if scope_message is not None else ""
            for item in _get_list(scope, items_key):
                raw = _json_encoder.encode(item)
                message = _parse_element(item, SpanProto if kind == SPANS else LogRecordProto)
                if isinstance(message, str):
                    yield BadElement(index, message, raw)
                elif kind == SPANS:
                    record = _span(message, resource_attributes, scope_name, index)
                    if isinstance(record, SpanRecord):
                        record.raw = raw
                    yield record
                else:
                    record = _log(message, resource_attributes, scope_name, index)
                    if isinstance(record, LogRecord):
                        record.raw = raw
                    yield record
                index += 1


def _parse_element(item: Any, message_class):
    """A span or log record message from its OTLP/JSON object, or a detail string saying why not."""
    if not isinstance(item, dict):
        return "element: not a JSON object"
    item = dict(item)
    for name in _ID_FIELDS:
        value = item.get(name)
        if value is None or value == "":
            continue
        if not isinstance(value, str):
            return f"{name}: not a hex string"
        try:
            item[name] = base64.b64encode(bytes.fromhex(value)).decode("ascii")
        except ValueError:
            return f"{name}: not a hex string"
    message = message_class()
    try:
        json_format.ParseDict(item, message, ignore_unknown_fields=True)
    except (json_format.ParseError, TypeError, ValueError, RecursionError, binascii.Error) as error:
        return _json_detail(message_class, error)
    return message


def _parse_part(item: Any, message_class):
    if not isinstance(item, dict):
        return None
    message = message_class()
    try:
        json_format.ParseDict(item, message, ignore_unknown_fields=True)
    except (json_format.ParseError, TypeError, ValueError, RecursionError):
        return None
    return message


def _get(container: Any, key: str) -> Any:
    if not isinstance(container, dict):
        return None
    value = container.get(key)
    return value if value is not None else container.get(_snake(key))


def _get_list(container: Any, key: str) -> list:
    value = _get(container, key)
    return value if isinstance(value, list) else []


def _snake(name: str) -> str:
    return re.sub(r"([A-Z])", lambda m: "_" + m.group(1).lower(), name)


_FIELD_IN_ERROR = re.compile(r"Failed to parse (\w+) field")


def _json_detail(message_class, error: BaseException) -> str:
    """What was wrong with an element, naming the field but never its value."""
    fields = _FIELD_IN_ERROR.findall(str(error))
    where = ".".join(fields) if fields else "element"
    return f"{message_class.DESCRIPTOR.name} {where}: not valid OTLP/JSON ({type(error).__name__})"


def _short(error: BaseException) -> str:
    # protobuf and json_format messages name fields and types; cut them short all the same.
    text = str(error) or type(error).__name__
    return text[:200]


def to_otlp_json(request) -> bytes:
    """An OTLP request message as OTLP/JSON (hex ids), as the Collector's ``otlp_json`` encoding and ``file`` exporter write it."""
    document = json_format.MessageToDict(request)
    _ids_to_hex(document)
    return _json_encoder.encode(document)


def _ids_to_hex(node: Any) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in _ID_FIELDS and isinstance(value, str):
                node[key] = base64.b64decode(value).hex()
            else:
                _ids_to_hex(value)
    elif isinstance(node, list):
        for item in node:
            _ids_to_hex(item)

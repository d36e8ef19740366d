"""Stateful OTLP decoding: requests -> aifm events and rejects, one per span.

Two facts about a model or tool span may arrive after the span itself, so such a span
can wait, bounded, before it becomes an event:

- **its agent** is the nearest agent ancestor in its trace. Agent spans end, and are
  exported, after their children: often in a later request. Ancestors are looked up in
  a table of recent spans (:data:`MAX_SPANS_REMEMBERED`); a span whose chain of parents
  breaks off at a span not yet seen waits for it;
- **its content**, where the library writes prompt and output to log records (the
  legacy GenAI convention, or the latest one's ``gen_ai.client.inference.operation.details``),
  which the Collector exports on a topic of their own. Log content waits for its span in
  a :class:`ContentTable` (shared by the decoders of one worker); a model-call span
  without content, from a library seen writing content to logs, waits for its records.

A span waits at most :data:`HOLD_SECONDS` of event time (span end times seen since), or
until :meth:`OtlpDecoder.tick` has passed twice (the worker ticks at each checkpoint, so
quiet partitions do not hold spans for ever), or :meth:`OtlpDecoder.flush` (end of a
replay); at most :data:`MAX_HELD` spans wait at once. Then it goes on with what it has:
no agent (``unknown``) or no text. Nothing waits forever and nothing is dropped.
"""

from __future__ import annotations

from collections import Counter, OrderedDict, deque

import msgspec

from monitor.events import Event, Reject, SchemaError, normalise
from monitor.otel.mapping import Content, agent_name, apply_content, log_content, merge_content, span_content, span_kind, span_to_event
from monitor.otel.otlp import LOGS, SPANS, BadElement, LogRecord, OtlpError, SpanRecord, parse_request

MAX_SPANS_REMEMBERED = 50_000
MAX_CONTENT_ENTRIES = 20_000
HOLD_SECONDS = 30.0
MAX_HELD = 10_000
_MAX_ANCESTRY = 64
_PARENT, _AGENT, _MODEL = 0, 1, 2  # fields of an ancestry entry
#: Log records that carry a call's answer (the legacy choice, or the latest convention's whole operation).
_ANSWER_EVENTS = frozenset({"gen_ai.choice", "gen_ai.client.inference.operation.details"})


class ContentTable:
    """Content of model calls taken from log records, by span id, until their span takes it (bounded, oldest out)."""

    def __init__(self, max_entries: int = MAX_CONTENT_ENTRIES) -> None:
        self.max_entries = max_entries
        self._by_span: OrderedDict[str, Content] = OrderedDict()
        self.content_scopes: set[str] = set()  # instrumentation scopes seen writing content to log records
        self.added = 0  # entries ever added: readers note how far they have looked
        self._recent: deque[str] = deque(maxlen=max_entries)  # span ids in the order added

    def add(self, span_id: str, content: Content, scope: str) -> None:
        if scope not in self.content_scopes and len(self.content_scopes) < 1000:
            self.content_scopes.add(scope)
        existing = self._by_span.get(span_id)
        if existing is not None:
            merge_content(existing, content)
            return
        self._by_span[span_id] = content
        self._recent.append(span_id)
        self.added += 1
        if len(self._by_span) > self.max_entries:
            self._by_span.popitem(last=False)

    def take(self, span_id: str) -> Content | None:
        return self._by_span.pop(span_id, None)

    def added_since(self, seen: int) -> list[str]:
        """Span ids added after the first ``seen`` additions (as far as the bounded history reaches)."""
        new = min(self.added - seen, len(self._recent))
        return list(self._recent)[-new:] if new > 0 else []


class _Held:
    """A span's event waiting for its agent (``missing``: the ancestor not yet seen) and/or its content."""

    __slots__ = ("event", "content", "missing", "wants_content", "deadline_ns", "ticks")

    def __init__(self, event: Event, content: Content | None, missing: str | None, wants_content: bool, deadline_ns: int) -> None:
        self.event = event
        self.content = content
        self.missing = missing
        self.wants_content = wants_content
        self.deadline_ns = deadline_ns
        self.ticks = 0

    @property
    def ready(self) -> bool:
        return self.missing is None and not self.wants_content


class OtlpDecoder:
    """Decodes OTLP span and log requests into events; counts what it ignores by kind."""

    def __init__(self, content: ContentTable | None = None, *, hold_seconds: float = HOLD_SECONDS) -> None:
        self.content = content if content is not None else ContentTable()
        self.hold_ns = int(hold_seconds * 1e9)
        self.ignored_by_kind: Counter[str] = Counter()
        self.joined_from_logs = 0
        self._ancestry: OrderedDict[str, tuple[str | None, str | None, str | None]] = OrderedDict()  # span id -> (parent, agent, model)
        self._held: OrderedDict[str, _Held] = OrderedDict()  # span id -> held, oldest first
        self._waiting_for: dict[str, set[str]] = {}  # ancestor span id -> ids of held spans whose chain stops there
        self._clock_ns = 0  # the latest span end seen
        self._content_seen = 0  # how far this decoder has looked through the content table's additions

    def state(self) -> list:
        """What a snapshot keeps, as plain data: the waiting spans (their records' offsets are committed) and the counts.

        The ancestry table is rebuilt from the stream (agent spans come after their
        children, so a restart forgets few that are still needed), and the content table is
        shared and transient: the owner keeps its own across a restore.
        """
        held = [
            [span_id, msgspec.to_builtins(h.event), None if h.content is None else msgspec.to_builtins(h.content), h.missing, h.wants_content, h.deadline_ns, h.ticks]
            for span_id, h in self._held.items()
        ]
        return [dict(self.ignored_by_kind), self.joined_from_logs, held, self._clock_ns, self._content_seen]

    def load_state(self, state: list) -> None:
        ignored, joined, held, clock_ns, content_seen = state
        self.ignored_by_kind = Counter({str(k): int(n) for k, n in ignored.items()})
        self.joined_from_logs, self._clock_ns, self._content_seen = int(joined), int(clock_ns), int(content_seen)
        self._held.clear()
        self._waiting_for.clear()
        for span_id, event, content, missing, wants_content, deadline_ns, ticks in held[:MAX_HELD]:
            entry = _Held(
                msgspec.convert(event, Event), None if content is None else msgspec.convert(content, Content), missing, bool(wants_content), int(deadline_ns)
            )
            entry.ticks = int(ticks)
            self._held[str(span_id)] = entry
            if missing is not None:
                self._waiting_for.setdefault(str(missing), set()).add(str(span_id))

    @property
    def held(self) -> int:
        return len(self._held)

    def decode(self, raw: bytes, kind: str) -> tuple[list[Event], list[Reject]]:
        """Events and rejects of one request (SPANS or LOGS); a bad request is one reject."""
        events: list[Event] = []
        try:
            records = list(parse_request(raw, kind))
        except OtlpError as error:
            return events, [Reject(reason="otlp_invalid", detail=str(error))]
        good = [record for record in records if not isinstance(record, BadElement)]
        rejects = [Reject(reason="schema", detail=r.detail, index=r.index, raw=r.raw) for r in records if isinstance(r, BadElement)]
        if kind == LOGS:
            for record in good:
                try:
                    self._log(record, events)
                except Exception as error:  # a body of an unexpected shape: this record is rejected, never its request
                    rejects.append(Reject(reason="schema", detail=f"log record: {type(error).__name__} while reading its content", index=record.index, raw=record.raw))
            return events, rejects
        for span in good:  # every span first: an agent span ends, and is exported, after its children
            self._remember(span, events)
        for span in good:
            result = self._span(span)
            if isinstance(result, Reject):
                rejects.append(result)
            elif result is not None:
                events.append(result)
        self._expire(events)
        rejects.sort(key=lambda reject: reject.index)
        return events, rejects

    def tick(self) -> list[Event]:
        """Spans that were already waiting at the previous tick, released (a worker ticks at each checkpoint)."""
        events: list[Event] = []
        for span_id, held in list(self._held.items()):
            held.ticks += 1
            if held.ticks >= 2:
                self._release(span_id, events)
        return events

    def flush(self) -> list[Event]:
        """Every waiting span, now, with what it has (the end of a replay)."""
        events: list[Event] = []
        for span_id in list(self._held):
            self._release(span_id, events)
        return events

    # -- spans -----------------------------------------------------------------------

    def _span(self, span: SpanRecord) -> Event | Reject | None:
        kind = span_kind(span)
        if kind not in ("model_call", "tool_call"):
            self.ignored_by_kind[kind] += 1
            return None
        joined = None
        try:
            content = None
            if kind == "model_call":
                content = span_content(span)
                joined = self.content.take(span.span_id)
                if joined is not None:
                    merge_content(content, joined)
                    self.joined_from_logs += 1
            agent, missing = self._agent_of(span)
            fallback_model, _ = self._walk(span.parent_span_id, _MODEL)
            event = normalise(span_to_event(span, kind, agent=agent, content=content, fallback_model=fallback_model))
        except SchemaError as error:
            return Reject(reason=error.reason, detail=str(error), index=span.index, raw=span.raw)
        except Exception as error:  # attributes of unexpected shapes: this span is rejected, never its request
            return Reject(reason="schema", detail=f"span: {type(error).__name__} while mapping its attributes", index=span.index, raw=span.raw)
        wants_content = (
            content is not None
            and joined is None
            and content.output_text is None
            and event.error_type is None  # a failed call has no output to wait for
            and span.scope in self.content.content_scopes  # its library writes content to log records
        )
        if (missing is None and not wants_content) or len(self._held) >= MAX_HELD:
            return event
        self._held[span.span_id] = _Held(event, content, missing, wants_content, span.end_ns + self.hold_ns)
        if missing is not None:
            self._waiting_for.setdefault(missing, set()).add(span.span_id)
        return None

    def _remember(self, span: SpanRecord, events: list[Event]) -> None:
        model = span.attributes.get("gen_ai.request.model") or span.attributes.get("gen_ai.response.model")
        self._ancestry[span.span_id] = (span.parent_span_id, agent_name(span), model if isinstance(model, str) else None)
        self._ancestry.move_to_end(span.span_id)
        if len(self._ancestry) > MAX_SPANS_REMEMBERED:
            self._ancestry.popitem(last=False)
        if span.end_ns > self._clock_ns:
            self._clock_ns = span.end_ns
        for waiting in self._waiting_for.pop(span.span_id, ()):  # spans whose chain of parents stopped at this one
            held = self._held.get(waiting)
            if held is None:
                continue
            held.event.agent, held.missing = self._walk(span.span_id, _AGENT)
            if held.missing is not None:
                self._waiting_for.setdefault(held.missing, set()).add(waiting)
            elif held.ready:
                self._release(waiting, events)

    def _agent_of(self, span: SpanRecord) -> tuple[str | None, str | None]:
        """The span's own agent (as :meth:`_remember` just noted it), else its nearest agent ancestor's."""
        entry = self._ancestry.get(span.span_id)  # absent only if a huge request pushed it out already
        own = entry[_AGENT] if entry is not None else agent_name(span)
        if own is not None:
            return own, None
        return self._walk(span.parent_span_id, _AGENT)

    def _walk(self, span_id: str | None, field: int) -> tuple[str | None, str | None]:
        """The first ancestry ``field`` (agent or model) from ``span_id`` up: (value, None); (None, None) at the
        trace's root; (None, span id) where the chain breaks off at a span not yet seen."""
        for _ in range(_MAX_ANCESTRY):
            if span_id is None:
                return None, None
            entry = self._ancestry.get(span_id)
            if entry is None:
                return None, span_id
            if entry[field] is not None:
                return entry[field], None
            span_id = entry[_PARENT]
        return None, None

    # -- logs and waiting spans ------------------------------------------------------

    def _log(self, record: LogRecord, events: list[Event]) -> None:
        if record.span_id is None:
            return
        content = log_content(record.event_name, record.body, record.attributes)
        if content is None:
            return
        held = self._held.get(record.span_id)
        if held is None or held.content is None:
            self.content.add(record.span_id, content, record.scope)
            return
        merge_content(held.content, content)
        if record.event_name in _ANSWER_EVENTS:  # the output has come: prompts alone leave it waiting
            self.joined_from_logs += 1
            held.wants_content = False
            if held.ready:
                self._release(record.span_id, events)

    def _expire(self, events: list[Event]) -> None:
        """Release spans whose content another decoder's log records brought, then those past their deadline (oldest first)."""
        if self._held and self.content.added != self._content_seen:
            for span_id in self.content.added_since(self._content_seen):
                held = self._held.get(span_id)
                if held is None or not held.wants_content:
                    continue
                joined = self.content.take(span_id)
                if joined is not None:
                    merge_content(held.content, joined)
                    self.joined_from_logs += 1
                    held.wants_content = held.content.output_text is None and held.content.finish_reason is None
                    if held.ready:
                        self._release(span_id, events)
        self._content_seen = self.content.added
        while self._held:
            span_id, held = next(iter(self._held.items()))
            if held.deadline_ns > self._clock_ns:
                break
            self._release(span_id, events)

    def _release(self, span_id: str, events: list[Event]) -> None:
        held = self._held.pop(span_id)
        if held.missing is not None:
            waiting = self._waiting_for.get(held.missing)
            if waiting is not None:
                waiting.discard(span_id)
                if not waiting:
                    del self._waiting_for[held.missing]
        events.append(apply_content(held.event, held.content) if held.content is not None else held.event)


__all__ = ["ContentTable", "OtlpDecoder", "SPANS", "LOGS"]

"""The monitoring pipeline: event -> per-event signals -> keyed detectors -> findings.

I/O-free and driver-agnostic: the faust worker and the offline replay feed it the same
way, so a threshold tuned on history is exactly the one deployed. It imports no Kafka
client, no faust and no prometheus_client; drivers read its counters and streams.

State is O(keys): one small detector per (signal, detector, key), where key labels come
from bounded sets (:class:`monitor.keys.KeyCap`), plus a bounded table of sessions.
Streams of one key are grouped (:class:`_KeyStreams`) so that an event costs one
lookup however many detectors it feeds.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterator
from time import perf_counter

import msgspec

from monitor.detectors.embedding_drift import as_vector
from monitor.events import Event, Reject, decode_record, encode_event, too_large
from monitor.findings import FIXED_SEVERITIES, Finding, make_finding
from monitor.keys import OTHER, KeyCap
from monitor.otel.decoder import ContentTable, OtlpDecoder
from monitor.otel.otlp import otlp_json_kind
from monitor.signals import MODEL_VERSION
from monitor.signals.agent_loop import SessionTracker
from monitor.signals.audit_gap import AuditGap
from monitor.signals.embedding_drift import embedding_drift_signal
from monitor.signals.error_rate import error_signal
from monitor.signals.feedback import feedback_signal
from monitor.signals.hallucination import hallucination_signal
from monitor.signals.kill_switch import KillSwitchState
from monitor.signals.latency import latency_signal, log_seconds
from monitor.signals.prompt_injection import prompt_injection_signal
from monitor.signals.refusal import refusal_signal
from monitor.signals.tool_failure import tool_failure_signal
from monitor.signals.tool_scope import Boundaries, tool_scope_signal
from monitor.signals.usage import log_tokens, usage_signal
from monitor.snapshot import SnapshotError, decode_snapshot, encode_snapshot
from monitor.thresholds import Thresholds

_SUMMARIES = {
    ("refusal", "rate"): "Refusal rate rose above its reference for this model.",
    ("hallucination", "rate"): "Share of answers failing a hallucination proxy rose above its reference.",
    ("tool_failure", "rate"): "Tool failure rate rose above its reference for this agent and tool.",
    ("error_rate", "rate"): "Provider error rate rose above its reference for this model.",
    ("audit_gap", "rate"): "Share of events missing required audit fields rose above its target.",
    ("feedback", "rate"): "Share of negative feedback rose above its reference.",
    ("latency", "seconds"): "Model latency shifted away from its reference.",
    ("latency", "per_token_seconds"): "Model latency per output token shifted away from its reference.",
    ("embedding_drift", "centroid"): "Model outputs moved away from the reference centroid of their embeddings.",
    ("embedding_drift", "prompt_centroid"): "Prompts to this model moved away from the reference centroid of their embeddings.",
    ("usage", "input_tokens"): "Input tokens per call to this model shifted away from their reference.",
    ("usage", "output_tokens"): "Output tokens per call of this model shifted away from their reference.",
    ("usage", "calls_per_minute"): "This agent's calls per minute shifted away from their reference.",
}


#: Distinct (model, agent, tool) name triples whose metric labels are remembered.
_LABEL_CACHE_SIZE = 4096

#: The kinds an agent's calls per minute count (usage).
_CALL_KINDS = frozenset({"model_call", "tool_call"})

#: What a record holds: our JSON events (OTLP/JSON requests recognised by content), or OTLP spans or logs.
AIFM, OTLP_SPANS, OTLP_LOGS = "aifm", "spans", "logs"


class _Stream:
    """One detector on one keyed stream, with its count for the minimum-sample floor.

    ``onset`` is the event time at which the detector's statistic last left zero: Page's
    estimate of when a change started, which a finding reports beside when it was
    detected (a CUSUM alarms some events after the change, and the evidence it sums
    starts at the change).
    """

    __slots__ = ("signal", "detector_name", "detector", "count", "findings", "onset")

    def __init__(self, signal: str, detector_name: str, detector) -> None:
        self.signal = signal
        self.detector_name = detector_name
        self.detector = detector
        self.count = 0
        self.findings = 0
        self.onset: float | None = None


#: The streams each kind of key has: (signal, detector name, attribute of _KeyStreams).
_STREAMS_BY_LABEL = {
    "model": (
        ("refusal", "rate", "refusal"),
        ("hallucination", "rate", "hallucination"),
        ("latency", "seconds", "latency"),
        ("latency", "per_token_seconds", "latency_per_token"),
        ("error_rate", "rate", "error_rate"),
        ("feedback", "rate", "feedback"),
        ("embedding_drift", "centroid", "embedding_drift"),
        ("embedding_drift", "prompt_centroid", "prompt_drift"),
        ("usage", "input_tokens", "input_tokens"),
        ("usage", "output_tokens", "output_tokens"),
    ),
    "agent": (
        ("audit_gap", "rate", "audit_gap"),
        ("usage", "calls_per_minute", "calls"),
        ("feedback", "rate", "feedback"),
        ("embedding_drift", "centroid", "embedding_drift"),
        ("embedding_drift", "prompt_centroid", "prompt_drift"),
    ),
    "tool": (("tool_failure", "rate", "tool_failure"),),
}


class _KeyStreams:
    """All streams of one key (a model, an agent, or an agent's tool), as attributes.

    Attributes rather than a dict: an event reaches each of its detectors without a
    lookup, which is most of what a detector update costs in Python.
    """

    __slots__ = ("key", "refusal", "hallucination", "latency", "latency_per_token", "error_rate", "feedback", "audit_gap", "tool_failure", "embedding_drift", "prompt_drift", "input_tokens", "output_tokens", "calls")

    def __init__(self, key: dict[str, str], label: str, signals: dict) -> None:
        self.key = key
        for attribute in self.__slots__[1:]:
            setattr(self, attribute, None)
        for signal, detector_name, attribute in _STREAMS_BY_LABEL[label]:
            setattr(self, attribute, _Stream(signal, detector_name, signals[signal].detector_for(detector_name).build()))

    def all(self) -> Iterator[_Stream]:
        for attribute in self.__slots__[1:]:
            stream = getattr(self, attribute)
            if stream is not None:
                yield stream

    def state(self) -> dict:
        return {
            attribute: [stream.count, stream.findings, stream.detector.state(), stream.onset]
            for attribute in self.__slots__[1:]
            if (stream := getattr(self, attribute)) is not None
        }

    def load_state(self, state: dict) -> None:
        for attribute, (count, findings, detector, onset) in state.items():
            stream = getattr(self, attribute) if attribute in self.__slots__[1:] else None
            if stream is None:
                raise SnapshotError(f"no stream {attribute!r} for key {self.key}")
            stream.count, stream.findings = int(count), int(findings)
            stream.onset = None if onset is None else float(onset)
            stream.detector.load_state(detector)


def _label_of(key: dict[str, str]) -> str:
    return "tool" if "tool" in key else "model" if "model" in key else "agent"


class EventResult(msgspec.Struct, gc=False):
    """What one event produced: its signals (by name) and its findings."""

    event: Event
    signals: dict
    findings: list[Finding]


class RecordResult(msgspec.Struct):
    """What one record produced: a result per accepted event, and its rejects."""

    results: list[EventResult] = msgspec.field(default_factory=list)
    rejects: list[Reject] = msgspec.field(default_factory=list)

    @property
    def findings(self) -> list[Finding]:
        return [finding for result in self.results for finding in result.findings]


class Pipeline:
    """Runs every signal and detector over events, one at a time, in the order given.

    Parameters
    ----------
    thresholds
        The loaded ``alerts/thresholds.yaml``.
    boundaries
        Agents' tool boundaries; without them ``tool_scope`` reports ``no_boundary``.
    content
        Where OTLP log records leave model-call content for their spans; share one
        between the pipelines that read a span topic and its log topic.
    """

    def __init__(self, thresholds: Thresholds, boundaries: Boundaries | None = None, content: ContentTable | None = None):
        self.thresholds = thresholds
        self.boundaries = boundaries if boundaries is not None else Boundaries()
        self.keys = KeyCap(thresholds.max_values_per_label)
        signals = thresholds.signals
        self._cfg = signals
        refusal = signals["refusal"].options
        self._refusal_flag = refusal["flag_score"]
        self._refusal_margins = (refusal["semantic_margin_from"], refusal["semantic_margin_full"])
        # Which signals read the semantic scores of embedded events (off: embeddings feed drift only).
        self._semantic_refusal = refusal["semantic_cue"]
        self._semantic_grounding = signals["hallucination"].options["semantic_cue"]
        self._semantic_injection = signals["prompt_injection"].options["semantic_cue"]
        hallucination = signals["hallucination"].options
        self._min_mean_logprob = hallucination["min_mean_logprob"]
        self._min_context_support = hallucination["min_context_support"]
        self._flag_truncation = hallucination["flag_truncation"]
        self._min_grounded_share = hallucination["min_grounded_share"]
        self._per_token_min = signals["latency"].options["per_token_min_output_tokens"]
        self._outlier_z = signals["embedding_drift"].options["outlier_z"]
        self._injection = signals["prompt_injection"].options
        self._feedback = signals["feedback"].options
        self._scope_cooldown = signals["tool_scope"].options["cooldown_seconds"]
        self._halt_cooldown = signals["kill_switch"].options["cooldown_seconds"]
        self._loop_cooldown = signals["agent_loop"].options["cooldown_seconds"]
        self._audit_gap = AuditGap(signals["audit_gap"].options["required_fields"])
        loop = signals["agent_loop"].options
        self.sessions = SessionTracker(
            max_repeats=loop["max_repeats"],
            max_calls_per_session=loop["max_calls_per_session"],
            session_idle_seconds=loop["session_idle_seconds"],
            max_sessions=loop["max_sessions"],
        )
        self.kill_switch = KillSwitchState(grace_seconds=signals["kill_switch"].options["grace_seconds"])
        self._keyed: dict[tuple, _KeyStreams] = {}
        self._by_raw_name: dict[tuple, _KeyStreams] = {}
        self._labels_by_raw: dict[tuple, tuple[str, str, str]] = {}
        self._versions: dict[str, str] = {}
        self._version_since: dict[str, float] = {}  # model -> event time of its latest version change
        self._last_alerted: dict[tuple, float] = {}  # per-violation key -> event time of its latest finding
        self._suppressed: dict[tuple, int] = {}  # per-violation key -> violations since its latest finding, not reported
        self.clock = 0.0
        self.events_by_kind: Counter[str] = Counter()
        self.rejects_by_reason: Counter[str] = Counter()
        self.findings_by_signal: Counter[str] = Counter()
        self.blocked_tool_calls: Counter[tuple[str, str]] = Counter()
        self.embedding_seconds = 0.0  # time spent on events' vectors (drift streams): not state, not in snapshots
        self.otlp = OtlpDecoder(content)

    # -- entry points -------------------------------------------------------------

    def process_record(self, raw: bytes | str | None, prepare=None, source: str = AIFM) -> RecordResult:
        """Decode one record and process every accepted event.

        ``source`` says what the record holds: AIFM (our JSON: an object or a batch, or
        an OTLP/JSON request), OTLP_SPANS or OTLP_LOGS (protobuf or JSON). ``prepare(events)``
        runs between decoding and processing (the worker attaches sampled embeddings there).
        """
        events, rejects = self.decode(raw, source)
        if prepare is not None:
            prepare(events)
        return self._process_all(events, rejects)

    def _process_all(self, events: list[Event], rejects: list[Reject]) -> RecordResult:
        """Process ``events`` safely and count ``rejects`` with those the processing adds."""
        results = []
        for event in events:
            result = self.process_safely(event)
            if isinstance(result, Reject):
                rejects.append(result)  # its raw is the event itself: no batch position needed
            else:
                results.append(result)
        for reject in rejects:
            self.rejects_by_reason[reject.reason] += 1
        return RecordResult(results, rejects)

    def process_safely(self, event: Event) -> EventResult | Reject:
        """:meth:`process`, with any exception turned into an ``internal_error`` reject that keeps the event."""
        try:
            return self.process(event)
        except Exception as error:  # a bug must cost one event, never the worker or the rest of the record
            return Reject(reason="internal_error", detail=f"{type(error).__name__} while processing a {event.kind}", raw=encode_event(event))

    def decode(self, raw: bytes | str | None, source: str = AIFM) -> tuple[list[Event], list[Reject]]:
        """One record's events and rejects, without processing them (replay reorders them first)."""
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogatepass")
        max_bytes = self.thresholds.max_record_bytes
        if source == AIFM:
            kind = otlp_json_kind(raw) if raw else None
            if kind is None:
                return decode_record(raw, max_bytes=max_bytes)
            source = kind
        if raw is None or not raw.strip():
            return [], [Reject(reason="empty", detail="null or blank record")]
        oversized = too_large(raw, max_bytes)
        if oversized is not None:
            return [], [oversized]
        return self.otlp.decode(raw, source)

    def release_held(self) -> RecordResult:
        """Process, now, every OTLP span still waiting for its agent or its log records (what a replay does at its end)."""
        return self._process_all(self.otlp.flush(), [])

    def count_reject(self, reason: str) -> None:
        """Count a record a driver rejected before or while decoding."""
        self.rejects_by_reason[reason] += 1

    def process(self, event: Event) -> EventResult:
        """Signals and findings for one accepted event."""
        ts = event.ts
        if ts is None:
            ts = self.clock
        elif ts > self.clock:
            self.clock = ts
        self.events_by_kind[event.kind] += 1
        findings: list[Finding] = []
        signals: dict = {}
        kind = event.kind
        if kind == "model_call":
            self._model_call(event, ts, signals, findings)
        elif kind == "tool_call":
            self._tool_call(event, ts, signals, findings)
        elif kind == "feedback":
            self._feedback_event(event, signals, findings)
        else:
            self._control(event, ts, signals, findings)
        audit = self._audit_gap(event)
        signals["audit_gap"] = audit
        agent_streams = self._key_streams("agent", event.agent)
        if event.agent is not None and kind in _CALL_KINDS:  # a named agent's calls per minute
            self._observe(agent_streams, agent_streams.calls, 1.0, event, findings)
        self._observe(agent_streams, agent_streams.audit_gap, audit["flag"], event, findings)
        if findings:
            for finding in findings:
                self.findings_by_signal[finding.signal] += 1
        return EventResult(event, signals, findings)

    def snapshot(self) -> bytes:
        """The detector and session state, to be restored by :meth:`restore` (after a restart or a rebalance).

        Data only (:mod:`monitor.snapshot`): a snapshot cannot carry code. It carries a
        fingerprint of the thresholds, so one taken under other thresholds is not restored.
        """
        state = {
            "keys": self.keys.state(),
            "keyed": [[keyed.key, keyed.state()] for keyed in self._keyed.values()],
            "sessions": self.sessions.state(),
            "kill_switch": self.kill_switch.state(),
            "versions": self._versions,
            "version_since": self._version_since,
            "last_alerted": [[list(key), ts, self._suppressed.get(key, 0)] for key, ts in self._last_alerted.items()],
            "clock": self.clock,
            "events_by_kind": dict(self.events_by_kind),
            "rejects_by_reason": dict(self.rejects_by_reason),
            "findings_by_signal": dict(self.findings_by_signal),
            "blocked_tool_calls": [[agent, tool, count] for (agent, tool), count in self.blocked_tool_calls.items()],
            "otlp": self.otlp.state(),
        }
        return encode_snapshot(self.thresholds_fingerprint, state)

    def restore(self, data: bytes) -> bool:
        """Load a :meth:`snapshot` into this fresh pipeline; False if it was taken under other thresholds.

        Raises :class:`SnapshotError` (the pipeline may then be half-loaded: start another) if
        the bytes are not a readable snapshot of this version.
        """
        fingerprint, state = decode_snapshot(data)
        if fingerprint != self.thresholds_fingerprint:
            return False
        try:
            self._load_state(state)
        except SnapshotError:
            raise
        except Exception as error:  # a value of the wrong type or shape anywhere: the snapshot is unreadable
            raise SnapshotError(f"unreadable snapshot state ({type(error).__name__}: {error})") from None
        return True

    def _load_state(self, state: dict) -> None:
        self.keys.load_state(state["keys"])
        for key, streams in state["keyed"]:
            key = {str(label): str(value) for label, value in key.items()}
            keyed = self._keyed[tuple(key.items())] = _KeyStreams(key, _label_of(key), self._cfg)
            keyed.load_state(streams)
        self.sessions.load_state(state["sessions"])
        self.kill_switch.load_state(state["kill_switch"])
        self._versions = {str(model): str(version) for model, version in state["versions"].items()}
        self._version_since = {str(model): float(ts) for model, ts in state["version_since"].items()}
        for key, ts, suppressed in state["last_alerted"]:
            key = tuple(key)
            self._last_alerted[key] = float(ts)
            if suppressed:
                self._suppressed[key] = int(suppressed)
        self.clock = float(state["clock"])
        for counter, name in ((self.events_by_kind, "events_by_kind"), (self.rejects_by_reason, "rejects_by_reason"), (self.findings_by_signal, "findings_by_signal")):
            counter.update({str(k): int(n) for k, n in state[name].items()})
        self.blocked_tool_calls.update({(str(agent), str(tool)): int(n) for agent, tool, n in state["blocked_tool_calls"]})
        self.otlp.load_state(state["otlp"])

    @property
    def thresholds_fingerprint(self) -> str:
        return hashlib.blake2b(repr(self.thresholds.signals).encode(), digest_size=8).hexdigest()

    def serving_versions(self) -> dict[str, str]:
        """The model version last seen serving, per model."""
        return dict(self._versions)

    def metric_labels(self, event: Event) -> tuple[str, str, str]:
        """The capped (model, agent, tool) labels of an event for metrics; "" where the event has none."""
        raw = (event.model, event.agent, event.tool)
        labels = self._labels_by_raw.get(raw)
        if labels is not None:
            return labels
        value = self.keys.value
        labels = ("" if raw[0] is None else value("model", raw[0]), value("agent", raw[1]), "" if raw[2] is None else value("tool", raw[2]))
        # Names folded into "other" are not cached, and the cache is capped: both keep it bounded.
        if OTHER not in labels and len(self._labels_by_raw) < _LABEL_CACHE_SIZE:
            self._labels_by_raw[raw] = labels
        return labels

    def streams(self) -> Iterator[tuple[str, str, dict[str, str], object, int]]:
        """(signal, detector, key, detector object, events seen) for every live stream."""
        for keyed in self._keyed.values():
            for stream in keyed.all():
                if stream.count:
                    yield stream.signal, stream.detector_name, keyed.key, stream.detector, stream.count

    # -- per kind -------------------------------------------------------------------

    def _model_call(self, event: Event, ts: float, signals: dict, findings: list[Finding]) -> None:
        keyed = self._key_streams("model", event.model)
        if event.model_version is not None:
            self._track_version(keyed, event.model_version, event, findings)
        self._check_halted(event, ts, signals, findings)
        semantic = event.semantic
        refusal = refusal_signal(
            event.output_text, self._refusal_flag, semantic.refusal_margin if semantic is not None and self._semantic_refusal else None, *self._refusal_margins
        )
        if refusal is not None:
            signals["refusal"] = refusal
            self._observe(keyed, keyed.refusal, refusal["flag"], event, findings)
        if event.mean_logprob is not None or event.context or event.finish_reason is not None:
            hallucination = hallucination_signal(
                mean_logprob=event.mean_logprob,
                output_text=event.output_text,
                context=event.context,
                finish_reason=event.finish_reason,
                min_mean_logprob=self._min_mean_logprob,
                min_context_support=self._min_context_support,
                flag_truncation=self._flag_truncation,
                grounded_share=semantic.grounded_share if semantic is not None and self._semantic_grounding else None,
                min_grounded_share=self._min_grounded_share,
            )
            if hallucination is not None:
                signals["hallucination"] = hallucination
                self._observe(keyed, keyed.hallucination, hallucination["flag"], event, findings)
        latency = latency_signal(event.latency_ms, event.output_tokens, per_token_min_output_tokens=self._per_token_min)
        if latency is not None:
            signals["latency"] = latency
            self._observe(keyed, keyed.latency, log_seconds(latency["seconds"]), event, findings)
            per_token = latency["per_token_seconds"]
            if per_token is not None:
                self._observe(keyed, keyed.latency_per_token, log_seconds(per_token * 1000.0), event, findings)
        error = error_signal(event.error_type)
        signals["error_rate"] = error
        self._observe(keyed, keyed.error_rate, error["flag"], event, findings)
        usage = usage_signal(event.input_tokens, None if error["flag"] else event.output_tokens)  # a failed call's output is no answer
        if usage is not None:
            signals["usage"] = usage
            if usage["input_tokens"] is not None:
                self._observe(keyed, keyed.input_tokens, log_tokens(usage["input_tokens"]), event, findings)
            if usage["output_tokens"] is not None:
                self._observe(keyed, keyed.output_tokens, log_tokens(usage["output_tokens"]), event, findings)
        if event.embedding is not None or event.input_embedding is not None:
            started = perf_counter()
            self._embedding(keyed, event, signals, findings)
            self.embedding_seconds += perf_counter() - started  # what a time budget for embedding charges too
        if event.context:
            margin = semantic.injection_margin if semantic is not None else None
            self._injection_check(event.context, "context", self._key_streams("agent", event.agent).key, ts, event, signals, findings, margin)

    def _embedding(self, keyed: _KeyStreams, event: Event, signals: dict, findings: list[Finding]) -> None:
        """Output drift (the signal's flag) and prompt drift (under ``prompt``) for whichever vectors the event has.

        Each is tested per model (what the signal reports) and per named agent: agents
        sharing a model dilute each other's shift in the model's stream, not in their own.
        Calls without an agent are not pooled into one: their mix of callers and models
        moves with routing, not with what is said.
        """
        agent = self._key_streams("agent", event.agent) if event.agent is not None else None
        vector, prompt_vector = as_vector(event.embedding), as_vector(event.input_embedding)
        output = self._drift(keyed, keyed.embedding_drift, vector, event, findings)
        if agent is not None:
            self._feed_drift(agent, agent.embedding_drift, vector, event, findings)
        signal = output if output is not None else {"distance": None, "flag": None}
        if prompt_vector is not None:
            signal["prompt"] = self._drift(keyed, keyed.prompt_drift, prompt_vector, event, findings)
            if agent is not None:
                self._feed_drift(agent, agent.prompt_drift, prompt_vector, event, findings)
        signals["embedding_drift"] = signal

    def _drift(self, keyed: _KeyStreams, stream: _Stream, vector, event: Event, findings: list[Finding]) -> dict | None:
        """Feed ``vector`` to a model's drift stream; the signal for it (None without a vector)."""
        if vector is None:
            return None
        fed = self._feed_drift(keyed, stream, vector, event, findings)
        if fed is not True:
            return {"skipped": fed, "flag": None}
        return embedding_drift_signal(stream.detector, self._outlier_z)

    def _feed_drift(self, keyed: _KeyStreams, stream: _Stream, vector, event: Event, findings: list[Finding]) -> bool | str:
        """Feed ``vector`` to a drift stream: True, or why not (``dimensions``: another embedding model; ``thinned``: its slot had one)."""
        if vector is None:
            return "no vector"
        detector = stream.detector
        if not detector.accepts(vector):
            return "dimensions"
        if not detector.takes(event.ts):
            return "thinned"
        self._observe(keyed, stream, vector, event, findings)
        return True

    def _tool_call(self, event: Event, ts: float, signals: dict, findings: list[Finding]) -> None:
        keyed = self._key_streams("tool", event.tool, agent=event.agent)
        self._check_halted(event, ts, signals, findings)
        failure = tool_failure_signal(event.status, event.result)
        if failure is not None:
            signals["tool_failure"] = failure
            self._observe(keyed, keyed.tool_failure, failure["flag"], event, findings)
        if event.result is not None:
            margin = event.semantic.injection_margin if event.semantic is not None else None
            self._injection_check(event.result, "tool_result", keyed.key, ts, event, signals, findings, margin)
        scope = tool_scope_signal(self.boundaries, event.agent, event.tool, event.status)
        signals["tool_scope"] = scope
        if scope["blocked"]:
            self.blocked_tool_calls[(keyed.key["agent"], keyed.key["tool"])] += 1
        violations = self._cooled_down(("tool_scope", keyed.key["agent"], keyed.key["tool"]), ts, self._scope_cooldown) if scope["flag"] else 0
        if violations:
            findings.append(
                make_finding(
                    signal="tool_scope",
                    detector="violation",
                    severity=self._cfg["tool_scope"].severity,
                    key=keyed.key,
                    event=event,
                    statistic=1.0,
                    threshold=1.0,
                    summary="An agent called a tool outside its documented boundary.",
                    details={"verdict": scope["verdict"], "violations": violations},
                )
            )
        session = event.session_id or event.trace_id
        if session is not None:
            boundary = self.boundaries.get(event.agent)
            budget = boundary.max_calls_per_session if boundary is not None else None
            loop = self.sessions.observe(session, event.tool, event.args_hash, ts, budget)
            signals["agent_loop"] = loop
            if loop["flag"]:
                violations = self._cooled_down(("agent_loop", keyed.key["agent"], loop["reason"]), ts, self._loop_cooldown)
                if violations:
                    self._loop_finding(loop, budget, keyed, session, event, findings, violations)

    def _injection_check(
        self, content, source: str, key: dict[str, str], ts: float, event: Event, signals: dict, findings: list[Finding], semantic_margin: float | None = None
    ) -> None:
        options = self._injection
        if not self._semantic_injection:
            semantic_margin = None
        injection = prompt_injection_signal(
            content, source, options["flag_score"], semantic_margin, options["semantic_margin_from"], options["semantic_margin_full"]
        )
        if injection is None:
            return
        signals["prompt_injection"] = injection
        violations = self._cooled_down(("prompt_injection", *key.values()), ts, options["cooldown_seconds"]) if injection["flag"] else 0
        if violations:
            findings.append(
                make_finding(
                    signal="prompt_injection",
                    detector="content",
                    severity=self._cfg["prompt_injection"].severity,
                    key=key,
                    event=event,
                    statistic=injection["score"],
                    threshold=options["flag_score"],
                    summary="Retrieved content or a tool result carries instructions aimed at the model.",
                    details={"source": source, "cues": injection["cues"], "violations": violations},
                )
            )

    def _loop_finding(self, loop: dict, budget: int | None, keyed: _KeyStreams, session: str, event: Event, findings: list[Finding], violations: int) -> None:
        repeated = loop["reason"] == "repeated_call"
        findings.append(
            make_finding(
                signal="agent_loop",
                detector=loop["reason"],
                severity=self._cfg["agent_loop"].severity,
                key={"agent": keyed.key["agent"]},
                event=event,
                statistic=loop["repeats"] if repeated else loop["calls"],
                threshold=self.sessions.max_repeats if repeated else (budget or self.sessions.max_calls_per_session),
                summary="An agent session repeated the same tool call past its limit."
                if repeated
                else "An agent session exceeded its call budget.",
                details={"session_id": session, "tool": keyed.key["tool"], "violations": violations},
            )
        )

    def _feedback_event(self, event: Event, signals: dict, findings: list[Finding]) -> None:
        options = self._feedback
        feedback = feedback_signal(
            event.score, event.label, negative_below=options["negative_below"], negative_labels=options["negative_labels"]
        )
        signals["feedback"] = feedback
        keyed = self._key_streams("model", event.model) if event.model is not None else self._key_streams("agent", event.agent)
        self._observe(keyed, keyed.feedback, feedback["flag"], event, findings)

    def _control(self, event: Event, ts: float, signals: dict, findings: list[Finding]) -> None:
        action = event.action
        agent = self.keys.value("agent", event.target_agent) if event.target_agent else None
        model = self.keys.value("model", event.target_model) if event.target_model else None
        self.kill_switch.apply(action, agent, model, ts)
        signals["kill_switch"] = {"action": action}
        if action == "kill_switch":
            key = {name: value for name, value in (("agent", agent), ("model", model)) if value is not None}
            findings.append(
                make_finding(
                    signal="kill_switch",
                    detector="engaged",
                    severity=FIXED_SEVERITIES[("kill_switch", "engaged")],
                    key=key,
                    event=event,
                    statistic=1.0,
                    threshold=1.0,
                    summary="A kill switch was engaged.",
                )
            )
        elif action in ("deploy", "rollback") and event.target_model and event.model_version:
            self._track_version(self._key_streams("model", event.target_model), event.model_version, event, findings)

    # -- shared mechanics -------------------------------------------------------------

    def _key_streams(self, label: str, raw: str | None, agent: str | None = None) -> _KeyStreams:
        """The streams of one key; ``tool`` keys also carry their agent."""
        cache_key = (label, raw, agent)
        keyed = self._by_raw_name.get(cache_key)
        if keyed is not None:
            return keyed
        value = self.keys.value(label, raw)
        if label == "tool":
            agent_value = self.keys.value("agent", agent)
            key = {"agent": agent_value, "tool": value}
            overflow = OTHER in (value, agent_value)
        else:
            key = {label: value}
            overflow = value == OTHER
        canonical = tuple(key.items())
        keyed = self._keyed.get(canonical)
        if keyed is None:
            keyed = self._keyed[canonical] = _KeyStreams(key, label, self._cfg)
        if not overflow:  # names folded into "other" are not cached: that cache would be unbounded
            self._by_raw_name[cache_key] = keyed
        return keyed

    def _observe(self, keyed: _KeyStreams, stream: _Stream, value: float, event: Event, findings: list[Finding]) -> None:
        stream.count += 1
        detector = stream.detector
        detector.update(value, event.ts if event.ts is not None else self.clock)
        if detector.drift_detected:
            self._detector_finding(keyed, stream, event, findings)
            stream.onset = None  # the detector re-learns: the next change has an onset of its own
        elif detector.statistic == 0.0:
            stream.onset = None
        elif stream.onset is None:
            stream.onset = event.ts if event.ts is not None else self.clock

    def _detector_finding(self, keyed: _KeyStreams, stream: _Stream, event: Event, findings: list[Finding]) -> None:
        cfg = self._cfg[stream.signal]
        if stream.count < cfg.min_samples:
            return
        stream.findings += 1
        detector = stream.detector
        findings.append(
            make_finding(
                signal=stream.signal,
                detector=stream.detector_name,
                severity=cfg.severity,
                key=keyed.key,
                event=event,
                statistic=detector.alarm_statistic,
                threshold=detector.threshold,
                summary=_SUMMARIES[(stream.signal, stream.detector_name)],
                details={"events": stream.count},
                started_at=stream.onset,
            )
        )

    def _track_version(self, keyed: _KeyStreams, raw_version: str, event: Event, findings: list[Finding]) -> None:
        model = keyed.key["model"]
        previous = self._versions.get(model)
        if previous == raw_version:
            return
        version = self.keys.value("model_version", raw_version)
        if previous == version:
            return
        ts = event.ts
        if previous is not None and ts is not None and ts < self._version_since.get(model, float("-inf")):
            return  # a late event from before the change (streams merged from several partitions arrive out of order)
        self._versions[model] = version
        if ts is not None:
            self._version_since[model] = ts
        if previous is None:
            return
        for stream in keyed.all():
            stream.detector.segment()
        findings.append(
            make_finding(
                signal=MODEL_VERSION,
                detector="change",
                severity=FIXED_SEVERITIES[(MODEL_VERSION, "change")],
                key={"model": model, "model_version": version},
                event=event,
                statistic=0.0,
                threshold=0.0,
                summary="The serving model version changed; detectors for this model start a new segment.",
                details={"previous_version": previous},
                kind="annotation",
            )
        )

    def _check_halted(self, event: Event, ts: float, signals: dict, findings: list[Finding]) -> None:
        if not self.kill_switch.any_halted:
            return
        agent = self.keys.value("agent", event.agent) if event.agent else None
        model = self.keys.value("model", event.model) if event.model else None
        halted = self.kill_switch.call_after_halt(agent, model, ts)
        if halted is None:
            return
        signals["kill_switch"] = halted
        grace = self.kill_switch.grace_seconds
        violations = self._cooled_down(("kill_switch", agent, model), ts, self._halt_cooldown) if halted["flag"] else 0
        if violations:
            key = {name: value for name, value in (("agent", agent), ("model", model)) if value is not None}
            findings.append(
                make_finding(
                    signal="kill_switch",
                    detector="call_after_halt",
                    severity=self._cfg["kill_switch"].severity,
                    key=key,
                    event=event,
                    statistic=halted["seconds_after_halt"],
                    threshold=grace,
                    summary="A halted agent or model was called after the kill-switch grace period.",
                    details={"violations": violations},
                )
            )

    def _cooled_down(self, key: tuple, ts: float, seconds: float) -> int:
        """The alert policy of per-violation signals: at most one finding per key per cooldown.

        Returns 0 while the key cools down (the violation is counted for its next
        finding), else the violations the finding stands for: this one and those
        held back since the key's previous finding.
        """
        last = self._last_alerted.get(key)
        if last is not None and -seconds < ts - last < seconds:  # a far-off time (a clock error) does not silence the key
            self._suppressed[key] = self._suppressed.get(key, 0) + 1
            return 0
        self._last_alerted[key] = ts
        return 1 + self._suppressed.pop(key, 0)

"""The pipeline's facade and its wiring of signals to streams, per event kind.

The flow of one event, in :meth:`Pipeline.process`: its kind's handler (``_model_call``,
``_tool_call``, ``_feedback_event``, ``_control``) computes the kind's signals
(:mod:`monitor.signals`) and feeds each value to its key's stream
(:meth:`Pipeline._observe`); a detector alarm or a violation past its cooldown becomes a
finding (:mod:`monitor.findings`); then every event feeds its agent's audit-gap and
call-rate streams.

In the compiled build (``core.pxd``) the pipeline is an extension type: its attributes
are declared there, and a subclass overrides a method where a test or a benchmark would
have patched the class.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from time import perf_counter
from typing import Protocol

import msgspec

from monitor.detectors.embedding_drift import as_vector
from monitor.events import Event, Reject, decode_record, encode_event, too_large
from monitor.findings import Finding, finding_severity, make_finding
from monitor.keys import KeyCap
from monitor.otel.decoder import ContentTable, OtlpDecoder
from monitor.otel.otlp import otlp_json_kind
from monitor.pipeline.cooldown import Cooldowns
from monitor.pipeline.streams import KeyStreams, KeyTable, Stream
from monitor.signals import MODEL_VERSION
from monitor.signals.agent_loop import SessionTracker
from monitor.signals.audit_gap import AuditGap
from monitor.signals.embedding_drift import embedding_drift_signal
from monitor.signals.error_rate import RATE_LIMIT, error_signal
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
from monitor.tally import Tally
from monitor.thresholds import Thresholds

#: The kinds an agent's calls per minute count (usage).
_CALL_KINDS = frozenset({"model_call", "tool_call"})

class StreamObserver(Protocol):
    """What a pipeline tells an observer (``aifm tune`` records every detector's input this way)."""

    def fed(self, key: dict[str, str], stream: Stream, value, ts: float) -> None:
        """``value`` was just handed to ``stream``'s detector (a number, or an embedding's vector)."""

    def segmented(self, key: dict[str, str], streams: list[Stream]) -> None:
        """A model-version change started a new segment in each of ``streams``."""


#: What a record holds: our JSON events (OTLP/JSON requests recognised by content), or OTLP spans or logs.
AIFM, OTLP_SPANS, OTLP_LOGS = "aifm", "spans", "logs"


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

    I/O-free and driver-agnostic: the faust worker and the offline replay feed it the
    same way, so a threshold tuned on history is exactly the one deployed. It imports no
    Kafka client, no faust and no prometheus_client; drivers read its counters and
    streams. State is O(keys) (:class:`~monitor.pipeline.streams.KeyTable`) plus a
    bounded table of sessions.

    Parameters
    ----------
    thresholds
        The loaded ``alerts/thresholds.yaml``.
    boundaries
        Agents' tool boundaries; without them ``tool_scope`` reports ``no_boundary``.
    content
        Where OTLP log records leave model-call content for their spans; share one
        between the pipelines that read a span topic and its log topic.
    observer
        Told of every value a detector is fed and of every segment start (:class:`StreamObserver`).
    """

    def __init__(self, thresholds: Thresholds, boundaries: Boundaries | None = None, content: ContentTable | None = None, observer: StreamObserver | None = None):
        self.thresholds = thresholds
        self.boundaries = boundaries if boundaries is not None else Boundaries()
        self.observer = observer
        self.keys = KeyCap(thresholds.max_values_per_label)
        self.key_streams = KeyTable(self.keys, thresholds.signals)
        signals = thresholds.signals
        self._cfg = signals
        refusal = signals["refusal"].options
        self._refusal_flag = refusal["flag_score"]
        self._refusal_margin_from, self._refusal_margin_full = refusal["semantic_margin_from"], refusal["semantic_margin_full"]
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
        self.cooldowns = Cooldowns()
        self._versions: dict[str, str] = {}
        self._version_since: dict[str, float] = {}  # model -> event time of its latest version change
        self.clock = 0.0
        self.events_by_kind: Tally = Tally()
        self.rejects_by_reason: Tally = Tally()
        self.findings_by_signal: Tally = Tally()
        self.blocked_tool_calls: Tally = Tally()  # (agent, tool)
        self.embedding_seconds = 0.0  # time spent on events' vectors (drift streams): not state, not in snapshots
        self.otlp = OtlpDecoder(content)

    # -- records in, results out ------------------------------------------------------

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
        kind = event.kind
        self.events_by_kind[kind] += 1
        findings: list[Finding] = []
        signals: dict = {}
        if kind == "model_call":
            self._model_call(event, ts, signals, findings)
        elif kind == "tool_call":
            self._tool_call(event, ts, signals, findings)
        elif kind == "feedback":
            self._feedback_event(event, ts, signals, findings)
        elif kind == "control":
            self._control(event, ts, signals, findings)
        else:
            raise ValueError(f"no handler for events of kind {kind!r}")
        audit = self._audit_gap.check(event)
        signals["audit_gap"] = audit
        named_agent = event.agent
        agent_streams = self.key_streams.get("agent", named_agent)
        if named_agent is not None and kind in _CALL_KINDS:  # a named agent's calls per minute
            self._observe(agent_streams, agent_streams.calls, 1.0, event, ts, findings)
        self._observe(agent_streams, agent_streams.audit_gap, audit["flag"], event, ts, findings)
        if findings:
            for finding in findings:
                self.findings_by_signal[finding.signal] += 1
        return EventResult(event, signals, findings)

    # -- state --------------------------------------------------------------------------

    def snapshot(self) -> bytes:
        """The detector and session state, to be restored by :meth:`restore` (after a restart or a rebalance).

        Data only (:mod:`monitor.snapshot`): a snapshot cannot carry code. It carries a
        fingerprint of the thresholds, so one taken under other thresholds is not restored.
        """
        state = {
            "keys": self.keys.state(),
            "keyed": self.key_streams.state(),
            "sessions": self.sessions.state(),
            "kill_switch": self.kill_switch.state(),
            "versions": self._versions,
            "version_since": self._version_since,
            "last_alerted": self.cooldowns.state(),
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
        self.key_streams.load_state(state["keyed"])
        self.sessions.load_state(state["sessions"])
        self.kill_switch.load_state(state["kill_switch"])
        self._versions = {str(model): str(version) for model, version in state["versions"].items()}
        self._version_since = {str(model): float(ts) for model, ts in state["version_since"].items()}
        self.cooldowns.load_state(state["last_alerted"])
        self.clock = float(state["clock"])
        for counter, name in ((self.events_by_kind, "events_by_kind"), (self.rejects_by_reason, "rejects_by_reason"), (self.findings_by_signal, "findings_by_signal")):
            for key, count in state[name].items():
                counter[str(key)] += int(count)
        for agent, tool, count in state["blocked_tool_calls"]:
            self.blocked_tool_calls[(str(agent), str(tool))] += int(count)
        self.otlp.load_state(state["otlp"])

    @property
    def thresholds_fingerprint(self) -> str:
        return hashlib.blake2b(repr(self.thresholds.signals).encode(), digest_size=8).hexdigest()

    # -- what drivers read -------------------------------------------------------------

    def serving_versions(self) -> dict[str, str]:
        """The model version last seen serving, per model."""
        return dict(self._versions)

    def metric_labels(self, event: Event) -> tuple[str, str, str]:
        """The capped (model, agent, tool) labels of an event for metrics; "" where the event has none."""
        return self.key_streams.metric_labels(event)

    def streams(self) -> Iterator[tuple[str, str, dict[str, str], object, int]]:
        """(signal, detector, key, detector object, events seen) for every live stream."""
        for keyed in self.key_streams.keyed.values():
            for stream in keyed.all():
                if stream.count:
                    yield stream.signal, stream.detector_name, keyed.key, stream.detector, stream.count

    # -- per kind -------------------------------------------------------------------

    def _model_call(self, event: Event, ts: float, signals: dict, findings: list[Finding]) -> None:
        keyed = self.key_streams.get("model", event.model)
        model_version = event.model_version
        if model_version is not None:
            self._track_version(keyed, model_version, event, findings)
        self._check_halted(event, ts, signals, findings)
        semantic = event.semantic
        output_text = event.output_text
        margin = semantic.refusal_margin if semantic is not None and self._semantic_refusal else None
        refusal = refusal_signal(output_text, self._refusal_flag, margin, self._refusal_margin_from, self._refusal_margin_full)
        if refusal is not None:
            signals["refusal"] = refusal
            self._observe(keyed, keyed.refusal, refusal["flag"], event, ts, findings)
        mean_logprob, context, finish_reason = event.mean_logprob, event.context, event.finish_reason
        if mean_logprob is not None or context or finish_reason is not None:
            hallucination = hallucination_signal(
                mean_logprob=mean_logprob,
                output_text=output_text,
                context=context,
                finish_reason=finish_reason,
                min_mean_logprob=self._min_mean_logprob,
                min_context_support=self._min_context_support,
                flag_truncation=self._flag_truncation,
                grounded_share=semantic.grounded_share if semantic is not None and self._semantic_grounding else None,
                min_grounded_share=self._min_grounded_share,
            )
            if hallucination is not None:
                signals["hallucination"] = hallucination
                self._observe(keyed, keyed.hallucination, hallucination["flag"], event, ts, findings)
        output_tokens = event.output_tokens
        latency = latency_signal(event.latency_ms, output_tokens, per_token_min_output_tokens=self._per_token_min)
        if latency is not None:
            signals["latency"] = latency
            self._observe(keyed, keyed.latency, log_seconds(latency["seconds"]), event, ts, findings)
            per_token = latency["per_token_seconds"]
            if per_token is not None:
                self._observe(keyed, keyed.latency_per_token, log_seconds(per_token * 1000.0), event, ts, findings)
        error = error_signal(event.error_type)
        signals["error_rate"] = error
        self._observe(keyed, keyed.error_rate, error["flag"], event, ts, findings)
        self._observe(keyed, keyed.rate_limit, error["error_class"] == RATE_LIMIT, event, ts, findings)
        usage = usage_signal(event.input_tokens, None if error["flag"] else output_tokens)  # a failed call's output is no answer
        if usage is not None:
            signals["usage"] = usage
            if usage["input_tokens"] is not None:
                self._observe(keyed, keyed.input_tokens, log_tokens(usage["input_tokens"]), event, ts, findings)
            if usage["output_tokens"] is not None:
                self._observe(keyed, keyed.output_tokens, log_tokens(usage["output_tokens"]), event, ts, findings)
        if event.embedding is not None or event.input_embedding is not None:
            started = perf_counter()
            self._embedding(keyed, event, ts, signals, findings)
            self.embedding_seconds += perf_counter() - started  # what a time budget for embedding charges too
        if context:
            margin = semantic.injection_margin if semantic is not None else None
            self._injection_check(context, "context", self.key_streams.get("agent", event.agent).key, ts, event, signals, findings, margin)

    def _embedding(self, keyed: KeyStreams, event: Event, ts: float, signals: dict, findings: list[Finding]) -> None:
        """Output drift (the signal's flag) and prompt drift (under ``prompt``) for whichever vectors the event has.

        Each is tested per model (what the signal reports) and per named agent: agents
        sharing a model dilute each other's shift in the model's stream, not in their own.
        Calls without an agent are not pooled into one: their mix of callers and models
        moves with routing, not with what is said.
        """
        agent = self.key_streams.get("agent", event.agent) if event.agent is not None else None
        vector, prompt_vector = as_vector(event.embedding), as_vector(event.input_embedding)
        output = self._drift(keyed, keyed.embedding_drift, vector, event, ts, findings)
        if agent is not None:
            self._feed_drift(agent, agent.embedding_drift, vector, event, ts, findings)
        signal = output if output is not None else {"distance": None, "flag": None}
        if prompt_vector is not None:
            signal["prompt"] = self._drift(keyed, keyed.prompt_drift, prompt_vector, event, ts, findings)
            if agent is not None:
                self._feed_drift(agent, agent.prompt_drift, prompt_vector, event, ts, findings)
        signals["embedding_drift"] = signal

    def _drift(self, keyed: KeyStreams, stream: Stream, vector, event: Event, ts: float, findings: list[Finding]) -> dict | None:
        """Feed ``vector`` to a model's drift stream; the signal for it (None without a vector)."""
        if vector is None:
            return None
        fed = self._feed_drift(keyed, stream, vector, event, ts, findings)
        if fed is not True:
            return {"skipped": fed, "flag": None}
        return embedding_drift_signal(stream.detector, self._outlier_z)

    def _feed_drift(self, keyed: KeyStreams, stream: Stream, vector, event: Event, ts: float, findings: list[Finding]) -> bool | str:
        """Feed ``vector`` to a drift stream: True, or why not (``dimensions``: another embedding model; ``thinned``: its slot had one)."""
        if vector is None:
            return "no vector"
        detector = stream.detector
        if not detector.accepts(vector):
            return "dimensions"
        if not detector.takes(event.ts):
            return "thinned"
        self._observe(keyed, stream, vector, event, ts, findings)
        return True

    def _tool_call(self, event: Event, ts: float, signals: dict, findings: list[Finding]) -> None:
        named_agent, named_tool, status, result = event.agent, event.tool, event.status, event.result  # as the event names them
        keyed = self.key_streams.get("tool", named_tool, agent=named_agent)
        agent, tool = keyed.key["agent"], keyed.key["tool"]  # as capped for labels
        self._check_halted(event, ts, signals, findings)
        failure = tool_failure_signal(status, result)
        if failure is not None:
            signals["tool_failure"] = failure
            self._observe(keyed, keyed.tool_failure, failure["flag"], event, ts, findings)
        if result is not None:
            semantic = event.semantic
            margin = semantic.injection_margin if semantic is not None else None
            self._injection_check(result, "tool_result", keyed.key, ts, event, signals, findings, margin)
        scope = tool_scope_signal(self.boundaries, named_agent, named_tool, status)
        signals["tool_scope"] = scope
        if scope["blocked"]:
            self.blocked_tool_calls[(agent, tool)] += 1
        violations = self.cooldowns.admit(("tool_scope", agent, tool), ts, self._scope_cooldown) if scope["flag"] else 0
        if violations:
            self._violation(findings, "tool_scope", "violation", keyed.key, event, 1.0, 1.0, {"verdict": scope["verdict"], "violations": violations})
        session = event.session_id or event.trace_id
        if session is None:
            return
        boundary = self.boundaries.get(named_agent)
        budget = boundary.max_calls_per_session if boundary is not None else None
        loop = self.sessions.observe(session, named_tool, event.args_hash, ts, budget)
        signals["agent_loop"] = loop
        if not loop["flag"]:
            return
        reason = loop["reason"]
        violations = self.cooldowns.admit(("agent_loop", agent, reason), ts, self._loop_cooldown)
        if violations:
            repeated = reason == "repeated_call"
            statistic = loop["repeats"] if repeated else loop["calls"]
            threshold = self.sessions.max_repeats if repeated else (budget or self.sessions.max_calls_per_session)
            self._violation(findings, "agent_loop", reason, {"agent": agent}, event, statistic, threshold, {"session_id": session, "tool": tool, "violations": violations})

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
        violations = self.cooldowns.admit(("prompt_injection", *key.values()), ts, options["cooldown_seconds"]) if injection["flag"] else 0
        if violations:
            details = {"source": source, "cues": injection["cues"], "violations": violations}
            self._violation(findings, "prompt_injection", "content", key, event, injection["score"], options["flag_score"], details)

    def _feedback_event(self, event: Event, ts: float, signals: dict, findings: list[Finding]) -> None:
        options = self._feedback
        feedback = feedback_signal(
            event.score, event.label, negative_below=options["negative_below"], negative_labels=options["negative_labels"]
        )
        signals["feedback"] = feedback
        keyed = self.key_streams.get("model", event.model) if event.model is not None else self.key_streams.get("agent", event.agent)
        self._observe(keyed, keyed.feedback, feedback["flag"], event, ts, findings)

    def _control(self, event: Event, ts: float, signals: dict, findings: list[Finding]) -> None:
        action = event.action
        agent = self.keys.value("agent", event.target_agent) if event.target_agent else None
        model = self.keys.value("model", event.target_model) if event.target_model else None
        self.kill_switch.apply(action, agent, model, ts)
        signals["kill_switch"] = {"action": action}
        if action == "kill_switch":
            key = {name: value for name, value in (("agent", agent), ("model", model)) if value is not None}
            self._violation(findings, "kill_switch", "engaged", key, event, 1.0, 1.0)
        elif action in ("deploy", "rollback") and event.target_model and event.model_version:
            self._track_version(self.key_streams.get("model", event.target_model), event.model_version, event, findings)

    def _check_halted(self, event: Event, ts: float, signals: dict, findings: list[Finding]) -> None:
        if not self.kill_switch.any_halted:
            return
        agent = self.keys.value("agent", event.agent) if event.agent else None
        model = self.keys.value("model", event.model) if event.model else None
        halted = self.kill_switch.call_after_halt(agent, model, ts)
        if halted is None:
            return
        signals["kill_switch"] = halted
        violations = self.cooldowns.admit(("kill_switch", agent, model), ts, self._halt_cooldown) if halted["flag"] else 0
        if violations:
            key = {name: value for name, value in (("agent", agent), ("model", model)) if value is not None}
            grace = self.kill_switch.grace_seconds
            self._violation(findings, "kill_switch", "call_after_halt", key, event, halted["seconds_after_halt"], grace, {"violations": violations})

    # -- streams, segments and findings -------------------------------------------------------

    def _observe(self, keyed: KeyStreams, stream: Stream, value, event: Event, ts: float, findings: list[Finding]) -> None:
        """Feed ``value`` to ``stream``'s detector at ``ts`` (the event's time, or the clock for an event without one); an alarm past the key's minimum-sample floor is a finding."""
        alarmed = stream.feed(value, ts)
        if self.observer is not None:
            self.observer.fed(keyed.key, stream, value, ts)
        if alarmed:
            self._detector_finding(keyed, stream, event, findings)
            stream.onset = None  # the detector re-learns: the next change has an onset of its own

    def _detector_finding(self, keyed: KeyStreams, stream: Stream, event: Event, findings: list[Finding]) -> None:
        if stream.count < self._cfg[stream.signal].min_samples:
            return
        stream.findings += 1
        detector = stream.detector
        findings.append(
            make_finding(
                signal=stream.signal,
                detector=stream.detector_name,
                severity=finding_severity(self.thresholds, stream.signal, stream.detector_name),
                key=keyed.key,
                event=event,
                statistic=detector.alarm_statistic,
                threshold=detector.threshold,
                details={"events": stream.count},
                started_at=stream.onset,
            )
        )

    def _violation(self, findings: list[Finding], signal: str, detector: str, key: dict[str, str], event: Event, statistic: float, threshold: float, details: dict | None = None) -> None:
        """A finding of a per-violation check (no detector: the violation itself is the evidence)."""
        severity = finding_severity(self.thresholds, signal, detector)
        findings.append(make_finding(signal=signal, detector=detector, severity=severity, key=key, event=event, statistic=statistic, threshold=threshold, details=details))

    def _track_version(self, keyed: KeyStreams, raw_version: str, event: Event, findings: list[Finding]) -> None:
        """A model's serving version: a change segments every stream of the model and is published as an annotation."""
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
        streams = list(keyed.all())
        for stream in streams:
            stream.detector.segment()
        if self.observer is not None:
            self.observer.segmented(keyed.key, streams)
        key = {"model": model, "model_version": version}
        details = {"previous_version": previous}
        severity = finding_severity(self.thresholds, MODEL_VERSION, "change")
        findings.append(make_finding(signal=MODEL_VERSION, detector="change", severity=severity, key=key, event=event, statistic=0.0, threshold=0.0, details=details, kind="annotation"))

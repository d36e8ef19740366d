# Types for the compiled build (monitor/build.py); core.py is the source, and runs as it is without a compiler.

from monitor.pipeline.streams cimport KeyStreams, KeyTable, Stream
from monitor.signals.agent_loop cimport SessionTracker
from monitor.signals.audit_gap cimport AuditGap
from monitor.signals.error_rate cimport error_signal
from monitor.signals.feedback cimport feedback_signal
from monitor.signals.hallucination cimport hallucination_signal
from monitor.signals.kill_switch cimport KillSwitchState
from monitor.signals.latency cimport latency_signal, log_seconds
from monitor.signals.prompt_injection cimport prompt_injection_signal
from monitor.signals.refusal cimport refusal_signal
from monitor.signals.tool_failure cimport tool_failure_signal
from monitor.signals.tool_scope cimport tool_scope_signal
from monitor.signals.usage cimport log_tokens, usage_signal


cdef class Pipeline:
    cdef public object thresholds, boundaries, observer, keys, cooldowns, otlp
    cdef public KillSwitchState kill_switch
    cdef public KeyTable key_streams
    cdef public SessionTracker sessions
    cdef public AuditGap _audit_gap
    cdef public dict _cfg, _injection, _feedback, _versions, _version_since
    cdef public object events_by_kind, rejects_by_reason, findings_by_signal, blocked_tool_calls
    cdef public double clock, embedding_seconds
    cdef public object _refusal_flag, _refusal_margin_from, _refusal_margin_full, _semantic_refusal, _semantic_grounding, _semantic_injection
    cdef public object _min_mean_logprob, _min_context_support, _flag_truncation, _min_grounded_share, _per_token_min, _outlier_z
    cdef public object _scope_cooldown, _halt_cooldown, _loop_cooldown

    cpdef _model_call(self, event, ts, dict signals, list findings)
    cpdef _embedding(self, KeyStreams keyed, event, ts, dict signals, list findings)
    cpdef _drift(self, KeyStreams keyed, Stream stream, vector, event, ts, list findings)
    cpdef _feed_drift(self, KeyStreams keyed, Stream stream, vector, event, ts, list findings)
    cpdef _tool_call(self, event, ts, dict signals, list findings)
    cpdef _injection_check(self, content, str source, dict key, ts, event, dict signals, list findings, semantic_margin=*)
    cpdef _feedback_event(self, event, ts, dict signals, list findings)
    cpdef _control(self, event, ts, dict signals, list findings)
    cpdef _check_halted(self, event, ts, dict signals, list findings)
    cpdef _observe(self, KeyStreams keyed, Stream stream, value, event, ts, list findings)
    cpdef _detector_finding(self, KeyStreams keyed, Stream stream, event, list findings)
    cpdef _violation(self, list findings, str signal, str detector, dict key, event, statistic, threshold, details=*)
    cpdef _track_version(self, KeyStreams keyed, str raw_version, event, list findings)

"""Per-event failure signals: pure functions of one event plus small per-key state.

The names below are a public vocabulary: they appear in findings, metrics,
``alerts/thresholds.yaml`` and alert rules. Each module's docstring says what its
signal proxies and why.
"""

SIGNALS = {
    "refusal": "the model declined, fully or in part, to do what it was asked",
    "hallucination": "cheap proxies of an unsupported answer: low token confidence, answer not supported by the retrieved context, truncation",
    "tool_failure": "a tool call that failed: error or timeout status, or status ok with an error in its result",
    "tool_scope": "a tool call outside the agent's documented tool boundary (Controls 2 and 7)",
    "agent_loop": "a runaway agent: the same call repeated in one session, or a session over its call budget",
    "latency": "model latency per call and per output token (a slower provider vs longer answers)",
    "error_rate": "provider errors per model: rate limits, 5xx, timeouts",
    "audit_gap": "an event missing a field the audit trail needs (Control 3)",
    "kill_switch": "kill-switch control events, and any call by a halted agent after the grace period (Control 1)",
    "feedback": "negative user or evaluation feedback (Control 8)",
    "prompt_injection": "instructions aimed at the model inside retrieved context or a tool result: override, role change, reveal the prompt, exfiltrate (Control 6)",
    "embedding_drift": "outputs (and, separately, prompts) moving away from their reference period (new topic, language or style), from sentence embeddings",
    "usage": "input and output tokens per call per model, calls per minute per agent, either way (cost and volume shifts: template changes, runaway or silent agents)",
}

#: The labels that identify each signal's stream in the ``aifm_signal_*`` counters (the
#: metrics fold events onto them; rules and dashboards aggregate by them). Feedback
#: carries its model, or its agent when the event names no model.
SERIES_LABELS = {
    "refusal": ("model",),
    "hallucination": ("model",),
    "error_rate": ("model",),
    "latency": ("model",),
    "embedding_drift": ("model",),
    "tool_failure": ("agent", "tool"),
    "tool_scope": ("agent", "tool"),
    "agent_loop": ("agent", "tool"),
    "prompt_injection": ("agent", "tool"),
    "audit_gap": ("agent",),
    "kill_switch": ("agent",),
    "feedback": ("model", "agent"),
    "usage": ("model", "agent"),
    "model_version": ("model",),
}

#: Not a failure signal: a serving model version change is an annotation that segments detectors.
MODEL_VERSION = "model_version"

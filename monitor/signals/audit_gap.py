"""Audit gaps: events missing a field the audit trail needs (Control 3).

Proxies: whether an incident can be reconstructed afterwards. Control 3 asks that
every model call, tool call and agent action be logged with a timestamp, input and
output hashes, the model version, the tool name and the caller's identity. A gap is
invisible until the day the log is needed, so it is measured continuously, per agent.
"""

from __future__ import annotations

from operator import attrgetter

REQUIRED_FIELDS = {
    "model_call": ("ts", "event_id", "caller", "model_version", "input_hash", "output_hash"),
    "tool_call": ("ts", "event_id", "caller", "tool", "args_hash"),
    "feedback": ("ts", "event_id", "caller"),
    "control": ("ts", "event_id", "caller"),
}
_GETTERS = {kind: attrgetter(*fields) for kind, fields in REQUIRED_FIELDS.items()}


def audit_gap_signal(event) -> dict:
    """``{"flag", "missing": [field, ...]}`` for any event."""
    values = _GETTERS[event.kind](event)
    if None not in values and "" not in values:
        return {"flag": False, "missing": []}
    missing = [name for name, value in zip(REQUIRED_FIELDS[event.kind], values) if value is None or value == ""]
    return {"flag": True, "missing": missing}

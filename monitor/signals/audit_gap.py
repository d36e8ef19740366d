"""Audit gaps: events missing a field the audit trail needs (Control 3).

Proxies: whether an incident can be reconstructed afterwards. Control 3 asks that
every model call, tool call and agent action be logged with a timestamp, input and
output hashes, the model version, the tool name and the caller's identity. A gap is
invisible until the day the log is needed, so it is measured continuously, per agent.

Which fields count is configurable per kind (``audit_gap.required_fields`` in
thresholds.yaml). A model call that failed has produced no output and was served by no
version, so its output fields (``output_hash``, ``output_text``, ``model_version``) are not
required of it.
"""

from __future__ import annotations

from operator import attrgetter

from monitor.signals.spec import Option, SignalSpec, StreamSpec

#: The defaults of thresholds.yaml: what Control 3 asks, and what an OpenTelemetry source can
#: meet (the OTel mapping fills caller, hashes and model version, docs/otel.md).
REQUIRED_FIELDS = {
    "model_call": ("ts", "event_id", "caller", "model_version", "input_hash", "output_hash"),
    "tool_call": ("ts", "event_id", "caller", "tool", "args_hash"),
    "feedback": ("ts", "event_id", "caller"),
    "control": ("ts", "event_id", "caller"),
}

#: Fields that only a call that answered can have.
OUTPUT_FIELDS = frozenset({"output_hash", "output_text", "model_version"})


class AuditGap:
    """The audit-gap check for one configuration of required fields.

    >>> from monitor.events import Event
    >>> check = AuditGap({"model_call": ("caller", "output_hash")})
    >>> check(Event(kind="model_call", model="m")), check(Event(kind="model_call", model="m", error_type="429"))
    ({'flag': True, 'missing': ['caller', 'output_hash']}, {'flag': True, 'missing': ['caller']})
    """

    def __init__(self, required: dict[str, tuple[str, ...]] | None = None) -> None:
        required = REQUIRED_FIELDS if required is None else required
        self._fields = {kind: tuple(required.get(kind, ())) for kind in REQUIRED_FIELDS}
        self._failed_fields = {kind: tuple(f for f in fields if f not in OUTPUT_FIELDS) for kind, fields in self._fields.items()}
        self._getters = {kind: _getter(fields) for kind, fields in self._fields.items()}
        self._failed_getters = {kind: _getter(fields) for kind, fields in self._failed_fields.items()}

    def __call__(self, event) -> dict:
        """``{"flag", "missing": [field, ...]}`` for any event."""
        return self.check(event)

    def check(self, event) -> dict:
        """``{"flag", "missing": [field, ...]}`` for any event (what calling the check does)."""
        kind = event.kind
        if event.error_type is not None and kind == "model_call":
            fields, values = self._failed_fields[kind], self._failed_getters[kind](event)
        else:
            fields, values = self._fields[kind], self._getters[kind](event)
        # (a decoded field is "" only as a str: tested so, with no rich comparison per value)
        missing = [fields[index] for index, value in enumerate(values) if value is None or (isinstance(value, str) and not value)]
        return {"flag": bool(missing), "missing": missing}


def _getter(fields: tuple[str, ...]):
    if not fields:
        return lambda event: ()
    if len(fields) == 1:
        getter = attrgetter(fields[0])
        return lambda event: (getter(event),)
    return attrgetter(*fields)


_default = AuditGap()


def audit_gap_signal(event) -> dict:
    """The check with the default fields (:data:`REQUIRED_FIELDS`)."""
    return _default(event)


SPEC = SignalSpec(
    name="audit_gap",
    proxies="an event missing a field the audit trail needs: ts, event_id, caller, model version or tool, input and output or args hashes (Control 3)",
    reads=("*.*",),  # the fields audit_gap.required_fields names, on every kind
    series_labels=("agent",),
    options={"required_fields": Option(dict)},
    streams=(
        StreamSpec("rate", "AIFMAuditTrailGaps", "Audit-trail records are incomplete: the share of events missing required fields rose above its target.", "emits events missing audit-trail fields above the tolerated share", ("agent",), slot="audit_gap"),
    ),
    ratio_level="agent",
)

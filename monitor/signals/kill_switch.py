"""Kill switch: halt events, and calls by a halted agent or model (Control 1).

Proxies: whether the kill switch works. Control 1 asks that one command halts an agent
and that the halt is confirmed within 60 seconds; a call by that agent after the grace
period means the switch did not hold, which is critical. The engagement itself is a
finding too, so that the people on call see it next to the signals that caused it.
"""

from __future__ import annotations

from monitor.signals.spec import NON_NEGATIVE, Option, SignalSpec, StreamSpec


class KillSwitchState:
    """Which agents and models are halted, and since when (event time).

    ``any_halted``: whether any is, read before every call (a field, not a property: in the
    compiled build the pipeline reads it from the extension type's struct).
    """

    def __init__(self, *, grace_seconds: float):
        self.grace_seconds = grace_seconds
        self._halted_agents: dict[str, float] = {}
        self._halted_models: dict[str, float] = {}
        self.any_halted = False

    def state(self) -> list:
        return [self._halted_agents, self._halted_models]

    def load_state(self, state: list) -> None:
        agents, models = state
        self._halted_agents = {str(name): float(ts) for name, ts in agents.items()}
        self._halted_models = {str(name): float(ts) for name, ts in models.items()}
        self.any_halted = bool(self._halted_agents or self._halted_models)

    def apply(self, action: str, target_agent: str | None, target_model: str | None, ts: float) -> None:
        if action == "kill_switch":
            if target_agent is not None:
                self._halted_agents[target_agent] = ts
            if target_model is not None:
                self._halted_models[target_model] = ts
        elif action == "resume":
            if target_agent is not None:
                self._halted_agents.pop(target_agent, None)
            if target_model is not None:
                self._halted_models.pop(target_model, None)
        self.any_halted = bool(self._halted_agents or self._halted_models)

    def call_after_halt(self, agent: str | None, model: str | None, ts: float) -> dict | None:
        """``{"flag": True, "seconds_after_halt"}`` for a call past the grace period, else None."""
        halted_at = None
        if agent is not None and agent in self._halted_agents:
            halted_at = self._halted_agents[agent]
        elif model is not None and model in self._halted_models:
            halted_at = self._halted_models[model]
        if halted_at is None:
            return None
        after = ts - halted_at
        if after <= self.grace_seconds:
            return {"flag": False, "seconds_after_halt": round(after, 3)}
        return {"flag": True, "seconds_after_halt": round(after, 3)}


SPEC = SignalSpec(
    name="kill_switch",
    proxies="kill-switch control events, and any call by a halted agent after the grace period (Control 1)",
    reads=("control.action", "control.target_agent", "control.target_model", "model_call.agent", "tool_call.agent"),
    series_labels=("agent",),
    options={"grace_seconds": Option(float, NON_NEGATIVE), "cooldown_seconds": Option(float, NON_NEGATIVE)},
    streams=(
        StreamSpec("engaged", "AIFMKillSwitchEngaged", "A kill switch was engaged.", "had a kill switch engaged", ("model", "agent"), severity="warning"),
        StreamSpec(
            "call_after_halt",
            "AIFMCallAfterKillSwitch",
            "A halted agent or model was called after the kill-switch grace period.",
            "was called after its kill switch's grace period",
            ("model", "agent"),
        ),
    ),
    expect_keys_from="audit_gap",
)

"""Runaway agent loops: one session repeating a call, or exceeding its call budget.

Proxies: an agent stuck retrying a tool that keeps failing soft, or ping-ponging
between two steps, burns money and rate limits and may repeat side effects. Control 1's
scenario: the runaway agent that someone must halt. Tracked per session (or trace when
no session id is given), with the number of sessions held bounded and idle sessions
forgotten, so memory does not grow with traffic.
"""

from __future__ import annotations

from collections import OrderedDict

_MAX_DISTINCT_CALLS_PER_SESSION = 1024


class _Session:
    __slots__ = ("calls", "repeats", "last_ts", "flagged")

    def __init__(self, ts: float) -> None:
        self.calls = 0
        self.repeats: dict[tuple[str, str | None], int] = {}
        self.last_ts = ts
        self.flagged: set[str] = set()


class SessionTracker:
    """Counts calls per session; flags each session at most once per reason.

    Parameters
    ----------
    max_repeats
        Identical calls (same tool, same ``args_hash``) one session may make before it
        is a loop.
    max_calls_per_session
        Call budget per session (an agent's boundary document can set its own).
    session_idle_seconds
        A session unseen for this long (event time) is forgotten.
    max_sessions
        Sessions held at once; the least recently seen is forgotten beyond it.
    """

    def __init__(self, *, max_repeats: int, max_calls_per_session: int, session_idle_seconds: float, max_sessions: int):
        self.max_repeats = max_repeats
        self.max_calls_per_session = max_calls_per_session
        self.session_idle_seconds = session_idle_seconds
        self.max_sessions = max_sessions
        self._sessions: OrderedDict[str, _Session] = OrderedDict()

    def __len__(self) -> int:
        return len(self._sessions)

    def observe(self, session: str, tool: str, args_hash: str | None, ts: float, budget: int | None = None) -> dict:
        """Record one tool call; ``{"flag", "reason", "calls", "repeats"}``."""
        state = self._sessions.get(session)
        if state is None or ts - state.last_ts > self.session_idle_seconds:
            state = _Session(ts)
            self._sessions[session] = state
            self._sessions.move_to_end(session)
            self._evict(ts)
        else:
            self._sessions.move_to_end(session)
            state.last_ts = ts
        state.calls += 1
        repeats = 0
        if args_hash is not None:
            call = (tool, args_hash)
            repeats = state.repeats.get(call, 0) + 1
            if repeats > 1 or len(state.repeats) < _MAX_DISTINCT_CALLS_PER_SESSION:
                state.repeats[call] = repeats
        reason = None
        if repeats > self.max_repeats and "repeated_call" not in state.flagged:
            reason = "repeated_call"
        elif state.calls > (budget or self.max_calls_per_session) and "call_budget" not in state.flagged:
            reason = "call_budget"
        if reason is not None:
            state.flagged.add(reason)
        return {"flag": reason is not None, "reason": reason, "calls": state.calls, "repeats": repeats}

    def _evict(self, now: float) -> None:
        sessions = self._sessions
        while len(sessions) > self.max_sessions:
            sessions.popitem(last=False)
        while sessions:
            oldest = next(iter(sessions.values()))
            if now - oldest.last_ts <= self.session_idle_seconds:
                break
            sessions.popitem(last=False)

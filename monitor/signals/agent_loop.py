"""Runaway agent loops: one session repeating a call, or exceeding its call budget.

Proxies: an agent stuck retrying a tool that keeps failing soft, or ping-ponging
between two steps, burns money and rate limits and may repeat side effects. Control 1's
scenario: the runaway agent that someone must halt. Tracked per session (or trace when
no session id is given), with the number of sessions held bounded and idle sessions
forgotten, so memory does not grow with traffic. A session's calls are remembered by
a 64-bit digest of (tool, args_hash): state, and the snapshots that carry it, hold no
producer text but the session id.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict

from monitor.signals.spec import NON_NEGATIVE, POSITIVE_COUNT, Option, SignalSpec, StreamSpec

_MAX_DISTINCT_CALLS_PER_SESSION = 1024
_REASON_BITS = {"repeated_call": 1, "call_budget": 2}
#: Distinct calls remembered over all sessions; the least recently seen sessions are forgotten beyond it.
MAX_CALLS_TRACKED = 200_000


#: BLAKE2b's state for an 8-byte digest, before any data: every call's digest starts from a copy of it.
_NO_DATA_YET = hashlib.blake2b(digest_size=8)


def _call_digest(tool: str, args_hash: str) -> int:
    """``blake2b(tool NUL args_hash, digest_size=8)`` as an integer: what a session remembers of a call (snapshots hold it).

    Copying the prepared state gives the digest a new hash object would, for a quarter less:
    no keyword arguments to parse, no parameter block to set up.
    """
    digest = _NO_DATA_YET.copy()
    digest.update(f"{tool}\x00{args_hash}".encode("utf-8", "surrogatepass"))
    return int.from_bytes(digest.digest(), "big")


class _Session:
    __slots__ = ("calls", "repeats", "last_ts", "flagged", "arrived")

    def __init__(self, ts: float, arrived: float) -> None:
        self.arrived = arrived  # processing time of the latest call (the tracker's clock)
        self.calls = 0
        self.repeats: dict[int, int] = {}  # digest of (tool, args_hash) -> calls
        self.last_ts = ts
        self.flagged = 0  # reasons already flagged, as bits of _REASON_BITS


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
    max_calls_tracked
        Distinct calls remembered over all sessions; the least recently seen sessions
        are forgotten beyond it.

    A session is idle when unseen for ``session_idle_seconds`` of event time (measured
    against the latest event time seen, not the current event's) or of processing time
    (``clock``): a producer whose clock steps back, or a stream whose event time stops
    moving, does not stall the forgetting of idle sessions.
    """

    def __init__(
        self, *, max_repeats: int, max_calls_per_session: int, session_idle_seconds: float, max_sessions: int, max_calls_tracked: int = MAX_CALLS_TRACKED,
        clock=time.monotonic,
    ):
        self.clock = clock
        self.max_repeats = max_repeats
        self.max_calls_per_session = max_calls_per_session
        self.session_idle_seconds = session_idle_seconds
        self.max_sessions = max_sessions
        self.max_calls_tracked = max_calls_tracked
        self._sessions: OrderedDict[str, _Session] = OrderedDict()
        self._calls_tracked = 0
        self._watermark = float("-inf")

    def state(self) -> list:
        """The sessions as plain data (a snapshot), least recently seen first."""
        sessions = [[sid, s.calls, s.last_ts, [[k, n] for k, n in s.repeats.items()], s.flagged] for sid, s in self._sessions.items()]
        return [self._watermark, sessions]

    def load_state(self, state: list) -> None:
        watermark, sessions = state
        self._watermark = float(watermark)
        self._sessions.clear()
        self._calls_tracked = 0
        for sid, calls, last_ts, repeats, flagged in sessions:
            session = _Session(float(last_ts), self.clock())
            session.calls = int(calls)
            session.repeats = {int(k): int(n) for k, n in repeats}
            session.flagged = int(flagged)
            self._sessions[str(sid)] = session
            self._calls_tracked += len(session.repeats)

    def __len__(self) -> int:
        return len(self._sessions)

    def observe(self, session: str, tool: str, args_hash: str | None, ts: float, budget: int | None = None) -> dict:
        """Record one tool call; ``{"flag", "reason", "calls", "repeats"}``."""
        if ts > self._watermark:
            self._watermark = ts
        now = self.clock()
        state = self._sessions.get(session)
        if state is None or ts - state.last_ts > self.session_idle_seconds or now - state.arrived > self.session_idle_seconds:
            if state is not None:
                self._calls_tracked -= len(state.repeats)
            state = _Session(ts, now)
            self._sessions[session] = state
            self._sessions.move_to_end(session)
            self._evict(now)
        else:
            self._sessions.move_to_end(session)
            state.last_ts = ts
            state.arrived = now
        state.calls += 1
        repeats = 0
        if args_hash is not None:
            call = _call_digest(tool, args_hash)
            repeats = state.repeats.get(call, 0) + 1
            if repeats > 1:
                state.repeats[call] = repeats
            elif len(state.repeats) < _MAX_DISTINCT_CALLS_PER_SESSION:
                state.repeats[call] = repeats
                self._calls_tracked += 1
                if self._calls_tracked > self.max_calls_tracked:
                    self._evict(now)
        reason = None
        if repeats > self.max_repeats and not state.flagged & 1:
            reason = "repeated_call"
        elif state.calls > (budget or self.max_calls_per_session) and not state.flagged & 2:
            reason = "call_budget"
        if reason is not None:
            state.flagged |= _REASON_BITS[reason]
        return {"flag": reason is not None, "reason": reason, "calls": state.calls, "repeats": repeats}

    def _evict(self, now: float) -> None:
        """Forget the least recently seen sessions beyond the bounds, then those idle at the front (oldest arrivals)."""
        sessions = self._sessions
        idle = self.session_idle_seconds
        while len(sessions) > 1 and (len(sessions) > self.max_sessions or self._calls_tracked > self.max_calls_tracked):
            self._forget_oldest()
        while len(sessions) > 1:
            oldest = next(iter(sessions.values()))
            if self._watermark - oldest.last_ts <= idle and now - oldest.arrived <= idle:
                break
            self._forget_oldest()

    def _forget_oldest(self) -> None:
        self._calls_tracked -= len(self._sessions.popitem(last=False)[1].repeats)


SPEC = SignalSpec(
    name="agent_loop",
    proxies="a runaway agent: the same call repeated in one session, or a session over its call budget",
    reads=("tool_call.session_id", "tool_call.trace_id", "tool_call.tool", "tool_call.args_hash"),
    series_labels=("agent", "tool"),
    options={
        "max_repeats": Option(int, POSITIVE_COUNT),
        "max_calls_per_session": Option(int, POSITIVE_COUNT),
        "session_idle_seconds": Option(float, NON_NEGATIVE),
        "max_sessions": Option(int, POSITIVE_COUNT),
        "cooldown_seconds": Option(float, NON_NEGATIVE),
    },
    streams=(
        StreamSpec("repeated_call", "AIFMAgentLoopRepeatedCall", "An agent session repeated the same tool call past its limit.", "repeated the same tool call in one session past its limit", ("agent",)),
        StreamSpec("call_budget", "AIFMAgentSessionOverBudget", "An agent session exceeded its call budget.", "ran a session past its tool-call budget", ("agent",)),
    ),
    ratio_level="agent",
)

"""Tool scope: calls outside an agent's documented tool boundary (Controls 2 and 7).

Proxies: prompt injection succeeding, or an agent given broader credentials than its
job. The boundary is a document per agent (YAML, one file each)::

    agent: support-bot
    allow: ["search_*", "get_order"]
    deny: ["*_delete", "refund_*"]
    max_calls_per_session: 50      # optional; agent_loop's budget for this agent

Deny wins over allow; a tool that no allow pattern matches is out of scope. Patterns
are shell-style globs matched case-sensitively. A call with status ``blocked`` was held
by a pre-call gate (Control 7): the gate worked, so it is counted, not flagged.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

from monitor.signals.spec import NON_NEGATIVE, Option, SignalSpec, StreamSpec


class BoundariesError(ValueError):
    """A boundary directory or document is unreadable or invalid."""


@dataclass(frozen=True)
class Boundary:
    agent: str
    allow: tuple[str, ...]
    deny: tuple[str, ...]
    max_calls_per_session: int | None = None
    source: str = ""

    def verdict(self, tool: str) -> str:
        """``in_scope``, ``denied`` (a deny pattern matched) or ``not_allowed``.

        >>> Boundary("bot", allow=("search_*",), deny=("search_admin",)).verdict("search_admin")
        'denied'
        """
        if any(fnmatch.fnmatchcase(tool, pattern) for pattern in self.deny):
            return "denied"
        if any(fnmatch.fnmatchcase(tool, pattern) for pattern in self.allow):
            return "in_scope"
        return "not_allowed"


class Boundaries:
    """All agents' boundaries; verdicts are cached per (agent, tool)."""

    def __init__(self, boundaries: dict[str, Boundary] | None = None):
        self._by_agent = dict(boundaries or {})
        self.verdict = lru_cache(maxsize=65536)(self._verdict)

    def __len__(self) -> int:
        return len(self._by_agent)

    def get(self, agent: str | None) -> Boundary | None:
        return self._by_agent.get(agent) if agent is not None else None

    def _verdict(self, agent: str | None, tool: str) -> str:
        boundary = self.get(agent)
        return boundary.verdict(tool) if boundary is not None else "no_boundary"


def load_boundaries(directory: str | Path | None) -> Boundaries:
    """Read every ``*.yaml`` / ``*.yml`` in ``directory``; None gives no boundaries."""
    if directory is None:
        return Boundaries()
    directory = Path(directory)
    if not directory.is_dir():
        raise BoundariesError(f"{directory}: not a directory of boundary files")
    boundaries: dict[str, Boundary] = {}
    for path in sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")]):
        boundary = _parse_boundary(path)
        if boundary.agent in boundaries:
            raise BoundariesError(f"{path}: agent {boundary.agent!r} already has a boundary in {boundaries[boundary.agent].source}")
        boundaries[boundary.agent] = boundary
    return Boundaries(boundaries)


def _parse_boundary(path: Path) -> Boundary:
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise BoundariesError(f"{path}: cannot read the boundary ({error})") from None
    if not isinstance(document, dict):
        raise BoundariesError(f"{path}: expected a mapping with agent, allow, deny")
    unknown = sorted(set(document) - {"agent", "allow", "deny", "max_calls_per_session", "description"})
    if unknown:
        raise BoundariesError(f"{path}: unknown field(s) {', '.join(unknown)}")
    agent = document.get("agent")
    if not isinstance(agent, str) or not agent:
        raise BoundariesError(f"{path}: 'agent' must be a non-empty string")
    patterns = {}
    for name in ("allow", "deny"):
        value = document.get(name, [])
        if not isinstance(value, list) or not all(isinstance(p, str) and p for p in value):
            raise BoundariesError(f"{path}: '{name}' must be a list of glob strings")
        patterns[name] = tuple(value)
    budget = document.get("max_calls_per_session")
    if budget is not None and (not isinstance(budget, int) or isinstance(budget, bool) or budget < 1):
        raise BoundariesError(f"{path}: 'max_calls_per_session' must be an integer >= 1")
    return Boundary(agent, patterns["allow"], patterns["deny"], budget, str(path))


def tool_scope_signal(boundaries: Boundaries, agent: str | None, tool: str, status: str) -> dict:
    """``{"flag", "verdict", "blocked"}``: flag means out of scope and not blocked by a gate."""
    verdict = boundaries.verdict(agent, tool)
    blocked = status == "blocked"
    out_of_scope = verdict in ("denied", "not_allowed")
    return {"flag": out_of_scope and not blocked, "verdict": verdict, "blocked": blocked}


SPEC = SignalSpec(
    name="tool_scope",
    proxies="a tool call outside the agent's documented boundary (deny wins; no allow match is out of scope); calls a gate blocked are counted apart (Controls 2 and 7)",
    reads=("tool_call.agent", "tool_call.tool", "tool_call.status"),
    series_labels=("agent", "tool"),
    options={"cooldown_seconds": Option(float, NON_NEGATIVE)},
    streams=(
        StreamSpec("violation", "AIFMToolScopeViolation", "An agent called a tool outside its documented boundary.", "was called outside the agent's documented tool boundary", ("agent", "tool")),
    ),
    ratio_level="agent_tool",
)

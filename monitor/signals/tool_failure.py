"""Tool failure: a tool call that did not do its job.

Proxies: agents fail soft. A tool can return status ok while its payload says it
failed (an MCP result with ``isError: true``, a JSON API answering ``{"ok": false}`` or
``{"error": {...}}``); the agent then carries on with nothing, and users see a
confident wrong answer. Counting only transport errors misses these, so the result
payload is inspected too. Calls a pre-call gate blocked are not failures: the
``tool_scope`` signal counts them.
"""

from __future__ import annotations

from typing import Any

from monitor.signals.spec import SignalSpec, StreamSpec

_FAILED_STATUS_WORDS = frozenset({"error", "failed", "failure", "fail", "timeout", "timed_out"})


def soft_failure(result: Any) -> bool:
    """True when a result reported as ok says, in its payload, that it failed.

    >>> soft_failure({"isError": True, "content": []}), soft_failure({"ok": False}), soft_failure({"ok": True, "error": None})
    (True, True, False)
    """
    if not isinstance(result, dict):
        return False
    if result.get("isError") is True or result.get("is_error") is True:
        return True
    if result.get("ok") is False or result.get("success") is False:
        return True
    if result.get("error") not in (None, "", False, {}, []):
        return True
    errors = result.get("errors")
    if isinstance(errors, list) and errors:
        return True
    status = result.get("status")
    return isinstance(status, str) and status.lower() in _FAILED_STATUS_WORDS


def tool_failure_signal(status: str, result: Any) -> dict | None:
    """``{"flag", "failure"}`` for a tool call; None for a blocked call."""
    if status == "blocked":
        return None
    if status in ("error", "timeout"):
        return {"flag": True, "failure": status}
    if soft_failure(result):
        return {"flag": True, "failure": "soft"}
    return {"flag": False, "failure": None}


SPEC = SignalSpec(
    name="tool_failure",
    proxies="a tool call that failed: error or timeout status, or a soft failure (status ok with `ok: false`, `isError: true` or an error payload)",
    reads=("tool_call.status", "tool_call.result"),
    series_labels=("agent", "tool"),
    streams=(
        StreamSpec("rate", "AIFMToolFailureRateHigh", "A tool's failure rate rose above its reference.", "fails more often than its reference, soft failures included", ("agent", "tool"), slot="tool_failure"),
    ),
    ratio_level="agent_tool",
)

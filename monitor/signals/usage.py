"""Token usage per call per model, and calls per minute per agent.

Proxies: cost and volume shifts that nothing else shows. A prompt template change that
doubles (or halves) the input tokens, a model that starts answering at twice the
length, an agent that runs away (three times its calls) or falls silent: every call
still succeeds. These are also the only signals for teams that export nothing but
timestamps and token counts (a serving trace, a billing log). A fall matters as much as
a rise, so both directions are tested. Token counts are right-skewed, so the detectors
see their logarithm; counts per minute go through Anscombe's transform
(:mod:`monitor.detectors.event_rate`).
"""

from __future__ import annotations

import math

from monitor.signals.spec import SignalSpec, StreamSpec


def usage_signal(input_tokens: int | None, output_tokens: int | None) -> dict | None:
    """``{"input_tokens", "output_tokens"}`` (either may be None); None when the call reports neither."""
    if input_tokens is None and output_tokens is None:
        return None
    return {"input_tokens": input_tokens, "output_tokens": output_tokens}


def log_tokens(tokens: int) -> float:
    """The detector's scale: log of the token count, with 1 token as the floor."""
    return math.log(tokens if tokens > 1 else 1)


SPEC = SignalSpec(
    name="usage",
    flagged=False,
    proxies="input and output tokens per call per model, calls per minute per agent, either way (cost and volume shifts: template changes, runaway or silent agents)",
    reads=("model_call.input_tokens", "model_call.output_tokens", "model_call.error_type", "model_call.agent", "tool_call.agent"),
    series_labels=("model", "agent"),
    streams=(
        StreamSpec(
            "input_tokens",
            "AIFMInputTokensShift",
            "Input tokens per call to a model shifted away from their reference.",
            "is sent a different number of input tokens per call than in its reference (higher or lower)",
            ("model",),
            slot="input_tokens",
        ),
        StreamSpec(
            "output_tokens",
            "AIFMOutputTokensShift",
            "Output tokens per call of a model shifted away from their reference.",
            "answers with a different number of output tokens per call than in its reference (higher or lower)",
            ("model",),
            slot="output_tokens",
        ),
        StreamSpec("calls_per_minute", "AIFMAgentCallRateShift", "An agent's calls per minute shifted away from their reference.", "makes more (or fewer) calls per minute than its reference", ("agent",), slot="calls"),
    ),
)

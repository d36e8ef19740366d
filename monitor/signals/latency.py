"""Latency per model, also per output token.

Proxies: a slower provider, an overloaded deployment, or a model change that makes
answers longer. Per-call latency alone cannot tell "slower" from "longer"; latency per
output token can. Latency is right-skewed, so the detectors see its logarithm, where a
shift of the typical value is a shift of the mean.
"""

from __future__ import annotations

import math

from monitor.signals.spec import POSITIVE_COUNT, Option, SignalSpec, StreamSpec


def latency_signal(latency_ms: float | None, output_tokens: int | None, per_token_min_output_tokens: int) -> dict | None:
    """``{"seconds", "per_token_seconds"}``; None without a latency."""
    if latency_ms is None:
        return None
    seconds = latency_ms / 1000.0
    per_token = None
    if output_tokens is not None and output_tokens >= max(1, per_token_min_output_tokens):
        per_token = seconds / output_tokens
    return {"seconds": seconds, "per_token_seconds": per_token}


def log_seconds(seconds: float) -> float:
    """The detector's scale: log of seconds, with 1 ms as the floor."""
    return math.log(seconds if seconds > 1e-3 else 1e-3)


SPEC = SignalSpec(
    name="latency",
    flagged=False,
    proxies="model latency per call and per output token (a slower provider vs longer answers)",
    reads=("model_call.latency_ms", "model_call.output_tokens"),
    series_labels=("model",),
    options={"per_token_min_output_tokens": Option(int, POSITIVE_COUNT)},
    streams=(
        StreamSpec("seconds", "AIFMLatencyShift", "A model's latency shifted above its reference.", "answers slower than its reference latency", ("model",), slot="latency"),
        StreamSpec(
            "per_token_seconds",
            "AIFMLatencyPerTokenShift",
            "A model's latency per output token shifted above its reference.",
            "takes longer per output token than its reference",
            ("model",),
            slot="latency_per_token",
        ),
    ),
)

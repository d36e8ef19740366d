"""Negative feedback: users or automated evaluations scoring answers as bad (Control 8).

Proxies: output quality as judged by the people or evals downstream. It arrives late
and sparsely, but it is the most direct quality signal there is; a rise in its
negative share per model is tracked like any other rate.
"""

from __future__ import annotations

from monitor.signals.spec import UNIT, Option, SignalSpec, StreamSpec


def feedback_signal(score: float | None, label: str | None, negative_below: float, negative_labels: list) -> dict:
    negative = (score is not None and score < negative_below) or (label is not None and label.lower() in negative_labels)
    return {"flag": negative, "score": score}


SPEC = SignalSpec(
    name="feedback",
    proxies="negative user or evaluation feedback (Control 8)",
    reads=("feedback.score", "feedback.label"),
    series_labels=("model", "agent"),
    options={"negative_below": Option(float, UNIT), "negative_labels": Option(list)},
    streams=(
        StreamSpec("rate", "AIFMNegativeFeedbackRateHigh", "The negative-feedback rate rose above its reference.", "receives negative feedback more often than its reference", ("model", "agent"), slot="feedback"),
    ),
    ratio_level="model",
)

"""Negative feedback: users or automated evaluations scoring answers as bad (Control 8).

Proxies: output quality as judged by the people or evals downstream. It arrives late
and sparsely, but it is the most direct quality signal there is; a rise in its
negative share per model is tracked like any other rate.
"""

from __future__ import annotations


def feedback_signal(score: float | None, label: str | None, *, negative_below: float, negative_labels: list) -> dict:
    negative = (score is not None and score < negative_below) or (label is not None and label.lower() in negative_labels)
    return {"flag": negative, "score": score}

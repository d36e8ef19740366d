"""Semantic proxies from sentence embeddings: refusal and injection by similarity to exemplars, groundedness against the retrieved context.

The monitor's encoder computes these for the budget-sampled model calls
(:mod:`monitor.embeddings.embedder`), so this package's scoring is numpy only; the
signals combine them with their lexical cues (:mod:`monitor.signals`).
"""

from __future__ import annotations

import msgspec


class SemanticScores(msgspec.Struct, kw_only=True, gc=False):
    """What the encoder found about one model call; None where the input was absent.

    ``refusal_margin``: similarity of the output to refusal exemplars minus to their
    contrasts. ``grounded_share``: share of the answer's sentences that some sentence of
    the retrieved context supports. ``injection_margin``: the highest, over the sentences
    of the context (or of a tool result), similarity to injection exemplars minus to
    their contrasts. A sampled tool call carries only ``injection_margin``.
    """

    refusal_margin: float | None = None
    grounded_share: float | None = None
    injection_margin: float | None = None


def margin_weight(margin: float, start: float, full: float, top: float = 0.95) -> float:
    """The weight of a semantic cue: 0 up to a margin of ``start``, rising linearly to ``top`` at ``full``.

    Combined with lexical cues as ``1 - prod(1 - w)``, so a clear semantic match flags on
    its own and a moderate one adds to a weak lexical cue.

    >>> margin_weight(0.06, 0.0, 0.12)
    0.475
    """
    if margin <= start:
        return 0.0
    return top * min(1.0, (margin - start) / (full - start))

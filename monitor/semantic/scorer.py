"""Semantic scores of one model call from its sentence vectors."""

from __future__ import annotations

import numpy as np

from monitor.semantic import SemanticScores
from monitor.semantic.exemplars import BENIGN_INSTRUCTIONS, INJECTIONS, NOT_REFUSALS, REFUSALS
from monitor.semantic.scores import ExemplarMargin, grounded_share


class SemanticScorer:
    """Refusal and injection margins against the curated exemplars, and groundedness.

    Built once per encoder (:meth:`from_encoder` encodes the exemplars, ~150 sentences);
    scoring is then a few small matrix products per event.
    ``grounded_similarity`` is the similarity at which a context sentence supports an
    answer sentence (``hallucination.grounded_similarity`` in the thresholds file).
    """

    def __init__(self, refusal: ExemplarMargin, injection: ExemplarMargin, grounded_similarity: float):
        self.refusal = refusal
        self.injection = injection
        self.grounded_similarity = grounded_similarity

    @classmethod
    def from_encoder(cls, encoder, grounded_similarity: float) -> SemanticScorer:
        vectors = encoder.encode([*REFUSALS, *NOT_REFUSALS, *INJECTIONS, *BENIGN_INSTRUCTIONS])
        bounds = np.cumsum([len(REFUSALS), len(NOT_REFUSALS), len(INJECTIONS)])
        refusals, not_refusals, injections, benign = np.split(vectors, bounds)
        return cls(ExemplarMargin(refusals, not_refusals), ExemplarMargin(injections, benign), grounded_similarity)

    def score(self, output: np.ndarray, answer: np.ndarray, context: np.ndarray) -> SemanticScores:
        """``output``: the whole output's vector; ``answer`` and ``context``: one row per sentence (may be empty)."""
        scores = SemanticScores(refusal_margin=round(float(self.refusal.margins(output[None, :])[0]), 4))
        if len(context):
            scores.injection_margin = self.injection_margin(context)
            share = grounded_share(answer, context, self.grounded_similarity)
            if share is not None:
                scores.grounded_share = round(share, 4)
        return scores

    def injection_margin(self, sentences: np.ndarray) -> float:
        """The margin of the most injection-like of ``sentences`` (at least one row)."""
        return round(float(self.injection.margins(sentences).max()), 4)

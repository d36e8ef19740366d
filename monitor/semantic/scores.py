"""Scoring with unit sentence vectors (dot product = cosine similarity); numpy only.

Exemplar scores are a contrastive nearest-neighbour margin: the mean similarity to the
``k`` nearest positive exemplars minus the mean similarity to the ``k`` nearest
contrasts. A text that merely shares words or tone with the positives ("sorry for the
confusion") lies as close to the contrasts and scores near zero.
"""

from __future__ import annotations

import re

import numpy as np

#: Sentences read from an answer and from its context (the cost per event stays bounded).
MAX_ANSWER_SENTENCES = 8
MAX_CONTEXT_SENTENCES = 24
_MIN_SENTENCE_WORDS = 4
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(\[])|\n+")


def split_sentences(text: str, limit: int) -> list[str]:
    """The first ``limit`` sentences of ``text`` with at least four words (shorter ones carry no claim to check).

    >>> split_sentences("Paris is the capital. It has 2.1 million people! Yes.\\nThe Seine runs through it.", 5)
    ['Paris is the capital.', 'It has 2.1 million people!', 'The Seine runs through it.']
    """
    sentences = []
    for piece in _SENTENCE_END.split(text):
        piece = piece.strip()
        if len(piece.split()) >= _MIN_SENTENCE_WORDS:
            sentences.append(piece)
            if len(sentences) >= limit:
                break
    return sentences


class ExemplarMargin:
    """Contrastive margin of texts against one exemplar set and its contrasts."""

    def __init__(self, positives: np.ndarray, contrasts: np.ndarray, k: int = 3):
        if len(positives) < k or len(contrasts) < k:
            raise ValueError(f"need at least {k} exemplars and {k} contrasts")
        self.positives = positives
        self.contrasts = contrasts
        self.k = k

    def margins(self, vectors: np.ndarray) -> np.ndarray:
        """One margin per row of ``vectors``."""
        if len(vectors) == 0:
            return np.zeros(0, dtype=np.float32)
        return self._top_mean(vectors @ self.positives.T) - self._top_mean(vectors @ self.contrasts.T)

    def _top_mean(self, similarities: np.ndarray) -> np.ndarray:
        return np.partition(similarities, -self.k, axis=1)[:, -self.k :].mean(axis=1)


def grounded_share(answer: np.ndarray, context: np.ndarray, min_similarity: float) -> float | None:
    """Share of answer sentences whose nearest context sentence is at least ``min_similarity`` alike.

    None when either side has no sentence to compare.
    """
    if len(answer) == 0 or len(context) == 0:
        return None
    best = (answer @ context.T).max(axis=1)
    return float((best >= min_similarity).mean())

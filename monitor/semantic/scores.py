"""Scoring with unit sentence vectors (dot product = cosine similarity); numpy only.

Exemplar scores are a contrastive nearest-neighbour margin: the mean similarity to the
``k`` nearest positive exemplars minus the mean similarity to the ``k`` nearest
contrasts. A text that merely shares words or tone with the positives ("sorry for the
confusion") lies as close to the contrasts and scores near zero.
"""

from __future__ import annotations

import re

import numpy as np

#: Sentences read from an answer, and from an event's context or tool result (all its
#: pieces together): the encoder's cost per event stays bounded.
MAX_ANSWER_SENTENCES = 8
MAX_CONTEXT_SENTENCES = 128
#: A sentence longer than this is read in pieces of at most this many characters (about
#: the encoder's 128-token window), so that its end is not cut off unread.
MAX_SENTENCE_CHARS = 500
_MIN_SENTENCE_WORDS = 4
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(\[])|\n+")


def split_sentences(text: str, limit: int) -> list[str]:
    """The first ``limit`` sentences of ``text`` with at least four words (shorter ones carry no claim to check).

    Found lazily, so a long text costs only as far as its ``limit``-th sentence.

    >>> split_sentences("Paris is the capital. It has 2.1 million people! Yes.\\nThe Seine runs through it.", 5)
    ['Paris is the capital.', 'It has 2.1 million people!', 'The Seine runs through it.']
    """
    sentences: list[str] = []
    start = 0
    for end in _SENTENCE_END.finditer(text):
        if _take(text[start : end.start()], sentences, limit):
            return sentences
        start = end.end()
    _take(text[start:], sentences, limit)
    return sentences


def _take(piece: str, sentences: list[str], limit: int) -> bool:
    """Add ``piece`` (in windows of at most ``MAX_SENTENCE_CHARS``) if it has enough words; whether ``limit`` is reached."""
    piece = piece.strip()
    while piece:
        window = piece
        if len(piece) > MAX_SENTENCE_CHARS:
            cut = piece.rfind(" ", 0, MAX_SENTENCE_CHARS)
            window = piece[: cut if cut > 0 else MAX_SENTENCE_CHARS]
        piece = piece[len(window) :].strip()
        if len(window.split()) >= _MIN_SENTENCE_WORDS:
            sentences.append(window)
            if len(sentences) >= limit:
                return True
    return False


def context_sentences(passages: list[str], limit: int = MAX_CONTEXT_SENTENCES) -> list[str]:
    """Up to ``limit`` sentences of all ``passages``, breadth first: every passage's first
    sentence, then every passage's second, and so on.

    Each passage is read whole (no first-page window), and a listing's last record is read
    before its first record's long tail: an instruction planted in the 61st email of a
    listing is scored, where the first passages alone would fill the budget. A listing of
    more than ``limit`` pieces is read to its ``limit``-th piece, one sentence each.

    >>> context_sentences(["One has four words. One has five words here. One more with six words here.", "Two has four words here."], 3)
    ['One has four words.', 'Two has four words here.', 'One has five words here.']
    """
    each = [split_sentences(passage, limit) for passage in passages[:limit]]
    sentences: list[str] = []
    for rank in range(max(map(len, each), default=0)):
        for passage in each:
            if rank < len(passage):
                sentences.append(passage[rank])
                if len(sentences) >= limit:
                    return sentences
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

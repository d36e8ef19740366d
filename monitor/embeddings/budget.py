"""Which outputs to embed: a time budget for the worker, a deterministic fraction for replay.

Encoding is the expensive step (milliseconds per sentence on a CPU, where the rest of
the pipeline costs tens of microseconds per event). Both samplers answer one question
per batch, :meth:`choose`: which of the batch's candidates (model outputs and tool
results, each under its key ``("model", name)`` or ``("tool", name)``) to embed. They
count what was offered and sampled per key; the worker exports those counts.

:class:`EmbeddingBudget` (the worker) keeps the time spent in the whole embed step
(admission, sentence splitting, encoding, scoring, and the pipeline's work on the
vectors it made, which the worker charges after each record) under ``share`` of the
wall-clock time. It holds that time as tokens that refill at ``share`` seconds per
second (up to :data:`BURST_SECONDS` of it, or the time since the previous batch when
that is longer: a batch pays for the time it took to gather), and admits as many
candidates as the tokens pay for at the measured cost per item. The places go
round-robin over the keys present in the batch, least-sampled key first, so a key
that offers nothing holds no share, and a quiet model is embedded fully while a busy
one is sampled.

:class:`FractionSampler` (replay, ``aifm signals``, ``aifm tune``) embeds a fixed
fraction of candidates, chosen by a hash of the event id: two runs over the same
history embed the same events and give identical findings, whatever the machine.
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter

_ASSUMED_SECONDS_PER_ITEM = 2 / 340  # output and prompt with all-MiniLM-L6-v2 on a 2-core CPU, until measured
BURST_SECONDS = 1.0  # the most wall-clock time whose unspent budget carries over


class _Tally:
    """What a sampler counts: candidates offered and sampled per key, and the time charged to it."""

    def __init__(self) -> None:
        self.step_seconds = 0.0
        self.offered: Counter = Counter()
        self.sampled: Counter = Counter()

    def sampled_fraction(self) -> dict:
        return {key: self.sampled[key] / count for key, count in self.offered.items() if count}


class EmbeddingBudget(_Tally):
    """At most ``share`` of the wall-clock time in the embed step, shared fairly between the keys that offer."""

    def __init__(self, *, share: float = 0.10, clock=time.monotonic):
        if not 0 < share < 1:
            raise ValueError(f"embedding share must lie in (0, 1), got {share!r}")
        super().__init__()
        self.share = share
        self.clock = clock
        self.seconds_per_item = _ASSUMED_SECONDS_PER_ITEM
        self._tokens = 0.0  # seconds of embed step the budget can pay for now: earned from the start, not granted
        self._refilled = clock()

    def describe(self) -> str:
        return f"a time budget, at most {self.share:.0%} of the time"

    @property
    def items_per_second(self) -> float:
        """The rate of embedded items the budget allows, over all keys, at the measured cost per item."""
        return self.share / self.seconds_per_item

    def choose(self, candidates: list[tuple[tuple[str, str], object]]) -> list[bool]:
        """Which of ``candidates`` ((key, event) pairs, in batch order) to embed; counts them as offered and sampled."""
        now = self.clock()
        elapsed = max(0.0, now - self._refilled)
        self._tokens = min(self.share * max(BURST_SECONDS, elapsed), self._tokens + elapsed * self.share)
        self._refilled = now
        for key, _ in candidates:
            self.offered[key] += 1
        places = min(len(candidates), int(self._tokens / self.seconds_per_item))
        chosen = [False] * len(candidates)
        if places <= 0:
            return chosen
        by_key: dict[tuple[str, str], list[int]] = {}
        for index, (key, _) in enumerate(candidates):
            by_key.setdefault(key, []).append(index)
        queues = sorted(by_key.items(), key=lambda item: (self.sampled[item[0]] / self.offered[item[0]], item[0]))
        depth = 0
        while places > 0:
            progressed = False
            for key, indices in queues:
                if depth < len(indices) and places > 0:
                    chosen[indices[depth]] = True
                    self.sampled[key] += 1
                    places -= 1
                    progressed = True
            if not progressed:
                break
            depth += 1
        return chosen

    def spent(self, items: int, seconds: float) -> None:
        """Charge what an embed step really cost; the cost per item follows the encoder's real speed.

        The tokens may go into debt (a step with long contexts costs more than its
        estimate): the long-run share stays the budget's whatever the item sizes.
        """
        self.step_seconds += seconds
        self._tokens -= seconds
        if items > 0:  # a step that chose nothing costs its bookkeeping, not an item's price
            per_item = max(seconds / items, 1e-6)  # a clock too coarse to see the step must not make the budget unlimited
            self.seconds_per_item = 0.5 * self.seconds_per_item + 0.5 * per_item


class FractionSampler(_Tally):
    """Embeds ``fraction`` of the candidates, the same ones on every run (by a hash of the event id)."""

    def __init__(self, fraction: float = 1.0):
        if not 0 < fraction <= 1:
            raise ValueError(f"embedding fraction must lie in (0, 1], got {fraction!r}")
        super().__init__()
        self.fraction = fraction

    def describe(self) -> str:
        return "every output" if self.fraction >= 1.0 else f"a fixed {self.fraction:.4g} of outputs, chosen by event id"

    def choose(self, candidates: list[tuple[tuple[str, str], object]]) -> list[bool]:
        chosen = []
        for key, event in candidates:
            self.offered[key] += 1
            take = self.fraction >= 1.0 or _unit_hash(event) < self.fraction
            if take:
                self.sampled[key] += 1
            chosen.append(take)
        return chosen

    def spent(self, items: int, seconds: float) -> None:
        self.step_seconds += seconds


def _unit_hash(event) -> float:
    """A number in [0, 1) fixed by the event's identity (its id, else its kind, time and text)."""
    identity = event.event_id or f"{event.kind}|{event.ts}|{event.output_text or ''}|{event.tool or ''}"
    digest = hashlib.blake2b(identity.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64

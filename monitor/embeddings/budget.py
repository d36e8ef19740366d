"""Which outputs to embed: a time budget shared fairly between keys, so embeddings never make the worker fall behind.

Encoding is the expensive step (milliseconds per sentence on a CPU, where the rest of
the pipeline costs tens of microseconds per event). :class:`EmbeddingBudget` keeps the
time spent encoding under ``share`` of the wall-clock time: it measures the encoder's
cost per sentence as it goes (moving average), turns the budget into a rate of
sentences per second, and splits that rate between the keys seen recently with one
token bucket per key. A quiet model is embedded fully; a busy one is sampled; at any
input rate the encoder's share of the time stays bounded, so throughput with
embeddings on stays within that share of throughput without them.
"""

from __future__ import annotations

import time
from collections import Counter

_ASSUMED_SECONDS = 1 / 340  # all-MiniLM-L6-v2 on a 2-core CPU, until the first batch is measured
_KEY_IDLE_SECONDS = 60.0


class EmbeddingBudget:
    def __init__(self, *, share: float = 0.10, burst: float = 2.0, clock=time.monotonic):
        if not 0 < share < 1:
            raise ValueError(f"embedding share must lie in (0, 1), got {share!r}")
        self.share = share
        self.burst = burst
        self.clock = clock
        self.seconds_per_sentence = _ASSUMED_SECONDS
        self._buckets: dict[str, list[float]] = {}  # key -> [tokens, last refill, last seen]
        self.offered: Counter = Counter()
        self.sampled: Counter = Counter()

    @property
    def sentences_per_second(self) -> float:
        """The rate the budget allows, over all keys."""
        return self.share / self.seconds_per_sentence

    def admit(self, key) -> bool:
        """Whether to embed this output of ``key`` (counts it as offered, and as sampled if admitted); costs one sentence."""
        now = self.clock()
        self.offered[key] += 1
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = [1.0, now, now]
            self._forget_idle(now)
        rate = self.sentences_per_second / len(self._buckets)
        bucket[0] = min(self.burst, bucket[0] + (now - bucket[1]) * rate)
        bucket[1] = bucket[2] = now
        if bucket[0] >= 1.0:
            bucket[0] -= 1.0
            self.sampled[key] += 1
            return True
        return False

    def charge(self, key, sentences: int) -> None:
        """Charge an admitted output's extra sentences (an answer checked against its context).

        The bucket may go into debt: the event is admitted on one token and the long-run
        rate stays the budget's whatever the event sizes.
        """
        bucket = self._buckets.get(key)
        if bucket is not None:
            bucket[0] -= sentences

    def spent(self, sentences: int, seconds: float) -> None:
        """Record what encoding a batch cost; the allowed rate follows the encoder's real speed."""
        if sentences > 0:
            per_sentence = max(seconds / sentences, 1e-6)  # a clock too coarse to see the batch must not make the budget unlimited
            self.seconds_per_sentence = 0.5 * self.seconds_per_sentence + 0.5 * per_sentence

    def sampled_fraction(self) -> dict[str, float]:
        return {key: self.sampled[key] / count for key, count in self.offered.items() if count}

    def _forget_idle(self, now: float) -> None:
        for key in [k for k, (_, _, seen) in self._buckets.items() if now - seen > _KEY_IDLE_SECONDS]:
            del self._buckets[key]

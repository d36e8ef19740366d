"""Embedding drift: power and cost of streaming tests against the batch methods users know, on the same streams.

Outputs are real all-MiniLM-L6-v2 embeddings of synthetic assistant answers
(bench/embedding_corpus.py): a stable customer-support mix, and two shifts that take
over 30% of a key's traffic, a topic shift (programming answers) and a language shift
(support answers in Spanish). Streams are drawn from pools of embedded outputs.

Streaming detectors (delay = events after the change until the first alarm; false
alarms counted on long stable streams after warm-up):
  aifm EmbeddingDrift   CUSUM on the log of each output's cosine distance to the reference centroid
                        (and the same CUSUM on the raw distances, as it was before)
  window centroid       cosine distance of the last 100 outputs' centroid to the reference
                        centroid, alarm above mean + 6 sd of its calibration values
Batch methods with Evidently's defaults (reference 500 vs current 500 outputs):
  domain classifier     logistic regression, 2-fold ROC AUC > 0.55
  MMD                   RBF kernel (median heuristic), permutation p < 0.05
  distance              Euclidean distance between the means > 0.2

Usage: python bench/bench_embedding_drift.py [--runs 200] [--stable-events 5000]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from embedding_corpus import outputs  # noqa: E402

from monitor.detectors import EmbeddingDrift  # noqa: E402

POOL = 1500
SHARE = 0.30
REFERENCE = WARMUP = 300


def pools(cache: Path) -> dict[str, np.ndarray]:
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / f"pools-{POOL}.npz"
    if path.exists():
        return dict(np.load(path))
    from monitor.embeddings.encoder import Encoder

    encoder = Encoder()
    embedded = {topic: encoder.encode(outputs(topic, POOL, seed=1)) for topic in ("stable", "topic", "language")}
    print(f"embedded {3 * POOL:,} outputs on {encoder.device}: {encoder.sentences_per_second:,.0f} sentences/s")
    np.savez(path, **embedded)
    return embedded


def stream(rng, stable: np.ndarray, shifted: np.ndarray | None, n: int, change_at: int) -> np.ndarray:
    rows = stable[rng.integers(0, len(stable), n)]
    if shifted is not None:
        mask = (np.arange(n) >= change_at) & (rng.random(n) < SHARE)
        rows[mask] = shifted[rng.integers(0, len(shifted), mask.sum())]
    return rows


class WindowCentroid:
    def __init__(self, window: int = 100, z: float = 6.0):
        self.window, self.z = window, z
        self.ref: list[np.ndarray] = []
        self.centroid = None
        self.calibration: list[float] = []
        self.limit = None
        self.recent: list[np.ndarray] = []
        self.total = None

    def update(self, x: np.ndarray) -> bool:
        if self.centroid is None:
            self.ref.append(x)
            if len(self.ref) == REFERENCE:
                c = np.sum(self.ref, axis=0)
                self.centroid = c / np.linalg.norm(c)
            return False
        self.recent.append(x)
        self.total = x.copy() if self.total is None else self.total + x
        if len(self.recent) > self.window:
            self.total -= self.recent.pop(0)
        if len(self.recent) < self.window:
            return False
        value = 1.0 - float(self.total @ self.centroid) / float(np.linalg.norm(self.total))
        if self.limit is None:
            self.calibration.append(value)
            if len(self.calibration) == WARMUP:
                self.limit = statistics.mean(self.calibration) + self.z * statistics.stdev(self.calibration)
            return False
        return value > self.limit


def streaming(name: str, make, embedded, runs: int, stable_events: int) -> dict:
    rng = np.random.default_rng(7)
    stable = embedded["stable"]
    delays = {"topic": [], "language": []}
    update_seconds, updates = 0.0, 0
    change_at = REFERENCE + WARMUP + 400
    for shift in delays:
        for _ in range(runs):
            detector = make()
            rows = stream(rng, stable, embedded[shift], change_at + 2000, change_at)
            started = time.perf_counter()
            for i, row in enumerate(rows):
                if detector(row) and i >= change_at:  # an alarm before the change restarts the detector, as in the worker
                    delays[shift].append(i - change_at)
                    break
            update_seconds += time.perf_counter() - started
            updates += i + 1
    false_alarms, monitored = 0, 0
    for _ in range(runs):
        detector = make()
        rows = stream(rng, stable, None, stable_events, 0)
        for row in rows:
            if detector(row):
                false_alarms += 1
        monitored += stable_events - REFERENCE - WARMUP
    return {
        "name": name,
        "topic": statistics.median(delays["topic"]) if delays["topic"] else None,
        "topic_found": len(delays["topic"]) / runs,
        "language": statistics.median(delays["language"]) if delays["language"] else None,
        "language_found": len(delays["language"]) / runs,
        "fa": false_alarms / monitored * 1e5,
        "us": update_seconds / updates * 1e6,
    }


class _Aifm:
    def __init__(self):
        self.detector = EmbeddingDrift(reference=REFERENCE, warmup=WARMUP, k=0.5, h=12.0)

    def __call__(self, row) -> bool:
        return self.detector.update(row).drift_detected


class _RawDistance(EmbeddingDrift):
    """The detector as it was before it tested log distances: its CUSUM on the raw cosine distances (for comparison)."""

    @classmethod
    def log_distance(cls, distance: float) -> float:
        return distance


class _AifmRaw(_Aifm):
    def __init__(self):
        self.detector = _RawDistance(reference=REFERENCE, warmup=WARMUP, k=0.5, h=12.0)


class _Window:
    def __init__(self):
        self.detector = WindowCentroid()

    def __call__(self, row) -> bool:
        if self.detector.update(row):
            self.detector = WindowCentroid()  # restart, as the aifm detector re-learns after an alarm
            return True
        return False


def batch_methods(embedded, runs: int) -> list[dict]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import cross_val_predict

    rng = np.random.default_rng(11)
    stable = embedded["stable"]

    def classifier(ref, cur) -> bool:
        x = np.vstack([ref, cur])
        y = np.r_[np.zeros(len(ref)), np.ones(len(cur))]
        p = cross_val_predict(LogisticRegression(max_iter=200), x, y, cv=2, method="predict_proba")[:, 1]
        return roc_auc_score(y, p) > 0.55

    def mmd(ref, cur) -> bool:
        x = np.vstack([ref, cur])
        sq = np.maximum(2 - 2 * x @ x.T, 0)  # unit vectors
        gamma = 1.0 / np.median(sq[sq > 0])
        k = np.exp(-gamma * sq)
        n = len(ref)

        def stat(index):
            a, b = index[:n], index[n:]
            return k[np.ix_(a, a)].mean() + k[np.ix_(b, b)].mean() - 2 * k[np.ix_(a, b)].mean()

        observed = stat(np.arange(2 * n))
        perms = [stat(rng.permutation(2 * n)) for _ in range(100)]
        return (1 + sum(p >= observed for p in perms)) / 101 < 0.05

    def distance(ref, cur) -> bool:
        return float(np.linalg.norm(ref.mean(0) - cur.mean(0))) > 0.2

    results = []
    for name, test in (("domain classifier (ROC AUC > 0.55)", classifier), ("MMD (permutation p < 0.05)", mmd), ("distance between means (> 0.2)", distance)):
        found = {"topic": 0, "language": 0}
        false_positive, seconds = 0, 0.0
        for _ in range(runs):
            ref = stream(rng, stable, None, 500, 0)
            for shift in found:
                cur = stream(rng, stable, embedded[shift], 500, 0)
                started = time.perf_counter()
                found[shift] += test(ref, cur)
                seconds += time.perf_counter() - started
            started = time.perf_counter()
            false_positive += test(ref, stream(rng, stable, None, 500, 0))
            seconds += time.perf_counter() - started
        results.append({"name": name, "topic_found": found["topic"] / runs, "language_found": found["language"] / runs, "fp": false_positive / runs, "us": seconds / (3 * runs * 500) * 1e6})
    return results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--stable-events", type=int, default=5000)
    parser.add_argument("--batch-runs", type=int, default=30)
    parser.add_argument("--cache", default="build/bench-embedding")
    args = parser.parse_args(argv)
    embedded = pools(Path(args.cache))
    print(f"\nstreaming, {args.runs} runs per shift, 30% of traffic shifted after {REFERENCE + WARMUP + 400} events; false alarms on {args.runs} x {args.stable_events:,} stable events")
    print(f"{'':34} {'topic: median delay (found)':>28} {'language: median delay (found)':>31} {'false alarms / 1e5':>19} {'us/event':>9}")
    rows = (("aifm EmbeddingDrift (k 0.5, h 12)", _Aifm), ("  same on raw distances (before)", _AifmRaw), ("window centroid (100, mean + 6 sd)", _Window))
    for name, make in rows:
        r = streaming(name, make, embedded, args.runs, args.stable_events)
        print(f"{r['name']:34} {str(r['topic']):>20} ({r['topic_found']:.0%}) {str(r['language']):>23} ({r['language_found']:.0%}) {r['fa']:>19.2f} {r['us']:>9.1f}")
    print(f"\nbatch, Evidently defaults, reference 500 vs current 500 outputs, {args.batch_runs} runs (a batch test answers at the end of its window: >= 500 events after a change)")
    print(f"{'':36} {'topic detected':>15} {'language detected':>18} {'false positives':>16} {'us/event':>9}")
    for r in batch_methods(embedded, args.batch_runs):
        print(f"{r['name']:36} {r['topic_found']:>15.0%} {r['language_found']:>18.0%} {r['fp']:>16.0%} {r['us']:>9.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The encoders side by side: speed, memory, size, agreement, and the power of embedding drift on each.

The encoders run in this one process on the same texts (bench/embedding_corpus.py):
  minilm       all-MiniLM-L6-v2 through sentence-transformers on torch, pinned to 1 thread (as the worker runs it)
  static       the table distilled here from that same MiniLM (monitor/embeddings/static.py), no torch
  minilm-int8  that MiniLM exported to ONNX and quantised to int8, on onnxruntime, 1 thread (monitor/embeddings/onnx_int8.py)

Printed: sentences/s at batch 1 and 64; resident memory of a fresh process that loads
the encoder and encodes 64 texts; size on disk; agreement (Spearman correlation of
each encoder's pairwise cosine similarities with MiniLM's over mixed texts); embedding drift with
the shipped detector settings on streams drawn from each encoder's vectors: median
delay (events after the change) and share found for a 30% shift to another topic,
another language, a curt tone and three-times-longer answers, false alarms per 1e5
stable outputs; and the share of outputs the worker's 10% budget embeds at 1,000 and
10,000 calls/s, from the measured speed (an output and its prompt per call).

    .venv/bin/python bench/bench_encoders.py [--runs 100] [--stable-events 5000]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from embedding_corpus import outputs  # noqa: E402

from monitor.detectors import build_detector  # noqa: E402
from monitor.embeddings.encoder import ENCODERS, make_encoder, model_path  # noqa: E402
from monitor.embeddings.onnx_int8 import default_directory as int8_directory  # noqa: E402
from monitor.embeddings.static import default_directory as static_directory  # noqa: E402
from monitor.thresholds import load_thresholds  # noqa: E402

SHIFTS = ("topic", "language", "tone", "length")
POOL = 1500
SHARE = 0.30
_RSS = """
import sys
from monitor.embeddings.encoder import make_encoder
encoder = make_encoder(sys.argv[1], threads=1)
encoder.encode(["The order shipped yesterday and should arrive within three business days."] * 64)
print(next(line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM:")))
"""  # VmHWM, not ru_maxrss: the latter keeps the forking parent's peak across exec


def rates(encoder, texts: list[str]) -> tuple[float, float]:
    encoder.encode(texts[:8])
    started = time.perf_counter()
    for text in texts[:200]:
        encoder.encode([text])
    single = 200 / (time.perf_counter() - started)
    started = time.perf_counter()
    for i in range(0, len(texts), 64):
        encoder.encode(texts[i : i + 64])
    return single, len(texts) / (time.perf_counter() - started)


def resident_mib(name: str) -> float:
    result = subprocess.run([sys.executable, "-c", _RSS, name], capture_output=True, text=True, check=True)
    return int(result.stdout.split()[-1]) / 1024


def size_mib(*paths: Path) -> float:
    return sum(f.stat().st_size for path in paths for f in Path(path).rglob("*") if f.is_file()) / 2**20


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


def drift(pools: dict[str, np.ndarray], params: dict, runs: int, stable_events: int, seed: int = 7) -> dict:
    rng = np.random.default_rng(seed)
    warm = params["reference"] + params["warmup"]
    change_at = warm + 400
    found: dict[str, list[int]] = {shift: [] for shift in SHIFTS}
    for shift in SHIFTS:
        for _ in range(runs):
            detector = build_detector("embedding_drift", params)
            n = change_at + 2000
            rows = pools["stable"][rng.integers(0, POOL, n)]
            mask = (np.arange(n) >= change_at) & (rng.random(n) < SHARE)
            rows[mask] = pools[shift][rng.integers(0, POOL, int(mask.sum()))]
            for i, row in enumerate(rows):
                if detector.update(row).drift_detected and i >= change_at:
                    found[shift].append(i - change_at)
                    break
    false_alarms = 0
    for _ in range(runs):
        detector = build_detector("embedding_drift", params)
        for row in pools["stable"][rng.integers(0, POOL, stable_events)]:
            false_alarms += detector.update(row).drift_detected
    monitored = runs * (stable_events - warm)
    return {shift: (statistics.median(d) if d else None, len(d) / runs) for shift, d in found.items()} | {"fa": false_alarms / monitored * 1e5}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--stable-events", type=int, default=5000)
    args = parser.parse_args(argv)
    thresholds = load_thresholds()
    texts = {topic: outputs(topic, POOL, seed=1) for topic in ("stable", *SHIFTS)}
    mixed = [text for topic in texts for text in texts[topic][:80]]
    speed = "\n".join(outputs("stable", 1000, seed=5))
    results, vectors = {}, {}
    folders = {"minilm": Path(model_path()), "static": static_directory(), "minilm-int8": int8_directory()}
    for name in ENCODERS:
        encoder = make_encoder(name, threads=1)
        single, batched = rates(encoder, speed.split("\n"))
        pools = {topic: encoder.encode(batch) for topic, batch in texts.items()}
        vectors[name] = encoder.encode(mixed)
        size = size_mib(folders[name])
        params = dict(thresholds.for_encoder(name).signals["embedding_drift"].detector.params)  # each encoder's own h
        params.pop("max_per_second", None)  # these streams have no event time: every vector feeds the detector
        results[name] = {"single": single, "batched": batched, "rss": resident_mib(name), "size": size, "h": params["h"],
                         "drift": drift(pools, params, args.runs, args.stable_events)}
    upper = np.triu_indices(len(mixed), 1)
    similarities = {name: (v @ v.T)[upper] for name, v in vectors.items()}
    agreement = {name: spearman(similarities["minilm"], similarities[name]) for name in ENCODERS if name != "minilm"}
    print(f"\nencoders on the same texts (1 thread); drift with the shipped settings of each (reference 300, warm-up 300, k 0.5), {args.runs} runs per shift")
    print(f"  {'encoder':11} {'h':>4} {'sent/s b1':>10} {'sent/s b64':>11} {'RSS MiB':>8} {'disk MiB':>9}", end="")
    print("".join(f" {shift + ' delay (found)':>22}" for shift in SHIFTS) + f" {'FA / 1e5':>9} {'worker embeds at 1k / 10k calls/s':>34}")
    for name, r in results.items():
        per_call = 2 / r["single"]  # an output and its prompt, one at a time as a busy worker gets them
        share_1k, share_10k = (min(1.0, 0.10 / per_call / calls) for calls in (1_000, 10_000))
        print(f"  {name:11} {r['h']:>4g} {r['single']:>10,.0f} {r['batched']:>11,.0f} {r['rss']:>8.0f} {r['size']:>9.1f}", end="")
        for shift in SHIFTS:
            delay, share = r["drift"][shift]
            print(f" {('-' if delay is None else f'{delay:g}') + f' ({share:.0%})':>22}", end="")
        print(f" {r['drift']['fa']:>9.2f} {f'{share_1k:.1%} / {share_10k:.2%}':>34}")
    for name, value in agreement.items():
        print(f"  {name}: {results[name]['single'] / results['minilm']['single']:.1f}x MiniLM's speed at batch 1; "
              f"agreement with MiniLM's pairwise similarities (Spearman) {value:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

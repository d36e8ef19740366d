"""Embedding cost: sentences/s per backend, and the worker's throughput with and without embeddings, in one run.

1. Sentences per second encoding the same outputs (bench/embedding_corpus.py):
   sentence-transformers on PyTorch, and the minilm-int8 encoder (the same model
   exported to ONNX and quantised, on onnxruntime) with its mean cosine similarity to
   the PyTorch vectors.
2. The worker's processing (StreamProcessor, in process, no Kafka) over the same
   simulated records, with precomputed embeddings removed so every output is offered
   (and made distinct, so that the encoder's cache does not answer for it): embeddings
   off (precomputed only) and sample mode with the default 10% time budget, alternated
   and repeated, for each encoder; and, for contrast, embedding every output.

Usage: python bench/bench_embeddings.py [--sentences 1000] [--events 100000] [--encoders minilm,static]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from embedding_corpus import outputs  # noqa: E402

from monitor.embeddings.budget import EmbeddingBudget, FractionSampler  # noqa: E402
from monitor.embeddings.embedder import Embedder  # noqa: E402
from monitor.embeddings.encoder import (
    Encoder,  # noqa: E402
    make_encoder,  # noqa: E402
)
from monitor.metrics import Metrics  # noqa: E402
from monitor.replay.simulate import simulate, write_boundaries  # noqa: E402
from monitor.signals.tool_scope import load_boundaries  # noqa: E402
from monitor.thresholds import load_thresholds  # noqa: E402
from monitor.worker.processor import StreamProcessor  # noqa: E402


def torch_rate(encoder: Encoder, texts: list[str]) -> tuple[float, np.ndarray]:
    encoder.encode(texts[:64])  # warm up
    started = time.perf_counter()
    vectors = encoder.encode(texts)
    return len(texts) / (time.perf_counter() - started), vectors


def int8_rate(texts: list[str], reference: np.ndarray) -> tuple[float, float]:
    """The minilm-int8 encoder (monitor/embeddings/onnx_int8.py) on the same texts: sentences/s and mean cosine to PyTorch's."""
    encoder = make_encoder("minilm-int8", threads=1)
    encoder.encode(texts[:64])
    started = time.perf_counter()
    vectors = np.vstack([encoder.encode(texts[i : i + 64]) for i in range(0, len(texts), 64)])
    return len(texts) / (time.perf_counter() - started), float(np.mean(np.sum(vectors * reference, axis=1)))


def records(events: int, batch: int) -> list[bytes]:
    """Simulated traffic whose outputs are all distinct (the simulator's templates would all come from the cache)."""
    simulated, _ = simulate(events, seed=3)
    distinct = iter(outputs("stable", events, seed=9))
    for event in simulated:
        event.pop("embedding", None)  # every output is offered to the sampler
        if event.get("output_text") and not event.get("context"):
            event["output_text"] = next(distinct)
    return [json.dumps(simulated[i : i + batch]).encode() for i in range(0, len(simulated), batch)]


def throughput(thresholds, boundaries, payloads: list[bytes], embedder) -> tuple[float, float]:
    processor = StreamProcessor(thresholds, boundaries, Metrics(), embedder=embedder)
    processor.assign("ai.events", 0)
    started = time.perf_counter()
    for offset, payload in enumerate(payloads):
        processor.handle("ai.events", 0, offset, payload)
    seconds = time.perf_counter() - started
    events = sum(processor.pipelines()[0].events_by_kind.values())
    return events / seconds, seconds


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sentences", type=int, default=1000)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workdir", default="build/bench-embeddings")
    parser.add_argument("--encoders", default="minilm,static", help="encoders whose worker throughput is measured")
    args = parser.parse_args(argv)
    texts = outputs("stable", args.sentences // 2, seed=5) + outputs("topic", args.sentences // 4, seed=5) + outputs("language", args.sentences // 4, seed=5)
    encoder = Encoder(threads=1)  # as the worker runs it
    rate, reference = torch_rate(encoder, texts)
    print(f"\nencoding {len(texts):,} outputs (batch 64, max 128 tokens) on {encoder.device}:")
    print(f"  {'sentence-transformers, PyTorch fp32':34} {rate:>8,.0f} sentences/s   1.00x   cosine to PyTorch 1.0000")
    try:
        int8, cosine = int8_rate(texts, reference)
        print(f"  {'minilm-int8, onnxruntime':34} {int8:>8,.0f} sentences/s   {int8 / rate:.2f}x   cosine to PyTorch {cosine:.4f}")
    except ImportError as error:
        print(f"  int8 not measured: {error}")

    thresholds = load_thresholds()
    boundaries = load_boundaries(write_boundaries(Path(args.workdir) / "boundaries"))
    print(f"\nworker processing, in process, {args.events:,} simulated events, every model output offered for embedding;")
    print(f"embeddings off and sample mode alternate {args.repeat} times (median; this machine is noisy):")
    print(f"  {'encoder':8} {'records':16} {'off (precomputed only)':>24} {'sample mode, 10% budget':>24} {'ratio':>6} {'embed step':>11} {'encoding':>9} {'outputs embedded':>17}")
    for name in args.encoders.split(","):
        chosen = encoder if name == "minilm" else make_encoder(name, threads=1)
        for batch in (1, 100):
            payloads = records(args.events, batch)
            off, on, steps, shares, embedded = [], [], [], [], []
            for _ in range(args.repeat):
                off.append(throughput(thresholds, boundaries, payloads, None)[0])
                embedder = Embedder(EmbeddingBudget(), encoder_factory=lambda chosen=chosen: chosen, semantic=False)  # the default: cues off
                embedder.load()  # calibrated at load, as the worker does at start
                before, step_before = chosen.seconds, embedder.sampler.step_seconds
                rate_on, seconds = throughput(thresholds.for_encoder(name), boundaries, payloads, embedder)
                on.append(rate_on)
                steps.append((embedder.sampler.step_seconds - step_before) / seconds)
                shares.append((chosen.seconds - before) / seconds)
                embedded.append(sum(embedder.sampler.sampled.values()) / max(1, sum(embedder.sampler.offered.values())))
            label = "single events" if batch == 1 else f"batches of {batch}"
            a, b = statistics.median(off), statistics.median(on)
            print(f"  {name:8} {label:16} {a:>17,.0f} ev/s {b:>17,.0f} ev/s {b / a:>6.2f} {statistics.median(steps):>11.0%} "
                  f"{statistics.median(shares):>9.0%} {statistics.median(embedded):>17.2%}")
        payloads = records(5_000, 100)
        unbudgeted = Embedder(FractionSampler(1.0), encoder_factory=lambda chosen=chosen: chosen, semantic=False)
        unbudgeted.load()
        rate = throughput(thresholds.for_encoder(name), boundaries, payloads, unbudgeted)[0]
        print(f"  {name:8} for contrast, embedding every output (batches of 100): {rate:,.0f} ev/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

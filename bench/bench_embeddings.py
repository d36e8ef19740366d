"""Embedding cost: sentences/s per backend, and the worker's throughput with and without embeddings, in one run.

1. Sentences per second encoding the same outputs (bench/embedding_corpus.py):
   sentence-transformers on PyTorch (the worker's encoder), and all-MiniLM-L6-v2
   exported to ONNX and run with onnxruntime, fp32 and dynamically quantised int8
   (with their mean cosine similarity to the PyTorch vectors). ONNX needs the packages
   onnx and onnxruntime; without them that part says so.
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
from monitor.embeddings.encoder import make_encoder  # noqa: E402
from monitor.embeddings.embedder import Embedder  # noqa: E402
from monitor.embeddings.encoder import Encoder  # noqa: E402
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


def onnx_rates(encoder: Encoder, texts: list[str], reference: np.ndarray, workdir: Path) -> list[tuple[str, float, float]]:
    import onnxruntime
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic

    class LastHidden(torch.nn.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask):
            return self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    transformer = LastHidden(encoder.model[0].auto_model.eval())
    tokenizer = encoder.model.tokenizer
    workdir.mkdir(parents=True, exist_ok=True)
    fp32, int8 = workdir / "minilm.onnx", workdir / "minilm.int8.onnx"
    if not fp32.exists():
        sample = tokenizer(["an example"], return_tensors="pt")
        with torch.no_grad():
            torch.onnx.export(
                transformer,
                (sample["input_ids"], sample["attention_mask"]),
                str(fp32),
                input_names=["input_ids", "attention_mask"],
                output_names=["last_hidden_state"],
                dynamic_axes={"input_ids": {0: "batch", 1: "tokens"}, "attention_mask": {0: "batch", 1: "tokens"}, "last_hidden_state": {0: "batch", 1: "tokens"}},
                opset_version=17,
                dynamo=False,
            )
    if not int8.exists():
        quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QInt8)
    results = []
    for name, path in (("onnxruntime fp32", fp32), ("onnxruntime int8 (dynamic)", int8)):
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])

        def encode(batch: list[str]) -> np.ndarray:
            tokens = tokenizer(batch, padding=True, truncation=True, max_length=128, return_tensors="np")
            hidden = session.run(None, {"input_ids": tokens["input_ids"].astype(np.int64), "attention_mask": tokens["attention_mask"].astype(np.int64)})[0]
            mask = tokens["attention_mask"][..., None].astype(np.float32)
            pooled = (hidden * mask).sum(1) / mask.sum(1)
            return pooled / np.linalg.norm(pooled, axis=1, keepdims=True)

        encode(texts[:64])
        started = time.perf_counter()
        vectors = np.vstack([encode(texts[i : i + 64]) for i in range(0, len(texts), 64)])
        rate = len(texts) / (time.perf_counter() - started)
        results.append((name, rate, float(np.mean(np.sum(vectors * reference, axis=1)))))
    return results


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
        for name, onnx_rate, cosine in onnx_rates(encoder, texts, reference, Path(args.workdir)):
            print(f"  {name:34} {onnx_rate:>8,.0f} sentences/s   {onnx_rate / rate:.2f}x   cosine to PyTorch {cosine:.4f}")
    except ImportError as error:
        print(f"  ONNX not measured: {error} (pip install onnx onnxruntime)")

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
                embedder = Embedder(EmbeddingBudget(), encoder_factory=lambda: chosen, semantic=False)  # the default: cues off
                embedder.encoder  # calibration and the exemplars are encoded at load, as the worker does at start
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
        unbudgeted = Embedder(FractionSampler(1.0), encoder_factory=lambda: chosen, semantic=False)
        unbudgeted.encoder
        rate = throughput(thresholds.for_encoder(name), boundaries, payloads, unbudgeted)[0]
        print(f"  {name:8} for contrast, embedding every output (batches of 100): {rate:,.0f} ev/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

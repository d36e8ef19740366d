"""What OTLP input costs: decoding and mapping per span beside our own JSON, measured side by side in one run.

The simulator's model and tool calls are written three ways: as our JSON (batches of
64 events per record, the batch format of docs/worker.md), as OTLP protobuf trace requests of 64
spans (the Collector kafka exporter's default encoding) and as OTLP/JSON requests (its
``otlp_json``, and the file exporter's format), with the same content (monitor/otel/encode.py).
Each is decoded into events --repeat times, alternating formats, and the median per
event is reported, alone and with the pipeline's processing after it. Single thread; the
machine is noisy, so read the ratios, which are measured in the same rounds.

Usage: python bench/bench_otlp.py [--events 20000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from monitor.otel.encode import expressible, to_request
from monitor.otel.otlp import to_otlp_json
from monitor.pipeline import AIFM, OTLP_SPANS, Pipeline
from monitor.replay.simulate import simulate
from monitor.thresholds import load_thresholds

BATCH = 64


def records(events: list[dict]) -> dict[str, tuple[str, list[bytes]]]:
    chunks = [events[i : i + BATCH] for i in range(0, len(events), BATCH)]
    requests = [to_request(chunk) for chunk in chunks]
    return {
        "aifm JSON (batches)": (AIFM, [json.dumps(chunk).encode() for chunk in chunks]),
        "OTLP protobuf": (OTLP_SPANS, [request.SerializeToString() for request in requests]),
        "OTLP/JSON": (OTLP_SPANS, [to_otlp_json(request) for request in requests]),
    }


def run(thresholds, source: str, raws: list[bytes], process: bool) -> tuple[float, int]:
    pipeline = Pipeline(thresholds)
    count = 0
    started = time.perf_counter()
    for raw in raws:
        events, rejects = pipeline.decode(raw, source)
        assert not rejects, rejects[:1]
        count += len(events)
        if process:
            for event in events:
                pipeline.process(event)
    return time.perf_counter() - started, count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    thresholds = load_thresholds()
    events = [event for event in simulate(args.events, seed=7)[0] if expressible(event)]
    formats = records(events)
    timings: dict[tuple[str, bool], list[float]] = {(name, process): [] for name in formats for process in (False, True)}
    counts = {}
    for _ in range(args.repeat):
        for name, (source, raws) in formats.items():
            for process in (False, True):
                seconds, count = run(thresholds, source, raws, process)
                timings[(name, process)].append(seconds / count)
                counts[name] = count
    sizes = {name: sum(map(len, raws)) / counts[name] for name, (_, raws) in formats.items()}
    base = statistics.median(timings[("aifm JSON (batches)", False)])
    base_total = statistics.median(timings[("aifm JSON (batches)", True)])
    print(f"{len(events):,} simulated model and tool calls, {BATCH} per record, median of {args.repeat} rounds (one thread)")
    print(f"{'format':22} {'bytes/event':>11} {'decode us/event':>16} {'x JSON':>7} {'decode+process us/event':>24} {'x JSON':>7}")
    for name in formats:
        decode = statistics.median(timings[(name, False)])
        total = statistics.median(timings[(name, True)])
        print(f"{name:22} {sizes[name]:11.0f} {decode * 1e6:16.1f} {decode / base:7.2f} {total * 1e6:24.1f} {total / base_total:7.2f}")


if __name__ == "__main__":
    main()

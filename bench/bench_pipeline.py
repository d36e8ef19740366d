"""Where the pipeline's time goes: cost per event by kind and payload, in process, one run.

The worker's throughput on batch messages is the pipeline's own speed (a profile of
the worker draining batches puts ~80% of its time in StreamProcessor.handle), so this
is the table to read before optimising it. Events of a simulated stream are decoded
once, then fed to a fresh Pipeline in stream order (so detector and session state
evolve as in the worker) --repeat times; each event's time is taken around
Pipeline.process, and the median over the repeats is reported per class of event:
its kind, with "+embedding" (a precomputed output embedding: drift per model and per
agent), "+context" (retrieved passages: context support and injection scanning),
"+result" (a tool result: soft-failure and injection scanning). Decoding, metrics and
handle() overhead are timed apart, per event, over the same stream in batches of 100.
Last, --state-events of the same mix go through one StreamProcessor, and its RSS and
state snapshot size are printed every quarter: at a fixed number of keys, neither grows.

Usage: python bench/bench_pipeline.py [--events 60000] [--repeat 3] [--state-events 400000]
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict

from prometheus_client import CollectorRegistry

from monitor.events import decode_record
from monitor.metrics import Metrics
from monitor.pipeline import Pipeline
from monitor.replay.simulate import simulate, write_boundaries
from monitor.signals.tool_scope import load_boundaries
from monitor.thresholds import load_thresholds
from monitor.worker.processor import StreamProcessor


def event_class(event) -> str:
    name = event.kind
    if event.embedding is not None:
        name += "+embedding"
    if event.context:
        name += "+context"
    if event.result is not None:
        name += "+result"
    return name


def per_class(events, thresholds, boundaries) -> dict[str, float]:
    """Seconds spent in Pipeline.process per class of event, for one pass."""
    pipeline = Pipeline(thresholds, boundaries)
    spent: Counter[str] = Counter()
    clock = time.perf_counter
    for event in events:
        started = clock()
        pipeline.process(event)
        spent[event_class(event)] += clock() - started
    return spent


def _rss_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def state_growth(n: int, thresholds, boundaries) -> None:
    """RSS and snapshot size of one StreamProcessor every quarter of ``n`` events."""
    raw, _ = simulate(n + 10, seed=5)
    processor = StreamProcessor(thresholds, boundaries, Metrics(CollectorRegistry()))
    quarter = n // 4 // 100 * 100
    print(f"\nstate over {quarter * 4:,} events of the same mix (one StreamProcessor, batches of 100):")
    for part in range(4):
        for offset in range(part * quarter, (part + 1) * quarter, 100):
            processor.handle("bench", 0, offset // 100, json.dumps(raw[offset : offset + 100]).encode())
        gc.collect()
        snapshot = sum(len(taken.data) for taken in processor.snapshots())
        pipeline = processor.pipelines()[0]
        keys = {tuple(key.items()) for _, _, key, _, _ in pipeline.streams()}
        print(f"  after {(part + 1) * quarter:>9,} events: RSS {_rss_mib():6.0f} MiB, snapshot {snapshot / 1024:4.0f} KiB, "
              f"{len(pipeline.sessions)} sessions, {len(keys)} keys")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=60_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--state-events", type=int, default=400_000)
    args = parser.parse_args(argv)
    raw, _ = simulate(args.events + 10, seed=5)
    raw = raw[: args.events // 100 * 100]
    records = [json.dumps(raw[i : i + 100]).encode() for i in range(0, len(raw), 100)]
    thresholds = load_thresholds()
    boundaries = load_boundaries(write_boundaries(tempfile.mkdtemp(prefix="aifm-bench-")))

    stages: dict[str, list[float]] = defaultdict(list)
    passes = []
    for _ in range(args.repeat):
        started = time.perf_counter()
        events = [event for record in records for event in decode_record(record)[0]]
        stages["decode (batches of 100)"].append(time.perf_counter() - started)
        passes.append(per_class(events, thresholds, boundaries))
        processor = StreamProcessor(thresholds, boundaries, Metrics(CollectorRegistry()))
        started = time.perf_counter()
        for offset, record in enumerate(records):
            processor.handle("bench", 0, offset, record)
        stages["StreamProcessor.handle (all of it)"].append(time.perf_counter() - started)
    counts = Counter(event_class(event) for event in events)
    n = len(events)

    print(f"{n:,} simulated events (seed 5), {args.repeat} passes, median per event\n")
    print(f"{'class of event':28} {'events':>7} {'share of events':>16} {'us/event':>9} {'share of time':>14}")
    medians = {name: statistics.median(p[name] for p in passes) for name in counts}
    total = sum(medians.values())
    for name in sorted(medians, key=medians.get, reverse=True):
        print(f"{name:28} {counts[name]:>7,} {counts[name] / n:>16.2f} {medians[name] / counts[name] * 1e6:>9.1f} {medians[name] / total:>14.2f}")
    print(f"{'Pipeline.process, all':28} {n:>7,} {1.0:>16.2f} {total / n * 1e6:>9.1f} {1.0:>14.2f}")
    print()
    for stage, seconds in stages.items():
        median = statistics.median(seconds)
        print(f"{stage:38} {median / n * 1e6:6.1f} us/event  ({n / median:,.0f} events/s)")
    del events, passes, raw, records
    state_growth(args.state_events, thresholds, boundaries)
    return 0


if __name__ == "__main__":
    sys.exit(main())

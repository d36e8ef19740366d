"""The worker's cost per event in CPU instructions: a yardstick this noisy machine cannot move.

Wall and CPU time of the same loop move by 30-40% between runs here, so a gain under
about 20% cannot be shown in seconds. Instructions can: under valgrind's callgrind, the
same code on the same input executes the same instructions (within ~0.3%) whatever
else the machine is doing. This script runs one child process under callgrind; the
child feeds the same simulated events through each stage of the worker's per-record
path in turn, and calls ``os.getppid()`` before and after each stage; callgrind dumps
its counters before every such call (``--dump-before``), so every other dump holds
exactly one stage and the rest hold the setup between stages. Every stage
starts from the same detector state (a pipeline restored from one warmed snapshot).

  json.loads               the floor: what parsing the record costs any Python consumer
  decode_record            our decoding and validation into events
  Pipeline.process         signals and detectors, on events decoded beforehand
  StreamProcessor.handle   all of it, as the worker calls it per Kafka record
                           (decode, signals, detectors, metrics, findings, dead letters)

for single-event messages and batches of 100 events of the simulator, and for batches of
its long-text variant (``bench/long_text_mix.py``: paragraphs of answers, retrieved
passages, tool results that are listings), and the same stages natively (no valgrind)
once, so instructions can be read as microseconds on this CPU. Then ``Pipeline.process``
once more per class of event (model call with or without an embedding or retrieved
context, tool call with or without a result, ...): where the pipeline's instructions go.

All of it twice, side by side: the interpreted build (``AIFM_PURE_PYTHON=1``: the
sources) and the default one (compiled where ``pip install -e .`` could compile it,
``monitor/build.py``); the ratio is what compiling buys.
Seconds still decide throughput; this table decides whether a change made the code
cheaper. Needs valgrind (Debian package ``valgrind``); a run takes about three minutes.

Usage: python bench/bench_instructions.py [--events 2000]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from monitor.build import build_environment

STAGES = ("json.loads", "decode_record", "Pipeline.process", "StreamProcessor.handle")
SHAPES = ("single-event messages", "batches of 100", "long text, batches of 100")
BUILDS = ("interpreted", "default")
WARM_EVENTS = 3000


def _child(events: int, timings_path: str | None) -> None:
    """Run every stage on both message shapes, with a marker call before and after each."""
    from bench_pipeline import event_class  # bench/ is on the path: it holds this script
    from prometheus_client import CollectorRegistry

    from monitor.events import decode_record
    from monitor.metrics import Metrics
    from monitor.pipeline import Pipeline
    from monitor.replay.simulate import simulate, write_boundaries
    from monitor.signals.tool_scope import load_boundaries
    from monitor.thresholds import load_thresholds
    from monitor.worker.processor import StreamProcessor
    from monitor.worker.snapshot_records import StoredSnapshot

    thresholds = load_thresholds()
    boundaries = load_boundaries(write_boundaries(tempfile.mkdtemp(prefix="aifm-bench-")))
    from long_text_mix import long_text_mix

    raw, _ = simulate(WARM_EVENTS + events + 10, seed=5)
    texts = long_text_mix(WARM_EVENTS + events + 10, seed=5)
    warm = StreamProcessor(thresholds, boundaries, Metrics(CollectorRegistry()))
    for offset, start in enumerate(range(0, WARM_EVENTS, 100)):
        warm.handle("bench", 0, offset, json.dumps(raw[start : start + 100]).encode())
    [snapshot] = warm.snapshots()
    # What is built once per process on first use (the punctuation class for non-ASCII
    # text: ~190M instructions, a hundred thousand per event of a 2,000-event stage) is
    # built by a worker's first such text, not per event: a pipeline that is then thrown
    # away builds it here, from the long-text warm-up events, before any stage is measured.
    primer = Pipeline(thresholds, boundaries)
    for start in range(0, WARM_EVENTS, 100):
        for event in decode_record(json.dumps(texts[start : start + 100]).encode())[0]:
            primer.process(event)
    measured = raw[WARM_EVENTS : WARM_EVENTS + events]
    shapes = {
        SHAPES[0]: [json.dumps(event).encode() for event in measured],
        SHAPES[1]: [json.dumps(measured[i : i + 100]).encode() for i in range(0, len(measured), 100)],
        SHAPES[2]: [json.dumps(texts[i : i + 100]).encode() for i in range(WARM_EVENTS, WARM_EVENTS + events, 100)],
    }
    timings: dict[str, float] = {}

    def stage(name: str, run) -> None:
        os.getppid()  # callgrind dumps what ran since the previous marker: setup
        started = time.process_time()
        run()
        timings[name] = time.process_time() - started
        os.getppid()  # ... and here, the stage alone

    def measure(shape: str, records: list[bytes]) -> None:
        decoded = [decode_record(record)[0] for record in records]
        pipeline = Pipeline(thresholds, boundaries)
        pipeline.restore(snapshot.data)
        processor = StreamProcessor(thresholds, boundaries, Metrics(CollectorRegistry()))
        processor.assign("bench", 0, StoredSnapshot(snapshot.data, snapshot.generation, snapshot.next_offset))

        def parse() -> None:
            for record in records:
                json.loads(record)

        def decode() -> None:
            for record in records:
                decode_record(record)

        def process() -> None:
            for batch in decoded:
                for event in batch:
                    pipeline.process(event)

        def handle() -> None:
            for offset, record in enumerate(records, WARM_EVENTS // 100):
                processor.handle("bench", 0, offset, record)

        for name, run in zip(STAGES, (parse, decode, process, handle), strict=True):
            stage(f"{shape}|{name}", run)

    for shape, records in shapes.items():
        measure(shape, records)

    by_class: dict[str, list] = {}
    for record in shapes[SHAPES[0]]:
        [event], _ = decode_record(record)
        by_class.setdefault(event_class(event), []).append(event)
    classes = sorted(by_class.items(), key=lambda item: -len(item[1]))
    for name, events_of_class in classes:
        pipeline = Pipeline(thresholds, boundaries)
        pipeline.restore(snapshot.data)

        def process_class(pipeline=pipeline, events_of_class=events_of_class) -> None:
            for event in events_of_class:
                pipeline.process(event)

        stage(f"class|{name}", process_class)
    if timings_path:
        from monitor.build import build_name

        Path(timings_path).write_text(json.dumps({"timings": timings, "classes": [(name, len(events)) for name, events in classes], "build": build_name()}))


def _dump_totals(directory: Path) -> list[int]:
    """Instructions of each --dump-before dump, in order (dump k holds what ran between markers k-1 and k)."""
    totals = []
    for number in range(1, 10_000):
        path = directory / f"cg.out.{number}"
        if not path.exists():
            break
        for line in path.read_text().splitlines():
            if line.startswith("totals:"):
                totals.append(int(line.split()[1]))
                break
    return totals


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2000, help="events per shape (a multiple of 100)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--timings", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    events = args.events // 100 * 100
    if events < 100:
        parser.error("--events must be at least 100")
    if args.child:
        _child(events, args.timings)
        return 0
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        print("valgrind not found: apt-get install -y valgrind", file=sys.stderr)
        return 2
    runs = {}
    for build in BUILDS:
        measured = _measure(valgrind, events, pure=build == "interpreted")
        if measured is None:
            return 1
        runs[build] = measured
    builds = {build: runs[build]["build"] for build in BUILDS}
    print(f"{events:,} events per shape (seed 5) after {WARM_EVENTS:,} of warm-up; instructions counted by callgrind")
    print(f"builds: {builds['interpreted']} (AIFM_PURE_PYTHON=1) and {builds['default']} (default), each in its own process\n")
    print(f"{'stage':26} {'interpreted':>12} {'default':>10} {'ratio':>6} {'x json.loads':>13} {'us/event interp.':>17} {'default':>8}")
    for shape in SHAPES:
        print(shape)
        floor = runs["default"]["stages"][f"{shape}|{STAGES[0]}"]
        for stage in STAGES:
            name = f"{shape}|{stage}"
            slow, fast = runs["interpreted"]["stages"][name], runs["default"]["stages"][name]
            print(f"  {stage:24} {slow:>12,.0f} {fast:>10,.0f} {slow / fast:>5.2f}x {fast / floor:>13.1f} "
                  f"{runs['interpreted']['native'][name] / events * 1e6:>17.1f} {runs['default']['native'][name] / events * 1e6:>8.1f}")

    print(f"\nPipeline.process by class of event (simulator)\n{'class of event':30} {'events':>7} {'interpreted':>12} {'default':>10} {'ratio':>6} {'share (default)':>16}")
    classes = runs["default"]["classes"]
    everything = sum(total * count for _, count, total in classes)
    for (name, count, fast), (_, _, slow) in zip(classes, runs["interpreted"]["classes"], strict=True):
        print(f"  {name:28} {count:>7,} {slow:>12,.0f} {fast:>10,.0f} {slow / fast:>5.2f}x {fast * count / everything:>16.2f}")
    return 0


def _measure(valgrind: str, events: int, pure: bool) -> dict | None:
    """One build's instructions per event of every stage and class, and its native seconds (None if callgrind's dumps do not add up)."""
    work = Path(tempfile.mkdtemp(prefix="aifm-instructions-"))
    env = {**build_environment(interpreted=pure), "PYTHONHASHSEED": "0"}  # same hashes, same dict layouts, same instructions
    me = [sys.executable, os.path.abspath(__file__), "--child", "--events", str(events)]
    subprocess.run(me + ["--timings", str(work / "native.json")], check=True, env=env)
    subprocess.run(
        [valgrind, "--tool=callgrind", "--dump-before=os_getppid*", f"--callgrind-out-file={work / 'cg.out'}", *me],
        check=True, env=env, stderr=subprocess.DEVNULL,
    )
    totals = _dump_totals(work)
    measured = json.loads((work / "native.json").read_text())
    native, classes = measured["timings"], measured["classes"]
    expected = 2 * (len(SHAPES) * len(STAGES) + len(classes))  # setup before each stage, then the stage
    if len(totals) != expected:
        print(f"expected {expected} callgrind dumps, found {len(totals)} in {work}", file=sys.stderr)
        return None
    shutil.rmtree(work)
    per_stage = iter(totals[1::2])
    stages = {f"{shape}|{stage}": next(per_stage) / events for shape in SHAPES for stage in STAGES}
    return {"build": measured["build"], "native": native, "stages": stages, "classes": [(name, count, next(per_stage) / count) for name, count in classes]}


if __name__ == "__main__":
    sys.exit(main())

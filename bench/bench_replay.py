"""Replay speed: `aifm replay` against bare JSON-decoding loops over the same file, in one run.

Writes (once) a simulated log of --events events, then times whole processes, each
run --repeat times in alternation (median reported, since this machine is noisy):

  bare json.loads   a loop that reads the gzip file and json.loads every line
  bare msgspec      the same loop with msgspec's JSON decoder
  aifm replay       the CLI: decode, every non-embedding signal, detectors, findings
  ... interpreted   the same with AIFM_PURE_PYTHON=1 (the sources of the compiled per-event
                    path, monitor/build.py): what compiling buys

It also prints the in-process pipeline throughput (decoded events through
Pipeline.process, no file I/O) and the replay's peak RSS.

Usage: python bench/bench_replay.py [--events 200000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import gzip
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from monitor.build import build_environment, build_name
from monitor.events import decode_record
from monitor.pipeline import Pipeline
from monitor.replay.simulate import write_simulation
from monitor.signals.tool_scope import load_boundaries
from monitor.thresholds import load_thresholds

BARE_JSON = """
import gzip, json, sys
n = 0
with gzip.open(sys.argv[1], "rb") as handle:
    for line in handle:
        try:
            json.loads(line)
            n += 1
        except ValueError:
            pass
print(n)
"""
BARE_MSGSPEC = BARE_JSON.replace("import gzip, json, sys", "import gzip, sys, msgspec\ndecode = msgspec.json.Decoder().decode").replace(
    "json.loads(line)", "decode(line)"
).replace("except ValueError", "except (msgspec.DecodeError, UnicodeDecodeError)")


def timed(command: list[str], env: dict | None = None) -> tuple[float, int]:
    """Wall seconds and peak RSS (KiB) of one child process."""
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, env=env)
    seconds = time.perf_counter() - started
    return seconds, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dir", default="build/bench-replay", help="where the simulated log is kept between runs")
    args = parser.parse_args(argv)
    directory = Path(args.dir)
    log = directory / "events.jsonl.gz"
    marker = directory / f".events-{args.events}"
    if not marker.exists():
        shutil.rmtree(directory, ignore_errors=True)
        started = time.perf_counter()
        write_simulation(directory, args.events, seed=11, bad_lines=20)
        marker.touch()
        print(f"simulated {args.events:,} events in {time.perf_counter() - started:.1f} s -> {log}")
    aifm = str(Path(sys.executable).with_name("aifm"))
    commands = {
        "bare json.loads": [sys.executable, "-c", BARE_JSON, str(log)],
        "bare msgspec": [sys.executable, "-c", BARE_MSGSPEC, str(log)],
        "aifm replay": [aifm, "replay", str(log), "--boundaries", str(directory / "boundaries"), "--out", str(directory / "findings.jsonl")],
    }
    commands["... interpreted"] = commands["aifm replay"]
    environments = {name: build_environment(interpreted=name == "... interpreted") for name in commands}
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(args.repeat):
        for name, command in commands.items():
            seconds, _ = timed(command, environments[name])
            times[name].append(seconds)
    peak_rss_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    medians = {name: statistics.median(values) for name, values in times.items()}
    events = args.events
    print(f"\nwhole process, {events:,} events (+20 malformed lines), median of {args.repeat} alternating runs")
    print(f"{'':18} {'seconds':>8} {'events/s':>10} {'x bare json':>12} {'x bare msgspec':>15}")
    for name, seconds in medians.items():
        print(f"{name:18} {seconds:>8.2f} {events / seconds:>10,.0f} {seconds / medians['bare json.loads']:>12.2f} {seconds / medians['bare msgspec']:>15.2f}")
    print(f"aifm replay's default build: {build_name()}; interpreted / default: {medians['... interpreted'] / medians['aifm replay']:.2f}x")
    print(f"peak RSS of the largest child (the replay): {peak_rss_mib:.0f} MiB")

    thresholds = load_thresholds()
    decoded = []
    with gzip.open(log, "rb") as handle:
        started = time.perf_counter()
        for line in handle:
            decoded.extend(decode_record(line)[0])
        decode_seconds = time.perf_counter() - started
    pipeline = Pipeline(thresholds, load_boundaries(directory / "boundaries"))
    process = pipeline.process
    started = time.perf_counter()
    for event in decoded:
        process(event)
    process_seconds = time.perf_counter() - started
    n = len(decoded)
    print("\nin process, no file I/O:")
    print(f"  decode (msgspec + validation)       {n / decode_seconds:>10,.0f} events/s  ({decode_seconds / n * 1e6:5.1f} us/event)")
    print(f"  signals + detectors + findings      {n / process_seconds:>10,.0f} events/s  ({process_seconds / n * 1e6:5.1f} us/event)")
    print(f"  decode + pipeline                   {n / (decode_seconds + process_seconds):>10,.0f} events/s  (target >= 50,000)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

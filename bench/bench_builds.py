"""The compiled build against the interpreted one: the same events must give the same bytes.

The per-event path is compiled from the same sources it runs from without a compiler
(``monitor/build.py``). This script feeds the same records through both builds, each in
its own process (``AIFM_PURE_PYTHON=1`` for the interpreted one), and compares digests of
everything a user can observe, on two mixes (the simulator's and its long-text variant,
``bench/long_text_mix.py``), plus malformed records (and a batch with one event that fails validation) for the dead letters:

  signals      every event's signals, as JSON (floats to the last bit)
  findings     every finding published, as the alerts topic carries it
  dead letters every dead letter's key, value and headers (less the wall-clock one)
  metrics      the Prometheus exposition (less the series that measure wall-clock time)
  snapshots    the detector state after the run, as written to the state topic

Exit status 1 if any differs, or if ``--require-compiled`` and the default build is not
compiled (CI runs it so: a build that silently fell back would compare Python with itself).

Usage: python bench/bench_builds.py [--events 20000] [--require-compiled]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time

from monitor.build import build_environment

MIXES = ("simulator", "long text")
PARTS = ("signals", "findings", "dead letters", "metrics", "snapshots")
#: Series whose values are wall-clock times or durations: they differ between any two runs.
_WALL_CLOCK_SERIES = (
    "aifm_record_processing_seconds", "aifm_last_finding_timestamp_seconds", "aifm_last_processed_timestamp_seconds",
    "aifm_commit_latency_seconds", "aifm_embedding_encode_seconds", "aifm_build_info",
)
_WALL_CLOCK_HEADERS = ("aifm.rejected_at",)
_MALFORMED = (
    b"{", b"[]", b'{"kind": "model_call"}', b'{"kind": "tool_call", "ts": "soon"}', b"\xff\xfe", b'[{"kind": "feedback", "score": "high"}]',
    b'[{"kind": "tool_call", "tool": "t", "status": "ok"}, {"kind": "tool_call", "tool": "t", "status": "ok", "ts": "9999-12-31T23:59:59Z"}]',
)


def _records(mix: str, events: int) -> list[bytes]:
    from long_text_mix import long_text_mix

    from monitor.replay.simulate import simulate

    raw = simulate(events, seed=5)[0] if mix == MIXES[0] else long_text_mix(events, seed=5)
    records = [json.dumps(raw[i : i + 100]).encode() for i in range(0, len(raw), 100)]
    for position, bad in enumerate(_MALFORMED):  # dead letters among the batches
        records.insert(1 + position * len(records) // len(_MALFORMED), bad)
    return records


def _child(events: int) -> dict:
    """Digests of every part for both mixes, in this process's build."""
    import msgspec
    from prometheus_client import CollectorRegistry, generate_latest

    from monitor.build import build_name
    from monitor.findings import encode_finding
    from monitor.metrics import Metrics
    from monitor.pipeline import Pipeline
    from monitor.replay.simulate import write_boundaries
    from monitor.signals.tool_scope import load_boundaries
    from monitor.thresholds import load_thresholds
    from monitor.worker.processor import StreamProcessor

    thresholds = load_thresholds()
    boundaries = load_boundaries(write_boundaries(tempfile.mkdtemp(prefix="aifm-builds-")))
    digests: dict = {"build": build_name(), "seconds": {}}
    for mix in MIXES:
        records = _records(mix, events)
        hashes = {part: hashlib.blake2b(digest_size=16) for part in PARTS}
        started = time.process_time()
        pipeline = Pipeline(thresholds, boundaries)
        for record in records:
            result = pipeline.process_record(record)
            for event_result in result.results:
                hashes["signals"].update(msgspec.json.encode(event_result.signals))
                for finding in event_result.findings:
                    hashes["findings"].update(encode_finding(finding))
            for reject in result.rejects:
                hashes["dead letters"].update(msgspec.json.encode([reject.reason, reject.detail]))
        hashes["snapshots"].update(pipeline.snapshot())
        registry = CollectorRegistry()
        processor = StreamProcessor(thresholds, boundaries, Metrics(registry))
        processor.assign("events", 0)
        for offset, record in enumerate(records):
            output = processor.handle("events", 0, offset, record)
            for key, value in output.alerts:
                hashes["findings"].update(key + value)
            for key, value, headers in output.dead_letters:
                kept = [(name, header) for name, header in headers if name not in _WALL_CLOCK_HEADERS]
                hashes["dead letters"].update(key + value + msgspec.json.encode(kept))
        for taken in processor.snapshots():
            hashes["snapshots"].update(taken.data)
        hashes["metrics"].update("\n".join(_timeless(generate_latest(registry).decode())).encode())
        digests["seconds"][mix] = time.process_time() - started
        digests[mix] = {part: hashes[part].hexdigest() for part in PARTS}
    return digests


def _timeless(exposition: str) -> list[str]:
    """The exposition's samples less those that hold wall-clock times (and every ``_created`` time)."""
    samples = []
    for line in exposition.splitlines():
        name = line.partition("{")[0].partition(" ")[0]
        if line.startswith("#") or name.endswith("_created") or name.startswith(_WALL_CLOCK_SERIES):
            continue
        samples.append(line)
    return samples


def _run(events: int, pure: bool) -> dict:
    env = {**build_environment(interpreted=pure), "PYTHONHASHSEED": "0"}
    out = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", "--events", str(events)], check=True, env=env, capture_output=True, text=True)
    return json.loads(out.stdout)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20000, help="events per mix (>= 2000)")
    parser.add_argument("--require-compiled", action="store_true", help="fail unless the default build is compiled")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(_child(args.events)))
        return 0
    default, interpreted = _run(args.events, pure=False), _run(args.events, pure=True)
    print(f"{args.events:,} events per mix (seed 5), {len(_MALFORMED)} malformed records among them")
    print(f"default build: {default['build']}; AIFM_PURE_PYTHON=1: {interpreted['build']}\n")
    print(f"{'mix':12} {'part':14} {'default':34} {'interpreted':34} same")
    differ = 0
    for mix in MIXES:
        for part in PARTS:
            same = default[mix][part] == interpreted[mix][part]
            differ += not same
            print(f"{mix:12} {part:14} {default[mix][part]:34} {interpreted[mix][part]:34} {'yes' if same else 'NO'}")
    print("\nCPU seconds for both passes (pipeline, then worker path), one run each, beside each other:")
    for mix in MIXES:
        fast, slow = default["seconds"][mix], interpreted["seconds"][mix]
        print(f"  {mix:12} default {fast:6.2f} s   interpreted {slow:6.2f} s   {slow / fast:4.2f}x")
    if differ:
        print(f"\n{differ} digests differ: the builds do not give identical results", file=sys.stderr)
        return 1
    if args.require_compiled and default["build"] != "compiled":
        print(f"\nthe default build is {default['build']}, not compiled: nothing was compared with the interpreted build", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

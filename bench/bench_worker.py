"""Stream-worker throughput against the embedded broker, three consumers side by side (four on batches).

For each message shape (single-event messages; batch messages of --batch-size events, 100 by default) the
source topic is filled first, then each consumer drains it from the start (on single
events, (b) and (c) run --rounds times in alternation, each on a group of its own, and
the medians are reported, since one run moves by 20-30% on this machine):

  (a) raw aiokafka consume + json.loads       the ceiling of the client
  (b) a bare faust agent that only counts       faust's own per-message cost
  (c) aifm worker                              every non-embedding signal, detectors, metrics,
                                               findings and dead letters published
  (d) aifm worker without signals             batches only: the same worker with
                                               Pipeline.process stubbed (decoding, metrics,
                                               faust and the broker remain), the ceiling
                                               that a cheaper pipeline could approach
  (e) aifm worker, interpreted                 batches only: (c) with AIFM_PURE_PYTHON=1, the
                                               sources of the compiled per-event path
                                               (monitor/build.py): what compiling buys

Throughput is counted from the first to the last message processed (group joins
excluded). For the aifm worker, the start is the first poll of /metrics (every 50 ms)
that shows progress, and the events it already shows are left out of the count (a
scrape can wait a second or more for a busy worker, and counting those events without
their time had overstated (c) by 10-20%); the end is the worker's
own ``aifm_last_processed_timestamp_seconds``; after the first event the poll slows to
once a second, since each scrape costs the worker milliseconds of its only core
(a real Prometheus scrapes every 15 s or so). The aifm worker's RSS is read from /proc at
each poll: printed at every quarter of the batch drain (same keys throughout), to show
that memory does not grow with the number of events, and its peak.

Last, scale-out: one aifm worker, then --workers of them in one consumer group, each
time on a fresh topic of 4 partitions that is filled with the batch messages only once
every worker holds partitions (so the group's join is not timed; the filling is, as it
overlaps the drain). Partitions are the unit of scale, and so are keys: all events of a
key share a partition, so the split follows the keys' partitions, not the worker count.

Usage: python bench/bench_worker.py [--single 20000] [--batches 3000] [--batch-size 100] [--rounds 3] [--workers 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from monitor.build import build_environment, build_name
from monitor.replay.simulate import simulate, write_boundaries
from monitor.worker.broker import EmbeddedBroker, free_port

BARE_FAUST = textwrap.dedent(
    """
    import sys, time, faust
    bootstrap, topic, expected, group = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    sys.argv = [sys.argv[0], "worker", "-l", "warn", "--without-web"]
    import tempfile
    app = faust.App(group, broker="kafka://" + bootstrap, value_serializer="raw", web_enabled=False, datadir=tempfile.mkdtemp(),
                    broker_session_timeout=6.0, broker_heartbeat_interval=1.0, consumer_auto_offset_reset="earliest")
    source = app.topic(topic, value_type=bytes, value_serializer="raw")
    seen = {"n": 0, "first": None}

    @app.agent(source)
    async def count(stream):
        async for value in stream:
            if seen["first"] is None:
                seen["first"] = time.perf_counter()
            seen["n"] += 1
            if seen["n"] == expected:
                print(f"RESULT {time.perf_counter() - seen['first']:.6f}", flush=True)
                import os, signal
                os.kill(os.getpid(), signal.SIGTERM)

    app.main()
    """
)


# ``aifm worker`` with the signals and detectors left out: each event is decoded and counted, nothing more.
WITHOUT_SIGNALS = textwrap.dedent(
    """
    import sys
    from monitor import pipeline
    from monitor.cli import main
    from monitor.worker import processor

    class CountOnly(pipeline.Pipeline):  # an extension type in the compiled build: overridden, not patched
        def process(self, event):
            self.events_by_kind[event.kind] += 1
            return pipeline.EventResult(event, {}, [])

    processor.Pipeline = CountOnly
    sys.exit(main(sys.argv[1:]))
    """
)


async def fill(bootstrap: str, topic: str, messages: list[tuple[bytes, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, max_batch_size=1 << 20, max_request_size=8 << 20)
    await producer.start()
    try:
        futures = [await producer.send(topic, value=value, key=key) for key, value in messages]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def raw_consume(bootstrap: str, topic: str, expected: int) -> float:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    n, first = 0, None
    try:
        while n < expected:
            batches = await consumer.getmany(timeout_ms=1000, max_records=5000)
            for records in batches.values():
                if first is None:
                    first = time.perf_counter()
                for record in records:
                    json.loads(record.value)
                    n += 1
    finally:
        await consumer.stop()
    return time.perf_counter() - first


def bare_faust(bootstrap: str, topic: str, expected: int, group: str | None = None) -> float:
    result = subprocess.run(
        [sys.executable, "-c", BARE_FAUST, bootstrap, topic, str(expected), group or f"bare-{topic}"],
        capture_output=True, text=True, timeout=600,
    )
    for line in (result.stdout + result.stderr).splitlines():  # faust routes print() into its log
        if "RESULT " in line:
            return float(line.split("RESULT ", 1)[1].split()[0])
    raise RuntimeError(f"bare faust agent printed no result:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")


def aifm_worker(
    bootstrap: str, topic: str, expected_events: int, boundaries: Path, group: str | None = None, without_signals: bool = False, interpreted: bool = False
) -> tuple[float, float, list]:
    """(seconds from first to last event, peak RSS MiB, [(events processed, RSS MiB) at each poll]) of an aifm worker draining the topic."""
    seconds, peaks, rss, _ = aifm_workers(bootstrap, topic, expected_events, boundaries, 1, group, without_signals=without_signals, interpreted=interpreted)
    return seconds, peaks[0], rss


def aifm_workers(
    bootstrap: str,
    topic: str,
    expected_events: int,
    boundaries: Path,
    n: int,
    group: str | None = None,
    fill_after_join: list | None = None,
    without_signals: bool = False,
    interpreted: bool = False,
) -> tuple[float, list[float], list, list[float]]:
    """``n`` aifm workers in one consumer group draining the topic together.

    With ``fill_after_join`` (messages), the topic is empty at start and filled once every
    worker holds partitions, so that the group's join is not part of the measurement.
    Returns (seconds from first to last event over all of them, peak RSS MiB of each,
    [(events processed, RSS MiB) of the first worker at each poll], events each processed).
    """
    ports = [free_port() for _ in range(n)]
    aifm = [sys.executable, "-c", WITHOUT_SIGNALS] if without_signals else [str(Path(sys.executable).with_name("aifm"))]
    env = build_environment(interpreted)
    processes = [
        subprocess.Popen(
            [
                *aifm, "worker", "--bootstrap-servers", bootstrap, "--topics", topic,
                "--alerts-topic", f"{topic}.alerts", "--dlq-topic", f"{topic}.dlq", "--group-id", group or f"aifm-{topic}",
                "--metrics-port", str(port), "--boundaries", str(boundaries), "--loglevel", "warn",
            ],
            stdout=subprocess.DEVNULL, stderr=None, env=env,
        )
        for port in ports
    ]
    first = None  # (events processed, wall-clock time) at the first scrape that shows progress
    rss = []
    try:
        if fill_after_join is not None:
            _wait_until_each_holds_partitions(ports, processes)
            asyncio.run(fill(bootstrap, topic, fill_after_join))
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline:
            for process in processes:
                if process.poll() is not None:
                    raise RuntimeError(f"aifm worker exited with status {process.returncode}")
            progress_by_worker = [_progress(port) for port in ports]
            processed = sum(count for count, _ in progress_by_worker)
            rss.append((progress_by_worker[0][0], _memory_mib(processes[0].pid, "VmRSS")))
            if processed > 0 and first is None:
                first = (processed, time.time())
            if processed >= expected_events:
                peaks = [_memory_mib(process.pid, "VmHWM") for process in processes]
                counted_from, started = first
                if counted_from >= expected_events:
                    raise RuntimeError("the workers finished before the first scrape: use more messages")
                # The events done before the first scrape saw them are left out of the count,
                # as their time is left out of the interval.
                last_processed_at = max(at for count, at in progress_by_worker if count)
                seconds = (last_processed_at - started) * expected_events / (expected_events - counted_from)
                return seconds, peaks, rss, [count for count, _ in progress_by_worker]
            time.sleep(0.05 if first is None else 1.0)
        raise RuntimeError("aifm workers did not finish in time")
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(15)


def _wait_until_each_holds_partitions(ports: list[int], processes: list[subprocess.Popen]) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if any(process.poll() is not None for process in processes):
            raise RuntimeError("an aifm worker exited before the group settled")
        held = [_gauge(port, "aifm_assigned_partitions") for port in ports]
        if all(count >= 1 for count in held):
            return
        time.sleep(0.2)
    raise RuntimeError("the workers did not all get partitions within 120 s")


def _scrape(port: int) -> list[str]:
    """The lines of a worker's /metrics (none while it does not answer)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
            return response.read().decode().splitlines()
    except OSError:
        return []


def _gauge(port: int, name: str) -> float:
    return next((float(line.rsplit(" ", 1)[1]) for line in _scrape(port) if line.startswith(name + " ")), 0.0)


def _progress(port: int) -> tuple[float, float]:
    """(events processed, wall-clock time the last record was processed) from the worker's /metrics."""
    lines = _scrape(port)
    events = sum(float(line.rsplit(" ", 1)[1]) for line in lines if line.startswith("aifm_events_total{"))
    last = next((float(line.rsplit(" ", 1)[1]) for line in lines if line.startswith("aifm_last_processed_timestamp_seconds ")), 0.0)
    return events, last


def _memory_mib(pid: int, field: str) -> float:
    """``VmRSS`` (now) or ``VmHWM`` (peak) of a process, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def progress(message: str) -> None:
    print(f"  .. {message}", file=sys.stderr, flush=True)


def _key(event: dict) -> bytes:
    return (event.get("model") or event.get("agent") or "unkeyed").encode()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--single", type=int, default=20_000, help="single-event messages")
    parser.add_argument("--batches", type=int, default=3_000, help="batch messages")
    parser.add_argument("--batch-size", type=int, default=100, help="events per batch message")
    parser.add_argument("--rounds", type=int, default=3, help="alternating (b), (c) runs on single events (medians reported)")
    parser.add_argument("--workers", type=int, default=2, help="aifm workers in one group for the scale-out run on batches (below 2: skip it)")
    args = parser.parse_args(argv)
    events, _ = simulate(max(args.single, args.batches * args.batch_size) + 10, seed=5)
    boundaries = write_boundaries(tempfile.mkdtemp(prefix="aifm-bench-"))
    rows = []
    with EmbeddedBroker() as broker:
        bootstrap = broker.bootstrap_servers
        single = [(_key(e), json.dumps(e).encode()) for e in events[: args.single]]
        asyncio.run(fill(bootstrap, "single", single))
        progress("single-event topic filled")
        a = asyncio.run(raw_consume(bootstrap, "single", len(single)))
        progress(f"(a) {a:.2f} s")
        bs, cs, rss = [], [], []
        for round_ in range(args.rounds):  # each run on a group of its own, from the start of the topic
            bs.append(bare_faust(bootstrap, "single", len(single), group=f"bare-single-{round_}"))
            progress(f"(b) {bs[-1]:.2f} s")
            seconds, peak, _ = aifm_worker(bootstrap, "single", len(single), boundaries, group=f"aifm-single-{round_}")
            cs.append(seconds)
            rss.append(peak)
            progress(f"(c) {seconds:.2f} s")
        b, c, rss_single = statistics.median(bs), statistics.median(cs), max(rss)
        single_ratios = sorted(b_ / c_ for b_, c_ in zip(bs, cs, strict=True))
        n = len(single)
        rows.append(("single-event messages", n, n, a, b, c))

        size = args.batch_size
        batched = [(_key(events[i]), json.dumps(events[i : i + size]).encode()) for i in range(0, args.batches * size, size)]
        asyncio.run(fill(bootstrap, "batch", batched))
        progress("batch topic filled")
        n_msgs, n_events = len(batched), len(batched) * size
        a = asyncio.run(raw_consume(bootstrap, "batch", n_msgs))
        progress(f"(a) {a:.2f} s")
        b = bare_faust(bootstrap, "batch", n_msgs)
        progress(f"(b) {b:.2f} s")
        c, rss_batch, rss_samples = aifm_worker(bootstrap, "batch", n_events, boundaries)
        progress(f"(c) {c:.2f} s")
        rows.append((f"batches of {size} events", n_msgs, n_events, a, b, c))
        d, _, _ = aifm_worker(bootstrap, "batch", n_events, boundaries, group="aifm-batch-without-signals", without_signals=True)
        progress(f"(d) {d:.2f} s")
        e, _, _ = aifm_worker(bootstrap, "batch", n_events, boundaries, group="aifm-batch-interpreted", interpreted=True)
        progress(f"(e) {e:.2f} s")
        without_signals = (n_events, c, d)
        # Scale-out, each run on a fresh topic filled once the group has settled: one worker, then
        # --workers with the messages keyed as above, then keyed by message number (spread evenly).
        spread = [(str(number).encode(), value) for number, (_, value) in enumerate(batched)]
        scale_out = []  # (label, seconds, events per worker)
        runs = (("1 worker", 1, batched), (f"{args.workers} workers", args.workers, batched), (f"{args.workers} workers, keys spread", args.workers, spread))
        for label, workers, messages in runs if args.workers > 1 else ():
            topic = f"scale-{len(scale_out)}"
            seconds, _, _, split = aifm_workers(bootstrap, topic, n_events, boundaries, workers, fill_after_join=messages)
            scale_out.append((label, seconds, split))
            progress(f"(c) {label}: {seconds:.2f} s")

    print(f"\n{'messages':24} {'msgs':>7} {'events':>8} | {'(a) raw aiokafka':>17} {'(b) bare faust':>15} {'(c) aifm worker':>16} | {'c/b msgs':>8}")
    for label, msgs, n_events, a, b, c in rows:
        print(
            f"{label:24} {msgs:>7,} {n_events:>8,} | {msgs / a:>11,.0f} msg/s {msgs / b:>9,.0f} msg/s {n_events / c:>9,.0f} ev/s | {b / c:>8.2f}"
        )
    print(f"(a) and (b) decode or count messages; (c) is in events/s (a batch message holds {args.batch_size} events)")
    batch_events, c, d = without_signals
    print(f"(d) the aifm worker without signals, on batches: {batch_events / d:,.0f} ev/s, {c / d:.1f}x (c); "
          f"signals and detectors take {1 - d / c:.0%} of (c)'s time, {(c - d) / batch_events * 1e6:.0f} us per event")
    print(f"(e) the same worker interpreted (AIFM_PURE_PYTHON=1), on batches: {batch_events / e:,.0f} ev/s; the default build ({build_name()}) is {e / c:.2f}x as fast; "
          f"(c) runs at {d / c:.2f}x, (e) at {d / e:.2f}x the worker without signals")
    print(f"single events: medians of {args.rounds} alternating runs of (b) and (c); c/b per round: {', '.join(f'{r:.2f}' for r in single_ratios)}")
    if scale_out:
        one = scale_out[0][1]
        print(f"\nscale-out on batches (topics of 4 partitions, filled once the group had settled; this machine has {os.cpu_count()} CPUs):")
        for label, seconds, split in scale_out:
            print(f"  {label:28} {n_events / seconds:>9,.0f} events/s  {one / seconds:.2f}x one worker  "
                  f"(events per worker: {', '.join(f'{count:,.0f}' for count in split)})")
    quarters = [next((processed, mib) for processed, mib in rss_samples if processed >= n_events * q / 4) for q in (1, 2, 3, 4)]
    print(f"\naifm worker RSS while draining {n_events:,} events in batches (same keys throughout): "
          + ", ".join(f"{mib:.0f} MiB after {processed:,.0f}" for processed, mib in quarters))
    print(f"aifm worker peak RSS: {rss_single:.0f} MiB ({args.single:,} single events), {rss_batch:.0f} MiB ({n_events:,} events in batches)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

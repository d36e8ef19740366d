"""Stream-worker throughput against the embedded broker, three consumers side by side.

For each message shape (single-event messages; batch messages of --batch-size events, 100 by default) the
source topic is filled first, then each consumer drains it from the start (on single
events, (b) and (c) run --rounds times in alternation, each on a group of its own, and
the medians are reported, since one run moves by 20-30% on this machine):

  (a) raw aiokafka consume + json.loads       the ceiling of the client
  (b) a bare faust agent that only counts       faust's own per-message cost
  (c) aifm worker                              every non-embedding signal, detectors, metrics,
                                               findings and dead letters published

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

Usage: python bench/bench_worker.py [--single 20000] [--batches 3000] [--batch-size 100] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import json
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

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


def aifm_worker(bootstrap: str, topic: str, expected_events: int, boundaries: Path, group: str | None = None) -> tuple[float, float, list]:
    """(seconds from first to last event, peak RSS MiB, [(events processed, RSS MiB) at each poll]) of an aifm worker draining the topic."""
    port = free_port()
    command = [
        str(Path(sys.executable).with_name("aifm")), "worker", "--bootstrap-servers", bootstrap, "--topics", topic,
        "--alerts-topic", f"{topic}.alerts", "--dlq-topic", f"{topic}.dlq", "--group-id", group or f"aifm-{topic}",
        "--metrics-port", str(port), "--boundaries", str(boundaries), "--loglevel", "warn",
    ]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=None)
    first = None  # (events processed, wall-clock time) at the first scrape that shows progress
    rss = []
    try:
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"aifm worker exited with status {process.returncode}")
            processed, last_processed_at = _progress(port)
            rss.append((processed, _memory_mib(process.pid, "VmRSS")))
            if processed > 0 and first is None:
                first = (processed, time.time())
            if processed >= expected_events:
                peak = _memory_mib(process.pid, "VmHWM")
                counted_from, started = first
                if counted_from >= expected_events:
                    raise RuntimeError("the worker finished before the first scrape: use more messages")
                # The events done before the first scrape saw them are left out of the count,
                # as their time is left out of the interval.
                return (last_processed_at - started) * expected_events / (expected_events - counted_from), peak, rss
            time.sleep(0.05 if first is None else 1.0)
        raise RuntimeError("aifm worker did not finish in time")
    finally:
        process.terminate()
        process.wait(15)


def _progress(port: int) -> tuple[float, float]:
    """(events processed, wall-clock time the last record was processed) from the worker's /metrics."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
            text = response.read().decode()
    except OSError:
        return 0.0, 0.0
    lines = text.splitlines()
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

    print(f"\n{'messages':24} {'msgs':>7} {'events':>8} | {'(a) raw aiokafka':>17} {'(b) bare faust':>15} {'(c) aifm worker':>16} | {'c/b msgs':>8}")
    for label, msgs, n_events, a, b, c in rows:
        print(
            f"{label:24} {msgs:>7,} {n_events:>8,} | {msgs / a:>11,.0f} msg/s {msgs / b:>9,.0f} msg/s {n_events / c:>9,.0f} ev/s | {b / c:>8.2f}"
        )
    print(f"(a) and (b) decode or count messages; (c) is in events/s (a batch message holds {args.batch_size} events)")
    print(f"single events: medians of {args.rounds} alternating runs of (b) and (c); c/b per round: {', '.join(f'{r:.2f}' for r in single_ratios)}")
    quarters = [next((processed, mib) for processed, mib in rss_samples if processed >= n_events * q / 4) for q in (1, 2, 3, 4)]
    print(f"\naifm worker RSS while draining {n_events:,} events in batches (same keys throughout): "
          + ", ".join(f"{mib:.0f} MiB after {processed:,.0f}" for processed, mib in quarters))
    print(f"aifm worker peak RSS: {rss_single:.0f} MiB ({args.single:,} single events), {rss_batch:.0f} MiB ({n_events:,} events in batches)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

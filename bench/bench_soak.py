"""Soak: the stream worker under sustained load and a burst, its memory, lag and per-record latency over time.

Starts the embedded broker and one ``aifm worker`` (default thresholds, 4 partitions),
measures the worker's capacity on a burst of simulated traffic, then produces at
``--share`` of that capacity for ``--minutes``, with a burst at ``--burst`` times that
rate for ``--burst-minutes`` starting 3 minutes before the end (the last 2 minutes show
the recovery). The traffic is the simulator's mix, re-stamped with the wall clock and
with fresh event and session ids on every pass, so sessions, keys and caches see what
a long-running deployment sees.

Every ``--report-seconds`` it prints the worker's RSS, the events produced but not yet
processed (lag), and the p99 of per-record processing time over the interval (from
``aifm_record_processing_seconds``). At the end: RSS after warm-up (the first third)
against RSS at the end, peak lag in the burst and whether it drained.

Usage: python bench/bench_soak.py [--minutes 10] [--share 0.6] [--burst 2.0] [--burst-minutes 1] [--report-seconds 30]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from aiokafka import AIOKafkaProducer

from monitor.replay.simulate import simulate, write_boundaries
from monitor.worker.broker import EmbeddedBroker, free_port

AIFM = str(Path(sys.executable).with_name("aifm"))
TOPIC = "soak.events"
BATCH = 100  # events per message, as an SDK exporter batches


def _metrics(port: int) -> dict[str, float]:
    """Sums of the samples of each metric name (labels summed over), and histogram buckets by bound."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    sums: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("#") or not line:
            continue
        name_labels, value = line.rsplit(" ", 1)
        name = name_labels.split("{", 1)[0]
        if name == "aifm_record_processing_seconds_bucket":
            bound = name_labels.split('le="', 1)[1].split('"', 1)[0]
            name = f"bucket:{bound}"
        sums[name] = sums.get(name, 0.0) + float(value)
    return sums


def _processed(m: dict[str, float]) -> float:
    return m.get("aifm_events_total", 0.0) + m.get("aifm_events_rejected_total", 0.0)


def _p99(before: dict[str, float], after: dict[str, float]) -> str:
    """The upper bound of the bucket holding the 99th percentile of records processed between two scrapes."""
    bounds = sorted((float(k.split(":", 1)[1]), k) for k in after if k.startswith("bucket:"))
    deltas = [(bound, after[k] - before.get(k, 0.0)) for bound, k in bounds]
    total = deltas[-1][1] if deltas else 0
    if total <= 0:
        return "-"
    for bound, cumulative in deltas:
        if cumulative >= 0.99 * total:
            return "> 0.5 s" if bound == float("inf") else f"<= {bound * 1000:g} ms"
    return "-"


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Traffic:
    """The simulator's events, cycled; each pass gets fresh ids and current timestamps."""

    def __init__(self, n: int) -> None:
        self.events, _ = simulate(n, seed=5)
        self.position = 0
        self.passes = 0

    def batch(self) -> tuple[bytes, bytes]:
        chosen = []
        for _ in range(BATCH):
            event = dict(self.events[self.position])
            self.position += 1
            if self.position == len(self.events):
                self.position, self.passes = 0, self.passes + 1
            suffix = f"~{self.passes}"
            for field in ("event_id", "session_id", "trace_id", "target_event_id"):
                if event.get(field):
                    event[field] = event[field] + suffix
            event["ts"] = time.time()
            chosen.append(event)
        return (chosen[0].get("model") or chosen[0].get("agent") or "unkeyed").encode(), json.dumps(chosen).encode()


async def _produce(producer: AIOKafkaProducer, traffic: Traffic, events: int) -> None:
    for _ in range(events // BATCH):
        key, value = traffic.batch()
        await producer.send(TOPIC, value, key=key)


async def run(args) -> None:
    traffic = Traffic(100_000)
    broker = EmbeddedBroker().start()
    port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix="aifm-soak-"))
    worker = subprocess.Popen(
        [AIFM, "worker", "--bootstrap-servers", broker.bootstrap_servers, "--topics", TOPIC, "--group-id", "soak",
         "--metrics-port", str(port), "--boundaries", str(write_boundaries(workdir))],
        stdout=open(workdir / "worker.log", "wb"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
    )
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap_servers, linger_ms=5, max_request_size=4_000_000)
    try:
        await producer.start()
        while True:
            try:
                if _metrics(port).get("aifm_assigned_partitions", 0) >= 4:
                    break
            except OSError:
                pass
            await asyncio.sleep(0.5)
        # capacity: a burst of 60,000 events, drained as fast as the worker can
        await _produce(producer, traffic, 60_000)
        await producer.flush()
        start, started = _processed(_metrics(port)), time.monotonic()
        while _processed(_metrics(port)) < 60_000:
            await asyncio.sleep(0.5)
        capacity = (60_000 - start) / (time.monotonic() - started)
        rate = args.share * capacity
        print(f"capacity {capacity:,.0f} events/s; soak at {rate:,.0f}/s ({args.share:.0%}) for {args.minutes} min, "
              f"burst x{args.burst} for {args.burst_minutes} min from minute {args.minutes - 3}", flush=True)
        print(f"{'minute':>6}  {'rate/s':>7}  {'RSS MiB':>7}  {'lag events':>10}  {'p99 per record':>14}", flush=True)
        produced, began = _processed(_metrics(port)), time.monotonic()
        last_report, before, produced_before = began, _metrics(port), produced
        rows = []
        burst_from, burst_to = (args.minutes - 3) * 60, (args.minutes - 3 + args.burst_minutes) * 60
        due = began  # when the next batch is due: the schedule, not a sleep per batch, sets the rate
        while (elapsed := time.monotonic() - began) < args.minutes * 60:
            now_rate = rate * (args.burst if burst_from <= elapsed < burst_to else 1.0)
            await _produce(producer, traffic, BATCH)
            produced += BATCH
            due += BATCH / now_rate
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            if time.monotonic() - last_report >= args.report_seconds:
                after = _metrics(port)
                sent_rate = (produced - produced_before) / (time.monotonic() - last_report)
                row = (elapsed / 60, sent_rate, _rss_mib(worker.pid), produced - _processed(after), _p99(before, after))
                rows.append(row)
                print(f"{row[0]:6.1f}  {row[1]:7,.0f}  {row[2]:7.0f}  {row[3]:10,.0f}  {row[4]:>14}", flush=True)
                before, last_report, produced_before = after, time.monotonic(), produced
        await producer.flush()
        warm = [r for r in rows if r[0] <= args.minutes / 3]
        steady = [r for r in rows if r[0] * 60 < burst_from]
        burst = [r for r in rows if burst_from <= r[0] * 60 < burst_to + 60]
        print(f"RSS after warm-up (minute {warm[-1][0]:.1f}) {warm[-1][2]:.0f} MiB; before the burst {steady[-1][2]:.0f} MiB "
              f"({steady[-1][2] / warm[-1][2]:.2f}x); at the end {rows[-1][2]:.0f} MiB ({rows[-1][2] / warm[-1][2]:.2f}x)")
        print(f"lag: at most {max(r[3] for r in steady):,.0f} events at {args.share:.0%}, {max(r[3] for r in burst):,.0f} in the burst, "
              f"{rows[-1][3]:,.0f} at the end")
    finally:
        await producer.stop()
        worker.terminate()
        try:
            worker.wait(15)
        except subprocess.TimeoutExpired:
            worker.kill()
        broker.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--share", type=float, default=0.6)
    parser.add_argument("--burst", type=float, default=2.0)
    parser.add_argument("--burst-minutes", type=float, default=1.0)
    parser.add_argument("--report-seconds", type=float, default=30.0)
    args = parser.parse_args()
    if args.minutes < 4:
        parser.error("--minutes: at least 4 (warm-up, steady load, burst, recovery)")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the worker and the broker on the way out
    asyncio.run(run(args))


if __name__ == "__main__":
    main()

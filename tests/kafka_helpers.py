"""Helpers for the integration tier: a worker process, producing and reading topics."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from monitor.worker.broker import free_port
from monitor.worker.kafka import log_end_offsets
from monitor.worker.settings import _OPTIONS as WORKER_OPTIONS  # setting -> (flag, environment variable, ...)

AIFM = str(Path(sys.executable).with_name("aifm"))
FAUST = str(Path(sys.executable).with_name("faust"))


class Names:
    """Fresh topic and group names for one test, so tests never see each other's data."""

    def __init__(self) -> None:
        tag = uuid.uuid4().hex[:8]
        self.events = f"t{tag}.events"
        self.alerts = f"t{tag}.alerts"
        self.dlq = f"t{tag}.dlq"
        self.otlp_spans = f"t{tag}.otlp_spans"
        self.otlp_logs = f"t{tag}.otlp_logs"
        self.group = f"g{tag}"


class WorkerProcess:
    """``aifm worker`` (or, with ``via_faust``, ``faust -A monitor.app worker`` configured by ``AIFM_*`` only) as a child process, stopped by its pid."""

    def __init__(
        self, bootstrap: str, names: Names, log_dir: Path, *, extra_env: dict | None = None, label: str = "worker", via_faust: bool = False
    ):
        self.metrics_port = free_port()
        self.log_path = log_dir / f"{label}-{uuid.uuid4().hex[:6]}.log"
        settings = {
            "bootstrap_servers": bootstrap, "topics": names.events, "alerts_topic": names.alerts, "dlq_topic": names.dlq,
            "otlp_spans_topics": names.otlp_spans, "otlp_logs_topics": names.otlp_logs,
            "group_id": names.group, "metrics_port": str(self.metrics_port), "snapshot_seconds": "1",
        }
        self.env = {**os.environ, **(extra_env or {})}
        if via_faust:
            self.args = [FAUST, "-A", "monitor.app", "worker", "-l", "info", "--without-web"]
            self.env.update({WORKER_OPTIONS[name][1]: value for name, value in settings.items()})
        else:
            self.args = [AIFM, "worker", *(arg for name, value in settings.items() for arg in (WORKER_OPTIONS[name][0], value))]
        self.process: subprocess.Popen | None = None

    def start(self) -> WorkerProcess:
        self._log = open(self.log_path, "ab")
        self.process = subprocess.Popen(self.args, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=self.env)
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for_log(self, pattern: str, timeout: float = 60.0) -> re.Match:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = re.search(pattern, self.log())
            if match:
                return match
            if self.process.poll() is not None:
                raise AssertionError(f"worker exited with {self.process.returncode}:\n{self.log()[-3000:]}")
            time.sleep(0.2)
        raise AssertionError(f"no {pattern!r} in the worker log within {timeout} s:\n{self.log()[-3000:]}")

    def wait_ready(self, timeout: float = 60.0) -> None:
        self.wait_for_log(r"assigned \d+ partition", timeout)

    def metrics(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as response:
            return response.read().decode()

    def metric(self, name: str, **labels: str) -> float:
        """Sum of the samples of ``name`` whose labels include ``labels``."""
        total = 0.0
        for line in self.metrics().splitlines():
            if not line.startswith(name + "{") and not line.startswith(name + " "):
                continue
            if all(f'{k}="{v}"' in line for k, v in labels.items()):
                total += float(line.rsplit(" ", 1)[1])
        return total

    def wait_metric(self, name: str, at_least: float, timeout: float = 60.0, **labels: str) -> float:
        deadline = time.monotonic() + timeout
        value = 0.0
        while time.monotonic() < deadline:
            try:
                value = self.metric(name, **labels)
            except OSError:
                value = 0.0
            if value >= at_least:
                return value
            time.sleep(0.2)
        raise AssertionError(f"{name}{labels} stayed at {value} < {at_least}:\n{self.log()[-3000:]}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> tuple[int, float]:
        """Send ``sig``; returns (exit status, seconds to exit)."""
        process = self.process
        if process is None or process.poll() is not None:
            return (process.returncode if process else 0), 0.0
        started = time.monotonic()
        process.send_signal(sig)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
        self._log.close()
        return process.returncode, time.monotonic() - started


def produce(bootstrap: str, topic: str, records: list[tuple], *, max_request_size: int = 4_000_000, partition: int | None = None) -> None:
    """Send (key, value) or (key, value, headers) records in order (to ``partition``, else by key) and wait for every acknowledgement."""

    async def run() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, max_request_size=max_request_size, acks="all")
        await producer.start()
        try:
            futures = [
                await producer.send(topic, value=record[1], key=record[0], headers=record[2] if len(record) > 2 else None, partition=partition)
                for record in records
            ]
            await asyncio.gather(*futures)
        finally:
            await producer.stop()

    asyncio.run(run())


def read_topic(bootstrap: str, topic: str, *, at_least: int = 0, timeout: float = 30.0) -> list:
    """Every record of ``topic`` (all partitions, from the start), once ``at_least`` are there."""

    async def run() -> list:
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
        await consumer.start()
        try:
            deadline = time.monotonic() + timeout
            while True:
                partitions = consumer.partitions_for_topic(topic) or set()
                if partitions:
                    break
                if time.monotonic() > deadline:
                    return []
                await consumer._client.force_metadata_update()
                await asyncio.sleep(0.2)
            tps = [TopicPartition(topic, p) for p in sorted(partitions)]
            consumer.assign(tps)
            records: list = []
            while True:
                ends = await log_end_offsets(consumer, tps)
                await consumer.seek_to_beginning(*tps)
                records = []
                remaining = {tp for tp in tps if ends[tp] > 0}
                while remaining:
                    batches = await consumer.getmany(*remaining, timeout_ms=500)
                    for tp, batch in batches.items():
                        records.extend(batch)
                        if batch and batch[-1].offset + 1 >= ends[tp]:
                            remaining.discard(tp)
                    if not batches:
                        break
                if len(records) >= at_least or time.monotonic() > deadline:
                    return records
                await asyncio.sleep(0.5)
        finally:
            await consumer.stop()

    return asyncio.run(run())

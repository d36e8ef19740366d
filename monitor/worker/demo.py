"""``aifm demo``: the whole system live on one machine, with no Kafka installed.

Starts the embedded broker (Tansu, loopback, memory storage) unless
``--bootstrap-servers`` names a Kafka, runs the stream worker with its /metrics
endpoint, streams simulated traffic with injected incidents into ``ai.events`` (keyed
by model or agent), and prints findings as they arrive on ``ai.alerts``, with a status
line every few seconds. When the simulated stream has been processed it scores the
findings against the injected incidents. Ctrl-C stops everything it started.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import tempfile
import uuid
from collections import Counter

import msgspec

from monitor.cli_format import format_finding
from monitor.findings import Finding
from monitor.otel.encode import expressible, to_request
from monitor.replay.scoring import LabelledIncident, score
from monitor.replay.simulate import simulate, write_boundaries
from monitor.worker.broker import EmbeddedBroker, free_port
from monitor.worker.run import run_worker
from monitor.worker.settings import WorkerSettings

log = logging.getLogger("aifm.demo")
_finding = msgspec.json.Decoder(Finding)


def _message_key(event: dict) -> bytes:
    """The documented keying: by model for model calls and feedback, by agent otherwise."""
    return (event.get("model") or event.get("agent") or event.get("target_model") or event.get("target_agent") or "unkeyed").encode()


#: Spans per OTLP request in ``--otel`` mode (the SDK's batch span processor exports up to 512).
OTLP_BATCH = 64


def install(app, *, events: list[dict], incidents, rate: float, exit_when_done: bool, out, otel: bool = False) -> None:
    """Add the traffic producer and the live findings view to a worker app.

    With ``otel``, model and tool calls go to the OTLP span topic as trace requests, the
    way the Collector's kafka exporter forwards an instrumented application's spans
    (unkeyed, as its default); what instrumentation does not report goes to the JSON topic.
    """
    settings = app.settings
    alerts_topic = app.topic(settings.alerts_topic, key_serializer="raw", value_serializer="raw")
    seen: list[Finding] = []
    counts: Counter = Counter()
    progress = {"sent": 0, "done": False}

    @app.task
    async def traffic() -> None:
        await asyncio.sleep(2.0)  # let the group settle
        batch = max(1, int(rate / 10))
        for start in range(0, len(events), batch):
            spans = []
            for event in events[start : start + batch]:
                if otel and expressible(event):
                    spans.append(event)
                    continue
                await app.producer.send(settings.topics[0], _message_key(event), json.dumps(event).encode(), None, None, None)
            for first in range(0, len(spans), OTLP_BATCH):
                request = to_request(spans[first : first + OTLP_BATCH]).SerializeToString()
                await app.producer.send(settings.otlp_spans_topics[0], None, request, None, None, None)
            progress["sent"] = min(len(events), start + batch)
            await asyncio.sleep(batch / rate)
        await app.producer.flush()
        progress["done"] = True

    @app.agent(alerts_topic, name="aifm.demo.view")
    async def view(stream):
        async for value in stream:
            finding = _finding.decode(value)
            seen.append(finding)
            counts[finding.signal if finding.type == "finding" else "annotation"] += 1
            print(format_finding(finding), file=out, flush=True)
            yield None

    @app.timer(5.0)
    async def status() -> None:
        metrics = app.metrics
        processed = sum(metrics.events.values())
        rejected = sum(metrics.rejected.values())
        line = ", ".join(f"{signal} {n}" for signal, n in sorted(counts.items())) or "none yet"
        print(f"[status] sent {progress['sent']:,}/{len(events):,}  processed {processed:,.0f}  rejected {rejected:,.0f}  findings: {line}", file=out, flush=True)
        if progress["done"] and processed >= len(events) and not progress.get("scored"):
            await asyncio.sleep(2.0)  # the last findings are on their way to the view
            progress["scored"] = True
            print(score(seen, incidents).format(), file=out, flush=True)
            print(f"metrics: http://{settings.metrics_bind}:{settings.metrics_port}/metrics", file=out, flush=True)
            if exit_when_done:
                os.kill(os.getpid(), signal.SIGTERM)
            else:
                print("the worker keeps running; Ctrl-C stops it and the broker", file=out, flush=True)


def run_demo(
    *, bootstrap_servers: str | None, events: int, rate: float, seed: int, metrics_port: int, exit_when_done: bool, out, otel: bool = False
) -> int:
    simulated, planned = simulate(events, seed=seed)
    incidents = [LabelledIncident(p.signal, p.key, p.start, p.end) for p in planned]
    broker = None
    if bootstrap_servers is None:
        broker = EmbeddedBroker().start()
        bootstrap_servers = broker.bootstrap_servers
        print(f"embedded broker (Tansu, memory storage) on {bootstrap_servers}, pid {broker.process.pid}", file=out, flush=True)
    try:
        port = metrics_port if metrics_port else free_port()
        settings = WorkerSettings(
            bootstrap_servers=bootstrap_servers,
            group_id=f"aifm-demo-{uuid.uuid4().hex[:6]}",
            metrics_port=port,
            boundaries=str(write_boundaries(tempfile.mkdtemp(prefix="aifm-demo-"))),
        ).validate()
        how = f"model and tool calls as OTLP spans on {settings.otlp_spans_topics[0]}, the rest as JSON" if otel else "as JSON events"
        print(f"streaming {len(simulated):,} simulated events at {rate:,.0f}/s ({how}) with {len(incidents)} injected incidents; findings below", file=out, flush=True)
        run_worker(
            settings,
            loglevel="warn",
            app_hook=lambda app: install(app, events=simulated, incidents=incidents, rate=rate, exit_when_done=exit_when_done, out=out, otel=otel),
        )
    finally:
        if broker is not None:
            broker.stop()
            print("embedded broker stopped", file=out, flush=True)
    return 0

"""The stream worker against the real embedded broker (Tansu): no broker mocks in this tier."""

from __future__ import annotations

import json
import os
import random
import re
import signal
import time

import pytest
import yaml
from conftest import REPO, encode, model_call
from kafka_helpers import Names, WorkerProcess, produce, read_topic

from monitor.pipeline import Pipeline
from monitor.signals.tool_scope import Boundaries
from monitor.thresholds import load_thresholds
from monitor.worker.broker import EmbeddedBroker, free_port

pytestmark = pytest.mark.timeout(240)


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    log = tmp_path_factory.mktemp("broker") / "tansu.log"
    with EmbeddedBroker(log_path=log) as running:
        yield running


@pytest.fixture
def workers(tmp_path):
    started: list[WorkerProcess] = []

    def start(bootstrap: str, names: Names, **kwargs) -> WorkerProcess:
        worker = WorkerProcess(bootstrap, names, tmp_path, **kwargs).start()
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop(signal.SIGKILL)


@pytest.fixture
def small_records(tmp_path):
    """A thresholds file with a 4 KiB record limit, so 'too large' is cheap to provoke."""
    document = yaml.safe_load((REPO / "alerts" / "thresholds.yaml").read_text())
    document["decode"]["max_record_bytes"] = 4096
    path = tmp_path / "thresholds.yaml"
    path.write_text(yaml.safe_dump(document))
    return {"AIFM_THRESHOLDS": str(path)}


def refusal_events(n: int, seed: int = 1, change_at: int = 3000) -> list[dict]:
    rng = random.Random(seed)
    return [
        model_call(i, output_text="I'm sorry, but I can't help with that." if rng.random() < (0.05 if i < change_at else 0.12) else "Sure, here it is.")
        for i in range(n)
    ]


def test_malformed_input_goes_to_the_dead_letter_topic_and_the_worker_keeps_running(broker, workers, small_records):
    names = Names()
    good = [encode(model_call(i)) for i in range(5)]
    bad = [
        (b"{not json", "invalid_json"),
        (b"\xff\xfe\xfd", "not_utf8"),
        (json.dumps({"kind": "model_call", "model": 42}).encode(), "schema"),
        (json.dumps({"kind": "tool_call", "tool": "search"}).encode(), "missing_field"),
        (None, "empty"),
        (json.dumps(model_call(99, output_text="x" * 5000)).encode(), "too_large"),
    ]
    batch = json.dumps([model_call(100), {"kind": "telemetry"}, model_call(101)]).encode()
    records = [(b"gpt-4o", value) for value in good] + [(b"gpt-4o", value, [("traceparent", b"00-abc-01")]) for value, _ in bad] + [(b"gpt-4o", batch)]
    worker = workers(broker.bootstrap_servers, names, extra_env=small_records)
    worker.wait_ready()
    produce(broker.bootstrap_servers, names.events, records)
    worker.wait_metric("aifm_events_total", 7)
    dead = read_topic(broker.bootstrap_servers, names.dlq, at_least=7)
    reasons = sorted(dict(r.headers)["aifm.reason"].decode() for r in dead)
    assert reasons == sorted([reason for _, reason in bad] + ["unknown_kind"])
    by_reason = {dict(r.headers)["aifm.reason"].decode(): r for r in dead}
    assert by_reason["invalid_json"].value == b"{not json"
    assert by_reason["not_utf8"].value == b"\xff\xfe\xfd"
    assert json.loads(by_reason["unknown_kind"].value) == {"kind": "telemetry"}
    assert dict(by_reason["unknown_kind"].headers)["aifm.batch_index"] == b"1"
    headers = dict(by_reason["schema"].headers)
    assert headers["aifm.source.topic"] == names.events.encode() and int(headers["aifm.source.offset"]) >= 0
    assert headers["traceparent"] == b"00-abc-01"  # the record's own headers are kept
    for reason in ("invalid_json", "not_utf8", "schema", "missing_field", "empty", "too_large", "unknown_kind"):
        assert worker.metric("aifm_events_rejected_total", reason=reason) == 1, reason
    assert worker.metric("aifm_events_total", kind="model_call") == 7
    assert worker.process.poll() is None
    produce(broker.bootstrap_servers, names.events, [(b"gpt-4o", encode(model_call(200)))])
    worker.wait_metric("aifm_events_total", 8)


def test_plain_faust_runs_the_same_worker_configured_by_environment_only(broker, workers):
    names = Names()
    worker = workers(broker.bootstrap_servers, names, via_faust=True)
    worker.wait_ready()
    produce(broker.bootstrap_servers, names.events, [(b"gpt-4o", encode(e)) for e in refusal_events(4500)] + [(b"gpt-4o", b"{not json")])
    worker.wait_metric("aifm_events_total", 4500)
    assert worker.wait_metric("aifm_events_rejected_total", 1, reason="invalid_json") == 1
    assert [record.value for record in read_topic(broker.bootstrap_servers, names.dlq, at_least=1)] == [b"{not json"]
    alerts = read_topic(broker.bootstrap_servers, names.alerts, at_least=1)
    assert {json.loads(record.value)["alert"] for record in alerts} == {"AIFMRefusalRateHigh"}
    status, seconds = worker.stop(signal.SIGTERM)
    assert status == 0 and seconds < 10.0, worker.log()[-2000:]
    assert "state snapshotted; shutting down" in worker.log()


def test_findings_reach_the_alerts_topic_keyed_by_alert_id(broker, workers):
    names = Names()
    worker = workers(broker.bootstrap_servers, names)
    worker.wait_ready()
    produce(broker.bootstrap_servers, names.events, [(b"gpt-4o", encode(e)) for e in refusal_events(4500)])
    worker.wait_metric("aifm_events_total", 4500)
    alerts = read_topic(broker.bootstrap_servers, names.alerts, at_least=1)
    assert alerts, worker.log()[-2000:]
    for record in alerts:
        finding = json.loads(record.value)
        assert record.key.decode() == finding["alert_id"]
    assert {json.loads(r.value)["alert"] for r in alerts} == {"AIFMRefusalRateHigh"}
    assert worker.metric("aifm_findings_total", signal="refusal", severity="warning", model="gpt-4o") == len(alerts)
    assert worker.wait_metric("aifm_detector_threshold", 9.0, timeout=15, signal="refusal", detector="rate", model="gpt-4o") == 9.0


def test_sigterm_stops_cleanly_within_10_s_and_a_restart_resumes_from_the_snapshot(broker, workers):
    names = Names()
    events = refusal_events(2000)
    worker = workers(broker.bootstrap_servers, names)
    worker.wait_ready()
    produce(broker.bootstrap_servers, names.events, [(b"gpt-4o", encode(e)) for e in events])
    worker.wait_metric("aifm_events_total", 2000)
    status, seconds = worker.stop(signal.SIGTERM)
    assert status == 0 and seconds < 10.0, worker.log()[-2000:]
    again = workers(broker.bootstrap_servers, names, label="restarted")
    again.wait_ready()
    assert again.wait_metric("aifm_state_restores_total", 1, result="restored") >= 1
    produce(broker.bootstrap_servers, names.events, [(b"gpt-4o", encode(model_call(5000)))])
    again.wait_metric("aifm_events_total", 1)
    time.sleep(1.5)
    assert again.metric("aifm_events_total") == 1  # nothing before the restart is processed again


def test_sigkill_mid_stream_then_restart_accounts_for_every_event(broker, workers, thresholds):
    names = Names()
    events = refusal_events(6000, seed=4)
    expected = Pipeline(thresholds, Boundaries())
    expected_ids = {f.alert_id for e in events for f in expected.process_record(encode(e)).findings}
    assert expected_ids
    worker = workers(broker.bootstrap_servers, names)
    worker.wait_ready()
    produce(broker.bootstrap_servers, names.events, [(b"gpt-4o", encode(e)) for e in events])
    worker.wait_metric("aifm_events_total", 1500)
    worker.stop(signal.SIGKILL)
    again = workers(broker.bootstrap_servers, names, label="restarted")
    again.wait_ready()
    deadline = time.monotonic() + 60
    drained = False
    while time.monotonic() < deadline and not drained:
        done = again.metric("aifm_events_total") + again.metric("aifm_records_skipped_total")
        drained = again.metric("aifm_consumer_lag_messages") == 0 and done > 0
        time.sleep(0.5)
    assert drained, again.log()[-2000:]
    alerts = read_topic(broker.bootstrap_servers, names.alerts, at_least=1)
    assert {json.loads(r.value)["alert_id"] for r in alerts} == expected_ids


def test_a_second_consumer_group_keeps_its_own_state_and_processes_the_whole_topic(broker, workers):
    names = Names()
    produce(broker.bootstrap_servers, names.events, [(b"gpt-4o", encode(model_call(i))) for i in range(300)])
    first = workers(broker.bootstrap_servers, names)
    first.wait_metric("aifm_events_total", 300)
    assert first.stop(signal.SIGTERM)[0] == 0  # its final snapshots are written
    other = Names()
    other.events = names.events  # the same source topic, read by another group (another deployment, or a reprocessing)
    second = workers(broker.bootstrap_servers, other, label="second-group")
    assert second.wait_metric("aifm_events_total", 300) == 300, second.log()[-2000:]
    assert second.metric("aifm_records_skipped_total") == 0
    assert second.metric("aifm_state_restores_total", result="restored") == 0


def test_broker_unavailable_at_start_is_retried_with_backoff_and_reported(tmp_path, workers):
    port = free_port()
    names = Names()
    worker = workers(f"127.0.0.1:{port}", names)
    worker.wait_for_log(r"unreachable .*retrying in 1\.0 s", timeout=30)
    assert worker.metric("aifm_broker_up") == 0
    assert worker.metric("aifm_broker_errors_total") >= 2
    with EmbeddedBroker(port, log_path=tmp_path / "late-broker.log"):
        worker.wait_ready(timeout=90)
        assert worker.wait_metric("aifm_broker_up", 1) == 1
        status, seconds = worker.stop(signal.SIGTERM)
        assert status == 0 and seconds < 10.0


def test_sigterm_still_ends_the_worker_within_10_s_when_the_broker_has_gone_away(tmp_path, workers):
    names = Names()
    with EmbeddedBroker(log_path=tmp_path / "vanishing-broker.log") as vanishing:
        worker = workers(vanishing.bootstrap_servers, names)
        worker.wait_ready()
        produce(vanishing.bootstrap_servers, names.events, [(b"gpt-4o", encode(model_call(i))) for i in range(100)])
        worker.wait_metric("aifm_events_total", 100)
    status, seconds = worker.stop(signal.SIGTERM)
    assert seconds < 10.0, worker.log()[-2000:]
    assert status == 0


def test_broker_restarted_mid_run_is_reported_and_the_worker_carries_on(tmp_path, workers):
    names = Names()
    port = free_port()
    broker = EmbeddedBroker(port, log_path=tmp_path / "restarted-broker.log").start()
    try:
        worker = workers(broker.bootstrap_servers, names)
        worker.wait_ready()
        produce(broker.bootstrap_servers, names.events, [(b"gpt-4o", encode(model_call(i))) for i in range(50)])
        worker.wait_metric("aifm_events_total", 50)
        broker.stop()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and worker.metric("aifm_broker_up") != 0:
            time.sleep(0.5)
        assert worker.metric("aifm_broker_up") == 0
        assert worker.metric("aifm_broker_errors_total") >= 1
        assert "unreachable" in worker.log()
        assert worker.process.poll() is None
        # The embedded broker keeps topics in memory: a restarted one starts empty, as a
        # replaced cluster would. The worker must reconnect and consume what comes next.
        broker = EmbeddedBroker(port, log_path=tmp_path / "restarted-broker-2.log").start()
        produce(broker.bootstrap_servers, names.events, [(b"gpt-4o", encode(model_call(100 + i))) for i in range(20)])
        worker.wait_metric("aifm_broker_up", 1, timeout=30)
        worker.wait_metric("aifm_events_total", 70, timeout=120)
    finally:
        broker.stop()


def test_a_state_topic_whose_partitions_do_not_match_its_source_is_refused_at_start(broker, workers):
    import asyncio

    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    names = Names()

    async def create() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=broker.bootstrap_servers)
        await admin.start()
        try:
            await admin.create_topics([NewTopic(names.events, 4, 1), NewTopic(f"{names.events}.aifm-state.{names.group}", 2, 1)])
        finally:
            await admin.close()

    asyncio.run(create())
    worker = workers(broker.bootstrap_servers, names)
    worker.process.wait(60)
    assert worker.process.returncode != 0
    assert f"topic '{names.events}.aifm-state.{names.group}' has 2 partitions but its source '{names.events}' has 4" in worker.log()


def test_two_workers_in_one_group_split_the_partitions_and_process_each_event_once(broker, workers):
    names = Names()
    first = workers(broker.bootstrap_servers, names, label="first")
    first.wait_ready()
    second = workers(broker.bootstrap_servers, names, label="second")
    second.wait_ready()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        split = (first.metric("aifm_assigned_partitions"), second.metric("aifm_assigned_partitions"))
        if split[0] >= 1 and split[1] >= 1 and sum(split) == 12:
            break
        time.sleep(0.5)
    assert sum(split) == 12 and min(split) >= 1, split  # 4 partitions each of the JSON topic and the two OTLP topics
    models = ["gpt-4o", "claude", "llama", "mistral", "gemini", "qwen", "phi", "command"]
    records = [(m.encode(), encode(model_call(i, model=m, event_id=f"{m}-{i}"))) for i in range(300) for m in models]
    produce(broker.bootstrap_servers, names.events, records)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and first.metric("aifm_events_total") + second.metric("aifm_events_total") < len(records):
        time.sleep(0.5)
    time.sleep(1.5)
    assert first.metric("aifm_events_total") + second.metric("aifm_events_total") == len(records)


def test_the_demo_runs_end_to_end_and_stops_everything_it_started():
    import subprocess

    from kafka_helpers import AIFM

    result = subprocess.run(
        [AIFM, "demo", "--events", "12000", "--rate", "4000", "--metrics-port", "0", "--exit-when-done"],
        capture_output=True, text=True, timeout=180,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    pid = int(re.search(r"embedded broker \(Tansu, memory storage\) on 127\.0\.0\.1:\d+, pid (\d+)", out).group(1))
    assert re.search(r"\[status\] sent ([\d,]+)/\1  processed \1 ", out), out[-2000:]  # everything sent was processed
    assert "labelled incidents detected:" in out and "embedded broker stopped" in out
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_replay_reads_history_straight_from_kafka_without_joining_a_group(broker, tmp_path, capsys):
    from monitor.cli import main

    names = Names()
    events = refusal_events(4500, seed=1)
    produce(broker.bootstrap_servers, names.events, [(b"gpt-4o", encode(e)) for e in events] + [(b"gpt-4o", b"{broken")])
    out = tmp_path / "findings.jsonl"
    # Compared with the pipeline on the same events below, which embeds nothing: the refusal wave would also be a content drift.
    assert main(["replay", "--from-kafka", names.events, "--bootstrap-servers", broker.bootstrap_servers, "--out", str(out), "--embed", "off"]) == 0
    printed = capsys.readouterr().out
    assert "replayed 4,500 events" in printed and "rejected 1 records: invalid_json 1" in printed
    expected = Pipeline(load_thresholds(), Boundaries())
    expected_ids = [f.alert_id for e in events for f in expected.process_record(encode(e)).findings]
    assert [json.loads(line)["alert_id"] for line in out.read_text().splitlines()] == expected_ids != []
    rejects = [json.loads(line) for line in (tmp_path / "findings.jsonl.rejects.jsonl").read_text().splitlines()]
    assert rejects[0]["source"].startswith(f"kafka:{names.events}[") and rejects[0]["record"] == "{broken"
    # from an offset: only what follows it
    assert main(["replay", "--from-kafka", names.events, "--bootstrap-servers", broker.bootstrap_servers, "--start-offset", "4000"]) == 0
    assert "replayed 500 events" in capsys.readouterr().out


def test_tune_reads_history_straight_from_kafka(broker, tmp_path, capsys):
    from monitor.cli import main

    names = Names()
    produce(broker.bootstrap_servers, names.events, [(b"gpt-4o", encode(e)) for e in refusal_events(4500, seed=2)])
    out = tmp_path / "thresholds.yaml"
    code = main(["tune", "--from-kafka", names.events, "--bootstrap-servers", broker.bootstrap_servers, "--false-alarms-per-day", "50", "--signals", "refusal", "--out", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "replayed 4,500 events" in printed and "calibrated on history assumed clean" in printed
    assert "# aifm tune " in out.read_text() and load_thresholds(out).signals["refusal"].detector.method == "bernoulli_cusum"


def test_a_single_snapshot_record_is_found_although_the_broker_understates_end_offsets(broker):
    import asyncio

    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    from monitor.worker.kafka import read_snapshots
    from monitor.worker.settings import WorkerSettings
    from monitor.worker.snapshot_records import StoredSnapshot, snapshot_records

    names = Names()
    settings = WorkerSettings(bootstrap_servers=broker.bootstrap_servers, topics=[names.events])

    async def create() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=broker.bootstrap_servers)
        await admin.start()
        try:
            await admin.create_topics([NewTopic(settings.state_topic(names.events), 1, 1)])
        finally:
            await admin.close()

    asyncio.run(create())
    produce(broker.bootstrap_servers, settings.state_topic(names.events), snapshot_records(names.events, 0, 1, 7, b"only-snapshot"))
    assert asyncio.run(read_snapshots(settings, [(names.events, 0)])) == {(names.events, 0): StoredSnapshot(b"only-snapshot", 1, 7)}


def test_a_record_that_once_crashed_the_agent_costs_only_itself(broker, workers):
    """150 good records and one nested 5,000 deep: every good one processed, the deep one a dead letter, none acked unprocessed."""
    names = Names()
    worker = workers(broker.bootstrap_servers, names)
    worker.wait_ready()
    deep = b'{"kind": "tool_call", "tool": "t", "status": "ok", "result": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    records = [(b"gpt-4o", encode(model_call(i))) for i in range(100)] + [(b"gpt-4o", deep)] + [(b"gpt-4o", encode(model_call(i))) for i in range(100, 150)]
    produce(broker.bootstrap_servers, names.events, records)
    worker.wait_metric("aifm_events_total", 150)
    (dead,) = read_topic(broker.bootstrap_servers, names.dlq, at_least=1)
    assert dead.value == deep and dict(dead.headers)["aifm.reason"] == b"schema"
    assert worker.metric("aifm_events_total") == 150


def _state_of_each_partition(bootstrap: str, names: Names, thresholds, partitions: int) -> dict[int, Pipeline]:
    """Each source partition's detector state as its latest snapshot on the state topic holds it."""
    import asyncio

    from monitor.worker.kafka import read_state_records
    from monitor.worker.settings import WorkerSettings
    from monitor.worker.snapshot_records import assemble

    settings = WorkerSettings(bootstrap_servers=bootstrap, topics=[names.events], group_id=names.group)
    records = asyncio.run(read_state_records(settings, [(names.events, p) for p in range(partitions)]))
    state = {}
    for (_, partition), latest in records.items():
        stored = assemble(names.events, partition, latest)
        pipeline = Pipeline(thresholds, Boundaries())
        assert stored is not None and stored.problem is None and pipeline.restore(stored.data)
        state[partition] = pipeline
    return state


def test_three_sigkills_mid_stream_lose_nothing_from_detector_state(broker, workers, thresholds):
    """After three SIGKILLs and a restart, each partition's state counts exactly the events and rejects on it."""
    names = Names()
    rng = random.Random(11)
    keys = [f"model-{i}".encode() for i in range(8)]
    records = []
    for i in range(30_000):
        value = b"{broken" if rng.random() < 0.03 else encode(model_call(i, model=f"model-{i % 8}"))
        records.append((keys[i % 8], value))
    produce(broker.bootstrap_servers, names.events, records)
    for run in range(3):
        worker = workers(broker.bootstrap_servers, names, label=f"killed-{run}")
        worker.wait_ready()
        worker.wait_metric("aifm_events_total", 2_000, timeout=120)
        worker.stop(signal.SIGKILL)
    last = workers(broker.bootstrap_servers, names, label="last")
    last.wait_ready()
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if last.metric("aifm_consumer_lag_messages") == 0 and last.metric("aifm_assigned_partitions") >= 4:  # events, plus the OTLP topics
            break
        time.sleep(0.5)
    time.sleep(2.0)
    status, _ = last.stop(signal.SIGTERM)
    assert status == 0, last.log()[-2000:]

    offline = Pipeline(thresholds, Boundaries())
    expected: dict[int, tuple[int, int]] = {}
    for record in read_topic(broker.bootstrap_servers, names.events, at_least=len(records)):
        events, rejects = offline.decode(record.value)
        seen, rejected = expected.get(record.partition, (0, 0))
        expected[record.partition] = (seen + len(events), rejected + len(rejects))
    state = _state_of_each_partition(broker.bootstrap_servers, names, thresholds, 4)
    counted = {p: (sum(s.events_by_kind.values()), sum(s.rejects_by_reason.values())) for p, s in state.items()}
    assert counted == expected


def test_an_oversized_record_becomes_a_dead_letter_that_fits_and_the_records_after_it_are_processed(broker, workers):
    import hashlib

    names = Names()
    worker = workers(broker.bootstrap_servers, names)
    worker.wait_ready()
    oversized = b'{"kind": "model_call", "model": "m", "output_text": "' + b"x" * 1_000_100 + b'"}'
    records = [(b"gpt-4o", encode(model_call(0))), (b"gpt-4o", oversized)] + [(b"gpt-4o", encode(model_call(i))) for i in range(1, 51)]
    produce(broker.bootstrap_servers, names.events, records)
    worker.wait_metric("aifm_events_total", 51)
    (dead,) = read_topic(broker.bootstrap_servers, names.dlq, at_least=1)
    headers = dict(dead.headers)
    assert headers["aifm.reason"] == b"too_large" and oversized.startswith(dead.value) and len(dead.value) < len(oversized)
    assert headers["aifm.sha256"] == hashlib.sha256(oversized).hexdigest().encode()
    assert dead.key == f"{names.events}:{headers['aifm.source.partition'].decode()}:1".encode()
    assert headers["aifm.source.key"] == b"gpt-4o"
    assert worker.process.poll() is None and "Traceback" not in worker.log()


def test_a_corrupt_or_crafted_snapshot_is_discarded_and_cannot_run_code(broker, workers, tmp_path):
    import pickle

    from monitor.worker.settings import WorkerSettings
    from monitor.worker.snapshot_records import manifest_key

    names = Names()
    witness = tmp_path / "executed-at-restore"

    class Exploit:
        def __reduce__(self):
            return (open, (str(witness), "w"))

    worker = workers(broker.bootstrap_servers, names)  # creates the topics, then goes
    worker.wait_ready()
    worker.stop(signal.SIGTERM)
    state_topic = WorkerSettings(bootstrap_servers=broker.bootstrap_servers, topics=[names.events], group_id=names.group).state_topic(names.events)
    produce(broker.bootstrap_servers, state_topic, [(manifest_key(names.events, 0), pickle.dumps(Exploit()))], partition=0)
    produce(broker.bootstrap_servers, state_topic, [(manifest_key(names.events, 1), b"\x00garbage")], partition=1)
    again = workers(broker.bootstrap_servers, names, label="after-corruption")
    again.wait_ready()
    assert again.wait_metric("aifm_state_restores_total", 2, result="corrupt") == 2
    produce(broker.bootstrap_servers, names.events, [(b"gpt-4o", encode(model_call(i))) for i in range(20)])
    again.wait_metric("aifm_events_total", 20)
    assert not witness.exists() and "unreadable" in again.log()


def test_ctrl_c_stops_the_demo_and_its_broker_within_5_s_with_a_short_message():
    import subprocess

    from kafka_helpers import AIFM

    demo = subprocess.Popen(
        [AIFM, "demo", "--events", "200000", "--rate", "2000", "--metrics-port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,  # a terminal's foreground process group
    )
    try:
        lines = []
        while not any(b"[status]" in line for line in lines):
            line = demo.stdout.readline()
            assert line, b"".join(lines).decode()[-2000:]
            lines.append(line)
        pid = int(re.search(rb"pid (\d+)", b"".join(lines)).group(1))
        started = time.monotonic()
        os.killpg(demo.pid, signal.SIGINT)  # what Ctrl-C sends: the whole foreground group
        rest, _ = demo.communicate(timeout=15)
        seconds = time.monotonic() - started
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGKILL)
    after = rest.decode(errors="replace").splitlines()
    assert demo.returncode == 0 and seconds < 5.0, (seconds, after[-20:])
    assert len(after) <= 4 and not any("Error" in line or "Traceback" in line for line in after), after
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_a_snapshot_of_several_megabytes_is_checkpointed_in_chunks_and_restored(broker, workers):
    """20,000 sessions on one partition: a snapshot far over a Kafka message, yet every checkpoint succeeds."""
    import hashlib

    from conftest import tool_call

    names = Names()
    worker = workers(broker.bootstrap_servers, names)
    worker.wait_ready()
    batches = []
    for first in range(0, 20_000, 100):
        calls = [tool_call(i, session_id=hashlib.sha256(str(i).encode()).hexdigest(), args_hash=str(i), ts=1_700_000_000) for i in range(first, first + 100)]
        batches.append((b"support-bot", json.dumps(calls).encode()))
    produce(broker.bootstrap_servers, names.events, batches)
    worker.wait_metric("aifm_events_total", 20_000, timeout=120)
    size = worker.wait_metric("aifm_state_snapshot_bytes", 1_000_000, timeout=30)
    assert worker.metric("aifm_state_checkpoint_failures_total") == 0 and size > 1_000_000
    status, _ = worker.stop(signal.SIGTERM)
    assert status == 0
    again = workers(broker.bootstrap_servers, names, label="restarted")
    again.wait_ready()
    assert again.wait_metric("aifm_state_restores_total", 1, result="restored") >= 1
    assert again.metric("aifm_state_restores_total", result="corrupt") == 0


def test_a_worker_that_embeds_text_only_traffic_finds_a_language_shift_and_exports_what_it_embedded(broker, workers, tmp_path):
    pytest.importorskip("tokenizers")
    import sys

    sys.path.insert(0, str(REPO / "bench"))
    from text_history import text_history

    history = tmp_path / "history.jsonl"
    labels = text_history(history, events=6000, seconds=6000, shift_start=0.7, shift_minutes=20, shift_share=0.6, pool=400)
    names = Names()
    worker = workers(broker.bootstrap_servers, names, extra_env={"AIFM_EMBEDDINGS": "sample", "AIFM_EMBEDDING_SHARE": "0.9"})
    worker.wait_ready()
    lines = history.read_bytes().splitlines()
    produce(broker.bootstrap_servers, names.events, [(json.loads(line).get("model", "tool").encode(), line) for line in lines])
    worker.wait_metric("aifm_events_total", len(lines), timeout=120)
    alerts = [json.loads(r.value) for r in read_topic(broker.bootstrap_servers, names.alerts, at_least=1)]
    shift = labels[0]
    drift = [a for a in alerts if a["alert"] == "AIFMEmbeddingDrift" and a["key"] == {"model": "gpt-4o"}]
    assert drift and all(shift["start"] <= a["ts"] <= shift["end"] for a in drift), (alerts, worker.log()[-2000:])
    assert not [a for a in alerts if "model" in a["key"] and a["key"]["model"] != "gpt-4o"], "the other models did not move"
    assert worker.metric("aifm_embedding_sampled_fraction", model="gpt-4o") > 0.5
    assert worker.metric("aifm_embedding_step_seconds_total") > 0

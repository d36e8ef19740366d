"""The worker's parts without a broker: settings, per-partition processing, the faust agent, metrics."""

from __future__ import annotations

import hashlib
import json
import math
from bisect import bisect_left

import pytest
from conftest import encode, model_call, tool_call
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, generate_latest

from monitor.build import build_name
from monitor.metrics import _LATENCY_BUCKETS, Metrics, _Buckets
from monitor.worker.processor import MAX_DEAD_LETTER_BYTES, StreamProcessor
from monitor.worker.settings import SettingsError, WorkerSettings, settings_from
from monitor.worker.snapshot_records import CHUNK_BYTES, assemble, manifest_key, snapshot_records


def test_settings_come_from_flags_then_environment_then_defaults():
    env = {"AIFM_BOOTSTRAP_SERVERS": "k1:9092,k2:9092", "AIFM_TOPICS": "a.events, b.events", "AIFM_METRICS_PORT": "9200"}

    class Args:
        group_id = "from-flag"

    settings = settings_from(Args(), env)
    assert settings.bootstrap_servers == "k1:9092,k2:9092"
    assert settings.broker_url == "kafka://k1:9092;kafka://k2:9092"
    assert settings.topics == ["a.events", "b.events"]
    assert (settings.group_id, settings.metrics_port, settings.alerts_topic) == ("from-flag", 9200, "ai.alerts")
    assert settings.state_topic("a.events") == "a.events.aifm-state.from-flag"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"AIFM_BOOTSTRAP_SERVERS": "no-port"}, "bootstrap servers: expected host:port"),
        ({"AIFM_TOPICS": "bad topic!"}, "Kafka topic names use"),
        ({"AIFM_ALERTS_TOPIC": "ai.events"}, "cannot also be source topics"),
        ({"AIFM_METRICS_PORT": "http"}, "expected int"),
        ({"AIFM_METRICS_PORT": "70000"}, "metrics port: must lie in"),
        ({"AIFM_PARTITIONS": "0"}, "partitions: must lie in"),
        ({"AIFM_TOPICS": "e" * 200, "AIFM_GROUP_ID": "g" * 60}, "over Kafka's 249 characters; shorten the group id"),
        ({"AIFM_SECURITY_PROTOCOL": "SASL_SSL"}, "SASL_USERNAME and AIFM_SASL_PASSWORD are required"),
        ({"AIFM_SECURITY_PROTOCOL": "TLS"}, "security protocol: one of"),
        ({"AIFM_SSL_CAFILE": "/nonexistent/ca.pem"}, "ssl cafile: /nonexistent/ca.pem is not a readable file"),
        ({"AIFM_BOUNDARIES": "/nonexistent"}, "boundaries: /nonexistent is not a directory"),
    ],
)
def test_invalid_settings_fail_at_start_with_a_clear_message(env, message):
    with pytest.raises(SettingsError, match=message):
        settings_from(None, env)


def test_cli_worker_with_invalid_settings_exits_2(capsys):
    from monitor.cli import main

    assert main(["worker", "--bootstrap-servers", "nonsense"]) == 2
    assert "bootstrap servers" in capsys.readouterr().err


@pytest.fixture
def processor(thresholds, sample_boundaries):
    return StreamProcessor(thresholds, sample_boundaries, Metrics(CollectorRegistry()))


def test_rejects_become_dead_letters_with_their_own_bytes_and_provenance(processor):
    processor.assign("ai.events", 2)
    batch = json.dumps([model_call(0), {"kind": "nope"}]).encode()
    output = processor.handle("ai.events", 2, 17, batch)
    ((key, value, headers),) = output.dead_letters
    headers = dict(headers)
    assert key == b"ai.events:2:17:1", "a deterministic key: a dead letter written twice (at-least-once) collapses"
    assert json.loads(value) == {"kind": "nope"}
    assert (headers["aifm.reason"], headers["aifm.batch_index"]) == (b"unknown_kind", b"1")
    assert (headers["aifm.source.topic"], headers["aifm.source.partition"], headers["aifm.source.offset"]) == (b"ai.events", b"2", b"17")
    whole = processor.handle("ai.events", 2, 18, b"{broken")
    assert whole.dead_letters[0][:2] == (b"ai.events:2:18", b"{broken")


def test_a_batch_of_many_bad_elements_is_one_dead_letter_with_the_count_not_one_per_element(processor):
    processor.assign("ai.events", 0)
    batch = json.dumps([model_call(0)] + [{}] * 5000 + [{"kind": "nope"}]).encode()
    output = processor.handle("ai.events", 0, 3, batch)
    ((key, value, headers),) = output.dead_letters
    headers = dict(headers)
    assert key == b"ai.events:0:3" and value == batch and headers["aifm.rejected_count"] == b"5001" and headers["aifm.reason"] == b"missing_field"
    assert headers["aifm.detail"] == b"5001 elements rejected (missing_field 5000, unknown_kind 1); the whole record is kept"
    assert processor.metrics.rejected["missing_field"] == 5000 and processor.metrics.events["model_call"] == 1


def test_a_restored_partition_skips_what_its_snapshot_already_holds(processor, thresholds, sample_boundaries):
    processor.assign("ai.events", 0)
    for offset in range(50):
        processor.handle("ai.events", 0, offset, encode(tool_call(offset)))
    taken = processor.snapshots()
    assert len(processor.snapshots()) == 1  # not confirmed yet: a failed write is retried
    processor.confirm(taken)
    assert processor.snapshots() == []  # nothing changed since
    (snapshot,) = taken
    restarted = StreamProcessor(thresholds, sample_boundaries, Metrics(CollectorRegistry()))
    assert restarted.assign("ai.events", 0, stored(snapshot)) == "restored"
    assert restarted.handle("ai.events", 0, 49, encode(tool_call(49))).skipped is True
    assert restarted.handle("ai.events", 0, 50, encode(tool_call(50))).skipped is False
    (pipeline,) = restarted.pipelines()
    assert pipeline.events_by_kind["tool_call"] == 51


def test_a_snapshot_taken_under_other_thresholds_is_not_restored(processor, thresholds, sample_boundaries):
    from dataclasses import replace

    processor.assign("ai.events", 0)
    processor.handle("ai.events", 0, 0, encode(tool_call(0)))
    snapshot = processor.revoke("ai.events", 0)
    changed = replace(thresholds, signals={**thresholds.signals, "refusal": replace(thresholds.signals["refusal"], min_samples=7)})
    other = StreamProcessor(changed, sample_boundaries)
    assert other.assign("ai.events", 0, stored(snapshot)) == "discarded"


def stored(taken):
    """A snapshot as the worker reads it back: the latest value of each of its state records."""
    return assemble(taken.topic, taken.partition, dict(taken.records()))


def test_a_snapshot_of_any_size_is_written_in_chunks_that_fit_kafkas_limit_and_read_back_whole(processor, thresholds, sample_boundaries):
    processor.assign("ai.events", 0)
    for offset in range(20_000):  # 20,000 sessions (max_sessions) with random ids: megabytes of state, even compressed
        session = hashlib.sha256(str(offset).encode()).hexdigest()
        processor.handle("ai.events", 0, offset, encode(tool_call(offset, session_id=session, args_hash=session[:16], ts=1_700_000_000)))
    (taken,) = processor.snapshots()
    records = taken.records()
    assert len(taken.data) > CHUNK_BYTES and len(records) > 2
    assert max(len(key) + len(value) for key, value in records) < 1_000_000, "every record fits Kafka's default message limit"
    restarted = StreamProcessor(thresholds, sample_boundaries)
    assert restarted.assign("ai.events", 0, stored(taken)) == "restored"
    assert restarted.pipelines()[0].events_by_kind["tool_call"] == 20_000 and len(restarted.pipelines()[0].sessions) == 20_000
    # the next snapshot goes to the other slot: until its manifest is written the previous one stays whole
    processor.confirm([taken])
    processor.handle("ai.events", 0, 20_000, encode(tool_call(20_000)))
    (following,) = processor.snapshots()
    half_written = dict(records) | dict(following.records()[:-1])  # a crash before the new manifest
    assert assemble("ai.events", 0, half_written).next_offset == 20_000
    assert assemble("ai.events", 0, dict(records) | dict(following.records())).next_offset == 20_001


def test_an_unreadable_snapshot_is_discarded_counted_and_the_partition_starts_fresh(thresholds, sample_boundaries, tmp_path):
    import pickle

    metrics = Metrics(CollectorRegistry())
    witness = tmp_path / "executed"

    class Exploit:
        def __reduce__(self):
            return (open, (str(witness), "w"))

    crafted = [(manifest_key("ai.events", 0), pickle.dumps(Exploit()))]  # a pickle where the manifest belongs
    processor = StreamProcessor(thresholds, sample_boundaries, metrics)
    assert processor.assign("ai.events", 0, assemble("ai.events", 0, dict(crafted))) == "corrupt"
    manifest_with_pickled_state = snapshot_records("ai.events", 1, 1, 5, pickle.dumps({"state": Exploit()}))
    assert processor.assign("ai.events", 1, assemble("ai.events", 1, dict(manifest_with_pickled_state))) == "corrupt"
    good = StreamProcessor(thresholds, sample_boundaries)
    good.assign("ai.events", 2)
    good.handle("ai.events", 2, 0, encode(tool_call(0)))
    (taken,) = good.snapshots()
    flipped = bytearray(taken.data)
    flipped[len(flipped) // 2] ^= 0xFF
    tampered = {key: (bytes(flipped) if key == manifest_key("ai.events", 2) else value) for key, value in taken.records()}
    assert processor.assign("ai.events", 2, assemble("ai.events", 2, tampered)) == "corrupt"
    assert not witness.exists(), "nothing on the state topic can run code"
    assert metrics.restores.labels("ai.events", "corrupt")._value.get() == 3
    assert processor.handle("ai.events", 0, 0, encode(tool_call(0))).skipped is False  # fresh, and processing


def test_a_dead_letter_always_fits_keeping_a_prefix_its_length_and_its_digest(processor):
    processor.assign("ai.events", 0)
    huge = b"[" + b" " * 2_000_000 + b"]"
    (key, value, headers), = processor.handle("ai.events", 0, 9, huge).dead_letters
    headers = dict(headers)
    assert headers["aifm.reason"] == b"too_large" and len(value) == MAX_DEAD_LETTER_BYTES and huge.startswith(value)
    assert headers["aifm.truncated_from_bytes"] == str(len(huge)).encode() and headers["aifm.sha256"] == hashlib.sha256(huge).hexdigest().encode()


def test_metrics_exposition_uses_bounded_labels_and_never_text(processor):
    processor.assign("ai.events", 0)
    processor.handle("ai.events", 0, 0, encode(model_call(0, output_text="I must decline SECRET-TEXT.", input_text="PROMPT-SECRET")))
    processor.handle("ai.events", 0, 1, encode(tool_call(1, status="blocked", tool="refund_order")))
    processor.handle("ai.events", 0, 2, b"not json")
    processor.metrics.refresh_detectors(processor.pipelines())
    text = generate_latest(processor.metrics.registry).decode()
    assert "SECRET" not in text and "m-0" not in text and "t-1" not in text
    assert 'aifm_signal_flagged_events_total{agent="",model="gpt-4o",signal="refusal",tool=""} 1.0' in text
    assert 'aifm_tool_calls_blocked_total{agent="support-bot",tool="refund_order"} 1.0' in text
    assert 'aifm_events_rejected_total{reason="invalid_json"} 1.0' in text
    assert f'aifm_build_info{{build="{build_name()}",version="0.1.0"}} 1.0' in text
    assert 'aifm_detector_threshold{agent="",detector="rate",model="gpt-4o",signal="refusal",tool=""} 9.0' in text


def test_failed_model_calls_are_counted_by_error_class_each_class_from_zero(processor):
    processor.assign("ai.events", 0)
    processor.handle("ai.events", 0, 0, encode(model_call(0, model="gpt-4o")))
    processor.handle("ai.events", 0, 1, encode(model_call(1, model="claude", error_type="429 Too Many Requests: SECRET-QUOTA")))
    processor.handle("ai.events", 0, 2, encode(model_call(2, model="claude", error_type="RateLimitError")))
    processor.handle("ai.events", 0, 3, encode(model_call(3, model="claude", error_type="ReadTimeout")))
    text = generate_latest(processor.metrics.registry).decode()
    assert "SECRET" not in text and "RateLimitError" not in text, "the class is the label, never the provider's text"
    assert 'aifm_model_errors_total{error_class="rate_limit",model="claude"} 2.0' in text
    assert 'aifm_model_errors_total{error_class="timeout",model="claude"} 1.0' in text
    assert 'aifm_model_errors_total{error_class="rate_limit",model="gpt-4o"} 0.0' in text, "a model's first rate limit is a rise rate() can see"


@pytest.mark.timeout(60)
def test_the_faust_agent_routes_findings_and_dead_letters(thresholds, monkeypatch):
    import asyncio

    from monitor.worker.app import create_app

    app = create_app(WorkerSettings(group_id="unit-test", metrics_port=0, otlp_spans_topics=[], otlp_logs_topics=[]))
    app.finalize()
    app.conf.store = "memory://"
    sent: list[tuple[str, bytes | None, bytes]] = []

    async def fake_send(self, key=None, value=None, **kwargs):
        sent.append((self.get_topic_name(), key, value))

    monkeypatch.setattr(type(app.topic("x")), "send", fake_send)
    agent = app.agents["aifm.monitor"]

    async def run():
        async with agent.test_context() as test_agent:
            for key, payload in [(b"gpt-4o", encode(model_call(0))), (b"gpt-4o", b"{oops")]:
                event = await test_agent.put(payload, key=key, partition=0)
                await asyncio.sleep(0)
                del event

    app.processor.assign("ai.events", 0)  # what the assignment signal does before records flow
    asyncio.run(run())
    assert [(topic, value) for topic, _, value in sent] == [("ai.events.dlq", b"{oops")]


def test_only_the_version_now_serving_is_exported_per_model(processor):
    processor.assign("ai.events", 0)
    processor.handle("ai.events", 0, 0, encode(model_call(0, model_version="v1")))
    processor.metrics.refresh_detectors(processor.pipelines())
    processor.handle("ai.events", 0, 1, encode(model_call(1, model_version="v2")))
    processor.metrics.refresh_detectors(processor.pipelines())
    text = generate_latest(processor.metrics.registry).decode()
    assert 'aifm_model_version_info{model="gpt-4o",model_version="v2"} 1.0' in text
    assert 'model_version="v1"} 1.0' not in text.split("aifm_model_version_info", 1)[1].split("# HELP", 1)[0]


def test_a_metrics_port_in_use_names_the_setting_and_the_port(capsys):
    import socket

    from monitor.cli import main

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["worker", "--metrics-port", str(port), "--bootstrap-servers", "127.0.0.1:1"]) == 2
    error = capsys.readouterr().err
    assert f"metrics port: cannot serve /metrics on 127.0.0.1:{port}" in error and "--metrics-port" in error


def test_the_label_cap_holds_per_worker_across_partitions_and_per_family_across_combinations(thresholds, sample_boundaries):
    import re

    processor = StreamProcessor(thresholds, sample_boundaries, Metrics(CollectorRegistry()))
    for partition in range(4):  # each partition admits its own 200 keys: together 600 distinct models
        processor.assign("ai.events", partition)
        for i in range(150):
            processor.handle("ai.events", partition, i, encode(model_call(i, model=f"m{partition}-{i}")))
    text = generate_latest(processor.metrics.registry).decode()
    models = set(re.findall(r'aifm_signal_events_total\{agent="",model="([^"]+)",signal="refusal"', text))
    assert len(models) == 201 and "other" in models  # 200 of their own, the rest folded
    assert processor.metrics.cap.folded == 400 and "aifm_metric_labels_folded_total 400.0" in text

    combos = StreamProcessor(thresholds, sample_boundaries, Metrics(CollectorRegistry()))
    combos.assign("ai.events", 0)
    for i in range(3600):  # 60 agents x 60 tools: every value within the per-label cap, the combinations not
        combos.handle("ai.events", 0, i, encode(tool_call(i, agent=f"a{i // 60}", tool=f"t{i % 60}")))
    text = generate_latest(combos.metrics.registry).decode()
    series = set(re.findall(r'aifm_signal_events_total\{agent="([^"]+)",model="",signal="tool_failure",tool="([^"]+)"', text))
    assert len(series) == 2001 and ("other", "other") in series


def test_feedback_is_counted_under_its_model_or_under_its_agent_when_it_names_no_model(processor):
    processor.assign("ai.events", 0)
    feedback = {"kind": "feedback", "ts": 1_700_000_000, "caller": "svc", "agent": "support-bot", "target_event_id": "m-1", "score": 0.1}
    processor.handle("ai.events", 0, 0, json.dumps([{**feedback, "event_id": "f-1", "model": "gpt-4o"}, {**feedback, "event_id": "f-2"}]).encode())
    text = generate_latest(processor.metrics.registry).decode()
    series = {line.split(" ")[0] for line in text.splitlines() if line.startswith("aifm_signal_flagged_events_total{") and 'signal="feedback"' in line}
    assert series == {
        'aifm_signal_flagged_events_total{agent="",model="gpt-4o",signal="feedback",tool=""}',
        'aifm_signal_flagged_events_total{agent="support-bot",model="",signal="feedback",tool=""}',
    }


@given(values=st.lists(st.one_of(st.floats(), st.sampled_from(_LATENCY_BUCKETS), st.just(math.nan)), max_size=50))
def test_a_latency_histogram_counts_each_value_in_the_first_bucket_whose_bound_is_not_below_it(values):
    buckets = _Buckets(_LATENCY_BUCKETS)
    for value in values:
        buckets.observe(value)
    expected = [0] * (len(_LATENCY_BUCKETS) + 1)
    for value in values:
        expected[bisect_left(_LATENCY_BUCKETS, value)] += 1
    assert buckets.counts == expected and buckets.count == len(values)

"""Embedding drift: the detector, the pipeline signal on precomputed embeddings, and the offline encoder."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from conftest import model_call

from monitor.detectors import EmbeddingDrift, build_detector

DIMS = 16


def vectors(rng, n: int, shifted_share: float = 0.0, topic: int = 0, other: int = 1) -> list[list[float]]:
    base, moved = np.eye(DIMS)[topic], np.eye(DIMS)[other]
    rows = []
    for _ in range(n):
        centre = moved if rng.random() < shifted_share else base
        rows.append((centre + rng.normal(0, 0.2, DIMS)).round(4).tolist())
    return rows


def test_a_30_percent_topic_shift_is_found_within_500_events_and_stable_traffic_stays_quiet():
    rng = np.random.default_rng(5)
    detector = EmbeddingDrift(reference=300, warmup=300)
    stable = vectors(rng, 20_000)
    assert not any(detector.update(v).drift_detected for v in stable)
    shifted = vectors(rng, 500, shifted_share=0.3)
    alarms = [i for i, v in enumerate(shifted) if detector.update(v).drift_detected]
    assert alarms and alarms[0] < 100


def low_dimension_outputs(seed: int, n: int) -> list[list[float]]:
    """Unit vectors of 8 dimensions near one direction: small spaces skew the distances to a centroid the most."""
    rng = np.random.default_rng(seed)
    rows = 0.3 + rng.normal(0, 0.25, (n, 8))
    rows[:, 0] += 0.7
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).round(3).tolist()


def test_false_alarms_do_not_depend_on_the_vector_space_skewing_the_distances():
    # On raw distances these 240,000 stable updates raised 3 false alarms (1.25 per 1e5); on
    # their logarithm none, as on MiniLM's (bench/bench_embedding_drift.py).
    alarms = 0
    for seed in range(3):
        detector = EmbeddingDrift(reference=300, warmup=300)
        alarms += sum(detector.update(v).drift_detected for v in low_dimension_outputs(seed, 80_000))
    assert alarms == 0


def test_a_snapshot_of_raw_distances_keeps_its_centroid_and_learns_the_log_distances_again():
    rng = np.random.default_rng(8)
    detector = EmbeddingDrift(reference=50, warmup=50)
    for v in vectors(rng, 200):
        detector.update(v)
    old_format = detector.state()[:8]  # as written before the log scale: no marker
    restored = EmbeddingDrift(reference=50, warmup=50)
    restored.load_state(old_format)
    assert restored.dimensions == DIMS and restored._centroid is not None, "the reference centroid survives"
    assert restored.warming_up and restored.distance_cusum.reference is None, "the distances' model is learned again"
    for v in vectors(rng, 60):
        restored.update(v)
    assert not restored.warming_up and restored.last_tested == pytest.approx(np.log(restored.last_distance))


def test_after_an_alarm_the_reference_is_learned_again_and_a_segment_keeps_it():
    rng = np.random.default_rng(6)
    detector = EmbeddingDrift(reference=50, warmup=50)
    for v in vectors(rng, 200):
        detector.update(v)
    assert not detector.warming_up
    detector.segment()
    assert not detector.warming_up, "a new model version is measured against the old reference"
    for v in vectors(rng, 300, shifted_share=1.0):
        if detector.update(v).drift_detected:
            break
    assert detector.warming_up and detector.alarm_statistic > detector.threshold


def test_vectors_of_another_length_are_refused_and_zero_vectors_ignored():
    detector = EmbeddingDrift(reference=2, warmup=2)
    detector.update([1.0, 0.0, 0.0])
    assert detector.accepts([0.5, 0.5, 0.0]) and not detector.accepts([1.0, 0.0])
    detector.update([0.0, 0.0, 0.0])
    assert detector.dimensions == 3 and detector.warming_up


def test_a_change_that_ends_is_reported_once_and_a_new_one_after_it_again():
    rng = np.random.default_rng(11)
    a, b, c = (np.eye(DIMS)[i] for i in range(3))

    def outputs(centre, n):
        return [centre + rng.normal(0, 0.2, DIMS) for _ in range(n)]

    stream = outputs(a, 1500) + outputs(b, 1500) + outputs(a, 1500) + outputs(c, 1500)
    detector, alarms, recoveries = EmbeddingDrift(), [], []
    for i, vector in enumerate(stream):
        detector.update(vector)
        if detector.drift_detected:
            alarms.append(i)
        if detector.recovered:
            recoveries.append(i)
    assert [i // 1500 for i in alarms] == [1, 3], "the shift to b and the later one to c; the way back to a is not a finding"
    assert [i // 1500 for i in recoveries] == [2]

    replayed = EmbeddingDrift()
    for vector in stream[:2500]:
        replayed.update(vector)
    restored = EmbeddingDrift()
    restored.load_state(replayed.state())
    after = [i + 2500 for i, vector in enumerate(stream[2500:]) if restored.update(vector).drift_detected or restored.recovered]
    assert after == sorted(i for i in alarms + recoveries if i >= 2500), "the earlier reference survives a snapshot"


def test_the_detector_takes_at_most_max_per_second_vectors_of_event_time_so_false_alarms_per_day_are_bounded():
    detector = EmbeddingDrift(max_per_second=1.0)
    taken = [detector.takes(1_700_000_000 + i / 10) for i in range(1000)]  # 10 outputs per second for 100 s
    assert sum(taken) == 100 and taken[0] and not any(taken[1:10]) and taken[10]
    assert not detector.takes(1_700_000_050.0), "an output late by the reorder window does not feed a slot already passed"
    restored = EmbeddingDrift(max_per_second=1.0)
    restored.load_state(detector.state())
    assert not restored.takes(1_700_000_099.5) and restored.takes(1_700_000_100.0), "the slot survives a snapshot"
    assert all(EmbeddingDrift(max_per_second=0).takes(1.0) for _ in range(3)), "0: every vector"


def test_at_high_traffic_the_pipeline_thins_drift_updates_but_still_finds_a_shift(pipeline):
    rng = np.random.default_rng(7)
    stable, shifted = vectors(rng, 8000), vectors(rng, 2000, shifted_share=0.3)
    findings, skipped = [], 0
    for i, vector in enumerate(stable + shifted):
        event = model_call(0, embedding=vector) | {"event_id": f"m-{i}", "ts": 1_700_000_000 + i / 8}  # 8 calls per second
        result = pipeline.process_record(json.dumps(event).encode())
        findings += result.findings
        skipped += result.results[0].signals["embedding_drift"].get("skipped") == "thinned"
    streams = {(s, d, tuple(k.items())): count for s, d, k, _, count in pipeline.streams()}
    assert streams[("embedding_drift", "centroid", (("model", "gpt-4o"),))] == 10_000 // 8
    assert skipped == 10_000 - 10_000 // 8
    drift = [f for f in findings if f.signal == "embedding_drift" and "model" in f.key]
    assert len(drift) == 1 and int(drift[0].event_id.split("-")[1]) >= 8000


def test_invalid_settings_name_the_setting():
    with pytest.raises(ValueError, match="reference must be an integer >= 2"):
        build_detector("embedding_drift", {"reference": 1})
    with pytest.raises(ValueError, match="max_per_second must be a finite number"):
        build_detector("embedding_drift", {"max_per_second": -1})
    with pytest.raises(ValueError, match="h must be > 0"):
        build_detector("embedding_drift", {"h": 0})


def test_the_pipeline_uses_precomputed_embeddings_and_finds_a_shift_per_model(pipeline):
    rng = np.random.default_rng(7)
    stable, shifted = vectors(rng, 2000), vectors(rng, 800, shifted_share=0.3)
    findings, signals = [], []
    for i, vector in enumerate(stable + shifted):
        result = pipeline.process_record(json.dumps(model_call(i, embedding=vector)).encode())
        findings += result.findings
        signals.append(result.results[0].signals.get("embedding_drift"))
    assert signals[0] == {"distance": None, "flag": None}  # learning the reference
    assert set(signals[1500]) == {"distance", "z", "flag"} and signals[1500]["flag"] is False
    drift = [f for f in findings if f.signal == "embedding_drift"]
    assert [f.alert for f in drift] == ["AIFMEmbeddingDrift"] * 2, "one finding on the model's stream, one on its only agent's"
    assert {tuple(f.key.items()) for f in drift} == {(("model", "gpt-4o"),), (("agent", "support-bot"),)}
    assert min(int(f.event_id.split("-")[1]) for f in drift) >= 2000, "no finding before the shift"
    alarm_at = int(next(f for f in drift if "model" in f.key).event_id.split("-")[1])
    warm = [s for s in signals[600:2000] if s["flag"] is not None]
    assert sum(s["flag"] for s in warm) / len(warm) < 0.01, "few stable outputs are outliers"
    assert any(s["flag"] for s in signals[2000 : alarm_at + 1]), "shifted outputs are outliers until the reference is re-learned"


def test_prompt_drift_is_a_separate_detector_that_tells_new_users_from_a_changed_model(pipeline):
    rng = np.random.default_rng(11)
    outputs = vectors(rng, 2800)  # the answers stay as they were
    prompts = vectors(rng, 2000) + vectors(rng, 800, shifted_share=0.3)  # what users ask shifts
    findings, signals = [], []
    for i, (output, prompt) in enumerate(zip(outputs, prompts)):
        result = pipeline.process_record(json.dumps(model_call(i, embedding=output, input_embedding=prompt)).encode())
        findings += result.findings
        signals.append(result.results[0].signals["embedding_drift"])
    drift = [f for f in findings if f.signal == "embedding_drift"]
    assert [f.alert for f in drift] == ["AIFMPromptDrift"] * 2, "the model's prompt stream and its agent's; the outputs stay quiet"
    assert {tuple(f.key.items()) for f in drift} == {(("model", "gpt-4o"),), (("agent", "support-bot"),)}
    assert all(f.detector == "prompt_centroid" and int(f.event_id.split("-")[1]) >= 2000 for f in drift)
    assert set(signals[1500]["prompt"]) == {"distance", "z", "flag"}, "the prompt's drift rides along the output's"
    only_prompt = pipeline.process_record(json.dumps(model_call(5000, input_embedding=prompts[0])).encode()).results[0].signals
    assert only_prompt["embedding_drift"]["flag"] is None and only_prompt["embedding_drift"]["prompt"]["distance"] is not None


def test_an_agent_whose_outputs_shift_is_found_on_its_own_stream_when_agents_share_a_model(pipeline):
    rng = np.random.default_rng(13)
    findings = []
    for i in range(6000):
        small = i % 5 == 0  # one agent in five calls of the shared model
        shifted = 0.5 if small and i >= 3000 else 0.0  # half of its outputs change topic: a tenth of the model's
        event = model_call(i, agent="billing-agent" if small else "support-bot", embedding=vectors(rng, 1, shifted)[0])
        findings += [f for f in pipeline.process_record(json.dumps(event).encode()).findings if f.signal == "embedding_drift"]
    assert findings, "the shift is found"
    first = findings[0]
    assert first.key == {"agent": "billing-agent"} and first.detector == "centroid" and int(first.event_id.split("-")[1]) >= 3000
    assert all(f.key != {"agent": "support-bot"} for f in findings), "the unchanged agent stays quiet"
    unnamed = pipeline.process_record(json.dumps(model_call(9000, agent=None, embedding=vectors(rng, 1)[0])).encode())
    assert unnamed.results[0].signals["embedding_drift"]["distance"] is not None, "calls without an agent still feed their model's stream"


def test_an_embedding_of_another_length_is_skipped_without_breaking_the_event(pipeline):
    for i in range(10):
        pipeline.process_record(json.dumps(model_call(i, embedding=[0.1] * 8)).encode())
    result = pipeline.process_record(json.dumps(model_call(99, embedding=[0.1] * 4)).encode())
    assert result.results[0].signals["embedding_drift"] == {"skipped": "dimensions", "flag": None}
    assert "refusal" in result.results[0].signals


@pytest.fixture(scope="module")
def encoder():
    from monitor.embeddings.encoder import Encoder

    return Encoder(device="cpu")


def test_the_encoder_loads_offline_from_the_wheel_and_returns_unit_vectors(encoder):
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    vectors = encoder.encode(["Your order shipped yesterday.", "The parcel left our warehouse yesterday.", "Use a tuple as the dictionary key."])
    assert vectors.shape == (3, 384) and np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.2
    assert encoder.encode([]).shape == (0, 384)


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _run_budget(budget, clock, rate: int, keys: list[str], seconds: float = 20.0, cost: float = 0.003) -> int:
    """Offer ``rate`` outputs per second round-robin over ``keys`` in batches of up to 100; each embedded item costs ``cost`` s."""
    admitted = 0
    size = min(100, rate)
    for start in range(0, int(rate * seconds), size):
        clock.now = start / rate
        batch = [(("model", keys[i % len(keys)]), None) for i in range(start, start + size)]
        taken = sum(budget.choose(batch))
        budget.spent(taken, taken * cost)
        admitted += taken
    return admitted


def test_the_budget_keeps_the_embed_step_under_its_share_of_the_time_at_any_input_rate():
    from monitor.embeddings.budget import EmbeddingBudget

    for rate in (10, 1_000, 100_000):  # outputs per second offered
        clock = FakeClock()
        budget = EmbeddingBudget(share=0.15, clock=clock)
        admitted = _run_budget(budget, clock, rate, [f"model-{i}" for i in range(4)])
        assert budget.step_seconds / 20 <= 0.15 * 1.1, (rate, admitted)
        if rate == 10:
            assert admitted == rate * 19, "a quiet stream is embedded in full once the first second has earned its budget"
        else:
            assert budget.step_seconds / 20 >= 0.15 * 0.9, "a busy stream uses the budget it has"
    fractions = budget.sampled_fraction()
    assert set(fractions) == {("model", f"model-{i}") for i in range(4)} and max(fractions.values()) - min(fractions.values()) < 0.01, "keys share the budget"


def test_a_key_that_offers_nothing_holds_no_share_of_the_budget():
    from monitor.embeddings.budget import EmbeddingBudget

    clock = FakeClock()
    alone = EmbeddingBudget(share=0.15, clock=clock)
    busy_alone = _run_budget(alone, clock, 10_000, ["busy"])
    clock = FakeClock()
    shared = EmbeddingBudget(share=0.15, clock=clock)
    shared.choose([(("tool", "rarely-used"), None)])  # offered once, then silent
    busy_shared = _run_budget(shared, clock, 10_000, ["busy"])
    assert busy_shared >= busy_alone - 2, (busy_alone, busy_shared)
    assert busy_alone >= 0.9 * 0.15 * 20 / 0.003


def test_the_fraction_sampler_embeds_the_same_events_on_every_run():
    from monitor.embeddings.budget import FractionSampler
    from monitor.events import decode_record

    events = decode_record(json.dumps([model_call(i) for i in range(2000)]).encode())[0]
    candidates = [(("model", "gpt-4o"), event) for event in events]
    first, second = FractionSampler(0.25).choose(candidates), FractionSampler(0.25).choose(list(reversed(candidates)))
    assert first == list(reversed(second)), "chosen by event id, not by position or time"
    assert 0.22 < sum(first) / len(first) < 0.28
    assert all(FractionSampler(1.0).choose(candidates))
    with pytest.raises(ValueError):
        FractionSampler(0.0)


def test_the_embedder_keeps_precomputed_vectors_and_embeds_a_sample_of_the_rest():
    from monitor.embeddings.budget import BURST_SECONDS, EmbeddingBudget
    from monitor.embeddings.embedder import Embedder
    from monitor.events import decode_record
    from monitor.semantic.exemplars import BENIGN_INSTRUCTIONS, INJECTIONS, NOT_REFUSALS, REFUSALS

    class CountingEncoder:
        seconds = 0.0
        calls: list[int] = []

        def encode(self, texts):
            self.calls.append(len(texts))
            self.seconds += 0.001 * len(texts)
            return np.ones((len(texts), 4), dtype=np.float32)

    encoder = CountingEncoder()
    clock = FakeClock()
    budget = EmbeddingBudget(share=0.5, clock=clock)
    budget.seconds_per_item = 0.5 * BURST_SECONDS  # a second of budget pays for one item
    clock.now = 1.0
    embedder = Embedder(budget, encoder_factory=lambda: encoder)
    records = [model_call(0, embedding=[0.0, 1.0])] + [model_call(i) for i in range(1, 10)] + [model_call(10, output_text="")]
    events = decode_record(json.dumps(records).encode())[0]
    assert encoder.calls == [], "the encoder loads (and is calibrated) on first use"
    assert embedder.embed(events) == 1
    exemplars = len(REFUSALS) + len(NOT_REFUSALS) + len(INJECTIONS) + len(BENIGN_INSTRUCTIONS)
    assert encoder.calls == [2, 16, exemplars, 1], "a warm-up, a calibration, the exemplars once, then the sampled outputs in one batch"
    assert list(events[0].embedding) == [0.0, 1.0] and embedder.precomputed == 1
    assert sum(e.embedding is not None for e in events[1:]) == 1
    assert embedder.sampler.offered[("model", "gpt-4o")] == 9  # the empty output is not offered


def test_the_worker_in_sample_mode_embeds_before_the_pipeline_and_exports_the_sampled_fraction(thresholds):
    from prometheus_client import CollectorRegistry, generate_latest

    from monitor.embeddings.budget import EmbeddingBudget
    from monitor.embeddings.embedder import Embedder
    from monitor.metrics import Metrics
    from monitor.worker.processor import StreamProcessor

    class Broken:
        seconds = 0.0

        def encode(self, texts):
            raise RuntimeError("device lost")

    metrics = Metrics(CollectorRegistry())
    rng = np.random.default_rng(1)
    fixed = np.eye(DIMS)[0]

    class Fixed:
        seconds = 0.0

        def encode(self, texts):
            self.seconds += 0.0001 * len(texts)
            return np.array([fixed + rng.normal(0, 0.1, DIMS) for _ in texts], dtype=np.float32)

    ticking = FakeClock()

    def clock() -> float:
        ticking.now += 1.0  # a second per output: the budget always has a token
        return ticking.now

    processor = StreamProcessor(thresholds, metrics=metrics, embedder=Embedder(EmbeddingBudget(share=0.9, clock=clock), encoder_factory=Fixed))
    metrics.embedder = processor.embedder
    processor.embedder.load()  # loaded and calibrated at start, as the worker does
    processor.assign("ai.events", 0)
    batch = json.dumps([model_call(i) for i in range(700)]).encode()
    processor.handle("ai.events", 0, 0, batch)
    streams = {(s, d): count for s, d, key, det, count in processor.pipelines()[0].streams()}
    assert streams[("embedding_drift", "centroid")] == 700
    drift_seconds = processor.pipelines()[0].embedding_seconds
    assert drift_seconds > 0 and processor.embedder.sampler.step_seconds > drift_seconds, "the drift work on its vectors is charged to the budget too"
    text = generate_latest(metrics.registry).decode()
    assert 'aifm_embedding_sampled_fraction{model="gpt-4o",tool=""}' in text and 'aifm_embedding_offered_total{model="gpt-4o",tool=""} 700.0' in text
    processor.embedder._encoder = Broken()
    output = processor.handle("ai.events", 0, 1, json.dumps([model_call(800, output_text="A text not in the cache.")]).encode())
    assert processor.embedding_errors == 1 and output.dead_letters == []


def test_the_static_encoder_is_distilled_from_the_local_minilm_and_needs_no_torch_to_encode(tmp_path):
    pytest.importorskip("tokenizers")
    import subprocess
    import sys

    from monitor.embeddings.static import built, default_directory

    if not built(default_directory()):
        assert subprocess.run([sys.executable, "-m", "monitor.cli", "encoder", "build"], check=False).returncode == 0
    script = (
        "import sys, numpy as np\n"
        "from monitor.embeddings.encoder import make_encoder\n"
        "e = make_encoder('static')\n"
        "v = e.encode(['Your refund was issued today.', 'The refund for your order went out this morning.',"
        " 'Use a dictionary comprehension to invert the mapping.', 'Su reembolso fue emitido hoy.', ''])\n"
        "print(v.shape, round(float(v[0] @ v[1]), 3), round(float(v[0] @ v[2]), 3), float(np.abs(v[4]).sum()), 'torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout.split()
    shape, same_topic, other_topic, empty, torch_loaded = " ".join(out[:2]), float(out[2]), float(out[3]), float(out[4]), out[5]
    assert shape == "(5, 256)" and torch_loaded == "False"
    assert same_topic > other_topic + 0.2, "a paraphrase is closer than another topic"
    assert empty == 0.0, "an empty text is the zero vector (drift ignores it)"


def test_the_encoder_setting_is_validated(thresholds):
    from monitor.worker.settings import SettingsError, WorkerSettings

    with pytest.raises(SettingsError, match="encoder: must be one of static, minilm"):
        WorkerSettings(encoder="gpt").validate()


def test_semantic_cues_refuse_an_encoder_their_margins_were_not_chosen_on():
    import yaml
    from conftest import REPO

    from monitor.embeddings.embedder import fraction_embedder
    from monitor.thresholds import parse_thresholds

    document = yaml.safe_load((REPO / "alerts" / "thresholds.yaml").read_text())
    document["signals"]["refusal"]["semantic_cue"] = True
    semantic = parse_thresholds(document)
    with pytest.raises(ValueError, match="use the minilm encoder"):
        fraction_embedder(1.0, semantic, "static")
    assert fraction_embedder(1.0, semantic, "minilm") is not None


def test_the_int8_encoder_runs_minilm_on_onnxruntime_close_to_its_vectors_and_without_torch(encoder):
    pytest.importorskip("onnxruntime")
    import subprocess
    import sys

    from monitor.embeddings.onnx_int8 import built, default_directory

    if not built(default_directory()):
        assert subprocess.run([sys.executable, "-m", "monitor.cli", "encoder", "build", "--encoder", "minilm-int8"], check=False).returncode == 0
    texts = ["Your refund was issued today.", "Use a dictionary comprehension to invert the mapping.", "Su reembolso fue emitido hoy."]
    script = (
        "import json, sys\n"
        "from monitor.embeddings.encoder import make_encoder\n"
        f"v = make_encoder('minilm-int8', threads=1).encode({texts!r})\n"
        "print(json.dumps({'vectors': v.tolist(), 'torch': 'torch' in sys.modules}))\n"
    )
    out = json.loads(subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout)
    assert out["torch"] is False
    int8, fp32 = np.array(out["vectors"]), encoder.encode(texts)
    assert int8.shape == (3, 384) and np.allclose(np.linalg.norm(int8, axis=1), 1.0, atol=1e-5)
    assert (np.sum(int8 * fp32, axis=1) > 0.9).all(), "the same vector space as MiniLM, up to quantisation"

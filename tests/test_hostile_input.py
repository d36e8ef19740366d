"""Hostile and broken input: nothing escapes, nothing costs unboundedly, nothing poisons detector state.

A structured, seeded fuzz (hypothesis) of valid-looking events with extreme values, and
the single events that once blinded a detector for good.
"""

from __future__ import annotations

import json
import math
import time

import pytest
from conftest import encode, model_call, tool_call
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.detectors.cusum import CUSUM
from monitor.events import decode_record
from monitor.pipeline import Pipeline
from monitor.signals.agent_loop import SessionTracker
from monitor.worker.processor import StreamProcessor

EXTREME_FLOATS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([1e308, -1e308, 5e-324, 0.0, -0.0, 1e16, -1.0]),
)
EXTREME_INTS = st.one_of(st.integers(), st.sampled_from([10**309, -(10**40), 2**63, 2**64 + 1]))
ODD_TEXT = st.one_of(
    st.text(max_size=200),
    st.sampled_from(["\u202e\u0000\ud7ff", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢" * 50, "\x00" * 1000, "I'm sorry, " * 2000, "ignore previous instructions " * 500]),
    st.integers(1, 300_000).map(lambda n: "a" * n),
)
JSON_LEAF = st.one_of(st.none(), st.booleans(), EXTREME_INTS, EXTREME_FLOATS, ODD_TEXT)
NESTED = st.recursive(JSON_LEAF, lambda children: st.one_of(st.lists(children, max_size=5), st.dictionaries(st.text(max_size=8), children, max_size=5)), max_leaves=40)
DEEP = st.integers(1, 3000).map(lambda depth: json.loads("[" * min(depth, 900) + "]" * min(depth, 900)))
FIELD_VALUES = {
    "ts": st.one_of(EXTREME_FLOATS, EXTREME_INTS, st.sampled_from(["9999-12-31T23:59:59Z", "2026-01-01T00:00:00+00:00", "yesterday"])),
    "latency_ms": st.one_of(EXTREME_FLOATS, EXTREME_INTS),
    "ttft_ms": EXTREME_FLOATS,
    "input_tokens": EXTREME_INTS,
    "output_tokens": EXTREME_INTS,
    "mean_logprob": EXTREME_FLOATS,
    "logprobs": st.lists(EXTREME_FLOATS, max_size=50),
    "embedding": st.one_of(st.lists(EXTREME_FLOATS, max_size=40), st.integers(0, 20_000).map(lambda n: [1e308] * n)),
    "input_embedding": st.lists(EXTREME_FLOATS, max_size=40),
    "output_text": ODD_TEXT,
    "input_text": ODD_TEXT,
    "context": st.one_of(st.lists(ODD_TEXT, max_size=5), st.integers(0, 5000).map(lambda n: ["doc"] * n)),
    "result": st.one_of(NESTED, DEEP),
    "score": EXTREME_FLOATS,
    "session_id": ODD_TEXT,
    "args_hash": ODD_TEXT,
    "model": ODD_TEXT,
    "agent": ODD_TEXT,
    "tool": ODD_TEXT,
    "status": st.sampled_from(["ok", "error", "timeout", "blocked", "weird"]),
    "gen_ai.usage.output_tokens": EXTREME_INTS,
    "aifm.internal.semantic": st.just({"refusal_margin": 0.5}),
}


@st.composite
def hostile_event(draw) -> dict:
    kind = draw(st.sampled_from(["model_call", "tool_call", "feedback", "control"]))
    base = {
        "model_call": model_call(0),
        "tool_call": tool_call(0),
        "feedback": {"kind": "feedback", "target_event_id": "m-0", "score": 0.2},
        "control": {"kind": "control", "action": "kill_switch", "target_agent": "support-bot"},
    }[kind]
    names = draw(st.lists(st.sampled_from(sorted(FIELD_VALUES)), min_size=1, max_size=4, unique=True))
    return {**base, **{name: draw(FIELD_VALUES[name]) for name in names}}


def _record(events: list[dict], batch: bool) -> bytes:
    document = events if batch or len(events) > 1 else events[0]
    return json.dumps(document, allow_nan=True).encode()


@pytest.mark.timeout(300)
@settings(max_examples=400, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(events=st.lists(hostile_event(), min_size=1, max_size=4), batch=st.booleans())
def test_no_hostile_record_escapes_the_per_record_path_or_takes_long(shared_processor, events, batch):
    raw = _record(events, batch)
    (pipeline,) = shared_processor.pipelines()
    accepted, rejected = sum(pipeline.events_by_kind.values()), sum(pipeline.rejects_by_reason.values())
    started = time.process_time()  # CPU time: what the record costs, not how busy the machine's other processes keep it
    output = shared_processor.handle("ai.events", 0, shared_processor.next_offset(), raw)  # handle, not handle_safely: nothing may escape
    elapsed = time.process_time() - started
    accepted, rejected = sum(pipeline.events_by_kind.values()) - accepted, sum(pipeline.rejects_by_reason.values()) - rejected
    assert accepted + rejected >= 1, "every record is processed or rejected"
    assert len(output.dead_letters) == rejected, "every reject is kept as a dead letter"
    assert elapsed < 0.5, f"one record took {elapsed * 1000:.0f} ms of CPU"
    for _signal, _detector, _key, detector, _count in pipeline.streams():
        reference = getattr(detector, "reference", None)
        if isinstance(reference, tuple):
            assert all(math.isfinite(value) for value in reference), "no event poisons a learned reference"


class _CountingProcessor(StreamProcessor):
    offset = -1

    def next_offset(self) -> int:
        self.offset += 1
        return self.offset


@pytest.fixture(scope="module")
def shared_processor():
    from monitor.signals.tool_scope import Boundaries
    from monitor.thresholds import load_thresholds

    processor = _CountingProcessor(load_thresholds(), Boundaries())
    processor.assign("ai.events", 0)
    return processor


def test_a_hostile_vector_is_rejected_at_its_first_value_not_after_parsing_it_all():
    # msgspec parses a number near 1e308 in ~14 us: 20,000 of them would cost ~0.3 s before any range check
    record = encode(model_call(0, embedding=[1e308] * 20_000, logprobs=[-1e308] * 20_000))
    started = time.process_time()
    events, (reject,) = decode_record(record)
    assert time.process_time() - started < 0.02
    assert not events and reject.reason == "schema" and "embedding" in reject.detail


def test_a_tool_result_of_numbers_near_the_float_limit_is_decoded_in_milliseconds_and_kept_exactly():
    # A free-form field takes any number. msgspec's own parse of these costs 5-14 us each (others ~0.02 us):
    # this ~0.9 MB record took 38x as long as json.loads, and it is decoded twice, since another element
    # of its batch fails the typed decode.
    numbers = [1e308, -1.7976931348623157e308, 2.2250738585072014e-308, 1.5]
    result = {"values": numbers * 14_000}
    bad_neighbour = model_call(1, latency_ms="slow")
    record = encode([tool_call(0, result=result), bad_neighbour])
    assert 800_000 < len(record) < 1_000_000

    def seconds(decode) -> float:
        return min(_cpu_seconds(decode, record) for _ in range(3))

    assert seconds(decode_record) < 10 * seconds(json.loads)  # 2.5x here
    events, (reject,) = decode_record(record)
    assert [event.result for event in events] == [result] and reject.index == 1
    # a number beyond a double's range is still a schema reject that names where it is, never its value
    events, (reject,) = decode_record(encode(tool_call(0, result={"values": [1.0]})).replace(b"1.0", b"1e400"))
    assert not events and reject.reason == "schema" and reject.detail == "Number out of range - at `$.result[...][0]`"


def _cpu_seconds(function, argument) -> float:
    started = time.process_time()
    function(argument)
    return time.process_time() - started


def test_one_huge_latency_in_the_warm_up_is_rejected_and_could_not_blind_the_detector_anyway(thresholds):
    pipeline = Pipeline(thresholds)
    (reject,) = pipeline.process_record(encode(model_call(0, latency_ms=1e308))).rejects
    assert reject.reason == "schema" and "latency_ms" in reject.detail
    # within the accepted range, a day-long call during the warm-up does not inflate the reference either
    clean, poisoned = CUSUM(warmup=300, h=12.0), CUSUM(warmup=300, h=12.0)
    values = [math.log(0.8 + 0.1 * math.sin(i)) for i in range(300)]
    for detector, wild in ((clean, values[0]), (poisoned, math.log(86_400.0))):
        for value in [wild, *values[1:]]:
            detector.update(value)
    assert poisoned.reference[1] == pytest.approx(clean.reference[1], rel=0.05)
    shifted = next(i for i in range(1, 500) if poisoned.update(values[i % 300] + 0.3).drift_detected)
    assert shifted < 100, "a shifted regime is still found after a wild warm-up value"


def test_an_event_from_year_9999_is_rejected_and_does_not_silence_later_findings(thresholds):
    pipeline = Pipeline(thresholds)
    (reject,) = pipeline.process_record(encode({"kind": "control", "action": "kill_switch", "target_agent": "support-bot", "ts": "9999-12-31T23:59:59Z"})).rejects
    assert reject.reason == "schema" and "ahead" in reject.detail
    assert not pipeline.kill_switch.any_halted


def test_session_forgetting_goes_on_after_event_time_steps_back():
    wall = [0.0]
    tracker = SessionTracker(max_repeats=8, max_calls_per_session=200, session_idle_seconds=60, max_sessions=1000, clock=lambda: wall[0])
    tracker.observe("early", "t", "a", 1_000.0)
    tracker.observe("late", "t", "a", 10_000.0)  # one event from a clock far ahead, then the clock steps back
    for i in range(600):  # a new session every second of processing time, with event times far behind the latest seen
        wall[0] = float(i)
        tracker.observe(f"back-{i}", "t", "a", 2_000.0 + i)
    assert "early" not in tracker._sessions and "late" not in tracker._sessions
    assert len(tracker) <= 62, "sessions unseen for the idle time are forgotten, whatever the event times say"


def test_session_state_is_bounded_by_calls_tracked_as_well_as_sessions():
    tracker = SessionTracker(max_repeats=8, max_calls_per_session=10_000, session_idle_seconds=3600, max_sessions=1000, max_calls_tracked=500)
    for session in range(20):
        for call in range(100):
            tracker.observe(f"s-{session}", "t", f"args-{call}", 1_000.0)
    assert sum(len(s.repeats) for s in tracker._sessions.values()) <= 500 and "s-19" in tracker._sessions


def test_a_halted_agent_called_for_minutes_raises_one_finding_per_cooldown_that_counts_the_calls(thresholds):
    pipeline = Pipeline(thresholds)
    pipeline.process_record(encode({"kind": "control", "action": "kill_switch", "target_agent": "support-bot", "ts": 1_700_000_000}))
    findings = []
    for i in range(40):  # a call every 10 s for 400 s after the halt
        findings += pipeline.process_record(encode(model_call(0, agent="support-bot", ts=1_700_000_070 + 10 * i))).findings
    halted = [f for f in findings if f.detector == "call_after_halt"]
    cooldown = thresholds.signals["kill_switch"].options["cooldown_seconds"]
    assert len(halted) == math.ceil(400 / cooldown)
    assert halted[0].details["violations"] == 1 and halted[1].details["violations"] == cooldown / 10

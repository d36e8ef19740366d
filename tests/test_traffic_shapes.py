"""Detectors on non-stationary streams: daily cycles, short streams, volume, both directions."""

from __future__ import annotations

import math
import random

import pytest
from conftest import encode, model_call, tool_call

from monitor.detectors import CUSUM, BernoulliCUSUM, EventRate, build_detector
from monitor.detectors.bernoulli_cusum import HourlyProfile
from monitor.pipeline import Pipeline

DAY = 86400.0


def daily(ts: float) -> float:
    """0 at 3 a.m., 1 at 3 p.m.: how busy the hour is."""
    return 0.5 - 0.5 * math.cos(2 * math.pi * ((ts % DAY) / 3600.0 - 3.0) / 24.0)


def cycling_latency(seed: int, days: float, per_second: float, step_at: float | None = None):
    """(ts, log latency): the typical value rises by 1.6 deviations at the daily peak; ``step_at``: +1.5 deviations from then on, for an hour."""
    rng = random.Random(seed)
    ts, out = 0.0, []
    while ts < days * DAY:
        ts += rng.expovariate(per_second)
        shift = 1.5 if step_at is not None and step_at <= ts < step_at + 3600 else 0.0
        out.append((ts, rng.gauss(1.6 * daily(ts) + shift, 1.0)))
    return out


def alarms(detector, stream) -> list[float]:
    return [ts for ts, x in stream if detector.update(x, ts).drift_detected]


def test_a_following_reference_keeps_a_daily_cycle_from_alarming_where_a_frozen_one_does_not():
    stream = cycling_latency(1, 3, 0.5)
    frozen = alarms(CUSUM(warmup=300, k=0.5, h=12.0), stream)
    following = alarms(CUSUM(warmup=300, k=0.5, h=12.0, memory=900.0), stream)
    assert len(frozen) >= 3, "the frozen reference pages at the daily peaks"
    assert following == []


def test_a_following_reference_still_finds_a_step_at_night_within_minutes():
    night = 2 * DAY + 3.5 * 3600
    found = alarms(CUSUM(warmup=300, k=0.5, h=12.0, memory=900.0), cycling_latency(2, 3, 0.5, step_at=night))
    assert len(found) == 1
    assert 0 < found[0] - night < 120, "a 1.5-sigma step is found in under two minutes at 0.5 events/s"


def test_the_reference_adapts_only_while_evidence_is_weak():
    detector = CUSUM(warmup=100, k=0.5, h=12.0, memory=60.0)
    rng = random.Random(3)
    for i in range(100):
        detector.update(rng.gauss(0, 1), float(i))
    mean, _ = detector.reference
    for i in range(100, 130):  # a 3-sigma shift: the statistic climbs past h/4 within a few values
        detector.update(rng.gauss(3, 1), float(i))
        if detector.drift_detected:
            break
    assert detector.drift_detected
    assert abs(mean) < 0.3


def test_the_warmup_floor_lets_a_short_stream_be_tested():
    rng = random.Random(4)
    stream = [rng.gauss(0, 1) for _ in range(60)] + [rng.gauss(3, 1) for _ in range(40)]
    assert [i for i, x in enumerate(stream) if CUSUM(warmup=300, direction="both").update(x).drift_detected] == []
    detector = CUSUM(warmup=300, direction="both", test_after=20)
    assert [i for i, x in enumerate(stream) if detector.update(x).drift_detected] == [64]


def test_two_sided_finds_a_fall():
    rng = random.Random(5)
    stream = [rng.gauss(6.0, 0.5) for _ in range(1000)] + [rng.gauss(5.3, 0.5) for _ in range(200)]  # prompts halved, on log tokens
    up = CUSUM(warmup=300, k=0.5, h=14.0, direction="up")
    both = CUSUM(warmup=300, k=0.5, h=14.0, direction="both")
    assert [i for i, x in enumerate(stream) if up.update(x).drift_detected] == []
    assert [i for i, x in enumerate(stream) if both.update(x).drift_detected] == [1014]


def cycling_errors(seed: int, days: float, per_second: float, burst_at: float | None = None):
    """(ts, failed): 0.3% at 3 a.m., 1.2% at the peak; ``burst_at``: 4% for 30 minutes."""
    rng = random.Random(seed)
    ts, out = 0.0, []
    while ts < days * DAY:
        ts += rng.expovariate(per_second)
        p = 0.003 + 0.009 * daily(ts)
        if burst_at is not None and burst_at <= ts < burst_at + 1800:
            p = 0.04
        out.append((ts, rng.random() < p))
    return out


def test_a_rate_by_hour_of_day_learns_the_daily_cycle_that_a_single_rate_pages_on():
    stream = cycling_errors(6, 7, 3.0)
    single = alarms(BernoulliCUSUM(warmup=500, ratio=2.0, min_p0=0.005, h=9.0), stream)
    by_hour = alarms(BernoulliCUSUM(warmup=500, ratio=2.0, min_p0=0.005, h=9.0, by_hour=True), stream)
    assert len([ts for ts in single if ts > DAY]) >= 5, "one rate for every hour pages at the peak, day after day"
    assert [ts for ts in by_hour if ts > 2 * DAY] == [], "once the profile has a day or two, the peak is the profile"
    assert [ts for ts in single if ts < DAY] and [ts for ts in by_hour if ts < DAY] == [], "the first afternoon, before a whole day is seen, is tested at the hours already seen"


def test_a_burst_on_the_first_afternoon_is_found_though_the_profile_has_not_seen_a_day():
    burst = 15 * 3600
    found = alarms(BernoulliCUSUM(warmup=500, ratio=2.0, min_p0=0.005, h=9.0, by_hour=True), cycling_errors(6, 1, 3.0, burst_at=burst))
    assert [ts for ts in found if burst <= ts < burst + 600], "the 4% burst at the first peak is found within 10 minutes"


def test_a_rate_by_hour_still_finds_a_burst_out_of_place_for_its_hour():
    burst = 5 * DAY + 5 * 3600
    found = alarms(BernoulliCUSUM(warmup=500, ratio=2.0, min_p0=0.005, h=9.0, by_hour=True), cycling_errors(7, 6, 3.0, burst_at=burst))
    assert [ts for ts in found if burst <= ts < burst + 1800], "the 4% burst at 5 a.m. is found while it lasts"


def weekly_refusals(seed: int) -> list[tuple[float, bool]]:
    """A week from a Monday: one model's calls follow the day (0.19/s at 3 a.m., 0.75/s at 3 p.m.), 0.7x on the weekend;
    the busier the hour, the fewer of its users are refused (3.5% at the trough, 2% at a weekday peak)."""
    rng = random.Random(seed)
    ts, out = 0.0, []
    while ts < 7 * DAY:
        weekend = 0.7 if ts >= 5 * DAY else 1.0
        load = (1.0 + 3.0 * daily(ts)) * weekend
        ts += rng.expovariate(0.1875 * load)
        out.append((ts, rng.random() < 0.035 - 0.015 * (load - 1.0) / 3.0))
    return out


def test_a_level_that_forgets_over_hours_does_not_read_a_weekend_as_a_rise():
    def detector(level_memory):
        return BernoulliCUSUM(warmup=500, ratio=2.0, min_p0=0.01, h=9.0, by_hour=True, burst_ratio=6.0, burst_h=12.0, level_memory=level_memory)

    streams = [weekly_refusals(seed) for seed in (1, 2)]
    since_alarm = [ts for stream in streams for ts in alarms(detector(0.0), stream) if ts >= 5 * DAY]
    recent = [ts for stream in streams for ts in alarms(detector(21600.0), stream) if ts >= 5 * DAY]
    assert since_alarm, "learned over five weekdays, the level reads the weekend's noon as a rise"
    assert recent == []


def hourly_counts(seed: int, days: int, per_hour: int, rate) -> HourlyProfile:
    rng = random.Random(seed)
    profile = HourlyProfile(min_count=1)
    for _ in range(days):
        for hour in range(24):
            for _ in range(per_hour):
                profile.add(hour, rng.random() < rate(hour))
    return profile


def test_an_hourly_profile_of_a_flat_rate_stays_flat():
    profile = hourly_counts(2, 2, 300, lambda hour: 0.05)
    rates = profile.rates()
    raw = [profile.ones[hour] / profile.n[hour] for hour in range(24)]
    assert max(raw) / min(raw) > 1.5, "a day of an hour is few events: the raw hourly rates differ by chance"
    assert max(rates) / min(rates) < 1.05, "chance differences between hours are not taken for a daily cycle"


def test_an_hourly_profile_follows_a_real_daily_cycle():
    def cycle(hour):
        return 0.003 + 0.009 * daily(hour * 3600.0 + 1800.0)

    rates = hourly_counts(2, 2, 300, cycle).rates()
    assert rates[15] / rates[3] > 2.5, "the peak's rate is four times the trough's, smoothed over five hours"
    assert rates[3] == pytest.approx(cycle(3), rel=0.35) and rates[15] == pytest.approx(cycle(15), rel=0.2)


def test_the_hourly_profile_learns_from_nearly_every_in_control_observation():
    rng = random.Random(4)
    detector = BernoulliCUSUM(warmup=500, ratio=2.0, min_p0=0.005, h=9.0, by_hour=True)
    ts, seen = 0.0, 0
    while ts < 3 * DAY:
        ts += rng.expovariate(0.1 + 0.3 * daily(ts))
        detector.update(rng.random() < 0.035 - 0.015 * daily(ts), ts)
        seen += 1
    counted = sum(detector.state()[6][0])
    # Learning only at a sum of 0 skipped the calls after each refusal: two thirds of the stream.
    assert counted / seen > 0.95


def flat_failures(seed: int, days: float, per_second: float):
    """(ts, failed): 5% at every hour, under a daily cycle of load (a quarter of the peak at 3 a.m.)."""
    rng = random.Random(seed)
    ts, out = 0.0, []
    while ts < days * DAY:
        ts += rng.expovariate(per_second * (0.25 + 0.75 * daily(ts)))
        out.append((ts, rng.random() < 0.05))
    return out


def test_a_flat_rate_learned_by_hour_alarms_no_more_than_one_rate():
    # Sixteen tools' weeks at ~57,000 calls each, with a low h so that chance alarms are countable.
    streams = [flat_failures(seed, 7, 0.15) for seed in range(16)]
    single = sum(len(alarms(BernoulliCUSUM(warmup=200, ratio=2.0, min_p0=0.02, h=7.0), stream)) for stream in streams)
    by_hour = sum(len(alarms(BernoulliCUSUM(warmup=200, ratio=2.0, min_p0=0.02, h=7.0, by_hour=True), stream)) for stream in streams)
    assert by_hour <= single, "an hourly profile of a flat rate is flat: it adds no sensitivity at hours that looked quiet by chance"
    # Before the standard-error margin and the shrunk profile: 14 with one rate, 15 by hour.
    assert by_hour <= 10


def test_a_learned_rate_is_tested_one_standard_error_above_its_estimate():
    detector = BernoulliCUSUM(warmup=200, ratio=2.0, min_p0=0.001, h=9.0)
    for i in range(200):
        detector.update(i % 20 == 0)  # 10 failures in 200 calls
    estimate = 10.5 / 201
    assert detector.reference == pytest.approx(estimate * (1 + 1 / math.sqrt(11)))


def test_by_hour_needs_a_learned_rate():
    with pytest.raises(ValueError, match="by_hour"):
        BernoulliCUSUM(p0=0.01, by_hour=True)


def poisson_calls(seed: int, hours: float, per_minute, start: float = 0.0):
    rng = random.Random(seed)
    ts, out = start, []
    while ts < start + hours * 3600:
        ts += rng.expovariate(per_minute(ts) / 60.0)
        out.append((ts, 1.0))
    return out


def test_calls_per_minute_follow_a_daily_cycle_and_find_a_runaway_agent():
    def rate(ts):
        runaway = 2 * DAY + 2 * 3600 <= ts < 2 * DAY + 2.5 * 3600
        return (5 + 15 * daily(ts)) * (3 if runaway else 1)

    start = 2 * DAY + 2 * 3600
    detector = EventRate(window=60.0, warmup=30, k=0.5, h=10.0, direction="both", memory=900.0)
    found = alarms(detector, poisson_calls(8, 72, rate))
    assert len(found) == 1, "the return to the usual rate after the runaway is not a second finding"
    assert 0 < found[0] - start < 600, "three times the calls are found within 10 minutes"


def test_calls_per_minute_see_an_agent_that_fell_silent_when_it_calls_again():
    steady = poisson_calls(9, 4, lambda ts: 20.0)
    resumed = poisson_calls(10, 1, lambda ts: 20.0, start=steady[-1][0] + 1800)
    detector = EventRate(window=60.0, warmup=30, k=0.5, h=10.0, direction="both", memory=900.0)
    found = alarms(detector, steady + resumed)
    assert len(found) == 1 and resumed[0][0] <= found[0] < resumed[0][0] + 60, "30 silent minutes are read as zeros on the next call"


@pytest.mark.parametrize(
    "method, params",
    [
        ("cusum", {"warmup": 100, "k": 0.5, "h": 12.0, "direction": "both", "memory": 600.0, "test_after": 20}),
        ("bernoulli_cusum", {"warmup": 200, "ratio": 2.0, "min_p0": 0.01, "h": 9.0, "by_hour": True}),
        ("event_rate", {"window": 60.0, "warmup": 30, "k": 0.5, "h": 10.0, "direction": "both", "memory": 900.0}),
    ],
)
def test_new_state_survives_a_snapshot(method, params):
    rng = random.Random(11)
    if method == "event_rate":  # one call every 7 s, then every 2 s
        stream = [(i * 7.0, 1.0) for i in range(20_000)] + [(140_000.0 + i * 2.0, 1.0) for i in range(3000)]
    else:
        draw = (lambda p: float(rng.random() < p)) if method == "bernoulli_cusum" else (lambda p: rng.gauss(20 * p, 1))
        stream = [(i * 7.0, draw(0.05)) for i in range(20_000)] + [(140_000.0 + i * 7.0, draw(0.2)) for i in range(3000)]
    whole, first = build_detector(method, params), build_detector(method, params)
    for ts, x in stream[:15_000]:
        first.update(x, ts)
    restored = build_detector(method, params)
    restored.load_state(first.state())
    for ts, x in stream[:15_000]:
        whole.update(x, ts)
    expected = [(whole.update(x, ts).drift_detected, whole.statistic) for ts, x in stream[15_000:]]
    resumed = [(restored.update(x, ts).drift_detected, restored.statistic) for ts, x in stream[15_000:]]
    assert resumed == expected, "the restored detector continues exactly as the uninterrupted one"
    assert any(alarm for alarm, _ in resumed), "the stream changes after the snapshot"


def test_a_cusum_snapshot_from_before_the_following_reference_loads():
    detector = CUSUM(warmup=10, memory=60.0)
    detector.load_state([10, 1.5, 9.0, 1.0, 0.0, 0.0, 0.0, []])  # eight fields: no weight, clock or adaptation time
    assert detector.reference == (1.5, 1.0)
    detector.update(1.5, 100.0)
    assert detector.reference[0] == pytest.approx(1.5)


def test_the_pipeline_finds_prompts_halved_by_a_template_change_with_its_onset(pipeline):
    rng = random.Random(12)
    change = 3000
    events = [model_call(i, input_tokens=max(1, int(rng.lognormvariate(6.5, 0.4) * (0.5 if i >= change else 1.0))), output_tokens=int(rng.lognormvariate(4, 0.4)))
              for i in range(4000)]
    found = [(i, f) for i, f in run(pipeline, events) if f.signal == "usage"]
    assert [(f.alert, f.key) for _, f in found] == [("AIFMInputTokensShift", {"model": "gpt-4o"})]
    index, finding = found[0]
    assert change < index < change + 30
    assert change - 5 <= finding.started_at - 1_700_000_000 <= index, "the onset is the change, not the alarm"


def test_the_pipeline_finds_an_agent_calling_three_times_as_often(pipeline):
    rng = random.Random(13)
    events, ts = [], 1_700_000_000.0
    for i in range(30_000):
        ts += rng.expovariate(1.0 if ts < 1_700_000_000 + 6 * 3600 else 3.0)  # 60 calls a minute, then 180
        events.append(tool_call(i, ts=round(ts, 3), agent="ops-agent", tool="get_logs"))
    found = [(i, f) for i, f in run(pipeline, events) if f.signal == "usage"]
    assert [(f.alert, f.key) for _, f in found] == [("AIFMAgentCallRateShift", {"agent": "ops-agent"})]
    assert 0 < events[found[0][0]]["ts"] - (1_700_000_000 + 6 * 3600) < 300


def test_a_failed_call_feeds_no_output_tokens(pipeline):
    run(pipeline, [model_call(0, input_tokens=100, output_tokens=0, error_type="429")])
    fed = {detector: count for signal, detector, _key, _d, count in pipeline.streams() if signal == "usage"}
    assert fed == {"input_tokens": 1, "calls_per_minute": 1}


def run(pipeline, events: list[dict]) -> list[tuple[int, object]]:
    return [(index, finding) for index, raw in enumerate(events) for finding in pipeline.process_record(encode(raw)).findings]


def test_a_burst_sum_finds_a_tenfold_burst_at_night_sooner():
    burst = 5 * DAY + 5 * 3600
    stream = cycling_errors(12, 6, 0.25, burst_at=burst)

    def first_inside(detector):
        return next(ts - burst for ts in alarms(detector, stream) if burst <= ts < burst + 1800)

    doubling = first_inside(BernoulliCUSUM(warmup=500, ratio=2.0, min_p0=0.005, h=9.0, by_hour=True))
    with_burst = first_inside(BernoulliCUSUM(warmup=500, ratio=2.0, min_p0=0.005, h=9.0, by_hour=True, burst_ratio=6.0))
    shipped = first_inside(BernoulliCUSUM(warmup=500, ratio=2.0, min_p0=0.005, h=9.0, by_hour=True, burst_ratio=6.0, burst_h=12.0))
    assert with_burst < shipped < 600 < 900 < doubling, "its own higher threshold costs some of the gain, not all"


def test_the_burst_sum_alarms_at_its_own_threshold_and_reports_on_the_main_sums_scale():
    detector = BernoulliCUSUM(warmup=100, p0=0.01, ratio=2.0, h=9.0, burst_ratio=6.0, burst_h=12.0)
    for _ in range(100):
        detector.update(False)
    weight = math.log(0.06 / 0.01)
    failures = 0
    while not detector.update(True).drift_detected:
        failures += 1
        assert detector.statistic <= detector.threshold
    # Each failure adds log 6 to the burst sum (log 2 to the main one): the alarm comes when it passes 12, not 9.
    assert failures + 1 == math.ceil(12.0 / weight)
    assert detector.alarm_statistic > detector.threshold == 9.0


def test_burst_h_needs_a_burst_sum():
    with pytest.raises(ValueError, match="burst_h"):
        BernoulliCUSUM(burst_h=12.0)


def test_a_return_to_the_earlier_reference_is_a_recovery_not_a_second_change():
    rng = random.Random(14)
    levels = [0.0] * 2000 + [3.0] * 1000 + [0.0] * 1000 + [3.0] * 1000
    detector = CUSUM(warmup=300, k=0.5, h=14.0, direction="both", memory=600.0)
    events = []
    for i, level in enumerate(levels):
        detector.update(rng.gauss(level, 1.0), float(i))
        if detector.drift_detected or detector.recovered:
            events.append((i // 1000, "recovered" if detector.recovered else "change"))
    assert events == [(2, "change"), (3, "recovered"), (4, "change")]


@pytest.mark.parametrize(("back_at", "expected"), [(2350, "recovered"), (4000, "change")])
def test_a_following_reference_forgets_the_earlier_one_after_eight_memories(back_at, expected):
    rng = random.Random(15)
    detector = CUSUM(warmup=200, k=0.5, h=14.0, direction="both", memory=60.0)
    seen = []
    for i in range(5000):
        level = 3.0 if 2000 <= i < back_at else 0.0
        detector.update(rng.gauss(level, 1.0), float(i))
        if detector.drift_detected or detector.recovered:
            seen.append("recovered" if detector.recovered else "change")
    assert seen == ["change", expected], "480 s after the alarm, the level of 2000 s ago is no reference to return to"


def night_errors(seed: int, days: float, burst_at: float | None = None) -> list[dict]:
    """One model's calls, 15 a minute, over ``days``: errors 0.3% at 3 a.m. and 1.2% at the peak, a third of them rate limits;
    ``burst_at``: rate limits on 3.6% more of the calls for 30 minutes (quota exhaustion)."""
    rng = random.Random(seed)
    ts, events = 0.0, []
    while ts < days * DAY:
        ts += rng.expovariate(0.25)
        error = None
        if rng.random() < 0.003 + 0.009 * daily(ts):
            error = rng.choice(("429", "503", "ReadTimeout"))
        elif burst_at is not None and burst_at <= ts < burst_at + 1800 and rng.random() < 0.036:
            error = "429"
        event = model_call(len(events), ts=round(1_700_006_400 + ts, 3))  # 1_700_006_400: a midnight UTC
        if error is not None:
            event["error_type"] = error
        events.append(event)
    return events


def test_a_burst_of_rate_limits_at_night_is_found_by_their_own_stream_first(thresholds, sample_boundaries):
    """At 5 a.m. a tenfold rise of all errors is a thirtyfold one of rate limits: their own sum crosses first, on every seed."""
    burst = 3 * DAY + 5 * 3600
    for seed in (1, 2, 3, 4):
        pipeline = Pipeline(thresholds, sample_boundaries)
        found = [(raw["ts"] - 1_700_006_400 - burst, f.alert) for raw in night_errors(seed, 3.5, burst_at=burst) for f in pipeline.process_record(encode(raw)).findings if f.type == "finding"]
        assert [alert for _, alert in found] == ["AIFMProviderRateLimited", "AIFMProviderErrorRateHigh"], (seed, found)
        (rate_limits, _), (errors, _) = found
        assert 0 < rate_limits < errors - 60 and errors < 1800, (seed, found)
    clean = Pipeline(thresholds, sample_boundaries)
    assert [f for raw in night_errors(1, 3.5) for f in clean.process_record(encode(raw)).findings if f.type == "finding"] == []

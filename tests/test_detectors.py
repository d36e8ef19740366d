"""Detectors on seeded streams, with exact detection indices (as river's tests do)."""

from __future__ import annotations

import random

import pytest

from monitor.detectors import CUSUM, BernoulliCUSUM, RiverDetector, build_detector


def detections(detector, stream) -> list[int]:
    return [i for i, x in enumerate(stream) if detector.update(x).drift_detected]


def gaussian(seed, n_before, n_after, shift, mu=0.0, sigma=1.0):
    rng = random.Random(seed)
    return [rng.gauss(mu, sigma) for _ in range(n_before)] + [rng.gauss(mu + shift * sigma, sigma) for _ in range(n_after)]


def bernoulli(seed, n_before, n_after, p0, p1):
    rng = random.Random(seed)
    return [rng.random() < p0 for _ in range(n_before)] + [rng.random() < p1 for _ in range(n_after)]


def test_cusum_finds_a_one_sigma_shift_at_the_expected_index():
    stream = gaussian(11, 2000, 300, 1.0, mu=5.0, sigma=2.0)
    assert detections(CUSUM(warmup=300, k=0.5, h=12.0), stream) == [2016]


def test_cusum_finds_a_half_sigma_shift_at_the_expected_index():
    stream = gaussian(12, 2000, 1000, 0.5)
    assert detections(CUSUM(warmup=300, k=0.5, h=12.0), stream) == [2115]


def test_cusum_false_alarms_stay_within_one_per_100k_events():
    assert len(detections(CUSUM(warmup=300, k=0.5, h=12.0), gaussian(13, 500_000, 0, 0.0))) <= 5


def test_cusum_direction_down_sees_drops_only():
    up = gaussian(14, 1000, 300, 2.0)
    down = gaussian(14, 1000, 300, -2.0)
    assert detections(CUSUM(warmup=300, direction="down"), up) == []
    assert detections(CUSUM(warmup=300, direction="down"), down) == [1007]


def test_cusum_one_outlier_cannot_alarm_alone():
    stream = gaussian(15, 1000, 0, 0.0) + [1e9] + gaussian(16, 200, 0, 0.0)
    assert detections(CUSUM(warmup=300, h=12.0, clip=4.0), stream) == []


def test_cusum_relearns_after_an_alarm_so_a_lasting_shift_is_reported_once():
    stream = gaussian(17, 1000, 5000, 2.0)
    assert len(detections(CUSUM(warmup=300), stream)) == 1


def test_cusum_statistic_and_threshold_are_exposed():
    detector = CUSUM(warmup=10, h=5.0)
    for x in gaussian(18, 10, 0, 0.0):
        detector.update(x)
    assert detector.threshold == 5.0
    assert detector.statistic == 0.0 and not detector.warming_up
    detector.update(detector.reference[0] + 3 * detector.reference[1])
    assert detector.statistic == pytest.approx(2.5)


def test_bernoulli_cusum_finds_a_doubling_at_the_expected_index():
    stream = bernoulli(21, 3000, 1000, 0.10, 0.20)
    assert detections(BernoulliCUSUM(warmup=500, ratio=2.0, h=9.0), stream) == [3282]


def test_bernoulli_cusum_false_alarms_stay_within_one_per_100k_events():
    assert len(detections(BernoulliCUSUM(warmup=500, ratio=2.0, h=9.0), bernoulli(22, 500_000, 0, 0.10, 0.10))) <= 5


def test_bernoulli_cusum_minimum_rate_floor_keeps_one_failure_from_alarming():
    detector = BernoulliCUSUM(warmup=200, ratio=2.0, min_p0=0.02, h=9.0)
    stream = [False] * 200 + [True] + [False] * 50
    assert detections(detector, stream) == []
    assert detector.reference == pytest.approx(0.02)


def test_bernoulli_cusum_fixed_target_repeats_at_most_once_per_warmup_while_bad():
    detector = BernoulliCUSUM(warmup=100, p0=0.01, ratio=3.0, h=6.0)
    hits = detections(detector, [True] * 1000)
    assert hits == [105, 211, 317, 423, 529, 635, 741, 847, 953]


def test_segment_zeroes_evidence_but_keeps_the_reference():
    detector = BernoulliCUSUM(warmup=100, ratio=2.0, h=9.0)
    for x in bernoulli(23, 100, 0, 0.1, 0.1):
        detector.update(x)
    reference = detector.reference
    for _ in range(5):
        detector.update(True)
    assert detector.statistic > 0
    detector.segment()
    assert detector.statistic == 0.0 and detector.reference == reference



def test_by_hour_counts_each_event_in_the_hour_of_day_its_time_falls_in_at_every_boundary():
    import math

    rng = random.Random(5)
    times = []
    for hour in rng.sample(range(-48, 500_000), 300):
        start = hour * 3600.0
        times += [start, math.nextafter(start, -math.inf), math.nextafter(start, math.inf), start + rng.uniform(0, 3600), start + 3599.999]
    times += [rng.uniform(0, 2e9) for _ in range(500)] + [float("nan"), float("inf"), -0.0, None, 1e17]
    rng.shuffle(times)  # events arrive out of order, and the hour of the one before rarely holds
    times += [1_700_000_000.0 + i for i in range(2000)]  # and in order, where it mostly does
    detector = BernoulliCUSUM(warmup=10**6, by_hour=True)
    expected = [0] * 24
    for t in times:
        detector.update(True, t)
        if t is not None and math.isfinite(t):
            expected[int(t // 3600.0) % 24] += 1
    assert detector.state()[6][0] == expected

def test_river_page_hinkley_through_the_adapter():
    stream = gaussian(31, 1000, 200, 1.0)
    detector = RiverDetector("page_hinkley", mode="up")
    assert detections(detector, stream) == [1006]
    assert detector.threshold == 50.0


@pytest.mark.parametrize(
    ("method", "params", "message"),
    [
        ("cusum", {"h": -1}, "h must be > 0"),
        ("cusum", {"warmup": 1}, "warmup must be an integer >= 2"),
        ("cusum", {"direction": "sideways"}, "direction must be one of"),
        ("cusum", {"k": 5, "clip": 4}, "clip must be > k"),
        ("bernoulli_cusum", {"ratio": 1.0}, "ratio must be > 1"),
        ("bernoulli_cusum", {"p0": 1.5}, "p0 must lie in (0, 1)"),
        ("bernoulli_cusum", {"min_p0": 0}, "min_p0 must lie in (0, 1)"),
        ("kswin", {}, "method must be one of"),
    ],
)
def test_invalid_settings_name_the_valid_range(method, params, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        build_detector(method, params)

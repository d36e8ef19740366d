"""Detection delay vs false alarms for our detectors, river's defaults and a CUSUM oracle.

Each scenario runs over seeded synthetic streams. Delay runs: a clean stretch, then a
change; the delay is the number of post-change events until the first alarm (a run
that never alarms counts as missed). False-alarm runs: long clean streams; every alarm
is false. All detectors see the same streams in the same run, so ratios are fair.

Usage: python bench/bench_detectors.py [--runs 200] [--clean-events 20000]
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time

import numpy as np

from monitor.detectors.bernoulli_cusum import BernoulliCUSUM
from monitor.detectors.cusum import CUSUM
from monitor.detectors.river_adapter import RiverDetector
from monitor.thresholds import load_thresholds


class OracleCUSUM:
    """CUSUM told the true in-control mean and deviation: the yardstick, not deployable."""

    def __init__(self, *, k: float = 0.5, h: float = 9.65):
        self.k, self.h, self.s, self.drift_detected = k, h, 0.0, False

    def update(self, x):
        self.s = max(0.0, self.s + x - self.k)
        self.drift_detected = self.s > self.h
        if self.drift_detected:
            self.s = 0.0
        return self


class OracleBernoulliCUSUM(BernoulliCUSUM):
    def __init__(self, *, h: float):
        super().__init__(p0=0.10, ratio=2.0, h=h)


def run_delay(make, streams, change_at):
    delays, false_alarms, clean_events = [], 0, 0
    for stream in streams:
        detector = make()
        delay = math.inf
        for i, x in enumerate(stream):
            if detector.update(x).drift_detected:
                if i < change_at:
                    false_alarms += 1
                else:
                    delay = i - change_at + 1
                    break
        delays.append(delay)
        clean_events += change_at
    return delays, false_alarms


def run_clean(make, streams, skip):
    alarms = 0
    for stream in streams:
        detector = make()
        for x in stream:
            if detector.update(x).drift_detected:
                alarms += 1
    counted = sum(len(s) - skip for s in streams)
    return alarms / counted * 1e5


def median_delay(delays):
    return statistics.median(delays)


def fmt(value):
    return "missed" if math.isinf(value) else f"{value:.1f}"


def gaussian_table(args, configured):
    change_at = configured["warmup"] + 1000
    rows = []
    rng = np.random.default_rng(20261127)
    clean = [rng.standard_normal(args.clean_events).tolist() for _ in range(args.runs)]
    detectors = {
        "aifm CUSUM (thresholds.yaml)": lambda: CUSUM(**configured),
        "river PageHinkley (defaults)": lambda: RiverDetector("page_hinkley"),
        "river ADWIN (defaults)": lambda: RiverDetector("adwin"),
        "CUSUM oracle (k=0.5, h=9.65)": lambda: OracleCUSUM(),
    }
    shifted = {}
    for shift in (1.0, 0.5):
        streams = []
        for _ in range(args.runs):
            pre = rng.standard_normal(change_at)
            post = rng.standard_normal(2000) + shift
            streams.append(np.concatenate([pre, post]).tolist())
        shifted[shift] = streams
    for name, make in detectors.items():
        started = time.perf_counter()
        fa = run_clean(make, clean, configured["warmup"])
        d1, _ = run_delay(make, shifted[1.0], change_at)
        d05, _ = run_delay(make, shifted[0.5], change_at)
        rows.append((name, median_delay(d1), median_delay(d05), fa, time.perf_counter() - started))
    return rows


def bernoulli_table(args, configured):
    change_at = configured["warmup"] + 1000
    rows = []
    rng = np.random.default_rng(20261128)
    clean = [(rng.random(args.clean_events) < 0.10).tolist() for _ in range(args.runs)]
    streams = []
    for _ in range(args.runs):
        pre = rng.random(change_at) < 0.10
        post = rng.random(3000) < 0.20
        streams.append(np.concatenate([pre, post]).tolist())
    detectors = {
        "aifm BernoulliCUSUM (thresholds.yaml)": lambda: BernoulliCUSUM(**configured),
        "river DDM (defaults)": lambda: RiverDetector("ddm"),
        "river HDDM_A (defaults)": lambda: RiverDetector("hddm_a"),
        "river ADWIN (defaults)": lambda: RiverDetector("adwin"),
        "Bernoulli CUSUM oracle (p0 known)": lambda: OracleBernoulliCUSUM(h=configured["h"]),
    }
    for name, make in detectors.items():
        started = time.perf_counter()
        fa = run_clean(make, clean, configured["warmup"])
        delays, _ = run_delay(make, streams, change_at)
        rows.append((name, median_delay(delays), fa, time.perf_counter() - started))
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--clean-events", type=int, default=20000)
    args = parser.parse_args(argv)
    thresholds = load_thresholds()
    mean_cfg = thresholds.signals["latency"].detector.params
    rate_cfg = thresholds.signals["refusal"].detector.params
    gauss_params = {k: mean_cfg[k] for k in ("warmup", "k", "h", "clip")}
    rate_params = {k: rate_cfg[k] for k in ("warmup", "ratio", "min_p0", "h")}
    print(f"runs={args.runs}, clean events per run={args.clean_events}")
    print(f"\nGaussian mean shift (aifm CUSUM {gauss_params}); targets: 1 sigma <= 40, 0.5 sigma <= 220, <= 1 false alarm / 1e5")
    print(f"{'detector':38} {'median delay 1σ':>16} {'median delay 0.5σ':>18} {'false alarms/1e5':>17} {'seconds':>8}")
    for name, d1, d05, fa, secs in gaussian_table(args, gauss_params):
        print(f"{name:38} {fmt(d1):>16} {fmt(d05):>18} {fa:>17.2f} {secs:>8.1f}")
    print(f"\nBernoulli rate 0.10 -> 0.20 (aifm {rate_params}); target <= 300 events at <= 1 false alarm / 1e5")
    print(f"{'detector':38} {'median delay':>16} {'false alarms/1e5':>17} {'seconds':>8}")
    for name, delay, fa, secs in bernoulli_table(args, rate_params):
        print(f"{name:38} {fmt(delay):>16} {fa:>17.2f} {secs:>8.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Tuning time: `aifm tune`'s fast path (replay once, sweep recorded streams) against a replay per grid point.

1. On --events (default 1,000,000) simulated events with labelled incidents: the
   fast path's phases (replay recording every detector's input, then the sweep of
   every detector's h over the recorded streams), timed in process.
2. Side by side on a --compare slice (default 100,000 events) of the same kind: the
   fast path against the naive way, one full replay per grid point (every signal's h
   set to its i-th candidate), and whether both choose the same h.

Usage: python bench/bench_tune.py [--events 1000000] [--compare 100000] [--budget 5]
"""

from __future__ import annotations

import argparse
import copy
import resource
import shutil
import sys
import time
from pathlib import Path

import yaml

from monitor.replay.run import replay
from monitor.replay.scoring import load_incidents, score
from monitor.replay.simulate import write_simulation
from monitor.signals import SIGNALS_WITH_DETECTOR
from monitor.signals.tool_scope import load_boundaries
from monitor.thresholds import REPO_THRESHOLDS, load_thresholds, parse_thresholds
from monitor.tuning.run import tune
from monitor.tuning.sweep import GRIDS

#: Signals whose detector `aifm tune` sweeps (embedding drift takes vectors and is not swept).
SWEPT = sorted(s for s in SIGNALS_WITH_DETECTOR if load_thresholds().signals[s].detector.method in GRIDS)


def simulated(directory: Path, events: int) -> Path:
    marker = directory / f".events-{events}"
    if not marker.exists():
        shutil.rmtree(directory, ignore_errors=True)
        started = time.perf_counter()
        write_simulation(directory, events, seed=23)
        marker.touch()
        print(f"simulated {events:,} events in {time.perf_counter() - started:.0f} s -> {directory}")
    return directory


def fast(directory: Path, budget: float):
    thresholds = load_thresholds()
    started = time.perf_counter()
    outcome = tune(
        [directory / "events.jsonl.gz"],
        thresholds=thresholds,
        thresholds_text=REPO_THRESHOLDS.read_text(),
        boundaries=load_boundaries(directory / "boundaries"),
        incidents=load_incidents(directory / "incidents.jsonl"),
        budget_per_day=budget,
    )
    total = time.perf_counter() - started
    return outcome, total


def naive(directory: Path, budget: float, days: float) -> tuple[dict[str, float], float, int]:
    """One full replay per grid point, and the fast path's choice rule (one step above the smallest h within budget / margin 2) on its findings."""
    document = yaml.safe_load(REPO_THRESHOLDS.read_text())
    boundaries = load_boundaries(directory / "boundaries")
    incidents = load_incidents(directory / "incidents.jsonl")
    points = max(len(grid) for grid in GRIDS.values())
    false_alarms: dict[str, list[tuple[float, int]]] = {signal: [] for signal in SWEPT}
    started = time.perf_counter()
    for i in range(points):
        trial = copy.deepcopy(document)
        for signal in SWEPT:
            detector = trial["signals"][signal]["detector"]
            detector["h"] = GRIDS[detector["method"]][i]
        report = replay([directory / "events.jsonl.gz"], thresholds=parse_thresholds(trial), boundaries=boundaries)
        outside = score(report.findings, incidents).false_alarms
        for signal in SWEPT:
            h = trial["signals"][signal]["detector"]["h"]
            false_alarms[signal].append((h, sum(1 for f in outside if f.signal == signal)))
    seconds = time.perf_counter() - started
    allowed = budget * days / 2.0
    chosen = {}
    for signal, pairs in false_alarms.items():
        ordered = sorted(pairs)
        fits = [i for i, (_, count) in enumerate(ordered) if count <= allowed]
        chosen[signal] = ordered[min(fits[0] + 1, len(ordered) - 1)][0] if fits else ordered[-1][0]
    return chosen, seconds, points


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--compare", type=int, default=100_000)
    parser.add_argument("--budget", type=float, default=5.0, help="false alarms per signal and day")
    parser.add_argument("--dir", default="build/bench-tune")
    args = parser.parse_args(argv)

    small = simulated(Path(args.dir) / f"{args.compare}", args.compare)
    outcome, fast_seconds = fast(small, args.budget)
    naive_choice, naive_seconds, points = naive(small, args.budget, outcome.history.days)
    fast_choice = {t.signal: t.chosen.h for t in outcome.tunings}
    # The naive grid lacks the configured h the fast path adds; compare where both swept the same values.
    same = all(fast_choice[s] == naive_choice[s] or fast_choice[s] not in GRIDS[t.method] for s, t in ((t.signal, t) for t in outcome.tunings))
    print(f"\nside by side on {outcome.history.report.events:,} events ({outcome.history.days:.2f} days), {points} grid points per signal, budget {args.budget:g}/day:")
    print(f"  fast path (replay once + sweep recorded streams)  {fast_seconds:8.1f} s")
    print(f"  naive (one full replay per grid point)            {naive_seconds:8.1f} s   ({naive_seconds / fast_seconds:.1f}x the fast path)")
    print(f"  same h chosen by both: {'yes' if same else 'NO'}  {fast_choice}")
    del outcome

    large = simulated(Path(args.dir) / f"{args.events}", args.events)
    outcome, total = fast(large, args.budget)
    replay_seconds = outcome.history.report.seconds
    values = sum(len(record.values) for record in outcome.history.streams)
    print(f"\n`aifm tune` fast path on {outcome.history.report.events:,} events ({outcome.history.days:.1f} days of event time):")
    print(f"  replay recording every detector's input   {replay_seconds:8.1f} s")
    print(f"  sweep: {values:,} recorded values x {points}-point grids, 7 signals   {total - replay_seconds:8.1f} s")
    print(f"  total                                     {total:8.1f} s")
    print(f"  peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    print(f"  {'signal':14} {'h':>9} {'false alarms/day':>18} {'incidents':>10} {'median delay (events)':>22}")
    for tuning in outcome.tunings:
        before, after = tuning.previous, tuning.chosen
        incidents = lambda p: f"{len(p.detections)}/{len(p.detections) + len(p.missed)}"  # noqa: E731
        print(
            f"  {tuning.signal:14} {tuning.previous_h:>3g} -> {after.h:<3g} {before.false_alarms_per_day:>7.2f} -> {after.false_alarms_per_day:<7.2f} "
            f"{incidents(before):>4} -> {incidents(after):<4} {before.median_delay_events!s:>9} -> {after.median_delay_events!s:<9}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

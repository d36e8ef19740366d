"""False alarms per day and detection delays on traffic with daily and weekly cycles.

Replays a week of diurnal traffic (bench/diurnal_history.py) twice, without and with
incidents that are out of place for their hour, through the pipeline under two sets of
thresholds side by side, event by event:

- ``stationary``: the shipped thresholds with every detector's reference frozen after
  its warm-up (``memory: 0``), which is what the detectors did before they followed
  daily cycles;
- ``defaults``: alerts/thresholds.yaml as shipped;
- with ``--thresholds FILE``, that file too: for example what ``aifm tune`` wrote from
  another clean history (``--seed`` picks another week).

Prints, for each, findings per day on the clean week (by signal), and on the week with
incidents which were found and after how many minutes of event time.

    python bench/bench_diurnal.py [--days 7] [--seed 5 | --seeds 5,1,2] [--thresholds tuned.yaml]

One week is one path: its false alarms and delays move between seeds by several times,
so ``--seeds`` runs several weeks and prints the mean, the worst and the median delays.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from statistics import median

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from diurnal_history import DAY, diurnal_events, diurnal_labels, history_start  # noqa: E402

from monitor.events import parse_ts  # noqa: E402
from monitor.pipeline import Pipeline  # noqa: E402
from monitor.replay.scoring import score  # noqa: E402
from monitor.replay.simulate import write_boundaries  # noqa: E402
from monitor.signals.error_rate import RATE_LIMIT, classify_error  # noqa: E402
from monitor.signals.tool_scope import load_boundaries  # noqa: E402
from monitor.thresholds import REPO_THRESHOLDS, load_thresholds, parse_thresholds  # noqa: E402

#: Detector parameters that make a detector stationary: the reference learned in warm-up, then frozen
#: (CUSUM), or one rate for every hour of the day (Bernoulli CUSUM).
STATIONARY = {"memory": 0.0, "by_hour": False, "level_memory": 0.0}
#: The first minutes of a rate-limit burst whose rate limits are counted: what any detector had to go on by the 10-minute target.
EARLY_SECONDS = 600.0


def variants(extra: Path | None = None) -> dict:
    document = yaml.safe_load(REPO_THRESHOLDS.read_text())
    stationary = json.loads(json.dumps(document))
    for signal in stationary["signals"].values():
        for detector in (signal.get("detector"), *(stream["detector"] for stream in signal.get("streams", {}).values())):
            for name, value in STATIONARY.items():
                if detector is not None and name in detector:
                    detector[name] = value
    chosen = {"stationary": parse_thresholds(stationary, source="stationary"), "defaults": parse_thresholds(document, source="defaults")}
    if extra is not None:
        chosen[extra.stem] = load_thresholds(extra)
    return chosen


def run(days: float, seed: int, incidents: bool, extra: Path | None = None) -> dict:
    with tempfile.TemporaryDirectory() as directory:
        boundaries = load_boundaries(write_boundaries(directory))
    pipelines = {name: Pipeline(thresholds, boundaries) for name, thresholds in variants(extra).items()}
    findings = {name: [] for name in pipelines}
    events = 0
    early = [(label, label.start, label.start + EARLY_SECONDS) for label in diurnal_labels(days) if label.signal == "error_rate"]
    early_rate_limits = [0] * len(early)
    started = time.perf_counter()
    for event in diurnal_events(days, seed=seed, incidents=incidents):
        record = json.dumps(event).encode()
        events += 1
        if "error_type" in event and classify_error(event["error_type"]) == RATE_LIMIT:
            at = parse_ts(event["ts"])
            for index, (label, begin, end) in enumerate(early):
                if begin <= at < end and event.get("model") == label.key["model"]:
                    early_rate_limits[index] += 1
        for name, pipeline in pipelines.items():
            findings[name].extend(pipeline.process_record(record).findings)
    return {"events": events, "seconds": time.perf_counter() - started, "findings": findings, "early_rate_limits": list(zip((label for label, _, _ in early), early_rate_limits, strict=True))}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=float, default=7.0)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--seeds", type=lambda text: [int(seed) for seed in text.split(",")], help="several weeks (comma-separated seeds), each printed, then summarised")
    parser.add_argument("--thresholds", type=Path, help="a third thresholds file to compare (e.g. the output of aifm tune on other history)")
    args = parser.parse_args(argv)
    seeds = args.seeds or [args.seed]
    per_day: dict[str, list[float]] = {}
    delays: dict[tuple[str, str], list[float]] = {}
    for seed in seeds:
        print(f"seed {seed}")
        week(args.days, seed, args.thresholds, per_day, delays)
    if len(seeds) > 1:
        print(f"over {len(seeds)} weeks (seeds {', '.join(map(str, seeds))}):")
        for name, values in per_day.items():
            found = {incident: sorted(minutes) for (variant, incident), minutes in delays.items() if variant == name}
            medians = ", ".join(f"{incident} {median(minutes):.1f} min ({len(minutes)}/{len(seeds)})" for incident, minutes in found.items())
            print(f"  {name:10} clean-week findings per day: mean {sum(values) / len(values):.2f}, max {max(values):.2f}; median delays: {medians}")
    return 0


def week(days: float, seed: int, extra: Path | None, per_day: dict, delays: dict) -> None:
    """One clean week and the same week with incidents, printed; findings per day and delays added to the tallies."""
    clean = run(days, seed, incidents=False, extra=extra)
    print(f"clean week: {clean['events']:,} events over {days:g} days ({clean['seconds']:.0f} s for all runs)")
    for name, found in clean["findings"].items():
        alerts = [f for f in found if f.type == "finding"]
        by_signal = Counter(f"{f.signal}/{f.detector}" for f in alerts)
        by_day = Counter(int((f.ts - history_start()) // DAY) + 1 for f in alerts)
        per_day.setdefault(name, []).append(len(alerts) / days)
        print(f"  {name:10} {len(alerts) / days:6.2f} findings per day   {dict(sorted(by_signal.items()))}")
        print(f"  {'':10} by day of the week: {[by_day.get(day, 0) for day in range(1, int(days) + 1)]}")
    labelled = run(days, seed, incidents=True, extra=extra)
    labels = diurnal_labels(days)
    print(f"week with {len(labels)} incidents out of place for their hour: {labelled['events']:,} events")
    for (label, count), (_, clean_count) in zip(labelled["early_rate_limits"], clean["early_rate_limits"], strict=True):
        print(f"  rate limits of {label.key['model']} in the first {EARLY_SECONDS / 60:.0f} minutes of its error_rate incident: {count} "
              f"(clean week, same minutes: {clean_count})")
    for name, found in labelled["findings"].items():
        result = score(found, labels)
        for incident, delay in result.detected:
            delays.setdefault((name, f"{incident.signal}({','.join(incident.key.values())})"), []).append(delay / 60)
        found_text = ", ".join(f"{i.signal}({','.join(i.key.values())}) {d / 60:.1f} min" for i, d in result.detected)
        missed = ", ".join(f"{i.signal}({','.join(i.key.values())})" for i in result.missed) or "none"
        print(f"  {name:10} found {len(result.detected)}/{len(labels)}: {found_text}; missed: {missed}; "
              f"outside: {len(result.false_alarms) / days:.2f} per day")


if __name__ == "__main__":
    raise SystemExit(main())

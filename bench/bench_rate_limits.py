"""Rate limits on their own stream against all errors together: a 5 a.m. quota burst, side by side.

The model calls of bench/bench_diurnal.py's weeks (bench/diurnal_history.py: load
following the day and the week, 0.3% errors at 3 a.m. and 1.2% at the peak, a third of
them rate limits); in the incident weeks gpt-4o's rate limits rise by 3.6% of its calls
for 30 minutes at 5 a.m. on day 4. The error_rate signal's two detectors from
alerts/thresholds.yaml read the same calls, one per model as in the pipeline: ``rate``
(every error) as shipped, and ``rate_limit`` (rate limits only) at each ``--h`` and at the
shipped one. Printed per detector: false alarms per day over the clean weeks, and the delay
of the first alarm inside the burst (or "missed" within 15 minutes after it).

Then clean histories of the stationary simulator (``monitor.replay.simulate``: 0.33%
rate limits on every call, all day): the rate-limit detector's false alarms there at
each ``--h``, since a stationary hold-out must stay free of them too.

This feeds the detectors directly, not the whole pipeline, so a week takes about half a
minute rather than two; bench/bench_diurnal.py runs the pipeline on the full week.

    python bench/bench_rate_limits.py [--weeks 20] [--h 9,10,11,12] [--histories 64]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from statistics import median

sys.path.insert(0, str(Path(__file__).resolve().parent))
from diurnal_history import DAY, INCIDENTS, diurnal_events, history_start  # noqa: E402

from monitor.events import parse_ts  # noqa: E402
from monitor.replay.simulate import simulate  # noqa: E402
from monitor.signals.error_rate import RATE_LIMIT, classify_error  # noqa: E402
from monitor.thresholds import load_thresholds  # noqa: E402

BURST = next(incident for incident in INCIDENTS if incident.signal == "error_rate")
#: A finding this long after the burst ended still counts as finding it (as replay scoring allows).
LATE = 900.0


def detectors(h_values: list[float]) -> dict[str, tuple[str, object]]:
    """name -> (what it reads: "error" or "rate_limit", a spec that builds the detector): all errors as shipped, rate limits at each h."""
    config = load_thresholds().signals["error_rate"]
    spec = config.detector_for("rate_limit")
    shipped = float(spec.params["h"])
    chosen = {"rate (all errors)": ("error", config.detector_for("rate"))}
    for h in sorted({*h_values, shipped}):
        chosen[f"rate_limit at h {h:g}" + (" (shipped)" if h == shipped else "")] = ("rate_limit", type(spec)(spec.method, {**spec.params, "h": h}))
    return chosen


def alarms(events, chosen: dict, min_samples: int) -> dict[str, list[tuple[str, float]]]:
    """Each detector's alarms (model, time) on the model calls of ``events``, one detector per model, past the signal's minimum-sample floor."""
    built: dict[str, dict] = {name: {} for name in chosen}
    counts: dict[str, int] = {}
    found: dict[str, list[tuple[str, float]]] = {name: [] for name in chosen}
    for event in events:
        if event["kind"] != "model_call":
            continue
        model, ts, error = event["model"], parse_ts(event["ts"]), event.get("error_type")
        counts[model] = counts.get(model, 0) + 1
        rate_limited = error is not None and classify_error(error) == RATE_LIMIT
        for name, (reads, spec) in chosen.items():
            detector = built[name].get(model) or built[name].setdefault(model, spec.build())
            if detector.update(rate_limited if reads == "rate_limit" else error is not None, ts).drift_detected and counts[model] >= min_samples:
                found[name].append((model, ts))
    return found


def week(seed: int, chosen: dict, burst: bool, min_samples: int) -> dict[str, list[tuple[str, float]]]:
    """Each detector's alarms over one diurnal week; with ``burst``, until 15 minutes after it."""
    begin, end = BURST.window(history_start())
    days = (end + LATE - history_start()) / DAY if burst else 7.0
    return alarms(diurnal_events(days, seed=seed, incidents=burst), chosen, min_samples)


def stationary_false_alarms(histories: int, chosen: dict, min_samples: int) -> dict[str, int]:
    """Alarms of each rate-limit detector on clean stationary simulator histories of 40,000 events."""
    rate_limit_detectors = {name: entry for name, entry in chosen.items() if entry[0] == "rate_limit"}
    total = dict.fromkeys(rate_limit_detectors, 0)
    for seed in range(1, histories + 1):
        events, _ = simulate(40_000, seed=seed, incidents=False)
        for name, found in alarms(events, rate_limit_detectors, min_samples).items():
            total[name] += len(found)
    return total


def diurnal_report(weeks: int, chosen: dict, min_samples: int) -> None:
    """Print each detector's false alarms per day over the clean weeks and its delays on the burst weeks."""
    start = history_start()
    begin, end = BURST.window(start)
    false_alarms = {name: 0 for name in chosen}
    delays: dict[str, list[float | None]] = {name: [] for name in chosen}
    for seed in range(1, weeks + 1):
        for name, found in week(seed, chosen, False, min_samples).items():
            false_alarms[name] += len(found)
        for name, found in week(seed, chosen, True, min_samples).items():
            inside = [ts for model, ts in found if model == BURST.key["model"] and begin <= ts <= end + LATE]
            delays[name].append((inside[0] - begin) / 60 if inside else None)
    print(f"{weeks} diurnal weeks (seeds 1-{weeks}), 3 models; rate limits of {BURST.key['model']} +3.6% of its calls for {BURST.minutes:g} minutes at {BURST.hour:g} a.m.:")
    for name in chosen:
        found = sorted(d for d in delays[name] if d is not None)
        shown = ", ".join("missed" if d is None else f"{d:.1f}" for d in delays[name])
        middle = f"median {median(found):.1f} min" if found else "never found"
        print(f"  {name:28} clean: {false_alarms[name] / (7 * weeks):.3f} false alarms per day; burst found {len(found)}/{weeks}, {middle}, within 10 min {sum(d <= 10 for d in found)}/{weeks} ({shown})")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weeks", type=int, default=20, help="diurnal weeks, clean and with the burst (0: skip)")
    parser.add_argument("--h", type=lambda text: [float(h) for h in text.split(",")], default=[9.0, 10.0, 11.0, 12.0])
    parser.add_argument("--histories", type=int, default=64, help="clean stationary simulator histories (0: skip)")
    args = parser.parse_args(argv)
    chosen = detectors(args.h)
    min_samples = load_thresholds().signals["error_rate"].min_samples
    if args.weeks:
        diurnal_report(args.weeks, chosen, min_samples)
    if args.histories:
        stationary = stationary_false_alarms(args.histories, chosen, min_samples)
        print(f"{args.histories} clean stationary simulator histories of 40,000 events (0.33% rate limits all day): false alarms")
        for name, count in stationary.items():
            print(f"  {name:28} {count}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

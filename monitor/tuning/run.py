"""``aifm tune``: replay history once, sweep each detector's threshold, write a thresholds file a team can defend."""

from __future__ import annotations

from dataclasses import dataclass, field

import yaml

from monitor.replay.scoring import LabelledIncident
from monitor.signals import SIGNALS_WITH_DETECTOR
from monitor.thresholds import Thresholds, parse_thresholds
from monitor.tuning.history import History, record_history
from monitor.tuning.sweep import GRIDS, SignalTuning, streams_of, tune_signal
from monitor.tuning.write import write_tuned


@dataclass
class TuneOutcome:
    history: History
    tunings: list[SignalTuning]
    text: str  # the tuned thresholds file
    skipped: list[str] = field(default_factory=list)  # why a signal was not tuned


def tune(
    paths,
    *,
    thresholds: Thresholds,
    thresholds_text: str,
    boundaries,
    incidents: list[LabelledIncident],
    budget_per_day: float,
    margin: float = 2.0,
    signals: list[str] | None = None,
    sources=None,
    embedder=None,
    encoder: str | None = None,
) -> TuneOutcome:
    if not budget_per_day > 0:
        raise ValueError(f"--false-alarms-per-day must be > 0, got {budget_per_day}")
    if not margin >= 1:
        raise ValueError(f"--margin must be >= 1, got {margin}")
    chosen = signals or sorted(SIGNALS_WITH_DETECTOR)
    unknown = sorted(set(chosen) - SIGNALS_WITH_DETECTOR)
    if unknown:
        raise ValueError(f"cannot tune {', '.join(unknown)}: only signals with a detector are tuned ({', '.join(sorted(SIGNALS_WITH_DETECTOR))})")
    history = record_history(paths, thresholds=thresholds, boundaries=boundaries, sources=sources, embedder=embedder)
    if not history.streams:
        raise ValueError("the history holds no event any detector could use")
    tunings, skipped = [], []
    for signal in chosen:
        config = thresholds.signals[signal]
        for stream in (None, *config.stream_detectors):  # the signal's detector, then each stream's own
            name = signal if stream is None else f"{signal}/{stream}"
            method = config.detector_for(stream).method
            if method not in GRIDS:
                skipped.append(f"{name}: method {method} has no decision threshold h to sweep (tuned methods: {', '.join(GRIDS)})")
            elif not streams_of(history, signal, config, stream):
                skipped.append(f"{name}: no event in the history fed its detector")
            else:
                tunings.append(tune_signal(history, signal, config, incidents, budget_per_day=budget_per_day, margin=margin, stream=stream))
    text = write_tuned(thresholds_text, tunings, history, encoder=encoder if embedder is not None else None)
    parse_thresholds(yaml.safe_load(text), source="tuned thresholds")  # what we write must load
    return TuneOutcome(history, tunings, text, skipped)


def format_outcome(outcome: TuneOutcome) -> str:
    history = outcome.history
    labelled = any(t.labelled for t in outcome.tunings)
    lines = [
        f"replayed {history.report.events:,} events, {history.days:.2f} days of event time, in {history.report.seconds:.1f} s",
        "tuned against labelled incidents" if labelled else "no labelled incidents: calibrated on history assumed clean (every alarm counts as false)",
        "",
        f"{'signal':14} {'h':>11} {'false alarms/day':>20} {'median delay (events)':>22} {'detected':>10}  note",
    ]
    for t in outcome.tunings:
        before, after = t.previous, t.chosen
        delay = f"{_g(before.median_delay_events)} -> {_g(after.median_delay_events)}" if t.labelled else "n/a"
        detected = f"{len(after.detections)}/{len(after.detections) + len(after.missed)}" if t.labelled else "n/a"
        h = f"{t.previous_h:g} -> {after.h:g}"
        fa = f"{before.false_alarms_per_day:.3g} -> {after.false_alarms_per_day:.3g}"
        note = "" if t.budget_met else "BUDGET NOT MET"
        lines.append(f"{t.name:14} {h:>11} {fa:>20} {delay:>22} {detected:>10}  {note}")
        for missed in after.missed:
            lines.append(f"    missed: {missed.signal} {','.join(f'{k}={v}' for k, v in sorted(missed.key.items()))}")
        for note_text in t.notes:
            lines.append(f"    note: {note_text}")
    lines += [f"not tuned: {reason}" for reason in outcome.skipped]
    return "\n".join(lines)


def _g(value) -> str:
    return "-" if value is None else f"{value:g}"

"""``--report DIR``: an HTML page with PNG plots, to see at a glance whether a threshold is sane.

Per signal and key: the detector's input over time (rolling mean: the share flagged
for rate signals, the log latency for latency), labelled incidents shaded, alarms marked (the
tuned ``h`` in red, the previous one in grey). Per tuned signal: the delay against
false-alarm trade-off over the swept ``h`` with the chosen point, and a table of what
changed. ``aifm replay --report`` draws the same stream plots with the findings the
replay raised.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

from monitor.replay.scoring import LabelledIncident
from monitor.tuning.history import History, StreamRecord
from monitor.tuning.sweep import SignalTuning

_MAX_KEYS_PER_SIGNAL = 6
_WINDOW = 100
#: What a stream's smoothed line shows, where it is not a share of flagged events.
_WHAT = {
    "latency": "rolling mean of the log latency",
    "embedding_drift": "rolling mean of the log distances",
    ("usage", "input_tokens"): "rolling mean of the log tokens",
    ("usage", "output_tokens"): "rolling mean of the log tokens",
    ("usage", "calls_per_minute"): "one per call",
}
_MAX_POINTS = 4000


def _smooth(record: StreamRecord) -> tuple[list[float], list[float]]:
    """(times, rolling mean over the last values) thinned to at most a few thousand points."""
    values = record.values
    step = max(1, len(values) // _MAX_POINTS)
    times, means, total = [], [], 0.0
    for i, value in enumerate(values):
        total += value
        if i >= _WINDOW:
            total -= values[i - _WINDOW]
        if i % step == 0:
            times.append(record.ts[i])
            means.append(total / min(i + 1, _WINDOW))
    return times, means


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()


def _interesting(streams: list[StreamRecord], incidents: list[LabelledIncident], alarmed: set[int]) -> list[StreamRecord]:
    """Keys with an incident or an alarm first, then the busiest; at most a handful per signal."""

    def has_incident(record: StreamRecord) -> bool:
        return any(i.signal == record.signal and all(record.key.get(k) == v for k, v in i.key.items()) for i in incidents)

    ranked = sorted(streams, key=lambda r: (not has_incident(r), id(r) not in alarmed, -len(r.values)))
    return ranked[:_MAX_KEYS_PER_SIGNAL]


def plot_streams(signal: str, streams: list[StreamRecord], incidents, alarms: dict[int, list[float]], previous: dict[int, list[float]], origin: float, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(len(streams), 1, figsize=(11, 2.1 * len(streams)), squeeze=False, sharex=True)
    for axis, record in zip(axes[:, 0], streams):
        times, means = _smooth(record)
        axis.plot([(ts - origin) / 3600 for ts in times], means, linewidth=0.8, color="#1f77b4")
        for incident in incidents:
            if incident.signal == signal and all(record.key.get(k) == v for k, v in incident.key.items()):
                axis.axvspan((incident.start - origin) / 3600, (incident.end - origin) / 3600, color="orange", alpha=0.25, label="labelled incident")
        for ts in previous.get(id(record), []):
            axis.axvline((ts - origin) / 3600, color="grey", linestyle="--", linewidth=1, label="alarm, previous h")
        for ts in alarms.get(id(record), []):
            axis.axvline((ts - origin) / 3600, color="red", linewidth=1.2, label="alarm")
        what = _WHAT.get((signal, record.detector), _WHAT.get(signal, "rolling share flagged"))
        axis.set_title(f"{signal} / {record.detector}: {record.label} ({len(record.values):,} values; {what}, window {_WINDOW})", fontsize=8)
        axis.tick_params(labelsize=7)
        handles, labels = axis.get_legend_handles_labels()
        unique = dict(zip(labels, handles))
        if unique:
            axis.legend(unique.values(), unique.keys(), fontsize=6, loc="upper left")
    axes[-1, 0].set_xlabel("hours since the start of the history", fontsize=8)
    figure.tight_layout()
    figure.savefig(out, dpi=80)
    plt.close(figure)


def plot_tradeoff(tuning: SignalTuning, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(5.5, 3.6))
    points = [p for p in tuning.curve if p.median_delay_events is not None] if tuning.labelled else tuning.curve
    xs = [p.false_alarms_per_day for p in points]
    ys = [p.median_delay_events if tuning.labelled else p.h for p in points]
    axis.plot(xs, ys, marker="o", linewidth=1, markersize=3)
    for p, x, y in zip(points, xs, ys):
        axis.annotate(f"h={p.h:g}", (x, y), fontsize=6, xytext=(3, 3), textcoords="offset points")
    chosen = tuning.chosen
    if chosen in points:
        axis.plot([chosen.false_alarms_per_day], [chosen.median_delay_events if tuning.labelled else chosen.h], "o", color="red", markersize=8, label=f"chosen h={chosen.h:g}")
    axis.axvline(tuning.budget_per_day, color="grey", linestyle="--", linewidth=1, label=f"budget {tuning.budget_per_day:g}/day")
    axis.set_xlabel("false alarms per day (measured)", fontsize=8)
    axis.set_ylabel("median detection delay (events)" if tuning.labelled else "h", fontsize=8)
    axis.set_title(f"{tuning.signal}: delay vs false alarms over the swept h", fontsize=9)
    axis.legend(fontsize=7)
    axis.tick_params(labelsize=7)
    figure.tight_layout()
    figure.savefig(out, dpi=80)
    plt.close(figure)


def _fmt(value, spec: str = "g") -> str:
    return "-" if value is None else format(value, spec)


def write_report(out_dir: Path, history: History, *, incidents: list[LabelledIncident], tunings: list[SignalTuning] | None = None, title: str) -> Path:
    """Write ``index.html`` and its PNGs under ``out_dir``; returns the page's path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    origin = history.start
    sections, rows = [], []
    by_signal = {t.signal: t for t in tunings or [] if t.stream is None}  # a stream's own detector is in the summary, not drawn
    signals = sorted({record.signal for record in history.streams})
    for signal in signals:
        streams = history.by_signal(signal)
        tuning = by_signal.get(signal)
        if tuning is not None:
            alarms = _times(tuning.chosen.alarms)
            previous = _times(tuning.previous.alarms) if tuning.previous_h != tuning.chosen.h else {}
        else:
            alarms = _finding_times(history, signal)
            previous = {}
        chosen_streams = _interesting(streams, incidents, set(alarms))
        png = out_dir / f"{_slug(signal)}-streams.png"
        plot_streams(signal, chosen_streams, incidents, alarms, previous, origin, png)
        parts = [f"<h2 id='{_slug(signal)}'>{html.escape(signal)}</h2>"]
        if tuning is not None:
            curve_png = out_dir / f"{_slug(signal)}-tradeoff.png"
            plot_tradeoff(tuning, curve_png)
            parts.append(f"<img src='{curve_png.name}' alt='trade-off {html.escape(signal)}'>")
            for note in tuning.notes:
                parts.append(f"<p class='note'>{html.escape(note)}</p>")
            before, after = tuning.previous, tuning.chosen
            rows.append(
                "<tr>"
                + "".join(
                    f"<td>{html.escape(str(cell))}</td>"
                    for cell in (
                        signal,
                        f"{tuning.previous_h:g} → {after.h:g}",
                        f"{before.false_alarms_per_day:.3g} → {after.false_alarms_per_day:.3g}",
                        f"{_fmt(before.median_delay_events)} → {_fmt(after.median_delay_events)}" if tuning.labelled else "n/a (no labels)",
                        f"{len(before.detections)}/{len(before.detections) + len(before.missed)} → {len(after.detections)}/{len(after.detections) + len(after.missed)}" if tuning.labelled else "n/a",
                        "yes" if tuning.budget_met else "NO",
                    )
                )
                + "</tr>"
            )
        parts.append(f"<img src='{png.name}' alt='streams {html.escape(signal)}'>")
        sections.append("\n".join(parts))
    table = ""
    if rows:
        table = (
            "<h2>What changed</h2><table><tr><th>signal</th><th>h</th><th>false alarms / day</th><th>median delay (events)</th>"
            "<th>incidents detected</th><th>budget met</th></tr>" + "".join(rows) + "</table>"
        )
    summary = (
        f"<p>{history.report.events:,} events from {html.escape(', '.join(history.report.files))}; "
        f"{history.days:.2f} days of event time; {len(history.report.findings)} findings with the thresholds replayed; "
        f"{len(incidents)} labelled incidents.</p>"
    )
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:4px 8px}}.note{{color:#a40}}img{{max-width:100%}}</style>
</head><body><h1>{html.escape(title)}</h1>{summary}{table}
{"".join(sections)}
</body></html>
"""
    index = out_dir / "index.html"
    index.write_text(page, encoding="utf-8")
    return index


def _times(alarms) -> dict[int, list[float]]:
    times: dict[int, list[float]] = {}
    for alarm in alarms:
        times.setdefault(id(alarm.stream), []).append(alarm.ts)
    return times


def _finding_times(history: History, signal: str) -> dict[int, list[float]]:
    """Findings of the replay, placed on the stream of their key."""
    times: dict[int, list[float]] = {}
    for finding in history.report.findings:
        if finding.signal != signal or finding.ts is None:
            continue
        for record in history.by_signal(signal):
            if record.key == finding.key and record.detector == finding.detector:
                times.setdefault(id(record), []).append(finding.ts)
    return times

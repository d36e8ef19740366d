"""Writing tuned thresholds back into thresholds.yaml, keeping every comment and adding the evidence.

Only each tuned detector's ``h`` line changes (and its ``burst_h``, which keeps its distance above ``h``). Above it goes a comment saying what the
value was measured on (data range, values seen), what it costs (false alarms per day,
against the budget) and what it buys (median delay, incidents detected or missed),
replacing the comment a previous ``aifm tune`` wrote there.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from monitor.tuning.history import History
from monitor.tuning.sweep import SignalTuning

_KEY = re.compile(r"^(\s*)([A-Za-z_][\w-]*):(.*)$")
_TUNE_COMMENT = re.compile(r"^\s*# (aifm tune |  \S)")


def _day(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%dT%H:%MZ")


def evidence(tuning: SignalTuning, history: History, when: str) -> list[str]:
    """The comment lines stating what a tuned value was measured on and what it costs."""
    point = tuning.chosen
    how = "labelled incidents" if tuning.labelled else "history assumed clean (every alarm counted as false)"
    lines = [
        f"aifm tune {when}: {tuning.method} h swept on {_day(history.start)}..{_day(history.end)} ({history.days:.2f} days, {tuning.events:,} values), {how};",
        f"  {len(point.false_alarms)} false alarm(s) = {point.false_alarms_per_day:.3g}/day measured (budget {tuning.budget_per_day:g}/day, margin {tuning.margin:g} + one grid step); was h {tuning.previous_h:g}",
    ]
    if tuning.labelled:
        if point.detections:
            lines.append(
                f"  median delay {point.median_delay_events:g} events / {point.median_delay_seconds:.0f} s; "
                f"{len(point.detections)} incident(s) detected, {len(point.missed)} missed"
            )
        else:
            lines.append(f"  no incident detected ({len(point.missed)} labelled)")
    lines += [f"  note: {note}" for note in tuning.notes]
    return lines


def write_tuned(text: str, tunings: list[SignalTuning], history: History, when: str | None = None, encoder: str | None = None) -> str:
    """``text`` (a thresholds.yaml) with each tuned signal's ``detector.h`` and its evidence comment.

    With ``encoder`` (the history was embedded by it), embedding drift's ``h`` goes to
    ``per_encoder.<encoder>.h`` where the file has one: its value is that vector space's.
    """
    when = when or datetime.now(UTC).strftime("%Y-%m-%d")
    by_signal = {tuning.name: tuning for tuning in tunings}
    targets = {
        tuning.name: ["signals", tuning.signal, "detector", "h"] if tuning.stream is None else ["signals", tuning.signal, "streams", tuning.stream, "detector", "h"]
        for tuning in tunings
    }
    per_encoder = ("signals", "embedding_drift", "per_encoder", encoder, "h")
    if encoder is not None and "embedding_drift" in by_signal and per_encoder in set(_key_paths(text)):
        targets["embedding_drift"] = list(per_encoder)
    wanted = {tuple(path): signal for signal, path in targets.items()}
    bursts = {tuple(path[:-1]) + ("burst_h",): signal for signal, path in targets.items() if by_signal[signal].burst_offset is not None}
    out: list[str] = []
    done = set()
    for line, names, indent in _lines_with_paths(text):
        if names in wanted:
            tuning = by_signal[wanted[names]]
            while out and _TUNE_COMMENT.match(out[-1]):
                out.pop()
            pad = " " * indent
            out += [f"{pad}# {comment}\n" for comment in evidence(tuning, history, when)]
            out.append(f"{pad}h: {float(tuning.chosen.h)!r}\n")
            done.add(tuning.name)
            continue
        if names in bursts:
            out.append(f"{' ' * indent}burst_h: {float(by_signal[bursts[names]].chosen_burst_h)!r}\n")
            continue
        out.append(line)
    missing = set(by_signal) - done
    if missing:
        raise ValueError(f"no {' or '.join('.'.join(targets[signal]) for signal in sorted(missing))} line in the thresholds file")
    return "".join(out)


def _lines_with_paths(text: str):
    """Each line of a YAML mapping document with the key path it sets (None for other lines) and its indent."""
    path: list[tuple[int, str]] = []
    for line in text.splitlines(keepends=True):
        match = _KEY.match(line)
        if match and not line.lstrip().startswith("#"):
            indent = len(match.group(1))
            while path and path[-1][0] >= indent:
                path.pop()
            path.append((indent, match.group(2)))
            yield line, tuple(name for _, name in path), indent
        else:
            yield line, None, 0


def _key_paths(text: str):
    return (names for _, names, _ in _lines_with_paths(text) if names is not None)

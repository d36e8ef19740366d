"""What the monitor knows about one signal, declared once, next to the code that computes it.

Each signal module ends with a ``SPEC`` (:class:`SignalSpec`): what the signal proxies,
the event fields it reads, the labels of its metric series, the options it takes in
``alerts/thresholds.yaml`` and, per stream (:class:`StreamSpec`), the detector name its
findings carry, its alert, its summary and the keys it runs on. ``monitor.signals``
lists the specs; findings, thresholds validation, the pipeline's key streams, metrics,
alert rules, the runbook table and the README's signal table are all derived from that
list, so adding a signal is its module, one line in the registry, its thresholds and
its runbook prose.

This module imports nothing of the monitor: every other module may import it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

ANY = (float("-inf"), float("inf"))
UNIT = (0.0, 1.0)
NON_NEGATIVE = (0.0, float("inf"))
POSITIVE_COUNT = (1, float("inf"))
MARGIN = (-1.0, 1.0)  # a difference of two cosine similarities

#: The key labels a finding or a metric series may carry, in the order metrics write them.
KEY_LABELS = ("model", "agent", "tool")


@dataclass(frozen=True)
class Option:
    """One signal-specific setting of thresholds.yaml: its type and, for numbers, its range."""

    kind: type
    bounds: tuple[float, float] = ANY


#: The semantic cue's settings, shared by the signals that read an embedded text's margin.
SEMANTIC_OPTIONS = {"semantic_cue": Option(bool), "semantic_margin_from": Option(float, MARGIN), "semantic_margin_full": Option(float, MARGIN)}


@dataclass(frozen=True)
class StreamSpec:
    """One kind of finding a signal raises: a keyed detector's alarm, or a per-violation check.

    ``detector`` is the name findings carry (``"rate"``, ``"seconds"``, ``"violation"``),
    ``keys`` the key labels they carry: ``("model",)``, ``("agent",)``, ``("agent", "tool")``,
    or ``("model", "agent")`` for a stream kept per model and per agent (or per model, else
    per agent, as feedback). ``slot`` names the stream in a key's detector state (and in
    snapshots); None for a check that raises a finding per violation and has no detector.
    ``summary`` is the one sentence both the finding and the alert say; ``happened`` ends
    the alert's description after its subject (the key). ``severity`` is fixed for the
    few streams whose severity is not the signal's setting in thresholds.yaml.
    """

    detector: str
    alert: str
    summary: str
    happened: str
    keys: tuple[str, ...]
    slot: str | None = None
    severity: str | None = None

    @property
    def key_kinds(self) -> tuple[str, ...]:
        """The kinds of key whose detector state holds this stream: "model", "agent" or "tool" (an agent's tool)."""
        return ("tool",) if self.keys == ("agent", "tool") else self.keys


@dataclass(frozen=True)
class SignalSpec:
    """A signal: what it proxies and everything the tables of the monitor say about it.

    ``reads`` names the event fields it reads as ``kind.field``; ``series_labels`` the
    labels of its ``aifm_signal_*`` counters (``("model", "agent")``: its model, else its agent);
    ``ratio_level`` the level of its recorded flagged-share ratio (None: none recorded);
    ``expect_keys_from`` the signal whose series give the keys this signal's findings are
    exported at 0 for (a kill switch may target any agent the monitor has seen).
    ``flagged`` is False for a signal whose per-event value is a measurement, not a flag
    (latency, usage: their own histograms and counters carry them, not ``aifm_signal_*``).
    ``in_thresholds`` is False only for annotations, which take no settings.
    """

    name: str
    proxies: str
    reads: tuple[str, ...]
    series_labels: tuple[str, ...]
    streams: tuple[StreamSpec, ...]
    options: dict[str, Option] = field(default_factory=dict)
    ratio_level: str | None = None
    expect_keys_from: str | None = None
    flagged: bool = True
    in_thresholds: bool = True

    @property
    def has_detector(self) -> bool:
        """True when the signal's streams are tested by a detector (``detector:`` in thresholds.yaml)."""
        return any(stream.slot is not None for stream in self.streams)

    @property
    def finding_keys(self) -> tuple[str, ...]:
        """Every key label one of its findings may carry, in :data:`KEY_LABELS` order."""
        labels = {label for stream in self.streams for label in stream.keys}
        return tuple(label for label in KEY_LABELS if label in labels)

    def stream(self, detector: str) -> StreamSpec:
        for stream in self.streams:
            if stream.detector == detector:
                return stream
        raise KeyError(f"{self.name} has no stream {detector!r}; its streams: {', '.join(s.detector for s in self.streams)}")

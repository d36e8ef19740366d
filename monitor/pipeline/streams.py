"""Key state: the detector streams of every key, found in one lookup per event.

A key is a model, an agent, or an agent's tool; its labels come from bounded sets
(:class:`monitor.keys.KeyCap`). Which streams a key holds is derived from the signal
registry (:func:`monitor.signals.keyed_streams`): a stream whose spec lists the key's
kind. State is O(keys), and caches from raw names to keys are bounded too.
"""

from __future__ import annotations

from collections.abc import Iterator

from monitor.events import Event
from monitor.keys import OTHER, KeyCap
from monitor.signals import REGISTRY, keyed_streams
from monitor.snapshot import SnapshotError

KEY_KINDS = ("model", "agent", "tool")

#: Distinct (model, agent, tool) name triples whose metric labels are remembered.
_LABEL_CACHE_SIZE = 4096

#: Every stream slot any key may hold, in registry order.
_SLOTS = tuple(dict.fromkeys(stream.slot for spec in REGISTRY for stream in spec.streams if stream.slot is not None))
_STREAMS_BY_KIND = {kind: keyed_streams(kind) for kind in KEY_KINDS}


class Stream:
    """One detector on one keyed stream, with its count for the minimum-sample floor.

    ``onset`` is the event time at which the detector's statistic last left zero: Page's
    estimate of when a change started, which a finding reports beside when it was
    detected (a CUSUM alarms some events after the change, and the evidence it sums
    starts at the change).
    """

    __slots__ = ("signal", "detector_name", "detector", "count", "findings", "onset")

    def __init__(self, signal: str, detector_name: str, detector) -> None:
        self.signal = signal
        self.detector_name = detector_name
        self.detector = detector
        self.count = 0
        self.findings = 0
        self.onset: float | None = None

    def feed(self, value, ts: float) -> bool:
        """Count ``value`` and hand it to the detector at event time ``ts``; True if the detector alarmed.

        Without an alarm the onset follows the statistic: it is the time the statistic
        left zero, and none while it is at zero. After an alarm the caller reads the
        onset for its finding, then clears it (the detector re-learns).
        """
        self.count += 1
        detector = self.detector
        detector.update(value, ts)
        if detector._drift_detected:
            return True
        if detector.statistic_value() == 0.0:
            self.onset = None
        elif self.onset is None:
            self.onset = ts
        return False


class KeyStreams:
    """All streams of one key, as attributes named by their specs' ``slot``.

    Attributes rather than a dict: an event reaches each of its detectors without a
    lookup, which is most of what a detector update costs in Python. A slot the key's
    kind does not hold is None.
    """

    __slots__ = ("key", *_SLOTS)

    def __init__(self, key: dict[str, str], kind: str, signals: dict) -> None:
        self.key = key
        for slot in _SLOTS:
            setattr(self, slot, None)
        for signal, spec in _STREAMS_BY_KIND[kind]:
            setattr(self, spec.slot, Stream(signal, spec.detector, signals[signal].detector_for(spec.detector).build()))

    def all(self) -> Iterator[Stream]:
        for slot in _SLOTS:
            stream = getattr(self, slot)
            if stream is not None:
                yield stream

    def state(self) -> dict:
        return {slot: [stream.count, stream.findings, stream.detector.state(), stream.onset] for slot in _SLOTS if (stream := getattr(self, slot)) is not None}

    def load_state(self, state: dict) -> None:
        for slot, (count, findings, detector, onset) in state.items():
            stream = getattr(self, slot) if slot in _SLOTS else None
            if stream is None:
                raise SnapshotError(f"no stream {slot!r} for key {self.key}")
            stream.count, stream.findings = int(count), int(findings)
            stream.onset = None if onset is None else float(onset)
            stream.detector.load_state(detector)


def kind_of(key: dict[str, str]) -> str:
    return "tool" if "tool" in key else "model" if "model" in key else "agent"


class KeyTable:
    """Every key's streams, reached from the raw names on an event; and the capped metric labels of events."""

    def __init__(self, cap: KeyCap, signals: dict) -> None:
        self.cap = cap
        self._signals = signals
        self.keyed: dict[tuple, KeyStreams] = {}
        # per kind, a raw name (a tool's: its name and its agent's) -> its key's streams
        self._by_raw_name: dict[str, dict] = {"model": {}, "agent": {}, "tool": {}}
        self._labels_by_raw: dict[tuple, tuple[str, str, str]] = {}

    def get(self, kind: str, raw: str | None, agent: str | None = None) -> KeyStreams:
        """The streams of one key; ``tool`` keys also carry their agent."""
        names = self._by_raw_name[kind]
        cache_key = (raw, agent) if kind == "tool" else raw
        keyed = names.get(cache_key)
        if keyed is not None:
            return keyed
        value = self.cap.value(kind, raw)
        if kind == "tool":
            agent_value = self.cap.value("agent", agent)
            key = {"agent": agent_value, "tool": value}
            overflow = OTHER in (value, agent_value)
        else:
            key = {kind: value}
            overflow = value == OTHER
        canonical = tuple(key.items())
        keyed = self.keyed.get(canonical)
        if keyed is None:
            keyed = self.keyed[canonical] = KeyStreams(key, kind, self._signals)
        if not overflow:  # names folded into "other" are not cached: that cache would be unbounded
            names[cache_key] = keyed
        return keyed

    def metric_labels(self, event: Event) -> tuple[str, str, str]:
        """The capped (model, agent, tool) labels of an event for metrics; "" where the event has none."""
        raw = (event.model, event.agent, event.tool)
        labels = self._labels_by_raw.get(raw)
        if labels is not None:
            return labels
        labels = (
            "" if raw[0] is None else self.cap.value("model", raw[0]),
            self.cap.value("agent", raw[1]),
            "" if raw[2] is None else self.cap.value("tool", raw[2]),
        )
        # Names folded into "other" are not cached, and the cache is capped: both keep it bounded.
        if OTHER not in labels and len(self._labels_by_raw) < _LABEL_CACHE_SIZE:
            self._labels_by_raw[raw] = labels
        return labels

    def cached_names(self) -> tuple[int, int]:
        """How many raw names map to keys, and how many events' label triples are cached (both bounded)."""
        return sum(len(names) for names in self._by_raw_name.values()), len(self._labels_by_raw)

    def state(self) -> list:
        return [[keyed.key, keyed.state()] for keyed in self.keyed.values()]

    def load_state(self, state: list) -> None:
        for key, streams in state:
            key = {str(label): str(value) for label, value in key.items()}
            keyed = self.keyed[tuple(key.items())] = KeyStreams(key, kind_of(key), self._signals)
            keyed.load_state(streams)

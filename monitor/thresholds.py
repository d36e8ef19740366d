"""Loading and validating ``alerts/thresholds.yaml``, the one source of every threshold.

The worker's detectors, the replay, and the generated alert rules, runbook and
dashboards all read thresholds through :func:`load_thresholds`, so a value tuned on
history is exactly the value deployed. An invalid file fails with a
:class:`ThresholdsError` that names the file, the setting and the valid range.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from monitor.alerting.config import AlertingConfig, parse_alerting
from monitor.detectors import build_detector
from monitor.signals import SIGNALS, SPECS

SEVERITIES = ("critical", "warning", "info")
REPO_THRESHOLDS = Path(__file__).resolve().parent.parent / "alerts" / "thresholds.yaml"

class ThresholdsError(ValueError):
    """The thresholds file is missing, unreadable or invalid."""


@dataclass(frozen=True)
class DetectorSpec:
    method: str
    params: dict[str, Any]

    def build(self):
        return build_detector(self.method, self.params)


@dataclass(frozen=True)
class SignalConfig:
    severity: str
    min_samples: int
    detector: DetectorSpec | None
    options: dict[str, Any] = field(default_factory=dict)
    #: Streams whose detector is not ``detector`` (``streams.<name>.detector``), e.g. usage's calls per minute.
    stream_detectors: dict[str, DetectorSpec] = field(default_factory=dict)
    #: Stream -> why its threshold is what it is (``why``): the one home of that reason, which the
    #: alert rules' runbook blocks and tables quote. Not part of the fingerprint that snapshots carry.
    why: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    def detector_for(self, stream: str | None) -> DetectorSpec | None:
        """The detector of one of this signal's streams (a :class:`~monitor.signals.spec.StreamSpec` detector name); None: the signal's own."""
        return self.stream_detectors.get(stream, self.detector)


@dataclass(frozen=True)
class Thresholds:
    source: str
    max_values_per_label: int
    reorder_window: int
    max_record_bytes: int
    signals: dict[str, SignalConfig]
    alerting: AlertingConfig

    def for_encoder(self, encoder: str) -> Thresholds:
        """These thresholds with embedding drift's detector as ``embedding_drift.per_encoder`` sets it for ``encoder``.

        A CUSUM's false-alarm rate at a given ``h`` depends on the tails of the distances,
        so on the vector space: the monitor's own encoders may each carry their own.
        """
        drift = self.signals["embedding_drift"]
        spec = drift.options.get("per_encoder", {}).get(encoder)
        if spec is None:
            return self
        return dataclasses.replace(self, signals={**self.signals, "embedding_drift": dataclasses.replace(drift, detector=spec)})


def default_thresholds_path() -> Path:
    """``$AIFM_THRESHOLDS`` if set, else the repository's ``alerts/thresholds.yaml``."""
    env = os.environ.get("AIFM_THRESHOLDS")
    return Path(env) if env else REPO_THRESHOLDS


def load_thresholds(path: str | os.PathLike | None = None) -> Thresholds:
    path = Path(path) if path is not None else default_thresholds_path()
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ThresholdsError(f"{path}: cannot read the thresholds file ({error.strerror})") from None
    except yaml.YAMLError as error:
        raise ThresholdsError(f"{path}: not valid YAML ({error})") from None
    return parse_thresholds(document, source=str(path))


def parse_thresholds(document: Any, *, source: str = "<thresholds>") -> Thresholds:
    def fail(where: str, message: str) -> ThresholdsError:
        return ThresholdsError(f"{source}: {where}: {message}")

    if not isinstance(document, dict):
        raise fail("top level", "expected a mapping with 'signals'")
    _reject_unknown(document, {"version", "keys", "replay", "decode", "signals", "alerting"}, "top level", fail)
    keys = _mapping(document.get("keys", {}), "keys", fail)
    max_values = _positive_int(keys.get("max_values_per_label", 200), "keys.max_values_per_label", fail)
    replay = _mapping(document.get("replay", {}), "replay", fail)
    reorder = _positive_int(replay.get("reorder_window", 10_000), "replay.reorder_window", fail)
    decode = _mapping(document.get("decode", {}), "decode", fail)
    max_bytes = _positive_int(decode.get("max_record_bytes", 1_000_000), "decode.max_record_bytes", fail)
    raw_signals = _mapping(document.get("signals"), "signals", fail)
    missing = [name for name in SIGNALS if name not in raw_signals]
    if missing:
        raise fail("signals", f"missing {', '.join(missing)} (every signal needs its thresholds)")
    signals = {}
    for name, raw in raw_signals.items():
        if name not in SIGNALS:
            raise fail(f"signals.{name}", f"unknown signal; known: {', '.join(SIGNALS)}")
        signals[name] = _parse_signal(name, _mapping(raw, f"signals.{name}", fail), fail)
    return Thresholds(
        source=source,
        max_values_per_label=max_values,
        reorder_window=reorder,
        max_record_bytes=max_bytes,
        signals=signals,
        alerting=parse_alerting(document.get("alerting"), fail),
    )


def _parse_signal(name: str, raw: dict, fail) -> SignalConfig:
    where = f"signals.{name}"
    spec = SPECS[name]
    allowed = {"severity", "min_samples", "detector", "streams", "why", *spec.options, *(("per_encoder",) if name == "embedding_drift" else ())}
    _reject_unknown(raw, allowed, where, fail)
    severity = raw.get("severity")
    if severity not in SEVERITIES:
        raise fail(f"{where}.severity", f"must be one of {', '.join(SEVERITIES)}, got {severity!r}")
    min_samples = _positive_int(raw.get("min_samples", 1), f"{where}.min_samples", fail)
    detector = None
    if spec.has_detector:
        detector = _parse_detector(raw.get("detector"), f"{where}.detector", fail)
    elif "detector" in raw or "streams" in raw:
        raise fail(f"{where}.detector", "this signal raises a finding per violation and takes no detector")
    stream_detectors = _stream_detectors(name, raw.get("streams", {}), f"{where}.streams", fail)
    options = {}
    for option, declared in spec.options.items():
        kind, (low, high) = declared.kind, declared.bounds
        if option not in raw:
            raise fail(f"{where}.{option}", "missing")
        value = raw[option]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
            raise fail(f"{where}.{option}", f"expected {kind.__name__}, got {value!r}")
        if kind in (int, float) and not low <= value <= high:
            raise fail(f"{where}.{option}", f"must lie in [{low}, {high}], got {value!r}")
        if kind is list:
            value = [str(item).lower() for item in value]
        if kind is dict:
            value = _required_fields(value, f"{where}.{option}", fail)
        options[option] = value
    if "per_encoder" in raw:
        options["per_encoder"] = _per_encoder(raw["per_encoder"], detector, f"{where}.per_encoder", fail)
    if "semantic_margin_from" in options and not options["semantic_margin_from"] < options["semantic_margin_full"]:
        raise fail(f"{where}.semantic_margin_full", f"must exceed semantic_margin_from ({options['semantic_margin_from']}), got {options['semantic_margin_full']}")
    why = _why(spec, raw.get("why", {}), f"{where}.why", fail)
    return SignalConfig(severity=severity, min_samples=min_samples, detector=detector, options=options, stream_detectors=stream_detectors, why=why)


def _why(spec, raw: Any, where: str, fail) -> dict[str, str]:
    """``why: <reason>`` for a signal with one stream, or ``why: {<stream>: <reason>}``; whitespace folded."""
    streams = [stream.detector for stream in spec.streams]
    if isinstance(raw, str):
        if len(streams) != 1:
            raise fail(where, f"{spec.name} has several streams ({', '.join(streams)}): give a reason per stream")
        raw = {streams[0]: raw}
    reasons = {}
    for stream, text in _mapping(raw, where, fail).items():
        if stream not in streams:
            raise fail(f"{where}.{stream}", f"not a stream of {spec.name}; its streams: {', '.join(streams)}")
        if not isinstance(text, str) or not text.strip():
            raise fail(f"{where}.{stream}", "expected a one-line reason")
        reasons[stream] = " ".join(text.split())
    return reasons


def _stream_detectors(signal: str, raw: Any, where: str, fail) -> dict[str, DetectorSpec]:
    """``streams: {<stream>: {detector: {...}}}``: a detector of its own for some of a signal's streams."""
    streams = sorted(stream.detector for stream in SPECS[signal].streams if stream.slot is not None)
    specs = {}
    for stream, spec in _mapping(raw, where, fail).items():
        if stream not in streams:
            raise fail(f"{where}.{stream}", f"not a stream of {signal}; its streams: {', '.join(streams)}")
        spec = _mapping(spec, f"{where}.{stream}", fail)
        _reject_unknown(spec, {"detector"}, f"{where}.{stream}", fail)
        specs[stream] = _parse_detector(spec.get("detector"), f"{where}.{stream}.detector", fail)
    return specs


def _required_fields(value: dict, where: str, fail) -> dict[str, tuple[str, ...]]:
    """Audit fields per event kind: each kind's list of fields the event schema has."""
    from monitor.events import KINDS, Event

    known = set(Event.__struct_fields__)
    fields = {}
    for kind, names in value.items():
        if kind not in KINDS:
            raise fail(f"{where}.{kind}", f"not an event kind; known: {', '.join(KINDS)}")
        if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
            raise fail(f"{where}.{kind}", "expected a list of field names")
        unknown = sorted(set(names) - known)
        if unknown:
            raise fail(f"{where}.{kind}", f"unknown field(s) {', '.join(unknown)} (docs/events.md lists them)")
        fields[kind] = tuple(names)
    return fields


def _per_encoder(raw: Any, base: DetectorSpec, where: str, fail) -> dict[str, DetectorSpec]:
    """Per encoder, the detector's parameters that differ from ``base`` (the rest are base's)."""
    from monitor.embeddings.encoder import ENCODERS

    specs = {}
    for encoder, overrides in _mapping(raw, where, fail).items():
        if encoder not in ENCODERS:
            raise fail(f"{where}.{encoder}", f"not an encoder; known: {', '.join(ENCODERS)}")
        overrides = _mapping(overrides, f"{where}.{encoder}", fail)
        if "method" in overrides:
            raise fail(f"{where}.{encoder}.method", "the method is the detector's; only its parameters may differ per encoder")
        specs[encoder] = _parse_detector({"method": base.method, **base.params, **overrides}, f"{where}.{encoder}", fail)
    return specs


def _parse_detector(raw: Any, where: str, fail) -> DetectorSpec:
    raw = _mapping(raw, where, fail)
    params = dict(raw)
    method = params.pop("method", None)
    spec = DetectorSpec(method=method, params=params)
    try:
        spec.build()
    except (TypeError, ValueError) as error:
        raise fail(where, str(error)) from None
    return spec


def _mapping(value: Any, where: str, fail) -> dict:
    if not isinstance(value, dict):
        raise fail(where, f"expected a mapping, got {type(value).__name__}")
    return value


def _positive_int(value: Any, where: str, fail) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise fail(where, f"expected an integer >= 1, got {value!r}")
    return value


def _reject_unknown(raw: dict, allowed: set[str], where: str, fail) -> None:
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise fail(where, f"unknown setting(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}")

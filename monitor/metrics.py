"""Every Prometheus metric the monitor exports, defined once.

Namespace ``aifm_``; counters end in ``_total``; times in seconds. Labels come only
from bounded sets: ``model``, ``model_version``, ``agent``, ``tool`` (capped by the
pipeline's key cap, overflow ``other``), ``signal``, ``detector``, ``severity``,
``reason``, ``kind``, ``topic`` and ``partition`` (configured). Never text, ids or hashes.
Label values that do not apply to a series are empty (Prometheus treats an empty
label as absent).

Per-event counts are kept in plain dictionaries and turned into Prometheus counters
when /metrics is scraped (:class:`_EventCounters`): a labelled prometheus_client
counter costs microseconds per increment, which at tens of thousands of events per
second would be a large share of the pipeline's own cost.

Prometheus's ``increase()`` and ``rate()`` cannot see the increment that creates a
series, so series whose label values are known in advance are exposed at 0 before
their first count: event kinds, reject reasons and control actions from the start;
flag and gate-block counters with their signal's event counter; and (once
:meth:`Metrics.expect_findings` is given the thresholds) the findings counter of every
alert for every key its signal has seen. Only a key whose very first event counts
cannot be seen in advance.
"""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from monitor import __version__
from monitor.build import build_name
from monitor.events import CONTROL_ACTIONS, KINDS, REJECT_REASONS, Event
from monitor.findings import ALERT_NAMES, FINDING_KEYS, finding_severity
from monitor.keys import SeriesCap
from monitor.otel.mapping import IGNORED_KINDS
from monitor.signals import MODEL_VERSION, SERIES_LABELS, SPECS
from monitor.signals.error_rate import ERROR_CLASSES
from monitor.signals.spec import KEY_LABELS
from monitor.tally import Tally

_LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0)
_PER_TOKEN_BUCKETS = (0.002, 0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32)
_PROCESSING_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5)


class Metrics:
    """The monitor's metrics in a registry of their own (tests pass a fresh one)."""

    def __init__(self, registry: CollectorRegistry | None = None):
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.build_info = Info("aifm_build", "Version of the running monitor, and whether its per-event path runs compiled (monitor/build.py).", registry=r)
        self.build_info.info({"version": __version__, "build": build_name()})
        # Bounded label sets start at 0, so rate() and increase() see the first event too.
        self.events = Tally(dict.fromkeys(KINDS, 0))  # kind
        self.rejected = Tally(dict.fromkeys(REJECT_REASONS, 0))  # reason
        # (model, agent, tool) -> signal -> [events, flagged]: one lookup per signal and event
        self.signal_counts: dict[tuple[str, str, str], dict[str, list[int]]] = {}
        self.findings = Tally()  # (signal, alert, severity, model, agent, tool)
        self.last_finding_at: dict[tuple, float] = {}  # same labels -> wall-clock time of the latest
        self.version_changes = Tally()  # (model, model_version)
        self.blocked_tool_calls = Tally()  # (agent, tool)
        self.kill_switch_events = Tally(dict.fromkeys(CONTROL_ACTIONS, 0))  # action
        self.tokens = Tally()  # (model, "input" | "output")
        self.model_errors = Tally()  # (model, error class)
        self.finding_severities: dict[tuple[str, str], tuple[str, str]] = {}  # (signal, detector) -> (alert, severity)
        self.embedder = None  # set by the worker in embedding sample mode
        self.cap = SeriesCap()  # worker-wide: partitions cap their own keys, this caps what the worker exports
        r.register(_EventCounters(self))
        self.serving_version = Gauge("aifm_model_version_info", "1 for the model version last seen serving.", ["model", "model_version"], registry=r)
        self._serving: dict[str, str] = {}  # model -> version exported as serving
        self.model_latency: dict[str, _Buckets] = {}  # model -> buckets
        self.per_token_latency: dict[str, _Buckets] = {}
        self.processing = _Buckets(_PROCESSING_BUCKETS)
        self.last_event_ts = 0.0
        self.last_processed_at = 0.0
        self.detector_statistic = Gauge(
            "aifm_detector_statistic", "Current statistic of a detector (compare with aifm_detector_threshold).", ["signal", "detector", *KEY_LABELS], registry=r
        )
        self.detector_threshold = Gauge("aifm_detector_threshold", "Threshold a detector's statistic is compared with.", ["signal", "detector", *KEY_LABELS], registry=r)
        self.detector_events = Gauge("aifm_detector_events", "Events a detector has seen (the minimum-sample floor applies to it).", ["signal", "detector", *KEY_LABELS], registry=r)
        self.skipped = Counter("aifm_records_skipped", "Records skipped because a restored snapshot already holds them.", ["topic"], registry=r)
        self.snapshots = Counter("aifm_state_snapshots", "Detector-state snapshots written.", ["topic"], registry=r)
        self.restores = Counter("aifm_state_restores", "Detector-state snapshots restored on partition assignment.", ["topic", "result"], registry=r)
        self.last_snapshot = Gauge("aifm_state_last_snapshot_timestamp_seconds", "When a checkpoint last made detector state durable (snapshots written, offsets committed).", registry=r)
        self.checkpoint_failures = Counter(
            "aifm_state_checkpoint_failures", "Checkpoints that failed: snapshots not written or offsets not committed.", ["reason"], registry=r
        )
        self.snapshot_bytes = Gauge("aifm_state_snapshot_bytes", "Size of the latest snapshot written, per source topic.", ["topic"], registry=r)
        self.consumer_lag = Gauge("aifm_consumer_lag_messages", "End offset minus committed offset, per assigned partition.", ["topic", "partition"], registry=r)
        self.assigned_partitions = Gauge("aifm_assigned_partitions", "Source partitions assigned to this worker.", registry=r)
        self.rebalances = Counter("aifm_rebalances", "Consumer-group rebalances this worker took part in.", registry=r)
        self.commit_latency = Histogram("aifm_commit_latency_seconds", "Offset commit latency.", buckets=_PROCESSING_BUCKETS, registry=r)
        self.broker_up = Gauge("aifm_broker_up", "1 while the broker answers, 0 while it does not.", registry=r)
        self.broker_errors = Counter("aifm_broker_errors", "Failed attempts to reach the broker.", registry=r)
        self.otlp_ignored = Counter("aifm_otlp_spans_ignored", "OTLP spans that are not model or tool calls (agent runs, workflows, chains ...).", ["kind"], registry=r)
        for kind in IGNORED_KINDS:
            self.otlp_ignored.labels(kind)
        self.otlp_joined = Counter("aifm_otlp_log_content_joined", "Model-call spans whose prompt or output came from OTLP log records.", registry=r)
        self.otlp_waiting = Gauge("aifm_otlp_spans_waiting", "Model-call spans waiting for their OTLP log records.", registry=r)

    # -- per event ----------------------------------------------------------------------

    def cap_labels(self, max_values_per_label: int) -> None:
        """The worker-wide label cap, from thresholds.yaml's ``keys.max_values_per_label``."""
        self.cap = SeriesCap(max_values_per_label)

    def observe_event(self, event: Event, signals: dict, labels: tuple[str, str, str]) -> None:
        """Count one accepted event and the signals it produced. ``labels``: its (model, agent, tool), "" where absent."""
        labels = self.cap.labels(labels)
        kind = event.kind
        self.events[kind] += 1
        by_signal = self.signal_counts.get(labels)
        if by_signal is None:
            by_signal = self.signal_counts[labels] = {}
        # Tallied under every label; the labels that apply to the signal are kept at scrape time.
        for signal, value in signals.items():
            flag = value.get("flag")
            if flag is None:
                continue
            counts = by_signal.get(signal)
            if counts is None:
                counts = by_signal[signal] = [0, 0]
            counts[0] += 1
            if flag:
                counts[1] += 1
        model, agent, tool = labels
        scope = signals.get("tool_scope")
        if scope is not None and scope["blocked"]:
            self.blocked_tool_calls[(agent, tool)] += 1
        latency = signals.get("latency")
        if latency is not None:
            buckets = self.model_latency.get(model)
            if buckets is None:
                buckets = self.model_latency[model] = _Buckets(_LATENCY_BUCKETS)
                self.per_token_latency[model] = _Buckets(_PER_TOKEN_BUCKETS)
            buckets.observe(latency["seconds"])
            if latency["per_token_seconds"] is not None:
                buckets = self.per_token_latency[model]
                buckets.observe(latency["per_token_seconds"])
        error = signals.get("error_rate")
        if error is not None and error["flag"]:
            self.model_errors[(model, error["error_class"])] += 1
        usage = signals.get("usage")
        if usage is not None:
            if usage["input_tokens"] is not None:
                self.tokens[(model, "input")] += usage["input_tokens"]
            if usage["output_tokens"] is not None:
                self.tokens[(model, "output")] += usage["output_tokens"]
        if kind == "control":
            self.kill_switch_events[event.action] += 1
        ts = event.ts
        if ts is not None and ts > self.last_event_ts:
            self.last_event_ts = ts

    def observe_finding(self, finding) -> None:
        key = finding.key
        labels = self.cap.labels(tuple(key.get(label, "") for label in KEY_LABELS))
        series = (finding.signal, finding.alert, finding.severity, *labels)
        self.last_finding_at[series] = time.time()
        if finding.type == "annotation":
            self.version_changes[(labels[0], self.cap.value("model_version", key["model_version"]))] += 1
            return
        self.findings[series] += 1

    def expect_findings(self, thresholds) -> None:
        """Expose every alert's findings counter at 0 for each key its signal has seen (see the module docstring)."""
        self.finding_severities = {
            (signal, detector): (alert, finding_severity(thresholds, signal, detector))
            for (signal, detector), alert in ALERT_NAMES.items()
            if signal != MODEL_VERSION
        }

    def observe_reject(self, reason: str) -> None:
        self.rejected[reason] += 1

    def record_processed(self, seconds: float) -> None:
        self.processing.observe(seconds)
        self.last_processed_at = time.time()

    # -- periodic -------------------------------------------------------------------------

    def refresh_detectors(self, pipelines) -> None:
        """Set detector gauges and the serving model versions from the pipelines' state."""
        serving: dict[str, str] = {}
        for pipeline in pipelines:
            for signal, detector_name, key, detector, count in pipeline.streams():
                labels = (signal, detector_name, *self.cap.labels(tuple(key.get(label, "") for label in KEY_LABELS)))
                self.detector_statistic.labels(*labels).set(detector.statistic)
                self.detector_threshold.labels(*labels).set(detector.threshold)
                self.detector_events.labels(*labels).set(count)
            for model, version in pipeline.serving_versions().items():
                serving[self.cap.labels((model, "", ""))[0]] = self.cap.value("model_version", version)
        for model, version in serving.items():
            previous = self._serving.get(model)
            if previous != version:
                if previous is not None:
                    self.serving_version.remove(model, previous)  # one serving version per model, not one per version ever seen
                self.serving_version.labels(model, version).set(1)
                self._serving[model] = version


class _Buckets:
    """A histogram without locks or labels: bucket counts, count and sum (exposed at scrape time)."""

    __slots__ = ("bounds", "counts", "total", "count")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.total = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        index = 0  # bisect_left(bounds, value): the bounds below value, a loop in C for a dozen bounds
        for bound in self.bounds:
            if not bound < value:
                break
            index += 1
        self.counts[index] += 1
        self.total += value
        self.count += 1

    def cumulative(self) -> list[tuple[str, int]]:
        running, buckets = 0, []
        for bound, count in zip((*self.bounds, float("inf")), self.counts, strict=True):
            running += count
            buckets.append(("+Inf" if bound == float("inf") else repr(bound), running))
        return buckets


class _EventCounters:
    """Exposes the per-event tallies (and lock-free histograms) to Prometheus at scrape time."""

    _FAMILIES = (
        ("events", "aifm_events", "Events accepted, by kind.", ("kind",)),
        ("rejected", "aifm_events_rejected", "Records rejected (sent to the dead-letter topic), by reason.", ("reason",)),
        ("signal_events", "aifm_signal_events", "Events a signal was computed on.", ("signal", *KEY_LABELS)),
        ("signal_flagged", "aifm_signal_flagged_events", "Events a signal flagged (refusal, failed tool call, audit gap, ...).", ("signal", *KEY_LABELS)),
        ("findings", "aifm_findings", "Findings published, by signal, alert and severity.", ("signal", "alert", "severity", *KEY_LABELS)),
        ("version_changes", "aifm_model_version_changes", "Serving model version changes seen.", ("model", "model_version")),
        ("blocked_tool_calls", "aifm_tool_calls_blocked", "Tool calls a pre-call gate blocked.", ("agent", "tool")),
        ("kill_switch_events", "aifm_kill_switch_events", "Control events, by action.", ("action",)),
        ("model_errors", "aifm_model_errors", "Failed model calls, by model and error class (rate_limit, timeout, server_error, ...).", ("model", "error_class")),
        ("tokens", "aifm_model_tokens", "Tokens of model calls, by model and direction (input, output; a failed call's output is not counted).", ("model", "direction")),
    )

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def describe(self):
        return []  # collected only at scrape time

    def collect(self):
        metrics = self.metrics
        signal_events, signal_flagged = _signal_series(metrics.signal_counts)
        for attribute, name, help_text, labels in self._FAMILIES:
            family = CounterMetricFamily(name, help_text, labels=labels)
            if attribute == "signal_events":
                items = signal_events.items()
            elif attribute == "signal_flagged":
                items = ((series, signal_flagged.get(series, 0)) for series in signal_events)
            elif attribute == "blocked_tool_calls":
                items = {**_expected_blocked(signal_events), **metrics.blocked_tool_calls}.items()
            elif attribute == "model_errors":
                items = {**_expected_errors(signal_events), **metrics.model_errors}.items()
            elif attribute == "findings":
                items = {**_expected_findings(signal_events, metrics.finding_severities), **metrics.findings}.items()
            else:
                items = list(getattr(metrics, attribute).items())
            for series, count in items:
                values = series if isinstance(series, tuple) else (series,)
                family.add_metric(list(values), count)
            yield family
        for attribute, name, help_text in (
            ("model_latency", "aifm_model_latency_seconds", "Model call latency."),
            ("per_token_latency", "aifm_model_latency_per_output_token_seconds", "Model call latency per output token."),
        ):
            family = HistogramMetricFamily(name, help_text, labels=["model"])
            for model, buckets in list(getattr(metrics, attribute).items()):
                family.add_metric([model], buckets.cumulative(), buckets.total)
            yield family
        family = HistogramMetricFamily("aifm_record_processing_seconds", "Time to process one record (object or batch).")
        family.add_metric([], metrics.processing.cumulative(), metrics.processing.total)
        yield family
        family = GaugeMetricFamily(
            "aifm_last_finding_timestamp_seconds",
            "Wall-clock time of the latest finding (or model-version annotation) per alert and key; alert rules fire while it is recent.",
            labels=["signal", "alert", "severity", *KEY_LABELS],
        )
        for series, at in list(metrics.last_finding_at.items()):
            family.add_metric(list(series), at)
        yield family
        yield from _embedding_families(metrics.embedder)
        yield CounterMetricFamily(
            "aifm_metric_labels_folded",
            "Observations exported under 'other' by the worker's label cap (values per label, combinations per family).",
            value=metrics.cap.folded,
        )
        yield GaugeMetricFamily("aifm_last_event_timestamp_seconds", "Event time of the newest event processed.", value=metrics.last_event_ts)
        yield GaugeMetricFamily("aifm_last_processed_timestamp_seconds", "Wall-clock time the last record was processed.", value=metrics.last_processed_at)


def _embedding_families(embedder):
    """Sampling for embeddings: offered and sampled per model (outputs) or tool (results), the sampled fraction, encoder time.

    Budget keys are ``("model", name)`` or ``("tool", name)``; the other label is empty.
    """
    if embedder is None:
        return
    budget = embedder.sampler

    def labels(key) -> list[str]:
        kind, name = key
        return [name, ""] if kind == "model" else ["", name]

    for name, help_text, tally in (
        ("aifm_embedding_offered", "Model outputs (per model) and tool results (per tool) offered for embedding; precomputed embeddings are not offered.", budget.offered),
        ("aifm_embedding_sampled", "Model outputs and tool results the budget admitted and the worker embedded.", budget.sampled),
    ):
        family = CounterMetricFamily(name, help_text, labels=["model", "tool"])
        for key, count in list(tally.items()):
            family.add_metric(labels(key), count)
        yield family
    family = GaugeMetricFamily(
        "aifm_embedding_sampled_fraction", "Share of offered items embedded (the rest are not seen by embedding drift or the semantic proxies).", labels=["model", "tool"]
    )
    for key, fraction in budget.sampled_fraction().items():
        family.add_metric(labels(key), fraction)
    yield family
    encoder = embedder._encoder
    yield CounterMetricFamily("aifm_embedding_encode_seconds", "Time spent encoding outputs.", value=encoder.seconds if encoder is not None else 0.0)
    yield CounterMetricFamily("aifm_embedding_step_seconds", "Time spent in the whole embed step (choosing, splitting, encoding, scoring), what the budget charges.", value=budget.step_seconds)
    yield GaugeMetricFamily("aifm_embedding_budget_items_per_second", "Outputs and tool results per second the time budget allows, over all keys, at the measured cost per item.", value=budget.items_per_second)


def _expected_blocked(signal_events: Tally) -> dict:
    return {(agent, tool): 0 for (signal, _model, agent, tool) in signal_events if signal == "tool_scope"}


def _expected_errors(signal_events: Tally) -> dict:
    """Every error class at 0 for each model whose calls were checked, so rate() sees a model's first rate limit too."""
    return {(model, error_class): 0 for (signal, model, _agent, _tool) in signal_events if signal == "error_rate" for error_class in ERROR_CLASSES}


def _expected_findings(signal_events: Tally, severities: dict) -> dict:
    """Zero-valued findings series for every alert and every key its signal has seen."""
    keys_by_signal: dict[str, list[tuple[str, str, str]]] = {}
    for signal, *key in signal_events:
        keys_by_signal.setdefault(signal, []).append(tuple(key))
    expected = {}
    for (signal, _detector), (alert, severity) in severities.items():
        keep = [label in FINDING_KEYS[signal] for label in KEY_LABELS]
        for key in keys_by_signal.get(SPECS[signal].expect_keys_from or signal, ()):
            expected[(signal, alert, severity, *(value if kept else "" for value, kept in zip(key, keep, strict=True)))] = 0
    return expected


#: Series labels of a signal kept per model, or per agent for events that name no model.
_MODEL_ELSE_AGENT = ("model", "agent")


def _signal_series(signal_counts: dict) -> tuple[Tally, Tally]:
    """Events and flagged events per signal series: the per-label counts folded onto the labels that identify each signal's stream."""
    events: Tally = Tally()
    flagged: Tally = Tally()
    for (model, agent, tool), by_signal in list(signal_counts.items()):
        for signal, (seen, flags) in list(by_signal.items()):
            kept = SERIES_LABELS[signal]
            if kept == _MODEL_ELSE_AGENT:  # feedback: its model's series, or its agent's when it names no model
                key = (model, "" if model else agent, "")
            else:
                key = (model if "model" in kept else "", agent if "agent" in kept else "", tool if "tool" in kept else "")
            series = (signal, *key)
            events[series] += seen
            flagged[series] += flags
    return events, flagged

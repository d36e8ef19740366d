"""Every alert the monitor ships, built from thresholds.yaml: the one list that rules, tests and docs read.

Two families:

* **Finding alerts**, one per stream of a signal (:data:`monitor.signals.STREAMS`).
  The worker's detectors decide that a stream changed and publish a finding; the worker
  exports the wall-clock time of the latest finding per alert and key
  (``aifm_last_finding_timestamp_seconds``), and the alert fires while that finding is
  younger than ``alerting.finding_hold``. Alerting on the finding, not on a raw rate,
  keeps one statistical decision (the detector's, with its documented false-alarm
  rate) and one name for it on the alerts topic and in Alertmanager.
* **Monitor alerts**: the monitor's own health (worker down, no events, lag, dead
  letters, stale detector state), on the worker's exposition.
"""

from __future__ import annotations

from dataclasses import dataclass

from monitor.alerting import queries
from monitor.findings import finding_severity
from monitor.signals import STREAMS
from monitor.thresholds import Thresholds

#: The subject of an alert's description, by the key labels its findings carry.
_SUBJECTS = {
    ("model",): "Model {{ $labels.model }}",
    ("agent",): "Agent {{ $labels.agent }}",
    ("agent", "tool"): "Agent {{ $labels.agent }}, tool {{ $labels.tool }}",
    ("model", "agent"): 'Key model="{{ $labels.model }}" agent="{{ $labels.agent }}"',
}

@dataclass(frozen=True)
class Alert:
    name: str
    group: str  # "findings" or "monitor"
    severity: str
    expr: str
    for_: str
    summary: str
    description: str
    threshold: str  # the settings behind it, quoted from thresholds.yaml
    why: str
    signal: str | None = None
    detector: str | None = None

    @property
    def anchor(self) -> str:
        return self.name.lower()


def finding_alerts(thresholds: Thresholds) -> list[Alert]:
    alerting = thresholds.alerting
    alerts = []
    for (signal, detector), stream in STREAMS.items():
        name = stream.alert
        alerts.append(
            Alert(
                name=name,
                group="findings",
                severity=finding_severity(thresholds, signal, detector),
                expr=f"{queries.seconds_since_finding(name, alerting.selector)}\n< {alerting.finding_hold_seconds}",
                for_=alerting.finding_for,
                summary=stream.summary,
                description=(
                    f"{_SUBJECTS[stream.keys]} {stream.happened}: latest finding {{{{ $value | humanizeDuration }}}} ago. "
                    f'The finding (statistic, threshold, triggering event id) is on the alerts topic with alert="{name}".'
                ),
                threshold=signal_threshold(thresholds, signal, detector),
                why=_signal_why(thresholds, signal, detector, name),
                signal=signal,
                detector=detector,
            )
        )
    return alerts


def monitor_alerts(thresholds: Thresholds) -> list[Alert]:
    sel = thresholds.alerting.selector
    limits = thresholds.alerting.monitor
    up = queries.select("up", sel)
    events = queries.events_rate_total(sel, "10m")
    lag = queries.select("aifm_consumer_lag_messages", sel)
    snapshot = queries.select("aifm_state_last_snapshot_timestamp_seconds", sel)
    assigned = queries.select("aifm_assigned_partitions", sel)
    failures = queries.select("aifm_state_checkpoint_failures_total", sel)
    why = thresholds.alerting.why
    return [
        Alert(
            name="AIFMWorkerDown",
            group="monitor",
            severity="critical",
            expr=f"{up} == 0\nor\nabsent({up})",
            for_=limits.worker_down_for,
            summary="The aifm worker is not being scraped: AI failures on its partitions go unseen.",
            description="Worker {{ $labels.instance }} of job {{ $labels.job }} has been down or absent for " + limits.worker_down_for + ".",
            threshold=f"up == 0 or no target for {limits.worker_down_for}",
            why=why.get("AIFMWorkerDown", ""),
        ),
        Alert(
            name="AIFMNoEventsReceived",
            group="monitor",
            severity="warning",
            expr=f"({events} or sum by (job) ({up}) * 0)\n== 0",
            for_=limits.no_events_for,
            summary="The aifm worker is up but accepts no events.",
            description="Job {{ $labels.job }} accepted no event in the last 10m and has been silent for " + limits.no_events_for + ": producers, the topic or the consumer group are broken.",
            threshold=f"no accepted event for {limits.no_events_for}",
            why=why.get("AIFMNoEventsReceived", ""),
        ),
        Alert(
            name="AIFMConsumerLagGrowing",
            group="monitor",
            severity="warning",
            expr=f"sum by (job, instance, topic) ({lag}) > {limits.lag_messages}\nand\nsum by (job, instance, topic) (deriv({lag}[10m])) > 0",
            for_=limits.lag_for,
            summary="The aifm worker falls behind its input: findings arrive late.",
            description='Worker {{ $labels.instance }} is {{ $value | printf "%.0f" }} messages behind on topic {{ $labels.topic }} and the lag keeps growing.',
            threshold=f"lag > {limits.lag_messages} messages and growing, for {limits.lag_for}",
            why=why.get("AIFMConsumerLagGrowing", ""),
        ),
        Alert(
            name="AIFMDeadLetterRateHigh",
            group="monitor",
            severity="warning",
            expr=f"{queries.dead_letter_ratio(sel)}\n> {limits.dead_letter_ratio}",
            for_=limits.dead_letter_for,
            summary="A large share of records is rejected to the dead-letter topic and not monitored.",
            description="Job {{ $labels.job }} rejects {{ $value | humanizePercentage }} of the records it receives.",
            threshold=f"rejected / received > {limits.dead_letter_ratio:g} for {limits.dead_letter_for}",
            why=why.get("AIFMDeadLetterRateHigh", ""),
        ),
        Alert(
            name="AIFMDetectorStateStale",
            group="monitor",
            severity="warning",
            expr=f"time() - {snapshot} > {limits.state_stale_seconds}\nand on (job, instance)\n{assigned} > 0",
            for_=limits.state_stale_for,
            summary="Detector state is no longer snapshotted: a restart would lose detector history.",
            description="Worker {{ $labels.instance }} last snapshotted its detector state {{ $value | humanizeDuration }} ago.",
            threshold=f"no snapshot for {limits.state_stale_seconds} s while partitions are assigned, for {limits.state_stale_for}",
            why=why.get("AIFMDetectorStateStale", ""),
        ),
        Alert(
            name="AIFMCheckpointFailing",
            group="monitor",
            severity="warning",
            expr=f"sum by (job, instance, reason) (increase({failures}[{limits.checkpoint_failure_window}])) > 0",
            for_="1m",
            summary="Detector-state checkpoints fail: offsets are not committed and a crash would replay or lose detector history.",
            description="Worker {{ $labels.instance }} failed {{ $value | printf \"%.0f\" }} checkpoint(s) ({{ $labels.reason }}) in the last " + limits.checkpoint_failure_window + ".",
            threshold=f"any failed checkpoint in the last {limits.checkpoint_failure_window}",
            why=why.get("AIFMCheckpointFailing", ""),
        ),
    ]


def _signal_why(thresholds: Thresholds, signal: str, detector: str, name: str) -> str:
    """A finding alert's reason: its signal's ``why`` in thresholds.yaml, or ``alerting.why`` for an annotation."""
    config = thresholds.signals.get(signal)
    reasons = config.why if config is not None else {}
    return reasons.get(detector) or thresholds.alerting.why.get(name, "")


def all_alerts(thresholds: Thresholds) -> list[Alert]:
    return finding_alerts(thresholds) + monitor_alerts(thresholds)


def signal_threshold(thresholds: Thresholds, signal: str, detector: str) -> str:
    """The thresholds.yaml settings behind a finding, in one line."""
    if signal == "model_version":
        return "every change of the serving version"
    config = thresholds.signals[signal]
    options = config.options
    if signal == "tool_scope":
        return f"every out-of-boundary call (at most one finding per agent and tool per {options['cooldown_seconds']:g} s)"
    if signal == "agent_loop":
        once = f"at most one finding per agent per {options['cooldown_seconds']:g} s"
        if detector == "repeated_call":
            return f"max_repeats {options['max_repeats']} identical calls per session ({once})"
        return f"max_calls_per_session {options['max_calls_per_session']} (a boundary file may set its own; {once})"
    if signal == "prompt_injection":
        return f"content scoring >= flag_score {options['flag_score']:g} on the injection cues (at most one finding per agent and tool per {options['cooldown_seconds']:g} s)"
    if signal == "kill_switch":
        return "every kill_switch control event" if detector == "engaged" else (
            f"any call more than grace_seconds {options['grace_seconds']:g} after a halt (at most one finding per agent or model per {options['cooldown_seconds']:g} s)"
        )
    spec = config.detector_for(detector)
    params = ", ".join(f"{name} {value}" for name, value in spec.params.items())
    return f"{spec.method} ({params}); min_samples {config.min_samples}"

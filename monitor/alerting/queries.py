"""PromQL shared by the generated recording rules and dashboards, written once.

Every function takes the label ``matchers`` to select with (the configured scrape-job
selector, plus template-variable filters on dashboards) and returns a query string.
Ratios aggregate numerator and denominator separately, then divide.
"""

from __future__ import annotations

from monitor.signals import SERIES_LABELS

#: The labels that identify each signal's stream in ``aifm_signal_*`` series.
STREAM_LABELS = SERIES_LABELS


def select(metric: str, matchers: str, **labels: str) -> str:
    """``metric{matchers,label="value",...}``.

    >>> select("aifm_events_total", 'job="aifm"', kind="tool_call")
    'aifm_events_total{job="aifm",kind="tool_call"}'
    """
    parts = [m for m in (matchers,) if m] + [f'{name}="{value}"' for name, value in labels.items()]
    return f"{metric}{{{','.join(parts)}}}"


def by(labels: tuple[str, ...]) -> str:
    return f"sum by ({', '.join(labels)})" if labels else "sum"


def flagged_rate(signal: str | None, matchers: str, window: str = "5m", by_labels: tuple[str, ...] | None = None) -> str:
    """Flagged events per second of ``signal`` (every signal when None), by its stream labels unless ``by_labels``."""
    return _signal_rate("aifm_signal_flagged_events_total", signal, matchers, window, by_labels)


def events_rate(signal: str | None, matchers: str, window: str = "5m", by_labels: tuple[str, ...] | None = None) -> str:
    return _signal_rate("aifm_signal_events_total", signal, matchers, window, by_labels)


def _signal_rate(metric: str, signal: str | None, matchers: str, window: str, by_labels: tuple[str, ...] | None) -> str:
    labels = by_labels if by_labels is not None else STREAM_LABELS[signal]
    selected = select(metric, matchers, signal=signal) if signal is not None else select(metric, matchers)
    return f"{by(labels)} (rate({selected}[{window}]))"


def flagged_ratio(signal: str | None, matchers: str, window: str = "5m", by_labels: tuple[str, ...] | None = None) -> str:
    """Share of a signal's events it flagged, per stream (refusals per answer, failures per tool call, ...)."""
    return f"{flagged_rate(signal, matchers, window, by_labels)}\n/\n{events_rate(signal, matchers, window, by_labels)}"


def latency_quantile(metric: str, quantile: float, matchers: str, window: str = "5m", by_labels: tuple[str, ...] = ("model",)) -> str:
    """The ``quantile`` of histogram ``metric`` over ``window``, per ``by_labels``."""
    return f"histogram_quantile({quantile}, sum by ({', '.join((*by_labels, 'le'))}) (rate({select(metric + '_bucket', matchers)}[{window}])))"


def events_rate_total(matchers: str, window: str = "5m", by_labels: tuple[str, ...] = ("job",)) -> str:
    return f'{by(by_labels)} (rate({select("aifm_events_total", matchers)}[{window}]))'


def rejected_rate_total(matchers: str, window: str = "5m", by_labels: tuple[str, ...] = ("job",)) -> str:
    return f'{by(by_labels)} (rate({select("aifm_events_rejected_total", matchers)}[{window}]))'


def dead_letter_ratio(matchers: str, window: str = "5m") -> str:
    """Rejected records per record received (accepted events plus rejected records)."""
    rejected = rejected_rate_total(matchers, window)
    return f"{rejected}\n/\n({events_rate_total(matchers, window)} + {rejected})"


def seconds_since_finding(alert: str | None, matchers: str, by_labels: tuple[str, ...] = ("signal", "model", "agent", "tool")) -> str:
    """Seconds since the latest finding of ``alert`` (of every alert when None), per key (the most recent wins)."""
    selected = select("aifm_last_finding_timestamp_seconds", matchers, alert=alert) if alert is not None else select("aifm_last_finding_timestamp_seconds", matchers)
    return f"min by ({', '.join(by_labels)}) (time() - {selected})"


def version_changes(matchers: str) -> str:
    """A sample at each moment a (model, version) pair starts serving: dashboard annotations."""
    info = select("aifm_model_version_info", matchers)
    return f"{info} unless {info} offset 1m"

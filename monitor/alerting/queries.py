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


def flagged_rate(signal: str, matchers: str, window: str = "5m") -> str:
    return f'{by(STREAM_LABELS[signal])} (rate({select("aifm_signal_flagged_events_total", matchers, signal=signal)}[{window}]))'


def events_rate(signal: str, matchers: str, window: str = "5m") -> str:
    return f'{by(STREAM_LABELS[signal])} (rate({select("aifm_signal_events_total", matchers, signal=signal)}[{window}]))'


def flagged_ratio(signal: str, matchers: str, window: str = "5m") -> str:
    """Share of a signal's events it flagged, per stream (refusals per answer, failures per tool call, ...)."""
    return f"{flagged_rate(signal, matchers, window)}\n/\n{events_rate(signal, matchers, window)}"


def latency_quantile(metric: str, quantile: float, matchers: str, window: str = "5m") -> str:
    return f"histogram_quantile({quantile}, sum by (model, le) (rate({select(metric + '_bucket', matchers)}[{window}])))"


def events_rate_total(matchers: str, window: str = "5m", by_labels: tuple[str, ...] = ("job",)) -> str:
    return f'{by(by_labels)} (rate({select("aifm_events_total", matchers)}[{window}]))'


def rejected_rate_total(matchers: str, window: str = "5m", by_labels: tuple[str, ...] = ("job",)) -> str:
    return f'{by(by_labels)} (rate({select("aifm_events_rejected_total", matchers)}[{window}]))'


def dead_letter_ratio(matchers: str, window: str = "5m") -> str:
    """Rejected records per record received (accepted events plus rejected records)."""
    rejected = rejected_rate_total(matchers, window)
    return f"{rejected}\n/\n({events_rate_total(matchers, window)} + {rejected})"


def seconds_since_finding(alert: str, matchers: str) -> str:
    """Seconds since the latest finding of ``alert``, per signal and key (the most recent key wins)."""
    return f'min by (signal, model, agent, tool) (time() - {select("aifm_last_finding_timestamp_seconds", matchers, alert=alert)})'


def version_changes(matchers: str) -> str:
    """A sample at each moment a (model, version) pair starts serving: dashboard annotations."""
    info = select("aifm_model_version_info", matchers)
    return f"{info} unless {info} offset 1m"

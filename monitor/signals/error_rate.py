"""Provider errors per model: rate limits, server errors, timeouts; and rate limits alone.

Proxies: a provider incident or quota exhaustion. These calls may be retried and
succeed eventually, so request-level 5xx dashboards of the application stay green
while users wait or get degraded fallbacks. The error class is a bounded label.

Rate limits are also tested on their own. Quota exhaustion comes as a burst of one
class, and a burst of 429s is diluted in the rate of all errors: at a 0.4% error rate,
a third of it rate limits, a rise to 4% of rate limits is a tenfold rise of the errors
but a thirtyfold one of the rate limits. It also has a runbook of its own (the quota,
not the provider's health).
"""

from __future__ import annotations

from monitor.signals.spec import SignalSpec, StreamSpec

#: The error class of a rate limit (429, quota, throttling): the class the rate_limit stream counts.
RATE_LIMIT = "rate_limit"
#: Every class :func:`classify_error` returns: a bounded set, the ``error_class`` label of ``aifm_model_errors_total``.
ERROR_CLASSES = (RATE_LIMIT, "timeout", "content_filter", "server_error", "client_error", "other")


def classify_error(error_type: str) -> str:
    """Map a free-form ``error_type`` onto a bounded class.

    >>> [classify_error(e) for e in ("429", "RateLimitError", "503", "ReadTimeout", "400", "content_filter", "weird")]
    ['rate_limit', 'rate_limit', 'server_error', 'timeout', 'client_error', 'content_filter', 'other']
    """
    lowered = error_type.lower()
    if "429" in lowered or "rate" in lowered or "quota" in lowered or "throttl" in lowered:
        return RATE_LIMIT
    if "timeout" in lowered or "timed out" in lowered or "deadline" in lowered:
        return "timeout"
    if "content" in lowered and ("filter" in lowered or "policy" in lowered):
        return "content_filter"
    if lowered[:1] == "5" and lowered[:3].isdigit() or "server" in lowered or "overload" in lowered or "unavailable" in lowered or "internal" in lowered:
        return "server_error"
    if lowered[:1] == "4" and lowered[:3].isdigit() or "invalid" in lowered or "bad request" in lowered or "auth" in lowered:
        return "client_error"
    return "other"


def error_signal(error_type: str | None) -> dict:
    if error_type is None:
        return {"flag": False, "error_class": None}
    return {"flag": True, "error_class": classify_error(error_type)}


SPEC = SignalSpec(
    name="error_rate",
    proxies="provider errors per model: rate limits, 5xx, timeouts",
    reads=("model_call.error_type",),
    series_labels=("model",),
    streams=(
        StreamSpec(
            "rate",
            "AIFMProviderErrorRateHigh",
            "A model provider's error rate rose above its reference.",
            "returns provider errors (rate limits, 5xx, timeouts) more often than its reference",
            ("model",),
            slot="error_rate",
        ),
        StreamSpec(
            "rate_limit",
            "AIFMProviderRateLimited",
            "A model provider's rate limits came in a burst over their reference.",
            "is rate-limited (429, quota) far more often than its reference",
            ("model",),
            slot="rate_limit",
        ),
    ),
    ratio_level="model",
)

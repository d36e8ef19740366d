"""A CUSUM on how many events a stream has per window of event time: volume, not values."""

from __future__ import annotations

import math
from math import floor, isfinite

from monitor.detectors.base import OnCUSUM
from monitor.detectors.cusum import CUSUM

#: Silent windows fed as zeros before the next event at most: an hour of silence reads as
#: an hour of zeros, a week of it (an agent retired, then revived) not as 10,080 of them.
MAX_SILENT_WINDOWS = 60


def anscombe(count: int) -> float:
    """Anscombe's transform: a Poisson count of mean m becomes about normal with mean 2 sqrt(m) and deviation 1."""
    return 2.0 * math.sqrt(count + 0.375)


class EventRate(OnCUSUM):
    """Page's CUSUM on the number of events per window of event time (calls per minute).

    Every ``update(x, t)`` is one event at time ``t`` (``x`` is unused); the events are
    counted per ``window`` seconds, and each window, once a later event closes it,
    feeds its count, through :func:`anscombe`, to a :class:`CUSUM` with the remaining
    parameters. Windows with no event between two events are fed as zeros (at most
    :data:`MAX_SILENT_WINDOWS`). A stream that falls silent is therefore seen when it
    speaks again, not while it is silent. The transform makes a Poisson count's noise
    the same at 3 a.m. and at the daily peak, so one ``k`` and ``h`` serve both; with
    a following reference (``memory``) the daily cycle of volume is followed and a
    runaway agent (its calls x3 within minutes) is not.

    Parameters
    ----------
    window
        Seconds of event time per count (> 0).
    **cusum
        ``warmup`` (in windows), ``k``, ``h``, ``direction``, ``clip``, ``memory`` (seconds)
        of the CUSUM on the counts.

    Examples
    --------
    >>> detector = EventRate(window=60.0, warmup=30, k=0.5, h=8.0, direction="both")
    >>> t, alarms = 0.0, []
    >>> for second in range(4 * 3600):
    ...     calls = 3 if second >= 3 * 3600 else (1 if second % 6 == 0 else 0)  # 10 a minute, then 180
    ...     for _ in range(calls):
    ...         if detector.update(1.0, float(second)).drift_detected:
    ...             alarms.append(second)
    >>> [round((a - 3 * 3600) / 60.0, 1) for a in alarms[:1]]  # minutes after the surge: each window adds at most clip - k
    [3.0]
    """

    def __init__(self, *, window: float = 60.0, **cusum):
        if not (window > 0 and isfinite(window)):
            raise ValueError(f"window must be a finite number of seconds > 0, got {window!r}")
        self.window = float(window)
        self._cusum = CUSUM(**cusum)
        self._current: int | None = None  # the open window's index
        self._count = 0
        self._drift_detected = False
        self.alarm_statistic = 0.0  # the inner CUSUM's, copied at each of its alarms

    def state(self) -> list:
        return [self._current, self._count, self._cusum.state()]

    def load_state(self, state: list) -> None:
        current, count, cusum = state
        self._current = None if current is None else int(current)
        self._count = int(count)
        self._cusum.load_state(cusum)
        self.alarm_statistic = self._cusum.alarm_statistic

    @property
    def warming_up(self) -> bool:
        return self._cusum.warming_up

    @property
    def reference(self) -> tuple[float, float] | None:
        """The in-control (mean, deviation) of the transformed counts, or None while warming up."""
        return self._cusum.reference

    def update(self, x, t: float | None = None) -> EventRate:
        """Count one event at ``t`` (seconds of event time; without one, nothing can be counted per window); ``x`` is unused."""
        self._drift_detected = False
        if t is None or not isfinite(t):
            return self
        index = floor(t / self.window)
        if self._current is None:
            self._current = index
        if index > self._current:
            self._close(self._count, index - self._current - 1, t)
            self._current, self._count = index, 0
        self._count += 1  # a late event counts in the open window: windows are not reopened
        return self

    def _close(self, count: int, silent: int, t: float) -> None:
        cusum = self._cusum
        end = (self._current + 1) * self.window
        for value, at in ((count, end), *((0, end + (i + 1) * self.window) for i in range(min(silent, MAX_SILENT_WINDOWS)))):
            cusum.update(anscombe(value), min(at, t))
            if cusum.drift_detected:
                self._drift_detected = True
                self.alarm_statistic = cusum.alarm_statistic
                return  # the silence is reported: the rest of it is not the reference to learn next

    def segment(self) -> None:
        self._cusum.segment()

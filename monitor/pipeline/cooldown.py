"""The alert policy of per-violation signals: at most one finding per key per cooldown.

Tool-scope violations, runaway loops, injections and calls after a halt are judged one
event at a time, with no detector to absorb a burst: a looping agent would otherwise
raise a finding per call. A finding stands for the violations held back since the
key's previous one (``details.violations``), so nothing is lost, only folded.
"""

from __future__ import annotations


class Cooldowns:
    """Per violation key: the event time of its latest finding, and the violations since, not reported."""

    def __init__(self) -> None:
        self._last_alerted: dict[tuple, float] = {}
        self._suppressed: dict[tuple, int] = {}

    def admit(self, key: tuple, ts: float, seconds: float) -> int:
        """0 while ``key`` cools down (the violation is counted for its next finding), else the violations the finding stands for."""
        last = self._last_alerted.get(key)
        if last is not None and -seconds < ts - last < seconds:  # a far-off time (a clock error) does not silence the key
            self._suppressed[key] = self._suppressed.get(key, 0) + 1
            return 0
        self._last_alerted[key] = ts
        return 1 + self._suppressed.pop(key, 0)

    def state(self) -> list:
        return [[list(key), ts, self._suppressed.get(key, 0)] for key, ts in self._last_alerted.items()]

    def load_state(self, state: list) -> None:
        for key, ts, suppressed in state:
            key = tuple(key)
            self._last_alerted[key] = float(ts)
            if suppressed:
                self._suppressed[key] = int(suppressed)

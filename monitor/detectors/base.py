"""The interface every stream relies on, and what detectors share.

A stream (:mod:`monitor.pipeline.streams`) calls ``update(x, t)`` and then reads
``drift_detected``; a finding quotes ``alarm_statistic`` and ``threshold``; dashboards
draw ``statistic`` against ``threshold``; a model-version change calls ``segment()``;
snapshots carry ``state()`` and restore it with ``load_state()`` (plain data only).
After an alarm every detector resets itself, so a lasting change is reported once.
"""

from __future__ import annotations

import math


def forgetting(elapsed: float, memory: float, weight: float, least: float) -> float:
    """The factor that forgets ``elapsed`` time units of a weight with ``memory``, never taking ``weight`` below ``least``.

    Exponential forgetting follows a stream; the floor keeps a quiet stream from being
    judged by its last few values (a weight already under ``least`` is kept as it is).
    """
    decay = math.exp(-elapsed / memory) if elapsed else 1.0
    floor = least / weight if weight > 0 else 1.0
    return max(decay, min(1.0, floor))


class Detector:
    """Base of every detector: subclasses set ``_drift_detected`` and ``alarm_statistic`` (the statistic at the latest alarm, reset by then) in ``__init__`` and ``update``.

    Neither has a class-level default: in the compiled build (``monitor/build.py``) both
    are typed fields of the extension type (``base.pxd``), which a class body cannot set.
    """

    @property
    def drift_detected(self) -> bool:
        """True right after the update that crossed the threshold."""
        return self._drift_detected

    @property
    def warming_up(self) -> bool:
        """True while the detector is still learning its reference (it cannot alarm)."""
        raise NotImplementedError

    @property
    def statistic(self) -> float:
        """The number compared with :attr:`threshold` (dashboards draw both): :meth:`statistic_value`'s."""
        return self.statistic_value()

    def statistic_value(self) -> float:
        """The statistic, as a method that subclasses implement: in the compiled build a C call, where reading a property is a generic attribute look-up."""
        raise NotImplementedError

    @property
    def threshold(self) -> float:
        raise NotImplementedError

    def update(self, x, t: float | None = None) -> Detector:
        raise NotImplementedError

    def segment(self) -> None:
        """A model-version boundary: zero the accumulated evidence (what else is kept is the detector's choice)."""
        raise NotImplementedError

    def state(self):
        raise NotImplementedError

    def load_state(self, state) -> None:
        raise NotImplementedError


class OnCUSUM(Detector):
    """A detector that derives a stream of numbers and tests it with an inner :class:`~monitor.detectors.cusum.CUSUM` (``_cusum``, set by ``__init__``)."""

    def statistic_value(self) -> float:
        return self._cusum.statistic_value()

    @property
    def threshold(self) -> float:
        return self._cusum.threshold

"""Drift of a stream of embeddings: CUSUM on each output's cosine distance to a reference centroid."""

from __future__ import annotations

import math
from math import floor

import numpy as np
from numpy import asarray, float64  # the per-event calls, without a look-up in numpy's namespace each

from monitor.detectors.base import OnCUSUM
from monitor.detectors.cusum import CUSUM


def as_vector(values) -> np.ndarray | None:
    """``values`` as the float64 array :meth:`EmbeddingDrift.update` works on (None stays None).

    An event's embedding feeds several streams (per model and per agent): converting it
    once costs one pass over its floats instead of one per stream.
    """
    return None if values is None else asarray(values, dtype=float64)


class EmbeddingDrift(OnCUSUM):
    """Streaming test of live embeddings against a reference learned at the start of a segment.

    The first ``reference`` vectors define the reference centroid (the mean unit vector:
    what a typical output of this model looks like). Every later output is scored by its
    cosine distance to that centroid, and a one-sided :class:`CUSUM` on the logarithm of
    those distances (its own ``warmup`` learns their in-control mean and spread) alarms
    when outputs move away: a new topic, another language, a different style. One dot
    product per event, so it runs on every sampled output; the benchmark
    (``bench/bench_embedding_drift.py``) compares it with a sliding-window centroid test
    and with batch methods (domain classifier, MMD).

    Why the logarithm: distances to a centroid are positive and skewed to the right, the
    more so the fewer dimensions a vector space has (the spread of a sum of squares).
    A CUSUM standardised by a mean and a deviation reads that long right tail as
    evidence: on raw distances it raised 0.57 false alarms per 1e5 stable MiniLM outputs
    and 1.50 on 8-dimension vectors a producer might send, so its false-alarm rate
    depended on the embedding model. Their logarithm is close to symmetric: 0.10 and
    0.00, with the same delays (a 30% topic shift in 13.5 outputs, a language shift in
    14). A distance is a ratio scale, so the test reads "outputs lie further from the
    reference than they did", in proportion.

    A CUSUM's false alarms come per update, and an encoder fast enough to embed every
    output would update it at the traffic's rate: 0.10 false alarms per 1e5 updates is
    one false alarm in eleven days at one output per second, nine a day at a hundred. So the
    detector takes at most ``max_per_second`` vectors per second of event time
    (:meth:`takes`: the first of each slot of ``1 / max_per_second`` seconds), and its
    false alarms per day are bounded whatever the traffic; 0 takes every vector.

    A change that ends is not a second change: after an alarm the detector keeps the
    reference it had (centroid, and the mean and spread of distances to it), and when
    its CUSUM next alarms it first asks whether the outputs since the change began lie,
    on average, within ``RECOVERY_Z`` standard deviations of that earlier reference.
    If so the stream went back to what it was (the incident's end: a rollback, a
    routing fix), :attr:`recovered` is set instead of :attr:`drift_detected`, and no
    finding is raised. Measured on a text-only replay: the return to English after a
    30-minute language shift was a second finding before.

    After an alarm both the reference and the distance model are re-learned, so a new
    regime is reported once. :meth:`segment` (a new model version) zeroes the evidence
    but keeps the reference, so a version that changes what the model says is measured
    against the version before it.

    Examples
    --------
    >>> rng = np.random.default_rng(3)
    >>> topic_a, topic_b = np.eye(32)[0], np.eye(32)[1]
    >>> def output(shifted):
    ...     return (topic_b if shifted else topic_a) + rng.normal(0, 0.15, 32)
    >>> detector = EmbeddingDrift(reference=200, warmup=200, k=0.5, h=12.0)
    >>> for i in range(1500):
    ...     shifted = i >= 1000 and rng.random() < 0.3
    ...     if detector.update(output(shifted)).drift_detected:
    ...         print(f"change detected at index {i}")
    change detected at index 1014
    """

    RECOVERY_Z = 1.0
    #: Distances below this (an output identical to the centroid, or float rounding below 0) are tested as this.
    MIN_DISTANCE = 1e-6
    #: Snapshot marker: the CUSUM's reference is of log distances (snapshots without it learned raw ones).
    _SCALE = "log"

    def __init__(self, *, reference: int = 300, warmup: int = 300, k: float = 0.5, h: float = 12.0, clip: float = 4.0, max_per_second: float = 0.0):
        if not (isinstance(reference, int) and reference >= 2):
            raise ValueError(f"reference must be an integer >= 2, got {reference!r}")
        if not (isinstance(max_per_second, (int, float)) and 0 <= max_per_second < float("inf")):
            raise ValueError(f"max_per_second must be a finite number >= 0 (0: every vector), got {max_per_second!r}")
        self.reference = reference
        self.max_per_second = float(max_per_second)
        self._slot: float | None = None  # the event-time slot of the last vector taken
        self._cusum = CUSUM(warmup=warmup, k=k, h=h, direction="up", clip=clip)
        self.alarm_statistic = 0.0
        self.last_distance: float | None = None  # of the last vector after the reference was learned
        self.last_tested: float | None = None  # what the CUSUM tested for it: the distance's logarithm
        self.last_z: float | None = None  # that logarithm standardised by the reference's
        self._drift_detected = False
        self.recovered = False  # the last update ended a change by returning to the earlier reference
        self._earlier: tuple[np.ndarray, float, float] | None = None  # before the last alarm: centroid, distance mean and sd
        self._toward_earlier = [0.0, 0]  # z-sum and count against the earlier reference since the CUSUM left zero
        self._relearn()

    def _relearn(self) -> None:
        self._sum: np.ndarray | None = None
        self._count = 0
        self._centroid: np.ndarray | None = None

    def state(self) -> list:
        """The reference and the distance model as plain data (vectors as float64 bytes)."""
        vector = None if self._sum is None else self._sum.astype(np.float64).tobytes()
        centroid = None if self._centroid is None else self._centroid.astype(np.float64).tobytes()
        earlier = None if self._earlier is None else [self._earlier[0].astype(np.float64).tobytes(), self._earlier[1], self._earlier[2]]
        return [self._cusum.state(), vector, self._count, centroid, self.alarm_statistic, self._slot, earlier, list(self._toward_earlier), self._SCALE]

    def load_state(self, state: list) -> None:
        cusum, vector, count, centroid, alarm, *rest = state  # older snapshots lack the slot and the earlier reference
        self._slot = float(rest[0]) if rest and rest[0] is not None else None
        earlier = rest[1] if len(rest) > 1 else None
        self._earlier = None if earlier is None else (np.frombuffer(earlier[0], dtype=np.float64).copy(), float(earlier[1]), float(earlier[2]))
        self._toward_earlier = [float(rest[2][0]), int(rest[2][1])] if len(rest) > 2 else [0.0, 0]
        if len(rest) > 3 and rest[3] == self._SCALE:
            self._cusum.load_state(cusum)
        else:  # a snapshot of raw distances: keep the centroid, learn the distances' model again on the log scale
            self._earlier, self._toward_earlier = None, [0.0, 0]
        self._sum = None if vector is None else np.frombuffer(vector, dtype=np.float64).copy()
        self._centroid = None if centroid is None else np.frombuffer(centroid, dtype=np.float64).copy()
        if self._centroid is not None and self._sum is not None and self._centroid.shape != self._sum.shape:
            raise ValueError("centroid and sum differ in dimensions")
        self._count, self.alarm_statistic = int(count), float(alarm)

    @property
    def distance_cusum(self) -> CUSUM:
        """The CUSUM this detector runs on log distances to its reference (tuning replays recorded ones, :attr:`last_tested`, through one)."""
        return self._cusum

    @property
    def warming_up(self) -> bool:
        return self._centroid is None or self._cusum.warming_up

    @property
    def dimensions(self) -> int | None:
        return None if self._sum is None else self._sum.shape[0]

    @classmethod
    def log_distance(cls, distance: float) -> float:
        """What the CUSUM tests for a cosine distance: its logarithm (floored at ``MIN_DISTANCE``)."""
        return math.log(distance if distance > cls.MIN_DISTANCE else cls.MIN_DISTANCE)

    def takes(self, ts: float | None) -> bool:
        """Whether to feed the vector of an output at event time ``ts`` (False: its slot already had one)."""
        if self.max_per_second <= 0 or ts is None:
            return True
        slot = floor(ts * self.max_per_second)
        if self._slot is not None and slot <= self._slot:
            return False
        self._slot = slot
        return True

    def accepts(self, vector) -> bool:
        """False for a vector whose length differs from the reference's (another embedding model)."""
        return self._sum is None or len(vector) == self._sum.shape[0]

    def update(self, vector, t: float | None = None) -> EmbeddingDrift:
        """Test one embedding (``t``, its event time, is unused: thinning by time is :meth:`takes`)."""
        self._drift_detected = self.recovered = False
        self.last_distance = self.last_tested = self.last_z = None
        x = asarray(vector, dtype=float64)
        norm = math.sqrt(float(x.dot(x)))  # ndarray.dot: numpy's matmul costs twice as much on one vector
        if norm == 0.0:
            return self
        if self._centroid is None:
            x = x / norm
            self._sum = x if self._sum is None else self._sum + x
            self._count += 1
            if self._count >= self.reference:
                self._centroid = self._sum / np.sqrt(self._sum.dot(self._sum))
            return self
        distance = 1.0 - float(x.dot(self._centroid)) / norm
        self.last_distance = distance
        tested = self.last_tested = self.log_distance(distance)
        before = self._cusum.reference  # the CUSUM re-learns its own on an alarm
        cusum = self._cusum.update(tested)
        reference = cusum.reference
        self.last_z = None if reference is None else (tested - reference[0]) / reference[1]
        if self._earlier is not None and before is not None:
            self._track_earlier(x, norm, cusum.statistic_value() == 0.0 and not cusum.drift_detected)
        if cusum.drift_detected:
            toward_sum, toward_count = self._toward_earlier
            if self._earlier is not None and toward_count and toward_sum / toward_count <= self.RECOVERY_Z:
                self.recovered = True
                self._earlier = None
            else:
                self._drift_detected = True
                self.alarm_statistic = cusum.alarm_statistic
                self._earlier = (self._centroid, *before)
            self._toward_earlier = [0.0, 0]
            self._relearn()
        return self

    def _track_earlier(self, x: np.ndarray, norm: float, at_zero: bool) -> None:
        """Accumulate, since the CUSUM last left zero, how far outputs lie from the earlier reference (in its sds)."""
        if at_zero:
            self._toward_earlier = [0.0, 0]
            return
        centroid, mean, sd = self._earlier
        if centroid.shape != x.shape:
            return
        self._toward_earlier[0] += (self.log_distance(1.0 - float(x.dot(centroid)) / norm) - mean) / sd
        self._toward_earlier[1] += 1

    def segment(self) -> None:
        self._cusum.segment()

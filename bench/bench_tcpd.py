"""The CUSUM on TCPD, the public change-point benchmark: the series river bundles, TCPDBench's F1 (margin 5).

van den Burg and Williams (2020), "An Evaluation of Change Point Detection Algorithms",
annotated 37 real series by five annotators each; river ships six of them with their
annotations (``river.drift.datasets``; its Brent series is the daily one, not TCPD's
500-point subsample, so its annotations do not apply and it is left out). Each series
is run through one detector per dimension (multivariate series: the union of their
alarms), and scored with TCPDBench's F1: precision against the union of the
annotations, recall averaged over annotators, the start of the series counted as a
change point in both, a prediction within 5 points of an annotation a true positive.

Rows, side by side on the same series:

- ``never alarm``: the benchmark's zero line (the start of the series only);
- ``shipped``: the latency detector's CUSUM (warm-up 300, k 0.5, h 12), two-sided, the
  alarm index reported;
- ``+ onset``: the same alarms reported at the change's onset (the index at which the
  statistic last left zero), as findings report ``started_at``;
- ``+ floor``: testing from the 20th value of each warm-up on (``test_after``), with onset.

    python bench/bench_tcpd.py
"""

from __future__ import annotations

import math
import statistics

from monitor.detectors.cusum import CUSUM

MARGIN = 5
#: The dimensions TCPD's own version of a series has, where river's has more.
_TCPD_COLUMNS = {"Apple": ("Close", "Volume")}
VARIANTS = {
    "shipped": ({"warmup": 300, "k": 0.5, "h": 12.0, "direction": "both"}, False),
    "+ onset": ({"warmup": 300, "k": 0.5, "h": 12.0, "direction": "both"}, True),
    "+ floor": ({"warmup": 300, "k": 0.5, "h": 12.0, "direction": "both", "test_after": 20}, True),
}


def series() -> dict[str, tuple[list[list[float]], dict[str, list[int]]]]:
    """Name -> (one list of values per dimension, annotations per annotator)."""
    from river.drift import datasets

    out = {}
    for name in ("AirlinePassengers", "Apple", "Bitcoin", "Occupancy", "RunLog", "UKCoalEmploy"):
        dataset = getattr(datasets, name)()
        rows = [y for _, y in dataset]
        if isinstance(rows[0], dict):
            wanted = _TCPD_COLUMNS.get(name, tuple(rows[0]))
            columns = [[float(row[column]) for row in rows] for column in wanted]
        else:
            columns = [[float(value) for value in rows]]
        out[name] = (columns, {str(k): list(v) for k, v in dataset.annotations.items()})
    return out


def detect(columns: list[list[float]], params: dict, onset: bool) -> list[int]:
    """Alarm (or onset) indices of one CUSUM per dimension, merged (one within ``MARGIN`` of another is the same change)."""
    found: set[int] = set()
    for values in columns:
        detector = CUSUM(**params)
        left_zero = None
        for index, value in enumerate(values):
            if not math.isfinite(value):
                continue
            detector.update(value)
            if detector.drift_detected:
                at = left_zero if onset and left_zero is not None else index
                if not any(abs(at - other) <= MARGIN for other in found):
                    found.add(at)
                left_zero = None
            elif detector.statistic == 0.0:
                left_zero = None
            elif left_zero is None:
                left_zero = index
    return sorted(found)


def true_positives(annotations: set[int], predictions: set[int], margin: int = MARGIN) -> set[int]:
    """TCPDBench's matching: each annotation takes the closest unused prediction within ``margin``."""
    left = set(predictions)
    matched = set()
    for point in sorted(annotations):
        close = sorted((abs(point - x), x) for x in left if abs(point - x) <= margin)
        if close:
            matched.add(point)
            left.remove(close[0][1])
    return matched


def f_measure(annotations: dict[str, list[int]], predictions: list[int], margin: int = MARGIN) -> float:
    """TCPDBench's F1 (alpha 0.5), the start of the series counted as a change point."""
    per_annotator = {name: {0, *points} for name, points in annotations.items()}
    union = set().union(*per_annotator.values())
    predicted = {0, *predictions}
    precision = len(true_positives(union, predicted, margin)) / len(predicted)
    recall = statistics.fmean(len(true_positives(points, predicted, margin)) / len(points) for points in per_annotator.values())
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def main() -> int:
    try:
        data = series()
    except ImportError:
        print("river is not installed: pip install river (it bundles the annotated TCPD series)")
        return 0
    rows = {"never alarm": {}}
    for name, (columns, labels) in data.items():
        rows["never alarm"][name] = f_measure(labels, [])
        for variant, (params, onset) in VARIANTS.items():
            rows.setdefault(variant, {})[name] = f_measure(labels, detect(columns, params, onset))
    names = list(data)
    print(f"TCPD series bundled by river, F1 with margin {MARGIN} (TCPDBench's definition)")
    print(f"{'':12}" + "".join(f"{name[:12]:>13}" for name in names) + f"{'mean':>8}")
    for variant, scores in rows.items():
        print(f"{variant:12}" + "".join(f"{scores[name]:13.3f}" for name in names) + f"{statistics.fmean(scores.values()):8.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

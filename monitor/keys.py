"""Bounded label values: the cap that keeps metrics and detector state O(keys).

A flood of unique model names (a bug, or an attacker) must not exhaust memory or
explode metric cardinality. Each label dimension admits its first ``max_values``
distinct values; later ones fold into ``other``. Missing values read ``unknown``.
"""

from __future__ import annotations

OTHER = "other"
UNKNOWN = "unknown"
MAX_LABEL_CHARS = 120


class KeyCap:
    """Admits at most ``max_values`` distinct values per label name.

    >>> cap = KeyCap(max_values=2)
    >>> [cap.value("model", m) for m in ("a", "b", "c", "a", None)]
    ['a', 'b', 'other', 'a', 'unknown']
    """

    def __init__(self, max_values: int = 200):
        if max_values < 1:
            raise ValueError(f"max_values must be >= 1, got {max_values!r}")
        self.max_values = max_values
        self._admitted: dict[str, set[str]] = {}
        self.folded = 0

    def value(self, label: str, raw: str | None) -> str:
        if raw is None or raw == "":
            return UNKNOWN
        admitted = self._admitted.get(label)
        if admitted is None:
            admitted = self._admitted[label] = set()
        if raw in admitted:
            return raw
        if len(admitted) < self.max_values and len(raw) <= MAX_LABEL_CHARS and raw.isprintable():
            admitted.add(raw)
            return raw
        self.folded += 1
        return OTHER

    def state(self) -> list:
        return [{label: sorted(values) for label, values in self._admitted.items()}, self.folded]

    def load_state(self, state: list) -> None:
        admitted, folded = state
        self._admitted = {str(label): {str(v) for v in values[: self.max_values]} for label, values in admitted.items()}
        self.folded = int(folded)

    def admitted(self, label: str) -> frozenset[str]:
        return frozenset(self._admitted.get(label, ()))


#: Distinct (model, agent, tool) combinations a worker exports per metric family; more fold into ``other``.
MAX_SERIES_KEYS = 2_000
_CACHE_SIZE = 8_192


class SeriesCap:
    """The worker-wide cap on metric labels: values per label, and (model, agent, tool) combinations.

    Each partition's pipeline caps its own keys (its detector state), so a worker with
    several partitions could export several times the per-label cap, and combinations of
    capped values multiply. This cap applies to what one worker exports, whatever its
    partitions. Empty labels (a series the label does not apply to) stay empty.

    >>> cap = SeriesCap(max_values=2, max_series=2)
    >>> [cap.labels(t) for t in (("a", "x", ""), ("b", "x", ""), ("c", "x", ""), ("a", "y", ""))]
    [('a', 'x', ''), ('b', 'x', ''), ('other', 'other', ''), ('other', 'other', '')]
    >>> cap.folded
    2
    """

    def __init__(self, max_values: int = 200, max_series: int = MAX_SERIES_KEYS) -> None:
        self.values = KeyCap(max_values)
        self.max_series = max_series
        self._series: set[tuple[str, str, str]] = set()
        self._cache: dict[tuple[str, str, str], tuple[str, str, str]] = {}
        self.folded = 0  # observations exported under "other" instead of their own values

    def labels(self, labels: tuple[str, str, str]) -> tuple[str, str, str]:
        capped = self._cache.get(labels)
        if capped is not None:
            return capped
        capped = tuple(["" if raw == "" else self.values.value(name, raw) for name, raw in zip(("model", "agent", "tool"), labels)])
        if capped not in self._series:
            if len(self._series) < self.max_series:
                self._series.add(capped)
            else:
                capped = tuple(["" if raw == "" else OTHER for raw in capped])
        if capped != labels:
            self.folded += 1
        if len(self._cache) < _CACHE_SIZE and OTHER not in capped:
            self._cache[labels] = capped
        return capped

    def value(self, label: str, raw: str) -> str:
        """One label outside the (model, agent, tool) combinations (a model version), capped the same way."""
        return raw if raw == "" else self.values.value(label, raw)

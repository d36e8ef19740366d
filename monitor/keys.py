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

    def admitted(self, label: str) -> frozenset[str]:
        return frozenset(self._admitted.get(label, ()))

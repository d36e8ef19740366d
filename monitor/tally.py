"""Counts by key, as ``collections.Counter`` keeps them, at the cost of a plain dict's item assignment.

A missing key counts 0. ``Counter`` defines ``__delitem__``, so CPython routes every item
assignment on it (``counts[key] += 1``) through a look-up of ``__setitem__``: ~1,100
instructions where a dict takes ~100. The per-event path counts several times an event
(the pipeline's events by kind, the worker's metric tallies). A subclass made by a class
statement still looks ``__getitem__`` up at every read (~550 instructions for
``counts[key] += 1``); compiled, :class:`Tally` is an extension type (tally.pxd), whose
item access is dict's own.
"""

from __future__ import annotations


class Tally(dict):
    """A dict whose missing keys count 0.

    >>> counts = Tally()
    >>> counts["model_call"] += 1
    >>> counts["model_call"], counts["tool_call"], dict(counts)
    (1, 0, {'model_call': 1})
    """

    __slots__ = ()

    def __missing__(self, key) -> int:
        return 0

    def __reduce__(self):
        # Compiled (an extension type, tally.pxd), copy and pickle would otherwise see no items.
        return (Tally, (dict(self),))

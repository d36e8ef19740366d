"""Signal values rounded to a few decimals: ``round(x, digits)``'s result, at a fraction of its cost.

Signals round their scores (to 4 decimals) so that what they report does not carry float
noise. ``round(x, digits)`` is correctly rounded: CPython writes ``x`` out as a decimal
string and reads the rounded string back, ~2,600 instructions a call, and the per-event
path rounds about once an event (a refusal or injection score, a hallucination score).

:func:`round_to` scales by ``10**digits`` and rounds to a whole number instead. Where the
scaled value lies further than :data:`TIE_MARGIN` from a half, its own rounding error
(under 2.5e-7 below :data:`FAST_BELOW`) cannot carry it across one, so the whole number
is the correctly rounded one; dividing it by ``10**digits`` is correctly rounded too,
which gives the double that ``round`` reads back. Elsewhere (near a half, at or below
zero, beyond :data:`FAST_BELOW`, not finite) it is ``round`` itself.
"""

from __future__ import annotations

#: Powers of ten for 0-4 decimals, exact as doubles.
_SCALES = (1.0, 10.0, 100.0, 1_000.0, 10_000.0)
#: Scaled values this close to a half are handed to ``round``.
TIE_MARGIN = 1e-6
#: Scaled values from here up are handed to ``round`` (an ulp of 2**31 is 4.8e-7).
FAST_BELOW = 2.0**31


def round_to(x: float, digits: int) -> float:
    """``round(x, digits)`` for a float ``x`` and 0 to 4 ``digits``, the same double in every case.

    >>> round_to(0.123456, 4), round_to(2 / 3, 2), round_to(0.03125, 4), round_to(-1.5, 0)
    (0.1235, 0.67, 0.0312, -2.0)
    """
    if x == 0.0:
        return x
    scale = _SCALES[digits]
    scaled = x * scale
    if 0.0 < scaled < FAST_BELOW:
        fraction = scaled % 1.0
        if abs(fraction - 0.5) > TIE_MARGIN:
            whole = scaled - fraction
            return (whole + 1.0 if fraction > 0.5 else whole) / scale
    return round(x, digits)

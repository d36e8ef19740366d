"""round_to gives round's double for every float, in both builds: scores read the same whichever build computed them."""

from __future__ import annotations

import math
import struct
import subprocess
import sys

from hypothesis import given
from hypothesis import strategies as st

from monitor.build import build_environment
from monitor.rounding import round_to


def bits(x: float) -> bytes:
    return struct.pack("<d", x)  # tells 0.0 from -0.0


def near_halves(digits: int, count: int = 20_001) -> list[float]:
    """Each (k + 1/2) / 10**digits, and the doubles either side of it: where scaling could round the wrong way."""
    values = []
    for k in range(count):
        half = (k + 0.5) / 10**digits
        values += [math.nextafter(half, 0.0), half, math.nextafter(half, math.inf), k / 10**digits]
    return values


@given(x=st.floats(allow_nan=False), digits=st.integers(0, 4))
def test_round_to_is_round_for_any_float(x, digits):
    assert bits(round_to(x, digits)) == bits(round(x, digits))


@given(x=st.floats(0.0, 1.0), digits=st.integers(0, 4))
def test_round_to_is_round_for_scores(x, digits):
    assert bits(round_to(x, digits)) == bits(round(x, digits))


def test_round_to_is_round_next_to_every_half_and_at_ties_rounds_to_even():
    for digits in range(5):
        values = near_halves(digits)
        assert [bits(round_to(x, digits)) for x in values] == [bits(round(x, digits)) for x in values]
    assert round_to(0.03125, 4) == 0.0312 and round_to(2.5, 0) == 2.0 and round_to(-0.0, 4) == 0.0 and math.copysign(1.0, round_to(-0.0, 4)) < 0


def test_the_interpreted_build_rounds_alike():
    code = (
        "import sys; sys.path.insert(0, 'tests'); from test_rounding import bits, near_halves; from monitor.rounding import round_to; "
        "print(all(bits(round_to(x, 4)) == bits(round(x, 4)) for x in near_halves(4, 5_000)), type(round_to).__name__)"
    )
    run = subprocess.run([sys.executable, "-c", code], env=build_environment(interpreted=True), capture_output=True, text=True, check=True)
    assert run.stdout.split() == ["True", "function"]

"""How ngspice 39 reads the numbers it is given, so that a value computed in Python arrives bit for bit.

Two readers matter to the fast path (:mod:`zoaf.fastpath`), and neither is correctly rounded:
* ``INPevaluate`` reads a device line's values after numparam wrote them as ``%.15e`` text (:func:`as_device_reads`);
* the front end's ``ft_numparse`` reads the numbers of commands (``alter @r1[resistance]=...``, ``let``):
  integer digits accumulated in a double, the fraction's digits as one integer times ``pow(10, -digits)``, then
  times ``pow(10, exponent)`` (:func:`frontend_number`). :func:`spell` finds a plain number that it reads as
  exactly the value wanted: ``alter`` parses a plain number in ~4 us, an expression such as
  ``2199023255552/274877906944`` (always exact) in ~22 us, and a sizing sends about a hundred of them.
"""
from __future__ import annotations

import math

__all__ = ["as_device_reads", "frontend_number", "spell"]


def as_device_reads(v: float) -> float:
    """A value as numparam writes it into a device line (``%.15e``) and ngspice's ``INPevaluate`` reads it: the
    digits accumulated in a double one by one, times ``pow(10, exponent)`` (not always the nearest double)."""
    text = f"{v:.15e}"
    sign = -1.0 if text.startswith("-") else 1.0
    digits, exponent = text.lstrip("-").split("e")
    digits = digits.replace(".", "")
    # The first 15 digits accumulate exactly (below 2**53); only the 16th step can round, as in C:
    # mantis = 10 * mantis + *here - '0'.
    mantissa = (10 * float(int(digits[:15])) + ord(digits[15])) - 48
    return sign * mantissa * math.pow(10.0, int(exponent) - 15)


def frontend_number(text: str) -> float:
    """The double ngspice's command parser (``ft_numparse``) makes of an unsigned plain number such as
    ``8.0000000000000002e-06``: the same operations, in the same order, on the same libm ``pow``."""
    mantissa, _, exponent = text.partition("e")
    whole, dot, fraction = mantissa.partition(".")
    if not (whole + fraction).isdigit() or exponent and not exponent.lstrip("+-").isdigit():
        raise ValueError(f"not a plain number: {text!r}")
    value = _accumulate(whole)
    if dot:
        value += _accumulate(fraction) * math.pow(10.0, -float(len(fraction)))
    if exponent and int(exponent) != 0:
        value *= math.pow(10.0, float(int(exponent)))
    return value


def _accumulate(digits: str) -> float:
    """``v = v * 10.0 + digit`` over the digits, in doubles: exact (the integer) while below 2**53."""
    if not digits or int(digits) < 2 ** 53:
        return float(int(digits or "0"))
    value = float(int(digits[:15]))          # 15 digits: every partial sum exact
    for c in digits[15:]:
        value = value * 10.0 + (ord(c) - 48)
    return value


def _candidates(v: float):
    """Decimal spellings of ``v > 0`` near it: the shortest round trip, then 17, 16 and 18 digits and their
    neighbours in the last digit, each also as an integer mantissa (``80000000000000002e-22``). Together they
    reach ~99.5% of doubles."""
    yield repr(v)
    for n in (17, 16, 18):
        digits, exponent = f"{v:.{n - 1}e}".split("e")
        base, scale = int(digits.replace(".", "")), int(exponent) - (n - 1)
        for k in (0, 1, -1, 2, -2, 3, -3):
            d = str(base + k)
            yield f"{d[0]}.{d[1:]}e{scale + len(d) - 1}"
            yield f"{d}e{scale}"


def _exact_expression(v: float) -> str:
    """``v`` as an integer below 2**53 divided (multiplied) by powers of two: exact in any IEEE evaluator."""
    fraction, exponent = math.frexp(abs(v))
    text, exponent = ("-" if v < 0 else "") + str(int(fraction * 2 ** 53)), exponent - 53
    op = "/" if exponent < 0 else "*"
    exponent = abs(exponent)
    while exponent >= 30:
        text, exponent = f"{text}{op}1073741824", exponent - 30
    return f"{text}{op}{2 ** exponent}" if exponent else text


def spell(v: float) -> str:
    """``v`` as text ngspice's command parser evaluates to exactly ``v``: a plain number where one of a few
    candidates is read back exactly (:func:`frontend_number`), else an exact expression."""
    if not math.isfinite(v):
        raise ValueError(f"{v}: no ngspice number")
    if v == 0:
        return "0"
    for text in _candidates(abs(v)):
        if frontend_number(text) == abs(v):
            return f"-{text}" if v < 0 else text
    return _exact_expression(v)

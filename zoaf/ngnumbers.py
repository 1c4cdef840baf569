"""How ngspice 39 reads the numbers it is given, so that a value computed in Python arrives bit for bit.

Two readers matter to the fast path (:mod:`zoaf.fastpath`), and neither is correctly rounded:
* ``INPevaluate`` reads a device line's values after numparam wrote them as ``%.15e`` text: the 16 digits
  accumulated in a double one by one, times ``pow(10, exponent - 15)``;
* the front end's ``ft_numparse`` reads the numbers of commands (``alter @r1[resistance]=...``, ``let``):
  integer digits accumulated in a double, a fraction's digits as one integer times ``pow(10, -digits)``, then
  times ``pow(10, exponent)``.
For the same 16 digits written as an integer mantissa (``1234567890123456e-21``) the two do the same operations
in the same order, so :func:`device_value` gives both the value a ``reset`` would put in the device and a text
``alter`` reads as exactly that value: a plain number, which ``alter`` parses in ~4 us (an exact expression such
as ``2199023255552/274877906944`` takes ~22 us, and a sizing sends up to a hundred or more).
"""
from __future__ import annotations

import math

__all__ = ["device_value"]


def device_value(v: float) -> tuple[float, str]:
    """(``v`` as numparam writes it into a device line and ``INPevaluate`` reads it back, the same value spelled
    for an ``alter`` command). The value is not always the double nearest ``v``."""
    text = f"{v:.15e}"
    sign = "-" if text.startswith("-") else ""
    digits, exponent = text.lstrip("-").split("e")
    digits = digits.replace(".", "")
    # The first 15 digits accumulate exactly (below 2**53); only the 16th step can round, as in C:
    # mantis = 10 * mantis + *here - '0' (INPevaluate), val = val * 10.0 + digit (ft_numparse).
    mantissa = (10 * float(int(digits[:15])) + ord(digits[15])) - 48
    scale = int(exponent) - 15
    value = mantissa * math.pow(10.0, scale)
    return (-value if sign else value), f"{sign}{digits}e{scale}"

"""SPICE numbers: ``1.5u``, ``10meg``, ``2m`` (milli), ``10pF``, ``1e-6`` — parsing and round-trip formatting.

As in SPICE, suffixes are case-insensitive, ``m`` is milli and ``meg`` mega, and trailing letters after a
suffix are a unit and ignored (``10pF`` = 10p, ``1kohm`` = 1k). A bare unit (``5V``) has scale 1.
"""
from __future__ import annotations

import math
import re
from decimal import Decimal

from .errors import InputError

SCALE = {"t": "1e12", "g": "1e9", "meg": "1e6", "k": "1e3", "mil": "25.4e-6", "m": "1e-3", "u": "1e-6",
         "n": "1e-9", "p": "1e-12", "f": "1e-15", "a": "1e-18"}
# "meg" and "mil" before "m": the longest prefix wins.
# ASCII: ngspice reads no other digits, and Python's \d read "١٠k" (Arabic-Indic digits) as 10k, [a-z] with
# IGNORECASE the Kelvin sign "K" as k.
_NUMBER = re.compile(r"^\s*([+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)(meg|mil|[tgkmunpfa])?([a-z]*)\s*$",
                     re.IGNORECASE | re.ASCII)
_FORMAT = [(1e12, "t"), (1e9, "g"), (1e6, "meg"), (1e3, "k"), (1.0, ""), (1e-3, "m"), (1e-6, "u"), (1e-9, "n"),
           (1e-12, "p"), (1e-15, "f")]
#: Characters of a value an error line echoes: a TOML integer is unbounded and a spec string runs to a MiB.
MAX_ECHO = 40
#: Characters of a path an error line names: a deep real one is whole, one a received history makes up (thousands
#: of characters, "File name too long") is not.
MAX_PATH_ECHO = 256


def parse(value: str | float | int, *, what: str = "value", numparam: bool = False, nearest: bool = False
          ) -> float:
    """A SPICE number as a float. ``what`` names the field in the error message. ``numparam``: as ngspice reads
    a ``.param`` value or an ``{expression}``'s number, which knows no ``mil`` (``10mil`` is 10 milli, the
    ``il`` a unit) and no ``a`` (``1a`` is 1), and scales in doubles (``4.7n`` is ``4.7 * 1e-9``, an ulp above
    the nearest double; with ``nearest`` the nearest double instead, as the designer means it): device lines
    and zoaf's own inputs know both suffixes and get the nearest double."""
    if isinstance(value, bool):
        raise InputError(f"{what}: expected a number, got {value!r}")
    if isinstance(value, (int, float)):
        try:
            v = float(value)
        except OverflowError:   # an int beyond the float range (TOML integers are unbounded)
            v = math.inf
    else:
        m = _NUMBER.match(str(value))
        if m is None:
            raise InputError(f"{what}: {_shown(value)} is not a SPICE number (examples: 1.5u, 10meg, 2p, 1e-6)"
                             f"{_hint(value)}")
        mantissa, suffix, _unit = m.groups()
        if numparam and suffix:
            suffix = {"mil": "m", "a": ""}.get(suffix.lower(), suffix)
        try:
            if numparam and not nearest or not suffix:     # numparam multiplies in doubles: 4.7n is 4.7 * 1e-9
                v = float(mantissa) * float(SCALE[suffix.lower()]) if suffix else float(mantissa)
            else:                            # Decimal: "100u" is the double nearest 1e-4 (100 * 1e-6 is not)
                v = float(Decimal(mantissa) * Decimal(SCALE[suffix.lower()]))
        except ArithmeticError:   # an exponent beyond Decimal's range (1e999999999u): overflows or is 0
            v = float(mantissa) * float(SCALE[suffix.lower()])
    if not math.isfinite(v):
        raise InputError(f"{what}: {echo(value)} is not a finite number")
    return v


#: A resistor's value as printed on it (RKM code): the suffix where the decimal point goes, as in 2k2 or 4n7.
_RKM = re.compile(r"^\s*(\d+)(meg|[tgkmunpf])(\d+)\s*$", re.IGNORECASE | re.ASCII)
#: Blanks between a number and its suffix or unit ("1 k", "60 dB"), which SPICE reads as two tokens.
_SPACED = re.compile(r"(?<=[\d.])\s+(?=[a-z])", re.IGNORECASE | re.ASCII)


def _shown(value: object) -> str:
    """A value that is no string nor number as the designer wrote it in TOML (a date read as ``datetime.date(1979,
    5, 27)``), else :func:`echo`."""
    if hasattr(value, "isoformat"):          # TOML's dates and times
        return f"the TOML date/time {value.isoformat()}"
    kind = {list: "the array ", dict: "the table "}.get(type(value), "")
    return kind + echo(value)


def _hint(value: object) -> str:
    """What a refused number most likely meant, for its error line ('' when nothing is likely): each was refused
    saying only "not a SPICE number", the designer left to guess what was wrong with ``2k2`` or ``60 dB``."""
    if not isinstance(value, str):
        return "; give a number, or a string like \"1.5u\""
    if "\u00b5" in value or "\u03bc" in value:
        return "; write u for micro"
    if m := _RKM.match(value):
        return f"; write {m[1]}.{m[3]}{m[2]} for the value printed as {value.strip()}"
    if _NUMBER.match(_SPACED.sub("", value)):
        return "; write the suffix or unit right after the number, without a space"
    if "_" in value and _NUMBER.match(value.replace("_", "")):
        return "; write the digits without '_' (TOML reads 1_000 as a number only unquoted)"
    return ""


def echo(value: object) -> str:
    """``repr(value)`` for an error line, its head only past :data:`MAX_ECHO` characters (with its length): a
    400-digit integer or a page-long string would otherwise fill the one line the error has; numpy's repr of an
    array, which breaks its rows and long rows over lines, on one line."""
    return clip(re.sub(r"\n\s*", " ", repr(value)))


def clip(text: str, limit: int = MAX_ECHO) -> str:
    """``text`` as it is (a name in a key path: ``parameters.w1``) for an error line, its head only past ``limit``
    characters, as :func:`echo`: a TOML key or a SPICE name runs to thousands of characters."""
    if len(text) <= limit:
        return text
    return f"{text[:limit - 10]}... ({len(text)} characters)"


def clip_path(path: str) -> str:
    """A path for an error line: :func:`clip` past :data:`MAX_PATH_ECHO` characters."""
    return clip(path, MAX_PATH_ECHO)


def parse_spec(value: str | float | int, *, what: str) -> float:
    """A number of zoaf's own spec: SPICE's, but refusing the spellings that mean something else than what a
    designer writes: an upper-case ``M`` (SPICE's milli: ``200MHz`` is 0.2 Hz, a bound every design meets), an
    ``m`` after an exponent (``1e-6m`` is 1e-9: metres meant, milli read) and ``ppm`` (``p`` is pico: ``50ppm``
    is 5e-11)."""
    m = _NUMBER.match(value) if isinstance(value, str) else None
    if m is not None:
        mantissa, suffix, unit = m.groups()
        exponent = "e" in mantissa.lower()
        mantissa = mantissa if len(mantissa) <= MAX_ECHO else "N"
        metres = suffix in ("m", "M") and not unit and exponent      # 1e-6m: not milli, that many metres
        if suffix == "M":
            milli = "" if metres else f", {mantissa}m{unit} for milli"
            raise InputError(f"{what}: {echo(value)} reads as {mantissa} milli (SPICE's M is m, whatever its case): "
                             f"write {mantissa}meg{unit} for mega{milli}")
        if metres:
            raise InputError(f"{what}: {echo(value)} reads as {mantissa} milli (SPICE's m is milli, not metres): "
                             f"write {mantissa} for that many metres")
        if ((suffix or "") + unit).lower() in ("ppm", "ppb"):
            raise InputError(f"{what}: {echo(value)} reads as {mantissa} pico (SPICE's p) then a unit: write the "
                             f"number in the measure's own unit ({mantissa} for a measure in ppm)")
    return parse(value, what=what)


def format(value: float, digits: int = 4) -> str:  # noqa: A001 - the natural name in this module
    """A readable SPICE number (``12.5u``); for display only. Netlists get ``exact`` values."""
    if value == 0 or not math.isfinite(value):
        return repr(float(value))
    a = abs(value)
    if a >= 1e3 * _FORMAT[0][0] * (1 - 0.5 * 10 ** -digits):    # past t, the largest prefix: 1e+308, not 1e+296t
        return f"{value:.{digits}g}"
    for scale, suffix in _FORMAT:
        if a >= scale * (1 - 0.5 * 10 ** -digits):
            return f"{value / scale:.{digits}g}{suffix}"
    return f"{value:.{digits}g}"


def exact(value: float) -> str:
    """A round-trip exact spelling for netlists (``repr``): 6 digits add ~1e-5 FoM noise."""
    return repr(float(value))

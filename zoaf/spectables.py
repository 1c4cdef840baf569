"""What a spec's TOML tables may hold, before :mod:`zoaf.spec` reads them as a problem: tables where tables go (a
top-level key written below a table, which TOML puts in it, named as such; no entry written as an array of tables),
keywords in any case with a hint for a typo, no control or invisible character in any string (it would reach the
terminal), no two SPICE names that differ in case only (one would replace the other unsaid), no design variable
named as a word ngspice's expressions read as their own (:func:`refuse_ngspice_word`)."""
from __future__ import annotations

import re
from typing import Any, Iterable, Mapping

from . import units
from .errors import InputError, did_you_mean
from .outfile import first_invisible, printable

__all__ = ["keyword", "keywords", "named_tables", "refuse_case_twins", "refuse_controls", "refuse_ngspice_word",
           "refuse_table_arrays", "table", "top_key_hint"]

#: Control characters (C0 but tab and newline, DEL, C1): a string holding one would reach the terminal as an
#: escape sequence when zoaf prints it (a unit, a title).
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def table(where: str, data: Mapping[str, Any], key: str, *, required: bool = True) -> Mapping[str, Any]:
    value = data.get(key)
    if value is None:
        if required:
            raise InputError(f"{where}: missing [{key}] table")
        return {}
    if not isinstance(value, Mapping):
        raise InputError(f"{where}: {key}: must be a table ([{key}]), got {type(value).__name__}")
    return value


#: The spec's keys that are no table: written below a ``[table]`` line, TOML puts them in that table.
TOP_KEYS = ("title", "pdk", "corner")


def top_key_hint(table: str, name: str) -> str:
    """What to say of ``name`` refused in ``table`` when it is a top-level key there (``pdk = "sky130"`` below
    ``[objectives]``: refused as an objective that is no table, or as a measure the deck lacks, never as misplaced)."""
    if str(name).lower() not in TOP_KEYS:
        return ""
    return (f" ({units.echo(name)} is a top-level key, but TOML puts a key written below the [{table}] line in that "
            "table: move it above the first [table] line)")


def keywords(key: str, table: Mapping[str, Any], known: tuple[str, ...]) -> dict[str, Any]:
    """``table`` with its keys lowered: the spec's keywords are read in any case, as its names and ngspice's
    (``Maximize`` was an unknown key). InputError naming the first key not in ``known``, with the known key it is
    likely a typo of (``hii`` for ``hi``, ``maximise``: else refused with no hint, or with a list), or two keys that
    differ in case only (one would silently replace the other)."""
    read: dict[str, Any] = {}
    written: dict[str, str] = {}
    for name, value in table.items():
        low = str(name).lower()
        if low not in known:
            hint = did_you_mean(name, known, cutoff=0.6) or f"expected one of {', '.join(sorted(known))}"
            raise InputError(f"{key}: unknown key {units.echo(name)}; {hint.strip()}")
        if low in written:
            raise InputError(f"{key}: keys {units.echo(written[low])} and {units.echo(name)} are the same key "
                             "(keys are case-insensitive)")
        read[low], written[low] = value, str(name)
    return read


def keyword(value: Any, choices: tuple[str, ...]) -> Any:
    """``value`` as the one of ``choices`` it names in any case (``scale = "LOG"``), else as written: the refusal
    echoes what the designer wrote."""
    return value.lower() if isinstance(value, str) and value.lower() in choices else value


def refuse_controls(where: str, value: Any, path: str = "") -> None:
    """InputError naming the key (``measures.f3db.unit``, ``objectives.o.constraints[0]``) of the first string (or
    key) in ``value`` that holds a control character or an invisible format character (a bidirectional override,
    U+202E, shows the text after it reversed)."""
    items = value.items() if isinstance(value, Mapping) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        name = units.clip(printable(_CONTROL.sub("?", str(key))))
        at = f"{path}[{key}]" if isinstance(value, list) else f"{path}.{name}" if path else name
        for text in (str(key), item):
            if isinstance(text, str) and (m := _CONTROL.search(text)):
                raise InputError(f"{where}: {at}: control character {ord(m.group()):#04x} "
                                 "in a string (it would reach the terminal as an escape sequence); refused")
            if isinstance(text, str) and (c := first_invisible(text)):
                raise InputError(f"{where}: {at}: invisible format character U+{ord(c):04X} in a string (it "
                                 "would reorder or hide what the terminal and reports show); refused")
        refuse_controls(where, item, at)


def named_tables(data: Mapping[str, Any]) -> Iterable[tuple[str, Any]]:
    """The tables whose keys are SPICE names (or corner names, which ``--corner`` takes in any case): the three
    of a spec, ``[corners]`` and each ``[corners.NAME]`` (``TEMP = [85]`` beside ``temp = [27]`` dropped the 85 C
    corner unsaid), ``montecarlo.params``."""
    yield from ((t, data.get(t)) for t in ("parameters", "measures", "objectives", "corners"))
    corners, mc = data.get("corners"), data.get("montecarlo")
    if isinstance(corners, Mapping):
        yield from ((f"corners.{units.clip(str(k))}", v) for k, v in corners.items() if isinstance(v, Mapping))
    if isinstance(mc, Mapping):
        yield "montecarlo.params", mc.get("params")


def refuse_table_arrays(where: str, table: str, value: Any) -> None:
    """InputError for an entry of ``table`` written as an array of tables (``[[measures.f3db]]``): it was read as
    the entry's values ("measures.f3db.unit: must be a string", "corners.hot: the table {...} is not a SPICE
    number")."""
    for name, v in value.items() if isinstance(value, Mapping) else ():
        if isinstance(v, list) and v and all(isinstance(t, Mapping) for t in v):
            at = f"{table}.{units.clip(str(name))}"
            raise InputError(f"{where}: {at}: an array of tables ([[{at}]]); it is one table: write [{at}] or "
                             f"{units.clip(str(name))} = {{ ... }}")


def refuse_case_twins(where: str, table: str, value: Any) -> None:
    """InputError for two keys of ``table`` that differ in case only: SPICE names are case-insensitive, so one
    would silently replace the other (TOML itself refuses only exact duplicates)."""
    seen: dict[str, str] = {}
    for name in value if isinstance(value, Mapping) else ():
        first = seen.setdefault(str(name).lower(), str(name))
        if first != name:
            raise InputError(f"{where}: {table}.{units.clip(str(name))}: the same name as "
                             f"{table}.{units.clip(first)} (names are case-insensitive, as in SPICE)")


#: Words ngspice 39's expressions read as their own value, whatever ``.param`` of that name the deck defines: a design
#: variable so named changes no simulation (``{temper}`` stays 27, ``{time}`` 0 at the operating point).
_READ_AS = {"temper": "the circuit's temperature", "hertz": "an AC analysis's frequency",
            "time": "a transient's time (0 at the operating point)"}
#: The functions of ngspice 39's ``.param`` expressions: a deck that reads a ``.param`` of that name (``{sqrt}``)
#: fails to load (``Expression err``), by ``ngspice -b`` too.
_FUNCTIONS = frozenset("""sqr sqrt sin cos tan exp ln log log10 arctan asin acos atan sinh cosh tanh asinh acosh atanh
    abs pow pwr max min int nint ceil floor sgn ternary_fcn gauss agauss unif aunif limit""".split())


def refuse_ngspice_word(key: str, name: str) -> None:
    """InputError for a design variable ``name`` (its spec ``key``) that ngspice's expressions cannot read as a
    ``.param``: it was sized to no effect (``temper``), or the deck failed at load with an ngspice error that named
    no spec field (``sqrt``)."""
    low = name.lower()
    if low in _READ_AS:
        raise InputError(f"{key}: ngspice reads {low} in an expression as {_READ_AS[low]}, never as a .param of that "
                         "name: sizing it would change nothing; rename it in the deck and the spec")
    if low in _FUNCTIONS:
        raise InputError(f"{key}: {low} is a function of ngspice's expressions: a deck that reads a .param of that "
                         "name does not load; rename it in the deck and the spec")

"""A deck's ``.meas`` cards: :class:`Measure`, and reading one card (:func:`parse_meas`) for
:class:`zoaf.netlist.Netlist`.

ngspice evaluates every card and prints ``name = value`` for each, two cards of one name included (ngspice 39:
``f3 = 1.58778e+05`` then ``f3 = 2.74941e+05``); zoaf keeps one value per name, so a spec measure of that name
would be whichever card came last, unlike what a run by hand shows. A deck with such cards runs (as it does in
``ngspice -b``); a spec that measures such a name is refused, with the cards' lines (:func:`twice_named`).
"""
from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from .decktext import Line
from .errors import InputError
from .ngcommands import MEAS_TYPES, NAME, meas_problem, normalize_equals

__all__ = ["Measure", "parse_meas", "twice_named"]


@dataclass(frozen=True)
class Measure:
    """One ``.meas`` statement: analysis type (``ac``, ``dc``, ``tran``, ``sp``), result name, its text."""

    analysis: str
    name: str
    text: str   # the statement without the leading dot, lower-cased, one line: "meas ac gain_db max vdb(out)"
    line: int


def parse_meas(ln: Line, err: Callable[[int, str], InputError]) -> Measure:
    """The card on logical line ``ln``; ``err(line, what)`` for one that is malformed."""
    parts = ln.text.split()
    if len(parts) < 3:
        raise err(ln.lineno, f"incomplete .meas statement: {ln.raw.strip()!r}")
    kind, name = parts[1], parts[2]
    if kind not in MEAS_TYPES:
        raise err(ln.lineno, f".meas analysis type {kind!r} is not one of {', '.join(sorted(MEAS_TYPES))}")
    if not re.fullmatch(NAME, name):
        raise err(ln.lineno, f"bad .meas result name {name!r}")
    text = normalize_equals("meas " + " ".join(parts[1:]))
    if (why := meas_problem(text)) is not None:
        raise err(ln.lineno, f".meas {name}: {why}")
    return Measure(kind, name, text, ln.lineno)


def twice_named(measures: Sequence[Measure], used: Iterable[str], path: str) -> InputError | None:
    """The error for the first name of ``used`` that two or more cards give: its value would be the last card's."""
    for name in used:
        lines = [str(m.line) for m in measures if m.name == name.lower()]
        if len(lines) > 1:
            return InputError(f"{path}:{lines[-1]}: .meas {name}: the name of the cards on lines {', '.join(lines)}: "
                              "ngspice -b prints a value for each, zoaf would keep only the last; refused, as the "
                              "spec measures it (give each card its own name)")
    return None

"""``.meas ... param=`` cards computed in Python, for sizings the fast path (:mod:`zoaf.fastpath`) sets in place.

ngspice runs a deck's ``param=`` cards after the analysis's other measures: numparam evaluates the expression
with the measures' values (``nupa_add_param``, full doubles) and the ``.param``s of the last parse, writes the
value into the card's own text and reads it back from there (``INPevaluate``). So the card keeps its first value
until the next ``reset`` re-parses the deck. On the fast path the session computes each card here instead: the
same expression (:mod:`zoaf.spexpr`) on the same doubles, then the same write and read-back
(:func:`zoaf.ngnumbers.device_value`); a ``param=`` card reading an earlier one sees that read-back value.

The doubles must be the ones numparam had. ngspice 39 prints ``when`` and ``param=`` results with every digit
(``NGSPICE_MEAS_PRECISION``), but ``find``, ``max``, ``avg``... with 7, and a ``meas`` command's vector holds those
7 digits too: so a card is computed here only when every name it reads is a ``when`` measure of its analysis,
an earlier ``param=`` card of it, or a top-level ``.param``. Any other read, an unknown function or construct
(``pi``, a ``.func``), an ``sp`` card, or a name both measured and a ``.param`` leaves the deck to ``reset``.
"""
from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

from .ngnumbers import device_value
from .spexpr import Unsupported, evaluate, names

__all__ = ["ParamMeasure", "compute", "is_card", "read"]

_CARD = re.compile(r"^\.meas(?:ure)?\s+(\w+)\s+(\w+)\s+(\w+)\b\s*(=?)\s*(.*)$")


@dataclass(frozen=True)
class ParamMeasure:
    """One ``.meas <analysis> <name> param=<expr>`` card."""

    analysis: str
    name: str
    expr: str
    measures: frozenset[str]      # the measures it reads (the rest of what it reads are .params)


def is_card(line: str) -> bool:
    """Whether a deck line is a ``.meas ... param=`` card."""
    m = _CARD.match(line)
    return m is not None and m.group(3) == "param"


def read(lines: list[str], params: Mapping[str, str]) -> list[ParamMeasure]:
    """The deck's ``param=`` cards (lines as :mod:`zoaf.deckparse` gives them), checked as the module doc says;
    Unsupported for one that cannot be computed here."""
    cards = [m.groups() for ln in lines if (m := _CARD.match(ln))]
    exact = {(kind, name) for kind, name, what, _, _ in cards if what == "when"}   # printed with every digit
    taken: list[ParamMeasure] = []
    measured = {name for _, name, _, _, _ in cards}
    if measured & set(params):
        raise Unsupported(f"a name both measured and a .param: {sorted(measured & set(params))[0]}")
    for kind, name, what, equals, expr in cards:
        if what != "param":
            continue
        if kind == "sp" or not equals:
            raise Unsupported(f".meas {kind} {name}: not a param= card computed in place")
        earlier = {p.name for p in taken if p.analysis == kind}
        reads = names(expr)
        known = {n for n in reads if (kind, n) in exact or n in earlier}
        unknown = reads - known - set(params)
        if unknown:
            raise Unsupported(f".meas {name} param=: reads {sorted(unknown)[0]}, not a full-precision measure "
                              "run before it nor a .param")
        taken.append(ParamMeasure(kind, name, expr, frozenset(known)))
    return taken


def compute(cards: list[ParamMeasure], scope: Mapping[str, float], measured: Mapping[str, float]
            ) -> dict[str, float | None]:
    """Each card's value (None where a measure it reads gave none, as ngspice's card then fails), in order.

    ``scope``: the top-level ``.param`` values of the sizing; ``measured``: the measures of this analysis that
    gave a value (as printed: the ones read here are exact). Unsupported where the expression fails (a
    division by zero, an overflow): what ngspice does then is left to a ``reset``."""
    mine = {c.name for c in cards}
    values = {k: v for k, v in measured.items() if k not in mine}   # ngspice's own cards: last reset's values
    out: dict[str, float | None] = {}
    for card in cards:
        if any(n not in values for n in card.measures):
            out[card.name] = None
            continue
        v = evaluate(card.expr, {**scope, **values})
        if not math.isfinite(v):
            raise Unsupported(f".meas {card.name} param=: {v}")
        out[card.name] = values[card.name] = device_value(v)[0]
    return out

"""A deck's ``.meas`` cards: :class:`Measure`, and reading one card (:func:`parse_meas`) for
:class:`zoaf.netlist.Netlist`.

ngspice evaluates every card and prints ``name = value`` for each, two cards of one name included (ngspice 39:
``f3 = 1.58778e+05`` then ``f3 = 2.74941e+05``); zoaf keeps one value per name, so a spec measure of that name
would be whichever card came last, unlike what a run by hand shows. A deck with such cards runs (as it does in
``ngspice -b``); a spec that measures such a name is refused, with the cards' lines (:func:`twice_named`).

A card of another analysis type (``.meas op``, ``.meas noise``, a typo) is one ngspice 39 does not run: it prints
``unrecognized analysis type 'op' for the following .meas statement`` and runs the rest of the deck. zoaf keeps
such a card apart (:attr:`Measure.skipped`): it measures nothing, and a spec that measures it is refused
(:func:`skipped_named`).
"""
from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace

from .decktext import Line
from .errors import InputError
from .ngcommands import (MEAS_TYPES, NAME, meas_problem, misread_value, normalize_equals, sp_crashes,
                         unmeasured_card, unsupported_form)

__all__ = ["Measure", "parse_meas", "skipped_named", "twice_named", "unmeasurable_named", "unmeasured",
           "with_dc_sweep"]

#: How a refusal names what asked for a measure: a spec (``zoaf check``/``optimize``) by default.
SPEC_ASKS = "the spec measures"


@dataclass(frozen=True)
class Measure:
    """One ``.meas`` statement: analysis type (``ac``, ``dc``, ``tran``, ``sp``), result name, its text."""

    analysis: str
    name: str
    text: str   # the statement without the leading dot, lower-cased, one line: "meas ac gain_db max vdb(out)"
    line: int
    swept: str = ""   # of a ``.meas dc`` card: what the deck's ``.dc`` card sweeps first (:func:`with_dc_sweep`)

    @property
    def skipped(self) -> bool:
        """True for a card ngspice does not run: an analysis type it does not measure (``op``, ``noise``, ...)."""
        return self.analysis not in MEAS_TYPES

    @property
    def runs_as_ac(self) -> bool:
        """True for a ``.meas sp`` card the session runs as a ``meas ac`` command on the sp plot, not as a card: a
        form that crashes ngspice 39. The others stay cards, which ngspice runs as ``ngspice -b`` does (a
        ``param=`` card reads the full doubles of the cards before it; a ``meas`` command's value has 7 digits)."""
        return sp_crashes(self.text)

    @property
    def unsupported(self) -> bool:
        """True for a card ngspice 39 reads and runs but that never gives a value: a form it cannot measure
        (``deriv``). Not one zoaf runs as ``meas ac`` (those measure)."""
        return not self.skipped and not self.runs_as_ac and unsupported_form(self.text, self.swept) is not None

    @property
    def note(self) -> str | None:
        """What ``zoaf check`` notes of the card: one ngspice skips, one that never measures or measures at a value
        ngspice misreads, or one zoaf runs where ``ngspice -b`` crashes."""
        if self.skipped:
            return self.skip_reason
        if (why := unsupported_form(self.text, self.swept) or misread_value(self.text, card=True)) is not None:
            return f".meas {self.analysis} {self.name}: {why}"
        if self.runs_as_ac:
            return (f".meas sp {self.name}: a .meas sp card of this form crashes ngspice 39 (ngspice -b: a "
                    "segmentation fault); zoaf runs it as `meas ac` on the S-parameter plot. For a run by hand "
                    f"(best.cir) write `sp ...` then `meas ac {self.text.split(None, 2)[2]}` in a .control block")
        return None

    @property
    def skip_reason(self) -> str:
        """What a note, or the refusal of a spec that measures the card, says of a skipped card."""
        return (f".meas {self.analysis} {self.name}: ngspice does not run `.meas {self.analysis}` (it prints "
                f"'unrecognized analysis type' and skips the card): it measures nothing")


def parse_meas(ln: Line, err: Callable[[int, str], InputError]) -> Measure:
    """The card on logical line ``ln``; ``err(line, what)`` for one that is malformed."""
    parts = ln.text.split()
    if len(parts) < 3:
        raise err(ln.lineno, f"incomplete .meas statement: {ln.raw.strip()!r}")
    kind, name = parts[1], parts[2]
    text = normalize_equals("meas " + " ".join(parts[1:]))
    if kind not in MEAS_TYPES:
        return Measure(kind, name, text, ln.lineno)     # ngspice skips it before it reads the rest
    if not re.fullmatch(NAME, name):
        raise err(ln.lineno, f"bad .meas result name {name!r}")
    if (why := meas_problem(text) or _par_after_equals(text)) is not None:
        raise err(ln.lineno, f".meas {name}: {why}")
    return Measure(kind, name, text, ln.lineno)


def _par_after_equals(text: str) -> str | None:
    """Why ngspice 39 cannot load a deck with this card (``text`` as :func:`normalize_equals` gives it): a ``par()``
    after an ``=`` (``when v(1)=par('k*v(2)')``, ``val=par(...)``, ``at=par(...)``) fails the load with a garbled
    card ("unimplemented control card", or a fatal error), which zoaf's session could only repeat without its line.
    ``par()`` as what the card measures is read (``find par(...)``, ``when par(...)=0``)."""
    if (at := text.find("=par(")) < 0:
        return None
    return (f"ngspice 39 cannot read `par(` after `{text[:at].split()[-1]}=` (the deck does not load, in ngspice -b as "
            "in zoaf); measure the expression itself, `when par('v(a)-(expr)')=0`, or give a number or a quoted "
            "expression of parameters")


def with_dc_sweep(measures: Sequence[Measure], analyses: Sequence[str]) -> list[Measure]:
    """The cards, each ``.meas dc`` one told the name the deck's first ``.dc`` card sweeps first, which decides
    whether ngspice 39 runs its interval forms (:func:`zoaf.ngcommands.unsupported_form`)."""
    swept = next((a.split()[1].lower() for a in analyses if a.split()[0].lower() == "dc" and len(a.split()) > 1), "")
    return [replace(m, swept=swept) if m.analysis == "dc" else m for m in measures]


def unmeasured(analyses: Sequence[str], measures: Sequence[Measure]) -> tuple[int, str] | None:
    """(line, why) for a card ``ngspice -b`` would print nothing for when it runs the dot-``analyses`` together
    (batch mode, or a ``run`` command): :func:`zoaf.ngcommands.unmeasured_card`."""
    found = unmeasured_card([a.split(None, 1)[0] for a in analyses], [(m.analysis, m.name) for m in measures])
    return None if found is None else (measures[found[0]].line, found[1])


def twice_named(measures: Sequence[Measure], used: Iterable[str], path: str) -> InputError | None:
    """The error for the first name of ``used`` that two or more cards give: its value would be the last card's."""
    for name in used:
        lines = [str(m.line) for m in measures if m.name == name.lower()]
        if len(lines) > 1:
            return InputError(f"{path}:{lines[-1]}: .meas {name}: the name of the cards on lines {', '.join(lines)}: "
                              "ngspice -b prints a value for each, zoaf would keep only the last; refused, as the "
                              "spec measures it (give each card its own name)")
    return None


def skipped_named(skipped: Sequence[Measure], results: Iterable[str], used: Iterable[str], path: str,
                  asks: str = SPEC_ASKS) -> InputError | None:
    """The error for the first name of ``used`` that only a card ngspice skips gives (:attr:`Measure.skipped`),
    none of the deck's ``results``: else the spec would be told the deck has no such card."""
    return _first_named(skipped, {r.lower() for r in results}, used,
                        lambda m, name: f"{path}:{m.line}: {m.skip_reason}; refused, as {asks} {name!r}")


def unmeasurable_named(measures: Sequence[Measure], skipped: Sequence[Measure], control_names: Iterable[str],
                       used: Iterable[str], path: str, asks: str = SPEC_ASKS) -> InputError | None:
    """The error for the first name of ``used`` that only cards which measure nothing give: skipped ones
    (:func:`skipped_named`) or :attr:`Measure.unsupported` ones, no other card and no ``.control`` result. The one
    check of the spec path (:class:`zoaf.circuit.CircuitProblem`) and ``SpiceSession.evaluate(names=)``: else
    every simulation misses that measure."""
    used, controls = list(used), set(control_names)
    if (found := skipped_named(skipped, [*(m.name for m in measures), *controls], used, path, asks)) is not None:
        return found
    unsupported = [m.unsupported for m in measures]         # a property that reads the card: once per card
    given = {m.name for m, u in zip(measures, unsupported) if not u} | controls
    return _first_named([m for m, u in zip(measures, unsupported) if u], given, used,
                        lambda m, name: f"{path}:{m.line}: {m.note}; refused, as {asks} {name!r}")


def _first_named(cards: Sequence[Measure], given: set[str], used: Iterable[str],
                 message: Callable[[Measure, str], str]) -> InputError | None:
    """The error (``message(card, name)``) for the first name of ``used`` that one of ``cards`` gives and no name of
    ``given`` does, naming the first such card. One lookup per name: a search of every card per name (and the
    property each card computes) took 0.4 s of ``evaluate(names=)`` with a deck's 500 measures, 5 s with 2,000."""
    first: dict[str, Measure] = {}
    for m in cards:
        if m.name not in given:
            first.setdefault(m.name, m)
    for name in used:
        if (m := first.get(name.lower())) is not None:
            return InputError(message(m, name))
    return None

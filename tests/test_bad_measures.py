"""Specs that measure what the deck can never give: refused in one line before the first simulation, naming the
card, rather than a missing measure (and its FoM charge) at every sizing of the run."""
from __future__ import annotations

from pathlib import Path

import pytest

from zoaf.circuit import CircuitProblem
from zoaf.errors import InputError

CORPUS = Path(__file__).parent / "bad_inputs"


def test_a_spec_measuring_a_deriv_card_is_refused_before_any_simulation() -> None:
    """ngspice 39 reads `.meas ac NAME deriv ...` but runs no deriv measure: the spec's gain_lf was missing at every
    sizing (a warning per simulation) though `zoaf check` knew the card measures nothing."""
    with pytest.raises(InputError, match=r"deriv_only\.cir:8: \.meas ac gain_lf: ngspice 39 runs no `deriv` measure"
                                         r".*refused, as the spec measures 'gain_lf'$"):
        CircuitProblem(CORPUS / "cir" / "deriv_only.cir", CORPUS / "good.toml")


def test_a_deriv_card_the_spec_does_not_measure_is_only_noted(tmp_path: Path) -> None:
    """The card stays a note where the spec measures other names: the deck runs as ngspice -b runs it."""
    deck = tmp_path / "d.cir"
    deck.write_text((CORPUS / "good.cir").read_text().replace(
        ".end", ".meas ac slope deriv vdb(out) at=1k\n.end"))
    problem = CircuitProblem(deck, CORPUS / "good.toml")
    assert any("runs no `deriv` measure" in note for note in problem.netlist.notes)


def test_a_session_asked_for_a_deriv_card_is_refused_as_a_spec_is() -> None:
    """``SpiceSession.evaluate(names=[...])`` asked for a name only a ``deriv`` card gives: it simulated and raised a
    MeasureError at every call, where a spec measuring it is refused before any simulation. The same one line now,
    from the same check (``Netlist.refuse_unmeasurable``), before any simulation."""
    from zoaf.spice import SpiceSession

    deck = CORPUS / "cir" / "deriv_only.cir"
    with SpiceSession(deck) as s:
        with pytest.raises(InputError, match=r"deriv_only\.cir:8: \.meas ac gain_lf: ngspice 39 runs no `deriv` "
                                             r"measure.*refused, as names= asks for 'gain_lf'$"):
            s.evaluate({}, names=["f3db", "GAIN_LF"])
        assert s.evaluations == 0                   # refused before any simulation

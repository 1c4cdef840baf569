"""Bad inputs, round 17: a spec and a ``zoaf.minimize`` call as a hurried user writes them.

A bound of ``1e-6m`` (metres meant, SPICE's milli read: 1e-9), a resistor's printed ``2k2``, ``60 dB`` with a
blank, a TOML date, constraints written ``=>``, ``≥``, ``60 <= gain`` or two in one string, the spec and the
netlist swapped; scipy's ``minimize(fun, x0)`` order, a ``LinearConstraint`` of the wrong width, bounds of the
wrong length, a NaN from one constraint among several. Each was taken with another value, or refused without
saying what was wrong. The CLI's side (exit 2, one line) is in ``bad_inputs/cases.toml``.
"""
from __future__ import annotations

import datetime
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from scipy.optimize import LinearConstraint, NonlinearConstraint

import zoaf
from zoaf import units
from zoaf.circuit import CircuitProblem
from zoaf.errors import InputError
from zoaf.spec import Constraint, Spec

CORPUS = Path(__file__).parent / "bad_inputs"


def _spec(lo: object = "100", constraint: str = "f3db >= 1k") -> dict:
    return {"parameters": {"r1": {"lo": lo, "hi": "100k"}}, "measures": {"f3db": "Hz"},
            "objectives": {"bw": {"maximize": "f3db", "constraints": [constraint]}}}


@pytest.mark.parametrize("text", ["1e-6m", "1E-6m", "2.5e-7m"])
def test_an_exponent_then_m_is_refused_as_metres_read_as_milli(text: str) -> None:
    """``lo = "1e-6m"`` (a width in metres, as a designer writes it) was taken as 1e-9, SPICE's milli, without a
    word: the run sized over a box a thousand times too small. ``1m``, ``1e-6`` and ``1e-6mm`` keep their SPICE
    values."""
    mantissa = text[:-1]
    says = (f"parameters.r1.lo: {text!r} reads as {mantissa} milli (SPICE's m is milli, not metres): write "
            f"{mantissa} for that many metres")
    with pytest.raises(InputError, match=f"^spec: {re.escape(says)}$"):
        Spec.from_dict(_spec(lo=text))
    with pytest.raises(InputError, match=re.escape(f"bound of 'f3db >= {text}': {text!r} reads as {mantissa} milli")):
        Spec.from_dict(_spec(constraint=f"f3db >= {text}"))
    assert [units.parse_spec(t, what="x") for t in ("1m", "1e-6", "1e-6mm", "1e3k")] == [1e-3, 1e-6, 1e-9, 1e6]


def test_an_upper_case_m_after_an_exponent_offers_no_milli_that_is_refused_in_turn() -> None:
    """``1e-6M`` was told to write ``1e-6m`` for milli, itself refused now: only the mega spelling is offered."""
    with pytest.raises(InputError, match=r"^x: '1e-6M' reads as 1e-6 milli \(SPICE's M is m, whatever its case\): "
                                         r"write 1e-6meg for mega$"):
        units.parse_spec("1e-6M", what="x")


@pytest.mark.parametrize("value, says", [
    ("2k2", "'2k2' is not a SPICE number (examples: 1.5u, 10meg, 2p, 1e-6); write 2.2k for the value printed as 2k2"),
    ("4n7", "write 4.7n for the value printed as 4n7"),
    ("1 k", "'1 k' is not a SPICE number (examples: 1.5u, 10meg, 2p, 1e-6); write the suffix or unit right after the "
            "number, without a space"),
    ("10 volts", "write the suffix or unit right after the number, without a space"),
    ("1_000", "'1_000' is not a SPICE number (examples: 1.5u, 10meg, 2p, 1e-6); write the digits without '_' (TOML "
              "reads 1_000 as a number only unquoted)"),
    (datetime.date(1979, 5, 27), "the TOML date/time 1979-05-27 is not a SPICE number (examples: 1.5u, 10meg, 2p, "
                                 "1e-6); give a number, or a string like \"1.5u\""),
    ([1, 2], "the array [1, 2] is not a SPICE number (examples: 1.5u, 10meg, 2p, 1e-6); give a number, or a string "
             "like \"1.5u\"")])
def test_a_refused_number_says_what_was_likely_meant(value: object, says: str) -> None:
    """Each was "not a SPICE number" and no more (a date as ``datetime.date(1979, 5, 27)``): the designer was left
    to guess what is wrong with ``2k2`` or ``1 k``."""
    with pytest.raises(InputError, match=f"^spec: parameters\\.r1\\.lo: .*{re.escape(says)}$"):
        Spec.from_dict(_spec(lo=value))


@pytest.mark.parametrize("text, hint", [
    ("f3db => 1k", "write >= or <= (the '=' second)"),
    ("f3db \u2265 1k", "write >= for \u2265 and <= for \u2264"),
    ("f3db == 1k", "an equality never holds at a sampled design: bound the measure from both sides, as two "
                   "constraints"),
    ("1k <= f3db", "write the measure first ('x >= 60', not '60 <= x')"),
    ("1k <= f3db <= 1meg", "write a range as two constraints, each with the measure first ('x >= 1', 'x <= 2')"),
    ("f3db >= 1k, f3db <= 1meg", "give each constraint its own string in the list")])
def test_a_constraint_in_another_form_names_the_form_zoaf_reads(text: str, hint: str) -> None:
    """Each was "is not 'name op number' with op one of >=, <=, >, <", which a designer who wrote ``60 <= gain``
    or ``gain => 60`` reads as what they wrote."""
    says = f"spec: objectives.bw.constraints: {text!r} is not 'name op number' with op one of >=, <=, >, <: {hint}"
    with pytest.raises(InputError, match=f"^{re.escape(says)}$"):
        Spec.from_dict(_spec(constraint=text))


def test_a_constraint_bound_with_a_blank_before_its_unit_is_named_by_its_bound() -> None:
    """``gain_db >= 60 dB`` was "not 'name op number'": the name, op and number were all there."""
    with pytest.raises(InputError, match=re.escape("bound of 'f3db >= 1 kHz': '1 kHz' is not a SPICE number (examples: "
                                                   "1.5u, 10meg, 2p, 1e-6); write the suffix or unit right after")):
        Spec.from_dict(_spec(constraint="f3db >= 1 kHz"))
    assert Constraint.parse("f3db >= 1kHz") == Constraint("f3db", ">=", 1e3)


def test_a_netlist_given_as_the_spec_is_named_as_one(tmp_path: Path) -> None:
    """``--spec amp.cir`` was a "TOML syntax error: Expected '=' after a key (at line 1, column 4)": its title."""
    with pytest.raises(InputError, match=re.escape("good.cir: a SPICE netlist, not a TOML spec (its '.param r1=1k "
                                                   "c1=1n' card): the netlist and the spec swapped? the spec is the "
                                                   "TOML file (--spec FILE.toml)")):
        Spec.read(CORPUS / "good.cir")
    (tmp_path / "broken.toml").write_text("title = 'x'\n[parameters\n")
    with pytest.raises(InputError, match="broken.toml: TOML syntax error"):
        Spec.read(tmp_path / "broken.toml")


def test_a_spec_given_as_the_netlist_is_named_as_one(tmp_path: Path) -> None:
    """``zoaf check amp.toml`` read the spec as a deck and its own spec (amp.toml again): "parameters.r1: no
    '.param r1=' in amp.toml". A deck named ``.toml`` with its spec named otherwise is still read."""
    with pytest.raises(InputError, match=r"good\.toml: a spec \(\.toml\) where the netlist goes: give the SPICE "
                                         r"netlist; zoaf reads the spec beside it \(<stem>\.toml\) or from --spec$"):
        CircuitProblem(CORPUS / "good.toml")
    with pytest.raises(InputError, match=r"good\.toml: given as both the netlist and the spec: give the SPICE "
                                         r"netlist, and the spec \(TOML\) beside it \(<stem>\.toml\) or with --spec$"):
        CircuitProblem(CORPUS / "good.toml", spec=CORPUS / "good.toml")
    shutil.copy(CORPUS / "good.cir", tmp_path / "deck.toml")
    shutil.copy(CORPUS / "good.toml", tmp_path / "spec.cir")
    assert [p.name for p in CircuitProblem(tmp_path / "deck.toml", spec=tmp_path / "spec.cir").parameters] == \
        ["r1", "c1"]


def _sphere(x: np.ndarray) -> float:
    return float(np.sum(x ** 2))


@pytest.mark.parametrize("bounds", [[0.5, 0.5], (-1, 1)])
def test_scipys_x0_in_the_place_of_the_bounds_says_the_order(bounds: object) -> None:
    """``zoaf.minimize(f, [0.5, 0.5], budget=...)``, scipy's order, was "bounds must be a sequence of (lo, hi)
    pairs, got shape (2,)", and ``(-1, 1)`` for one variable the same."""
    says = ("bounds must be a sequence of (lo, hi) pairs, got shape (2,); scipy's minimize(fun, x0) is "
            "zoaf.minimize(fun, x0, bounds=[(lo, hi), ...]) (zoaf needs a finite box), and one variable's bounds are "
            "[(lo, hi)]")
    with pytest.raises(InputError, match=f"^{re.escape(says)}$"):
        zoaf.minimize(_sphere, bounds, budget=4, seed=0)


@pytest.mark.parametrize("constraint, says", [
    (LinearConstraint(np.eye(3), 0, 1), "LinearConstraint's A has 3 columns for 2 variables"),
    (LinearConstraint([[1, 1, 1]], -np.inf, 1), "LinearConstraint's A has 3 columns for 2 variables"),
    (NonlinearConstraint(lambda x: x[0], [0, 0, 0], 1), "lb has 3 values for the constraint's 1"),
    (NonlinearConstraint(lambda x: x, -1, [1, 1, 1]), "ub has 3 values for the constraint's 2")])
def test_a_scipy_constraint_of_the_wrong_shape_is_said_in_its_terms(constraint: object, says: str) -> None:
    """numpy's words came through: "matmul: Input operand 1 has a mismatch in its core dimension 0, with gufunc
    signature (n?,k),(k,m?)->(n?,m?)", "operands could not be broadcast together with remapped shapes"."""
    with pytest.raises(InputError, match=re.escape(f"constraints[0]: calling it at x = [0.0, 0.0] raised ValueError: "
                                                   f"{says}")):
        zoaf.minimize(_sphere, [(-1, 1)] * 2, budget=4, seed=0, constraints=constraint)


def test_a_linear_constraint_of_the_right_shape_is_still_met() -> None:
    res = zoaf.minimize(lambda x: float((x[0] - 1) ** 2 + (x[1] - 1) ** 2), [(-2, 2)] * 2, budget=200, seed=0,
                        constraints=LinearConstraint([[1, 1]], -np.inf, 1))
    assert res.success and res.x.sum() <= 1 + 1e-9 and res.x == pytest.approx([0.5, 0.5], abs=0.05)


def test_a_nan_from_one_constraint_among_several_names_it() -> None:
    """Every point failed "a constraint returned NaN": which of the constraints, the user had to find out."""
    res = zoaf.minimize(_sphere, [(-1, 1)] * 2, budget=4, seed=0, method="random",
                        constraints=[{"type": "ineq", "fun": lambda x: 1.0}, {"type": "ineq", "fun": lambda x: np.nan}])
    assert not res.success
    assert res.message == "no simulation succeeded (the first error: ValueError: constraints[1] returned NaN)"

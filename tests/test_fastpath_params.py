"""The fast path on decks the reset path used to keep: ``.meas param=`` cards computed in place, parametrized
subcircuits (the LNA's spirals) expanded; and the plain numbers ``alter`` is sent. Results are compared with
the reset path bit for bit, and with ``ngspice -b``."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from ngspice_marks import needs_ngspice
from test_fastpath import _plan

from zoaf.errors import MeasureError
from zoaf.netlist import Netlist
from zoaf.ngnumbers import device_value

ROOT = Path(__file__).resolve().parents[1]
NETLISTS = Path(__file__).resolve().parent / "netlists"
RC = ".param r1=1k c1=1n\nv1 in 0 dc 0 ac 1\nr1 in out {r1}\nc1 out 0 {c1}\n.ac dec 10 1 1g\n" \
     ".meas ac f3 when vdb(out)=-3\n.meas ac g find vdb(out) at=1k\n"


def _evaluate_all(netlist: Netlist, sizings: list[dict[str, float]], fast: bool) -> tuple[list, int]:
    """Each sizing's results (a missing measure: the measures there were), and how many were set in place."""
    from zoaf.spice import SpiceSession

    out, in_place = [], 0
    with SpiceSession(netlist, fast=fast) as s:
        for values in sizings:
            try:
                out.append(s.evaluate(values))
            except MeasureError as e:
                out.append(("missing", e.measures))
            in_place += s._in_place
    return out, in_place


# ---------------------------------------------------------------------- which decks the plan takes
@pytest.mark.parametrize("card, taken", [
    ("param='1/(2*3.141592653589793*f3)'", True),      # a when-measure: printed with every digit
    ("param='sqrt(f3)*r1'", True),                      # a function, a .param that changes per sizing
    ("param='g*2'", False),                             # a find: ngspice prints 7 digits, meas vectors too
    ("param='f3*pi'", False),                           # pi: unknown to numparam's .meas
    ("param='myf(f3)'", False),                         # a .func (or any function spexpr does not know)
    ("param='later*2'", False),                         # a param= card run after it
])
def test_param_cards_taken_only_when_computable_exactly(tmp_path: Path, card: str, taken: bool) -> None:
    plan = _plan(tmp_path, RC + f".meas ac p {card}\n.meas ac later param='f3*2'\n")
    assert (plan is not None and plan.fast == {"r1", "c1"}) is taken


def test_a_parametrized_instance_reaching_a_behavioural_source_is_slow(tmp_path: Path) -> None:
    body = ".param gain=2 r1=1k\n.subckt amp in out params: g=1\nb1 out 0 v={g}*v(in)\n.ends\n" \
           "v1 in 0 dc 1 ac 1\nx1 in out amp g={gain}\nr1 out 0 {r1}\n.op\n"
    plan = _plan(tmp_path, body)
    assert plan is not None and plan.fast == {"r1"}


# ---------------------------------------------------------------------- against ngspice
def _ft_numparse(text: str) -> float:
    """ngspice 39's command-line number parser (``ft_numparse``) on an unsigned plain number, step for step:
    integer digits accumulated in a double, a fraction's digits as one integer times ``pow(10, -n)``, then
    times ``pow(10, exponent)`` (skipped for 0)."""
    mantissa, _, exponent = text.partition("e")
    whole, dot, fraction = mantissa.partition(".")

    def accumulate(digits: str) -> float:
        value = 0.0
        for c in digits:
            value = value * 10.0 + (ord(c) - 48)
        return value

    value = accumulate(whole)
    if dot:
        value += accumulate(fraction) * math.pow(10.0, -float(len(fraction)))
    return value * math.pow(10.0, float(exponent)) if exponent and int(exponent) else value


@needs_ngspice
def test_alter_spellings_are_read_back_exactly() -> None:
    """The spelling the fast path sends with ``alter`` is read by ngspice's command parser as exactly the value a
    ``reset`` puts in the device (``let`` uses the same parser); ``repr`` would miss about one time in five."""
    pytest.importorskip("PySpice")
    from zoaf.spice import shared_ngspice

    ng = shared_ngspice()
    rng = np.random.default_rng(3)
    values = np.concatenate([10 ** rng.uniform(-16, 6, 400), -(10 ** rng.uniform(-16, 6, 20))])
    missed_by_repr = 0
    for v in values:
        value, text = device_value(float(v))
        ng.command(f"let zoaf_spelled = {text}")
        assert ng.vector("zoaf_spelled")[0] == value, text
        assert _ft_numparse(text.lstrip("-")) == abs(value)
        missed_by_repr += _ft_numparse(repr(abs(value))) != abs(value)
    ng.command("destroy all")
    assert missed_by_repr > len(values) // 20           # why a plain repr would not do


@needs_ngspice
def test_param_cards_in_place_equal_reset_and_ngspice_b() -> None:
    """when-measures, a .param, a function, earlier cards; a third of the sizings have no -3 dB point below
    1 GHz, so the cards built on it are missing (and must be missing both ways)."""
    pytest.importorskip("PySpice")
    from zoaf.spice import run_batch

    nl = Netlist.read(NETLISTS / "param_meas.cir")
    rng = np.random.default_rng(0)
    sizings = [{"r1": float(10 ** rng.uniform(0, 6)), "c1": float(10 ** rng.uniform(-12, -9))}
               for _ in range(30)]
    fast, in_place = _evaluate_all(nl, sizings, fast=True)
    slow, _ = _evaluate_all(nl, sizings, fast=False)
    assert in_place == len(sizings) and fast == slow                  # every bit, the missing ones too
    assert any(r[0] == "missing" for r in fast if isinstance(r, tuple))
    assert any(isinstance(r, dict) for r in fast)
    for values, got in list(zip(sizings, fast))[:8]:
        try:
            ref = run_batch(nl.with_params(values))
        except MeasureError as e:
            ref = ("missing", e.measures)
        assert got == ref


def _same_both_ways(nl: Netlist, sizings: list[dict[str, float]]) -> None:
    fast, in_place = _evaluate_all(nl, sizings, fast=True)
    slow, _ = _evaluate_all(nl, sizings, fast=False)
    assert in_place == len(sizings) and fast == slow                   # every bit of every measure


@needs_ngspice
def test_nested_parametrized_subcircuits_in_place_equal_reset() -> None:
    """Header defaults, body .params, values passed down from the caller's own parameters, a param= card."""
    pytest.importorskip("PySpice")
    rng = np.random.default_rng(11)
    _same_both_ways(Netlist.read(NETLISTS / "nested_params.cir"),
                    [{"ra": float(10 ** rng.uniform(2, 4)), "ca": float(10 ** rng.uniform(-10, -8)),
                      "k": float(rng.uniform(0.5, 3)), "rl": float(10 ** rng.uniform(3, 5))} for _ in range(20)])


@needs_ngspice
def test_lna_spirals_in_place_equal_reset() -> None:
    """The LNA's spiral inductors: a parametrized subcircuit whose elements its .param expressions compute."""
    pytest.importorskip("PySpice")
    from zoaf.circuit import CircuitProblem

    problem = CircuitProblem.from_netlist(ROOT / "netlists" / "lna.cir")
    rng = np.random.default_rng(11)
    _same_both_ways(problem.netlist, [problem.as_dict(problem.to_physical(rng.uniform(size=problem.dim)))
                                      for _ in range(12)])


@needs_ngspice
def test_lna_sequence_with_repeats_and_a_reset_in_place_equal_reset() -> None:
    """What the plan keeps from one sizing to the next (the spellings of values that did not change, the
    ``alter``s it does not send, several per command line): a repeat sends nothing, a one-variable step a few
    ``alter``s; across a ``reset`` in between (a seeded evaluation takes one) and back, results stay bit for bit
    those of the reset path, and the plan's values those it computes afresh."""
    pytest.importorskip("PySpice")
    from zoaf import fastpath
    from zoaf.circuit import CircuitProblem
    from zoaf.spice import SpiceSession

    problem = CircuitProblem.from_netlist(ROOT / "netlists" / "lna.cir")
    nl = problem.netlist
    rng = np.random.default_rng(3)
    a, b = (problem.as_dict(problem.to_physical(rng.uniform(size=problem.dim))) for _ in range(2))
    steps = [(a, None), (a, None), (b, None), (dict(b, cout=b["cout"] * 1.01), None), (a, 7), (a, None), (b, None)]
    with SpiceSession(nl, fast=False) as s:
        slow = [s.evaluate(values) for values, _ in steps]
    fresh = fastpath.plan(nl.session_deck(), nl.path.parent, nl.params, nl.analyses + nl.control)
    sent: list[str] = []
    with SpiceSession(nl) as s:
        def counted(command: str) -> list[str]:
            sent.append(command)
            return s._ng.command(command)

        fast, alters, in_place = [], [], []
        for values, seed in steps:
            sent.clear()
            s._cmd = counted
            fast.append(s.evaluate(values, rng_seed=seed))
            lines = [c for c in sent if c.startswith("alter")]
            alters.append(sum(c.count(" ; ") + 1 for c in lines))
            assert all(len(c) <= 1000 for c in lines)
            in_place.append(s._in_place)
            target = {**nl.params, **nl.check_params(values)}
            expect = fresh.program.state(target, {})
            assert {k: (repr(v), t) for k, (v, t) in s._fast.state.values.items()} == \
                   {k: (repr(v), t) for k, (v, t) in expect.values.items()}
    assert fast == slow                                                # every bit of every result
    assert in_place == [True, True, True, True, False, True, True]
    assert alters[1] == 0 and alters[5] == 0                           # repeats: nothing to send
    assert 0 < alters[3] < alters[2] / 4                               # one variable: only what it reaches


@pytest.mark.parametrize("text", ["-" * 2000 + "1", "(" * 400 + "1" + ")" * 400])
def test_an_expression_nested_thousands_deep_is_left_to_reset(text):
    """numparam reads 2,000 nested signs (ngspice -b: the value); Python's parser recurses on them: the fast path
    leaves such an expression to ``reset`` (Unsupported) instead of failing the simulation with a RecursionError."""
    from zoaf import spexpr

    with pytest.raises(spexpr.Unsupported):
        spexpr.evaluate(text, {})

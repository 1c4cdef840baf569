"""sky130 decks beyond the two 1.8 V transistors (tests/fidelity/sky130: low- and high-threshold and 5 V devices,
poly resistors, MIM capacitors, bipolars, a diode, the ff/ss/tt_mm sections, ``.temp``, ``.option scale``, ``nf=``/
``mult=``/``m=``, device vectors, a gm/id sweep, ``dc``/``tran`` analyses, Xschem's instance lines and library line).

Each ran by hand (``ngspice -b``) and in zoaf at several sizings in one session, in place and by ``reset`` (round 27).
A PDK deck takes seconds to load, so the suite simulates one deck that gathers what the in-place path had to learn:
Xschem's quoted ``ad='int((nf+1)/2) * W/nf * 0.29'`` (read inside the instance: it sent every Xschem deck to ``reset``),
the section's Monte Carlo switches set again by the deck (a ``.param`` defined twice: the same), and a MIM capacitor
whose value line is ``c = {carea}``; and checks, without simulating, that the sky130 diode's deck is never resized in
place (a level-3 diode under ``.option scale``: every ``alter`` scaled its area again)."""
from __future__ import annotations

import math
from pathlib import Path

import pytest
from ngspice_marks import NEEDS_NGSPICE

from zoaf import fastpath, pdk
from zoaf.errors import InputError
from zoaf.netlist import Netlist

pytestmark = NEEDS_NGSPICE

DECKS = Path(__file__).parent / "fidelity" / "sky130"
REL = 1e-12                        # the digits ngspice prints (tests/test_fidelity.py says why)
BENCH = "xschem_tt_mm_bench"
#: Small steps from the designer's sizing (each off the model bins' edges): every one is set in place.
STEPS = [{"wn": 5.2}, {"cw": 22.0}, {"lm1": 0.47, "ib": 2.2e-5}, {"wp": 6.6, "cl": 18.0, "nfn": 3}]


def _read(stem: str) -> Netlist:
    try:
        return Netlist.read(DECKS / f"{stem}.cir", placeholders=pdk.placeholders("sky130", "tt"))
    except InputError as e:
        pytest.fail(f"the sky130 extra is part of the test set-up: {e}")


def _plan(nl: Netlist) -> fastpath.Plan | None:
    return fastpath.plan(nl.session_deck(), nl.path.parent, nl.params, nl.analyses + nl.control)


def test_the_corpus_is_a_dozen_decks() -> None:
    assert len(list(DECKS.glob("*.cir"))) >= 10


def test_a_level3_diode_under_scale_is_never_resized_in_place() -> None:
    """``alter`` of any device scales a level-3 diode's area and perimeter by scale^2 again (ngspice 39): the sky130
    diode's current at 1 V fell from 8.9e-9 A to 4e-15 A after the series resistor was set in place
    (``tests/fidelity/diode_level3_scale.cir`` shows it against ``ngspice -b`` on a small deck)."""
    assert _plan(_read("diode_pw2nd_dc_sweep")) is None


@pytest.fixture(scope="module")
def bench() -> Netlist:
    pytest.importorskip("PySpice")
    return _read(BENCH)


def test_xschem_bench_in_place_equals_reset_and_ngspice_b(bench: Netlist) -> None:
    """Every step is set in place and gives every bit the reset path gives (the same session, ``reset`` forced by a
    seed: the deck draws nothing); the last equals ``ngspice -b``'s printed digits."""
    from zoaf.spice import SpiceSession, run_batch

    sizing: dict[str, float] = {}
    with SpiceSession(bench) as s:
        s.evaluate({})
        assert {"wn", "lm1", "nfn", "wp", "lm2", "nfp", "ib", "cw", "cl"} <= s._fast.fast
        for step in STEPS:
            sizing = {**sizing, **step}
            in_place = s.evaluate(sizing)
            assert s._in_place, sizing
            assert s.evaluate(sizing, rng_seed=1) == in_place and not s._in_place, sizing
    ref = run_batch(bench.with_params(sizing))
    assert ref.keys() == {"vout", "idd", "gain_db", "ugf", "f3db"}
    assert all(math.isclose(in_place[k], ref[k], rel_tol=REL) for k in ref), (in_place, ref)

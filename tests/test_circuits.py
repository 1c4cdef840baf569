"""The benchmark circuits: the in-process session agrees with `ngspice -b` on random sizings of each, sky130
loads from the installed PDK and optimizes, and the README's custom-FoM example runs."""
from __future__ import annotations

import json
import math
import runpy
import shutil
import subprocess
import sys
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

import zoaf
from zoaf.circuit import CircuitProblem
from zoaf.spice import run_batch

ROOT = Path(__file__).parent.parent
pytestmark = pytest.mark.skipif(shutil.which("ngspice") is None, reason="ngspice executable not available")


def agree(got: dict[str, float], ref: dict[str, float]) -> bool:
    """Every value ngspice -b printed is the session's (to its ~6-7 printed digits); the session may read more
    (a .control block's intermediate lets, which the batch run does not print)."""
    return len(ref) >= 4 and set(ref) <= set(got) and \
        all(math.isclose(got[k], ref[k], rel_tol=1e-5, abs_tol=1e-9) for k in ref)


#: One thread runs `ngspice -b` (or a `zoaf check`) while the test simulates in-process: the two take the two cores
#: CI has, so a comparison costs the longer of them, not their sum.
BEHIND = ThreadPoolExecutor(1)


def behind(fn, *args, **kwargs) -> Future:
    return BEHIND.submit(fn, *args, **kwargs)


def random_sizings(problem: CircuitProblem, n: int, seed: int) -> list[dict[str, float]]:
    u = np.random.default_rng(seed).uniform(0.15, 0.85, (n, problem.dim))
    return [problem.as_dict(x) for x in problem.to_physical(u)]


@pytest.mark.parametrize("stem, n", [("lna", 3), ("bandgap", 2)])
def test_session_matches_ngspice_batch(stem: str, n: int) -> None:
    problem = CircuitProblem.from_netlist(ROOT / "netlists" / f"{stem}.cir")
    compared = []
    for values in random_sizings(problem, n + 2, seed=11):
        out = problem.simulate(np.array(list(values.values())))
        if out.status is not zoaf.Status.OK or out.error:
            continue                      # a sizing that does not simulate: nothing to compare
        compared.append((values, out, behind(run_batch, problem.sized_netlist(values))))
    problem.close()
    for values, out, ref in compared:
        assert agree(out.measures, ref.result()), (values, out.measures, ref.result())
    assert len(compared) >= n


@pytest.mark.parametrize("stem", ["ota5t", "ring", "sallenkey", "cascode"])
def test_generality_deck_matches_ngspice_batch(stem: str) -> None:
    """The four decks of the generality check (BENCHMARKS.md §12): the session's measures are ``ngspice -b``'s at
    the designer's sizing and at random sizings that simulate (two at least)."""
    problem = CircuitProblem.from_netlist(ROOT / "netlists" / "generality" / f"{stem}.cir")
    compared = []
    try:
        for values in [problem.default_params(), *random_sizings(problem, 4, seed=5)]:
            out = problem.simulate(np.array(list(values.values())))
            if out.status is not zoaf.Status.OK or out.error:
                continue
            compared.append((values, out, behind(run_batch, problem.sized_netlist(values), timeout=120)))
    finally:
        problem.close()
    for values, out, batch in compared:
        ref = batch.result()
        assert set(problem.spec.measures) <= set(ref) <= set(out.measures), (stem, values, out, ref)
        # relative only: areas of ~1e-11 m^2 are below agree()'s absolute floor
        assert all(math.isclose(out.measures[k], v, rel_tol=1e-5) for k, v in ref.items()), (stem, out, ref)
    assert len(compared) >= 2


@pytest.fixture(scope="module")
def sky130() -> CircuitProblem:
    pytest.importorskip("PySpice")
    from zoaf.pdk import find_sky130_lib

    try:
        find_sky130_lib()
    except zoaf.InputError as e:
        pytest.fail(f"the sky130 extra is part of the test set-up: {e}")
    return CircuitProblem.from_netlist(ROOT / "netlists" / "sky130" / "two_stage_amp.cir", objective="gain")


def test_sky130_session_matches_batch(sky130: CircuitProblem) -> None:
    values = sky130.default_params()
    batch = behind(run_batch, sky130.sized_netlist(values), timeout=120)
    got = sky130.session().evaluate(values)
    ref = batch.result()
    assert agree(got, ref), (got, ref)
    assert 40 < got["gain_db"] < 100 and got["ugbw_hz"] > 1e6


def test_sky130_optimizes(sky130: CircuitProblem) -> None:
    res = zoaf.optimize(sky130, budget=40, seed=0)
    first = min(r.fom for r in res.history[:10])          # best of the first Sobol points
    assert res.fun < first and res.nfev == 40
    sky130.close()


def test_custom_fom_example() -> None:
    main = runpy.run_path(str(ROOT / "examples" / "custom_fom.py"))["main"]
    res = main(budget=40, seed=0)
    assert res.nfev == 40 and math.isfinite(res.fun)
    m = res.measures
    if res.feasible:                       # the FoM is the Python callable's value, constraints met
        assert res.objective == pytest.approx(-m["ugbw_hz"] / m["power_w"])
        assert m["gain_db"] >= 60 and m["pm_deg"] >= 60


def test_next_circuit_in_the_process_is_unaffected_by_sky130(sky130: CircuitProblem) -> None:
    """sky130's `.option scale=1e-6` is a process-wide ngspice variable: the next deck must not inherit it."""
    amp = CircuitProblem.from_netlist(ROOT / "netlists" / "two_stage_amp.cir")
    alone = behind(run_batch, amp.sized_netlist(amp.default_params()))
    sky130.session().evaluate(sky130.default_params())
    assert agree(amp.session().evaluate(amp.default_params()), alone.result())
    amp.close()


# ---------------------------------------------------------------------- the circuit suite: comparator, LDO, FC OTA
#: A second sizing per new deck (besides its defaults): every block moved, still a working circuit.
OTHER_SIZING = {
    "comparator": {"w1": 16e-6, "l1": 0.5e-6, "nf1": 4, "w0": 8e-6, "w3": 3e-6, "wb": 2e-6},
    "ldo": {"wp": 50e-6, "mp": 20, "l1": 2e-6, "ibias": 2e-6, "rtot": 1e6, "cff": 20e-12},
    "sky130/folded_cascode": {"w1": 40, "l1": 1, "nf1": 8, "kt": 6, "ks": 5, "ibias": 15e-6, "vcasn": 1.05},
}


def sizings(problem: CircuitProblem, stem: str) -> list[dict[str, float]]:
    return [problem.default_params(), {**problem.default_params(), **OTHER_SIZING[stem]}]


def check_deck(problem: CircuitProblem, stem: str) -> None:
    """The session's measures are `ngspice -b`'s, at the defaults and at the second sizing."""
    batches = [behind(run_batch, problem.sized_netlist(values), timeout=120) for values in sizings(problem, stem)]
    for values, batch in zip(sizings(problem, stem), batches):
        got = problem.session().evaluate(values)
        ref = batch.result()
        assert set(problem.spec.measures) <= set(ref), (stem, set(problem.spec.measures) - set(ref))
        assert agree(got, ref), (stem, values, got, ref)


def short_run_without_failures(problem: CircuitProblem, budget: int = 30) -> None:
    """A short optimization simulates every point it asks for (failed-simulation rate printed, must be 0)."""
    res = zoaf.optimize(problem, budget=budget, seed=0, workers=0)
    failed = sum(r.outcome.status is not zoaf.Status.OK for r in res.history if r.charged)
    print(f"{problem.name}: {failed}/{res.nfev} failed simulations ({100 * failed / res.nfev:.0f}%)")
    assert res.nfev == budget and failed == 0


def zoaf_check(problem: CircuitProblem) -> dict:
    """`zoaf check NETLIST --json` in a subprocess: exit 0, every measure of the spec there and finite."""
    netlist = problem.netlist.path
    r = subprocess.run([sys.executable, "-m", "zoaf", "check", str(netlist), "--json"], cwd=ROOT,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    data = json.loads(r.stdout)
    assert data["status"] == "ok" and data["error"] is None
    assert all(math.isfinite(data["measures"][m]) for m in problem.spec.measures), data["measures"]
    return data


@pytest.mark.parametrize("stem", ["comparator", "ldo"])
def test_suite_deck_matches_batch(stem: str) -> None:
    problem = CircuitProblem.from_netlist(ROOT / "netlists" / f"{stem}.cir")
    check_deck(problem, stem)
    problem.close()


@pytest.mark.parametrize("stem", ["comparator", "ldo"])
def test_suite_deck_checks_and_optimizes(stem: str) -> None:
    problem = CircuitProblem.from_netlist(ROOT / "netlists" / f"{stem}.cir")
    checked = behind(zoaf_check, problem)
    short_run_without_failures(problem)
    problem.close()
    checked.result()


def test_comparator_defaults_decide_both_ways() -> None:
    """At the defaults both 1 mV decisions are right and full swing, in ~0.24 ns (ngspice -b's numbers)."""
    problem = CircuitProblem.from_netlist(ROOT / "netlists" / "comparator.cir")
    ref = run_batch(problem.sized_netlist(problem.default_params()))
    assert ref["decision_v"] > 1.7 and 0.2e-9 < ref["delay_s"] < 0.3e-9
    assert ref["sigma_vos_v"] == pytest.approx(5e-3 / math.sqrt(8 * 0.3), rel=1e-6)


def test_ldo_psrr_is_the_worst_rejection_up_to_10k_so_a_notch_cannot_raise_it() -> None:
    """A sizing the COBYQA peer found puts a notch of the supply-to-output path at 10 kHz (121 dB there, 97 dB
    from 10 Hz to 6 kHz): the measure is the band's worst point, the flat 97 dB."""
    problem = CircuitProblem.from_netlist(ROOT / "netlists" / "ldo.cir", objective="psrr")
    notch = {"wp": 9.2174e-05, "lp": 1.8855e-07, "mp": 8, "w1": 3.2638e-05, "l1": 1.0132e-06, "w3": 1.9839e-06,
             "l3": 2.8233e-06, "w5": 6.975e-06, "l5": 6.4488e-07, "ibias": 9.6491e-06, "rtot": 1.2248e6,
             "cff": 4.8127e-12}
    ref = run_batch(problem.sized_netlist({**problem.default_params(), **notch}), timeout=120)
    assert 96.5 < ref["psrr_db"] < 98
    problem.close()


@pytest.fixture(scope="module")
def folded_cascode() -> CircuitProblem:
    pytest.importorskip("PySpice")
    return CircuitProblem.from_netlist(ROOT / "netlists" / "sky130" / "folded_cascode.cir", objective="gain")


def test_folded_cascode_matches_batch(folded_cascode: CircuitProblem) -> None:
    check_deck(folded_cascode, "sky130/folded_cascode")


def test_folded_cascode_checks_and_optimizes(folded_cascode: CircuitProblem) -> None:
    checked = behind(zoaf_check, folded_cascode)
    short_run_without_failures(folded_cascode)
    folded_cascode.close()
    data = checked.result()
    assert 40 < data["measures"]["gain_db"] < 80 and 0.8 < data["measures"]["swing_v"] < 1.8


# ------------------------------------------------- generality, round two: an LC match, a buffer chain, a THD measure
@pytest.mark.parametrize("stem", ["lcmatch", "invchain", "csthd"])
def test_generality_round_two_deck_matches_ngspice_batch(stem: str) -> None:
    """Three more decks of kinds the suite lacked (a passive match on log axes over two decades, a transient
    buffer chain on integer log axes, a THD read from ``fourier`` in a ``.control`` block): the same check."""
    test_generality_deck_matches_ngspice_batch(stem)


def test_csthd_thd_is_the_fourier_commands_own() -> None:
    """The deck's THD (harmonics 2-9 over the fundamental, as vectors of ``fourier``'s result) is the THD that
    ``fourier`` prints, in the session as in ``ngspice -b``, at the designer's sizing and after other sizings
    (the session's later ``fourier`` calls name their vectors ``fourier21``, ``fourier31``...)."""
    problem = CircuitProblem.from_netlist(ROOT / "netlists" / "generality" / "csthd.cir")
    try:
        for values in [*random_sizings(problem, 2, seed=3), problem.default_params()]:
            got = problem.session().evaluate(values)
        text = subprocess.run(["ngspice", "-b", "csthd.cir"], cwd=ROOT / "netlists" / "generality",
                              capture_output=True, text=True, timeout=120).stdout
    finally:
        problem.close()
    printed = float(text.split("THD: ")[1].split()[0])
    assert got["thd_pct"] == pytest.approx(printed, rel=1e-5) and 1 < printed < 2


# ------------------------------------------- generality, round three: a TIA's noise, a push-pull stage, a mixer
@pytest.mark.parametrize("stem", ["tia", "classab", "gilbert"])
def test_generality_round_three_deck_matches_ngspice_batch(stem: str) -> None:
    """Three more decks of kinds the suite lacked (a TIA read from ``ac`` and ``noise`` plots with a value carried
    between them by ``set``, a push-pull stage and a mixer read from ``fourier``): the same check. The random
    sizings follow the designer's in one session, so they are read from the session's later plots and vectors."""
    test_generality_deck_matches_ngspice_batch(stem)


# ---------------------- generality, round four: a CMFB loop, an LC oscillator's start-up, a switch's charge
@pytest.mark.parametrize("stem", ["fdota", "lcvco", "tnh"])
def test_generality_round_four_deck_matches_ngspice_batch(stem: str) -> None:
    """Three more decks of kinds the suite lacked (a fully-differential OTA whose CMFB loop gain is read from a
    second, loop-broken copy in the same ``ac`` plot, an LC VCO read from ``when ... td=`` crossings, a
    track-and-hold read from ``find``/``integ`` measures): the same check, the random sizings after the
    designer's in one session."""
    test_generality_deck_matches_ngspice_batch(stem)


# ------------------- generality, round five: a self-biased reference, a band-pass filter, a class-E stage
@pytest.mark.parametrize("stem", ["betaref", "bpf4", "classe"])
def test_generality_round_five_deck_matches_ngspice_batch(stem: str) -> None:
    """Three more decks of kinds the suite lacked (a beta-multiplier reference read from an ``op``, a ``dc temp``
    and a supply sweep and a power-down release's transient, with ``if``/``else`` for a core that never starts; a
    fourth-order band-pass read from ``ac`` measures whose level is a vector; a class-E stage read from
    ``fourier`` and averages over its last periods): the same check, the random sizings after the designer's in
    one session; and the designer's sizing misses its spec, as the check's premise is (BENCHMARKS.md §12)."""
    problem = CircuitProblem.from_netlist(ROOT / "netlists" / "generality" / f"{stem}.cir")
    try:
        designer = problem.simulate(np.array(list(problem.default_params().values())))
    finally:
        problem.close()
    assert designer.status is zoaf.Status.OK and designer.feasible is False, (stem, designer)
    test_generality_deck_matches_ngspice_batch(stem)


# -------------------- generality, round six: a charge pump, a level shifter, a current-steering DAC cell
@pytest.mark.parametrize("stem", ["cpump", "lvlshift", "dacell"])
def test_generality_round_six_deck_matches_ngspice_batch(stem: str) -> None:
    """Three more decks of kinds the suite lacked (a charge pump's up and down currents read from one ``dc``
    sweep of its output; a level shifter read from ``meas`` inside ``if``/``else``, a graded miss where its
    output never switches; a DAC cell read from ``op`` device parameters, an ``ac`` point, a two-point ``dc``
    and a ``when ... fall=last`` over a vector of the transient): the designer's sizing misses its spec, and the
    session agrees with ``ngspice -b`` there and at random sizings after it, as in round five."""
    test_generality_round_five_deck_matches_ngspice_batch(stem)


# ---------------------- generality, round seven: a Schmitt trigger, a gm-C biquad, a Pierce oscillator's amplifier
@pytest.mark.parametrize("stem", ["schmitt", "gmcbq", "pierce"])
def test_generality_round_seven_deck_matches_ngspice_batch(stem: str) -> None:
    """Three more decks of kinds the suite lacked (a Schmitt trigger's thresholds from ``dc`` sweeps up and down,
    the first one's carried to the second plot by ``set``; a gm-C biquad read from an ``op``, ``ac`` and ``noise``;
    a Pierce oscillator's negative resistance and load capacitance from the real and imaginary parts of a
    one-point ``ac``, with ``if``/``else`` where it cannot start): the designer's sizing misses its spec, and the
    session agrees with ``ngspice -b`` there and at random sizings after it, as in round five."""
    test_generality_round_five_deck_matches_ngspice_batch(stem)

"""The benchmark circuits: the in-process session agrees with `ngspice -b` on random sizings of each, sky130
loads from the installed PDK and optimizes, and the README's custom-FoM example runs."""
from __future__ import annotations

import math
import runpy
import shutil
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


def random_sizings(problem: CircuitProblem, n: int, seed: int) -> list[dict[str, float]]:
    u = np.random.default_rng(seed).uniform(0.15, 0.85, (n, problem.dim))
    return [problem.as_dict(x) for x in problem.to_physical(u)]


@pytest.mark.parametrize("stem, n", [("lna", 3), ("bandgap", 2)])
def test_session_matches_ngspice_batch(stem: str, n: int) -> None:
    problem = CircuitProblem.from_netlist(ROOT / "netlists" / f"{stem}.cir")
    compared = 0
    for values in random_sizings(problem, n + 2, seed=11):
        out = problem.simulate(np.array(list(values.values())))
        if out.status is not zoaf.Status.OK or out.error:
            continue                      # a sizing that does not simulate: nothing to compare
        ref = run_batch(problem.sized_netlist(values))
        assert agree(out.measures, ref), (values, out.measures, ref)
        compared += 1
    problem.close()
    assert compared >= n


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
    got = sky130.session().evaluate(values)
    ref = run_batch(sky130.sized_netlist(values), timeout=120)
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
    sky130.session().evaluate(sky130.default_params())
    amp = CircuitProblem.from_netlist(ROOT / "netlists" / "two_stage_amp.cir")
    alone = run_batch(amp.sized_netlist(amp.default_params()))
    assert agree(amp.session().evaluate(amp.default_params()), alone)
    amp.close()

"""Sensitivities at a run's best sizing: extrapolated differences with a step of each parameter's own (not a
fraction of the box) and a stated error, checked against an RC deck whose sensitivities are known in closed form
(inside the box and at its bounds, continuous and integer parameters), against small-step differences on the
two-stage amplifier, and the CLI's table, JSON and heat map."""
from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from ngspice_marks import needs_ngspice
from typer.testing import CliRunner

import zoaf
from zoaf.circuit import CircuitProblem
from zoaf.cli import app
from zoaf.evaluate import Evaluator
from zoaf.problem import Parameter
from zoaf.signoff.rundir import load_run
from zoaf.signoff.sensitivity import Sensitivities, extrapolate, stencil

ROOT = Path(__file__).parent.parent
AMP = ROOT / "netlists" / "two_stage_amp.cir"
RC = Path(__file__).parent / "signoff_decks" / "rc_pole.cir"
T_RES, C = 5e-6, 1e-9                 # rc_pole.cir: vres read at T, the capacitor


def test_extrapolation_removes_the_step_error_and_states_it() -> None:
    """d/dx exp(3x) at 0 = 3: central and one-sided quotients at h, h/2, h/4 (h = 0.1) extrapolate to errors of
    h^4 and h^3 order, and the stated error is no smaller than the actual one."""
    f, h = (lambda x: math.exp(3 * x)), 0.1
    central = [(f(h / 2**k) - f(-h / 2**k)) / (2 * h / 2**k) for k in range(3)]
    one_sided = [(f(h / 2**k) - f(0)) / (h / 2**k) for k in range(3)]
    for diffs, is_central, plain_err, within in ((central, True, 0.04, (1e-4, 1e-7)),
                                                 (one_sided, False, 0.4, (3e-2, 1e-3))):
        assert abs(diffs[0] - 3) > plain_err                          # the step alone is this far off
        for levels, tol in zip((2, 3), within):
            est, err = extrapolate(diffs[:levels], is_central)
            assert abs(est - 3) < tol and err >= abs(est - 3)
    assert extrapolate([2.5, math.nan, math.nan], True) == (2.5, pytest.approx(math.nan, nan_ok=True))


def test_steps_are_the_parameters_own() -> None:
    """+-5% of a log parameter's value however wide its box; one-sided into the box at a bound; at most an
    eighth of a narrow box; an integer by 2 and 1 steps."""
    wide = Parameter("r", 1.0, 1e9, "log")
    assert stencil(0, wide, 1e3) == stencil(0, Parameter("r", 500.0, 2e3, "log"), 1e3)
    st = stencil(0, wide, 1e3)
    assert (st.h, st.direction, st.offsets(1)) == (pytest.approx(50.0), 0, (pytest.approx(25.0), pytest.approx(-25.0)))
    assert stencil(0, Parameter("r", 1e3, 1e9, "log"), 1e3).direction == 1
    assert stencil(0, Parameter("r", 1.0, 1e3, "log"), 1e3).direction == -1
    assert stencil(0, Parameter("w", 1.0, 1.2), 1.1).h == pytest.approx(0.025)
    n = Parameter("n", 1, 16, integer=True)
    assert [(s.h, s.direction, s.levels) for s in (stencil(0, n, 8), stencil(0, n, 16), stencil(0, n, 2))] == [
        (2.0, 0, 2), (2.0, -1, 2), (2.0, 1, 2)]


def _run(tmp_path: Path, bounds: dict[str, str] | None = None) -> Path:
    """A one-simulation run of rc_pole.cir (its best sizing: the netlist's, r = 10k, n = 10), with other bounds."""
    for suffix in (".cir", ".toml"):
        shutil.copy(RC.with_suffix(suffix), tmp_path / RC.with_suffix(suffix).name)
    spec = tmp_path / "rc_pole.toml"
    text = spec.read_text()
    for old, new in (bounds or {}).items():
        text = text.replace(old, new)
    spec.write_text(text)
    out = tmp_path / "run"
    r = CliRunner().invoke(app, ["optimize", str(tmp_path / "rc_pole.cir"), "--budget", "1", "--workers", "1",
                                 "--quiet", "--out", str(out)])
    assert r.exit_code == 0, r.output
    return out


@needs_ngspice
@pytest.mark.parametrize("bounds, steps", [
    (None, {"r": "±5%", "n": "±2"}),
    ({'lo = "1", hi = "1g"': 'lo = "10k", hi = "1g"', "lo = 1, hi = 20": "lo = 1, hi = 10"}, {"r": "+5%", "n": "-2"}),
])
def test_rc_pole_sensitivities_match_the_closed_form(tmp_path: Path, bounds: dict | None, steps: dict) -> None:
    """d ln f3db / d ln r = -1, d ln f3db / d ln n = 1, d ln vres / d ln r = T n / (r c) = 5 = -d ln vres / d ln n.
    With 0.01 of r's 9-decade box as its step (23% of r) vres's sensitivity read 5.39, and n's (one integer cell
    near n = 1: a jump from 10 to 20) -17.5; at a bound, one-sided first differences. Now every continuous entry is
    within 0.1%, and every stated error covers the actual one."""
    run = _run(tmp_path, bounds)
    res = CliRunner().invoke(app, ["sensitivity", str(run), "--json", "--workers", "2"])
    assert res.exit_code == 0, res.output
    got = json.loads(res.stdout)
    params = load_run(run).params
    k = T_RES * params["n"] / (params["r"] * C)
    exact = {("f3db", "r"): -1.0, ("f3db", "n"): 1.0, ("vres", "r"): k, ("vres", "n"): -k}
    for m in ("f3db", "vres"):
        assert got["sensitivity"][m]["r"] == pytest.approx(exact[m, "r"], rel=1e-3), m
    for (m, p), want in exact.items():
        s, err = got["sensitivity"][m][p], got["error"][m][p]
        assert abs(s - want) <= max(err, 1e-6), (m, p, s, err)
    assert got["steps"] == steps
    assert got["simulations"] <= 1 + 6 * 2


@needs_ngspice
def test_amplifier_sensitivities_agree_with_small_step_differences(tmp_path: Path) -> None:
    """On the 22-variable amplifier: the three dominant continuous entries of each judged measure agree with
    central differences at +-0.5% (where the step error is negligible) within 2% plus the stated error; the cost
    is stated and at most 1 + 6d; the table, JSON and heat map are written."""
    problem = CircuitProblem(AMP, objective="ugbw")
    zoaf.optimize(problem, budget=160, seed=2, workers=2, out=tmp_path / "run")
    res = CliRunner().invoke(app, ["sensitivity", str(tmp_path / "run"), "--json", "--workers", "2"])
    assert res.exit_code == 0, res.output
    got = json.loads(res.stdout)
    assert got["simulations"] <= 1 + 6 * problem.dim
    assert (tmp_path / "run" / "sensitivity" / "heatmap.png").stat().st_size > 1000
    x0 = np.array([load_run(tmp_path / "run").params[n] for n in problem.names])
    cont = [j for j, p in enumerate(problem.parameters) if not p.integer and p.lo < 0.99 * x0[j]
            and 1.01 * x0[j] < p.hi and p.scale == "log"]
    pts = [x0 * (1 + s * 0.005 * np.eye(problem.dim)[j]) for j in cont for s in (1, -1)]
    with Evaluator(problem, workers=2) as ev:
        recs = ev.evaluate(problem.to_unit(np.array(pts)))
    checked = 0
    for meas in ("gain_db", "ugbw_hz", "pm_deg", "power_w"):
        m0 = abs(got["at"][meas])
        fd = {problem.names[j]: (recs[2 * k].outcome.measures[meas] - recs[2 * k + 1].outcome.measures[meas])
              / (recs[2 * k].params[problem.names[j]] - recs[2 * k + 1].params[problem.names[j]]) * x0[j] / m0
              for k, j in enumerate(cont)}
        for name in sorted(fd, key=lambda n: -abs(fd[n]))[:3]:
            s, err = got["sensitivity"][meas][name], got["error"][meas][name]
            assert abs(s - fd[name]) <= 0.02 * abs(fd[name]) + err, (meas, name, s, fd[name], err)
            checked += 1
    assert checked == 12
    table = CliRunner().invoke(app, ["sensitivity", str(tmp_path / "run"), "--workers", "2"],
                               env={"COLUMNS": "200"})
    assert table.exit_code == 0 and f"{got['simulations']} simulations: central differences" in table.stdout


def test_a_measure_constrained_twice_is_one_column() -> None:
    """A band (``f >= a``, ``f <= b``) named its measure twice: the table showed the same column twice."""
    from rich.console import Console

    from zoaf.signoff.show import sensitivity_table

    s = Sensitivities(("f", "p"), ("w",), np.array([[0.5], [2.0]]), np.array([[1e-4], [0.5]]),
                      {"f": 1.0, "p": 1.0}, {"w": "±5%"}, 5)
    console = Console(record=True, width=120)
    sensitivity_table(console, s, ["p", "f", "f"])
    text = console.export_text()
    header = next(ln for ln in text.splitlines() if "parameter" in ln)
    assert header.split() == ["┃", "parameter", "┃", "step", "┃", "p", "┃", "f", "┃"]
    assert "+2.000?" in text and "+0.500 " in text            # p's error (0.5) is large: flagged

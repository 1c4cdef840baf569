"""Sensitivities at a run's best sizing: the local fit agrees with central finite differences on the dominant
entries (within 10%), needs at most 2d new simulations, and the CLI writes the table, JSON and heat map."""
from __future__ import annotations

import json
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
from zoaf.signoff.sensitivity import STEP, coordinates, fit, neighbourhood

ROOT = Path(__file__).parent.parent
AMP = ROOT / "netlists" / "two_stage_amp.cir"


def test_fit_recovers_a_power_law_and_a_linear_slope() -> None:
    """m = 3 a^2 / b + 0.5 c: d ln m / d ln a = 2, d ln m / d ln b = -1 (log); c (linear, range 10)."""
    params = [Parameter("a", 1, 10, "log"), Parameter("b", 1, 10, "log"), Parameter("c", 0, 10)]
    x0 = np.array([2.0, 4.0, 1.0])
    rng = np.random.default_rng(0)
    x = x0 * np.exp(rng.normal(0, 1e-3, (20, 3)))
    m = [{"m": 3 * a * a / b + 0.5 * c} for a, b, c in x]
    m0 = {"m": 3 * 4 / 4 + 0.5}
    s = fit(params, x, m, np.ones(len(x)), x0, m0, ["m"])
    assert s.matrix[0] == pytest.approx([2 * 3 / 3.5, -3 / 3.5, 0.5 * 10 / 3.5], rel=1e-2)
    assert coordinates(params, x0[None])[0] == pytest.approx([np.log(2), np.log(4), 0.1])


def test_thin_coordinates() -> None:
    u0 = np.full(3, 0.5)
    u = u0 + np.array([[0.02, 0, 0], [-0.02, 0, 0], [0.02, 0.02, 0], [0, -0.02, 0], [0.01, 0.01, 0], [0, 0, 0]])
    assert neighbourhood(u, u0, np.zeros(3)).thin == (2,)
    assert neighbourhood(u[:5], u0, np.zeros(3)).thin == (0, 1, 2)          # fewer than 2d points: all thin


def test_a_point_in_another_regime_does_not_bend_the_fit() -> None:
    params = [Parameter("a", 1, 10, "log"), Parameter("b", 1, 10, "log")]
    x0 = np.array([2.0, 4.0])
    x = x0 * np.exp(np.random.default_rng(1).normal(0, 1e-2, (12, 2)))
    m = [{"m": a * a * b} for a, b in x]
    m[3] = {"m": 1e-3}                                                   # a railed output
    s = fit(params, x, m, np.ones(len(x)), x0, {"m": 16.0}, ["m"])
    assert s.matrix[0] == pytest.approx([2.0, 1.0], rel=0.02)


@needs_ngspice
def test_sensitivities_agree_with_central_differences(tmp_path: Path) -> None:
    problem = CircuitProblem(AMP, objective="ugbw")
    zoaf.optimize(problem, budget=160, seed=2, workers=2, out=tmp_path / "run")
    res = CliRunner().invoke(app, ["sensitivity", str(tmp_path / "run"), "--json", "--workers", "2"])
    assert res.exit_code == 0, res.output
    got = json.loads(res.stdout)
    assert got["top_up_simulations"] <= 2 * problem.dim
    assert (tmp_path / "run" / "sensitivity" / "heatmap.png").stat().st_size > 1000
    run = load_run(tmp_path / "run")
    x0 = np.array([run.params[n] for n in problem.names])
    u0 = problem.to_unit(x0)
    cont = [j for j, p in enumerate(problem.parameters) if not p.integer]
    pts = [np.clip(u0 + s * STEP * np.eye(problem.dim)[j], 0, 1) for j in cont for s in (1, -1)]
    with Evaluator(problem, workers=2) as ev:
        recs = ev.evaluate(np.array(pts))
    z = coordinates(problem.parameters, problem.to_physical(np.array(pts)))
    checked = 0
    for meas in ("gain_db", "ugbw_hz", "pm_deg", "power_w"):
        m0 = abs(got["at"][meas])
        fd = {problem.names[j]: (recs[2 * k].outcome.measures[meas] - recs[2 * k + 1].outcome.measures[meas])
              / (z[2 * k, j] - z[2 * k + 1, j]) / m0 for k, j in enumerate(cont)}
        for name in sorted(fd, key=lambda n: -abs(fd[n]))[:3]:          # the dominant entries
            assert got["sensitivity"][meas][name] == pytest.approx(fd[name], rel=0.10), (meas, name)
            checked += 1
    assert checked == 12


def test_a_measure_constrained_twice_is_one_column() -> None:
    """A band (``f >= a``, ``f <= b``) named its measure twice: the table showed the same column twice."""
    from rich.console import Console

    from zoaf.signoff.sensitivity import Sensitivities
    from zoaf.signoff.show import sensitivity_table

    s = Sensitivities(("f", "p"), ("w",), np.array([[0.5], [2.0]]), {"f": 1.0, "p": 1.0}, 3)
    console = Console(record=True, width=120)
    sensitivity_table(console, s, 2, ["p", "f", "f"])
    header = next(ln for ln in console.export_text().splitlines() if "parameter" in ln)
    assert header.split() == ["┃", "parameter", "┃", "p", "┃", "f", "┃"]

"""``zoaf.minimize`` called as scipy users call ``scipy.optimize.minimize`` (``minimize(f, x0, bounds=B)``, scipy's
defaults ``method=None``, ``jac=None``, ``tol=None``, ``options={...}``), and the library's refusals of a resume in
the library's words (``out=``, ``budget=``) where the command line keeps its own (``--out``, ``--budget``)."""
from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from ngspice_marks import needs_ngspice
from typer.testing import CliRunner

import zoaf
from zoaf.cli import app
from zoaf.errors import InputError
from zoaf.function import FunctionProblem

ROOT = Path(__file__).resolve().parents[1]
RC = ROOT / "tests" / "bad_inputs" / "good.cir"
BOX = [(-1, 1)] * 2


def _bowl(x: np.ndarray) -> float:
    return float(np.sum((x - 0.3) ** 2))


def _run(*where: object, **kw: object) -> zoaf.optim.Result:
    return zoaf.minimize(_bowl, *where, **{"budget": 30, "seed": 0, **kw})


def _points(res: zoaf.optim.Result) -> list[tuple[float, ...]]:
    return [tuple(r.params.values()) for r in res.history]


def test_scipys_order_takes_the_value_after_fun_as_x0() -> None:
    """``minimize(f, x0, bounds=B)``, the call every scipy user types first, was Python's "got multiple values
    for argument 'bounds'"; it is the run of ``minimize(f, B, x0=x0)``, its first simulation at x0."""
    scipy_order = _run([0.1, -0.2], bounds=BOX)
    assert _points(scipy_order)[0] == pytest.approx((0.1, -0.2))
    assert _points(scipy_order) == _points(_run(BOX, x0=[0.1, -0.2]))
    assert _points(zoaf.minimize(fun=_bowl, bounds=BOX, budget=30, seed=0)) == _points(_run(BOX))


@pytest.mark.parametrize("where, kw, says", [
    (([0.1, 0.2],), {"bounds": BOX, "x0": [0.0, 0.0]},
     "minimize: two start points: one given after fun (scipy's x0, as bounds= is given) and one as x0=; give one"),
    ((), {"x0": [0.1, 0.2]}, "minimize: no bounds: zoaf samples every variable within a finite box; give "
                             "bounds=[(lo, hi), ...] (scipy's minimize(fun, x0) without bounds searches unbounded, "
                             "which zoaf does not)"),
    (([0.1, 0.2], ()), {"bounds": BOX},
     "minimize: 2 values after fun given by position; zoaf.minimize takes minimize(fun, bounds) or scipy's "
     "minimize(fun, x0, bounds=...), the rest by keyword (args=, method=, constraints=, ...)")])
def test_a_start_point_twice_or_no_box_is_one_line(where: tuple, kw: dict, says: str) -> None:
    with pytest.raises(InputError, match=f"^{re.escape(says)}$"):
        _run(*where, **kw)


def test_scipys_defaults_are_no_refusal() -> None:
    """``method=None`` (scipy's default method), ``jac=None``/``False``/a finite-difference scheme (no gradient
    given), ``hess=None``, ``tol=None`` and ``options=None`` were refused as keywords zoaf spells otherwise, or
    reached ZOAF as options ("unknown ZOAF option(s) jac"); they are the plain run."""
    plain = _points(_run(BOX))
    for kw in ({"method": None}, {"jac": None, "hess": None, "hessp": None, "tol": None, "options": None},
               {"jac": False}, {"jac": "2-point"}, {"options": {"disp": True}}, {"maxiter": None}):
        assert _points(_run(BOX, **kw)) == plain, kw


def test_options_are_the_methods_own_as_in_scipy() -> None:
    """scipy passes ``options={...}`` to its method; zoaf refused every ``options=`` ("write budget= for
    options={'maxfev': N}"), though ``{'alpha0': 0.3}`` is ZOAF's own option."""
    assert _points(_run(BOX, options={"alpha0": 0.05, "disp": False})) == _points(_run(BOX, alpha0=0.05))
    assert _points(_run(BOX, alpha0=0.05)) != _points(_run(BOX))


@pytest.mark.parametrize("kw, says", [
    ({"options": {"maxiter": 5}}, "minimize: options={'maxiter': ...} is scipy's; write budget=N (zoaf counts calls "
                                  "of fun, not iterations)"),
    ({"options": {"alpha0": 0.1}, "alpha0": 0.2}, "minimize: alpha0 given twice, as alpha0= and in options="),
    ({"options": [("alpha0", 0.1)]}, "minimize: options= is a dict of the method's options, as in scipy, got list"),
    ({"jac": lambda x: 2 * (x - 0.3)}, "minimize: jac= is scipy's; leave it out: zoaf uses no derivatives"),
    ({"hess": "2-point"}, "minimize: hess= is scipy's; leave it out: zoaf uses no derivatives"),
    ({"tol": 1e-8}, "minimize: tol= is scipy's; write target= (stop once a feasible point has fun(x) <= target) or "
                    "a smaller budget=")])
def test_what_zoaf_cannot_honour_is_still_refused(kw: dict, says: str) -> None:
    """A gradient given, a tolerance, an iteration count: zoaf would ignore them, so they are refused, each in
    one line."""
    with pytest.raises(InputError, match=f"^{re.escape(says)}$"):
        _run(BOX, **kw)


# -- a resume refused in the caller's words ------------------------------------------------------------------
def _older(run: Path) -> None:
    """Make ``run``'s history one of an older zoaf (schema 1: no constraint values)."""
    with sqlite3.connect(run / "history.db") as db:
        db.execute("ALTER TABLE evals DROP COLUMN constraints")
        db.execute("ALTER TABLE evals DROP COLUMN objective_fom")


def _python_run(out: Path) -> FunctionProblem:
    problem = FunctionProblem.from_bounds(_bowl, BOX)
    zoaf.optimize(problem, budget=3, seed=1, method="random", out=out)
    return problem


def test_the_library_names_its_own_keywords(tmp_path: Path) -> None:
    """``zoaf.optimize(..., resume=True)`` said "(no --budget)", "another --out": options a library user has not."""
    problem = _python_run(tmp_path / "run")
    with pytest.raises(InputError) as e:
        zoaf.optimize(problem, budget=5, seed=1, method="random", out=tmp_path / "run", resume=True)
    assert str(e.value).endswith(": resume with budget 3 (budget=3), or start a new run (another out=) with budget 5")
    _older(tmp_path / "run")
    with pytest.raises(InputError) as e:
        zoaf.optimize(problem, budget=3, seed=1, method="random", out=tmp_path / "run", resume=True)
    assert str(e.value) == (f"{tmp_path / 'run' / 'history.db'}: cannot resume: recorded by an older zoaf (history "
                            "schema 1, without constraint values); start a new run in another out=")


def _cli(*args: str) -> list[str]:
    r = CliRunner().invoke(app, list(args), env={"COLUMNS": "400"})
    return [ln for ln in r.stderr.splitlines() if ln.strip()] if r.exit_code == 2 else [f"exit {r.exit_code}"]


@needs_ngspice
def test_the_command_line_keeps_its_options(tmp_path: Path) -> None:
    run = str(tmp_path / "run")
    assert _cli("optimize", str(RC), "--budget", "3", "--seed", "1", "--workers", "0", "--quiet", "--out", run) == \
        ["exit 0"]
    [line] = _cli("optimize", str(RC), "--budget", "5", "--workers", "0", "--quiet", "--resume", run)
    assert line.endswith(": resume with budget 3 (no --budget), or start a new run (another --out) with budget 5")
    _older(tmp_path / "run")
    assert _cli("optimize", str(RC), "--workers", "0", "--quiet", "--resume", run) == [
        f"error: {tmp_path / 'run' / 'history.db'}: cannot resume: recorded by an older zoaf (history schema 1, "
        "without constraint values); start a new run in another --out"]

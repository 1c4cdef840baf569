"""Bad inputs, round 20: what was read as another thing (a None or a date in ``x0`` as NaN or days), said of
another thing (an integer past the float range as Python's words, the spec of the run resumed as refused for the
netlist given), or said without why and what to do (a resume refused for a method's setting a new default
changed). (The command-line cases of this round are in bad_inputs/cases.toml, under "round 20".)"""
from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import zoaf
from zoaf.errors import InputError

from ngspice_marks import needs_ngspice

CORPUS = Path(__file__).parent / "bad_inputs"


def _square(x: np.ndarray) -> float:
    return float(np.sum((x - 0.3) ** 2))


@pytest.mark.parametrize("x0, says", [
    (np.array([0.1, None]), r"^x0 must be numbers, got array\(\[0\.1, None\], dtype=object\)$"),
    ([0.1, None], r"^x0 must be numbers, got \[0\.1, None\]$"),
    (np.array(["2020-01-01", "2020-01-02"], dtype="datetime64[D]"), r"^x0 must be numbers, got array\(\['2020")])
def test_a_start_of_none_or_dates_is_refused_as_no_numbers(x0: object, says: str) -> None:
    """None was read as NaN ("x0[1] = nan lies outside bounds[1]": a NaN nobody wrote) and a date as its count of
    days since 1970 ("x0[0] = 18262 lies outside bounds[0]")."""
    with pytest.raises(InputError, match=says):
        zoaf.minimize(_square, [(-1, 1)] * 2, x0=x0, budget=3, seed=0)


def test_a_function_returning_an_integer_past_the_float_range_says_so() -> None:
    """``fun`` returning ``10**400`` failed each point as "OverflowError: int too large to convert to float",
    which named neither fun nor what it returned."""
    res = zoaf.minimize(lambda x: 10**400, [(-1, 1)] * 2, budget=3, seed=0)
    assert res.nfailed == 3 and res.message == ("no simulation succeeded (the first error: ValueError: fun returned "
                                                "an integer past the float range, not a finite number)")


def test_a_resume_refused_for_a_changed_default_says_why_and_what_to_do(tmp_path: Path) -> None:
    """A run made by a zoaf whose method had another default was "cannot resume: settings.alpha0 differs from the
    recorded run (recorded 0.4, now 0.5)": neither that a default changed nor what to do. The run's rows are kept."""
    run = tmp_path / "run"
    zoaf.minimize(_square, [(-1, 1)] * 2, budget=12, seed=0, out=run, callback=lambda r: True)
    db = run / "history.db"
    with sqlite3.connect(db) as con:
        settings = json.loads(con.execute("SELECT value FROM meta WHERE key = 'settings'").fetchone()[0])
        assert settings["alpha0"] == 0.5
        con.execute("UPDATE meta SET value = ? WHERE key = 'settings'", (json.dumps({**settings, "alpha0": 0.4}),))
        rows = con.execute("SELECT COUNT(*) FROM evals").fetchone()[0]
    with pytest.raises(InputError) as e:
        zoaf.minimize(_square, [(-1, 1)] * 2, budget=12, seed=0, out=run, resume=True)
    assert str(e.value) == (f"{db}: cannot resume: the method's setting alpha0 is 0.5 in this zoaf, 0.4 in the "
                            "recorded run (a default changed since the run was made); resume with the zoaf version "
                            "that made it, or start a new run")
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
        assert con.execute("SELECT COUNT(*) FROM evals").fetchone()[0] == rows > 0


@needs_ngspice
def test_resuming_a_run_with_another_netlist_names_the_runs_netlist(tmp_path: Path) -> None:
    """``zoaf optimize good.cir --resume RUN`` of a run of ``mc.cir`` read the run's spec (mc.toml) against
    good.cir and said only "mc.toml: montecarlo.normal: 'mc_r' is not a .param of good.cir": neither the run nor
    that its netlist is another. The same deck under another path still resumes (a moved folder)."""
    for name in ("mc.cir", "mc.toml", "good.cir", "good.toml"):
        shutil.copy(CORPUS / name, tmp_path / name)
    env = dict(os.environ, COLUMNS="200", NO_COLOR="1", TERM="dumb")

    def zoaf_(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "zoaf", *args], cwd=tmp_path, env=env, capture_output=True,
                              text=True, timeout=300)

    assert zoaf_("optimize", "mc.cir", "--budget", "2", "--seed", "1", "--workers", "0", "-q", "--out",
                 "run").returncode == 0
    r = zoaf_("optimize", "good.cir", "--resume", "run", "-q")
    assert (r.returncode, r.stdout) == (2, ""), r.stderr
    assert r.stderr == (f"error: run/history.db: a run of {tmp_path / 'mc.cir'}, not of good.cir: resume it with "
                        f"its own netlist (this one: {tmp_path / 'mc.toml'}: montecarlo.normal: 'mc_r' is not a "
                        f".param of {tmp_path / 'good.cir'})\n")
    shutil.copytree(tmp_path, tmp_path / "moved", ignore=shutil.ignore_patterns("moved"))
    assert zoaf_("optimize", "moved/mc.cir", "--resume", "moved/run", "-q").returncode == 0


def test_a_problem_whose_simulate_returns_an_integer_past_the_float_range_fails_that_point() -> None:
    """An ``Outcome`` whose FoM is ``10**400`` ended the run with an OverflowError traceback: a subclass's
    ``simulate`` is guarded so that what it returns amiss fails its point only."""
    from zoaf.problem import Outcome, Parameter, Problem, Status

    class Huge(Problem):
        def simulate(self, x: np.ndarray) -> Outcome:
            return Outcome(Status.OK, fom=10**400 if x[0] > 0.5 else float(x[0]))

    res = zoaf.optimize(Huge([Parameter("a", 0, 1)]), budget=6, seed=0, method="random")
    errors = {r.outcome.error for r in res.history if r.outcome.status == Status.FAILED}
    assert errors == {"Huge.simulate returned an Outcome whose fom must be a number within the float range, got an "
                      "integer past it"}
    assert res.nfev == 6 and 0 < res.nfailed < 6 and res.fun == min(r.outcome.fom for r in res.history)


def test_a_problem_given_one_parameter_bare_says_so() -> None:
    """``Problem(Parameter(...))`` (not in a list) was "TypeError: 'Parameter' object is not iterable"."""
    from zoaf.problem import Parameter, Problem

    with pytest.raises(InputError, match=r"^parameters must be a sequence of zoaf Parameters, got Parameter$"):
        Problem(Parameter("a", 0, 1))


@needs_ngspice
@pytest.mark.parametrize("value, says", [(float("nan"), "nan"), ("1k", "'1k'"), (True, "True")])
def test_a_yield_of_a_sizing_that_is_no_finite_number_is_refused_before_any_folder(tmp_path: Path, value: object,
                                                                                   says: str) -> None:
    """``run_yield`` with ``r1=nan`` simulated NaN's samples into a yield folder, ``"1k"`` was a ValueError from
    the sample deck's making, ``True`` simulated r1 = 1."""
    from zoaf.circuit import CircuitProblem
    from zoaf.signoff.yieldrun import run_yield

    problem = CircuitProblem(CORPUS / "mc.cir")
    try:
        with pytest.raises(InputError, match=rf"^the sizing's r1 = {says}: must be a finite number$"):
            run_yield(problem, {"r1": value, "c1": 1e-9}, tmp_path / "yield", samples=2, seed=0, workers=0)
    finally:
        problem.close()
    assert not (tmp_path / "yield").exists()


def test_a_comparison_given_a_seed_twice_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    """``seeds=[0, 0]`` planned two runs into one folder: the first ran, the second found its history and the
    comparison ended "1 of the runs failed ... already holds a run (history.db); use --resume or another --out"."""
    from zoaf.compare import compare

    with pytest.raises(InputError, match=r"^seeds: seed 0 is listed twice \(one run per seed\)$"):
        compare(CORPUS / "good.cir", methods=["random"], seeds=[0, 1, 0], budget=2, jobs=1, out=tmp_path / "cmp")
    assert not (tmp_path / "cmp").exists()


def test_a_reports_command_run_as_python_m_zoaf_is_the_zoaf_command() -> None:
    """Run as ``python -m zoaf compare ...``, report.md and compare.json gave the command as
    ``/path/to/zoaf/__main__.py compare ...``, which does not run (its imports are relative): not what the designer
    typed nor a command to rerun."""
    from zoaf.report import user_command

    main = str(Path(zoaf.__file__).parent / "__main__.py")
    assert user_command([main, "compare", "good.cir", "--seeds", "2"]) == "zoaf compare good.cir --seeds 2"
    assert user_command(["tools/__main__.py", "x"]) == "tools/__main__.py x"

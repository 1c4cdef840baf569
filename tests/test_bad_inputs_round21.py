"""Bad inputs, round 21: what ran as something else (``objectives=[]`` as every objective, ``x0=[True, False]`` as
1 and 0, a corner index -1 as the last corner, a received ``result.json``'s ``"1.0"`` as a FoM), what was said of
another thing (a Python fom's failure as the deck's, a fom run's objective as the spec's) or not at all (a run that
met no constraint, under ``-q``; scipy's ``keep_feasible``). (The command-line cases of this round are in
bad_inputs/cases.toml, under "round 21".)"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

import zoaf
from zoaf.errors import DeckFailure, InputError, ZoafWarning

from ngspice_marks import needs_ngspice

CORPUS = Path(__file__).parent / "bad_inputs"
DIVIDER = Path(__file__).parent / "signoff_decks" / "divider.cir"


def _square(x: np.ndarray) -> float:
    return float(np.sum((x - 0.3) ** 2))


def _zoaf(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, COLUMNS="200", NO_COLOR="1", TERM="dumb")
    return subprocess.run([sys.executable, "-m", "zoaf", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300)


def _corpus_copy(tmp_path: Path, *names: str) -> None:
    for name in names:
        shutil.copy(CORPUS / name, tmp_path / name)


def test_a_comparison_of_no_objectives_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    """``objectives=[]`` compared every objective of the spec (``methods=[]`` was refused); None still means all."""
    from zoaf.compare import compare

    for empty in ([], ()):
        with pytest.raises(InputError, match=r"^compare: no objectives given \(objectives=None compares every "):
            compare(CORPUS / "good.cir", objectives=empty, methods=["random"], seeds=1, budget=2, jobs=1,
                    out=tmp_path / "cmp")
    assert not (tmp_path / "cmp").exists()


def test_a_comparison_of_no_jobs_is_refused(tmp_path: Path) -> None:
    """``jobs=0`` ran as ``jobs=1`` unsaid (the command line's ``--jobs 0`` is refused)."""
    from zoaf.compare import compare

    with pytest.raises(InputError, match=r"^jobs 0: a comparison runs each run in a process of its own"):
        compare(CORPUS / "good.cir", methods=["random"], seeds=1, budget=2, jobs=0, out=tmp_path / "cmp")
    assert not (tmp_path / "cmp").exists()


@pytest.mark.parametrize("x0, says", [
    ([True, False], r"\[True, False\]"), (np.array([True, False]), r"array\(\[ True, False\]\)"),
    ([0.5, True], r"\[0\.5, True\]")])
def test_a_start_of_booleans_is_no_numbers(x0: object, says: str) -> None:
    """``x0=[True, False]`` ran from (1, 0), ``[0.5, True]`` too once numpy made it floats, where
    ``Parameter(init=True)`` and a spec's ``init = true`` are refused. Whole numbers still are numbers."""
    with pytest.raises(InputError, match=rf"^x0 must be numbers, got {says}$"):
        zoaf.minimize(_square, [(-1, 1)] * 2, x0=x0, budget=2, seed=0)
    with pytest.raises(InputError, match=r"^bounds must be numbers, got \[\(False, True\)\]$"):
        zoaf.minimize(_square, [(False, True)], budget=2, seed=0)
    assert zoaf.minimize(_square, [(-1, 1)] * 2, x0=[1, 0], budget=2, seed=0, method="random").nfev == 2


@pytest.mark.parametrize("kind", ["nonlinear", "linear"])
def test_keep_feasible_that_zoaf_cannot_keep_is_said(kind: str) -> None:
    """scipy's methods that cannot keep a constraint feasible warn so; zoaf ignored ``keep_feasible=True`` unsaid,
    and called fun at points that violate it. The run goes on (the warning is scipy's convention, not an error)."""
    from scipy.optimize import LinearConstraint, NonlinearConstraint

    c = NonlinearConstraint(lambda x: x[0], 0, 1, keep_feasible=True) if kind == "nonlinear" else \
        LinearConstraint([[1.0, 0.0]], 0, 1, keep_feasible=[True])
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        res = zoaf.minimize(_square, [(-1, 1)] * 2, constraints=[c], budget=4, seed=0, method="random")
    mine = [w for w in said if issubclass(w.category, ZoafWarning)]
    assert [str(w.message) for w in mine] == ["constraints[0]: keep_feasible is ignored: zoaf samples points that "
                                              "violate a constraint (ranked behind every feasible one), and calls "
                                              "fun there"]
    assert mine[0].filename == __file__ and res.nfev == 4       # at the caller's line
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        zoaf.minimize(_square, [(-1, 1)] * 2, constraints=[NonlinearConstraint(lambda x: x[0], 0, 1)], budget=2,
                      seed=0, method="random")


@needs_ngspice
def test_a_run_that_meets_no_constraint_exits_3_and_says_so_under_quiet(tmp_path: Path) -> None:
    """``gain_lf >= 10`` (an RC low-pass has none) ended ``zoaf optimize -q`` with exit 0 and no word, as a run
    that met its spec; without ``-q`` the last line said INFEASIBLE, exit 0 too. Exit 3 now, one line under -q;
    the end files are written all the same (best.cir: the least violation)."""
    _corpus_copy(tmp_path, "good.cir")
    (tmp_path / "good.toml").write_text((CORPUS / "good.toml").read_text().replace("gain_lf >= -1", "gain_lf >= 10"))
    r = _zoaf("optimize", "good.cir", "--budget", "3", "--seed", "0", "--workers", "0", "-q", "--out", "q",
              cwd=tmp_path)
    lines = [ln for ln in r.stderr.splitlines() if not ln.startswith("note:")]
    assert (r.returncode, r.stdout, len(lines)) == (3, "", 1), r.stderr
    assert lines[0].startswith("INFEASIBLE: simulation budget exhausted; no point met every constraint (the least "
                               "violation: FoM 1") and lines[0].endswith("; run directory q)"), lines
    result = json.loads((tmp_path / "q" / "result.json").read_text())
    assert result["feasible"] is False and (tmp_path / "q" / "best.cir").is_file()
    loud = _zoaf("optimize", "good.cir", "--budget", "3", "--seed", "0", "--workers", "0", "--out", "loud",
                 cwd=tmp_path)
    assert loud.returncode == 3 and "INFEASIBLE" in loud.stdout, loud.stderr
    met = _zoaf("optimize", "good.cir", "--spec", str(CORPUS / "good.toml"), "--budget", "3", "--seed", "0",
                "--workers", "0", "-q", "--out", "met", cwd=tmp_path)
    assert (met.returncode, met.stderr.count("INFEASIBLE")) == (0, 0), met.stderr


@needs_ngspice
def test_a_python_fom_failing_everywhere_is_named_not_the_deck() -> None:
    """A fom that raised at every sizing stopped the run with "good.cir: ... fix the deck": the deck measured every
    sizing; the function failed. Its early stop names the function."""
    from zoaf.circuit import CircuitProblem

    def no_bandwidth(measures: dict) -> float:
        return measures["f3db"] / 0

    problem = CircuitProblem(CORPUS / "good.cir", fom=no_bandwidth)
    try:
        with pytest.raises(DeckFailure) as e:
            zoaf.optimize(problem, budget=300, seed=0, method="de", workers=0)
    finally:
        problem.close()
    said = str(e.value)
    assert said.startswith("fom=test_a_python_fom_failing_everywhere_is_named_not_the_deck.<locals>.no_bandwidth: "
                           "the run stopped: ") and "\n" not in said
    assert said.endswith(f"all failed the same way (fom raised ZeroDivisionError: float division by zero), each "
                         f"measured by {CORPUS / 'good.cir'}: fix the function and start a new run")
    assert e.value.sizings >= 50


@needs_ngspice
def test_sign_off_and_resume_of_a_python_fom_run_name_it(tmp_path: Path) -> None:
    """A run of ``CircuitProblem(fom=...)`` records the objective "custom": ``zoaf sensitivity RUN`` and
    ``zoaf optimize --resume RUN`` said "good.toml: unknown objective 'custom'; choose one of bw", a name the spec's
    author never wrote."""
    from zoaf.circuit import CircuitProblem

    _corpus_copy(tmp_path, "good.cir", "good.toml")
    problem = CircuitProblem(tmp_path / "good.cir", fom=lambda m: -m["f3db"])
    try:
        zoaf.optimize(problem, budget=2, seed=0, method="random", workers=0, out=tmp_path / "run")
    finally:
        problem.close()
    for args, then in ((("sensitivity", "run", "--workers", "1"), "sign-off judges a spec objective's constraints"),
                       (("optimize", "good.cir", "--resume", "run", "-q"), "resume it in Python")):
        r = _zoaf(*args, cwd=tmp_path)
        assert (r.returncode, r.stderr.count("\n")) == (2, 1), r.stderr
        assert r.stderr.startswith("error: run/history.db: a run of a Python fom (CircuitProblem(fom=...)), not of "
                                   "an objective of the spec: ") and then in r.stderr, r.stderr
    assert not (tmp_path / "run" / "sensitivity").exists()


@pytest.fixture(scope="module")
def corner_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished corner run of the divider (vsup = 0.3 and 1; it measures nothing at 0.3: exit 1, a result.json)."""
    run = tmp_path_factory.mktemp("corner") / "run"
    r = _zoaf("optimize", str(DIVIDER), "-o", "low", "--budget", "2", "--seed", "0", "--workers", "0", "-q",
              "--out", str(run), cwd=run.parent)
    assert (run / "result.json").is_file(), r.stderr
    return run


@needs_ngspice
@pytest.mark.parametrize("corner", [-1, 2, 1.0, True, "nope", None])
def test_a_sensitivity_at_no_corner_of_the_run_is_refused(corner_run: Path, corner: object) -> None:
    """``sensitivity(run, corner=-1)`` (or 1.0, True) simulated the last or second corner unsaid; 2 was an
    IndexError, a name a ValueError from numpy. A name of the run's corners, in any case, is its index."""
    from zoaf.signoff.rundir import load_run
    from zoaf.signoff.sensrun import _corner_index, sensitivity

    run = load_run(corner_run)
    try:
        assert _corner_index(run, "VSUP=1") == 1 and _corner_index(run, 0) == 0 and _corner_index(run, None) is None
        if corner is None:
            return
        with pytest.raises(InputError, match=r"^corner .*: give one of the run's corners, by name or index 0\.\.1: "
                                             r"vsup=0\.3, vsup=1$"):
            sensitivity(run, corner=corner, workers=1)
    finally:
        run.problem.close()
    assert not (corner_run / "sensitivity").exists()


@needs_ngspice
@pytest.mark.parametrize("deck, corner, says", [
    ("divider.cir", "nope", r"^corner: unknown corner\(s\) nope; \[corners\] defines vsup=0\.3, vsup=1$"),
    ("divider.cir", 1, r"^corner must be a corner's name \(str\) or a Corner, got int$"),
    ("mc.cir", "hot", r"^corner 'hot': \S*mc\.toml has no \[corners\] table$")])
def test_a_yield_at_a_corner_named_amiss_is_refused_before_any_folder(tmp_path: Path, deck: str, corner: object,
                                                                      says: str) -> None:
    """``run_yield(corner="name")`` was "'str' object has no attribute 'name'" (an AttributeError traceback), as
    was an index; a name is now looked up in the spec's ``[corners]``."""
    from zoaf.circuit import CircuitProblem
    from zoaf.signoff.yieldrun import run_yield

    problem = CircuitProblem(DIVIDER if deck == "divider.cir" else CORPUS / deck)
    sizing = problem.default_params()
    try:
        with pytest.raises(InputError, match=says):
            run_yield(problem, sizing, tmp_path / "yield", samples=2, seed=0, corner=corner, workers=0)
    finally:
        problem.close()
    assert not (tmp_path / "yield").exists()


@pytest.mark.parametrize("field, value, says", [
    ("fun", "1.0", r"the FoM '1\.0' is not a number"), ("fun", float("nan"), r"the FoM nan is not a number"),
    ("fun", True, r"the FoM True is not a number"), ("nfev", -3, r"nfev -3 is not a count of simulations"),
    ("objective", "big", r"objective 'big' is not a number")])
def test_a_received_result_that_holds_no_numbers_is_refused(tmp_path: Path, field: str, value: object,
                                                            says: str) -> None:
    """A run kept as its ``result.json`` (no history, no trace: as committed benchmark results may be) whose FoM
    was the text "1.0", NaN or true was ranked as that FoM, an nfev of -3 reported as run so."""
    from zoaf.stats import load_run

    run = tmp_path / "bw" / "random" / "seed-0"
    run.mkdir(parents=True)
    result = {"method": "random", "seed": 0, "fun": -1.0, "objective": 1.0, "feasible": True, "nfev": 2,
              "stop_reason": "budget", field: value}
    (run / "result.json").write_text(json.dumps(result))
    with pytest.raises(InputError, match=rf"^{run / 'result.json'}: not what zoaf writes \(ValueError: {says}\)$"):
        load_run(run, budget=2)
    (run / "result.json").write_text(json.dumps({**result, field: {"fun": None, "nfev": 0, "objective": None}[field]}))
    assert load_run(run, budget=2).trajectory is False           # what zoaf writes still reads

"""Bad inputs, round 22: what ran as something else (a ``Bounds`` or ``NonlinearConstraint`` bound ``"1"`` read as
1, a constraint's ``["-0.5"]`` as -0.5, ``log={0: False}`` as a log axis 0, ``CircuitProblem(constraints=...)``
beside a spec objective never judged, ``objective=`` beside ``fom=`` never optimized), what was said in Python's or
numpy's words naming nothing (``"1u"`` as a bound, a constraint's ``10**400``, a netlist path of ``3``, an objective
``["bw"]``, an error line numpy's array repr broke over lines), what spent the whole budget on a mistake the input
showed (a ``LinearConstraint`` whose ``A`` holds NaN or inf), what was refused that scipy takes (a sparse ``A``),
and a received history's meta said of the wrong thing (its unknown method as the ``--method`` never given, its
options ``"x"`` as "no run metadata", its seed -1 as the caller's ``seed``). What held, among the ~150 inputs tried:
the environment variables (``ZOAF_MAX_*``, ``ZOAF_INCLUDE_ROOTS``, ``ZOAF_SKY130_LIB``), ``--set`` of text,
expressions, a newline or ``1e400``, truncated, empty, Latin-1, deeply nested or 5,000-digit ``result.json``,
truncated or empty ``history.db``, scipy's ``Bounds`` with inf or None, ``x0`` of text, dates or dicts. (The
command-line cases of this round are in bad_inputs/cases.toml, under "round 22".)"""
from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.optimize import Bounds, LinearConstraint, NonlinearConstraint

import zoaf
from zoaf.circuit import CircuitProblem
from zoaf.errors import InputError
from zoaf.history import SCHEMA_VERSION, History

CORPUS = Path(__file__).parent / "bad_inputs"
GOOD = CORPUS / "good.cir"
BOX = [(-1.0, 1.0), (-1.0, 1.0)]


def _square(x: np.ndarray) -> float:
    return float(np.sum((x - 0.3) ** 2))


class _Counted:
    """``fun`` that counts its calls: a refusal must come before the first one."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, x: np.ndarray) -> float:
        self.calls += 1
        return _square(x)


@pytest.mark.parametrize("lb, says", [
    (["1u", "-1"], r"^bounds\.lb must be numbers, got array\(\['1u', '-1'\]"),     # numpy's "could not convert"
    (["-1", "-1"], r"^bounds\.lb must be numbers, got array\(\['-1', '-1'\]")])    # ran as -1, where [("-1", 1)]
def test_text_in_a_scipy_bounds_is_refused_as_in_pairs(lb: list[str], says: str) -> None:   # was refused
    fun = _Counted()
    with pytest.raises(InputError, match=says):
        zoaf.minimize(fun, Bounds(lb, [1, 1]), budget=3, seed=0)
    assert fun.calls == 0


@pytest.mark.parametrize("lb", ["1u", "0.5"])
def test_text_as_a_nonlinear_constraints_bound_is_refused_naming_it(lb: str) -> None:
    """``lb="1u"`` was numpy's "could not convert string to float: '1u'" (no constraint named); ``"0.5"`` ran as 0.5."""
    with pytest.raises(InputError, match=rf"^constraints\[0\]\.lb must be numbers, got '{lb}'$"):
        zoaf.minimize(_square, BOX, budget=3, seed=0, constraints=NonlinearConstraint(lambda x: x[0], lb, 2))


@pytest.mark.parametrize("value", [["-0.5"], np.array(["-0.5"]), [b"-0.5"]])
def test_a_constraint_that_returns_text_in_a_list_is_refused(value: object) -> None:
    """``"-0.5"`` alone was refused, ``["-0.5"]`` read as the number -0.5 (every point judged by a text)."""
    with pytest.raises(InputError, match=r"^constraints\[0\]: calling it at x = \[0\.0, 0\.0\] raised ValueError: "
                                         r"a constraint returned text, .*-0\.5.*, not numbers$"):
        zoaf.minimize(_square, BOX, budget=3, seed=0, constraints={"type": "ineq", "fun": lambda x: value})


def test_a_constraint_past_the_float_range_is_said_so() -> None:
    """``10**400`` was Python's "OverflowError: int too large to convert to float", as ``fun``'s was (round 20)."""
    with pytest.raises(InputError, match=r"raised ValueError: a constraint returned an integer past the float "
                                         r"range, not a finite number$"):
        zoaf.minimize(_square, BOX, budget=3, seed=0, constraints={"type": "ineq", "fun": lambda x: 10**400})


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_a_linear_constraint_whose_matrix_is_not_finite_is_refused_before_any_point(bad: float) -> None:
    """A NaN in ``A`` failed every point ("constraints[0] returned NaN"), an inf made every point infeasible: the
    whole budget spent on what the input showed."""
    fun = _Counted()
    with pytest.raises(InputError, match=r"^constraints\[0\]\.A must be finite numbers \(a NaN or inf in it fails "
                                         r"or violates every point\), got array\(\[\["):
        zoaf.minimize(fun, BOX, budget=5, seed=0, constraints=LinearConstraint([[bad, 1.0]], -1, 1))
    assert fun.calls == 0
    res = zoaf.minimize(_square, BOX, budget=5, seed=0, constraints=LinearConstraint([1.0, 1.0], -1, 1))
    assert res.nfev == 5 and res.success          # a 1-D A is still one row, as scipy reads it


def test_a_sparse_linear_constraint_is_taken_as_scipy_takes_it() -> None:
    """A ``scipy.sparse`` ``A`` (scipy's ``LinearConstraint`` takes one) was refused as "A has 1 columns for 2
    variables": numpy wrapped the matrix object as one entry."""
    from scipy.sparse import csr_matrix

    res = zoaf.minimize(_square, BOX, budget=20, seed=0,
                        constraints=LinearConstraint(csr_matrix([[1.0, 1.0]]), -np.inf, 0.2))
    assert res.feasible and res.x.sum() <= 0.2 and res.constr.tolist() == pytest.approx([res.x.sum() - 0.2])


def test_axes_given_as_a_dict_are_refused() -> None:
    """``log={0: False}`` made axis 0 logarithmic (the dict's keys were taken as the indices)."""
    with pytest.raises(InputError, match=r"^log must be a list of indices into the bounds, got \{0: False\}$"):
        zoaf.minimize(_square, [(1, 2), (1, 3)], budget=3, seed=0, log={0: False})


def test_a_refusal_that_echoes_an_array_is_one_line() -> None:
    """numpy's repr puts each row of a matrix on a line of its own: bounds of text as an array were refused in two
    lines ("got array([['-1', '1'],", then the rest)."""
    with pytest.raises(InputError) as e:
        zoaf.minimize(_square, np.array([["-1", "1"], ["-1", "1"]]), budget=3, seed=0)
    assert str(e.value).startswith("bounds must be numbers, got array([['-1', '1'], ['-1', '1'")
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("netlist", [3, None, os.fsencode(GOOD)], ids=["int", "None", "bytes"])
def test_a_netlist_path_of_another_type_is_an_input_error(netlist: object) -> None:
    """Was pathlib's TypeError traceback ("expected str, bytes or os.PathLike object, not int")."""
    with pytest.raises(InputError, match=r"^netlist .*: the path of an ngspice netlist \(str or Path\)$"):
        CircuitProblem(netlist)  # type: ignore[arg-type]


@pytest.mark.parametrize("objective", [3, ["bw"]])
def test_an_objective_that_is_no_name_is_an_input_error(objective: object) -> None:
    """Was an AttributeError in spec.py ("'list' object has no attribute 'lower'")."""
    with pytest.raises(InputError, match=r"^objective .*: the name of one of the spec's objectives$"):
        CircuitProblem(GOOD, objective=objective)  # type: ignore[arg-type]


def test_constraints_beside_a_spec_objective_are_refused() -> None:
    """``constraints=`` without ``fom=`` were never judged (the spec objective's own were): the run's best could
    miss them, unsaid. A Python fom takes them as before."""
    with pytest.raises(InputError, match=r"^constraints=\['gain_lf >= 0'\] without fom=: they constrain a Python "
                                         r"fom; a spec objective is judged by its own constraints"):
        CircuitProblem.from_netlist(GOOD, constraints=["gain_lf >= 0"])
    problem = CircuitProblem.from_netlist(GOOD, fom=lambda m: -m["f3db"], constraints=["gain_lf >= 0"])
    assert problem.constraint_names == ("gain_lf >= 0.0",)
    assert problem.score({"f3db": 1e6, "gain_lf": -1.0}).feasible is False


def test_a_fom_beside_an_objective_is_refused() -> None:
    """``objective="bw"`` beside ``fom=`` was dropped unsaid (the fom optimized)."""
    with pytest.raises(InputError, match=r"^objective='bw' and fom= both given: fom replaces the spec's objective"):
        CircuitProblem.from_netlist(GOOD, objective="bw", fom=lambda m: -m["f3db"])


def test_constraints_as_one_string_are_refused_whole() -> None:
    """``constraints="gain_lf >= 0"`` was read a character at a time: "'g' is not 'name op number'"."""
    with pytest.raises(InputError, match=r"^constraints 'gain_lf >= 0': a list of strings like \['gain_db >= 60'\]$"):
        CircuitProblem.from_netlist(GOOD, fom=lambda m: -m["f3db"], constraints="gain_lf >= 0")


def _zoaf(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, COLUMNS="200", NO_COLOR="1", TERM="dumb")
    return subprocess.run([sys.executable, "-m", "zoaf", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300)


def _one_error_line(r: subprocess.CompletedProcess) -> str:
    lines = r.stderr.strip().splitlines()
    assert (r.returncode, r.stdout, len(lines)) == (2, "", 1) and "Traceback" not in r.stderr, r.stderr
    return lines[0]


@pytest.mark.parametrize("inside", ["bw", "bw/random"])
def test_a_folder_inside_a_comparison_is_said_so(inside: str, tmp_path: Path) -> None:
    """``zoaf report CMP/bw`` said "no complete runs found (expected <objective>/<method>/seed-<k>/result.json)", as
    of a folder that holds nothing of zoaf's."""
    shutil.copytree(CORPUS / "comparison_dir", tmp_path / "cmp")
    (tmp_path / "cmp" / "bw" / "random").mkdir(parents=True)
    line = _one_error_line(_zoaf("report", f"cmp/{inside}", cwd=tmp_path))
    assert line == f"error: cmp/{inside}: a folder inside the comparison cmp, not a comparison: zoaf report cmp"
    assert sorted(p.name for p in (tmp_path / "cmp").iterdir()) == ["bw", "compare.json"]      # nothing written


# ---------------------------------------------------------------------- a received history's meta, resumed
def _history(folder: Path, **changed: object) -> Path:
    """A run directory whose history records a run of good.cir (no rows) with ``changed`` meta values."""
    folder.mkdir()
    meta = {"problem": {"name": "good", "netlist": str(GOOD), "netlist_sha256": "0" * 64, "objective": "bw"},
            "method": "zoaf", "budget": 4, "seed": 1, "options": {}, "settings": {}, "schema": SCHEMA_VERSION}
    with History(folder / "history.db") as h:
        h.set_meta({**meta, **changed})
    return folder / "history.db"


@pytest.mark.parametrize("changed, says", [
    ({"method": "nosuch"}, r"history\.db: method: unknown method 'nosuch'; choose one of zoaf, "),   # "--method: ..."
    ({"options": "x"}, r"history\.db: not a zoaf run history \(meta: options 'x' is not what zoaf writes\)$"),
    ({"seed": -1}, r"history\.db: not a zoaf run history \(meta: seed -1 is not what zoaf writes\)$")])
def test_a_resumed_historys_meta_is_refused_naming_the_history(changed: dict, says: str, tmp_path: Path) -> None:
    """The method was refused as ``--method: unknown method`` (an option never given), options ``"x"`` as "no run
    metadata: nothing to resume", a seed of -1 as "seed must be a whole number >= 0" (no file named). The history
    is left as it was."""
    db = _history(tmp_path / "run", **changed)
    before = db.read_bytes()
    line = _one_error_line(_zoaf("optimize", str(GOOD), "--resume", str(tmp_path / "run"), "--workers", "1", "-q"))
    assert line.startswith(f"error: {db}") and re.search(says, line), line
    assert db.read_bytes() == before
    with sqlite3.connect(db) as con:
        assert con.execute("SELECT COUNT(*) FROM evals").fetchone()[0] == 0

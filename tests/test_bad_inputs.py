"""The bad-input corpus (tests/bad_inputs/cases.toml) through the real CLI, in subprocesses.

Every case must exit with code 2 and print exactly one line on stderr that names the file/line/field (the
case's regex), never a traceback. The terminal is made narrow (COLUMNS=40) so that any rich wrapping of the
error line would show up as a second line. The subprocesses run concurrently (one fixture launches them all),
so the ~90 cases (~0.3 s of CPU each) take about a minute over the cores rather than more.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from zoaf.optim import Optimizer

CORPUS = Path(__file__).parent / "bad_inputs"
CASES = tomllib.loads((CORPUS / "cases.toml").read_text())["case"]
#: Written by cir/shell_control.cir's `shell` command if the refusal ever failed.
PWNED = Path("/tmp/zoaf_pwned")
#: Seconds one case may take (a bad input must be refused fast, before any optimization starts).
CASE_TIMEOUT = 60


def _env() -> dict[str, str]:
    env = dict(os.environ, COLUMNS="40", LINES="20", NO_COLOR="1", TERM="dumb")
    root = str(Path(__file__).parent.parent)
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "") if env.get("PYTHONPATH") else root
    return env


def _run(case: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "zoaf", *case["args"]], cwd=CORPUS, env=_env(),
                          capture_output=True, text=True, timeout=CASE_TIMEOUT)


def _make_unversionable() -> list[Path]:
    """The inputs git cannot hold: a FIFO, and a spec one byte over the size limit (1 MiB is too big to commit);
    and a link to zoaf's own environment (made here: no file of the project points outside it)."""
    fifo, big, link = CORPUS / "spec" / "fifo", CORPUS / "spec" / "too_large", CORPUS / "spec" / "environ"
    fifo.unlink(missing_ok=True)
    os.mkfifo(fifo)
    big.write_text("# padding\n" * (2**20 // 10) + "#" * (2**20 % 10 + 1))
    link.unlink(missing_ok=True)
    link.symlink_to("/proc/self/environ")
    return [fifo, big, link]


@pytest.fixture(scope="module")
def results() -> dict[str, subprocess.CompletedProcess]:
    PWNED.unlink(missing_ok=True)
    made = _make_unversionable()
    try:
        with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
            done = dict(zip([c["id"] for c in CASES], pool.map(_run, CASES)))
    finally:
        for path in made:
            path.unlink(missing_ok=True)
    yield done


def test_corpus_is_well_formed() -> None:
    ids = [c["id"] for c in CASES]
    assert len(ids) == len(set(ids)), "duplicate case ids"
    assert len(CASES) >= 30
    for c in CASES:
        assert set(c) <= {"id", "args", "error", "json", "why"}, c["id"]
        re.compile(c["error"])
        for a in c["args"]:
            if a.endswith((".cir", ".toml")) and "nosuch" not in a and "no_spec_beside.toml" not in a:
                assert (CORPUS / a).exists(), f"{c['id']}: {a} is missing from the corpus"


def test_good_pair_is_good() -> None:
    """The corpus' base netlist + spec are valid: each bad case fails for its own reason only."""
    r = subprocess.run([sys.executable, "-m", "zoaf", "check", "good.cir", "--json"], cwd=CORPUS, env=_env(),
                       capture_output=True, text=True, timeout=CASE_TIMEOUT)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["status"] == "ok"


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_bad_input(case: dict, results: dict[str, subprocess.CompletedProcess]) -> None:
    r = results[case["id"]]
    shown = f"args: {case['args']}\nstdout: {r.stdout[-2000:]}\nstderr: {r.stderr[-4000:]}"
    assert "Traceback" not in r.stdout + r.stderr, shown
    assert r.returncode == 2, shown
    if case.get("json"):
        assert r.stderr.strip() == "", shown
        lines = [ln for ln in r.stdout.splitlines() if ln.strip()]
        assert len(lines) == 1, shown
        data = json.loads(lines[0])
        assert data["status"] == "failed", shown
        assert re.search(case["error"], data["error"]), shown
        return
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, f"expected exactly one error line\n{shown}"
    line = lines[0]
    assert line.startswith("error: "), shown
    assert re.search(case["error"], line), f"regex {case['error']!r} does not match\n{shown}"
    assert r.stdout.strip() == "", f"nothing on stdout for a refused input\n{shown}"


@pytest.mark.parametrize("spec, says", [
    ("contradicting_constraints", r"contradicting_constraints\.toml: objectives\.bw\.constraints: 'gain_lf >= 0' "
                                  r"and 'gain_lf <= -1' cannot both hold: no design is feasible$"),
    ("strict_constraints_at_one_bound", r"strict_constraints_at_one_bound\.toml: objectives\.bw\.constraints: "
                                        r"'gain_lf <= -1' and 'gain_lf > -1' cannot both hold"),
    ("constraint_twice", r"constraint_twice\.toml: objectives\.bw\.constraints: 'gain_lf >= -1' is listed twice$")])
def test_constraints_no_design_meets_together_are_refused(spec: str, says: str, tmp_path: Path) -> None:
    """A spec whose constraints contradict ran its whole budget and ended "no point met every constraint"; one
    listed twice counted its violation twice. Both are the spec's fault, said before anything runs."""
    out = tmp_path / "run"
    r = subprocess.run([sys.executable, "-m", "zoaf", "optimize", "good.cir", "--spec", f"spec/{spec}.toml",
                        "--budget", "3", "--workers", "1", "--out", str(out)], cwd=CORPUS, env=_env(),
                       capture_output=True, text=True, timeout=CASE_TIMEOUT)
    assert (r.returncode, r.stdout, r.stderr.count("\n")) == (2, "", 1), r.stderr
    assert re.search(says, r.stderr.removeprefix("error: ").strip()), r.stderr
    assert not out.exists()


def test_constraints_that_meet_at_one_value_are_a_spec() -> None:
    """``>=`` and ``<=`` the same bound leave one value: feasible, so accepted (only a strict one excludes it)."""
    from zoaf.spec import Spec

    spec = Spec.read(CORPUS / "spec" / "constraints_meeting_at_one_value.toml")
    assert [str(c) for c in spec.objective("bw").constraints] == ["gain_lf >= -1", "gain_lf <= -1", "f3db <= 10meg"]


def test_shell_was_not_run(results: dict[str, subprocess.CompletedProcess]) -> None:
    assert not PWNED.exists(), "the refused `shell` command in cir/shell_control.cir ran"


def test_refused_optimize_writes_no_run_directory(tmp_path: Path) -> None:
    """A bad input is refused before anything is created: no half-made run directory is left behind."""
    out = tmp_path / "run"
    r = subprocess.run([sys.executable, "-m", "zoaf", "optimize", "good.cir", "--spec", "spec/lo_ge_hi.toml",
                        "--out", str(out), "--budget", "3"], cwd=CORPUS, env=_env(), capture_output=True,
                       text=True, timeout=CASE_TIMEOUT)
    assert r.returncode == 2, r.stderr
    assert not out.exists()


def test_title_words_are_not_errors(tmp_path: Path) -> None:
    """A valid netlist whose title line says 'cannot'/'error' must simulate (ngspice echoes the title on reset)."""
    text = (CORPUS / "good.cir").read_text().splitlines()
    text[0] = "RC low-pass: this title says error, cannot, failed and aborted, the circuit is fine"
    (tmp_path / "title.cir").write_text("\n".join(text) + "\n")
    r = subprocess.run([sys.executable, "-m", "zoaf", "check", str(tmp_path / "title.cir"), "--spec",
                        str(CORPUS / "good.toml"), "--json"], env=_env(), capture_output=True, text=True,
                       timeout=CASE_TIMEOUT)
    assert r.returncode == 0, r.stdout + r.stderr
    assert json.loads(r.stdout)["status"] == "ok"


# ---------------------------------------------------------------------- refusals that must write nothing
def _zoaf(*args: str, cwd: Path = CORPUS) -> subprocess.CompletedProcess:
    r = subprocess.run([sys.executable, "-m", "zoaf", *args], cwd=cwd, env=_env(), capture_output=True, text=True,
                       timeout=CASE_TIMEOUT)
    assert "Traceback" not in r.stdout + r.stderr, r.stderr
    return r


def _one_error_line(r: subprocess.CompletedProcess, pattern: str) -> None:
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.returncode == 2 and len(lines) == 1 and re.search(pattern, lines[0]), r.stderr


def test_refused_compare_writes_nothing(tmp_path: Path) -> None:
    """An unknown method left a compare.json behind; a run refused for its budget rewrote the comparison's."""
    grid = ["--methods", "random", "--seeds", "1", "--jobs", "1", "--quiet"]
    fresh = tmp_path / "fresh"
    _one_error_line(_zoaf("compare", "good.cir", "--out", str(fresh), "--budget", "2", "--methods", "nope",
                          *grid[2:]), "--methods: unknown method 'nope'")
    assert not fresh.exists()
    done = tmp_path / "done"
    assert _zoaf("compare", "good.cir", "--out", str(done), "--budget", "2", *grid).returncode == 0
    manifest = (done / "compare.json").read_bytes()
    _one_error_line(_zoaf("compare", "good.cir", "--out", str(done), "--budget", "3", *grid),
                    r"seed-0: holds a run with budget 2, not 3")
    assert (done / "compare.json").read_bytes() == manifest


def test_file_and_folder_names_that_are_not_utf8(tmp_path: Path) -> None:
    """A netlist named in Latin-1 (``rc\xe9.cir``): each run's plot title refused the name's surrogate escape, so the
    comparison ended in a TypeError traceback after every simulation. A received comparison whose folder is so
    named: the same traceback from ``zoaf report``; now one line (``zoaf compare`` never names a folder so)."""
    folder = os.fsencode(tmp_path)
    for ext in (b".cir", b".toml"):
        shutil.copy(CORPUS / f"good{ext.decode()}", folder + b"/rc\xe9" + ext)
    out = tmp_path / "cmp"
    r = _zoaf("compare", os.fsdecode(folder + b"/rc\xe9.cir"), "--methods", "random", "--seeds", "1", "--budget",
              "2", "--jobs", "1", "--quiet", "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert (out / "bw" / "random" / "seed-0" / "convergence.png").is_file()
    assert "# zoaf comparison: rc?.cir" in (out / "report.md").read_text()
    os.rename(os.fsencode(out / "bw" / "random"), os.fsencode(out / "bw") + b"/rand\xffom")
    _one_error_line(_zoaf("report", str(out)), r"cmp/bw/rand\?om: a folder name that is not UTF-8 text")


@pytest.fixture(scope="module")
def mc_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished 3-simulation run of mc.cir (a netlist with a [montecarlo] table), in-process."""
    out = tmp_path_factory.mktemp("mc") / "run"
    r = _zoaf("optimize", str(CORPUS / "mc.cir"), "--budget", "3", "--seed", "1", "--workers", "0", "--quiet",
              "--out", str(out))
    assert r.returncode == 0, r.stderr
    return out


@pytest.mark.parametrize("command", [["yield", "--samples", "2", "--workers", "1"], ["sensitivity", "--workers", "1"]])
def test_signoff_directory_that_is_a_file_is_one_line(mc_run: Path, tmp_path: Path, command: list[str]) -> None:
    """RUN_DIR/yield or RUN_DIR/sensitivity a file: was a FileExistsError/NotADirectoryError traceback."""
    run = tmp_path / "run"
    shutil.copytree(mc_run, run)
    (run / command[0]).write_text("not a directory\n")
    rows = (run / "history.db").read_bytes()
    _one_error_line(_zoaf(command[0], str(run), *command[1:]), rf"{command[0]}\b.*(not a directory|Not a directory)")
    assert (run / "history.db").read_bytes() == rows


def test_yield_history_that_is_a_dangling_link_is_refused(mc_run: Path, tmp_path: Path) -> None:
    """A yield directory is a run directory: its history.db may not be a link (zoaf would write through it)."""
    out = tmp_path / "y"
    out.mkdir()
    target = tmp_path / "elsewhere.db"
    (out / "history.db").symlink_to(target)
    _one_error_line(_zoaf("yield", str(mc_run), "--samples", "2", "--workers", "1", "--out", str(out)),
                    r"history\.db: is a link")
    assert not target.exists()


# ---------------------------------------------------------------------- the library
def test_a_function_returning_no_number_fails_that_point_only() -> None:
    """None, complex or a longer array from fun was a TypeError that ended the run and lost every value."""
    import numpy as np
    import zoaf

    res = zoaf.minimize(lambda x: None if x[0] > 0.5 else float(x[0] ** 2), [(-1, 1)], budget=30, seed=0)
    assert res.nfev == 30 and res.nfailed >= 1 and res.fun < 0.1
    for bad in (None, 1 + 2j, np.ones(2)):
        res = zoaf.minimize(lambda x, v=bad: v, [(-1, 1)], budget=2, seed=0)
        assert res.message.startswith("no simulation succeeded (the first error: ValueError: fun returned")
        assert "not a number" in res.history[0].outcome.error


@pytest.mark.parametrize("lb, ub", [(1.0, 0.0), (float("nan"), 0.0)])
def test_nonlinear_constraint_bounds_never_met_or_nan_are_refused(lb: float, ub: float) -> None:
    """lb > ub made every point infeasible, and a NaN bound dropped the constraint, both without a word."""
    import zoaf
    from scipy.optimize import NonlinearConstraint
    from zoaf.errors import InputError

    with pytest.raises(InputError, match=r"constraints\[0\]: bounds must satisfy lb < ub"):
        zoaf.minimize(lambda x: float(x[0] ** 2), [(-1, 1)], budget=3, seed=0,
                      constraints=NonlinearConstraint(lambda x: x[0], lb, ub))


@pytest.mark.parametrize("args", [["optimize", "good.cir", "--workers", "{n}", "--budget", "2"],
                                  ["compare", "good.cir", "--jobs", "{n}", "--methods", "random", "--seeds", "1",
                                   "--budget", "2"],
                                  ["yield", "mc.cir", "--workers", "{n}", "--samples", "2"]])
def test_a_worker_pool_past_the_cap_is_one_line(args: list[str]) -> None:
    """``--workers 100000`` (``--jobs``) started worker processes until memory ran out (hung). One past the cap is
    refused; should the cap regress, the test starts that many, not a hundred thousand."""
    from zoaf.run import max_local_workers

    n = max_local_workers() + 1
    r = _run({"args": [a.format(n=n) for a in args]})
    _one_error_line(r, rf"--(workers|jobs) {n}: more processes than this machine runs usefully .*at most {n - 1}")


def test_library_refuses_a_huge_worker_pool() -> None:
    import zoaf
    from zoaf.errors import InputError
    from zoaf.run import max_local_workers

    n = max_local_workers() + 1
    with pytest.raises(InputError, match=rf"workers {n}: more processes"):
        zoaf.minimize(lambda x: float(x[0] ** 2), [(-1, 1)], budget=3, seed=0, workers=n)


@pytest.mark.parametrize("kwargs, message", [
    ({"bounds": [("a", 1)]}, "bounds must be numbers"),
    ({"x0": ["a"]}, "x0 must be numbers"),
    ({"budget": "10"}, "budget must be a whole number of simulations >= 1, got '10'"),
    ({"budget": 2.5}, "budget must be a whole number of simulations >= 1, got 2.5"),
    ({"seed": 1.5}, "seed must be a whole number >= 0, got 1.5"),
    ({"target": float("nan")}, "target must be a finite number, got nan"),
])
def test_library_arguments_that_are_not_numbers_are_input_errors(kwargs: dict, message: str) -> None:
    """A raw ValueError/TypeError from numpy (text bounds, a text budget), or silently wrong: a budget of 2.5 cut
    to 2, a NaN target never reached."""
    import zoaf
    from zoaf.errors import InputError

    args = {"bounds": [(-1, 1)], "budget": 5, "seed": 0, **kwargs}
    with pytest.raises(InputError, match=re.escape(message)):
        zoaf.minimize(lambda x: float(x[0] ** 2), **args)


def test_library_objects_of_the_wrong_kind_are_input_errors() -> None:
    """A netlist path given to optimize (AttributeError deep in the run), a callback that is not callable (TypeError
    at the first batch), a text worker count (TypeError in the pool check)."""
    import zoaf
    from zoaf.errors import InputError

    with pytest.raises(InputError, match="problem must be a zoaf Problem .* got str"):
        zoaf.optimize("x.cir", budget=3)
    with pytest.raises(InputError, match="callback must be callable, got int"):
        zoaf.minimize(lambda x: float(x[0] ** 2), [(-1, 1)], budget=3, callback=3)
    with pytest.raises(InputError, match="workers must be a whole number >= 0, got '2'"):
        zoaf.minimize(lambda x: float(x[0] ** 2), [(-1, 1)], budget=3, workers="2")


def test_library_args_as_in_scipy_and_text_is_not_a_number() -> None:
    """scipy wraps a lone ``args`` value in a tuple (zoaf raised a TypeError); a ``fun`` returning the text "1"
    counted as 1.0."""
    import zoaf

    assert zoaf.minimize(lambda x, a: float(x[0] ** 2) + a, [(-1, 1)], budget=20, seed=0, args=3).fun >= 3
    res = zoaf.minimize(lambda x, a: float(x[0] ** 2 + a[1]), [(-1, 1)], budget=20, seed=0, args=np.array([1.0, 2.0]))
    assert res.fun >= 2                                  # an array alone: one argument (numpy refused `!= ()`)
    res = zoaf.minimize(lambda x: "1", [(-1, 1)], budget=2, seed=0)
    assert res.nfailed == 2 and "fun returned str '1', not a number" in res.message


def test_compare_refuses_the_runs_of_another_netlist_and_runs_an_objective_named_twice_once(tmp_path: Path) -> None:
    """Another netlist (or spec) given an existing --out had its finished runs reused and reported as its own;
    `-o bw,BW` ran the same run twice, the second failing ('already holds a run'), exit 1."""
    grid = ["--methods", "random", "--seeds", "1", "--jobs", "1", "--budget", "2", "--quiet"]
    out = tmp_path / "cmp"
    assert _zoaf("compare", "good.cir", "--out", str(out), "-o", "bw,BW", *grid).returncode == 0
    manifest = (out / "compare.json").read_bytes()
    _one_error_line(_zoaf("compare", "mc.cir", "--spec", "good.toml", "--out", str(out), *grid),
                    r"seed-0: holds a run of another circuit: .*mc\.cir \(or a file it includes\) differs")
    (tmp_path / "other.toml").write_text((CORPUS / "good.toml").read_text() + "# another spec\n")
    _one_error_line(_zoaf("compare", "good.cir", "--spec", str(tmp_path / "other.toml"), "--out", str(out), *grid),
                    r"seed-0: holds a run of another circuit: .*other\.toml differs")
    assert (out / "compare.json").read_bytes() == manifest


def test_a_history_that_cannot_be_started_leaves_no_run_directory(tmp_path: Path, monkeypatch) -> None:
    """A full disk at the first write left an empty history.db: `--out` then said 'already holds a run' and
    `--resume` 'no run metadata', and the error said '0 simulations kept: resume the run'."""
    import sqlite3

    import numpy as np
    import zoaf
    from zoaf.errors import InputError
    from zoaf.history import History
    from zoaf.function import FunctionProblem

    def full(self, *args, **kwargs) -> None:
        with self._errors("write"):
            raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(History, "set_run", full)
    problem = FunctionProblem.from_bounds(lambda x: float(np.sum(x ** 2)), [(-1, 1)])
    with pytest.raises(InputError) as e:
        zoaf.optimize(problem, budget=2, seed=0, workers=0, out=tmp_path / "run")
    assert "disk is full" in str(e.value) and "resume" not in str(e.value)
    assert not (tmp_path / "run").exists()
    monkeypatch.setattr("zoaf.history._SCHEMA", "CREATE TABLE meta(")     # the open itself fails
    with pytest.raises(InputError, match="cannot open the run history"):
        History(tmp_path / "history.db")
    assert list(tmp_path.iterdir()) == []


class AsksBad(Optimizer):
    """An Optimizer whose asks are ``points``."""

    name = "asks-bad"

    def __init__(self, dim: int, budget: int, points: np.ndarray) -> None:
        super().__init__(dim, budget)
        self.points = points

    def _ask(self) -> np.ndarray:
        return self.points

    def _tell(self, x, f, c, objective) -> None:
        pass


def test_an_optimizer_that_asks_nan_or_tells_the_wrong_shape_says_so() -> None:
    """A NaN asked went to fun (the run then blamed 'function returned NaN'); a (1, d, d) ask was a TypeError
    deep in the evaluator; tell took points of another dimension and a short `charged` silently. (Not registered:
    a method left in the registry would join every later comparison of the session.)"""
    with pytest.raises(RuntimeError, match="asks-bad: _ask returned a point with NaN coordinates"):
        AsksBad(1, 4, np.full((2, 1), np.nan)).ask()
    with pytest.raises(RuntimeError, match=r"_ask returned shape \(1, 1, 1\)"):
        AsksBad(1, 4, np.zeros((1, 1, 1))).ask()
    opt = AsksBad(2, 4, np.zeros((1, 2)))
    with pytest.raises(ValueError, match=r"points of shape \(1, 3\)"):
        opt.tell(np.zeros((1, 3)), [0.5])
    with pytest.raises(ValueError, match="2 values but 1 charged flags"):
        opt.tell(np.zeros((2, 2)), [0.5, 0.6], charged=[True])
    assert opt.nfev == 0 and opt.best_x is None


@pytest.mark.parametrize("name, value, says", [
    ("ZOAF_MAX_MEMORY", "1k", r"ZOAF_MAX_MEMORY=1k: less than a simulating process needs \(at least 64M\)"),
    ("ZOAF_MAX_DISK", "0", r"ZOAF_MAX_DISK=0: less than a simulation's private folder holds \(at least 1M\)")])
def test_a_limit_no_process_can_meet_is_one_line(name: str, value: str, says: str) -> None:
    """ZOAF_MAX_MEMORY=1k or ZOAF_MAX_DISK=0 was taken: every simulation ended by the watchdog at its first sample
    ('used more than 0 GiB', 'crashed'), one line each."""
    r = subprocess.run([sys.executable, "-m", "zoaf", "check", "good.cir"], cwd=CORPUS,
                       env={**_env(), name: value}, capture_output=True, text=True, timeout=CASE_TIMEOUT)
    _one_error_line(r, says)


@pytest.mark.parametrize("text", ["\u0661\u0660k", "1\u212a", "\uff11u"])
def test_a_number_in_other_digits_or_a_look_alike_suffix_is_refused(text: str) -> None:
    """Python's regex read Arabic-Indic or full-width digits as digits and the Kelvin sign as k: "١٠k" was 10k in a
    spec or --set, and in a deck's .param a value zoaf sized from while ngspice reads no such number."""
    from zoaf import units
    from zoaf.errors import InputError

    with pytest.raises(InputError, match=f"--set r1: {text!r} is not a SPICE number"):
        units.parse_spec(text, what="--set r1")
    with pytest.raises(InputError, match="is not a SPICE number"):
        units.parse(text, numparam=True)

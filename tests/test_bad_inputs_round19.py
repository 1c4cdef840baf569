"""Bad inputs, round 19: what was taken and failed late (a population of a billion points, a deck of more measures
than a reply holds, a constraint written as a condition), said without its place (an analysis card ngspice cannot
read), refused where it should work (a second yield of another seed), written over (a comparison into the
designer's folder), said in 24 lines (``--dask local -q``), or lost (a row Ctrl-C cut as it committed). (The
command-line cases of this round are in bad_inputs/cases.toml, under "round 19".)"""
from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import zoaf
from zoaf.errors import InputError, ParseError

from ngspice_marks import NEEDS_NGSPICE, needs_ngspice

CORPUS = Path(__file__).parent / "bad_inputs"


def _zoaf(*args: str, cwd: Path = CORPUS) -> subprocess.CompletedProcess:
    env = dict(os.environ, COLUMNS="200", NO_COLOR="1", TERM="dumb")
    r = subprocess.run([sys.executable, "-m", "zoaf", *args], cwd=cwd, env=env, capture_output=True, text=True,
                       timeout=300)
    assert "Traceback" not in r.stdout + r.stderr, r.stderr
    return r


def _rows(db: Path) -> int:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
        return con.execute("SELECT COUNT(*) FROM evals").fetchone()[0]


def _square(x: np.ndarray) -> float:
    return float(np.sum((x - 0.3) ** 2))


@needs_ngspice
def test_a_yield_of_another_seed_has_a_folder_of_its_own(tmp_path: Path) -> None:
    """``zoaf yield RUN`` then ``zoaf yield RUN --seed 5`` was refused ("RUN/yield/history.db: holds another run (its
    seed differs); use another --out"); a netlist's default folder names its seed, a run's did not. Seed 0 keeps
    ``RUN/yield`` (the samples recorded before are replayed); more samples of seed 5 simulate only the new one."""
    run = tmp_path / "run"
    assert _zoaf("optimize", "mc.cir", "--budget", "3", "--seed", "1", "--workers", "0", "-q", "--out",
                 str(run)).returncode == 0
    for args in ([], ["--seed", "5"], ["--seed", "5", "--samples", "3"], ["--seed", "0"]):
        r = _zoaf("yield", str(run), "--samples", "2", "--workers", "1", "-q", *args)
        assert r.returncode == 0, r.stderr
    assert (_rows(run / "yield" / "history.db"), _rows(run / "yield-seed5" / "history.db")) == (2, 3)


@NEEDS_NGSPICE[0]
@NEEDS_NGSPICE[1]
@pytest.mark.parametrize("where", ["card", "command"])
def test_an_analysis_ngspice_cannot_read_names_its_file_and_line(tmp_path: Path, where: str) -> None:
    """LTspice's ``.tran 0 4m 3m`` (no step) was "tran 0 4m 3m: ngspice cannot read the card ...": the card, not
    where it is (the deck's own line, as ``ngspice -b {deck}:7:`` says it); in a ``.control`` block too."""
    from zoaf.spice import SpiceSession

    deck = tmp_path / "x.cir"
    run = ".tran 0 4m 3m\n.meas tran x max v(out)\n" if where == "card" else \
        ".control\nTRAN  0 4m  3m\nmeas tran x max v(out)\n.endc\n"
    deck.write_text("rc\n.param r1=1k\nv1 in 0 dc 1 pulse(0 1 0 1n 1n 1 2)\nr1 in out {r1}\nc1 out 0 1n\n.save all\n"
                    f"{run}.end\n")
    with pytest.raises(ParseError) as e:
        SpiceSession(deck).evaluate({"r1": 2e3})
    line = 7 if where == "card" else 8
    assert str(e.value) == (f"{deck}:{line}: ngspice cannot read the card '.tran 0 4m 3m': TSTEP is invalid, must "
                            "be greater than zero."), e.value


def test_a_comparison_into_a_folder_of_other_files_is_refused(tmp_path: Path) -> None:
    """``zoaf compare amp.cir --out .`` in the designer's folder replaced its ``report.md`` (and wrote the
    comparison's plots beside the deck): a folder with files but no compare.json is no comparison's."""
    from zoaf.compare import compare

    (tmp_path / "report.md").write_text("the designer's own notes\n")
    with pytest.raises(InputError, match=rf"^{re.escape(str(tmp_path))}: holds report\.md and no compare\.json: "
                                         r"not a comparison's directory .*use a new or empty --out$"):
        compare(CORPUS / "good.cir", methods=["random"], seeds=1, budget=2, jobs=1, out=tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.md"]
    assert (tmp_path / "report.md").read_text() == "the designer's own notes\n"


def test_a_deck_of_more_measures_than_a_simulation_reports_is_refused(tmp_path: Path) -> None:
    """A deck of 1,100 ``.meas`` cards ran its whole budget, each answer refused as a forged reply ("reply too
    large: its measures holds 1,102 items ..., at most 1,024"; killed), and the run ended "no simulation
    succeeded"."""
    from zoaf.circuit import CircuitProblem
    from zoaf.replies import MAX_MEASURES

    text = (CORPUS / "good.cir").read_text()
    cards = "".join(f".meas ac m{i} find vdb(out) at=1k\n" for i in range(MAX_MEASURES - 1))
    (tmp_path / "many.toml").write_text((CORPUS / "good.toml").read_text())
    (tmp_path / "many.cir").write_text(text.replace(".end", cards + ".end"))
    with pytest.raises(InputError, match=r"many\.cir: 1,025 \.meas cards, more results than a simulation reports "
                                         r"\(at most 1,024, each stored in every history row\); measure fewer$"):
        CircuitProblem(tmp_path / "many.cir")
    (tmp_path / "many.cir").write_text(text.replace(".end", cards[:cards.rindex(".meas")] + ".end"))
    assert len(CircuitProblem(tmp_path / "many.cir").netlist.measures) == MAX_MEASURES


@pytest.mark.parametrize("constraint", [lambda x: x[0] < 0.1, lambda x: x < 0.1])
def test_a_constraint_written_as_a_condition_is_refused(constraint) -> None:
    """``{"type": "ineq", "fun": lambda x: x[0] < 0.1}`` was met at every point (False is 0, and g(x) >= 0 is met):
    the run ignored it without a word."""
    with pytest.raises(InputError, match=r"^constraints\[0\]: calling it at x = \[0\.0, 0\.0\] raised ValueError: a "
                                         r"constraint returned a truth value \(.*\), not numbers \(a condition: give "
                                         r"its margin, 0\.1 - x\[0\] for x\[0\] <= 0\.1\)$"):
        zoaf.minimize(_square, [(-1, 1)] * 2, budget=5, seed=0, x0=[0, 0],
                      constraints={"type": "ineq", "fun": constraint})


@pytest.mark.parametrize("fun, says", [
    (lambda x: (_square(x), 2 * x), "fun returned a tuple of 2 values, not a number (scipy's jac=True returns "
                                    "(f, gradient): return f alone)"),
    (lambda x: x[0] > 0, "fun returned a truth value (np.")])
def test_a_function_returning_a_pair_or_a_truth_value_says_so(fun, says: str) -> None:
    """scipy's ``jac=True`` form ``(f, g)`` failed each point with numpy's "inhomogeneous shape ... (raised at
    _type_check_impl.py:308)"; a truth value ranked points by a condition."""
    res = zoaf.minimize(fun, [(-1, 1)] * 2, budget=3, seed=0)
    assert res.nfailed == 3 and res.message.startswith(f"no simulation succeeded (the first error: ValueError: {says}")


def test_ctrl_c_as_a_row_commits_keeps_that_simulation_in_the_result(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C lands most often while a quick simulation's row commits; it was raised after the commit, before the
    batch held the record: the history kept one row more than ``result.json`` (12 of 14 interrupted runs), whose
    best could miss it. The resumed run still ends where the uncut one does."""
    from zoaf.history import History

    append, calls = History.append, []

    def cut_after_the_third_commit(self: History, rec) -> None:
        append(self, rec)
        calls.append(rec.idx)
        if len(calls) == 3:
            raise KeyboardInterrupt

    args = {"budget": 8, "seed": 0, "method": "random"}
    with monkeypatch.context() as m:
        m.setattr(History, "append", cut_after_the_third_commit)
        res = zoaf.minimize(_square, [(-1, 1)] * 2, out=tmp_path / "run", **args)
    assert res.message == "interrupted" and res.nfev == 3 == _rows(tmp_path / "run" / "history.db")
    assert res.fun == min(r.outcome.fom for r in res.history)
    resumed = zoaf.minimize(_square, [(-1, 1)] * 2, out=tmp_path / "run", resume=True, **args)
    whole = zoaf.minimize(_square, [(-1, 1)] * 2, **args)
    assert (resumed.nfev, resumed.fun, list(resumed.x)) == (whole.nfev, whole.fun, list(whole.x))


@pytest.mark.parametrize("method, option", [("cma", "popsize"), ("cma-warm", "n_init"), ("de", "popsize"),
                                            ("bo", "n_init"), ("turbo", "n_init"), ("ngopt", "num_workers")])
def test_a_population_of_more_points_than_the_budget_is_refused(method: str, option: str) -> None:
    """Drawn whole before anything ran: cma ``popsize=10**9`` took 19 GiB of the machine's 23 and hung, ``de``,
    ``bo``, ``turbo`` and ``cma-warm`` a MemoryError (or the machine's memory), ``ngopt`` hung asking a billion
    points; the budget itself is taken. (One past it here: should the check regress, the test draws 7 points.)"""
    from zoaf import registry

    with pytest.raises(InputError, match=rf"^{method} option {option}=7: more points than the run's budget of 6 "
                                         r"simulations; at most 6$"):
        registry.create(method, 2, 6, 0, **{option: 7})
    assert getattr(registry.create(method, 2, 6, 0, **{option: 6}).config, option) == 6


@needs_ngspice
def test_a_local_dask_cluster_says_nothing_under_quiet(tmp_path: Path) -> None:
    """``zoaf optimize --dask local -q`` printed 24 ``INFO distributed.scheduler: ...`` lines: distributed sets its
    logger's level to INFO, which passed zoaf's handler (the root's WARNING level does not filter a record another
    logger let through)."""
    r = _zoaf("optimize", "good.cir", "--dask", "local", "--workers", "1", "--budget", "2", "-q", "--out",
              str(tmp_path / "run"))
    assert r.returncode == 0 and r.stderr == "", r.stderr


def test_a_terminal_width_of_zero_still_says_the_error(tmp_path: Path) -> None:
    """``COLUMNS=0`` (a shell that knows no terminal size exports it so) made rich's consoles 0 wide: a bad input
    exited 2 without a word, and ``check`` printed no table."""
    env = dict(os.environ, COLUMNS="0", NO_COLOR="1", TERM="dumb")
    r = subprocess.run([sys.executable, "-m", "zoaf", "check", "good.cir", "--spec", "nosuch.toml"], cwd=CORPUS,
                       env=env, capture_output=True, text=True, timeout=120)
    assert (r.returncode, r.stderr) == (2, "error: nosuch.toml: spec file not found (give one with --spec)\n")


@pytest.mark.parametrize("callback, shown", [(lambda xk, state: None, r"callback\(xk, state\)"),
                                             (lambda *, result: None, r"callback\(\*, result\)"),
                                             (lambda: None, r"callback\(\)")])
def test_a_callback_zoaf_cannot_call_is_refused_before_any_simulation(tmp_path: Path, callback: object,
                                                                      shown: str) -> None:
    """A callback of a signature the run cannot call with its result raised a TypeError after the first batch (its
    simulations spent, a run directory made): one line naming it and what it must accept now, before any call."""
    calls: list[int] = []

    def fun(x: np.ndarray) -> float:
        calls.append(1)
        return _square(x)
    with pytest.raises(InputError, match=rf"^{shown} cannot be called with the result so far: it must accept one "
                                         r"positional argument, callback\(result\), or the keyword "
                                         r"intermediate_result as in scipy$"):
        zoaf.minimize(fun, [(-1, 1)] * 2, budget=10, seed=0, callback=callback, out=tmp_path / "run")
    assert calls == [] and not (tmp_path / "run").exists()


def test_scipys_keyword_callback_gets_the_result_and_one_that_raises_typeerror_still_ends_the_run(
        tmp_path: Path) -> None:
    """scipy calls ``callback(intermediate_result=res)`` where that is its one parameter: keyword-only, it raised a
    TypeError after the first batch; it gets each batch's result now, and stops the run as scipy's does. A callback
    whose own body raises TypeError is no signature zoaf misread: it ends the run, raised once the run is written."""
    seen: list[int] = []

    def by_keyword(*, intermediate_result: zoaf.Result) -> bool:
        seen.append(intermediate_result.nfev)
        return len(seen) >= 3
    res = zoaf.minimize(_square, [(-1, 1)] * 2, budget=60, seed=0, method="random", callback=by_keyword)
    assert seen == sorted(seen) and len(seen) == 3 and res.nfev == seen[-1] < 60

    def buggy(result: zoaf.Result) -> None:
        raise TypeError("a bug inside the callback")
    with pytest.raises(TypeError, match="a bug inside the callback") as raised:
        zoaf.minimize(_square, [(-1, 1)] * 2, budget=60, seed=0, method="random", callback=buggy, out=tmp_path / "r")
    assert "the callback raised after" in raised.value.__notes__[0]
    assert json.loads((tmp_path / "r" / "result.json").read_text())["stop_reason"] == "callback"

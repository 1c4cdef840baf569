"""The evaluator under failure: a deck that fails alike at every sizing stops its run early (``DeckFailure``), a
simulation's timeout does not count its process's deck load, and a Dask worker frozen mid-simulation (stopped, as
native code holding the GIL would leave it) is given up by the client, charged a timeout and replaced."""
from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from ngspice_marks import needs_ngspice

import zoaf
from zoaf import workers
from zoaf.circuit import CircuitProblem
from zoaf.errors import DeckFailure
from zoaf.evaluate import FAIL_FAST_SIZINGS, Evaluator
from zoaf.function import FunctionProblem
from zoaf.problem import Outcome, Parameter, Problem, Status

RC = """* RC step: {what}
.param r=1k
.param c=1n
V1 in 0 PULSE(0 1 0 1n 1n 1 2)
R1 in out {{r}}
C1 out 0 {{c}}
.tran 1n {tstop}
.meas tran t_half WHEN v(out)={level} RISE=1
.meas tran vmax MAX v(out)
.end
"""
SPEC = """[parameters]
r = {{ lo = "100", hi = "10k", scale = "log" }}
c = {{ lo = "100p", hi = "10n", scale = "log" }}
[measures]
t_half = {{ unit = "s" }}
{vmax}
[objectives]
t_half = {{ minimize = "t_half" }}
"""
#: The step never reaches 5 V: ``t_half`` is missing at every sizing, with one error (line 8 of the deck).
NEVER = dict(what="a .meas that never crosses", tstop="10u", level="5")
#: It crosses 0.5 V within 276 ns where r*c < 4e-7: a third of the box (u_r + u_c < 0.8), not the designer's sizing.
REGION = dict(what="crosses in a third of the box", tstop="276n", level="0.5")


def _deck(tmp_path: Path, kind: dict, *, other_measure: bool = False) -> Path:
    deck = tmp_path / "rc.cir"
    deck.write_text(RC.format(**kind))
    deck.with_suffix(".toml").write_text(SPEC.format(vmax='vmax = { unit = "V" }' if other_measure else ""))
    return deck


def _rows(run: Path) -> list[tuple]:
    with sqlite3.connect(f"file:{run / 'history.db'}?mode=ro", uri=True) as db:
        return db.execute("SELECT status, error FROM evals ORDER BY idx").fetchall()


# -- 1. a deck that fails alike everywhere ----------------------------------------------------------------------------
@needs_ngspice
@pytest.mark.parametrize("other_measure", [False, True], ids=["nothing-measured", "objective-missing"])
def test_a_deck_failing_alike_everywhere_stops_early_and_its_resume_stops_the_same(tmp_path, other_measure):
    deck, run = _deck(tmp_path, NEVER, other_measure=other_measure), tmp_path / "run"
    problem = CircuitProblem(deck)
    with pytest.raises(DeckFailure) as info:
        zoaf.optimize(problem, budget=300, seed=0, out=run)
    rows = _rows(run)
    assert FAIL_FAST_SIZINGS <= len(rows) <= FAIL_FAST_SIZINGS + 4          # not 300: the budget is kept
    assert {error for _, error in rows} == {info.value.error}
    assert ".meas t_half (line 8)" in info.value.error and str(deck) in str(info.value)
    assert "\n" not in str(info.value) and isinstance(info.value, zoaf.InputError)
    with pytest.raises(DeckFailure) as again:                                 # replayed: stops where it stopped
        zoaf.optimize(CircuitProblem(deck), budget=300, seed=0, out=run, resume=True)
    assert str(again.value) == str(info.value) and len(_rows(run)) == len(rows)


@needs_ngspice
def test_the_command_line_says_it_in_one_line_with_exit_code_2(tmp_path):
    deck, run = _deck(tmp_path, NEVER), tmp_path / "run"
    r = subprocess.run([sys.executable, "-m", "zoaf", "optimize", str(deck), "--budget", "300", "--seed", "1",
                        "--workers", "2", "--out", str(run), "--quiet"], capture_output=True, text=True, timeout=300)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1, r.stderr
    assert lines[0].startswith(f"error: {deck}: the run stopped") and ".meas t_half (line 8)" in lines[0]
    assert len(_rows(run)) < FAIL_FAST_SIZINGS + 10 and not (run / "result.json").exists()
    edited = deck.read_text().replace("v(out)=5", "v(out)=0.5")
    deck.write_text(edited)                                  # fixed: the recorded run is another deck's
    r = subprocess.run([sys.executable, "-m", "zoaf", "optimize", str(deck), "--resume", str(run), "--quiet"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "cannot resume: problem.netlist_sha256 differs" in r.stderr, r.stderr


@needs_ngspice
def test_a_comparison_stops_at_the_first_run_that_finds_the_deck_broken(tmp_path):
    deck, out = _deck(tmp_path, NEVER), tmp_path / "cmp"
    r = subprocess.run([sys.executable, "-m", "zoaf", "compare", str(deck), "--methods", "zoaf,random", "--seeds",
                        "2", "--budget", "100", "--jobs", "1", "--out", str(out), "--quiet"],
                       capture_output=True, text=True, timeout=300)
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert r.returncode == 2 and len(errors) == 1, r.stderr
    assert "the comparison stopped there" in errors[0] and ".meas t_half (line 8)" in errors[0]
    assert len(list(out.glob("*/*/*/history.db"))) == 1                     # the other three runs never started


@needs_ngspice
def test_a_deck_failing_in_a_region_of_the_box_runs_its_whole_budget(tmp_path):
    # It fails at the designer's sizing and in two thirds of the box, with one error: the rule must not stop it.
    problem = CircuitProblem(_deck(tmp_path, REGION))
    res = zoaf.optimize(problem, budget=60, seed=0)
    missed = ["t_half" not in r.outcome.measures for r in res.history if r.charged]
    assert res.nfev == 60 and all(missed[:4]) and not all(missed)          # its first batches all failed alike


def test_a_python_function_failing_everywhere_keeps_its_result():
    res = zoaf.minimize(lambda x: 1 / 0, [(0, 1)] * 2, budget=40, seed=0)
    assert res.nfev == 40 and not res.success and "ZeroDivisionError" in res.message


# -- 2. the deck's load is timed apart from the simulation -----------------------------------------------------------
class SlowLoad(Problem):
    """Loads for ``load_s`` seconds (in its first simulation when nobody prepares it, as a deck does), then simulates
    for ``sim_s``."""

    def __init__(self, load_s: float, sim_s: float = 0.0) -> None:
        super().__init__([Parameter("a", 0.0, 1.0)])
        self.load_s, self.sim_s, self.loaded = load_s, sim_s, False

    def prepare(self, x: np.ndarray) -> None:
        if not self.loaded:
            time.sleep(self.load_s)
            self.loaded = True

    def simulate(self, x: np.ndarray) -> Outcome:
        self.prepare(x)
        time.sleep(self.sim_s)
        return Outcome(Status.OK, fom=float(x[0]))


def test_a_load_longer_than_the_timeout_is_not_the_simulation_s_and_a_hang_after_it_is(monkeypatch):
    monkeypatch.setattr(workers, "LOAD_GRACE", 4.0)        # the parent's deadline (a local pool's worker has none)
    u = np.array([[0.2], [0.4]])
    with Evaluator(SlowLoad(load_s=2.0), workers=1, timeout=1.0) as ev:
        assert [r.status for r in ev.evaluate(u)] == [Status.OK] * 2
    with Evaluator(SlowLoad(load_s=0.2, sim_s=600), workers=1, timeout=1.0) as ev:
        (rec,) = ev.evaluate(u[:1])                          # killed at its timeout after the load, not at 5 s
    assert rec.status == Status.TIMEOUT and rec.outcome.error == "no result after 1 s; worker killed"
    with Evaluator(SlowLoad(load_s=600), workers=1, timeout=1.0) as ev:
        (rec,) = ev.evaluate(u[:1])
    assert rec.status == Status.TIMEOUT and "did not load within 5 s" in rec.outcome.error


@needs_ngspice
@pytest.mark.parametrize("dask", [None, "local"], ids=["pool", "dask"])
def test_a_sky130_deck_runs_with_a_timeout_shorter_than_its_load(dask):
    if dask:
        pytest.importorskip("distributed")
    net = Path(__file__).parent.parent / "netlists" / "sky130" / "two_stage_amp.cir"
    problem = CircuitProblem(net)                           # its load: 5-10 s; a simulation: 0.1-0.2 s
    u = np.random.default_rng(0).random((3, problem.dim))
    with Evaluator(problem, workers=1, dask=dask, timeout=3.0) as ev:
        res = ev.evaluate(u)
        assert ev.stats["timeouts"] == 0
    assert [r.status for r in res] == [Status.OK] * 3, [r.outcome.error for r in res]


# -- 3. a frozen Dask worker -----------------------------------------------------------------------------------------
def _marks_its_process(x: np.ndarray) -> float:
    """Where x > 0.5: write this process's id for the test to stop it (within the timeout), then take a while."""
    if x[0] > 0.5:
        Path(os.environ["ZOAF_TEST_MARK"]).write_text(str(os.getpid()))
        time.sleep(30.0)
    return float(x[0])


def test_a_stopped_dask_worker_is_given_up_charged_a_timeout_and_replaced(tmp_path, monkeypatch):
    pytest.importorskip("distributed")
    mark = tmp_path / "pid"
    monkeypatch.setenv("ZOAF_TEST_MARK", str(mark))        # the cluster's workers inherit it
    stopped: list[int] = []
    done = threading.Event()

    def stopper() -> None:                                  # SIGSTOP each process that simulates x > 0.5
        while not done.is_set():
            if mark.exists():
                pid = int(mark.read_text())
                mark.unlink()
                os.kill(pid, signal.SIGSTOP)
                stopped.append(pid)
            time.sleep(0.02)

    threading.Thread(target=stopper, daemon=True).start()
    problem = FunctionProblem(_marks_its_process, [Parameter("a", 0.0, 1.0)])
    got: dict[str, list] = {}
    try:
        with Evaluator(problem, workers=1, dask="local", timeout=3.0) as ev:
            run = threading.Thread(target=lambda: got.setdefault("res", ev.evaluate(np.array([[0.9], [0.2]]))),
                                   daemon=True)
            run.start()
            run.join(150)
            assert not run.is_alive(), "the client still waits on a stopped worker"
            res = got["res"]
            assert [r.status for r in res] == [Status.TIMEOUT, Status.OK], [r.outcome.error for r in res]
            assert "its Dask worker was silent" in res[0].outcome.error and res[1].outcome.fom == 0.2
            assert ev.stats["timeouts"] == 1 and ev.stats["crashed"] == 0    # the first stop: a suspect
            assert [r.status for r in ev.evaluate(np.array([[0.3]]))] == [Status.OK]   # a fresh worker serves
    finally:
        done.set()
        for pid in stopped:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    assert stopped and len(stopped) == 2

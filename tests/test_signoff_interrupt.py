"""Sign-off cut short: a corner-aware run and a run's corner check (``zoaf corners RUN``) stopped by Ctrl-C or SIGTERM
amid a batch keep every simulation that completed (in the history and in what they report), and resumed (or run
again) they simulate only the rest and end exactly where an uncut one does. (A yield and a sensitivity kept theirs
already: ``test_signoff_misuse.py``.)"""
from __future__ import annotations

import json
import math
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from ngspice_marks import needs_ngspice
from runkit import count, signal_after

import zoaf
from zoaf.circuit import CircuitProblem
from zoaf.errors import InputError
from zoaf.signoff.cornerrun import CornerProblem, CornerSims, SizingRecord
from zoaf.stats import load_run

ROOT = Path(__file__).parent.parent
pytestmark = needs_ngspice

#: An RC low-pass whose corner sets its supply and how long its transient runs: the slow corner keeps each batch
#: open long enough (~0.5 s a simulation) for a signal to land once its fast corners are recorded.
DECK = """* RC low-pass: a corner sets its supply and its transient's length
.param r1=1k
.param c1=1n
.param vsup=1
.param tstop=2u
v1 in 0 dc 0 pulse(0 {vsup} 0 1n 1n 1 2)
r1 in out {r1}
c1 out 0 {c1}
.tran 1n {tstop}
.meas tran vend find v(out) at=1u
.end
"""
SPEC = """[parameters]
r1 = { lo = "100", hi = "10k", scale = "log" }
c1 = { lo = "100p", hi = "10n", scale = "log" }
[measures]
vend = { unit = "V" }
[objectives]
rc = { maximize = "vend", constraints = ["vend <= 0.7"], corners = "all" }
"""
SLOW_CORNERS = '[corners.fast]\nvsup = "1"\n[corners.slow]\nvsup = "0.9"\ntstop = "60u"\n'
FAST_CORNERS = '[corners]\nvsup = ["0.8", "0.9", "1"]\n'


def _deck(folder: Path, corners: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "rc.toml").write_text(SPEC + corners)
    deck = folder / "rc.cir"
    deck.write_text(DECK)
    return deck


def rows(run: Path) -> list[tuple]:
    """Every recorded simulation without its timings (wall clock and simulator seconds differ by nature)."""
    with sqlite3.connect(run / "history.db") as db:
        return db.execute("SELECT idx, u, params, measures, fom, objective, feasible, status, error, phase, "
                          "charged FROM evals ORDER BY idx").fetchall()


def simulated(run: Path) -> int:
    """The history's simulations (its cache hits are free)."""
    with sqlite3.connect(run / "history.db") as db:
        return db.execute("SELECT COUNT(*) FROM evals WHERE status != 'cached'").fetchone()[0]


# -- a corner-aware optimization cut by a signal (the command line, two workers) -------------------------------
OPTIMIZE = ["--budget", "12", "--seed", "1", "--workers", "2"]


def _zoaf(*args: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT), COLUMNS="200", NO_COLOR="1", TERM="dumb")
    return subprocess.Popen([sys.executable, "-m", "zoaf", *args], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,   # SIGINT as at a terminal (a background job's is ignored)
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


@pytest.fixture(scope="module")
def slow_deck(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _deck(tmp_path_factory.mktemp("deck"), SLOW_CORNERS)


@pytest.fixture(scope="module")
def uncut(slow_deck: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[], Path]]:
    """The uncut run, waited for where first compared: it runs beside the first cut one (two cores)."""
    out = tmp_path_factory.mktemp("uncut") / "run"
    p = _zoaf("optimize", str(slow_deck), *OPTIMIZE, "--quiet", "--out", str(out))

    def finished() -> Path:
        assert p.wait(timeout=600) == 0, p.stderr.read()
        return out
    yield finished
    if p.poll() is None:
        p.kill()
        p.wait()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_corner_run_cut_mid_batch_counts_its_simulations_and_resumes_exactly(
        slow_deck: Path, uncut: Callable[[], Path], tmp_path: Path, signum: int) -> None:
    """Cut amid the second batch (the designer's sizing first, alone; then four sizings at the slow corner, two at a
    time), the run's summary and result.json said fewer simulations than its history held: a corner run's
    evaluator kept no account of a cut batch. They count every recorded one now; the resumed run is the uncut one."""
    out = tmp_path / "run"
    stdout, stderr = signal_after(_zoaf("optimize", str(slow_deck), *OPTIMIZE, "--out", str(out)), out, 3, signum,
                                  poll_s=0.005)
    assert "Traceback" not in stdout + stderr, stderr
    recorded = simulated(out)
    assert 3 <= recorded < 12, "not cut amid the run"
    kept = json.loads((out / "result.json").read_text())
    assert (kept["stop_reason"], kept["nfev"]) == ("interrupted", recorded)
    assert f"(seed 1, {recorded} simulations, " in stdout
    resumed = _zoaf("optimize", str(slow_deck), "--resume", str(out), "--workers", "2", "--quiet")
    assert resumed.wait(timeout=600) == 0, resumed.stderr.read()
    ref = uncut()
    assert rows(out) == rows(ref)                  # nothing simulated twice, nothing left out
    assert json.loads((out / "result.json").read_text()) == json.loads((ref / "result.json").read_text())


# -- the same in the library, cut at chosen simulations (deterministic: one simulation at a time) --------------
def _corner_problem(folder: Path) -> CornerProblem:
    return CornerProblem.wrap(CircuitProblem(_deck(folder, FAST_CORNERS), objective="rc"))


def _optimize(problem: CornerProblem, out: Path, resume: bool = False) -> zoaf.Result:
    """Batches of two sizings (as two workers ask), simulated one after another in this process."""
    with problem.evaluator(workers=0) as ev:
        return zoaf.optimize(problem, budget=27, seed=2, workers=2, evaluator=ev, out=out, resume=resume)


@pytest.fixture(scope="module")
def whole(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, zoaf.Result]:
    folder = tmp_path_factory.mktemp("whole")
    result = _optimize(_corner_problem(folder), folder / "run")
    assert simulated(folder / "run") == len(rows(folder / "run"))     # no cache hit: the k-th simulation is row k - 1
    return folder / "run", result


def _cut_point(history: list[SizingRecord], where: str) -> int:
    """The simulation (counted from 1) at which to cut, read off the uncut run: a sizing simulated in two stages
    (its corners' rows not in a row: others' first stage came between) gives the stages' rows."""
    a, b, c = next(ks for ks in (sorted(x.idx for x in r.corner_records) for r in history)
                   if len(ks) == 3 and ks[1] > ks[0] + 1)
    return {"first batch": 2, "stage 1": a + 2, "between stages": b + 1, "stage 2": c + 1}[where]


def test_a_corner_runs_trace_counts_simulations_as_its_result_does(whole: tuple[Path, zoaf.Result]) -> None:
    """trace.json counted a corner run's sizings credited to its budget (its ``nfev`` 9 beside result.json's 25 here, and
    each row's simulations so), where result.json, the history and every other run's trace count simulations."""
    run, result = whole
    trace = json.loads((run / "trace.json").read_text())
    assert trace["nfev"] == json.loads((run / "result.json").read_text())["nfev"] == simulated(run) == result.nfev
    assert len(result.history) < result.nfev                   # sizings and simulations differ here
    spent = np.cumsum([r.cost for r in result.history])         # after each sizing, its corners included
    best = np.minimum.accumulate([r.fom for r in result.history])
    kept = [0] + [i for i in range(1, len(best)) if best[i] < best[i - 1]]
    assert [row[0] for row in trace["rows"]] == [int(spent[i]) for i in kept]
    with sqlite3.connect(run / "history.db") as db:
        assert trace["sim_seconds"] == pytest.approx(db.execute("SELECT SUM(seconds) FROM evals").fetchone()[0])


def test_a_report_reads_a_corner_run_by_its_sizings_worst_cases(whole: tuple[Path, zoaf.Result],
                                                                 tmp_path: Path) -> None:
    """A report read a corner run's history.db as the run: a row per corner, each judged at its corner alone (its
    final FoM the best single corner's, below the run's worst-case best), cut to result.json's count of sizings with
    a warning. It reads the run's end files now, as ``zoaf optimize`` reported it; unfinished, it is left out."""
    run, result = whole
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        read = load_run(run)
    assert (read.final, read.nfev, read.complete) == (result.fun, result.nfev, True)
    with sqlite3.connect(run / "history.db") as db:
        assert db.execute("SELECT MIN(fom) FROM evals").fetchone()[0] < result.fun      # what was read before
    unfinished = Path(shutil.copytree(run, tmp_path / "run", ignore=shutil.ignore_patterns("*.json")))
    with pytest.raises(InputError, match=r"history.db: a corner run's history holds its corners' simulations, "
                                         r"not its sizings' worst cases: the run is reported once it ends"):
        load_run(unfinished)


@pytest.mark.parametrize("where", ["first batch", "stage 1", "between stages", "stage 2"])
def test_a_library_corner_run_cut_anywhere_in_a_batch_keeps_it_and_resumes_exactly(
        whole: tuple[Path, zoaf.Result], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str) -> None:
    """Ctrl-C amid the first batch (every corner of two sizings at once), a pruning batch's first stage (the
    incumbent's worst corner), between its stages, or in its second (the other corners of the sizings not beaten):
    the result counted only the batches answered whole. It counts every recorded simulation now, each in one of
    its sizings, and its best is no sizing judged at only some of its corners; resumed, it is the uncut run."""
    ref, uncut_result = whole
    cut_at = _cut_point(uncut_result.history, where)
    problem = _corner_problem(tmp_path)
    calls: list[int] = []
    real = CornerSims.simulate

    def ctrl_c_at(self: CornerSims, x: np.ndarray) -> object:
        calls.append(1)
        if len(calls) == cut_at:
            raise KeyboardInterrupt
        return real(self, x)

    monkeypatch.setattr(CornerSims, "simulate", ctrl_c_at)
    cut = _optimize(problem, tmp_path / "run")
    monkeypatch.undo()
    assert cut.message == "interrupted" and cut.nfev == simulated(tmp_path / "run") == cut_at - 1
    assert all(isinstance(r, SizingRecord) for r in cut.history)
    assert sum(len(r.corner_records) for r in cut.history) == len(rows(tmp_path / "run"))
    assert any(len(r.corner_records) < 3 and not r.pruned for r in cut.history)     # cut amid a sizing
    kept = json.loads((tmp_path / "run" / "result.json").read_text())
    assert kept["nfev"] == cut.nfev and kept["sizings"] == len(cut.history)
    judged = [r for r in cut.history if len(r.corner_records) == 3 or r.pruned]
    assert cut.fun == min((r.fom for r in judged), default=math.inf) == min(r.fom for r in cut.history)
    if math.isfinite(cut.fun):                       # the best sizing's worst case is known at every corner
        assert len(next(r for r in cut.history if r.fom == cut.fun).corner_records) == 3
        assert json.loads((tmp_path / "run" / "trace.json").read_text())["rows"][-1][2] == cut.fun
    again = _optimize(_corner_problem(tmp_path), tmp_path / "run", resume=True)
    assert rows(tmp_path / "run") == rows(ref)
    assert (again.nfev, again.fun, again.params) == (uncut_result.nfev, uncut_result.fun, uncut_result.params)
    assert [r.params for r in again.history] == [r.params for r in uncut_result.history]
    assert json.loads((tmp_path / "run" / "result.json").read_text()) == json.loads((ref / "result.json").read_text())


# -- zoaf corners on a run directory cut by a signal -------------------------------------------------------------
def _corner_rows(run: Path) -> list[tuple]:
    """The rows of every corner check recorded in ``run``."""
    return [row for db in sorted(run.glob("corners/*")) for row in rows(db)]


def _corner_rows_now(run: Path) -> int:
    """Rows committed so far, read-only (:func:`runkit.count`)."""
    return sum(count(db) for db in run.glob("corners/*"))


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_corner_check_of_a_run_cut_mid_way_keeps_its_corners_and_finishes_them(
        uncut: Callable[[], Path], tmp_path: Path, signum: int) -> None:
    """``zoaf corners RUN`` recorded nothing: cut once its fast corner was simulated (the slow one still running),
    it said "interrupted" and the same command simulated every corner anew. Its simulations are recorded in
    ``RUN/corners/<hash>/`` now: the cut says what is kept, and the same command replays it, simulates the rest
    and says what an uncut check says."""
    ref = Path(shutil.copytree(uncut(), tmp_path / "ref"))
    whole = _zoaf("corners", str(ref), "--workers", "2", "--json")
    out, _ = whole.communicate(timeout=300)
    assert whole.returncode == 0 and len(_corner_rows(ref)) == 2
    run = Path(shutil.copytree(uncut(), tmp_path / "run"))
    proc = _zoaf("corners", str(run), "--workers", "2", "--json")
    try:
        deadline = time.monotonic() + 120
        while not _corner_rows_now(run) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        assert proc.poll() is None, "the check ended before the signal: " + proc.stderr.read()
        proc.send_signal(signum)
        _, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    folder = next(run.glob("corners/*"))
    assert proc.returncode == 130 and stderr.strip().splitlines()[-1] == (
        f"interrupted: 1 simulation kept in {folder}; the same command again replays them and simulates only the "
        "rest"), stderr
    again = _zoaf("corners", str(run), "--workers", "2", "--json")
    said, _ = again.communicate(timeout=300)
    assert again.returncode == 0 and json.loads(said) == json.loads(out)
    assert _corner_rows(run) == _corner_rows(ref)           # the fast corner replayed, only the slow one simulated


def test_a_corner_check_cut_before_its_first_corner_leaves_nothing_in_the_run(
        uncut: Callable[[], Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing recorded, nothing left: an empty history in ``RUN/corners/`` is no check's (as a yield's)."""
    from zoaf import cli
    from zoaf.signoff import cornercheck

    def ctrl_c(self: object, *args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    run = Path(shutil.copytree(uncut(), tmp_path / "run"))
    monkeypatch.setattr(cornercheck.Evaluator, "evaluate", ctrl_c)
    monkeypatch.setattr(sys, "argv", ["zoaf", "corners", str(run), "--workers", "1"])
    with pytest.raises(SystemExit) as exit_:
        cli.main()
    assert exit_.value.code == 130 and not (run / "corners").exists()

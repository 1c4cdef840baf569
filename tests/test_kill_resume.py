"""kill -9 of a whole `zoaf optimize`, then `--resume`: the identical history, best point and result.json.

The uninterrupted reference and every killed run use the same seed; kills land at different moments (after
a given number of history rows were committed, so mid-batch as well as between batches).
"""
from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from runkit import count, signal_after

ROOT = Path(__file__).parent.parent
AMP = ROOT / "netlists" / "two_stage_amp.cir"
BUDGET = 90
ARGS = ["optimize", str(AMP), "--budget", str(BUDGET), "--seed", "3", "--workers", "1", "--quiet"]


def zoaf(*args: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen([sys.executable, "-m", "zoaf", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def rows(run: Path) -> list[tuple]:
    """Every recorded simulation without its timings (wall clock and simulator seconds differ by nature)."""
    with sqlite3.connect(run / "history.db") as db:
        return db.execute("SELECT idx, u, params, measures, fom, objective, feasible, status, error, phase, "
                          "charged FROM evals ORDER BY idx").fetchall()


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[], Path]]:
    """The uninterrupted run, waited for where first compared: it runs beside the first killed run (two cores)."""
    out = tmp_path_factory.mktemp("ref") / "run"
    p = zoaf(*ARGS, "--out", str(out))

    def finished() -> Path:
        assert p.wait(timeout=600) == 0, p.stderr.read()
        return out
    yield finished
    if p.poll() is None:        # no test got as far as comparing: nothing is left running
        p.kill()
        p.wait()


@pytest.mark.parametrize("kill_after", [1, 23, 61])
def test_kill_9_then_resume_is_identical(reference: Callable[[], Path], tmp_path: Path, kill_after: int) -> None:
    out = tmp_path / "run"
    signal_after(zoaf(*ARGS, "--out", str(out)), out, kill_after, signal.SIGKILL, wait_s=300, poll_s=0.005)
    killed_at = count(out)
    assert killed_at < BUDGET
    r = zoaf("optimize", str(AMP), "--resume", str(out), "--workers", "1", "--quiet")
    assert r.wait(timeout=600) == 0, r.stderr.read()
    ref = reference()
    assert rows(out) == rows(ref)
    assert json.loads((out / "result.json").read_text()) == json.loads((ref / "result.json").read_text())
    assert (out / "best.cir").read_text() == (ref / "best.cir").read_text()


def _always_fails(x):
    raise ValueError("no value here")


def test_a_resume_asks_as_the_run_did_whatever_its_workers(tmp_path: Path) -> None:
    """Every method sizes its batches by ``workers`` (ZOAF samples ``workers`` points at a time while every point
    fails): resumed with 2 workers, a run made in-process (batches of 1) asked other points and was refused
    ("another point than the method asks now"). The run records its batch width and a resume keeps it."""
    import numpy as np

    import zoaf
    from zoaf.function import FunctionProblem
    from zoaf.problem import Parameter

    problem = FunctionProblem(_always_fails, [Parameter("a", 0.0, 1.0), Parameter("b", 0.0, 1.0)])
    zoaf.optimize(problem, budget=6, seed=1, out=tmp_path / "run", workers=0, callback=lambda r: r.nfev >= 3)
    resumed = zoaf.optimize(problem, budget=6, seed=1, out=tmp_path / "run", workers=2, resume=True)
    whole = zoaf.optimize(problem, budget=6, seed=1, workers=0)
    assert resumed.nfev == 6
    np.testing.assert_array_equal([r.u for r in resumed.history], [r.u for r in whole.history])
    assert json.loads((tmp_path / "run" / "result.json").read_text())["settings"]["batch_width"] == 1


#: sitecustomize.py for the run below: a second SIGINT, sent by the process to itself as the interrupted run starts
#: writing its end files (it imports zoaf.plots then: matplotlib, ~2 s, where a second Ctrl-C lands most often).
SECOND_CTRL_C = """
import os, signal, sys
class CtrlC:
    def find_spec(self, name, path=None, target=None):
        if name == "zoaf.plots" and os.environ.get("SECOND_CTRL_C_SENT"):
            open(os.environ["SECOND_CTRL_C_SENT"], "w").close()
            os.kill(os.getpid(), signal.SIGINT)
sys.meta_path.insert(0, CtrlC())
"""


def test_a_second_ctrl_c_while_the_end_files_are_written_keeps_them(tmp_path: Path) -> None:
    """Ctrl-C ends a run with its end files and the resume line; a second Ctrl-C while they were written dropped
    them all (the rows kept). They are written, then the second Ctrl-C is taken: exit 130, the resume line."""
    (tmp_path / "sitecustomize.py").write_text(SECOND_CTRL_C)
    out = tmp_path / "run"
    sent = tmp_path / "second-ctrl-c-sent"              # the hook's mark: the second Ctrl-C did come
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), str(ROOT)]), SECOND_CTRL_C_SENT=str(sent))
    rc = ROOT / "tests" / "bad_inputs" / "good.cir"
    p = subprocess.Popen([sys.executable, "-m", "zoaf", "optimize", str(rc), "--method", "random", "--budget",
                          "100000", "--workers", "1", "--quiet", "--out", str(out)], cwd=ROOT, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))   # as at a terminal
    _, stderr = signal_after(p, out, 5, signal.SIGINT)
    assert p.returncode == 130 and "Traceback" not in stderr, stderr
    assert sent.exists() and f"interrupted: resume with  zoaf optimize {rc} --resume {out}" in stderr
    assert {"result.json", "trace.json", "best.cir", "convergence.png"} <= {f.name for f in out.iterdir()}
    assert json.loads((out / "result.json").read_text())["stop_reason"] == "interrupted"

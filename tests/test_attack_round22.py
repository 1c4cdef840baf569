"""Red team, round 22: what one deck leaves in its worker for the next, and what outlives a run.

Native code in a sandboxed process (a memory bug of ngspice a deck exploits) is modelled, as round 18 does, by a
problem whose ``simulate`` runs Python in the worker after the lock-down: :class:`Patcher` rewrites zoaf's own
session code there, :class:`Forker` starts a process that detaches itself (``fork``, ``setsid``, ``fork``: no
program, so no ``--allow-shell``, and no ``execve`` needed).
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from attackkit import DIVIDER_SPEC

from zoaf.circuit import CircuitProblem
from zoaf.evaluate import Evaluator
from zoaf.ngbatch import run_batch
from zoaf.problem import Outcome, Status

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux sandbox")


def _divider(folder: Path, name: str) -> Path:
    (folder / f"{name}.toml").write_text(DIVIDER_SPEC)
    deck = folder / f"{name}.cir"
    deck.write_text(f"{name}\nv1 in 0 dc 1\n.param r1=1k\nr1 in out {{r1}}\nr2 out 0 1k\n.dc v1 0 1 1\n"
                    ".meas dc vo find v(out) at=1\n.end\n")
    return deck


class Patcher(CircuitProblem):
    """Deck A: once simulated, it rewrites, in its worker's Python, the session code every later deck of that
    process runs through: each measure becomes 1e9."""

    def simulate(self, x: np.ndarray, *args, **kw) -> Outcome:
        outcome = super().simulate(x, *args, **kw)
        from zoaf import spice
        spice.SpiceSession.evaluate = lambda self, *a, **k: {n: 1e9 for n in ("vo", "got", "leak")}
        return outcome


def test_a_reused_dask_worker_never_runs_a_second_runs_deck_after_the_first(tmp_path: Path):
    """A cluster started once and named by two runs (``--dask ADDRESS``): deck A's run, then deck B's, from one
    folder (A's lock-down covers B's files, so B's simulations went to A's process). What A left there (here its
    rewrite of zoaf's session code; as well its files in the private directory, ngspice's state) gave B the
    measure 1e9. A worker process now serves the run that first simulated in it only: B's runs in a fresh one,
    and gives what ``ngspice -b`` gives for B alone."""
    distributed = pytest.importorskip("distributed")
    a, b = _divider(tmp_path, "a"), _divider(tmp_path, "b")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as cluster:
        address = cluster.scheduler_address
        with Evaluator(Patcher(a), workers=1, dask=address, timeout=60) as ev:
            [first] = ev.evaluate(np.array([[0.5]]))
        assert first.outcome.status is Status.OK, first.outcome
        victim = CircuitProblem(b)
        with Evaluator(victim, workers=1, dask=address, timeout=60) as ev:
            [record] = ev.evaluate(np.array([[0.5]]))
            assert ev.stats["lost"] == 1                   # sent to A's process, not run there: a fresh one ran it
    assert record.outcome.status is Status.OK, record.outcome
    alone = run_batch(victim.sized_netlist(record.params), source=b)
    assert record.outcome.measures["vo"] == pytest.approx(alone["vo"], rel=1e-6)
    assert alone["vo"] != pytest.approx(1e9)


class Forker(CircuitProblem):
    """Once simulated, it starts a process that detaches itself and outlives its worker: it writes ``LEFTOVER``
    and its id to the worker's standard error (relayed to zoaf's), then, 3 s later, ``STILL`` and its id."""

    def simulate(self, x: np.ndarray, *args, **kw) -> Outcome:
        outcome = super().simulate(x, *args, **kw)
        child = os.fork()
        if child == 0:
            os.setsid()
            if os.fork() == 0:
                os.write(2, f"LEFTOVER {os.getpid()}\n".encode())
                time.sleep(3)
                os.write(2, f"STILL {os.getpid()}\n".encode())
            os._exit(0)
        os.waitpid(child, 0)
        return outcome


_RUN_FORKER = """import sys
import numpy as np
from test_attack_round22 import Forker
from zoaf.evaluate import Evaluator
with Evaluator(Forker(sys.argv[1]), **eval(sys.argv[2])) as ev:
    [r] = ev.evaluate(np.array([[0.5]]))
print(r.outcome.status.value)
"""


@pytest.mark.parametrize("backend", [{"workers": 1}, {"workers": 1, "dask": "local"}], ids=["pool", "dask"])
def test_a_process_the_deck_detaches_ends_with_the_run(tmp_path: Path, backend: dict):
    """A process forked by native code in a worker, detached (``setsid``, a second ``fork``), was adopted by init:
    it ran on after zoaf returned, held zoaf's standard error (a caller reading it waited for its end) and wrote
    there. Every simulating process is now the subreaper of what it starts, with or without ``--allow-shell``, and
    ends it all as it ends."""
    deck = _divider(tmp_path, "deck")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), *sys.path])}
    started = time.monotonic()
    r = subprocess.run([sys.executable, "-c", _RUN_FORKER, str(deck), repr(backend)], capture_output=True, text=True,
                       timeout=120, cwd=tmp_path, env=env)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr
    pids = [int(m[1]) for m in re.finditer(r"^\[(?:dask )?worker \d+\] LEFTOVER (\d+)$", r.stderr, re.M)]  # relayed
    assert pids, r.stderr                                  # the process did start
    assert "STILL" not in r.stderr, r.stderr
    assert not [p for p in pids if _alive(p)], pids
    assert time.monotonic() - started < 60


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (not ended, nor a zombie its new parent has yet to reap)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False

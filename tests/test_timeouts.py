"""A simulation past its deadline, with real ngspice, in every backend: the analyses run synchronously in a
sandboxed process and the process is killed from outside (zoaf.isolation): the sizing is recorded ``timeout``,
the next sizing on the same evaluator is correct, and no process is left behind."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import psutil
import pytest

from zoaf.circuit import CircuitProblem
from zoaf.errors import Timeout
from zoaf.evaluate import Evaluator
from zoaf.problem import Status
from zoaf.spice import run_batch

DECK = Path(__file__).parent / "netlists" / "long_tran.cir"
HANG, QUICK, QUICK2 = [1.0], [0.0], [0.05]         # tstop = 1 s (an hour of simulation), 1 us, ~2 us
LIMIT = 2.0


def _children() -> set[int]:
    """This process's descendants, but multiprocessing's resource tracker (one per parent, for its lifetime)."""
    pids = set()
    for p in psutil.Process().children(recursive=True):
        try:
            if "multiprocessing.resource_tracker" not in " ".join(p.cmdline()):
                pids.add(p.pid)
        except psutil.NoSuchProcess:
            pass
    return pids


def _reference(problem: CircuitProblem, u: list[float]) -> float:
    return run_batch(problem.sized_netlist(problem.as_dict(problem.to_physical(np.array(u)))))["vavg"]


@pytest.mark.parametrize("backend", ["child", "pool", "dask"])
def test_a_hung_simulation_is_killed_and_the_next_one_is_right(backend: str):
    if backend == "dask":
        pytest.importorskip("distributed")
    before = _children()
    problem = CircuitProblem(DECK, timeout=LIMIT)
    options = {"child": {"workers": 0}, "pool": {"workers": 1}, "dask": {"workers": 1, "dask": "local"}}[backend]
    t0 = time.perf_counter()
    with Evaluator(problem, **options) as ev:
        res = ev.evaluate(np.array([QUICK, HANG, QUICK2]))
        assert [r.status for r in res] == [Status.OK, Status.TIMEOUT, Status.OK]
        assert all(r.charged for r in res)
        assert ev.evaluate(np.array([QUICK2]))[0].status == Status.CACHED
        later = ev.evaluate(np.array([[0.1]]))[0]
        if backend != "child":                               # (workers=0 has no pool statistics)
            assert ev.stats["timeouts"] == 1
    assert time.perf_counter() - t0 < 120                     # the hung sizing alone would take an hour
    for r, u in ((res[0], QUICK), (res[2], QUICK2), (later, [0.1])):
        assert r.status == Status.OK
        np.testing.assert_allclose(r.outcome.measures["vavg"], _reference(problem, u), rtol=2e-6)
    deadline = time.monotonic() + 30                         # Dask's nannies exit on their own schedule
    while _children() - before and time.monotonic() < deadline:
        time.sleep(0.2)
    left = [psutil.Process(p) for p in _children() - before if psutil.pid_exists(p)]
    assert not [(p.pid, p.name(), p.status()) for p in left]


def test_the_child_session_raises_timeout_and_starts_afresh():
    problem = CircuitProblem(DECK, timeout=LIMIT)
    session = problem.session()
    try:
        first = session._proc.pid if session._proc else None
        assert first is None                                  # started lazily
        with pytest.raises(Timeout, match=f"after {LIMIT:g} s"):
            session.evaluate({"tstop": 1.0})
        assert session._proc is None                          # killed and reaped
        assert session.evaluate({"tstop": 1e-6})["vavg"] == problem.simulate(np.array([1e-6])).measures["vavg"]
    finally:
        problem.close()

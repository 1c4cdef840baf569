"""The evaluator's engine: order, cache, timeouts, crashes, restarts, Ctrl-C and determinism across workers."""
from __future__ import annotations

import math
import os
import re
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import zoaf
from zoaf.errors import InputError
from zoaf.evaluate import Evaluator
from zoaf.faults import FaultyProblem
from zoaf.function import FunctionProblem
from zoaf.problem import Outcome, Parameter, Status


def sphere(x: np.ndarray) -> float:
    return float(np.sum((x - 0.3) ** 2))


def slow_sphere(x: np.ndarray) -> float:
    # A sleep that depends on the point, 0..40 ms: later points often finish first.
    time.sleep(0.04 * (float(x[0]) % 1.0))
    return sphere(x)


class Sphere(FunctionProblem):
    """Module level, so it pickles by reference into worker processes."""

    def __init__(self, dim: int = 3, fun=sphere) -> None:
        super().__init__(fun, [Parameter(f"x{i}", 0.0, 1.0) for i in range(dim)])


class Buggy(FunctionProblem):
    def __init__(self) -> None:
        super().__init__(sphere, [Parameter("x0", 0.0, 1.0)])

    def simulate(self, x):
        raise KeyError("a bug in simulate")


def points_with(faulty: FaultyProblem, fault: str | None, n: int, seed: int = 0) -> np.ndarray:
    """``n`` box points whose injected fault is ``fault``."""
    rng = np.random.default_rng(seed)
    out = []
    while len(out) < n:
        u = rng.random(faulty.dim)
        if faulty.fault_of(faulty.to_physical(u)) == fault:
            out.append(u)
    return np.array(out)


def test_results_come_back_in_order_asked():
    u = np.random.default_rng(1).random((24, 3))
    with Evaluator(Sphere(fun=slow_sphere), workers=3) as ev:
        res = ev.evaluate(u)
    assert [o.status for o in res] == [Status.OK] * 24
    np.testing.assert_array_equal([o.fom for o in res], [sphere(x) for x in u])
    np.testing.assert_array_equal([r.u for r in res], u)
    assert [r.idx for r in res] == list(range(24))


def test_cache_hits_within_and_across_batches_are_free():
    u = np.random.default_rng(2).random((4, 3))
    batch = np.vstack([u, u[:2]])                      # duplicates inside one batch
    for workers in (0, 2):
        with Evaluator(Sphere(), workers=workers) as ev:
            first = ev.evaluate(batch)
            assert [r.charged for r in first] == [True] * 4 + [False] * 2
            assert [o.status for o in first][4:] == [Status.CACHED] * 2
            assert first[4].fom == first[0].fom
            again = ev.evaluate(u[::-1])
            assert [(r.status, r.charged) for r in again] == [(Status.CACHED, False)] * 4
            if workers:
                assert ev.stats["spawned"] == 2


def test_cache_is_keyed_on_physical_values():
    p = Sphere.__new__(Sphere)
    FunctionProblem.__init__(p, sphere, [Parameter("n", 1, 10, integer=True)])
    with Evaluator(p, workers=0) as ev:
        res = ev.evaluate(np.array([[0.50], [0.52], [0.9]]))   # 0.50 and 0.52 round to the same integer
    assert [r.charged for r in res] == [True, False, True]


def test_timeout_kills_the_worker_and_the_pool_goes_on():
    faulty = FaultyProblem(Sphere(), hang=0.3)
    hang = points_with(faulty, "hang", 2)
    good = points_with(faulty, None, 4)
    t0 = time.perf_counter()
    with Evaluator(faulty, workers=2, timeout=1.0) as ev:
        res = ev.evaluate(np.vstack([good[:2], hang, good[2:]]))
        assert [o.status for o in res] == [Status.OK] * 2 + [Status.TIMEOUT] * 2 + [Status.OK] * 2
        assert all(r.charged for r in res)                    # timeouts are charged
        assert ev.stats["timeouts"] == 2
        later = ev.evaluate(points_with(faulty, None, 3, seed=5))
        assert [o.status for o in later] == [Status.OK] * 3
    assert time.perf_counter() - t0 < 15


def test_killed_once_is_retried_and_succeeds():
    faulty = FaultyProblem(Sphere(), kill=0.3)
    kill = points_with(faulty, "kill", 2)
    good = points_with(faulty, None, 3)
    with Evaluator(faulty, workers=2) as ev:
        res = ev.evaluate(np.vstack([good[:1], kill, good[1:]]))
        assert [o.status for o in res] == [Status.OK] * 5
        np.testing.assert_array_equal([o.fom for o in res],
                                      [sphere(faulty.to_physical(u)) for u in np.vstack([good[:1], kill, good[1:]])])
        assert ev.stats["crashed"] == 2 and ev.stats["spawned"] == 4


def test_killed_always_is_crashed_and_the_pool_goes_on():
    faulty = FaultyProblem(Sphere(), kill=0.3, kill_always=True)
    kill = points_with(faulty, "kill", 1)
    good = points_with(faulty, None, 4)
    with Evaluator(faulty, workers=2) as ev:
        res = ev.evaluate(np.vstack([good[:2], kill, good[2:]]))
        assert [o.status for o in res] == [Status.OK] * 2 + [Status.CRASHED] + [Status.OK] * 2
        assert "SIGKILL" in res[2].outcome.error and res[2].charged
        assert ev.stats["crashed"] == 2                    # first attempt and one retry
        assert [o.status for o in ev.evaluate(points_with(faulty, None, 2, seed=3))] == [Status.OK] * 2


def test_problem_asking_for_a_new_process_gets_one():
    faulty = FaultyProblem(Sphere(), poison=0.3)
    poison = points_with(faulty, "poison", 1)
    good = points_with(faulty, None, 2)
    with Evaluator(faulty, workers=1) as ev:
        ev.evaluate(good[:1])
        pid = ev.worker_pids()
        res = ev.evaluate(np.vstack([poison, good[1:]]))
        assert [o.status for o in res] == [Status.FAILED, Status.OK]
        assert ev.stats["restarts"] == 1 and ev.worker_pids() != pid


def test_recycling_replaces_workers_after_n_simulations():
    u = np.random.default_rng(4).random((10, 3))
    with Evaluator(Sphere(), workers=1, recycle_after=4) as ev:
        res = ev.evaluate(u)
        assert [o.status for o in res] == [Status.OK] * 10
        assert ev.stats["recycled"] == 2 and ev.stats["spawned"] == 3


def test_exception_in_simulate_fails_that_point_alike_in_process_and_in_workers():
    """A user's simulate that raised ended the whole batch (in a worker: re-raised in the parent), losing it."""
    for workers in (0, 1):
        with Evaluator(Buggy(), workers=workers) as ev:
            res = ev.evaluate(np.array([[0.2], [0.7]]))
        assert [r.status for r in res] == [Status.FAILED] * 2
        assert re.fullmatch(r"KeyError: 'a bug in simulate' \(raised at test_evaluate\.py:\d+\)", res[0].outcome.error)


@pytest.fixture
def sigint_raises():
    """Python leaves SIGINT ignored when it starts with it ignored (a background job of a non-interactive
    shell): install the default handler for the test, as a terminal session has it."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_a_worker_is_born_ignoring_sigint(sigint_raises, monkeypatch):
    """A Ctrl-C while a worker still imported (before it ignores SIGINT itself) printed its KeyboardInterrupt
    traceback: a pool worker and the ``workers=0`` child now start with SIGINT ignored (the kernel's mask, read at
    once after the start)."""
    import subprocess
    from pathlib import Path

    from zoaf import sandbox
    from zoaf.isolation import ChildSession
    from zoaf.localpool import LocalPool
    from zoaf.netlist import Netlist
    from zoaf.workers import dumps_problem

    pool = LocalPool(dumps_problem(Sphere()), 1, timeout=30, recycle_after=100)
    try:
        pool._spawn()
        [w] = pool._procs
        assert _ignores_sigint(w.proc.pid)
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler      # the parent's own, restored
    finally:
        pool.close()
    born: list[bool] = []
    real = subprocess.Popen

    def popen(*args, **kwargs):                            # the workers=0 child, read before it runs any Python
        proc = real(*args, **kwargs)
        born.append(_ignores_sigint(proc.pid))
        return proc

    monkeypatch.setattr(subprocess, "Popen", popen)
    deck = Path(__file__).parent / "netlists" / "rc.cir"
    child = ChildSession(Netlist.read(deck), timeout=30, policy=sandbox.Policy(read=(deck.parent,)))
    try:
        child._start()
    finally:
        child.close()
    assert born == [True]


def _ignores_sigint(pid: int) -> bool:
    with open(f"/proc/{pid}/status") as f:
        ignored = next(ln.split()[1] for ln in f if ln.startswith("SigIgn:"))
    return bool(int(ignored, 16) & (1 << (signal.SIGINT - 1)))


def test_ctrl_c_propagates_and_workers_ignore_sigint(sigint_raises):
    faulty = FaultyProblem(Sphere(), hang=0.5, hang_seconds=30)
    hang = points_with(faulty, "hang", 2)
    with Evaluator(faulty, workers=2, timeout=30) as ev:
        ev.evaluate(points_with(faulty, None, 2))          # workers up
        pids = ev.worker_pids()

        def interrupt() -> None:                           # what a terminal's Ctrl-C does to the group
            for pid in pids:
                os.kill(pid, signal.SIGINT)
            os.kill(os.getpid(), signal.SIGINT)

        timer = threading.Timer(0.5, interrupt)
        timer.start()
        t0 = time.perf_counter()
        with pytest.raises(KeyboardInterrupt):
            ev.evaluate(hang)
        assert time.perf_counter() - t0 < 20            # not after the 30 s hang
        res = ev.evaluate(points_with(faulty, None, 3, seed=9))   # the evaluator still works
        assert [o.status for o in res] == [Status.OK] * 3


def test_bad_options_are_input_errors():
    with pytest.raises(InputError, match="workers"):
        Evaluator(Sphere(), workers=-1)
    with pytest.raises(InputError, match="timeout"):
        Evaluator(Sphere(), timeout=0)
    with pytest.raises(InputError, match="dask"):
        Evaluator(Sphere(), workers=0, dask="local")


def test_default_workers_is_cpu_count():
    assert Evaluator(Sphere()).workers == os.cpu_count()


def _key(res) -> list:
    return [(tuple(r.params.values()), r.outcome.status, r.outcome.fom, r.charged) for r in res.history]


@pytest.mark.parametrize("method", ["random"])
def test_same_seed_same_history_with_1_2_4_workers(method):
    problem = FaultyProblem(Sphere(dim=4), fail=0.1, salt=1)
    runs = []
    for workers in (0, 1, 2, 4):
        with Evaluator(problem, workers=workers) as ev:
            res = zoaf.optimize(problem, budget=40, seed=7, method=method, workers=2, evaluator=ev)
        runs.append(_key(res))
    assert len(runs[0]) == 40
    assert runs[1] == runs[0] and runs[2] == runs[0] and runs[3] == runs[0]


def test_optimization_with_faults_loses_no_simulation():
    problem = FaultyProblem(Sphere(dim=3), fail=0.10, hang=0.03, kill=0.04, hang_seconds=30, salt=2)
    budget = 60
    t0 = time.perf_counter()
    with Evaluator(problem, workers=2, timeout=1.0) as ev:
        res = zoaf.optimize(problem, budget=budget, seed=3, method="random", workers=2, evaluator=ev)
        stats = ev.stats
    recs = res.history
    assert sum(r.charged for r in recs) == budget == res.nfev
    assert len(recs) == budget + res.ncached
    for r in recs:
        x = np.array(list(r.params.values()))
        fault = problem.fault_of(x)
        want = {None: Status.OK, "kill": Status.OK, "fail": Status.FAILED, "hang": Status.TIMEOUT}[fault]
        assert r.outcome.status == (want if r.charged else Status.CACHED)
    seen = {r.outcome.status for r in recs}
    assert {Status.OK, Status.FAILED, Status.TIMEOUT} <= seen
    assert stats["crashed"] >= 1 and stats["timeouts"] >= 1
    assert np.isfinite(res.fun)
    assert time.perf_counter() - t0 < 30


_LOADED: dict[str, int] = {}                              # per worker process: the key it has "loaded"


class Keyed(FunctionProblem):
    """A problem whose simulations need a key loaded in their process (as a PDK corner is): the last
    coordinate, rounded, is the key; a process that had another key loaded reports ``reloaded = 1``."""

    def __init__(self) -> None:
        super().__init__(sphere, [Parameter("x0", 0.0, 1.0), Parameter("k", 0, 2, integer=True)])

    def affinity(self, x: np.ndarray) -> int:
        return int(x[-1])

    def simulate(self, x: np.ndarray):
        key = int(x[-1])
        reloaded = float(_LOADED.get("key", key) != key)
        _LOADED["key"] = key
        time.sleep(0.03)
        return Outcome(Status.OK, fom=sphere(x), measures={"reloaded": reloaded, "pid": float(os.getpid())})


def test_affinity_routes_tasks_to_the_worker_holding_their_key_and_no_worker_idles():
    u = np.column_stack([np.linspace(0.01, 0.99, 30), np.tile([0.0, 0.5, 1.0], 10)])   # keys 0, 1, 2, 0, ...
    same = np.column_stack([np.linspace(0.02, 0.98, 30), np.zeros(30)])                 # one key throughout
    reloads = {}
    for affine in (True, False):
        problem = Keyed()
        if not affine:
            problem.affinity = None                           # a problem that names no affinity
        with Evaluator(problem, workers=2) as ev:
            ev.evaluate(np.array([[0.5, 0.0], [0.6, 0.0]]))    # both workers started
            res = ev.evaluate(u)
            np.testing.assert_array_equal([r.fom for r in res], [sphere(x) for x in problem.to_physical(u)])
            reloads[affine] = sum(r.outcome.measures["reloaded"] for r in res)
            if affine:
                assert ev.stats["switches"] == reloads[True]
                pids = {r.outcome.measures["pid"] for r in ev.evaluate(same)}
                assert len(pids) == 2                         # the second worker takes tasks of the held key
    assert reloads[True] <= 4 and reloads[False] >= 15, reloads


class _Touch:
    """A pickle that, loaded with ``pickle.loads``, creates ``path`` (what native code in a worker could send)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def poisoning_sphere(marker: str, x: np.ndarray) -> float:
    """Writes a reply of its own onto the worker's pipe to zoaf (found as native code would find it), then
    returns normally."""
    import gc
    import pickle
    from multiprocessing.connection import Connection

    for conn in [o for o in gc.get_objects() if isinstance(o, Connection)]:
        conn.send_bytes(pickle.dumps(("done", 0, 0.0, _Touch(marker), False)))
    return float(np.sum(x ** 2))


def test_a_pickle_a_worker_writes_on_its_pipe_is_not_run(tmp_path):
    """Replies from a pool worker are loaded with a restricted unpickler: a pickle that would run code in
    zoaf's own (unsandboxed) process is refused, the worker killed and its simulation charged as a crash."""
    import functools

    marker = tmp_path / "PWNED"
    problem = FunctionProblem(functools.partial(poisoning_sphere, str(marker)), [Parameter("a", -1.0, 1.0)])
    with Evaluator(problem, workers=1, retries=0) as ev:
        out = ev.evaluate(np.array([[0.25]]))
    assert not marker.exists()
    assert out[0].status is Status.CRASHED


RC = Path(__file__).parent / "bad_inputs" / "good.cir"


def test_a_python_fom_that_raises_leaves_its_error_in_the_history(tmp_path):
    """A FoM of the circuit's measures that raises: the sizing ranks as failed, and the run's history says why
    (it held no error text, so a run where every FoM raised said nothing of the cause)."""
    from zoaf.circuit import CircuitProblem
    from zoaf.history import History

    problem = CircuitProblem(RC, fom=lambda m: m["f3db"] + "Hz")
    result = zoaf.optimize(problem, budget=3, seed=0, workers=0, out=tmp_path / "run")
    with History(tmp_path / "run" / "history.db", read=True) as h:
        errors = [r.outcome.error for r in h.records()]
    assert errors and all(e == "fom raised TypeError: unsupported operand type(s) for +: 'float' and 'str'"
                          for e in errors), errors
    assert result.stop_reason.value == "failed" and "fom raised TypeError" in result.message


@pytest.mark.parametrize("path, kw, message", [
    ("nope.cir", {}, "nope.cir: netlist file not found"),
    (RC.parent, {}, f"{RC.parent}: is a directory, not a netlist file"),
    (RC, dict(timeout=-1), "timeout -1: must be > 0 and at most 1e+06 seconds"),
    (RC, dict(timeout=math.nan), "timeout nan: must be > 0"),
    (RC, dict(timeout="5"), "timeout '5': must be > 0"),
    (RC, dict(fom=3), "fom 3: not a function of the measures"),
])
def test_circuit_problem_refuses_what_it_cannot_run(path, kw, message):
    """Each was taken (a missing netlist was reported as its missing spec; a timeout of -1, NaN or "5" and a fom
    that is not callable failed at the first simulation, or never)."""
    from zoaf.circuit import CircuitProblem

    with pytest.raises(InputError) as e:
        CircuitProblem.from_netlist(path, **kw)
    assert str(e.value).startswith(message)


@pytest.mark.parametrize("value, what", [("abc", "'abc'"), (1e6, "1000000.0"), (math.nan, "nan")])
def test_sized_netlist_refuses_a_value_outside_the_parameters_bounds(value, what):
    from zoaf.circuit import CircuitProblem

    with pytest.raises(InputError, match=re.escape(f"r1 = {what}: must be within [100, 100k] (parameters.r1)")):
        CircuitProblem(RC).sized_netlist({"r1": value, "c1": 1e-9})
    assert ".param r1=2000.0 c1=1n\n" in CircuitProblem(RC).sized_netlist({"r1": 2e3, "c1": 1e-9})


def test_a_workers0_child_killed_between_evaluations_is_replaced(tmp_path):
    """A child killed from outside after its answer (the OOM killer) must not fail every later evaluation with a
    broken pipe (seen in a 300-simulation run: its last 181 failed so); the next one runs in a fresh child."""
    from zoaf import sandbox
    from zoaf.errors import WorkerCrash
    from zoaf.isolation import ChildSession
    from zoaf.netlist import Netlist

    deck = Path(__file__).parent / "netlists" / "rc.cir"
    child = ChildSession(Netlist.read(deck), timeout=30, policy=sandbox.Policy(read=(deck.parent,)))
    try:
        first = child.evaluate()
        old = child._proc
        old.kill()
        old.wait()
        assert child.evaluate() == first                    # seen dead before the send: a fresh child
        assert child._proc is not old
        child._proc.kill()                                   # as if it died after the check: the send finds it gone
        child._proc.wait()
        child._proc.poll = lambda: None
        with pytest.raises(WorkerCrash, match="died"):
            child.evaluate()
        assert child.evaluate() == first                     # and the next evaluation is fresh again
    finally:
        child.close()

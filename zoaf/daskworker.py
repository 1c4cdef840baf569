"""The Dask pool's worker side: the problem on each worker process, the simulation thread, and the task body.

A task's replies go back twice: as the task's result, and at once as an event on the pool's topic
(``Worker.log_event``: worker -> scheduler -> client, two hops), which the client reads before the scheduler has
even told it the task finished; a result gathered through Dask takes four more hops (the scheduler's
``key-in-memory``, ``who_has``, the worker's ``get_data``): BENCHMARKS.md §2b. The result stays the record of a
task whose event the client did not see. Imported by :mod:`zoaf.daskpool` only when a pool is made.
"""
from __future__ import annotations

import os
import pickle
import queue
import signal
import threading
import time
from typing import Any, Hashable

import numpy as np

from . import proctree, relay, sandbox, watchdog
from .problem import Problem
from .workers import FRESH, LOAD_GRACE, loads, prepare_caught, simulate_caught

# State of a Dask worker process: the problems shipped by the ProblemPlugin, unpickled on first use, and one
# daemon simulation thread (one thread drives libngspice; a hung simulation can be timed out without blocking
# the worker's shutdown when its nanny restarts it).
_DASK_BLOBS: dict[str, bytes] = {}
_DASK_PROBLEMS: dict[str, Problem] = {}
_DASK_KEYS: dict[str, Hashable] = {}                      # the affinity key of a problem's last simulation here
_DASK_LOCK = threading.Lock()
#: ``owner``: the run (its problem's token) that first simulated here; a worker process serves it alone (see
#: :func:`simulate_chunk`).
_DASK_STATE: dict[str, Any] = {"thread": None, "poisoned": False, "task": None, "owner": None}
#: Seconds the watchdog waits, before it ends the process, for the event naming the simulation to leave.
TELL_GRACE = 0.5


class _SimThread(threading.Thread):
    """A daemon thread that runs ``simulate_caught`` jobs one at a time, each after its load where it has one."""

    def __init__(self) -> None:
        super().__init__(name="zoaf-sim", daemon=True)
        self.jobs: queue.SimpleQueue = queue.SimpleQueue()
        self.start()

    def run(self) -> None:
        while True:
            problem, x, load, loaded, box, event = self.jobs.get()
            if load:
                prepare_caught(problem, x)
            loaded.set()
            box.append(simulate_caught(problem, x))
            event.set()

    def simulate(self, problem: Problem, x: np.ndarray, timeout: float, load: bool) -> tuple:
        """The simulation's reply, or ``("timeout", loading)``: ``load`` (what it needs, ``Problem.prepare``) has
        ``timeout`` + :data:`~zoaf.workers.LOAD_GRACE` seconds, then the simulation its ``timeout``."""
        box: list[tuple] = []
        loaded, event = threading.Event(), threading.Event()
        self.jobs.put((problem, x, load, loaded, box, event))
        if not loaded.wait(timeout + LOAD_GRACE):
            return ("timeout", True)
        return box[0] if event.wait(timeout) else ("timeout", False)


def _dask_problem(token: str) -> Problem:
    p = _DASK_PROBLEMS.get(token)
    if p is None:
        p = _DASK_PROBLEMS[token] = pickle.loads(_DASK_BLOBS[token])
    return p


def _dask_forget(token: str) -> None:
    _DASK_BLOBS.pop(token, None)
    _DASK_KEYS.pop(token, None)
    p = _DASK_PROBLEMS.pop(token, None)
    if p is not None:
        try:
            p.close()
        except Exception:                                 # pragma: no cover
            pass


def simulate_chunk(token: str, xs: list[np.ndarray], timeout: float) -> tuple[list[tuple], str]:
    """Simulations on a Dask worker, one after another: a reply tuple per point, and the worker's address, also
    sent as an event ``[task key, pickled (replies, address)]`` on topic ``token``. Each has ``timeout``
    seconds, after its load where this process loads what it needs first (as in the local pool:
    :func:`zoaf.workers.time_limit`).

    A process that simulated one run's deck (its ``token``) simulates no other run's: a cluster named by several
    runs (``--dask ADDRESS``) kept in it what the first deck left (files in the private directory, ngspice's state;
    native code, any Python rewritten) for the next, whose policy its lock-down covers. Another run's simulations
    come back ``lost`` (not run, not charged) and the client has the worker restarted."""
    from distributed import get_worker
    worker = get_worker()
    replies: list[tuple] = []
    with _DASK_LOCK:                                      # several worker threads: still one sim per process
        _DASK_STATE["task"] = worker, token, worker.get_current_task(), replies
        _DASK_STATE["owner"] = _DASK_STATE["owner"] or token
        for x in xs:
            if _DASK_STATE["poisoned"] or _DASK_STATE["owner"] != token:   # hung, broken, or another run's
                replies.append(("lost",))
                continue
            if _DASK_STATE["thread"] is None:
                _DASK_STATE["thread"] = _SimThread()
            problem = _dask_problem(token)
            key = problem.affinity(x) if problem.affinity is not None else None
            load = loads(key, _DASK_KEYS.get(token, FRESH))
            _DASK_KEYS[token] = key
            reply = _DASK_STATE["thread"].simulate(problem, x, timeout, load)
            if reply[0] == "timeout" or reply[-1]:
                _DASK_STATE["poisoned"] = True
            if reply[0] == "timeout":                     # a program the deck ran would outlive the restart
                proctree.send(proctree.descendants(os.getpid()), signal.SIGKILL)
            replies.append(reply)
        _DASK_STATE["task"] = None
    out = replies, worker.address
    worker.log_event(token, [worker.get_current_task(), pickle.dumps(out, protocol=pickle.HIGHEST_PROTOCOL)])
    return out


def _tell_over_limit(line: str) -> None:
    """The watchdog ends this worker over a limit: an event tells the client which simulation of the running
    task went over (the replies before it, then ``("over", line)``), which it records without a retry."""
    current = _DASK_STATE["task"]
    if current is None:
        return
    worker, token, key, replies = current
    out = [*replies, ("over", line)], worker.address
    worker.loop.add_callback(worker.log_event, token, [key, pickle.dumps(out, protocol=pickle.HIGHEST_PROTOCOL)])
    time.sleep(TELL_GRACE)


def _make_plugin_class() -> type:
    from distributed.diagnostics.plugin import WorkerPlugin

    class ProblemPlugin(WorkerPlugin):
        """Gives every worker (also one restarted later by its nanny) the pickled problem; in a cluster zoaf
        started, a stderr of its own, relayed by zoaf (``stderr``: where zoaf's :class:`zoaf.relay.Listener` is)."""

        def __init__(self, token: str, blob: bytes, stderr: str | None = None) -> None:
            self.token, self.blob, self.stderr = token, blob, stderr

        def setup(self, worker: Any) -> None:
            relay.connect_stderr(self.stderr, worker.address)   # a worker zoaf started: not zoaf's stderr
            sandbox.designate(own_process=False)          # the simulation thread may lock itself down
            watchdog.on_end(_tell_over_limit)
            _DASK_BLOBS[self.token] = self.blob
            # a worker sends to the scheduler at most once per 2 ms: unbatched, a task's end (task-finished)
            # reaches the scheduler with its event, before the client can send the next batch, which the
            # scheduler would otherwise place by a stale view (both tasks on the worker it believes free)
            worker.batched_stream.interval = 0

        def teardown(self, worker: Any) -> None:
            _dask_forget(self.token)

    ProblemPlugin.__module__ = __name__
    ProblemPlugin.__qualname__ = "ProblemPlugin"
    return ProblemPlugin


def __getattr__(name: str) -> Any:
    # ProblemPlugin subclasses distributed's WorkerPlugin; made on first use so that importing zoaf does not
    # import distributed, yet picklable by reference as zoaf.daskworker.ProblemPlugin.
    if name == "ProblemPlugin":
        cls = globals()["ProblemPlugin"] = _make_plugin_class()
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

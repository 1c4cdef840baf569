"""The Dask pool: simulations as tasks on the workers of a Dask cluster, one problem per worker process.

The protocol, and the crash/retry/timeout accounting it shares with the local pool, are :mod:`zoaf.workers`'.
Dask is imported only when a pool is made: importing zoaf does not import distributed.
"""
from __future__ import annotations

import hashlib
import logging
import pickle
import queue
import threading
import uuid
from collections import deque
from typing import Any, Hashable, Iterable

import numpy as np

from . import sandbox
from .errors import InputError
from .problem import Outcome, Problem
from .workers import OnDone, Pool, Task, raise_remote, simulate_caught, time_limit

log = logging.getLogger(__name__)

#: Dask tasks in flight per worker thread: the next task waits on the worker, which hides Dask's per-task round
#: trip. The scheduler blames every task a dead worker held, and a task may carry several simulations, so the
#: simulations of a killed task are not charged unless it was one simulation alone on its worker: they become
#: suspects, and while suspects remain the pool sends one simulation per task, one task per worker process
#: (:class:`_Window`): a death then names its simulation exactly, which alone spends a retry.
DASK_PREFETCH = 2
#: Simulations per Dask task at most: Dask's own work per task (scheduler, worker, messages) measured ~13 ms of
#: worker time at load 9 on 2 cores (BENCHMARKS.md §2b), so a task carries several simulations; a batch's pending
#: simulations are shared evenly over the free task slots, so that a small batch is sent whole at once.
DASK_CHUNK = 8
#: Seconds to wait for an existing Dask scheduler before saying it cannot be reached.
DASK_CONNECT_TIMEOUT = 10


# State of a Dask worker process: the problems shipped by the ProblemPlugin, unpickled on first use, and one
# daemon simulation thread (one thread drives libngspice; a hung simulation can be timed out without blocking
# the worker's shutdown when its nanny restarts it).
_DASK_BLOBS: dict[str, bytes] = {}
_DASK_PROBLEMS: dict[str, Problem] = {}
_DASK_KEYS: dict[str, Hashable] = {}                      # the affinity key of a problem's last simulation here
_DASK_LOCK = threading.Lock()
_DASK_STATE: dict[str, Any] = {"thread": None, "poisoned": False}


class _SimThread(threading.Thread):
    """A daemon thread that runs ``simulate_caught`` jobs one at a time."""

    def __init__(self) -> None:
        super().__init__(name="zoaf-sim", daemon=True)
        self.jobs: queue.SimpleQueue = queue.SimpleQueue()
        self.start()

    def run(self) -> None:
        while True:
            problem, x, box, event = self.jobs.get()
            box.append(simulate_caught(problem, x))
            event.set()

    def simulate(self, problem: Problem, x: np.ndarray, timeout: float) -> tuple | None:
        box: list[tuple] = []
        event = threading.Event()
        self.jobs.put((problem, x, box, event))
        return box[0] if event.wait(timeout) else None


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


def _dask_simulate(token: str, xs: list[np.ndarray], timeout: float) -> tuple[list[tuple], str]:
    """Simulations on a Dask worker, one after another: a reply tuple per point, and the worker's address. Each
    has ``timeout`` seconds, plus the load grace where it loads another affinity key's deck (as in the local
    pool: :func:`zoaf.workers.time_limit`)."""
    from distributed import get_worker
    addr = get_worker().address
    replies: list[tuple] = []
    with _DASK_LOCK:                                      # several worker threads: still one sim per process
        for x in xs:
            if _DASK_STATE["poisoned"]:                   # a hung or broken simulation holds this process
                replies.append(("lost",))
                continue
            if _DASK_STATE["thread"] is None:
                _DASK_STATE["thread"] = _SimThread()
            problem = _dask_problem(token)
            key = problem.affinity(x) if problem.affinity is not None else None
            limit = time_limit(timeout, key, _DASK_KEYS.get(token))
            _DASK_KEYS[token] = key
            reply = _DASK_STATE["thread"].simulate(problem, x, limit)
            if reply is None or reply[-1]:
                _DASK_STATE["poisoned"] = True
            replies.append(("timeout",) if reply is None else reply)
    return replies, addr


def _make_plugin_class() -> type:
    from distributed.diagnostics.plugin import WorkerPlugin

    class ProblemPlugin(WorkerPlugin):
        """Gives every worker (also one restarted later by its nanny) the pickled problem."""

        def __init__(self, token: str, blob: bytes) -> None:
            self.token, self.blob = token, blob

        def setup(self, worker: Any) -> None:
            sandbox.designate()                           # the simulation thread may lock itself down
            _DASK_BLOBS[self.token] = self.blob

        def teardown(self, worker: Any) -> None:
            _dask_forget(self.token)

    ProblemPlugin.__module__ = __name__
    ProblemPlugin.__qualname__ = "ProblemPlugin"
    return ProblemPlugin


def __getattr__(name: str) -> Any:
    # ProblemPlugin subclasses distributed's WorkerPlugin; made on first use so that importing zoaf does not
    # import distributed, yet picklable by reference as zoaf.daskpool.ProblemPlugin.
    if name == "ProblemPlugin":
        cls = globals()["ProblemPlugin"] = _make_plugin_class()
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class _Window:
    """How many tasks may be in flight and how many simulations each carries: ``DASK_PREFETCH`` per worker
    thread of up to ``DASK_CHUNK``, or one simulation per task and one task per thread while a simulation killed
    beside others (a suspect) is unresolved; and which futures were sent in that exact mode, when each task in
    flight has a worker to itself (so a worker's death names its simulation)."""

    def __init__(self, threads: int, workers: int) -> None:
        self.suspects: set[int] = set()
        self._exact: set[Any] = set()
        self.resize(threads, workers)

    def resize(self, threads: int, workers: int) -> None:
        self.threads = threads
        # exact mode needs each task in flight alone in its process: one per worker where every worker has one
        # thread, else one at a time (Dask may place two tasks on a multi-threaded worker)
        self.exact_cap = max(1, workers) if threads == workers else 1

    def chunk(self, pending: int, in_flight: int) -> int:
        """Simulations in the next Dask task: one while suspects remain, else the pending ones shared evenly over
        the free slots (at most ``DASK_CHUNK``), so that a batch needs no round trip after its first tasks."""
        if self.suspects:
            return 1
        free = max(1, self.threads * DASK_PREFETCH - in_flight)
        return min(DASK_CHUNK, -(-pending // free))

    def room(self, meta: dict[Any, list[Task]], queued: int) -> bool:
        """Whether one more task may go, with ``meta`` in flight and ``queued`` about to be sent."""
        if not self.suspects:
            return len(meta) + queued < self.threads * DASK_PREFETCH
        # exact mode: what was sent with prefetch finishes first, then one task per thread
        return len(meta) + queued < self.exact_cap and all(f in self._exact for f in meta)

    def sent(self, fut: Any) -> None:
        if self.suspects:
            self._exact.add(fut)
        else:
            self._exact.clear()                           # those still in flight may now share a worker

    def alone(self, fut: Any) -> bool:
        """Whether ``fut`` had its worker to itself, so that a death while running it is its own."""
        return fut in self._exact

    def forget(self, fut: Any) -> None:
        self._exact.discard(fut)


class DaskPool(Pool):
    """Simulations as Dask tasks: one problem per worker process (via a plugin), timeouts, one retry.

    ``dask``: ``"local"`` starts a ``LocalCluster`` of ``n`` single-threaded worker processes on 127.0.0.1
    (closed with the pool; results come straight from the workers, not through the scheduler); a scheduler
    address connects a new ``Client`` (closed, the cluster is not); a ``distributed.Client`` is used as given
    (nothing closed). Workers need ``zoaf`` importable; use one thread per worker (several threads share one
    process and so simulate one after another).
    """

    def __init__(self, blob: bytes, dask: Any, n: int, *, timeout: float, retries: int = 1) -> None:
        import dask as dask_mod
        import distributed
        super().__init__(timeout=timeout, retries=retries, counters=("restarts", "lost", "suspects"))
        self._own: list[Any] = []
        if isinstance(dask, distributed.Client):
            self.client = dask
        elif dask == "local":
            # The scheduler must not re-run a task that killed its worker: we retry it ourselves, once.
            with dask_mod.config.set({"distributed.scheduler.allowed-failures": 0}):
                cluster = distributed.LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                                   host="127.0.0.1", dashboard_address=None,
                                                   silence_logs=logging.ERROR)
            self._own.append(cluster)
            self.client = distributed.Client(cluster, direct_to_workers=True)
            self._own.insert(0, self.client)
        elif isinstance(dask, str):
            try:
                self.client = distributed.Client(dask, timeout=DASK_CONNECT_TIMEOUT)
            except (OSError, TimeoutError, ValueError) as e:
                raise InputError(f"--dask {dask}: cannot reach a Dask scheduler there ({type(e).__name__}: "
                                 f"{' '.join(str(e).split())[:200]})") from None
            self._own.append(self.client)
        else:
            raise InputError(f"dask must be 'local', a scheduler address or a distributed.Client, got {dask!r}")
        self.token = "zoaf-problem-" + hashlib.sha1(blob).hexdigest()[:16] + "-" + uuid.uuid4().hex[:8]
        plugin_cls = __getattr__("ProblemPlugin")
        self.client.register_plugin(plugin_cls(self.token, blob), name=self.token)
        self.n = n
        self._restarted: set[str] = set()
        self._cluster: tuple[int, int] | None = None
        self._held: list[Any] = []                        # the last batch's last futures (see run)
        self._due: list[str] = []                         # addresses of workers to restart

    def close(self) -> None:
        try:
            self.client.unregister_worker_plugin(self.token)
        except Exception:                                 # pragma: no cover - cluster already gone
            pass
        for obj in self._own:
            try:
                obj.close()
            except Exception:                             # pragma: no cover
                pass
        self._own = []

    def run(self, items: Iterable[tuple[int, np.ndarray]], on_done: OnDone | None = None) -> dict[int, Outcome]:
        from distributed import as_completed
        from distributed.scheduler import KilledWorker

        pending, done = self._batch(items, on_done)
        n = len(pending)
        meta: dict[Any, list[Task]] = {}
        ac = as_completed(with_results=True, raise_errors=False)   # results gathered in bulk
        window = _Window(*self._shape())
        finished: list[Any] = []                          # futures whose results were recorded

        def submit() -> None:
            if window.threads < self.n:                   # a worker is being replaced: look again
                window.resize(*self._shape(fresh=True))
            chunks: list[list[Task]] = []
            while pending and window.room(meta, len(chunks)):
                k = window.chunk(len(pending), len(meta) + len(chunks))
                chunks.append([pending.popleft() for _ in range(min(k, len(pending)))])
            if not chunks:
                return
            # one graph for all: the scheduler handles one message for a batch's first tasks, not one per task
            futs = self.client.map(_dask_simulate, [self.token] * len(chunks), [[t.x for t in c] for c in chunks],
                                   [self.timeout] * len(chunks), pure=False,
                                   key=[f"zoaf-sim-{uuid.uuid4().hex}" for _ in chunks])
            for fut, chunk in zip(futs, chunks):
                meta[fut] = chunk
                window.sent(fut)
                ac.add(fut)
            _release(self._held)                          # the previous batch's last futures, now after these

        try:
            submit()
            while len(done) < n:
                lost = False
                for fut, reply in ac.next_batch():        # the next to finish, and any others already back
                    finished.append(fut)
                    lost |= self._task_done(fut, reply, meta.pop(fut), window, pending, done, KilledWorker)
                if lost:
                    self._restart_due(finished)
                    window.resize(*self._shape(fresh=True))
                submit()
                if len(done) < n:
                    _release(finished)
        except BaseException:
            self.client.cancel(list(meta))
            self._restart_due(finished)
            raise
        # A release is a message to the scheduler, and the client sends at most one every 10 ms: the batch's last
        # futures are released after the next batch's tasks are sent, so as not to hold those back.
        self._held = finished
        return done

    def _task_done(self, fut: Any, reply: Any, chunk: list[Task], window: "_Window", pending: deque[Task],
                   done: dict[int, Outcome], killed: type) -> bool:
        """Record a finished Dask task; True when a worker was lost or is due for a restart."""
        if fut.status == "error":                         # reply is then a (type, exception, traceback)
            reply = fut.exception()
        lost = self._chunk_done(reply, chunk, window.alone(fut), window, pending, done, killed)
        window.forget(fut)
        window.suspects -= {t.tid for t in chunk if t.tid in done}
        return lost

    def _chunk_done(self, reply: Any, chunk: list[Task], alone: bool, window: "_Window", pending: deque[Task],
                    done: dict[int, Outcome], killed: type) -> bool:
        """Record a finished Dask task's simulations; True when a worker was lost or restarted."""
        if isinstance(reply, killed) and not (alone and len(chunk) == 1):
            for t in reversed(chunk):                     # killed beside others: not charged, each run alone
                self.stats["suspects"] += 1
                window.suspects.add(t.tid)
                pending.appendleft(t)
            return True
        if isinstance(reply, BaseException):
            return self._handle(reply, chunk[0], pending, done, killed)
        replies, addr = reply
        lost = False
        for t, r in zip(chunk, replies):
            lost |= self._handle((*r, addr), t, pending, done, killed)
        return lost

    def _shape(self, *, fresh: bool = False) -> tuple[int, int]:
        """The cluster's worker threads and worker processes, asked of the scheduler at the first batch and
        after a worker was lost or replaced, not at every batch (a round trip through the scheduler each)."""
        if fresh or self._cluster is None:
            nthreads = self.client.nthreads()
            self._cluster = (max(1, sum(nthreads.values())), len(nthreads))
        return self._cluster

    def _handle(self, reply: Any, t: Task, pending: deque[Task], done: dict[int, Outcome], killed: type) -> bool:
        """Record one finished task; True when a worker was lost or restarted."""
        if isinstance(reply, BaseException) and not isinstance(reply, killed):
            raise reply
        if isinstance(reply, killed):
            self._crashed(t, "dask worker died", pending, done)
            return True
        kind, addr = reply[0], reply[-1]
        if kind == "lost":                                # never ran: its worker awaits replacement
            self.stats["lost"] += 1
            pending.appendleft(t)
            self._restart(addr)
            return True
        elif kind == "timeout":
            self._timed_out(t, done, "worker restarted")
            self._restart(addr)
            return True
        elif kind == "raised":
            if reply[3]:
                self._restart(addr)
            raise_remote(reply[1], reply[2])
        done[t.tid] = reply[1]
        if reply[2]:
            self._restart(addr)
            return True
        return False

    def _restart(self, addr: str) -> None:
        """Have the worker at ``addr`` restarted by its nanny (once: a restarted worker gets a new address), at
        :meth:`_restart_due`."""
        if addr in self._restarted:
            return
        self._restarted.add(addr)
        self.stats["restarts"] += 1
        self._due.append(addr)

    def _restart_due(self, finished: list[Any]) -> None:
        """Restart the workers due for it, after releasing the futures whose results are recorded: the scheduler
        recomputes a wanted result lost with its worker, and a recomputed hang would take the fresh one too."""
        _release(finished)
        due, self._due = self._due, []
        if not due:
            return
        try:
            self.client.restart_workers(due, raise_for_error=False)
        except Exception as e:                            # pragma: no cover - e.g. a worker without nanny
            log.warning("could not restart dask workers %s: %s", due, e)


def _release(futures: list[Any]) -> None:
    """Tell the scheduler these results are no longer wanted (a message each), and forget them."""
    for fut in futures:
        fut.release()
    futures.clear()

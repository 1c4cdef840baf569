"""Where simulations run: a pool of spawned worker processes, or the workers of a Dask cluster.

libngspice is one global state per process and not thread-safe (NGSPICE.md), so every backend runs **one
simulation at a time per process** and keeps the unpickled ``Problem`` (and so its lazily opened ngspice
session) alive across simulations: the problem is pickled once in the parent and unpickled once per worker
process, never per simulation.

Worker protocol (both backends):
- a simulation that runs past ``timeout`` seconds is given up: its process is killed (local pool) or restarted
  by its nanny (Dask) and the outcome is ``Status.TIMEOUT``;
- a process that dies while simulating (segfault, SIGKILL, out of memory) is replaced and its simulation
  retried ``retries`` times (default once), then recorded as ``Status.CRASHED``;
- a problem that finds its process unusable (libngspice after a numparam error) sets the attribute
  ``needs_new_process = True`` on itself, or raises an exception carrying it (as ``SimulationError`` does):
  the worker replies, then exits, and is replaced. In a fresh process the problem is unpickled again, so the
  flag starts False;
- an exception other than that from ``simulate`` (a bug: ``simulate`` returns failed outcomes, it does not
  raise) is raised again in the parent, as the in-process evaluator would;
- worker processes ignore SIGINT: on Ctrl-C the parent decides (it kills the busy workers and re-raises).

The local pool also recycles a worker after ``recycle_after`` simulations (default 4000 in ``zoaf.evaluate``):
the soak in ``benchmarks/throughput.py --soak`` measured ~10 kB of RSS growth per simulation on two_stage_amp.
"""
from __future__ import annotations

import hashlib
import logging
import math
import multiprocessing as mp
import os
import pickle
import queue
import signal
import threading
import time
import traceback
import uuid
from collections import deque
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any, Callable, Iterable

import numpy as np

from . import sandbox
from .errors import InputError, WorkerCrash
from .problem import Outcome, Problem, Status

log = logging.getLogger(__name__)

#: A worker that has not unpickled its problem after this long is considered hung at start-up.
STARTUP_TIMEOUT = 120.0
#: Workers that die before they are ready, in a row, before the pool gives up (a broken problem/import).
MAX_STARTUP_FAILURES = 3
#: Dask tasks in flight per worker thread. 1: a worker that dies holds only the task that killed it (the
#: scheduler blames every task a dead worker held); more hides Dask's per-task round trip (~ms) at the cost of
#: innocent tasks spending their retry when a neighbour crashes.
DASK_PREFETCH = 1
#: Seconds to wait for an existing Dask scheduler before saying it cannot be reached.
DASK_CONNECT_TIMEOUT = 10
#: Seconds ``close()`` waits for workers to finish ``problem.close()`` before killing them.
CLOSE_GRACE = 5.0


# -- shared by both backends ------------------------------------------------------------------------------
OnDone = Callable[[int, Outcome], None]


class _Done(dict):
    """A batch's results, each handed to ``on_done`` as it arrives (the evaluator records it at once)."""

    def __init__(self, on_done: OnDone | None) -> None:
        super().__init__()
        self._on_done = on_done

    def __setitem__(self, tid: int, outcome: Outcome) -> None:
        super().__setitem__(tid, outcome)
        if self._on_done is not None:
            self._on_done(tid, outcome)


def needs_new_process(problem: Any, exc: BaseException | None = None) -> bool:
    """The convention by which a problem asks for a fresh process (see the module docstring)."""
    return bool(getattr(problem, "needs_new_process", False) or getattr(exc, "needs_new_process", False))


def dumps_problem(problem: Problem) -> bytes:
    """Pickle ``problem`` once for shipping to workers; cloudpickle (if installed) also takes lambdas."""
    try:
        import cloudpickle
        dump = cloudpickle.dumps
    except ImportError:                                   # pragma: no cover - cloudpickle comes with dask
        dump = pickle.dumps
    try:
        return dump(problem, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as e:
        raise InputError(f"the problem cannot be pickled for worker processes ({type(e).__name__}: {e}); "
                         "define it at module level, or evaluate in-process with workers=0") from e


def _simulate_caught(problem: Problem, x: np.ndarray) -> tuple:
    """Run one simulation; never raises. ("done", outcome, restart) or ("raised", exc, traceback, restart)."""
    try:
        outcome = problem.simulate(x)
    except Exception as e:
        try:
            pickle.dumps(e)
        except Exception:
            e = None                                      # unpicklable: the traceback text still goes back
        return ("raised", e, traceback.format_exc(), needs_new_process(problem, e))
    return ("done", outcome, needs_new_process(problem))


class RemoteTraceback(Exception):
    """The traceback of an exception raised in a worker process (attached as ``__cause__``)."""

    def __str__(self) -> str:
        return "\n" + str(self.args[0])


def _raise_remote(exc: BaseException | None, tb: str) -> None:
    if exc is None:
        raise RuntimeError(f"Problem.simulate raised in a worker process:\n{tb}")
    raise exc from RemoteTraceback(tb)


def _outcome(status: Status, error: str, seconds: float = 0.0) -> Outcome:
    return Outcome(status, fom=math.inf, error=error, seconds=seconds)


def _exit_reason(exitcode: int | None) -> str:
    if exitcode is None:
        return "no exit code"
    if exitcode < 0:
        try:
            return f"killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"killed by signal {-exitcode}"
    return f"exit code {exitcode}"


# -- the local pool -------------------------------------------------------------------------------------
def _worker_main(conn: Connection, blob: bytes) -> None:
    """Body of one worker process: unpickle the problem once, then simulate until told to stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)          # Ctrl-C reaches the whole group: the parent decides
    sandbox.designate()                                   # a problem may lock this process down to simulate
    try:
        problem = pickle.loads(blob)
    except BaseException:
        conn.send(("fatal", traceback.format_exc()))
        return
    conn.send(("ready", os.getpid()))
    try:
        while True:
            try:
                msg = conn.recv()
            except (EOFError, OSError):                   # the parent went away
                break
            if msg is None:
                break
            tid, x = msg
            reply = _simulate_caught(problem, x)
            conn.send((reply[0], tid, *reply[1:]))
            if reply[-1]:                                 # restart requested: exit, the parent replaces us
                break
    finally:
        try:
            problem.close()
        except Exception:                                 # pragma: no cover - best effort on the way out
            pass


@dataclass
class _Task:
    tid: int
    x: np.ndarray
    attempt: int = 0


class _Proc:
    """The parent's handle on one worker process: one task at a time, so a death names its simulation."""

    def __init__(self, ctx: Any, blob: bytes, name: str) -> None:
        self.conn, child = ctx.Pipe(duplex=True)
        self.proc = ctx.Process(target=_worker_main, args=(child, blob), name=name, daemon=True)
        self.proc.start()
        child.close()
        self.born = time.monotonic()
        self.ready = False
        self.pid: int | None = None
        self.task: _Task | None = None
        self.deadline = math.inf
        self.nsims = 0


class LocalPool:
    """``n`` worker processes (spawn start method) fed one task at a time over a pipe each."""

    def __init__(self, blob: bytes, n: int, *, timeout: float, recycle_after: int, retries: int = 1) -> None:
        self._blob = blob
        self.n = n
        self.timeout = timeout
        self.recycle_after = recycle_after
        self.retries = retries
        self._ctx = mp.get_context("spawn")
        self._procs: list[_Proc] = []
        self._retiring: list[_Proc] = []
        self._startup_failures = 0
        self._count = 0
        #: events since start, for diagnostics and tests: spawned, crashed, timeouts, restarts, recycled
        self.stats = dict.fromkeys(("spawned", "crashed", "timeouts", "restarts", "recycled"), 0)

    # -- lifecycle -------------------------------------------------------------------------------------
    def _spawn(self) -> None:
        self._count += 1
        self._procs.append(_Proc(self._ctx, self._blob, f"zoaf-worker-{self._count}"))
        self.stats["spawned"] += 1

    def _fill(self) -> None:
        while len(self._procs) < self.n:
            self._spawn()

    def _drop(self, w: _Proc, *, kill: bool) -> None:
        """Forget ``w`` (killing it first if asked) and start its replacement."""
        if w in self._procs:
            self._procs.remove(w)
        if kill and w.proc.is_alive():
            w.proc.kill()
        w.proc.join(timeout=CLOSE_GRACE)
        w.conn.close()
        self._spawn()

    def _retire(self, w: _Proc) -> None:
        """Let ``w`` finish on its own (it closes its problem) and start its replacement."""
        try:
            w.conn.send(None)
        except OSError:
            pass
        self._procs.remove(w)
        self._retiring.append(w)
        self._spawn()
        self._reap()

    def _reap(self) -> None:
        for w in list(self._retiring):
            if not w.proc.is_alive():
                w.proc.join()
                w.conn.close()
                self._retiring.remove(w)

    def pids(self) -> list[int]:
        """Process ids of the current workers that are ready (for memory measurements and tests)."""
        return [w.pid for w in self._procs if w.ready and w.pid is not None]

    def close(self) -> None:
        procs, self._procs = self._procs + self._retiring, []
        self._retiring = []
        for w in procs:
            try:
                w.conn.send(None)
            except OSError:
                pass
        end = time.monotonic() + CLOSE_GRACE
        for w in procs:
            w.proc.join(timeout=max(0.0, end - time.monotonic()))
            if w.proc.is_alive():
                w.proc.kill()
                w.proc.join()
            w.conn.close()

    # -- one batch -------------------------------------------------------------------------------------
    def run(self, items: Iterable[tuple[int, np.ndarray]], on_done: OnDone | None = None) -> dict[int, Outcome]:
        """Simulate every ``(tid, x)``; returns ``{tid: outcome}``, each also passed to ``on_done(tid, outcome)``
        as it completes. Kills busy workers if interrupted."""
        pending = deque(_Task(tid, x) for tid, x in items)
        done: dict[int, Outcome] = _Done(on_done)
        n = len(pending)
        self._fill()
        try:
            while len(done) < n:
                self._dispatch(pending)
                self._step(pending, done)
        except BaseException:
            # Ctrl-C or an error raised from a worker: stop what is in flight; idle workers stay.
            for w in [w for w in self._procs if w.task is not None]:
                self._procs.remove(w)
                w.proc.kill()
                w.proc.join()
                w.conn.close()
            raise
        self._reap()
        return done

    def _dispatch(self, pending: deque[_Task]) -> None:
        for w in list(self._procs):
            if not pending:
                return
            if w.ready and w.task is None:
                t = pending.popleft()
                try:
                    w.conn.send((t.tid, t.x))
                except OSError:                           # died while idle: the task never started
                    pending.appendleft(t)
                    self._on_death(w, pending, {})
                    continue
                w.task, w.deadline = t, time.monotonic() + self.timeout

    def _step(self, pending: deque[_Task], done: dict[int, Outcome]) -> None:
        now = time.monotonic()
        busy = [w for w in self._procs if w.task is not None]
        starting = [w for w in self._procs if not w.ready]
        limits = [w.deadline for w in busy] + [w.born + STARTUP_TIMEOUT for w in starting]
        wait_s = max(0.0, min(limits) - now) if limits else None
        objs: dict[Any, _Proc] = {}
        for w in self._procs:
            objs[w.conn] = w
            objs[w.proc.sentinel] = w
        for obj in wait(list(objs), wait_s):
            w = objs[obj]
            # Read what a worker sent before it exited (its last result), then notice the exit.
            while w in self._procs and w.conn.poll():
                self._receive(w, pending, done)
            if w in self._procs and obj is w.proc.sentinel:
                self._on_death(w, pending, done)
        now = time.monotonic()
        for w in list(self._procs):
            if w.task is not None and now >= w.deadline:
                self._on_timeout(w, done)
            elif not w.ready and now >= w.born + STARTUP_TIMEOUT:
                self._procs.remove(w)
                w.proc.kill()
                raise WorkerCrash(f"a worker process did not start within {STARTUP_TIMEOUT:g} s")

    def _receive(self, w: _Proc, pending: deque[_Task], done: dict[int, Outcome]) -> None:
        try:
            msg = w.conn.recv()
        except (EOFError, OSError):
            self._on_death(w, pending, done)
            return
        kind = msg[0]
        if kind == "ready":
            w.ready, w.pid = True, msg[1]
            self._startup_failures = 0
        elif kind == "fatal":
            self._drop_quietly(w)
            raise InputError(f"the problem could not be loaded in a worker process (define its class and "
                             f"functions in an importable module, or use workers=0):\n{msg[1]}")
        elif kind in ("done", "raised"):
            t, w.task, w.deadline = w.task, None, math.inf
            w.nsims += 1
            restart = msg[-1]
            if kind == "raised":
                self._drop_quietly(w)
                _raise_remote(msg[2], msg[3])
            done[t.tid] = msg[2]
            if restart:
                self.stats["restarts"] += 1
                self._retire(w)
            elif w.nsims >= self.recycle_after:
                self.stats["recycled"] += 1
                self._retire(w)

    def _drop_quietly(self, w: _Proc) -> None:
        if w in self._procs:
            self._procs.remove(w)
        w.proc.kill()
        w.proc.join()
        w.conn.close()

    def _on_death(self, w: _Proc, pending: deque[_Task], done: dict[int, Outcome]) -> None:
        w.proc.join(timeout=CLOSE_GRACE)
        reason = _exit_reason(w.proc.exitcode)
        if not w.ready:
            self._startup_failures += 1
            if self._startup_failures >= MAX_STARTUP_FAILURES:
                self._drop_quietly(w)
                raise WorkerCrash(f"worker processes die at start-up ({reason}, {self._startup_failures} in a row)")
        t = w.task
        if t is not None:
            self.stats["crashed"] += 1
            t.attempt += 1
            log.warning("worker %s died while simulating (%s); attempt %d", w.pid, reason, t.attempt)
            if t.attempt > self.retries:
                done[t.tid] = _outcome(Status.CRASHED, f"worker process died ({reason}), "
                                                       f"{t.attempt} attempt(s)")
            else:
                pending.appendleft(t)
        self._drop(w, kill=False)

    def _on_timeout(self, w: _Proc, done: dict[int, Outcome]) -> None:
        t = w.task
        self.stats["timeouts"] += 1
        log.warning("simulation timed out after %g s: killing worker %s", self.timeout, w.pid)
        done[t.tid] = _outcome(Status.TIMEOUT, f"no result after {self.timeout:g} s; worker killed",
                               seconds=self.timeout)
        self._drop(w, kill=True)


# -- Dask -----------------------------------------------------------------------------------------------
# State of a Dask worker process: the problems shipped by the ProblemPlugin, unpickled on first use, and one
# daemon simulation thread (one thread drives libngspice; a hung simulation can be timed out without blocking
# the worker's shutdown when its nanny restarts it).
_DASK_BLOBS: dict[str, bytes] = {}
_DASK_PROBLEMS: dict[str, Problem] = {}
_DASK_LOCK = threading.Lock()
_DASK_STATE: dict[str, Any] = {"thread": None, "poisoned": False}


class _SimThread(threading.Thread):
    """A daemon thread that runs ``_simulate_caught`` jobs one at a time."""

    def __init__(self) -> None:
        super().__init__(name="zoaf-sim", daemon=True)
        self.jobs: queue.SimpleQueue = queue.SimpleQueue()
        self.start()

    def run(self) -> None:
        while True:
            problem, x, box, event = self.jobs.get()
            box.append(_simulate_caught(problem, x))
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
    p = _DASK_PROBLEMS.pop(token, None)
    if p is not None:
        try:
            p.close()
        except Exception:                                 # pragma: no cover
            pass


def _dask_simulate(token: str, x: np.ndarray, timeout: float) -> tuple:
    """One simulation on a Dask worker. Returns a reply tuple ending with the worker's address."""
    from distributed import get_worker
    addr = get_worker().address
    with _DASK_LOCK:                                      # several worker threads: still one sim per process
        if _DASK_STATE["poisoned"]:                       # a hung or broken simulation holds this process
            return ("lost", addr)
        problem = _dask_problem(token)
        if _DASK_STATE["thread"] is None:
            _DASK_STATE["thread"] = _SimThread()
        reply = _DASK_STATE["thread"].simulate(problem, x, timeout)
        if reply is None:
            _DASK_STATE["poisoned"] = True
            return ("timeout", addr)
        if reply[-1]:
            _DASK_STATE["poisoned"] = True
        return (*reply, addr)


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
    # import distributed, yet picklable by reference as zoaf.workers.ProblemPlugin.
    if name == "ProblemPlugin":
        cls = globals()["ProblemPlugin"] = _make_plugin_class()
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class DaskPool:
    """Simulations as Dask tasks: one problem per worker process (via a plugin), timeouts, one retry.

    ``dask``: ``"local"`` starts a ``LocalCluster`` of ``n`` single-threaded worker processes on 127.0.0.1
    (closed with the pool); a scheduler address connects a new ``Client`` (closed, the cluster is not); a
    ``distributed.Client`` is used as given (nothing closed). Workers need ``zoaf`` importable; use one
    thread per worker (several threads share one process and so simulate one after another).
    """

    def __init__(self, blob: bytes, dask: Any, n: int, *, timeout: float, retries: int = 1) -> None:
        import dask as dask_mod
        import distributed
        self.timeout = timeout
        self.retries = retries
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
            self.client = distributed.Client(cluster)
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
        self.stats = dict.fromkeys(("crashed", "timeouts", "restarts", "lost"), 0)

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

        pending = deque(_Task(tid, x) for tid, x in items)
        n = len(pending)
        done: dict[int, Outcome] = _Done(on_done)
        meta: dict[Any, _Task] = {}
        ac = as_completed(with_results=True, raise_errors=False)   # results gathered in bulk
        # As many tasks in flight as worker threads: when a worker dies, the scheduler blames every task it
        # holds, so no task may wait on a worker behind another one.
        window = [self._window()]

        def submit() -> None:
            if window[0] < self.n:                        # a worker is being replaced: look again
                window[0] = self._window()
            while pending and len(meta) < window[0]:
                t = pending.popleft()
                fut = self.client.submit(_dask_simulate, self.token, t.x, self.timeout, pure=False,
                                         key=f"zoaf-sim-{uuid.uuid4().hex}")
                meta[fut] = t
                ac.add(fut)

        try:
            submit()
            while len(done) < n:
                fut, reply = next(ac)
                t = meta.pop(fut)
                if fut.status == "error":                 # reply is then a (type, exception, traceback)
                    reply = fut.exception()
                if self._handle(reply, t, pending, done, KilledWorker):
                    window[0] = self._window()
                submit()
        except BaseException:
            self.client.cancel(list(meta))
            raise
        return done

    def _window(self) -> int:
        return max(1, sum(self.client.nthreads().values())) * DASK_PREFETCH

    def _handle(self, reply: Any, t: _Task, pending: deque[_Task], done: dict[int, Outcome], killed: type) -> bool:
        """Record one finished task; True when a worker was lost or restarted."""
        if isinstance(reply, BaseException) and not isinstance(reply, killed):
            raise reply
        if isinstance(reply, killed):
            self.stats["crashed"] += 1
            t.attempt += 1
            if t.attempt > self.retries:
                done[t.tid] = _outcome(Status.CRASHED, f"dask worker died, {t.attempt} attempt(s)")
            else:
                pending.appendleft(t)
            return True
        kind, addr = reply[0], reply[-1]
        if kind == "lost":                                # never ran: its worker awaits replacement
            self.stats["lost"] += 1
            pending.appendleft(t)
            self._restart(addr)
            return True
        elif kind == "timeout":
            self.stats["timeouts"] += 1
            done[t.tid] = _outcome(Status.TIMEOUT, f"no result after {self.timeout:g} s; worker restarted",
                                   seconds=self.timeout)
            self._restart(addr)
            return True
        elif kind == "raised":
            if reply[3]:
                self._restart(addr)
            _raise_remote(reply[1], reply[2])
        done[t.tid] = reply[1]
        if reply[2]:
            self._restart(addr)
            return True
        return False

    def _restart(self, addr: str) -> None:
        """Have the nanny replace the worker at ``addr`` (once: a restarted worker gets a new address)."""
        if addr in self._restarted:
            return
        self._restarted.add(addr)
        self.stats["restarts"] += 1
        try:
            self.client.restart_workers([addr], raise_for_error=False)
        except Exception as e:                            # pragma: no cover - e.g. a worker without nanny
            log.warning("could not restart dask worker %s: %s", addr, e)

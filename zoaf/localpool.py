"""The local pool: ``n`` spawned worker processes on this machine, one simulation at a time each.

The protocol, and the crash/retry/timeout accounting it shares with Dask, are :mod:`zoaf.workers`'. A worker is
recycled after ``recycle_after`` simulations (``zoaf.evaluate.DEFAULT_RECYCLE_AFTER``): the soak in
``benchmarks/throughput.py --soak`` measured ~6-10 kB of RSS growth per simulation on two_stage_amp
(BENCHMARKS.md, section 2).

Each worker holds up to :data:`PREFETCH` tasks: the next one waits in its pipe, so that it does not idle while a
loaded parent takes its turn to send it. The worker runs them in order, so the first task it holds is the one
running: a death or a timeout is that task's, and the tasks behind it go back to the queue uncharged. Prefetch
fills idle workers first, and a worker due for recycling gets no task beyond its last.

Affinity: when the problem names what a simulation needs loaded (``Problem.affinity``, e.g. the PDK process
corner of a sign-off simulation), a free worker takes the first pending task with its last task's key, else one
whose key no other worker holds, else the first pending task: no worker waits while a task is pending, and
results do not depend on which worker ran what.
"""
from __future__ import annotations

import logging
import math
import multiprocessing as mp
import os
import pickle
import signal
import socket
import time
import traceback
from collections import deque
from multiprocessing.connection import Connection, wait
from typing import Any, Hashable, Iterable

import numpy as np

from . import proctree, relay, sandbox, watchdog
from .errors import InputError, WorkerCrash
from .problem import Outcome
from .replies import BAD_REPLY, BadAnswer, load_reply, pool_reply, receive
from .workers import (FRESH, Affinity, OnDone, Pool, Task, loads, prepare_caught, raise_remote, safe_path,
                      sigint_ignored, simulate_caught, time_limit)

log = logging.getLogger(__name__)

#: A worker that has not unpickled its problem after this long is considered hung at start-up.
STARTUP_TIMEOUT = 120.0
#: Workers that die before they are ready, in a row, before the pool gives up (a broken problem/import).
MAX_STARTUP_FAILURES = 3
#: Seconds ``close()`` waits for workers to finish ``problem.close()`` before killing them.
CLOSE_GRACE = 5.0
#: Tasks one worker holds at most (the running one and those waiting behind it).
PREFETCH = 2


def _exit_reason(exitcode: int | None) -> str:
    if exitcode is None:
        return "no exit code"
    if exitcode < 0:
        try:
            return f"killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"killed by signal {-exitcode}"
    return f"exit code {exitcode}"


def _join(proc: Any, seconds: float) -> bool:
    """Wait up to ``seconds`` for worker ``proc`` to end (reaped); whether it did. Not ``Process.join(timeout)``:
    that waits on the worker's sentinel pipe, then blocks in ``waitpid`` until the worker ends, and the deck can
    write into that pipe (``/proc/self/fd``: Landlock does not govern pipes), which hung zoaf for good on a worker
    alive and waiting for its next task."""
    end = time.monotonic() + seconds
    while proc.exitcode is None:                         # a waitpid that does not block
        if time.monotonic() >= end:
            return False
        time.sleep(0.01)
    return True


def _worker_main(conn: Connection, blob: bytes, stderr: socket.socket) -> None:
    """Body of one worker process: unpickle the problem once, then simulate until told to stop."""
    relay.take_stderr(stderr)                             # zoaf's own stderr no longer: the parent relays this one
    signal.signal(signal.SIGINT, signal.SIG_IGN)          # Ctrl-C reaches the whole group: the parent decides
    sandbox.designate()                                   # a problem may lock this process down to simulate
    try:
        problem = pickle.loads(blob)
    except BaseException:
        conn.send(("fatal", traceback.format_exc()))
        return
    conn.send(("ready", os.getpid()))
    held: Hashable = FRESH                                # the affinity key of what this process has loaded
    try:
        while True:
            try:
                msg = conn.recv()
            except (EOFError, OSError):                   # the parent went away
                break
            if msg is None:
                break
            tid, x = msg
            key = problem.affinity(x) if problem.affinity is not None else None
            if loads(key, held):                          # the load timed apart: the parent's deadline restarts
                prepare_caught(problem, x)
                conn.send(("loaded", tid, time.monotonic()))
                held = key
            reply = simulate_caught(problem, x)
            conn.send((reply[0], tid, time.monotonic(), *reply[1:]))   # when the next task it holds starts
            if reply[-1]:                                 # restart requested: exit, the parent replaces us
                break
    finally:
        try:
            problem.close()
        except Exception:                                 # pragma: no cover - best effort on the way out
            pass


class _Proc:
    """The parent's handle on one worker process: the tasks it holds, in the order it runs them."""

    def __init__(self, ctx: Any, blob: bytes, name: str) -> None:
        self.conn, child = ctx.Pipe(duplex=True)
        err, its_err = relay.socket_pair()
        self.proc = ctx.Process(target=_worker_main, args=(child, blob, its_err), name=name, daemon=True)
        with sigint_ignored(), safe_path():
            self.proc.start()
        child.close()
        its_err.close()
        self.stderr = relay.watch(err, f"worker {self.proc.pid}")
        self.born = time.monotonic()
        self.ready = False
        self.pid: int | None = None
        self.tasks: deque[Task] = deque()
        self.deadline = math.inf                          # of the first task it holds (the one running)
        self.loading = False                              # that task's process is loading what it needs first
        self.nsims = 0
        self.key: Hashable = FRESH                        # affinity key of its last task (FRESH: none yet)

    def closed(self) -> None:
        """Its process ended (reaped): close the pipe to it, relay the rest of its stderr."""
        self.conn.close()
        self.stderr.finish()


class LocalPool(Pool):
    """``n`` worker processes (spawn start method) fed tasks over a pipe each."""

    def __init__(self, blob: bytes, n: int, *, timeout: float, recycle_after: int, retries: int = 1,
                 affinity: Affinity | None = None, constraints: int = 0) -> None:
        super().__init__(timeout=timeout, retries=retries, counters=("spawned", "restarts", "recycled", "switches"),
                         affinity=affinity)
        self._blob = blob
        self.constraints = constraints                    # the problem's count: a reply's outcome is checked by it
        self.n = n
        self.recycle_after = recycle_after
        self._ctx = mp.get_context("spawn")
        self._procs: list[_Proc] = []
        self._retiring: list[_Proc] = []
        self._startup_failures = 0
        self._count = 0

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
        alive = w.proc.is_alive() if kill else not _join(w.proc, CLOSE_GRACE)   # "dead": its sentinel written to
        if alive:
            proctree.kill_tree(w.proc.pid)
            _join(w.proc, CLOSE_GRACE)
        w.closed()
        sandbox.remove_private_dirs(w.proc.pid)
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
                w.closed()
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
            if not _join(w.proc, max(0.0, end - time.monotonic())):
                proctree.kill_tree(w.proc.pid)
                w.proc.join()
            w.closed()
            sandbox.remove_private_dirs(w.proc.pid)

    # -- one batch -------------------------------------------------------------------------------------
    def run(self, items: Iterable[tuple[int, np.ndarray]], on_done: OnDone | None = None) -> dict[int, Outcome]:
        """Simulate every ``(tid, x)``; returns ``{tid: outcome}``, each also passed to ``on_done(tid, outcome)``
        as it completes. Kills busy workers if interrupted."""
        pending, done = self._batch(items, on_done)
        n = len(pending)
        self._fill()
        try:
            while len(done) < n:
                self._dispatch(pending, done)
                self._step(pending, done)
        except BaseException:
            # Ctrl-C or an error raised from a worker: stop what is in flight; idle workers stay. A killed worker
            # removes nothing itself: its private directory (the deck's copy, what it wrote) stayed in /tmp.
            for w in [w for w in self._procs if w.tasks]:
                self._procs.remove(w)
                proctree.kill_tree(w.proc.pid)
                w.proc.join()
                w.closed()
                sandbox.remove_private_dirs(w.proc.pid)
            raise
        self._reap()
        return done

    def _dispatch(self, pending: deque[Task], done: dict[int, Outcome]) -> None:
        """Give ready workers tasks: one to each idle worker first, then one more to wait behind it."""
        for depth in range(PREFETCH):
            for w in list(self._procs):
                if not pending:
                    return
                if w in self._procs and w.ready and len(w.tasks) == depth and \
                        w.nsims + depth < self.recycle_after:
                    self._send(w, self._pick(w, pending), pending, done)

    def _send(self, w: _Proc, t: Task, pending: deque[Task], done: dict[int, Outcome]) -> None:
        try:
            w.conn.send((t.tid, t.x))
        except OSError:                                   # gone: this task never started
            pending.appendleft(t)
            # What it sent before is read first: a worker that asked for a new process (needs_new_process) replied,
            # then exited, and its running task was charged as a death and run again ("exit code 0").
            while w in self._procs and w.conn.poll():
                self._receive(w, pending, done)
            if w in self._procs:
                self._on_death(w, pending, done)
            return
        if not w.tasks:
            w.deadline = time.monotonic() + time_limit(self.timeout, t.key, w.key)
            w.loading = loads(t.key, w.key)
        w.tasks.append(t)
        if t.key != w.key:
            self.stats["switches"] += w.key is not FRESH
            w.key = t.key

    def _pick(self, w: _Proc, pending: deque[Task]) -> Task:
        """The task for free worker ``w``: the first with its key, else the first of a key no other worker
        holds, else the first (see the module docstring)."""
        if self.affinity is not None:
            held = {o.key for o in self._procs if o is not w}
            for want in (lambda t: t.key == w.key, lambda t: t.key not in held):
                found = next((i for i, t in enumerate(pending) if want(t)), None)
                if found is not None:
                    t = pending[found]
                    del pending[found]
                    return t
        return pending.popleft()

    def _step(self, pending: deque[Task], done: dict[int, Outcome]) -> None:
        now = time.monotonic()
        busy = [w for w in self._procs if w.tasks]
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
            # A reply there to read is no timeout: the loop may have been held past this deadline (another
            # worker's reply cut short, read for up to REPLY_WAIT s) while this one's result waited unread.
            while w in self._procs and w.tasks and now >= w.deadline and w.conn.poll():
                self._receive(w, pending, done)
            if w not in self._procs:
                continue
            if w.tasks and now >= w.deadline:
                self._on_timeout(w, pending, done)
            elif not w.ready and now >= w.born + STARTUP_TIMEOUT:
                self._procs.remove(w)
                proctree.kill_tree(w.proc.pid)
                raise WorkerCrash(f"a worker process did not start within {STARTUP_TIMEOUT:g} s")

    def _receive(self, w: _Proc, pending: deque[Task], done: dict[int, Outcome]) -> None:
        running = w.tasks[0].tid if w.tasks else None
        try:
            msg = pool_reply(load_reply(receive(w.conn)), running, ready=w.ready,  # untrusted
                             constraints=self.constraints)
        except (EOFError, OSError):
            self._on_death(w, pending, done)
            return
        except BAD_REPLY as e:
            log.warning("worker %s sent back something that is not a result (%s): killed", w.pid, e)
            proctree.kill_tree(w.proc.pid)
            self._on_death(w, pending, done, refused=f"worker process sent back something that is not a result "
                                                     f"({e}); killed" if isinstance(e, BadAnswer) else None)
            return
        kind = msg[0]
        # a time the worker sends is no later than now (a forged one in the future, or NaN, would push a deadline away)
        now = time.monotonic()
        sent = msg[2] if kind in ("loaded", "done", "raised") and msg[2] <= now else now
        if kind == "loaded":                              # its simulation's timeout starts now, once per task
            if w.loading:
                w.deadline, w.loading = sent + self.timeout, False
        elif kind == "ready":
            w.ready, w.pid = True, msg[1]
            self._startup_failures = 0
        elif kind == "fatal":
            self._drop_quietly(w)
            raise InputError(f"the problem could not be loaded in a worker process (define its class and "
                             f"functions in an importable module, or use workers=0):\n{msg[1]}")
        elif kind in ("done", "raised"):
            w.stderr.next_simulation()                    # what it wrote while simulating, before its result
            t = w.tasks.popleft()
            w.deadline = sent + time_limit(self.timeout, w.tasks[0].key, t.key) if w.tasks else math.inf
            w.loading = bool(w.tasks) and loads(w.tasks[0].key, t.key)
            w.nsims += 1
            restart = msg[-1]
            if kind == "raised":
                self._drop_quietly(w)
                raise_remote(msg[3], msg[4])
            done[t.tid] = msg[3]
            if restart:                                   # it exits without reading what waits behind
                self.stats["restarts"] += 1
                self._give_back(w, pending)
                self._retire(w)
            elif w.nsims >= self.recycle_after:
                self.stats["recycled"] += 1
                self._retire(w)

    def _drop_quietly(self, w: _Proc) -> None:
        if w in self._procs:
            self._procs.remove(w)
        proctree.kill_tree(w.proc.pid)
        w.proc.join()
        w.closed()
        sandbox.remove_private_dirs(w.proc.pid)

    def _on_death(self, w: _Proc, pending: deque[Task], done: dict[int, Outcome], refused: str | None = None) -> None:
        """``w`` died, or was killed for an answer zoaf ``refused`` (:class:`~zoaf.replies.BadAnswer`): its running
        task is charged (not retried where it went over a limit or answered so: the same deck would again), those
        behind go back."""
        _join(w.proc, CLOSE_GRACE)
        reason = _exit_reason(w.proc.exitcode)
        if not w.ready:
            self._startup_failures += 1
            if self._startup_failures >= MAX_STARTUP_FAILURES:
                self._drop_quietly(w)
                raise WorkerCrash(f"worker processes die at start-up ({reason}, {self._startup_failures} in a row)")
        if w.tasks:
            t = w.tasks.popleft()
            self._give_back(w, pending)
            log.warning("worker %s died while simulating (%s); attempt %d", w.pid, reason, t.attempt + 1)
            over = refused or watchdog.reason(w.proc.exitcode)
            self._crashed(t, over or f"worker process died ({reason})", pending, done, retry=over is None)
        self._drop(w, kill=w.proc.exitcode is None)      # alive past the grace above: killed, not waited on again

    def _on_timeout(self, w: _Proc, pending: deque[Task], done: dict[int, Outcome]) -> None:
        log.warning("simulation timed out after %g s%s: killing worker %s", self.timeout,
                    " (and its deck's load grace)" if w.loading else "", w.pid)
        self._timed_out(w.tasks.popleft(), done, "worker killed", loading=w.loading)
        self._give_back(w, pending)
        self._drop(w, kill=True)

    @staticmethod
    def _give_back(w: _Proc, pending: deque[Task]) -> None:
        """The tasks waiting behind ``w``'s running one never started: to the front of the queue, uncharged."""
        pending.extendleft(reversed(w.tasks))
        w.tasks.clear()

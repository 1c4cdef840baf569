"""The Dask pool: simulations as tasks on the workers of a Dask cluster, one problem per worker process.

The protocol, and the crash/retry/timeout accounting it shares with the local pool, are :mod:`zoaf.workers`';
the worker side is :mod:`zoaf.daskworker`. Dask is imported only when a pool is made: importing zoaf does not
import distributed.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import logging
import os
import pickle
import queue
import shutil
import sys
import tempfile
import uuid
from collections import deque
from typing import Any, Iterable

import numpy as np

from . import daskwatch, daskworker, relay, replies
from .errors import InputError
from .problem import Outcome
from .workers import OnDone, Pool, Task, raise_remote, safe_path

log = logging.getLogger(__name__)

#: Dask tasks in flight per worker thread where a batch does not fit in one task per thread: the next task waits
#: on the worker, which hides Dask's per-task round trip. The scheduler blames every task a dead worker held, and a
#: task may carry several simulations, so the simulations of a killed task are not charged unless it was one
#: simulation alone in flight: they become suspects, and while suspects remain the pool sends one simulation per
#: task, one task at a time (:class:`_Window`): a death then names its simulation exactly, which alone spends a
#: retry.
DASK_PREFETCH = 2
#: Simulations per Dask task at most: Dask's own work per task (scheduler, worker, messages, and each batch's round
#: trip through the scheduler) is milliseconds (BENCHMARKS.md §2b), so a task carries several simulations, and a
#: batch of up to 16 per worker thread goes as one task per thread. More per task would only add suspects where a
#: worker dies.
DASK_CHUNK = 16
#: Seconds to wait for an existing Dask scheduler before saying it cannot be reached.
DASK_CONNECT_TIMEOUT = 10

#: Dask settings that leave a ``--dask local`` scheduler and its workers without any HTTP route.
_NO_HTTP = {"distributed.scheduler.http.routes": [], "distributed.worker.http.routes": []}


def _forget_scratch(scratch: str) -> None:
    """Remove ``scratch`` and its folders from this process's ``sys.path`` (Dask leaves them there unless
    first): a folder of that name made later, by anyone, would be imported from."""
    sys.path[:] = [p for p in sys.path if p != scratch and not p.startswith(scratch + "/")]
    shutil.rmtree(scratch, ignore_errors=True)


def _handshake(address: str) -> None:
    """Refuse an address where no Dask scheduler answers within :data:`DASK_CONNECT_TIMEOUT`: ``distributed`` bounds
    the TCP connect only, then waits for the peer's handshake without limit (a listener that never speaks, an HTTP
    server: ``zoaf optimize`` hung) and reads any reply's first 8 bytes as a frame length (exabytes: a MemoryError
    traceback). In a thread of its own: the caller may be running an event loop (a notebook)."""
    import distributed

    async def shake() -> None:
        args = distributed.security.Security().get_connection_args("client")
        comm = await distributed.comm.connect(address, timeout=DASK_CONNECT_TIMEOUT, **args)
        await comm.close()

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        try:
            pool.submit(asyncio.run, asyncio.wait_for(shake(), DASK_CONNECT_TIMEOUT)).result()
        except asyncio.TimeoutError:
            raise TimeoutError(f"no Dask scheduler answered within {DASK_CONNECT_TIMEOUT} s") from None


class _Window:
    """How many tasks may be in flight and how many simulations each carries: ``DASK_PREFETCH`` per worker
    thread of up to ``DASK_CHUNK``, or one task of one simulation at a time while a simulation killed beside
    others (a suspect) is unresolved; and which futures were sent in that exact mode, where the task in flight
    has a worker to itself (so a worker's death names its simulation). One at a time, not one per worker: the
    client learns that a task ended (its event) before the scheduler does, so the scheduler could still place two
    tasks sent together on one worker."""

    def __init__(self, threads: int) -> None:
        self.threads = threads
        self.suspects: set[int] = set()
        self._exact: set[Any] = set()

    def chunk(self, pending: int, in_flight: int) -> int:
        """Simulations in the next Dask task: one while suspects remain; else, where one task per idle worker
        thread holds them all (``DASK_CHUNK`` at most each), that; else the pending ones shared evenly over the
        free slots. A batch so needs no round trip after its first tasks, and few tasks (each task costs Dask's
        work and, on a worker holding two, a gap between them)."""
        if self.suspects:
            return 1
        idle = self.threads - in_flight
        if idle > 0 and -(-pending // idle) <= DASK_CHUNK:
            return -(-pending // idle)
        free = max(1, self.threads * DASK_PREFETCH - in_flight)
        return min(DASK_CHUNK, -(-pending // free))

    def room(self, in_flight: int, queued: int) -> bool:
        """Whether one more task may go, with ``in_flight`` tasks in flight and ``queued`` about to be sent."""
        if not self.suspects:
            return in_flight + queued < self.threads * DASK_PREFETCH
        # exact mode: what was sent with prefetch finishes first, then one task at a time
        return in_flight + queued == 0

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

    ``dask``: ``"local"`` starts a ``LocalCluster`` of ``n`` single-threaded worker processes on 127.0.0.1, mutual
    TLS (closed with the pool; a result not seen as its task's event is gathered straight from its worker); a scheduler
    address connects a new ``Client`` (closed, the cluster is not); a ``distributed.Client`` is used as given
    (nothing closed). Workers need ``zoaf`` importable; use one thread per worker (several threads share one
    process and so simulate one after another).
    """

    def __init__(self, blob: bytes, dask: Any, n: int, *, timeout: float, retries: int = 1,
                 constraints: int = 0) -> None:
        import distributed
        super().__init__(timeout=timeout, retries=retries, counters=("restarts", "lost", "suspects"))
        self.constraints = constraints                    # the problem's count: a reply's outcome is checked by it
        self._own: list[Any] = []
        self._scratch: str | None = None
        self._stderr: relay.Listener | None = None
        self._stderr_path: str | None = None
        if isinstance(dask, distributed.Client):
            self.client = dask
        elif dask == "local":
            self._start_local(n)
        elif isinstance(dask, str):
            try:
                _handshake(dask)
                self.client = distributed.Client(dask, timeout=DASK_CONNECT_TIMEOUT)
            except (OSError, TimeoutError, ValueError, MemoryError) as e:
                raise InputError(f"--dask {dask}: cannot reach a Dask scheduler there ({type(e).__name__}: "
                                 f"{' '.join(str(e).split())[:200]})") from None
            self._own.append(self.client)
        else:
            raise InputError(f"dask must be 'local', a scheduler address or a distributed.Client, got {dask!r}")
        self.token = "zoaf-problem-" + hashlib.sha1(blob).hexdigest()[:16] + "-" + uuid.uuid4().hex[:8]
        self._inbox: queue.SimpleQueue = queue.SimpleQueue()   # (what, task key, payload): see _replies
        self.client.subscribe_topic(self.token, self._on_event)
        self.client.register_plugin(daskworker.ProblemPlugin(self.token, blob, self._stderr_path), name=self.token)
        self.n = n
        self._restarted: set[str] = set()
        self._nthreads: int | None = None
        self._held: list[Any] = []                        # the last batch's futures (see run)
        self._due: list[str] = []                         # addresses of workers to restart
        self._silences = daskwatch.Silences()             # when the scheduler last heard from each worker

    def _start_local(self, n: int) -> None:
        """A LocalCluster of ``n`` workers on this machine, its client, and the socket its workers' stderr comes to."""
        import dask as dask_mod
        import distributed
        # Mutual TLS with a throwaway authority: on 127.0.0.1 without it any user of the machine could connect
        # to the scheduler or a worker and run code as you (Dask's transport is pickle).
        security = distributed.security.Security.temporary()
        # Scratch files in a folder of zoaf's own (only this user may enter it). Dask's default,
        # `dask-scratch-space` in the temporary folder, is reused when there and writable, whoever made it, and
        # put first on sys.path, zoaf's (the nanny and scheduler run here) and each worker's: another user's
        # /tmp/dask-scratch-space/pyseccomp.py ran, as you, in each worker before its lock-down.
        self._scratch = tempfile.mkdtemp(prefix="zoaf-dask-")
        # The scheduler must not re-run a task that killed its worker: we retry it ourselves, once. No HTTP
        # route: without a dashboard the scheduler still served its info pages and metrics on 127.0.0.1:8787
        # (and each worker its own), plain HTTP without login, to any user of the machine. Its listener (no
        # route) on a port of its own: 8787 held by another cluster was a 4-line UserWarning under --quiet.
        settings = {"distributed.scheduler.allowed-failures": 0, "temporary-directory": self._scratch, **_NO_HTTP}
        try:
            with dask_mod.config.set(settings), safe_path():
                cluster = distributed.LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                                   host="127.0.0.1", dashboard_address=":0",
                                                   silence_logs=logging.ERROR, security=security)
        except BaseException:
            _forget_scratch(self._scratch)
            raise
        self._own.append(cluster)
        self.client = distributed.Client(cluster, direct_to_workers=True, security=security)
        # the scheduler batches its messages to a client (one send per 2 ms at most): a task's event would
        # wait behind the key-in-memory of the task before it (BENCHMARKS.md §2b)
        cluster.scheduler.client_comms[self.client.id].interval = 0
        self._own.insert(0, self.client)
        self._listen(os.path.join(self._scratch, "stderr.sock"))
    def _listen(self, path: str) -> None:
        """Relay the stderr of the workers of the cluster zoaf started (:mod:`zoaf.relay`): theirs was zoaf's own,
        which a deck read and wrote through ``/proc/self/fd/2``. At ``path``, in the scratch folder, which only this
        user may enter; where no socket can be made there, nothing listens and each worker's stderr is /dev/null."""
        self._stderr_path = path
        try:
            self._stderr = relay.Listener(path)
        except OSError as e:                              # a path too long for a Unix socket (a long TMPDIR)
            log.warning("the Dask workers' stderr is dropped: no socket at %s (%s)", path, e)

    def close(self) -> None:
        try:
            self.client.unsubscribe_topic(self.token)
            self.client.unregister_worker_plugin(self.token)
        except Exception:                                 # pragma: no cover - cluster already gone
            pass
        for obj in self._own:
            try:
                obj.close()
            except Exception:                             # pragma: no cover
                pass
        self._own = []
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None
        if self._scratch is not None:
            _forget_scratch(self._scratch)
            self._scratch = None

    def run(self, items: Iterable[tuple[int, np.ndarray]], on_done: OnDone | None = None) -> dict[int, Outcome]:
        from distributed.scheduler import KilledWorker

        pending, done = self._batch(items, on_done)
        n = len(pending)
        flying: dict[str, tuple[Any, list[Task]]] = {}    # task key -> its future and its simulations
        window = _Window(self._threads())
        finished: list[Any] = []                          # futures whose results were recorded

        def submit() -> None:
            if window.threads < self.n:                   # a worker is being replaced: look again
                window.threads = self._threads(fresh=True)
            chunks: list[list[Task]] = []
            while pending and window.room(len(flying), len(chunks)):
                k = window.chunk(len(pending), len(flying) + len(chunks))
                chunks.append([pending.popleft() for _ in range(min(k, len(pending)))])
            if not chunks:
                return
            # one graph for all: the scheduler handles one message for a batch's first tasks, not one per task
            futs = self.client.map(daskworker.simulate_chunk, [self.token] * len(chunks),
                                   [[t.x for t in c] for c in chunks], [self.timeout] * len(chunks), pure=False,
                                   key=[f"zoaf-sim-{uuid.uuid4().hex}" for _ in chunks])
            for fut, chunk in zip(futs, chunks):
                flying[fut.key] = fut, chunk
                window.sent(fut)
                fut.add_done_callback(self._on_future)
            _release(self._held)                          # the previous batch's futures, now after these

        try:
            submit()
            while len(done) < n:
                lost = False
                for key, reply in self._replies(flying):  # the next to finish, and any others already back
                    fut, chunk = flying.pop(key)
                    finished.append(fut)
                    lost |= self._task_done(fut, reply, chunk, window, pending, done, KilledWorker)
                if lost:
                    self._restart_due(finished)
                    window.threads = self._threads(fresh=True)
                submit()
        except BaseException:
            self.client.cancel([fut for fut, _ in flying.values()])
            self._restart_due(finished)
            raise
        # A release is a message to the scheduler, and the client sends at most one every 10 ms: the batch's futures
        # are released after the next batch's tasks are sent (or before a restart), so as not to hold those back.
        self._held = finished
        return done

    def _task_done(self, fut: Any, reply: Any, chunk: list[Task], window: "_Window", pending: deque[Task],
                   done: dict[int, Outcome], killed: type) -> bool:
        """Record a finished Dask task; True when a worker was lost or is due for a restart."""
        lost = self._chunk_done(reply, chunk, window.alone(fut), window, pending, done, killed)
        window.forget(fut)
        window.suspects -= {t.tid for t in chunk if t.tid in done}
        return lost

    def _chunk_done(self, reply: Any, chunk: list[Task], alone: bool, window: "_Window", pending: deque[Task],
                    done: dict[int, Outcome], killed: type) -> bool:
        """Record a finished Dask task's simulations; True when a worker was lost or restarted."""
        if isinstance(reply, daskwatch.Frozen):
            self._kill_frozen(reply.addr)
        if isinstance(reply, (killed, daskwatch.Frozen)) and not (alone and len(chunk) == 1):
            for t in reversed(chunk):                     # killed beside others: not charged, each run alone
                self.stats["suspects"] += 1
                window.suspects.add(t.tid)
                pending.appendleft(t)
            return True
        if isinstance(reply, daskwatch.Frozen):
            self._timed_out(chunk[0], done, f"its Dask worker was silent for {reply.silent:.0f} s (a frozen process); "
                                            "restarted")
            return True
        if isinstance(reply, BaseException):
            return self._handle(reply, chunk[0], pending, done, killed)
        replies, addr = reply
        if self._stderr is not None:
            self._stderr.next_simulation(addr)           # what its worker wrote while running it, before its result
        lost = False
        for t, r in zip(chunk, replies):
            lost |= self._handle((*r, addr), t, pending, done, killed)
        for t in reversed(chunk[len(replies):]):          # after one that ended its worker: not run, not charged
            pending.appendleft(t)
        return lost

    def _on_event(self, event: tuple[float, list]) -> None:
        """A task's replies, sent by its worker (:func:`zoaf.daskworker.simulate_chunk`); on the client's loop."""
        key, payload = event[1]
        self._inbox.put(("event", key, payload))

    def _on_future(self, fut: Any) -> None:
        """A task's future is done (finished, erred or cancelled); on the client's callback thread."""
        self._inbox.put((fut.status, fut.key, None))

    def _replies(self, flying: dict[str, tuple[Any, list[Task]]]) -> list[tuple[str, Any]]:
        """The next finished tasks of ``flying`` (by task key) and their replies: the first to come
        (waiting for it), then any others already here. A task's event brings its replies before its future is
        done; a task without one (its worker died, or the event was not seen) is read from its future: the
        exception of a failed task, the result of a finished one. Messages of tasks no longer in flight (a task
        recorded from its event, an earlier batch's) are dropped."""
        out: dict[str, Any] = {}
        item = self._next(flying)
        while True:
            kind, key, payload = item
            if key in flying and key not in out:
                fut = flying[key][0]
                if kind == "event":
                    out[key] = pickle.loads(payload)
                elif kind == "frozen":
                    out[key] = payload
                elif kind == "finished":
                    out[key] = fut.result()
                else:
                    out[key] = fut.exception()           # a cancelled task raises CancelledError here
            try:
                item = self._inbox.get_nowait()
            except queue.Empty:
                if out:
                    return list(out.items())
                item = self._next(flying)

    def _next(self, flying: dict[str, tuple[Any, list[Task]]]) -> tuple:
        """The next message of the inbox, waiting for it: every :data:`~zoaf.daskwatch.SILENCE_POLL` seconds without
        one, the tasks of a worker fallen silent are put in the inbox (:class:`~zoaf.daskwatch.Silences`)."""
        while True:
            try:
                return self._inbox.get(timeout=daskwatch.SILENCE_POLL)
            except queue.Empty:
                for key, frozen in self._silences.frozen(self.client, flying, self.timeout, self._restarted):
                    self._inbox.put(("frozen", key, frozen))

    def _kill_frozen(self, addr: str) -> None:
        """Have the frozen worker at ``addr`` killed by its nanny (once: a new worker gets a new address); where its
        nanny cannot be asked, restarted as any other (:meth:`_restart`)."""
        if addr in self._restarted:
            return
        if not daskwatch.kill(self.client, addr):
            self._restart(addr)
            return
        self._restarted.add(addr)
        self.stats["restarts"] += 1


    def _threads(self, *, fresh: bool = False) -> int:
        """The cluster's worker threads, asked of the scheduler at the first batch and after a worker was lost or
        replaced, not at every batch (a round trip through the scheduler each)."""
        if fresh or self._nthreads is None:
            self._nthreads = max(1, sum(self.client.nthreads().values()))
        return self._nthreads

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
        elif kind == "over":                              # its worker ended itself over a limit: not retried
            self._crashed(t, reply[1], pending, done, retry=False)
            return True
        elif kind == "timeout":
            self._timed_out(t, done, "worker restarted", loading=reply[1])
            self._restart(addr)
            return True
        elif kind == "raised":
            if reply[3]:
                self._restart(addr)
            raise_remote(reply[1], reply[2])
        try:
            done[t.tid] = replies.outcome(reply[1], self.constraints)     # what the history stores, bounded
        except ValueError as e:
            self._crashed(t, f"dask worker sent back something that is not a result ({e}); restarted", pending, done,
                          retry=False)
            self._restart(addr)
            return True
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
            status = self.client.restart_workers(due, timeout=daskwatch.RESTART_WAIT, raise_for_error=False)
        except Exception as e:                            # pragma: no cover - e.g. a worker without nanny
            log.warning("could not restart dask workers %s: %s", due, e)
            return
        for addr in due:
            if status.get(addr) == "timed out":           # it would not close (a stopped process): its nanny kills it
                daskwatch.kill(self.client, addr)


def _release(futures: list[Any]) -> None:
    """Tell the scheduler these results are no longer wanted (a message each), and forget them."""
    for fut in futures:
        fut.release()
    futures.clear()

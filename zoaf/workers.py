"""What both worker pools share: the worker protocol, a batch's tasks, and crash/retry/timeout accounting.

The pools are :class:`zoaf.localpool.LocalPool` (spawned worker processes) and
:class:`zoaf.daskpool.DaskPool` (the workers of a Dask cluster).

libngspice is one global state per process and not thread-safe (``docs/ngspice.md``), so every backend runs
**one simulation at a time per process** and keeps the unpickled ``Problem`` (and so its lazily opened ngspice
session) alive across simulations: the problem is pickled once in the parent and unpickled once per worker
process, never per simulation.

Worker protocol (both backends):
- a simulation that runs past ``timeout`` seconds is given up: its process is killed (local pool) or restarted
  by its nanny (Dask) and the outcome is ``Status.TIMEOUT``. Where its process first loads what it needs (a fresh
  process, another affinity key: ``Problem.prepare``, a deck's load), the load is bounded apart
  (:data:`LOAD_GRACE`) and the timeout starts when it ends;
- a process that dies while simulating (segfault, SIGKILL, out of memory) is replaced and its simulation
  retried ``retries`` times (default once), then recorded as ``Status.CRASHED``;
- a problem that finds its process unusable (libngspice after a numparam error) sets the attribute
  ``needs_new_process = True`` on itself, or raises an exception carrying it (as ``SimulationError`` does):
  the worker replies, then exits, and is replaced. In a fresh process the problem is unpickled again, so the
  flag starts False;
- an exception from a ``Problem`` subclass's ``simulate`` never reaches the pool: ``Problem.__init_subclass__``
  guards every subclass's own ``simulate`` (``zoaf.problem._guarded``), which makes it that point's failed
  outcome, alike in a worker and in process. Only one that escapes that guard (a ``simulate`` that is no
  subclass's own) is raised again in the parent, as the in-process evaluator would;
- worker processes ignore SIGINT: on Ctrl-C the parent decides (it kills the busy workers and re-raises);
- a worker's stderr is a socket of its own whose lines zoaf's process relays, marked and bounded (:mod:`zoaf.relay`):
  never zoaf's own, which a deck read and wrote through ``/proc/self/fd/2``;
- the local pool also recycles a worker after ``recycle_after`` simulations (:mod:`zoaf.localpool`).
"""
from __future__ import annotations

import contextlib
import math
import os
import pickle
import signal
import threading
import traceback
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Hashable, Iterable, Iterator

import numpy as np

from .errors import InputError
from .problem import Outcome, Problem, Status

#: Seconds a process may take beyond a simulation's timeout to load what the simulation needs (a deck: sky130's
#: loads in 5-10 s, its simulations take 0.1-0.2 s): the ``workers=0`` child's deck load (:mod:`zoaf.isolation`),
#: and in both pools the load (``Problem.prepare``) of a fresh process or of another affinity key's deck, e.g.
#: another corner's PDK library (:func:`time_limit`). The simulation's own timeout starts once the load is done.
LOAD_GRACE = 30.0
#: The affinity key of a process that has loaded nothing yet (:func:`time_limit`).
FRESH = object()

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


def simulate_caught(problem: Problem, x: np.ndarray) -> tuple:
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


def raise_remote(exc: BaseException | None, tb: str) -> None:
    if exc is None:
        raise RuntimeError(f"Problem.simulate raised in a worker process:\n{tb}")
    raise exc from RemoteTraceback(tb)


def loads(key: Hashable, held: Hashable) -> bool:
    """Whether a simulation of affinity ``key`` first loads what it needs (``Problem.prepare``) in a process whose
    last simulation had key ``held`` (:data:`FRESH`: none yet): a fresh process, or another key's deck."""
    return key != held


def time_limit(timeout: float, key: Hashable, held: Hashable) -> float:
    """Seconds a simulation of affinity ``key`` may take from its start to its load's end, in a process whose last
    simulation had key ``held``: the timeout, plus :data:`LOAD_GRACE` where it loads first (a PDK library can take
    longer to load than a simulation's limit). Once the process says the load is done, the simulation has its
    timeout from then: a hanging simulation is stopped at its timeout, a load that never ends at the bound."""
    return timeout + (LOAD_GRACE if loads(key, held) else 0.0)


def prepare_caught(problem: Problem, x: np.ndarray) -> None:
    """``problem.prepare(x)``, never raising: a load that fails is left to the simulation, which loads again and
    fails with the error as its outcome (a broken deck's load error is kept, not repeated)."""
    try:
        problem.prepare(x)
    except Exception:                                     # noqa: BLE001 - the simulation reports it
        pass


#: What a simulation needs loaded in its process (``Problem.affinity``): tasks with the same key run best on a
#: worker that ran one before (a PDK deck at another process corner costs seconds to load).
Affinity = Callable[[np.ndarray], Hashable]


@dataclass
class Task:
    """One simulation of a batch: its id, its point, how many times a worker died running it, and its
    affinity key (None: any worker is as good)."""

    tid: int
    x: np.ndarray
    attempt: int = 0
    key: Hashable = None


class Pool:
    """What both pools do alike: a batch's bookkeeping, crashes retried ``retries`` times, timeouts.

    ``stats`` counts events since start (diagnostics and tests): each pool names its counters; every pool
    has ``crashed`` and ``timeouts``.
    """

    def __init__(self, *, timeout: float, retries: int, counters: Iterable[str],
                 affinity: Affinity | None = None) -> None:
        self.timeout = timeout
        self.retries = retries
        self.affinity = affinity
        self.stats = dict.fromkeys(("crashed", "timeouts", *counters), 0)

    def _batch(self, items: Iterable[tuple[int, np.ndarray]], on_done: OnDone | None
               ) -> tuple[deque[Task], dict[int, Outcome]]:
        key = self.affinity or (lambda x: None)
        return deque(Task(tid, x, key=key(x)) for tid, x in items), _Done(on_done)

    def _crashed(self, t: Task, what: str, pending: deque[Task], done: dict[int, Outcome], *,
                 retry: bool = True) -> None:
        """The worker running ``t`` died (``what``): run it again, or record it CRASHED after ``retries`` (at
        once without ``retry``: it went over a limit, :mod:`zoaf.watchdog`)."""
        self.stats["crashed"] += 1
        t.attempt += 1
        if t.attempt > self.retries or not retry:
            done[t.tid] = Outcome(Status.CRASHED, fom=math.inf, error=f"{what}, {t.attempt} attempt(s)")
        else:
            pending.appendleft(t)

    def _timed_out(self, t: Task, done: dict[int, Outcome], then: str, *, loading: bool = False) -> None:
        """``t`` ran past the limit: recorded TIMEOUT (``then``: what became of its worker; ``loading``: its process
        was still loading what it simulates, past the load's bound)."""
        self.stats["timeouts"] += 1
        limit = self.timeout + LOAD_GRACE if loading else self.timeout
        what = (f"the simulation's deck did not load within {limit:g} s (the timeout + {LOAD_GRACE:g} s of load "
                f"grace)" if loading else f"no result after {limit:g} s")
        done[t.tid] = Outcome(Status.TIMEOUT, fom=math.inf, error=f"{what}; {then}", seconds=limit)


@contextlib.contextmanager
def sigint_ignored() -> Iterator[None]:
    """SIGINT ignored while a worker process starts: it is born ignoring it (an ignored signal survives exec,
    and Python keeps it so), where a Ctrl-C during its imports, before it ignores SIGINT itself, printed a
    KeyboardInterrupt traceback. Only the main thread may set a handler (elsewhere nothing changes)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.SIG_DFL if previous is None else previous)   # None: a handler set from C


_ENVIRON = threading.RLock()


@contextlib.contextmanager
def safe_path() -> Iterator[None]:
    """``PYTHONSAFEPATH=1`` while processes start, for them and what they start: a ``spawn``ed interpreter runs
    ``python -c``, which puts the working directory first on ``sys.path`` until spawn restores the parent's, and a
    ``multiprocessing/`` or ``json.py`` there (a received deck's folder) ran before the worker locked itself down.
    The variable is set only around the starts (other threads' programs would lose their script's folder)."""
    with _ENVIRON:
        previous = os.environ.get("PYTHONSAFEPATH")
        os.environ["PYTHONSAFEPATH"] = "1"
        try:
            yield
        finally:
            if previous is None:
                os.environ.pop("PYTHONSAFEPATH", None)
            else:
                os.environ["PYTHONSAFEPATH"] = previous

"""The evaluator, the only way to a simulation: turns a batch of box points into ``Record``s, in parallel.

Each asked point is answered, in this order, from: the history being replayed (a resumed run: the row of the
same index, checked to be the same point), the cache on exact physical values, or a simulation. Records are
numbered in the order asked and appended to the run's history as they complete (a batch's own duplicates
once it completes), so a run killed mid-batch resumes exactly.

Where simulations run (the protocol: :mod:`zoaf.workers`):
- ``workers=0``: in this process, one after another. A ``FunctionProblem`` (``zoaf.minimize``) runs here as it
  is: no timeout, and a crash takes the caller down. A ``CircuitProblem`` never loads its deck here: its
  session is one persistent sandboxed child process (``zoaf.isolation``) with the timeout and crash handling
  of a worker.
- ``workers=n >= 1`` (default ``os.cpu_count()``): ``n`` spawned worker processes (:mod:`zoaf.localpool`), each
  keeping one unpickled problem (so one ngspice session) for up to ``recycle_after`` simulations;
  per-simulation ``timeout``; a process that dies is replaced and its simulation retried once, then recorded
  as ``crashed``.
- ``dask="local" | "tcp://host:8786" | distributed.Client``: the same, as Dask tasks (:mod:`zoaf.daskpool`).

Cache hits (a point simulated before, also earlier in the same batch, e.g. two box points that round to the
same integers) are not simulated again: they come back with status ``cached`` and are not charged. Results
return in the order asked, whatever order they finish in, and do not depend on the number of workers.

Example:
    >>> import numpy as np
    >>> from zoaf.function import FunctionProblem
    >>> p = FunctionProblem.from_bounds(lambda x: float(x @ x), [(-1, 1)] * 2)
    >>> with Evaluator(p, workers=0) as ev:
    ...     [(r.status.value, r.charged) for r in ev.evaluate(np.array([[.5, .5], [.5, .5]]))]
    [('ok', True), ('cached', False)]
"""
from __future__ import annotations

import abc
import math
import os
import time
import warnings
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Self

import numpy as np

from . import watchdog
from .daskpool import DaskPool
from .errors import DEFAULT_TIMEOUT, DeckFailure, InputError, ZoafNote, ZoafWarning
from .history import History, Record
from .localpool import LocalPool
from .problem import Outcome, Problem, Status
from .workers import OnDone, dumps_problem, needs_new_process

#: Simulations before a worker process is replaced: the soak measured ~6-10 kB RSS growth per simulation on
#: two_stage_amp (benchmarks/throughput.py --soak), so <= 40 MB per worker; a respawn costs ~0.5 s + a deck load.
DEFAULT_RECYCLE_AFTER = 4000
#: Times a simulation whose worker died is run again before it is recorded as crashed.
DEFAULT_RETRIES = 1
#: Distinct sizings of a deck that must all have failed with one and the same error, none simulated, before its run
#: stops (:class:`FailureWatch`). A deck that works in a part of the box only (an oscillator that starts at some
#: sizings) is stopped only if all of them miss that part: 0.9**50 = 0.5% where it is a tenth of the box (20 sizings
#: were 12%), and never where the designer's own sizing (every method's first point but random search's) simulates;
#: a broken deck still spends a sixth of a 300-simulation budget, not all of it.
FAIL_FAST_SIZINGS = 50
#: Distinct sizings at which the deck itself did not load, alike, before its run stops: it is loaded at its own values
#: and sized afterwards, so its load fails at every sizing; in a pool each such failure that breaks libngspice
#: (``needs_new_process``) also cost a fresh process (a Dask worker's restart: a minute at load 10), 50 of them an
#: hour. Two, not one: a sizing's failure is each a process's.
LOAD_FAIL_SIZINGS = 2


@dataclass
class FailureWatch:
    """Whether every simulation of a deck so far failed, and with one error: at ``FAIL_FAST_SIZINGS`` distinct
    sizings that lie on both sides of the box's middle along every design variable (a local method's first probes
    around one failing sizing are no evidence against the rest of the box), the deck is broken, not the sizings.
    A failure is a simulation without the measures the objective needs (``needed``); one that has them, or another
    error, ends the watch for the run. Replayed rows count as they did when recorded, so a resume stops where the
    run stopped. ``measured``: every failure had the measures it needs (a Python ``fom`` rejected them: the
    function's failure, not the deck's). A sign-off problem whose points are (sizing, corner) pairs (``CornerSims``) is
    watched on its sizings, the corners of one sizing counted once, its errors compared without the corner they
    name (``plain``: its ``deck_error``); a corner run also watches each corner alone, and a yield its samples, all
    of one sizing (``across`` False: no box to reach across)."""

    needed: tuple[str, ...]
    dim: int
    error: str | None = None
    sizings: set[tuple[float, ...]] = field(default_factory=set)
    low: np.ndarray | None = None
    high: np.ndarray | None = None
    over: bool = False
    measured: bool = True
    plain: Callable[[str], str] = str
    unloaded: str = "\0"
    across: bool = True

    @classmethod
    def of_deck(cls, problem: Problem, *, across: bool = True) -> FailureWatch:
        """A watch on ``problem``'s deck (its ``netlist``, ``needed`` measures and ``deck_error``)."""
        return cls(tuple(getattr(problem, "needed", ())), problem.dim, plain=getattr(problem, "deck_error", str),
                   unloaded=f"ParseError: loading {problem.netlist.path}: ", across=across)

    @property
    def unloadable(self) -> bool:
        """The failures are the deck's load (``unloaded``: how its error starts), not a process's state that another
        deck left (``this process ...``: :mod:`zoaf.ngprocess`), the same at every sizing."""
        error = self.error or ""
        return error.startswith(self.unloaded) and not error.startswith(self.unloaded + "this process")

    def add(self, rec: Record) -> None:
        if self.over or not rec.charged:
            return
        o = rec.outcome
        failed = not math.isfinite(o.fom) or any(m not in o.measures for m in self.needed)
        error = self.plain(o.error) if o.error else None
        if not failed or not error or self.error not in (None, error):
            self.over = True
            return
        self.error = error
        self.measured = self.measured and bool(o.measures) and all(m in o.measures for m in self.needed)
        u = np.asarray(rec.u, dtype=float)[:self.dim]      # a corner run's point ends with its corner: not a sizing
        self.sizings.add(tuple(map(float, u)))
        self.low = u if self.low is None else np.minimum(self.low, u)
        self.high = u if self.high is None else np.maximum(self.high, u)

    def broken(self) -> bool:
        if self.over or self.low is None:
            return False
        if self.unloadable:
            return len(self.sizings) >= LOAD_FAIL_SIZINGS
        return len(self.sizings) >= FAIL_FAST_SIZINGS and (not self.across or (
            bool(np.all(self.low < 0.5)) and bool(np.all(self.high >= 0.5))))

    def short(self) -> int:
        """How many more failures alike it needs before :meth:`broken` may hold (at least 1); while it has seen no
        failure, a load's count: a yield, which sizes its batches by it, spends two samples on a deck that does not
        load."""
        need = LOAD_FAIL_SIZINGS if self.error is None or self.unloadable else FAIL_FAST_SIZINGS
        return max(1, need - len(self.sizings))


class BatchEvaluator(abc.ABC):
    """What a run drives (:func:`zoaf.run.optimize`): one record per asked point, each appended to the history it
    records to as it completes (its rows replayed first), and an account of a batch Ctrl-C cut. ``Evaluator``
    simulates points; a corner run's ``CornerEvaluator`` (:mod:`zoaf.signoff.cornerrun`) judges sizings over
    corners through one. A context manager that closes what it opened."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @abc.abstractmethod
    def record_to(self, history: History) -> None:
        """Append every record from now on to ``history``, numbered after its rows, which answer the points asked
        first (a resume)."""

    @abc.abstractmethod
    def evaluate(self, u: np.ndarray, phase: str = "") -> list[Record]:
        """One record per row of ``u`` (points in the unit box), in order."""

    @abc.abstractmethod
    def cut_batch(self) -> list[Record]:
        """After a ``KeyboardInterrupt`` out of :meth:`evaluate`: the records the cut batch's completed simulations
        make (in the history already), so that the run's result counts every simulation it recorded."""

    @abc.abstractmethod
    def start(self) -> Self:
        """Start the workers now (a bad scheduler or problem reported before the run starts)."""

    @abc.abstractmethod
    def close(self) -> None:
        """Stop what this evaluator started."""

    @property
    @abc.abstractmethod
    def stats(self) -> dict[str, int]:
        """Worker events so far."""


class Evaluator(BatchEvaluator):
    """Evaluate batches of box points on ``problem``; a context manager that closes what it opened.

    Args:
        problem: what to simulate; pickled once and shipped to each worker process.
        workers: 0 = in this process; n >= 1 = n worker processes (or n local Dask workers); default
            ``os.cpu_count()``.
        timeout: seconds per simulation before its worker is killed (``Status.TIMEOUT``); a problem with its
            own ``timeout`` (``CircuitProblem(timeout=)``) gets the smaller of the two. With ``workers=0`` a
            ``CircuitProblem``'s own timeout kills its sandboxed child; a ``FunctionProblem`` has none.
        recycle_after: simulations after which a worker process is replaced (bounds memory growth).
        retries: re-runs of a simulation whose worker process died, before ``Status.CRASHED``.
        dask: ``"local"`` (a LocalCluster of ``workers`` processes, closed on exit), a scheduler address, or
            a ``distributed.Client`` (used as given, not closed).
    """

    def __init__(self, problem: Problem, *, workers: int | None = None, timeout: float = DEFAULT_TIMEOUT,
                 recycle_after: int = DEFAULT_RECYCLE_AFTER, retries: int = DEFAULT_RETRIES,
                 dask: Any = None) -> None:
        workers = (os.cpu_count() or 1) if workers is None else int(workers)
        if workers < 0:
            raise InputError(f"workers must be >= 0 (0 = in-process), got {workers}")
        if dask is not None and workers == 0:
            raise InputError("dask needs workers >= 1 (workers=0 evaluates in this process)")
        if not timeout > 0:
            raise InputError(f"timeout must be > 0 seconds, got {timeout}")
        if recycle_after < 1:
            raise InputError(f"recycle_after must be >= 1 simulation, got {recycle_after}")
        if retries < 0:
            raise InputError(f"retries must be >= 0, got {retries}")
        watchdog.Limits.from_env()                      # a bad ZOAF_MAX_MEMORY/DISK: one line here, not in workers
        self.problem = problem
        self.workers = workers
        # Analyses run synchronously in a worker (zoaf.isolation): the pool's deadline is the only limit.
        self.timeout = min(float(timeout), float(getattr(problem, "timeout", math.inf)))
        self.recycle_after = int(recycle_after)
        self.retries = int(retries)
        self.dask = dask
        self._pool: LocalPool | DaskPool | None = None
        self._cache: dict[tuple[float, ...], Outcome] = {}
        self._history: History | None = None
        self._replay: dict[int, Record] = {}
        self._next = 0                                  # index of the next record
        self._t0 = time.perf_counter()
        self._warned_restart = False
        self._noted = False                              # the problem's notes said (:meth:`_say_notes`)
        self._batch: list[Record | None] = []            # the batch being answered (cut_batch), empty once answered
        self._storing: Record | None = None              # the batch's record last appended to the history (cut_batch)
        self._watch = _watch_for(problem)

    def close(self) -> None:
        """Stop the workers (or the Dask cluster) this evaluator started; close the problem here."""
        pool, self._pool = self._pool, None
        try:
            if pool is not None:
                pool.close()
        finally:
            self.problem.close()

    @property
    def stats(self) -> dict[str, int]:
        """Worker events so far (spawned, crashed, timeouts, restarts, recycled); empty in-process."""
        return dict(self._pool.stats) if self._pool is not None else {}

    @property
    def asked(self) -> int:
        """Points asked since :meth:`record_to`: the index the next asked point's record gets."""
        return self._next

    @property
    def kept(self) -> str:
        """Where a stopped run's simulations are, as a :class:`~zoaf.errors.DeckFailure`'s line ends ("; its
        simulations are kept in PATH"; empty without a history file)."""
        if self._history is None or self._history.path is None:
            return ""
        return f"; its simulations are kept in {self._history.path}"

    def worker_pids(self) -> list[int]:
        """Process ids of the local pool's ready workers (empty in-process and with Dask)."""
        return self._pool.pids() if isinstance(self._pool, LocalPool) else []

    def record_to(self, history: History) -> None:
        """Append every record from now on to ``history``, numbered after its rows, which are replayed first:
        the asked point of each recorded index is answered by that row (checked), not simulated."""
        replay = history.records()
        self._history = history
        self._replay = {r.idx: r for r in replay}
        self._next = 0
        self._t0 = time.perf_counter() - max((r.wall for r in replay), default=0.0)
        self._watch = _watch_for(self.problem)

    def evaluate(self, u: np.ndarray, phase: str = "") -> list[Record]:
        """One record per asked point, in order; duplicates within a batch simulate once.

        A ``KeyboardInterrupt`` propagates after the in-flight simulations are stopped; what completed is
        recorded, so a resumed run replays it and simulates the rest.
        """
        u = np.atleast_2d(np.asarray(u, dtype=float))
        xs = self.problem.to_physical(u)
        base, self._next = self._next, self._next + len(u)
        out: list[Record | None] = [None] * len(u)
        self._batch, self._storing = out, None
        first: dict[tuple[float, ...], int] = {}       # point -> position of its simulation in this batch
        for j, x in enumerate(xs):
            key = tuple(map(float, x))
            if base + j in self._replay:
                out[j] = self._replayed(self._replay.pop(base + j), x, key)
            elif key in self._cache:
                out[j] = self._record(base + j, u[j], x, _as_cached(self._cache[key]), phase)
            else:
                first.setdefault(key, j)

        def done(j: int, outcome: Outcome) -> None:
            self._cache[tuple(map(float, xs[j]))] = outcome
            out[j] = self._record(base + j, u[j], xs[j], outcome, phase)

        self._run([(j, xs[j]) for j in first.values()], done)
        for j in range(len(u)):           # the batch's own duplicates, now that their firsts are cached
            if out[j] is None:
                out[j] = self._record(base + j, u[j], xs[j], _as_cached(self._cache[tuple(map(float, xs[j]))]), phase)
        self._batch = []
        self._check_deck(out)    # type: ignore[arg-type]
        return out    # type: ignore[return-value]

    def _check_deck(self, batch: list[Record]) -> None:
        """:class:`~zoaf.errors.DeckFailure` once the deck is seen broken (:class:`FailureWatch`): after its batch
        is recorded, so that the history holds every simulation and a resume stops at the same batch."""
        watch = self._watch
        if watch is None or watch.over:
            return
        for rec in batch:
            watch.add(rec)
        if watch.broken():
            error, kept = " ".join(str(watch.error).split()), self.kept
            path, fom = self.problem.netlist.path, getattr(self.problem, "fom", None)
            stopped = "the run stopped: " + (f"the deck does not load ({error}), the same at every sizing"
                                             if watch.unloadable else f"{len(watch.sizings)} sizings across the box "
                                             f"all failed the same way ({error})")
            if watch.measured and fom is not None:      # was said of the deck, which measured every sizing
                name = getattr(fom, "__qualname__", type(fom).__name__)
                raise DeckFailure(f"fom={name}: {stopped}, each measured by {path}: fix the function and "
                                  f"start a new run{kept}", error, len(watch.sizings))
            none = "" if watch.unloadable else ", none gave what the objective needs"
            raise DeckFailure(f"{path}: {stopped}{none}: fix the deck and start a new run{kept}", error,
                              len(watch.sizings))

    def cut_batch(self) -> list[Record]:
        """The records of a batch that Ctrl-C cut, those completed before it (in the history already): the run's
        result counts them (it said "0 simulations, FoM inf" of a run whose history held a feasible sizing)."""
        got = {r.idx: r for r in self._batch if r is not None}
        last = self._storing            # Ctrl-C lands as its row commits (most of a quick simulation's time): the row
        if last is not None and last.idx not in got and self._history is not None and self._history.holds(last.idx):
            got[last.idx] = last        # was stored, its record not yet in the batch (the result missed it)
        return [got[i] for i in sorted(got)]

    def _replayed(self, rec: Record, x: np.ndarray, key: tuple[float, ...]) -> Record:
        if rec.params != self.problem.as_dict(x):
            raise InputError(f"{self._history.path}: cannot resume: simulation {rec.idx} of the history is another "
                             "point than the method asks now (history from another version, or from a CPU that rounds "
                             "differently: numpy's kernels follow the CPU)")
        self._cache.setdefault(key, rec.outcome)
        return rec

    def _record(self, idx: int, u: np.ndarray, x: np.ndarray, outcome: Outcome, phase: str) -> Record:
        rec = Record(idx, u.copy(), self.problem.as_dict(x), outcome, phase, time.perf_counter() - self._t0)
        self._storing = rec
        if self._history is not None:
            self._history.append(rec)
        return rec

    def start(self) -> "Evaluator":
        """Start the workers (or connect to Dask) now rather than at the first batch, so that an unreachable
        scheduler or an unpicklable problem is reported before anything else happens."""
        if self.workers and self._pool is None:
            blob = dumps_problem(self.problem)
            if self.dask is not None:
                self._pool = DaskPool(blob, self.dask, self.workers, timeout=self.timeout, retries=self.retries,
                                      constraints=len(self.problem.constraint_names))
            else:
                self._pool = LocalPool(blob, self.workers, timeout=self.timeout, recycle_after=self.recycle_after,
                                       retries=self.retries, affinity=self.problem.affinity,
                                       constraints=len(self.problem.constraint_names))
        return self

    def _run(self, todo: list[tuple[int, np.ndarray]], on_done: OnDone) -> None:
        if not todo:
            return
        if self.workers:
            self.start()
        self._say_notes()
        if self._pool is not None:
            self._pool.run(todo, on_done)
            return
        for j, x in todo:
            on_done(j, self._simulate_here(x))

    def _say_notes(self) -> None:
        """The problem's notes as :class:`ZoafNote` warnings, as its first simulation starts: after every check a run
        makes of its input (its directory, the pool's start), so that a refusal stays one line."""
        if not self._noted:
            self._noted = True
            for note in self.problem.notes:
                warnings.warn(note, ZoafNote, stacklevel=1)

    def _simulate_here(self, x: np.ndarray) -> Outcome:
        outcome = self.problem.simulate(x)
        if needs_new_process(self.problem) and not self._warned_restart:
            self._warned_restart = True
            warnings.warn(f"{self.problem.name}: the problem asks for a new process, which workers=0 cannot "
                          "give; later simulations may fail (use workers >= 1)", ZoafWarning, stacklevel=3)
        return outcome


def _watch_for(problem: Problem) -> FailureWatch | None:
    """A watch on a deck's problem (a ``CircuitProblem``: a netlist); None for any other (a Python function's failures
    are its result: ``zoaf.minimize`` reports them)."""
    if getattr(getattr(problem, "netlist", None), "path", None) is None:
        return None
    return FailureWatch.of_deck(problem)


def _as_cached(outcome: Outcome) -> Outcome:
    return replace(outcome, status=Status.CACHED, seconds=0.0)

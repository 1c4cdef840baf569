"""Drive one optimization: a loop of ask -> evaluate -> tell, recording every call in the history.

With ``out=DIR`` the run writes DESIGN.md's run directory (``history.db`` as it goes; ``result.json``,
``best.cir`` and ``convergence.png`` at the end). ``resume=True`` replays ``history.db``: the optimizer
retraces its asks, each answered from the recorded row (checked to be the same point), then continues, so an
interrupted run ends exactly where the uninterrupted one would.
"""
from __future__ import annotations

import fcntl
import functools
import json
import os
import platform
import sys
import time
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from . import __version__, registry
from .errors import InputError
from .evaluate import Evaluator
from .history import History, Record, RunMeta
from .optim import Result, StopReason
from .problem import FunctionProblem, Problem

#: A method that keeps asking only points already simulated makes no progress: stop after this many batches.
MAX_FREE_BATCHES = 200

Callback = Callable[[Result], "bool | None"]
#: A run directory's lock: an exclusive ``flock`` on it, held for the whole run, refuses a second process the
#: same run (resumed or started again); the kernel releases it when the process ends, crash included.
LOCK_FILE = ".lock"
#: (device, inode) of the lock files this process holds: the CLI locks before it starts workers, then
#: ``optimize`` enters the same directory again (by whatever path reaches it) without locking it twice.
_held: set[tuple[int, int]] = set()


@dataclass
class _Tally:
    """The best *evaluated* point (lowest FoM, earliest on ties, so replays agree) and the counts, kept as
    records arrive: a result mid-run (every batch, for the progress display) costs O(1), not a history scan."""

    best: Record | None = None
    nfev: int = 0
    ncached: int = 0
    nfailed: int = 0

    def add(self, r: Record) -> None:
        self.nfev += r.charged
        self.ncached += not r.charged
        if not np.isfinite(r.fom):
            self.nfailed += 1
        elif self.best is None or r.fom < self.best.fom:
            self.best = r


def make_result(problem: Problem, records: list[Record], tally: _Tally, nit: int, method: str,
                seed: int | None, stop: StopReason | None) -> Result:
    best = tally.best
    counts = dict(nfev=tally.nfev, ncached=tally.ncached, nfailed=tally.nfailed)
    if best is None:
        nan = np.full(problem.dim, np.nan)
        return Result(x=nan, fun=np.inf, nit=nit, stop_reason=stop and (stop if stop != StopReason.BUDGET
                      else StopReason.FAILED), x_unit=nan, method=method, seed=seed, history=records, **counts)
    o = best.outcome
    if any(m not in o.measures for m in problem.needed) and stop not in (None, StopReason.INTERRUPTED):
        stop = StopReason.FAILED      # the best point lacks a measure its FoM needs: no sizing was found
    x = np.array([best.params[n] for n in problem.names], dtype=float)
    return Result(x=x, fun=o.fom, nit=nit, stop_reason=stop, x_unit=best.u, params=best.params,
                  measures=o.measures, feasible=o.feasible, objective=o.objective, method=method, seed=seed,
                  history=records, **counts)


def run_metadata(problem: Problem, method: str, budget: int, seed: int | None, options: dict[str, Any]) -> RunMeta:
    """What must match for a resume (problem identity, method, budget, seed, options)."""
    return RunMeta(problem.metadata(), method, budget, seed, {k: options[k] for k in sorted(options)})


def check_resume(history: Path | None, recorded: RunMeta | None, expected: RunMeta) -> None:
    """Refuse to resume the run recorded in ``history`` as another one (the first field that differs)."""
    if recorded is None:
        raise InputError(f"{history}: no run metadata: nothing to resume")
    for key, then, now in expected.differences(recorded)[:1]:
        raise InputError(f"{history}: cannot resume: {key} differs from the recorded run "
                         f"(recorded {then!r}, now {now!r})")


def _created_by_mkdir(path: Path) -> list[Path]:
    """The directories ``mkdir(parents=True)`` of ``path`` would create, deepest first."""
    missing = []
    while not path.exists() and path != path.parent:
        missing.append(path)
        path = path.parent
    return missing


def _remove_if_empty(created: list[Path]) -> None:
    """Undo ``mkdir`` of a run refused before it started (the lock file is all it may hold)."""
    try:
        if created:
            (created[0] / LOCK_FILE).unlink(missing_ok=True)
        for d in created:
            d.rmdir()
    except OSError:
        pass                # never made, or not empty after all: left as it is


@contextmanager
def run_directory(out: str | Path, resume: bool = False) -> Iterator[Path]:
    """Find or create the run directory ``out``, check it suits the run (``resume`` or a new one) and hold its
    lock; refusals are InputErrors and leave behind no directory they created."""
    if not str(out).strip():
        raise InputError("run directory: empty path")
    outdir = Path(out)
    if resume and not (outdir / "history.db").is_file():
        raise InputError(f"{outdir}: nothing to resume (no history.db)")
    if outdir.exists() and not outdir.is_dir():
        raise InputError(f"{outdir}: exists and is not a directory")
    created = _created_by_mkdir(outdir)
    try:
        outdir.mkdir(parents=True, exist_ok=True)
        fd = os.open(outdir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        _remove_if_empty(created)
        raise InputError(f"{outdir}: cannot write the run directory ({e.strerror})") from None
    st = os.fstat(fd)
    key = (st.st_dev, st.st_ino)
    owner = key not in _held
    try:
        if owner:
            _lock(fd, outdir)
            if not resume and (outdir / "history.db").exists():
                raise InputError(f"{outdir}: already holds a run (history.db); use --resume or another --out")
            _held.add(key)
        yield outdir
    except BaseException:
        if created and set(os.listdir(outdir)) <= {LOCK_FILE}:
            _remove_if_empty(created)
        raise
    finally:
        if owner:
            _held.discard(key)
        os.close(fd)                 # releases the lock (a re-entered directory's lock stays with its owner)


def _lock(fd: int, outdir: Path) -> None:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        pid = os.pread(fd, 20, 0).decode("ascii", "replace").strip() or "?"
        raise InputError(f"{outdir}: a run is still going in this directory (process {pid}); "
                         f"wait for it to end, or use another --out") from None
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)   # who holds it, for the refusal above
    except OSError:
        pass                                               # a full disk: the lock holds all the same


def _in_run_directory(run: Callable[..., Result]) -> Callable[..., Result]:
    """Run ``optimize`` inside its checked and locked run directory (``run_directory``), if it has one."""
    @functools.wraps(run)
    def wrapper(problem: Problem, *, out: str | Path | None = None, resume: bool = False, **kw: Any) -> Result:
        if out is None:
            return run(problem, resume=resume, **kw)
        with run_directory(out, resume) as outdir:
            return run(problem, out=outdir, resume=resume, **kw)
    return wrapper


@_in_run_directory
def optimize(problem: Problem, *, budget: int = 400, seed: int | None = None, method: str = "zoaf",
             workers: int = 0, out: str | Path | None = None, resume: bool = False,
             evaluator: Evaluator | None = None, callback: Callback | None = None, **options: Any) -> Result:
    """Minimize ``problem`` with ``method`` under a budget of simulations; returns the best evaluated point.

    Args:
        workers: simulations in parallel (worker processes); 0 evaluates in this process.
        out: run directory for ``history.db``, ``result.json``, ``best.cir``, ``convergence.png``.
        resume: continue the run recorded in ``out`` (same problem, method, budget, seed and options).
        evaluator: an evaluator to use (e.g. on a Dask cluster); the run does not close it.
        callback: ``callback(result_so_far)`` after every batch; returning True stops the run.
        options: the method's hyper-parameters.
    """
    if budget < 1:
        raise InputError(f"budget must be >= 1 simulation, got {budget}")
    if seed is not None and seed < 0:
        raise InputError(f"seed must be >= 0, got {seed}")
    opt = registry.create(method, problem.dim, budget, seed, unit_steps=problem.unit_steps,
                          workers=max(1, workers), x0=problem.x0_unit(), **options)
    meta = run_metadata(problem, method, budget, seed, options)
    outdir = None if out is None else Path(out)      # checked and locked by _in_run_directory
    hist = History(None if outdir is None else outdir / "history.db")
    if resume:
        check_resume(hist.path, hist.run_meta(), meta)
    else:
        hist.set_meta({**meta.to_dict(), "zoaf": __version__, "python": sys.version.split()[0],
                       "numpy": np.__version__, "machine": platform.platform(), "started": time.time()})
    replay = hist.records()
    records: list[Record] = []
    tally = _Tally()
    ev = evaluator if evaluator is not None else Evaluator(problem, workers=workers)
    t0 = time.perf_counter() - (replay[-1].wall if replay else 0.0)
    stop: StopReason | None = None
    free_batches = 0
    try:
        while not opt.done:
            u = opt.ask()
            phase = opt.phase
            x = problem.to_physical(u)
            k = min(len(u), len(replay) - len(records))
            results: list[tuple[np.ndarray, Any, bool]] = []
            for i in range(max(k, 0)):       # answered from the history being replayed
                rec = replay[len(records) + i]
                if rec.params != problem.as_dict(x[i]):
                    raise InputError(f"{hist.path}: cannot resume: simulation {rec.idx} of the history is "
                                     f"another point than the method asks now (history from another version?)")
                ev.seed_cache(x[i], rec.outcome)
                results.append((x[i], rec.outcome, rec.charged))
            if len(results) < len(u):
                results += ev.evaluate(u[len(results):])
            for (xi, o, charged), ui in zip(results, u):
                if len(records) < len(replay):
                    rec = replay[len(records)]
                else:
                    rec = Record(len(records), ui, problem.as_dict(xi), o, phase, charged,
                                 time.perf_counter() - t0)
                    hist.append(rec)
                records.append(rec)
                tally.add(rec)
            charged = np.array([c for _, _, c in results])
            opt.tell(u, np.array([o.fom for _, o, _ in results]), charged)
            free_batches = 0 if charged.any() else free_batches + 1
            if free_batches >= MAX_FREE_BATCHES:
                stop = StopReason.CONVERGED
                break
            if callback is not None and callback(make_result(problem, records, tally, opt.nit, method, seed, None)):
                stop = StopReason.INTERRUPTED
                break
        stop = stop or opt.stop_reason
    except KeyboardInterrupt:
        stop = StopReason.INTERRUPTED
    finally:
        if evaluator is None:
            ev.close()
    result = make_result(problem, records, tally, opt.nit, method, seed, stop)
    if outdir is not None:
        write_run_dir(outdir, problem, result)
    hist.close()
    return result


def result_dict(result: Result) -> dict[str, Any]:
    """``result.json``: deterministic for a seed (no timings: those are in ``history.db``)."""
    return {"method": result.method, "seed": result.seed, "fun": result.fun, "success": result.success,
            "message": result.message, "stop_reason": result.stop_reason and result.stop_reason.value,
            "nfev": result.nfev, "nit": result.nit, "ncached": result.ncached, "nfailed": result.nfailed,
            "params": result.params, "measures": result.measures, "objective": result.objective,
            "feasible": result.feasible, "x_unit": [float(v) for v in np.atleast_1d(result.x_unit)]}


#: What a run writes at its end, from history.db alone (a resume of the finished run writes them again).
RUN_FILES = ("result.json", "best.cir", ".spiceinit", "convergence.png")


def write_run_dir(outdir: Path, problem: Problem, result: Result) -> None:
    try:
        _write_run_files(outdir, problem, result)
    except OSError as e:   # a full disk: no half-written result.json (a compare would take the run as done)
        for name in RUN_FILES:
            with suppress(OSError):
                (outdir / name).unlink(missing_ok=True)
        raise InputError(f"{outdir}: cannot write the run's results ({e.strerror or e}); history.db keeps "
                         f"every simulation: make room, then resume the run") from None


def _write_run_files(outdir: Path, problem: Problem, result: Result) -> None:
    from .plots import plot_convergence   # matplotlib only when a run directory is written

    (outdir / "result.json").write_text(json.dumps(result_dict(result), indent=2, default=float) + "\n")
    if result.params and hasattr(problem, "sized_netlist"):
        from .spice import SPICEINIT

        (outdir / "best.cir").write_text(problem.sized_netlist(result.params))
        (outdir / ".spiceinit").write_text(SPICEINIT)     # `cd DIR && ngspice -b best.cir` as the session ran it
    plot_convergence(result.history, outdir / "convergence.png",
                     f"{problem.name}: {result.method}, seed {result.seed}, best FoM {result.fun:.5g}")


def minimize(fun: Callable[[np.ndarray], float], bounds: Any, *, budget: int, seed: int | None = None,
             method: str = "zoaf", x0: Any = None, integers: Any = None, log: Any = None,
             callback: Callback | None = None, **options: Any) -> Result:
    """Minimize a Python black box ``fun(x) -> float`` within ``bounds`` in at most ``budget`` calls.

    Example:
        >>> import numpy as np, zoaf
        >>> res = zoaf.minimize(lambda x: float(np.sum((x - 0.3) ** 2)), [(-1, 1)] * 5, budget=300, seed=0)
        >>> bool(res.fun < 1e-3)
        True
    """
    problem = FunctionProblem.from_bounds(fun, bounds, integers=integers, log=log, x0=x0)
    return optimize(problem, budget=budget, seed=seed, method=method, callback=callback, **options)

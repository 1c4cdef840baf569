"""Run every (objective, method, seed) of a comparison and write its report.

Each run is an ordinary run directory ``OUT/<objective>/<method>/seed-<k>/`` (``zoaf optimize``'s), so a
comparison is resumable run by run: a complete run (``result.json``) is reused, an interrupted one resumed
(replayed exactly), and ``seeds=20`` after ``seeds=10`` adds seeds 10..19 only. Runs go to separate processes
(``jobs``), each simulating in-process (``workers=0``: one libngspice per process), so every method sees the
same sequential simulator and wall times compare.

Example:
    >>> out = compare("netlists/two_stage_amp.cir", methods=["zoaf", "cma-warm"], seeds=5, budget=300)  # doctest: +SKIP
    >>> write_report(out)                                                                              # doctest: +SKIP
"""
from __future__ import annotations

import ctypes
import json
import multiprocessing
import os
import queue as queue_mod
import signal
import sys
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from multiprocessing.managers import SyncManager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

from . import registry, show
from .errors import DEFAULT_TIMEOUT, DeckFailure, InputError, ZoafError
from .compareplan import RunTask, check_grid, check_report_folder, check_same_circuit, check_seeds
from .outfile import json_text, write_file
from .problem import Problem
from .report import MANIFEST, machine, read_manifest, user_command, versions, write_report
from .stats import REFERENCE, fom_of
from .workers import safe_path, sigint_ignored

if TYPE_CHECKING:
    from .circuit import CircuitProblem

#: Seconds between progress messages from one run (a message per batch would flood the queue).
PROGRESS_EVERY = 0.25
#: prctl(2) option: the signal this process gets when the process that started it dies.
_PR_SET_PDEATHSIG = 1


@dataclass
class RunEvent:
    """What ``progress`` gets: ``kind`` is ``plan`` (``total`` runs, ``reused`` done), ``update`` (a run's
    simulations so far and best FoM), ``done``, ``reused`` or ``failed`` (``error``)."""

    kind: str
    objective: str = ""
    method: str = ""
    seed: int = -1
    nfev: int = 0
    budget: int = 0
    best: float = float("inf")
    feasible: bool | None = None
    total: int = 0
    error: str = ""


Progress = Callable[[RunEvent], None]


def _circuit_problem(netlist: str, spec: str | None, allow_shell: bool, timeout: float, objective: str) -> Problem:
    """A run's problem as ``zoaf optimize`` judges it: over its objective's corners where it names any (every
    method was compared at the nominal deck alone, its feasible designs missing the spec at a corner)."""
    from .circuit import CircuitProblem
    from .signoff.cornerrun import CornerProblem

    problem = CircuitProblem(netlist, spec, objective=objective, allow_shell=allow_shell, timeout=timeout)
    problem.notes = ()                  # said once by the comparison (show.note_reading), not by each of its runs
    return CornerProblem.wrap(problem)


def _die_with_parent() -> None:
    """Linux: this helper process is killed when the comparison's process dies, even by SIGKILL. Otherwise a killed
    ``zoaf compare`` leaves its job processes running their queued runs, holding the run directories' locks
    against the rerun that resumes them."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _worker_init() -> None:
    _die_with_parent()
    # One run per process and `jobs` processes: BLAS/torch threads would oversubscribe the cores.
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = "1"


def _run_one(factory: Callable[[str], Problem], task: RunTask, messages: Any = None) -> dict[str, Any]:
    """One run, in whatever process this is; ``messages`` (a queue or a callable) gets progress events."""
    from .run import optimize
    from .rundir import run_directory

    send = messages.put if hasattr(messages, "put") else messages
    last = [0.0]

    def callback(result: Any) -> None:
        now = time.perf_counter()
        if send is not None and now - last[0] >= PROGRESS_EVERY:
            last[0] = now
            send(RunEvent("update", task.objective, task.method, task.seed, result.nfev, task.budget,
                          result.fun, result.feasible))

    problem = factory(task.objective)
    try:                  # locked here first: a run interrupted whose history is gone is made again (``redo``)
        with run_directory(task.path, task.resume, redo=True):
            result = optimize(problem, budget=task.budget, seed=task.seed, method=task.method, workers=0,
                              out=task.path, resume=task.resume, callback=callback)
    finally:
        problem.close()
    return {"nfev": result.nfev, "fun": result.fun, "feasible": result.feasible,
            "stop": result.stop_reason and result.stop_reason.value}


def _write_manifest(out: Path, manifest: dict[str, Any]) -> None:
    """``compare.json``: what the report needs beyond the runs; seeds/methods/objectives accumulate."""
    path = out / MANIFEST
    old = read_manifest(out)
    merged = {**old, **manifest}
    for key in ("methods", "objectives_order"):
        merged[key] = list(dict.fromkeys([*old.get(key, []), *manifest.get(key, [])]))
    merged["objectives"] = {**old.get("objectives", {}), **manifest.get("objectives", {})}
    merged["seeds"] = max(int(old.get("seeds", 0)), int(manifest.get("seeds", 0)))
    write_file(path, json_text(merged, indent=2, default=str) + "\n")


def run_grid(factory: Callable[[str], Problem], out: str | Path, *, objectives: Sequence[str],
             methods: Sequence[str], seeds: int | Sequence[int], budget: int, jobs: int = 1,
             progress: Progress | None = None) -> list[tuple[RunTask, str]]:
    """Run every missing (objective, method, seed) under ``out``; returns the runs that failed, with why.

    ``factory(objective) -> Problem`` builds a run's problem in the process that runs it (it must pickle when
    ``jobs > 1``).
    """
    todo, done = check_grid(Path(out), objectives, methods, check_seeds(seeds), budget)
    return _run_tasks(factory, todo, done, budget, jobs, progress)


def _run_tasks(factory: Callable[[str], Problem], todo: Sequence[RunTask], done: Sequence[RunTask], budget: int,
               jobs: int, progress: Progress | None) -> list[tuple[RunTask, str]]:
    """Run the planned ``todo`` (``done``: the complete runs reused, reported as such); the runs that failed. A run
    that finds the deck broken (:class:`~zoaf.errors.DeckFailure`) stops the comparison: no run starts after it (every
    run simulates that deck), and its error is raised once those running have ended."""
    emit = progress or (lambda event: None)
    emit(RunEvent("plan", total=len(todo) + len(done), budget=budget, nfev=len(done)))
    for t in done:
        emit(RunEvent("reused", t.objective, t.method, t.seed, budget=budget, **_final(t.path)))
    failed: list[tuple[RunTask, str]] = []
    broken: list[tuple[RunTask, DeckFailure]] = []

    def record(t: RunTask, result: dict[str, Any] | None, error: Exception | None) -> None:
        if isinstance(error, DeckFailure):
            broken.append((t, error))
        if error is not None:
            failed.append((t, f"{type(error).__name__}: {error}"))
            emit(RunEvent("failed", t.objective, t.method, t.seed, error=str(error)))
        else:
            emit(RunEvent("done", t.objective, t.method, t.seed, result["nfev"], budget, result["fun"],
                          result["feasible"]))

    if jobs <= 1:
        for t in todo:
            if broken:
                break
            try:
                r = _run_one(factory, t, emit)
            except ZoafError as e:
                record(t, None, e)
                continue
            record(t, r, None)
    elif todo:
        _run_parallel(factory, todo, jobs, emit, record, lambda: bool(broken))
    if broken:
        t, e = broken[0]
        raise DeckFailure(f"{e} (run {t.objective}/{t.method}/seed-{t.seed}: the comparison stopped there)",
                          e.error, e.sizings)
    return failed


def _run_parallel(factory: Callable[[str], Problem], todo: Sequence[RunTask], jobs: int, emit: Progress,
                  record: Callable[[RunTask, dict[str, Any] | None, Exception | None], None],
                  stop: Callable[[], bool]) -> None:
    """The runs of ``todo`` in ``jobs`` spawned processes; their progress relayed through a queue. Once ``stop()``,
    the runs not started are cancelled."""
    ctx = multiprocessing.get_context("spawn")
    manager = SyncManager(ctx=ctx)
    with safe_path(), sigint_ignored():     # a Ctrl-C amid the start left the manager's process, never shut down
        manager.start(_die_with_parent)
    with manager:
        messages = manager.Queue()
        with ProcessPoolExecutor(max_workers=min(jobs, len(todo)), mp_context=ctx, initializer=_worker_init) as pool:
            # the job processes start as tasks are submitted, ignoring SIGINT (a Ctrl-C amid their imports printed
            # tracebacks): on Ctrl-C this process ends them (_stop_now), each run resumable from its history
            with safe_path(), sigint_ignored():
                futures: dict[Future, RunTask] = {pool.submit(_run_one, factory, t, messages): t for t in todo}
            pending = set(futures)
            try:
                while pending:
                    finished, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
                    _drain(messages, emit)
                    for f in finished:
                        if f.cancelled():
                            continue
                        try:
                            r = f.result()
                        except Exception as e:  # noqa: BLE001 - one failed run must not lose the others
                            record(futures[f], None, e)
                            continue
                        record(futures[f], r, None)
                    if stop():
                        for f in pending:
                            f.cancel()            # those not started; the running ones end on their own
            except BaseException:
                _stop_now(pool)
                raise
            _drain(messages, emit)


def _stop_now(pool: ProcessPoolExecutor) -> None:
    """Interrupted: end the running runs now, each resumable from its history, instead of waiting minutes for
    them. A Ctrl-C at a terminal reaches the job processes too; a SIGINT to this process alone (``timeout -s
    INT``, ``kill -INT``) did not, and leaving the executor waited for every running run to finish."""
    kill = getattr(pool, "kill_workers", None)               # Python 3.14+
    if kill is not None:
        kill()
    else:
        for proc in list((getattr(pool, "_processes", None) or {}).values()):
            proc.kill()
    pool.shutdown(wait=False, cancel_futures=True)


def _drain(messages: Any, emit: Progress) -> None:
    while True:
        try:
            emit(messages.get_nowait())
        except (queue_mod.Empty, EOFError, OSError):
            return


def _final(path: Path) -> dict[str, Any]:
    try:
        r = json.loads((path / "result.json").read_text())
        return {"nfev": int(r.get("nfev") or 0), "best": fom_of(r.get("fun")),
                "feasible": r.get("feasible")}
    except (OSError, ValueError, TypeError):
        return {}


def _what_is_compared(problem: Any, netlist: Path, out: Path, names: Sequence[str]) -> dict[str, Any]:
    """The manifest's netlist and spec, as paths relative to the comparison directory (it can move with what it
    compares), and each objective's measure, sense, unit and constraints."""
    return {"netlist": os.path.relpath(netlist.absolute(), out.absolute()),
            "spec": os.path.relpath(Path(problem.spec.path).absolute(), out.absolute()),
            "objectives": {n: {"measure": (o := problem.spec.objective(n)).measure, "sense": o.sense,
                               "unit": problem.spec.unit_of(o.measure), "constraints": [str(c) for c in o.constraints]}
                           for n in names}}


def _grid_names(problem: CircuitProblem, objectives: str | Sequence[str] | None,
                methods: str | Sequence[str] | None) -> tuple[list[str], list[str]]:
    """The comparison's objective names (checked against the spec; default all) and methods (default: every
    installed one), each once in the order given: ``-o a,A`` is one run each."""
    objectives, methods = ([v] if isinstance(v, str) else v for v in (objectives, methods))   # one name, not letters
    for o in objectives or ():
        if not isinstance(o, str):      # was "'int' object has no attribute 'strip'"
            raise InputError(f"compare: objectives are the spec's objective names, got {o!r}")
    if objectives is not None and not objectives:      # ran every objective: None is every one, as methods' default
        raise InputError("compare: no objectives given (objectives=None compares every objective of the spec)")
    named = [o.strip().lower() for o in objectives or ()]
    names = list(dict.fromkeys(named)) if named else list(problem.spec.objectives)
    for name in names:
        problem.spec.objective(name)           # unknown -> InputError naming the valid ones
    chosen = list(dict.fromkeys(registry.installed() if methods is None else methods))
    if not chosen:
        raise InputError("no methods given")
    return names, chosen


def _check_jobs(jobs: int | None) -> None:
    """InputError for a ``jobs`` that is no count of processes (None: one per core); 0 too, which ran as 1: each run
    is a process of its own (``workers=0`` is a run's, in-process)."""
    from .run import check_workers

    check_workers(1 if jobs is None else jobs, option="jobs")
    if jobs == 0:
        raise InputError("jobs 0: a comparison runs each run in a process of its own: give jobs >= 1 (None: one "
                         "per core)")


def _check_kinds(netlist: Any, out: Any, progress: Any) -> None:
    """Arguments of the wrong kind named: a number as the netlist or ``out`` was pathlib's TypeError, a
    ``progress`` that is no function one raised at the first run, once the manifest was written."""
    for what, value in (("netlist", netlist), ("out", out)):
        if not isinstance(value, (str, os.PathLike)) and (value is not None or what == "netlist"):
            raise InputError(f"compare: {what} must be a path (str or Path), got {type(value).__name__}")
    if progress is not None and not callable(progress):
        raise InputError(f"compare: progress must be callable (progress(event)), got {type(progress).__name__}")


def compare(netlist: str | Path, objectives: Sequence[str] | None = None, methods: Sequence[str] | None = None,
            seeds: int | Sequence[int] = 10, budget: int = 300, out: str | Path | None = None,
            jobs: int | None = None, *, spec: str | Path | None = None, allow_shell: bool = False,
            timeout: float = DEFAULT_TIMEOUT, progress: Progress | None = None, report: bool = True,
            argv: Sequence[str] | None = None, quiet: bool = False) -> Path:
    """Compare methods on a circuit: every objective x method x seed as a run directory under ``out``.

    Args:
        netlist: the ngspice netlist; ``spec`` defaults to ``<stem>.toml`` beside it.
        objectives: objective names of the spec (default, None: every objective; one table each; [] is refused).
        methods: registry names (default: every method whose libraries are installed); ZOAF (``zoaf``) is the
            reference the others are tested against.
        seeds: a count N (seeds 0..N-1) or explicit seeds.
        budget: charged simulations per run.
        out: the comparison directory (default ``runs/compare-<stem>-<time>``).
        jobs: runs in parallel, one process each (default: CPU cores).
        progress: ``progress(RunEvent)`` as runs advance and finish.
        report: write ``report.md``/``report.html`` at the end.
        quiet: leave out the notes on how ``ngspice -b`` reads the deck (:func:`zoaf.show.note_reading`).

    Returns the comparison directory. Raises ``ZoafError`` (after the report) when some runs failed.
    """
    from .circuit import CircuitProblem
    from .signoff.speccheck import check_signoff

    _check_kinds(netlist, out, progress)
    netlist = Path(netlist)
    if not netlist.is_file():
        raise InputError(f"{netlist}: netlist file not found")
    problem = CircuitProblem(netlist, spec, allow_shell=allow_shell, timeout=timeout)   # validates; no ngspice yet
    show.note_deck(problem)                    # as zoaf optimize: before any run simulates the deck
    check_signoff(problem)                     # as zoaf optimize: [corners] and [montecarlo] before any run
    names, methods = _grid_names(problem, objectives, methods)
    seed_list = check_seeds(seeds)
    _check_jobs(jobs)
    out = Path(out) if out is not None else Path("runs") / f"compare-{netlist.stem}-{datetime.now():%Y%m%d-%H%M%S}"
    todo, done = check_grid(out, names, methods, seed_list, budget)
    check_report_folder(out)
    check_same_circuit(out, names, methods, seed_list, problem)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InputError(f"{out}: cannot create the comparison directory ({e.strerror or e})") from None
    jobs = max(1, jobs if jobs is not None else (os.cpu_count() or 1))
    _write_manifest(out, {"command": user_command(argv if argv is not None else sys.argv),
                          **_what_is_compared(problem, netlist, out, names),
                          "budget": budget, "seeds": len(seed_list), "jobs": jobs, "methods": methods,
                          "objectives_order": names, "versions": versions(), "machine": machine(),
                          "reference": REFERENCE})
    factory = partial(_circuit_problem, str(netlist), None if spec is None else str(spec), allow_shell, timeout)
    show.note_reading(problem.netlist, quiet)
    failed = _run_tasks(factory, todo, done, budget, jobs, progress)      # planned once, before anything is written
    if report:
        write_report(out, argv)
    if failed:
        lines = "; ".join(f"{t.objective}/{t.method}/seed-{t.seed}: {why}" for t, why in failed[:5])
        raise ZoafError(f"{len(failed)} of the runs failed (the others are in {out}): {lines}")
    return out

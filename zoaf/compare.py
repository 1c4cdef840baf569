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
import itertools
import json
import multiprocessing
import numbers
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
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence, Sized

from . import registry, show
from .errors import DEFAULT_TIMEOUT, InputError, ZoafError
from .history import History, changed_settings
from .outfile import json_text, read_json, write_file
from .problem import Problem
from .report import MANIFEST, machine, own_folder, read_manifest, user_command, versions, write_report
from .stats import REFERENCE, fom_of, is_complete
from .workers import safe_path, sigint_ignored

if TYPE_CHECKING:
    from .circuit import CircuitProblem

#: Slowest methods first, so that a pool does not end waiting for one BO run (longest-processing-time first).
_COST = {"bo": 0, "turbo": 1}
#: Seconds between progress messages from one run (a message per batch would flood the queue).
PROGRESS_EVERY = 0.25
#: prctl(2) option: the signal this process gets when the process that started it dies.
_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class RunTask:
    objective: str
    method: str
    seed: int
    budget: int
    path: Path
    resume: bool


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


def run_path(out: Path, objective: str, method: str, seed: int) -> Path:
    return out / objective / method / f"seed-{seed}"


def _circuit_problem(netlist: str, spec: str | None, allow_shell: bool, timeout: float, objective: str) -> Problem:
    """A run's problem as ``zoaf optimize`` judges it: over its objective's corners where it names any (every
    method was compared at the nominal deck alone, its feasible designs missing the spec at a corner)."""
    from .circuit import CircuitProblem
    from .signoff.cornerrun import CornerProblem

    return CornerProblem.wrap(CircuitProblem(netlist, spec, objective=objective, allow_shell=allow_shell,
                                             timeout=timeout))


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


def _plan(out: Path, objectives: Sequence[str], methods: Sequence[str], seeds: Sequence[int],
          budget: int) -> tuple[list[RunTask], list[RunTask]]:
    """(to run, already complete) tasks; refuses a directory whose runs used another budget, or settings of a
    method that it has no longer (a preset or a default changed since: reusing them would rank another method)."""
    todo, done = [], []
    now = {m: registry.get(m).describe() for m in methods}
    for seed in seeds:
        for objective in objectives:
            for method in sorted(methods, key=lambda m: _COST.get(m, 9)):
                path = run_path(out, objective, method, seed)
                for d in (path.parent.parent, path.parent, path):   # bw -> ~/mine: the runs were made there
                    own_folder(d)
                recorded, settings = _recorded(path)
                if recorded is not None and recorded != budget:
                    raise InputError(f"{path}: holds a run with budget {recorded}, not {budget}; "
                                     f"use another --out")
                for key, then, value in changed_settings(settings, now[method])[:1]:
                    raise InputError(f"{path}: holds a run of {method} with {key}={then!r}, but {method} now has "
                                     f"{key}={value!r}: move that run away or use another --out")
                complete = is_complete(path)
                task = RunTask(objective, method, seed, budget, path, (path / "history.db").exists() and not complete)
                (done if complete else todo).append(task)
    return todo, done


def _recorded(path: Path) -> tuple[int | None, dict[str, Any]]:
    """The budget and method settings a run directory recorded (``history.db``, ``result.json``): (None, {})
    where it has none (not started, or recorded before settings were)."""
    budget, settings = None, {}
    if (path / "history.db").exists():
        with History(path / "history.db", read=True) as h:
            meta = h.meta()
        budget, settings = meta.get("budget"), meta.get("settings") or {}
    try:
        return budget, read_json(path / "result.json").get("settings") or settings
    except (OSError, ValueError, AttributeError):
        return budget, settings


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
    todo, done = _check_grid(Path(out), objectives, methods, check_seeds(seeds), budget)
    return _run_tasks(factory, todo, done, budget, jobs, progress)


def _run_tasks(factory: Callable[[str], Problem], todo: Sequence[RunTask], done: Sequence[RunTask], budget: int,
               jobs: int, progress: Progress | None) -> list[tuple[RunTask, str]]:
    """Run the planned ``todo`` (``done``: the complete runs reused, reported as such); the runs that failed."""
    emit = progress or (lambda event: None)
    emit(RunEvent("plan", total=len(todo) + len(done), budget=budget, nfev=len(done)))
    for t in done:
        emit(RunEvent("reused", t.objective, t.method, t.seed, budget=budget, **_final(t.path)))
    failed: list[tuple[RunTask, str]] = []

    def record(t: RunTask, result: dict[str, Any] | None, error: Exception | None) -> None:
        if error is not None:
            failed.append((t, f"{type(error).__name__}: {error}"))
            emit(RunEvent("failed", t.objective, t.method, t.seed, error=str(error)))
        else:
            emit(RunEvent("done", t.objective, t.method, t.seed, result["nfev"], budget, result["fun"],
                          result["feasible"]))

    if jobs <= 1:
        for t in todo:
            try:
                r = _run_one(factory, t, emit)
            except ZoafError as e:
                record(t, None, e)
                continue
            record(t, r, None)
    elif todo:
        _run_parallel(factory, todo, jobs, emit, record)
    return failed


def _check_grid(out: Path, objectives: Sequence[str], methods: Sequence[str], seeds: Sequence[int],
                budget: int) -> tuple[list[RunTask], list[RunTask]]:
    """Every refusal of a comparison, before it writes anything (a refused one must not leave ``compare.json``
    behind, nor rewrite the one of the runs it refuses); returns ``_plan``'s (to run, complete) tasks."""
    from .run import check_budget

    check_budget(budget)
    if not seeds:
        raise InputError("seeds must be >= 1")
    for m in methods:
        registry.available(m)                    # an unknown method, or one whose extra is missing: one line
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: exists and is not a directory")
    for name in ("history.db", "result.json"):      # its report, plots and runs were written among the run's files
        if os.path.lexists(out / name):
            raise InputError(f"{out}: holds a run ({name}: zoaf optimize's), not a comparison; use another --out")
    return _plan(out, objectives, methods, seeds, budget)


def _check_same_circuit(out: Path, objectives: Sequence[str], methods: Sequence[str], seeds: Sequence[int],
                        problem: Any) -> None:
    """Refuse a comparison directory whose runs sized another netlist or spec, or judged their objective over other
    corners (a run made at the nominal deck before its objective named corners): reused, they would be reported
    as this circuit's, as the objective is judged now, beside runs that are."""
    now = problem.metadata()
    files = {"netlist_sha256": f"{problem.netlist.path} (or a file it includes)", "spec_sha256": problem.spec.path}
    for o in objectives:
        judged = _corner_names(problem.spec, o)
        for path in (run_path(out, o, m, s) for m in methods for s in seeds):
            if not (path / "history.db").is_file():
                continue
            with History(path / "history.db", read=True) as h:
                recorded = h.meta().get("problem")
            if not isinstance(recorded, Mapping):
                continue
            for key, name in files.items():
                if recorded.get(key) not in (None, now[key]):
                    raise InputError(f"{path}: holds a run of another circuit: {name} differs from the one it ran; "
                                     "use another --out")
            ran = [c.get("name") for c in recorded.get("corners") or () if isinstance(c, Mapping)]
            if ran != judged:
                said = {True: "over the corners {}", False: "at the nominal deck"}
                raise InputError(f"{path}: holds a run judged {said[bool(ran)].format(', '.join(map(str, ran)))}, but "
                                 f"objective {o} is judged {said[bool(judged)].format(', '.join(judged))} now: move "
                                 "that run away or use another --out")


def _corner_names(spec: Any, objective: str) -> list[str]:
    """The corners an objective is judged over, by name (empty: the nominal deck), as ``CornerProblem.wrap`` selects."""
    corners = spec.objective(objective).corners
    return [c.name for c in spec.corners.select(list(corners), "objective corners")] if corners else []


def _run_parallel(factory: Callable[[str], Problem], todo: Sequence[RunTask], jobs: int, emit: Progress,
                  record: Callable[[RunTask, dict[str, Any] | None, Exception | None], None]) -> None:
    """The runs of ``todo`` in ``jobs`` spawned processes; their progress relayed through a queue."""
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
                        try:
                            r = f.result()
                        except Exception as e:  # noqa: BLE001 - one failed run must not lose the others
                            record(futures[f], None, e)
                            continue
                        record(futures[f], r, None)
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


#: The most seeds a comparison runs (per objective and method; each is a run): ``--seeds 1000000000`` planned a
#: look at a billion run directories and built the list of seeds until the memory ran out, before any run began.
MAX_SEEDS = 100_000


def check_seeds(seeds: int | Sequence[int], option: str = "seeds") -> list[int]:
    """The seeds of a count N (seeds 0..N-1) or the seeds themselves, each a whole number >= 0 (text or a fraction
    was a TypeError, a negative seed a failed run), at most :data:`MAX_SEEDS` of them; else InputError naming
    ``option``."""
    whole = lambda s: isinstance(s, numbers.Integral) and not isinstance(s, bool)
    too_many = f"more runs than a comparison makes; at most {MAX_SEEDS} seeds"
    if whole(seeds) and seeds > MAX_SEEDS or isinstance(seeds, Sized) and len(seeds) > MAX_SEEDS:
        raise InputError(f"{option} {seeds if whole(seeds) else len(seeds)}: {too_many}")   # before a list is made
    if whole(seeds) and seeds >= 0:
        return list(range(seeds))
    try:                                    # an iterable without a length: no more of it than the cap is drawn
        given = [] if isinstance(seeds, (str, bytes)) else list(itertools.islice(seeds, MAX_SEEDS + 1))
    except TypeError:
        given = []
    if len(given) > MAX_SEEDS:
        raise InputError(f"{option}: {too_many}")
    if not given or not all(whole(s) and s >= 0 for s in given):
        raise InputError(f"{option} must be a count or a list of whole numbers >= 0, got {seeds!r}")
    return [int(s) for s in given]


def _grid_names(problem: CircuitProblem, objectives: str | Sequence[str] | None,
                methods: str | Sequence[str] | None) -> tuple[list[str], list[str]]:
    """The comparison's objective names (checked against the spec; default all) and methods (default: every
    installed one), each once in the order given: ``-o a,A`` is one run each."""
    objectives, methods = ([v] if isinstance(v, str) else v for v in (objectives, methods))   # one name, not letters
    named = [o.strip().lower() for o in objectives or ()]
    names = list(dict.fromkeys(named)) if named else list(problem.spec.objectives)
    for name in names:
        problem.spec.objective(name)           # unknown -> InputError naming the valid ones
    chosen = list(dict.fromkeys(registry.installed() if methods is None else methods))
    if not chosen:
        raise InputError("no methods given")
    return names, chosen


def compare(netlist: str | Path, objectives: Sequence[str] | None = None, methods: Sequence[str] | None = None,
            seeds: int | Sequence[int] = 10, budget: int = 300, out: str | Path | None = None,
            jobs: int | None = None, *, spec: str | Path | None = None, allow_shell: bool = False,
            timeout: float = DEFAULT_TIMEOUT, progress: Progress | None = None, report: bool = True,
            argv: Sequence[str] | None = None) -> Path:
    """Compare methods on a circuit: every objective x method x seed as a run directory under ``out``.

    Args:
        netlist: the ngspice netlist; ``spec`` defaults to ``<stem>.toml`` beside it.
        objectives: objective names of the spec (default: every objective; one table each).
        methods: registry names (default: every method whose libraries are installed); ZOAF (``zoaf``) is the
            reference the others are tested against.
        seeds: a count N (seeds 0..N-1) or explicit seeds.
        budget: charged simulations per run.
        out: the comparison directory (default ``runs/compare-<stem>-<time>``).
        jobs: runs in parallel, one process each (default: CPU cores).
        progress: ``progress(RunEvent)`` as runs advance and finish.
        report: write ``report.md``/``report.html`` at the end.

    Returns the comparison directory. Raises ``ZoafError`` (after the report) when some runs failed.
    """
    from .circuit import CircuitProblem
    from .run import check_workers
    from .signoff.speccheck import check_signoff

    netlist = Path(netlist)
    if not netlist.is_file():
        raise InputError(f"{netlist}: netlist file not found")
    problem = CircuitProblem(netlist, spec, allow_shell=allow_shell, timeout=timeout)   # validates; no ngspice yet
    show.note_reads(problem.netlist)           # as zoaf optimize: what a received deck reads beyond its folder
    check_signoff(problem)                     # as zoaf optimize: [corners] and [montecarlo] before any run
    names, methods = _grid_names(problem, objectives, methods)
    seed_list = check_seeds(seeds)
    check_workers(1 if jobs is None else jobs, option="jobs")
    out = Path(out) if out is not None else Path("runs") / f"compare-{netlist.stem}-{datetime.now():%Y%m%d-%H%M%S}"
    todo, done = _check_grid(out, names, methods, seed_list, budget)
    _check_same_circuit(out, names, methods, seed_list, problem)
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
    failed = _run_tasks(factory, todo, done, budget, jobs, progress)      # planned once, before anything is written
    if report:
        write_report(out, argv)
    if failed:
        lines = "; ".join(f"{t.objective}/{t.method}/seed-{t.seed}: {why}" for t, why in failed[:5])
        raise ZoafError(f"{len(failed)} of the runs failed (the others are in {out}): {lines}")
    return out

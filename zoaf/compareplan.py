"""A comparison's grid planned against its directory, before anything is written: which runs are reused (finished),
resumed (interrupted) or made, and every refusal of runs it holds that are not this grid's (another budget, a method
whose settings changed since, another netlist or spec, other corners)."""
from __future__ import annotations

import itertools
import numbers
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence, Sized

from . import registry
from .circuitcheck import recorded_circuit
from .errors import InputError
from .history import History, changed_settings
from .historyfiles import refuse_journal
from .outfile import read_json
from .report import MANIFEST, own_folder
from .stats import is_complete

if TYPE_CHECKING:
    from .circuit import CircuitProblem
    from .spec import Spec

#: Slowest methods first, so that a pool does not end waiting for one BO run (longest-processing-time first).
_COST = {"bo": 0, "turbo": 1}
#: The most seeds a comparison runs (per objective and method; each is a run): ``--seeds 1000000000`` planned a
#: look at a billion run directories and built the list of seeds until the memory ran out, before any run began.
MAX_SEEDS = 100_000


@dataclass(frozen=True)
class RunTask:
    objective: str
    method: str
    seed: int
    budget: int
    path: Path
    resume: bool


def run_path(out: Path, objective: str, method: str, seed: int) -> Path:
    return out / objective / method / f"seed-{seed}"


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
    if len(set(map(int, given))) < len(given):    # its second run found the first's folder: "1 of the runs failed"
        twice = next(int(s) for i, s in enumerate(given) if s in given[:i])
        raise InputError(f"{option}: seed {twice} is listed twice (one run per seed)")
    return [int(s) for s in given]


def check_grid(out: Path, objectives: Sequence[str], methods: Sequence[str], seeds: Sequence[int],
               budget: int) -> tuple[list[RunTask], list[RunTask]]:
    """Every refusal of a comparison, before it writes anything (a refused one must not leave ``compare.json``
    behind, nor rewrite the one of the runs it refuses); returns the (to run, complete) tasks."""
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


def check_report_folder(out: Path) -> None:
    """Refuse a folder that holds files but no ``compare.json`` (which a comparison writes before its first run):
    no comparison's, its ``report.md``, ``report.html`` and figures would replace the designer's files of those
    names (``--out .`` in the folder of the deck)."""
    if not out.is_dir() or os.path.lexists(out / MANIFEST):
        return
    files = sorted(e.name for e in os.scandir(out) if not e.is_dir(follow_symlinks=False))
    if files:
        shown = ", ".join(files[:3]) + (f" and {len(files) - 3} more" if len(files) > 3 else "")
        raise InputError(f"{out}: holds {shown} and no {MANIFEST}: not a comparison's directory (its report and "
                         "figures would replace files of the same names); use a new or empty --out")


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
                if not complete:
                    refuse_journal(path / "history.db")     # as its run would, once the others had run
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


def check_same_circuit(out: Path, objectives: Sequence[str], methods: Sequence[str], seeds: Sequence[int],
                       problem: CircuitProblem) -> None:
    """Refuse a comparison directory whose runs sized another netlist or spec, or judged their objective over other
    corners (a run made at the nominal deck before its objective named corners): reused, they would be reported
    as this circuit's, as the objective is judged now, beside runs that are. A history that records no hash of its
    netlist or spec is refused too (every circuit run records both: unchecked, any run passed for this circuit's);
    a run kept without its history (``result.json`` alone, as benchmark results are) records nothing to check."""
    now = problem.metadata()
    files = {"netlist_sha256": f"{problem.netlist.path} (or a file it includes)", "spec_sha256": problem.spec.path}
    for o in objectives:
        judged = _corner_names(problem.spec, o)
        for path in (run_path(out, o, m, s) for m in methods for s in seeds):
            if (circuit := recorded_circuit(path)) is None:
                continue
            hashes, recorded = circuit
            for key, name in files.items():
                if hashes[key] != now[key]:
                    raise InputError(f"{path}: holds a run of another circuit: {name} differs from the one it ran; "
                                     "use another --out")
            ran = [c.get("name") for c in recorded.get("corners") or () if isinstance(c, Mapping)]
            if ran != judged:
                said = {True: "over the corners {}", False: "at the nominal deck"}
                raise InputError(f"{path}: holds a run judged {said[bool(ran)].format(', '.join(map(str, ran)))}, but "
                                 f"objective {o} is judged {said[bool(judged)].format(', '.join(judged))} now: move "
                                 "that run away or use another --out")


def _corner_names(spec: Spec, objective: str) -> list[str]:
    """The corners an objective is judged over, by name (empty: the nominal deck), as ``CornerProblem.wrap`` selects."""
    corners = spec.objective(objective).corners
    return [c.name for c in spec.corners.select(list(corners), "objective corners")] if corners else []

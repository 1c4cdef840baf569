"""Read a run directory back: its problem (netlist, spec, objective, corners), best sizing and history."""
from __future__ import annotations

import fcntl
import math
import os
import sqlite3
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

from .. import __version__
from ..circuit import FOM_OBJECTIVE, CircuitProblem, recorded_hashes
from .. import units
from ..errors import DEFAULT_TIMEOUT, InputError, ZoafWarning
from ..history import History, Record, RunMeta
from ..rundir import LOCK_FILE, is_file, recorded_spec, run_directory
from ..outfile import check_own, read_json
from ..received import check_deck
from .corners import Corner
from .cornerrun import corner_overrides


@dataclass
class RunDir:
    path: Path
    problem: CircuitProblem
    params: dict[str, float]             # the best sizing (result.json)
    records: list[Record]                # one per simulation (a corner run: per sizing and corner)
    corners: tuple[Corner, ...]          # the corners the run judged over (empty: nominal)
    #: corner name -> what its values are now and were in the run, for a corner whose values (a ``process_lib``
    #: section's) changed since the run: no hash covers them
    changed: dict[str, str] = field(default_factory=dict)

    def check_corner(self, name: str, command: str) -> None:
        """Refuse sign-off at corner ``name`` if its values changed since the run, by a command that reads the
        run's own simulations there (they and the new ones would be of two process models)."""
        if name in self.changed:
            raise InputError(f"{self.path / 'history.db'}: {self.changed[name]}; {command} reads the run's "
                             "simulations there: restore the process_lib the run used, or optimize anew")

    def folder(self, *parts: str) -> Path:
        """``path/parts...``, a folder sign-off writes in; InputError for a link on the way: a received run's
        ``sensitivity -> ~/mine`` had zoaf write its histories and results where it points (the designer's own
        ``sensitivity.json`` replaced)."""
        d = self.path
        for part in parts:
            d = d / part
            if d.is_symlink():
                raise InputError(f"{d}: is a link; a run directory's folders must be its own (zoaf writes in them)")
        return d

    def judged(self, corner: Corner) -> int | None:
        """The run's corner (index) ``corner`` is, by name, else by conditions (None: the run judged none): a named
        corner that repeats one of the cross product was merged into that one under ``corners = "all"``."""
        names = [c.name for c in self.corners]
        same = [k for k, c in enumerate(self.corners) if c.conditions == corner.conditions]
        return names.index(corner.name) if corner.name in names else same[0] if same else None

    def warn_corners(self, corners: Iterable[Corner]) -> None:
        """Say (once) that corners simulated anew are not those the run was optimized at: the verdict is of the
        current ``process_lib``, as a sign-off after a model update should be, but the designer must know."""
        names = [self.corners[k].name for k in map(self.judged, corners) if k is not None]
        changed = [self.changed[n] for n in dict.fromkeys(names) if n in self.changed]
        if changed:
            warnings.warn_explicit(f"{'; '.join(changed)}: signed off at the current values", ZoafWarning,
                                   str(self.path / "history.db"), 0, module=__name__)


@contextmanager
def recorded(folder: Path, meta: RunMeta) -> Iterator[History]:
    """The history of sign-off simulations in ``folder`` (one of a run directory's, :meth:`RunDir.folder`, locked as
    a run is), made with ``meta`` when new: an evaluator recording to it answers the points it holds from its rows,
    so the same command cut short (Ctrl-C, SIGTERM) and run again simulates only the rest."""
    with run_directory(folder, resume=None, out_option=None), History(folder / "history.db") as hist, \
            discarded_if_empty(hist):
        if not hist.meta():
            hist.set_run(meta, zoaf=__version__, started=time.time())
        yield hist


@contextmanager
def discarded_if_empty(hist: History) -> Iterator[None]:
    """A sign-off refused or cut before its first simulation is recorded (a Dask address no scheduler answers,
    Ctrl-C as workers start) leaves no history: an empty one kept the directory, which a refused run must not
    leave."""
    try:
        yield
    except BaseException:
        if len(hist) == 0:
            hist.discard()
        raise


def load_run(path: Path, spec: Path | None = None, timeout: float = DEFAULT_TIMEOUT) -> RunDir:
    """The run in ``path`` (``history.db`` and ``result.json``), its netlist read again from where it was run; its
    problem simulates within ``timeout`` seconds (a history records no timeout: it is no part of a run's identity)."""
    from ..report import MANIFEST        # here: report loads matplotlib, and the yield command's module imports this one

    db, result = path / "history.db", path / "result.json"
    if not db.exists() and (path / MANIFEST).is_file():     # said "no history.db", and nothing of what to give
        raise InputError(f"{path}: a comparison (zoaf compare), not a run: sign off one of its runs, "
                         f"{path}/<objective>/<method>/seed-<k>")
    for f in (db, result):
        check_own(f)                 # result.json -> ~/runs/mine/result.json: the designer's sizing signed off here
    if not db.is_file() and result.is_file():      # was "not a finished run directory", of one that had finished
        raise InputError(f"{path}: a run kept as its result.json without its history.db (as committed benchmark "
                         "results are): sign-off reads the run's netlist and simulations there; sign off a netlist "
                         "that holds its sizing (result.json's params), or optimize anew")
    for f in (db, result):
        if not f.is_file():
            raise InputError(f"{path}: not a finished run directory (no {f.name})")
    _refuse_running(path)
    try:
        with History(db, read=True) as h:
            meta, records = h.meta(), h.records()
    except sqlite3.DatabaseError as e:
        raise InputError(f"{db}: not a zoaf run history ({e})") from None
    if "problem" not in meta:       # cut (kill -9) before its start was recorded: said "a run of a Python problem"
        raise InputError(f"{db}: records no run (no problem in its meta table: cut short as it started?); "
                         "optimize anew")
    problem_meta: dict[str, Any] = meta["problem"]
    if not _as_zoaf_writes(problem_meta):         # an edited history: a TypeError traceback
        raise InputError(f"{db}: not a zoaf run history (its problem is not what zoaf writes)")
    if "netlist" not in problem_meta:       # zoaf.minimize's, say: its problem was a Python function
        raise InputError(f"{db}: a run of {str(problem_meta.get('name', 'a Python problem'))!r}, not a circuit run: "
                         "sign-off simulates a netlist, and this run has none")
    recorded_hashes(db, problem_meta)       # unhashed, _check_same below passed any deck of this machine
    netlist = Path(problem_meta["netlist"])
    if not is_file(netlist):         # its path clipped: a received history's may run to thousands of characters
        raise InputError(f"{db}: the run's netlist {units.clip_path(str(netlist))} is not found (run from where the "
                         "run was started)")
    check_deck(db, netlist, problem_meta)   # by its hash, before it is parsed: the history may be someone else's
    recorded = recorded_spec(path, meta) if spec is None else None      # a run made with --spec: its spec
    try:
        problem = CircuitProblem(netlist, spec or recorded, objective=problem_meta.get("objective"), timeout=timeout)
    except InputError as e:         # was "SPEC: unknown objective 'custom'", a name the spec's author never wrote
        if problem_meta.get("objective") != FOM_OBJECTIVE or "unknown objective" not in str(e):
            raise
        raise InputError(f"{db}: a run of a Python fom (CircuitProblem(fom=...)), not of an objective of the spec: "
                         "sign-off judges a spec objective's constraints; sign off a netlist holding its sizing "
                         "with --objective") from None
    _check_same(db, problem, problem_meta, recorded is not None)
    content = read_json(result)
    params = _best_sizing(result, problem, content.get("params") if isinstance(content, dict) else None)
    names = [c["name"] for c in problem_meta.get("corners", [])]
    corners = problem.spec.corners.select(names, f"{db}: corners") if names and problem.spec.corners else ()
    changed = _changed_corners(problem, tuple(corners), problem_meta.get("corner_values"), f"{db}: corners")
    return RunDir(path, problem, params, records, tuple(corners), changed)


def _as_zoaf_writes(problem: Any) -> bool:
    """Whether a history's ``problem`` has the types zoaf writes where sign-off reads it."""
    corners = problem.get("corners", []) if isinstance(problem, dict) else None
    return (isinstance(corners, list) and all(isinstance(c, dict) and isinstance(c.get("name"), str) for c in corners)
            and all(isinstance(problem.get(k, ""), str) for k in ("netlist", "objective")))


def _refuse_running(path: Path) -> None:
    """Refuse a run still going (resumed: its ``result.json`` is an earlier end's best, not the run's): its lock
    is held (zoaf.rundir); a shared lock taken and let go at once tells, without a lock file made. The lock file
    must be a regular file of the run's own (a received run's FIFO there hung sign-off in its open)."""
    check_own(path / LOCK_FILE)
    try:
        fd = os.open(path / LOCK_FILE, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return                                  # no lock file: a run copied without it, never locked here
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        pid = os.pread(fd, 20, 0).decode("ascii", "replace").strip() or "?"
        raise InputError(f"{path}: the run is still going (process {pid}); sign off its best sizing once it "
                         "ends") from None
    finally:
        os.close(fd)


def _best_sizing(result: Path, problem: CircuitProblem, params: Any) -> dict[str, float]:
    """The run's best sizing from ``result.json``: every design variable, a number within its bounds (an edited
    or truncated file was a traceback, or simulated a sizing no run could have found)."""
    if not params or not isinstance(params, dict):
        raise InputError(f"{result}: the run has no best sizing")
    for p in problem.parameters:
        v = params.get(p.name)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(_float(v)):
            raise InputError(f"{result}: params.{p.name}: " + ("missing" if v is None else
                                                                f"{str(v)[:40]!r} is not a finite number"))
        if not p.admits(v):
            raise InputError(f"{result}: params.{p.name} = {v:g} lies outside the spec's parameters.{p.name} "
                             f"[{p.lo:g}, {p.hi:g}]")
    return {p.name: float(params[p.name]) for p in problem.parameters}


def _float(v: int | float) -> float:
    """``v`` as a float, infinite when an integer is beyond the float range (JSON has integers of any length)."""
    try:
        return float(v)
    except OverflowError:
        return math.inf


def _changed_corners(problem: CircuitProblem, corners: tuple[Corner, ...], recorded: Any,
                     where: str) -> dict[str, str]:
    """Corners whose ``.param`` values now (``process_lib`` read again) differ from those the run recorded
    (``corner_values``; a run recorded without them: none known to differ)."""
    if not corners or not isinstance(recorded, Mapping):
        return {}
    pdk, with_temp = problem.spec.pdk is not None, any(c.temp is not None for c in corners)
    changed = {}
    for c in corners:
        now, then = corner_overrides(problem, c, pdk, with_temp, f"{where}.{c.name}"), recorded.get(c.name)
        then = then if isinstance(then, dict) else {}
        diff = sorted(n for n in {*now, *then} if now.get(n) != then.get(n))
        if diff:
            changed[c.name] = (f"corner {c.name} sets {diff[0]} = {now.get(diff[0], 'nothing')} now, "
                               f"{then.get(diff[0], 'nothing')} in the run")
    return changed


def _check_same(db: Path, problem: CircuitProblem, recorded: dict[str, Any], own_spec: bool) -> None:
    """Refuse a netlist (or an included file) or spec changed since the run: sign-off would mix the run's
    simulations with those of another circuit, or read its sizing with other bounds, and say nothing.
    ``own_spec``: the spec is the file the run recorded (edited since, not another one given)."""
    now = problem.metadata()
    if recorded["netlist_sha256"] != now["netlist_sha256"]:
        raise InputError(f"{db}: the run's netlist {problem.netlist.path} (or a file it includes) changed since the "
                         "run; restore it, or optimize the edited one anew")
    if recorded["spec_sha256"] != now["spec_sha256"]:
        raise InputError(f"{db}: the spec {problem.spec.path} " + (
            "the run read changed since the run; restore it, or optimize with the edited one anew" if own_spec else
            "is not the one the run used (its content differs); give the run's spec with --spec"))


def worst_corner(run: RunDir) -> int:
    """A corner run's corner (index) that set the best sizing's worst case: every sizing was simulated there
    first once an incumbent existed, so it also holds the most history near the best sizing."""
    rows = [r for r in run.records if all(r.params.get(n) == v for n, v in run.params.items())]
    if not rows:
        raise InputError(f"{run.path}: the best sizing is not in history.db")
    return int(max(rows, key=lambda r: (r.fom, -r.params["corner"])).params["corner"])

"""The run directory on disk: found or created, checked, locked for the run, and its end files written.

A run directory holds ``history.db`` (written as the run goes, by ``zoaf.history``), a lock file, and at the end
``result.json``, ``trace.json``, the problem's artifacts (``best.cir``, ...) and ``convergence.png``. Everything here
keeps the promise that a refused or failed run leaves nothing half-made: a directory created for a run refused before it
started is removed, and end files that could not all be written are removed (``history.db`` keeps the run).
"""
from __future__ import annotations

import fcntl
import os
import signal
import threading
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np

from . import units
from .errors import InputError
from .history import History
from .historyfiles import refuse_journal
from .optim import Result
from .outfile import check_own, json_text, open_own, utf8, write_file
from .received import check_spec
from .problem import Problem
from .stats import RunData, is_complete

#: A run directory's lock: an exclusive ``flock`` on it, held for the whole run, refuses a second process the
#: same run (resumed or started again); the kernel releases it when the process ends, crash included.
LOCK_FILE = ".lock"
#: (device, inode) of the lock files this process holds: the CLI locks before it starts workers, then
#: ``optimize`` enters the same directory again (by whatever path reaches it) without locking it twice. Each with
#: the files of an interrupted run's end that a redo took over (:func:`_check_new`), removed by the new end.
_held: dict[tuple[int, int], frozenset[str]] = {}


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


def unmade(path: Path) -> Path:
    """``path`` without each ``name/..`` whose ``name`` does not exist: ``mkdir`` made ``name`` only for the path to
    leave it again (``--out RUN/yield/..`` left an empty ``yield`` behind, whatever the run did). A name that exists
    keeps its ``..``, the kernel's (a link's is its target's parent)."""
    kept = Path(path.anchor)
    for part in path.parts[1 if path.anchor else 0:]:
        if part == ".." and kept.name not in ("", "..") and not os.path.lexists(kept):
            kept = kept.parent
        else:
            kept = kept / part
    return kept


@contextmanager
def run_directory(out: str | Path, resume: bool | None = False, redo: bool = False,
                  out_option: str | None = "--out", resume_option: str = "--resume") -> Iterator[Path]:
    """Find or create the run directory ``out``, check it suits the run (``resume`` or a new one; None: resumed
    where it holds a history) and hold its lock, yielding its path as used (:func:`unmade`); refusals are
    InputErrors naming ``out_option``, the caller's option for another directory (None: it has none), and
    ``resume_option``, its way to resume (the command line's, or ``resume=True`` from Python), and leave behind
    no directory they created. ``redo``: a new run may also take a directory that holds an interrupted
    run's end files but no history (see :func:`_check_new`)."""
    if not str(out).strip():
        raise InputError("run directory: empty path")
    outdir = unmade(Path(out))
    if resume is None:
        resume = os.path.lexists(outdir / "history.db")       # a dangling link there: refused by check_own below
    if resume and not (outdir / "history.db").is_file():
        check_own(outdir / "history.db")     # a dangling link there: say so, not "nothing to resume"
        raise InputError(f"{outdir}: nothing to resume (no history.db)")
    if outdir.exists() and not outdir.is_dir():
        raise InputError(f"{outdir}: exists and is not a directory")
    if outdir.is_symlink() and not outdir.exists():          # mkdir said only "File exists"
        raise InputError(f"{outdir}: a link to {os.readlink(outdir)}, which does not exist")
    created = _created_by_mkdir(outdir)
    try:
        outdir.mkdir(parents=True, exist_ok=True)
        for name in (LOCK_FILE, "history.db", "history.db-wal", "history.db-shm", "history.db-journal"):
            check_own(outdir / name)       # written in place: a link would have zoaf write where it points
        made_lock = not os.path.lexists(outdir / LOCK_FILE)
        fd = open_own(outdir / LOCK_FILE)
    except OSError as e:
        _remove_if_empty(created)
        raise InputError(f"{outdir}: cannot write the run directory ({e.strerror})") from None
    except InputError:
        _remove_if_empty(created)
        raise
    st = os.fstat(fd)
    key = (st.st_dev, st.st_ino)
    owner = key not in _held
    try:
        if owner:
            _lock(fd, outdir, out_option)
            refuse_journal(outdir / "history.db")     # before workers start: the history's own open refuses it late
            _held[key] = frozenset() if resume else _check_new(outdir, made_lock, redo, out_option, resume_option)
        yield outdir
    except BaseException:
        if created and set(os.listdir(outdir)) <= {LOCK_FILE}:
            _remove_if_empty(created)
        raise
    finally:
        if owner:
            _held.pop(key, None)
        os.close(fd)                 # releases the lock (a re-entered directory's lock stays with its owner)


def _check_new(outdir: Path, made_lock: bool, redo: bool, out_option: str | None,
               resume_option: str) -> frozenset[str]:
    """InputError unless ``outdir`` holds nothing but its lock: a new run's end files replace any file of their
    name (a finished run's ``result.json`` kept without its history, the designer's own ``best.cir`` or
    ``.spiceinit`` under ``--out .``), and a failed end removes them. A lock made here is not left among them.
    ``redo`` (a comparison) also takes the end files of an interrupted run whose history is gone: it cannot resume,
    and its run made again from its seed makes the same simulations first, its end files replacing the old ones
    only once written (those stay until then). Returns the names so taken over: the new end removes those it does
    not write (a ``best.cir`` of the old run where no point of the new one simulated)."""
    if (outdir / "history.db").exists() and out_option:     # a new run asked for (resume=False): optimize's
        raise InputError(f"{outdir}: already holds a run (history.db); use {resume_option} or another {out_option}")
    held = sorted(set(os.listdir(outdir)) - {LOCK_FILE})
    if held and not (redo and "result.json" in held and not is_complete(outdir)):
        if made_lock:
            (outdir / LOCK_FILE).unlink(missing_ok=True)
        shown = ", ".join(held[:3]) + (f" and {len(held) - 3} more" if len(held) > 3 else "")
        if out_option is None:                 # sensitivity's folders are the run's: it writes nowhere else
            raise InputError(f"{outdir}: already holds {shown}; move them away, then run the same command again")
        raise InputError(f"{outdir}: already holds {shown}; a new run needs a new or empty directory (its end "
                         f"files would replace files of the same name): use another {out_option}")
    return frozenset(held)


def _lock(fd: int, outdir: Path, out_option: str | None) -> None:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        pid = os.pread(fd, 20, 0).decode("ascii", "replace").strip() or "?"
        other = f", or use another {out_option}" if out_option else ""
        raise InputError(f"{outdir}: a run is still going in this directory (process {pid}); "
                         f"wait for it to end{other}") from None
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)   # who holds it, for the refusal above
    except OSError:
        pass                                               # a full disk: the lock holds all the same


#: The history's meta key for the spec file a circuit run read (informative: a resume compares its hash, not
#: where it is): sign-off and ``--resume`` take it when ``--spec`` is not given.
SPEC_KEY = "spec"


def spec_location(problem: Problem, outdir: Path | None) -> dict[str, dict[str, str]]:
    """``{SPEC_KEY: {"from_run": ..., "path": ...}}``: the spec file a circuit problem read, relative to its run
    directory (found again when both moved together, from any working directory) and absolute (found again when
    the run directory alone moved); real paths, so a link on either side still reaches it. None without a run
    directory or a spec file (a Python function, a spec built in Python)."""
    spec = getattr(getattr(problem, "spec", None), "path", None)
    if outdir is None or not isinstance(spec, Path):
        return {}
    real = spec.resolve()
    return {SPEC_KEY: {"from_run": os.path.relpath(real, outdir.resolve()), "path": str(real)}}


def recorded_spec(run_dir: Path, meta: Mapping[str, Any] | None = None) -> Path | None:
    """The spec file the run in ``run_dir`` recorded (:func:`spec_location`; ``meta``: its history's, else read),
    None for a run recorded without one; InputError for one found at neither place, or whose bytes are not those
    the run read (checked before anything parses it: the history may be someone else's)."""
    db = run_dir / "history.db"
    if meta is None:
        with History(db, read=True) as h:
            meta = h.meta()
    where = meta.get(SPEC_KEY)
    if where is None:
        return None
    paths = [where.get(k) for k in ("from_run", "path")] if isinstance(where, dict) else []
    if not all(isinstance(p, str) and p.strip() and "\0" not in p for p in paths) or not paths:
        raise InputError(f"{db}: not a zoaf run history (meta: spec {where!r:.60} is not what zoaf writes)")
    found = [s for s in (Path(os.path.normpath(run_dir.resolve() / p)) for p in paths) if is_file(s)]
    if not found:            # its path clipped: a received history's may run to thousands of characters
        raise InputError(f"{db}: the run's spec {units.clip_path(paths[1])} is not found (moved or removed since the "
                         "run); give it with --spec")
    problem = meta.get("problem") if isinstance(meta.get("problem"), dict) else {}
    refused: list[InputError] = []
    for spec in found:           # the run's own file, known by its hash before it is parsed (zoaf.received)
        try:
            check_spec(db, spec, problem)
            return spec
        except InputError as e:
            refused.append(e)
    raise refused[0]


def is_file(path: Path) -> bool:
    """``path.is_file()``, False for a path no file can have (too long: ``is_file`` raises there), as a path a
    received history names may be."""
    try:
        return path.is_file()
    except OSError:
        return False


def result_dict(result: Result) -> dict[str, Any]:
    """``result.json``: deterministic for a seed (no timings: those are in ``history.db``)."""
    return {"method": result.method, "seed": result.seed, "fun": result.fun, "success": result.success,
            "message": result.message, "stop_reason": result.stop_reason and result.stop_reason.value,
            "nfev": result.nfev, "sizings": len(result.history), "nit": result.nit, "ncached": result.ncached,
            "nfailed": result.nfailed,
            "params": result.params, "measures": result.measures, "objective": result.objective,
            "feasible": result.feasible, "constr": [float(v) for v in result.constr], "maxcv": result.maxcv,
            "x_unit": [float(v) for v in np.atleast_1d(result.x_unit)]}


#: Names in a run directory that zoaf writes itself: no artifact of a problem may take one.
_OWN_FILES = {LOCK_FILE, "result.json", "trace.json", "convergence.png", "history.db", "history.db-wal",
              "history.db-shm", "history.db-journal"}


def _artifacts(problem: Problem, params: Mapping[str, float]) -> dict[str, str | bytes]:
    """``problem.artifacts(params)`` (none without a best point), checked before anything is written: a plain file
    name of its own (``../x`` was written outside the run directory) and text or bytes. InputError otherwise,
    saying the history keeps the run (a user's ``artifacts`` raising ended the run with a traceback)."""
    what = f"{type(problem).__name__}.artifacts"
    try:
        files = problem.artifacts(dict(params)) if params else {}
    except Exception as e:
        raise InputError(f"{what} raised {type(e).__name__}: {e}; history.db keeps every simulation: fix it, then "
                         f"resume the run") from e
    if not isinstance(files, Mapping):
        raise InputError(f"{what} returned {type(files).__name__}, not a dict of file names to text")
    for name, text in files.items():
        if not isinstance(name, str) or name in ("", ".", "..") or "/" in name or "\0" in name or name in _OWN_FILES:
            raise InputError(f"{what}: {name!r} is not a file name of its own in the run directory")
        if not isinstance(text, (str, bytes)):
            raise InputError(f"{what}: {name!r} holds {type(text).__name__}, not text or bytes")
    return dict(files)


def write_run_dir(outdir: Path, problem: Problem, result: Result, settings: Mapping[str, Any]) -> None:
    """``result.json`` (with the method's ``settings``, which a comparison checks before it reuses the run),
    ``trace.json`` (the run's course in a few rows, with its timings, which a report reads when ``history.db`` is
    not kept), the problem's artifacts and ``convergence.png``: all of them, or none (a compare takes a run with
    ``result.json`` as done). Ctrl-C and SIGTERM wait until they are written (:func:`_signals_held`)."""
    with _signals_held():
        from .plots import plot_convergence   # matplotlib only when a run directory is written (~2 s to import)

        course = RunData.from_records(result.history, method=result.method, seed=result.seed or 0, budget=0)
        content = {**result_dict(result), "settings": dict(settings)}
        files = {"result.json": json_text(content, indent=2, default=float) + "\n",     # +inf, NaN: null
                 "trace.json": json_text(course.trace(), default=float) + "\n", **_artifacts(problem, result.params)}
        try:
            for name, content in files.items():
                write_file(outdir / name, content)      # never through a link the directory holds
            plot_convergence(result.history, outdir / "convergence.png",
                             utf8(f"{problem.name}: {result.method}, seed {result.seed}, best FoM {result.fun:.5g}"))
            for name in _taken_over(outdir) - {*files, "convergence.png"}:
                (outdir / name).unlink(missing_ok=True)  # an interrupted run's file: it described another run
        except BaseException as e:        # a full disk, or an exception amid them (a result.json without the rest)
            for name in [*files, "convergence.png"]:
                with suppress(OSError):
                    (outdir / name).unlink(missing_ok=True)
            if not isinstance(e, OSError):
                raise
            raise InputError(f"{outdir}: cannot write the run's results ({e.strerror or e}); history.db keeps "
                             f"every simulation: make room, then resume the run") from None


def _taken_over(outdir: Path) -> frozenset[str]:
    """The files of an interrupted run's end that a redo in ``outdir`` took over (none elsewhere)."""
    try:
        st = os.stat(outdir / LOCK_FILE, follow_symlinks=False)
    except OSError:
        return frozenset()
    return _held.get((st.st_dev, st.st_ino), frozenset())


@contextmanager
def _signals_held() -> Iterator[None]:
    """SIGINT and SIGTERM held while the end files are written, and delivered once they are: a second Ctrl-C while
    an interrupted run wrote them (all or none) dropped them all. Only a Python handler is held (an ignored signal
    stays ignored), and only in the main thread, the one that may set handlers; where writing fails, the error is
    what is raised."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    held = {sig: signal.signal(sig, lambda signum, frame: caught.append(signum))
            for sig in (signal.SIGINT, signal.SIGTERM) if callable(signal.getsignal(sig))}
    try:
        yield
    finally:
        for sig, handler in held.items():
            signal.signal(sig, handler)
    if caught:
        signal.raise_signal(caught[0])     # its handler runs now (Ctrl-C's raises KeyboardInterrupt)

"""Make the current process safe to load a deck: private directory and HOME, no ``execve``, confined files.

A netlist is code: ngspice expands aliases and variables, splits commands at ``;``, honours ``>`` redirects and
runs the ``.control`` blocks of included files while the deck loads, so text checks (:mod:`zoaf.deckcheck`)
will always miss a spelling. The guarantee comes from the operating system, in the process that loads the deck,
before libngspice starts:

0. **descriptors**: every one but stdin, stdout, stderr is made close-on-exec, so that a program the deck
   runs (``--allow-shell``) cannot write to the pipe that carries this worker's pickles to its parent; standard
   input and output (zoaf's: a deck read what was piped into zoaf) and the pipe to ``multiprocessing``'s resource
   tracker (which unlinks what is named there) are ``/dev/null`` (:func:`zoaf.proctree.keep_descriptors`);
   standard error, from the process's start, before any deck, is a socket of its own that zoaf relays marked and
   bounded (:mod:`zoaf.relay`): zoaf's, a pipe under ``2>&1 | tee``, was read and written by a deck through
   ``/proc/self/fd/2``, and a socket cannot be reopened there;
1. **private directory**: ``chdir`` into a new empty temporary directory and point ``HOME`` (while the simulator
   starts: then the home the deck's ``~/`` includes were checked in) and ``TMPDIR`` at it, and put an empty
   ``.spiceinit`` there (ngspice reads the passwd database's home's, not ``$HOME``'s, where there is none), so
   that no ``.spiceinit`` of the working directory or home is read and relative paths land there (removed, for a
   Dask worker's by a program that outlives it: :func:`zoaf.watchdog.remove_after_exit`);
   the environment keeps only what the simulation needs (:func:`kept_environment`);
2. **seccomp** (libseccomp through ``pyseccomp``): ``execve``/``execveat`` fail with ``EPERM`` in every thread
   of the process (``TSYNC``), so ``shell``, ``unixcom``, ``aspice``... cannot start a program. ``fork`` and
   ``clone`` stay allowed (ngspice runs analyses in a thread). Lifted by ``allow_exec`` (``--allow-shell``);
3. **Landlock** (:mod:`zoaf.landlock`), where the kernel has it: the calling thread -- the one that drives
   ngspice, and so ngspice's own background thread -- writes only inside the private directory and reads only
   the system directories, its own ``/proc`` entries, Python's prefixes and the ``sys.path`` entries that hold
   packages, the deck's folder and included files (:class:`Policy`) and the private directory
   (:mod:`zoaf.sandboxpaths`); from ABI 6 it signals no process outside its domain;
4. **no network** (seccomp again, on the calling thread only): ``socket``, ``socketpair`` and io_uring fail with
   ``EACCES`` there and in everything it starts, ``allow_exec`` or not, as do the other calls that reach past Landlock
   (:data:`zoaf.syscalls.REACH_CALLS`: tracing, keyrings, System V IPC, typing into a terminal; new namespaces;
   a signal that stops a process, :data:`zoaf.syscalls.STOP_CALLS`: a stopped Dask worker never timed out);
5. **no new code** (seccomp, the calling thread, once libngspice and its code models are loaded: ``start``):
   a file mapped executable (``dlopen``: ``codemodel``, ``osdi``, a library's constructor) fails with ``EPERM``,
   as does setting ``READ_IMPLIES_EXEC`` (cleared at lock-down: readable would be executable).
   Native code would share the process with threads Landlock does not confine (the watchdog's, the cleanup's,
   Dask's) and could make them write or read anything. Lifted by ``allow_exec``;
6. **memory** (``/proc/self/oom_score_adj`` = 1000, a process that exists only to simulate): a deck that
   allocates without end before its timeout is what the kernel's OOM killer ends, not your other programs; and
   :mod:`zoaf.watchdog` ends it first, with one line, past ``ZOAF_MAX_MEMORY`` resident bytes, its programs'
   included (resident, not reserved: a hard cap on the address space would refuse decks that ``ngspice -b``
   runs, as ngspice reserves a transient's vectors for ``tstop/tstep`` points up front, far more than it touches);
   OpenMP starts at most one thread per CPU (a deck's ``num_threads`` could take every process ID of the machine);
7. **disk**: :mod:`zoaf.watchdog` ends the process when its private directory holds more than ``ZOAF_MAX_DISK``
   bytes (a ``.control`` loop writing files); the simulation thread and what it starts preallocate no blocks
   (:data:`zoaf.syscalls.DISK_CALLS`: ``fallocate`` claimed the whole disk between two samples);
8. **programs**: it is the subreaper of the processes a deck starts (programs, ``allow_exec``; forks of native
   code), so one that detaches itself stays in its tree (:func:`zoaf.proctree.kill_tree`) and ends when it exits;
   and it ends itself once the zoaf process that started it (and keeps its timeout) is gone (:mod:`zoaf.watchdog`);
9. **queues**: a message of a ``multiprocessing`` queue is unpickled with builtins only. Landlock does not
   govern pipes: the simulation thread can open any pipe the process holds through ``/proc/self/fd/N``, and a
   Dask worker's thread that waits on its nanny's stop queue, which Landlock does not confine, unpickled what a
   deck wrote there (``circbyline``, before the text checks refused it): any Python, any file written;
10. **the process itself**: a program the deck runs shares the simulation thread's Landlock domain, so it could
   trace the process (:data:`zoaf.syscalls.REACH_CALLS`): not dumpable, it gives its programs no capability
   (:mod:`zoaf.proctree`); its first environment (``/proc/self/environ``) keeps only the kept variables.

In a Dask worker only the simulation thread is under Landlock and the network filter (Dask's own threads keep
writing its local directory and talking to the scheduler); the exec filter covers every thread; the watchdog
ends it past ``ZOAF_MAX_MEMORY`` as any worker (its nanny's limit was the whole machine's under ``--dask local``),
but its standing with the OOM killer is Dask's.

:func:`enter` applies the layers once per process (Landlock once per calling thread) and returns a
:class:`SandboxReport` saying which are active. Only processes that exist to simulate lock themselves down: a
worker calls :func:`designate` first; elsewhere a deck is loaded in a sandboxed child process
(:mod:`zoaf.isolation`).
"""
from __future__ import annotations

import atexit
import ctypes
import dataclasses
import enum
import errno
import io
import os
import pickle
import sys
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing import queues as mp_queues
from multiprocessing import util as mp_util
from multiprocessing.reduction import ForkingPickler
from pathlib import Path

from . import landlock, proctree, syscalls, watchdog
from .errors import SimulationError
from .sandboxpaths import DEVICE_FILES, beneath, read_roots
from .syscalls import (ABSENT_CALLS, CODE_CALLS, DISK_CALLS, LOCK_CALLS, METADATA_CALLS, NAMESPACE_CALLS,
                       NETWORK_CALLS, REACH_CALLS, STOP_CALLS)

__all__ = ["Layer", "LayerState", "Policy", "SandboxError", "SandboxReport", "current", "designate",
           "designated", "enter", "kept_environment", "remove_private_dirs"]

#: Environment variables a sandboxed process keeps (exact names, then prefixes): what ngspice, the numeric
#: libraries (their kernels and SIMD loops too: one floating-point path in parent and worker), Python and zoaf
#: read; not ``DASK_*`` (a worker reads it as it starts). ngspice hands the deck every
#: variable (``echo leak = $AWS_SECRET_ACCESS_KEY``, or ``$DASK_COILED__TOKEN``, became a measure).
KEPT_ENV = frozenset({"PATH", "LANG", "LANGUAGE", "TZ", "TERM", "LD_LIBRARY_PATH"})
KEPT_ENV_PREFIXES = ("LC_", "SPICE_", "NGSPICE", "OMP_", "OPENBLAS_", "MKL_", "NPY_", "PYTHON", "ZOAF_")
#: Private directories are ``<temp>/zoaf-sandbox-<pid>-<random>``: whoever ends the process can remove it.
PRIVATE_PREFIX = "zoaf-sandbox-"
#: Seconds the process waits at exit for its private directory to be removed.
CLEANUP_WAIT = 5.0


class SandboxError(SimulationError):
    """This process cannot give a deck what it needs (it was locked down for another deck's files)."""

    status = "crashed"
    needs_new_process = True


class LayerState(enum.Enum):
    ACTIVE = "active"
    LIFTED = "lifted"            # turned off on purpose (allow_exec)
    UNAVAILABLE = "unavailable"  # the kernel or the library does not offer it


@dataclass(frozen=True)
class Layer:
    """One protection and whether it holds: ``detail`` is the Landlock ABI, or why a layer does not hold."""

    name: str
    state: LayerState
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.name}: {self.state.value}" + (f" ({self.detail})" if self.detail else "")


@dataclass(frozen=True)
class SandboxReport:
    """The layers a sandboxed process runs under."""

    private_dir: Layer
    seccomp: Layer
    landlock: Layer
    network: Layer
    memory: Layer
    disk: Layer
    directory: Path
    code: Layer = Layer("code", LayerState.UNAVAILABLE, "no simulator started in the lock-down")

    @property
    def layers(self) -> tuple[Layer, ...]:
        return self.private_dir, self.seccomp, self.landlock, self.network, self.code, self.memory, self.disk

    def __str__(self) -> str:
        return "; ".join(map(str, self.layers))

    def as_dict(self) -> dict[str, dict[str, str]]:
        return {ly.name: {"state": ly.state.value, "detail": ly.detail} for ly in self.layers}


@dataclass(frozen=True)
class Policy:
    """What one deck needs: what it reads (its folder, its included files), whether it may run programs."""

    read: tuple[Path, ...] = ()
    allow_exec: bool = False

    def covers(self, other: "Policy") -> bool:
        """True when a process locked down by this policy can load a deck that needs ``other``."""
        return self.allow_exec == other.allow_exec and all(
            any(beneath(p, q) for q in self.read) for p in other.read)


# -- per-process state ------------------------------------------------------------------------------------
@dataclass
class _Process:
    """What this process has done: whether it may lock down, and the lock-down applied (once per process)."""

    designated: bool = False
    own_process: bool = True
    policy: Policy | None = None
    directory: Path | None = None
    home: str = ""                         # the home the process started with (where zoaf read `~/` includes)
    seccomp: Layer | None = None
    memory: Layer | None = None
    disk: Layer | None = None
    adopts: bool = False                   # orphans of its programs are its children (:func:`_adopt_programs`)


_PROCESS = _Process()
_LIBC = ctypes.CDLL(None, use_errno=True)
_LOCK = threading.Lock()
_THREAD = threading.local()


def designate(*, own_process: bool = True) -> None:
    """Mark this process as one that exists to simulate: it may lock itself down (:func:`enter`). A Dask
    worker's process is Dask's (``own_process=False``): its standing with the OOM killer is left alone."""
    _PROCESS.designated, _PROCESS.own_process = True, own_process


def designated() -> bool:
    return _PROCESS.designated


def current() -> SandboxReport | None:
    """The layers this thread runs under, or None when it is not sandboxed."""
    return getattr(_THREAD, "report", None)


def enter(policy: Policy, start: Callable[[], object] | None = None) -> SandboxReport:
    """Lock this process (and Landlock: this thread) down for decks needing ``policy``; idempotent.

    ``start`` loads what the simulator needs (libngspice, its code models) after Landlock and before this thread
    may map no new code (unless ``policy.allow_exec``); without it, that layer is not applied.

    Raises SandboxError when the process was already locked down for a policy that does not cover this one
    (a Dask worker that simulated another deck): the worker must be replaced.
    """
    with _LOCK:
        proc = _PROCESS
        if proc.policy is not None and not proc.policy.covers(policy):
            raise SandboxError("this worker process was locked down for another deck's files or exec "
                               "setting; it is being replaced")
        if proc.policy is None:
            proctree.keep_descriptors()
            _distrust_queues()
            proc.directory = _private_dir()
            proc.seccomp = _seccomp(policy.allow_exec)
            proc.memory, proc.disk = _limits(proc.own_process, proc.directory)
            proctree.untraceable()                        # after oom_score_adj: then its /proc entries are root's
            _adopt_programs()
            proc.policy = policy
        if current() is None:
            proctree.no_capabilities_for_programs()
            syscalls.clear_read_implies_exec()              # before libngspice maps: no page executable by reading
            private = Layer("private_dir", LayerState.ACTIVE, "cwd, TMPDIR, HOME as ngspice starts")
            report = SandboxReport(private, proc.seccomp, _landlock(proc.policy, proc.directory), _no_sockets(),
                                   proc.memory, proc.disk, proc.directory)
            if start is not None:
                start()
                # ngspice read no .spiceinit as it started, but expands `~/` in each include it reads: as the checks
                # did (`.include ~/m.inc` loaded the private directory's m.inc, maybe one the deck wrote there)
                os.environ["HOME"] = proc.home
                report = dataclasses.replace(report, code=_no_new_code(proc.policy.allow_exec))
            _THREAD.report = report
        return _THREAD.report


class _BuiltinsOnly(pickle.Unpickler):
    """Builds dicts, lists, strings and numbers, never a class or a function (a reduce's callable)."""

    def find_class(self, module: str, name: str) -> object:
        raise pickle.UnpicklingError(f"{module}.{name}: a queue message in a simulating process holds builtins "
                                     "only (it may come from the deck)")


class _QueuePickler(ForkingPickler):
    """What ``multiprocessing.queues`` pickles with: writes as before, reads builtins only."""

    @classmethod
    def loads(cls, data: bytes, /, **_: object) -> object:
        return _BuiltinsOnly(io.BytesIO(data)).load()


def _distrust_queues() -> None:
    """Load every ``multiprocessing`` queue message of this process with builtins only (layer 9): its pipes are
    open to the deck (Landlock does not govern a pipe reopened through ``/proc/self/fd``), and the thread that
    reads one (a Dask worker's stop queue: a dict of builtins from its nanny) is not confined."""
    mp_queues._ForkingPickler = _QueuePickler            # looked up per message, also by a read already waiting


def _private_dir() -> Path:
    _PROCESS.home = os.path.expanduser("~")
    directory = Path(tempfile.mkdtemp(prefix=f"{PRIVATE_PREFIX}{os.getpid()}-")).resolve()
    _remove_at_exit(directory)
    if not _PROCESS.own_process:
        watchdog.remove_after_exit(directory)
    # `''` and relative sys.path entries (a parent run as `python -c`, a REPL, a notebook: spawn copies its path)
    # would name the private directory once there, where a deck writes: the folders they name now, absolute
    sys.path[:] = [os.path.abspath(p) if isinstance(p, str) else p for p in sys.path]
    os.chdir(directory)
    kept = kept_environment()
    for name in set(os.environ) - set(kept):
        del os.environ[name]
    _erase_first_environment({os.fsencode(k) for k in kept})
    os.environ["HOME"] = os.environ["TMPDIR"] = str(directory)
    tempfile.tempdir = str(directory)
    # ngspice reads ./.spiceinit, else the home's of the passwd database, not $HOME's: a received deck's, saved in
    # your home, loaded its code model before "no new code" (any file written). Read once, as ngspice starts.
    (directory / ".spiceinit").touch()
    return directory


def _erase_first_environment(kept: set[bytes]) -> None:
    """Zero every variable but ``kept`` in the environment the process started with, which the kernel shows as
    ``/proc/self/environ`` whatever ``os.environ`` holds since: a deck's code model reads that file (``filesource``
    made a variable a measure). The kept ones stay (the C library's ``environ`` still points at them)."""
    fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
    start, end = int(fields[47]), int(fields[48])         # env_start, env_end: fields 50 and 51 of proc(5)
    offset = start
    for entry in ctypes.string_at(start, end - start).split(b"\0"):
        if entry.split(b"=", 1)[0] not in kept:
            ctypes.memset(offset, 0, len(entry))
        offset += len(entry) + 1


def remove_private_dirs(pid: int) -> None:
    """Remove the private directory of simulating process ``pid``, ended: one killed (a timeout, Ctrl-C, a
    watchdog limit) does not remove it itself, and a deck may have filled it."""
    for directory in Path(tempfile.gettempdir()).glob(f"{PRIVATE_PREFIX}{pid}-*"):
        watchdog.remove_tree(directory)


def kept_environment() -> dict[str, str]:
    """The environment a sandboxed process keeps (:data:`KEPT_ENV`): no tokens, keys or passwords."""
    return {k: v for k, v in os.environ.items() if k in KEPT_ENV or k.startswith(KEPT_ENV_PREFIXES)}


def _remove_at_exit(directory: Path) -> None:
    """Remove ``directory`` when the process exits (ending the programs it adopted first), from a thread started
    before the lock-down: a thread under Landlock may empty the directory but not remove it from its parent."""
    go = threading.Event()

    def remove() -> None:
        go.wait()
        if _PROCESS.adopts:
            proctree.end_descendants(os.getpid())
        watchdog.remove_tree(directory)

    janitor = threading.Thread(target=remove, name="zoaf-sandbox-cleanup", daemon=True)
    janitor.start()

    def cleanup() -> None:
        go.set()
        janitor.join(CLEANUP_WAIT)

    atexit.register(cleanup)                             # an interpreter's exit
    mp_util.Finalize(None, cleanup, exitpriority=0)      # a multiprocessing child's (it ends with os._exit)


#: prctl(2) option: orphaned descendants are re-parented to this process instead of init.
_PR_SET_CHILD_SUBREAPER = 36


def _adopt_programs() -> None:
    """Keep every process a deck starts in this process's tree, and end them all when it exits: a program that
    detaches itself (``setsid prog &``), or a process native code forks and detaches (no ``--allow-shell`` needed),
    was adopted by init and outlived its worker, out of reach of the pool's :func:`zoaf.proctree.kill_tree`.
    Orphans that end stay zombies until this process does (reaping them here would take the exit status ngspice's
    ``pclose`` waits for). They are ended by the thread that removes the private directory at exit: a thread under
    Landlock cannot read other processes' ``/proc`` entries."""
    if _LIBC.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0:
        _PROCESS.adopts = True                          # else (an old kernel) kill_tree reaches fewer


def _seccomp(allow_exec: bool) -> Layer:
    if allow_exec:
        return Layer("seccomp", LayerState.LIFTED, "allow_shell")
    return _deny("seccomp", ("execve", "execveat"), errno.EPERM, every_thread=True, detail="no execve")


def _deny(layer: str, calls: tuple[str | tuple, ...], err: int, *, every_thread: bool, detail: str,
          absent: tuple[str, ...] = ()) -> Layer:
    """A seccomp filter (:func:`zoaf.syscalls.load_filter`) that makes ``calls`` fail with ``err``."""
    if (why := syscalls.load_filter(calls, err, every_thread=every_thread, absent=absent)) is not None:
        return Layer(layer, LayerState.UNAVAILABLE, why)        # no libseccomp, or a kernel without seccomp
    return Layer(layer, LayerState.ACTIVE, detail)


def _no_sockets() -> Layer:
    """This thread, and what it starts (ngspice's thread, a program run with ``allow_exec``), opens no socket:
    a deck has no use for one, and native code or a program it runs could send what it may read (the deck's
    folder) or drive a local daemon. Not the process: a Dask worker's own threads keep their connections. Nor
    does it make the other calls of :data:`zoaf.syscalls.REACH_CALLS`, ``METADATA_CALLS``, ``LOCK_CALLS``,
    ``NAMESPACE_CALLS``, ``STOP_CALLS`` and ``DISK_CALLS``."""
    calls = NETWORK_CALLS + REACH_CALLS + METADATA_CALLS + LOCK_CALLS + NAMESPACE_CALLS + STOP_CALLS + DISK_CALLS
    return _deny("network", calls, errno.EACCES, every_thread=False, absent=ABSENT_CALLS, detail="no sockets, no "
                 "tracing, no keyrings or IPC, no file modes or locks, no typing into a terminal, no stop signals, "
                 "no preallocation")


def _no_new_code(allow_exec: bool) -> Layer:
    """This thread, and what it starts, maps no new code once the simulator is loaded: a deck's ``codemodel`` or
    ``.osdi`` library would run native code in a process whose other threads Landlock does not confine (the
    watchdog's, the cleanup's, Dask's): it could have them write or read any file."""
    if allow_exec:
        return Layer("code", LayerState.LIFTED, "allow_shell")
    return _deny("code", CODE_CALLS, errno.EPERM, every_thread=False, detail="no libraries after ngspice's")


#: The OOM killer's adjustment of a simulating process: the most (any process may raise its own).
OOM_SCORE_ADJ = 1000


def _limits(own_process: bool, directory: Path) -> tuple[Layer, Layer]:
    """The memory and disk layers: the watchdog started, OpenMP's threads bounded, (own process) first to be killed."""
    limits = watchdog.Limits.from_env()
    # zoaf's own worker ends with zoaf; a Dask worker's end is its nanny's (one started by hand may outlive a shell)
    watchdog.start(limits, directory, parent=os.getppid() if own_process else None)
    watchdog.limit_threads()
    disk = Layer("disk", LayerState.ACTIVE, f"at most {watchdog.gib(limits.disk)} of files")
    detail = f"at most {watchdog.gib(limits.memory)} resident"
    if not own_process:                 # a Dask worker: the OOM killer's choice among Dask's processes is Dask's
        return Layer("memory", LayerState.ACTIVE, detail), disk
    try:
        Path("/proc/self/oom_score_adj").write_text(f"{OOM_SCORE_ADJ}\n")
    except OSError as e:
        return Layer("memory", LayerState.ACTIVE, f"{detail}; oom_score_adj: {e.strerror or e}"), disk
    return Layer("memory", LayerState.ACTIVE, f"{detail}, first for the OOM killer"), disk


def _landlock(policy: Policy, directory: Path) -> Layer:
    try:
        abi = landlock.restrict(read=read_roots(policy.read, directory), write=[directory], write_files=DEVICE_FILES,
                                resolved=policy.read)     # checked with links followed: a link now is a swap
    except landlock.LandlockError as e:
        return Layer("landlock", LayerState.UNAVAILABLE, e.strerror or str(e))
    return Layer("landlock", LayerState.ACTIVE, f"ABI {abi}")

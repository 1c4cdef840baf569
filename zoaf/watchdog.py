"""A simulating process's share of memory and disk, enforced from inside the process.

A deck's ``.control`` block can allocate vectors in a loop (``let v = vector(1e8)``) or write files in a loop
into the sandbox's private directory: Landlock keeps the writes in that directory and the timeout bounds the
time, not the bytes (at disk speed, a minute is tens of GB). A daemon thread samples the resident memory of the
process and of the programs it runs (``--allow-shell``) and the bytes the private directory holds every
:data:`POLL` seconds; past a limit it writes one line to stderr and ends the process with a distinct exit code
(``os._exit``: the simulation is in ngspice's C code, which cannot be interrupted). The pools and the
``workers=0`` child turn that code back into the line (:func:`reason`) and do not retry the simulation: it would
only go over again. Dask reports a lost worker, not its exit code, so a Dask worker also tells its client the line
first (:func:`on_end`).

Limits: ``ZOAF_MAX_MEMORY`` (resident bytes; default half the machine's memory) and ``ZOAF_MAX_DISK`` (bytes
in the private directory; default 2 GiB), in bytes or with a binary suffix (``512M``, ``4G``), in a Dask worker
too: its nanny's own limit was the whole machine's memory under ``--dask local`` (a deck's vectors took all of it).
"""
from __future__ import annotations

import enum
import os
import re
import signal
import stat
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from . import proctree
from .errors import InputError

__all__ = ["Exceeded", "Limits", "gib", "limit_threads", "on_end", "parse_bytes", "reason", "remove_after_exit",
           "remove_tree", "start"]

#: Seconds between two samples (a writer at 1 GB/s overshoots the disk limit by ~100 MB at most).
POLL = 0.1
#: What a file or folder counts at least (one block).
ENTRY = 4096
#: What a tree the watchdog cannot list counts as: more than any limit.
UNCOUNTABLE = 2**62
#: The least ZOAF_MAX_MEMORY: a worker with libngspice and a small deck loaded holds ~40 MiB resident.
MIN_MEMORY = 64 << 20
#: The least ZOAF_MAX_DISK: the private directory's own entries (a folder, ``.spiceinit``) count a block each.
MIN_DISK = 1 << 20
#: Bytes the private directory may hold by default.
DEFAULT_DISK = 2 << 30
_SUFFIX = {"": 0, "k": 10, "m": 20, "g": 30, "t": 40}
_ON_END: list[Callable[[str], None]] = []


class Exceeded(enum.IntEnum):
    """Exit codes of a process ended over a limit (clear of the shell's 124-165 and of Python's 1-2)."""

    MEMORY = 120
    DISK = 121
    ORPHANED = 122          # zoaf, which started it and kept its timeout, ended (killed): nobody reads this one


@dataclass(frozen=True)
class Limits:
    memory: int             # resident bytes
    disk: int               # bytes in the private directory

    @classmethod
    def from_env(cls) -> "Limits":
        """The limits the environment sets (a pool's parent reads the same ones as its workers, a Dask worker its
        own: zoaf's ``--dask local`` workers zoaf's)."""
        half = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 2
        memory = _env_bytes("ZOAF_MAX_MEMORY", half)
        if memory < MIN_MEMORY:         # every worker would be ended at its first sample, each simulation "crashed"
            raise InputError(f"ZOAF_MAX_MEMORY={os.environ.get('ZOAF_MAX_MEMORY')}: less than a simulating process "
                             f"needs (at least {MIN_MEMORY >> 20}M)")
        disk = _env_bytes("ZOAF_MAX_DISK", DEFAULT_DISK)
        if disk < MIN_DISK:             # every simulation would be ended at its first sample (ZOAF_MAX_DISK=0)
            raise InputError(f"ZOAF_MAX_DISK={os.environ.get('ZOAF_MAX_DISK')}: less than a simulation's private "
                             f"folder holds (at least {MIN_DISK >> 20}M)")
        return cls(memory, disk)


def _env_bytes(name: str, default: int) -> int:
    try:
        return parse_bytes(os.environ.get(name, str(default)))
    except ValueError as e:
        raise InputError(f"{name}: {e}") from None


def parse_bytes(text: str) -> int:
    """``2147483648``, ``512M``, ``4G``, ``4GiB``: binary multiples (not SPICE's M, which is milli)."""
    m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]*)?)\s*([kmgt]?)(?:i?b)?\s*", text, re.I)
    if m is None:
        raise ValueError(f"not a number of bytes: {text!r} (write 512M, 4G or a plain number)")
    if len(m[1]) > 30 or (n := int(float(m[1]) * (1 << _SUFFIX[m[2].lower()]))) >= UNCOUNTABLE:
        # 400 digits were an OverflowError traceback; a limit past UNCOUNTABLE let an unlistable tree pass
        raise ValueError(f"{text.strip()[:40]!r} is more bytes than any machine holds (at most {UNCOUNTABLE - 1})")
    return n


def gib(n: int) -> str:
    return f"{n / (1 << 30):.3g} GiB"


def reason(exitcode: int | None) -> str | None:
    """The line for a process that ended over a limit, from its exit code; None for any other end."""
    try:
        what = Exceeded(exitcode)
    except ValueError:
        return None
    if what is Exceeded.ORPHANED:
        return "the process that started the simulation ended; process ended"
    limits = Limits.from_env()
    if what is Exceeded.MEMORY:
        return f"the simulation used more than {gib(limits.memory)} of memory (ZOAF_MAX_MEMORY); process ended"
    return f"the simulation wrote more than {gib(limits.disk)} of files (ZOAF_MAX_DISK); process ended"


def on_end(tell: Callable[[str], None]) -> None:
    """Have ``tell(line)`` called before this process ends over a limit (from the watchdog's thread); once."""
    if tell not in _ON_END:
        _ON_END.append(tell)


def start(limits: Limits, directory: Path, *, parent: int | None = None) -> None:
    """Watch this process and ``directory`` from a daemon thread until the process ends; with ``parent`` (the
    process that started this one and keeps its timeout), end it once ``parent`` is gone: a worker whose zoaf was
    killed (``kill -9``, a CI job's end) ran a deck's endless loop on at full CPU, for good."""
    threading.Thread(target=_watch, args=(limits, directory, parent), name="zoaf-watchdog", daemon=True).start()


def limit_threads() -> None:
    """At most one OpenMP thread per CPU in this process (``OMP_THREAD_LIMIT``, read as libgomp loads: before
    libngspice starts; a lower limit of the user's stays). ngspice starts a deck's ``num_threads`` per analysis,
    and no limit counts threads (their memory is small): ``set num_threads=N`` started N - 1, so 30000 would take
    nearly every process ID of a machine (``pid_max`` 32768 is common), and no program of anyone's could start."""
    cpus = os.cpu_count() or 1
    own = os.environ.get("OMP_THREAD_LIMIT", "")
    os.environ["OMP_THREAD_LIMIT"] = str(min(cpus, int(own)) if own.isdigit() and int(own) > 0 else cpus)


def _watch(limits: Limits, directory: Path, parent: int | None) -> None:
    while True:
        time.sleep(POLL)
        if parent is not None and os.getppid() != parent:     # adopted: its parent ended
            _end(Exceeded.ORPHANED, directory)
        programs = _descendants(os.getpid())
        if _resident(programs) > limits.memory:
            _end(Exceeded.MEMORY, directory)
        if _held(directory) + _held_open(programs) > limits.disk:
            _end(Exceeded.DISK, directory)


_PSS = re.compile(r"^Pss:\s+(\d+) kB", re.M)


def _resident(programs: list[int]) -> int:
    """Resident bytes of this process and of the programs it runs (--allow-shell): a program's were not counted,
    and one allocated past the limit unseen. With programs, proportional sizes: a page a fork still shares with
    this process counts once, not twice (the fork of a large worker is no program over the limit); alone, the
    cheaper resident size (``statm``)."""
    if not programs:
        return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    return sum(_proportional(str(p)) for p in ["self", *programs])


def _proportional(pid: str) -> int:
    """``pid``'s proportional set size in bytes; 0 once it ended (or a fork not yet running its program, whose
    pages are this process's: not dumpable, it cannot be read)."""
    try:
        found = _PSS.search(Path(f"/proc/{pid}/smaps_rollup").read_text())
    except OSError:
        return 0
    return int(found[1]) << 10 if found else 0


def _held(directory: Path) -> int:
    """Bytes of disk the files under ``directory`` take: their allocated blocks (a sparse file counts what it
    holds), at least :data:`ENTRY` each (a million empty files exhaust the inodes, not the bytes). A walk by
    descriptors (:func:`_walk`: a tree thousands of folders deep stopped a recursive count, and one deeper than a
    path's length hid from a count by paths); a folder it cannot list (no permission) or that moved under the count
    counts as more than any limit."""
    total = 0

    def listed(_fd: int, entries: list[_Entry], top: bool) -> None:
        nonlocal total
        total += sum(e.size for e in entries) + (0 if entries or top else ENTRY)   # an empty folder: an entry

    try:
        _walk(directory, listed, strict=True)
    except FileNotFoundError:                           # removed at exit, or not there yet
        return 0
    except (OSError, _Moved):                           # hidden from the count: EACCES, a folder moved away
        return UNCOUNTABLE
    return total


@dataclass(frozen=True)
class _Entry:
    name: str
    folder: bool
    size: int                                           # allocated bytes, at least ENTRY (0 for a folder)


@dataclass
class _Level:
    """A folder the walk is in or above: its name in its parent, its identity, the subfolders still to visit."""

    name: str
    ident: tuple[int, int]
    todo: list[str]


class _Moved(Exception):
    """A folder the walk came up to from below is not the one it went down from (moved meanwhile)."""


def _walk(directory: Path, listed: Callable[[int, list[_Entry], bool], None],
          left: Callable[[int, str], None] | None = None, *, strict: bool, repair: bool = False) -> None:
    """Visit each folder under ``directory`` (itself first) through descriptors, never by a path (a tree deeper
    than ``PATH_MAX`` has folders no path opens) nor through a link: ``listed(fd, entries, top)`` with what it
    holds, then its subfolders, then ``left(parent_fd, name)``. One folder is open at a time (a tree thousands
    deep would take more descriptors than a process may hold): the walk goes up through ``..``, checked to be the
    folder it came down from (else :class:`_Moved`). ``repair``: a folder of this user's that its owner may not
    list, enter or empty gets those rights first. ``strict``: a subfolder that cannot be opened or listed raises
    (else it is passed over); one gone meanwhile, or on another file system, is always passed over. ``directory``
    gone raises FileNotFoundError."""
    fd, entries = _open_folder(None, str(directory), repair, None)
    try:
        levels = [_Level(str(directory), _ident(fd), [])]
        device = levels[0].ident[0]
        while True:
            if entries is not None:                     # a folder just entered
                listed(fd, entries, len(levels) == 1)
                levels[-1].todo = [e.name for e in entries if e.folder]
                entries = None
            if levels[-1].todo:
                name = levels[-1].todo.pop()
                try:
                    child, entries = _open_folder(fd, name, repair, device)
                except FileNotFoundError:
                    continue
                except OSError:
                    if strict:
                        raise
                    continue
                os.close(fd)
                fd = child
                levels.append(_Level(name, _ident(fd), []))
                continue
            done = levels.pop()
            if not levels:
                return
            parent = os.open("..", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=fd)
            os.close(fd)
            fd = parent
            if _ident(fd) != levels[-1].ident:
                raise _Moved(done.name)
            if left is not None:
                left(fd, done.name)
    finally:
        os.close(fd)


def _ident(fd: int) -> tuple[int, int]:
    st = os.fstat(fd)
    return st.st_dev, st.st_ino


def _open_folder(parent: int | None, name: str, repair: bool, device: int | None) -> tuple[int, list[_Entry]]:
    """A descriptor of folder ``name`` (in ``parent``; not through a link) usable as a ``dir_fd``, and its entries;
    FileNotFoundError, as for a folder gone, for one on another file system than ``device`` (a mount: not the
    tree's). ``repair``: opened as a path first, and given its owner's rights to list, enter and empty it where it
    is this user's and lacks them (``umask 477; mkdir d`` makes a folder its owner can write in but not list: no
    removal could empty it), then listed through that descriptor, so that the folder changed is the one listed."""
    flags = os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(name, flags | (os.O_PATH if repair else os.O_RDONLY), dir_fd=parent)
    try:
        st = os.fstat(fd)
        if device is not None and st.st_dev != device:
            raise FileNotFoundError(f"{name}: another file system")
        if not repair:
            return fd, _entries(fd)
        if st.st_uid == os.geteuid() and st.st_mode & stat.S_IRWXU != stat.S_IRWXU:
            os.chmod(f"/proc/self/fd/{fd}", stat.S_IMODE(st.st_mode) | stat.S_IRWXU)
        readable = os.open(f"/proc/self/fd/{fd}", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            return fd, _entries(readable)
        finally:
            os.close(readable)
    except BaseException:
        os.close(fd)
        raise


def _entries(fd: int) -> list[_Entry]:
    """The entries of the folder open for reading as ``fd`` (left open: ``scandir`` lists a copy): a subfolder (not
    a link to one), or a file and its blocks."""
    out = []
    with os.scandir(fd) as listing:
        for e in listing:
            try:
                if e.is_dir(follow_symlinks=False):
                    out.append(_Entry(e.name, True, 0))
                else:
                    out.append(_Entry(e.name, False, max(e.stat(follow_symlinks=False).st_blocks * 512, ENTRY)))
            except OSError:                             # removed while listed
                continue
    return out


def _held_open(programs: list[int]) -> int:
    """Bytes of disk the files ``programs`` (``--allow-shell``) hold open take, once no folder lists them:
    ``exec 3>f; rm f`` then writing on filled the disk past the limit, unseen by the walk of the private directory
    (the kernel frees the blocks only when the program ends)."""
    total, seen = 0, set()
    for program in programs:
        try:
            fds = os.listdir(f"/proc/{program}/fd")
        except OSError:                                 # ended meanwhile
            continue
        for fd in fds:
            try:
                st = os.stat(f"/proc/{program}/fd/{fd}")
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode) and st.st_nlink == 0 and (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_blocks * 512
    return total


def _descendants(pid: int) -> list[int]:
    """``pid``'s programs now, by the kernel's per-thread ``children`` lists, followed down (a few reads each poll);
    where the kernel keeps none, by a scan of every process (``proctree.descendants``)."""
    out, todo = [], [pid]
    while todo:
        kids = _children(todo.pop())
        if kids is None:
            return proctree.descendants(pid)
        out += kids
        todo += kids
    return out


def _children(pid: int) -> list[int] | None:
    """``pid``'s children now ([] when it ended), or None where the kernel keeps no ``children`` lists."""
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []
    kids = []
    for tid in tids:
        try:
            kids += [int(c) for c in Path(f"/proc/{pid}/task/{tid}/children").read_text().split()]
        except FileNotFoundError:
            if Path(f"/proc/{pid}/task/{tid}").exists():
                return None                         # the thread is there, its list is not: no such lists here
        except OSError:
            continue
    return kids


def _end(what: Exceeded, directory: Path) -> None:
    """One line, the private directory emptied (this thread predates the Landlock of the simulating one), exit.

    A program the deck ran (--allow-shell) is stopped first, so that the simulation thread, waiting for its
    output, stays put; it is killed just before the exit (this thread holds the GIL meanwhile: the simulation
    cannot send a reply in between)."""
    held = proctree.send(proctree.descendants(os.getpid()), signal.SIGSTOP)
    line = reason(what) or ""
    try:
        sys.stderr.write(f"zoaf: {line}\n")
        sys.stderr.flush()
    except (OSError, ValueError):                       # the relay's reader is gone (an orphan's): exit all the same
        pass
    for tell in _ON_END:
        try:
            tell(line)
        except Exception:                               # noqa: BLE001 - the process ends all the same
            pass
    remove_tree(directory)
    proctree.send(held, signal.SIGKILL)
    os._exit(what.value)


def remove_tree(directory: Path) -> None:
    """Remove ``directory`` (a folder of this user's, not a link) quietly, walking it by descriptors
    (:func:`_walk`): shutil's removal recursed per folder, and a tree a program made thousands of folders deep
    raised RecursionError; ``rm -rf`` and a walk by paths left the folders of a tree deeper than a path's length.
    A folder its owner may not list or empty is given its owner's rights first, never through a link (a folder
    swapped for one since it was listed is left alone); a folder moved during the walk ends it (the programs that
    could move one are stopped or ended before a removal)."""
    try:
        top = os.lstat(directory)
    except OSError:
        return
    if not stat.S_ISDIR(top.st_mode) or top.st_uid != os.geteuid():     # another user's name in /tmp: not ours
        return

    def unlink_files(fd: int, entries: list[_Entry], _top: bool) -> None:
        for e in entries:
            if not e.folder:
                _quietly(os.unlink, e.name, dir_fd=fd)

    def remove_folder(parent: int, name: str) -> None:
        _quietly(os.rmdir, name, dir_fd=parent)

    try:
        _walk(directory, unlink_files, remove_folder, strict=False, repair=True)
    except (OSError, _Moved):
        return
    _quietly(os.rmdir, directory)


def _quietly(call: Callable[..., None], *args: object, **kw: object) -> None:
    try:
        call(*args, **kw)
    except OSError:                                     # gone already, or not ours to remove
        pass


#: :func:`remove_after_exit`'s script: in the background (no descendant of ours: a Dask worker kills those at a
#: timeout), read the pipe to its end, then remove the folder.
_JANITOR = 'exec 3<&0; (cat <&3 > /dev/null; exec rm -rf --one-file-system -- "$0") > /dev/null 2>&1 &'


def remove_after_exit(directory: Path) -> None:
    """Have a program outside the lock-down remove ``directory`` when this process ends: a Dask worker that crashes
    or is restarted at a timeout runs no exit handler, and no parent removes its directory (as the pools do). The
    pipe's only writer is this process (close-on-exec); what a deck writes into it is discarded."""
    read, write = os.pipe()
    try:
        subprocess.run(["sh", "-c", _JANITOR, str(directory)], stdin=read, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, start_new_session=True, env={"PATH": os.defpath}, timeout=30)
    except (OSError, subprocess.SubprocessError):       # no sh: the exit handler alone removes it
        os.close(write)
    finally:
        os.close(read)                                   # `write` stays open until this process ends: the signal

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
in the private directory; default 2 GiB), in bytes or with a binary suffix (``512M``, ``4G``). A Dask worker's
process is Dask's: only its disk is watched (Dask's nanny has its own memory limit).
"""
from __future__ import annotations

import enum
import os
import re
import shutil
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


@dataclass(frozen=True)
class Limits:
    memory: int | None      # resident bytes; None: not watched (a Dask worker)
    disk: int               # bytes in the private directory

    @classmethod
    def from_env(cls, *, own_process: bool = True) -> "Limits":
        """The limits the environment sets (a pool's parent reads the same ones as its workers)."""
        half = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 2
        memory = _env_bytes("ZOAF_MAX_MEMORY", half)
        if memory < MIN_MEMORY:         # every worker would be ended at its first sample, each simulation "crashed"
            raise InputError(f"ZOAF_MAX_MEMORY={os.environ.get('ZOAF_MAX_MEMORY')}: less than a simulating process "
                             f"needs (at least {MIN_MEMORY >> 20}M)")
        disk = _env_bytes("ZOAF_MAX_DISK", DEFAULT_DISK)
        if disk < MIN_DISK:             # every simulation would be ended at its first sample (ZOAF_MAX_DISK=0)
            raise InputError(f"ZOAF_MAX_DISK={os.environ.get('ZOAF_MAX_DISK')}: less than a simulation's private "
                             f"folder holds (at least {MIN_DISK >> 20}M)")
        return cls(memory if own_process else None, disk)


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
    limits = Limits.from_env()
    if what is Exceeded.MEMORY:
        return f"the simulation used more than {gib(limits.memory or 0)} of memory (ZOAF_MAX_MEMORY); process ended"
    return f"the simulation wrote more than {gib(limits.disk)} of files (ZOAF_MAX_DISK); process ended"


def on_end(tell: Callable[[str], None]) -> None:
    """Have ``tell(line)`` called before this process ends over a limit (from the watchdog's thread); once."""
    if tell not in _ON_END:
        _ON_END.append(tell)


def start(limits: Limits, directory: Path) -> None:
    """Watch this process and ``directory`` from a daemon thread until the process ends."""
    threading.Thread(target=_watch, args=(limits, directory), name="zoaf-watchdog", daemon=True).start()


def limit_threads() -> None:
    """At most one OpenMP thread per CPU in this process (``OMP_THREAD_LIMIT``, read as libgomp loads: before
    libngspice starts; a lower limit of the user's stays). ngspice starts a deck's ``num_threads`` per analysis,
    and no limit counts threads (their memory is small): ``set num_threads=N`` started N - 1, so 30000 would take
    nearly every process ID of a machine (``pid_max`` 32768 is common), and no program of anyone's could start."""
    cpus = os.cpu_count() or 1
    own = os.environ.get("OMP_THREAD_LIMIT", "")
    os.environ["OMP_THREAD_LIMIT"] = str(min(cpus, int(own)) if own.isdigit() and int(own) > 0 else cpus)


def _watch(limits: Limits, directory: Path) -> None:
    while True:
        time.sleep(POLL)
        programs = _descendants(os.getpid())
        if limits.memory is not None and _resident(programs) > limits.memory:
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
    holds), at least :data:`ENTRY` each (a million empty files exhaust the inodes, not the bytes). A walk, not a
    recursion (a program's tree thousands of folders deep stopped a recursive count, and the watchdog with it); a
    folder it cannot list (too deep for a path, no permission) counts as more than any limit."""
    total, todo = 0, [(directory, True)]
    while todo:
        folder, top = todo.pop()
        try:
            entries = list(os.scandir(folder))
        except FileNotFoundError:                       # removed at exit, or not there yet
            continue
        except OSError:                                 # hidden from the count: ENAMETOOLONG, EACCES
            return UNCOUNTABLE
        total += 0 if entries or top else ENTRY         # an empty folder counts as an entry
        for e in entries:
            try:
                if e.is_dir(follow_symlinks=False):
                    todo.append((Path(e.path), False))
                else:
                    total += max(e.stat(follow_symlinks=False).st_blocks * 512, ENTRY)
            except OSError:                             # removed while counted
                continue
    return total


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
    sys.stderr.write(f"zoaf: {line}\n")
    sys.stderr.flush()
    for tell in _ON_END:
        try:
            tell(line)
        except Exception:                               # noqa: BLE001 - the process ends all the same
            pass
    remove_tree(directory)
    proctree.send(held, signal.SIGKILL)
    os._exit(what.value)


def remove_tree(directory: Path, *, programs: bool = False) -> None:
    """Remove ``directory`` quietly. shutil's removal recurses per folder: a tree a program made thousands of
    folders deep raised RecursionError (through ``ignore_errors``: a traceback in zoaf's own process). Where
    ``programs`` may run (not in a sandboxed process), ``rm -rf`` then removes what is left. A folder its owner may
    not list or empty is given its owner's rights first (:func:`_reopen`)."""
    for attempt in range(2):
        if attempt:
            _reopen(directory)
        try:
            shutil.rmtree(directory, ignore_errors=True)
        except RecursionError:
            if programs:
                subprocess.run(["rm", "-rf", "--one-file-system", "--", str(directory)], capture_output=True,
                               check=False, timeout=600)
        if not os.path.lexists(directory):
            return


def _reopen(directory: Path) -> None:
    """Give each folder under ``directory`` (a folder of this user's, not a link) its owner's rights to list, enter
    and empty it. A program needs no ``chmod`` to make a folder its owner cannot list: ``umask 477; mkdir d`` makes
    one it can still write in; no removal could empty it, and it stayed, with what it held, in the temporary folder
    after the run. Never through a link: each folder is changed and listed through a descriptor of it, once that is
    the folder its parent listed (a folder swapped for a link since, here or above, is left alone). A walk, as
    :func:`_held`'s."""
    try:
        top = os.lstat(directory)
    except OSError:
        return
    if not stat.S_ISDIR(top.st_mode) or top.st_uid != os.geteuid():     # another user's name in /tmp: not ours
        return
    todo = [(str(directory), top)]
    while todo:
        path, listed = todo.pop()
        try:
            fd = os.open(path, os.O_PATH | os.O_NOFOLLOW | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError:                                 # removed, or swapped for a link, meanwhile
            continue
        try:
            now = os.fstat(fd)
            if (now.st_dev, now.st_ino) != (listed.st_dev, listed.st_ino):
                continue
            if now.st_mode & stat.S_IRWXU != stat.S_IRWXU:
                os.chmod(f"/proc/self/fd/{fd}", stat.S_IMODE(now.st_mode) | stat.S_IRWXU)
            with os.scandir(f"/proc/self/fd/{fd}") as entries:
                todo += [(os.path.join(path, e.name), e.stat(follow_symlinks=False)) for e in entries
                         if e.is_dir(follow_symlinks=False)]
        except OSError:
            continue
        finally:
            os.close(fd)


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

"""End a process together with every process it started; keep those programs from reaching into it.

Under ``--allow-shell`` a deck's back-quoted command is a program of its own: killing the worker that ran it (a
timeout, Ctrl-C, a :mod:`zoaf.watchdog` limit) would leave the program running, adopted by init, still writing
into a directory that is being removed. The tree is read from ``/proc/*/stat`` (the kernel's per-task
``children`` lists are not always built in), with the process stopped first so that it starts nothing while
its tree is read. A program runs in its worker's Landlock domain, which lets it trace the worker: the worker is
made untraceable and hands its programs no capability (:func:`untraceable`, :func:`no_capabilities_for_programs`),
nor its descriptors (:func:`keep_descriptors`).
"""
from __future__ import annotations

import ctypes
import os
import signal
import time
from multiprocessing import resource_tracker
from pathlib import Path

__all__ = ["descendants", "end_descendants", "keep_descriptors", "kill_tree", "no_capabilities_for_programs", "send",
           "untraceable"]

_LIBC = ctypes.CDLL(None, use_errno=True)
#: prctl(2) options: a process that is not "dumpable" may be traced, or have its ``/proc/PID/mem``, ``environ``
#: and descriptors read, only by a holder of CAP_SYS_PTRACE; a capability dropped from the calling thread's
#: bounding set is one no program it runs gets, even as root.
_PR_SET_DUMPABLE, _PR_CAPBSET_DROP = 4, 24
#: capget/capset(2): the header's version; the three sets of a 32-bit half of the capabilities.
_CAPABILITY_V3 = 0x20080522


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


#: Seconds :func:`end_descendants` goes on killing what a process's descendants start as they are killed.
END_WAIT = 2.0


def descendants(pid: int, *, live: bool = False) -> list[int]:
    """The processes ``pid`` started, and theirs, at this moment (``live``: not those ended, zombies unreaped)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:                                 # ended while listed
            continue
        state, ppid = text.rsplit(")", 1)[1].split()[:2]   # after "pid (name)": state, ppid
        if not (live and state == "Z"):
            children.setdefault(int(ppid), []).append(int(stat.parent.name))
    out, todo = [], [pid]
    while todo:
        kids = children.get(todo.pop(), [])
        out += kids
        todo += kids
    return out


def kill_tree(pid: int) -> None:
    """SIGKILL ``pid`` and every process it started; quiet about those already gone."""
    send([pid], signal.SIGSTOP)
    send([pid, *descendants(pid)], signal.SIGKILL)


def end_descendants(pid: int) -> None:
    """SIGKILL every process ``pid`` (this process, a subreaper: its orphans stay its own) started, again until none
    lives: one may fork between the listing and the kill (its child, orphaned, is then this process's)."""
    end = time.monotonic() + END_WAIT
    while (pids := descendants(pid, live=True)) and time.monotonic() < end:
        send(pids, signal.SIGKILL)
        time.sleep(0.01)


def send(pids: list[int], sig: signal.Signals) -> list[int]:
    """Send ``sig`` to each of ``pids`` that still exists; returns ``pids``."""
    for pid in pids:
        try:
            os.kill(pid, sig)
        except OSError:
            pass
    return pids


def untraceable() -> None:
    """No program of the user's (a deck's, run with ``--allow-shell``: the same user, the simulation thread's own
    Landlock domain) may trace this process, read its memory, first environment or descriptors, nor take them."""
    _LIBC.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0)


def no_capabilities_for_programs() -> None:
    """Leave the calling thread (so the threads and programs it starts) no capability to hand a program: one run as
    root kept them all, and what they allow Landlock does not govern: trace the worker (CAP_SYS_PTRACE), make a
    device file in the private directory (CAP_MKNOD: the kernel log, a disk, a terminal), load a kernel module,
    reboot. The thread keeps its own (it reads the deck as before)."""
    for cap in range(int(Path("/proc/sys/kernel/cap_last_cap").read_text()) + 1):
        _LIBC.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0)    # EPERM without CAP_SETPCAP: then there are none to drop
    header, data = _CapHeader(_CAPABILITY_V3, 0), (_CapData * 2)()
    if _LIBC.capget(ctypes.byref(header), data) == 0 and any(d.inheritable for d in data):
        for d in data:
            d.inheritable = 0                           # root's programs get the inheritable set too
        _LIBC.capset(ctypes.byref(header), data)


def keep_descriptors() -> None:
    """Keep this process's descriptors (but stdin, stdout, stderr: a socket zoaf relays, :mod:`zoaf.relay`, set
    as the process started) from the programs a deck may run: a pool
    worker's pipe to its parent carries pickles, which the parent would load. And put ``/dev/null`` in place of
    three that Landlock does not govern when reopened through ``/proc/self/fd`` (a pipe): zoaf's standard input,
    which pool and Dask workers shared (``filesource file=/proc/self/fd/0`` made what was piped into zoaf a
    measure, and took it from the shell loop that fed zoaf its decks); zoaf's standard output,
    which a worker shared (a deck titled ``>`` ran ``echo TEXT $curplottitle /proc/self/fd/1`` into ``zoaf
    optimize --json``'s output), and the pipe to ``multiprocessing``'s resource tracker, a process of zoaf's
    outside the sandbox that unlinks at its end the shared memory and semaphores named on it (``.options
    g=">"``, then ``echo REGISTER:/name:shared_memory $g /proc/self/fd/6`` had another program's
    ``/dev/shm/name`` deleted; what this process registers is then not unlinked should it crash)."""
    for name in os.listdir(f"/proc/{os.getpid()}/fd"):
        fd = int(name)
        if fd > 2:
            try:
                os.set_inheritable(fd, False)
            except OSError:                             # the listing's own descriptor, closed since
                pass
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, resource_tracker._resource_tracker._fd):
        if fd is not None:
            os.dup2(null, fd, inheritable=fd in (0, 1))
    os.close(null)

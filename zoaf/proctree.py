"""End a process together with every process it started.

Under ``--allow-shell`` a deck's back-quoted command is a program of its own: killing the worker that ran it (a
timeout, Ctrl-C, a :mod:`zoaf.watchdog` limit) would leave the program running, adopted by init, still writing
into a directory that is being removed. The tree is read from ``/proc/*/stat`` (the kernel's per-task
``children`` lists are not always built in), with the process stopped first so that it starts nothing while
its tree is read.
"""
from __future__ import annotations

import os
import signal
from pathlib import Path

__all__ = ["descendants", "kill_tree", "send"]


def descendants(pid: int) -> list[int]:
    """The processes ``pid`` started, and theirs, at this moment."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:                                 # ended while listed
            continue
        ppid = int(text.rsplit(")", 1)[1].split()[1])   # after "pid (name)": state, ppid
        children.setdefault(ppid, []).append(int(stat.parent.name))
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


def send(pids: list[int], sig: signal.Signals) -> list[int]:
    """Send ``sig`` to each of ``pids`` that still exists; returns ``pids``."""
    for pid in pids:
        try:
            os.kill(pid, sig)
        except OSError:
            pass
    return pids

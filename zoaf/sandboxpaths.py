"""The files a sandboxed simulation thread may reach under Landlock (:mod:`zoaf.sandbox`'s layer 3): the system
trees, its own ``/proc`` entries, Python's prefixes and the ``sys.path`` entries that hold packages, the deck's
folder and files, the private directory; the devices it may write. Kept apart from the lock-down itself, which
only applies them, so that what a deck may read is read in one place."""
from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from pathlib import Path

__all__ = ["DEVICE_FILES", "PROC_READ", "RANDOM_DEVICES", "SYSTEM_READ", "beneath", "read_roots"]

#: System trees a simulation reads: libraries, ngspice's code models and scripts, configuration, devices.
SYSTEM_READ = ("/usr", "/lib", "/lib32", "/lib64", "/libx32", "/bin", "/sbin", "/etc", "/sys", "/opt")
#: Of /proc, besides the process's own entries: what ngspice's ``rusage`` and Python read.
PROC_READ = ("/proc/meminfo", "/proc/cpuinfo", "/proc/stat")
#: Single files a sandboxed thread may also write (libraries open them for output they discard).
DEVICE_FILES = ("/dev/null", "/dev/zero", "/dev/full")
#: Devices it may read besides: not the rest of /dev (/dev/shm holds other programs' data, /dev/tty your keys).
RANDOM_DEVICES = ("/dev/random", "/dev/urandom")


def beneath(path: Path, root: Path) -> bool:
    """``path`` is ``root`` or lies inside it (paths as given: resolve first where links matter)."""
    return path == root or root in path.parents


#: Folder names that hold installed Python packages (a ``sys.path`` entry beneath one is a library).
LIBRARY_FOLDERS = frozenset({"site-packages", "dist-packages"})


def read_roots(read: Iterable[Path], directory: Path) -> list[Path]:
    """Every tree a sandboxed thread may read: system, Python, the deck's folder and files (``read``), the
    private directory."""
    python = [Path(p).resolve() for p in {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}]
    package = Path(__file__).resolve().parent           # zoaf itself (an editable install is not on sys.path)
    system = [*SYSTEM_READ, *PROC_READ, *RANDOM_DEVICES, f"/proc/{os.getpid()}"]   # not others' environments
    roots = [Path(p) for p in system] + python + _library_entries(python) + [package]
    return [p for p in dict.fromkeys(roots + list(read) + [directory]) if p != Path("/")]


def _library_entries(python: list[Path]) -> list[Path]:
    """The ``sys.path`` entries that hold installed packages: beneath a Python prefix, in a site-packages
    folder, or holding the ``*.dist-info`` folders that pip writes (``pip install --target DIR`` on
    ``PYTHONPATH``: PySpice imported from there after the lock-down failed with EACCES). Not the others:
    ``python -m`` puts the working directory first, ``python script.py`` the script's folder, and either may be
    the user's home."""
    entries = [Path(p).resolve() for p in sys.path if p]   # '' is the working directory
    return [p for p in entries
            if any(beneath(p, q) for q in python) or LIBRARY_FOLDERS & set(p.parts) or _holds_distributions(p)]


def _holds_distributions(folder: Path) -> bool:
    try:
        return any(folder.glob("*.dist-info"))
    except OSError:
        return False

"""Red team, round 19: the process around the simulation. Its persona (``READ_IMPLIES_EXEC`` makes every readable
mapping executable, past a filter that reads ``mmap``'s arguments) and new namespaces, in which a program holds every
capability again.

Native code in the worker after the lock-down is modelled by Python's ``ctypes`` in a process locked down as a
worker is (:func:`zoaf.sandbox.enter`); a program, by a deck's back-quoted command run with ``--allow-shell``.
"""
from __future__ import annotations

import ctypes
import mmap
import shutil
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest
from attackkit import hijacker, in_each_backend, program_deck
from fresh import in_fresh_process

from zoaf.circuit import CircuitProblem
from zoaf.syscalls import PER_QUERY, READ_IMPLIES_EXEC

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux sandbox")


def _personality(persona: int) -> tuple[int, int]:
    """``personality(persona)``'s result and errno."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.personality.argtypes = [ctypes.c_ulong]
    return libc.personality(persona), ctypes.get_errno()


def _mapped_readable(path: Path) -> str:
    """The permissions the kernel gives ``path`` mapped readable only (``r--s``, or ``r-xs`` when it added exec)."""
    with path.open("rb") as f, mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ):
        return next(line.split()[1] for line in Path("/proc/self/maps").read_text().splitlines()
                    if line.endswith(str(path)))


def _map_around_the_lock_down(folder: str) -> tuple[str, str, tuple[int, int], int]:
    """In a process started under ``READ_IMPLIES_EXEC`` (as ``setarch -X`` starts one where ``execve`` keeps it),
    a file of the deck's folder mapped readable before and after the lock-down, what setting the flag again after
    it returns, and the thread's persona at the end."""
    from zoaf import sandbox
    from zoaf.spice import shared_ngspice

    _personality(READ_IMPLIES_EXEC)
    before = _mapped_readable(Path(folder) / "before.dat")
    sandbox.designate()
    sandbox.enter(sandbox.Policy((Path(folder),)), start=shared_ngspice)
    after = _mapped_readable(Path(folder) / "after.dat")
    again = _personality(READ_IMPLIES_EXEC)
    return before, after, again, _personality(PER_QUERY)[0]


def _read_only_library(library: Path) -> Path:
    """A copy of ``library`` whose loadable segments are all read-only (no ``PF_X``): ``dlopen`` maps it without
    ``PROT_EXEC``, so no filter of ``mmap``'s arguments sees new code."""
    data = bytearray(library.read_bytes())
    (phoff,), (phentsize, phnum) = struct.unpack_from("<Q", data, 0x20), struct.unpack_from("<HH", data, 0x36)
    for at in range(phoff, phoff + phentsize * phnum, phentsize):
        kind, flags = struct.unpack_from("<II", data, at)
        if kind == 1:                                    # PT_LOAD
            struct.pack_into("<I", data, at + 4, flags & ~1)
    copy = library.with_name("read-only.so")
    copy.write_bytes(bytes(data))
    return copy


def _load_under_read_implies_exec(folder: str, library: str) -> None:
    """``codemodel library`` with the persona a deck's native code set after a lock-down without "no new code"."""
    from zoaf import sandbox
    from zoaf.spice import shared_ngspice

    sandbox.enter(sandbox.Policy((Path(folder),)))
    _personality(READ_IMPLIES_EXEC)
    shared_ngspice().command(f"codemodel {library}")
    time.sleep(0.5)


@pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc")
def test_read_implies_exec_maps_nothing_executable_after_the_lock_down(tmp_path: Path):
    """Under ``READ_IMPLIES_EXEC`` the kernel adds ``PROT_EXEC`` to a readable mapping after seccomp has read its
    arguments: a library whose segments are all read-only ran its constructor, which had zoaf's watchdog thread
    (Landlock does not confine it) write any file. The worker kept the persona it started with, and its native code
    could set it again. Now the lock-down clears it and the code filter refuses ``personality`` but its query."""
    marker = tmp_path / "marker"
    library = _read_only_library(hijacker(tmp_path, marker))
    in_fresh_process(_load_under_read_implies_exec, str(tmp_path), str(library))
    assert marker.exists()                               # real: a library without executable segments ran
    for name in ("before.dat", "after.dat"):
        (tmp_path / name).write_bytes(b"\xc3" * 4096)
    before, after, again, persona = in_fresh_process(_map_around_the_lock_down, str(tmp_path))
    assert before.startswith("r-x")                      # real: the persona made the readable mapping executable
    assert after.startswith("r--"), after
    assert again == (-1, 1) and not persona & READ_IMPLIES_EXEC, (again, hex(persona))


#: A program (--allow-shell) that makes a new user namespace, where it would hold every capability again: by
#: ``unshare`` (1), ``clone`` (2), ``clone3`` (4), each child saying whether it holds any; and a ``userfaultfd`` (8).
_NAMESPACES = r'''
import ctypes, os, platform
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
CLONE_NEWUSER, SIGCHLD = 0x10000000, 17
CLONE, CLONE3, USERFAULTFD = {"x86_64": (56, 435, 323), "aarch64": (220, 435, 282)}[platform.machine()]
def capable():
    header, data = (ctypes.c_uint32 * 2)(0x20080522, 0), (ctypes.c_uint32 * 6)()
    return libc.capget(header, data) == 0 and data[0] != 0
def held(start):
    pid = start()
    if pid == 0:
        os._exit(0 if capable() else 1)
    return pid > 0 and os.waitpid(pid, 0)[1] == 0
def unshared():
    pid = os.fork()
    if pid == 0 and libc.unshare(CLONE_NEWUSER) != 0:
        os._exit(1)
    return pid
clone3_args = (ctypes.c_uint64 * 8)(CLONE_NEWUSER, 0, 0, 0, SIGCHLD, 0, 0, 0)
got = held(unshared)
got |= 2 * held(lambda: libc.syscall(CLONE, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0))
got |= 4 * held(lambda: libc.syscall(CLONE3, clone3_args, ctypes.sizeof(clone3_args)))
got |= 8 * (libc.syscall(USERFAULTFD, 1) >= 0)
print(got)
'''


def test_a_program_a_deck_runs_makes_no_namespace_nor_fault_handler_in_any_backend(tmp_path: Path):
    """A program made a new user namespace (``unshare``, ``clone``, ``clone3``) and held every capability in it: no
    ``mount`` (Landlock refuses it), but the kernel code such namespaces open to any user (``fsopen``/``fsconfig``
    of a new mount namespace's file systems), and a ``userfaultfd``, which stretches a kernel race at will. Proved
    real first, where this machine lets a user make one: the program run by itself gets them all."""
    (tmp_path / "ns.py").write_text(_NAMESPACES)
    direct = subprocess.run([sys.executable, str(tmp_path / "ns.py")], capture_output=True, text=True, timeout=60)
    if int(direct.stdout) & 7:                           # user namespaces are allowed here
        assert int(direct.stdout) & 7 == 7, direct.stdout
    deck = program_deck(tmp_path, "namespaces", f"python3 {tmp_path / 'ns.py'}")
    for kw, [record], _ in in_each_backend(lambda: CircuitProblem(deck, allow_shell=True)):
        assert record.outcome.measures["got"] == 0, (kw, record.outcome)

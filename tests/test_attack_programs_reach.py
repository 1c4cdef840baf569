"""Attack decks whose programs (``--allow-shell``) go for the worker that ran them or for what else is yours: its
memory and descriptors (tracing), your terminal, capabilities, keyrings, shared memory, others' limits, folder
watches.

Each attack is proved real first where it can be (plain Python or ``ngspice -b`` does it), then run through
zoaf's backends (``workers=0``, a pool worker, Dask), where it must get nothing and leave nothing behind.
"""
from __future__ import annotations

import ctypes
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from attackkit import BACKENDS, DIVIDER_SPEC as SPEC, in_each_backend, program_deck

from zoaf.circuit import CircuitProblem
from zoaf.evaluate import Evaluator

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux sandbox")


# -- the worker's own process: a program it runs shares its Landlock domain --------------------------------------
#: A program (--allow-shell) that goes for the worker that ran it, whose /proc entries Landlock lets it read: the
#: worker's first environment, its memory, its descriptors, and tracing its simulation thread, which is in the
#: program's own Landlock domain. Traced, it writes into the memory every thread shares a few instructions that
#: open the marker (argv[1]) and end the process, over ``opendir``, which the watchdog's thread (not under Landlock)
#: calls every 0.1 s. It prints what it got: 1 the secret (argv[2]) of the environment, 2 the memory
#: opened, 4 a descriptor taken (``pidfd_getfd``), 8 a thread traced.
_TRACER = r'''
import ctypes, os, struct, sys, time
marker, secret = sys.argv[1].encode(), sys.argv[2].encode()
libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace.restype = ctypes.c_long
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
def readable(pid):
    try:
        open(f"/proc/{pid}/stat").close()
        return True
    except OSError:
        return False
wpid, got = next(q for q in range(os.getppid(), 1, -1) if readable(q)), 0
try:
    got |= 1 if secret in open(f"/proc/{wpid}/environ", "rb").read() else 0
except OSError:
    pass
try:
    open(f"/proc/{wpid}/mem", "rb").close()
    got |= 2
except OSError:
    pass
pidfd = libc.syscall(434, wpid, 0)
got |= 4 if pidfd >= 0 and libc.syscall(438, pidfd, 0, 0) >= 0 else 0
class Info(ctypes.Structure):
    _fields_ = [("fname", ctypes.c_char_p), ("fbase", ctypes.c_void_p), ("sname", ctypes.c_char_p),
                ("saddr", ctypes.c_void_p)]
fn, info = ctypes.cast(libc.opendir, ctypes.c_void_p).value, Info()
libc.dladdr(ctypes.c_void_p(fn), ctypes.byref(info))
code = bytes.fromhex("488d3d1d000000be41000000baa4010000b8020000000f05bf4d000000b8e70000000f05") + marker + b"\0"
code += b"\x90" * (-len(code) % 8)
for tid in sorted(int(t) for t in os.listdir(f"/proc/{wpid}/task")):
    if libc.ptrace(16, tid, None, None) != 0:               # PTRACE_ATTACH
        continue
    got |= 8
    os.waitpid(tid, 0x40000000)
    lib = os.path.realpath(info.fname.decode())
    base = next(int(ln.split("-")[0], 16) for ln in open(f"/proc/{wpid}/maps")
                if ln.split()[-1:] and os.path.realpath(ln.split()[-1]) == lib and int(ln.split()[2], 16) == 0)
    for i in range(0, len(code), 8):                          # PTRACE_POKEDATA
        libc.ptrace(5, tid, ctypes.c_void_p(base + fn - info.fbase + i),
                    ctypes.c_void_p(struct.unpack("<q", code[i:i + 8])[0]))
    time.sleep(2)
    break
print(got)
'''


@pytest.mark.skipif(os.uname().machine != "x86_64" or not shutil.which("python3"), reason="x86-64 code; python3")
def test_a_program_a_deck_runs_cannot_trace_or_read_its_worker_in_any_backend(tmp_path: Path, monkeypatch):
    """With --allow-shell a deck's program traced the worker's simulation thread (Landlock let it: the same domain)
    and wrote code into the memory the worker's other threads run, which Landlock does not confine: that code wrote
    a file outside the private directory (any file). It also read the worker's first environment (your tokens)
    from ``/proc/PID/environ`` and its memory, and took its descriptors (the pipe to zoaf) with ``pidfd_getfd``.
    Before the worker was made untraceable, the marker appeared in every backend (the worker ended with the code's
    exit status, 77)."""
    secret = "rt-" + os.urandom(8).hex()
    monkeypatch.setenv("RT_TRACE_SECRET", secret)
    (tmp_path / "tracer.py").write_text(_TRACER)
    (tmp_path / "deck.toml").write_text(SPEC.replace("vo = {}", "vo = {}\ngot = {}"))
    deck = tmp_path / "deck.cir"
    marker = tmp_path / "outside" / "marker"
    marker.parent.mkdir()
    deck.write_text(f"traces\n.param r1=1k\nv1 in 0 dc 1\nr1 in out {{r1}}\nr2 out 0 1k\n.control\n"
                    f"set x = `python3 {tmp_path / 'tracer.py'} {marker} {secret}`\nop\nlet vo = v(out)\n"
                    "let got = $x\nprint vo got\n.endc\n.end\n")
    for kw, [record], _ in in_each_backend(lambda: CircuitProblem(deck, allow_shell=True)):
        assert not marker.exists(), kw
        assert record.outcome.measures == {"vo": pytest.approx(record.outcome.measures["vo"]), "got": 0.0}, kw


#: Runs the deck (argv[1]) with --allow-shell in every backend, on the terminal it was given.
_ON_A_TERMINAL = """
import sys
import numpy as np
from zoaf.circuit import CircuitProblem
from zoaf.evaluate import Evaluator
for kw in ({"workers": 0}, {"workers": 1}, {"workers": 1, "dask": "local"}):
    with Evaluator(CircuitProblem(sys.argv[1], allow_shell=True), **kw) as ev:
        [record] = ev.evaluate(np.array([[0.5]]))
    print(kw, sorted(record.outcome.measures))
"""


#: A program that types a command into its stderr's terminal, then takes the terminal's foreground.
_TYPIST = """
import fcntl, os, signal, termios
signal.signal(signal.SIGTTOU, signal.SIG_IGN)
try:
    for c in b"touch pwned\\n":
        fcntl.ioctl(2, termios.TIOCSTI, bytes([c]))
except OSError:
    pass
try:
    os.setpgid(0, 0)
    os.tcsetpgrp(2, os.getpgrp())
    mode = termios.tcgetattr(2)
    mode[3] |= termios.TOSTOP
    termios.tcsetattr(2, termios.TCSANOW, mode)
except OSError:
    pass
"""


def _typed_on_a_terminal(command: list[str]) -> tuple[bytes, bytes]:
    """What ``command``, run on a new terminal of its own (its controlling one), typed there (what your shell would
    read and run once it ends), and what it printed."""
    import fcntl
    import pty
    import termios

    master, slave = pty.openpty()
    try:
        subprocess.run(command, stdin=slave, stdout=slave, stderr=slave, start_new_session=True, timeout=300,
                       preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0))
        os.set_blocking(slave, False)
        os.set_blocking(master, False)
        read = []
        for fd in (slave, master):
            try:
                read.append(os.read(fd, 1 << 16))
            except BlockingIOError:
                read.append(b"")
        return read[0], read[1]
    finally:
        os.close(master)
        os.close(slave)


@pytest.mark.skipif(not shutil.which("python3"), reason="the deck's program is a python3 script")
def test_a_program_a_deck_runs_cannot_type_into_your_terminal_in_any_backend(tmp_path: Path):
    """A program (--allow-shell) holds the worker's stderr, zoaf's: on a terminal, ``ioctl(TIOCSTI)`` typed a
    command into it, which your shell read and ran once zoaf ended, outside any sandbox; and it took the
    terminal's foreground (``tcsetpgrp``, with ``TOSTOP``): zoaf, in the background, stopped at its next line (or,
    its group orphaned, died of EIO). Proved real first: after plain ``ngspice -b`` the command waits on the
    terminal."""
    (tmp_path / "typist.py").write_text(_TYPIST)
    (tmp_path / "deck.toml").write_text(SPEC)
    deck = tmp_path / "deck.cir"
    deck.write_text(f"types\n.param r1=1k\nv1 in 0 dc 1\nr1 in out {{r1}}\nr2 out 0 1k\n.control\n"
                    f"set x = `python3 {tmp_path / 'typist.py'}`\nop\nlet vo = v(out)\nprint vo\n.endc\n.end\n")
    typed, _ = _typed_on_a_terminal(["ngspice", "-b", str(deck)])
    assert typed == b"touch pwned\n"                                  # real
    typed, printed = _typed_on_a_terminal([sys.executable, "-c", _ON_A_TERMINAL, str(deck)])
    assert typed == b"", printed
    assert printed.count(b"['vo']") == 3, printed                     # each backend simulated


#: A program that prints 1 when it made a device file (``/dev/null``'s numbers) in its working directory, plus 2
#: when it holds any capability (capget: effective, permitted or inheritable).
_DEVICE_MAKER = r'''
import ctypes, os, stat
got = 0
try:
    os.mknod("device", stat.S_IFCHR | 0o600, os.makedev(1, 3))
    got |= 1
except OSError:
    pass
header, data = (ctypes.c_uint32 * 2)(0x20080522, 0), (ctypes.c_uint32 * 6)()
got |= 2 if ctypes.CDLL(None).capget(header, data) == 0 and any(data) else 0
print(got)
'''


def _reads_nothing_in_any_backend(deck: Path) -> None:
    """In every backend the deck's program got nothing: its measure ``got`` is 0."""
    for kw, [record], _ in in_each_backend(lambda: CircuitProblem(deck, allow_shell=True)):
        assert record.outcome.measures.get("got") == 0.0, (kw, record.outcome)


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("python3"), reason="root's programs hold capabilities")
def test_a_program_a_deck_runs_as_root_holds_no_capability_in_any_backend(tmp_path: Path):
    """Run as root (a container), a program (--allow-shell) kept every capability, and Landlock let it make device
    files in the private directory: ``mknod`` of ``/dev/kmsg``'s numbers read the kernel log, a disk's any file,
    a terminal's what you type; capabilities also load kernel modules or reboot. Proved real first: after plain
    ``ngspice -b`` the device file is there."""
    (tmp_path / "maker.py").write_text(_DEVICE_MAKER)
    deck = program_deck(tmp_path, "mknod", f"python3 {tmp_path / 'maker.py'}")
    subprocess.run(["ngspice", "-b", str(deck)], cwd=tmp_path, capture_output=True, timeout=60)
    assert (tmp_path / "device").is_char_device()                     # real
    _reads_nothing_in_any_backend(deck)


#: A program that prints the payload of the key argv[1] of your kernel keyrings (0 when it cannot read it).
_KEY_READER = r'''
import ctypes, sys
libc = ctypes.CDLL(None)
key = libc.syscall(249, b"user", sys.argv[1].encode(), None, 0)            # request_key
buf = ctypes.create_string_buffer(64)
print(buf.value.decode() if key > 0 and libc.syscall(250, 11, key, buf, 64) > 0 else 0)   # KEYCTL_READ
'''


@pytest.mark.skipif(not shutil.which("python3"), reason="the deck's program is a python3 script")
def test_a_program_a_deck_runs_cannot_read_your_keyrings_in_any_backend(tmp_path: Path):
    """Landlock governs files, not the kernel's keyrings: a program (--allow-shell) read a key of your user keyring
    (where you, or systemd for a disk's passphrase, keep secrets) and made it a measure. Proved real first: run
    as you, the program reads it."""
    libc = ctypes.CDLL(None, use_errno=True)
    name, value = f"zoaf-test-{os.getpid()}", str(4000 + os.getpid() % 997)
    key = libc.syscall(248, b"user", name.encode(), value.encode(), len(value), -4)   # add_key, the user keyring
    if key < 0:
        pytest.skip(f"no keyring here (errno {ctypes.get_errno()})")
    try:
        (tmp_path / "keys.py").write_text(_KEY_READER)
        r = subprocess.run(["python3", str(tmp_path / "keys.py"), name], capture_output=True, text=True, timeout=60)
        assert r.stdout.strip() == value                                 # real
        _reads_nothing_in_any_backend(program_deck(tmp_path, "keys", f"python3 {tmp_path / 'keys.py'} {name}"))
    finally:
        libc.syscall(250, 3, key)                                        # KEYCTL_REVOKE


#: A program that prints what the System V shared memory segment of key argv[1] holds (0 when it cannot attach it).
_SHM_READER = r'''
import ctypes, sys
libc = ctypes.CDLL(None)
libc.shmat.restype = ctypes.c_void_p
shmid = libc.shmget(int(sys.argv[1]), 0, 0)
addr = libc.shmat(shmid, None, 0o10000) if shmid >= 0 else None          # SHM_RDONLY
print(ctypes.string_at(addr).decode() if addr not in (None, 2**64 - 1) else 0)
'''


@pytest.mark.skipif(not shutil.which("python3"), reason="the deck's program is a python3 script")
def test_a_program_a_deck_runs_cannot_attach_your_shared_memory_in_any_backend(tmp_path: Path):
    """System V shared memory has no file for Landlock to refuse: a program (--allow-shell) attached a segment of
    another of your programs (by its key or number) and read it into a measure; it could have written it. Proved
    real first: run as you, the program reads it."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.shmat.restype = ctypes.c_void_p
    shm_key, value = 0x7A0A0000 + os.getpid() % 65536, str(4000 + os.getpid() % 997)
    shmid = libc.shmget(shm_key, 4096, 0o1600)                          # IPC_CREAT, rw for you
    if shmid < 0:
        pytest.skip(f"no System V shared memory here (errno {ctypes.get_errno()})")
    addr = libc.shmat(shmid, None, 0)
    try:
        ctypes.memmove(addr, value.encode() + b"\0", len(value) + 1)
        (tmp_path / "shm.py").write_text(_SHM_READER)
        r = subprocess.run(["python3", str(tmp_path / "shm.py"), str(shm_key)], capture_output=True, text=True,
                           timeout=60)
        assert r.stdout.strip() == value                                 # real
        _reads_nothing_in_any_backend(program_deck(tmp_path, "shm", f"python3 {tmp_path / 'shm.py'} {shm_key}"))
    finally:
        libc.shmdt(ctypes.c_void_p(addr))
        libc.shmctl(shmid, 0, None)                                      # IPC_RMID


@pytest.mark.skipif(not shutil.which("python3"), reason="the deck's program is a python3 script")
def test_a_program_a_deck_runs_cannot_set_other_processes_limits_in_any_backend(tmp_path: Path):
    """Landlock scopes signals, not resource limits: a program (--allow-shell) set any process of yours a limit
    (``prlimit``), zoaf's own included: an ``RLIMIT_CPU`` of 1 s is a kill after a second of work. Proved real
    first: after plain ``ngspice -b`` the victim's open-files limit is 7."""
    (tmp_path / "deck.toml").write_text(SPEC)
    (tmp_path / "limit.py").write_text("import resource, sys\n"
                                       "resource.prlimit(int(sys.argv[1]), resource.RLIMIT_NOFILE, (7, 7))\n")
    deck = tmp_path / "deck.cir"
    for kw in ({}, *BACKENDS):
        victim = subprocess.Popen(["sleep", "300"])
        try:
            deck.write_text(f"limits\n.param r1=1k\nv1 in 0 dc 1\nr1 in out {{r1}}\nr2 out 0 1k\n.control\n"
                            f"set x = `python3 {tmp_path / 'limit.py'} {victim.pid}`\nop\nlet vo = v(out)\n"
                            "print vo\n.endc\n.end\n")
            if not kw:
                subprocess.run(["ngspice", "-b", str(deck)], cwd=tmp_path, capture_output=True, timeout=60)
                assert _open_files_limit(victim.pid) == "7"               # real
                continue
            with Evaluator(CircuitProblem(deck, allow_shell=True), **kw) as ev:
                [record] = ev.evaluate(np.array([[0.5]]))
            assert set(record.outcome.measures) == {"vo"} and _open_files_limit(victim.pid) != "7", kw
        finally:
            victim.kill()
            victim.wait()


def _open_files_limit(pid: int) -> str:
    line = next(ln for ln in Path(f"/proc/{pid}/limits").read_text().splitlines() if ln.startswith("Max open files"))
    return line.split()[3]


@pytest.mark.skipif(not shutil.which("python3"), reason="the deck's program is a python3 script")
def test_a_program_a_deck_runs_cannot_watch_folders_outside_its_own_in_any_backend(tmp_path: Path):
    """Landlock governs opening files, not watching them: a program (--allow-shell) set an ``inotify`` watch on a
    folder it could not list (your home), and learned the name of every file made or opened there while it ran.
    Proved real first: under plain ``ngspice -b`` the watch is set."""
    (tmp_path / "outside").mkdir()
    folder = tmp_path / "deck"
    folder.mkdir()
    (folder / "watch.py").write_text(
        "import ctypes, sys\nlibc = ctypes.CDLL(None)\n"
        "print(int(libc.inotify_add_watch(libc.inotify_init1(0), sys.argv[1].encode(), 0x120) >= 0))\n")
    deck = program_deck(folder, "watch", f"python3 {folder / 'watch.py'} {tmp_path / 'outside'}")
    r = subprocess.run(["ngspice", "-b", str(deck)], capture_output=True, text=True, timeout=60)
    assert re.search(r"got\s*=\s*1", r.stdout), r.stdout                # real
    _reads_nothing_in_any_backend(deck)

"""Red team, round 28: each promise of README's Security section and ``zoaf/sandbox.py``'s docstring (the lists of
``zoaf/syscalls.py``) that no test had tried, tried from inside a simulating process.

A deck cannot make a system call itself: native code in the simulation thread (a memory bug of ngspice a deck
exploits) is modelled, as round 18 does, by Python run there after the lock-down (:class:`Prober`, a pool or Dask
worker; for ``workers=0`` the child's own lock-down, ``open_session`` in a process designated to simulate, spawned
for the test), and a program by the deck's back-quoted command (``--allow-shell``, every backend: it inherits the
thread's filters). Each attempt is proved real first, the same code outside the sandbox (this process, and the
program under plain ``ngspice -b``), where the kernel answers it; inside, the filter's ``EACCES`` is its answer.

Claim -> the attempt (:data:`_ATTEMPTS`, each made by native code in every backend, ``test_native_code_in_the_
workers_0_...`` and ``..._in_every_backend``, and by a program in every backend, ``..._in_every_backend``):
- opens no socket, io_uring included: ``io_uring_setup``; an abstract Unix socket zoaf's own process listens on
  (``socket`` + ``connect``; from Landlock ABI 6 its scope refuses it too: ``test_without_the_socket_filter_...``);
  a datagram to one, abstract or by its path, from a ``socketpair`` (found: by its path it reached the listener,
  past both layers; now refused);
- changes no other program's scheduling: ``ioprio_set`` of a process of yours, ``perf_event_open`` on it;
- makes no ``bpf`` program, no namespace: ``bpf``, ``setns``, ``unshare``;
- changes no file's owner: ``chown``, ``fchown``, ``lchown``, ``fchownat`` (``chmod``: test_attack_round17);
- watches no folder: ``fanotify_mark`` after ``fanotify_init`` (``inotify``: test_attack_programs_reach);
- reaches no System V semaphore or message queue: ``semget``, ``msgget`` of yours (shared memory: same file);
- types into no terminal: ``ioctl`` ``TIOCSTI`` (also with the request's upper 32 bits set, which the kernel drops),
  ``TIOCLINUX`` (a program's ``TIOCSTI`` on a real terminal: test_attack_programs_reach);
- is not dumpable: ``PR_GET_DUMPABLE`` in the worker; ``/proc/PID/mem`` of a sibling worker and of a process of
  yours;
- a ``>`` redirect put in a variable by ``setcs`` is refused, one line (``test_a_redirect_in_a_setcs_...``); one
  the checks do not see (the deck's title is ``$curplottitle``: a title ``>`` made ``print vo $curplottitle FILE``
  write FILE under ``ngspice -b``) writes nothing outside the private directory (Landlock), in every backend.
"""
from __future__ import annotations

import ctypes
import errno
import json
import os
import platform
import re
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from attackkit import DIVIDER_SPEC
from fresh import in_fresh_process
from typer.testing import CliRunner

from tests.test_attack_inputs import one_error
from zoaf import sandbox
from zoaf.circuit import CircuitProblem
from zoaf.cli import app
from zoaf.evaluate import Evaluator
from zoaf.problem import Outcome

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux") or platform.machine() not in ("x86_64", "aarch64"),
                                reason="Linux sandbox; system call numbers of x86-64 and aarch64")

#: Each attempt, in Python source: a native probe ``exec``s it in the simulation thread, a program runs it as a file
#: (printing which attempts got ``EACCES``, a bit each). ``attempts(t)`` maps each to the errno the kernel answered
#: (0: done). Only calls and modules already loaded in a worker (``ctypes`` and the C library, no new extension).
_ATTEMPTS = r'''
import ctypes, os, platform
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
NR = {"x86_64": {"io_uring_setup": 425, "perf_event_open": 298, "bpf": 321, "setns": 308, "ioprio_set": 251},
      "aarch64": {"io_uring_setup": 425, "perf_event_open": 241, "bpf": 280, "setns": 268,
                  "ioprio_set": 30}}[platform.machine()]
AF_UNIX, SOCK_STREAM, SOCK_DGRAM, AT_FDCWD = 1, 1, 2, -100

def _err(res): return 0 if res >= 0 else ctypes.get_errno()

def _fd(res):
    if res >= 0:
        os.close(res)
    return _err(res)

def _sys(name, *args): return libc.syscall(ctypes.c_long(NR[name]), *args)

def _address(name):
    raw = name.encode()
    return AF_UNIX.to_bytes(2, "little") + raw, 2 + len(raw)

def io_uring(t): return _fd(_sys("io_uring_setup", ctypes.c_uint(1), ctypes.create_string_buffer(120)))

def perf_event(t):                                  # a software counter on the victim, user space only
    attr = ctypes.create_string_buffer(128)
    ctypes.memmove(attr, (1).to_bytes(4, "little") + (128).to_bytes(4, "little") + (1).to_bytes(8, "little"), 16)
    attr[40] = bytes([1 | 1 << 5 | 1 << 6])         # disabled, exclude_kernel, exclude_hv
    return _fd(_sys("perf_event_open", attr, ctypes.c_int(t["victim"]), ctypes.c_int(-1), ctypes.c_int(-1),
                    ctypes.c_ulong(0)))

def bpf(t):                                         # BPF_MAP_CREATE: an array of one
    attr = ctypes.create_string_buffer(128)
    ctypes.memmove(attr, b"".join(v.to_bytes(4, "little") for v in (2, 4, 4, 1)), 16)
    return _fd(_sys("bpf", ctypes.c_int(0), attr, ctypes.c_uint(128)))

def setns(t): return _err(_sys("setns", ctypes.c_int(-1), ctypes.c_int(0)))          # the kernel: EBADF
def unshare(t): return _err(libc.unshare(0))                          # no flags: the kernel does nothing
def ioprio_set(t):                                  # the victim's I/O class: idle
    return _err(_sys("ioprio_set", ctypes.c_int(1), ctypes.c_int(t["victim"]), ctypes.c_int(3 << 13)))

def _own_file():
    open("owned", "w").close()
    return b"owned"

def chown(t): return _err(libc.chown(_own_file(), -1, -1))

def fchown(t):
    fd = os.open(_own_file(), os.O_RDONLY)
    try:
        return _err(libc.fchown(fd, -1, -1))
    finally:
        os.close(fd)

def lchown(t): return _err(libc.lchown(_own_file(), -1, -1))
def fchownat(t): return _err(libc.fchownat(AT_FDCWD, _own_file(), -1, -1, 0))

def fanotify(t):                                    # the names of the files made in a folder outside
    fd = libc.fanotify_init(0xC00, os.O_RDONLY)     # FAN_REPORT_DFID_NAME: allowed to any user since Linux 5.13
    if fd < 0:
        return ctypes.get_errno()
    try:
        return _err(libc.fanotify_mark(fd, 1, ctypes.c_uint64(0x100), AT_FDCWD, t["watched"].encode()))
    finally:
        os.close(fd)

def semget(t): return _err(libc.semget(t["sem_key"], 0, 0))
def msgget(t): return _err(libc.msgget(t["msg_key"], 0))

def _ioctl(request):                                # on /dev/null: the kernel answers ENOTTY
    fd = os.open(os.devnull, os.O_RDONLY)
    try:
        return _err(libc.ioctl(fd, ctypes.c_ulong(request), ctypes.byref(ctypes.c_char(b"x"))))
    finally:
        os.close(fd)

def tiocsti(t): return _ioctl(0x5412)
def tiocsti_upper_bits(t): return _ioctl(1 << 32 | 0x5412)
def tioclinux(t): return _ioctl(0x541C)

def abstract_stream(t):
    s = libc.socket(AF_UNIX, SOCK_STREAM, 0)
    if s < 0:
        return ctypes.get_errno()
    try:
        return _err(libc.connect(s, *_address("\0" + t["abstract"])))
    finally:
        os.close(s)

def _pair_sends(name):
    pair = (ctypes.c_int * 2)()
    if libc.socketpair(AF_UNIX, SOCK_DGRAM, 0, pair) < 0:
        return ctypes.get_errno()
    try:
        return _err(libc.sendto(pair[0], b"x", 1, 0, *_address(name)))
    finally:
        os.close(pair[0])
        os.close(pair[1])

def abstract_datagram(t): return _pair_sends("\0" + t["abstract"])
def path_datagram(t): return _pair_sends(t["datagram"])

def mem(pid):
    try:
        os.close(os.open(f"/proc/{pid}/mem", os.O_RDONLY))
        return 0
    except OSError as e:
        return e.errno

def victim_mem(t): return mem(t["victim"])

ALL = [io_uring, perf_event, bpf, setns, unshare, ioprio_set, chown, fchown, lchown, fchownat, fanotify, semget,
       msgget, tiocsti, tiocsti_upper_bits, tioclinux, abstract_stream, abstract_datagram, path_datagram, victim_mem]

def attempts(t): return {f.__name__: f(t) for f in ALL}
'''
#: The program: the attempts, with the targets beside it; it prints a bit per attempt that got EACCES.
_PROGRAM = _ATTEMPTS + r'''
import errno, json, sys
got = attempts(json.load(open(sys.argv[1])))
print(sum(1 << i for i, f in enumerate(ALL) if got[f.__name__] == errno.EACCES))
'''
#: ``ioprio_get``'s number: the victim's I/O class afterwards.
_IOPRIO_GET = {"x86_64": 252, "aarch64": 31}.get(platform.machine(), -1)


def _attempts() -> dict:
    namespace: dict = {}
    exec(_ATTEMPTS, namespace)                                       # noqa: S102 (the test's own source)
    return namespace


def _io_class(pid: int) -> int:
    return ctypes.CDLL(None).syscall(_IOPRIO_GET, 1, pid) >> 13


def _dumpable() -> int:
    return ctypes.CDLL(None).prctl(3, 0, 0, 0, 0)                    # PR_GET_DUMPABLE


class Prober(CircuitProblem):
    """Native code in the simulation thread: once simulated, each attempt, its errno a measure (``e_NAME``); the
    process's dumpable flag, its id, and the errno of opening each sibling's ``/proc/PID/mem`` (``mem_PID``),
    the siblings named in the deck's folder's ``targets.json``."""

    def simulate(self, x: np.ndarray, *args, **kw) -> Outcome:
        outcome = super().simulate(x, *args, **kw)
        if sandbox.current() is not None:                  # a sandboxed thread (not zoaf's own, for workers=0)
            targets = json.loads((self.netlist.path.parent / "targets.json").read_text())
            outcome.measures.update(_native(targets))
        return outcome


def _native(targets: dict) -> dict[str, float]:
    """What native code got: each attempt's errno, the dumpable flag, its process id, each sibling's memory."""
    namespace = _attempts()
    got = {f"e_{k}": v for k, v in namespace["attempts"](targets).items()}
    got |= {f"mem_{p}": namespace["mem"](p) for p in targets.get("siblings", []) if p != os.getpid()}
    return got | {"dumpable": _dumpable(), "pid": os.getpid()}


@contextmanager
def _victim() -> Iterator[int]:
    """The id of a process of yours (``sleep``), ended afterwards."""
    victim = subprocess.Popen(["sleep", "300"])
    try:
        yield victim.pid
    finally:
        victim.kill()
        victim.wait()


@contextmanager
def _targets(tmp_path: Path) -> Iterator[dict]:
    """What the attempts go for, each a thing of yours outside the sandbox (``tmp_path/outside``; the decks are in
    ``tmp_path/deck``): a process (``sleep``), a folder, a System V semaphore set and message queue, an abstract
    Unix socket listened on and one for datagrams, a datagram socket by its path (in this process, zoaf's own:
    ``listeners``)."""
    libc = ctypes.CDLL(None, use_errno=True)
    folder = tmp_path / "outside"
    (folder / "watched").mkdir(parents=True)
    base = 0x7A280000 + os.getpid() % 65536
    semid, msgid = libc.semget(base, 1, 0o1600), libc.msgget(base + 1, 0o1600)    # IPC_CREAT, yours only
    name = f"zoaf-claims-{os.getpid()}"
    stream, gram, path_gram = (socket.socket(socket.AF_UNIX, kind) for kind in (socket.SOCK_STREAM,
                                                                                  socket.SOCK_DGRAM, socket.SOCK_DGRAM))
    try:
        assert semid >= 0 and msgid >= 0, ctypes.get_errno()
        stream.bind("\0" + name)
        stream.listen(16)
        gram.bind("\0" + name)
        path_gram.bind(str(folder / "datagram"))
        for s in (stream, gram, path_gram):
            s.setblocking(False)
        with _victim() as victim:
            yield {"victim": victim, "watched": str(folder / "watched"), "sem_key": base, "msg_key": base + 1,
                   "abstract": name, "datagram": str(folder / "datagram"), "listeners": (stream, gram, path_gram)}
    finally:
        for s in (stream, gram, path_gram):
            s.close()
        libc.semctl(semid, 0, 0)                                     # IPC_RMID
        libc.msgctl(msgid, 0, None)


def _reached(listeners: tuple[socket.socket, ...]) -> int:
    """How many connections and datagrams reached the listeners since last asked (taking them)."""
    count = 0
    for s in listeners:
        while True:
            try:
                got = s.accept()[0] if s.type == socket.SOCK_STREAM else s.recv(16)
            except BlockingIOError:
                break
            count += 1
            if isinstance(got, socket.socket):
                got.close()
    return count


def _sendable(t: dict) -> dict:
    return {k: v for k, v in t.items() if k != "listeners"}


def _outside(t: dict, scratch: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The attempts in this process, unsandboxed: the kernel answers each (none EACCES), the listeners are reached
    and the victim's I/O class is idle (the sandboxed attempts go for another victim)."""
    monkeypatch.chdir(scratch)
    got = _attempts()["attempts"](_sendable(t))
    assert not [k for k, v in got.items() if v == errno.EACCES], got             # real: each reaches the kernel
    assert _reached(t["listeners"]) == 3 and _io_class(t["victim"]) == 3, got    # real: it was done
    assert _dumpable() == 1                                                      # real: processes are dumpable


def _plain_deck(tmp_path: Path) -> Path:
    """``tmp_path/deck/deck.cir``: the divider, no ``.control`` block; its spec beside it."""
    folder = tmp_path / "deck"
    folder.mkdir()
    (folder / "deck.toml").write_text(DIVIDER_SPEC)
    deck = folder / "deck.cir"
    deck.write_text("plain\n.param r1=1k\nv1 in 0 dc 1\nr1 in out {r1}\nr2 out 0 1k\n.dc v1 0 1 1\n"
                    ".meas dc vo find v(out) at=1\n.end\n")
    return deck


def _lock_down(deck: str) -> str:
    """This process locked down as the ``workers=0`` child locks itself down (designated to simulate, the deck's
    session opened: ``open_session``; no ``--allow-shell``, so "no new code" too) and the deck simulated; its
    layers."""
    sandbox.designate()
    problem = CircuitProblem(deck)
    outcome = problem.simulate(problem.to_physical(np.array([0.5])))
    assert sandbox.current() is not None and "vo" in outcome.measures, outcome
    return str(sandbox.current())


def _locked_down_attempts(deck: str, targets: dict) -> tuple[str, dict[str, float]]:
    """:func:`_lock_down`, then native code's attempts."""
    return _lock_down(deck), _native(targets)


def test_native_code_in_the_workers_0_childs_lock_down_gets_eacces_for_each_claim(tmp_path: Path, monkeypatch):
    """Native code where the ``workers=0`` child runs it (``open_session`` in a process that exists to simulate,
    without ``--allow-shell``): every attempt of :data:`_ATTEMPTS` got EACCES, the process is not dumpable, the
    listeners got nothing and the victim kept its I/O class. Proved real first: this process gets each done."""
    (tmp_path / "scratch").mkdir()
    deck = _plain_deck(tmp_path)
    with _targets(tmp_path) as t, _victim() as fresh:
        _outside(t, tmp_path / "scratch", monkeypatch)
        layers, got = in_fresh_process(_locked_down_attempts, str(deck), {**_sendable(t), "victim": fresh})
        assert "landlock: active" in layers and "network: active" in layers and "code: active" in layers, layers
        assert {k: v for k, v in got.items() if k.startswith("e_") and v != errno.EACCES} == {}, got
        assert got["dumpable"] == 0 and _reached(t["listeners"]) == 0 and _io_class(fresh) == 0, got


def _program_deck(tmp_path: Path, marker: Path) -> Path:
    """``tmp_path/deck/deck.cir``: a divider whose ``.control`` block runs the attempts as a program (its measure
    ``got``: a bit per EACCES), and whose title, ``>``, makes ``print vo $curplottitle MARKER`` a redirect into
    ``marker`` (no ``>`` in any line the checks read as a command); its spec beside it."""
    folder = tmp_path / "deck"
    folder.mkdir()
    (folder / "attempts.py").write_text(_PROGRAM)
    (folder / "deck.toml").write_text(DIVIDER_SPEC.replace("vo = {}", "vo = {}\ngot = {}"))
    deck = folder / "deck.cir"
    deck.write_text(f">\n.param r1=1k\nv1 in 0 dc 1\nr1 in out {{r1}}\nr2 out 0 1k\n.control\n"
                    f"set x = `{sys.executable} {folder / 'attempts.py'} {folder / 'targets.json'}`\nop\n"
                    f"let vo = v(out)\nlet got = $x\nprint vo got\nprint vo $curplottitle {marker}\n.endc\n.end\n")
    return deck


def _refused(bits: float) -> list[str]:
    """The attempts a program's measure says were not refused with EACCES."""
    return [f.__name__ for i, f in enumerate(_attempts()["ALL"]) if not int(bits) >> i & 1]


#: Each backend, with two processes where there are several: a worker's sibling is a target.
_BACKENDS = ({"workers": 0}, {"workers": 2}, {"workers": 2, "dask": "local"})


def _two_rounds(deck: Path, kw: dict, write: Callable[[list[int]], object]) -> list:
    """Records of the deck simulated in one backend: sizings until two worker processes have answered (their ids
    then written into ``targets.json`` by ``write``), then two more, whose native code tries each sibling."""
    with Evaluator(Prober(deck, allow_shell=True), **kw) as ev:
        records, pids, step = [], set(), 0
        while len(pids) < min(kw["workers"], 2) and step < 8:
            records += ev.evaluate(np.array([[0.05 + 0.1 * step], [0.1 + 0.1 * step]]))
            pids = {int(r.outcome.measures["pid"]) for r in records}
            step += 1
        assert len(pids) == min(kw["workers"], 2), (kw, pids)
        write(sorted(pids))
        return records + ev.evaluate(np.array([[0.93], [0.97]]))


def _all_refused(kw: dict, records: list) -> None:
    """Each program's attempts got EACCES; in a worker, native code's too, its sibling's memory (tried by one at
    least) as well, and the process is not dumpable."""
    for record in records:
        m = record.outcome.measures
        assert _refused(m["got"]) == [], (kw, _refused(m["got"]), record.outcome)
        if kw["workers"]:
            assert {k: v for k, v in m.items() if k.startswith(("e_", "mem_")) and v != errno.EACCES} == {}, (kw, m)
            assert m["dumpable"] == 0, (kw, m)
    assert not kw["workers"] or any(k.startswith("mem_") for r in records for k in r.outcome.measures), kw


@pytest.mark.timeout(300)
def test_native_code_and_programs_get_eacces_for_each_claim_in_every_backend(tmp_path: Path, monkeypatch):
    """A program the deck runs (``--allow-shell``), in every backend, and native code in a pool or Dask worker: every
    attempt of :data:`_ATTEMPTS` got EACCES, a worker is not dumpable nor is its sibling's memory open to it, the
    listeners got nothing, the victim kept its I/O class, and the title's redirect wrote nothing. Proved real first:
    under plain ``ngspice -b`` the program gets each done and the redirect writes its file."""
    (tmp_path / "scratch").mkdir()
    marker = tmp_path / "deck" / "marker"
    deck = _program_deck(tmp_path, marker)
    with _targets(tmp_path) as t:
        _outside(t, tmp_path / "scratch", monkeypatch)
        targets = deck.parent / "targets.json"
        targets.write_text(json.dumps(_sendable(t)))
        r = subprocess.run(["ngspice", "-b", str(deck)], cwd=tmp_path / "scratch", capture_output=True, text=True,
                           timeout=120)
        assert re.search(r"^got\s*=\s*0", r.stdout, re.M) and marker.exists(), r.stdout[-2000:]   # real
        assert _reached(t["listeners"]) == 3, r.stdout[-2000:]                                      # real
        marker.unlink()
        with _victim() as fresh:
            for kw in _BACKENDS:
                targets.write_text(json.dumps({**_sendable(t), "victim": fresh}))
                records = _two_rounds(deck, kw, lambda pids: targets.write_text(json.dumps(
                    {**_sendable(t), "victim": fresh, "siblings": pids})))
                _all_refused(kw, records)
                assert _reached(t["listeners"]) == 0 and _io_class(fresh) == 0 and not marker.exists(), kw


#: ``setcs`` lines that put a redirect in a variable, each spelled its own way; the deck then writes through it.
_SETCS = ['setcs g = ">"', "SETCS G = '>'", 'setcs g=">"', 'setcs g = ( ">" )', 'setcs g = "<"', "setcs g = >"]


@pytest.mark.parametrize("line", _SETCS)
def test_a_redirect_in_a_setcs_command_is_one_line_and_writes_nothing(tmp_path: Path, line: str):
    """``setcs`` sets a variable as ``set`` does: ``$g`` holding ``>`` made ``print vo $g FILE`` write FILE. Each
    spelling is one ``file:line`` error, exit 2, before anything runs. Proved real first: ``ngspice -b`` writes
    the file."""
    (tmp_path / "deck.toml").write_text(DIVIDER_SPEC)
    marker = tmp_path / "marker"
    deck = tmp_path / "deck.cir"
    deck.write_text(f"setcs\n.param r1=1k\nv1 in 0 dc 1\nr1 in out {{r1}}\nr2 out 0 1k\n.control\n{line}\nop\n"
                    f"let vo = v(out)\nprint vo $g {marker}\n.endc\n.end\n")
    if line == _SETCS[0]:
        subprocess.run(["ngspice", "-b", str(deck)], cwd=tmp_path, capture_output=True, timeout=60)
        assert marker.exists()                                                    # real
        marker.unlink()
    r = CliRunner().invoke(app, ["check", str(deck)])
    assert f"{deck}:7: .control command '{line.split()[0].lower()}" in one_error(r)
    assert not marker.exists()


def _landlock_abi() -> int:
    from zoaf import landlock
    try:
        return landlock.version()
    except OSError:
        return 0


def _abstract_without_the_socket_filter(deck: str, targets: dict) -> tuple[str, int, int]:
    """As :func:`_locked_down_attempts`, the socket filter left out (a machine without libseccomp): the errno of a
    connection to the abstract socket, and of a datagram to it."""
    sandbox._no_sockets = lambda: sandbox.Layer("network", sandbox.LayerState.UNAVAILABLE, "left out by the test")
    layers, namespace = _lock_down(deck), _attempts()
    return layers, namespace["abstract_stream"](targets), namespace["abstract_datagram"](targets)


@pytest.mark.skipif(_landlock_abi() < 6, reason="Landlock scopes abstract Unix sockets from ABI 6 (Linux 6.12)")
def test_without_the_socket_filter_landlock_keeps_abstract_sockets_out(tmp_path: Path):
    """README: from Landlock ABI 6 the simulation thread cannot reach an abstract Unix socket (your session's bus,
    X11's), a layer under the socket filter. With that filter left out, a connection and a datagram to an abstract
    socket zoaf's own process listens on get EPERM, and it gets nothing. Proved real first: this process reaches
    it."""
    deck = _plain_deck(tmp_path)
    with _targets(tmp_path) as t:
        namespace, abstract = _attempts(), t["listeners"][:2]
        assert namespace["abstract_stream"](t) == namespace["abstract_datagram"](t) == 0      # real
        assert _reached(abstract) == 2                                                        # real
        layers, stream, datagram = in_fresh_process(_abstract_without_the_socket_filter, str(deck), _sendable(t))
        assert "network: unavailable" in layers and "landlock: active" in layers, layers
        assert (stream, datagram) == (errno.EPERM, errno.EPERM) and _reached(abstract) == 0, layers

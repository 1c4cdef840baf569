"""Attack decks whose programs (``--allow-shell``) or vectors go for the machine's resources and processes: the
disk, memory, other programs, and programs that outlive their worker.

Each attack is proved real first where it can be (plain ``ngspice -b`` does it), then run through zoaf's
backends (``workers=0``, a pool worker, Dask), where it must be stopped with one line and leave nothing behind.
"""
from __future__ import annotations

import ctypes
import os
import pickle
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from fresh import in_fresh_process

from zoaf.circuit import CircuitProblem
from zoaf.errors import InputError
from zoaf.evaluate import Evaluator
from zoaf.problem import Status

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux sandbox")

#: A one-measure spec for the decks below (``vo``: the divider's output, which each deck prints).
SPEC = """title = "a divider"
[parameters]
r1 = { lo = "100", hi = "10k" }
[measures]
vo = {}
[objectives]
o = { maximize = "vo" }
"""


# -- resources: memory and disk -----------------------------------------------------------------------------
def _held(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def test_a_program_that_writes_without_end_is_ended_at_the_disk_limit_in_every_backend(tmp_path: Path,
                                                                                      monkeypatch):
    """Landlock keeps the writes of a program a deck runs (--allow-shell) in the private directory and the
    timeout bounds the time, not the bytes. Past ZOAF_MAX_DISK the process and its program are ended with one
    line, not retried, and the private directory is gone (a Dask worker tells its client the line before it
    goes: Dask itself reports a lost worker). Proved real first: ngspice -b writes what dd is told."""
    (tmp_path / "deck.toml").write_text(SPEC)
    deck = tmp_path / "deck.cir"
    text = ("fills\n.param r1=1k\nv1 in 0 dc 1\nr1 in out {r1}\nr2 out 0 1k\n.control\n"
            "set x = `dd if=/dev/zero of=fill.raw bs=1048576 count=128 status=none`\nop\nlet vo = v(out)\n"
            "print vo\n.endc\n.end\n")
    deck.write_text(text)
    (tmp_path / "plain").mkdir()
    subprocess.run(["ngspice", "-b", str(deck)], cwd=tmp_path / "plain", capture_output=True, timeout=120)
    assert _held(tmp_path / "plain") == 128 << 20                 # real
    deck.write_text(text.replace("count=128", "count=6400"))       # 6.4 GB
    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setenv("TMPDIR", str(temp))
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    monkeypatch.setenv("ZOAF_MAX_DISK", "64M")
    for kw in ({"workers": 0}, {"workers": 1}, {"workers": 1, "dask": "local"}):
        with Evaluator(CircuitProblem(deck, allow_shell=True), **kw) as ev:
            [record] = ev.evaluate(np.array([[0.5]]))
            stats = ev.stats
        assert record.outcome.status is Status.CRASHED and not record.outcome.measures, kw
        assert "wrote more than 0.0625 GiB of files (ZOAF_MAX_DISK)" in record.outcome.error, kw
        if kw != {"workers": 0}:
            assert stats["crashed"] == 1, stats                    # not run again: it would only go over again
        time.sleep(0.5)
        assert _held(temp) < 1e6 and not _running("count=6400"), kw     # nothing left behind, nothing running


def test_a_worker_that_dies_leaves_no_private_directory_in_any_backend(tmp_path: Path, monkeypatch):
    """A Dask worker that crashed, or that its nanny killed (a timeout's restart), ran no exit handler and no
    parent removed its private directory: each one stayed in the temporary folder after zoaf ended, with what the
    deck's program wrote there (up to ZOAF_MAX_DISK each, per attempt). The deck crashes its worker: ``sens`` on
    a deck with a BJT makes ngspice 39 segfault (as ``ngspice -b``). With ``TMPDIR`` set, the ``workers=0``
    child (its environment pruned) made its directory in ``/tmp``, where zoaf did not look for it."""
    fill = f"fill-{os.getpid()}.raw"
    system_temp = Path(tempfile.gettempdir())
    (tmp_path / "deck.toml").write_text(SPEC)
    deck = tmp_path / "deck.cir"
    deck.write_text("crashes\n.param r1=1k\nv1 in 0 dc 1\nr1 in out {r1}\nr2 out 0 1k\nvc c 0 dc 5\nq1 c out 0 qn\n"
                    ".model qn npn\n.control\n"
                    f"set x = `dd if=/dev/zero of={fill} bs=1048576 count=8 status=none`\nop\nsens v(out)\n"
                    "let vo = v(out)\nprint vo\n.endc\n.end\n")
    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setenv("TMPDIR", str(temp))
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    for kw in ({"workers": 0}, {"workers": 1}, {"workers": 1, "dask": "local"}):
        with Evaluator(CircuitProblem(deck, allow_shell=True), **kw) as ev:
            [record] = ev.evaluate(np.array([[0.5]]))
        assert record.outcome.status is Status.CRASHED, (kw, record.outcome)
        for _ in range(50):                              # a dead Dask worker's directory goes a moment later
            left = [*temp.glob("zoaf-sandbox-*"), *system_temp.glob(f"zoaf-sandbox-*/{fill}")]
            if not left:
                break
            time.sleep(0.1)
        assert not left, (kw, left)


def test_empty_files_count_toward_the_disk_limit(tmp_path: Path):
    """A million empty files exhaust the file system's inodes, not its bytes: each file and folder counts one
    block at least."""
    from zoaf import watchdog

    (tmp_path / "sub").mkdir()
    for i in range(1000):
        (tmp_path / "sub" / f"f{i}").touch()
    (tmp_path / "data").write_bytes(b"x" * 100_000)
    assert watchdog._held(tmp_path) == 1000 * watchdog.ENTRY + (tmp_path / "data").stat().st_blocks * 512


def _running(pattern: str) -> bool:
    return subprocess.run(["pgrep", "-f", pattern], capture_output=True).returncode == 0


def test_a_program_a_deck_ran_ends_with_its_timed_out_worker(tmp_path: Path):
    """A deck's program (--allow-shell) outlived the worker killed at its timeout, adopted by init (a Dask
    worker's too, restarted by its nanny)."""
    (tmp_path / "deck.toml").write_text(SPEC)
    deck = tmp_path / "deck.cir"
    naps = f"sleep {3000 + os.getpid() % 997}"
    deck.write_text(f"naps\n.param r1=1k\nv1 in 0 dc 1\nr1 in out {{r1}}\nr2 out 0 1k\n.control\n"
                    f"set x = `{naps}`\nop\nlet vo = v(out)\nprint vo\n.endc\n.end\n")
    for kw in ({"workers": 0}, {"workers": 1}, {"workers": 1, "dask": "local"}):
        with Evaluator(CircuitProblem(deck, allow_shell=True, timeout=3), **kw) as ev:
            [record] = ev.evaluate(np.array([[0.5]]))
        assert record.outcome.status is Status.TIMEOUT, kw
        time.sleep(0.5)
        assert not _running(naps), kw


def test_a_program_that_detaches_itself_ends_with_its_worker(tmp_path: Path):
    """``setsid prog &`` from a deck's script (--allow-shell) left its process group and, its parent gone, was
    adopted by init: it ran on after zoaf ended, out of reach of the worker's tree. Proved real first: after plain
    ``ngspice -b`` it still runs."""
    naps = f"sleep {4000 + os.getpid() % 997}"
    (tmp_path / "away.sh").write_text(f"setsid sh -c '{naps}' > /dev/null 2>&1 < /dev/null &\n")
    (tmp_path / "deck.toml").write_text(SPEC)
    deck = tmp_path / "deck.cir"
    deck.write_text(f"away\n.param r1=1k\nv1 in 0 dc 1\nr1 in out {{r1}}\nr2 out 0 1k\n.control\n"
                    f"set x = `sh {tmp_path / 'away.sh'}`\nop\nlet vo = v(out)\nprint vo\n.endc\n.end\n")
    try:
        subprocess.run(["ngspice", "-b", str(deck)], cwd=tmp_path, capture_output=True, timeout=60)
        time.sleep(0.5)
        assert _running(naps)                            # real: it outlives ngspice -b
        subprocess.run(["pkill", "-f", naps], check=False)
        for kw in ({"workers": 0}, {"workers": 1}, {"workers": 1, "dask": "local"}):
            with Evaluator(CircuitProblem(deck, allow_shell=True), **kw) as ev:
                [record] = ev.evaluate(np.array([[0.5]]))
                assert set(record.outcome.measures) == {"vo"} and _running(naps), kw
            time.sleep(0.5)
            assert not _running(naps), kw
    finally:
        subprocess.run(["pkill", "-f", naps], check=False)


def test_a_deck_that_allocates_past_the_memory_limit_is_ended_with_one_line(tmp_path: Path, monkeypatch):
    """A .control vector of 400 MB (ngspice -b allocates it): past ZOAF_MAX_MEMORY resident bytes the process is
    ended with one line instead of waiting for the kernel's OOM killer; a bad limit is one line before any
    simulation."""
    (tmp_path / "deck.toml").write_text(SPEC)
    deck = tmp_path / "deck.cir"
    deck.write_text("eats\n.param r1=1k\nv1 in 0 dc 1\nr1 in out {r1}\nr2 out 0 1k\n.control\n"
                    "let big = vector(50000000)\nop\nlet vo = v(out)\nprint vo\n.endc\n.end\n")
    monkeypatch.setenv("ZOAF_MAX_MEMORY", "300M")
    for kw in ({"workers": 0}, {"workers": 1}):
        with Evaluator(CircuitProblem(deck), **kw) as ev:
            [record] = ev.evaluate(np.array([[0.5]]))
        assert record.outcome.status is Status.CRASHED, kw
        assert "used more than 0.293 GiB of memory (ZOAF_MAX_MEMORY)" in record.outcome.error, kw
    monkeypatch.setenv("ZOAF_MAX_MEMORY", "3 gigs")
    with pytest.raises(InputError, match=r"^ZOAF_MAX_MEMORY: not a number of bytes: '3 gigs'"):
        Evaluator(CircuitProblem(deck))
    r = subprocess.run([sys.executable, "-m", "zoaf", "check", str(deck)], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 2 and r.stderr.strip().startswith("error: ZOAF_MAX_MEMORY: not a number of bytes")
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1


def _landlock_abi() -> int:
    from zoaf import landlock
    try:
        return landlock.version()
    except OSError:
        return 0


@pytest.mark.skipif(_landlock_abi() < 6, reason="Landlock scopes signals from ABI 6 (Linux 6.12)")
def test_a_program_a_deck_runs_cannot_signal_other_processes_in_any_backend(tmp_path: Path):
    """With --allow-shell a deck's program ran ``kill`` on any process of the user: zoaf's own (stopped, it hangs),
    your editor. Proved real first: plain ``ngspice -b`` kills the victim."""
    (tmp_path / "deck.toml").write_text(SPEC)
    deck = tmp_path / "deck.cir"
    for kw in ({}, {"workers": 0}, {"workers": 1}, {"workers": 1, "dask": "local"}):
        victim = subprocess.Popen(["sleep", "300"])
        try:
            deck.write_text(f"kills\n.param r1=1k\nv1 in 0 dc 1\nr1 in out {{r1}}\nr2 out 0 1k\n.control\n"
                            f"set x = `kill -TERM {victim.pid}`\nop\nlet vo = v(out)\nprint vo\n.endc\n.end\n")
            if not kw:
                subprocess.run(["ngspice", "-b", str(deck)], cwd=tmp_path, capture_output=True, timeout=60)
                assert victim.wait(10) == -15                  # real
                continue
            with Evaluator(CircuitProblem(deck, allow_shell=True), **kw) as ev:
                [record] = ev.evaluate(np.array([[0.5]]))
            assert set(record.outcome.measures) == {"vo"} and victim.poll() is None, kw
        finally:
            victim.kill()
            victim.wait()


def test_a_tree_too_deep_for_a_recursion_is_counted_and_removed(tmp_path: Path):
    """A program (--allow-shell) that nested 1,100 folders stopped the watchdog's recursive count (RecursionError:
    no disk or memory limit after it) and zoaf's own removal of the private directory (a traceback, exit code 1,
    the files left in the temporary directory)."""
    from zoaf import sandbox, watchdog

    folder = tmp_path / "zoaf-sandbox-999999999-deep"
    deep = folder
    for _ in range(1100):
        deep = deep / "a"
    subprocess.run(["mkdir", "-p", str(deep)], check=True)         # pathlib's mkdir recurses too
    (deep / "data").write_bytes(b"x" * 100_000)
    assert watchdog._held(folder) == (deep / "data").stat().st_blocks * 512
    (folder / "closed").mkdir()
    os.chmod(folder / "closed", 0)
    if os.geteuid() != 0:                                # root lists it all the same
        assert watchdog._held(folder) == watchdog.UNCOUNTABLE     # hidden from the count: over any limit
    os.chmod(folder / "closed", 0o700)
    watchdog.remove_tree(folder, programs=True)
    assert not folder.exists()


# -- pipes: Landlock does not govern them, so what reads one must not trust it ------------------------------
class _WritesAFile:
    """Unpickled, it writes ``path`` (Python, not a program: ``execve`` is filtered in every thread)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return exec, (f"open({self.path!r}, 'w').write('pwned')",)


def _write_into_a_queue_from_the_sandbox(marker: str, folder: str) -> tuple[str, bool, str]:
    """As in a Dask worker: a thread reads a ``multiprocessing`` queue (the nanny's stop queue), the simulation
    thread locks down, then writes a frame one byte short into the queue's pipe through ``/proc/self/fd``; the
    nanny's own message completes it and the reading thread unpickles what the deck wrote."""
    import multiprocessing as mp
    import struct
    import threading
    from zoaf import sandbox

    queue = mp.get_context("spawn").Queue()
    got: list[object] = []

    def watch() -> None:
        try:
            got.append(queue.get(timeout=30))
        except Exception as e:                          # noqa: BLE001 - what the reader saw is the result
            got.append(f"{type(e).__name__}: {e}")

    reader = threading.Thread(target=watch, daemon=True)   # started before the lock-down: not confined
    reader.start()
    sandbox.designate(own_process=False)
    report = sandbox.enter(sandbox.Policy((Path(folder),)))
    try:
        open(marker, "w")
        confined = False
    except PermissionError:
        confined = True
    payload = pickle.dumps(_WritesAFile(marker), protocol=0)
    with open(f"/proc/self/fd/{queue._writer.fileno()}", "wb") as pipe:   # Landlock lets a pipe be reopened
        pipe.write(struct.pack("!i", len(payload) + 1) + payload)
    queue.put({"op": "stop"})                            # the nanny's message, one byte of it needed
    reader.join(30)
    return str(report.landlock.state.value), confined, str(got)


def test_a_queue_message_the_deck_wrote_is_never_unpickled_outside_the_sandbox(tmp_path: Path):
    """A deck that wrote a pickle into a Dask worker's stop queue (``/proc/self/fd/N``, through ``circbyline``:
    test_attack_decks; Landlock does not govern pipes) had it unpickled by the worker's thread that waits on it,
    which Landlock does not confine: any Python, any file written (``zoaf optimize DECK --dask local``, no
    --allow-shell). Proved real first: loaded as it is, the message writes the marker."""
    marker = tmp_path / "marker"
    state, confined, got = in_fresh_process(_write_into_a_queue_from_the_sandbox, str(marker), str(tmp_path))
    if state != "active":
        pytest.skip("no Landlock: the thread that writes is not confined either")
    assert confined                                      # the simulation thread cannot write the marker itself
    assert not marker.exists(), got
    assert "UnpicklingError" in got and "builtins only" in got, got
    pickle.loads(pickle.dumps(_WritesAFile(str(marker)), protocol=0))
    assert marker.read_text() == "pwned"                 # the payload is real


#: Runs DECK (argv[1]) in a pool worker and, with argv[2], a Dask worker, past zoaf's text check of ``.options`` (the
#: operating system alone), and exits: multiprocessing's resource tracker, a process outside the sandbox, then
#: unlinks what it was told of. A ``{tracker}`` in the deck is the number of the descriptor a worker holds for it.
_PAST_THE_CHECKS = """
import sys
from multiprocessing import resource_tracker
from pathlib import Path
import numpy as np
from zoaf import deckcheck
from zoaf.circuit import CircuitProblem
from zoaf.evaluate import Evaluator
deckcheck.dot_line_problem = lambda word, text: None
resource_tracker.ensure_running()
path = Path(sys.argv[1])
path.write_text(path.read_text().replace("{tracker}", str(resource_tracker._resource_tracker._fd)))
deck = CircuitProblem(path)
for kw in ({"workers": 1}, {"workers": 1, "dask": "local"})[:len(sys.argv) - 1]:
    with Evaluator(CircuitProblem(path), **kw) as ev:
        [record] = ev.evaluate(deck.to_unit(np.array([[1e3]])))
    print(kw, record.outcome.status, record.outcome.error)
"""
#: What the tracker reads: ``REGISTER:name:shared_memory`` lines; at its end it unlinks each name (/dev/shm/name).
_REGISTER = "import os, sys; from multiprocessing import resource_tracker as r; r.ensure_running(); " \
    "os.write(r._resource_tracker._fd, f'REGISTER:/{sys.argv[1]}:shared_memory\\n'.encode())"


def test_a_deck_cannot_have_the_resource_tracker_unlink_shared_memory_in_any_backend(tmp_path: Path):
    """A spawned worker holds a pipe to ``multiprocessing``'s resource tracker, which zoaf's process started outside
    the sandbox and which unlinks, when zoaf ends, the shared memory named on it. Landlock does not govern a pipe
    reopened through ``/proc/self/fd``: ``.options g=">"`` then ``echo REGISTER:/name:shared_memory $g
    /proc/self/fd/N`` (run in a deck reloaded per sizing) deleted another program's ``/dev/shm/name`` (pool,
    Dask). The tracker's pipe is ``/dev/null`` in a simulating process now. Proved real first: the line, written
    to the tracker by a process outside the sandbox, has the file unlinked."""
    shm = Path("/dev/shm")
    if not shm.is_dir():
        pytest.skip("no /dev/shm")
    victim = shm / f"zoaf-test-victim-{os.getpid()}"
    victim.write_text("another program's")
    try:
        subprocess.run([sys.executable, "-c", _REGISTER, victim.name], check=True, timeout=60)
        time.sleep(0.5)
        assert not victim.exists()                                        # the payload is real
        victim.write_text("another program's")
        echo = f"echo REGISTER:/{victim.name}:shared_memory $g /proc/self/fd/{{tracker}}\n"
        deck = tmp_path / "deck.cir"
        deck.write_text(f'tracker\n.options g=">"\n.param r1=1k\nv1 in 0 dc 1\nr1 in out {{r1}}\nr2 out 0 1k\n'
                        f".dc v1 0 {{1}} 1\n.meas dc vo find v(out) at=1\n.control\nrun\n{echo}.endc\n.end\n")
        (tmp_path / "deck.toml").write_text(SPEC)
        r = subprocess.run([sys.executable, "-c", _PAST_THE_CHECKS, str(deck), "dask"], capture_output=True,
                           text=True, timeout=600, cwd=tmp_path)
        assert r.returncode == 0, r.stderr[-3000:]
        time.sleep(0.5)                                                  # the tracker ends after zoaf
        assert victim.exists(), r.stdout + r.stderr[-3000:]
    finally:
        victim.unlink(missing_ok=True)


def test_a_deck_writing_into_its_workers_sentinel_does_not_hang_zoaf(tmp_path: Path):
    """A pool worker holds the write end of the pipe its parent watches for its end (the sentinel). A deck that
    wrote into it (``/proc/self/fd/N``: Landlock does not govern pipes) made the worker look dead: the pool joined
    it, which blocks in ``waitpid`` once the sentinel is readable, and zoaf's own process waited for good on a
    worker alive and waiting for its next task. Now the worker is killed and the simulation counted as crashed."""
    echo = "".join(f"echo x $g /proc/self/fd/{fd}\n" for fd in range(3, 64))
    deck = tmp_path / "deck.cir"
    deck.write_text(f'sentinel\n.options g=">"\n.param r1=1k\nv1 in 0 dc 1\nr1 in out {{r1}}\nr2 out 0 1k\n'
                    f".dc v1 0 {{1}} 1\n.meas dc vo find v(out) at=1\n.control\nrun\n{echo}.endc\n.end\n")
    (tmp_path / "deck.toml").write_text(SPEC)
    r = subprocess.run([sys.executable, "-c", _PAST_THE_CHECKS, str(deck)], capture_output=True, text=True,
                       timeout=180, cwd=tmp_path)
    assert r.returncode == 0 and "{'workers': 1}" in r.stdout, r.stderr[-3000:]


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
    for kw in ({"workers": 0}, {"workers": 1}, {"workers": 1, "dask": "local"}):
        with Evaluator(CircuitProblem(deck, allow_shell=True), **kw) as ev:
            [record] = ev.evaluate(np.array([[0.5]]))
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

def _program_deck(folder: Path, title: str, command: str) -> Path:
    """A deck whose ``.control`` block runs ``command`` (a back-quoted program: --allow-shell) and makes what it
    prints the measure ``got``; its spec beside it."""
    (folder / "deck.toml").write_text(SPEC.replace("vo = {}", "vo = {}\ngot = {}"))
    deck = folder / "deck.cir"
    deck.write_text(f"{title}\n.param r1=1k\nv1 in 0 dc 1\nr1 in out {{r1}}\nr2 out 0 1k\n.control\n"
                    f"set x = `{command}`\nop\nlet vo = v(out)\nlet got = $x\nprint vo got\n.endc\n.end\n")
    return deck


def _reads_nothing_in_any_backend(deck: Path) -> None:
    """In every backend the deck's program got nothing: its measure ``got`` is 0."""
    for kw in ({"workers": 0}, {"workers": 1}, {"workers": 1, "dask": "local"}):
        with Evaluator(CircuitProblem(deck, allow_shell=True), **kw) as ev:
            [record] = ev.evaluate(np.array([[0.5]]))
        assert record.outcome.measures.get("got") == 0.0, (kw, record.outcome)


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("python3"), reason="root's programs hold capabilities")
def test_a_program_a_deck_runs_as_root_holds_no_capability_in_any_backend(tmp_path: Path):
    """Run as root (a container), a program (--allow-shell) kept every capability, and Landlock let it make device
    files in the private directory: ``mknod`` of ``/dev/kmsg``'s numbers read the kernel log, a disk's any file,
    a terminal's what you type; capabilities also load kernel modules or reboot. Proved real first: after plain
    ``ngspice -b`` the device file is there."""
    (tmp_path / "maker.py").write_text(_DEVICE_MAKER)
    deck = _program_deck(tmp_path, "mknod", f"python3 {tmp_path / 'maker.py'}")
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
        _reads_nothing_in_any_backend(_program_deck(tmp_path, "keys", f"python3 {tmp_path / 'keys.py'} {name}"))
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
        _reads_nothing_in_any_backend(_program_deck(tmp_path, "shm", f"python3 {tmp_path / 'shm.py'} {shm_key}"))
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
    for kw in ({}, {"workers": 0}, {"workers": 1}, {"workers": 1, "dask": "local"}):
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
    deck = _program_deck(folder, "watch", f"python3 {folder / 'watch.py'} {tmp_path / 'outside'}")
    r = subprocess.run(["ngspice", "-b", str(deck)], capture_output=True, text=True, timeout=60)
    assert re.search(r"got\s*=\s*1", r.stdout), r.stdout                # real
    _reads_nothing_in_any_backend(deck)

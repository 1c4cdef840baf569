"""Attack decks whose programs (``--allow-shell``) or vectors go for the machine's resources: the disk, memory,
other programs, programs that outlive their worker, and the pipes Landlock does not govern.

Each attack is proved real first where it can be (plain ``ngspice -b`` does it), then run through zoaf's
backends (``workers=0``, a pool worker, Dask), where it must be stopped with one line and leave nothing behind.
"""
from __future__ import annotations

import os
import pickle
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from attackkit import BACKENDS, DIVIDER_SPEC as SPEC, in_each_backend
from fresh import in_fresh_process

from zoaf.circuit import CircuitProblem
from zoaf.errors import InputError
from zoaf.evaluate import Evaluator
from zoaf.problem import Status

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux sandbox")


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
    for kw, [record], stats in in_each_backend(lambda: CircuitProblem(deck, allow_shell=True)):
        assert record.outcome.status is Status.CRASHED and not record.outcome.measures, kw
        assert "wrote more than 0.0625 GiB of files (ZOAF_MAX_DISK)" in record.outcome.error, kw
        if kw != {"workers": 0}:
            assert stats["crashed"] == 1, stats                    # not run again: it would only go over again
        time.sleep(0.5)
        assert _held(temp) < 1e6 and not _running("count=6400"), kw     # nothing left behind, nothing running


def test_a_file_a_program_removed_but_writes_on_counts_toward_the_disk_limit_in_every_backend(tmp_path: Path,
                                                                                               monkeypatch):
    """``exec 3>f; rm f`` then writing on into descriptor 3: the walk of the private directory no longer saw the
    file, whose blocks the kernel frees only when the program ends: a program filled the disk past ZOAF_MAX_DISK
    (at disk speed, until the timeout) and its simulation came back OK."""
    (tmp_path / "deck.toml").write_text(SPEC)
    (tmp_path / "fill.sh").write_text("exec 3>fill.raw\nrm fill.raw\n"
                                      "dd if=/dev/zero bs=1048576 count=256 status=none >&3\nsleep 5\n")
    deck = tmp_path / "deck.cir"
    deck.write_text("fills\n.param r1=1k\nv1 in 0 dc 1\nr1 in out {r1}\nr2 out 0 1k\n.control\n"
                    f"set x = `sh {tmp_path / 'fill.sh'}`\nop\nlet vo = v(out)\nprint vo\n.endc\n.end\n")
    monkeypatch.setenv("ZOAF_MAX_DISK", "64M")
    for kw, [record], _ in in_each_backend(lambda: CircuitProblem(deck, allow_shell=True)):
        assert record.outcome.status is Status.CRASHED, (kw, record.outcome)
        assert "wrote more than 0.0625 GiB of files (ZOAF_MAX_DISK)" in record.outcome.error, kw


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
    for kw, [record], _ in in_each_backend(lambda: CircuitProblem(deck, allow_shell=True)):
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


def _ended(pattern: str, within: float = 5.0) -> bool:
    """Whether no process matches ``pattern`` by ``within`` seconds: its worker's end kills it, but a loaded
    machine may take more than a moment to reap it."""
    deadline = time.monotonic() + within
    while _running(pattern):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def test_a_program_a_deck_ran_ends_with_its_timed_out_worker(tmp_path: Path):
    """A deck's program (--allow-shell) outlived the worker killed at its timeout, adopted by init (a Dask
    worker's too, restarted by its nanny)."""
    (tmp_path / "deck.toml").write_text(SPEC)
    deck = tmp_path / "deck.cir"
    naps = f"sleep {3000 + os.getpid() % 997}"
    deck.write_text(f"naps\n.param r1=1k\nv1 in 0 dc 1\nr1 in out {{r1}}\nr2 out 0 1k\n.control\n"
                    f"set x = `{naps}`\nop\nlet vo = v(out)\nprint vo\n.endc\n.end\n")
    for kw, [record], _ in in_each_backend(lambda: CircuitProblem(deck, allow_shell=True, timeout=3)):
        assert record.outcome.status is Status.TIMEOUT, kw
        assert _ended(naps), kw


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

        def simulated_with_its_program_running(run) -> None:
            [record] = run.records
            assert set(record.outcome.measures) == {"vo"} and _running(naps), run.kw

        for kw, _, _ in in_each_backend(lambda: CircuitProblem(deck, allow_shell=True),
                                        while_open=simulated_with_its_program_running):
            assert _ended(naps), kw
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
    for kw, [record], _ in in_each_backend(lambda: CircuitProblem(deck), backends=BACKENDS[:2]):
        assert record.outcome.status is Status.CRASHED, kw
        assert "used more than 0.293 GiB of memory (ZOAF_MAX_MEMORY)" in record.outcome.error, kw
    monkeypatch.setenv("ZOAF_MAX_MEMORY", "3 gigs")
    with pytest.raises(InputError, match=r"^ZOAF_MAX_MEMORY: not a number of bytes: '3 gigs'"):
        Evaluator(CircuitProblem(deck))
    r = subprocess.run([sys.executable, "-m", "zoaf", "check", str(deck)], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 2 and r.stderr.strip().startswith("error: ZOAF_MAX_MEMORY: not a number of bytes")
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_a_program_that_allocates_past_the_memory_limit_is_ended_with_one_line(tmp_path: Path, monkeypatch):
    """The watchdog counted the process's own resident memory only: a program the deck runs (--allow-shell)
    allocated past ZOAF_MAX_MEMORY unseen (without end: up to the kernel's OOM killer) and its simulation came
    back OK. The programs' memory counts too (a fork's pages shared with the process once)."""
    (tmp_path / "deck.toml").write_text(SPEC)
    (tmp_path / "eat.py").write_text("import time\nheld = b'x' * (400 << 20)\ntime.sleep(4)\n")
    deck = tmp_path / "deck.cir"
    deck.write_text("eats\n.param r1=1k\nv1 in 0 dc 1\nr1 in out {r1}\nr2 out 0 1k\n.control\n"
                    f"set x = `{sys.executable} {tmp_path / 'eat.py'}`\nop\nlet vo = v(out)\nprint vo\n.endc\n.end\n")
    monkeypatch.setenv("ZOAF_MAX_MEMORY", "300M")
    for kw, [record], _ in in_each_backend(lambda: CircuitProblem(deck, allow_shell=True), backends=BACKENDS[:2]):
        assert record.outcome.status is Status.CRASHED, (kw, record.outcome)
        assert "used more than 0.293 GiB of memory (ZOAF_MAX_MEMORY)" in record.outcome.error, kw
        assert not _running(str(tmp_path / "eat.py")), kw


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
    for kw in ({}, *BACKENDS):
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
    watchdog.remove_tree(folder)
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
    test_attack_decks_text; Landlock does not govern pipes) had it unpickled by the worker's thread that waits on it,
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

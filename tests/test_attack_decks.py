"""Attack decks that read what they should not: through zoaf's own process, or out of the sandbox's grants.

Each read attack is proved real first: plain ``ngspice -b`` (or Python) does read the secret. Then it goes
through zoaf's entry points (``python -m zoaf check``, ``workers=0``, a pool worker, Dask) and the secret's
value must never come back in a measure, on stdout or in an error.
"""
from __future__ import annotations

import json
import os
import pickle
import shutil
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from fresh import in_fresh_process

from zoaf.circuit import CircuitProblem
from zoaf.deckcheck import MAX_INCLUDE_DEPTH
from zoaf.errors import InputError
from zoaf.evaluate import Evaluator
from zoaf.netlist import Netlist
from zoaf.problem import Status
from zoaf.signoff.corners import process_params

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux sandbox")

#: The secret: a waveform file whose value, read by XSPICE's filesource, becomes the deck's measure.
SECRET_VALUE = "7.123456"
SPEC = """title = "reads a file"
[parameters]
r1 = { lo = "100", hi = "10k" }
[measures]
leak = {}
[objectives]
o = { maximize = "leak" }
"""


def _reader_deck(folder: Path, secret: Path, include: Path | None = None) -> Path:
    """A deck (and its spec) in ``folder`` whose measure ``leak`` is the number in ``secret``."""
    inc = f".include {include}\n" if include else ""
    (folder / "deck.toml").write_text(SPEC)
    deck = folder / "deck.cir"
    deck.write_text(f"reads a file\n{inc}a1 %v([out]) src\n"
                    f'.model src filesource (file="{secret}" amploffset=[0] amplscale=[1] timeoffset=0 '
                    "timescale=1 timerelative=false amplstep=false)\n"
                    ".param r1=1k\nR1 out 0 {r1}\n.tran 1u 1m\n.meas tran leak find v(out) at=1m\n.end\n")
    return deck


@pytest.fixture
def secret(tmp_path: Path) -> Path:
    """A secret outside the deck's folder; the deck's folder is ``tmp_path / 'deck'``."""
    (tmp_path / "deck").mkdir()
    (tmp_path / "home").mkdir()
    path = tmp_path / "home" / "secret.txt"
    path.write_text(f"0 0\n1e-3 {SECRET_VALUE}\n")
    return path


def _ngspice_reads(deck: Path) -> None:
    r = subprocess.run(["ngspice", "-b", str(deck)], capture_output=True, text=True, timeout=60)
    assert re.search(rf"leak\s*=\s*{SECRET_VALUE}", r.stdout), "not an attack in plain ngspice -b: " + r.stdout


def test_an_empty_include_does_not_open_its_folder_in_any_backend(secret: Path):
    """``.include ~/.hushlogin`` (an empty file) once granted the whole folder it sits in to the deck."""
    empty = secret.parent / ".hushlogin"
    empty.write_text("")
    deck = _reader_deck(secret.parent.parent / "deck", secret, include=empty)
    _ngspice_reads(deck)
    problem = CircuitProblem(deck)
    for kw in ({"workers": 0}, {"workers": 1}, {"workers": 1, "dask": "local"}):
        with Evaluator(CircuitProblem(deck), **kw) as ev:
            [record] = ev.evaluate(problem.to_unit(np.array([[1e3]])))
        assert record.outcome.status is Status.FAILED and not record.outcome.measures, kw
        assert SECRET_VALUE not in str(record.outcome.error), kw


def test_shared_memory_files_of_other_programs_are_not_readable_in_any_backend(secret: Path):
    """/dev was granted whole: /dev/shm holds other programs' data (and /dev/tty would read your keys)."""
    shm = Path("/dev/shm")
    if not shm.is_dir():
        pytest.skip("no /dev/shm")
    shared = shm / f"zoaf-test-secret-{os.getpid()}"
    shared.write_text(secret.read_text())
    try:
        deck = _reader_deck(secret.parent.parent / "deck", shared)
        _ngspice_reads(deck)
        problem = CircuitProblem(deck)
        for kw in ({"workers": 0}, {"workers": 1}, {"workers": 1, "dask": "local"}):
            with Evaluator(CircuitProblem(deck), **kw) as ev:
                [record] = ev.evaluate(problem.to_unit(np.array([[1e3]])))
            assert record.outcome.status is Status.FAILED and not record.outcome.measures, kw
    finally:
        shared.unlink()


def test_python_m_zoaf_does_not_grant_its_working_directory(secret: Path):
    """``python -m zoaf`` puts the working directory on sys.path; the sandbox once granted it whole."""
    deck = _reader_deck(secret.parent.parent / "deck", secret)
    _ngspice_reads(deck)
    r = subprocess.run([sys.executable, "-m", "zoaf", "check", str(deck), "--json"], cwd=secret.parent,
                       capture_output=True, text=True, timeout=120)
    report = json.loads(r.stdout)
    assert r.returncode == 2 and report["status"] == "failed" and not report["measures"], r.stdout + r.stderr
    assert SECRET_VALUE not in r.stdout + r.stderr


# -- files zoaf's own process would read: refused before anything reads them --------------------------------
def _include(tmp_path: Path, target: str) -> Path:
    deck = tmp_path / "deck.cir"
    deck.write_text(f"t\n.include {target}\nR1 1 0 1k\n.end\n")
    return deck


@pytest.mark.parametrize("target, why", [
    ("/dev/zero", "under /dev: a device or kernel file"),              # never ends: filled the memory
    ("/dev/tty", "under /dev"),                                        # waits for the user's keys
    ("/proc/self/environ", "under /proc"),                             # zoaf's own environment
    ("/sys/kernel/mm/transparent_hugepage/enabled", "under /sys"),
    ("zero_link.inc", "under /dev"),                                   # a link in the deck's folder to /dev/zero
    ("fifo.inc", "not a regular file"),                                # blocked the run forever
    ("big.inc", "larger than 64 MiB"),
])
def test_includes_that_are_not_model_files_are_refused_with_their_line(tmp_path: Path, target: str, why: str):
    (tmp_path / "zero_link.inc").symlink_to("/dev/zero")
    os.mkfifo(tmp_path / "fifo.inc")
    with open(tmp_path / "big.inc", "wb") as f:
        f.truncate(64 * 2**20 + 1)                       # sparse: no disk used
    with pytest.raises(InputError, match=rf"deck\.cir:2: \.include {re.escape(target)}: cannot read .*{why}"):
        Netlist.read(_include(tmp_path, target))


def test_a_too_deep_include_chain_is_one_error_not_a_traceback(tmp_path: Path):
    depth = MAX_INCLUDE_DEPTH + 1
    for i in range(depth):
        (tmp_path / f"c{i}.inc").write_text(f"* level {i}\n.include c{i + 1}.inc\n")
    (tmp_path / f"c{depth}.inc").write_text("* the bottom\n")
    with pytest.raises(InputError, match=rf"c{MAX_INCLUDE_DEPTH - 1}\.inc:2: \.include c{MAX_INCLUDE_DEPTH}\.inc: "
                                         rf"includes nested more than {MAX_INCLUDE_DEPTH} deep"):
        Netlist.read(_include(tmp_path, "c0.inc"))
    (tmp_path / "c1.inc").write_text("* a short chain\n")
    assert len(Netlist.read(_include(tmp_path, "c0.inc")).includes) == 2     # a PDK's few levels are fine


def test_a_spec_process_lib_is_read_only_if_it_is_a_model_file(tmp_path: Path):
    os.mkfifo(tmp_path / "fifo.lib")
    for lib, why in (("/dev/zero", "under /dev"), (str(tmp_path / "fifo.lib"), "not a regular file")):
        with pytest.raises(InputError, match=rf"process_lib {re.escape(lib)}: cannot read \({why}"):
            process_params(Path(lib), "tt", "spec: corners")


# -- zoaf's own command path: analysis lines run as commands, where ngspice runs back-quoted programs -------
def _run_analysis(deck: str, analysis: str, sandboxed: bool) -> str:
    """Simulate ``deck`` with ``analysis`` as its analysis line, past the text checks, programs allowed."""
    from zoaf import sandbox
    from zoaf.spice import SpiceSession

    nl = Netlist.read(deck)
    nl.analyses = [analysis]                             # the text check would refuse it: go round it
    if sandboxed:
        sandbox.enter(sandbox.Policy((Path(deck).parent,), allow_exec=True))
    with SpiceSession(nl) as s:
        return repr(s.evaluate({}))


def test_a_back_quote_in_an_analysis_line_is_refused_and_stays_in_the_sandbox(tmp_path: Path):
    deck = tmp_path / "rc.cir"
    text = ("rc\n.param r1=1k\nV1 in 0 dc 0 ac 1\nR1 in out {r1}\nC1 out 0 1n\n.ac dec 10 1k 1meg\n"
            ".meas ac g find vdb(out) at=1k\n.end\n")
    marker = tmp_path / "marker"
    analysis = f"ac dec 10 1k 1meg `touch {marker}`"
    deck.write_text(text.replace(".ac dec 10 1k 1meg", "." + analysis))
    with pytest.raises(InputError, match=r"rc\.cir:6: a back-quote on a \.ac line would run a program"):
        Netlist.read(deck, allow_shell=True)
    deck.write_text(text)
    for sandboxed in (True, False):                      # fresh processes: a sandbox cannot be undone
        in_fresh_process(_run_analysis, str(deck), analysis, sandboxed)
        assert marker.exists() is not sandboxed, f"sandboxed={sandboxed}"   # real without the sandbox


# -- the way back: a reply from the sandboxed child is untrusted ----------------------------------------------
class _RunsInTheParent:
    """Unpickled, it runs ``touch MARKER``: what a program the deck ran could write to the child's socket."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def _socket_writer(message: bytes) -> str:
    """A program (hex-coded: ngspice lower-cases the deck) that writes ``message`` to every socket it inherited,
    framed as a multiprocessing reply."""
    code = ("import os, stat, struct\nmsg = bytes.fromhex('%s')\nfor fd in range(3, 64):\n    try:\n"
            "        if stat.S_ISSOCK(os.fstat(fd).st_mode):\n"
            "            os.write(fd, struct.pack('!i', len(msg)) + msg)\n"
            "    except OSError:\n        pass\n") % message.hex()
    return f"python3 -c \"exec(bytes.fromhex('{code.encode().hex()}'))\""


@pytest.mark.skipif(shutil.which("python3") is None, reason="needs python3 on PATH")
def test_a_program_run_with_allow_shell_cannot_reach_zoafs_own_process(tmp_path: Path):
    """With --allow-shell a back-quoted program runs under Landlock; it once wrote a pickle to the socket of
    the workers=0 child or the pipe of a pool worker, which zoaf's unsandboxed process loaded: it then ran
    anything outside the sandbox."""
    from zoaf.replies import load_reply

    marker = tmp_path / "marker"
    payload = pickle.dumps(("ok", _RunsInTheParent(marker)))
    with pytest.raises(pickle.UnpicklingError, match="posix.system is not part of a simulation's reply"):
        load_reply(payload)
    assert not marker.exists()
    (tmp_path / "deck.toml").write_text(SPEC.replace("leak", "i"))
    deck = tmp_path / "deck.cir"
    deck.write_text("pickle back\n.param r1=1k\nV1 in 0 dc 1\nR1 in 0 {r1}\n.dc v1 0 1 1\n"
                    f".meas dc i find i(v1) at=1\n.control\nset x = `{_socket_writer(payload)}`\n.endc\n.end\n")
    for kw in ({"workers": 0}, {"workers": 1}, {"workers": 1, "dask": "local"}):   # a child, a pool worker
        with Evaluator(CircuitProblem(deck, allow_shell=True), **kw) as ev:
            [record] = ev.evaluate(np.array([[0.5]]))
        assert set(record.outcome.measures) == {"i"} and not marker.exists(), kw
    pickle.loads(payload)                                # the payload is real: loaded as it is, it runs
    assert marker.exists()


def test_the_environment_does_not_reach_a_measure_in_any_backend(tmp_path: Path, monkeypatch):
    """ngspice hands environment variables to the deck: in batch mode, ``echo leak = $VAR`` became a measure."""
    monkeypatch.setenv("RT_SECRET_NUMBER", "4242")
    (tmp_path / "deck.toml").write_text(SPEC.replace("leak = {}", "leak = {}\ni = {}"))
    deck = tmp_path / "deck.cir"
    deck.write_text("env\n.param r1=1k\nV1 in 0 dc 1\nR1 in 0 {r1}\n.meas dc i find i(v1) at=1\n.control\n"
                    ".save all\ndc v1 0 1 1\nlet leak = 0\nprint leak\necho leak = $RT_SECRET_NUMBER\n.endc\n.end\n")
    r = subprocess.run(["ngspice", "-b", str(deck)], capture_output=True, text=True, timeout=60)
    assert "leak = 4242" in r.stdout                     # real: ngspice -b prints it
    for kw in ({"workers": 0}, {"workers": 1}, {"workers": 1, "dask": "local"}):
        with Evaluator(CircuitProblem(deck), **kw) as ev:
            [record] = ev.evaluate(np.array([[0.5]]))
        assert record.outcome.measures.get("leak") != 4242.0 and "4242" not in str(record.outcome.error), kw


@pytest.mark.skipif(shutil.which("python3") is None, reason="needs python3 on PATH")
def test_a_deck_cannot_send_anything_over_the_network_in_any_backend(tmp_path: Path):
    """With --allow-shell a deck's program could read what the sandbox lets it read (the deck's folder, /etc) and
    send it anywhere, or drive a local daemon's Unix socket. The simulation thread and what it starts open no
    socket. Proved real first: plain ``ngspice -b`` delivers the message to a listener on this machine."""
    import socket
    import threading

    received: list[bytes] = []
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    stop = threading.Event()

    def listen() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            with conn:
                received.append(conn.recv(100))

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    code = "import socket; socket.create_connection(('127.0.0.1', %d), 5).sendall(b'leak')" % server.getsockname()[1]
    sender = f"python3 -c \"exec(bytes.fromhex('{code.encode().hex()}'))\""    # ngspice splits commands at ';'
    (tmp_path / "deck.toml").write_text(SPEC.replace("leak", "i"))
    deck = tmp_path / "deck.cir"
    deck.write_text("sends\n.param r1=1k\nV1 in 0 dc 1\nR1 in 0 {r1}\n.dc v1 0 1 1\n"
                    f".meas dc i find i(v1) at=1\n.control\nset x = `{sender}`\n.endc\n.end\n")
    try:
        subprocess.run(["ngspice", "-b", str(deck)], cwd=tmp_path, capture_output=True, timeout=60)
        deadline = time.monotonic() + 10
        while not received and time.monotonic() < deadline:
            time.sleep(0.05)
        assert received == [b"leak"]                     # real: plain ngspice -b sends it
        for kw in ({"workers": 0}, {"workers": 1}, {"workers": 1, "dask": "local"}):
            with Evaluator(CircuitProblem(deck, allow_shell=True), **kw) as ev:
                [record] = ev.evaluate(np.array([[0.5]]))
            assert set(record.outcome.measures) == {"i"}, kw     # the deck ran, its program with it
        time.sleep(1)
        assert received == [b"leak"]                     # nothing more arrived
    finally:
        stop.set()
        listener.join(5)
        server.close()


# -- resources: memory and disk -----------------------------------------------------------------------------
def _held(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def test_a_program_that_writes_without_end_is_ended_at_the_disk_limit_in_every_backend(tmp_path: Path,
                                                                                      monkeypatch):
    """Landlock keeps the writes of a program a deck runs (--allow-shell) in the private directory and the
    timeout bounds the time, not the bytes. Past ZOAF_MAX_DISK the process and its program are ended with one
    line, not retried, and the private directory is gone (a Dask worker tells its client the line before it
    goes: Dask itself reports a lost worker). Proved real first: ngspice -b writes what dd is told."""
    (tmp_path / "deck.toml").write_text(SPEC.replace("leak", "vo"))
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
    (tmp_path / "deck.toml").write_text(SPEC.replace("leak", "vo"))
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


def test_a_deck_that_allocates_past_the_memory_limit_is_ended_with_one_line(tmp_path: Path, monkeypatch):
    """A .control vector of 400 MB (ngspice -b allocates it): past ZOAF_MAX_MEMORY resident bytes the process is
    ended with one line instead of waiting for the kernel's OOM killer; a bad limit is one line before any
    simulation."""
    (tmp_path / "deck.toml").write_text(SPEC.replace("leak", "vo"))
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

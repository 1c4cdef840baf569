"""Red team, round 26: a simulating process shared zoaf's standard error.

Round 25 gave every simulating process ``/dev/null`` for its standard input and output; its standard error was still
zoaf's. Where that is a pipe (``zoaf optimize deck.cir 2>&1 | tee log``, CI, a wrapper script), Landlock does not
govern reopening it through ``/proc/self/fd/2``: a deck read what zoaf wrote there (its ``filesource`` took the
lines, which the designer never saw; a program run with ``--allow-shell`` made one a measure) and wrote lines into
zoaf's output that read as zoaf's own (``error: ...``, escape sequences), as many as it liked. Now each process's
stderr is a socket of its own that zoaf relays (:mod:`zoaf.relay`): through ``/proc/self/fd/2`` a deck reaches
nothing, and what the process writes there reaches zoaf's stderr marked ``[worker PID]``, escaped and bounded.
"""
from __future__ import annotations

import fcntl
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path

import pytest
from attackkit import BACKENDS, DIVIDER_SPEC, SPEC, in_each_backend, program_deck

from zoaf import relay
from zoaf.circuit import CircuitProblem

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux sandbox")

#: A line zoaf wrote to its stderr that the designer has yet to read: a waveform XSPICE's filesource reads, whose
#: value would be the measure ``leak``, or a number a program reads as the measure ``got``.
WAVEFORM = "0 0\n1e-3 7.123456\n"
NUMBER = "7.125\n"
#: Seconds a simulation may take: a deck that waits on a pipe is stopped then.
TIMEOUT = 5
#: The command-line flags of each backend (as :data:`attackkit.BACKENDS`).
FLAGS = {"workers=0": ["--workers", "0"], "pool": ["--workers", "1"], "dask": ["--workers", "1", "--dask", "local"]}
#: How a relayed line starts: the worker's mark.
MARKED = re.compile(r"^\[(dask )?worker \d+\] ")


@contextmanager
def _standard_error() -> Iterator[int]:
    """A pipe as this process's stderr while the block runs, as ``zoaf ... 2>&1 | tee log`` gives it (what zoaf
    starts inherits it; 1 MiB, so that no writer waits on it); yields its read end, to read what is left."""
    read, write = os.pipe()
    fcntl.fcntl(write, fcntl.F_SETPIPE_SZ, 1 << 20)
    saved = os.dup(2)
    os.dup2(write, 2)
    os.close(write)
    try:
        yield read
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _left(pipe: int) -> str:
    """What is still in ``pipe`` for zoaf's caller to read."""
    os.set_blocking(pipe, False)
    out = b""
    try:
        while chunk := os.read(pipe, 1 << 16):
            out += chunk
    except BlockingIOError:
        pass
    os.close(pipe)
    return out.decode(errors="replace")


def _after(text: str, deck: Path, **kw: object) -> CircuitProblem:
    """The circuit of ``deck``, made as a run starts, once ``text`` is written to zoaf's stderr: a line of zoaf's
    own that the designer has yet to read when the deck runs."""
    os.write(2, text.encode())
    return CircuitProblem(deck, **kw)


def test_a_deck_cannot_read_zoafs_standard_error_in_any_backend(tmp_path: Path):
    """``filesource file=/proc/self/fd/2`` took what zoaf had written to its stderr pipe (it reads to the end, so
    it waited there until its timeout, taking each line zoaf wrote meanwhile): the designer never saw those lines.
    Now the socket cannot be reopened: the simulation fails at once, and every line is still there for zoaf's
    caller. Proved real first: plain ``ngspice -b``, its stderr that pipe, takes the line."""
    (tmp_path / "deck.toml").write_text(SPEC)
    deck = tmp_path / "deck.cir"
    deck.write_text("reads stderr\na1 %v([out]) src\n"
                    '.model src filesource (file="/proc/self/fd/2" amploffset=[0] amplscale=[1] timeoffset=0 '
                    "timescale=1 timerelative=false amplstep=false)\n"
                    ".param r1=1k\nR1 out 0 {r1}\n.tran 1u 1m\n.meas tran leak find v(out) at=1m\n.end\n")
    read, write = os.pipe()
    os.write(write, WAVEFORM.encode())
    with pytest.raises(subprocess.TimeoutExpired):
        subprocess.run(["ngspice", "-b", str(deck)], stderr=write, stdout=subprocess.DEVNULL, timeout=TIMEOUT)
    os.close(write)
    assert WAVEFORM not in _left(read)                                     # real: the line is gone
    for kw in BACKENDS:
        with _standard_error() as pipe:
            [(_, [record], _)] = in_each_backend(partial(_after, WAVEFORM, deck, timeout=TIMEOUT), backends=(kw,))
        assert WAVEFORM in _left(pipe), kw
        assert "leak" not in record.outcome.measures and "7.123456" not in str(record.outcome.error), kw


def test_a_program_cannot_read_zoafs_standard_error_into_a_measure_in_any_backend(tmp_path: Path):
    """A program a deck runs (``--allow-shell``) read the first line of zoaf's stderr pipe through
    ``/proc/self/fd/2`` and made it the measure ``got``. Proved real first: plain ``ngspice -b`` does. Now its
    stderr is a socket: nothing to read, no measure is the line, and the line is still there for zoaf's caller."""
    deck = program_deck(tmp_path, "reads stderr", "head -n 1 /proc/self/fd/2")
    read, write = os.pipe()
    os.write(write, NUMBER.encode())
    proof = subprocess.run(["ngspice", "-b", str(deck)], stderr=write, stdout=subprocess.PIPE, text=True, timeout=60)
    os.close(write)
    os.close(read)
    assert re.search(r"got\s*=\s*7\.125", proof.stdout), proof.stdout        # real
    for kw in BACKENDS:
        with _standard_error() as pipe:
            [(_, [record], _)] = in_each_backend(partial(_after, NUMBER, deck, allow_shell=True), backends=(kw,))
        assert NUMBER in _left(pipe), kw
        assert record.outcome.measures.get("got") != 7.125 and "7.125" not in str(record.outcome.error), kw


def _optimize(deck: Path, backend: str, *flags: str, budget: int = 2) -> subprocess.CompletedProcess:
    """``zoaf optimize`` of ``deck`` in ``backend``, its stderr a pipe (as ``2>&1 | tee`` makes it)."""
    return subprocess.run([sys.executable, "-m", "zoaf", "optimize", str(deck), "--budget", str(budget), "--quiet",
                           "--out", str(deck.parent / "run"), *FLAGS[backend], *flags],
                          capture_output=True, text=True, timeout=240)


def _unmarked(stderr: str, word: str) -> list[str]:
    """The lines of ``stderr`` holding ``word`` that do not start with a worker's mark."""
    return [line for line in stderr.splitlines() if word in line and not MARKED.match(line)]


@pytest.mark.parametrize("backend", FLAGS)
def test_a_deck_cannot_write_into_zoafs_standard_error(tmp_path: Path, backend: str):
    """A deck titled ``>`` makes ``echo TEXT $curplottitle /proc/self/fd/2`` a redirect past the text checks (a
    deck reloaded per sizing replays ``echo``): it wrote ``error: ...`` lines into zoaf's stderr pipe, as zoaf's
    own. Proved real first with ``ngspice -b``; now the socket cannot be reopened and no such line appears."""
    (tmp_path / "deck.toml").write_text(DIVIDER_SPEC)
    deck = tmp_path / "deck.cir"
    deck.write_text(">\n.param r1=1k\nv1 in 0 dc 1\nr1 in out {r1}\nr2 out 0 1k\n.dc v1 0 {1} 1\n"
                    ".meas dc vo find v(out) at=1\n.control\nrun\necho error: FORGED $curplottitle /proc/self/fd/2\n"
                    ".endc\n.end\n")
    assert "error: FORGED" in subprocess.run(["ngspice", "-b", str(deck)], capture_output=True, text=True,
                                             timeout=60).stderr                            # real
    r = _optimize(deck, backend)
    assert r.returncode == 0, r.stderr[-3000:]
    assert not _unmarked(r.stderr, "FORGED"), r.stderr[-3000:]


#: A program that forges a line of zoaf's (escape sequences retitle the window; a carriage return rewrites the
#: line's start), floods stderr, then prints the measure.
_FLOOD = "printf '\\033]0;PWNED\\007error: FORGED\\r\\n' >&2\nyes FLOODFLOODFLOOD | head -c 20000000 >&2\necho 1\n"


@pytest.mark.parametrize("backend", FLAGS)
def test_what_a_program_writes_to_stderr_reaches_zoafs_marked_escaped_and_bounded(tmp_path: Path, backend: str):
    """A program a deck runs (``--allow-shell``) wrote into zoaf's stderr as zoaf: an ``error:`` line, escape
    sequences the terminal ran, and 20 MB of lines per sizing (a gigabyte would have filled a log). Now each line
    is the worker's (``[worker PID] ``), its control characters escaped, and a simulation's lines beyond
    :data:`zoaf.relay.SIM_LINES` are dropped, saying so."""
    (tmp_path / "flood.sh").write_text(_FLOOD)
    deck = program_deck(tmp_path, "floods stderr", f"sh {tmp_path / 'flood.sh'}")
    r = _optimize(deck, backend, "--allow-shell")
    assert r.returncode == 0, r.stderr[-3000:]
    assert not set("\x1b\x07\r") & set(r.stderr), r.stderr[:3000]
    assert not _unmarked(r.stderr, "FORGED") and not _unmarked(r.stderr, "FLOOD"), r.stderr[:3000]
    assert re.search(r"^\[(dask )?worker \d+\] \?\]0;PWNED\?error: FORGED$", r.stderr, re.M), r.stderr[:3000]
    assert "the rest of its output dropped" in r.stderr and len(r.stderr) < 100_000, r.stderr[-3000:]


@pytest.mark.parametrize("backend", FLAGS)
def test_a_worker_killed_mid_line_leaves_its_line_marked_and_no_hang(tmp_path: Path, backend: str):
    """A program that writes half a line to stderr, then waits past the timeout: its worker is killed mid-line. The
    half line reaches zoaf's stderr on its own line, marked, and the run ends (no relay waits on the socket)."""
    (tmp_path / "half.sh").write_text("printf HALF-A-LINE >&2\nsleep 60\necho 1\n")
    deck = program_deck(tmp_path, "half a line", f"sh {tmp_path / 'half.sh'}")
    start = time.monotonic()
    r = _optimize(deck, backend, "--allow-shell", "--timeout", "3", budget=1)
    assert time.monotonic() - start < 120, r.stderr
    assert not _unmarked(r.stderr, "HALF-A-LINE"), r.stderr[-3000:]
    assert re.search(r"^\[(dask )?worker \d+\] HALF-A-LINE$", r.stderr, re.M), r.stderr[-3000:]


def test_a_process_gets_so_many_lines_and_no_more(capsys: pytest.CaptureFixture[str]):
    """The relay's bounds, one stream: a line cut at MAX_LINE bytes, SIM_LINES per simulation, WORKER_LINES over the
    process's life, each drop said once; a last line without its end relayed when the process ends."""
    mine, theirs = relay.socket_pair()
    source = relay.watch(mine, "worker 7")
    theirs.sendall(b"x" * (3 * relay.MAX_LINE) + b"\nshort\n")
    source.next_simulation()
    for sim in range(relay.WORKER_LINES // relay.SIM_LINES + 2):
        theirs.sendall(b"".join(b"sim %d line %d\n" % (sim, i) for i in range(relay.SIM_LINES + 5)))
        source.next_simulation()
    theirs.sendall(b"no end")
    theirs.close()
    source.finish()
    lines = capsys.readouterr().err.splitlines()
    assert all(line.startswith("[worker 7] ") for line in lines), lines[:5]
    assert lines[0] == "[worker 7] " + "x" * relay.MAX_LINE + " (line cut)" and lines[1] == "[worker 7] short"
    relayed = [line for line in lines if " line " in line]
    assert len(relayed) == relay.WORKER_LINES - 2, len(relayed)
    # each full simulation says so once, but the last, which reaches the process's bound instead
    assert sum("lines in one simulation" in line for line in lines) == relay.WORKER_LINES // relay.SIM_LINES - 1
    assert sum("the rest of this process's output dropped" in line for line in lines) == 1
    assert "no end" not in "".join(lines)                                 # past the process's bound too


def test_a_line_without_its_end_is_relayed_when_the_stream_ends(capsys: pytest.CaptureFixture[str]):
    """A process killed mid-line: its half line relayed at the end of its stream, and ``finish`` returns within
    FINISH_WAIT where a program still holds the socket open."""
    mine, theirs = relay.socket_pair()
    source = relay.watch(mine, "worker 8")
    theirs.sendall(b"half")
    start = time.monotonic()
    source.finish()
    assert time.monotonic() - start < relay.FINISH_WAIT + 1
    theirs.close()
    assert capsys.readouterr().err == "[worker 8] half\n"

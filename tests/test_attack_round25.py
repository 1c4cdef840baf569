"""Red team, round 25: what a deck reads through the process it runs in, and what zoaf prints of what a sandboxed
process sends.

A pool or Dask worker shared zoaf's standard input: Landlock does not govern a pipe reopened through
``/proc/self/fd``, so XSPICE's ``filesource file=/proc/self/fd/0`` made what was piped into zoaf a measure, and took
it from the shell loop that fed zoaf its decks (``find . -name '*.cir' | while read d; do zoaf optimize "$d"; done``
optimized the first deck only). A path under the process's own ``/proc`` entries that leads out of them
(``/proc/self/root/...``) stays outside Landlock's grants. Text a worker's native code forges (the name of a class in
its reply, an exception it says it raised) reached the terminal as escape sequences, through a log line and a
traceback.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path

import pytest
from attackkit import BACKENDS, DIVIDER_SPEC, SPEC, in_each_backend

from zoaf.circuit import CircuitProblem

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux sandbox")

#: A waveform whose value, read by XSPICE's filesource, becomes the deck's measure ``leak``.
SECRET_VALUE = "7.123456"
SECRET_LINES = f"0 0\n1e-3 {SECRET_VALUE}\n"
#: What a shell loop still has to give zoaf after the secret: the next deck's name.
NEXT = "next-deck.cir\n"


def _reader(folder: Path, file: str) -> Path:
    """``folder/deck.cir`` (its spec beside it), whose measure ``leak`` is the number in ``file``."""
    (folder / "deck.toml").write_text(SPEC)
    deck = folder / "deck.cir"
    deck.write_text(f"reads {file}\na1 %v([out]) src\n"
                    f'.model src filesource (file="{file}" amploffset=[0] amplscale=[1] timeoffset=0 timescale=1 '
                    "timerelative=false amplstep=false)\n"
                    ".param r1=1k\nR1 out 0 {r1}\n.tran 1u 1m\n.meas tran leak find v(out) at=1m\n.end\n")
    return deck


def _leaked(stdout: str) -> bool:
    return re.search(rf"leak\s*=\s*{SECRET_VALUE}", stdout) is not None


@contextmanager
def _standard_input(data: str) -> Iterator[int]:
    """``data`` waiting in a pipe that is this process's standard input while the block runs (what zoaf starts
    inherits it), its writer closed, as ``printf ... | zoaf`` gives it; yields the pipe, to read what is left."""
    read, write = os.pipe()
    os.write(write, data.encode())
    os.close(write)
    saved = os.dup(0)
    os.dup2(read, 0)
    try:
        yield read
    finally:
        os.dup2(saved, 0)
        os.close(saved)


def test_a_deck_cannot_read_zoafs_standard_input_in_any_backend(tmp_path: Path):
    """A pool or Dask worker kept zoaf's standard input: ``filesource file=/proc/self/fd/0`` (Landlock does not govern
    a pipe) made what was piped into zoaf the measure, and what it read was gone for the shell loop reading the same
    pipe. Now a simulating process's standard input is ``/dev/null``: no measure is the secret, and all of it is still
    there for zoaf's caller. Proved real first: plain ``ngspice -b`` reads it."""
    deck = _reader(tmp_path, "/proc/self/fd/0")
    proof = subprocess.run(["ngspice", "-b", str(deck)], input=SECRET_LINES, capture_output=True, text=True,
                           timeout=60)
    assert _leaked(proof.stdout), "not an attack in plain ngspice -b: " + proof.stdout
    for kw in BACKENDS:
        with _standard_input(SECRET_LINES + NEXT) as pipe:
            [(_, [record], _)] = in_each_backend(partial(CircuitProblem, deck), backends=(kw,))
            os.set_blocking(pipe, False)
            left = os.read(pipe, 1 << 16).decode()
            os.close(pipe)
        assert record.outcome.measures.get("leak") != float(SECRET_VALUE), (kw, record.outcome)
        assert SECRET_VALUE not in str(record.outcome.error), kw
        assert left == SECRET_LINES + NEXT, (kw, left)


def test_a_path_out_of_the_processs_own_proc_entries_reads_nothing_outside_in_any_backend(tmp_path: Path):
    """Landlock lets a sandboxed thread read its own ``/proc`` entries; ``/proc/self/root`` among them leads to the
    whole file system (ngspice follows it as any folder). The file read through it is checked where it is, outside
    every grant: no measure is the secret. Proved real first: plain ``ngspice -b`` reads it."""
    (tmp_path / "deck").mkdir()
    (tmp_path / "home").mkdir()
    secret = tmp_path / "home" / "secret.txt"
    secret.write_text(SECRET_LINES)
    deck = _reader(tmp_path / "deck", f"/proc/self/root{secret}")
    proof = subprocess.run(["ngspice", "-b", str(deck)], capture_output=True, text=True, timeout=60)
    assert _leaked(proof.stdout), "not an attack in plain ngspice -b: " + proof.stdout
    for kw, [record], _ in in_each_backend(partial(CircuitProblem, deck)):
        assert record.outcome.measures.get("leak") != float(SECRET_VALUE), (kw, record.outcome)
        assert SECRET_VALUE not in str(record.outcome.error), kw


#: Text a terminal runs: a window title set, the screen cleared, what follows shown reversed.
ESCAPES = "\x1b]0;PWNED\x07\x1b[2J\u202e"
#: How zoaf shows it.
SHOWN = "?]0;PWNED??[2J\\u202e"

#: A circuit whose worker, as native code in it could (round 18), answers its sizing with :data:`ESCAPES`: a reply
#: naming a class so called (pickle's GLOBAL), or an exception it says it raised.
_FORGER = """
import sys, time
from zoaf.circuit import CircuitProblem

class Forger(CircuitProblem):
    def simulate(self, x, *args, **kw):
        frame = sys._getframe(1)
        while "conn" not in frame.f_locals:                  # the worker's loop: its connection and the task's id
            frame = frame.f_back
        conn, tid = frame.f_locals["conn"], frame.f_locals["tid"]
        if {mode!r} == "class":
            conn.send_bytes(b"\\x80\\x04c" + {text!r}.encode() + b"\\nX\\n.")
        else:
            conn.send(("raised", tid, time.monotonic(), ValueError({text!r}), "forged " + {text!r}, False))
        time.sleep(60)
"""
#: ``zoaf optimize`` of the deck in argv[1] as the command line runs it, its circuits forged.
_DRIVER = """
import sys, forger, zoaf.circuit
zoaf.circuit.CircuitProblem = forger.Forger
from zoaf.cli import main
deck = sys.argv[1]
sys.argv = ["zoaf", "optimize", deck, "--workers", "1", "--budget", "1", "--out", deck + ".run", "--quiet"]
main()
"""


@pytest.mark.parametrize("mode, says", [("class", "is not part of a simulation's reply"),
                                        ("raised", "ValueError")])
def test_text_a_worker_forges_reaches_the_terminal_printable(tmp_path: Path, mode: str, says: str):
    """A forged reply naming a class of escape sequences was logged as it came ("worker N sent back something that is
    not a result (<ESC>]0;...)"), and a forged exception ended ``zoaf optimize`` with its traceback: each sequence
    ran in the designer's terminal. Now each line shows them escaped."""
    (tmp_path / "forger.py").write_text(_FORGER.format(mode=mode, text=ESCAPES))
    (tmp_path / "deck.toml").write_text(DIVIDER_SPEC)
    (tmp_path / "deck.cir").write_text("divider\nv1 in 0 dc 1\n.param r1=1k\nr1 in out {r1}\nr2 out 0 1k\n"
                                       ".dc v1 0 1 1\n.meas dc vo find v(out) at=1\n.end\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")]))}
    r = subprocess.run([sys.executable, "-P", "-c", _DRIVER, str(tmp_path / "deck.cir")], capture_output=True,
                       text=True, timeout=120, cwd=tmp_path, env=env)
    assert r.returncode == 1, r.stderr
    assert not set("\x1b\x07\u202e") & set(r.stderr), r.stderr
    assert SHOWN in r.stderr and says in r.stderr, r.stderr

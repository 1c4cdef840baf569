"""Red team, round 18: what sits around the simulation. What zoaf loads back from a sandboxed process that native
code in it (a ``codemodel`` loaded with ``--allow-shell``) controls: a reply for another sizing or sent twice, one of
no known shape, an exception that stops zoaf itself; and the environment's byte limits past any machine.

A worker's forged messages are sent here by a problem's ``simulate`` through the worker's own connection (found in
the frame that called it), as native code in that process could; the ``workers=0`` child's, by a connection put in
its place.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from multiprocessing import Pipe
from pathlib import Path

import numpy as np
import pytest
from attackkit import DIVIDER_SPEC

from zoaf.circuit import CircuitProblem
from zoaf.errors import WorkerCrash
from zoaf.evaluate import Evaluator
from zoaf.problem import Outcome, Parameter, Problem, Status

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux sandbox")

#: What a point above 0.5 sends besides its own reply (its task's id is ``tid``): a forged fom of -1e9 each.
FORGED = {
    "twice": lambda tid: ("done", tid, time.monotonic(), Outcome(Status.OK, fom=-1e9), False),
    "another sizing": lambda tid: ("done", tid + 1, time.monotonic(), Outcome(Status.OK, fom=-1e9), False),
    "no known shape": lambda tid: ("done",),
    "not a tuple": lambda tid: 7,
    "an exit": lambda tid: ("raised", tid, time.monotonic(), SystemExit(0), "forged", False),
    "a ctrl-c": lambda tid: ("raised", tid, time.monotonic(), KeyboardInterrupt(), "forged", False),
}


class Forger(Problem):
    """fom = a; where a > 0.5 the first time in a process, the worker also sends ``FORGED[mode]`` first (the once:
    a retried point then gets its own answer)."""

    name = "forger"

    def __init__(self, mode: str) -> None:
        super().__init__([Parameter("a", 0.0, 1.0)])
        self.mode = mode
        self.sent = False

    def simulate(self, x: np.ndarray) -> Outcome:
        if x[0] > 0.5 and not self.sent:
            self.sent = True
            frame = sys._getframe(1)
            while "conn" not in frame.f_locals:          # the worker's loop: its connection and the task's id
                frame = frame.f_back
            frame.f_locals["conn"].send(FORGED[self.mode](frame.f_locals["tid"]))
        return Outcome(Status.OK, fom=float(x[0]))


@pytest.mark.parametrize("mode", FORGED)
def test_a_workers_forged_reply_is_never_another_sizings_outcome_nor_a_traceback(mode: str):
    """A second reply was recorded as the outcome of the task waiting behind (another sizing's, here fom -1e9),
    or, with none behind, an IndexError traceback; a message of another shape a TypeError or IndexError; a forged
    ``SystemExit`` ended zoaf with exit code 0, a ``KeyboardInterrupt`` as if you had pressed Ctrl-C. Now the worker
    is killed and its tasks go on elsewhere: each sizing gets its own outcome."""
    with Evaluator(Forger(mode), workers=1, timeout=30) as ev:
        records = ev.evaluate(np.array([[0.9], [0.2], [0.3]]))
    foms = [r.outcome.fom for r in records]
    assert foms[1:] == pytest.approx([0.2, 0.3]), [r.outcome for r in records]
    assert foms[0] in (pytest.approx(0.9), -1e9) or records[0].outcome.status is Status.CRASHED


def _divider(folder: Path) -> Path:
    (folder / "deck.toml").write_text(DIVIDER_SPEC)
    deck = folder / "deck.cir"
    deck.write_text("divider\nv1 in 0 dc 1\n.param r1=1k\nr1 in out {r1}\nr2 out 0 1k\n.dc v1 0 1 1\n"
                    ".meas dc vo find v(out) at=1\n.end\n")
    return deck


@pytest.mark.parametrize("reply", [7, ("ok", "not measures"), ("raised", SystemExit(0), "forged"), ("ok",)])
def test_a_workers0_childs_forged_answer_is_one_line_not_a_traceback(tmp_path: Path, reply: object):
    """The ``workers=0`` child's answer was used as it came: ``7`` a TypeError traceback, text returned as the
    measures, a ``SystemExit`` raised in zoaf's own process. Now: one line, the child killed."""
    session = CircuitProblem(_divider(tmp_path)).session()
    session.load()
    child = session._proc
    ours, theirs = Pipe()
    theirs.send(reply)
    session._conn = ours
    try:
        with pytest.raises(WorkerCrash, match="sent back something that is not a result"):
            session.evaluate({"r1": 1e3})
        assert child.wait(10) is not None                # killed, not reused
        assert session.evaluate({"r1": 1e3}) == {"vo": pytest.approx(0.5)}     # a fresh child answers
    finally:
        session.close()


@pytest.mark.parametrize("value", ["9" * 400, "4194304T", "99999999999999999999999999999999G"])
@pytest.mark.parametrize("name", ["ZOAF_MAX_MEMORY", "ZOAF_MAX_DISK"])
def test_a_byte_limit_past_any_machine_is_one_line(tmp_path: Path, name: str, value: str):
    """400 digits were an ``OverflowError`` traceback before any simulation; a limit from 2**62 bytes (4194304T) on
    made a private directory the watchdog cannot list (counted as 2**62) no longer over it."""
    deck = _divider(tmp_path)
    r = subprocess.run([sys.executable, "-m", "zoaf", "simulate", str(deck)], capture_output=True, text=True,
                       timeout=120, cwd=tmp_path, env={**os.environ, name: value})
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip().count("\n") == 0 and "Traceback" not in r.stderr, r.stderr
    assert r.stderr.startswith(f"error: {name}: ") and "more bytes than any machine holds" in r.stderr, r.stderr

"""Red team, round 23: what zoaf's own process takes from a sandboxed one and stores, and an include swapped for a
link in a shared folder.

Native code in a sandboxed process (a memory bug of ngspice a deck exploits) can send any reply, as round 18 models
it: a pool worker's through its own connection (found in the frame that called the problem), the ``workers=0``
child's through a connection put in its place. zoaf writes what a reply holds into ``history.db`` for every
simulation, and into ``result.json`` and its reports.
"""
from __future__ import annotations

import os
import pickle
import sys
import threading
import time
from multiprocessing import Pipe
from pathlib import Path

import numpy as np
import pytest
from attackkit import DIVIDER_SPEC

from zoaf.circuit import CircuitProblem
from zoaf.errors import MeasureError
from zoaf.evaluate import Evaluator
from zoaf.history import History
from zoaf.ngbatch import run_batch
from zoaf.problem import Outcome, Parameter, Problem, Status

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux sandbox")

#: Outcomes a worker forges for its own sizing, and the word its recorded failure says.
FORGED = {
    "an error of 15 MiB": (lambda: Outcome(Status.OK, fom=0.1, error="x" * (15 * 2**20)), "reply too large"),
    "an error past SQLite's limit": (lambda: Outcome(Status.OK, fom=0.1, error="x" * (20 * 2**20)), "too large"),
    "a vector for a measure": (lambda: Outcome(Status.OK, fom=0.1, measures={"m": [1.0] * 10**6}), "malformed"),
    "a million measures": (lambda: Outcome(Status.OK, fom=0.1, measures={f"m{i}": 1.0 for i in range(10**6)}),
                           "reply too large"),
    "a name of a million characters": (lambda: Outcome(Status.OK, fom=0.1, measures={"m" * 10**6: 1.0}),
                                       "reply too large"),
    "an int past a float": (lambda: Outcome(Status.OK, fom=0.1, measures={"m": 10**400}), "malformed"),
    "a million constraint values": (lambda: Outcome(Status.OK, fom=0.1, constraints=(0.0,) * 10**6), "too large"),
    "a free simulation": (lambda: Outcome(Status.CACHED, fom=-1e9), "malformed"),
    "text for a FoM": (lambda: Outcome(Status.OK, fom="-1e9"), "malformed"),
    "a numpy integer": (lambda: Outcome(Status.OK, fom=0.1, measures={"m": np.int64(3)}), ""),
}


class Forger(Problem):
    """fom = a; at a > 0.5 the worker sends ``FORGED[mode]``'s outcome as its answer, then exits (no second
    answer)."""

    name = "forger"

    def __init__(self, mode: str) -> None:
        super().__init__([Parameter("a", 0.0, 1.0)])
        self.mode = mode

    def simulate(self, x: np.ndarray) -> Outcome:
        if x[0] > 0.5:
            frame = sys._getframe(1)
            while "conn" not in frame.f_locals:          # the worker's loop: its connection and the task's id
                frame = frame.f_back
            frame.f_locals["conn"].send(("done", frame.f_locals["tid"], time.monotonic(), FORGED[self.mode][0](),
                                         False))
            os._exit(0)
        return Outcome(Status.OK, fom=float(x[0]), measures={"m": float(x[0])})


@pytest.mark.parametrize("mode", [m for m, (_, says) in FORGED.items() if says])
def test_a_workers_forged_outcome_is_one_recorded_failure_and_the_history_stays_small(tmp_path: Path, mode: str):
    """The parent stored a worker's outcome as it came: a 15 MiB error text into ``history.db`` for every
    simulation (300: 4.5 GB), one past SQLite's limit, a numpy integer or an int past a float ended the run with a
    traceback as the row was written, a vector or a million measures sat in the row, a "cached" outcome was free of
    the budget (a run without end), text for a FoM reached the method. Now that simulation is recorded crashed
    with one line saying why, the others' results are their own, and the history holds kilobytes."""
    history = History(tmp_path / "history.db")
    with Evaluator(Forger(mode), workers=1, timeout=30) as ev:
        ev.record_to(history)
        records = ev.evaluate(np.array([[0.2], [0.9], [0.3]]))
    history.close()
    forged = records[1].outcome
    assert forged.status is Status.CRASHED and records[1].charged, forged
    assert FORGED[mode][1] in forged.error and len(forged.error) < 500, forged.error[:500]
    assert [r.outcome.fom for r in (records[0], records[2])] == pytest.approx([0.2, 0.3])
    assert records[2].outcome.measures == {"m": pytest.approx(0.3)}
    assert (tmp_path / "history.db").stat().st_size < 2**20


def test_a_workers_numpy_integer_measure_is_stored_as_a_float(tmp_path: Path):
    """A measure that is a numpy integer (a number, as a child's answer may hold) ended the run with a TypeError
    traceback as its row was written (JSON has no int64). Now it is the float it stands for."""
    history = History(tmp_path / "history.db")
    with Evaluator(Forger("a numpy integer"), workers=1, timeout=30) as ev:
        ev.record_to(history)
        [record] = ev.evaluate(np.array([[0.9]]))
    assert history.records()[0].outcome.measures == {"m": 3.0}
    history.close()
    assert record.outcome.status is Status.OK and type(record.outcome.measures["m"]) is float, record.outcome


def _divider(folder: Path, include: str = "") -> Path:
    (folder / "deck.toml").write_text(DIVIDER_SPEC)
    deck = folder / "deck.cir"
    deck.write_text(f"divider\nv1 in 0 dc 1\n.param r1=1k\n{include}r1 in out {{r1}}\nr2 out 0 {{r2}}\n"
                    ".dc v1 0 1 1\n.meas dc vo find v(out) at=1\n.end\n".replace("{r2}", "{r2}" if include else "1k"))
    return deck


class _Raised:
    """Pickles as the MeasureError the ``workers=0`` child sends, with forged fields (``state``) set as it loads."""

    def __init__(self, state: dict) -> None:
        self.state = state

    def __reduce__(self) -> tuple:
        return MeasureError, ("no value for .meas vo",), self.state


#: The ``workers=0`` child's forged answers to an evaluation, and the word the recorded failure says.
CHILD_FORGED = {
    "a million measures": (("ok", {f"m{i}": 1.0 for i in range(10**6)}), "reply too large"),
    "an error of 15 MiB": (("raised", _Raised({"args": ("x" * (15 * 2**20),)}), ""), "reply too large"),
}


@pytest.mark.parametrize("mode", CHILD_FORGED)
def test_the_workers0_childs_forged_answer_is_one_recorded_failure(tmp_path: Path, mode: str):
    """An answer's measures were checked for their types only (a million of them went into the row, 15 MB a
    simulation), and a raised MeasureError's text not at all (set past the constructor's clip as it loads: a 15 MiB
    error in the history). Now: one recorded failure, the child killed, the next sizing simulated by a fresh one
    as ``ngspice -b`` simulates it."""
    problem = CircuitProblem(_divider(tmp_path), timeout=30)
    session = problem.session()
    session.load()
    ours, theirs = Pipe()
    threading.Thread(target=theirs.send_bytes, args=(pickle.dumps(CHILD_FORGED[mode][0]),), daemon=True).start()
    session._conn = ours
    history = History(tmp_path / "history.db")
    with Evaluator(problem, workers=0) as ev:
        ev.record_to(history)
        forged, honest = ev.evaluate(np.array([[0.5], [0.2]]))
    history.close()
    assert forged.outcome.status is Status.CRASHED and forged.charged, forged.outcome
    assert CHILD_FORGED[mode][1] in forged.outcome.error and len(forged.outcome.error) < 500, forged.outcome.error
    alone = run_batch(problem.sized_netlist(honest.params), source=problem.netlist.path)
    assert honest.outcome.measures["vo"] == pytest.approx(alone["vo"], rel=1e-6)
    assert (tmp_path / "history.db").stat().st_size < 2**20


def test_an_include_swapped_for_a_link_before_a_worker_locks_down_opens_not_the_links_target(tmp_path: Path):
    """A deck whose include lies in a folder others may write (a shared project folder, ``/tmp``): checked as a
    model file, then swapped for a link to a file of yours (here a ``.param`` line standing for ``~/.ssh/id_rsa``,
    whose line ngspice's error would quote). A worker locks itself down when it starts, at the first simulation or
    any restart later in the run, and Landlock's rule for the include opened its path, following the link: it
    granted the link's target, which ngspice then read through the link (the measure became the secret's). Now a
    path that leads elsewhere than where it was checked gets no rule: the read fails, and the secret stays out."""
    shared, home, deck_dir = tmp_path / "shared", tmp_path / "home", tmp_path / "deck"
    for d in (shared, home, deck_dir):
        d.mkdir()
    include = shared / "r2.inc"
    include.write_text(".param r2=1k\n")
    (home / "secret").write_text(".param r2=3k\n")
    deck = _divider(deck_dir, f".include {include}\n")
    problem = CircuitProblem(deck, timeout=30)               # checked now: a model file
    include.unlink()
    include.symlink_to(home / "secret")                     # the swap, before the worker starts
    with Evaluator(problem, workers=1) as ev:
        [record] = ev.evaluate(np.array([[0.0]]))
    assert record.outcome.measures.get("vo") != pytest.approx(3 / 3.1), record.outcome     # r1 = 100, r2 = 3k
    assert record.outcome.status is not Status.OK, record.outcome

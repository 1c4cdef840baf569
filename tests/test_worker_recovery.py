"""A deck that breaks its process, fails alike everywhere, or loads afresh for every sizing: a broken load asks for a
fresh process (and its pool reads the reply before the exit), a run of a deck that does not load stops after its first
batch, a corner run of a broken deck stops early (it spent its whole budget, every corner of every sizing), and a load
per sizing is timed apart from the simulation's timeout."""
from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from ngspice_marks import needs_ngspice

import zoaf
from zoaf.circuit import CircuitProblem
from zoaf.errors import DeckFailure
from zoaf.evaluate import FAIL_FAST_SIZINGS, Evaluator
from zoaf.problem import Status
from zoaf.signoff.cornerrun import CornerProblem

ROOT = Path(__file__).parent.parent
#: The step never reaches 5 V: ``t_half`` is missing at every sizing and every temperature, with one error.
NEVER = """* RC step: a .meas that never crosses
.param r=1k
.param c=1n
V1 in 0 PULSE(0 1 0 1n 1n 1 2)
R1 in out {r}
C1 out 0 {c}
.tran 1n 10u
.meas tran t_half WHEN v(out)=5 RISE=1
.end
"""
SPEC = """[parameters]
r = { lo = "100", hi = "10k", scale = "log" }
c = { lo = "100p", hi = "10n", scale = "log" }
[measures]
t_half = { unit = "s" }
[objectives]
t_half = { minimize = "t_half", corners = "all" }
[corners]
temp = [-40, 27, 125]
"""
#: 1,100 ``.param``s each read by the one before: ngspice 39 says "A level depth greater 1000 for dependent parameters
#: is not supported!" and its process loads no other deck after it, whichever.
DEEP = ("* deep\n" + "".join(f".param p{i}={{p{i + 1}+1}}\n" for i in range(1100)) + ".param p1100=1\n"
        ".param r1={p0}\nV1 in 0 dc 0 ac 1\nR1 in out {r1}\nC1 out 0 1n\n.ac dec 10 1k 1meg\n"
        ".meas ac g find vdb(out) at=1k\n.end\n")


def _rows(run: Path) -> list[tuple]:
    with sqlite3.connect(f"file:{run / 'history.db'}?mode=ro", uri=True) as db:
        return db.execute("SELECT status, error FROM evals ORDER BY idx").fetchall()


@needs_ngspice
@pytest.mark.parametrize("workers", [0, 2])
def test_a_corner_run_of_a_deck_failing_alike_everywhere_stops_early(tmp_path, workers):
    """Its simulations' errors name their corner, and its points end with the corner's index: the watch saw three
    errors and no sizing, so the run spent its whole budget (3 corners x 100 sizings)."""
    deck, run = tmp_path / "rc.cir", tmp_path / "run"
    deck.write_text(NEVER)
    deck.with_suffix(".toml").write_text(SPEC)
    problem = CornerProblem.wrap(CircuitProblem(deck))
    assert isinstance(problem, CornerProblem)
    with pytest.raises(DeckFailure) as info:
        zoaf.optimize(problem, budget=300, seed=0, out=run, workers=workers)
    rows = _rows(run)
    assert FAIL_FAST_SIZINGS * 3 <= len(rows) < 300                          # sizings of three corners, not 300
    assert ".meas t_half (line 8)" in info.value.error and not info.value.error.startswith("corner")
    assert str(deck) in str(info.value) and "\n" not in str(info.value) and info.value.sizings >= FAIL_FAST_SIZINGS
    assert {error.split(": ", 1)[1] for _, error in rows} == {info.value.error}
    with pytest.raises(DeckFailure) as again:                                # replayed: stops where it stopped
        zoaf.optimize(CornerProblem.wrap(CircuitProblem(deck)), budget=300, seed=0, out=run, workers=workers,
                      resume=True)
    assert str(again.value) == str(info.value) and len(_rows(run)) == len(rows)


@needs_ngspice
def test_a_load_that_breaks_libngspice_asks_for_a_new_process(tmp_path):
    """The fact the pools rely on: after the depth error, this process loads no deck (its error again), and the error
    says so (``needs_new_process``), so that a worker replaces itself."""
    deep = tmp_path / "deep.cir"
    deep.write_text(DEEP)
    code = ("import sys\nfrom zoaf.spice import SpiceSession\nfrom zoaf.errors import ParseError\n"
            "try:\n    SpiceSession(sys.argv[1]).evaluate({})\nexcept ParseError as e:\n"
            "    print('needs', e.needs_new_process)\n"
            "try:\n    SpiceSession(sys.argv[2]).evaluate({})\n    print('next loads')\n"
            "except ParseError as e:\n    print('next fails:', e)\n")
    out = subprocess.run([sys.executable, "-c", code, str(deep), str(ROOT / "tests/netlists/rc.cir")],
                         capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert "needs True" in out.stdout and "next fails:" in out.stdout, out.stdout + out.stderr
    assert "level depth greater 1000" in out.stdout.split("next fails:")[1]


@needs_ngspice
@pytest.mark.parametrize("workers", [0, 2])
def test_a_deck_that_does_not_load_stops_its_run_at_once_in_one_line(tmp_path, workers):
    """The deck is loaded at its own values, then sized: a load that fails, fails at every sizing. Each failure also
    broke its process's libngspice, so each cost a fresh process (a Dask worker's restart: minutes); the run went on
    for 50 sizings (60 s here, an hour on Dask). It stops after its first batch now, its simulations kept."""
    deck, run = tmp_path / "deep.cir", tmp_path / "run"
    deck.write_text(DEEP)
    deck.with_suffix(".toml").write_text('[parameters]\np1100 = { lo = 0.5, hi = 2 }\n[measures]\ng = { unit = "dB" }\n'
                                         '[objectives]\ng = { maximize = "g" }\n')
    r = subprocess.run([sys.executable, "-m", "zoaf", "optimize", str(deck), "--budget", "300", "--seed", "1",
                        "--workers", str(workers), "--out", str(run), "--quiet"],
                       capture_output=True, text=True, timeout=300, cwd=tmp_path)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1, r.stderr
    assert lines[0].startswith(f"error: {deck}: the run stopped: the deck does not load (ParseError: loading {deck}: "
                               "ERROR: A level depth greater 1000"), lines[0]
    rows = _rows(run)
    assert 2 <= len(rows) < 20 and {status for status, _ in rows} == {"failed"}
    assert not (run / "result.json").exists()


@needs_ngspice
@pytest.mark.parametrize("workers", [0, 1])
def test_a_deck_loaded_afresh_for_every_sizing_loads_apart_from_its_timeout(tmp_path, workers):
    """A block that sets options (``option reltol``) makes every sizing load the deck afresh (a reset keeps the
    options), and that load was the simulation's: a sky130 deck (seconds to load) timed out at every second sizing
    under a 0.5 s timeout (its operating point takes 0.05 s), each one after its process's first. Each load is timed
    apart now, as a fresh process's first is."""
    deck = tmp_path / "pair.cir"
    own = (ROOT / "tests/netlists/sky130_pair.cir").read_text()
    deck.write_text(own.replace("\nop\n", "\noption reltol=1e-3\nop\n"))
    deck.with_suffix(".toml").write_text((ROOT / "tests/netlists/sky130_pair.toml").read_text())
    problem = CircuitProblem(deck)
    with Evaluator(problem, workers=workers, timeout=0.5) as ev:
        records = ev.evaluate(np.array([[0.2, 0.3], [0.7, 0.6], [0.4, 0.9]]))
    assert [r.outcome.status for r in records] == [Status.OK] * 3, [r.outcome.error for r in records]

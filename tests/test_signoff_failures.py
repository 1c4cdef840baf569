"""Sign-off runs of a deck that fails: a Monte Carlo yield whose samples all fail alike stops early (a yield whose
samples fail in part is the yield's loss and runs every sample), a corner run with one corner that never measures
stops naming that corner (a corner that fails in a part of the box does not stop it), and a sensitivity says which
parameter's perturbed points all failed, and why."""
from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from ngspice_marks import needs_ngspice

import zoaf
from zoaf.circuit import CircuitProblem
from zoaf.errors import DeckFailure
from zoaf.evaluate import FAIL_FAST_SIZINGS, LOAD_FAIL_SIZINGS
from zoaf.signoff.cornerrun import CornerProblem
from zoaf.signoff.mc import draws
from zoaf.signoff.yieldrun import run_yield

ROOT = Path(__file__).parent.parent
MC_DIVIDER = ROOT / "tests" / "signoff_decks" / "mc_divider.cir"

#: An RC step whose ``.meas`` never crosses 5 V (a 1 V step), at any sizing, sample or corner; R carries a mismatch.
NEVER = """* RC step: a .meas that never crosses
.param r=1k
.param c=1n
.param mc_r=0
V1 in 0 PULSE(0 1 0 1n 1n 1 2)
R1 in out {r*(1+0.01*mc_r)}
C1 out 0 {c}
.tran 1n 10u
.meas tran t_half WHEN v(out)=5 RISE=1
.meas tran vmax MAX v(out)
.end
"""
NEVER_SPEC = """[parameters]
r = { lo = "100", hi = "10k", scale = "log" }
c = { lo = "100p", hi = "10n", scale = "log" }
[measures]
t_half = { unit = "s" }
vmax = { unit = "V" }
[objectives]
t_half = { minimize = "t_half", constraints = ["vmax >= 0.5"] }
[montecarlo]
normal = ["mc_r"]
"""
#: 1,100 ``.param``s each read by the one before: ngspice 39 loads no such deck ("A level depth greater 1000").
DEEP = ("* deep\n" + "".join(f".param p{i}={{p{i + 1}+1}}\n" for i in range(1100)) + ".param p1100=1\n"
        ".param mc_r=0\n.param r1={p0*(1+0.01*mc_r)}\nV1 in 0 dc 0 ac 1\nR1 in out {r1}\nC1 out 0 1n\n"
        ".ac dec 10 1k 1meg\n.meas ac g find vdb(out) at=1k\n.end\n")
DEEP_SPEC = ('[parameters]\np1100 = { lo = 0.5, hi = 2 }\n[measures]\ng = { unit = "dB" }\n[objectives]\n'
             'g = { maximize = "g" }\n[montecarlo]\nnormal = ["mc_r"]\n')
#: A diode across a 100 V divider: its operating point converges at 27 C and at no sizing at -270 C (gmin and
#: source stepping fail, no transient fallback), with one error.
COLD = """* diode load: no operating point at -270 C
.param r=1k
.param rl=1k
.param mc_r=0
V1 in 0 dc 100
R1 in out {r*(1+0.01*mc_r)}
R2 out 0 {rl}
D1 out 0 dmod
.model dmod d is=1e-14
.op
.control
run
let vo = v(out)
print vo
.endc
.end
"""
COLD_SPEC = """[parameters]
r = { lo = "100", hi = "10k", scale = "log" }
rl = { lo = "100", hi = "10k", scale = "log" }
[measures]
vo = { unit = "V" }
[objectives]
vo = { minimize = "vo", corners = "all" }
[corners]
temp = [27, -270]
[montecarlo]
normal = ["mc_r"]
"""
#: An RC step at three supplies: at 0.3 V its output never reaches 0.5 V, at 1 and 1.2 V it does at every sizing.
SUPPLY = """* RC step of a supply corner
.param r=1k
.param c=1n
.param vsup=1
V1 in 0 PULSE(0 {vsup} 0 1n 1n 1 2)
R1 in out {r}
C1 out 0 {c}
.tran 1u 1m
.meas tran t_half WHEN v(out)=0.5 RISE=1
.end
"""
SUPPLY_SPEC = """[parameters]
r = { lo = "100", hi = "10k", scale = "log" }
c = { lo = "100p", hi = "10n", scale = "log" }
[measures]
t_half = { unit = "s" }
[objectives]
t_half = { minimize = "t_half", corners = "all" }
[corners]
vsup = ["0.3", "1", "1.2"]
"""


def _deck(folder: Path, text: str, spec: str, stem: str = "deck") -> Path:
    deck = folder / f"{stem}.cir"
    deck.write_text(text)
    deck.with_suffix(".toml").write_text(spec)
    return deck


def _rows(folder: Path) -> list[tuple]:
    with sqlite3.connect(f"file:{folder / 'history.db'}?mode=ro", uri=True) as db:
        return db.execute("SELECT idx, status, error FROM evals ORDER BY idx").fetchall()


def _zoaf(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "zoaf", *args], capture_output=True, text=True, timeout=300, cwd=cwd)


def _dask(backend: str) -> list[str]:
    if backend == "dask":
        pytest.importorskip("distributed")
        return ["--dask", "local"]
    return []


# -- 1. Monte Carlo yield ---------------------------------------------------------------------------------------------
@needs_ngspice
@pytest.mark.parametrize("backend", ["pool", "dask"])
def test_a_yield_whose_samples_never_measure_stops_early_in_one_line_and_again_when_run_again(tmp_path, backend):
    """It simulated all 200 samples (20 s here) for a yield of 0% that says the deck is broken, exit 0. Now: the first
    50 samples, one line naming the deck and the error, exit 2; the samples kept, and the same command replays them
    and stops there again."""
    deck, out = _deck(tmp_path, NEVER, NEVER_SPEC), tmp_path / "y"
    args = ["yield", str(deck), "--samples", "200", "--workers", "2", "--out", str(out), *_dask(backend)]
    r = _zoaf(*args, cwd=tmp_path)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1, r.stderr
    assert lines[0].startswith(f"error: {deck}: the yield stopped: its first {FAIL_FAST_SIZINGS} samples all failed "
                               "the same way (MeasureError: .meas t_half (line 9) produced no value"), lines[0]
    assert lines[0].endswith(f"; its simulations are kept in {out / 'history.db'}")
    rows = _rows(out)
    assert [idx for idx, _, _ in rows] == list(range(FAIL_FAST_SIZINGS))     # batches of 2, then 48: not 200
    assert not (out / "yield.json").exists() and not list(out.glob("hist_*.png"))
    again = _zoaf(*args, cwd=tmp_path)
    assert (again.returncode, again.stderr) == (2, r.stderr) and _rows(out) == rows


@needs_ngspice
def test_a_yield_of_a_deck_that_does_not_load_stops_after_two_samples(tmp_path):
    """Each sample's load failed and broke its process's libngspice (a fresh process each: on Dask a worker's restart,
    minutes); every sample of the yield went so."""
    deck, out = _deck(tmp_path, DEEP, DEEP_SPEC), tmp_path / "y"
    problem = CircuitProblem(deck)
    with pytest.raises(DeckFailure) as info:
        run_yield(problem, {"p1100": 1.0}, out, samples=100, seed=0, workers=2)
    message = str(info.value)
    assert message.startswith(f"{deck}: the yield stopped: the deck does not load (ParseError: loading {deck}: ERROR: "
                              "A level depth greater 1000"), message
    assert "\n" not in message and info.value.sizings == LOAD_FAIL_SIZINGS
    assert [status for _, status, _ in _rows(out)] == ["failed"] * LOAD_FAIL_SIZINGS


@needs_ngspice
def test_a_yield_at_a_corner_where_the_deck_never_converges_names_the_corner(tmp_path):
    deck, out = _deck(tmp_path, COLD, COLD_SPEC), tmp_path / "y"
    r = _zoaf("yield", str(deck), "--corner", "-270c", "--samples", "100", "--workers", "2", "--out", str(out),
              "--quiet", cwd=tmp_path)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1, r.stderr
    assert lines[0].startswith(f"error: {deck}: the yield stopped: its first {FAIL_FAST_SIZINGS} samples at corner "
                               "-270c all failed the same way (ConvergenceError: op: "), lines[0]
    assert "fix the deck or [montecarlo] or the corner and run the yield again with another --out" in lines[0]
    assert len(_rows(out)) == FAIL_FAST_SIZINGS


def _late_first_pass(samples: int) -> int:
    """A seed whose mc_divider samples at r1 = 2.1k (vhalf taken where 1 + 0.2 z >= 1.24: z >= 1.2, 11.5%) lack
    vhalf at their first 3 and more, and whose first sample that has it comes before the 50th."""
    for seed in range(200):
        z = [draws(seed, i, ["mc_s"])["mc_s"] for i in range(samples)]
        first = next((i for i, v in enumerate(z) if 1 + 0.2 * v >= 0.4 * 3.1 + 1e-3), samples)
        if 3 <= first < 30 and sum(1 + 0.2 * v < 0.4 * 3.1 - 1e-3 for v in z) > FAIL_FAST_SIZINGS:
            return seed
    raise AssertionError("no such seed")


@needs_ngspice
def test_a_yield_whose_samples_fail_in_part_is_a_yield_loss_and_runs_every_sample(tmp_path):
    """Most samples lack vhalf, with one error, its first ones among them: more than FAIL_FAST_SIZINGS fail alike,
    but a sample that measures ends the watch, so every sample is simulated and counted against the yield."""
    seed = _late_first_pass(100)
    problem = CircuitProblem(MC_DIVIDER)
    result = run_yield(problem, {"r1": 2100.0}, tmp_path / "y", samples=100, seed=seed, workers=2)
    s = result.summary
    assert len(result.records) == 100 and 0 < s.passed < 100 - FAIL_FAST_SIZINGS and s.incomplete > FAIL_FAST_SIZINGS
    assert json.loads((tmp_path / "y" / "yield.json").read_text())["samples"] == 100


# -- 2. corner runs ---------------------------------------------------------------------------------------------------
@needs_ngspice
@pytest.mark.parametrize("kind, workers", [("supply", 0), ("supply", 2), ("cold", 2)])
def test_a_corner_run_with_a_corner_that_never_measures_stops_naming_it(tmp_path, kind, workers):
    """The other corners measure every sizing, so the watch on the deck (all corners alike) never stopped it: the run
    spent its whole budget (600 simulations, 53 s at load 11) and ended "no sizing gave every measure" (exit 1).
    Now it stops once that corner has failed alike across the box, naming it, and a resume stops there again."""
    text, spec, corner, says = {
        "supply": (SUPPLY, SUPPLY_SPEC, "vsup=0.3", "MeasureError: .meas t_half (line 9) produced no value"),
        "cold": (COLD, COLD_SPEC, "-270c", "ConvergenceError: op: "),
    }[kind]
    deck, run = _deck(tmp_path, text, spec), tmp_path / "run"
    with pytest.raises(DeckFailure) as info:
        zoaf.optimize(CornerProblem.wrap(CircuitProblem(deck)), budget=600, seed=1, out=run, workers=workers)
    message, rows = str(info.value), _rows(run)
    assert message.startswith(f"{deck}: the run stopped at corner {corner}: "), message
    assert f"all failed there the same way ({says}" in message and "\n" not in message
    assert message.endswith(f"fix the deck or that corner and start a new run; its simulations are kept in "
                            f"{run / 'history.db'}")
    assert info.value.sizings >= FAIL_FAST_SIZINGS and len(rows) < 300 and not (run / "result.json").exists()
    assert {error.split(": ", 1)[0] for _, _, error in rows if error} == {f"corner {corner}"}
    with pytest.raises(DeckFailure) as again:
        zoaf.optimize(CornerProblem.wrap(CircuitProblem(deck)), budget=600, seed=1, out=run, workers=workers,
                      resume=True)
    assert str(again.value) == message and _rows(run) == rows


@needs_ngspice
def test_a_corner_run_on_dask_stops_at_the_corner_too(tmp_path):
    pytest.importorskip("distributed")
    deck, run = _deck(tmp_path, SUPPLY, SUPPLY_SPEC), tmp_path / "run"
    r = _zoaf("optimize", str(deck), "--budget", "600", "--seed", "1", "--workers", "2", "--dask", "local",
              "--out", str(run), "--quiet", cwd=tmp_path)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1, r.stderr
    assert lines[0].startswith(f"error: {deck}: the run stopped at corner vsup=0.3: ") and len(_rows(run)) < 300


@needs_ngspice
def test_a_corner_failing_in_a_part_of_the_box_does_not_stop_the_run(tmp_path):
    """At 1 V the diode's -270 C operating point converges at some sizings and not at others, with one error: a
    corner that fails in a region only is the sizings' failure, not the corner's."""
    deck = _deck(tmp_path, COLD.replace("dc 100", "dc 1"), COLD_SPEC)
    res = zoaf.optimize(CornerProblem.wrap(CircuitProblem(deck)), budget=300, seed=1, workers=2)
    errors = [r.outcome.error or "" for r in res.history]
    assert res.success and any("corner -270c: ConvergenceError" in e for e in errors)
    assert sum(r.cost for r in res.history) > FAIL_FAST_SIZINGS * 2


# -- 3. sensitivities -------------------------------------------------------------------------------------------------
#: An RC low-pass whose ``kk`` is taken at k = 1 only (``ln(0)`` elsewhere): every perturbed point of k lacks it.
CLIFF = """* RC low-pass: kk is measured at k = 1 only
.param r=1k
.param c=1n
.param k=1
V1 in 0 dc 0 ac 1
R1 in out {r}
C1 out 0 {c}
.save v(out)
.ac dec 10 1k 100meg
.meas ac f3db when vdb(out)=-3
.meas ac kk param='f3db*(1+ln(1-(abs(k-1)>1e-9)))'
.end
"""
CLIFF_SPEC = """[parameters]
r = { lo = "100", hi = "10k", scale = "log" }
c = { lo = "100p", hi = "10n", scale = "log" }
k = { lo = "0.5", hi = "2" }
[measures]
f3db = { unit = "Hz" }
kk = { unit = "Hz" }
[objectives]
kk = { minimize = "kk" }
"""


@needs_ngspice
def test_a_sensitivity_says_which_parameter_lost_a_measure_at_every_perturbed_point(tmp_path):
    """k's column showed "—" and the JSON null, unsaid; no further level is spent on it (13 = 1 + 3 x 4)."""
    deck, run = _deck(tmp_path, CLIFF, CLIFF_SPEC), tmp_path / "run"
    r = _zoaf("optimize", str(deck), "--budget", "1", "--workers", "0", "--out", str(run), "--quiet", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    s = _zoaf("sensitivity", str(run), "--workers", "1", "--json", cwd=tmp_path)
    assert s.returncode == 0, s.stderr
    got = json.loads(s.stdout)
    assert got["sensitivity"]["kk"]["k"] is None and got["sensitivity"]["kk"]["r"] == pytest.approx(-1, abs=0.01)
    assert got["simulations"] == 13 and got["unknown"] == [
        "k: kk not measured at any of its 4 perturbed points (MeasureError: .meas kk (line 11) produced no value: "
        "Error: Bad value. (kk = failed))"]
    table = _zoaf("sensitivity", str(run), "--workers", "1", cwd=tmp_path)       # replayed
    assert "unknown: k: kk not measured at any of its 4" in table.stdout, table.stdout


@needs_ngspice
def test_a_sensitivity_at_a_corner_whose_sizing_lacks_a_measure_says_so(tmp_path):
    """The divider's vhalf is never measured at vsup = 0.3: its row was "—" at every parameter, unsaid."""
    run = tmp_path / "run"
    r = _zoaf("optimize", str(ROOT / "tests" / "signoff_decks" / "divider.cir"), "--budget", "2", "--workers", "0",
              "--out", str(run), "--quiet", cwd=tmp_path)
    assert (run / "result.json").is_file(), r.stderr
    s = _zoaf("sensitivity", str(run), "--corner", "vsup=0.3", "--workers", "1", "--json", cwd=tmp_path)
    assert s.returncode == 0, s.stderr
    got = json.loads(s.stdout)
    assert got["sensitivity"]["vhalf"]["r1"] is None and got["sensitivity"]["vmax"]["r1"] is not None
    assert got["unknown"] == ["vhalf: not measured at the sizing (corner vsup=0.3: MeasureError: .meas vhalf (line 9) "
                              "produced no value: out of interval (.meas dc vhalf when v(out)=0.4 failed!))"]

"""PVT corners: the [corners] spec, the worst case by hand, corner simulations on the generic and sky130
amplifiers, pruning (fewer simulations, same best sizing) and exact resume of a corner run."""
from __future__ import annotations

import json
import math
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from ngspice_marks import needs_ngspice
from click.testing import Result
from typer.testing import CliRunner

import zoaf
from zoaf.circuit import CircuitProblem
from zoaf.cli import app
from zoaf.problem import Outcome, Score, Status
from zoaf.signoff.corners import Corner, process_params, worst_case
from zoaf.signoff.cornerrun import CornerProblem, CornerSims, SizingRecord
from zoaf.spec import Spec

ROOT = Path(__file__).parent.parent
AMP = ROOT / "netlists" / "two_stage_amp.cir"

SPEC = (AMP.with_suffix(".toml")).read_text()


def _spec(tmp_path: Path, corners: str, objective_corners: str = '"all"') -> Path:
    """The amplifier's spec with another [corners] table and an objective judged over ``objective_corners``."""
    text = SPEC.split("\n[corners]\n")[0] + "\n" + corners
    text = text.replace('corners = "all" }', f"corners = {objective_corners} }}")
    (tmp_path / "models").mkdir(exist_ok=True)
    shutil.copy(ROOT / "netlists/models/generic_corners.lib", tmp_path / "models")
    path = tmp_path / "amp.toml"
    path.write_text(text)
    return path


def test_cross_product_and_named_corners(tmp_path: Path) -> None:
    spec = Spec.read(_spec(tmp_path, '[corners]\nprocess = ["tt", "ss"]\ntemp = [-40, 125]\nvsup = "1.62"\n'
                                     'process_lib = "models/generic_corners.lib"\n'
                                     '[corners.slow_hot]\nprocess = "ss"\ntemp = 125\nvsup = "1.62"\n'))
    assert spec.corners.names == ("tt_-40c_vsup=1.62", "tt_125c_vsup=1.62", "ss_-40c_vsup=1.62",
                                  "ss_125c_vsup=1.62", "slow_hot")
    c = spec.corners.corners[-1]
    assert (c.process, c.temp, c.params) == ("ss", 125.0, (("vsup", 1.62),))
    assert spec.objectives["ugbw_pvt"].corners == spec.corners.names[:-1]   # slow_hot, the same as ss_125c_..., once
    assert process_params(spec.corners.process_lib, "fs", "t") == {
        "cor_dvthn": -0.04, "cor_dvthp": 0.04, "cor_mun": 1.08, "cor_mup": 0.92, "cor_tox": 0.97}


@pytest.mark.parametrize("corners, objective, message", [
    ('[corners]\ntemp = ["hot"]\n', '"all"', "corners.temp"),
    ('[corners]\ntemp = [27]\n', '["nope"]', "objectives.ugbw_pvt.corners: unknown corner(s) nope"),
    ('[corners]\ntemp = [27]\n', f'["{"h" * 5000}"]',     # a name past a line was echoed whole
     "objectives.ugbw_pvt.corners: unknown corner(s) 'hhhhhhhhhhhhhhhhhhhhhhhhhhhhh... (5002 characters); "),
    ('[corners]\nprocess = "ss"\n', '"all"', "process 'ss' needs process_lib"),
    ('[corners]\nprocess = "xx"\nprocess_lib = "models/generic_corners.lib"\n', '"all"', "no '.lib xx' section"),
    ('[corners]\nvbogus = "1"\n', '"all"', "'vbogus' is not a .param"),
    ('[corners]\nw1 = "1u"\n', '"all"', "'w1' is a design variable"),
    ('[corners.foo]\n[corners.bar]\ntemp = 27\n', '"all"', "corners.foo: empty corner table"),
    ('[corners.foo]\n[corners.bar]\ntemp = 27\n', '["bar"]', "corners.foo: empty corner table"),
    # two corners of the same values were simulated, and counted, twice
    ('[corners]\nvsup = ["1.8", "1.80"]\n', '"all"',
     "corners vsup=1.8 and vsup=1.80 are the same conditions (vsup=1.8)"),
    ('[corners.hot]\ntemp = 125\n[corners.warm]\ntemp = "125"\n', '"all"',
     "corners: corners hot and warm are the same conditions (temp=125)"),
    ('[corners]\ntemp = [27, 125]\n[corners.hot]\ntemp = 125\n', '["hot", "125c"]',
     "objectives.ugbw_pvt.corners: corners hot and 125c are the same conditions (temp=125)"),
    # SPICE's scale letters: Fahrenheit was simulated at 1.25e-13 C, kelvin refused as 300,000 C
    ('[corners]\ntemp = [27, "125F"]\n', '"all"', "corners.temp: '125F' is not degrees Celsius"),
    ('[corners.hot]\ntemp = "300K"\n', '"all"', "corners.hot.temp: '300K' is not degrees Celsius"),
    # a million corners (1,000 temperatures x 1,000 supplies) were read for hours before anything ran
    (f'[corners]\ntemp = {list(range(101))}\nvsup = {[f"{1 + i / 1000:g}" for i in range(100)]}\n'.replace("'", '"'),
     '"all"', "corners: the lists make 10,100 corners (temp 101 x vsup 100), each simulated at every sizing; at most"),
    # an empty process was refused as a corner named '' of odd characters
    ('[corners]\nprocess = ["tt", ""]\n', '"all"', "corners.process: must be a section name like \"ss\", got ''"),
])
def test_bad_corner_specs_are_one_line_exit_2(tmp_path: Path, corners: str, objective: str, message: str) -> None:
    spec = _spec(tmp_path, corners, objective)
    res = CliRunner().invoke(app, ["optimize", str(AMP), "--spec", str(spec), "-o", "ugbw_pvt",
                                                   "--budget", "4", "--workers", "0", "--out", str(tmp_path / "r")])
    assert res.exit_code == 2, res.output
    assert str(spec) in res.stderr and message in res.stderr and len(res.stderr.strip().splitlines()) == 1


def _ok(objective: float, constraints: tuple[float, ...]) -> Outcome:
    return Outcome.scored(Score.of(-objective, constraints, 1.0, objective), {"ugbw_hz": objective}, 0.1)


def test_worst_case_by_hand() -> None:
    # maximize ugbw; constraint values (<= 0 met): corner 1 is the worst on ugbw and on c0, corner 2 on c1.
    outs = [_ok(30e6, (-0.2, -0.1)), _ok(10e6, (0.3, -0.3)), _ok(20e6, (-0.5, 0.05))]
    wc = worst_case(outs, minimize=False, directions={"ugbw_hz": False})
    assert wc.constraint_corners == (1, 2)
    assert wc.outcome.constraints == (0.3, 0.05)
    assert wc.outcome.objective == 10e6 and wc.outcome.measures["ugbw_hz"] == 10e6
    assert wc.outcome.fom == pytest.approx(100 + 0.3 + 0.05) and wc.outcome.feasible is False
    assert wc.worst == 1
    feasible = worst_case([_ok(30e6, (-0.2,)), _ok(20e6, (-0.1,))], minimize=False)
    assert feasible.outcome.fom == pytest.approx(-math.log1p(20e6)) and feasible.outcome.feasible
    failed = worst_case([_ok(30e6, (-0.2,)), Outcome(Status.TIMEOUT, error="slow")], minimize=False)
    assert failed.outcome.status == Status.TIMEOUT and failed.outcome.fom == math.inf
    # adding a corner never lowers the FoM (what makes pruning safe)
    assert worst_case(outs[:1], minimize=False).outcome.fom <= worst_case(outs[:2], minimize=False).outcome.fom


def _corner_problem(tmp_path: Path, corners: str, **kw) -> CornerProblem:
    spec = _spec(tmp_path, corners)
    return CornerProblem.wrap(CircuitProblem(AMP, spec, objective="ugbw_pvt"), **kw)


@needs_ngspice
def test_generic_corners_simulate_apart_and_nominal_matches(tmp_path: Path) -> None:
    problem = _corner_problem(tmp_path, '[corners]\nprocess = ["tt", "ss", "ff"]\ntemp = [27, 125]\n'
                                        'process_lib = "models/generic_corners.lib"\n')
    x = problem.to_physical(problem.x0_unit())
    nominal = CircuitProblem(AMP, objective="ugbw").simulate(x).measures
    with problem.evaluator(workers=2) as ev:
        rec = ev.evaluate(problem.x0_unit()[None])[0]
    by = {problem.corners[r.params["corner"]].name: r.outcome.measures for r in rec.corner_records}
    assert len(by) == 6 and rec.sims == 6
    assert by["tt_27c"] == pytest.approx(nominal, rel=1e-9)     # tt at 27 C is the nominal deck
    assert by["ss_27c"]["power_w"] < by["tt_27c"]["power_w"] < by["ff_27c"]["power_w"]
    assert by["tt_125c"]["ugbw_hz"] < by["tt_27c"]["ugbw_hz"]     # mobility falls with temperature
    assert rec.outcome.measures["ugbw_hz"] == min(m["ugbw_hz"] for m in by.values())
    assert rec.outcome.measures["power_w"] == max(m["power_w"] for m in by.values())


@needs_ngspice
def test_sky130_process_corners(tmp_path: Path) -> None:
    net = ROOT / "netlists/sky130/two_stage_amp.cir"
    own = net.with_suffix(".toml").read_text().split("\n# PVT corners")[0]        # without its own [corners]
    text = "\n".join(ln for ln in own.splitlines() if not ln.startswith("ugbw_pvt")).replace(
        'fom     = {', 'pvt = { maximize = "ugbw_hz", constraints = ["pm_deg >= 60"], corners = "all" }\nfom     = {')
    spec = tmp_path / "amp.toml"
    spec.write_text(text + '\n[corners]\n[corners.tt]\nprocess = "tt"\n[corners.ss_hot]\nprocess = "ss"\ntemp = 125\n'
                    'vsup = "1.62"\n')
    problem = CornerProblem.wrap(CircuitProblem(net, spec, objective="pvt"))
    assert set(problem.sims.decks) == {"tt", "ss"}
    assert len(Spec.read(net.with_suffix(".toml")).corners.corners) == 27      # the shipped spec's cross product
    try:
        out = [problem.sims.simulate(np.append(problem.to_physical(problem.x0_unit()), k)) for k in (0, 1)]
    finally:
        problem.close()
    tt, ss = (o.measures for o in out)
    assert abs(tt["ugbw_hz"] - 40.32e6) / 40.32e6 < 0.01          # the spec's documented tt default
    assert ss["ugbw_hz"] < 0.9 * tt["ugbw_hz"] and ss["power_w"] < tt["power_w"]


@needs_ngspice
def test_sky130_temperature_corners_in_one_session(tmp_path: Path) -> None:
    """A worker walking temperatures on one deck (the fast path resizes in place) gets what a fresh session
    gets: ``.options temp={zoaf_temp}`` is read at a re-parse only, so a temperature change must reset."""
    net = ROOT / "netlists/sky130/two_stage_amp.cir"
    corners = [Corner("tt_-40c", "tt", -40.0), Corner("tt_27c", "tt", 27.0)]
    walk, fresh = CornerSims(CircuitProblem(net, objective="ugbw"), corners), None
    try:
        base = walk.decks["tt"]
        x = np.array([base.default_params()[n] for n in base.names]) * 1.05   # not the loaded sizing
        out = [walk.simulate(np.append(x, k)).measures for k in (1, 0, 1)]
        fresh = CornerSims(CircuitProblem(net, objective="ugbw"), corners)
        cold = fresh.simulate(np.append(x, 0)).measures                      # -40 C first: a reset
    finally:
        walk.close()
        if fresh is not None:
            fresh.close()
    assert out[1] == cold and out[0] == out[2]
    assert cold["ugbw_hz"] > 1.05 * out[0]["ugbw_hz"]                        # cold is faster: it was applied


def _random_run(tmp_path: Path, prune: bool, budget: int, name: str) -> zoaf.Result:
    problem = _corner_problem(tmp_path, '[corners]\nprocess = ["tt", "ss"]\ntemp = [27, 125]\n'
                                        'process_lib = "models/generic_corners.lib"\n', prune=prune)
    return zoaf.optimize(problem, budget=budget, seed=3, method="random", workers=2, out=tmp_path / name)


@needs_ngspice
def test_pruning_saves_simulations_and_keeps_the_best(tmp_path: Path) -> None:
    """Random search asks the same sizings whatever it is told: over the same sizings, pruning finds the same
    best sizing and worst case with fewer simulations, and its savings buy more sizings within the budget."""
    full = _random_run(tmp_path, False, 96, "full")
    pruned = _random_run(tmp_path, True, 96, "pruned")
    n = len(full.history)
    assert n == 24 and full.nfev == 96
    same = pruned.history[:n]
    assert [r.params for r in same] == [r.params for r in full.history]
    complete = [r for r in same if not r.pruned]
    best = min(complete, key=lambda r: (r.fom, r.idx))
    assert best.params == full.params and best.fom == full.fun
    spent = sum(r.sims for r in same)
    assert spent < 96 and all(r.fom > best.fom for r in same if r.pruned)
    assert pruned.nfev <= 96 and len(pruned.history) > n and pruned.fun <= full.fun


@needs_ngspice
def test_corner_run_resumes_exactly(tmp_path: Path) -> None:
    problem = _corner_problem(tmp_path, '[corners]\nprocess = ["tt", "ss"]\ntemp = [27, 125]\n'
                                        'process_lib = "models/generic_corners.lib"\n')
    whole = zoaf.optimize(problem, budget=60, seed=5, workers=2, out=tmp_path / "a")
    with sqlite3.connect(tmp_path / "a" / "history.db") as db:
        rows = db.execute("SELECT COUNT(*) FROM evals").fetchone()[0]
        assert rows == whole.nfev                      # one row per (sizing, corner) simulated
        db.execute("DELETE FROM evals WHERE idx >= ?", (rows // 2,))
    again = zoaf.optimize(problem, budget=60, seed=5, workers=2, out=tmp_path / "a", resume=True)
    assert again.params == whole.params and again.fun == whole.fun and again.nfev == whole.nfev
    assert [r.params for r in again.history] == [r.params for r in whole.history]
    assert all(isinstance(r, SizingRecord) for r in again.history)


@needs_ngspice
def test_corner_run_on_dask_matches_the_local_pool(tmp_path: Path) -> None:
    pytest.importorskip("distributed")
    corners = '[corners]\nprocess = ["tt", "ss"]\ntemp = [27, 125]\nprocess_lib = "models/generic_corners.lib"\n'
    runs = []
    for dask in (None, "local"):
        problem = _corner_problem(tmp_path, corners)
        with problem.evaluator(workers=2, dask=dask) as ev:
            runs.append(zoaf.optimize(problem, budget=40, seed=4, evaluator=ev))
    local, dasked = runs
    assert [(r.params, r.fom, r.sims) for r in dasked.history] == [(r.params, r.fom, r.sims) for r in local.history]


def _optimize_over_temperatures(tmp_path: Path, line6: str) -> tuple[Path, Result]:
    """An RC deck whose sixth line is ``line6``, optimized (4 simulations) over temperature corners -40 and 125."""
    deck = tmp_path / "rc.cir"
    deck.write_text(f"* rc\n.param r1=1k\nv1 in 0 dc 0 ac 1\nr1 in out {{r1}} tc1=3e-3\nc1 out 0 1n\n{line6}\n"
                    ".ac dec 10 1k 10meg\n.meas ac f3db when vdb(out)=-3\n.end\n")
    (tmp_path / "rc.toml").write_text('[parameters]\nr1 = { lo = "100", hi = "10k" }\n[measures]\nf3db = {}\n'
                                      '[objectives]\nbw = { maximize = "f3db", corners = "all" }\n'
                                      '[corners]\ntemp = [-40, 125]\n')
    return deck, CliRunner().invoke(app, ["optimize", str(deck), "-o", "bw", "--budget", "4", "--workers", "0",
                                          "--out", str(tmp_path / "r")])


def test_a_latin1_deck_runs_over_temperature_corners(tmp_path: Path) -> None:
    """A deck in Latin-1 (a comment's accent), which ngspice -b and a nominal run read: its corner decks are read
    in its own encoding (was a UnicodeDecodeError traceback)."""
    deck, res = _optimize_over_temperatures(tmp_path, "* r\u00e9sistance en s\u00e9rie")
    deck.write_bytes(deck.read_text().encode("latin-1"))
    res = CliRunner().invoke(app, ["optimize", str(deck), "-o", "bw", "--budget", "4", "--workers", "0",
                                   "--out", str(tmp_path / "r2")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "r2" / "result.json").exists()


@pytest.mark.parametrize("card", [".temp 50", ".options reltol=1e-3 temp=50", ".TEMP 50"])
def test_a_deck_with_its_own_temperature_is_refused_by_temperature_corners(tmp_path: Path, card: str) -> None:
    # ngspice keeps the deck's .temp (or first .options temp=) over the corner's appended .options temp={zoaf_temp}:
    # every corner ran at 50 degrees, silently. Refused in one line naming the card, before any simulation.
    deck, res = _optimize_over_temperatures(tmp_path, card)
    assert res.exit_code == 2, res.output
    assert f"{deck}:6: {card}: the deck sets its own temperature" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and not (tmp_path / "r").exists()


def _pvt_run(tmp_path: Path, workers: int) -> Path:
    """A short corner run of the amplifier (ugbw_pvt, 24 simulations, seed 1) in ``tmp_path / "pvt"``."""
    run = tmp_path / "pvt"
    made = CliRunner().invoke(app, ["optimize", str(AMP), "-o", "ugbw_pvt", "--budget", "24", "--seed", "1",
                                    "--workers", str(workers), "--out", str(run), "--quiet"])
    feasible = json.loads((run / "result.json").read_text())["feasible"]
    assert made.exit_code == (3 if feasible is False else 0), made.output     # 3: INFEASIBLE at its worst corner
    return run


def test_sign_off_of_a_corner_run_says_and_keeps_apart_which_corner(tmp_path: Path) -> None:
    # The sensitivities of a corner run were taken at its worst corner without saying which; a yield at
    # --corner without --out was refused as "another yield run" of RUN/yield instead of getting its own folder.
    run = _pvt_run(tmp_path, workers=0)
    sens = CliRunner().invoke(app, ["sensitivity", str(run), "--workers", "2", "--json"])
    assert sens.exit_code == 0, sens.output
    assert json.loads(sens.stdout)["corner"] == "ss_125c_vsup=1.62"
    for corner in (None, "tt_27c_vsup=1.8"):
        args = ["yield", str(run), "--samples", "2", "--workers", "1", "--json"]
        got = CliRunner().invoke(app, args + (["--corner", corner] if corner else []))
        assert got.exit_code == 0, got.output
    assert (run / "yield" / "yield.json").exists() and (run / "yield-tt_27c_vsup=1.8" / "yield.json").exists()


def test_a_two_sided_measure_is_reported_where_its_binding_constraint_is_worst(tmp_path: Path) -> None:
    # The worst case reported one value per measure in the direction of its *last* constraint: a ring's
    # frequency bounded on both sides (>= 950meg, <= 1.05g) showed its maximum (1.02 GHz, "pass >= 950 MHz")
    # while a hot, low-supply corner ran at 467 MHz and made the run INFEASIBLE. Reported now at the corner of
    # its most violated constraint, the value beside the spec is the one that decides it.
    spec = _spec(tmp_path, '[corners]\ntemp = [27, 125]\n')
    old = '"gain_db >= 60", "pm_deg >= 60", "power_w <= 1m"], corners'
    assert old in spec.read_text()
    spec.write_text(spec.read_text().replace(old, '"pm_deg >= 60", "power_w >= 100u", "power_w <= 1m"], corners'))
    problem = CornerProblem.wrap(CircuitProblem(AMP, spec, objective="ugbw_pvt"))
    assert isinstance(problem, CornerProblem)

    def corner(ugbw: float, pm: float, power: float) -> Outcome:
        m = {"ugbw_hz": ugbw, "pm_deg": pm, "power_w": power, "gain_db": 70.0}
        return Outcome.scored(problem.base.score(m), m, 0.1)

    wc = problem.judge([corner(100e6, 70.0, 900e-6), corner(80e6, 65.0, 40e-6)])
    assert wc.outcome.feasible is False
    assert wc.outcome.measures["power_w"] == 40e-6            # fails >= 100u there (was 900e-6: "pass")
    assert wc.outcome.measures["ugbw_hz"] == 80e6 and wc.outcome.measures["pm_deg"] == 65.0
    met = problem.judge([corner(100e6, 70.0, 990e-6), corner(80e6, 65.0, 400e-6)])
    assert met.outcome.measures["power_w"] == 990e-6          # nearest its bound: the upper one


DIVIDER = Path(__file__).parent / "signoff_decks" / "divider.cir"


@needs_ngspice
def test_a_measure_missing_at_one_corner_is_missing_from_the_worst_case(tmp_path: Path) -> None:
    # At vsup = 0.3 the divider's output never reaches 0.4 V: no sizing is measured at every corner. The worst
    # case filled vhalf in from the 1 V corner, so the run showed "vhalf 0.8 V pass <= 0.9" and ended
    # INFEASIBLE with exit 0 where a nominal run that never measures its objective fails (exit 1); the error
    # did not say which corner lost the measure.
    problem = CornerProblem.wrap(CircuitProblem(DIVIDER, objective="low"))
    assert isinstance(problem, CornerProblem)
    x = problem.to_physical(problem.x0_unit())
    per_corner = [problem.sims.simulate(np.append(x, k)) for k in range(2)]
    assert "vhalf" not in per_corner[0].measures and per_corner[1].measures["vhalf"] == pytest.approx(0.8, rel=1e-3)
    worst = problem.judge(per_corner).outcome
    assert "vhalf" not in worst.measures and worst.measures["vmax"] == pytest.approx(0.5, rel=1e-3)
    res = CliRunner().invoke(app, ["optimize", str(DIVIDER), "-o", "low", "--budget", "4", "--workers", "0",
                                   "--out", str(tmp_path / "r"), "--json"])
    assert res.exit_code == 1, res.output
    result = json.loads((tmp_path / "r" / "result.json").read_text())
    assert result["success"] is False and "corner vsup=0.3: MeasureError" in result["message"]   # names it


def _divider_spec(tmp_path: Path, extra: str) -> Path:
    """A copy of the divider with ``extra`` appended to its spec."""
    for suffix in (".cir", ".toml"):
        shutil.copy(DIVIDER.with_suffix(suffix), tmp_path / DIVIDER.with_suffix(suffix).name)
    spec = tmp_path / "divider.toml"
    spec.write_text(spec.read_text() + extra)
    return tmp_path / "divider.cir"


@pytest.mark.parametrize("extra, says", [
    ('[corners.typ]\n', "corners.typ: empty corner table"),
    ('process_lib = "models/none.lib"\n[corners.slow]\nprocess = "ss"\n', "corners.slow: process_lib"),
    ('[corners.slow]\nprocess = "ss"\n', "corners.slow: process 'ss' needs process_lib"),
])
def test_a_corner_table_is_checked_when_the_spec_is_read(tmp_path: Path, extra: str, says: str) -> None:
    """An empty [corners.NAME] was read as a corner equal to the nominal deck (a misplaced header's keys lost
    without a word), and a process section that does not exist was found only by a command that simulated that
    corner: `zoaf check` and a nominal optimization accepted the spec."""
    deck = _divider_spec(tmp_path, extra)
    res = CliRunner().invoke(app, ["check", str(deck)])
    lines = res.stderr.strip().splitlines()
    assert res.exit_code == 2 and len(lines) == 1 and says in lines[0] and "divider.toml" in lines[0], res.output


@needs_ngspice
def test_corners_command_judges_a_sizing_at_every_corner(tmp_path: Path) -> None:
    """`zoaf corners`: the netlist's sizing at each corner, pass/fail per corner with the missed constraint
    named (a missing measure said so), the worst corner of the objective and of each constraint, in the table
    and the JSON; the optimizer's per-corner table of a run says the same, and counts cache hits apart."""
    res = CliRunner().invoke(app, ["corners", str(DIVIDER), "--workers", "2", "--json"])
    assert res.exit_code == 0, res.output
    got = json.loads(res.stdout)
    assert got["pass"] is False and got["failing_corners"] == ["vsup=0.3"]
    low, high = got["corners"]
    assert low["failed"] == ["vhalf <= 900m (not measured)"] and "vhalf" in low["error"]
    assert high["pass"] and high["measures"]["vhalf"] == pytest.approx(0.8, rel=1e-6)
    assert high["measures"]["vmax"] == pytest.approx(0.5, rel=1e-6) and low["measures"]["vmax"] == pytest.approx(0.15)
    objective, vhalf = got["worst"]
    assert (objective["what"], objective["corner"], objective["value"]) == ("minimize vmax", "vsup=1", 0.5)
    assert (vhalf["what"], vhalf["corner"], vhalf["value"]) == ("vhalf <= 900m", "vsup=0.3", None)
    text = CliRunner().invoke(app, ["corners", str(DIVIDER), "--workers", "1"], env={"COLUMNS": "200"}).stdout
    assert "FAIL vhalf <= 900m (not measured)" in text and "FAILS at 1 of 2 corners: vsup=0.3" in text
    assert "worst vhalf <= 900m: not measured at vsup=0.3" in text
    run = CliRunner().invoke(app, ["optimize", str(DIVIDER), "--budget", "6", "--workers", "1", "--seed", "1",
                                   "--out", str(tmp_path / "r")], env={"COLUMNS": "200"})
    assert "FAIL vhalf <= 900m (not measured)" in run.stdout and "from the cache" in run.stdout
    bad = CliRunner().invoke(app, ["corners", str(DIVIDER), "--corner", "nope"])
    assert bad.exit_code == 2 and "--corner: unknown corner(s) nope" in bad.stderr


@needs_ngspice
def test_corners_command_on_a_corner_run_repeats_its_simulations(tmp_path: Path) -> None:
    """On a run's best sizing, each corner's measures are those the run simulated there, and each constraint's
    worst corner is where its margin is least."""
    run = _pvt_run(tmp_path, workers=2)
    res = CliRunner().invoke(app, ["corners", str(run), "--workers", "2", "--json"])
    assert res.exit_code == 0, res.output
    got = json.loads(res.stdout)
    best = json.loads((run / "result.json").read_text())["params"]
    from zoaf.history import History
    with History(run / "history.db", read=True) as h:
        rows = {int(r.params["corner"]): r.outcome.measures for r in h.records()
                if all(r.params[n] == v for n, v in best.items())}
    assert len(got["corners"]) == 12 and rows
    for k, measures in rows.items():
        assert got["corners"][k]["measures"] == pytest.approx(measures, rel=1e-9)
    for w in got["worst"][1:]:
        least = min(c["measures"][w["measure"]] for c in got["corners"]) if ">=" in w["what"] else \
            max(c["measures"][w["measure"]] for c in got["corners"])
        assert w["value"] == least


def test_a_temp_card_inside_a_comment_is_no_temperature_of_the_deck(tmp_path: Path) -> None:
    """ngspice ends a line at "\\n" alone: ``* note<U+2028>.temp 50`` is one comment, which a corner run read as a
    ``.temp`` card (str.splitlines breaks there) and refused, naming a line that does not hold it."""
    _, res = _optimize_over_temperatures(tmp_path, "* note\u2028.temp 50")
    assert res.exit_code == 0, res.output


def test_corner_options_naming_one_condition_twice_are_refused(tmp_path: Path) -> None:
    """`zoaf corners --corner hot --corner 85c`, hot being 85c's conditions: simulated twice, "all 2 corners"."""
    corpus = Path(__file__).parent / "bad_inputs"
    spec = tmp_path / "mc.toml"
    spec.write_text((corpus / "mc.toml").read_text() + "[corners]\ntemp = [27, 85]\n[corners.hot]\ntemp = 85\n")
    res = CliRunner().invoke(app, ["corners", str(corpus / "mc.cir"), "--spec", str(spec), "--corner", "hot",
                                   "--corner", "85c", "--workers", "1"])
    assert res.exit_code == 2, res.output
    assert res.stderr.strip() == ("error: --corner: corners hot and 85c are the same conditions (temp=85): each "
                                  "would be simulated twice; remove one")

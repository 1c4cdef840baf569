"""Comparison runs: reuse, resume, more seeds later, and the end-to-end `zoaf compare` / `zoaf report`."""
import importlib.util
import json
import math
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import zoaf
from zoaf.cli import app
from zoaf.compare import run_grid
from zoaf.compareplan import run_path
from zoaf.errors import InputError
from zoaf.history import History
from zoaf.function import FunctionProblem
from zoaf.report import user_command, write_report
from zoaf.stats import is_complete

ROOT = Path(__file__).resolve().parents[1]


def sphere_problem(objective):
    shift = {"a": 0.3, "b": -0.2}[objective]
    return FunctionProblem.from_bounds(lambda x: float(np.sum((np.asarray(x) - shift) ** 2)), [(-1, 1)] * 3)


def rows(path):
    with History(path / "history.db") as h:
        return [(r.idx, r.params, r.fom, r.charged) for r in h.records()]


def test_grid_reuses_complete_runs_resumes_and_adds_seeds(tmp_path):
    events = []
    failed = run_grid(sphere_problem, tmp_path, objectives=["a", "b"], methods=["zoaf", "random"], seeds=2,
                      budget=15, progress=events.append)
    assert failed == [] and events[0].kind == "plan" and events[0].total == 8
    assert sum(e.kind == "done" for e in events) == 8
    before = {p: rows(p.parent) for p in tmp_path.glob("*/*/seed-*/history.db")}
    assert len(before) == 8
    # interrupt one seed-2 run, then ask for 3 seeds: 0..1 reused untouched, seed 2 new, the cut one resumed
    cut = run_path(tmp_path, "a", "zoaf", 2)
    seen = []
    zoaf.optimize(sphere_problem("a"), budget=15, seed=2, method="zoaf", out=cut,
                  callback=lambda r: seen.append(1) or len(seen) >= 2)
    assert not is_complete(cut)                           # result.json says "callback"
    events.clear()
    run_grid(sphere_problem, tmp_path, objectives=["a", "b"], methods=["zoaf", "random"], seeds=3, budget=15,
             progress=events.append)
    assert sum(e.kind == "reused" for e in events) == 8 and sum(e.kind == "done" for e in events) == 4
    assert {p: rows(p.parent) for p in before} == before
    fresh = tmp_path / "fresh"
    zoaf.optimize(sphere_problem("a"), budget=15, seed=2, method="zoaf", out=fresh)
    assert rows(cut) == rows(fresh)                       # the resumed run is the uninterrupted one


def test_grid_refuses_another_budget_and_unknown_method(tmp_path):
    run_grid(sphere_problem, tmp_path, objectives=["a"], methods=["random"], seeds=1, budget=10)
    with pytest.raises(InputError, match="budget 10, not 12"):
        run_grid(sphere_problem, tmp_path, objectives=["a"], methods=["random"], seeds=1, budget=12)
    with pytest.raises(InputError, match="unknown method 'nope'"):
        run_grid(sphere_problem, tmp_path, objectives=["a"], methods=["nope"], seeds=1, budget=10)


def test_runs_of_a_method_whose_settings_changed_are_neither_reused_nor_resumed(tmp_path, monkeypatch):
    """A preset changed since a run: the comparison refuses to rank that run as the method, a resume refuses to
    go on with other settings; a run recorded before settings were recorded is reused as before."""
    pytest.importorskip("cobyqa")
    from zoaf.zo.presets import ZOAFCobyqa

    run_grid(sphere_problem, tmp_path, objectives=["a"], methods=["zoaf-cobyqa"], seeds=1, budget=15)
    done, cut = run_path(tmp_path, "a", "zoaf-cobyqa", 0), run_path(tmp_path, "a", "zoaf-cobyqa", 1)
    assert json.loads((done / "result.json").read_text())["settings"] == {**ZOAFCobyqa.describe(), "batch_width": 1}
    zoaf.optimize(sphere_problem("a"), budget=15, seed=1, method="zoaf-cobyqa", out=cut, callback=lambda r: True)
    monkeypatch.setattr(ZOAFCobyqa, "preset", {**ZOAFCobyqa.preset, "late_init": False})
    with pytest.raises(InputError, match="with late_init=True, but zoaf-cobyqa now has late_init=False"):
        run_grid(sphere_problem, tmp_path, objectives=["a"], methods=["zoaf-cobyqa"], seeds=1, budget=15)
    with pytest.raises(InputError, match="the method.s setting late_init is False in this zoaf, True in"):
        zoaf.optimize(sphere_problem("a"), budget=15, seed=1, method="zoaf-cobyqa", out=cut, resume=True)
    result = json.loads((done / "result.json").read_text())
    (done / "result.json").write_text(json.dumps({k: v for k, v in result.items() if k != "settings"}))
    (done / "history.db").unlink()                        # as committed benchmark results are: result.json only
    events = []
    run_grid(sphere_problem, tmp_path, objectives=["a"], methods=["zoaf-cobyqa"], seeds=1, budget=15,
             progress=events.append)
    assert [e.kind for e in events] == ["plan", "reused"]


def test_a_comparison_kept_without_its_histories_reports_the_same(tmp_path):
    """Committed benchmark results keep result.json and trace.json, not history.db: the trace gives the same
    statistics (finals, simulations and seconds to target, wall, overhead); a run recorded before traces were
    kept gives its end alone: the same finals and p-values, no time to a target it reached."""
    from zoaf.report import load_comparison, write_report

    run_grid(sphere_problem, tmp_path, objectives=["a"], methods=["zoaf", "random"], seeds=3, budget=40)
    (tmp_path / "compare.json").write_text(json.dumps({"budget": 40, "methods": ["zoaf", "random"]}))

    def stats():
        (s,) = load_comparison(tmp_path)
        return {m.method: [m.median, m.worst, m.sims_to_target, m.seconds_to_target, m.wall, m.overhead, m.p_value]
                for m in s.methods}

    full = stats()
    for db in tmp_path.glob("a/*/seed-*/history.db"):
        db.unlink()
    kept = stats()
    assert all(kept[m] == pytest.approx(full[m], nan_ok=True) for m in full) and kept.keys() == full.keys()
    write_report(tmp_path)
    for trace in tmp_path.glob("a/zoaf/seed-*/trace.json"):
        trace.unlink()
    ends = stats()
    assert [v[:2] + v[-1:] for v in ends.values()] == [v[:2] + v[-1:] for v in full.values()]
    assert math.isnan(ends["zoaf"][2]) and math.isnan(ends["zoaf"][4])    # reached the target: when is unknown
    write_report(tmp_path)                                                   # its curve left out, not drawn flat


def test_report_of_a_function_grid(tmp_path):
    run_grid(sphere_problem, tmp_path, objectives=["a"], methods=["zoaf", "random"], seeds=3, budget=30)
    md, html = write_report(tmp_path)
    assert "| zoaf | 3 |" in md.read_text() and html.read_text().count("data:image/png;base64,") == 3


def test_commands_are_recorded_as_a_user_types_them(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    argv = [str(tmp_path / ".venv" / "bin" / "zoaf"), "compare", str(tmp_path / "netlists" / "amp.cir"),
            "--out", "/elsewhere/cmp", "--methods", "zoaf,cma warm"]
    assert user_command(argv) == "zoaf compare netlists/amp.cir --out /elsewhere/cmp --methods 'zoaf,cma warm'"
    assert user_command(["benchmarks/compare_all.py", "--seeds", "20"]) == "benchmarks/compare_all.py --seeds 20"


def test_cli_errors_are_one_line(tmp_path):
    r = CliRunner().invoke(app, ["compare", str(tmp_path / "none.cir")])
    assert r.exit_code == 2 and "not found" in r.output
    r = CliRunner().invoke(app, ["report", str(tmp_path)])
    assert r.exit_code == 2 and "no complete runs" in r.output


@pytest.mark.skipif(importlib.util.find_spec("PySpice") is None, reason="no PySpice (zoaf.spice cannot load)")
def test_compare_end_to_end_on_the_amplifier(tmp_path):
    try:
        import zoaf.spice  # noqa: F401
    except Exception as e:  # noqa: BLE001 - any import failure means no simulator here
        pytest.skip(f"zoaf.spice does not import: {e}")
    out = tmp_path / "cmp"
    # one objective keeps the test short; `zoaf compare` without -o runs them all
    args = ["compare", str(ROOT / "netlists" / "two_stage_amp.cir"), "--objective", "peaking", "--methods",
            "zoaf,cma,random", "--seeds", "2", "--budget", "12", "--jobs", "2", "--out", str(out)]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    assert {p.name for p in out.iterdir()} >= {"report.md", "report.html", "compare.json", "peaking-final.png",
                                               "peaking-vs-simulations.png", "peaking-vs-seconds.png"}
    html = (out / "report.html").read_text()
    assert html.count('src="data:image/png;base64,') == 3
    manifest = json.loads((out / "compare.json").read_text())   # paths as a reader elsewhere can follow them
    assert not Path(manifest["netlist"]).is_absolute()
    assert (out / manifest["netlist"]).resolve() == ROOT / "netlists" / "two_stage_amp.cir"
    assert (out / manifest["spec"]).resolve() == ROOT / "netlists" / "two_stage_amp.toml"
    md = (out / "report.md").read_text()
    assert all(f"| {m} | 2 |" in md for m in ("zoaf", "cma", "random")) and "peaking_db" in md
    dbs = sorted(out.glob("peaking/*/seed-*/history.db"))
    assert len(dbs) == 6
    counts = {p: len(rows(p.parent)) for p in dbs}
    assert all(0 < n for n in counts.values())
    for p in out.glob("*.png"):
        p.unlink()
    (out / "report.md").unlink()
    r = CliRunner().invoke(app, ["report", str(out)])
    assert r.exit_code == 0, r.output
    assert (out / "report.md").exists() and len(list(out.glob("*.png"))) == 3
    r = CliRunner().invoke(app, args)                # everything reused: no new simulation
    assert r.exit_code == 0, r.output
    assert {p: len(rows(p.parent)) for p in dbs} == counts
    assert json.loads((out / "compare.json").read_text())["seeds"] == 2


def _descendants(pid: int) -> set[int]:
    out, todo = set(), [pid]
    while todo:
        p = todo.pop()
        for task in Path(f"/proc/{p}/task").glob("*"):
            kids = (task / "children").read_text().split() if (task / "children").exists() else []
            new = {int(k) for k in kids} - out
            out |= new
            todo += new
    return out


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="Linux /proc")
def test_a_killed_compare_leaves_no_process_behind(tmp_path):
    """kill -9 of `zoaf compare --jobs 2` takes its job processes (and their simulating children) with it, so the
    rerun that resumes finds no run directory still locked by an orphan."""
    import signal
    import subprocess
    import sys
    import time

    proc = subprocess.Popen([sys.executable, "-m", "zoaf", "compare", str(ROOT / "netlists" / "two_stage_amp.cir"),
                             "--objective", "fom", "--methods", "zoaf,random", "--seeds", "2", "--budget", "5000",
                             "--jobs", "2", "--out", str(tmp_path / "cmp")], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while len(list((tmp_path / "cmp").glob("fom/*/seed-*/history.db"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    helpers = _descendants(proc.pid)
    assert len(helpers) >= 3                     # the progress queue's manager and two job processes, at least
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 30
    while any(_alive(p) for p in helpers) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not [p for p in helpers if _alive(p)]


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="Linux /proc")
def test_a_sigint_to_compare_alone_stops_its_runs_at_once(tmp_path):
    """`timeout -s INT` signals `zoaf compare` but not its job processes: the comparison once waited for every
    running run to finish (minutes each). It now ends them and exits 130; the histories stay for the rerun."""
    import signal
    import subprocess
    import sys
    import time

    proc = subprocess.Popen([sys.executable, "-m", "zoaf", "compare", str(ROOT / "netlists" / "two_stage_amp.cir"),
                             "--objective", "fom", "--methods", "random", "--seeds", "2", "--budget", "20000",
                             "--jobs", "2", "--out", str(tmp_path / "cmp")], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL,   # a shell's background job inherits SIGINT ignored
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 120
    while len(list((tmp_path / "cmp").glob("fom/*/seed-*/history.db"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(2)
    helpers = _descendants(proc.pid)
    proc.send_signal(signal.SIGINT)
    try:
        assert proc.wait(timeout=60) == 130      # 20,000 simulations per run: minutes, had it waited for them
    finally:
        if proc.poll() is None:
            proc.kill()                          # its job processes die with it
    deadline = time.monotonic() + 10             # multiprocessing's resource tracker leaves on its own, a moment later
    while any(_alive(p) for p in helpers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [p for p in helpers if _alive(p)]  # a job process left running would still be simulating for minutes
    assert not list((tmp_path / "cmp").glob("fom/*/seed-*/result.json"))


def test_compare_without_methods_runs_every_installed_one_and_names_the_others(tmp_path, monkeypatch):
    """The default is every method whose libraries are installed (the peers, when there), and those left out are
    named with the extra that installs them; one asked for by name without its library is a one-line error."""
    import sys

    for module in ("nevergrad", "optuna", "cobyqa", "PyNomad", "botorch"):
        monkeypatch.setitem(sys.modules, module, None)           # as if installed without the extras
    good = ROOT / "tests" / "bad_inputs" / "good.cir"
    out = tmp_path / "cmp"
    r = CliRunner().invoke(app, ["compare", str(good), "--seeds", "1", "--budget", "6", "--jobs", "1",
                                 "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert ("not compared (their libraries are not installed): zoaf-cobyqa, bo, turbo, ngopt, ngcma, tpe, cobyqa, "
            "nomad; install them with pip install 'zoaf[bo,peers]'") in " ".join(r.output.split())
    assert {p.name for p in (out / "bw").iterdir() if p.is_dir()} == {"zoaf", "random", "cma", "cma-warm", "de"}
    r = CliRunner().invoke(app, ["compare", str(good), "--methods", "zoaf,ngcma", "--out", str(tmp_path / "c2")])
    assert r.exit_code == 2
    assert "method 'ngcma' needs nevergrad, which is not installed: pip install 'zoaf[peers]'" in r.output


def test_an_interrupted_run_kept_without_its_history_is_made_again(tmp_path):
    """A run directory holding an interrupted run's end files (result.json, trace.json) but no history.db, as
    benchmark results are kept, was planned as a new run, which the rule that a new run needs an empty directory
    refused ("use another --out"): the run failed, and the comparison with it. It is made again from its seed:
    the same simulations first, then the rest of the budget."""
    cut = run_path(tmp_path, "a", "zoaf", 0)
    zoaf.optimize(sphere_problem("a"), budget=15, seed=0, method="zoaf", out=cut, callback=lambda r: True)
    assert not is_complete(cut)
    interrupted = rows(cut)
    (cut / "history.db").unlink()
    assert run_grid(sphere_problem, tmp_path, objectives=["a"], methods=["zoaf"], seeds=1, budget=15) == []
    assert is_complete(cut) and rows(cut)[:len(interrupted)] == interrupted and len(rows(cut)) > len(interrupted)
    other = tmp_path / "other"                            # not for a run of the command line: it needs an empty one
    other.mkdir()
    (other / "result.json").write_text(json.dumps({**json.loads((cut / "result.json").read_text()),
                                                   "stop_reason": "interrupted"}))
    with pytest.raises(InputError, match="already holds result.json; a new run needs a new or empty directory"):
        zoaf.optimize(sphere_problem("a"), budget=15, seed=0, method="zoaf", out=other)


class _WithBest(FunctionProblem):
    """A function problem that writes its best point as ``best.txt`` (as a circuit writes ``best.cir``)."""

    def artifacts(self, params):
        return {"best.txt": json.dumps(params)}


def _failing(objective):
    def fun(x):
        raise RuntimeError("the simulator is gone")
    return _WithBest.from_bounds(fun, [(-1, 1)] * 3)


def test_a_run_made_again_whose_every_point_fails_keeps_no_best_of_the_old_one(tmp_path):
    """A run made again (its interrupted end kept without history) whose every point failed left the interrupted
    run's ``best.txt`` beside its own result.json, which has no best point: a stale sizing presented as the run's."""
    cut = run_path(tmp_path, "a", "random", 0)
    zoaf.optimize(_WithBest.from_bounds(lambda x: float(np.sum(x ** 2)), [(-1, 1)] * 3), budget=6, seed=0,
                  method="random", out=cut, callback=lambda r: True)
    assert (cut / "best.txt").is_file() and not is_complete(cut)
    (cut / "history.db").unlink()
    run_grid(_failing, tmp_path, objectives=["a"], methods=["random"], seeds=1, budget=6)
    result = json.loads((cut / "result.json").read_text())
    assert result["nfailed"] == result["nfev"] == 6 and result["params"] == {}
    assert sorted(p.name for p in cut.iterdir()) == [".lock", "convergence.png", "history.db", "result.json",
                                                     "trace.json"]


def test_a_comparison_into_a_run_directory_is_refused(tmp_path):
    """``zoaf compare --out RUN`` of a ``zoaf optimize`` run directory wrote its compare.json, report, plots and run
    folders among the run's files. Refused, before anything is written."""
    run = tmp_path / "run"
    zoaf.optimize(sphere_problem("a"), budget=4, seed=0, method="random", out=run)
    held = sorted(p.name for p in run.iterdir())
    with pytest.raises(InputError, match=r"holds a run \(history.db: zoaf optimize's\), not a comparison"):
        run_grid(sphere_problem, run, objectives=["a"], methods=["random"], seeds=1, budget=4)
    r = CliRunner().invoke(app, ["compare", str(ROOT / "tests" / "bad_inputs" / "good.cir"), "-m", "random",
                                 "--seeds", "1", "--budget", "3", "--jobs", "1", "-q", "--out", str(run)])
    assert r.exit_code == 2 and "not a comparison; use another --out" in r.output, r.output
    assert sorted(p.name for p in run.iterdir()) == held


def test_an_objective_judged_over_corners_is_compared_over_them(tmp_path):
    """``zoaf compare`` ran every method at the nominal deck of an objective with ``corners = "all"``: its report
    ranked designs that miss the spec at a corner as feasible, where ``zoaf optimize`` judges the worst corner. A
    comparison's run is now the run ``zoaf optimize`` makes."""
    from zoaf.circuit import CircuitProblem
    from zoaf.compare import compare
    from zoaf.signoff.cornerrun import CornerProblem

    deck = ROOT / "tests" / "signoff_decks" / "divider.cir"       # vhalf is missing at its vsup = 0.3 corner
    root = compare(deck, methods=["random"], seeds=1, budget=8, out=tmp_path / "cmp", jobs=1, report=False)
    compared = json.loads((run_path(root, "low", "random", 0) / "result.json").read_text())
    problem = CornerProblem.wrap(CircuitProblem(deck))
    try:
        alone = zoaf.optimize(problem, budget=8, seed=0, method="random", workers=0)
    finally:
        problem.close()
    assert (compared["fun"], compared["measures"], compared["feasible"]) == (alone.fun, alone.measures, alone.feasible)
    assert "vhalf" not in compared["measures"]


def test_a_run_judged_at_the_nominal_deck_is_not_reused_for_an_objective_judged_over_corners(tmp_path):
    """A finished run of an objective with ``corners``, made at the nominal deck (as comparisons made them before they
    judged corners), holds a history whose problem names no corners: reused, it was ranked beside runs judged over
    them (feasible at nominal, infeasible at a corner). Refused in one line naming the run; nothing is written."""
    from zoaf.circuit import CircuitProblem
    from zoaf.compare import compare

    deck = ROOT / "tests" / "signoff_decks" / "divider.cir"
    nominal = run_path(tmp_path / "cmp", "low", "random", 0)
    problem = CircuitProblem(deck, objective="low")
    try:
        zoaf.optimize(problem, budget=8, seed=0, method="random", workers=0, out=nominal)
    finally:
        problem.close()
    with pytest.raises(zoaf.InputError, match=r"seed-0: holds a run judged at the nominal deck, but objective low is "
                                              r"judged over the corners .+ now: move that run away"):
        compare(deck, objectives=["low"], methods=["random"], seeds=1, budget=8, out=tmp_path / "cmp", jobs=1,
                report=False)
    assert not (tmp_path / "cmp" / "compare.json").exists()


@pytest.mark.parametrize("key", ["netlist_sha256", "spec_sha256"])
def test_a_run_whose_history_records_no_hash_of_its_circuit_is_refused(tmp_path, key):
    """A comparison folder holding a finished run of another circuit (mc.cir, its R1 scaled by a Monte Carlo term,
    or good.cir under another spec) whose history records no hash of the file that differs: the check that a
    folder's runs are of the compared circuit skipped it, and the run was reused and reported as good.cir's. Refused
    in one line naming its history, as sign-off refuses such a history (tests/test_received.py); nothing written."""
    corpus = ROOT / "tests" / "bad_inputs"
    (tmp_path / "other.toml").write_text((corpus / "good.toml").read_text() + "# another spec\n")
    deck, spec = (corpus / "mc.cir", corpus / "good.toml") if key == "netlist_sha256" else \
        (corpus / "good.cir", tmp_path / "other.toml")
    out = tmp_path / "cmp"
    foreign = run_path(out, "bw", "random", 0)
    r = CliRunner().invoke(app, ["optimize", str(deck), "--spec", str(spec), "--method", "random", "--budget", "2",
                                 "--seed", "0", "--workers", "0", "--quiet", "--out", str(foreign)])
    assert r.exit_code == 0, r.output
    db = sqlite3.connect(foreign / "history.db")
    db.execute("UPDATE meta SET value = json_remove(value, ?) WHERE key = 'problem'", (f"$.{key}",))
    db.commit()
    db.close()
    before = sorted(p.relative_to(out) for p in out.rglob("*"))
    r = CliRunner().invoke(app, ["compare", str(corpus / "good.cir"), "--methods", "random", "--seeds", "1",
                                 "--budget", "2", "--jobs", "1", "--quiet", "--out", str(out)])
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.exit_code == 2 and len(lines) == 1, r.output
    assert (f"{foreign / 'history.db'}: not a zoaf run history (its problem records no {key}, which every circuit run "
            "records)") in lines[0]
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before


def test_seeds_past_the_cap_are_refused_however_given():
    """A count, a list or an endless generator of seeds past ``MAX_SEEDS``: one InputError before any plan is made
    (a generator was drawn whole into a list: a comparison that never started, and memory without bound)."""
    import itertools

    from zoaf.compareplan import MAX_SEEDS, check_seeds

    for seeds in (MAX_SEEDS + 1, list(range(MAX_SEEDS + 1)), itertools.count()):
        with pytest.raises(zoaf.InputError, match=f"more runs than a comparison makes; at most {MAX_SEEDS} seeds"):
            check_seeds(seeds)
    assert check_seeds(iter([3, 1])) == [3, 1] and check_seeds(2) == [0, 1]

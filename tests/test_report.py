"""Comparison statistics on hand-made histories: target, simulations-to-target, quartiles, Mann-Whitney."""
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import mannwhitneyu

from zoaf.errors import InputError
from zoaf.history import History, Record
from zoaf.problem import Outcome, Status
from zoaf.report import format_value, load_comparison, table_rows, write_report
from zoaf.stats import RunData, holm, load_run, mann_whitney, median, quartiles, summarize, target_fom


def run(foms, method="m", seed=0, budget=10, charged=None, feasible=None, objective=None, dt=0.5, sim=0.1):
    """A run whose i-th row has FoM foms[i], wall (i+1)*dt and simulator seconds sim."""
    n = len(foms)
    charged = [True] * n if charged is None else charged
    feasible = [True] * n if feasible is None else feasible
    objective = list(foms) if objective is None else objective
    status = [Status.CACHED if not c else Status.OK if math.isfinite(f) else Status.FAILED
              for f, c in zip(foms, charged)]
    recs = [Record(i, np.zeros(2), {"x": 0.0}, Outcome(status[i], f, {}, objective[i], feasible[i], None, sim),
                   "p", (i + 1) * dt) for i, f in enumerate(foms)]
    return RunData.from_records(recs, method=method, seed=seed, budget=budget)


def test_simulations_to_target_counts_charged_calls_only():
    r = run([5, 4, 4, 2, 1], charged=[True, True, False, True, True])
    assert r.to_target(4.0) == (2, 1.0)          # row 1: second charged simulation, wall 1.0 s
    assert r.to_target(2.0) == (3, 2.0)          # row 3 follows a free cache hit: 3 charged simulations
    assert r.to_target(0.5) == (math.inf, math.inf)
    assert r.nfev == 4 and r.final == 1
    np.testing.assert_array_equal(r.best_at_sims(np.arange(0, 6)), [math.inf, 5, 4, 2, 1, 1])


def test_overhead_and_wall():
    r = run([3, 2, 1], dt=1.0, sim=0.25)
    assert r.wall_total == 3.0 and r.sim_seconds == 0.75
    assert r.overhead_per_sim == pytest.approx((3.0 - 0.75) / 3)


def test_best_feasible_objective_ignores_infeasible_rows():
    # infeasible rows have FoM 100+violation; the best feasible row's raw objective is reported
    r = run([101.0, 0.7, 0.3, 100.5], feasible=[False, True, True, False], objective=[9.0, 2.0, 1.5, 0.1])
    assert r.is_feasible and r.best_feasible_objective == 1.5
    none = run([101.0, 100.2], feasible=[False, False])
    assert not none.is_feasible and math.isnan(none.best_feasible_objective)
    unconstrained = run([3.0, 1.0], feasible=[None, None])
    assert unconstrained.is_feasible


def test_quartiles_and_median_match_numpy_and_treat_inf_as_largest():
    v = [3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0]
    assert quartiles(v) == tuple(np.quantile(v, [0.25, 0.5, 0.75]))
    assert median([1, 2, math.inf]) == 2
    assert median([1, math.inf, math.inf]) == math.inf
    assert median([1, 3, math.inf, math.inf]) == math.inf
    assert quartiles([1, 2, 3, math.inf])[2] == math.inf


def test_mann_whitney_matches_scipy():
    a, b = [0.1, 0.3, 0.2, 0.05, 0.4], [0.5, 0.35, 0.6, 0.7, 0.45, 0.25]
    assert mann_whitney(a, b) == pytest.approx(mannwhitneyu(a, b, alternative="two-sided").pvalue)
    assert math.isnan(mann_whitney([], b))


def test_target_is_the_best_baseline_median():
    finals = {"zoaf": [0.1, 0.2, 0.3], "cma": [0.5, 0.6, 0.7], "random": [0.9, 1.0, 1.1]}
    assert target_fom(finals) == 0.6
    assert target_fom({"zoaf": [0.1, 0.2, 0.3]}) == 0.2


def test_summary_sims_to_target_and_ratio():
    # baseline medians: cma 4 (finals 4, 4, 5), random 8 -> target 4
    runs = {
        "zoaf": [run([9, 6, 3, 1], seed=0), run([9, 4, 4, 4], seed=1), run([9, 9, 9, 9], seed=2)],
        "cma": [run([9, 8, 7, 6, 5, 4], seed=0), run([9, 8, 7, 6, 5, 4, 4, 4], seed=1), run([9, 5] * 5, seed=2)],
        "random": [run([8] * 10, seed=s) for s in range(3)],
    }
    s = summarize("obj", runs, measure="power", unit="W", sense="minimize")
    assert s.target == 4.0
    st = {m.method: m for m in s.methods}
    # zoaf hits at 3, 2, never -> median 3; cma at 6, 6, never -> 6 (ratio 2); random never -> >budget
    assert st["zoaf"].sims_to_target == 3 and st["cma"].sims_to_target == 6
    assert st["cma"].sims_ratio == 2.0 and st["random"].sims_to_target == math.inf
    assert st["zoaf"].seconds_to_target == 1.5 and st["cma"].seconds_ratio == 2.0
    assert st["zoaf"].median == 4 and (st["zoaf"].q1, st["zoaf"].q3) == (2.5, 6.5)
    assert st["zoaf"].best == 1 and st["zoaf"].worst == 9
    assert st["cma"].p_value == pytest.approx(mannwhitneyu([1, 4, 9], [4, 4, 5]).pvalue)
    assert math.isnan(st["zoaf"].p_value)
    rows = {r[0]: r for r in table_rows(s)}
    assert rows["random"][8] == ">10" and rows["random"][10] == "never"
    assert rows["random"][9] == f">{10 / 3:.2g}x" and rows["cma"][9] == "2x"
    assert rows["zoaf"][7] == "100%"
    # random ended at 8 on every seed: one sample of a path, marked so that its p-value is read as such
    assert rows["random"][1] == "3 (one value)" and rows["cma"][1] == "3"
    # ranks by median final FoM (zoaf 4 ties cma 4; random 8); Holm over the two comparisons with zoaf
    assert (st["zoaf"].rank, st["cma"].rank, st["random"].rank) == (1, 1, 3)
    assert st["cma"].p_holm == pytest.approx(holm({"cma": st["cma"].p_value, "random": st["random"].p_value})["cma"])
    assert math.isnan(st["zoaf"].p_holm) and rows["zoaf"][-1] == "—"


def test_holm_step_down():
    # sorted 0.01, 0.02, 0.04 (m = 3): 0.03, max(0.03, 0.04) = 0.04, max(0.04, 0.04) = 0.04
    assert holm({"a": 0.04, "b": 0.01, "c": 0.02}) == pytest.approx({"a": 0.04, "b": 0.03, "c": 0.04})
    # monotone and capped at 1; NaN stays NaN and is not counted in the family
    adj = holm({"a": 0.5, "b": 0.3, "n": math.nan})
    assert adj["b"] == pytest.approx(0.6) and adj["a"] == pytest.approx(0.6) and math.isnan(adj["n"])
    assert holm({"a": 0.9, "b": 0.8})["a"] == 1.0
    assert holm({}) == {}


def test_format_value_units():
    assert format_value(1.67e-5, "W") == "16.7 µW" and format_value(5.29e7, "Hz") == "52.9 MHz"
    assert format_value(7.278e-8, "m^2") == "7.278e-08 m^2" and format_value(0.0, "W") == "0 W"
    assert format_value(61.234, "dB") == "61.23 dB"
    assert format_value(math.nan, "W") == "—"


def write_run(path, foms, budget, method, seed, complete=True):
    path.mkdir(parents=True)
    with History(path / "history.db") as h:
        h.set_meta({"method": method, "seed": seed, "budget": budget})
        for i, f in enumerate(foms):
            h.append(Record(i, np.zeros(1), {"x": 0.0}, Outcome(Status.OK, f, {"p": f}, f, f < 100, None, 0.01),
                            "p", 0.02 * (i + 1)))
    (path / "result.json").write_text(json.dumps({"stop_reason": "budget" if complete else "interrupted"}))


def test_report_from_run_directories(tmp_path):
    rng = np.random.default_rng(0)
    for m, scale in (("zoaf", 0.5), ("cma", 1.0)):
        for k in range(3):
            foms = np.concatenate([[110.0, 104.0], np.abs(rng.normal(scale, 0.2, 18))])
            write_run(tmp_path / "power" / m / f"seed-{k}", list(foms), 20, m, k)
    write_run(tmp_path / "power" / "cma" / "seed-3", [120.0], 20, "cma", 3, complete=False)
    (s,) = load_comparison(tmp_path)
    assert [m.method for m in s.methods] == ["zoaf", "cma"] and s.incomplete == 1
    md, html = write_report(tmp_path, argv=["zoaf", "report", str(tmp_path)])
    text = html.read_text()
    assert text.count("data:image/png;base64,") == 3 and "<table>" in text
    assert "| zoaf |" in md.read_text() and "zoaf report" in md.read_text()
    assert {p.name for p in tmp_path.glob("*.png")} == {"power-vs-simulations.png", "power-vs-seconds.png",
                                                        "power-final.png"}


@pytest.mark.parametrize("content", ['{"stop_reason": "bud', "", "[1, 2]", None])      # None: a folder
def test_a_cut_or_foreign_result_json_is_named(tmp_path, content):
    """Beside a history.db, a result.json that is no JSON object was taken for an unfinished run: the report went on
    without the run, and `zoaf compare` reran it. Its error, once raised, was blamed on history.db."""
    for k in range(2):
        write_run(tmp_path / "power" / "zoaf" / f"seed-{k}", [3.0, 2.0], 2, "zoaf", k)
    bad = tmp_path / "power" / "zoaf" / "seed-1" / "result.json"
    if content is None:
        bad.unlink()
        bad.mkdir()
    else:
        bad.write_text(content)
    with pytest.raises(InputError, match=f"^{re.escape(str(bad))}: (not JSON|not a JSON object|not a regular file)"):
        write_report(tmp_path, argv=["zoaf", "report", str(tmp_path)])
    assert not (tmp_path / "report.md").exists()


def test_suite_summary_ranks_every_method(tmp_path):
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(
        "compare_all", Path(__file__).resolve().parents[1] / "benchmarks" / "compare_all.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    circ = tmp_path / "amp"
    for m, finals in (("zoaf", [0.3, 0.4, 0.5]), ("cma", [0.1, 0.2, 0.9]), ("de", [0.6, 0.7, 0.8])):
        for k, f in enumerate(finals):
            write_run(circ / "power" / m / f"seed-{k}", [110.0, f + 1, f], 20, m, k)
    (circ / "compare.json").write_text(json.dumps({"methods": ["zoaf", "cma", "de"]}))
    lines = mod.summary_lines(tmp_path, ["amp"])
    text = "\n".join(lines)
    head = next(l for l in lines if l.startswith("| amp | power"))
    # cma's median 0.2 beats zoaf's 0.4 -> zoaf rank 2; zoaf has the best worst case (0.5)
    assert "| amp | power | 20 | 3 | 2 | 0.4 | cma | 0.2 | 0.5 | 0.5 (zoaf) |" in head
    ranked = [l for l in lines if l.startswith("| 1 ") or l.startswith("| 2 ") or l.startswith("| 3 ")]
    assert [l.split(" | ")[1] for l in ranked] == ["cma", "zoaf", "de"]
    assert "### amp / power" in text and "p (Holm)" in text


def test_suite_summary_ranks_methods_on_the_same_seeds(tmp_path):
    """A partly run suite: the reference one seed ahead, an expensive method at one seed. Everyone is ranked on
    the seeds most methods completed; the short method is listed apart, never ranked on its lucky seed."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(
        "compare_all", Path(__file__).resolve().parents[1] / "benchmarks" / "compare_all.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    circ = tmp_path / "amp"
    finals = {"zoaf": [0.3, 0.4, 0.5, 9.0], "cma": [0.6, 0.7, 0.8], "de": [0.2, 0.9, 0.9], "bo": [0.01]}
    for m, fs in finals.items():
        for k, f in enumerate(fs):
            write_run(circ / "power" / m / f"seed-{k}", [110.0, f + 1, f], 20, m, k)
    write_run(circ / "power" / "de" / "seed-3", [110.0], 20, "de", 3, complete=False)   # interrupted
    (circ / "compare.json").write_text(json.dumps({"methods": ["zoaf", "cma", "de", "bo"]}))
    lines = mod.summary_lines(tmp_path, ["amp"])
    head = next(l for l in lines if l.startswith("| amp | power"))
    # seeds 0..2 for all three: zoaf's median 0.4 (not 0.45 with its 4th seed), best; bo (1 seed) left out
    assert "| amp | power | 20 | 3 | 1 | 0.4 | cma | 0.7 |" in head
    assert "Not ranked (fewer seeds): bo (1 of 3)" in lines
    ranked = [l.split(" | ")[1] for l in lines if l[:4] in ("| 1 ", "| 2 ", "| 3 ")]
    assert ranked == ["zoaf", "cma", "de"]
    assert not any(l.startswith(("Every method on seeds", "## Ranks on seeds")) for l in lines)   # bo: < SHORT_SEEDS


def test_suite_summary_ranks_a_method_run_at_fewer_seeds_on_those_seeds(tmp_path, monkeypatch):
    """The issue's "run BO at 10 seeds and say so": once the short method has SHORT_SEEDS seeds, every method is
    also ranked on seeds 0..SHORT_SEEDS-1, with it, in a table of its own and a rank matrix of its own."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(
        "compare_all", Path(__file__).resolve().parents[1] / "benchmarks" / "compare_all.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    monkeypatch.setattr(mod, "SHORT_SEEDS", 2)
    circ = tmp_path / "amp"
    finals = {"zoaf": [0.3, 0.4, 0.1, 0.1], "cma": [0.6, 0.7, 0.8, 0.8], "bo": [0.2, 0.35]}
    for m, fs in finals.items():
        for k, f in enumerate(fs):
            write_run(circ / "power" / m / f"seed-{k}", [110.0, f + 1, f], 20, m, k)
    (circ / "compare.json").write_text(json.dumps({"methods": ["zoaf", "cma", "bo"]}))
    lines = mod.summary_lines(tmp_path, ["amp"])
    assert "Not ranked (fewer seeds): bo (2 of 4)" in lines
    at = lines.index("Every method on seeds 0..1, those at fewer seeds included:")
    table = [l.split(" | ") for l in lines[at + 4:at + 7]]
    # seeds 0-1: bo's median 0.275 beats zoaf's 0.35 (over four seeds zoaf's is 0.2)
    assert [(r[0], r[1], r[2]) for r in table] == [("| 1", "bo", "2"), ("| 2", "zoaf", "2"), ("| 3", "cma", "2")]
    assert any(l.startswith("## Ranks on seeds 0..1, the methods run at fewer seeds included") for l in lines)
    assert "| bo | 1 | 1 | 1 | 1 | 1 |" in lines


def test_a_comparison_where_every_simulation_failed_is_reported(tmp_path: Path) -> None:
    """No finite FoM in any run: the plot against seconds autoscaled its log axis to 0 and the report ended in a
    traceback (matplotlib: "Data cannot be log-scaled because all values are <= 0")."""
    from test_show import always_failing_rc

    from zoaf.compare import compare

    root = compare(always_failing_rc(tmp_path), methods=["zoaf", "random"], seeds=1, budget=3, out=tmp_path / "cmp",
                   jobs=1)
    assert (root / "report.md").is_file() and (root / "bw-vs-seconds.png").stat().st_size > 0


@pytest.mark.parametrize("content, says", [('{"rows": [[1, 2', "not JSON"), ("[1, 2]", "not a JSON object"),
                                           ('{"rows": 5}', "not what zoaf writes (TypeError")])
def test_a_cut_or_foreign_trace_json_is_named_and_the_report_goes_on(tmp_path, content, says):
    """Without history.db, a trace.json that is not what zoaf writes was read as a run without a curve, without a
    word. The report goes on from result.json (a run recorded before traces were kept has none, and no warning)
    and names the file in one line on stderr, zoaf's ``warning: FILE: ...`` (it was Python's ``FILE:0: UserWarning:
    ...``)."""
    import subprocess
    import sys

    for k in range(2):
        seed = tmp_path / "power" / "zoaf" / f"seed-{k}"
        write_run(seed, [3.0, 2.0 + k], 2, "zoaf", k)
        (seed / "trace.json").write_text(json.dumps(load_run(seed).trace()))
        (seed / "history.db").unlink()
    bad = tmp_path / "power" / "zoaf" / "seed-1" / "trace.json"
    bad.write_text(content)
    with pytest.warns(UserWarning, match=f"^{re.escape(says)}.*reported by its end in result.json") as caught:
        load_comparison(tmp_path)
        assert load_run(bad.parent).trajectory is False and load_run(tmp_path / "power/zoaf/seed-0").trajectory
    assert {w.filename for w in caught} == {str(bad)}
    r = subprocess.run([sys.executable, "-m", "zoaf", "report", str(tmp_path), "-q"], capture_output=True, text=True)
    assert r.returncode == 0 and (tmp_path / "report.md").exists()
    assert len(r.stderr.splitlines()) == 1 and r.stderr.startswith(f"warning: {bad}: {says}"), r.stderr


def test_an_unfinished_run_with_an_unreadable_history_is_left_out_with_a_warning(tmp_path):
    """An empty history.db of a run killed as it started (no result.json) refused the whole comparison ("not a zoaf
    run history"): the report goes on without it, counts it incomplete and names the file in one warning."""
    for k in range(2):
        write_run(tmp_path / "power" / "zoaf" / f"seed-{k}", [3.0, 2.0 + k], 2, "zoaf", k)
    bad = tmp_path / "power" / "zoaf" / "seed-2" / "history.db"
    bad.parent.mkdir()
    bad.write_bytes(b"")
    with pytest.warns(UserWarning, match="not a zoaf run history.*an unfinished run, left out") as caught:
        (s,) = load_comparison(tmp_path)
    assert {w.filename for w in caught} == {str(bad)}
    assert s.incomplete == 1 and [m.runs for m in s.methods] == [2]
    (bad.parent / "result.json").write_text(json.dumps({"stop_reason": "budget"}))   # a finished run: still refused
    with pytest.raises(InputError, match=f"^{re.escape(str(bad))}: not a zoaf run history"):
        load_comparison(tmp_path)


def test_runs_of_other_budgets_in_one_comparison_are_refused(tmp_path):
    """Runs of budgets 2 and 5 were ranked against each other under "Budget 5 simulations" (``zoaf compare`` refuses
    to make such a directory; one assembled by hand, or a run moved in, was reported)."""
    write_run(tmp_path / "power" / "zoaf" / "seed-0", [3.0, 2.0], 2, "zoaf", 0)
    write_run(tmp_path / "power" / "zoaf" / "seed-1", [3.0, 2.0, 1.0, 0.5, 0.2], 5, "zoaf", 1)
    odd = tmp_path / "power" / "zoaf" / "seed-1"
    with pytest.raises(InputError, match=f"^{re.escape(str(odd))}: a run of budget 5, where "
                                         f"{re.escape(str(odd.parent / 'seed-0'))} has 2: a comparison ranks"):
        load_comparison(tmp_path)


def test_runs_that_only_failed_have_no_target_and_never_reach_one():
    """Every simulation of every run failed (FoM +inf): the target was +inf and `best <= target` held at the first
    failed simulation, so the report said each method reached it in 1 simulation."""
    runs = {m: [run([math.inf] * 3, method=m, seed=s, budget=3) for s in range(2)] for m in ("zoaf", "cma")}
    s = summarize("obj", runs)
    assert math.isnan(s.target)
    assert all(m.sims_to_target == math.inf and m.seconds_to_target == math.inf for m in s.methods)
    assert {r[0]: r[8] for r in table_rows(s)} == {"zoaf": ">3", "cma": ">3"}


def _sphere(x):
    return float(np.sum((np.asarray(x) - 0.3) ** 2))


def test_history_rows_after_the_recorded_end_are_no_part_of_the_run(tmp_path):
    """A resume that stopped sooner (a target, a callback) leaves the rows it did not replay in history.db: a report
    counted them as the run's, a final FoM better than result.json's and simulations past its budget."""
    import sqlite3

    import zoaf
    from zoaf.errors import ZoafWarning
    from zoaf.function import FunctionProblem

    out = tmp_path / "run"
    res = zoaf.optimize(FunctionProblem.from_bounds(_sphere, [(0, 1)] * 2), budget=4, method="random", seed=0, out=out)
    with sqlite3.connect(out / "history.db") as db:     # two rows after the end, far better than any of the run's
        db.execute("INSERT INTO evals SELECT idx + 2, u, params, measures, fom - 10, objective, feasible, status, "
                   "error, seconds, phase, charged, wall + 1, objective_fom, constraints FROM evals WHERE idx >= 2")
    with pytest.warns(ZoafWarning, match=r"2 row\(s\) after the run's end \(its result\.json: 4 sizings\)"):
        r = load_run(out)
    assert r.final == res.fun and r.nfev == 4

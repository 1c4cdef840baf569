"""Monte Carlo yield: the Wilson interval by hand, Cpk, a marginal design's yield strictly between 0 and 1,
the same samples for the same seed (whatever the workers), and a resumed yield run simulating only new samples."""
from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
from ngspice_marks import needs_ngspice
from typer.testing import CliRunner

from zoaf.circuit import CircuitProblem
from zoaf.cli import app
from zoaf.signoff.mc import Limits, draws, measure_stats, wilson
from zoaf.signoff.yieldrun import run_yield

ROOT = Path(__file__).parent.parent
AMP = ROOT / "netlists" / "two_stage_amp.cir"


def test_wilson_by_hand() -> None:
    # 18 of 20: p = 0.9, z = 1.96: centre (0.9 + 1.96^2/40) / (1 + 1.96^2/20) = 0.8557..., half-width 0.1468...
    z = 1.959963984540054
    p, n = 0.9, 20
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    lo, hi = wilson(18, 20)
    assert (lo, hi) == pytest.approx((centre - half, centre + half), abs=1e-12)
    assert (lo, hi) == pytest.approx((0.6990, 0.9721), abs=1e-4)      # the textbook value
    assert wilson(0, 20)[0] == 0.0 and wilson(0, 20)[1] == pytest.approx(0.1611, abs=1e-4)
    assert wilson(20, 20)[1] == 1.0 and wilson(20, 20)[0] == pytest.approx(0.8389, abs=1e-4)


def test_cpk_and_draws() -> None:
    st = measure_stats("gain", [59.0, 60.0, 61.0, 62.0, 63.0], Limits(lsl=58.0, usl=70.0))
    sigma = math.sqrt(2.5)
    assert st.sigma == pytest.approx(sigma) and st.cpk == pytest.approx((61 - 58) / (3 * sigma))
    assert draws(4, 7, ["a", "b"]) == draws(4, 7, ["a", "b"]) != draws(4, 8, ["a", "b"])


def _marginal_spec(tmp_path: Path) -> Path:
    """The amplifier judged on a phase margin bound at about its nominal value: a marginal design."""
    text = AMP.with_suffix(".toml").read_text().replace(
        'gain    = {', 'marginal = { maximize = "gain_db", constraints = ["pm_deg >= 43.1"] }\ngain    = {')
    (tmp_path / "models").mkdir(exist_ok=True)
    shutil.copy(ROOT / "netlists/models/generic_corners.lib", tmp_path / "models")
    spec = tmp_path / "amp.toml"
    spec.write_text(text)
    return spec


@needs_ngspice
def test_marginal_yield_is_between_0_and_1_and_deterministic(tmp_path: Path) -> None:
    problem = CircuitProblem(AMP, _marginal_spec(tmp_path), objective="marginal")
    sizing = problem.default_params()
    a = run_yield(problem, sizing, tmp_path / "a", samples=40, seed=7, workers=2)
    b = run_yield(problem, sizing, tmp_path / "b", samples=40, seed=7, workers=1)
    s = a.summary
    assert 0 < s.passed < 40 and s.failed_sims == 0
    assert s.ci == pytest.approx(wilson(s.passed, 40)) and s.ci[0] < s.yield_ < s.ci[1]
    assert [r.outcome.measures for r in a.records] == [r.outcome.measures for r in b.records]
    pm = next(st for st in s.stats if st.name == "pm_deg")
    assert pm.sigma > 0.1 and pm.cpk == pytest.approx((pm.mean - 43.1) / (3 * pm.sigma))
    c = run_yield(problem, sizing, tmp_path / "c", samples=40, seed=8, workers=2)
    assert [r.outcome.measures for r in c.records] != [r.outcome.measures for r in a.records]
    assert {p.name for p in (tmp_path / "a").glob("hist_*.png")} == {"hist_gain_db.png", "hist_pm_deg.png"}


@needs_ngspice
def test_yield_resumes_and_cli(tmp_path: Path) -> None:
    spec = _marginal_spec(tmp_path)
    args = ["yield", str(AMP), "--spec", str(spec), "-o", "marginal", "--seed", "3", "--workers", "2",
            "--out", str(tmp_path / "y"), "--json"]
    first = CliRunner().invoke(app, args + ["--samples", "12"])
    assert first.exit_code == 0, first.output
    more = CliRunner().invoke(app, args + ["--samples", "20"])
    got = json.loads(more.stdout)
    problem = CircuitProblem(AMP, spec, objective="marginal")
    again = run_yield(problem, problem.default_params(), tmp_path / "fresh", samples=20, seed=3, workers=2)
    assert got["passed"] == again.summary.passed and got["samples"] == 20
    from zoaf.history import History
    with History(tmp_path / "y" / "history.db") as h:
        recs = h.records()
    assert len(recs) == 20 and all(r.seconds > 0 for r in (x.outcome for x in recs))   # 12 replayed, 8 new
    bad = CliRunner().invoke(app, ["yield", str(AMP), "--corner", "nope", "--samples", "2"])
    assert bad.exit_code == 2 and "unknown corner(s) nope" in bad.stderr


def test_design_variable_in_montecarlo_normal_is_refused(tmp_path: Path) -> None:
    # A drawn design variable would be simulated at a N(0, 1) value (w1 = 0.13 m): one line, exit 2, as a
    # corner that overrides a design variable is.
    spec = _marginal_spec(tmp_path)
    spec.write_text(spec.read_text().replace('normal = ["mc_gn"', 'normal = ["w1", "mc_gn"'))
    bad = CliRunner().invoke(app, ["yield", str(AMP), "--spec", str(spec), "-o", "marginal", "--samples", "2",
                                   "--out", str(tmp_path / "y")])
    assert bad.exit_code == 2, bad.output
    assert "montecarlo.normal: 'w1' is a design variable" in bad.stderr
    assert not (tmp_path / "y" / "history.db").exists()


def test_corner_help_names_the_table() -> None:
    # rich reads "[corners]" as markup and drops it ("A corner of the spec's ."): escaped in the help text
    out = CliRunner().invoke(app, ["yield", "--help"], env={"COLUMNS": "200"}).output
    assert "spec's [corners] table" in out


def test_a_measure_the_draws_do_not_move_has_no_spread_and_yield_json_is_plain_json() -> None:
    # A 5T OTA's power (vsup * ibias, fixed) came back from 50 samples with sigma 0.0 at one corner (Cpk inf)
    # and 3.4e-21 W at another (Cpk 3.12e+15); yield.json then held the bare word Infinity, which jq and
    # JavaScript refuse, and a 0/50 yield's lower Wilson bound was 6.9e-18 instead of 0.
    from zoaf.signoff.mc import summarize, verdict
    from zoaf.spec import Constraint

    noisy = [1.19e-6 * (1 + 1e-16 * i) for i in range(6)] + [1.19e-6 + 2e-22]
    st = measure_stats("power_w", noisy, Limits(usl=2e-6))
    assert st.sigma == 0.0 and st.cpk == math.inf
    assert wilson(0, 50)[0] == 0.0 and wilson(0, 7)[0] == 0.0 and wilson(7, 7)[1] == 1.0
    measures = [{"power_w": v} for v in noisy]
    limit = [Constraint("power_w", "<=", 2e-6)]
    s = summarize([verdict(i, True, m, ["power_w", "gain_db"], limit) for i, m in enumerate(measures)], measures,
                  ["power_w", "gain_db"], limit)
    text = json.dumps(s.as_json())
    assert "Infinity" not in text and "NaN" not in text
    back = json.loads(text)
    assert back["measures"]["power_w"]["cpk"] is None and back["measures"]["gain_db"]["mean"] is None
    assert back["ci95"][0] == 0.0


DIVIDER = Path(__file__).parent / "signoff_decks" / "mc_divider.cir"


@needs_ngspice
def test_samples_lacking_a_measure_are_counted_apart_and_named(tmp_path: Path) -> None:
    """The divider's supply is drawn per sample (1 + 0.2 z): below 0.8 V its output never reaches 0.4 V and the
    sample has no vhalf. Such samples counted as plain fails, the summary said "0 failed simulations", and
    vhalf's mean, sigma and Cpk silently left out exactly its worst samples. Now they are counted apart, the
    first one's reason named, each constraint's misses counted, each failing sample listed with what it
    misses; every count is checked against the closed form (vmax = vsup / 2, vhalf = 0.8 / vsup)."""
    args = ["yield", str(DIVIDER), "--samples", "40", "--seed", "1", "--workers", "2", "--out", str(tmp_path / "y")]
    res = CliRunner().invoke(app, args + ["--json"])
    assert res.exit_code == 0, res.output
    got = json.loads(res.stdout)
    vsup = [1 + 0.2 * draws(1, i, ["mc_s"])["mc_s"] for i in range(40)]
    lacking = [i for i, v in enumerate(vsup) if v < 0.8]
    passing = [i for i, v in enumerate(vsup) if v >= 0.8 and 0.8 / v <= 0.9 and v / 2 >= 0.45]
    assert len(lacking) >= 2
    assert (got["passed"], got["incomplete_samples"], got["failed_simulations"]) == (len(passing), len(lacking), 0)
    assert got["spec_failures"] == 40 - len(passing) - len(lacking)
    first = got["first_incomplete"]
    assert first["sample"] == lacking[0] and first["missing"] == ["vhalf"] and ".meas vhalf" in first["error"]
    assert got["constraints"]["vhalf <= 900m"]["unmeasured"] == len(lacking)
    assert got["constraints"]["vmax >= 450m"]["missed"] == sum(v / 2 < 0.45 for v in vsup)
    assert [f["sample"] for f in got["failing_samples"]] == [i for i in range(40) if i not in passing]
    assert got["measures"]["vhalf"]["n"] == 40 - len(lacking)
    text = CliRunner().invoke(app, args, env={"COLUMNS": "200"}).stdout          # replayed
    assert f"{len(lacking)} simulated without a measure the spec needs" in text
    assert f"first lacking a measure: sample {lacking[0]} (vhalf): MeasureError" in text
    assert "samples at the nominal deck" in text
    report = (tmp_path / "y" / "report.md").read_text()
    assert f"{len(lacking)} simulated without a measure" in report and f"| vhalf | {40 - len(lacking)} |" in report


def test_a_param_drawn_twice_is_refused(tmp_path: Path) -> None:
    """``normal = ["mc_s", "MC_S"]``: the second draw replaced the first and the table said 2 .params varied."""
    for suffix in (".cir", ".toml"):
        shutil.copy(DIVIDER.with_suffix(suffix), tmp_path / DIVIDER.with_suffix(suffix).name)
    spec = tmp_path / "mc_divider.toml"
    spec.write_text(spec.read_text().replace('normal = ["mc_s"]', 'normal = ["mc_s", "MC_S"]'))
    res = CliRunner().invoke(app, ["yield", str(tmp_path / "mc_divider.cir"), "--samples", "2",
                                   "--out", str(tmp_path / "y")])
    assert res.exit_code == 2 and "mc_divider.toml: montecarlo.normal: 'mc_s' is named twice" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and not (tmp_path / "y").exists()


def test_a_dollar_in_a_spec_unit_or_name_is_drawn_as_text(tmp_path) -> None:
    """matplotlib reads ``$...$`` as mathtext: a spec unit ``$\\foo{$`` ended ``zoaf yield`` and ``zoaf sensitivity``
    with a ValueError traceback while their figures were saved."""
    import numpy

    from zoaf.signoff.mc import Limits, MeasureStats
    from zoaf.signoff.plots import plot_heatmap, plot_histogram

    st = MeasureStats(name="gain$", n=3, mean=1.0, sigma=0.1, limits=Limits(lsl=0.5, usl=None), cpk=1.7)
    plot_histogram([0.9, 1.0, 1.1], st, "$\\foo{$", tmp_path / "h.png")
    plot_heatmap(numpy.eye(2), ["$\\a{$", "b"], ["$x", "y$\\"], tmp_path / "s.png", "$\\foo{$")
    assert (tmp_path / "h.png").stat().st_size > 0 and (tmp_path / "s.png").stat().st_size > 0


@needs_ngspice
def test_a_named_corner_of_a_cross_product_corners_conditions_shares_its_samples(tmp_path: Path) -> None:
    """`[corners.hot] temp = 85` beside `temp = [27, 85]`: `yield --corner hot` and `--corner 85c` simulated the
    same samples twice (and a directory of one was refused to the other as "another run"): both are 85c's."""
    corpus = ROOT / "tests" / "bad_inputs"
    spec = tmp_path / "mc.toml"
    spec.write_text((corpus / "mc.toml").read_text() + "[corners]\ntemp = [27, 85]\n[corners.hot]\ntemp = 85\n")
    problem = CircuitProblem(corpus / "mc.cir", spec)
    hot, c85 = (problem.spec.corners.select([name], "--corner")[0] for name in ("hot", "85c"))
    first = run_yield(problem, problem.default_params(), tmp_path / "y", samples=3, seed=1, corner=hot)
    again = run_yield(problem, problem.default_params(), tmp_path / "y", samples=3, seed=1, corner=c85)
    assert (first.corner, again.corner) == ("hot", "85c")       # named as asked, as sensitivity names it
    assert [r.outcome.measures for r in again.records] == [r.outcome.measures for r in first.records]
    assert [r.outcome.seconds for r in again.records] == [r.outcome.seconds for r in first.records]   # replayed

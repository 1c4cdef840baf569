"""The spec's arithmetic at the ends of the float range, and its error lines for names thousands of characters long:
a violation or FoM past the range was +-inf (a maximized measure of 1e300 the best design ever, a method's model of
a constraint inf or nan), and a 5,000-character key was echoed whole, twice, in the one error line."""
from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from zoaf import units
from zoaf.circuit import CircuitProblem
from zoaf.cli import app
from zoaf.problem import INFEASIBLE_OFFSET, MISSING_VIOLATION, squash
from zoaf.spec import MAX_CONSTRAINT, Constraint, Objective

CORPUS = Path(__file__).parent / "bad_inputs"
#: Values as ngspice prints them (``.meas tran big param='-1.797e308'`` prints -1.79700e+308).
HUGE, LARGE = 1.797e308, 1e300
#: A deck whose .meas cards give both (measured by ngspice, in a session).
EXTREME = """extreme measures
V1 in 0 dc 1
R1 in out {r1}
R2 out 0 1k
.param r1=1k
.tran 1u 10u
.meas tran big param='-1.797e308'
.meas tran large param='1e300'
.end
"""
EXTREME_SPEC = """[parameters]
r1 = { lo = "100", hi = "100k", scale = "log" }
[measures]
big = {}
large = {}
[objectives]
far = { maximize = "large", constraints = ["big >= 1e308", "large <= 1e-30", "large >= -1e-30"], scale = 1e-30 }
"""


def test_a_difference_past_the_float_range_is_taken_bound_by_bound() -> None:
    # 1e308 - (-1.797e308) overflowed to inf: the miss is 2.797 bounds, as it is
    assert Constraint("big", ">=", 1e308).value(-HUGE) == pytest.approx(2.797, rel=1e-12)
    assert Constraint("big", "<=", -1e308).value(HUGE) == pytest.approx(2.797, rel=1e-12)
    assert Constraint("big", "<=", 1e308).value(-HUGE) == pytest.approx(-2.797, rel=1e-12)     # met, as far


def test_a_quotient_past_the_cap_is_the_cap_of_its_sign_and_order_is_kept() -> None:
    tiny = Constraint("large", "<=", 1e-30)
    assert tiny.value(LARGE) == MAX_CONSTRAINT and tiny.value(-LARGE) == -MAX_CONSTRAINT
    assert Constraint("big", ">=", 0).value(-HUGE) == MAX_CONSTRAINT                  # normalized by 1
    misses = [tiny.value(v) for v in (1e-30, 1e-20, 1.0, 1e100, 1e200, LARGE, HUGE)]
    assert all(math.isfinite(v) for v in misses) and misses == sorted(misses) and misses[0] == 0
    assert math.isfinite(MAX_CONSTRAINT ** 2 * 1000)          # what a model squares and sums stays finite
    assert Constraint("g", ">=", 60).value(30) == 0.5         # an ordinary miss exactly as before


def test_the_objective_of_a_measure_past_the_float_range_over_its_scale_is_finite_and_ordered() -> None:
    # squash(1e300, 1e-30) was inf: maximized, the FoM -inf, ahead of every design
    obj = Objective("far", "large", "maximize", (Constraint("big", "<=", 0),), scale=1e-30)
    scores = [obj.evaluate({"large": v, "big": -1.0}) for v in (1e200, LARGE, HUGE)]
    assert all(s.feasible and math.isfinite(s.fom) and math.isfinite(s.objective_fom) for s in scores)
    assert scores[0].fom > scores[1].fom > scores[2].fom
    assert squash(LARGE, 1e-30) == pytest.approx(330 * math.log(10), rel=1e-12)
    assert squash(-HUGE, 1e-30) == -squash(HUGE, 1e-30) and squash(math.inf) == math.inf
    assert squash(1e278, 1e-30) == math.log1p(1e278 / 1e-30)                          # in range: as before


def test_extreme_measures_ngspice_prints_give_finite_constraint_values(tmp_path: Path) -> None:
    (tmp_path / "ext.cir").write_text(EXTREME)
    (tmp_path / "ext.toml").write_text(EXTREME_SPEC)
    p = CircuitProblem(tmp_path / "ext.cir", objective="far")
    o = p.simulate(np.array([p.default_params()[n] for n in p.names]))
    p.close()
    assert o.measures == {"big": -HUGE, "large": LARGE}
    assert o.constraints == pytest.approx((2.797, MAX_CONSTRAINT, -MAX_CONSTRAINT), rel=1e-12)
    assert o.fom == pytest.approx(INFEASIBLE_OFFSET + 2.797 + MISSING_VIOLATION, rel=1e-12)
    assert math.isfinite(o.objective_fom)


def _check(tmp_path: Path, spec: str) -> str:
    """The one error line of ``zoaf check`` of good.cir under ``spec``, its folder written as ``DIR``."""
    shutil.copy(CORPUS / "good.cir", tmp_path / "good.cir")
    (tmp_path / "good.toml").write_text(spec)
    r = CliRunner().invoke(app, ["check", str(tmp_path / "good.cir")])
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.exit_code == 2 and len(lines) == 1, r.output
    return lines[0].replace(f"{tmp_path}/", "DIR/")


KEY = "m" * 5000


@pytest.mark.parametrize("edit, says", [
    (lambda s: s.replace('gain_lf = { unit = "dB" }', f'gain_lf = {{ unit = "dB" }}\n{KEY} = {{}}'),
     "measures.mmmmmmmmmmmmmmmmmmmmmmmmmmmmmm... (5000 characters): DIR/good.cir has no .meas (or .control meas/let) "
     "named 'mmmmmmmmmmmmmmmmmmmmmmmmmmmmm... (5002 characters); it has: f3db, gain_lf"),
    (lambda s: s.replace("[measures]", f"{KEY} = {{ lo = 1, hi = 2 }}\n[measures]"),
     "parameters.mmmmmmmmmmmmmmmmmmmmmmmmmmmmmm... (5000 characters): no '.param "
     "mmmmmmmmmmmmmmmmmmmmmmmmmmmmmm... (5000 characters)=' in "),
    (lambda s: s.replace("[measures]", f"{KEY} = {{ lo = 3, hi = 2 }}\n[measures]"),
     "parameters.mmmmmmmmmmmmmmmmmmmmmmmmmmmmmm... (5000 characters).lo: must be < hi"),
    (lambda s: s.replace("bw = {", f'{KEY} = {{ maximize = "f3db", {KEY} = 1 }}\nbw = {{'),
     "objectives.mmmmmmmmmmmmmmmmmmmmmmmmmmmmmm... (5000 characters): unknown key "
     "'mmmmmmmmmmmmmmmmmmmmmmmmmmmmm... (5002 characters); expected one of"),
    (lambda s: s.replace("bw = {", f'{KEY.upper()} = {{ maximize = "f3db" }}\n{KEY} = {{ maximize = "f3db" }}\n'
                         'bw = {'),
     "objectives.mmmmmmmmmmmmmmmmmmmmmmmmmmmmmm... (5000 characters): the same name as "
     "objectives.MMMMMMMMMMMMMMMMMMMMMMMMMMMMMM... (5000 characters)"),
])
def test_a_name_thousands_of_characters_long_is_clipped_in_the_error_line(tmp_path: Path, edit, says: str) -> None:
    line = _check(tmp_path, edit((CORPUS / "good.toml").read_text()))
    assert says in line and len(line) < 250, line


def test_clip_keeps_a_short_name_and_says_how_long_a_long_one_is() -> None:
    assert units.clip("w1") == "w1" and units.clip("x" * units.MAX_ECHO) == "x" * units.MAX_ECHO
    assert units.clip("x" * 5000) == "x" * (units.MAX_ECHO - 10) + "... (5000 characters)"
    assert units.echo("x" * 5000) == "'" + "x" * (units.MAX_ECHO - 11) + "... (5002 characters)"

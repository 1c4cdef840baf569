"""Monte Carlo with a PDK's own statistical models (sky130's ``mc`` section and mismatch switch): ngspice draws
them while it parses the deck, and zoaf seeds each sample, so sample i of seed s gives the same measures in any
process and any order; two samples differ; each device instance draws its own mismatch. Bad input: one line."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from ngspice_marks import NEEDS_NGSPICE
from typer.testing import CliRunner

from zoaf.circuit import CircuitProblem
from zoaf.cli import app
from zoaf.errors import InputError
from zoaf.evaluate import Evaluator
from zoaf.signoff.corners import Corner
from zoaf.signoff.mc import MonteCarlo, ngspice_seed, parse_montecarlo
from zoaf.signoff.yieldrun import McSims, run_yield

pytestmark = NEEDS_NGSPICE
ROOT = Path(__file__).parent.parent
PAIR = ROOT / "tests" / "netlists" / "sky130_pair.cir"
AMP = ROOT / "netlists" / "two_stage_amp.cir"


@pytest.fixture(scope="module")
def pair() -> CircuitProblem:
    from zoaf.pdk import find_sky130_lib

    find_sky130_lib()               # the sky130 extra is part of the test set-up: fail, not skip, without it
    problem = CircuitProblem(PAIR, objective="matched")
    yield problem
    problem.close()


def _measures(records) -> list[dict[str, float]]:
    return [r.outcome.measures for r in records]


def test_spec_syntax_and_seeds() -> None:
    mc = parse_montecarlo("a.toml", {"section": "MC", "params": {"MC_MM_SWITCH": 1}})
    assert mc == MonteCarlo((), "mc", (("mc_mm_switch", 1.0),))
    for table, says in [({}, "names nothing to vary"),
                        ({"section": 3}, "montecarlo.section: must be a PDK library section name"),
                        ({"section": "mc; x"}, "montecarlo.section: must be"),
                        ({"normal": ["a"], "params": {"x": 1}}, "montecarlo.params: set with a PDK statistical"),
                        ({"section": "mc", "params": {"x": "hot"}}, "montecarlo.params.x"),
                        ({"section": "mc", "sigma": 3}, "unknown key(s) sigma")]:
        with pytest.raises(InputError, match=None) as e:
            parse_montecarlo("a.toml", table)
        assert says in str(e.value) and str(e.value).startswith("a.toml: montecarlo")
    seeds = {ngspice_seed(s, i) for s in range(3) for i in range(200)}
    assert len(seeds) == 600 and min(seeds) >= 1 and max(seeds) <= 2**31 - 1
    assert ngspice_seed(4, 7) == ngspice_seed(4, 7)


def test_samples_are_seeded_per_sample_whatever_the_process_and_order(pair: CircuitProblem, tmp_path: Path) -> None:
    sims = McSims(pair, pair.default_params(), seed=5)
    here = [sims.simulate(np.array([float(i)])) for i in (0, 1, 2, 3, 0)]      # one process, a parse between
    assert here[0].measures == here[4].measures
    assert len({o.measures["id1"] for o in here[:4]}) == 4                        # four samples, four draws
    with Evaluator(sims, workers=2) as ev:                                       # two workers, reversed order
        reversed_ = ev.evaluate(np.arange(4.0)[::-1, None], "mc")
    assert _measures(reversed_)[::-1] == [o.measures for o in here[:4]]
    other_seed = McSims(pair, pair.default_params(), seed=6).simulate(np.array([0.0]))
    assert other_seed.measures["id1"] != here[0].measures["id1"]
    sims.close()


def test_mismatch_differs_per_device_instance(pair: CircuitProblem, tmp_path: Path) -> None:
    nominal = pair.simulate(np.array([pair.default_params()[n] for n in pair.names]))
    assert nominal.measures["rel_diff"] == 0.0                                  # tt: one model, two equal devices
    y = run_yield(pair, pair.default_params(), tmp_path / "y", samples=12, seed=1, workers=2)
    diffs = np.array([m["rel_diff"] for m in _measures(y.records)])
    assert np.all(diffs != 0.0) and diffs.std() > 0.02                           # sigma ~10% at 2 um x 0.5 um
    assert y.records[0].params["ngspice_seed"] == ngspice_seed(1, 0)
    again = run_yield(pair, pair.default_params(), tmp_path / "again", samples=12, seed=1, workers=1)
    assert _measures(again.records) == _measures(y.records)
    assert 0 < y.summary.passed < 12                                             # +-2% against ~10%


def test_bad_pdk_monte_carlo_input(pair: CircuitProblem, tmp_path: Path) -> None:
    spec = tmp_path / "sky130_pair.toml"
    for old, new, says in [('section = "mc"', 'section = "nosuch"', "'nosuch' is not a section of the sky130"),
                           ("mc_mm_switch = 1", "w = 1", "montecarlo.params: 'w' is a design variable")]:
        spec.write_text(PAIR.with_suffix(".toml").read_text().replace(old, new))
        with pytest.raises(InputError, match=says):
            McSims(CircuitProblem(PAIR, spec, objective="matched"), pair.default_params(), seed=0)
    with pytest.raises(InputError, match="its process 'ss' would replace montecarlo.section 'mc'"):
        McSims(pair, pair.default_params(), seed=0, corner=Corner("ss_27c", "ss", 27.0))
    generic = tmp_path / "amp.toml"
    generic.write_text(AMP.with_suffix(".toml").read_text().split("[montecarlo]")[0]
                       + '[montecarlo]\nsection = "mc"\n')
    (tmp_path / "models").mkdir()
    shutil.copy(ROOT / "netlists/models/generic_corners.lib", tmp_path / "models")
    bad = CliRunner().invoke(app, ["yield", str(AMP), "--spec", str(generic), "--samples", "2",
                                   "--out", str(tmp_path / "y")])
    assert bad.exit_code == 2 and "montecarlo.section: a PDK statistical section needs a PDK netlist" in bad.stderr
    assert "Traceback" not in bad.output

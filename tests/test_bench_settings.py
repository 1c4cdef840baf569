"""The benchmark scripts' settings sweeps: a variant's ``@key=value`` overrides reach the method's configuration,
and the radius sweep's table counts paired wins on the same radius."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np

import zoaf

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def script(name: str):
    sys.path.insert(0, str(BENCH))           # radius_sweep imports its sibling scripts
    try:
        spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        return mod
    finally:
        sys.path.remove(str(BENCH))


def test_variant_overrides_reach_the_configuration():
    ablation = script("ablation")
    assert ablation.method_options("cobyqa@radius_init=0.2") == ("cobyqa", {"radius_init": 0.2})
    method, options = ablation.method_options("local-cobyqa-grace-m3-late-polish-after@alpha0=0.4+h_max=0.2")
    assert method == "zoaf" and options["alpha0"] == 0.4 and options["h_max"] == 0.2
    assert options["local"] == "cobyqa" and options["polish"] == "after-batch"     # the preset's own fields stay
    # the override is the run's setting, and it changes the run: COBYQA's first point is x0 + radius_init e_1
    first = {}
    for radius in (0.1, 0.3):
        res = zoaf.minimize(lambda x: float(np.sum((x - 0.3) ** 2)), [(0.0, 1.0)] * 2, budget=5, seed=0,
                            method="cobyqa", x0=[0.5, 0.5], radius_init=radius)
        first[radius] = res.history[1].u
    assert np.allclose(np.abs(first[0.1] - 0.5), [0.1, 0.0]) and np.allclose(np.abs(first[0.3] - 0.5), [0.3, 0.0])


def test_radius_sweep_counts_paired_wins():
    sweep = script("radius_sweep")
    rows = []
    for k, r in enumerate(sweep.RADII):      # zoaf-cobyqa better on the first three radii, tied on the fourth
        better = -1 if k < 3 else (0 if k == 3 else 1)
        for m, fun in (("cobyqa", 0.0), ("zoaf-cobyqa", 0.1 * better)):
            rows.append({"circuit": "amp", "objective": "gain", "method": m, "radius": r, "fun": fun,
                         "feasible": 80.0 - fun})
    line = sweep.table(rows, {"amp": [("gain", "dB", "maximize")]})[-1]
    assert line.endswith("| 3 of 7 (1 tied) |")
    assert "| 80 dB | 80 dB (80 dB – 80 dB; 7/7 feasible) |" in line


def test_start_jitter_moves_only_the_start_and_keeps_it_in_the_box():
    """Start 0 is the designer's sizing itself; a moved start is that sizing plus the shift, clipped to the box."""
    jitter = script("start_jitter")
    problem = jitter.MovedStart.from_netlist(str(BENCH.parent / "netlists" / "two_stage_amp.cir"), objective="gain")
    x0 = problem.x0_unit()
    assert x0 is not None and np.array_equal(x0, jitter.CircuitProblem.x0_unit(problem))
    problem.shift = np.full(problem.dim, 1e-12)
    problem.shift[0] = 2.0                                  # past the box: clipped, not wrapped
    moved = problem.x0_unit()
    assert moved[0] == 1.0 and np.array_equal(moved[1:], np.clip(x0[1:] + 1e-12, 0.0, 1.0))
    assert np.count_nonzero(moved[1:] != x0[1:]) > 0        # a 1e-12 move survives the double arithmetic

"""How far one run of a deterministic method is from its neighbours: COBYQA from the designer's sizing moved by
a hair (1e-12 of the box by default, far below anything a designer or a simulator resolves).

COBYQA draws no random number, so its 20 headline seeds are one run (``summary.md`` marks it "one value"), and
``benchmarks/radius_sweep.py`` showed how much that run owes to its initial radius. This asks the smaller
question: does the run even repeat when its first point moves by an ulp-sized amount, as it does when the deck's
own text of a value is sent instead of zoaf's double (commit e70ca148's change moved the LNA's COBYQA gain by
1 dB)? Start 0 is the sizing itself; start k > 0 adds ``--sigma`` x N(0, 1) (numpy seed k) to every box
coordinate. Prints, per objective, the value from the sizing, and the median and range over all starts.

Usage:
    python benchmarks/start_jitter.py --objectives lna/gain,lna/nf,lna/area,two_stage_amp/fom,comparator/delay
    python benchmarks/start_jitter.py --objectives ldo/psrr --starts 21 --method zoaf-cobyqa
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

import zoaf
from zoaf.circuit import CircuitProblem
from zoaf.report import format_value

ROOT = Path(__file__).resolve().parents[1]


class MovedStart(CircuitProblem):
    """The circuit with its designer's sizing moved by ``shift`` in the box (clipped to it)."""

    shift: np.ndarray | None = None

    def x0_unit(self) -> np.ndarray | None:
        x0 = super().x0_unit()
        return x0 if x0 is None or self.shift is None else np.clip(x0 + self.shift, 0.0, 1.0)


def one(circuit: str, objective: str, method: str, start: int, sigma: float, budget: int) -> float | None:
    """The best feasible objective of one run from start ``start`` (None: no feasible point)."""
    problem = MovedStart.from_netlist(str(ROOT / "netlists" / f"{circuit}.cir"), objective=objective)
    if start:
        problem.shift = sigma * np.random.default_rng(start).standard_normal(problem.dim)
    res = zoaf.optimize(problem, budget=budget, seed=0, method=method, workers=0)
    feasible = [r.outcome.objective for r in res.history if r.outcome.feasible]
    if not feasible:
        return None
    return max(feasible) if problem.objective.sense == "maximize" else min(feasible)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--objectives", required=True, help="circuit/objective, comma list (netlists/<circuit>.cir)")
    ap.add_argument("--method", default="cobyqa")
    ap.add_argument("--starts", type=int, default=11, help="the sizing itself and starts-1 moved ones")
    ap.add_argument("--sigma", type=float, default=1e-12)
    ap.add_argument("--budget", type=int, default=300)
    ap.add_argument("--jobs", type=int, default=2)
    a = ap.parse_args()
    items = [tuple(item.split("/", 1)) for item in a.objectives.split(",")]
    t0 = time.perf_counter()
    with ProcessPoolExecutor(a.jobs) as pool:
        futures = {(c, o): [pool.submit(one, c, o, a.method, k, a.sigma, a.budget) for k in range(a.starts)]
                   for c, o in items}
        values = {key: [f.result() for f in fs] for key, fs in futures.items()}
    print(f"<!-- python benchmarks/start_jitter.py --objectives {a.objectives} --method {a.method} --starts "
          f"{a.starts} --sigma {a.sigma:g} --budget {a.budget} --jobs {a.jobs}; {time.perf_counter() - t0:.0f} s -->")
    print(f"\n| objective | {a.method} from the sizing | median over {a.starts} starts | range | feasible |")
    print("|---|---|---|---|---|")
    for (circuit, objective), got in values.items():
        problem = CircuitProblem.from_netlist(str(ROOT / "netlists" / f"{circuit}.cir"), objective=objective)
        unit = problem.spec.unit_of(problem.objective.measure)
        ok = [v for v in got if v is not None]

        def show(v: float | None) -> str:
            return "—" if v is None else format_value(v, unit)
        spread = f"{show(min(ok))} – {show(max(ok))}" if ok else "—"
        print(f"| {circuit} / {objective} | {show(got[0])} | {show(statistics.median(ok)) if ok else '—'} | "
              f"{spread} | {len(ok)}/{len(got)} |")

if __name__ == "__main__":
    sys.exit(main())

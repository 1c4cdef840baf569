"""Constraint levels from a random sample, chosen before any optimizer runs; and the floor check.

An objective whose value most random designs already reach (the amplifier's closed-loop peaking is 0 dB for
any design with enough phase margin) ranks nothing: every method "wins". This script draws ``--samples``
uniform random sizings (the ``random`` method of zoaf, so exactly what random search sees) and prints the
failed-simulation rate and the failures' causes; then, per objective (``--objective a,b`` or ``all``: one
sample serves them all):

* percentiles of the objective's measure and of every constrained measure, and the share of samples on the
  objective's floor (within ``--floor-tol`` of the best sampled value: a median on the floor is a bad
  objective);
* for each constraint, the share of samples meeting it and the level only ``--reach`` % of the samples that
  have the measure reach (the ``100 - reach`` percentile of a ``>=`` measure, the ``reach`` percentile of a
  ``<=`` one): the candidate level;
* each constraint moved to sampled percentile levels (the others kept): how many samples meet them all and
  how many of those sit on the floor (a level whose feasible samples sit on the floor ranks nothing there);
* the share of samples meeting all constraints, and the objective's percentiles and floor share among them.

Usage:
    python benchmarks/spec_levels.py netlists/two_stage_amp.cir --objective peaking --samples 2000
    python benchmarks/spec_levels.py netlists/ldo.cir            # every objective of the spec
"""
from __future__ import annotations

import argparse
import shlex
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Callable

import numpy as np

import zoaf
from zoaf import units
from zoaf.circuit import CircuitProblem
from zoaf.problem import Status
from zoaf.report import format_value
from zoaf.spec import Constraint, Objective

PERCENTILES = (1, 5, 25, 50, 75, 95, 99)
#: Percentile levels each constraint is moved to, in the floor table.
LEVEL_PERCENTILES = (50, 75, 90, 95, 97.5, 99)


def sample(problem: CircuitProblem, n: int, seed: int, workers: int
           ) -> tuple[list[dict[str, float] | None], Counter[str]]:
    """Measures of ``n`` uniform random sizings (None where the simulation failed), and the failures' causes
    (first line of each error)."""
    res = zoaf.optimize(problem, budget=n, seed=seed, method="random", workers=workers)
    records = [r for r in res.history if r.charged]
    causes = Counter((r.outcome.error or r.outcome.status.name).splitlines()[0][:160] for r in records
                     if r.outcome.status is not Status.OK)
    return [r.outcome.measures if r.outcome.status is Status.OK else None for r in records], causes


def column(rows: list[dict[str, float]], name: str) -> np.ndarray:
    v = np.array([r.get(name, np.nan) for r in rows], dtype=float)
    return v[np.isfinite(v)]


def best_of(values: np.ndarray, objective: Objective) -> float:
    """The best sampled value: the objective's floor as far as the sample shows."""
    return float(values.min() if objective.sense == "minimize" else values.max())


def floor_share(values: np.ndarray, floor: float, tol: float) -> float:
    """Share of values within ``tol`` of ``floor``."""
    return float(np.mean(np.abs(values - floor) <= tol)) if values.size else float("nan")


def fmt(v: float, unit: str) -> str:
    return format_value(float(v), unit) if np.isfinite(v) else "-"


def percentile_row(name: str, values: np.ndarray, unit: str) -> str:
    cells = [fmt(np.percentile(values, p), unit) if values.size else "-" for p in PERCENTILES]
    return f"| {name} | {values.size} | " + " | ".join(cells) + " |"



def sweep_levels(obj: Objective, ok: list[dict[str, float]], floor: float, tol: float,
                 unit: Callable[[str], str]) -> None:
    """Where the floor goes: each constraint moved to sampled percentile levels (the others as specified), the
    samples that meet them and the share of those on the objective's floor. A level whose feasible samples sit
    on the floor leaves the objective nothing to rank there."""
    print("\n| constraint moved to | samples meeting every constraint | of them on the floor |")
    print("|---|---|---|")
    for c in obj.constraints:
        others = [o for o in obj.constraints if o is not c]
        v = column(ok, c.measure)
        if not v.size:                                 # no sample has the measure: no level to move it to
            print(f"| {c.measure} {c.op} (no sample has it) | - | - |")
            continue
        for p in LEVEL_PERCENTILES:
            level = float(np.percentile(v, p if c.op in (">=", ">") else 100 - p))
            moved = Constraint(c.measure, c.op, level)
            rows = [r for r in ok if all(o.value(r.get(o.measure)) <= 0 for o in (moved, *others))]
            vals = column(rows, obj.measure)
            share = f"{100 * floor_share(vals, floor, tol):.0f}%" if vals.size else "-"
            print(f"| {c.measure} {c.op} {fmt(level, unit(c.measure))} (p{p:g}) | {len(rows)} | {share} |")


def report(problem: CircuitProblem, obj: Objective, rows: list[dict[str, float] | None], reach: float,
           floor_tol: float) -> None:
    """The tables for one objective (see the module docstring)."""
    ok = [r for r in rows if r is not None]
    unit = problem.spec.unit_of
    print(f"### objective {obj.name}\n")
    names = list(dict.fromkeys([obj.measure, *(c.measure for c in obj.constraints)]))
    print("| measure | n | " + " | ".join(f"p{p}" for p in PERCENTILES) + " |")
    print("|---|---|" + "---|" * len(PERCENTILES))
    for name in names:
        print(percentile_row(name, column(ok, name), unit(name)))
    values = column(ok, obj.measure)
    floor = best_of(values, obj) if values.size else float("nan")
    print(f"\nobjective {obj.name}: {obj.sense} {obj.measure}; best sampled value {fmt(floor, unit(obj.measure))}; "
          f"share of samples within {units.format(floor_tol)} of it (on the floor): "
          f"{100 * floor_share(values, floor, floor_tol):.1f}%")
    print(f"\n| constraint | samples meeting it | level reached by {reach:g}% of the samples that have the measure |")
    print("|---|---|---|")
    for c in obj.constraints:
        v = column(ok, c.measure)
        met = np.mean([c.value(r.get(c.measure)) <= 0 for r in ok]) if ok else float("nan")
        level = np.percentile(v, 100 - reach if c.op in (">=", ">") else reach) if v.size else float("nan")
        print(f"| {c} | {100 * met:.1f}% | {c.measure} {c.op} {fmt(level, unit(c.measure))} |")
    sweep_levels(obj, ok, floor, floor_tol, unit)
    feasible = [r for r in ok if all(c.value(r.get(c.measure)) <= 0 for c in obj.constraints)]
    fv = column(feasible, obj.measure)
    print(f"\nmeeting every constraint: {len(feasible)} ({100 * len(feasible) / max(len(rows), 1):.2f}%)")
    if fv.size:
        print("| measure (feasible samples) | n | " + " | ".join(f"p{p}" for p in PERCENTILES) + " |")
        print("|---|---|" + "---|" * len(PERCENTILES))
        print(percentile_row(obj.measure, fv, unit(obj.measure)))
        print(f"share of feasible samples on the floor: {100 * floor_share(fv, floor, floor_tol):.1f}%")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("netlist", type=Path)
    ap.add_argument("--objective", default="all", help="objectives of the spec, comma-separated, or 'all'")
    ap.add_argument("--samples", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--reach", type=float, default=5.0, help="percent of samples that reach the printed level")
    ap.add_argument("--floor-tol", type=float, default=None,
                    help="distance to the best value counted as on the floor (default 1e-3 x objective scale)")
    a = ap.parse_args(argv)
    print("<!-- python benchmarks/spec_levels.py " + " ".join(shlex.quote(s) for s in (argv or sys.argv[1:]))
          + " -->")
    problem = CircuitProblem.from_netlist(a.netlist)
    names = list(problem.spec.objectives) if a.objective == "all" else a.objective.split(",")
    objectives = [problem.spec.objective(n) for n in names]
    t0 = time.perf_counter()
    rows, causes = sample(problem, a.samples, a.seed, a.workers)
    failed = sum(r is None for r in rows)
    print(f"samples {len(rows)} ({time.perf_counter() - t0:.0f} s), failed simulations {failed} "
          f"({100 * failed / max(len(rows), 1):.1f}%)")
    for cause, count in causes.most_common(5):
        print(f"  {count} x {cause}")
    if failed == len(rows):
        problem.close()
        print(f"{a.netlist}: every sampled simulation failed (the causes above): no level to choose", file=sys.stderr)
        sys.exit(2)
    print()
    for obj in objectives:   # one sample serves every objective: the measures do not depend on it
        report(problem, obj, rows, a.reach, a.floor_tol if a.floor_tol is not None else 1e-3 * obj.scale)
        print()
    problem.close()


if __name__ == "__main__":
    main()

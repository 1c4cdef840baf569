"""Sign-off measurements: what corner pruning saves, and the yield of a typical-only vs a corner-aware optimum.

1. Pruning: the generic amplifier's ``ugbw_pvt`` objective (12 PVT corners: tt/ss/ff x 27/125 C x 1.62/1.8 V)
   under one simulation budget, with and without pruning: sizings evaluated, simulations, best worst case.
   Random search (which asks the same sizings whatever it is told) shows the best over the same sizings is
   unchanged.
2. Yield: ``ugbw`` (typical only) and ``ugbw_pvt`` optimized at the same simulation budget; then the Monte
   Carlo yield of each best sizing at nominal conditions (global Vth and Pelgrom mismatch of [montecarlo]).
3. ``--sky130 TYP,PVT``: the sky130 amplifier's ``ugbw`` optimized at tt only (TYP simulations) and at its
   worst over 5 process corners x 3 temperatures (tt ff ss sf fs x -40/27/125 C, pruning on; PVT simulations),
   each optimum simulated at the 15 corners; ``--sky130-yield N``: then N Monte Carlo samples of each with the
   PDK's own statistical models (the spec's ``[montecarlo]``: section ``mc`` with device mismatch).

Usage:
    python benchmarks/signoff.py --budget 600 --seeds 1,2 --samples 200 --workers 2
    python benchmarks/signoff.py --sky130 400,400 --sky130-yield 200 --seeds 1 --workers 2 --skip-generic
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any, Mapping

import numpy as np

import zoaf
from zoaf.circuit import CircuitProblem
from zoaf.signoff.corners import Corner
from zoaf.signoff.cornerrun import CornerProblem
from zoaf.signoff.yieldrun import run_yield

ROOT = Path(__file__).resolve().parents[1]
AMP = ROOT / "netlists" / "two_stage_amp.cir"


def corner_run(method: str, seed: int, budget: int, prune: bool, workers: int) -> tuple[zoaf.Result, float]:
    problem = CornerProblem.wrap(CircuitProblem(AMP, objective="ugbw_pvt"), prune=prune)
    t0 = time.perf_counter()
    res = zoaf.optimize(problem, budget=budget, seed=seed, method=method, workers=workers)
    return res, time.perf_counter() - t0


def pruning(seeds: list[int], budget: int, workers: int) -> None:
    print("| method | seed | pruning | sizings | simulations | corner sims skipped | best worst-case UGBW | "
          "feasible | s |\n|---|---|---|---|---|---|---|---|---|")
    for method in ("zoaf", "random"):
        for seed in seeds:
            for prune in (False, True):
                res, s = corner_run(method, seed, budget, prune, workers)
                skipped = 12 * len(res.history) - sum(len(r.corner_records) for r in res.history)
                print(f"| {method} | {seed} | {'on' if prune else 'off'} | {len(res.history)} | {res.nfev} | "
                      f"{skipped} | {res.objective / 1e6:.2f} MHz | {res.feasible} | {s:.0f} |")


def yields(seed: int, budget: int, samples: int, workers: int) -> None:
    print("\n| optimized for | UGBW at tt | worst case over the corners | MC yield (tt spec) | 95% interval | "
          "pm_deg mean / Cpk |\n|---|---|---|---|---|---|")
    pvt = CornerProblem.wrap(CircuitProblem(AMP, objective="ugbw_pvt"))
    judge = CircuitProblem(AMP, objective="ugbw")                 # the yield is judged against the tt spec
    for objective in ("ugbw", "ugbw_pvt"):
        problem = CornerProblem.wrap(CircuitProblem(AMP, objective=objective))
        res = zoaf.optimize(problem, budget=budget, seed=seed, workers=workers)
        x = np.array([res.params[n] for n in judge.names])
        nominal, worst = judge.simulate(x), pvt.simulate(x)        # tt, and the worst case over the 12 corners
        with tempfile.TemporaryDirectory() as tmp:
            s = run_yield(judge, res.params, Path(tmp), samples=samples, seed=seed, workers=workers).summary
        pm = next(st for st in s.stats if st.name == "pm_deg")
        print(f"| {objective} | {nominal.measures['ugbw_hz'] / 1e6:.2f} MHz | "
              f"{worst.measures['ugbw_hz'] / 1e6:.2f} MHz ({'meets' if worst.feasible else 'misses'} the spec) | "
              f"{s.yield_:.1%} | {s.ci[0]:.1%} .. {s.ci[1]:.1%} | {pm.mean:.2f} / {pm.cpk:.2f} |")
    judge.close()
    pvt.close()


SKY = ROOT / "netlists" / "sky130" / "two_stage_amp.cir"
SKY_PROCESSES, SKY_TEMPS = ("tt", "ff", "ss", "sf", "fs"), (-40.0, 27.0, 125.0)


def sky_json(seed: int) -> Path:
    return ROOT / "benchmarks" / "results" / f"signoff_sky130_s{seed}.json"


def sky130_corners() -> list[Corner]:
    """The issue's sign-off set: 5 process corners x 3 temperatures at the nominal supply (15 corners)."""
    return [Corner(f"{p}_{t:g}c", p, t) for p in SKY_PROCESSES for t in SKY_TEMPS]


def sky130(seed: int, budgets: list[int], workers: int) -> None:
    """``ugbw`` optimized at tt only and at its worst over the 15 corners (pruning on), each at its own budget;
    both optima then simulated at all 15 corners. Sizings go to ``sky_json(seed)`` for the yield step."""
    corners = sky130_corners()
    pvt = CornerProblem(CircuitProblem(SKY, objective="ugbw"), corners)
    found: dict[str, Any] = {"seed": seed, "workers": workers, "load": os.getloadavg()[0], "runs": {}}
    for label, budget in zip(("typical", "corners"), budgets):
        base = CircuitProblem(SKY, objective="ugbw")
        problem = base if label == "typical" else CornerProblem(base, corners, prune=True)
        t0 = time.perf_counter()
        res = zoaf.optimize(problem, budget=budget, seed=seed, workers=workers,
                            out=ROOT / "runs" / "bench_sky130" / f"{label}_s{seed}")
        seconds = time.perf_counter() - t0
        x = np.array([res.params[n] for n in pvt.names])
        outs = [pvt.sims.simulate(np.append(x, k)) for k in range(len(corners))]
        judged = pvt.judge(outs)
        found["runs"][label] = {
            "budget": budget, "simulations": res.nfev, "sizings": len(res.history), "seconds": round(seconds),
            "params": res.params, "tt_27c": outs[1].measures,
            "worst": judged.outcome.measures, "worst_feasible": judged.outcome.feasible,
            "per_corner": {c.name: o.measures for c, o in zip(corners, outs)}}
        problem.close()
        print(f"{label}: {res.nfev} simulations, {len(res.history)} sizings, {seconds:.0f} s; tt 27 C "
              f"{_amp(outs[1].measures)}; worst {_amp(judged.outcome.measures)} "
              f"({'meets' if judged.outcome.feasible else 'misses'} the spec)", flush=True)
    pvt.close()
    sky_json(seed).write_text(json.dumps(found, indent=1, default=float) + "\n")


def sky130_yield(seed: int, samples: int, workers: int) -> None:
    """The Monte Carlo yield (the PDK's ``mc`` section with per-device mismatch, tt 27 C) of both optima of
    ``sky_json(seed)`` against the ``ugbw`` spec; samples resume from ``runs/bench_sky130/<run>/yield``."""
    found = json.loads(sky_json(seed).read_text())
    judge = CircuitProblem(SKY, objective="ugbw")
    print(f"| optimized for | yield ({samples} samples) | 95% Wilson interval | gain_db mean / sigma / Cpk | "
          "pm_deg mean / sigma / Cpk | power_w mean / Cpk | s |\n|---|---|---|---|---|---|---|")
    for label, run in found["runs"].items():
        t0 = time.perf_counter()
        out = ROOT / "runs" / "bench_sky130" / f"{label}_s{found['seed']}" / "yield"
        y = run_yield(judge, run["params"], out, samples=samples, seed=0, workers=workers).summary
        st = {m.name: m for m in y.stats}
        g, pm, pw = st["gain_db"], st["pm_deg"], st["power_w"]
        run["yield"] = y.as_json()
        print(f"| {label} | {y.yield_:.1%} ({y.passed}/{y.samples}, {y.failed_sims} failed) | "
              f"{y.ci[0]:.1%} .. {y.ci[1]:.1%} | {g.mean:.2f} / {g.sigma:.2f} / {g.cpk:.2f} | "
              f"{pm.mean:.2f} / {pm.sigma:.2f} / {pm.cpk:.2f} | {pw.mean * 1e6:.0f} uW / {pw.cpk:.2f} | "
              f"{time.perf_counter() - t0:.0f} |", flush=True)
    judge.close()
    sky_json(seed).write_text(json.dumps(found, indent=1, default=float) + "\n")


def _amp(m: Mapping[str, float]) -> str:
    return f"{m['ugbw_hz'] / 1e6:.1f} MHz, {m['gain_db']:.1f} dB, {m['pm_deg']:.1f} deg, {m['power_w'] * 1e6:.0f} uW"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--budget", type=int, default=600)
    ap.add_argument("--seeds", default="1,2")
    ap.add_argument("--samples", type=int, default=200)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--sky130", default=None, help="TYP,PVT simulation budgets of the sky130 comparison")
    ap.add_argument("--sky130-yield", type=int, default=0, metavar="N",
                    help="Monte Carlo samples of each sky130 optimum (after --sky130, or from its saved sizings)")
    ap.add_argument("--skip-generic", action="store_true", help="only the sky130 comparison")
    a = ap.parse_args()
    seeds = [int(s) for s in a.seeds.split(",")]
    if not a.skip_generic:
        pruning(seeds, a.budget, a.workers)
        yields(seeds[0], a.budget, a.samples, a.workers)
    if a.sky130:
        sky130(seeds[0], [int(b) for b in a.sky130.split(",")], a.workers)
    if a.sky130_yield:
        sky130_yield(seeds[0], a.sky130_yield, a.workers)


if __name__ == "__main__":
    main()

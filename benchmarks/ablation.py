"""ZOAF on a circuit: full method vs its ablations vs random search and warm CMA-ES, at one budget.

The ablations are ``ZOAFConfig`` settings (the same table as ``benchmarks/zo_synthetic.py``); every run is
``zoaf.optimize`` on the circuit with in-process ngspice (``workers=0``), ``--jobs`` runs at a time.
Prints a markdown table per objective: median and worst final FoM, the two-sided Mann-Whitney p of each
variant's finals against the first variant's (none for a variant marked "(one value)": every seed ended at one
FoM, one run of a deterministic path, not a sample), feasible runs, median best feasible objective, and ZOAF's own
overhead per simulation (wall time outside the simulator); ``--json FILE`` keeps every run's row.

Usage:
    python benchmarks/ablation.py                                   # two_stage_amp, peaking + fom, 10 seeds, B=400
    python benchmarks/ablation.py --objectives fom --seeds 3 --variants zoaf,random
    python benchmarks/ablation.py --variants zoaf,scalar,penalty,no-restoration,no-constraint-curvature
    python benchmarks/ablation.py --objectives fom,ugbw --variants duplicate-trials,zoaf,q2 --seeds 10 --budget 300
    python benchmarks/ablation.py --objectives fom,ugbw --variants zoaf,no-multistart,cobyqa --seeds 10 --budget 300
    python benchmarks/ablation.py --objectives gain --variants cobyqa,cobyqa@radius_init=0.2 --seeds 1 --budget 300

``VARIANT@key=value+key=value`` sets fields of the variant's configuration dataclass (``ZOAFConfig``, a peer's
own): how much a result owes to one setting (BENCHMARKS.md section 11, "One run of a deterministic method").
"""
from __future__ import annotations

import argparse
import json
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

import zoaf
from zoaf.circuit import CircuitProblem
from zoaf.stats import mann_whitney
from zoaf.zo.ablations import ABLATIONS

ROOT = Path(__file__).resolve().parents[1]
#: The circuit ablation: the components the issue asks about, the value transform and the step sizes chosen on
#: this benchmark, and the peers.
ZOAF_VARIANTS = {k: ABLATIONS[k] for k in ("zoaf", "random-only", "coordinate-only", "no-multistart", "no-centre",
                                           "no-monitor", "no-reuse", "raw-values", "rank-values",
                                           "small-steps", "axes", "late-switch")}
#: Any other named configuration of ``ABLATIONS`` runs too when ``--variants`` names it (the constraint-aware
#: step's ablations, the step-rate candidates).
ALL_VARIANTS = ABLATIONS
PEERS = ("cma-warm", "random")
#: Peers that run when ``--variants`` names them: COBYQA (the ``[peers]`` extra) is the method ZOAF's
#: constraint-aware step is measured against on the amplifier (BENCHMARKS.md section 4).
NAMED_PEERS = (*PEERS, "cobyqa")


def method_options(variant: str) -> tuple[str, dict]:
    """The method and its options of a variant name: a ZOAF ablation or a named peer, ``@key=value+...`` overriding
    fields of its configuration (JSON values)."""
    base, _, fields = variant.partition("@")
    overrides = {k: json.loads(v) for k, v in (f.split("=", 1) for f in fields.split("+") if f)}
    return (base, overrides) if base in NAMED_PEERS else ("zoaf", {**ALL_VARIANTS[base], **overrides})


def one(netlist: str, objective: str, variant: str, seed: int, budget: int) -> dict:
    problem = CircuitProblem.from_netlist(netlist, objective=objective)
    method, options = method_options(variant)
    t0 = time.perf_counter()
    res = zoaf.optimize(problem, budget=budget, seed=seed, method=method, workers=0, **options)
    wall = time.perf_counter() - t0
    sim = sum(r.outcome.seconds for r in res.history)
    feas = [r.outcome.objective for r in res.history if r.outcome.feasible]
    first = next((i + 1 for i, r in enumerate(res.history) if r.outcome.feasible), None)   # how soon the spec is met
    best_feasible = (min(feas) if problem.objective.sense == "minimize" else max(feas)) if feas else None
    return {"objective": objective, "variant": variant, "seed": seed, "fun": res.fun, "nfev": res.nfev,
            "feasible": best_feasible, "first_feasible": first, "overhead_ms": 1e3 * (wall - sim) / max(res.nfev, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--netlist", default=str(ROOT / "netlists" / "two_stage_amp.cir"))
    ap.add_argument("--objectives", default="peaking,fom")
    ap.add_argument("--variants", default=",".join([*ZOAF_VARIANTS, *PEERS]))
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--budget", type=int, default=400)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--json", help="also write every run's row to this file")
    a = ap.parse_args()
    objectives, variants = a.objectives.split(","), a.variants.split(",")
    tasks = [(a.netlist, o, v, s, a.budget) for o in objectives for v in variants for s in range(a.seeds)]
    t0 = time.perf_counter()
    with ProcessPoolExecutor(a.jobs) as pool:
        rows = list(pool.map(one, *zip(*tasks)))
    if a.json:
        Path(a.json).write_text(json.dumps(rows, indent=1))
    netlist = Path(a.netlist).resolve()
    shown = netlist.relative_to(ROOT) if netlist.is_relative_to(ROOT) else netlist   # a deck of the user's own
    print(f"<!-- python benchmarks/ablation.py --netlist {shown} --objectives "
          f"{a.objectives} --variants {a.variants} --seeds {a.seeds} --budget {a.budget} --jobs {a.jobs}; "
          f"{time.perf_counter() - t0:.0f} s -->")
    problem = CircuitProblem.from_netlist(a.netlist)
    for o in objectives:
        obj = problem.spec.objective(o)
        unit = problem.spec.unit_of(obj.measure)
        print(f"\n**{Path(a.netlist).stem} / {o}** ({obj.sense} {obj.measure}; {', '.join(map(str, obj.constraints))}),"
              f" budget {a.budget}, {a.seeds} seeds\n")
        print(f"| variant | median FoM | worst FoM | p vs {variants[0]} | feasible runs |"
              f" median best feasible {obj.measure} [{unit}] | overhead ms/sim |")
        print("|---|---|---|---|---|---|---|")
        first = [r["fun"] for r in rows if r["objective"] == o and r["variant"] == variants[0]]
        for v in variants:
            rs = [r for r in rows if r["objective"] == o and r["variant"] == v]
            f = np.array([r["fun"] for r in rs])
            feas = [r["feasible"] for r in rs if r["feasible"] is not None]
            med_feas = f"{np.median(feas):.4g}" if feas else "—"
            one_value = len(f) > 1 and np.all(f == f[0])    # a deterministic variant: one run, not a sample
            p = "—" if v == variants[0] or one_value else f"{mann_whitney(f, first):.2g}"
            shown = f"{v} (one value)" if one_value else v
            print(f"| {shown} | {np.median(f):.5g} | {np.max(f):.5g} | {p} | {len(feas)}/{len(rs)} | {med_feas} | "
                  f"{np.median([r['overhead_ms'] for r in rs]):.2f} |")


if __name__ == "__main__":
    main()

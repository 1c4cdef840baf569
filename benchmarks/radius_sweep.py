"""How much one run of a deterministic method owes to one setting: COBYQA alone and ``zoaf-cobyqa`` at initial
trust-region radii around their shared default.

COBYQA from the designer's sizing ignores the seed, and ``zoaf-cobyqa`` spends most budgets in the COBYQA run
from that same sizing, so their 20 seeds in the headline are often one path (``summary.md`` marks such methods
"one value"), and which of the two wins an objective can hang on where that path happens to go. Here each runs
once (seed 0, budget 300) at every radius of ``RADII`` (COBYQA's ``radius_init``; for ``zoaf-cobyqa`` the
radius of its first COBYQA run, ``h_max``, with ``alpha0`` = 2 x radius so that every later radius scales with
it), through ``benchmarks/ablation.py``'s runner. Prints, per objective, both methods' best feasible objective at
the default radius and its median and range over the radii, and on how many radii ``zoaf-cobyqa`` ends better.
Runs already in ``--json`` are reused: rerun the same command to resume.

Usage:
    python benchmarks/radius_sweep.py --circuits two_stage_amp,lna,comparator,ldo,bandgap --jobs 2
    python benchmarks/radius_sweep.py --circuits sky130_two_stage_amp --sky130 --objectives gain,ugbw,fom,follower
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ablation import one                      # noqa: E402  (a sibling script, not a package)
from compare_all import circuits, name       # noqa: E402

from zoaf.circuit import CircuitProblem      # noqa: E402
from zoaf.report import format_value         # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RADII = (0.15, 0.2, 0.22, 0.25, 0.28, 0.3, 0.35)
DEFAULT = 0.25
PRESET = "local-cobyqa-grace-m3-late-polish-after"     # the ``zoaf-cobyqa`` method (``zoaf.zo.presets``)
METHODS = ("cobyqa", "zoaf-cobyqa")


def variant(method: str, radius: float) -> str:
    """The ablation runner's name of ``method`` at ``radius``."""
    if method == "cobyqa":
        return "cobyqa" if radius == DEFAULT else f"cobyqa@radius_init={radius}"
    return PRESET if radius == DEFAULT else f"{PRESET}@alpha0={round(2 * radius, 6)}+h_max={radius}"


def run_all(tasks: list[tuple[str, str, str, str, float]], cache: Path, jobs: int) -> list[dict]:
    """Every (circuit, netlist, objective, method, radius) run, those in ``cache`` reused, new ones appended."""
    rows = json.loads(cache.read_text()) if cache.exists() else []
    have = {(r["circuit"], r["objective"], r["method"], r["radius"]) for r in rows}
    todo = [t for t in tasks if (t[0], t[2], t[3], t[4]) not in have]
    with ProcessPoolExecutor(jobs) as pool:
        futures = [(t, pool.submit(one, t[1], t[2], variant(t[3], t[4]), 0, 300)) for t in todo]
        for (circuit, _, objective, method, radius), fut in futures:
            rows.append({**fut.result(), "circuit": circuit, "method": method, "radius": radius})
            cache.write_text(json.dumps(rows, indent=1))
    return rows


def table(rows: list[dict], objectives: dict[str, list[tuple[str, str, str]]]) -> list[str]:
    """One line per objective: the default radius, the median and range over ``RADII``, the paired wins."""
    lines = ["| circuit / objective | COBYQA at 0.25 | COBYQA over the radii: median (range) | zoaf-cobyqa at 0.25 | "
             "zoaf-cobyqa over the radii: median (range) | radii where zoaf-cobyqa ends better |",
             "|---|---|---|---|---|---|"]
    for circuit, objs in objectives.items():
        for objective, unit, sense in objs:
            got = {(r["method"], r["radius"]): r for r in rows if r["circuit"] == circuit
                   and r["objective"] == objective}
            if any((m, rad) not in got for m in METHODS for rad in RADII):
                continue
            cells = []
            for m in METHODS:
                at_default = got[m, DEFAULT]["feasible"]
                feas = sorted(v for v in (got[m, rad]["feasible"] for rad in RADII) if v is not None)
                med = format_value(statistics.median(feas), unit) if feas else "—"
                span = f"{format_value(feas[0], unit)} – {format_value(feas[-1], unit)}" if feas else "—"
                cells += ["infeasible" if at_default is None else format_value(at_default, unit),
                          f"{med} ({span}; {len(feas)}/{len(RADII)} feasible)"]
            wins = sum(got["zoaf-cobyqa", rad]["fun"] < got["cobyqa", rad]["fun"] for rad in RADII)
            ties = sum(got["zoaf-cobyqa", rad]["fun"] == got["cobyqa", rad]["fun"] for rad in RADII)
            lines.append(f"| {circuit} / {objective} ({sense}) | {' | '.join(cells)} | {wins} of {len(RADII)}"
                         + (f" ({ties} tied)" if ties else "") + " |")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--circuits", required=True, help="comma list of benchmark circuit names")
    ap.add_argument("--sky130", action="store_true", help="also look for the circuits in netlists/sky130/")
    ap.add_argument("--objectives", help="comma list (default: every objective of each circuit's spec judged at "
                                         "nominal)")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--json", default=str(ROOT / "benchmarks" / "results" / "radius_sweep.json"))
    a = ap.parse_args()
    objectives, tasks = {}, []
    for netlist in circuits(a.sky130, a.circuits.split(",")):
        spec = CircuitProblem.from_netlist(str(netlist)).spec
        names = a.objectives.split(",") if a.objectives else [o for o, obj in spec.objectives.items()
                                                              if not obj.corners]   # the runner simulates nominal
        objs = [spec.objective(o) for o in names]
        objectives[name(netlist)] = [(o.name, spec.unit_of(o.measure), o.sense) for o in objs]
        tasks += [(name(netlist), str(netlist), o, m, r) for o in names for m in METHODS for r in RADII]
    t0 = time.perf_counter()
    rows = run_all(tasks, Path(a.json), a.jobs)
    print(f"<!-- python benchmarks/radius_sweep.py {' '.join(sys.argv[1:])}; {time.perf_counter() - t0:.0f} s -->\n")
    print("\n".join(table(rows, objectives)))


if __name__ == "__main__":
    main()

"""The headline suite: ZOAF against every baseline on every in-repo benchmark circuit, at one budget.

Runs ``zoaf.compare.compare`` on each ``netlists/*.cir`` that has a ``<stem>.toml`` (``netlists/sky130/`` only
with ``--sky130``), every objective of its spec, all methods, seeds 0..N-1, writing
``benchmarks/results/<circuit>/`` (a normal comparison directory: report.md, report.html, one run directory per
objective x method x seed). Finished runs are reused, interrupted ones resumed: rerun the same command to
continue, or with more ``--seeds`` to add seeds. At the end, ``benchmarks/results/summary.md`` gathers, per
circuit and objective, ZOAF's median final FoM, the best baseline's, the p-value and the simulations-to-target
ratio.

Usage:
    python benchmarks/compare_all.py                                  # 10 seeds, budget 300, all methods
    python benchmarks/compare_all.py --seeds 2 --budget 40 --methods zoaf,cma,random     # smoke
    python benchmarks/compare_all.py --circuits two_stage_amp --sky130 --jobs 8
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from zoaf.compare import ALL_METHODS, RunEvent, compare
from zoaf.report import COLUMNS, load_comparison, table_rows
from zoaf.stats import REFERENCE

ROOT = Path(__file__).resolve().parents[1]


def circuits(sky130: bool, only: list[str] | None) -> list[Path]:
    found = sorted(p for p in (ROOT / "netlists").glob("*.cir") if p.with_suffix(".toml").exists())
    if sky130:
        found += sorted(p for p in (ROOT / "netlists" / "sky130").glob("*.cir") if p.with_suffix(".toml").exists())
    if only:
        found = [p for p in found if p.stem in only]
        missing = set(only) - {p.stem for p in found}
        if missing:
            sys.exit(f"no benchmark circuit named {', '.join(sorted(missing))} (netlists/*.cir with a .toml)")
    return found


def printer(name: str):
    state = {"total": 0, "done": 0, "t0": time.perf_counter()}

    def progress(ev: RunEvent) -> None:
        if ev.kind == "plan":
            state["total"], state["done"] = ev.total, ev.nfev
            print(f"[{name}] {ev.total} runs, {ev.nfev} already done", flush=True)
        elif ev.kind in ("done", "failed"):
            state["done"] += 1
            what = f"FoM {ev.best:.5g}" if ev.kind == "done" else f"FAILED: {ev.error}"
            print(f"[{name}] {state['done']}/{state['total']} {ev.objective}/{ev.method}/seed-{ev.seed}: {what} "
                  f"({time.perf_counter() - state['t0']:.0f} s)", flush=True)
    return progress


def summary_lines(results: Path, names: list[str]) -> list[str]:
    lines = ["# Benchmark summary", "", f"Reference: `{REFERENCE}`; target = best baseline median final FoM.", "",
             "| circuit | objective | budget | zoaf median FoM | best baseline | its median FoM | p | "
             "zoaf median feasible objective | sims to target: zoaf | best baseline |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    col = {c: i for i, c in enumerate(COLUMNS)}
    for name in names:
        d = results / name
        if not (d / "compare.json").exists():
            continue
        for s in load_comparison(d):
            rows = {r[0]: r for r in table_rows(s)}
            base = [m for m in s.methods if m.method != REFERENCE]
            if REFERENCE not in rows or not base:
                continue
            best = min(base, key=lambda m: m.median)
            z, b = rows[REFERENCE], rows[best.method]
            lines.append(f"| {name} | {s.name} | {s.budget} | {z[col['median FoM']]} | {best.method} | "
                         f"{b[col['median FoM']]} | {b[col[f'p vs {REFERENCE}']]} | "
                         f"{z[col['best feasible objective']]} | {z[col['sims to target']]} | "
                         f"{b[col['sims to target']]} |")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=10, help="seeds 0..N-1 per method (default 10)")
    ap.add_argument("--budget", type=int, default=300, help="simulations per run (default 300)")
    ap.add_argument("--methods", default=",".join(ALL_METHODS), help="comma list (default: all)")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="runs in parallel (default: cores)")
    ap.add_argument("--circuits", default="", help="comma list of netlist stems (default: all)")
    ap.add_argument("--sky130", action="store_true", help="include netlists/sky130/ (needs the PDK)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results", help="results directory")
    args = ap.parse_args()
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    todo = circuits(args.sky130, [c.strip() for c in args.circuits.split(",") if c.strip()] or None)
    failures = []
    t0 = time.perf_counter()
    for netlist in todo:
        t = time.perf_counter()
        try:
            out = compare(netlist, None, methods, args.seeds, args.budget, args.out / netlist.stem, args.jobs,
                          progress=printer(netlist.stem), argv=sys.argv)
        except Exception as e:  # noqa: BLE001 - one circuit failing must not stop the suite
            failures.append(f"{netlist.stem}: {type(e).__name__}: {e}")
            print(f"[{netlist.stem}] FAILED: {e}", flush=True)
            continue
        print(f"[{netlist.stem}] {time.perf_counter() - t:.0f} s; report: {out / 'report.md'}", flush=True)
    # the summary covers every circuit with results under --out, so circuits run separately add up
    lines = summary_lines(args.out, sorted(d.name for d in args.out.iterdir() if (d / "compare.json").exists()))
    (args.out / "summary.md").parent.mkdir(parents=True, exist_ok=True)
    (args.out / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"\nsuite: {len(todo)} circuits, {time.perf_counter() - t0:.0f} s; summary: {args.out / 'summary.md'}")
    if failures:
        print("failures:\n  " + "\n  ".join(failures))
        sys.exit(1)


if __name__ == "__main__":
    main()

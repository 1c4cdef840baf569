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
    python benchmarks/compare_all.py --circuits sky130_two_stage_amp --sky130 --jobs 8   # results: sky130_<stem>/
    python benchmarks/compare_all.py --circuits bandgap --objectives power --seeds 10 --jobs 2
    python benchmarks/compare_all.py --summary-only                   # summary.md from the results as they are
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

from zoaf.compare import RunEvent, compare
from zoaf.report import COLUMNS, ONE_VALUE, load_comparison, table_rows
from zoaf.stats import REFERENCE, ObjectiveSummary, summarize

ROOT = Path(__file__).resolve().parents[1]
#: Seeds at which a method the suite runs at fewer seeds than the others (BO and TuRBO: up to an hour a run here)
#: is ranked after all, in a table of its own where every method is taken on seeds 0..SHORT_SEEDS-1.
SHORT_SEEDS = 10


def name(netlist: Path) -> str:
    """The circuit's results name: its stem, prefixed by its PDK folder (``sky130_two_stage_amp``), so that a PDK
    circuit never shares a results directory with the generic one of the same stem."""
    return netlist.stem if netlist.parent == ROOT / "netlists" else f"{netlist.parent.name}_{netlist.stem}"


def circuits(sky130: bool, only: list[str] | None) -> list[Path]:
    found = sorted(p for p in (ROOT / "netlists").glob("*.cir") if p.with_suffix(".toml").exists())
    if sky130:
        found += sorted(p for p in (ROOT / "netlists" / "sky130").glob("*.cir") if p.with_suffix(".toml").exists())
    if only:
        found = [p for p in found if name(p) in only]
        missing = set(only) - {name(p) for p in found}
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
    """``summary.md``: a headline row per (circuit, objective), then every method ranked per objective."""
    col = {c: i for i, c in enumerate(COLUMNS)}
    head = ["# Benchmark summary", "",
            f"Reference: `{REFERENCE}`; target = the best other method's median final FoM (lower FoM is better). "
            "p: two-sided Mann-Whitney U of the final FoMs, ZOAF vs that method; p (Holm): corrected for the "
            "number of methods ZOAF is compared with on the objective. Sims to target: median charged "
            "simulations until the best-so-far FoM reaches the target. Seeds: every method is ranked on the same "
            "seeds 0..N-1, N the median over methods of their complete seeds (a method with fewer is listed under "
            f"its objective, not ranked; once it has {SHORT_SEEDS}, a second table ranks every method on seeds "
            f"0..{SHORT_SEEDS - 1}). Runs {ONE_VALUE} BENCHMARKS.md section 11 measures how much such a value "
            "owes to the method's settings.", "",
            "## Headline", "",
            f"| circuit | objective | budget | seeds | {REFERENCE} rank | {REFERENCE} median FoM | best other | "
            f"its median FoM | {REFERENCE} worst | best worst (method) | p | p (Holm) | sims to target: {REFERENCE} | "
            "best other |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    ranked = ["", "## All methods ranked per objective", ""]
    ranks: dict[str, dict[str, int]] = {}
    ranks_few: dict[str, dict[str, int]] = {}
    for name in names:
        d = results / name
        if not (d / "compare.json").exists():
            continue
        for s in load_comparison(d, same_seeds=True):
            rows = {r[0]: r for r in table_rows(s)}
            st = {m.method: m for m in s.methods}
            base = [m for m in s.methods if m.method != REFERENCE]
            if REFERENCE not in rows or not base:
                continue
            ranks[f"{name}/{s.name}"] = {m.method: m.rank for m in s.methods}
            best = min(base, key=lambda m: (m.median, m.worst))
            safest = min(s.methods, key=lambda m: (m.worst, m.median))
            z, b = rows[REFERENCE], rows[best.method]
            runs = sorted({m.runs for m in s.methods})
            head.append(f"| {name} | {s.name} | {s.budget} | {'/'.join(map(str, runs))} | {st[REFERENCE].rank} | "
                        f"{z[col['median FoM']]} | {best.method} | {b[col['median FoM']]} | {z[col['worst']]} | "
                        f"{rows[safest.method][col['worst']]} ({safest.method}) | {b[col[f'p vs {REFERENCE}']]} | "
                        f"{b[col['p (Holm)']]} | {z[col['sims to target']]} | {b[col['sims to target']]} |")
            ranked += [f"### {name} / {s.name} (budget {s.budget}, target FoM {s.target:.4g})", "",
                       *method_table(s)]
            if s.short:
                n = max(m.runs for m in s.methods)
                ranked += ["", "Not ranked (fewer seeds): " + ", ".join(
                    f"{meth} ({k} of {n})" for meth, k in sorted(s.short.items()))]
                few = at_seeds(s, SHORT_SEEDS) if max(s.short.values()) >= SHORT_SEEDS else None
                if few is not None and n > SHORT_SEEDS:
                    ranks_few[f"{name}/{s.name}"] = {m.method: m.rank for m in few.methods}
                    ranked += ["", f"Every method on seeds 0..{SHORT_SEEDS - 1}, those at fewer seeds included:", "",
                               *method_table(few)]
            ranked.append("")
    return (head + rank_matrix(ranks) + rank_matrix(ranks_few, f" on seeds 0..{SHORT_SEEDS - 1}, the methods run at "
                                                               "fewer seeds included") + ranked)


def method_table(s: ObjectiveSummary) -> list[str]:
    """Every method of one objective's summary, best first."""
    col = {c: i for i, c in enumerate(COLUMNS)}
    rows = {r[0]: r for r in table_rows(s)}
    lines = ["| rank | method | runs | median FoM | worst | feasible runs | median best feasible objective | "
             f"sims to target | p vs {REFERENCE} | p (Holm) |", "|---|---|---|---|---|---|---|---|---|---|"]
    for m in sorted(s.methods, key=lambda m: (m.rank, m.worst, m.method)):
        r = rows[m.method]
        lines.append(f"| {m.rank} | {m.method} | {r[col['runs']]} | {r[col['median FoM']]} | {r[col['worst']]} | "
                     f"{r[col['feasible runs']]} | {r[col['best feasible objective']]} | "
                     f"{r[col['sims to target']]} | {r[col[f'p vs {REFERENCE}']]} | {r[col['p (Holm)']]} |")
    return lines


def at_seeds(s: ObjectiveSummary, k: int) -> ObjectiveSummary | None:
    """Every method with seeds 0..k-1 complete, the short ones too, summarized on those seeds (None without ZOAF)."""
    runs = {m: [r for r in rs if r.seed < k] for m, rs in {**s.runs, **s.short_runs}.items()}
    runs = {m: rs for m, rs in runs.items() if len(rs) == k}
    if REFERENCE not in runs:
        return None
    return summarize(s.name, runs, measure=s.measure, unit=s.unit, sense=s.sense)


def rank_matrix(ranks: dict[str, dict[str, int]], which: str = "") -> list[str]:
    """Each method's rank by median final FoM on every objective, in one table: where each method stands overall."""
    if not ranks:
        return []
    methods = sorted({m for r in ranks.values() for m in r})
    cols = list(ranks)
    rows = []
    for m in methods:
        got = [ranks[c].get(m) for c in cols]
        placed = sorted(r for r in got if r is not None)
        rows.append((statistics.mean(placed), statistics.median(placed), max(placed), placed.count(1), m, got))
    lines = ["", f"## Ranks{which} (by median final FoM; 1 = best; ties share a rank)", "",
             "| method | " + " | ".join(cols) + " | mean rank | median rank | worst rank | firsts |",
             "|---" * (len(cols) + 5) + "|"]
    for mean, median, worst, firsts, m, got in sorted(rows):
        cells = " | ".join("—" if r is None else str(r) for r in got)
        lines.append(f"| {m} | {cells} | {mean:.2g} | {median:g} | {worst} | {firsts} |")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=10, help="seeds 0..N-1 per method (default 10)")
    ap.add_argument("--budget", type=int, default=300, help="simulations per run (default 300)")
    ap.add_argument("--methods", help="comma list (default: every installed method)")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="runs in parallel (default: cores)")
    ap.add_argument("--circuits", default="",
                    help="comma list of circuit names: netlist stems, sky130_<stem> for netlists/sky130/ "
                         "(default: all)")
    ap.add_argument("--objectives", default="", help="comma list of objectives (default: each circuit's all)")
    ap.add_argument("--sky130", action="store_true", help="include netlists/sky130/ (needs the PDK)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results", help="results directory")
    ap.add_argument("--summary-only", action="store_true", help="rewrite summary.md from the results; run nothing")
    args = ap.parse_args()
    methods = None if args.methods is None else [m.strip() for m in args.methods.split(",") if m.strip()]
    only = [c.strip() for c in args.circuits.split(",") if c.strip()] or None
    todo = [] if args.summary_only else circuits(args.sky130, only)
    objectives = [o.strip() for o in args.objectives.split(",") if o.strip()] or None
    failures = []
    t0 = time.perf_counter()
    for netlist in todo:
        t = time.perf_counter()
        try:
            out = compare(netlist, objectives, methods, args.seeds, args.budget, args.out / name(netlist), args.jobs,
                          progress=printer(name(netlist)), argv=sys.argv)
        except Exception as e:  # noqa: BLE001 - one circuit failing must not stop the suite
            failures.append(f"{name(netlist)}: {type(e).__name__}: {e}")
            print(f"[{name(netlist)}] FAILED: {e}", flush=True)
            continue
        print(f"[{name(netlist)}] {time.perf_counter() - t:.0f} s; report: {out / 'report.md'}", flush=True)
    # the summary covers every circuit with results under --out, so circuits run separately add up
    if not args.out.is_dir():
        sys.exit(f"{args.out}: no results directory")
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

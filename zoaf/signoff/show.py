"""Rich rendering of sign-off results (kept out of ``zoaf.cli``, which only wires commands)."""
from __future__ import annotations

from typing import Any, Sequence

from rich.console import Console
from rich.table import Table

from ..show import as_text
from ..show import fmt as _fmt   # as `zoaf optimize` shows values: SI prefixes, none on dB, degrees, areas


def corner_table(console: Console, problem: Any, history: Sequence[Any]) -> None:
    """The best sizing at each corner simulated (worst marked, each corner's missed constraints named), and
    what the run spent, what the cache served and what pruning saved."""
    from .cornercheck import judge_corner
    from .cornerrun import SizingRecord

    sizings = [r for r in history if isinstance(r, SizingRecord)]
    if not sizings:
        return
    best = min(sizings, key=lambda r: (r.fom, r.idx))
    obj = problem.objective
    verdicts = [judge_corner(problem.corners[int(r.params["corner"])].name, r.outcome, obj.constraints)
                for r in best.corner_records]
    worst = {problem.corners[best.worst].name}
    _corner_rows(console, "best sizing per corner", problem.spec, obj, verdicts, worst)
    n = len(problem.corners)
    sims = sum(r.sims for r in sizings)
    cached = sum(len(r.corner_records) for r in sizings) - sims
    pruned = [r for r in sizings if r.pruned]
    cut = sum(r.cut for r in sizings)
    console.print(f"{len(sizings)} sizings x {n} corners: {sims} simulations, {cached} from the cache; pruning "
                  f"skipped {sum(n - len(r.corner_records) for r in pruned)} corner simulations ({len(pruned)} "
                  f"sizings stopped early)" + (f"; {cut} cut short by the interruption" if cut else ""),
                  highlight=False)


def _corner_rows(console: Console, title: str, spec: Any, obj: Any, verdicts: Sequence[Any], worst: set[str]
                 ) -> None:
    """Corners x the objective's and constrained measures, and a ``spec`` column: pass, or what it misses."""
    shown = [obj.measure, *dict.fromkeys(c.measure for c in obj.constraints if c.measure != obj.measure)]
    t = Table(title=title, title_justify="left")
    t.add_column("corner")
    for m in shown:
        t.add_column(m, justify="right")
    t.add_column("spec")
    for v in verdicts:
        name = as_text(v.corner) + (" [red](worst)" if v.corner in worst else "")
        verdict = "[green]pass" if v.passed else "[red]FAIL " + as_text(", ".join(v.failed))
        t.add_row(name, *(_fmt(v.measures.get(m), spec.unit_of(m)) for m in shown), verdict)
    console.print(t)


def corner_check_table(console: Console, check: Any, spec: Any, obj: Any, sizing: str) -> None:
    """``zoaf corners``: every corner's measures and verdict, then where the objective and each constraint
    are at their worst, and the verdict over all corners."""
    _corner_rows(console, f"{sizing} at each corner", spec, obj, check.verdicts, {check.worst[0].corner})
    for w in check.worst:
        value = "not measured" if w.value is None else _fmt(w.value, spec.unit_of(w.measure))
        margin = "" if w.margin is None else f" (margin {w.margin:+.2%})"
        console.print(f"worst {as_text(w.what)}: {value} at {as_text(w.corner)}{margin}", highlight=False)
    bad = [v.corner for v in check.verdicts if not v.passed]
    console.print(f"[green]meets the spec at all {len(check.verdicts)} corners" if not bad else
                  f"[red]FAILS at {len(bad)} of {len(check.verdicts)} corners: {as_text(', '.join(bad))}",
                  highlight=False)


def yield_table(console: Console, result: Any, unit_of: Any) -> None:
    """The yield with its 95% interval, and each measure's mean, sigma, limits and Cpk."""
    s = result.summary
    t = Table(title=f"Monte Carlo: {s.samples} samples at {as_text(result.at)}", title_justify="left")
    for col in ("measure", "n", "mean", "sigma", "LSL", "USL", "Cpk"):
        t.add_column(col, justify="left" if col == "measure" else "right")
    simulated = s.samples - s.failed_sims
    for st in s.stats:
        u = unit_of(st.name)
        cpk = "—" if st.cpk is None else f"[{'green' if st.cpk >= 1 else 'red'}]{st.cpk:.3g}"
        n = f"[red]{st.n}" if st.n < simulated else str(st.n)     # statistics without the samples that lack it
        t.add_row(st.name, n, _fmt(st.mean, u), _fmt(st.sigma, u), _fmt(st.limits.lsl, u), _fmt(st.limits.usl, u),
                  cpk)
    console.print(t)
    console.print(f"varied: {result.varied}", highlight=False)
    for line in s.lines():                       # the yield, and why the failing samples fail
        console.print(as_text(line), highlight=False)
    console.print(f"yield directory: {as_text(str(result.out))}  (history.db, yield.json, report.md, hist_*.png)",
                  highlight=False)


def sensitivity_table(console: Console, s: Any, shown: Sequence[str], corner: str | None = None) -> None:
    """Parameters x the ``shown`` measures (all are in the JSON and the heat map); each column's largest
    |entry| in bold, an entry whose estimated error is large or unknown marked ``?``; ``corner``: the corner
    of a corner run they were taken at."""
    import math

    at = "" if corner is None else f", corner {as_text(corner)}"
    t = Table(title=f"normalized sensitivities at the best sizing{at}", title_justify="left")
    t.add_column("parameter")
    t.add_column("step", justify="right")
    cols = [s.measures.index(m) for m in dict.fromkeys(shown) if m in s.measures]    # a measure twice constrained: once
    for i in cols:
        t.add_column(s.measures[i], justify="right")
    top = {i: max((abs(v) for v in s.matrix[i] if math.isfinite(v)), default=math.nan) for i in cols}
    flagged = 0
    for j, p in enumerate(s.params):
        cells = []
        for i in cols:
            v = s.matrix[i, j]
            mark = "?" if s.uncertain(i, j) else ""
            flagged += bool(mark)
            cells.append("—" if not math.isfinite(v) else f"[bold]{v:+.3f}{mark}" if abs(v) == top[i] else
                         f"{v:+.3f}{mark}")
        t.add_row(p, s.steps.get(p, "—"), *cells)
    console.print(t)
    shown_err = [s.error[i, j] for i in cols for j in range(len(s.params)) if math.isfinite(s.matrix[i, j])]
    worst = max((e for e in shown_err if math.isfinite(e)), default=math.nan)
    console.print(f"{s.simulations} simulations: central differences at each step and half of it (one-sided at a "
                  f"bound), Richardson-extrapolated; largest estimated error {worst:.2g}"
                  + (f"; ? marks {flagged} entries whose error is above 0.01 + 5% of the value, or unknown "
                     "(sensitivity.json: error)" if flagged else ""), highlight=False)
    for line in s.unknown:                          # a "—" said, with its error
        console.print(f"unknown: {as_text(line)}", highlight=False)

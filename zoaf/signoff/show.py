"""Rich rendering of sign-off results (kept out of ``zoaf.cli``, which only wires commands)."""
from __future__ import annotations

from typing import Any, Sequence

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ..show import fmt as _fmt   # as `zoaf optimize` shows values: SI prefixes, none on dB, degrees, areas


def corner_table(console: Console, problem: Any, history: Sequence[Any]) -> None:
    """The best sizing at each corner simulated (worst marked), and what the run spent and pruning saved."""
    from .cornerrun import SizingRecord

    sizings = [r for r in history if isinstance(r, SizingRecord)]
    if not sizings:
        return
    best = min(sizings, key=lambda r: (r.fom, r.idx))
    obj = problem.objective
    shown = [obj.measure, *dict.fromkeys(c.measure for c in obj.constraints if c.measure != obj.measure)]
    t = Table(title="best sizing per corner", title_justify="left")
    t.add_column("corner")
    for m in shown:
        t.add_column(m, justify="right")
    for r in best.corner_records:
        k = r.params["corner"]
        name = problem.corners[k].name + (" [red](worst)" if k == best.worst else "")
        t.add_row(name, *(_fmt(r.outcome.measures.get(m), problem.spec.unit_of(m)) for m in shown))
    console.print(t)
    n = len(problem.corners)
    sims = sum(r.sims for r in sizings)
    pruned = sum(r.pruned for r in sizings)
    console.print(f"{len(sizings)} sizings x {n} corners: {sims} simulations; pruning skipped "
                  f"{n * len(sizings) - sum(len(r.corner_records) for r in sizings)} corner simulations "
                  f"({pruned} sizings stopped early)", highlight=False)


def yield_table(console: Console, result: Any, unit_of: Any) -> None:
    """The yield with its 95% interval, and each measure's mean, sigma, limits and Cpk."""
    s = result.summary
    t = Table(title=f"Monte Carlo: {s.samples} samples", title_justify="left")
    for col in ("measure", "mean", "sigma", "LSL", "USL", "Cpk"):
        t.add_column(col, justify="left" if col == "measure" else "right")
    for st in s.stats:
        u = unit_of(st.name)
        cpk = "—" if st.cpk is None else f"[{'green' if st.cpk >= 1 else 'red'}]{st.cpk:.3g}"
        t.add_row(st.name, _fmt(st.mean, u), _fmt(st.sigma, u), _fmt(st.limits.lsl, u), _fmt(st.limits.usl, u), cpk)
    console.print(t)
    console.print(f"varied: {result.varied}", highlight=False)
    console.print(f"yield {s.yield_:.1%} ({s.passed}/{s.samples} pass; 95% Wilson interval {s.ci[0]:.1%} .. "
                  f"{s.ci[1]:.1%}; {s.failed_sims} failed simulations)", highlight=False)
    console.print(f"yield directory: {result.out}  (history.db, yield.json, report.md, hist_*.png)", highlight=False)


def sensitivity_table(console: Console, s: Any, new_sims: int, shown: Sequence[str], corner: str | None = None
                      ) -> None:
    """Parameters x the ``shown`` measures (all are in the JSON and the heat map); each column's largest
    |entry| in bold; ``corner``: the corner of a corner run they were taken at."""
    import math

    def n(k: int, what: str) -> str:
        return f"{k} {what}" + ("" if k == 1 else "s")

    at = "" if corner is None else f", corner {escape(corner)}"
    t = Table(title=f"normalized sensitivities at the best sizing{at} ({n(s.points, 'simulation')} of the run in "
                    f"the fit, {n(new_sims, 'top-up')})", title_justify="left")
    t.add_column("parameter")
    cols = [s.measures.index(m) for m in dict.fromkeys(shown) if m in s.measures]    # a measure twice constrained: once
    for i in cols:
        t.add_column(s.measures[i], justify="right")
    top = {i: max((abs(v) for v in s.matrix[i] if math.isfinite(v)), default=math.nan) for i in cols}
    for j, p in enumerate(s.params):
        cells = []
        for i in cols:
            v = s.matrix[i, j]
            cells.append("—" if not math.isfinite(v) else f"[bold]{v:+.3f}" if abs(v) == top[i] else f"{v:+.3f}")
        t.add_row(p, *cells)
    console.print(t)

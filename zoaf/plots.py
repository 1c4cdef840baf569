"""Figures (matplotlib, PNG, no screen): the convergence of one run, and a comparison's summary plots."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Iterable, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .history import Record  # noqa: E402
from .outfile import save_figure  # noqa: E402
from .problem import INFEASIBLE_OFFSET  # noqa: E402
from .stats import INF_STAND_IN, INF_SEEN, REFERENCE, ObjectiveSummary  # noqa: E402


def plain(text: str) -> str:
    """Text from a name someone else chose (a run directory's, a netlist's) as matplotlib draws it: its ``$`` kept
    as a dollar, not the start of mathtext (``$\\foo{$`` ended ``zoaf report`` with a ValueError traceback)."""
    return text.replace("$", r"\$")


def best_so_far(records: Sequence[Record]) -> tuple[np.ndarray, np.ndarray]:
    """(charged simulations, best FoM so far) after each record; the x axis counts simulations (cache hits are free)."""
    sims = np.cumsum([r.cost for r in records])
    best = np.minimum.accumulate([r.fom for r in records]) if records else np.array([])
    return sims, best


class FomAxes:
    """FoM axes that keep both regimes readable: when a plot holds infeasible FoMs (``INFEASIBLE_OFFSET`` +
    violation) and feasible ones, a short upper panel shows the violation (log) and the main panel the
    feasible FoMs (linear, or log when they are positive and span more than two decades)."""

    def __init__(self, fig: Any, values: Iterable[float], constrained: bool = True) -> None:
        v = np.asarray([x for x in values if np.isfinite(x)], dtype=float)
        feas, infeas = (v[v < INFEASIBLE_OFFSET], v[v >= INFEASIBLE_OFFSET]) if constrained else (v, v[:0])
        self.top = self.main = None
        if len(infeas) and len(feas):
            self.top, self.main = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [1, 2.2]})
        elif len(infeas):
            self.top = fig.subplots()
        else:
            self.main = fig.subplots()
        if self.top is not None:
            self.top.set_yscale("log")
            self.top.set_ylabel("infeasible:\nviolation", fontsize=8)
        if self.main is not None and len(feas) and feas.min() > 0 and feas.max() > 100 * feas.min():
            self.main.set_yscale("log")
        self.bottom = self.main if self.main is not None else self.top

    @property
    def axes(self) -> list[Any]:
        return [a for a in (self.top, self.main) if a is not None]

    def split(self, y: np.ndarray) -> list[tuple[Any, np.ndarray]]:
        """(axes, values to draw there; NaN elsewhere) pairs."""
        y = np.asarray(y, dtype=float)
        parts = []
        if self.top is not None:
            parts.append((self.top, np.where(y >= INFEASIBLE_OFFSET, np.maximum(y - INFEASIBLE_OFFSET, 1e-12), np.nan)))
        if self.main is not None:
            parts.append((self.main, np.where(y < INFEASIBLE_OFFSET, y, np.nan) if self.top is not None else y))
        return parts


def plot_convergence(records: Sequence[Record], path: str | Path, title: str = "") -> None:
    """Best-so-far FoM vs simulations, with the optimizer's phases shaded; a constrained FoM gets a violation
    panel above the feasible one (FomAxes), so neither regime flattens the other."""
    sims, best = best_so_far(records)
    fig = plt.figure(figsize=(7, 4.2), dpi=110)
    foms = [r.fom if np.isfinite(r.fom) else np.nan for r in records]
    constrained = any(r.outcome.feasible is not None for r in records)
    fa = FomAxes(fig, foms, constrained)
    for ax, y in fa.split(np.asarray(foms)):
        ax.scatter(sims, y, s=4, color="0.6", label="simulation", zorder=0)
    for ax, y in fa.split(best):
        ax.step(sims, y, where="post", color="C0", lw=1.8, label="best so far")
    colors = {ph: f"C{k + 1}" for k, ph in enumerate(dict.fromkeys(r.phase for r in records))}
    start = 0
    for i in range(1, len(records) + 1):
        if i == len(records) or records[i].phase != records[start].phase:
            for ax in fa.axes:
                ax.axvspan(sims[start] - 0.5, sims[i - 1] + 0.5, alpha=0.12, color=colors[records[start].phase],
                           lw=0)
            fa.axes[0].text((sims[start] + sims[i - 1]) / 2, 1.01, records[start].phase,
                            transform=fa.axes[0].get_xaxis_transform(), ha="center", va="bottom", fontsize=7)
            start = i
    fa.bottom.set_xlabel("simulations")
    if fa.main is not None:
        fa.main.set_ylabel("FoM (lower is better)")
        fa.main.legend(loc="upper right", fontsize=8)
    fa.axes[0].set_title(plain(title), fontsize=9, pad=14)
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)


# -- comparison plots ----------------------------------------------------------------------------------------
#: The most points of a curve against simulations (budgets are hundreds to thousands).
MAX_GRID = 10_000
#: The longest wall time (s, a year) the seconds axis spans: a received run's ``1e308`` overflowed matplotlib's log
#: ticks and ``Infinity`` was an axis limit (tracebacks); a run's times past it are off the axis.
MAX_WALL = 3.2e7


def _sims_grid(budget: int) -> np.ndarray:
    """The simulations axis: each simulation up to :data:`MAX_GRID`, that many points spread evenly beyond (a
    received history's recorded budget sized it: ``10**13`` was a 73 TiB MemoryError, ``10**9`` gigabytes)."""
    return np.arange(1, budget + 1) if budget <= MAX_GRID else np.unique(np.linspace(1, budget, MAX_GRID).round())


def _bands(curves: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    # Order statistics, no interpolation: the mean of an infeasible FoM (100 + violation) and a feasible one
    # is no FoM any run had, and would be drawn in the feasible panel.
    q = np.quantile(np.where(np.isinf(curves), INF_STAND_IN, curves), [0.25, 0.5, 0.75], axis=0, method="inverted_cdf")
    q[q > INF_SEEN] = np.nan
    return q[0], q[1], q[2]


def _color(i: int, method: str) -> str:
    return "black" if method == REFERENCE else f"C{i}"


def plot_summary(s: ObjectiveSummary, outdir: Path) -> list[Path]:
    """Three PNGs: median best-so-far vs simulations and vs seconds (IQR bands), final-FoM strip/box plot."""
    paths = [outdir / f"{s.name}-vs-simulations.png", outdir / f"{s.name}-vs-seconds.png",
             outdir / f"{s.name}-final.png"]
    budget = max(s.budget, max((r.nfev for rs in s.runs.values() for r in rs), default=1), 1)
    walls = [r.wall[(r.wall > 0) & (r.wall <= MAX_WALL)] for rs in s.runs.values() for r in rs]
    t_lo = min((w.min() for w in walls if len(w)), default=1e-3)
    t_hi = max((w.max() for w in walls if len(w)), default=1.0)
    _plot_curves(s, _sims_grid(budget), False, paths[0])
    _plot_curves(s, np.geomspace(max(t_lo, 1e-6), max(t_hi, t_lo * 1.01, 1e-6), 300), True, paths[1])
    _plot_finals(s, paths[2])
    return paths


def _plot_curves(s: ObjectiveSummary, grid: np.ndarray, in_seconds: bool, path: Path) -> None:
    """Median best-so-far FoM per method against simulations (or wall seconds), with IQR bands."""
    bands = {}
    for m, rs in s.runs.items():
        known = [r for r in rs if r.trajectory]          # runs kept without their course have no curve
        if known:
            curves = np.array([r.best_at_seconds(grid) if in_seconds else r.best_at_sims(grid) for r in known])
            bands[m] = _bands(curves)
    fig = plt.figure(figsize=(7.5, 5.0), dpi=110)
    fa = FomAxes(fig, [x for b in bands.values() for q in b for x in q] + [s.target])
    for i, (m, (lo, med, hi)) in enumerate(bands.items()):
        c = _color(i, m)
        for (ax, y_med), (_, y_lo), (_, y_hi) in zip(fa.split(med), fa.split(lo), fa.split(hi)):
            ax.plot(grid, y_med, color=c, lw=2.0 if m == REFERENCE else 1.4, drawstyle="steps-post",
                    label=plain(f"{m} ({sum(r.trajectory for r in s.runs[m])} runs)"))
            ax.fill_between(grid, y_lo, y_hi, color=c, alpha=0.15, lw=0, step="post")
    if math.isfinite(s.target):
        for ax, y in fa.split(np.array([s.target])):
            if np.isfinite(y[0]):
                ax.axhline(y[0], color="C3", lw=0.9, ls=":", label="target (best baseline median)")
    for ax in fa.axes:
        ax.grid(alpha=0.3, which="both", lw=0.5)
        if in_seconds:
            ax.set_xscale("log")
            ax.set_xlim(grid[0], grid[-1])      # with no finite FoM drawn, autoscaling put 0 on the log axis
    if fa.main is not None:
        fa.main.set_ylabel("best feasible FoM so far (lower is better)")
    fa.bottom.set_xlabel("wall seconds (log)" if in_seconds else "simulations")
    handles, labels = [], []
    for ax in fa.axes:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    fa.axes[0].legend(handles, labels, fontsize=7, loc="upper right")
    fa.axes[0].set_title(plain(f"{s.name}: median best-so-far FoM over runs, IQR band"), fontsize=10)
    fig.subplots_adjust(left=0.12, right=0.98, top=0.93, bottom=0.1, hspace=0.08)
    save_figure(fig, path)
    plt.close(fig)


def _plot_finals(s: ObjectiveSummary, path: Path) -> None:
    """Each run's final FoM per method: a strip plot over a box plot."""
    names = list(s.runs)
    data = [[r.final for r in s.runs[m]] for m in names]
    fig = plt.figure(figsize=(7.5, 4.5), dpi=110)
    fa = FomAxes(fig, [x for d in data for x in d])
    for ax in fa.axes:
        for i, d in enumerate(data):
            (_, y), = [(a, y) for a, y in fa.split(np.array(d)) if a is ax]
            shown = y[np.isfinite(y)]
            if len(shown) >= 3:
                ax.boxplot([shown], positions=[i + 1], widths=0.5, showfliers=False)
            jitter = np.linspace(-0.12, 0.12, len(d)) if len(d) > 1 else np.zeros(1)
            ax.scatter(i + 1 + jitter, y, s=12, color=_color(i, names[i]), alpha=0.8, zorder=3)
        ax.grid(alpha=0.3, axis="y", lw=0.5)
        ax.set_xlim(0.4, len(names) + 0.6)
    fa.bottom.set_xticks(range(1, len(names) + 1), [plain(m) for m in names])
    if fa.main is not None:
        fa.main.set_ylabel("final FoM (lower is better)")
    fa.axes[0].set_title(plain(f"{s.name}: final FoM of each run after {s.budget} simulations"), fontsize=10)
    fig.subplots_adjust(left=0.12, right=0.98, top=0.92, bottom=0.08, hspace=0.08)
    save_figure(fig, path)
    plt.close(fig)

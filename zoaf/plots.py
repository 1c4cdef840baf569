"""Figures (matplotlib, PNG, no screen): the convergence of one run, and FoM axes shared with the report."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .history import Record  # noqa: E402
from .spec import INFEASIBLE_OFFSET  # noqa: E402


def best_so_far(records: Sequence[Record]) -> tuple[np.ndarray, np.ndarray]:
    """(charged simulations, best FoM so far) after each record; the x axis counts only charged calls."""
    sims = np.cumsum([r.charged for r in records])
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
    fa.axes[0].set_title(title, fontsize=9, pad=14)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)

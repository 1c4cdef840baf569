"""Figures (matplotlib, PNG, no screen): convergence of one run."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .history import Record  # noqa: E402


def best_so_far(records: Sequence[Record]) -> tuple[np.ndarray, np.ndarray]:
    """(charged simulations, best FoM so far) after each record; the x axis counts only charged calls."""
    sims = np.cumsum([r.charged for r in records])
    best = np.minimum.accumulate([r.fom for r in records]) if records else np.array([])
    return sims, best


def plot_convergence(records: Sequence[Record], path: str | Path, title: str = "") -> None:
    """Best-so-far FoM vs simulations, with the optimizer's phases shaded."""
    sims, best = best_so_far(records)
    fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
    finite = np.isfinite(best)
    ax.step(sims[finite], best[finite], where="post", color="C0", lw=1.8, label="best so far")
    ax.scatter(sims, [r.fom if np.isfinite(r.fom) else np.nan for r in records], s=4, color="0.6",
               label="simulation", zorder=0)
    colors = {ph: f"C{k + 1}" for k, ph in enumerate(dict.fromkeys(r.phase for r in records))}
    start = 0
    for i in range(1, len(records) + 1):
        if i == len(records) or records[i].phase != records[start].phase:
            ax.axvspan(sims[start] - 0.5, sims[i - 1] + 0.5, alpha=0.12,
                       color=colors[records[start].phase], lw=0)
            ax.text((sims[start] + sims[i - 1]) / 2, 1.01, records[start].phase, transform=ax.get_xaxis_transform(),
                    ha="center", va="bottom", fontsize=7)
            start = i
    if finite.any():
        lo, hi = np.nanmin(best[finite]), np.nanmax(best[finite])
        pad = 0.05 * (hi - lo or 1.0)
        ax.set_ylim(lo - pad, hi + pad)
    ax.set_xlabel("simulations")
    ax.set_ylabel("FoM (lower is better)")
    ax.set_title(title, fontsize=9, pad=14)
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)

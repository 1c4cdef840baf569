"""Sign-off figures (matplotlib, PNG): a measure's Monte Carlo histogram, the sensitivity heat map."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ..outfile import save_figure  # noqa: E402
from ..plots import plain  # noqa: E402
from .mc import MeasureStats  # noqa: E402


def plot_histogram(values: Sequence[float], st: MeasureStats, unit: str, path: Path) -> None:
    """The samples of one measure with its spec limits (red) and mean (black)."""
    fig, ax = plt.subplots(figsize=(5.5, 3.4))
    v = np.asarray([x for x in values if np.isfinite(x)])
    if len(v):
        ax.hist(v, bins=min(40, max(8, len(v) // 8)), color="#4c72b0", alpha=0.85)
        ax.axvline(st.mean, color="black", lw=1, label=f"mean {st.mean:.4g}")
    for name, lim in (("LSL", st.limits.lsl), ("USL", st.limits.usl)):
        if lim is not None:
            ax.axvline(lim, color="#c0392b", lw=1.5, ls="--", label=f"{name} {lim:.4g}")
    cpk = "" if st.cpk is None else f", Cpk {st.cpk:.3g}"
    ax.set(xlabel=plain(f"{st.name} [{unit}]" if unit else st.name), ylabel="samples",
           title=plain(f"{st.name}: sigma {st.sigma:.3g}{cpk}"))
    ax.legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, path, dpi=110)
    plt.close(fig)


def plot_heatmap(matrix: np.ndarray, rows: Sequence[str], cols: Sequence[str], path: Path, title: str) -> None:
    """Normalized sensitivities, measures x parameters, on a symmetric colour scale."""
    fig, ax = plt.subplots(figsize=(max(5.0, 0.42 * len(cols) + 2), max(2.5, 0.42 * len(rows) + 1.2)))
    m = np.where(np.isfinite(matrix), matrix, 0.0)
    vmax = float(np.max(np.abs(m))) or 1.0
    im = ax.imshow(m, cmap="RdBu_r", vmin=-vmax, vmax=vmax, aspect="auto")
    ax.set_xticks(range(len(cols)), [plain(c) for c in cols], rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(rows)), [plain(r) for r in rows], fontsize=8)
    fig.colorbar(im, ax=ax, shrink=0.8)
    ax.set_title(plain(title), fontsize=9)
    fig.tight_layout()
    save_figure(fig, path, dpi=110)
    plt.close(fig)

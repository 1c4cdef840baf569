"""One-shot quasi-random multi-start: one scrambled Sobol batch (:mod:`zoaf.sobol`), distinct starts, budget split.

Pure functions: the optimizer decides when to call them and owns the budget bookkeeping.

Example:
    >>> import numpy as np
    >>> X = sobol_batch(16, 3, np.random.default_rng(0))
    >>> F = np.sum((X - 0.3) ** 2, axis=1)
    >>> order = distinct_ranking(X, F, min_distance=0.2)
    >>> bool(F[order[0]] == F.min())
    True
"""
from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np

from ..sobol import sobol_batch  # the one generator, shared with the baselines

__all__ = ["sobol_batch", "distinct_ranking", "rung_budget", "Stint", "PlannedStint", "plan_stints"]


class Stint(enum.Enum):
    """How a planned stint of a start is budgeted."""
    RUNG = "rung"              # a rung of successive halving: the cap ``rung_budget`` set when the start was made
    SHARE = "share"            # sequential starts: an equal share of the budget left when the stint begins
    REST = "rest"              # the best start after the rungs: everything left


@dataclass(frozen=True)
class PlannedStint:
    """One stint of the plan: which start runs, and on what budget."""

    kind: Stint
    start: int | None = None   # index of the start; None for ``REST``: the best start when the stint begins


def distinct_ranking(X: np.ndarray, F: np.ndarray, min_distance: float) -> list[int]:
    """Indices of finite-valued points, best first, skipping any within ``min_distance`` of a better kept one.

    The first k entries are the starts; the rest are restart candidates in order of quality. Ties keep the
    earlier index (deterministic).
    """
    F = np.asarray(F, float)
    order = [int(i) for i in np.lexsort((np.arange(len(F)), F)) if np.isfinite(F[i])]
    kept: list[int] = []
    for i in order:
        if all(np.linalg.norm(X[i] - X[j]) >= min_distance for j in kept):
            kept.append(i)
    return kept


def rung_budget(remaining: int, n_starts: int, rung_fraction: float, halving: bool) -> list[int]:
    """Budget of each start's first stint: a rung of successive halving, or an equal share (sequential).

    With halving, each start gets ``rung_fraction * remaining`` (then only the best continues, with whatever
    is left); without, the starts share ``remaining`` equally (the last one takes the rounding).
    """
    if n_starts <= 0 or remaining <= 0:
        return []
    if halving and n_starts > 1:
        rung = max(1, int(rung_fraction * remaining))
        return [rung] * n_starts
    share = remaining // n_starts
    return [share] * (n_starts - 1) + [remaining - share * (n_starts - 1)]


def plan_stints(n_starts: int, halving: bool) -> list[PlannedStint]:
    """The stints the starts run, in order: with halving (and more than one start) a rung each, then the best
    goes on; without, one share each."""
    if halving and n_starts > 1:
        return [PlannedStint(Stint.RUNG, j) for j in range(n_starts)] + [PlannedStint(Stint.REST)]
    return [PlannedStint(Stint.SHARE, j) for j in range(n_starts)]

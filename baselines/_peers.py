"""What the external peers share: integer axes as the library's own levels, finite stand-ins for failures.

A library that declares integers (Nevergrad, Optuna, NOMAD) works on level indices ``0 .. L-1``; the box point
of level k is the centre of its cell (:attr:`zoaf.optim.Optimizer.integer_levels`, ``to_levels``/``from_levels``);
a log-scaled integer is declared as such where the library can (Optuna, Nevergrad), its level the value less ``lo``.
Libraries that reject non-finite values are told finite stand-ins, worse than anything measured.
"""
from __future__ import annotations

import numpy as np

#: Stand-in for each constraint of a failed simulation: normalized violations are O(1) (1 = the spec missed by
#: its own size), so a failure ranks behind every measured design, feasible or not.
FAILED_VIOLATION = 1e3


class StandIn:
    """Finite values for a library that rejects ``inf``: a failure is worse than the worst finite value seen.

    The gap ``max(worst - best, |worst|, 1)`` keeps the stand-in clearly behind measured values on any scale.
    """

    def __init__(self) -> None:
        self.best, self.worst = np.inf, -np.inf

    def objective(self, values: np.ndarray) -> np.ndarray:
        values = np.asarray(values, dtype=float)
        fin = values[np.isfinite(values)]
        if len(fin):
            self.best, self.worst = min(self.best, float(fin.min())), max(self.worst, float(fin.max()))
        fail = 1.0 if not np.isfinite(self.worst) else self.worst + max(self.worst - self.best, abs(self.worst), 1.0)
        return np.where(np.isfinite(values), values, fail)

    @staticmethod
    def constraints(c: np.ndarray) -> np.ndarray:
        return np.where(np.isfinite(c), c, FAILED_VIOLATION)

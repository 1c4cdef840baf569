"""Which evaluated point the constraint-aware iterate moves to: a filter over (objective, violation) or an
exact penalty with an adaptive weight. Pure logic on numbers, no I/O.

The scalar FoM orders every feasible point before every infeasible one, so greedy acceptance on it can only
approach an active boundary from the feasible side and treats a point 1e-9 past it like a failed design. Both
rules here judge the objective and the violation v = sum_i max(c_i, 0) separately:

* ``filter`` (Fletcher and Leyffer): a point is acceptable when no pair in the filter (the infeasible
  iterates left behind, and the current iterate) has both a lower objective and a lower violation, with a
  small envelope, and its violation exceeds neither the iterate's nor a small ceiling: it may cross an active
  boundary a little where that buys objective, never wander outside.
* ``penalty``: a point is acceptable when it lowers the merit o + mu v. The weight mu grows to a multiple of
  the largest Lagrange multiplier estimate, the value at which the merit's minimizer is the constrained one.

Among acceptable points the iterate moves to the lowest merit (the filter uses the same weight to choose).

Example:
    >>> import numpy as np
    >>> rule = Acceptance(Rule.FILTER, weight=1.0, ceiling=1e-3)
    >>> rule.acceptable(1.0, 0.0, np.array([0.5, 2.0, 0.9]), np.array([1e-4, 0.0, 0.1])).tolist()
    [True, False, False]
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import nnls

__all__ = ["Rule", "Acceptance", "violation", "multipliers"]


class Rule(str, enum.Enum):
    FILTER = "filter"
    PENALTY = "penalty"


def violation(C: np.ndarray) -> np.ndarray:
    """Total violation per row of normalized constraint values (the FoM's, less its offset); +inf stays."""
    return np.sum(np.maximum(np.atleast_2d(C), 0.0), axis=1)


def multipliers(g0: np.ndarray, G: np.ndarray) -> np.ndarray:
    """Nonnegative least-squares Lagrange multipliers: min |g0 + G^T lam|, lam >= 0 (rows of ``G``: the
    gradients of the constraints near activity)."""
    if len(G) == 0:
        return np.zeros(0)
    lam, _ = nnls(G.T, -g0)
    return lam


@dataclass
class Acceptance:
    """One start's acceptance state: the rule, the penalty weight and the filter's pairs (objective,
    violation)."""

    rule: Rule
    weight: float
    ceiling: float                   # the filter accepts no violation above this or the iterate's
    envelope: float = 1e-5           # the filter's margin: a pair must beat an entry by this share of its violation
    pairs: list[tuple[float, float]] = field(default_factory=list)

    def merit(self, o: np.ndarray, v: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore"):
            m = np.asarray(o, float) + self.weight * np.asarray(v, float)
        return np.where(np.isfinite(m), m, np.inf)

    def acceptable(self, o_x: float, v_x: float, O: np.ndarray, V: np.ndarray) -> np.ndarray:
        """Which of the points (O, V) the iterate (o_x, v_x) may move to."""
        O, V = np.asarray(O, float), np.asarray(V, float)
        if self.rule is Rule.PENALTY:
            return self.merit(O, V) < self.merit(np.array(o_x), np.array(v_x))
        ok = np.isfinite(O) & (V <= max(self.ceiling, v_x))
        for oe, ve in [*self.pairs, (o_x, v_x)]:
            ok &= (V < (1.0 - self.envelope) * ve) | (O < oe - self.envelope * ve)
        return ok

    def choose(self, o_x: float, v_x: float, O: np.ndarray, V: np.ndarray) -> tuple[np.ndarray, int | None]:
        """(acceptable mask, index of the acceptable point of lowest merit or None)."""
        ok = self.acceptable(o_x, v_x, O, V)
        if not ok.any():
            return ok, None
        merit = np.where(ok, self.merit(O, V), np.inf)
        return ok, int(np.argmin(merit))

    def leave(self, o_x: float, v_x: float) -> None:
        """The iterate moves on: an infeasible one enters the filter (dominated pairs drop out)."""
        if self.rule is Rule.FILTER and v_x > 0:
            self.pairs = [(o, v) for o, v in self.pairs if o < o_x or v < v_x] + [(o_x, v_x)]

    def raise_weight(self, lam: np.ndarray, factor: float) -> None:
        """Keep the penalty weight at least ``factor`` times the largest multiplier estimate (never lower it:
        a shrinking weight lets the merit cycle)."""
        if len(lam):
            self.weight = max(self.weight, factor * float(np.max(lam)))

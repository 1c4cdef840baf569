"""Constraint-aware model step: a tiny trust-region problem on the local models of the objective and of each
constraint, as constrained derivative-free methods (COBYLA, SQP filters) model each constraint separately
instead of one penalized scalar with a cliff at the feasibility boundary. Pure: numpy and scipy solvers,
no state, no I/O.

The model at the iterate x (values, gradients and isotropic curvatures from ``regression_estimates``):

    minimize    g0.s + k0/2 |s|^2                       (objective; k0 >= |g0|/L caps the step at L)
    subject to  c_i + g_i.s (+ k_i/2 |s|^2) <= b_i      (constraints that the step could reach)
                0 <= x + s <= 1,  |s_j| <= L            (the box and the trust radius L)

It is solved as the projection of the model's minimizer y = -g0/k0 onto the modelled feasible set (``project``:
the dual in the m multipliers). A constraint's curvature enters only where positive: a concave constraint lies
below its linearization, so the linear model is the conservative one, and the set stays convex. The targets b_i = -(1 - tau)|c_i| keep a
fraction of the slack (interior methods' fraction to the boundary): a step from a feasible iterate stays
feasible for linear constraints and approaches an active boundary geometrically, instead of landing on it
where rounding or a curved constraint puts it on the wrong side of the FoM's cliff. When the targets cannot
all be met within the radius (an infeasible iterate), a restoration LP first finds the least l1 excess
(HiGHS), and the projection then descends the objective without giving any of that reduction back.

Example:
    >>> import numpy as np
    >>> m = LocalModel(value=np.array([0.0, -0.05]), grad=np.array([[-1.0, 0.0], [1.0, 0.0]]), curv=np.zeros(2))
    >>> s = model_step(m, np.array([0.5, 0.5]), 0.2, StepOptions())
    >>> np.round(s, 3).tolist() == [0.045, 0.0]              # stops short of c = x_0 - 0.55 <= 0
    True
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linprog, minimize

__all__ = ["LocalModel", "StepOptions", "model_step", "project", "restoration", "targets"]

#: A solved step may exceed a modelled constraint's target by this share of its current distance to the boundary
#: (the dual solver's accuracy; the target keeps ``1 - boundary_fraction`` of that distance, 100 times more).
FEASIBILITY_TOL = 1e-3


@dataclass(frozen=True)
class LocalModel:
    """Measures at the iterate with their estimated gradients and curvatures: row 0 is the objective, rows
    1..m the constraints (normalized, <= 0 satisfied)."""

    value: np.ndarray       # (1 + m,)
    grad: np.ndarray        # (1 + m, d)
    curv: np.ndarray        # (1 + m,)


@dataclass(frozen=True)
class StepOptions:
    """How the model problem is posed (the meaning and defaults are ``ZOAFConfig``'s fields of these names)."""

    boundary_fraction: float = 0.9
    near_active: float = 2.0
    curvature: bool = True
    constraint_curvature: bool = True
    restoration: bool = True


def targets(c: np.ndarray, boundary_fraction: float) -> np.ndarray:
    """Target value of each constraint after the step: the fraction ``1 - tau`` of its current distance to
    the boundary, on the feasible side (a satisfied constraint keeps that much slack, a violated one aims
    that far past the boundary)."""
    return -(1.0 - boundary_fraction) * np.abs(c)


def restoration(G: np.ndarray, r: np.ndarray, lb: np.ndarray, ub: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least l1 excess of the linearized constraints over their targets within the box: the LP
    min sum t s.t. G s - t <= r, t >= 0, lb <= s <= ub. Returns (s, t) (t = 0: every target is reachable)."""
    m, d = G.shape
    res = linprog(np.r_[np.zeros(d), np.ones(m)], A_ub=np.hstack([G, -np.eye(m)]), b_ub=r,
                  bounds=np.r_[np.c_[lb, ub], np.c_[np.zeros(m), np.full(m, np.inf)]], method="highs")
    if res.status != 0:       # cannot happen for a consistent box (s = 0, t = max(-r, 0) is feasible)
        return np.zeros(d), np.maximum(-r, 0.0)
    return np.clip(res.x[:d], lb, ub), np.maximum(res.x[d:], 0.0)


def model_step(model: LocalModel, x: np.ndarray, length: float, options: StepOptions) -> np.ndarray | None:
    """The model problem's step from ``x`` within radius ``length`` (see the module docstring); ``None`` when
    the model solver failed."""
    g0, d = model.grad[0], len(x)
    norm = float(np.linalg.norm(g0))
    k0 = max(model.curv[0] if options.curvature else 0.0, norm / length) if norm > 0 else 1.0
    y = -g0 / k0
    lb, ub = np.maximum(-x, -length), np.minimum(1.0 - x, length)
    c, G = model.value[1:], model.grad[1:]
    K = np.maximum(model.curv[1:], 0.0) if options.constraint_curvature else np.zeros(len(c))
    b = targets(c, options.boundary_fraction)
    reach = c + options.near_active * np.linalg.norm(G, axis=1) * length > b
    use = reach & np.isfinite(c) & np.all(np.isfinite(G), axis=1)
    if not options.restoration:
        use &= c <= b                 # ablation: only what the step can keep; the violated ones are ignored
    c, G, K, b = c[use], G[use], K[use], b[use]
    if not len(c):
        return np.clip(y, lb, ub)     # no constraint in reach: the box-projected model minimizer
    restored = None
    if np.any(c > b):
        restored, t = restoration(G, b - c, lb, ub)
        b = b + t
    s = project(y, c, G, K, b, lb, ub)
    excess = c + G @ s + 0.5 * K * (s @ s) - b
    if np.all(np.isfinite(s)) and np.all(excess <= FEASIBILITY_TOL * np.abs(c) + 1e-12):
        return s
    return restored                   # the curved model could not meet the linear restoration (or no solution)


def project(y: np.ndarray, c: np.ndarray, G: np.ndarray, K: np.ndarray, b: np.ndarray, lb: np.ndarray,
            ub: np.ndarray) -> np.ndarray:
    """The point of {s : c + G s + K/2 |s|^2 <= b, lb <= s <= ub} nearest to ``y`` (K >= 0: a convex set), by
    its dual over the m multipliers (L-BFGS-B with lambda >= 0). Because every curvature is isotropic the
    Lagrangian's minimizer over the box is explicit, s(lambda) = clip((y - G^T lambda) / (1 + K.lambda)), so
    the solver works in m <= a few dimensions, whatever d."""
    def negative_dual(lam: np.ndarray) -> tuple[float, np.ndarray]:
        s = np.clip((y - G.T @ lam) / (1.0 + K @ lam), lb, ub)
        excess = c + G @ s + 0.5 * K * (s @ s) - b
        return -(0.5 * float((s - y) @ (s - y)) + float(lam @ excess)), -excess
    res = minimize(negative_dual, np.zeros(len(c)), jac=True, method="L-BFGS-B", bounds=[(0.0, None)] * len(c),
                   options={"ftol": 1e-15, "gtol": 1e-13, "maxiter": 200})
    return np.clip((y - G.T @ res.x) / (1.0 + K @ res.x), lb, ub)

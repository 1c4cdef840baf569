"""Constraint-aware model step: a tiny trust-region problem on the local models of the objective and of each
constraint, as constrained derivative-free methods (COBYLA, SQP filters) model each constraint separately
instead of one penalized scalar with a cliff at the feasibility boundary. Pure: numpy and scipy solvers,
no state, no I/O.

The model at the iterate x (values, gradients and isotropic curvatures from ``regression_estimates``; with
``anisotropic_curvature`` a constraint's k_i |s|^2 becomes s^T H_i s, H_i = k_i I + (k_along - k_i) u_i u_i^T):

    minimize    g0.s + k0/2 |s|^2                       (objective and its fitted curvature)
    subject to  c_i + g_i.s (+ k_i/2 |s|^2) <= b_i      (constraints that the step could reach)
                0 <= x + s <= 1,  |s| <= L              (the box and the trust radius L)

It is solved as it stands, by SLSQP (``exact_step``, the default); the former solution, kept as the ablation
``projected-step``, projects the model's minimizer y = -g0/k0 onto the modelled feasible set (``project``: the
dual in the m multipliers): where k0 is small that minimizer is placed ``FAR`` radii away, and along an active
constraint that takes most of g0 its projection moves only a share of the radius, so the radius collapses.
A constraint's curvature enters only where positive: a concave constraint lies
below its linearization, so the linear model is the conservative one, and the set stays convex. The targets
b_i = -(1 - tau)|c_i| keep a fraction of the slack (interior methods' fraction to the boundary): a step from a
feasible iterate stays feasible for linear constraints and approaches an active boundary geometrically, instead
of landing on it where rounding or a curved constraint puts it on the wrong side of the FoM's cliff. When the
targets cannot all be met within the radius (an infeasible iterate), a restoration LP first finds the least l1
excess (HiGHS), and the step then descends the objective without giving any of that reduction back.

Example:
    >>> import numpy as np
    >>> m = LocalModel(value=np.array([0.0, -0.05]), grad=np.array([[-1.0, 0.0], [1.0, 0.0]]), curv=np.zeros(2))
    >>> steps = model_steps(m, np.array([0.5, 0.5]), 0.2, 2.0, StepOptions())
    >>> len(steps), np.round(steps[0], 3).tolist() == [0.025, 0.0]   # half way to c = x_0 - 0.55 <= 0
    (1, True)
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linprog, minimize

__all__ = ["Curvature", "LocalModel", "StepOptions", "convex_part", "model_steps", "project", "repair", "restoration",
           "shorten", "targets", "trust_region_qp", "quadratic"]

#: Without a positive curvature the objective's model is linear; its minimizer is then taken this many radii
#: away, so that the projection onto the trust region is the linear model's trust-region step.
FAR = 10.0

#: A step may exceed a modelled constraint by this share of the change the step makes to it (|g_i| |s|): far
#: below the estimates' own error, far above the dual solver's, so a step along an active boundary is not cut
#: to nothing by the solver's last digits.
MODEL_TOL = 1e-6

#: After a restoration, the solved step may exceed a modelled constraint's target by this share of its current
#: violation (the dual solver's accuracy; the target is ``1 - boundary_fraction`` of it past the boundary).
FEASIBILITY_TOL = 1e-3


@dataclass(frozen=True)
class LocalModel:
    """Measures at the iterate with their estimated gradients and curvatures: row 0 is the objective, rows
    1..m the constraints (normalized, <= 0 satisfied)."""

    value: np.ndarray       # (1 + m,)
    grad: np.ndarray        # (1 + m, d)
    curv: np.ndarray        # (1 + m,) isotropic curvatures; with ``axis``: the curvatures across it
    axis: np.ndarray | None = None        # (1 + m, d) unit directions of anisotropic curvature, or None
    curv_axis: np.ndarray | None = None   # (1 + m,) curvatures along ``axis``
    hess: np.ndarray | None = None        # (1 + m, d, d) full Hessians (least-change models), or None


@dataclass(frozen=True)
class Curvature:
    """The modelled constraints' Hessians K_i I + D_i u_i u_i^T + M_i (D = 0 and U = 0: isotropic; M: full
    Hessians of least-change models, or None)."""

    K: np.ndarray           # (m,) curvature across u_i (every direction when isotropic)
    D: np.ndarray           # (m,) along-minus-across curvature
    U: np.ndarray           # (m, d) unit directions
    M: np.ndarray | None = None   # (m, d, d)

    def form(self, p: np.ndarray, q: np.ndarray) -> np.ndarray:
        """p^T H_i q for every constraint i."""
        full = (self.M @ q) @ p if self.M is not None else 0.0
        return self.K * (p @ q) + self.D * ((self.U @ p) * (self.U @ q)) + full

    def take(self, use: np.ndarray) -> "Curvature":
        return Curvature(self.K[use], self.D[use], self.U[use], None if self.M is None else self.M[use])

    @property
    def isotropic(self) -> bool:
        return not np.any(self.D) and self.M is None


def convex_part(H: np.ndarray) -> np.ndarray:
    """Each symmetric matrix of ``H`` (..., d, d) with its negative eigenvalues set to 0: a constraint's model
    set stays convex (its concave part lies below the linearization: the conservative side), and the
    objective's model problem has one minimum."""
    w, V = np.linalg.eigh(0.5 * (H + np.swapaxes(H, -1, -2)))
    return (V * np.maximum(w, 0.0)[..., None, :]) @ np.swapaxes(V, -1, -2)


@dataclass(frozen=True)
class StepOptions:
    """How the model problem is posed (the meaning and defaults are ``ZOAFConfig``'s fields of these names)."""

    boundary_fraction: float = 0.5
    near_active: float = 2.0
    curvature: bool = True
    constraint_curvature: bool = True
    restoration: bool = True
    min_extension: float = 0.1
    anisotropic_curvature: bool = False
    exact_step: bool = True


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


def model_steps(model: LocalModel, x: np.ndarray, length: float, grow: float, options: StepOptions
                ) -> list[np.ndarray]:
    """A step's trial displacements from ``x``: the model problem's solution s within radius ``length``, then
    the same line extended to ``grow`` s, cut back to the modelled constraints and the box (ZOAF's one-batch
    line search, now along the constrained step). One solve serves both; a failed solve gives none. The
    extension is left out when the modelled constraints cut it back to within ``min_extension`` |s| of s: it
    would simulate (nearly) the same design twice."""
    g0, d = model.grad[0], len(x)
    norm = float(np.linalg.norm(g0))
    k0 = model.curv[0] if options.curvature else 0.0
    y = -g0 / max(k0, norm / (FAR * length)) if norm > 0 else np.zeros(d)
    c, G = model.value[1:], model.grad[1:]
    H = constraint_curvature(model, options)
    b = targets(c, options.boundary_fraction)
    use = (c + options.near_active * np.linalg.norm(G, axis=1) * length > b) & np.isfinite(c) \
        & np.all(np.isfinite(G), axis=1)
    if not options.restoration:
        use &= c <= b                 # ablation: only what the step can keep; the violated ones are ignored
    c, G, H, b = c[use], G[use], H.take(use), b[use]
    restored = None
    if np.any(c > b):                 # restoration within the box and the l-inf radius (an LP)
        restored, t = restoration(G, b - c, np.maximum(-x, -length), np.minimum(1.0 - x, length))
        b = b + t
    if model.hess is not None:       # least-change models: the objective's full Hessian, not a projection
        H0 = convex_part(model.hess[0]) if options.curvature else np.zeros((d, d))
        s = trust_region_qp(quadratic(g0, H0), length, c, G, H, b, -x, 1.0 - x)
    elif options.exact_step:         # the model problem itself, not the projection of a pseudo-minimizer
        s = trust_region_qp(quadratic(g0, max(k0, 0.0) * np.eye(d)), length, c, G, H, b, -x, 1.0 - x)
    else:
        s = project(y, length, c, G, H, b, -x, 1.0 - x)
    far = np.clip(grow * s, -x, 1.0 - x)
    if restored is None:
        slack = c - b - MODEL_TOL * np.linalg.norm(G, axis=1) * grow * float(np.linalg.norm(s))
        s = shorten(np.zeros(d), s, slack, G, H)
        far = shorten(s, far, slack, G, H)
    elif np.any(c + G @ s + 0.5 * H.form(s, s) - b > FEASIBILITY_TOL * np.abs(c)):
        s, far = restored, np.clip(grow * restored, -x, 1.0 - x)   # the curved model missed the linear restoration
    if not np.all(np.isfinite(s)):
        return []
    return [s, far] if np.linalg.norm(far - s) > options.min_extension * np.linalg.norm(s) else [s]


def repair(model: LocalModel, x: np.ndarray, p: np.ndarray, fixed: np.ndarray, radius: float,
           options: StepOptions) -> np.ndarray:
    """``p`` (a point ZOAF is about to simulate, one or more integer coordinates a whole cell from ``x``) with its
    other coordinates moved least, within ``radius``, so that the modelled constraints the move from ``x`` breaks
    are kept: a violated one no worse, a satisfied one back to the slack a model step keeps (``targets``).

    An integer's cell is a long move (a first-stage finger count 1 -> 2 on a log axis 1..8 is 39% of the box)
    whose effect on a constraint is often compensated along a continuous axis only (its gate width, a ratio):
    moved alone, the integer lands past that constraint and its probe says nothing of the basin beyond it.
    Linear constraint models, the integer coordinates (``fixed``) kept where they are."""
    c, G = model.value[1:], model.grad[1:]
    ok = np.isfinite(c) & np.all(np.isfinite(G), axis=1)
    c, G = c[ok], G[ok]
    delta = p - x
    moved = c + G @ delta + 0.5 * constraint_curvature(model, options).take(ok).form(delta, delta)
    broken = (moved > 0) & (moved > c)
    if not broken.any():
        return p
    b = np.where(c > 0, c, targets(c, options.boundary_fraction))
    b = np.where(broken, b, np.maximum(b, moved))      # the others: not broken by the repair either
    m, d = len(c), len(x)
    lb, ub = np.where(fixed, 0.0, np.maximum(-p, -radius)), np.where(fixed, 0.0, np.minimum(1.0 - p, radius))
    _, t = restoration(G, b - moved, lb, ub)       # what no repair within the box and radius can meet
    s = project(np.zeros(d), radius, moved, G, Curvature(np.zeros(m), np.zeros(m), np.zeros((m, d))), b + t, lb, ub)
    excess = np.maximum(moved + G @ s - b, 0.0)
    if not np.all(np.isfinite(s)) or excess.sum() >= np.maximum(moved - b, 0.0).sum():
        return p
    return np.clip(p + s, 0.0, 1.0)


def constraint_curvature(model: LocalModel, options: StepOptions) -> Curvature:
    """The constraints' curvatures in the model problem, negative ones clipped to 0: a concave constraint lies
    below its linearization, so the linear model is the conservative one, and the set stays convex."""
    m, d = len(model.value) - 1, model.grad.shape[1]
    if not options.constraint_curvature:
        return Curvature(np.zeros(m), np.zeros(m), np.zeros((m, d)))
    if model.hess is not None:
        return Curvature(np.zeros(m), np.zeros(m), np.zeros((m, d)), convex_part(model.hess[1:]))
    K = np.maximum(model.curv[1:], 0.0)
    if not options.anisotropic_curvature or model.axis is None or model.curv_axis is None:
        return Curvature(K, np.zeros(m), np.zeros((m, d)))
    return Curvature(K, np.maximum(model.curv_axis[1:], 0.0) - K, model.axis[1:])


def shorten(base: np.ndarray, end: np.ndarray, slack: np.ndarray, G: np.ndarray, H: Curvature) -> np.ndarray:
    """The farthest point p = base + t (end - base), t in [0, 1], meeting every modelled constraint
    slack + G.p + p^T H p / 2 <= 0, given that ``base`` meets them: what the dual solver leaves of infeasibility
    is cut away exactly, and the extended trial stops where the model says the boundary is."""
    dz = end - base
    q0 = slack + G @ base + 0.5 * H.form(base, base)
    a, k = G @ dz + H.form(base, dz), 0.5 * H.form(dz, dz)
    over = q0 + a + k > 0
    if not over.any():
        return end
    a, k, q = a[over], k[over], np.minimum(q0[over], 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        root = np.where(k > 0, (-a + np.sqrt(np.maximum(a * a - 4 * k * q, 0.0))) / (2 * k), -q / a)
    return base + float(np.clip(np.min(root), 0.0, 1.0)) * dz


def project(y: np.ndarray, radius: float, c: np.ndarray, G: np.ndarray, H: Curvature, b: np.ndarray,
            lb: np.ndarray, ub: np.ndarray) -> np.ndarray:
    """The point of {s : |s| <= radius, c + G s + K/2 |s|^2 <= b, lb <= s <= ub} nearest to ``y`` (K >= 0: a
    convex set). The trust region is one more isotropic constraint, |s|^2/2 - radius^2/2 <= 0, and the problem is
    solved by its dual over the multipliers (L-BFGS-B with lambda >= 0): because every curvature is isotropic
    the Lagrangian's minimizer over the box is explicit, s(lambda) = clip((y - G^T lambda) / (1 + K.lambda)),
    so the solver works in m + 1 dimensions, whatever d. Anisotropic curvatures have no such explicit
    minimizer over the box: ``project_primal``."""
    if not H.isotropic:
        return project_primal(y, radius, c, G, H, b, lb, ub)
    K = H.K
    c, G, K, b = np.r_[c, -0.5 * radius ** 2], np.vstack([G, np.zeros(len(y))]), np.r_[K, 1.0], np.r_[b, 0.0]

    def negative_dual(lam: np.ndarray) -> tuple[float, np.ndarray]:
        s = np.clip((y - G.T @ lam) / (1.0 + K @ lam), lb, ub)
        excess = c + G @ s + 0.5 * K * (s @ s) - b
        return -(0.5 * float((s - y) @ (s - y)) + float(lam @ excess)), -excess
    res = minimize(negative_dual, np.zeros(len(c)), jac=True, method="L-BFGS-B", bounds=[(0.0, None)] * len(c),
                   options={"ftol": 1e-15, "gtol": 1e-13, "maxiter": 200})
    return np.clip((y - G.T @ res.x) / (1.0 + K @ res.x), lb, ub)



def project_primal(y: np.ndarray, radius: float, c: np.ndarray, G: np.ndarray, H: Curvature, b: np.ndarray,
                   lb: np.ndarray, ub: np.ndarray) -> np.ndarray:
    """``project`` with anisotropic constraint curvatures: ``trust_region_qp`` on |s - y|^2 / 2."""
    return trust_region_qp(lambda s: (0.5 * float((s - y) @ (s - y)), s - y), radius, c, G, H, b, lb, ub)


def quadratic(g0: np.ndarray, H0: np.ndarray) -> Callable[[np.ndarray], tuple[float, np.ndarray]]:
    """The objective's model g0.s + s^T H0 s / 2 and its gradient."""
    def value(s: np.ndarray) -> tuple[float, np.ndarray]:
        Hs = H0 @ s
        return float(g0 @ s + 0.5 * s @ Hs), g0 + Hs
    return value


def trust_region_qp(objective: Callable[[np.ndarray], tuple[float, np.ndarray]], radius: float, c: np.ndarray,
                    G: np.ndarray, H: Curvature, b: np.ndarray, lb: np.ndarray, ub: np.ndarray) -> np.ndarray:
    """min objective(s) subject to c + G s + s^T H_i s / 2 <= b, |s| <= radius and the box, for curvatures
    without the dual's explicit minimizer (anisotropic or full Hessians, positive semi-definite, as is the
    objective: a convex problem), solved in the d step coordinates by SLSQP from s = 0, which meets the box: a
    few milliseconds at the circuits' d <= ~30."""
    def excess(s: np.ndarray) -> np.ndarray:
        return np.r_[b - c - G @ s - 0.5 * H.form(s, s), 0.5 * (radius ** 2 - s @ s)]

    def jacobian(s: np.ndarray) -> np.ndarray:
        J = -G - H.K[:, None] * s - (H.D * (H.U @ s))[:, None] * H.U
        return np.vstack([J - H.M @ s if H.M is not None else J, -s])
    d = len(lb)
    res = minimize(objective, np.zeros(d), jac=True, method="SLSQP", bounds=list(zip(lb, ub)),
                   constraints=[{"type": "ineq", "fun": excess, "jac": jacobian}],
                   options={"ftol": 1e-14, "maxiter": 200})
    s = np.clip(res.x, lb, ub)
    norm = float(np.linalg.norm(s))
    return s * min(1.0, radius / norm) if norm > 0 else s

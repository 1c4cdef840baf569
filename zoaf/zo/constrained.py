"""A ZOAF start's constraint-aware state: the measures behind its FoM, their local models, the acceptance rule.

When the problem reports its constraints, ZOAF keeps beside each evaluated point of a start its measures
y = [objective, c_1, ..., c_m] (the objective on the FoM's scale, constraints normalized, <= 0 satisfied),
fits every measure's gradient and curvature from the same neighbourhood (``regression_estimates``), draws the
step's trial points from the model problem (``model_step``) and moves the iterate by the acceptance rule
(``acceptance``). The probes (random or coordinate phase) are unchanged: they feed every model at once.

Example:
    >>> import numpy as np
    >>> st = ConstrainedState.new(np.array([1.0, 0.5]), fom=100.5, rule=Rule.FILTER, weight=1.0, ceiling=1e-3)
    >>> st.violation, st.best
    (0.5, 100.5)
"""
from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from threadpoolctl import ThreadpoolController

from . import estimators as est
from .acceptance import Acceptance, Rule, multipliers, violation
from .model_step import LocalModel, StepOptions, model_steps, repair

__all__ = ["ConstrainedState"]


@lru_cache(maxsize=1)
def _controller() -> ThreadpoolController:
    return ThreadpoolController()     # scans the loaded libraries once (~ms); each limit then costs ~10 us


def serial_blas() -> AbstractContextManager:
    """BLAS on one thread for the model's tiny solves: scipy's L-BFGS-B and HiGHS wrappers call LAPACK on
    matrices of a few rows, and a threaded OpenBLAS on busy cores then spends ~100x the work waking its threads
    (measured: 43 ms per simulation instead of 0.5 with the cores shared by other jobs)."""
    return _controller().limit(limits=1, user_api="blas")


@dataclass
class ConstrainedState:
    """Measures of the iterate and of the start's memory, the fitted local model, the acceptance rule."""

    y: np.ndarray                    # the iterate's measures [objective, c_1..c_m]
    Y: np.ndarray                    # measures of the start's memory points (rows aligned with its X)
    acceptance: Acceptance
    best: float                      # the start's best FoM: the monitor's trace (the filter's lexicographic order)
    model: LocalModel | None = None
    hessians: np.ndarray | None = None   # (1 + m, d, d): the least-change models' Hessians, kept across refits

    @classmethod
    def new(cls, y: np.ndarray, fom: float, rule: Rule, weight: float, ceiling: float,
            envelope: float = 1e-5) -> "ConstrainedState":
        """A start at measures ``y`` with the FoM ``fom``."""
        y = np.asarray(y, float)
        return cls(y=y.copy(), Y=np.empty((0, len(y))), acceptance=Acceptance(rule, weight, ceiling, envelope),
                   best=fom)

    @property
    def violation(self) -> float:
        return float(violation(self.y[1:])[0])

    def remember(self, Y: np.ndarray, F: np.ndarray, keep: int) -> None:
        """Append the measures of the points the start keeps (the finite-FoM rows, as its X) and its best FoM."""
        ok = np.isfinite(F)
        self.Y = np.vstack([self.Y, Y[ok]])[-keep:]
        if ok.any():
            self.best = min(self.best, float(np.min(F[ok])))

    def judge(self, Y: np.ndarray) -> tuple[np.ndarray, int | None]:
        """(which points of a batch are acceptable from the iterate, the one to move to or None)."""
        return self.acceptance.choose(float(self.y[0]), self.violation, Y[:, 0], violation(Y[:, 1:]))

    def ratios(self, S: np.ndarray, Y: np.ndarray) -> np.ndarray:
        """Each trial's actual merit reduction over the one its model (the model the trials came from)
        predicted, on the acceptance rule's merit o + mu v; a step the model predicted no gain for scores 1 if
        it gained, else 0."""
        m = self.model
        if m is None:
            return np.zeros(len(S))
        if m.hess is not None:
            quad = np.einsum("ni,rij,nj->nr", S, m.hess, S)
        else:
            quad = np.sum(S * S, axis=1)[:, None] * m.curv
        P = m.value + S @ m.grad.T + 0.5 * quad
        here = self.acceptance.merit(np.array([self.y[0]]), np.array([self.violation]))[0]
        actual = here - self.acceptance.merit(Y[:, 0], violation(Y[:, 1:]))
        predicted = here - self.acceptance.merit(P[:, 0], violation(P[:, 1:]))
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(predicted > 0, actual / predicted, (actual > 0).astype(float))

    def move(self, y: np.ndarray) -> None:
        self.acceptance.leave(float(self.y[0]), self.violation)
        self.y = np.asarray(y, float).copy()

    def refit(self, x: np.ndarray, X: np.ndarray, Y: np.ndarray, weights: np.ndarray | None, curvature: bool,
              reach: float, weight_factor: float, split_from: tuple[np.ndarray, np.ndarray] | None = None,
              least_change: bool = False) -> np.ndarray:
        """Fit every measure's model at ``x`` from memory points (X, Y) (``split_from``: each constraint's
        curvature along its gradient and across it, ``estimators.axis_curvatures``, from these points: the
        whole memory, as the neighbourhood's d + 2 points leave the residual of a d + 1 unknown fit one degree
        of freedom, and the split then returns the isotropic value both ways); raise the penalty weight to the
        multipliers of the constraints within ``reach`` of activity. ``least_change``: quadratic models that
        interpolate the points with the Hessians changed least since the last refit
        (``estimators.least_change_models``), in place of the isotropic fit. Returns the descent gradient the probes
        and frozen bounds follow: the objective's when feasible, the violated constraints' sum otherwise."""
        with serial_blas():
            if least_change:
                H = self.hessians if self.hessians is not None else np.zeros((len(self.y), len(x), len(x)))
                G, self.hessians = est.least_change_models(x, self.y, X, Y, H)
                K = np.zeros(len(self.y))
            else:
                G, K = est.regression_estimates(x, self.y, X, Y, weights, curvature)
            c, Gc = self.y[1:], G[1:]
            near = np.isfinite(c) & (c > -reach * np.linalg.norm(Gc, axis=1))
            self.acceptance.raise_weight(multipliers(G[0], Gc[near]), weight_factor)
            if split_from is not None and curvature:
                U, along, across = est.axis_curvatures(x, self.y, *split_from, G, K)
                across[0], along[0] = K[0], K[0]     # the objective keeps its isotropic fit (predicted well)
                self.model = LocalModel(value=self.y.copy(), grad=G, curv=across, axis=U, curv_axis=along)
            else:
                self.model = LocalModel(value=self.y.copy(), grad=G, curv=K, hess=self.hessians if least_change
                                        else None)
        violated = np.isfinite(c) & (c > 0)
        return G[0] if not violated.any() else np.sum(Gc[violated], axis=0)

    def trials(self, x: np.ndarray, alpha: float, grow: float, options: StepOptions,
               unit_steps: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """A step's trial points (``model_steps`` within radius ``alpha``, extended by ``grow``; integer
        coordinates moved by whole steps or not at all) and the length of each step actually taken: the
        curvature and the constraints cut steps short of the radius, and the step length (with it the probe
        distance and the neighbourhood) must follow the steps that succeed, not the radii offered (measured:
        with the radii, the step length sat at its cap of 1 while the steps were 1e-3)."""
        if self.model is None:
            return np.empty((0, len(x))), np.empty(0)
        with serial_blas():
            steps = model_steps(self.model, x, alpha, grow, options)
        if not steps:
            return np.empty((0, len(x))), np.empty(0)
        points = np.clip(x + est.min_step_displacement(np.array(steps), unit_steps), 0.0, 1.0)
        return points, np.linalg.norm(points - x, axis=1)

    def repaired(self, x: np.ndarray, P: np.ndarray, unit_steps: np.ndarray, options: StepOptions) -> np.ndarray:
        """The batch ``P`` with each point that moves an integer coordinate by a cell repaired along the continuous
        ones (``model_step.repair``), the repair no longer than the point's own move from ``x``."""
        fixed = np.asarray(unit_steps) > 0
        if self.model is None or not fixed.any() or not len(P):
            return P
        cells = np.any(np.abs(P - x)[:, fixed] >= 0.5 * np.asarray(unit_steps)[fixed], axis=1)
        out = P.copy()
        with serial_blas():
            for i in np.flatnonzero(cells):
                out[i] = repair(self.model, x, P[i], fixed, float(np.linalg.norm(P[i] - x)), options)
        return out

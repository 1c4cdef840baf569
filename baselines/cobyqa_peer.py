"""COBYQA (Ragonneau & Zhang): derivative-free trust-region SQP on quadratic models, with nonlinear constraints.

The ``cobyqa`` package runs its own loop; :class:`zoaf.baselines._own_loop.OwnLoop` turns it into ask/tell.
On a constrained problem the normalized constraints are COBYQA's nonlinear inequality constraints
``c(x) <= 0`` (modelled by their own quadratics); the objective is the FoM where it is unconstrained and the
objective (FoM scale) where it is constrained. Failed simulations are told as finite stand-ins worse than any
measured value (COBYQA requires finite values). Integer axes are not declared: COBYQA is a continuous method
(the box rounds them), the one peer here without integer support.

Example:
    >>> import numpy as np
    >>> from zoaf.baselines.cobyqa_peer import COBYQA
    >>> opt = COBYQA(2, budget=40, seed=0)
    >>> while not opt.done:
    ...     x = opt.ask()
    ...     opt.tell(x, np.sum((x - 0.3) ** 2, axis=1))
    >>> bool(opt.best_f < 1e-4)
    True
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from ._own_loop import Evaluate, LoopClosed, OwnLoop


@dataclass(frozen=True)
class COBYQAConfig:
    """COBYQA's settings (package defaults unless said).

    Attributes:
        radius_init: initial trust-region radius, a quarter of the box edge (cold CMA-ES's sigma0). COBYQA's
            docs advise a tenth of the greatest expected change of x0; from the box centre that is 0.05 per
            axis to 0.05 sqrt(d) overall, which would spend the 2d + 1 interpolation points on a tiny patch.
        radius_final: final radius 1e-3, ZOAF's smallest probe (SPICE noise floor), not the package's 1e-6:
            smaller moves only fit noise, and reaching it is COBYQA's convergence.
        nb_points: interpolation points, None = the package's 2d + 1.
        maxfev: None = the budget (the adapter never lets it ask more).
    """

    radius_init: float = 0.25
    radius_final: float = 1e-3
    nb_points: int | None = None
    maxfev: int | None = None

    def __post_init__(self) -> None:
        """The package's own rules, checked before its thread starts (its ValueError ended the run at the first
        ask); a maxfev of 0 read as None."""
        if not 0 <= self.radius_final <= self.radius_init or self.radius_init <= 0:
            raise ValueError(f"radii must satisfy 0 <= radius_final <= radius_init, radius_init > 0, got "
                             f"radius_init={self.radius_init}, radius_final={self.radius_final}")
        if self.maxfev == 0:
            raise ValueError("maxfev must be at least 1 (or None: the budget), got 0")


class COBYQA(OwnLoop):
    """COBYQA from x0 (else the box centre) on [0, 1]^d, constraints as nonlinear constraints; one point per ask."""

    name = "cobyqa"
    config_class = COBYQAConfig
    requires, extra = ("cobyqa",), "peers"

    def _library_loop(self, start: np.ndarray, nconstraints: int, seed: int) -> Callable[[Evaluate], None]:
        cfg = self.config
        options = {"maxfev": min(cfg.maxfev or self.budget, self.budget), "radius_init": cfg.radius_init,
                   "radius_final": cfg.radius_final}
        if cfg.nb_points is not None:
            options["nb_points"] = cfg.nb_points
        return cobyqa_loop(start, nconstraints, options)

    def _to_box(self, v: np.ndarray) -> np.ndarray:
        """COBYQA's coordinates are the box's: no integer levels declared (the box rounds integer axes). The
        shared level mapping would read x0's box coordinate on an integer axis as a level index and confine
        every ask to the two lowest levels (cells 0 and 1 of [0, 1] rounded)."""
        return np.asarray(v, dtype=float)


def cobyqa_loop(start: np.ndarray, nconstraints: int, options: dict[str, Any]) -> Callable[[Evaluate], None]:
    """COBYQA's whole run on [0, 1]^d from ``start`` (``options``: the package's), as a function of the evaluation
    callback; ``nconstraints`` > 0: the answers' constraint vectors are its nonlinear constraints ``c(x) <= 0``.
    Shared by the peer and ZOAF's local phase (``ZOAFConfig.local``)."""
    import cobyqa
    from scipy.optimize import Bounds, NonlinearConstraint

    dim = len(start)

    def loop(evaluate: Evaluate) -> None:
        last: dict[bytes, Any] = {}

        def answer(x: np.ndarray) -> Any:   # COBYQA asks the objective and the constraints separately
            key = np.asarray(x, dtype=float).tobytes()
            if key not in last:
                got = evaluate(x)
                if got is None:
                    raise LoopClosed
                last.clear()
                last[key] = got
            return last[key]

        constraints = (NonlinearConstraint(lambda x: answer(x)[1], -np.inf, 0.0),) if nconstraints else ()
        try:
            cobyqa.minimize(lambda x: answer(x)[0], start, bounds=Bounds(np.zeros(dim), np.ones(dim)),
                            constraints=constraints, options={**options, "disp": False})
        except LoopClosed:
            pass

    return loop

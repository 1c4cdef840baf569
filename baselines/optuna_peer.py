"""Optuna's multivariate TPE (``TPESampler(multivariate=True, constraints_func=...)``) through ``study.ask/tell``.

Each axis is a suggested parameter: ``suggest_float(0, 1)`` for a continuous one, ``suggest_int(0, L-1)`` for an
integer one (its level index; the box point is the level's cell centre), so TPE models integers natively. A
given x0 is enqueued as the first trial (``study.enqueue_trial``), as Optuna users seed a known design. On a
constrained problem the normalized constraints are stored on the trial and returned by ``constraints_func``
(Optuna's constrained TPE: feasible trials rank first, infeasible ones by total violation); the value told is
the objective (a finite stand-in, worse than any measured, where only the objective is unmeasurable). A failed
simulation is told as ``TrialState.FAIL``, Optuna's own meaning. ``workers`` trials are asked per batch (TPE's
default ``constant_liar`` keeps them apart).

Example:
    >>> import numpy as np
    >>> from zoaf.baselines.optuna_peer import TPE
    >>> opt = TPE(2, budget=40, seed=0)
    >>> while not opt.done:
    ...     x = opt.ask()
    ...     opt.tell(x, np.sum((x - 0.3) ** 2, axis=1))
    >>> bool(opt.best_f < 0.02)
    True
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from zoaf.optim import Optimizer

from ._peers import StandIn

#: Trial attribute holding the constraint values for ``constraints_func``.
CONSTRAINTS = "constraints"


@dataclass(frozen=True)
class TPEConfig:
    """TPE's settings: Optuna's defaults except ``multivariate=True`` (Optuna's docs: better on correlated
    parameters, which sizing variables are), as its users configure it for a black box.

    Attributes:
        multivariate: model the joint density (Falkner et al. 2018) instead of one per parameter.
        n_startup_trials: random trials before TPE starts (Optuna's 10).
        n_ei_candidates: candidates scored per suggestion (Optuna's 24).
        constant_liar: batches of trials kept apart by a pessimistic lie for running trials (Optuna's default).
    """

    multivariate: bool = True
    n_startup_trials: int = 10
    n_ei_candidates: int = 24
    constant_liar: bool = True

    def __post_init__(self) -> None:
        if self.n_ei_candidates < 1:          # Optuna's ValueError at the first suggestion, after the startup trials
            raise ValueError(f"n_ei_candidates must be at least 1, got {self.n_ei_candidates}")


def _constraints(trial: Any) -> list[float]:
    return trial.user_attrs.get(CONSTRAINTS, [])


class TPE(Optimizer):
    """Optuna multivariate TPE on [0, 1]^d; ``workers`` trials per ask."""

    name = "tpe"
    requires, extra = ("optuna",), "peers"
    config_class = TPEConfig

    def __init__(self, dim: int, budget: int, seed: int | None = None, *, unit_steps: np.ndarray | None = None,
                 workers: int = 1, x0: np.ndarray | None = None, **options: Any) -> None:
        import optuna

        super().__init__(dim, budget, seed, unit_steps=unit_steps, workers=workers, x0=x0, **options)
        cfg = self.config
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")   # ExperimentalWarning for multivariate/constraints_func
            sampler = optuna.samplers.TPESampler(
                multivariate=cfg.multivariate, n_startup_trials=cfg.n_startup_trials,
                n_ei_candidates=cfg.n_ei_candidates, constant_liar=cfg.constant_liar,
                seed=int(self.rng.integers(2**31 - 1)), constraints_func=_constraints)
        self._study = optuna.create_study(sampler=sampler, direction="minimize")
        self._levels = self.integer_levels
        if self.x0 is not None:
            self._study.enqueue_trial({self._pname(i): self._suggested(i, u) for i, u in enumerate(self.x0)})
        self._pending: list[Any] = []
        self._stand_in = StandIn()
        self._phase = self.name

    @staticmethod
    def _pname(i: int) -> str:
        return f"x{i}"

    def _suggested(self, i: int, u: float) -> float | int:
        """The value of parameter i that the box coordinate ``u`` is (for the designer's start)."""
        if self.is_log_integer(i):
            return int(self.integer_axes[i].value(u))
        L = int(self._levels[i])
        return int(min(max(np.floor(u * L), 0), L - 1)) if L else float(u)

    def _suggest_one(self, trial: Any, i: int) -> float:
        """Parameter i in Optuna's own terms: a log-scaled integer as ``suggest_int(lo, hi, log=True)``."""
        axis, L = self.integer_axes[i], int(self._levels[i])
        if self.is_log_integer(i):
            return trial.suggest_int(self._pname(i), axis.lo, axis.hi, log=True) - axis.lo
        return trial.suggest_int(self._pname(i), 0, L - 1) if L else trial.suggest_float(self._pname(i), 0.0, 1.0)

    def _suggest(self, trial: Any) -> np.ndarray:
        return self.from_levels(np.array([self._suggest_one(trial, i) for i in range(self.dim)], float))

    def _ask(self) -> np.ndarray:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self._pending = [self._study.ask() for _ in range(min(self.workers, self.remaining))]
            return np.array([self._suggest(t) for t in self._pending])

    def _tell(self, x: np.ndarray, f: np.ndarray, c: np.ndarray | None, objective: np.ndarray | None) -> None:
        from optuna.trial import TrialState

        raw = f if objective is None else objective
        failed = ~np.isfinite(f) if c is None else ~np.isfinite(c).all(axis=1)
        value = self._stand_in.objective(raw)   # measured constraints, unmeasurable objective: worst value
        for i, trial in enumerate(self._pending[: len(f)]):
            if c is not None:
                trial.set_user_attr(CONSTRAINTS, self._stand_in.constraints(c[i]).tolist())
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                if failed[i]:
                    self._study.tell(trial, state=TrialState.FAIL)
                else:
                    self._study.tell(trial, float(value[i]))
        self._pending = []

"""Differential evolution: an ask/tell port of scipy's ``differential_evolution`` with deferred updating.

One generation is one batch: every trial vector of a generation is built from the same population (scipy's
``updating='deferred'``, what scipy itself uses with ``workers > 1``), simulated together, then each trial
replaces its parent when it is no worse. The strategy is scipy's default ``best1bin``:
``mutant = best + F * (x_r1 - x_r2)`` with r1, r2 distinct random members other than the parent, binomial
crossover with rate CR and one coordinate always taken from the mutant, and coordinates that leave the box
replaced by uniform random values (scipy's ``_ensure_constraint``).

Defaults and why (:class:`DEConfig`):

* strategy ``best1bin``, mutation F dithered uniformly in (0.5, 1) once per generation, recombination
  CR = 0.7, Latin hypercube initial population: scipy's defaults.
* population: ``clip(budget // 20, 10, 15 * d)``, at least ``workers``. scipy's default (15 * d = 330 at
  d = 22) would spend more than a 300-simulation budget on the initial population alone; DE needs generations
  to work, so the population is sized for about 20 generations (15 at d = 22, budget 300). A quick test
  (d = 22, budget 300, 7 seeds; median best of population 12/15/20/30): shifted sphere 0.16/0.23/0.40/0.48,
  Rosenbrock 580/880/1700/2100, Rastrigin 190/180/191/187: smaller is better at this budget, 15 keeps a
  little more diversity than 12 for multimodal problems.
* no polishing (scipy's ``polish=True`` runs L-BFGS-B with finite differences afterwards: a different method,
  and budget it would spend outside DE) and no ``tol`` convergence stop (the budget is the stop); the run ends
  early only if the population has collapsed to one point (every trial would repeat it).
* failures (``+inf``) simply lose every selection; scipy treats non-finite energies the same way.
* constraints (``c`` told): scipy's feasibility rules (Lampinen's, as ``differential_evolution`` applies them
  with ``constraints=``): a trial replaces its parent when both are feasible and its objective is no worse,
  when it is feasible and the parent is not, or when both are infeasible and it violates *every* constraint
  no more than the parent (scipy compares violations per constraint, not their sum). The best member (for
  ``best1bin``) is the feasible one with the lowest objective, else the least total violation: the FoM's
  order. Failed simulations violate every constraint infinitely.

Example:
    >>> import numpy as np
    >>> from zoaf.baselines.de import DE
    >>> opt = DE(3, budget=400, seed=0)
    >>> while not opt.done:
    ...     x = opt.ask()
    ...     opt.tell(x, np.sum((x - 0.3) ** 2, axis=1))
    >>> bool(opt.best_f < 1e-3)
    True
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.stats import qmc

from zoaf.methodconfig import AT_MOST_BUDGET
from zoaf.optim import Optimizer, StopReason

#: Generations the default population is sized for (population = budget // this).
TARGET_GENERATIONS = 20
#: Bounds of the default population: DE needs a few members; scipy's default multiplier is 15 per coordinate.
MIN_POPSIZE, MAX_POPSIZE_PER_DIM = 10, 15


@dataclass(frozen=True)
class DEConfig:
    """scipy's ``differential_evolution`` defaults, except the population (see the module docstring).

    Attributes:
        popsize: absolute population (not scipy's per-dimension multiplier); None = ``clip(budget // 20, 10,
            15 d)``, at least ``workers``.
        mutation: F, a float or a (lo, hi) dither range.
        recombination: crossover rate CR.
        strategy, init, updating, polish: scipy's ``best1bin``, Latin hypercube, ``deferred`` (one generation
            is one batch), no polishing (it would spend budget outside DE).
        constraints: scipy's feasibility rules (per-constraint comparison among infeasible members).

    Fields that name what the method does (not options) are ``init=False``: shown in reports, never passed.
    """

    popsize: int | None = field(default=None, metadata=AT_MOST_BUDGET)
    mutation: float | tuple[float, float] = (0.5, 1.0)
    recombination: float = 0.7
    strategy: str = field(default="best1bin", init=False)
    init: str = field(default="latinhypercube", init=False)
    updating: str = field(default="deferred", init=False)
    polish: bool = field(default=False, init=False)
    constraints: str = field(default="scipy feasibility rules", init=False)

    def __post_init__(self) -> None:
        try:
            m = np.atleast_1d(np.asarray(self.mutation, dtype=float))
        except (TypeError, ValueError):      # text: numpy's "could not convert string to float", the option unnamed
            m = np.empty(0)
        if not (m.size in (1, 2) and np.all((m >= 0) & (m <= 2))):
            raise ValueError(f"mutation must be a float or a (lo, hi) range within [0, 2], got {self.mutation}")
        if not 0 <= self.recombination <= 1:
            raise ValueError(f"recombination must be in [0, 1], got {self.recombination}")


class DE(Optimizer):
    """scipy-style ``best1bin`` differential evolution, one generation per ask (settings: :class:`DEConfig`)."""

    name = "de"
    config_class = DEConfig

    def __init__(self, dim: int, budget: int, seed: int | None = None, *, unit_steps: np.ndarray | None = None,
                 workers: int = 1, x0: np.ndarray | None = None, **options: Any) -> None:
        super().__init__(dim, budget, seed, unit_steps=unit_steps, workers=workers, x0=x0, **options)
        cfg = self.config
        popsize = cfg.popsize
        if popsize is None:
            popsize = min(max(budget // TARGET_GENERATIONS, MIN_POPSIZE), MAX_POPSIZE_PER_DIM * dim)
        self.popsize = max(self.workers, int(popsize), 4)  # best1bin needs the parent plus 2 others
        m = np.atleast_1d(np.asarray(cfg.mutation, dtype=float))
        self.dither = None if m.size == 1 else (float(m.min()), float(m.max()))
        self.scale = float(m[0])
        self.cr = float(cfg.recombination)
        self.violations: np.ndarray | None = None   # (popsize, m) per-constraint violations, when constrained
        self.population: np.ndarray | None = None
        self.energies = np.full(self.popsize, np.inf)
        self._trials: np.ndarray | None = None
        self._phase = "init"

    def _init_population(self) -> np.ndarray:
        lhs = qmc.LatinHypercube(self.dim, seed=int(self.rng.integers(2**63 - 1)))
        pop = lhs.random(self.popsize)
        if self.x0 is not None:  # scipy's x0: replaces the first member
            pop[0] = self.x0
        return pop

    def _make_trials(self) -> np.ndarray:
        pop, n, d = self.population, self.popsize, self.dim
        if self.dither is not None:
            self.scale = float(self.rng.uniform(*self.dither))
        best = pop[int(np.argmin(self.energies))]
        trials = pop.copy()
        for j in range(n):
            others = np.delete(np.arange(n), j)
            r1, r2 = self.rng.permutation(others)[:2]
            mutant = best + self.scale * (pop[r1] - pop[r2])
            cross = self.rng.random(d) < self.cr
            cross[self.rng.integers(d)] = True
            trials[j] = np.where(cross, mutant, pop[j])
        oob = (trials < 0) | (trials > 1)
        trials[oob] = self.rng.random(int(oob.sum()))
        return trials

    def _ask(self) -> np.ndarray:
        if self.population is None:
            self._trials = self._init_population()
        else:
            self._phase = "de"
            self._trials = self._make_trials()
        return self._trials

    def _tell(self, x: np.ndarray, f: np.ndarray, c: np.ndarray | None = None,
              objective: np.ndarray | None = None) -> None:
        k = len(f)  # the base may truncate the last generation to the budget left
        v = None if c is None else np.maximum(c, 0.0)
        if self.population is None:
            self.population = self._trials.copy()
            self.energies[:k] = f
            # members never simulated (budget ran out) keep +inf and lose their first selection
            if v is not None:
                self.violations = np.full((self.popsize, v.shape[1]), np.inf)
                self.violations[:k] = v
        else:
            better = self._accepts(f, v, k)
            self.population[:k][better] = x[better]
            self.energies[:k][better] = f[better]
            if v is not None:
                self.violations[:k][better] = v[better]
        if np.ptp(self.population, axis=0).max() == 0.0:
            self._stop = StopReason.CONVERGED

    def _accepts(self, f: np.ndarray, v: np.ndarray | None, k: int) -> np.ndarray:
        """Which trials replace their parents: lower-or-equal FoM, or scipy's feasibility rules."""
        if v is None or self.violations is None:
            return f <= self.energies[:k]
        parent = self.violations[:k]
        trial_ok, parent_ok = np.all(v <= 0, axis=1), np.all(parent <= 0, axis=1)
        both = trial_ok & parent_ok & (f <= self.energies[:k])   # feasible: FoM == objective
        return both | (trial_ok & ~parent_ok) | (~trial_ok & ~parent_ok & np.all(v <= parent, axis=1))

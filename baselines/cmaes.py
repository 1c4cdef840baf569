"""CMA-ES (pycma's ``cma.CMAEvolutionStrategy``) on the unit box, cold (box centre) or warm-started.

Two methods share one engine:

* ``cma`` (:class:`CMA`): from ``x0`` (the problem's start point, else the box centre) with sigma0 = 0.25.
* ``cma-warm`` (:class:`WarmCMA`): first one scrambled Sobol batch of ``n_init`` points (charged to the
  budget), then CMA-ES from its best point with sigma0 = 0.1. EXPERIMENTS.md found this the strongest simple
  peer; any "Sobol batch, then local search" method must beat it from the same batch size, so ``n_init``
  is ZOAF's own, read from ``zoaf.zo.config.ZOAFConfig().resolved_n_init`` (2d, at most 15% of the budget:
  44 at d = 22, budget 300). A given ``x0`` is simulated with the batch, as ZOAF does.

Defaults and why (``CMA.defaults`` / ``WarmCMA.defaults``):

* population: pycma's default ``4 + floor(3 ln d)`` (13 at d = 22: 23 generations in 300 simulations), raised
  to ``workers`` when more simulations can run at once. One generation is one batch.
* bounds: ``bounds=[0, 1]`` with pycma's ``BoundPenalty`` (asked points are projected into the box, pycma
  adds an adaptive quadratic penalty on the projection distance in ``tell``). Chosen over ``BoundTransform``
  by a quick test (d = 22, budget 300, 8 seeds, shifted sphere with the optimum inside / 0.02 from a face /
  past a face): median best 0.17/0.31/0.38 vs 0.26/0.32/0.56 cold, 0.15/0.19/0.27 vs 0.21/0.27/0.42 warm.
* failed simulations (``+inf``): told to pycma as ``worst + max(worst - best, |worst|, 1)`` over the finite
  values seen so far, plus a random tie-break of 0.1% of the gap (pycma rejects inf/nan; CMA-ES uses ranks,
  so any value worse than every finite one ranks them last).
* last, partial generation: when the budget truncates a population, the points not simulated are told with
  the same failure value, so pycma always sees a whole population.
* restarts: IPOP (Auger & Hansen 2005): when pycma's own termination criteria fire (tolfun, tolx,
  stagnation, ...), restart from a uniform random point with sigma0 = 0.25 and twice the population.
* seeding: pycma draws from the *global* ``numpy.random``; every pycma call runs with the global state swapped
  for this optimizer's private one (seeded from the run seed), so runs replay exactly and nothing else's
  global random state is touched. pycma's ``seed`` option is drawn from the run's generator (>= 1: pycma
  treats 0 as "random").

Example:
    >>> import numpy as np
    >>> from zoaf.baselines.cmaes import CMA
    >>> opt = CMA(4, budget=300, seed=1)
    >>> while not opt.done:
    ...     x = opt.ask()
    ...     opt.tell(x, np.sum((x - 0.3) ** 2, axis=1))
    >>> bool(opt.best_f < 1e-3)
    True
"""
from __future__ import annotations

import contextlib
import math
from typing import Any, ClassVar, Iterator

import cma
import numpy as np

from zoaf.optim import Optimizer

from ._sobol import sobol

#: Initial step size in the unit box for a start from the centre: the box edge is 4 sigma0 wide.
SIGMA0_COLD = 0.25
#: Initial step size from the best of a Sobol batch: local, the batch already did the global part.
SIGMA0_WARM = 0.1
#: IPOP: each restart multiplies the population by this.
INCPOPSIZE = 2


def zoaf_n_init(dim: int, budget: int) -> int:
    """ZOAF's Sobol batch size (``ZOAFConfig().resolved_n_init``: 2d, at most 15% of the budget), so that
    ``cma-warm`` starts from a batch of the same size. ``2 * dim`` (EXPERIMENTS.md's batch) if ZOAF's config
    cannot be imported."""
    try:
        from zoaf.zo.config import ZOAFConfig
    except ImportError:
        return min(2 * dim, max(budget - 1, 1))
    return max(1, int(ZOAFConfig().resolved_n_init(dim, budget)))


class CMA(Optimizer):
    """CMA-ES with IPOP restarts in [0, 1]^d; one population per ask.

    Args:
        sigma0: initial step size in the box (default 0.25).
        popsize: population (default pycma's ``4 + floor(3 ln d)``, at least ``workers``).
        restarts: IPOP restarts on pycma's termination (default True).
        bound_handler: ``"penalty"`` (pycma ``BoundPenalty``, default) or ``"transform"`` (``BoundTransform``).
    """

    name = "cma"
    defaults: ClassVar[dict[str, Any]] = {
        "x0": "problem start point, else box centre", "sigma0": SIGMA0_COLD,
        "popsize": "max(workers, 4 + floor(3 ln d))", "restarts": "IPOP, popsize x2, uniform random x0, sigma0 0.25",
        "bound_handler": "penalty (pycma BoundPenalty)", "failures": "told as worse than the worst finite value",
    }

    def __init__(self, dim: int, budget: int, seed: int | None = None, *, unit_steps: np.ndarray | None = None,
                 workers: int = 1, x0: np.ndarray | None = None, sigma0: float = SIGMA0_COLD,
                 popsize: int | None = None, restarts: bool = True, bound_handler: str = "penalty") -> None:
        super().__init__(dim, budget, seed, unit_steps=unit_steps, workers=workers, x0=x0)
        if bound_handler not in ("transform", "penalty"):
            raise ValueError(f"bound_handler must be 'transform' or 'penalty', got {bound_handler!r}")
        if not 0 < sigma0 <= 1:
            raise ValueError(f"sigma0 must be in (0, 1], got {sigma0}")
        self.sigma0 = float(sigma0)
        self.popsize = max(self.workers, 4 + int(3 * math.log(dim))) if popsize is None else max(2, int(popsize))
        self.restarts = bool(restarts)
        self.bound_handler = bound_handler
        self.nrestarts = 0
        self._np_state = np.random.RandomState(int(self.rng.integers(2**31))).get_state()
        self._es: cma.CMAEvolutionStrategy | None = None
        self._pending: list[np.ndarray] = []
        self._worst = -np.inf
        self._best = np.inf

    @classmethod
    def describe(cls) -> dict[str, Any]:
        return dict(cls.defaults)

    # -- pycma plumbing ---------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _own_rng(self) -> Iterator[None]:
        """Run pycma with the global numpy random state swapped for this optimizer's own."""
        saved = np.random.get_state()
        np.random.set_state(self._np_state)
        try:
            yield
        finally:
            self._np_state = np.random.get_state()
            np.random.set_state(saved)

    def _start(self, x0: np.ndarray, sigma0: float, popsize: int) -> None:
        handler = cma.BoundTransform if self.bound_handler == "transform" else cma.BoundPenalty
        opts = {"bounds": [0.0, 1.0], "BoundaryHandler": handler, "popsize": popsize,
                "seed": int(self.rng.integers(1, 2**31 - 1)), "verbose": -9, "verb_log": 0, "verb_disp": 0}
        x0 = np.clip(x0, 0.0, 1.0)
        with self._own_rng():
            self._es = cma.CMAEvolutionStrategy(x0.tolist(), sigma0, opts)
        self._phase = f"cma-run{self.nrestarts}" if self.nrestarts else "cma"

    def _start_point(self) -> np.ndarray:
        return self.x0 if self.x0 is not None else np.full(self.dim, 0.5)

    def _fail_value(self) -> float:
        if not np.isfinite(self._worst):
            return 1.0
        return self._worst + max(self._worst - self._best, abs(self._worst), 1.0)

    # -- ask/tell ---------------------------------------------------------------------------------------
    def _ask(self, n: int | None) -> np.ndarray:
        if self._es is None:
            self._start(self._start_point(), self.sigma0, self.popsize)
        with self._own_rng():
            self._pending = [np.asarray(p, dtype=float) for p in self._es.ask()]
        return np.array(self._pending)  # pycma projects (BoundPenalty) or maps (BoundTransform) into the box

    def _tell(self, x: np.ndarray, f: np.ndarray, c: np.ndarray | None = None,
              objective: np.ndarray | None = None) -> None:
        fin = f[np.isfinite(f)]
        if len(fin):
            self._worst = max(self._worst, float(fin.max()))
            self._best = min(self._best, float(fin.min()))
        self._tell_es(f)

    def _tell_es(self, f: np.ndarray) -> None:
        fail = self._fail_value()
        # failures tie; a small random tie-break keeps their ranking neutral and gives pycma's BoundPenalty
        # the non-zero fitness spread it needs when a whole population fails
        gap = fail - self._worst if np.isfinite(self._worst) else 1.0
        fails = fail + 1e-3 * gap * self.rng.random(len(self._pending))
        values = fails.copy()
        k = min(len(f), len(values))
        values[:k] = np.where(np.isfinite(f[:k]), f[:k], fails[:k])
        q1, q3 = np.percentile(values, [25, 75])
        if q1 == q3 and not getattr(self._es.boundary_handler, "hist", [None]):
            # BoundPenalty calibrates on the first generation's interquartile range and raises when it is 0
            # (e.g. a population of equally infeasible designs): break the ties there, by a relative 1e-9.
            values = values + 1e-9 * max(1.0, float(np.abs(values).max())) * self.rng.random(len(values))
        with self._own_rng():
            self._es.tell(self._pending, values.tolist())
            stop = self._es.stop()
        self._pending = []
        if stop and self.remaining > 0:
            if not self.restarts:
                from zoaf.optim import StopReason
                self._stop = StopReason.CONVERGED
                return
            self.nrestarts += 1
            self._start(self.rng.random(self.dim), SIGMA0_COLD, self._es.popsize * INCPOPSIZE)


class WarmCMA(CMA):
    """CMA-ES started from the best point of a scrambled Sobol batch (the batch is charged to the budget).

    Args:
        n_init: Sobol batch size (default: ZOAF's ``n_init`` for this dimension, see :func:`zoaf_n_init`).
        sigma0: initial step size in the box (default 0.1).
        popsize, restarts, bound_handler: as :class:`CMA`.
    """

    name = "cma-warm"
    defaults: ClassVar[dict[str, Any]] = {
        **CMA.defaults, "sigma0": SIGMA0_WARM,
        "n_init": "ZOAF's: min(2*d, 0.15*budget) (ZOAFConfig.resolved_n_init)", "x0": "if given, simulated first "
        "with the Sobol batch (as ZOAF); CMA-ES starts from the batch's best",
    }

    def __init__(self, dim: int, budget: int, seed: int | None = None, *, unit_steps: np.ndarray | None = None,
                 workers: int = 1, x0: np.ndarray | None = None, n_init: int | None = None,
                 sigma0: float = SIGMA0_WARM, popsize: int | None = None, restarts: bool = True,
                 bound_handler: str = "penalty") -> None:
        super().__init__(dim, budget, seed, unit_steps=unit_steps, workers=workers, x0=x0, sigma0=sigma0,
                         popsize=popsize, restarts=restarts, bound_handler=bound_handler)
        self.n_init = zoaf_n_init(dim, budget) if n_init is None else max(1, int(n_init))
        self._init_left = self.n_init
        self._design: np.ndarray | None = None
        self._phase = "sobol"

    def _ask(self, n: int | None) -> np.ndarray:
        if self._es is None and self._init_left > 0:
            self._phase = "sobol"
            if self._design is None:
                self._design = sobol(self.n_init, self.dim, self.rng)
                if self.x0 is not None:  # as ZOAF: a user-given start is simulated with the batch
                    self._design = np.vstack([self.x0, self._design])
                self._init_left = len(self._design)
            return self._design[len(self._design) - self._init_left:]
        return super()._ask(n)

    def _tell(self, x: np.ndarray, f: np.ndarray, c: np.ndarray | None = None,
              objective: np.ndarray | None = None) -> None:
        if self._es is None and self._init_left > 0:
            fin = f[np.isfinite(f)]
            if len(fin):
                self._worst = max(self._worst, float(fin.max()))
                self._best = min(self._best, float(fin.min()))
            self._init_left -= len(x)
            if self._init_left <= 0:
                start = self.best_x if self.best_x is not None else self._start_point()
                self._start(start, self.sigma0, self.popsize)
            return
        super()._tell(x, f, c, objective)

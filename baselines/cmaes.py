"""CMA-ES (pycma's ``cma.CMAEvolutionStrategy``) on the unit box, cold (box centre) or warm-started.

Two methods share one engine:

* ``cma`` (:class:`CMA`): from ``x0`` (the problem's start point, else the box centre) with sigma0 = 0.25.
* ``cma-warm`` (:class:`WarmCMA`): first ZOAF's own first batch (charged to the budget), then CMA-ES from its
  best point with sigma0 = 0.1. The project's early experiments found this the strongest simple peer; any
  "Sobol batch, then local search" method must beat it from the same batch, so the batch is ZOAF's exactly for
  equal seeds (:func:`zoaf_first_batch`: x0, else the box centre, then ``ZOAFConfig().resolved_n_init`` points of
  :func:`zoaf.sobol.sobol_batch` drawn first from the run's generator).

On a constrained problem (``c`` told) both run pycma's ``cma.ConstrainedFitnessAL``: the augmented Lagrangian
``f + sum(AL(g))`` of the objective and the normalized constraints is the fitness, and its multipliers and
penalty coefficients are updated after every generation (``which='best'``, pycma's default, so no extra
evaluation); each IPOP restart resets them. Failed simulations are told as below.

Defaults and why (:class:`CMAConfig` / :class:`WarmCMAConfig`):

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
  for this optimizer's private one (seeded from the run seed when CMA-ES starts, after any Sobol batch), so
  runs replay exactly and nothing else's global random state is touched. pycma's ``seed`` option is drawn from
  the run's generator (>= 1: pycma treats 0 as "random").

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
import enum
import math
import os
from dataclasses import dataclass, field
from typing import Any, Iterator

import cma
import numpy as np

from zoaf.errors import InputError
from zoaf.methodconfig import AT_MOST_BUDGET
from zoaf.optim import Optimizer, StopReason
from zoaf.sobol import sobol_batch

#: Initial step size in the unit box for a start from the centre: the box edge is 4 sigma0 wide.
SIGMA0_COLD = 0.25
#: Initial step size from the best of a Sobol batch: local, the batch already did the global part.
SIGMA0_WARM = 0.1
#: IPOP: each restart multiplies the population by this.
INCPOPSIZE = 2
#: pycma's peak memory in d x d float64 matrices: the covariance, its eigenbasis and the eigendecomposition's
#: workspace (measured 7.3 at d = 3000, once the first decomposition ran).
PYCMA_MATRICES = 8


def refuse_past_memory(name: str, dim: int, memory: int | None = None) -> None:
    """InputError when pycma's d x d matrices would not fit in this machine's memory (``memory`` bytes, default
    its physical memory): at d = 30,000, 3 simulations took 247 s and 7 GB before the first eigendecomposition,
    which needs ~50 GB; a method that keeps no d x d matrix is the way there."""
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") if memory is None else memory
    need = PYCMA_MATRICES * 8 * dim ** 2
    if need > memory:
        most = math.isqrt(memory // (PYCMA_MATRICES * 8))
        raise InputError(f"{name}: dimension {dim} needs ~{need / 2**30:.0f} GiB for pycma's {dim} x {dim} covariance "
                         f"matrices, more than this machine's {memory / 2**30:.0f} GiB (at most d = {most} here); "
                         "use zoaf or de, which keep no d x d matrix")


class BoundHandler(str, enum.Enum):
    """pycma's box handlers."""

    PENALTY = "penalty"      # cma.BoundPenalty
    TRANSFORM = "transform"  # cma.BoundTransform


@dataclass(frozen=True)
class CMAConfig:
    """Cold CMA-ES settings (see the module docstring for the measurements behind them).

    Attributes:
        sigma0: initial step size in the box, from x0 or the box centre.
        popsize: None = pycma's ``4 + floor(3 ln d)``, at least ``workers``.
        restarts: IPOP restarts (population x2, uniform random x0, sigma0 0.25) on pycma's termination.
        bound_handler: pycma's ``BoundPenalty`` (measured better here than ``BoundTransform``).
        constraints: how a constrained problem is told: pycma's augmented Lagrangian.
    """

    sigma0: float = SIGMA0_COLD
    popsize: int | None = field(default=None, metadata=AT_MOST_BUDGET)
    restarts: bool = True
    bound_handler: BoundHandler = BoundHandler.PENALTY
    constraints: str = field(default="cma.ConstrainedFitnessAL (which='best')", init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "bound_handler", BoundHandler(self.bound_handler))
        if not 0 < self.sigma0 <= 1:
            raise ValueError(f"sigma0 must be in (0, 1], got {self.sigma0}")
        if self.popsize is not None and self.popsize < 4:      # pycma's boundary penalty indexed past its values
            raise ValueError(f"popsize must be at least 4 (or None), got {self.popsize}")


@dataclass(frozen=True)
class WarmCMAConfig(CMAConfig):
    """Warm CMA-ES: ZOAF's first batch, then CMA-ES from its best point.

    Attributes:
        n_init: Sobol points of the batch, None = ZOAF's (``ZOAFConfig().resolved_n_init``: 2d, at most 15%
            of the budget), so that the batch equals ZOAF's for equal seeds.
        sigma0: 0.1, local: the batch already did the global part.
    """

    sigma0: float = SIGMA0_WARM
    n_init: int | None = field(default=None, metadata=AT_MOST_BUDGET)


def zoaf_first_batch(dim: int, budget: int, rng: np.random.Generator, x0: np.ndarray | None,
                     n_init: int | None = None) -> np.ndarray:
    """ZOAF's first batch (``zoaf.zo.optimizer.ZOAF._ask_init`` with its default config): x0, else the box
    centre, then ``n_init`` Sobol points, drawn from ``rng`` exactly as ZOAF draws them."""
    from zoaf.zo.config import ZOAFConfig

    cfg = ZOAFConfig()
    n = cfg.resolved_n_init(dim, budget) if n_init is None else max(0, int(n_init))
    first = [x0] if x0 is not None else [np.full(dim, 0.5)] if n == 0 or cfg.centre_start else []
    return np.vstack(first + [sobol_batch(n, dim, rng)])


class CMA(Optimizer):
    """CMA-ES with IPOP restarts in [0, 1]^d, augmented Lagrangian when constrained; one population per ask."""

    name = "cma"
    config_class: type[CMAConfig] = CMAConfig

    def __init__(self, dim: int, budget: int, seed: int | None = None, *, unit_steps: np.ndarray | None = None,
                 workers: int = 1, x0: np.ndarray | None = None, **options: Any) -> None:
        super().__init__(dim, budget, seed, unit_steps=unit_steps, workers=workers, x0=x0, **options)
        refuse_past_memory(self.name, self.dim)
        self.sigma0 = self.config.sigma0
        popsize = self.config.popsize
        self.popsize = max(self.workers, 4 + int(3 * math.log(dim))) if popsize is None else max(2, int(popsize))
        self.nrestarts = 0
        self._np_state: Any = None   # pycma's private global state, seeded when CMA-ES starts
        self._es: cma.CMAEvolutionStrategy | None = None
        self._al: cma.ConstrainedFitnessAL | None = None
        self._told: dict[bytes, tuple[float, np.ndarray]] = {}   # this generation's (objective, c) for the AL
        self._pending: list[np.ndarray] = []
        self._worst = -np.inf
        self._best = np.inf

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
        if self._np_state is None:
            self._np_state = np.random.RandomState(int(self.rng.integers(2**31))).get_state()
        handler = cma.BoundTransform if self.config.bound_handler is BoundHandler.TRANSFORM else cma.BoundPenalty
        opts = {"bounds": [0.0, 1.0], "BoundaryHandler": handler, "popsize": popsize,
                "seed": int(self.rng.integers(1, 2**31 - 1)), "verbose": -9, "verb_log": 0, "verb_disp": 0}
        x0 = np.clip(x0, 0.0, 1.0)
        with self._own_rng():
            self._es = cma.CMAEvolutionStrategy(x0.tolist(), sigma0, opts)
        if self._al is not None:
            self._al = self._new_al()   # a restart is a new run: fresh multipliers
        self._phase = f"cma-run{self.nrestarts}" if self.nrestarts else "cma"

    def _start_point(self) -> np.ndarray:
        return self.x0 if self.x0 is not None else np.full(self.dim, 0.5)

    def _fail_value(self) -> float:
        if not np.isfinite(self._worst):
            return 1.0
        return self._worst + max(self._worst - self._best, abs(self._worst), 1.0)

    def _new_al(self) -> cma.ConstrainedFitnessAL:
        """pycma's augmented Lagrangian on this generation's told values, without its log files.

        ``AugmentedLagrangian`` creates file loggers (``outcmaes/``) when built; pycma's documented switch is its
        module's ``_Logger`` set to ``LoggerDummy``, done here only while the AL is built.
        """
        import cma.constraints_handler as handler

        al = cma.ConstrainedFitnessAL(lambda x: self._told[np.asarray(x).tobytes()][0],
                                      lambda x: list(self._told[np.asarray(x).tobytes()][1]),
                                      dimension=self.dim, archives=False, logging=0)
        saved, handler._Logger = handler._Logger, cma.logger.LoggerDummy
        try:
            _ = al.al   # built now, with dummy loggers
        finally:
            handler._Logger = saved
        return al

    def _fitness(self, f: np.ndarray, c: np.ndarray | None, objective: np.ndarray | None) -> np.ndarray:
        """What pycma ranks: the FoM, or with constraints the augmented Lagrangian (``inf`` where failed)."""
        if c is None:
            return f
        if self._al is None:
            self._al = self._new_al()
        values = np.full(len(f), np.inf)
        for i, p in enumerate(self._pending[: len(f)]):
            if np.isfinite(objective[i]) and np.all(np.isfinite(c[i])):
                self._told[np.asarray(p).tobytes()] = (float(objective[i]), c[i])
                values[i] = self._al(p)
        self._told.clear()
        return values

    # -- ask/tell ---------------------------------------------------------------------------------------
    def _ask(self) -> np.ndarray:
        if self._es is None:
            self._start(self._start_point(), self.sigma0, self.popsize)
        with self._own_rng():
            self._pending = [np.asarray(p, dtype=float) for p in self._es.ask()]
        return np.array(self._pending)  # pycma projects (BoundPenalty) or maps (BoundTransform) into the box

    def _tell(self, x: np.ndarray, f: np.ndarray, c: np.ndarray | None = None,
              objective: np.ndarray | None = None) -> None:
        self._tell_es(self._note_range(self._fitness(f, c, objective)))

    def _note_range(self, values: np.ndarray) -> np.ndarray:
        fin = values[np.isfinite(values)]
        if len(fin):
            self._worst = max(self._worst, float(fin.max()))
            self._best = min(self._best, float(fin.min()))
        return values

    def _tell_es(self, f: np.ndarray) -> None:
        fail = self._fail_value()
        # failures tie; a small random tie-break keeps their ranking neutral and gives pycma's BoundPenalty
        # the non-zero fitness spread it needs when a whole population fails
        gap = fail - self._worst if np.isfinite(self._worst) else 1.0
        fails = fail + 1e-3 * gap * self.rng.random(len(self._pending))
        values = fails.copy()
        k = min(len(f), len(values))
        values[:k] = np.where(np.isfinite(f[:k]), f[:k], fails[:k])
        ranked, n1 = np.sort(values), len(values) + 1
        flat = ranked[min(3 * n1 // 4, n1 - 2)] == ranked[n1 // 4]
        if flat and not getattr(self._es.boundary_handler, "hist", [None]):
            # BoundPenalty calibrates on the first generation's interquartile range (pycma's own index formula)
            # and raises when it is 0
            # (e.g. a population of equally infeasible designs): break the ties there, by a relative 1e-9.
            values = values + 1e-9 * max(1.0, float(np.abs(values).max())) * self.rng.random(len(values))
        with self._own_rng():
            self._es.tell(self._pending, values.tolist())
            stop = self._es.stop()
        self._pending = []
        if self._al is not None:
            self._al.update(self._es)   # pycma's AL: multipliers and penalties from this generation
        if stop and self.remaining > 0:
            if not self.config.restarts:
                self._stop = StopReason.CONVERGED
                return
            self.nrestarts += 1
            self._start(self.rng.random(self.dim), SIGMA0_COLD, self._es.popsize * INCPOPSIZE)


class WarmCMA(CMA):
    """CMA-ES from the best point of ZOAF's first batch (:func:`zoaf_first_batch`, charged to the budget)."""

    name = "cma-warm"
    config_class = WarmCMAConfig

    def __init__(self, dim: int, budget: int, seed: int | None = None, *, unit_steps: np.ndarray | None = None,
                 workers: int = 1, x0: np.ndarray | None = None, **options: Any) -> None:
        super().__init__(dim, budget, seed, unit_steps=unit_steps, workers=workers, x0=x0, **options)
        self._design: np.ndarray | None = None
        self._init_left = 1
        self._phase = "sobol"

    @property
    def n_init(self) -> int:
        """Points in the first batch (x0 or the centre included), once drawn."""
        return 0 if self._design is None else len(self._design)

    def _ask(self) -> np.ndarray:
        if self._es is None and self._init_left > 0:
            self._phase = "sobol"
            if self._design is None:   # first, before pycma's seeds: the generator is consumed as ZOAF's
                self._design = zoaf_first_batch(self.dim, self.budget, self.rng, self.x0, self.config.n_init)
                self._init_left = len(self._design)
            return self._design[len(self._design) - self._init_left:]
        return super()._ask()

    def _tell(self, x: np.ndarray, f: np.ndarray, c: np.ndarray | None = None,
              objective: np.ndarray | None = None) -> None:
        if self._es is None and self._init_left > 0:
            self._note_range(f)
            self._init_left -= len(x)
            if self._init_left <= 0:   # the best by FoM: feasible first when constrained
                start = self.best_x if self.best_x is not None else self._start_point()
                self._start(start, self.sigma0, self.popsize)
            return
        super()._tell(x, f, c, objective)

"""Nevergrad peers: ``ngopt`` (NGOpt, Nevergrad's algorithm selector) and ``ngcma`` (its plain ``CMA``).

Both run through Nevergrad's own ask/tell. The parametrization is what a Nevergrad user would write for this
box: a bounded ``ng.p.Array`` in [0, 1] for the continuous axes (initialized at x0, else the box centre, so
``ngcma`` starts from there with Nevergrad's default sigma for a bounded array) and, when there are integer
axes, a second bounded ``Array`` over their level indices ``0 .. L-1`` with ``set_integer_casting()`` (NGOpt's
selection sees the problem as mixed-integer, as it is). On a constrained problem each tell passes the
normalized constraints as ``constraint_violation`` (Nevergrad penalizes ``max(c, 0)`` with its default
``penalty_style``) and the loss is the objective; failed simulations get finite stand-ins (Nevergrad clips
``inf`` with a warning). ``num_workers`` is the run's ``workers``; one ask hands out that many candidates.
Seeding: the parametrization's ``random_state`` is seeded from the run's generator.

Example:
    >>> import numpy as np
    >>> from zoaf.baselines.nevergrad_peers import NGCMA
    >>> opt = NGCMA(3, budget=200, seed=0)
    >>> while not opt.done:
    ...     x = opt.ask()
    ...     opt.tell(x, np.sum((x - 0.3) ** 2, axis=1))
    >>> bool(opt.best_f < 1e-3)
    True
"""
from __future__ import annotations

import enum
import traceback
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from zoaf.errors import InputError, ZoafError, ZoafWarning
from zoaf.methodconfig import AT_MOST_BUDGET
from zoaf.optim import Optimizer, StopReason

from ._peers import StandIn
from .cmaes import refuse_past_memory


class NevergradOptimizer(str, enum.Enum):
    """Names in ``nevergrad.optimizers``."""

    NGOPT = "NGOpt"
    CMA = "CMA"


@dataclass(frozen=True)
class NGOptConfig:
    """``ngopt``: Nevergrad's recommended default, ``NGOpt``, which picks an algorithm from the budget, the
    dimension, the variable types and ``num_workers`` (Nevergrad's docs: "use NGOpt if you do not know").

    Attributes:
        optimizer: the ``nevergrad.optimizers`` entry.
        num_workers: None = the run's ``workers``.
    """

    optimizer: NevergradOptimizer = NevergradOptimizer.NGOPT
    num_workers: int | None = field(default=None, metadata=AT_MOST_BUDGET)

    def __post_init__(self) -> None:
        if self.num_workers == 0:             # read as None: the run's workers
            raise ValueError("num_workers must be at least 1 (or None: the run's workers), got 0")


@dataclass(frozen=True)
class NGCMAConfig(NGOptConfig):
    """``ngcma``: Nevergrad's plain ``CMA`` (pycma inside, Nevergrad's population and sigma defaults), from
    x0 or the box centre: the external peer measured strongest on our circuits."""

    optimizer: NevergradOptimizer = NevergradOptimizer.CMA


def _refuse_pycma_past_memory(name: str, dim: int, opt: Any) -> None:
    """:func:`refuse_past_memory` where NGOpt picked pycma's full-covariance CMA inside (at d = 20,000 with 4
    workers and 400 simulations it picks a meta-model over CMA): looked for only past the memory, where the pick
    is made here (Nevergrad makes it at the first ask, which then allocated until memory ran out)."""
    try:
        refuse_past_memory(name, dim)
    except InputError as e:
        if _runs_pycma(opt):
            raise InputError(str(e).replace(f"{name}: ", f"{name}: Nevergrad's {type(opt).__name__} picks CMA-ES "
                                                         "here, and ", 1)) from None


def _runs_pycma(opt: Any) -> bool:
    """Whether a Nevergrad optimizer runs full-covariance CMA-ES anywhere inside: NGOpt's pick, a meta-model's or a
    rescaled optimizer's own, a portfolio's or a chain's members; pycma's ``fmin2`` as a scipy-like method."""
    from nevergrad.optimization import base, optimizerlib as lib

    if isinstance(opt, lib._CMA):
        return not opt._config.diagonal
    if "cma" in str(getattr(opt, "method", "")).lower():
        return True
    inner = [opt.optim if isinstance(opt, lib.NGOptBase) else None, getattr(opt, "_optim", None),
             getattr(opt, "_optimizer", None), *getattr(opt, "optims", ()), *getattr(opt, "optimizers", ())]
    return any(_runs_pycma(o) for o in inner if isinstance(o, base.Optimizer) and o is not opt)


class NGOpt(Optimizer):
    """A Nevergrad optimizer on the box via its own ask/tell; ``num_workers`` candidates per ask."""

    name = "ngopt"
    requires, extra = ("nevergrad",), "peers"
    config_class: type[NGOptConfig] = NGOptConfig

    def __init__(self, dim: int, budget: int, seed: int | None = None, *, unit_steps: np.ndarray | None = None,
                 workers: int = 1, x0: np.ndarray | None = None, **options: Any) -> None:
        import nevergrad as ng

        super().__init__(dim, budget, seed, unit_steps=unit_steps, workers=workers, x0=x0, **options)
        if NevergradOptimizer(self.config.optimizer) is NevergradOptimizer.CMA:    # pycma inside: its d x d matrices
            refuse_past_memory(self.name, dim)     # before the parametrization is built
        self._levels = self.integer_levels
        self._int = self._levels > 0
        start = self.to_levels(self.x0 if self.x0 is not None else np.full(dim, 0.5))
        logs = np.array([self.is_log_integer(i) for i in range(dim)], bool)
        linear = self._int & ~logs
        # continuous axes, then linear integer ones (level indices), then each log-scaled integer in its values
        self._groups = [g for g in (~self._int, linear) if g.any()]
        self._groups += [np.arange(dim) == i for i in np.flatnonzero(logs)]
        parts = [ng.p.Array(init=start[g], lower=0.0, upper=np.where(self._int, self._levels - 1, 1.0)[g])
                 for g in self._groups[:len(self._groups) - logs.sum()]]
        if linear.any():
            parts[-1].set_integer_casting()
        for i in np.flatnonzero(logs):
            lo, hi = self.integer_axes[i].lo, self.integer_axes[i].hi
            parts.append(ng.p.Log(init=float(start[i] + lo), lower=float(lo), upper=float(hi)).set_integer_casting())
        param = parts[0] if len(parts) == 1 else ng.p.Tuple(*parts)
        param.random_state = np.random.RandomState(int(self.rng.integers(2**31 - 1)))
        self.num_workers = self.config.num_workers or self.workers
        self._ng = ng.optimizers.registry[NevergradOptimizer(self.config.optimizer).value](
            parametrization=param, budget=budget, num_workers=self.num_workers)
        _refuse_pycma_past_memory(self.name, dim, self._ng)
        self._pending: list[Any] = []
        self._stand_in = StandIn()
        self._phase = self.name

    def _box(self, candidate: Any) -> np.ndarray:
        values = candidate.value if len(self._groups) > 1 else (candidate.value,)
        lib = np.empty(self.dim)
        for group, v in zip(self._groups, values):
            lib[group] = v
        for i in np.flatnonzero([self.is_log_integer(i) for i in range(self.dim)]):
            lib[i] -= self.integer_axes[i].lo      # a log-scaled integer was declared in its values
        return self.from_levels(lib)

    def _ask(self) -> np.ndarray:
        if not self._pending:       # the first ask: later ones are asked as the tell before them ends
            try:
                self._ask_library()
            except Exception as e:  # noqa: BLE001 - nothing simulated yet: the run fails, in one line
                raise ZoafError(self._failure(e, "before any simulation")) from None
        return np.array([self._box(cand) for cand in self._pending])

    def _ask_library(self) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self._pending = [self._ng.ask() for _ in range(min(self.num_workers, self.remaining))]

    def _tell(self, x: np.ndarray, f: np.ndarray, c: np.ndarray | None, objective: np.ndarray | None) -> None:
        """Tell Nevergrad, then ask it for the next batch (the calls and their order of asking at the next
        :meth:`_ask`), so that a failure inside it ends the run here, with what it computed, in one warning line."""
        loss = self._stand_in.objective(f if objective is None else objective)
        told, self._pending = self._pending[: len(f)], []
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                for i, cand in enumerate(told):
                    violation = None if c is None else self._stand_in.constraints(c[i])
                    self._ng.tell(cand, float(loss[i]), constraint_violation=violation)
            if self.remaining > 0:
                self._ask_library()
        except Exception as e:      # noqa: BLE001 - a defect inside the library: stop with the best point so far
            warnings.warn(self._failure(e, "the run ends there, with the best point found so far"), ZoafWarning,
                          stacklevel=2)
            self._stop, self._pending = StopReason.METHOD_FAILED, []
        if self.done:             # methods NGOpt runs in a thread (recast ones) stop it in their __del__
            self._ng = None

    def _failure(self, e: Exception, ending: str) -> str:
        """One line that names Nevergrad's failure: its optimizer (NGOpt's pick), the error, where it was raised."""
        import nevergrad

        frames = [t for t in traceback.extract_tb(e.__traceback__) if "nevergrad" in Path(t.filename).parts]
        where = "/".join(Path(frames[-1].filename).parts[-3:]) + f":{frames[-1].lineno}" if frames else ""
        picked = getattr(getattr(self._ng, "optim", None), "name", None)
        inside = type(self._ng).__name__ + (f" (its pick: {picked})" if picked else "")
        return (f"{self.name}: Nevergrad {nevergrad.__version__} failed inside {inside} after {self.nfev} "
                f"simulations, with numpy {np.__version__}: {type(e).__name__}: {e}"
                + (f" (at {where})" if where else "") + f"; {ending}")


class NGCMA(NGOpt):
    """Nevergrad's ``CMA`` (see :class:`NGCMAConfig`)."""

    name = "ngcma"
    config_class = NGCMAConfig

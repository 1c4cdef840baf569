"""Uniform random search in the unit box: the floor every method must clear.

Settings (:class:`RandomConfig`): batches of ``max(workers, 10)`` independent uniform points drawn from the
run's seeded ``numpy.random.Generator``. The batch size only sets how often the run loop reports progress; it
does not change which points are drawn (the stream is the same for every batch size).

Constraints: random search asks without looking, so they matter only in which point it returns. Its best is
the best by FoM, which is feasibility first (a feasible design's FoM is its objective, an infeasible one's
``100 +`` its total violation): the feasible point with the best objective, else the least violation, which is
how every constrained method here ranks designs.

Example:
    >>> import numpy as np
    >>> from zoaf.baselines.random_search import RandomSearch
    >>> opt = RandomSearch(3, budget=20, seed=0)
    >>> while not opt.done:
    ...     x = opt.ask()
    ...     opt.tell(x, np.sum((x - 0.5) ** 2, axis=1))
    >>> opt.nfev
    20
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from zoaf.optim import Optimizer

#: Points per batch when ``workers`` is smaller: enough to keep progress reports cheap.
DEFAULT_BATCH = 10


@dataclass(frozen=True)
class RandomConfig:
    """Attributes:
        batch: points per ask, None = ``max(workers, 10)``.
        distribution: uniform in [0, 1]^d.
        constraints: the best is chosen feasibility first (the FoM's order).
    """

    batch: int | None = None
    distribution: str = field(default="uniform in [0,1]^d", init=False)
    constraints: str = field(default="feasibility first (best by FoM)", init=False)


class RandomSearch(Optimizer):
    """Independent uniform samples of [0, 1]^d; never stops before the budget is spent."""

    name = "random"
    config_class = RandomConfig
    asks_ahead = True

    def __init__(self, dim: int, budget: int, seed: int | None = None, *, unit_steps: np.ndarray | None = None,
                 workers: int = 1, x0: np.ndarray | None = None, **options: Any) -> None:
        super().__init__(dim, budget, seed, unit_steps=unit_steps, workers=workers, x0=x0, **options)
        self.batch = max(self.workers, DEFAULT_BATCH) if self.config.batch is None else max(1, int(self.config.batch))
        self._phase = "random"

    def _ask(self) -> np.ndarray:
        k = min(self.remaining, self.batch)
        return self.rng.random((max(1, k), self.dim))

    def _tell(self, x: np.ndarray, f: np.ndarray, c: np.ndarray | None = None,
              objective: np.ndarray | None = None) -> None:
        pass   # nothing to learn; the base keeps the best by FoM, feasibility first

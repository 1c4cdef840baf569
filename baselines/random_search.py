"""Uniform random search in the unit box: the floor every method must clear.

Defaults (``RandomSearch.defaults``): batches of ``max(workers, 10)`` independent uniform points drawn from
the run's seeded ``numpy.random.Generator``. The batch size only sets how often the run loop reports progress;
it does not change which points are drawn (the stream is the same for every batch size).

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

from typing import Any, ClassVar

import numpy as np

from zoaf.optim import Optimizer

#: Points per batch when ``workers`` is smaller: enough to keep progress reports cheap.
DEFAULT_BATCH = 10


class RandomSearch(Optimizer):
    """Independent uniform samples of [0, 1]^d; never stops before the budget is spent.

    Args:
        batch: points per ask (default ``max(workers, 10)``); ``ask(n)`` overrides it for one call.
    """

    name = "random"
    defaults: ClassVar[dict[str, Any]] = {"batch": "max(workers, 10)", "distribution": "uniform in [0,1]^d"}

    def __init__(self, dim: int, budget: int, seed: int | None = None, *, unit_steps: np.ndarray | None = None,
                 workers: int = 1, x0: np.ndarray | None = None, batch: int | None = None) -> None:
        super().__init__(dim, budget, seed, unit_steps=unit_steps, workers=workers, x0=x0)
        self.batch = max(self.workers, DEFAULT_BATCH) if batch is None else max(1, int(batch))
        self._phase = "random"

    @classmethod
    def describe(cls) -> dict[str, Any]:
        return dict(cls.defaults)

    def _ask(self, n: int | None) -> np.ndarray:
        k = min(self.remaining, n if n else self.batch)
        return self.rng.random((max(1, k), self.dim))

    def _tell(self, x: np.ndarray, f: np.ndarray, c: np.ndarray | None = None,
              objective: np.ndarray | None = None) -> None:
        pass

"""The evaluator: turns a batch of box points into outcomes, with a cache keyed on exact physical values.

Cache hits (a point simulated before, e.g. two box points that round to the same integers) are free and
come back with status ``cached``. Results return in the order asked.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from .problem import Outcome, Problem, Status


class Evaluator:
    """Evaluate batches of box points on ``problem``; a context manager that closes what it opened."""

    def __init__(self, problem: Problem, *, workers: int = 1) -> None:
        self.problem = problem
        self.workers = max(1, int(workers))
        self._cache: dict[tuple[float, ...], Outcome] = {}

    def __enter__(self) -> "Evaluator":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.problem.close()

    def seed_cache(self, x: np.ndarray, outcome: Outcome) -> None:
        """Make a known result of physical point ``x`` available (resume replays the history this way)."""
        self._cache[tuple(map(float, x))] = outcome

    def evaluate(self, u: np.ndarray) -> list[tuple[np.ndarray, Outcome, bool]]:
        """Per asked point: (physical x, outcome, charged). Duplicates within a batch simulate once."""
        xs = self.problem.to_physical(np.atleast_2d(u))
        out: list[tuple[np.ndarray, Outcome, bool]] = []
        for x in xs:
            key = tuple(map(float, x))
            hit = self._cache.get(key)
            if hit is not None:
                out.append((x, replace(hit, status=Status.CACHED, seconds=0.0), False))
                continue
            o = self.problem.simulate(x)
            self._cache[key] = o
            out.append((x, o, True))
        return out

"""ZOAF's coordinate phase: a compass search along a basis adapted to a start's accepted moves.

Each sweep probes every direction of a fresh basis (``est.adapted_basis``: the axes at first; a ridge the moves
follow becomes the first direction), a block of directions per step. Every direction keeps its own step length
and side: after a success, longer and the same side; after a failure, shorter and the other side. Pure state
and arithmetic: the optimizer decides when to sweep and what counts as a success.

Example:
    >>> import numpy as np
    >>> sweep = Sweep.new(np.eye(3), np.ones(3), base=0.25, slope=np.array([1.0, -1.0, 0.0]),
    ...                   h_min=1e-3, step_max=0.5)
    >>> sweep.signs.tolist(), sweep.next_block(2).tolist(), sweep.queue
    ([-1.0, 1.0, 1.0], [0, 1], [2])
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Sweep"]


@dataclass
class Sweep:
    """The current sweep of a start's coordinate phase."""

    basis: np.ndarray                # directions (rows)
    steps: np.ndarray                # step length along each direction
    signs: np.ndarray                # side to probe next along each direction
    queue: list[int]                 # directions left in this sweep

    @classmethod
    def new(cls, basis: np.ndarray, scale: np.ndarray, base: float, slope: np.ndarray, h_min: float,
            step_max: float) -> "Sweep":
        """A sweep over ``basis``: steps ``base`` times each direction's ``scale``, each direction probed first
        on the side the slope (the gradient estimate along it) calls downhill."""
        return cls(basis=basis, steps=np.clip(base * scale, h_min, step_max),
                   signs=np.where(slope > 0, -1.0, 1.0), queue=list(range(len(basis))))

    @property
    def typical_step(self) -> float:
        """Geometric mean of the steps: the next sweep's base length, so it starts at the scale this one reached."""
        return float(np.exp(np.mean(np.log(self.steps))))

    def next_block(self, q: int) -> np.ndarray:
        """The next (up to) ``q`` directions of the sweep, removed from its queue."""
        block, self.queue = self.queue[:q], self.queue[q:]
        return np.array(block, int)

    def update(self, dirs: np.ndarray, better: np.ndarray, grow: float, shrink: float, h_min: float,
               step_max: float) -> None:
        """Compass rule per probed direction: after a success (``better``) ``grow`` the step and keep the side,
        else shrink by sqrt(``shrink``) (two failures, one per side: ``shrink``) and try the other side."""
        self.steps[dirs] = np.clip(np.where(better, self.steps[dirs] * grow, self.steps[dirs] * shrink ** 0.5),
                                   h_min, step_max)
        self.signs[dirs] = np.where(better, self.signs[dirs], -self.signs[dirs])

    def shrink(self, factor: float, h_min: float) -> None:
        """Every step by ``factor``, not below ``h_min`` (a monitor stall)."""
        self.steps = np.maximum(self.steps * factor, h_min)

    def exhausted(self, h_min: float) -> bool:
        """Every direction's step is down to ``h_min``: no direction has anything left to try."""
        return bool(np.all(self.steps <= h_min))

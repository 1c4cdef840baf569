"""An integer parameter's cells in the unit box, shared by the problem (which rounds) and the methods (which step).

Integer value n owns the box interval between the images of n - 0.5 and n + 0.5, so every integer gets a share of
the box. On a linear axis the cells are equal; on a log axis a cell's width is log((n + 0.5) / (n - 0.5)) over
the span, ~560 times narrower at 512 than at 1 on a 1..512 axis. A method that moved every integer by the
widest cell could only move a finger count of 40 by a factor of ~3 (to 15 or 108), and a library given that
many equal cells could never ask for 39; the local width lets both reach every integer.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np


@dataclass(frozen=True)
class IntegerAxis:
    """The whole numbers ``lo..hi`` on one box coordinate, linear or log-scaled (``lo >= 1`` for log)."""

    lo: int
    hi: int
    log: bool = False

    def _g(self, v: np.ndarray | float) -> np.ndarray:
        return np.log(v) if self.log else np.asarray(v, dtype=float)

    def span(self) -> tuple[float, float]:
        """The images of ``lo - 0.5`` and ``hi + 0.5``: the box's 0 and 1."""
        lo, hi = self.lo - 0.5, self.hi + 0.5
        return (math.log(lo), math.log(hi)) if self.log else (lo, hi)

    def to_unit(self, v: np.ndarray | float) -> np.ndarray:
        """Physical (possibly fractional) values -> box coordinates, unclipped."""
        a, b = self.span()
        return (self._g(v) - a) / (b - a)

    def value(self, u: np.ndarray | float) -> np.ndarray:
        """The integer a box coordinate simulates (as :meth:`zoaf.problem.Parameter.to_physical` rounds it)."""
        a, b = self.span()
        t = a + np.clip(u, 0.0, 1.0) * (b - a)
        return np.clip(np.round(np.exp(t) if self.log else t), self.lo, self.hi)

    def centre(self, n: np.ndarray | float) -> np.ndarray:
        """The box centre of integer ``n``'s cell (rounded and clipped to ``lo..hi`` first)."""
        n = np.clip(np.round(n), self.lo, self.hi)
        return (self.to_unit(n - 0.5) + self.to_unit(n + 0.5)) / 2.0

    def width(self, u: np.ndarray | float) -> np.ndarray:
        """The box width of the cell that holds ``u``: the least move from its centre that changes the integer."""
        n = self.value(u)
        return self.to_unit(n + 0.5) - self.to_unit(n - 0.5)

    @property
    def widest(self) -> float:
        """The widest cell (at ``lo``): a move this long changes the integer anywhere on the axis."""
        return float(self.width(0.0))

    @property
    def count(self) -> int:
        return self.hi - self.lo + 1


#: What a method is told of its integer axes: one entry per coordinate (None: continuous), or None for all.
IntegerAxes = Optional[Sequence[Optional[IntegerAxis]]]


def cell_widths(axes: tuple[IntegerAxis | None, ...], x: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    """Per coordinate, the width of the log-scaled integer cell holding ``x``; ``fallback`` elsewhere (a linear
    integer's cells are all equal, so its constant step is exact)."""
    out = np.array(fallback, dtype=float)
    for i, axis in enumerate(axes):
        if axis is not None and axis.log:
            out[i] = float(axis.width(float(x[i])))
    return out

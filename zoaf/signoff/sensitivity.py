"""Normalized sensitivities at a sizing by extrapolated finite differences (pure: stencils out, estimates in).

Each parameter gets a coordinate in which a sensitivity is read: ``ln p`` for log-scaled parameters, ``p``
over its range (``hi - lo``) otherwise; ``dm/dz`` divided by ``|m0|`` is ``d ln m / d ln p`` (log) or the
relative change of ``m`` over the parameter's full range (linear). A measure that is ~0 at the sizing has no
relative sensitivity (NaN).

The step is the parameter's own, not the box's: a fixed fraction of the box (the first design) is a 15-30%
change of a log-scaled parameter over a wide range, where a curved measure biased the difference by 8%
(``exp(-T/RC)`` read 5.39 for an exact 5). Here each continuous parameter is differenced at ``+-5%`` of its
value (of a tenth of its range when its value is near 0, at most an eighth of the range) and at half that;
Richardson extrapolation removes the leading error term and the size of that correction is the estimate's
stated error. Where that error is large a third, halved level enters a Neville table and the entry with the
smallest error is kept (Ridders' scheme), so noise that grows as the step shrinks is not extrapolated. An
integer is differenced at +-2 and +-1 steps. A sizing at (or near) a bound is differenced one-sided, into the
box, with the one-sided error series (h, h^2, ...): the box may be a process limit the models reject beyond.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from ..problem import Parameter

#: First step of a continuous parameter, as a fraction of its value (or of a tenth of its range near 0).
REL_STEP = 0.05
#: The step never exceeds this fraction of the parameter's range (a narrow box).
MAX_SPAN_STEP = 0.125
#: Levels simulated up front; a coordinate whose estimate's error exceeds the tolerance gets one more.
FIRST_LEVELS = 2
MAX_LEVELS = 3
#: Tolerance on a normalized estimate's error: ``ABS_TOL + REL_TOL * |estimate|``; above it, another level.
ABS_TOL = 2e-3
REL_TOL = 1e-2


@dataclass(frozen=True)
class Stencil:
    """How one coordinate is differenced: steps ``h, h/2, ...`` (physical units) along ``direction``
    (0: central, +-1: one-sided into the box), at most ``levels`` of them."""

    index: int
    h: float
    direction: int
    levels: int

    def offsets(self, level: int) -> tuple[float, ...]:
        """The physical displacements simulated at ``level`` (two central, one one-sided)."""
        step = self.h / 2 ** level
        return (step, -step) if self.direction == 0 else (self.direction * step,)


def stencil(j: int, p: Parameter, x0: float) -> Stencil:
    """The differencing of parameter ``p`` at ``x0``: central where the steps fit in the box on both sides
    (shrunk to fit, down to half the first step), else one-sided towards the farther bound."""
    room = (x0 - p.lo, p.hi - x0)
    if p.integer:
        need = 2.0 if max(room) >= 2 else 1.0           # steps of 2 and 1 where 2 fit on some side, else of 1
        return Stencil(j, need, 0 if min(room) >= need else (1 if room[1] >= room[0] else -1), int(need))
    h = REL_STEP * (abs(x0) if p.scale == "log" else max(abs(x0), 0.1 * (p.hi - p.lo)))
    h = min(h, MAX_SPAN_STEP * (p.hi - p.lo))
    if min(room) >= h / 2:
        return Stencil(j, min(h, *room), 0, MAX_LEVELS)
    return Stencil(j, h, 1 if room[1] >= room[0] else -1, MAX_LEVELS)


def stencils(params: Sequence[Parameter], x0: np.ndarray) -> list[Stencil]:
    return [stencil(j, p, float(x0[j])) for j, p in enumerate(params)]


def extrapolate(diffs: Sequence[float], central: bool) -> tuple[float, float]:
    """Neville-Richardson table over difference quotients at steps h, h/2, h/4 (NaN: not taken): the entry of
    least estimated error and that error, the size of the entry's last correction (a bound while truncation
    dominates; noise, which grows as the step shrinks, shows in it too). One level: its value, error NaN."""
    d = list(diffs)
    while d and not math.isfinite(d[-1]):
        d.pop()
    start = max((k + 1 for k, v in enumerate(d) if not math.isfinite(v)), default=0)
    d = d[start:]                                   # the finest run of consecutive levels measured
    if not d:
        return math.nan, math.nan
    p, q = (2, 2) if central else (1, 1)            # error series h^p, h^(p+q), ...
    table = [[v] for v in d]
    best = (d[0], math.nan) if len(d) == 1 else None
    for k in range(1, len(d)):
        for c in range(1, k + 1):
            f = 2.0 ** (p + (c - 1) * q)
            prev = table[k][c - 1]
            table[k].append(prev + (prev - table[k - 1][c - 1]) / (f - 1))
            err = abs(table[k][c] - prev)
            if best is None or err < best[1]:
                best = (table[k][c], err)
    assert best is not None
    return best


@dataclass(frozen=True)
class Sensitivities:
    measures: tuple[str, ...]
    params: tuple[str, ...]
    matrix: np.ndarray                  # (measures, params) normalized sensitivities
    error: np.ndarray                   # their estimated errors (NaN: unknown)
    m0: dict[str, float]
    steps: dict[str, str]               # per parameter, the first step, in words (e.g. "+-5%")
    simulations: int                    # simulations the estimates used (the sizing's own included)
    corner: str | None = None           # a corner run's corner, named as asked (both JSON outputs say it)
    unknown: tuple[str, ...] = ()       # why entries are unknown: a measure the sizing lacks, a parameter whose
    #                                     perturbed points all lack one (each with its error)

    def uncertain(self, i: int, j: int) -> bool:
        """An entry whose error is unknown or above the tolerance (flagged in the table)."""
        v, e = self.matrix[i, j], self.error[i, j]
        return math.isfinite(v) and not e <= 5 * (ABS_TOL + REL_TOL * abs(v))

    def as_json(self) -> dict:
        def plain(a: np.ndarray) -> dict:
            return {m: {p: (float(v) if math.isfinite(v) else None) for p, v in zip(self.params, row)}
                    for m, row in zip(self.measures, a)}

        return {"measures": list(self.measures), "params": list(self.params), "at": self.m0,
                "method": "central differences (one-sided at a bound) with Richardson extrapolation",
                "steps": self.steps, "simulations": self.simulations,
                "sensitivity": plain(self.matrix), "error": plain(self.error), "corner": self.corner,
                "unknown": list(self.unknown)}


def quotients(st: Stencil, x0: float, m0: Mapping[str, float], got: Mapping[tuple[int, float], Mapping],
              name: str) -> list[float]:
    """Difference quotients dm/dp of measure ``name`` per level simulated (NaN where a simulation lacks it).
    ``got``: (level, offset) -> (physical value simulated, measures)."""
    out = []
    for level in range(st.levels):
        pts = [got.get((level, off)) for off in st.offsets(level)]
        if any(pt is None for pt in pts):
            break
        values = [pt["m"].get(name, math.nan) for pt in pts]
        xs = [pt["x"] for pt in pts]
        if st.direction != 0:
            values, xs = [*values, m0.get(name, math.nan)], [*xs, x0]
        dx = xs[0] - xs[1]
        out.append((values[0] - values[1]) / dx if dx and all(map(math.isfinite, values)) else math.nan)
    return out


def normalize(p: Parameter, x0: float, slope: float, err: float, ref: float) -> tuple[float, float]:
    """dm/dp and its error as a normalized sensitivity (see the module doc)."""
    dz = x0 if p.scale == "log" else p.hi - p.lo          # dp/dz
    return slope * dz / abs(ref), err * dz / abs(ref)


def needs_level(st: Stencil, estimates: Sequence[tuple[float, float]], done: int) -> bool:
    """Whether coordinate ``st`` gets another, halved level: its stencil allows one and some measure's
    normalized estimate has an error above the tolerance."""
    if done >= st.levels:
        return False
    return any(math.isfinite(v) and not e <= ABS_TOL + REL_TOL * abs(v) for v, e in estimates)


def step_words(p: Parameter, x0: float, st: Stencil) -> str:
    """The first step as a designer reads it: a percentage of the value, or integer steps; one-sided marked."""
    side = {0: "±", 1: "+", -1: "-"}[st.direction]
    if p.integer:
        return f"{side}{st.h:g}"
    return f"{side}{100 * st.h / abs(x0):.3g}%" if x0 else f"{side}{st.h:.3g}"

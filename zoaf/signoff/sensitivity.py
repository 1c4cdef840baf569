"""Normalized sensitivities at a sizing from a local least-squares fit (pure: points in, matrix out).

Each parameter gets a coordinate in which a sensitivity is read: ``ln p`` for log-scaled parameters, ``p``
over its range (``hi - lo``) otherwise. A weighted linear fit of each measure over the simulations near the
sizing gives ``dm/dz``; divided by ``|m0|`` it is ``d ln m / d ln p`` (log) or the relative change of ``m``
over the parameter's full range (linear). A measure that is ~0 at the sizing has no relative sensitivity
(NaN). A coordinate the neighbours barely move is *thin*: the caller simulates ``u0 +- step`` along it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from ..problem import Parameter

#: Largest neighbourhood (box units, infinity norm) from which history points enter the fit.
RADIUS = 0.03
#: Step (box units) of the top-up simulations along thin coordinates, and of the reference differences.
STEP = 0.01


def coordinates(params: Sequence[Parameter], values: np.ndarray) -> np.ndarray:
    """Physical values (n, d) in sensitivity coordinates: ln p (log) or p / (hi - lo) (linear)."""
    v = np.asarray(values, dtype=float)
    out = np.empty_like(v)
    for j, p in enumerate(params):
        out[..., j] = np.log(v[..., j]) if p.scale == "log" else v[..., j] / (p.hi - p.lo)
    return out


@dataclass(frozen=True)
class Neighbourhood:
    """The points that enter the fit, their weights, and the coordinates they leave thin."""

    index: np.ndarray        # rows of the candidate points used
    weights: np.ndarray
    thin: tuple[int, ...]    # coordinates to top up


def neighbourhood(u: np.ndarray, u0: np.ndarray, unit_steps: np.ndarray, radius: float = RADIUS,
                  step: float = STEP) -> Neighbourhood:
    """The history points nearest ``u0``: within the smallest radius (at least ``step``, at most ``radius``)
    that holds 2d of them, since curvature biases a linear fit over farther points; weighted by a Gaussian of
    their distance on that radius. A coordinate is thin when the points' weighted spread along it is under
    half the top-up step, or fewer than two points move it (an integer's cell); every one is, when fewer
    than 2d points lie within ``radius`` (measured: 18 points within 0.03 left slopes 10-20% off)."""
    du = np.asarray(u, dtype=float).reshape(-1, len(u0)) - u0
    inf = np.max(np.abs(du), axis=1)
    if len(inf):
        r = float(np.clip(np.sort(inf)[min(2 * len(u0), len(inf)) - 1], step, radius))
    else:
        r = step
    near = np.flatnonzero(inf <= r)
    d = du[near]
    w = np.exp(-(np.linalg.norm(d, axis=1) / r) ** 2)
    spread = np.sqrt((w[:, None] * d ** 2).sum(0) / max(w.sum(), 1e-300)) if len(d) else np.zeros(len(u0))
    moved = (np.abs(d) >= np.maximum(unit_steps, 1e-12) * 0.99).sum(0) if len(d) else np.zeros(len(u0))
    if len(near) < 2 * len(u0):          # too few close points for a fit to pin slopes: differences everywhere
        return Neighbourhood(near, w, tuple(range(len(u0))))
    thin = tuple(int(j) for j in range(len(u0)) if spread[j] < step / 2 or moved[j] < 2)
    return Neighbourhood(near, w, thin)


@dataclass(frozen=True)
class Sensitivities:
    measures: tuple[str, ...]
    params: tuple[str, ...]
    matrix: np.ndarray                  # (measures, params) normalized sensitivities
    m0: dict[str, float]
    points: int                         # simulations in the fit

    def as_json(self) -> dict:
        return {"measures": list(self.measures), "params": list(self.params), "points": self.points,
                "at": self.m0, "sensitivity": {m: {p: (None if not math.isfinite(v) else float(v))
                                                   for p, v in zip(self.params, row)}
                                               for m, row in zip(self.measures, self.matrix)}}


def fit(params: Sequence[Parameter], x: np.ndarray, measures: Sequence[Mapping[str, float]], weights: np.ndarray,
        x0: np.ndarray, m0: Mapping[str, float], names: Sequence[str],
        known: Mapping[int, Mapping[str, float]] | None = None) -> Sensitivities:
    """Weighted least squares ``m = a + g . (z - z0)`` per measure over the points ``x`` (physical, (n, d)).

    ``known``: slopes dm/dz already measured (coordinate -> measure -> slope, from central differences along a
    thin coordinate): they are taken as they are and subtracted, and the fit solves for the other coordinates
    only, so a few far history points cannot bend a slope two close simulations pinned down."""
    known = known or {}
    dz = coordinates(params, x) - coordinates(params, x0[None])[0]
    free = [j for j in range(len(params)) if j not in known]
    rows = []
    for name in names:
        keep = np.array([name in m and math.isfinite(m[name]) for m in measures], bool)
        y = np.array([m[name] for m, k in zip(measures, keep) if k], float)
        ref = m0.get(name, math.nan)
        row = np.full(len(params), math.nan)
        if not math.isfinite(ref) or abs(ref) <= 1e-9 * max(np.max(np.abs(y)) if len(y) else 0.0, 1e-300):
            rows.append(row)
            continue
        slopes = {j: known[j].get(name, math.nan) for j in known}
        for j, g in slopes.items():
            row[j] = g
        fixed = [j for j, g in slopes.items() if math.isfinite(g)]
        if free and keep.sum() > len(free):
            y = y - dz[keep][:, fixed] @ np.array([slopes[j] for j in fixed]) if fixed else y
            a = np.hstack([np.ones((keep.sum(), 1)), dz[keep][:, free]])
            row[free] = _trimmed_lstsq(a, y, weights[keep])[1:]
        rows.append(row / abs(ref))
    return Sensitivities(tuple(names), tuple(p.name for p in params), np.array(rows), dict(m0), len(x))


def _trimmed_lstsq(a: np.ndarray, y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Weighted least squares that drops its worst point while that one lies beyond 4 robust sigmas of the
    rest, and refits: a neighbour in another regime (a railed output among working sizings) would otherwise
    bend every slope. At most a quarter of the points go."""
    use = np.ones(len(y), bool)
    while True:
        sw = np.sqrt(w[use])
        coef, *_ = np.linalg.lstsq(a[use] * sw[:, None], y[use] * sw, rcond=None)
        r = np.where(use, np.abs(y - a @ coef), -1.0)
        worst = int(np.argmax(r))
        rest = np.delete(r, worst)[np.delete(use, worst)]
        sigma = 1.4826 * float(np.median(rest)) if len(rest) else 0.0
        if use.sum() - 1 <= max(a.shape[1], 0.75 * len(y)) or r[worst] <= max(4 * sigma, 1e-12 * abs(y).max()):
            return coef
        use[worst] = False


def central(params: Sequence[Parameter], j: int, x_plus: np.ndarray, x_minus: np.ndarray,
            m_plus: Mapping[str, float], m_minus: Mapping[str, float]) -> dict[str, float]:
    """dm/dz along coordinate ``j`` from two simulations either side of the sizing (NaN where one lacks m)."""
    dz = float(coordinates(params, x_plus[None])[0, j] - coordinates(params, x_minus[None])[0, j])
    return {name: (m_plus[name] - m_minus[name]) / dz if dz and name in m_minus and math.isfinite(m_plus[name])
            and math.isfinite(m_minus[name]) else math.nan for name in m_plus}


def dominant(s: Sensitivities, measure: str, k: int = 3) -> list[str]:
    """The ``k`` parameters with the largest |sensitivity| of ``measure``."""
    row = s.matrix[s.measures.index(measure)]
    order = np.argsort(-np.nan_to_num(np.abs(row), nan=-1))
    return [s.params[j] for j in order[:k]]

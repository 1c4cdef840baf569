"""Step-length and smoothing-radius schedules (box units). Pure arithmetic on floats.

The step length adapts like an expanding line search: each step tries the lengths ``alpha`` and
``grow * alpha`` along the estimate; the longest success sets the next step, no success shrinks it. The
smoothing radius (probe distance) follows the step, clipped to [h_min, h_max], so the probes sample the
region the next step covers: wide and smoothing early, fine and accurate late.
"""
from __future__ import annotations

import numpy as np

__all__ = ["trial_lengths", "next_alpha", "ratio_alpha", "smoothing_radius"]


def trial_lengths(alpha: float, grow: float) -> np.ndarray:
    """Step lengths tried along the estimate in one batch (shortest first)."""
    return np.array([alpha, alpha * grow])


def next_alpha(alpha: float, lengths: np.ndarray, improved: np.ndarray, grow: float, shrink: float,
               alpha_max: float = 1.0) -> float:
    """The next step length after a batch of trial steps.

    The longest trial that improved on the iterate becomes the new length, times ``grow`` if it was the
    longest tried (the line search may not have reached the minimum along the estimate yet); none improved:
    ``shrink * alpha``.
    """
    improved = np.asarray(improved, bool)
    if not improved.any():
        return alpha * shrink
    i = int(np.flatnonzero(improved)[-1])
    a = float(lengths[i]) * (grow if i == len(lengths) - 1 else 1.0)
    return float(min(a, alpha_max))


def ratio_alpha(alpha: float, lengths: np.ndarray, rho: np.ndarray, grow: float, shrink: float,
                alpha_max: float = 1.0, poor: float = 0.1, good: float = 0.7) -> float:
    """The next trust radius from the trials' ratios of actual to predicted merit reduction (Powell's rule, as
    in NEWUOA and COBYQA), on the trial of the best ratio: poor (<= ``poor``): ``shrink`` times the radius;
    fair: at least that trial's length; good (> ``good``): at least ``grow`` times it. A trial the filter
    rejects but whose model was right (a small, predicted gain) no longer halves the radius."""
    rho = np.where(np.isfinite(rho), rho, -np.inf)
    i = int(np.argmax(rho))
    if not rho[i] > poor:
        return alpha * shrink
    step = float(lengths[i]) * (grow if rho[i] > good else 1.0)
    return float(min(max(alpha * shrink, step), alpha_max))


def smoothing_radius(alpha: float, h_ratio: float, h_min: float, h_max: float) -> float:
    """Probe distance for step length ``alpha``."""
    return float(np.clip(h_ratio * alpha, h_min, h_max))

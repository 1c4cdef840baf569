"""Seeded scrambled Sobol designs in the unit box, shared by the baselines' initial designs.

Every method that starts from a space-filling batch (BO, TuRBO, warm-started CMA-ES) draws it here, so that
equal seeds give equal designs and no method gets a luckier start from a different generator.
"""
from __future__ import annotations

import math
import warnings

import numpy as np
from scipy.stats import qmc


def sobol(n: int, dim: int, rng: np.random.Generator) -> np.ndarray:
    """The first ``n`` points of a scrambled Sobol sequence in [0, 1]^dim, shape (n, dim).

    The scrambling seed is drawn from ``rng``, so the design is a pure function of the caller's seed. A
    power-of-two block is drawn and truncated (scipy warns, harmlessly, when asked for other sizes).
    """
    if n < 1:
        return np.empty((0, dim))
    engine = qmc.Sobol(dim, scramble=True, seed=int(rng.integers(2**63 - 1)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        pts = engine.random_base2(max(0, math.ceil(math.log2(n))))
    return pts[:n]

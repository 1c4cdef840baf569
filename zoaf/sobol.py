"""The one space-filling generator: seeded scrambled Sobol batches in the unit box.

ZOAF's multi-start and every baseline that starts from a space-filling batch (BO, TuRBO/SCBO, warm CMA-ES)
draw here, so that equal seeds give equal designs and no method gets a luckier start from another generator.

Example:
    >>> import numpy as np
    >>> a = sobol_batch(5, 3, np.random.default_rng(0))
    >>> bool(np.array_equal(a, sobol_batch(5, 3, np.random.default_rng(0))))
    True
"""
from __future__ import annotations

import warnings

import numpy as np
from scipy.stats import qmc

__all__ = ["sobol_batch"]


def sobol_batch(n: int, dim: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` points of a scrambled Sobol sequence in [0, 1]^dim, shape (n, dim), scrambled from ``rng``.

    The scrambling consumes ``rng``, so the batch is a pure function of the caller's seed; ``n <= 0`` returns
    an empty batch without touching ``rng``. Any ``n`` is accepted: the balance warning scipy gives for
    non-powers of 2 is silenced, since the batch is a spread of starting points, not an integration rule.
    """
    if n <= 0:
        return np.empty((0, dim))
    sampler = qmc.Sobol(dim, scramble=True, seed=rng)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return sampler.random(n)

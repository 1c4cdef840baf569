"""ZOAF settings registered as methods of their own, so that ``zoaf optimize --method`` and ``zoaf compare
--methods`` can name them and the comparison ranks them beside ``zoaf`` (the default settings).
"""
from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from ..axes import IntegerAxes
from .ablations import ABLATIONS
from .optimizer import ZOAF

__all__ = ["ZOAFCobyqa"]


class ZOAFCobyqa(ZOAF):
    """ZOAF with a COBYQA run as each start's local search, judged after COBYQA's initial set and kept 1e-3
    inside each normalized constraint, the designer's sizing first and the Sobol batch only when that start ends
    early, and a start that the monitor stopped while holding the best point polished before the restarts after
    that batch (the settings of the ablation ``local-cobyqa-grace-m3-late-polish-after``; COBYQA comes with the
    ``[peers]`` extra). Measured in BENCHMARKS.md section 4: the late batch wins the amplifier's bandwidths and
    gain and the LNA's noise figure and gain that a batch and second start before it cost, and keeps the LDO's
    current and the bandgap's power that a second basin wins; it gives up the LDO's PSRR and the bandgap's tc,
    where the second start won only when it ran from the beginning. The polish ties at a budget of 300 and
    keeps a larger budget from doing worse. Not the default for its dependency, for the LNA's inductor area
    (section 11 ranks it first of eleven methods overall), and because COBYQA asks one point at a time: with
    parallel workers all but one wait, where ZOAF's own steps ask a batch the size of the pool."""

    name = "zoaf-cobyqa"
    requires, extra = ("cobyqa",), "peers"
    #: COBYQA takes every step of every start (no handover), so ZOAF's model step never runs: ``exact_step`` is
    #: kept at the value this method's runs recorded, which it cannot change (``tests/test_zo_local.py``)
    preset: ClassVar[dict[str, Any]] = {**ABLATIONS["local-cobyqa-grace-m3-late-polish-after"], "exact_step": False}

    def __init__(self, dim: int, budget: int, seed: int | None = None, *, unit_steps: np.ndarray | None = None,
                 workers: int = 1, x0: np.ndarray | None = None, integer_axes: IntegerAxes = None,
                 **hyperparameters: Any) -> None:
        super().__init__(dim, budget, seed, unit_steps=unit_steps, workers=workers, x0=x0, integer_axes=integer_axes,
                         **{**self.preset, **hyperparameters})

    @classmethod
    def describe(cls, **options: Any) -> dict[str, Any]:
        return super().describe(**{**cls.preset, **options})

"""NOMAD 4 (PyNomadBBO): mesh adaptive direct search (MADS) with the progressive barrier.

NOMAD runs its own loop; :class:`zoaf.baselines._own_loop.OwnLoop` turns it into ask/tell. On a constrained
problem each normalized constraint is a ``PB`` output (progressive barrier: infeasible points are kept and
ranked by their violation ``h`` while ``h_max`` shrinks), and the objective is ``OBJ``. Integer axes are
declared in NOMAD's own terms, ``BB_INPUT_TYPE I`` on the level indices ``0 .. L-1``. Failed simulations are
told as finite stand-ins worse than any measured value.

Example:
    >>> import numpy as np
    >>> from zoaf.baselines.nomad_peer import NOMAD
    >>> opt = NOMAD(2, budget=60, seed=0)
    >>> while not opt.done:
    ...     x = opt.ask()
    ...     opt.tell(x, np.sum((x - 0.3) ** 2, axis=1))
    >>> bool(opt.best_f < 1e-3)
    True
"""
from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from ._own_loop import Evaluate, OwnLoop


#: NOMAD reads MAX_BB_EVAL as a C int: a budget above overflowed to a negative limit, and NOMAD segfaulted after
#: refusing it. Capped here, whoever sets the budget (a run that long never ends by its budget anyway).
MAX_BB_EVAL_LIMIT = 2**31 - 1

#: NOMAD's SEED is the run's library seed (drawn from its generator) modulo this: seeding costs one RNG step per
#: unit of SEED.
SEED_RANGE = 10**6


class ConstraintType(str, enum.Enum):
    """NOMAD's output types for a constraint."""

    PB = "PB"   # progressive barrier
    EB = "EB"   # extreme barrier: infeasible points are rejected outright


@dataclass(frozen=True)
class NOMADConfig:
    """NOMAD's settings: the library's defaults (MADS with ORTHO N+1 QUAD polls, quadratic-model and
    Nelder-Mead searches, opportunistic polling), as its users would run it.

    Attributes:
        constraints: the output type of every constraint, ``PB`` (progressive barrier; NOMAD's recommended
            type when infeasible points still carry information, as a missed spec does).
        max_bb_eval: None = the budget (the adapter never lets it ask more).
        display_degree: 0, silent.
    """

    constraints: ConstraintType = ConstraintType.PB
    max_bb_eval: int | None = None
    display_degree: int = 0

    def __post_init__(self) -> None:
        if self.max_bb_eval == 0:             # read as None: the budget
            raise ValueError("max_bb_eval must be at least 1 (or None: the budget), got 0")


class NOMAD(OwnLoop):
    """NOMAD from x0 (else the box centre) on [0, 1]^d with integer axes as NOMAD integers; one point per ask."""

    name = "nomad"
    config_class = NOMADConfig
    requires, extra = ("PyNomad",), "peers"

    def _start_point(self) -> np.ndarray:
        return self.to_levels(super()._start_point())

    def _library_loop(self, start: np.ndarray, nconstraints: int, seed: int) -> Callable[[Evaluate], None]:
        import PyNomad

        cfg, levels = self.config, self._levels
        fmt = lambda v: "( " + " ".join(str(a) for a in v) + " )"   # noqa: E731
        params = [f"DIMENSION {self.dim}", f"BB_INPUT_TYPE {fmt('I' if k else 'R' for k in levels)}",
                  "BB_OUTPUT_TYPE OBJ" + f" {ConstraintType(cfg.constraints).value}" * nconstraints,
                  f"MAX_BB_EVAL {min(cfg.max_bb_eval or self.budget, self.budget, MAX_BB_EVAL_LIMIT)}",
                  f"DISPLAY_DEGREE {cfg.display_degree}", "NB_THREADS_PARALLEL_EVAL 1",
                  f"LOWER_BOUND {fmt([0] * self.dim)}", f"UPPER_BOUND {fmt(np.where(levels > 0, levels - 1, 1))}"]
        # NOMAD's polls depend on its SEED parameter, not on an RNG state set before ``optimize`` (which resets it:
        # every seed ran as seed 0). Its parameter check seeds the RNG only when SEED differs from the last seed
        # the process saw, so the last seed is set to another value first: every run is seeded as in a fresh
        # process, whatever ran before it. Seeding steps the RNG once per unit (1e7 costs ~1 s): modulo SEED_RANGE.
        nomad_seed = seed % SEED_RANGE
        params.append(f"SEED {nomad_seed}")
        x0 = [float(v) for v in start]

        def loop(evaluate: Evaluate) -> None:
            def blackbox(point: Any) -> int:
                got = evaluate(np.array([point.get_coord(i) for i in range(point.size())]))
                if got is None:   # closed: fail fast until NOMAD's limit, no simulation is run
                    return 0
                f, c = got
                point.setBBO(" ".join(repr(float(v)) for v in [f, *([] if c is None else c)]).encode())
                return 1

            PyNomad.setSeed(nomad_seed + 1)
            PyNomad.optimize(blackbox, x0, [], [], params)

        return loop

"""ZOAF's local phase by COBYQA (``ZOAFConfig(local="cobyqa")``, ablation ``local-cobyqa``).

ZOAF's Sobol multi-start, successive halving and monitor choose where a local search starts and when it gives
its budget to the next start; here COBYQA (Ragonneau & Zhang: trust-region SQP on least-change quadratic
models of the objective and of every constraint; the ``cobyqa`` package of the ``[peers]`` extra) is that local
search instead of ZOAF's probes and model steps. The package runs its own loop, so it runs in a helper thread
behind the ask/tell hand-over the peers use (``zoaf.baselines._own_loop.Channel``: one point per ask, the two
threads strictly alternating, so a seed's run stays deterministic). Each start's run begins at the start's
point, whose values are known (served from a memo, no simulation), with the start's first probe distance as
initial radius and the start's horizon as evaluation limit; its objective and nonlinear constraints are the
measures ZOAF's constraint-aware step models (objective, normalized constraints <= 0), else the FoM.
"""
from __future__ import annotations

import enum
import weakref
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:   # the [peers] extra's modules load with the first run
    from ..baselines._own_loop import Answer, Channel
    from ..baselines._peers import StandIn

__all__ = ["LocalSolver", "LocalBatch", "CobyqaRun", "initial_set"]

#: Thread name and error prefix of the runs.
OWNER = "zoaf-local-cobyqa"


class LocalSolver(str, enum.Enum):
    """What a start's local search is."""
    ZOAF = "zoaf"              # ZOAF's own steps: probes, trial steps, the random and coordinate phases
    COBYQA = "cobyqa"          # a COBYQA run per start


def initial_set(solver: LocalSolver, dim: int) -> int:
    """Simulations a start's local solver spends before its first model step, the start's own point not counted:
    COBYQA's 2d + 1 interpolation points include it; ZOAF's steps move from their first batch."""
    return 2 * dim if solver is LocalSolver.COBYQA else 0


@dataclass(frozen=True)
class LocalBatch:
    """The pending batch is the local solver's one requested point."""


@dataclass
class CobyqaRun:
    """One start's COBYQA run: the hand-over to its thread and the point it waits on (None: it ended)."""

    chan: Channel
    stand_in: StandIn                         # finite values for failed simulations (COBYQA needs them)
    margin: float = 0.0                       # COBYQA is told c + margin <= 0
    point: np.ndarray | None = None
    memo: dict[bytes, Answer] = field(default_factory=dict)

    @classmethod
    def begin(cls, x: np.ndarray, fom: float, y: np.ndarray | None, radius: float, radius_final: float,
              maxfev: int, margin: float = 0.0) -> "CobyqaRun":
        """Start COBYQA at ``x`` (FoM ``fom``, measures ``y`` = [objective, c] or None) and wait for its first
        request; ``maxfev`` counts the start itself; ``margin``: how far inside each normalized constraint
        COBYQA is asked to stay."""
        from ..baselines._own_loop import Channel, point_key
        from ..baselines._peers import StandIn
        from ..baselines.cobyqa_peer import cobyqa_loop

        run = cls(Channel(), StandIn(), margin)
        weakref.finalize(run, run.chan.close)   # a dropped run's thread is told "closed" and ends
        run.memo[point_key(x)] = run._answer(fom, y)
        options = {"maxfev": max(2, int(maxfev)), "radius_init": radius, "radius_final": radius_final}
        run.chan.start(cobyqa_loop(np.asarray(x, float), 0 if y is None else len(y) - 1, options), OWNER)
        run.point = run.chan.next_point(run.memo, OWNER)
        return run

    def tell(self, fom: float, y: np.ndarray | None) -> None:
        """Answer the pending point and wait for the next request (``point`` None: the run ended)."""
        self.chan.answers.put(self._answer(fom, y))
        self.point = self.chan.next_point(self.memo, OWNER)

    def close(self) -> None:
        """End the run's thread (idempotent): its start ended or the budget is spent."""
        self.point = None
        self.chan.close()

    def _answer(self, fom: float, y: np.ndarray | None) -> Answer:
        if y is None:
            return float(self.stand_in.objective(np.array([fom]))[0]), None
        return (float(self.stand_in.objective(y[:1])[0]),
                self.stand_in.constraints(np.asarray(y[1:], float)) + self.margin)

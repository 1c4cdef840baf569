"""ZOAF's state between ``ask`` and ``tell``, as types: the batch awaiting its values, the multistart batch and
each start's local search (its coordinate phase in ``coordinate.Sweep``, its constraint-aware measures in
``constrained.ConstrainedState``). Plain records: the optimizer owns every rule that changes them.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field

import numpy as np

from .constrained import ConstrainedState
from .coordinate import Sweep
from .local import CobyqaRun, LocalBatch
from .monitor import Phase, WindowMonitor

__all__ = ["Ending", "Start", "Samples", "InitBatch", "StepBatch", "AxisBatch", "Pending"]


class Ending(enum.Enum):
    """Why a start ended before its budget did."""
    CONVERGED = "converged"    # the step (and in the coordinate phase every direction's step) fell to its floor
    STOPPED = "stopped"        # the monitor early-stopped it: repeated stalls with nothing left to switch to


@dataclass
class Start:
    """One local search: iterate, step length, probe memory, monitor and budget bookkeeping."""

    x: np.ndarray
    fx: float
    alpha: float
    phase: Phase
    monitor: WindowMonitor
    horizon: int                     # simulations this start may expect in all (for the switch timing)
    allot: int = 0                   # budget cap of the current stint (absolute: compared with ``used``)
    used: int = 0
    stalls: int = 0                  # monitor stalls in the current phase
    v: np.ndarray | None = None      # unit direction of the last accepted move (momentum)
    g: np.ndarray | None = None      # gradient estimate at the iterate (constraint-aware: the descent direction)
    ended: Ending | None = None
    X: np.ndarray = field(default_factory=lambda: np.empty((0, 0)))   # memory: recent evaluated points
    F: np.ndarray = field(default_factory=lambda: np.empty(0))        # their FoMs
    moves: list[np.ndarray] = field(default_factory=list)   # recent accepted displacements (basis adaptation)
    sweep: Sweep | None = None       # the coordinate phase's current sweep (None before its first)
    con: ConstrainedState | None = None   # the measures behind the FoM, when the problem reports constraints
    local: CobyqaRun | None = None   # ``local="cobyqa"``: the start's COBYQA run (then x, fx: its best point)
    grace: int = 0                   # simulations of the local solver's initial set, before any judgement
    axes_due: bool = False           # ``axis_start``: the start's first batch is still its axis set

    @property
    def score(self) -> float:
        """The start's progress: its iterate's FoM (greedy, so its best) or, constraint-aware, its best FoM."""
        return self.fx if self.con is None else self.con.best

    def judge(self, F: np.ndarray, Y: np.ndarray | None) -> tuple[np.ndarray, int | None]:
        """Which points of a batch beat the iterate, and the one it moves to (None: it stays). Scalar: a lower
        FoM, the lowest; constraint-aware: the acceptance rule on (objective, violation)."""
        if self.con is not None:
            return self.con.judge(Y)
        better = F < self.fx
        i = int(np.argmin(F))
        return better, (i if better[i] else None)

    def move(self, x: np.ndarray, fx: float, y: np.ndarray | None, memory: int) -> None:
        """Greedy acceptance: the iterate moves to a point of the batch that beats it (``memory``: the accepted
        displacements kept for the basis)."""
        move = x - self.x
        if np.linalg.norm(move) > 0:
            self.v = move / np.linalg.norm(move)
            self.moves = [*self.moves, move][-memory:]
        if self.con is not None:
            self.con.move(y)
        self.x, self.fx = x.copy(), fx


@dataclass
class Samples:
    """The multistart batch: every point simulated before the first start, its FoM and (constraint-aware) its
    measures [objective, c]; the starts and the restart candidates are drawn from it."""

    X: np.ndarray
    F: np.ndarray
    Y: np.ndarray | None = None

    def add(self, X: np.ndarray, F: np.ndarray, Y: np.ndarray | None) -> None:
        """Append a resample of the box (asked because every point so far failed) or the late batch."""
        self.X, self.F = np.vstack([self.X, X]), np.concatenate([self.F, F])
        if Y is not None:
            self.Y = Y.copy() if self.Y is None else np.vstack([self.Y, Y])

    def row(self, i: int) -> np.ndarray | None:
        """Measures of point ``i`` (None: the scalar method)."""
        return None if self.Y is None else self.Y[i]


@dataclass(frozen=True)
class InitBatch:
    """The pending batch samples the box: the multistart batch, or a resample after every point failed, or
    (``late``) the batch drawn when the first start ended early (``ZOAFConfig.late_init``)."""

    late: bool = False


@dataclass(frozen=True)
class StepBatch:
    """A step's pending batch: ``len(lengths)`` trial points first, then the probes around the iterate ``x``."""

    x: np.ndarray                    # the iterate when asked (the classic estimate's centre)
    fx: float
    phase: Phase
    lengths: np.ndarray              # length of each trial step
    scale: float | None = None       # random phase: the probes' scale (distance ~h from x)
    dirs: np.ndarray | None = None   # coordinate phase: the sweep's directions probed, in order

    @property
    def n_trials(self) -> int:
        return len(self.lengths)


@dataclass(frozen=True)
class AxisBatch:
    """A start's axis set pending (``ZOAFConfig.axis_start``): x +- h along each axis around ``x``."""

    x: np.ndarray
    fx: float


Pending = InitBatch | StepBatch | LocalBatch | AxisBatch

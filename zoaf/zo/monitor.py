"""Sliding-window monitor: pure logic on a trace of best-so-far values; no I/O, no clock.

The monitor keeps the best-so-far value after each charged simulation of a start. When the relative
improvement over the last ``window`` simulations falls below ``rel_tol`` it signals a stall; ``decide``
turns a stall, the phase and the budget into one action: switch random -> coordinate (only late enough and
with budget left for the cheap sweeps: a prototype that switched to 2d-sweeps at 15-25% of its budget
lost 2x), shrink the step, or early-stop.

Example:
    >>> m = WindowMonitor(window=4, rel_tol=1e-3)
    >>> for v in [10, 5, 5, 5, 5, 5]:
    ...     m.push(v)
    >>> m.stalled()
    True
"""
from __future__ import annotations

import enum
from collections import deque
from dataclasses import dataclass

import numpy as np

from .config import ZOAFConfig

__all__ = ["WindowMonitor", "Action", "Phase", "StartView", "decide"]

#: Relative improvement is measured against max(|f_old|, this): f values near 0 still compare sanely.
ABS_FLOOR = 1e-12


class Action(str, enum.Enum):
    NONE = "none"
    SWITCH = "switch"          # random -> coordinate mode
    SHRINK = "shrink"          # shrink step and smoothing radius
    STOP = "stop"              # early-stop this start; its budget goes to the next


class WindowMonitor:
    """Best-so-far values of the last ``window`` charged simulations (plus the one before them)."""

    def __init__(self, window: int, rel_tol: float, offset: float | None = None) -> None:
        self.window = max(1, int(window))
        self.rel_tol = float(rel_tol)
        self.offset = offset      # values >= offset are offset + violation: progress is relative to the violation
        self._trace: deque[float] = deque(maxlen=self.window + 1)

    def push(self, best: float, n: int = 1) -> None:
        """Record the best-so-far value after ``n`` more charged simulations."""
        for _ in range(max(0, int(n))):
            self._trace.append(float(best))

    def reset(self) -> None:
        """Forget the trace (after an action, so the next window judges the new regime only)."""
        self._trace.clear()

    @property
    def full(self) -> bool:
        return len(self._trace) > self.window

    def improvement(self) -> float:
        """Relative improvement over the window; +inf while the window is not full or values went finite."""
        if not self.full:
            return np.inf
        old, new = self._trace[0], self._trace[-1]
        if not np.isfinite(old):
            return np.inf if np.isfinite(new) else 0.0
        if self.offset is not None and old >= self.offset:   # infeasible: how much of the violation went
            return np.inf if new < self.offset else (old - new) / max(old - self.offset, ABS_FLOOR)
        return (old - new) / max(abs(old), ABS_FLOOR)

    def stalled(self) -> bool:
        return self.full and self.improvement() < self.rel_tol


class Phase(str, enum.Enum):
    """A start's local-search phase (its name is also the optimizer's ``phase`` shown in the history)."""
    RANDOM = "random"          # probes along random orthogonal directions at the smoothing radius
    COORDINATE = "coordinate"  # probes along an adapted basis, one step length and side per direction


@dataclass(frozen=True)
class StartView:
    """What ``decide`` needs to know about a start, read at the end of one of its steps."""

    phase: Phase
    used_fraction: float       # share of this start's budget horizon already spent
    remaining: int             # simulations this start may still spend
    sweep_cost: int            # simulations of one cheap coordinate sweep (active coordinates, forward differences)
    stalls: int                # stalls already counted in the current phase


def decide(stalled: bool, start: StartView, config: ZOAFConfig) -> Action:
    """One action from the window's stall signal, the start's phase and budget, and the method's settings.

    Switching to the coordinate phase needs ``config.mode == "hybrid"``; without ``config.monitor`` the schedule
    is fixed: the switch happens at ``switch_force``, nothing else fires.
    """
    can_switch = (config.mode == "hybrid" and start.phase is Phase.RANDOM
                  and start.remaining >= config.min_sweeps * start.sweep_cost)
    if can_switch and start.used_fraction >= config.switch_force:
        return Action.SWITCH
    if not config.monitor or not stalled:
        return Action.NONE
    if can_switch and start.used_fraction >= config.switch_min_used:
        return Action.SWITCH
    if start.stalls + 1 >= config.max_stalls and not can_switch:
        return Action.STOP      # nothing left to try here: hand the budget on
    return Action.SHRINK

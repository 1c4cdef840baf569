"""Problems: what an optimizer minimizes, seen through the unit box [0, 1]^d.

Every optimizer works in the unit box; a ``Problem`` maps box points to physical values (log-scaled
parameters are linear in the box, integers are relaxed there and rounded here) and physical values to an
``Outcome``. ``FunctionProblem`` wraps any Python function; ``CircuitProblem`` (in ``zoaf.circuit``) wraps a
netlist, its spec and an ngspice session.
"""
from __future__ import annotations

import enum
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from .errors import InputError, SimulationError


class Status(str, enum.Enum):
    """Life cycle of one simulation, carried by every history row (as Optuna's ``TrialState``)."""

    OK = "ok"
    FAILED = "failed"
    TIMEOUT = "timeout"
    CRASHED = "crashed"
    CACHED = "cached"


@dataclass(frozen=True)
class Parameter:
    """One design variable: physical bounds, scale (``lin``/``log``), integer or not, optional start value."""

    name: str
    lo: float
    hi: float
    scale: str = "lin"
    integer: bool = False
    init: float | None = None
    unit: str = ""

    def __post_init__(self) -> None:
        if not (math.isfinite(self.lo) and math.isfinite(self.hi)):
            raise InputError(f"parameter {self.name!r}: bounds must be finite numbers, got lo={self.lo}, hi={self.hi}")
        if not self.lo < self.hi:
            raise InputError(f"parameter {self.name!r}: lo must be < hi, got lo={self.lo:g}, hi={self.hi:g}")
        if self.scale not in ("lin", "log"):
            raise InputError(f"parameter {self.name!r}: scale must be 'lin' or 'log', got {self.scale!r}")
        if self.scale == "log" and self.lo <= 0:
            raise InputError(f"parameter {self.name!r}: log scale needs lo > 0, got lo={self.lo:g}")
        if not math.isfinite(self.hi - self.lo):   # the box maps onto lo + u * (hi - lo)
            raise InputError(f"parameter {self.name!r}: the span hi - lo of {self.lo:g}..{self.hi:g} overflows "
                             f"a float; narrow the bounds")
        if self.integer and (self.lo != round(self.lo) or self.hi != round(self.hi)):
            raise InputError(f"parameter {self.name!r}: integer bounds must be integers, got {self.lo:g}..{self.hi:g}")
        if self.init is not None and not self.lo <= self.init <= self.hi:
            raise InputError(
                f"parameter {self.name!r}: init={self.init:g} lies outside [{self.lo:g}, {self.hi:g}]")

    def _span(self) -> tuple[float, float]:
        # Integers: the box covers [lo - 0.5, hi + 0.5] so that every integer gets an equal share of it.
        lo, hi = (self.lo - 0.5, self.hi + 0.5) if self.integer else (self.lo, self.hi)
        return (math.log(lo), math.log(hi)) if self.scale == "log" else (lo, hi)

    def to_physical(self, u: np.ndarray) -> np.ndarray:
        a, b = self._span()
        t = a + np.clip(u, 0.0, 1.0) * (b - a)
        x = np.exp(t) if self.scale == "log" else t
        return np.clip(np.round(x), self.lo, self.hi) if self.integer else np.clip(x, self.lo, self.hi)

    def to_unit(self, x: np.ndarray) -> np.ndarray:
        a, b = self._span()
        t = np.log(x) if self.scale == "log" else np.asarray(x, dtype=float)
        return np.clip((t - a) / (b - a), 0.0, 1.0)

    @property
    def unit_step(self) -> float:
        """Smallest box displacement that moves an integer by one step (0 for continuous parameters)."""
        if not self.integer:
            return 0.0
        a, b = self._span()
        if self.scale == "lin":
            return 1.0 / (self.hi - self.lo + 1.0)
        # log: the largest step (near lo) so that a move of this size changes the integer everywhere
        return float((math.log(self.lo + 0.5) - math.log(self.lo - 0.5)) / (b - a)) if self.lo > 0.5 else 1.0 / (self.hi - self.lo + 1.0)


@dataclass
class Outcome:
    """What one simulation of one point gave."""

    status: Status
    fom: float = math.inf
    measures: dict[str, float] = field(default_factory=dict)
    objective: float | None = None      # the raw objective value (before constraint handling), if any
    feasible: bool | None = None        # None: the problem has no constraints
    error: str | None = None
    seconds: float = 0.0


class Problem:
    """Bounds, box mapping and evaluation of one physical point. Subclasses implement ``simulate``.

    Picklable by design: the evaluator ships the problem to worker processes, which open whatever they need
    (an ngspice session) lazily, once per process.
    """

    name: str = "problem"

    def __init__(self, parameters: Sequence[Parameter]) -> None:
        names = [p.name for p in parameters]
        if not names:
            raise InputError("a problem needs at least one parameter")
        if len(set(names)) != len(names):
            raise InputError(f"duplicate parameter names: {sorted({n for n in names if names.count(n) > 1})}")
        self.parameters = tuple(parameters)

    @property
    def dim(self) -> int:
        return len(self.parameters)

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.parameters]

    @property
    def unit_steps(self) -> np.ndarray:
        """Per coordinate, the least box move that changes a simulated value (integers), else 0."""
        return np.array([p.unit_step for p in self.parameters])

    def to_physical(self, u: np.ndarray) -> np.ndarray:
        u = np.asarray(u, dtype=float)
        return np.stack([p.to_physical(u[..., i]) for i, p in enumerate(self.parameters)], axis=-1)

    def to_unit(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=float)
        return np.stack([p.to_unit(x[..., i]) for i, p in enumerate(self.parameters)], axis=-1)

    def x0_unit(self) -> np.ndarray | None:
        """The user's start point in the box (``init`` values; the box centre for parameters without one), or
        None when no parameter has an ``init``: then each method starts as its own design says."""
        if all(p.init is None for p in self.parameters):
            return None
        return np.array([p.to_unit(np.array(p.init)).item() if p.init is not None else 0.5
                         for p in self.parameters])

    def as_dict(self, x: np.ndarray) -> dict[str, float]:
        return {p.name: (int(v) if p.integer else float(v)) for p, v in zip(self.parameters, x)}

    def simulate(self, x: np.ndarray) -> Outcome:
        """Evaluate one physical point. Never raises for a failed simulation: returns a failed ``Outcome``."""
        raise NotImplementedError

    @property
    def needed(self) -> tuple[str, ...]:
        """Measures the FoM is made of: a best point without one of them is no sizing found (none here)."""
        return ()

    def metadata(self) -> dict[str, Any]:
        """What identifies this problem in a history (checked on resume)."""
        return {"name": self.name, "parameters": [p.__dict__ for p in self.parameters]}

    def close(self) -> None:
        """Release per-process resources (an ngspice session); the problem stays usable."""


class FunctionProblem(Problem):
    """A Python black box ``fun(x) -> float`` over physical ``x``. Exceptions and NaN count as failures."""

    name = "function"

    def __init__(self, fun: Callable[[np.ndarray], float], parameters: Sequence[Parameter]) -> None:
        super().__init__(parameters)
        self.fun = fun

    @classmethod
    def from_bounds(cls, fun: Callable[[np.ndarray], float], bounds: Sequence[tuple[float, float]] | np.ndarray,
                    *, integers: Sequence[int] | None = None, log: Sequence[int] | None = None,
                    x0: Sequence[float] | None = None) -> "FunctionProblem":
        """scipy-style construction: ``bounds`` as (lo, hi) pairs, index lists for integer and log axes."""
        bounds = np.asarray(bounds, dtype=float)
        if bounds.ndim != 2 or bounds.shape[1] != 2:
            raise InputError(f"bounds must be a sequence of (lo, hi) pairs, got shape {bounds.shape}")
        d = len(bounds)
        ints, logs = set(integers or ()), set(log or ())
        for i in ints | logs:
            if not 0 <= i < d:
                raise InputError(f"index {i} in integers/log is out of range for {d} bounds")
        if x0 is not None and len(x0) != d:
            raise InputError(f"x0 has {len(x0)} values for {d} bounds")
        params = [Parameter(f"x{i}", float(lo), float(hi), "log" if i in logs else "lin", i in ints,
                            None if x0 is None else float(x0[i])) for i, (lo, hi) in enumerate(bounds)]
        return cls(fun, params)

    def simulate(self, x: np.ndarray) -> Outcome:
        t0 = time.perf_counter()
        try:
            value = float(self.fun(np.array(x, dtype=float)))
        except (SimulationError, ArithmeticError, ValueError) as e:
            return Outcome(Status.FAILED, error=f"{type(e).__name__}: {e}", seconds=time.perf_counter() - t0)
        dt = time.perf_counter() - t0
        if math.isnan(value):
            return Outcome(Status.FAILED, error="function returned NaN", seconds=dt)
        return Outcome(Status.OK, fom=value, objective=value, seconds=dt)


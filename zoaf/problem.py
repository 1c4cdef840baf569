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
from typing import Any, Callable, Hashable, Sequence

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
        if self.init is not None and not self.admits(self.init):
            raise InputError(
                f"parameter {self.name!r}: init={self.init:g} lies outside [{self.lo:g}, {self.hi:g}]")

    def admits(self, value: float, *, exact: bool = False) -> bool:
        """Whether ``value`` lies within the bounds (``exact``: and is a whole number for an integer parameter)."""
        return self.lo <= value <= self.hi and not (exact and self.integer and value != round(value))

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
        if self.lo <= 0.5:
            return 1.0 / (self.hi - self.lo + 1.0)
        return float((math.log(self.lo + 0.5) - math.log(self.lo - 0.5)) / (b - a))


#: Feasible FoMs are signed-log compressed objectives, below this offset for any physical value (|v| < 1e30);
#: infeasible FoMs are the offset plus the normalized violation, so any feasible point beats any infeasible one
#: and the violation keeps full float resolution (an offset like 1e30 would swallow it).
INFEASIBLE_OFFSET = 100.0
#: Violation charged for a constraint whose measure is missing (the simulation ran but the measure could not be
#: taken, e.g. no unity-gain crossing): still better than a failed simulation. The FoM caps each violation at
#: this value too (its ranking is unchanged since the first benchmarks); the constraint values are not capped.
MISSING_VIOLATION = 10.0


def squash(v: float, scale: float = 1.0) -> float:
    """Monotone signed log compression: ~v near 0, logarithmic for huge values (|squash| < 70 for |v| < 1e30)."""
    return math.copysign(math.log1p(abs(v) / scale), v)


@dataclass(frozen=True)
class Score:
    """How one set of measures is judged.

    ``fom`` is the scalar every method minimizes and every report ranks by; ``objective_fom`` and
    ``constraints`` are what a constraint-aware method models instead (``Optimizer.tell``'s ``objective``
    and a row of ``c``), so that it sees the objective across the feasibility boundary.
    """

    fom: float
    objective: float | None             # the raw objective value (the measure, or the Python FoM), if any
    feasible: bool | None               # None: no constraints
    objective_fom: float = math.inf     # the objective on the FoM's scale; +inf when it was not measured
    constraints: tuple[float, ...] = () # Constraint.value per constraint, <= 0 met

    @classmethod
    def of(cls, value: float, constraints: Sequence[float], scale: float = 1.0,
           objective: float | None = None) -> "Score":
        """Judge ``value`` (to minimize) under normalized ``constraints`` values: feasible points by squashed
        value, any feasible before any infeasible, infeasible ones by total violation (each capped at
        ``MISSING_VIOLATION``, so the FoM stays as reports have always ranked it). Unconstrained: the value."""
        objective = value if objective is None else objective
        if not constraints:
            return cls(value, objective, None, value)
        violation = sum(min(g, MISSING_VIOLATION) for g in constraints if g > 0)
        scaled = squash(value, scale)
        fom = INFEASIBLE_OFFSET + violation if violation > 0 else scaled
        return cls(fom, objective, violation == 0, scaled, tuple(constraints))

    @classmethod
    def unmeasured(cls, constraints: Sequence[float], fom: float) -> "Score":
        """The objective could not be taken: infeasible, at ``fom``; the constraints as measured."""
        return cls(fom, None, False, math.inf, tuple(constraints))


@dataclass
class Outcome:
    """What one simulation of one point gave: its status, measures and ``Score`` fields (a failed simulation
    has ``fom = objective_fom = +inf`` and no constraint values)."""

    status: Status
    fom: float = math.inf
    measures: dict[str, float] = field(default_factory=dict)
    objective: float | None = None      # the raw objective value (before constraint handling), if any
    feasible: bool | None = None        # None: the problem has no constraints
    error: str | None = None
    seconds: float = 0.0
    objective_fom: float = math.inf     # the objective on the FoM's scale (Score.objective_fom)
    constraints: tuple[float, ...] = () # normalized constraint values, <= 0 met (Score.constraints)

    @classmethod
    def scored(cls, score: Score, measures: dict[str, float], seconds: float, error: str | None = None) -> "Outcome":
        """A simulation that ran (``error`` notes measures it could not take), judged by ``score``."""
        return cls(Status.OK, score.fom, measures, score.objective, score.feasible, error, seconds,
                   score.objective_fom, score.constraints)


class Problem:
    """Bounds, box mapping and evaluation of one physical point. Subclasses implement ``simulate``.

    Picklable by design: the evaluator ships the problem to worker processes, which open whatever they need
    (an ngspice session) lazily, once per process.
    """

    name: str = "problem"
    #: ``affinity(x)``: a hashable key naming what simulating ``x`` needs loaded in a worker process (a sign-off
    #: simulation's PDK process corner): the local pool routes a task to a worker that ran its key last, when
    #: one is free. None: every worker is as good.
    affinity: Callable[[np.ndarray], Hashable] | None = None

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

    @property
    def constraint_names(self) -> tuple[str, ...]:
        """One name per column of the constraint matrix the methods are told (empty: unconstrained)."""
        return ()

    def target_fom(self) -> float | None:
        """The FoM at or below which a feasible design meets the spec and the run may stop (None: no target)."""
        return None

    def artifacts(self, params: dict[str, float]) -> dict[str, str | bytes]:
        """Files (name -> text) that reproduce the best design outside zoaf, written to the run directory."""
        return {}

    def as_dict(self, x: np.ndarray) -> dict[str, float]:
        return {p.name: (int(v) if p.integer else float(v)) for p, v in zip(self.parameters, x)}

    def simulate(self, x: np.ndarray) -> Outcome:
        """Evaluate one physical point. Never raises for a failed simulation: returns a failed ``Outcome``."""
        raise NotImplementedError

    def method_budget(self, budget: int) -> int:
        """The budget in the method's units (points it asks) for ``budget`` simulations: one point, one
        simulation here; a corner problem simulates each point once per corner."""
        return budget

    def evaluator(self, **options: Any) -> Any:
        """The evaluator that turns this problem's points into records (``zoaf.evaluate.Evaluator``)."""
        from .evaluate import Evaluator

        return Evaluator(self, **options)

    @property
    def needed(self) -> tuple[str, ...]:
        """Measures the FoM is made of: a best point without one of them is no sizing found (none here)."""
        return ()

    def metadata(self) -> dict[str, Any]:
        """What identifies this problem in a history (checked on resume)."""
        return {"name": self.name, "parameters": [p.__dict__ for p in self.parameters]}

    def close(self) -> None:
        """Release per-process resources (an ngspice session); the problem stays usable."""


#: One constraint of a FunctionProblem: ``g(x) -> value or array``, each value ``<= 0`` when met.
ConstraintFun = Callable[[np.ndarray], Any]


class FunctionProblem(Problem):
    """A Python black box ``fun(x) -> float`` over physical ``x``. Exceptions and NaN count as failures.

    ``constraints``: callables ``g(x) -> value or array``, each value ``<= 0`` when met (zoaf's convention;
    ``zoaf.minimize`` converts scipy's). Each is called once at construction, at ``x0`` or the box centre, to
    learn how many values it returns (as scipy does at ``x0``); those calls are not simulations. The FoM then
    ranks feasible before infeasible as a circuit's does; a feasible point's FoM is its squashed value.
    """

    name = "function"

    def __init__(self, fun: Callable[[np.ndarray], float], parameters: Sequence[Parameter], *,
                 constraints: Sequence[ConstraintFun] = (), target: float | None = None) -> None:
        super().__init__(parameters)
        self.fun = fun
        self.constraints = tuple(constraints)
        u0 = self.x0_unit()
        x0 = self.to_physical(np.full(self.dim, 0.5) if u0 is None else u0)
        try:
            sizes = [np.asarray(g(x0.copy()), dtype=float).size for g in self.constraints]
        except Exception as e:
            raise InputError(f"constraints: calling one at x = {x0.tolist()} raised {type(e).__name__}: {e}") from None
        self._constraint_names = tuple(f"c{j}" for j in range(sum(sizes)))
        self.target = target

    @property
    def constraint_names(self) -> tuple[str, ...]:
        return self._constraint_names

    def metadata(self) -> dict[str, Any]:
        return {**super().metadata(), "constraints": len(self._constraint_names), "target": self.target}

    def target_fom(self) -> float | None:
        if self.target is None:
            return None
        return Score.of(float(self.target), [-1.0] * len(self.constraint_names)).fom

    @classmethod
    def from_bounds(cls, fun: Callable[[np.ndarray], float], bounds: Sequence[tuple[float, float]] | np.ndarray,
                    *, integers: Sequence[int] | None = None, log: Sequence[int] | None = None,
                    x0: Sequence[float] | None = None, constraints: Sequence[ConstraintFun] = (),
                    target: float | None = None) -> "FunctionProblem":
        """scipy-style construction: ``bounds`` as (lo, hi) pairs or a ``scipy.optimize.Bounds``, index lists for
        integer and log axes."""
        if hasattr(bounds, "lb") and hasattr(bounds, "ub"):          # scipy.optimize.Bounds
            bounds = np.column_stack(np.broadcast_arrays(np.ravel(bounds.lb), np.ravel(bounds.ub))).astype(float)
        bounds = _numbers(bounds, "bounds")
        if bounds.ndim != 2 or bounds.shape[1] != 2:
            raise InputError(f"bounds must be a sequence of (lo, hi) pairs, got shape {bounds.shape}")
        d = len(bounds)
        ints, logs = set(integers or ()), set(log or ())
        for i in ints | logs:
            if not 0 <= i < d:
                raise InputError(f"index {i} in integers/log is out of range for {d} bounds")
        start = None if x0 is None else _numbers(x0, "x0").ravel()
        if start is not None and len(start) != d:
            raise InputError(f"x0 has {len(start)} values for {d} bounds")
        goal = None if target is None else _numbers(target, "target")
        if goal is not None and (isinstance(target, bool) or goal.size != 1 or not math.isfinite(goal.item())):
            raise InputError(f"target must be a finite number, got {target!r}")
        params = [Parameter(f"x{i}", float(lo), float(hi), "log" if i in logs else "lin", i in ints,
                            None if start is None else float(start[i])) for i, (lo, hi) in enumerate(bounds)]
        return cls(fun, params, constraints=constraints, target=None if goal is None else float(goal.item()))

    def simulate(self, x: np.ndarray) -> Outcome:
        t0 = time.perf_counter()
        try:
            value = _number(self.fun(np.array(x, dtype=float)))
            xa = np.array(x, dtype=float)
            cons = [float(v) for g in self.constraints for v in _values(g(xa))]
        except (SimulationError, ArithmeticError, ValueError) as e:
            return Outcome(Status.FAILED, error=f"{type(e).__name__}: {e}", seconds=time.perf_counter() - t0)
        dt = time.perf_counter() - t0
        if math.isnan(value) or any(math.isnan(v) for v in cons):
            return Outcome(Status.FAILED, error="function or constraint returned NaN", seconds=dt)
        if len(cons) != len(self.constraint_names):
            return Outcome(Status.FAILED, error=f"constraints returned {len(cons)} values, "
                           f"{len(self.constraint_names)} at the start point", seconds=dt)
        return Outcome.scored(Score.of(value, cons), {}, dt)


def _numbers(value: Any, what: str) -> np.ndarray:
    """``value`` as a float array; text or anything else not a number is one InputError naming ``what``."""
    if isinstance(value, (str, bytes)) or (isinstance(value, np.ndarray) and value.dtype.kind in "SUO"):
        raise InputError(f"{what} must be numbers, got {value!r}")
    try:
        return np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise InputError(f"{what} must be numbers, got {value!r}") from None


def _number(value: Any) -> float:
    """``fun``'s value as a float (a one-element array too, as scipy). Anything else (None, text, complex, a longer
    array) is a ValueError, so that it fails this point as NaN does instead of ending the run with a TypeError."""
    if isinstance(value, (str, bytes)):
        raise ValueError(f"fun returned {type(value).__name__} {value!r}, not a number")
    try:
        return float(value.item() if isinstance(value, np.ndarray) and value.size == 1 else value)
    except TypeError:
        shape = f" of shape {np.shape(value)}" if isinstance(value, np.ndarray) else ""
        raise ValueError(f"fun returned {type(value).__name__}{shape}, not a number") from None


def _values(value: Any) -> np.ndarray:
    """A constraint's values as a flat float array; a non-number (None, complex) is a ValueError, as in ``_number``."""
    try:
        return np.ravel(np.asarray(value, float))
    except TypeError:
        raise ValueError(f"a constraint returned {type(value).__name__}, not numbers") from None


def scipy_constraints(constraints: Any) -> list[ConstraintFun]:
    """scipy.optimize's constraints as zoaf's (``g(x) <= 0`` met): a dict ``{"type": "ineq", "fun": g,
    "args": ()}`` (met when ``g(x) >= 0``), a list of them, ``NonlinearConstraint`` or ``LinearConstraint``.

    Equality constraints are refused: a sampled point never meets ``h(x) = 0`` exactly, so a zeroth-order
    method could only report every point infeasible.
    """
    from scipy.optimize import LinearConstraint, NonlinearConstraint

    items = [constraints] if isinstance(constraints, (dict, NonlinearConstraint, LinearConstraint)) \
        else list(constraints or ())
    return [_one_constraint(c, j) for j, c in enumerate(items)]


def _one_constraint(c: Any, j: int) -> ConstraintFun:
    from scipy.optimize import LinearConstraint, NonlinearConstraint

    equality = ("constraints[{j}]: equality constraints are not supported (a sampled point never meets "
                "h(x) = 0 exactly); eliminate a variable or bound h with two 'ineq' constraints and a tolerance")
    if isinstance(c, dict):
        extra = set(c) - {"type", "fun", "args", "jac"}
        if extra or c.get("type") not in ("ineq", "eq") or not callable(c.get("fun")):
            raise InputError(f"constraints[{j}]: expected {{'type': 'ineq', 'fun': g}}, got {c!r}")
        if c["type"] == "eq":
            raise InputError(equality.format(j=j))
        fun, args = c["fun"], tuple(c.get("args", ()))
        return lambda x: -np.asarray(fun(x, *args), dtype=float)
    if isinstance(c, (NonlinearConstraint, LinearConstraint)):
        fun = c.fun if isinstance(c, NonlinearConstraint) else (lambda x, A=np.atleast_2d(c.A): A @ x)
        lb, ub = np.asarray(c.lb, dtype=float), np.asarray(c.ub, dtype=float)
        if np.any(lb == ub):
            raise InputError(equality.format(j=j))
        if np.any(np.isnan(lb)) or np.any(np.isnan(ub)) or np.any(lb > ub):   # silently ignored, or never met
            raise InputError(f"constraints[{j}]: bounds must satisfy lb < ub (not NaN), got lb={c.lb}, ub={c.ub}")
        return lambda x: _two_sided(np.atleast_1d(np.asarray(fun(x), dtype=float)), lb, ub)
    raise InputError(f"constraints[{j}]: expected a dict, NonlinearConstraint or LinearConstraint, "
                     f"got {type(c).__name__}")


def _two_sided(v: np.ndarray, lb: np.ndarray, ub: np.ndarray) -> np.ndarray:
    """``lb <= v <= ub`` as values ``<= 0`` met: one per finite side (infinite sides are dropped)."""
    lb, ub = np.broadcast_to(lb, v.shape), np.broadcast_to(ub, v.shape)
    return np.concatenate([(lb - v)[np.isfinite(lb)], (v - ub)[np.isfinite(ub)]])

"""Problems: what an optimizer minimizes, seen through the unit box [0, 1]^d.

Every optimizer works in the unit box; a ``Problem`` maps box points to physical values (log-scaled
parameters are linear in the box, integers are relaxed there and rounded here) and physical values to an
``Outcome``. ``FunctionProblem`` (in ``zoaf.function``) wraps any Python function; ``CircuitProblem`` (in
``zoaf.circuit``) wraps a netlist, its spec and an ngspice session.
"""
from __future__ import annotations

import enum
import functools
import math
import os
import time
import traceback
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Callable, Hashable, Sequence

import numpy as np

from . import units
from .axes import IntegerAxis
from .errors import InputError


class Status(str, enum.Enum):
    """Life cycle of one simulation, carried by every history row (as Optuna's ``TrialState``)."""

    OK = "ok"
    FAILED = "failed"
    TIMEOUT = "timeout"
    CRASHED = "crashed"
    CACHED = "cached"


#: The largest integer bound: every whole number up to it is a float, past it steps of one are lost (an integer axis
#: of 1..1e30 crashed the process under NOMAD, whose granularity check failed).
MAX_WHOLE = 2**53


class ParameterError(InputError):
    """A ``Parameter`` refused: ``field`` names the attribute at fault (``lo``, ``init``; None: the bounds together)
    and ``detail`` what is wrong with it, so that a caller that names the parameter its own way (a spec's
    ``parameters.r1``, ``minimize``'s ``bounds[0]``) names the field with it, from this one set of rules."""

    def __init__(self, name: str, key: str | None, detail: str) -> None:
        self.name, self.field, self.detail = name, key, detail
        super().__init__(f"parameter {name!r}: {self.worded()}")

    def __reduce__(self) -> tuple[Any, ...]:       # pickled as built (a comparison's runs are processes)
        return type(self), (self.name, self.field, self.detail)

    def worded(self) -> str:
        """The refusal as a sentence about the field (``lo must be < hi, ...``)."""
        return self.detail if self.field is None else f"{self.field} {self.detail}"

    def at(self, key: str) -> InputError:
        """The refusal said at ``key``, the caller's name for the parameter: ``KEY.lo: must be < hi, ...``."""
        return InputError(f"{key}: {self.detail}" if self.field is None else f"{key}.{self.field}: {self.detail}")


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
        if not isinstance(self.name, str) or not self.name:
            raise InputError(f"parameter name must be non-empty text, got {self.name!r}")
        for key in ("lo", "hi", *(("init",) if self.init is not None else ())):
            if not _is_real(value := getattr(self, key)):
                raise self._refused(key, f"must be a number, got {units.echo(value)}")
            if not _finite(value):       # an int past the float range too (10**400), which was an OverflowError
                raise self._refused(key, f"must be a finite number, got {units.echo(value)}")
        if not isinstance(self.integer, (bool, np.bool_)):
            raise self._refused("integer", f"must be True or False, got {units.echo(self.integer)}")
        if not self.lo < self.hi:
            raise self._refused("lo", f"must be < hi, got lo={self.lo:g}, hi={self.hi:g}")
        if self.scale not in ("lin", "log"):
            raise self._refused("scale", f"must be 'lin' or 'log', got {units.echo(self.scale)}")
        if self.scale == "log" and self.lo <= 0:
            raise self._refused("lo", f"must be > 0 on a log scale, got {self.lo:g}")
        if not math.isfinite(self.hi - self.lo):   # the box maps onto lo + u * (hi - lo)
            raise self._refused(None, f"the span hi - lo of {self.lo:g}..{self.hi:g} overflows a float; narrow "
                                      "the bounds")
        for key, v in (("lo", self.lo), ("hi", self.hi)) if self.integer else ():
            if v != round(v):
                raise self._refused(key, f"must be a whole number (an integer parameter), got {v:g}")
            if abs(v) > MAX_WHOLE:
                raise self._refused(key, f"must be within -2**53..2**53 (an integer parameter: past it a float "
                                         f"skips whole numbers), got {v:g}")
        if self.init is not None and not self.admits(self.init):
            raise self._refused("init", f"{self.init:g} lies outside lo..hi = {self.lo:g}..{self.hi:g}")
        if self.init is not None and not self.admits(self.init, exact=True):    # was rounded (2.5 to 2) unsaid
            raise self._refused("init", f"{self.init:g} is not a whole number (an integer parameter)")

    def _refused(self, key: str | None, detail: str) -> ParameterError:
        return ParameterError(self.name, key, detail)

    def admits(self, value: float, *, exact: bool = False) -> bool:
        """Whether ``value`` lies within the bounds (``exact``: and is a whole number for an integer parameter)."""
        return self.lo <= value <= self.hi and not (exact and self.integer and value != round(value))

    def _span(self) -> tuple[float, float]:
        axis = self.integer_axis      # integers: every one gets a cell of the box
        if axis is not None:
            return axis.span()
        return (math.log(self.lo), math.log(self.hi)) if self.scale == "log" else (self.lo, self.hi)

    def to_physical(self, u: np.ndarray) -> np.ndarray:
        axis = self.integer_axis
        if axis is not None:
            return axis.value(u)
        a, b = self._span()
        t = a + np.clip(u, 0.0, 1.0) * (b - a)
        return np.clip(np.exp(t) if self.scale == "log" else t, self.lo, self.hi)

    def to_unit(self, x: np.ndarray) -> np.ndarray:
        a, b = self._span()
        t = np.log(x) if self.scale == "log" else np.asarray(x, dtype=float)
        return np.clip((t - a) / (b - a), 0.0, 1.0)

    @property
    def integer_axis(self) -> IntegerAxis | None:
        """An integer parameter's cells in the box (what a method needs to step it by one), else None."""
        return IntegerAxis(int(self.lo), int(self.hi), self.scale == "log") if self.integer else None

    @property
    def unit_step(self) -> float:
        """Box displacement that moves an integer by one step anywhere on its axis (the widest cell; a log axis's
        cells narrow as it grows: :attr:`integer_axis`); 0 for continuous parameters."""
        axis = self.integer_axis
        return 0.0 if axis is None else axis.widest


#: Feasible FoMs are signed-log compressed objectives, below this offset for any physical value (|v| < 1e30);
#: infeasible FoMs are the offset plus the normalized violation, so any feasible point beats any infeasible one
#: and the violation keeps full float resolution (an offset like 1e30 would swallow it).
INFEASIBLE_OFFSET = 100.0
#: Violation charged for a constraint whose measure is missing (the simulation ran but the measure could not be
#: taken, e.g. no unity-gain crossing): still better than a failed simulation. The FoM caps each violation at
#: this value too (its ranking is unchanged since the first benchmarks); the constraint values are not capped.
MISSING_VIOLATION = 10.0


def squash(v: float, scale: float = 1.0) -> float:
    """Monotone signed log compression: ~v near 0, logarithmic for huge values (|squash| < 70 for |v| < 1e30). A
    ratio past the float range (a measure of 1e300 over a scale of 1e-30) is the difference of the logs: it was
    inf, a maximized measure's FoM -inf, better than any design."""
    ratio = abs(v) / scale
    return math.copysign(math.log1p(ratio) if math.isfinite(ratio) else math.log(abs(v)) - math.log(scale), v)


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
    #: What the evaluator says of the problem as its first simulation starts, each a ``ZoafNote`` warning (a circuit:
    #: how ``ngspice -b`` reads its deck).
    notes: tuple[str, ...] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Guard each subclass's own ``simulate`` (:func:`_guarded`): the pools call it in worker processes, where an
        exception, or a value that is no ``Outcome``, ended the whole run (or sat in its history) wherever it ran."""
        super().__init_subclass__(**kwargs)
        own = cls.__dict__.get("simulate")
        if callable(own) and not getattr(own, "guarded", False):
            cls.simulate = _guarded(own)

    def __init__(self, parameters: Sequence[Parameter]) -> None:
        if isinstance(parameters, Parameter) or not isinstance(parameters, Iterable):   # a TypeError traceback
            raise InputError(f"parameters must be a sequence of zoaf Parameters, got {type(parameters).__name__}")
        parameters = tuple(parameters)
        if not parameters:
            raise InputError("a problem needs at least one parameter")
        for p in parameters:
            if not isinstance(p, Parameter):
                raise InputError(f"parameters must be zoaf Parameters, got {type(p).__name__} {p!r}")
        names = [p.name for p in parameters]
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

    @property
    def integer_axes(self) -> tuple[IntegerAxis | None, ...]:
        """Per coordinate, the integer parameter's cells (None for a continuous one)."""
        return tuple(p.integer_axis for p in self.parameters)

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
        """Parameter name -> physical value of ``x``; one value per parameter (``zip`` dropped the ones missing, and
        a point of one value for two parameters simulated with the second at the deck's own value, unsaid)."""
        if len(x) != len(self.parameters):
            raise InputError(f"{self.name}: a point of {len(x)} values for {len(self.parameters)} parameters "
                             f"({', '.join(p.name for p in self.parameters)})")
        return {p.name: (int(v) if p.integer else float(v)) for p, v in zip(self.parameters, x)}

    def simulate(self, x: np.ndarray) -> Outcome:
        """Evaluate one physical point: a failed simulation is a failed ``Outcome`` (in a subclass, so is an
        exception or a returned value that is no well-formed ``Outcome``: :func:`_guarded`)."""
        raise NotImplementedError

    def prepare(self, x: np.ndarray) -> None:
        """Load what simulating ``x`` needs in this process (a deck), ahead of its simulation: a worker pool gives the
        load a bound of its own and the simulation its timeout (:data:`zoaf.workers.LOAD_GRACE`). Nothing here."""

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


def _guarded(simulate: Callable[..., Any]) -> Callable[..., Outcome]:
    """``simulate`` that fails only its point: an exception (not Ctrl-C) is a failed ``Outcome`` naming it and where
    it was raised (one carrying ``needs_new_process`` asks for a fresh process), a returned value is checked
    (:func:`_checked`); a run where every point fails so ends with ``success=False`` and the first error."""
    @functools.wraps(simulate)
    def guarded(self: Problem, x: np.ndarray, *args: Any, **kwargs: Any) -> Outcome:
        t0 = time.perf_counter()
        try:
            value = simulate(self, x, *args, **kwargs)
        except Exception as e:
            if getattr(e, "needs_new_process", False):
                self.needs_new_process = True
            return Outcome(Status.FAILED, error=f"{type(e).__name__}: {e}{_raised_at(e)}",
                           seconds=time.perf_counter() - t0)
        try:
            return _checked(value, len(self.constraint_names))
        except ValueError as e:
            return Outcome(Status.FAILED, error=f"{type(self).__name__}.simulate returned {e}",
                           seconds=time.perf_counter() - t0)
    guarded.guarded = True        # type: ignore[attr-defined]
    return guarded


def _raised_at(e: BaseException) -> str:
    """Where the user's code raised ``e``: its innermost frame outside zoaf (none: zoaf raised it)."""
    here = os.path.dirname(__file__) + os.sep
    outside = [f for f in traceback.extract_tb(e.__traceback__) if not f.filename.startswith(here)]
    return f" (raised at {os.path.basename(outside[-1].filename)}:{outside[-1].lineno})" if outside else ""


def _is_real(value: Any) -> bool:
    """Whether ``value`` is a real number (not text, None, a bool, a complex or an array)."""
    return not isinstance(value, (bool, np.bool_)) and isinstance(value, (int, float, np.integer, np.floating))


def _finite(value: float | int) -> bool:
    """``math.isfinite``, False for an int past the float range rather than an OverflowError."""
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def _real(value: Any, what: str) -> float:
    """``value`` as a float; anything not :func:`_is_real` is an InputError naming ``what``."""
    if not _is_real(value):
        raise InputError(f"{what} must be a number, got {value!r}")
    if not _finite(value) and isinstance(value, (int, np.integer)):   # 10**400: an OverflowError ended the run
        raise InputError(f"{what} must be a number within the float range, got an integer past it")
    return float(value)


def _checked(value: Any, m: int) -> Outcome:
    """A returned ``Outcome`` rebuilt from checked fields (``m``: the problem's constraint count), else a ValueError
    naming the first bad one: text in a FoM or a measure ended the run, or sat in its history and broke its reports.
    A failed status gets ``fom = objective_fom = +inf`` and no constraint values, so it never ranks best."""
    if not isinstance(value, Outcome):
        raise ValueError(f"{type(value).__name__}, not an Outcome")
    try:
        if not isinstance(value.status, str) or value.status not in ("ok", "failed", "timeout", "crashed"):
            raise ValueError(f"status must be one of ok, failed, timeout, crashed, got {value.status!r}")
        if not isinstance(value.measures, dict) or not all(isinstance(k, str) for k in value.measures):
            raise ValueError(f"measures must be a dict of names to numbers, got {value.measures!r}")
        measures = {k: _real(v, f"measure {k!r}") for k, v in value.measures.items()}
        seconds, error = _real(value.seconds, "seconds"), None if value.error is None else str(value.error)
        if value.status != Status.OK:
            return Outcome(Status(value.status), measures=measures, error=error, seconds=seconds)
        if not isinstance(value.constraints, (tuple, list)) or m and value.constraints and len(value.constraints) != m:
            raise ValueError(f"constraints must be a tuple of the problem's {m} values, got {value.constraints!r}")
        fom, constraints = _real(value.fom, "fom"), tuple(_real(g, "a constraint value") for g in value.constraints)
        if math.isnan(fom) or any(math.isnan(g) for g in constraints):
            raise ValueError(f"fom or a constraint value is NaN (fom {fom}, constraints {constraints})")
        if value.feasible not in (None, True, False):
            raise ValueError(f"feasible must be True, False or None, got {value.feasible!r}")
        objective = None if value.objective is None else _real(value.objective, "objective")
        return Outcome(Status.OK, fom, measures, objective, None if value.feasible is None else bool(value.feasible),
                       error, seconds, _real(value.objective_fom, "objective_fom"), constraints)
    except ValueError as e:
        raise ValueError(f"an Outcome whose {e}") from None

"""``FunctionProblem``: a Python black box ``fun(x) -> float`` as a :class:`~zoaf.problem.Problem`, and the
conversion of scipy-style constraints (dicts, ``NonlinearConstraint``, ``LinearConstraint``) to zoaf's ``g(x) <= 0``
that ``zoaf.minimize`` hands it.
"""
from __future__ import annotations

import functools
import math
import time
import warnings
from typing import Any, Callable, Sequence

import numpy as np

from . import units
from .errors import InputError, ZoafWarning, did_you_mean
from .problem import Outcome, Parameter, ParameterError, Problem, Score

__all__ = ["ConstraintFun", "FunctionProblem", "scipy_constraints"]

#: One constraint of a FunctionProblem: ``g(x) -> value or array``, each value ``<= 0`` when met.
ConstraintFun = Callable[[np.ndarray], Any]


class FunctionProblem(Problem):
    """A Python black box ``fun(x) -> float`` over physical ``x``. Exceptions, NaN and inf count as failures.

    ``constraints``: callables ``g(x) -> value or array``, each value ``<= 0`` when met (zoaf's convention;
    ``zoaf.minimize`` converts scipy's). Each is called once at construction, at ``x0`` or the box centre, to
    learn how many values it returns (as scipy does at ``x0``: a scalar or a 1-D array, not empty; else refused
    as ``constraints[j]``); those calls are not simulations. The FoM then ranks feasible before infeasible as a
    circuit's does; a feasible point's FoM is its squashed value.
    """

    name = "function"

    def __init__(self, fun: Callable[[np.ndarray], float], parameters: Sequence[Parameter], *,
                 constraints: Sequence[ConstraintFun] = (), target: float | None = None) -> None:
        super().__init__(parameters)
        self.fun = fun
        self.constraints = tuple(constraints)
        u0 = self.x0_unit()
        x0 = self.to_physical(np.full(self.dim, 0.5) if u0 is None else u0)
        self._sizes = tuple(self._first_size(j, g, x0) for j, g in enumerate(self.constraints))
        self._constraint_names = tuple(f"c{j}" for j in range(sum(self._sizes)))
        self.target = target

    @staticmethod
    def _first_size(j: int, g: ConstraintFun, x0: np.ndarray) -> int:
        """How many values constraint ``j`` returns, learnt at the start point: a scalar or a 1-D array of one value
        or more (``[]`` never constrained anything and a 2-D array was flattened, both without a word)."""
        try:
            values = _values(g(x0.copy()))
        except Exception as e:
            raise InputError(f"constraints[{j}]: calling it at x = {x0.tolist()} raised {type(e).__name__}: {e}") \
                from None
        if not values.size:
            raise InputError(f"constraints[{j}]: no values at x = {x0.tolist()} (an empty array, or no finite "
                             "bound); a constraint gives a scalar or a 1-D array")
        return values.size

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
        if hasattr(bounds, "lb") and hasattr(bounds, "ub"):          # scipy.optimize.Bounds (text was read: "1" as 1,
            lb, ub = _numbers(bounds.lb, "bounds.lb"), _numbers(bounds.ub, "bounds.ub")   # "1u" numpy's words)
            bounds = np.column_stack(np.broadcast_arrays(np.ravel(lb), np.ravel(ub)))
        if _holds_none(bounds):      # read as NaN: "bounds must be finite numbers, got lo=nan"
            raise InputError(f"bounds: None (scipy's 'no bound') is not one here: zoaf samples every variable "
                             f"within finite (lo, hi), got {bounds!r}")
        bounds = _numbers(bounds, "bounds")
        if bounds.ndim != 2 or bounds.shape[1] != 2:   # 1-D: scipy's minimize(fun, x0) order, or one pair bare
            scipy = ("; scipy's minimize(fun, x0) is zoaf.minimize(fun, x0, bounds=[(lo, hi), ...]) (zoaf needs a "
                     "finite box), and one variable's bounds are [(lo, hi)]") if bounds.ndim == 1 else ""
            raise InputError(f"bounds must be a sequence of (lo, hi) pairs, got shape {bounds.shape}{scipy}")
        d = len(bounds)
        ints, logs = _indices(integers, "integers", d), _indices(log, "log", d)
        start = None if x0 is None else _start(_numbers(x0, "x0"), bounds, ints)
        goal = None if target is None else _numbers(target, "target")
        if goal is not None and (isinstance(target, bool) or goal.size != 1 or not math.isfinite(goal.item())):
            raise InputError(f"target must be a finite number, got {target!r}")
        params = [_axis(i, lo, hi, "log" if i in logs else "lin", i in ints, None if start is None else start[i])
                  for i, (lo, hi) in enumerate(bounds)]
        return cls(fun, params, constraints=constraints, target=None if goal is None else float(goal.item()))

    def simulate(self, x: np.ndarray) -> Outcome:
        """``fun`` and the constraints at ``x``; what they raise, a value that is no finite number or a count of
        constraint values other than at the start point fails the point (:func:`_guarded` says which)."""
        t0 = time.perf_counter()
        value = _number(self.fun(np.array(x, dtype=float)))
        xa = np.array(x, dtype=float)
        if not math.isfinite(value):       # inf: a failure all the same, now named
            raise ValueError(f"fun returned {value}")
        cons = [float(v) for j, g in enumerate(self.constraints) for v in self._checked(j, _values(g(xa)))]
        return Outcome.scored(Score.of(value, cons), {}, time.perf_counter() - t0)

    def _checked(self, j: int, values: np.ndarray) -> np.ndarray:
        """Constraint ``j``'s values, as many as at the start point (else each was taken for another one's, or
        none at all): a ValueError that fails this point only."""
        if values.size != self._sizes[j]:
            raise ValueError(f"constraints[{j}] returned {values.size} values here, {self._sizes[j]} at the start "
                             "point")
        if np.isnan(values).any():         # was "a constraint returned NaN": which one, among several?
            raise ValueError(f"constraints[{j}] returned NaN")
        return values


def _numbers(value: Any, what: str) -> np.ndarray:
    """``value`` as a float array; text or anything else not a number is one InputError naming ``what`` (text
    inside a list too: ``x0=["0.5", "0.1"]`` was read as numbers, where ``x0="0.5"`` was refused; a complex number,
    whose real part numpy kept with a warning: ``bounds=[(-1j, 1)]`` ran as (0, 1); ``True``/``False``, which ran as
    1 and 0, where ``Parameter(init=True)`` and a spec's ``init = true`` are refused)."""
    try:
        given = np.asarray(value)
        loose = np.asarray(value, dtype=object).ravel()     # each as given: numpy made [0.5, True] floats
        if given.dtype.kind in "SUcMm" or any(          # dates were days; None was NaN
                v is None or isinstance(v, (str, bytes, complex, bool, np.bool_)) for v in loose):
            raise ValueError
        return np.asarray(given, dtype=float)
    except OverflowError:                  # an int past the float range (10**400): was numpy's traceback
        raise InputError(f"{what} must be finite numbers, got an integer past the float range in "
                         f"{units.echo(value)}") from None
    except (TypeError, ValueError):
        raise InputError(f"{what} must be numbers, got {units.echo(value)}") from None


def _start(x0: np.ndarray, bounds: np.ndarray, ints: set[int]) -> np.ndarray:
    """``x0`` checked against the bounds, as scipy does: one point (a 2-D ``[[...]]`` was flattened), one value per
    bound, each within its own (named ``x0[i]``, not "parameter 'x2': init=", which read as the keyword)."""
    if x0.ndim > 1:
        raise InputError(f"x0 must be one point (a 1-D sequence), got shape {x0.shape}")
    start = np.atleast_1d(x0)
    if len(start) != len(bounds):
        raise InputError(f"x0 has {len(start)} values for {len(bounds)} bounds")
    for i, (v, (lo, hi)) in enumerate(zip(start, bounds)):
        if not lo <= v <= hi:                                   # NaN too
            raise InputError(f"x0[{i}] = {v:g} lies outside bounds[{i}] = ({lo:g}, {hi:g})")
        if i in ints and v != round(v):
            raise InputError(f"x0[{i}] = {v:g} is not a whole number, and integers names axis {i}")
    return start


def _axis(i: int, lo: float, hi: float, scale: str, integer: bool, init: float | None) -> Parameter:
    """Axis ``x{i}`` of ``bounds[i]``; its refusal named ``bounds[i]`` (``parameter 'x0': lo must be < hi`` read as
    the keyword ``x0``)."""
    if lo == hi:                     # scipy fixes such a variable; said as "lo must be < hi", nothing to do
        raise InputError(f"bounds[{i}] = ({lo:g}, {hi:g}) fixes x[{i}], which zoaf does not take: every variable "
                         f"is sampled within lo < hi; pass a fixed value to fun through args=")
    try:
        return Parameter(f"x{i}", float(lo), float(hi), scale, integer, None if init is None else float(init))
    except ParameterError as e:
        raise InputError(f"bounds[{i}]: {e.worded()}") from None


def _holds_none(value: Any) -> bool:
    return value is None or isinstance(value, (list, tuple)) and any(_holds_none(v) for v in value)


def _indices(value: Any, what: str, d: int) -> set[int]:
    """``integers``/``log``: indices into the ``d`` bounds (a lone one too). A bool mask was taken for indices 0 and
    1, a fraction never matched an axis, text was a TypeError."""
    items = () if value is None else (value,) if isinstance(value, (int, np.integer)) else value
    try:
        if isinstance(items, dict):     # {0: False}: its keys were the indices, log=... made axis 0 logarithmic
            raise TypeError
        items = list(items)
    except TypeError:
        raise InputError(f"{what} must be a list of indices into the bounds, got {value!r}") from None
    for i in items:
        if isinstance(i, (bool, np.bool_)) or not isinstance(i, (int, np.integer)) or not 0 <= i < d:
            raise InputError(f"{what}: {i!r} is not an index into the {d} bounds (a list of indices, e.g. [0, 2])")
    return {int(i) for i in items}


def _number(value: Any) -> float:
    """``fun``'s value as a float (a one-element array too, as scipy). Anything else (None, text, complex, a longer
    array) is a ValueError, so that it fails this point as NaN does instead of ending the run with a TypeError."""
    if isinstance(value, (str, bytes)):
        raise ValueError(f"fun returned {type(value).__name__} {value!r}, not a number")
    if isinstance(value, (tuple, list)):     # numpy's "inhomogeneous shape", raised at _type_check_impl.py
        hint = " (scipy's jac=True returns (f, gradient): return f alone)" if len(value) == 2 else ""
        n = len(value)
        raise ValueError(f"fun returned a {type(value).__name__} of {n} value{'s' * (n != 1)}, not a number{hint}")
    _refuse_bool(value, "fun returned", "a number")
    _refuse_complex(value, "fun returned", "a number")
    try:
        return float(value.item() if isinstance(value, np.ndarray) and value.size == 1 else value)
    except OverflowError:                  # 10**400: was "int too large to convert to float", not said of fun
        raise ValueError("fun returned an integer past the float range, not a finite number") from None
    except TypeError:
        shape = f" of shape {np.shape(value)}" if isinstance(value, np.ndarray) else ""
        raise ValueError(f"fun returned {type(value).__name__}{shape}, not a number") from None


def _refuse_bool(value: Any, what: str, noun: str, hint: str = "") -> None:
    """ValueError for a truth value: ``lambda x: x[0] < 0.1`` as an 'ineq' constraint was met at every point (False
    is 0, and g(x) >= 0 is met), and as ``fun`` ranked points by a condition."""
    if isinstance(value, (bool, np.bool_)) or isinstance(value, np.ndarray) and value.dtype == bool:
        raise ValueError(f"{what} a truth value ({value!r}), not {noun}{hint}")


def _refuse_complex(value: Any, what: str, noun: str) -> None:
    """ValueError for a complex or masked value: numpy's complex numbers were taken as their real part and a masked
    one as 0.0 (with a warning only), where Python's ``complex`` failed the point."""
    if np.ma.is_masked(value):
        raise ValueError(f"{what} a masked value, not {noun}")
    if np.iscomplexobj(value):
        raise ValueError(f"{what} {np.asarray(value).dtype}, not {noun}")


def _values(value: Any) -> np.ndarray:
    """A constraint's values as a flat float array; a non-number (None, text, complex) is a ValueError, as in
    ``_number`` (numpy read None as NaN, said as "a constraint returned NaN", and the text "1.5" as 1.5)."""
    if value is None or isinstance(value, (str, bytes)):
        what = "None" if value is None else f"{type(value).__name__} {value!r}"
        raise ValueError(f"a constraint returned {what}, not numbers")
    _refuse_bool(value, "a constraint returned", "numbers",
                 " (a condition: give its margin, 0.1 - x[0] for x[0] <= 0.1)")
    _refuse_complex(value, "a constraint returned", "numbers")
    try:
        values = np.asarray(value, float)
    except OverflowError:               # 10**400: was Python's "int too large to convert to float"
        raise ValueError("a constraint returned an integer past the float range, not a finite number") from None
    except TypeError:
        raise ValueError(f"a constraint returned {type(value).__name__}, not numbers") from None
    if np.asarray(value).dtype.kind in "SU":    # ["-0.5"] was read as -0.5, where "-0.5" alone was refused
        raise ValueError(f"a constraint returned text, {units.echo(value)}, not numbers")
    if values.ndim > 1:                 # flattened, its values were taken as that many constraints
        raise ValueError(f"a constraint returned an array of shape {values.shape}, not a scalar or 1-D array")
    return np.ravel(values)


def scipy_constraints(constraints: Any) -> list[ConstraintFun]:
    """scipy.optimize's constraints as zoaf's (``g(x) <= 0`` met): a dict ``{"type": "ineq", "fun": g,
    "args": ()}`` (met when ``g(x) >= 0``), a list of them, ``NonlinearConstraint`` or ``LinearConstraint``.

    Equality constraints are refused: a sampled point never meets ``h(x) = 0`` exactly, so a zeroth-order
    method could only report every point infeasible.
    """
    from scipy.optimize import LinearConstraint, NonlinearConstraint

    if isinstance(constraints, (dict, NonlinearConstraint, LinearConstraint)):
        return [_one_constraint(constraints, 0)]
    try:                 # a bare function was a TypeError traceback ("'function' object is not iterable")
        items = [] if constraints is None else list(constraints)
    except TypeError:
        hint = ": write {'type': 'ineq', 'fun': g} (met when g(x) >= 0)" if callable(constraints) else ""
        raise InputError(f"constraints: expected a dict, NonlinearConstraint or LinearConstraint, or a list of them, "
                         f"got {type(constraints).__name__}{hint}") from None
    return list(map(_one_constraint, items, range(len(items))))    # no frame of its own: a warning's stacklevel


def _one_constraint(c: Any, j: int) -> ConstraintFun:
    from scipy.optimize import LinearConstraint, NonlinearConstraint

    equality = ("constraints[{j}]: equality constraints are not supported (a sampled point never meets "
                "h(x) = 0 exactly); eliminate a variable or bound h with two 'ineq' constraints and a tolerance")
    if isinstance(c, dict):
        keys = ("type", "fun", "args", "jac")
        extra = sorted(str(k) for k in set(c) - set(keys))
        if extra:                       # one misspelt ("arg") was said as the whole dict, the key unnamed
            raise InputError(f"constraints[{j}]: unknown key {extra[0]!r}; {did_you_mean(extra[0], keys)}a "
                             "constraint dict has type, fun, args and jac")
        kind = c.get("type").lower() if isinstance(c.get("type"), str) else None     # scipy reads 'INEQ' as 'ineq'
        if kind not in ("ineq", "eq") or not callable(c.get("fun")):
            raise InputError(f"constraints[{j}]: expected {{'type': 'ineq', 'fun': g}}, got {c!r}")
        if kind == "eq":
            raise InputError(equality.format(j=j))
        fun, args = c["fun"], c.get("args", ())
        args = args if isinstance(args, tuple) else (args,)        # a lone value, as minimize's own args
        return lambda x: -_values(fun(x, *args))
    if isinstance(c, (NonlinearConstraint, LinearConstraint)):
        fun = c.fun if isinstance(c, NonlinearConstraint) else functools.partial(_linear, _matrix(c.A, j))
        # "1u" was numpy's "could not convert string to float", naming no constraint; "1" ran as 1
        lb, ub = _numbers(c.lb, f"constraints[{j}].lb"), _numbers(c.ub, f"constraints[{j}].ub")
        if np.any(lb == ub):
            raise InputError(equality.format(j=j))
        if np.any(np.isnan(lb)) or np.any(np.isnan(ub)) or np.any(lb > ub):   # silently ignored, or never met
            raise InputError(f"constraints[{j}]: bounds must satisfy lb < ub (not NaN), got lb={c.lb}, ub={c.ub}")
        if np.any(c.keep_feasible):     # said as scipy's methods that cannot keep it say it (was ignored unsaid)
            warnings.warn(f"constraints[{j}]: keep_feasible is ignored: zoaf samples points that violate a "
                          "constraint (ranked behind every feasible one), and calls fun there", ZoafWarning,
                          stacklevel=4)       # at minimize's caller
        return lambda x: _two_sided(_values(fun(x)), lb, ub)
    raise InputError(f"constraints[{j}]: expected a dict, NonlinearConstraint or LinearConstraint, "
                     f"got {type(c).__name__}")


def _matrix(a: Any, j: int) -> np.ndarray:
    """A ``LinearConstraint``'s ``A``, finite numbers: a NaN or None in it failed every point ("returned NaN"), an
    inf made every point infeasible, the whole budget spent."""
    dense = a.toarray() if hasattr(a, "toarray") else a         # scipy.sparse, as scipy's LinearConstraint takes
    matrix = np.atleast_2d(_numbers(dense, f"constraints[{j}].A"))
    if not np.isfinite(matrix).all():
        raise InputError(f"constraints[{j}].A must be finite numbers (a NaN or inf in it fails or violates every "
                         f"point), got {units.echo(a)}")
    return matrix


def _linear(a: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``A @ x`` of a ``LinearConstraint``; an ``A`` of other width than ``x`` is said so (was numpy's matmul
    "mismatch in its core dimension 0, with gufunc signature (n?,k),(k,m?)->(n?,m?)")."""
    if a.shape[1] != len(x):
        raise ValueError(f"LinearConstraint's A has {a.shape[1]} columns for {len(x)} variables")
    return a @ x


def _two_sided(v: np.ndarray, lb: np.ndarray, ub: np.ndarray) -> np.ndarray:
    """``lb <= v <= ub`` as values ``<= 0`` met: one per finite side (infinite sides are dropped)."""
    for name, side in (("lb", lb), ("ub", ub)):   # was numpy's "could not be broadcast ... remapped shapes"
        if side.size not in (1, v.size):
            raise ValueError(f"{name} has {side.size} values for the constraint's {v.size}")
    lb, ub = np.broadcast_to(lb, v.shape), np.broadcast_to(ub, v.shape)
    return np.concatenate([(lb - v)[np.isfinite(lb)], (v - ub)[np.isfinite(ub)]])

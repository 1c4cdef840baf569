"""The optimizer base: the public ask/tell bookkeeping shared by ZOAF and every baseline.

As in Nevergrad, the base class owns ``ask``/``tell`` (validation, budget, counts, best point) and a method
implements only ``_ask``/``_tell``. Methods see the unit box [0, 1]^d and a scalar FoM to minimize (``+inf``
marks a failed simulation); on a constrained problem they are also told each point's normalized constraint
values and objective, which a constraint-aware method models separately and any other method may ignore.
"""
from __future__ import annotations

import enum
import numbers
from dataclasses import dataclass, field
from typing import Any, ClassVar, Iterator

import numpy as np

from .axes import IntegerAxes, IntegerAxis, cell_widths
from .errors import InputError
from .methodconfig import checked_options, settings, within_budget

class StopReason(str, enum.Enum):
    """Why a run stopped, as a value (pycma's ``stop()`` names its criteria the same way)."""

    BUDGET = "budget"                # every simulation of the budget was spent
    CONVERGED = "converged"          # the method met its own convergence test
    EARLY_STOPPED = "early-stopped"  # the monitor judged further work useless
    INTERRUPTED = "interrupted"      # the user stopped it (Ctrl-C)
    CALLBACK = "callback"            # the caller's callback stopped it (returned True, raised StopIteration or else)
    TARGET = "target"                # a feasible design reached the spec's target
    FAILED = "failed"                # no simulation succeeded
    METHOD_FAILED = "method-failed"  # the method's library raised mid-run: the run ends with what it computed


@dataclass
class Result:
    """The outcome of a run, in scipy.optimize's shape (``x``, ``fun``, ``nfev``, ``nit``, ``message``).

    ``x`` is physical (SPICE units for circuits); ``x_unit`` the same point in the box. ``constr`` holds its
    normalized constraint values (``<= 0`` met; empty when unconstrained) and ``maxcv`` their largest violation,
    as scipy's COBYLA/COBYQA report it. The same object is passed to callbacks mid-run.
    """

    x: np.ndarray
    fun: float
    nfev: int
    nit: int
    stop_reason: StopReason | None
    x_unit: np.ndarray
    params: dict[str, float] = field(default_factory=dict)
    measures: dict[str, float] = field(default_factory=dict)
    feasible: bool | None = None
    objective: float | None = None
    constr: np.ndarray = field(default_factory=lambda: np.empty(0))
    method: str = ""
    seed: int | None = None
    history: Any = None
    ncached: int = 0
    nfailed: int = 0

    @property
    def completed(self) -> bool:
        """The run ended by its own criteria with a best point that has its objective (feasible or not)."""
        ended = (None, StopReason.FAILED, StopReason.INTERRUPTED, StopReason.CALLBACK, StopReason.METHOD_FAILED)
        return self.stop_reason not in ended and bool(np.isfinite(self.fun))

    @property
    def success(self) -> bool:
        """As scipy's constrained solvers: no success without a point that meets every constraint."""
        return self.completed and self.feasible is not False

    @property
    def maxcv(self) -> float:
        """The largest constraint violation at ``x`` (0 when feasible or unconstrained)."""
        return float(max(0.0, np.max(self.constr))) if np.size(self.constr) else 0.0

    @property
    def message(self) -> str:
        reason = self.stop_reason.value if self.stop_reason else "running"
        text = {"budget": "simulation budget exhausted", "converged": "converged",
                "early-stopped": "stopped early: no progress", "interrupted": "interrupted",
                "callback": "stopped by the callback",
                "target": "target reached", "failed": "no simulation succeeded", "running": "running",
                "method-failed": "the method's library failed: the best point found before is kept"}[reason]
        if reason == "failed":              # say why: every point failed the same way, as a rule (a bad `fun`)
            if self.nfailed < self.nfev:    # simulations ran, but none gave every measure the objective needs
                text = "no sizing gave every measure the objective needs"
            elif any(r.outcome.status == "ok" for r in self.history or ()):   # a FoM in Python that raised, say
                text = "no simulation gave a finite FoM"
            first = next((r.outcome.error for r in self.history or () if r.outcome.error), None)
            return f"{text} (the first error: {first})" if first else text
        return f"{text}; no point met every constraint" if self.feasible is False else text

    #: The names ``res["x"]`` and ``keys()`` read, as on scipy's ``OptimizeResult`` (a dict).
    _KEYS = ("x", "fun", "nfev", "nit", "success", "message", "status", "maxcv", "constr", "x_unit", "params",
             "measures", "feasible", "objective", "method", "seed", "history", "ncached", "nfailed")

    @property
    def status(self) -> int:
        """scipy's integer status: 0 for a completed run, 1 interrupted, 2 failed, 99 stopped by the callback (as
        scipy's ``minimize`` after a ``StopIteration``), -1 still running."""
        codes = {None: -1, StopReason.INTERRUPTED: 1, StopReason.FAILED: 2, StopReason.METHOD_FAILED: 2,
                 StopReason.CALLBACK: 99}
        return codes.get(self.stop_reason, 0)

    def keys(self) -> tuple[str, ...]:
        return self._KEYS

    def __getitem__(self, key: str) -> Any:
        """``res["x"]`` as on scipy's result, for code written against it."""
        if key not in self._KEYS:
            raise KeyError(key)
        return getattr(self, key)

    def __contains__(self, key: object) -> bool:
        return key in self._KEYS

    def __iter__(self) -> Iterator[str]:
        return iter(self._KEYS)

    def get(self, key: str, default: Any = None) -> Any:
        return self[key] if key in self._KEYS else default

    def __repr__(self) -> str:
        x = np.array2string(np.asarray(self.x), precision=4, max_line_width=100)
        return (f" message: {self.message}\n success: {self.success}\n     fun: {self.fun:.6g}\n"
                f"       x: {x}\n    nfev: {self.nfev}\n     nit: {self.nit}")


def total_violation(c: np.ndarray) -> np.ndarray:
    """Per row of a normalized constraint matrix, the summed violation ``sum(max(c, 0))`` (``+inf`` if failed)."""
    return np.sum(np.maximum(np.asarray(c, dtype=float), 0.0), axis=1)


class Optimizer:
    """Base of every method. Subclasses implement ``_ask()`` and ``_tell(x, f, c, objective)``; set ``self._stop``
    to end.

    Args:
        dim: number of box coordinates.
        budget: simulations the run may charge (cache hits are free, failures count).
        seed: seeds the method's ``numpy.random.Generator``; equal seeds give identical asks.
        unit_steps: per coordinate, the least box move that changes the simulated point (integers), else 0.
        integer_axes: per coordinate, an integer parameter's cells (:class:`zoaf.axes.IntegerAxis`), else None:
            a log-scaled integer's cells narrow as it grows, so its step is taken where the point is
            (:meth:`steps_at`) and a library that declares integers gets every value (:attr:`integer_levels`).
        workers: how many simulations run at once; methods size their batches from it.
        x0: optional start point in the box.
    """

    name = "base"
    #: The method's settings: a frozen dataclass whose defaults are the documented configuration.
    config_class: ClassVar[type | None] = None
    #: Modules the method imports only once it runs, and the extra of zoaf that installs them: checked before a
    #: run starts (:func:`zoaf.registry.available`), not after its first batch has been simulated.
    requires: ClassVar[tuple[str, ...]] = ()
    extra: ClassVar[str] = ""
    #: Whether ``ask()`` may come again before the last ask is told (zoaf: its pending points again; random: new
    #: ones). Elsewhere the method keeps one batch in flight: cma raised from inside, DE told one batch's values
    #: to the other's points, BO and TuRBO asked the same points twice; refused in one line.
    asks_ahead: ClassVar[bool] = False

    def __init__(self, dim: int, budget: int, seed: int | None = None, *, unit_steps: np.ndarray | None = None,
                 workers: int = 1, x0: np.ndarray | None = None,
                 integer_axes: IntegerAxes = None, **options: Any) -> None:
        if options and self.config_class is None:
            raise InputError(f"{self.name} takes no options (got {', '.join(sorted(options))})")
        #: The method's settings: ``config_class`` built from the run's options (:meth:`_configure`).
        self.config = None if self.config_class is None else self._configure(options, budget)
        if seed is not None and not isinstance(seed, np.random.Generator) and (
                not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0):
            raise InputError(f"seed must be a whole number >= 0 or a numpy Generator, got {seed!r}")
        for what, n, least in (("dim", dim, 1), ("budget", budget, 1), ("workers", workers, 0)):
            if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < least:
                raise InputError(f"{what} must be a whole number >= {least}, got {n!r}")
        self.dim = int(dim)
        self.budget = int(budget)
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.integer_axes = self._axes(integer_axes)
        if unit_steps is None:
            unit_steps = [0.0 if a is None else a.widest for a in self.integer_axes]
        self.unit_steps = self._per_coordinate(unit_steps, "unit_steps")
        self.workers = max(1, int(workers))
        self.x0 = None if x0 is None else self._start_in_box(x0)
        self.nfev = 0      # charged simulations told so far
        self.nit = 0       # tell() calls
        self.best_x: np.ndarray | None = None
        self.best_f = np.inf
        self._stop: StopReason | None = None
        self._phase = "init"
        self.last_charged = np.empty(0, bool)   # which points of the last tell were charged
        self._m: int | None = None              # constraint values per point, once told
        self._asked: list[np.ndarray] = []      # each ask's points until told: a tell answers one of them, once

    def _configure(self, options: dict[str, Any], budget: int) -> Any:
        """``config_class`` built from the run's options, checked by :func:`checked_options`; a range rule of the
        config's own (``sigma0 must be in (0, 1]``) is an ``InputError`` naming the method, not a ValueError."""
        label = f"{self.name} option"
        try:
            config = self.config_class(**checked_options(self.config_class, options, label))
        except InputError:
            raise
        except ValueError as e:
            raise InputError(f"{label} {e}") from None
        if isinstance(budget, (int, np.integer)):        # else refused below
            within_budget(config, int(budget), label)
        return config

    def _per_coordinate(self, value: Any, what: str) -> np.ndarray:
        """``value`` as ``dim`` finite numbers (a NaN in x0 came back as an asked point; a wrong length was a
        broadcasting error in the method)."""
        v = np.asarray(value, dtype=float).ravel()
        if v.shape != (self.dim,) or not np.all(np.isfinite(v)):
            raise InputError(f"{what} must be {self.dim} finite numbers, got {np.asarray(value).tolist()!r}")
        return v

    def _start_in_box(self, x0: Any) -> np.ndarray:
        """``x0`` as a point of the box; one outside it was clipped to a bound without a word (a physical value
        given for a box coordinate started at the bound; scipy warns of an x0 outside its bounds)."""
        v = self._per_coordinate(x0, "x0").copy()
        outside = np.flatnonzero((v < 0.0) | (v > 1.0))
        if outside.size:
            i = int(outside[0])
            raise InputError(f"x0[{i}] = {v[i]:g} lies outside the unit box [0, 1]: a method's points are box "
                             "coordinates (problem.to_unit(x) of a physical point)")
        return v

    def _axes(self, axes: IntegerAxes) -> tuple[IntegerAxis | None, ...]:
        if axes is None:
            return (None,) * self.dim
        axes = tuple(axes)
        if len(axes) != self.dim or not all(a is None or isinstance(a, IntegerAxis) for a in axes):
            raise InputError(f"integer_axes must be {self.dim} IntegerAxis or None, got {axes!r}")
        return axes

    def steps_at(self, x: np.ndarray) -> np.ndarray:
        """Per coordinate, the least box move from ``x`` that changes the simulated point: ``unit_steps``, but a
        log-scaled integer's own cell width at ``x`` (the widest cell would move a count of 40 by a factor of
        ~3 on a 1..512 axis)."""
        return cell_widths(self.integer_axes, np.asarray(x, dtype=float), self.unit_steps)

    @classmethod
    def describe(cls, **options: Any) -> dict[str, Any]:
        """The settings a run with these options uses (the config dataclass's fields; none: the defaults), as
        the comparison report's footer lists them and as a resumed or reused run must find them unchanged."""
        return {} if cls.config_class is None else settings(cls.config_class(**options))

    @property
    def integer_levels(self) -> np.ndarray:
        """Per coordinate, the number of equal box cells of an integer axis (0 for a continuous one).

        For a linear integer parameter with L values the box is cut into L equal cells (``unit_steps = 1/L``),
        so cell k of ``[k/L, (k+1)/L)`` is the k-th value: a library that declares integers sees exactly those L
        levels. For a log-scaled integer the cells are unequal; ``floor(1/unit_step)`` equal cells are each
        at least one integer wide, so no level a library asks for is a duplicate (some large values are skipped);
        given its :class:`~zoaf.axes.IntegerAxis`, level k is the integer ``lo + k`` (:meth:`from_levels`), so every
        value can be asked for.
        """
        s = self.unit_steps
        levels = np.where(s > 0, np.floor(1.0 / np.where(s > 0, s, 1.0) + 1e-9), 0).astype(int)
        return np.array([self.integer_axes[i].count if self.is_log_integer(i) else n for i, n in enumerate(levels)])

    def is_log_integer(self, i: int) -> bool:
        """Whether coordinate i is a log-scaled integer of two values or more (its cells unequal)."""
        axis = self.integer_axes[i]
        return axis is not None and axis.log and axis.count > 1

    def to_levels(self, u: np.ndarray) -> np.ndarray:
        """Box point -> library coordinates: the level index on integer axes, the box value on continuous ones."""
        u = np.asarray(u, dtype=float)
        levels = self.integer_levels
        k = np.where(levels > 0, np.clip(np.floor(u * np.maximum(levels, 1)), 0, np.maximum(levels - 1, 0)), u)
        for i, axis in enumerate(self.integer_axes):
            if self.is_log_integer(i):
                k[..., i] = axis.value(u[..., i]) - axis.lo
        return k

    def from_levels(self, v: np.ndarray) -> np.ndarray:
        """Library coordinates -> box point: each integer level to the centre of its cell, continuous values as
        they are."""
        v = np.asarray(v, dtype=float)
        levels = self.integer_levels
        u = np.where(levels > 0, (np.round(v) + 0.5) / np.maximum(levels, 1), v)
        for i, axis in enumerate(self.integer_axes):
            if self.is_log_integer(i):
                u[..., i] = axis.centre(axis.lo + v[..., i])
        return u

    # -- public protocol -------------------------------------------------------------------------------
    @property
    def remaining(self) -> int:
        return self.budget - self.nfev

    @property
    def done(self) -> bool:
        return self._stop is not None or self.remaining <= 0

    @property
    def stop_reason(self) -> StopReason | None:
        if self._stop is not None:
            return self._stop
        return StopReason.BUDGET if self.remaining <= 0 else None

    @property
    def phase(self) -> str:
        """What the method is doing now (shown in progress displays and recorded in the history)."""
        return self._phase

    def ask(self) -> np.ndarray:
        """Points to simulate next, shape (k, dim), inside the box, k >= 1 and k <= the budget left."""
        if self.done:
            raise InputError(f"{self.name}: ask() after the run is done ({self.stop_reason.value}); check done first")
        if self._asked and not self.asks_ahead:
            raise InputError(f"{self.name}: ask() again before the last ask's points were told; this method keeps "
                             "one batch in flight (tell it first)")
        x = np.atleast_2d(np.asarray(self._ask(), dtype=float))
        if x.ndim != 2 or x.shape[1] != self.dim or len(x) == 0:
            raise RuntimeError(f"{self.name}: _ask returned shape {x.shape}, expected (k>=1, {self.dim})")
        if np.isnan(x).any():       # clipping keeps a NaN: the problem would simulate it, the user's fun blamed
            raise RuntimeError(f"{self.name}: _ask returned a point with NaN coordinates")
        self._asked.append(np.clip(x[: self.remaining], 0.0, 1.0))
        return self._asked[-1].copy()

    def tell(self, x: np.ndarray, f: np.ndarray, c: np.ndarray | None = None, *,
             objective: np.ndarray | None = None, charged: np.ndarray | None = None) -> None:
        """Report results for the points of an :meth:`ask`, once.

        Args:
            x: the points of one ask, shape (k, dim), its rows in any order and each within ``TELL_ATOL`` of
                the asked one (float32, or text of 7+ digits, round-trips); the method is told the asked points.
            f: the FoM per point (``+inf`` = failed; NaN and ``-inf`` are taken as failed too, as ``zoaf.minimize``
                takes them); feasible points rank before infeasible ones. Text, None or a bool is an InputError.
            c: optional constraint matrix, shape (k, m): normalized constraint values, ``<= 0`` when satisfied,
                ``+inf`` (or NaN) where the simulation failed. A method that ignores it still works on ``f``.
            objective: with ``c``, the objective per point on the FoM's scale (equal to ``f`` where feasible;
                ``+inf`` where it could not be measured), so a constrained method can model it on both sides
                of the feasibility boundary.
            charged: ``charged[i]`` False marks a free cache hit (default: all charged).
        """
        x = np.atleast_2d(np.asarray(x, dtype=float))
        f = _failed_as_inf(_numbers(f, "f").reshape(-1))
        if len(x) != len(f) or x.ndim != 2 or x.shape[1] != self.dim:
            raise InputError(f"tell: points of shape {x.shape} and {len(f)} values; expected ({len(f)}, {self.dim})")
        if c is not None:          # (k, m), m as at every tell (a row more was read as another m; a new m broke it)
            c = _numbers(c, "c")
            m = c.size // len(f)
            if c.ndim > 2 or c.ndim == 2 and len(c) != len(f) or c.size != len(f) * m or self._m not in (None, m):
                raise InputError(f"tell: constraint values of shape {c.shape} for {len(f)} points"
                                 + ("" if self._m is None else f" and {self._m} constraints, as told before"))
            self._m = m
            c = np.where(np.isnan(c), np.inf, c).reshape(len(f), m)
            objective = f.copy() if objective is None else _failed_as_inf(_numbers(objective, "objective").reshape(-1))
            if len(objective) != len(f):
                raise InputError(f"tell: {len(f)} values but {len(objective)} objective values")
        elif objective is not None:
            raise InputError("tell: objective values come with a constraint matrix c")
        charged = np.ones(len(f), bool) if charged is None else np.asarray(charged, bool).reshape(-1)
        if len(charged) != len(f):
            raise InputError(f"tell: {len(f)} values but {len(charged)} charged flags")
        x, order = self._answered_ask(x)
        f, charged = _in_ask_order(f, order), _in_ask_order(charged, order)
        if c is not None:
            c, objective = _in_ask_order(c, order), _in_ask_order(objective, order)
        self.last_charged = charged
        self.nfev += int(charged.sum())
        self.nit += 1
        i = int(np.argmin(f))
        if f[i] < self.best_f:
            self.best_f, self.best_x = float(f[i]), x[i].copy()
        self._tell(x, f, c, objective)

    def _answered_ask(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The ask ``x`` answers (its own points) and ``order`` (``x[i]`` is its row ``order[i]``), taken off the
        asks not yet told. Refused: a tell before any ask, twice, or of other points or a subset. Each was taken:
        the method's model held values for points it never asked, its budget counted twice, or (cma, de) an
        IndexError or AttributeError came from inside it."""
        for i, asked in enumerate(self._asked):
            order = _rows_matched(x, asked)
            if order is not None:
                del self._asked[i]
                return asked, order
        sizes = " or ".join(str(len(a)) for a in self._asked)
        why = (f"not those of an untold ask (of {sizes} points)" if sizes
               else "but every ask has been told" if self.nit else "but nothing was asked yet")
        raise InputError(f"{self.name}: tell() answers the points of one ask(), once; got {len(x)} points, {why}")

    # -- to implement ----------------------------------------------------------------------------------
    def _ask(self) -> np.ndarray:
        raise NotImplementedError

    def _tell(self, x: np.ndarray, f: np.ndarray, c: np.ndarray | None, objective: np.ndarray | None) -> None:
        """Update the method; ``c``/``objective`` are None for an unconstrained problem (see :meth:`tell`)."""
        raise NotImplementedError


#: How far a told point may lie from the asked one, per unit-box coordinate: float32 or text of 7+ significant
#: digits round-trips (a pool or an external simulator that wrote the points out and read them back).
TELL_ATOL = 1e-6


def _numbers(values: Any, what: str) -> np.ndarray:
    """A told array as floats; an entry that is no real number is an InputError naming it (numpy read the text
    ``"1"`` as 1.0, ``True`` as 1.0 and None as NaN, a failed point no one had reported). A list is read as
    objects: numpy turned ``[True, 0.5]`` into floats before any check."""
    v = values if isinstance(values, np.ndarray) else np.asarray(values, dtype=object)
    if v.dtype.kind not in "iuf":
        for index, e in np.ndenumerate(v):
            if isinstance(e, (bool, np.bool_)) or not isinstance(e, numbers.Real):
                where = f"[{', '.join(map(str, index))}]" if index else ""
                raise InputError(f"tell: {what}{where} = {e!r} is not a number")
    return v.astype(float)


def _failed_as_inf(values: np.ndarray) -> np.ndarray:
    """FoMs (``f``, ``objective``) with NaN and ``-inf`` as ``+inf``, a failed point: as ``zoaf.minimize`` fails a
    point whose value is no finite number (a told ``-inf`` became the run's best point, and stayed it)."""
    return np.where(np.isnan(values) | (values == -np.inf), np.inf, values)


def _rows_matched(x: np.ndarray, asked: np.ndarray) -> np.ndarray | None:
    """``order`` with ``x[i]`` within :data:`TELL_ATOL` of ``asked[order[i]]``, each asked row once; None if none."""
    if x.shape != asked.shape:
        return None
    free, order = np.ones(len(asked), bool), np.empty(len(x), int)
    for i, row in enumerate(x):
        near = free & (np.abs(asked - row).max(axis=1) <= TELL_ATOL)
        if not near.any():
            return None
        order[i] = int(np.argmax(near))
        free[order[i]] = False
    return order


def _in_ask_order(values: np.ndarray, order: np.ndarray) -> np.ndarray:
    """Rows told in the order of ``x`` put back in the order of the ask (``order`` from :func:`_rows_matched`)."""
    out = np.empty_like(values)
    out[order] = values
    return out

"""``CircuitProblem``: a netlist + spec (+ objective or a Python FoM) as a ``Problem``.

The problem is what the evaluator ships to worker processes; each process opens its ngspice session lazily,
on its first simulation, and keeps it (the netlist loads once per process, not per simulation).
"""
from __future__ import annotations

import hashlib
import math
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from . import units
from .errors import InputError, MeasureError, SimulationError
from .netlist import Netlist
from .problem import Outcome, Problem, Status
from .spec import Constraint, Objective, Spec, penalized

FoM = Callable[[Mapping[str, float]], float]


def _placeholders(spec: Spec) -> dict[str, str]:
    if spec.pdk is None:
        return {}
    try:
        from .pdk import placeholders  # the PDK lookup touches site-packages: only when a spec asks for it
    except ImportError as e:
        raise InputError(f"{spec.path or 'spec'}: pdk = {spec.pdk!r}: PDK support is not available ({e})") from None

    try:
        return placeholders(spec.pdk, spec.corner or "tt")
    except InputError as e:   # name the spec: "unknown pdk 'x'" alone does not say where it came from
        raise InputError(f"{spec.path or 'spec'}: {e}") from None


class CircuitProblem(Problem):
    """Size a circuit: parameters from the spec, measures from ngspice, FoM from an objective or a callable.

    Args:
        netlist: path of the ngspice netlist.
        spec: the spec (default: ``<stem>.toml`` beside the netlist).
        objective: a named objective of the spec (default: its first).
        fom: a Python figure of merit ``fom(measures) -> float`` (lower is better); replaces the objective.
        constraints: extra constraints (``"gain_db >= 60"``) for ``fom``: infeasible designs rank behind.
        allow_shell: allow ``shell`` in ``.control`` blocks (a netlist is code).
        timeout: wall-clock seconds per simulation.

    Example:
        >>> p = CircuitProblem.from_netlist("netlists/two_stage_amp.cir", objective="peaking")  # doctest: +SKIP
        >>> res = zoaf.optimize(p, budget=200, seed=0)                                          # doctest: +SKIP
    """

    def __init__(self, netlist: str | Path, spec: Spec | str | Path | None = None, *, objective: str | None = None,
                 fom: FoM | None = None, constraints: Sequence[str] = (), allow_shell: bool = False,
                 timeout: float = 60.0) -> None:
        path = Path(netlist)
        if not isinstance(spec, Spec):
            spec = Spec.read(spec if spec is not None else Spec.find_for(path))
        self.spec = spec
        self.netlist = Netlist.read(path, allow_shell=allow_shell, placeholders=_placeholders(spec))
        spec.check_against(self.netlist.params, self.netlist.results, str(path))
        super().__init__(spec.parameters)
        self.name = path.stem
        self.objective: Objective | None = None if fom is not None else spec.objective(objective)
        self.fom = fom
        self.constraints = tuple(Constraint.parse(c, where="constraints") for c in constraints)
        for c in self.constraints:
            if c.measure not in spec.measures:
                raise InputError(f"constraint {str(c)!r}: unknown measure {c.measure!r}; "
                                 f"known: {', '.join(spec.measures)}")
        self.allow_shell = allow_shell
        self.timeout = float(timeout)
        self._session: Any = None
        self.needs_new_process = False

    from_netlist = classmethod(lambda cls, path, **kw: cls(path, **kw))

    # -- pickling: the session stays in the process that opened it ---------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_session"] = None
        state["needs_new_process"] = False
        return state

    def session(self) -> Any:
        if self._session is None:
            from .spice import SpiceSession   # libngspice loads in the process that simulates, only

            self._session = SpiceSession(self.netlist, timeout=self.timeout)
        return self._session

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None

    # -- evaluation -------------------------------------------------------------------------------------
    def score(self, measures: Mapping[str, float]) -> tuple[float, float | None, bool | None]:
        """(FoM, objective value, feasible) of a measures dict."""
        if self.objective is not None:
            return self.objective.evaluate(measures)
        try:
            value = float(self.fom(measures))
        except (KeyError, ArithmeticError, ValueError, TypeError):
            return math.inf, None, False
        if math.isnan(value):
            return math.inf, None, False
        fom, feasible = penalized(value, self.constraints, measures)
        return fom, value, feasible

    def simulate(self, x: np.ndarray) -> Outcome:
        t0 = time.perf_counter()
        values = self.as_dict(x)
        try:
            measures = self.session().evaluate(values)
        except MeasureError as e:
            # The circuit simulated but some measures could not be taken: a valid (bad) design, never worse
            # than a failed simulation (EXPERIMENTS.md lesson 6).
            measures = dict(getattr(e, "measures", {}) or {})
            if not measures:
                return Outcome(Status.FAILED, error=f"{type(e).__name__}: {e}", seconds=time.perf_counter() - t0)
            fom, obj, feas = self.score(measures)
            return Outcome(Status.OK, fom, measures, obj, feas, f"{type(e).__name__}: {e}",
                           time.perf_counter() - t0)
        except SimulationError as e:
            if e.needs_new_process:
                # libngspice cannot load anything again in this process: the worker pool replaces the process.
                self.close()
                self.needs_new_process = True
            return Outcome(Status(e.status), error=f"{type(e).__name__}: {e}", seconds=time.perf_counter() - t0)
        fom, obj, feas = self.score(measures)
        return Outcome(Status.OK, fom, measures, obj, feas, None, time.perf_counter() - t0)

    @property
    def needed(self) -> tuple[str, ...]:
        """The objective's measure and every constrained one."""
        constraints = (*(self.objective.constraints if self.objective else ()), *self.constraints)
        own = (self.objective.measure,) if self.objective else ()
        return tuple(dict.fromkeys((*own, *(c.measure for c in constraints))))

    # -- identity and output ------------------------------------------------------------------------------
    def metadata(self) -> dict[str, Any]:
        return {"name": self.name, "netlist": str(self.netlist.path),
                "netlist_sha256": hashlib.sha256(self.netlist.text.encode()).hexdigest(),
                "spec_sha256": hashlib.sha256(self.spec.text.encode()).hexdigest(),
                "objective": self.objective.name if self.objective else "custom",
                "parameters": self.names}

    def sized_netlist(self, params: Mapping[str, float]) -> str:
        """The netlist text with the given ``.param`` values: ``ngspice -b`` on it reproduces the measures."""
        return self.netlist.with_params(params)

    def default_params(self) -> dict[str, float]:
        """The design variables' values written in the netlist (the sizing ``zoaf check`` simulates)."""
        values = {}
        for p in self.parameters:
            text = self.netlist.params[p.name]
            values[p.name] = units.parse(text.strip("{}' "), what=f"{self.netlist.path}: .param {p.name}")
        return values

    def describe_params(self, params: Mapping[str, float]) -> list[tuple[str, str, str, str]]:
        """(name, value, bounds, scale) rows for display."""
        return [(p.name, units.format(params[p.name]), f"{units.format(p.lo)} .. {units.format(p.hi)}",
                 "int" if p.integer else p.scale) for p in self.parameters]

"""``CircuitProblem``: a netlist + spec (+ objective or a Python FoM) as a ``Problem``.

The problem is what the evaluator ships to worker processes; each process opens its ngspice session lazily,
on its first simulation, and keeps it (the netlist loads once per process, not per simulation).
"""
from __future__ import annotations

import hashlib
import math
import numbers
import os
import re
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from . import sandbox, units
from .errors import DEFAULT_TIMEOUT, InputError, MeasureError, SimulationError
from .meascards import twice_named
from .ngcommands import sets_options
from .netlist import Netlist
from .problem import Outcome, Parameter, Problem, Score, Status
from .replies import MAX_MEASURES
from .spec import Constraint, Objective, Spec

FoM = Callable[[Mapping[str, float]], float]
#: The objective a run of a Python ``fom`` records (sign-off and ``--resume`` name such a run as one).
FOM_OBJECTIVE = "custom"
#: Where a circuit's first start lies (``CircuitProblem(x0=)``, ``zoaf optimize --x0``).
X0_CHOICES = ("netlist", "center")
#: The longest timeout: one simulation may take days, not forever (an infinite deadline overflows time_t).
MAX_TIMEOUT = 1e6
#: The shortest: a one-resistor deck's first simulation in a fresh worker (its deck loaded) took 0.26-0.42 s, a
#: worker killed at its deadline is replaced by another that loads the deck again, so a deadline below this ended
#: every simulation of a run (1e-300 s: the whole budget spent, "no simulation succeeded").
MIN_TIMEOUT = 0.01


def check_timeout(timeout: Any, what: str = "timeout") -> float:
    """``timeout`` as seconds: a number in [MIN_TIMEOUT, MAX_TIMEOUT] (a string, -1 or NaN was taken and failed
    later)."""
    number = isinstance(timeout, numbers.Real) and not isinstance(timeout, bool)
    if not number or not 0 < timeout <= MAX_TIMEOUT:
        raise InputError(f"{what} {f'{timeout:g}' if number else repr(timeout)}: must be > 0 and at most "
                         f"{MAX_TIMEOUT:g} seconds")
    if timeout < MIN_TIMEOUT:
        raise InputError(f"{what} {timeout:g}: must be at least {MIN_TIMEOUT:g} seconds (a worker killed at its "
                         "deadline is replaced by one that loads the deck again, which takes longer)")
    return float(timeout)


def check_netlist_file(path: Path) -> None:
    """A netlist path that names a regular file: else one line naming it (not its spec, looked for beside it)."""
    if path.is_dir():
        raise InputError(f"{path}: is a directory, not a netlist file")
    if not path.exists():
        raise InputError(f"{path}: netlist file not found")
    if not path.is_file():   # a FIFO or a device would block or never end
        raise InputError(f"{path}: not a regular file (a netlist is a text file)")


#: What a circuit run's history records of its deck (with its includes) and spec, by content (``metadata``).
CONTENT_HASHES = ("netlist_sha256", "spec_sha256")


def recorded_hashes(db: Path, problem: Any) -> dict[str, str]:
    """The content hashes a run's recorded ``problem`` (its history's) holds; an InputError naming ``db`` for one it
    lacks: every circuit run records both, and a check that skipped a history without them took any run for this
    circuit's (sign-off simulated the deck it named, a comparison reported another circuit's runs as its own)."""
    for key in CONTENT_HASHES:
        if not isinstance(problem, Mapping) or not isinstance(problem.get(key), str):
            raise InputError(f"{db}: not a zoaf run history (its problem records no {key}, which every circuit run "
                             "records)")
    return {key: problem[key] for key in CONTENT_HASHES}


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


#: A ``.param`` value written as one number (a digit first, no operator but an exponent's sign), which
#: :func:`_written` refuses for what it is (past the float range, ``µ`` for ``u``), not as an expression.
_NUMBER_AS_WRITTEN = re.compile(r"[+-]?\.?\d(?:[\w.\u00b5\u03bc]|(?<=[eE])[+-])*")


def _check_judge(objective: Any, fom: FoM | None, constraints: Any) -> tuple[str, ...]:
    """``constraints`` as a tuple, checked: ``objective=`` names a spec objective, which judges by its own
    constraints; ``fom=`` and ``constraints=`` are the Python judge. Mixed, one was dropped unsaid: ``constraints=``
    beside an objective were never judged (the run's best could miss them), an ``objective=`` beside ``fom=`` was
    not optimized."""
    if objective is not None and not isinstance(objective, str):    # 3, ["bw"]: an AttributeError in spec.py
        raise InputError(f"objective {units.echo(objective)}: the name of one of the spec's objectives")
    try:                                # a string was read one character at a time: "'g' is not 'name op number'"
        given = () if constraints is None else tuple(constraints) if not isinstance(constraints, str) else None
    except TypeError:
        given = None
    if given is None:
        raise InputError(f"constraints {units.echo(constraints)}: a list of strings like ['gain_db >= 60']")
    if fom is not None and objective is not None:
        raise InputError(f"objective={objective!r} and fom= both given: fom replaces the spec's objective; give one")
    if fom is None and given:
        raise InputError(f"constraints={units.echo(constraints)} without fom=: they constrain a Python fom; a spec "
                         "objective is judged by its own constraints (objectives.NAME.constraints in the spec)")
    return given


def _written(text: str, what: str) -> float:
    """A ``.param``'s number as the designer wrote it: the value numparam means (``10mil`` is 10 milli), as the
    nearest double (``20u`` is 2e-05, where numparam's ``20 * 1e-6`` is an ulp below)."""
    return units.parse(text.strip("{}' "), what=what, numparam=True, nearest=True)


def own_load(x: np.ndarray) -> object:
    """The affinity of a simulation that loads its deck first, whatever its process loaded before (a deck whose block
    sets options, which a ``reset`` keeps): a key no other has, so that a worker loads it apart from the simulation's
    timeout (``zoaf.workers.time_limit``), as a fresh process loads its first deck. The load was the simulation's: a
    sky130 deck's timed out at every second sizing under a timeout shorter than its load."""
    return object()


class CircuitProblem(Problem):
    """Size a circuit: parameters from the spec, measures from ngspice, FoM from an objective or a callable.

    Args:
        netlist: path of the ngspice netlist.
        spec: the spec (default: ``<stem>.toml`` beside the netlist).
        objective: a named objective of the spec (default: its first).
        fom: a Python figure of merit ``fom(measures) -> float`` (lower is better); replaces the objective.
        constraints: extra constraints (``"gain_db >= 60"``) for ``fom``: infeasible designs rank behind.
        allow_shell: allow ``shell`` in ``.control`` blocks (a netlist is code): lifts the text check and the
            sandbox's exec filter; the private directory and Landlock stay (:mod:`zoaf.sandbox`).
        timeout: wall-clock seconds per simulation.
        x0: the first start: ``"netlist"`` (default) the netlist's own ``.param`` values, the designer's
            sizing, clipped into the bounds; ``"center"`` the box centre. A spec ``init`` overrides either.

    Example:
        >>> p = CircuitProblem.from_netlist("netlists/two_stage_amp.cir", objective="peaking")  # doctest: +SKIP
        >>> res = zoaf.optimize(p, budget=200, seed=0)                                          # doctest: +SKIP
    """

    def __init__(self, netlist: str | Path, spec: Spec | str | Path | None = None, *, objective: str | None = None,
                 fom: FoM | None = None, constraints: Sequence[str] = (), allow_shell: bool = False,
                 timeout: float = DEFAULT_TIMEOUT, x0: str = "netlist") -> None:
        if not isinstance(allow_shell, bool):       # "no" is truthy: it would have let the deck run programs
            raise InputError(f"allow_shell {allow_shell!r}: True or False")
        if spec is not None and not isinstance(spec, (Spec, str, os.PathLike)):
            raise InputError(f"spec {spec!r}: a zoaf.spec.Spec or the path of a TOML spec")
        if x0 not in X0_CHOICES:
            raise InputError(f"x0 {x0!r}: choose one of {', '.join(X0_CHOICES)}")
        if not isinstance(netlist, (str, os.PathLike)):     # 3, None, bytes: pathlib's TypeError traceback
            raise InputError(f"netlist {units.echo(netlist)}: the path of an ngspice netlist (str or Path)")
        path = Path(netlist)
        check_netlist_file(path)
        if fom is not None and not callable(fom):
            raise InputError(f"fom {fom!r}: not a function of the measures (fom(measures) -> float)")
        constraints = _check_judge(objective, fom, constraints)
        self.timeout = check_timeout(timeout)
        if not isinstance(spec, Spec):
            spec = Spec.read(spec if spec is not None else Spec.find_for(path))
        self.spec = spec
        self.netlist = Netlist.read(path, allow_shell=allow_shell, placeholders=_placeholders(spec))
        nl = self.netlist
        if len(nl.measures) > MAX_MEASURES:     # each simulation's answer was refused as forged, the budget spent
            raise InputError(f"{path}: {len(nl.measures):,} .meas cards, more results than a simulation reports "
                             f"(at most {MAX_MEASURES:,}, each stored in every history row); measure fewer")
        nl.refuse_unmeasurable(spec.measures)
        spec.check_against(nl.params, nl.results, str(path), nl.body_params)
        if (twice := twice_named(nl.measures, spec.measures, str(path))) is not None:
            raise twice
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
        self.x0 = x0
        self.notes = tuple(nl.notes)
        self._session: Any = None
        self.needs_new_process = False
        if sets_options(nl.control):      # its session loads it afresh for every sizing: each, a load timed apart
            self.affinity = own_load
        #: Files other decks simulated in the same worker read (a PDK's other corners): a worker locked down
        #: for one deck then serves them all (:meth:`zoaf.sandbox.Policy.covers`).
        self.also_reads: tuple[Path, ...] = ()

    from_netlist = classmethod(lambda cls, path, **kw: cls(path, **kw))

    # -- pickling: the session stays in the process that opened it ---------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_session"] = None
        state["needs_new_process"] = False
        return state

    def session(self) -> Any:
        """The ngspice session, in a sandboxed process: this one in a worker, else a sandboxed child."""
        if self._session is None:
            from .isolation import open_session

            self._session = open_session(self.netlist, timeout=self.timeout, policy=self.sandbox_policy())
        return self._session

    def prepare(self, x: np.ndarray) -> None:
        """Lock the process down and load the deck (seconds for a PDK's), which a pool times apart from the
        simulation."""
        session = self.session()
        if not session.loaded:
            session.load()

    def sandbox_policy(self) -> sandbox.Policy:
        """What a simulation may read (the deck's folder, its included files, :attr:`also_reads`) and whether it
        may run programs."""
        return sandbox.Policy(read=(*self.netlist.reads(), *self.also_reads), allow_exec=self.allow_shell)

    def sandbox_report(self) -> sandbox.SandboxReport | None:
        """The layers this problem's simulations run under (starts the session)."""
        return getattr(self.session(), "sandbox", None) or sandbox.current()

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None

    # -- evaluation -------------------------------------------------------------------------------------
    @property
    def constraint_names(self) -> tuple[str, ...]:
        return tuple(map(str, self.objective.constraints if self.objective is not None else self.constraints))

    def score(self, measures: Mapping[str, float]) -> Score:
        """Judge a measures dict by the spec's objective, or by the Python ``fom`` under ``constraints`` (a
        ``fom`` that raises or returns NaN gives FoM +inf, as a failed simulation)."""
        return self._judge(measures)[0]

    def _judge(self, measures: Mapping[str, float]) -> tuple[Score, str | None]:
        """:meth:`score` and why the Python ``fom`` gave no value (its exception, for the history), else None."""
        if self.objective is not None:
            return self.objective.evaluate(measures), None
        values = [c.value(measures.get(c.measure)) for c in self.constraints]
        try:
            value = float(self.fom(measures))
        except (KeyError, ArithmeticError, ValueError, TypeError) as e:
            return Score.unmeasured(values, math.inf), f"fom raised {type(e).__name__}: {e}"
        if math.isnan(value):
            return Score.unmeasured(values, math.inf), "fom returned NaN"
        return Score.of(value, values), None

    def target_fom(self) -> float | None:
        return None if self.objective is None else self.objective.target_fom()

    def simulate(self, x: np.ndarray, overrides: Mapping[str, float] | None = None, *,
                 rng_seed: int | None = None) -> Outcome:
        """Simulate the sizing ``x``; ``overrides``: other ``.param`` values for this simulation (a corner's
        supply, Monte Carlo draws); ``rng_seed``: ngspice's random generator seed for the deck's own draws."""
        t0 = time.perf_counter()
        try:
            params = {**self.as_dict(x), **(overrides or {})}
            measures, error = self.session().evaluate(params, rng_seed=rng_seed), None
        except MeasureError as e:
            # The circuit simulated but some measures could not be taken: a valid (bad) design, never worse
            # than a failed simulation.
            measures, error = dict(e.measures), f"{type(e).__name__}: {e}"
            if not measures:
                return Outcome(Status.FAILED, error=error, seconds=time.perf_counter() - t0)
        except SimulationError as e:
            if e.needs_new_process:
                # libngspice cannot load anything again in this process: the worker pool replaces the process.
                self.close()
                self.needs_new_process = True
            return Outcome(Status(e.status), error=f"{type(e).__name__}: {e}", seconds=time.perf_counter() - t0)
        score, why = self._judge(measures)
        return Outcome.scored(score, measures, time.perf_counter() - t0, "; ".join(filter(None, (error, why))) or None)

    @property
    def needed(self) -> tuple[str, ...]:
        """The objective's measure and every constrained one."""
        constraints = (*(self.objective.constraints if self.objective else ()), *self.constraints)
        own = (self.objective.measure,) if self.objective else ()
        return tuple(dict.fromkeys((*own, *(c.measure for c in constraints))))

    # -- identity and output ------------------------------------------------------------------------------
    def metadata(self) -> dict[str, Any]:
        return {"name": self.name, "netlist": str(self.netlist.path),
                "netlist_sha256": self.netlist.digest(),        # the deck and its includes, by content
                "spec_sha256": hashlib.sha256(self.spec.text.encode()).hexdigest(),
                "objective": self.objective.name if self.objective else FOM_OBJECTIVE,
                "parameters": self.names, "x0": self.x0}

    def sized_netlist(self, params: Mapping[str, float]) -> str:
        """The netlist text with the given ``.param`` values: ``ngspice -b`` on it reproduces the measures. A design
        variable's value must be a number within its bounds (an integer on an integer axis); other ``.param``
        values (a corner's supply) are the caller's."""
        bounds = {p.name: p for p in self.parameters}
        for name, value in params.items():
            p = bounds.get(name.lower())
            if p is None:
                continue
            try:
                ok = p.admits(float(value), exact=True)
            except (TypeError, ValueError):
                ok = False
            if not ok:
                raise InputError(f"{name} = {value!r}: must be {'an integer ' if p.integer else ''}within "
                                 f"[{units.format(p.lo)}, {units.format(p.hi)}] (parameters.{p.name})")
        return self.netlist.with_params(params)

    def default_params(self) -> dict[str, float]:
        """The design variables' values written in the netlist (the sizing ``zoaf check`` simulates)."""
        values = {}
        for p in self.parameters:
            text = self.netlist.params[p.name]
            try:
                values[p.name] = _written(text, f"{self.netlist.path}: .param {p.name}")
            except InputError:
                if _NUMBER_AS_WRITTEN.fullmatch(text.strip("{}' ")):     # 1e400, 1µ: said "an expression"
                    raise
                raise InputError(f"{self.netlist.path}: .param {p.name} = {text.strip()!r} is an expression, not a "
                                 f"number, but the spec sizes it (parameters.{p.name}): write a number there, "
                                 "or size the parameters it is computed from") from None
        return values

    def x0_unit(self) -> np.ndarray | None:
        """The first start in the box: the spec's ``init`` where given; elsewhere the netlist's own value (the
        designer's best guess, clipped into the bounds; the box centre where it is an expression), or with
        ``x0="center"`` the box centre (None when nothing is given: each method's own start, the centre for
        ZOAF and CMA-ES)."""
        if self.x0 == "center":
            return super().x0_unit()
        return np.array([p.to_unit(np.array(p.init if p.init is not None else self._designer_value(p))).item()
                         for p in self.parameters])

    def _designer_value(self, p: Parameter) -> float:
        try:
            value = _written(self.netlist.params[p.name], p.name)
        except InputError:
            return float(p.to_physical(np.array(0.5)))
        return float(np.clip(value, p.lo, p.hi))

    def artifacts(self, params: Mapping[str, float]) -> dict[str, str | bytes]:
        """``best.cir`` (in the deck's own encoding) and the ``.spiceinit`` the session ran with: ``cd DIR &&
        ngspice -b best.cir``."""
        from .ngbatch import spiceinit

        text = self.sized_netlist(params)
        try:
            best = text.encode(self.netlist.encoding)
        except UnicodeEncodeError:                      # a placeholder's path beyond latin-1
            best = text.encode("utf-8")
        return {"best.cir": best, ".spiceinit": spiceinit(self.netlist.lib_folder)}

    def describe_params(self, params: Mapping[str, float]) -> list[tuple[str, str, str, str]]:
        """(name, value, bounds, scale) rows for display."""
        return [(p.name, units.format(params[p.name]), f"{units.format(p.lo)} .. {units.format(p.hi)}",
                 "int" if p.integer else p.scale) for p in self.parameters]

"""Drive one optimization: a loop of ask -> evaluate -> tell, recording every call in the history.

With ``out=DIR`` the run writes its run directory (``history.db`` as it goes; ``result.json``, ``trace.json``,
``best.cir`` and ``convergence.png`` at the end: :mod:`zoaf.rundir`). ``resume=True`` replays ``history.db``: the
optimizer retraces its asks, each answered from the recorded row (checked to be the same point), then continues, so
an interrupted run ends exactly where the uninterrupted one would.
"""
from __future__ import annotations

import functools
import os
import platform
import sys
import time
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from . import __version__, registry
from .callbacks import Callback, CallbackAsks, callback_call
from .errors import InputError
from .evaluate import BatchEvaluator
from .history import History, Record, RunMeta, max_rows
from .methodconfig import MAX_BUDGET
from .optim import Optimizer, Result, StopReason
from .function import FunctionProblem, scipy_constraints
from .problem import Problem
from .rundir import run_directory, spec_location, write_run_dir

#: A method that keeps asking only points already simulated makes no progress: stop after this many batches.
MAX_FREE_BATCHES = 200


def max_local_workers() -> int:
    """Most processes zoaf starts on this machine for one command: 4 per core, at least 64. Each is a Python with
    its own libngspice; more than the cores only queue, and ``--workers 100000`` spawned until memory ran out."""
    return max(64, 4 * (os.cpu_count() or 1))


def check_workers(workers: int, dask: str | None = None, option: str = "workers") -> None:
    """InputError for more local processes (worker pool, local Dask cluster) than :func:`max_local_workers`; a
    remote Dask scheduler's workers are its own."""
    if not _whole(workers) or workers < 0:
        raise InputError(f"{option} must be a whole number >= 0, got {workers!r}")
    limit = max_local_workers()
    if (dask is None or dask == "local") and workers > limit:
        raise InputError(f"{option} {workers}: more processes than this machine runs usefully ({os.cpu_count()} "
                         f"cores); at most {limit}")




def check_budget(budget: Any, option: str = "budget") -> None:
    """InputError for a budget that is no whole number of simulations from 1 to :data:`MAX_BUDGET`."""
    if not _whole(budget) or budget < 1:
        raise InputError(f"{option} must be a whole number of simulations >= 1, got {budget!r}")
    if budget > MAX_BUDGET:
        raise InputError(f"{option} {budget}: more simulations than a run can make; at most {MAX_BUDGET}")


@dataclass
class _Tally:
    """The best *evaluated* point (lowest FoM, earliest on ties, so replays agree) and the counts, kept as
    records arrive: a result mid-run (every batch, for the progress display) costs O(1), not a history scan."""

    best: Record | None = None
    nfev: int = 0
    ncached: int = 0
    nfailed: int = 0

    def add(self, r: Record) -> None:
        """Count ``r`` and rank it by its ``fom``; a failure is an infinite ``outcome.fom`` (a corner run's sizing cut
        before all its corners ranks last, ``fom`` +inf, but it failed only if a corner it has did)."""
        self.nfev += r.cost
        self.ncached += r.cost == 0
        if not np.isfinite(r.outcome.fom):
            self.nfailed += 1
        elif r.fom < (np.inf if self.best is None else self.best.fom):
            self.best = r

    def reached(self, target_fom: float) -> bool:
        """A feasible design (or any, unconstrained) at or below the target's FoM has been evaluated."""
        return self.best is not None and self.best.outcome.feasible is not False and self.best.fom <= target_fom


def make_result(problem: Problem, records: list[Record], tally: _Tally, nit: int, method: str,
                seed: int | None, stop: StopReason | None) -> Result:
    best = tally.best
    counts = dict(nfev=tally.nfev, ncached=tally.ncached, nfailed=tally.nfailed)
    if best is None:
        nan = np.full(problem.dim, np.nan)
        return Result(x=nan, fun=np.inf, nit=nit, stop_reason=stop and (stop if stop != StopReason.BUDGET
                      else StopReason.FAILED), x_unit=nan, method=method, seed=seed, history=records, **counts)
    o = best.outcome
    if any(m not in o.measures for m in problem.needed) and stop not in (None, StopReason.INTERRUPTED,
                                                                              StopReason.CALLBACK):
        stop = StopReason.FAILED      # the best point lacks a measure its FoM needs: no sizing was found
    x = np.array([best.params[n] for n in problem.names], dtype=float)
    return Result(x=x, fun=o.fom, nit=nit, stop_reason=stop, x_unit=best.u, params=best.params,
                  measures=o.measures, feasible=o.feasible, objective=o.objective,
                  constr=np.array(o.constraints, dtype=float), method=method, seed=seed, history=records, **counts)


#: The run's setting that records the batch width its method asked for (``workers``, at least 1).
BATCH_WIDTH = "batch_width"


def run_metadata(problem: Problem, method: str, budget: int, seed: int | None, options: dict[str, Any],
                 width: int | None = None) -> RunMeta:
    """What must match for a resume (problem identity, method, budget, seed, options, the method's settings and
    the batch width it asked for)."""
    settings = {**registry.get(method).describe(**options), **({} if width is None else {BATCH_WIDTH: width})}
    return RunMeta(problem.metadata(), method, budget, seed, {k: options[k] for k in sorted(options)}, settings)


def batch_width(out: Path | None, resume: bool, workers: int) -> int:
    """The batch width a run's method asks for: ``workers`` (at least 1); resumed, the recorded run's, whatever
    ``workers`` is now. Every method sizes its batches by it (ZOAF's probes per step, a population, BO's q, the
    sampling of a run whose every point failed), so the same width asks the same points: a run resumed with
    other workers asked others and could not replay its history."""
    db = None if out is None or not resume else Path(out) / "history.db"
    if db is not None and db.is_file():
        with History(db, read=True) as h:
            meta = h.run_meta()
        width = None if meta is None else meta.settings.get(BATCH_WIDTH)
        if isinstance(width, int) and 1 <= width <= max_local_workers():
            return width
    return max(1, workers)


def check_resume(history: Path | None, recorded: RunMeta | None, expected: RunMeta, out_option: str = "--out",
                 budget_option: str = "--budget") -> None:
    """Refuse to resume the run recorded in ``history`` as another one (the first field that differs), naming the
    caller's options (the command line's; ``out=`` and ``budget=`` from Python)."""
    if recorded is None:
        raise InputError(f"{history}: no run metadata: nothing to resume")
    for key, then, now in expected.differences(recorded)[:1]:
        if key == "problem.corner_values" and isinstance(then, dict) and isinstance(now, dict):
            where, then, now = _first_change(then, now, key)       # the first value that differs, not all
            raise InputError(f"{history}: cannot resume: {where} is {now!r} now, {then!r} in the recorded run (an "
                             f"edit since, of the spec or a file it names); start a new run")
        if key.endswith("_sha256"):        # two hashes said nothing a designer could act on
            what = key.rsplit(".", 1)[-1].removesuffix("_sha256")
            edits = "an edit since (of an include too)" if what == "netlist" else "an edit since"
            raise InputError(f"{history}: cannot resume: {key} differs from the recorded run: another {what}, or "
                             f"{edits}; resume with the run's own {what}, or start a new run")
        if key == "budget":                # "budget differs (recorded 3, now 5)" said neither why nor what to do
            # the command line resumes with the recorded budget when given none; optimize's budget= has a default
            same = f"no {budget_option}" if budget_option.startswith("-") else f"{budget_option}{then!r}"
            raise InputError(f"{history}: cannot resume with budget {now!r}: the run was made with {then!r}, and the "
                             f"budget shapes its method's schedule (ZOAF's starts and phases are shares of it), so "
                             f"another budget is another run: resume with budget {then!r} ({same}), or start a "
                             f"new run (another {out_option}) with budget {now!r}")
        if key.startswith("settings."):   # options differ first: a setting alone is a default changed since
            raise InputError(f"{history}: cannot resume: the method's setting {key.removeprefix('settings.')} is "
                             f"{now!r} in this zoaf, {then!r} in the recorded run (a default changed since the run "
                             "was made); resume with the zoaf version that made it, or start a new run")
        raise InputError(f"{history}: cannot resume: {key} differs from the recorded run "
                         f"(recorded {then!r}, now {now!r})")


def _first_change(then: Any, now: Any, where: str) -> tuple[str, Any, Any]:
    """The first key path at which two JSON values differ (``problem.corner_values.ss.shift``), with its values."""
    if isinstance(then, dict) and isinstance(now, dict):
        for k in sorted(then.keys() | now.keys()):
            if then.get(k) != now.get(k):
                return _first_change(then.get(k), now.get(k), f"{where}.{k}")
    return where, then, now


def _tell(opt: Optimizer, u: np.ndarray, batch: list[Record], m: int) -> None:
    """Tell the FoMs and, on a constrained problem, the (k, m) constraint values (+inf rows for failures) and
    the objective on the FoM's scale."""
    f = np.array([r.fom for r in batch])
    charged = np.array([r.charged for r in batch])
    if m == 0:
        opt.tell(u, f, charged=charged)
        return
    c = np.array([r.outcome.constraints or (np.inf,) * m for r in batch], dtype=float)
    opt.tell(u, f, c, objective=np.array([r.outcome.objective_fom for r in batch]), charged=charged)


def _open_history(outdir: Path | None, resume: bool, meta: RunMeta, spec: Mapping[str, str]) -> History:
    """The run's history (in memory without a run directory), checked for a resume or started (with where its
    ``spec`` file is: :func:`zoaf.rundir.spec_location`)."""
    hist = History(None if outdir is None else outdir / "history.db")
    try:
        if resume and hist.run_meta() is None and len(hist) == 0:
            resume = False          # made, but killed before its metadata was written: nothing to keep, start it
        if resume:                  # the library's words: the command line checked first, in its own
            hist.check_resumable(out_option="out=")
            check_resume(hist.path, hist.run_meta(), meta, out_option="out=", budget_option="budget=")
        else:
            hist.set_run(meta, zoaf=__version__, python=sys.version.split()[0], numpy=np.__version__,
                         machine=platform.platform(), started=time.time(), **spec)
    except BaseException:
        if not resume and hist.path is not None and hist.holds_nothing():
            hist.discard()          # its metadata could not be written (a full disk): nothing to keep
        else:
            hist.close()
        raise
    return hist


def _in_run_directory(run: Callable[..., Result]) -> Callable[..., Result]:
    """Run ``optimize`` inside its checked and locked run directory (``rundir.run_directory``), if it has one."""
    @functools.wraps(run)
    def wrapper(problem: Problem, *, out: str | Path | None = None, resume: bool = False, **kw: Any) -> Result:
        if out is None:
            if resume:                 # was ignored: a fresh run, with nothing to say the recorded one was not read
                raise InputError("resume=True continues the run recorded in a run directory: give it as out=")
            return run(problem, resume=resume, **kw)
        if not isinstance(out, (str, os.PathLike)):        # was pathlib's TypeError
            raise InputError(f"out must be a directory path (str or Path), got {type(out).__name__}")
        with run_directory(out, resume, out_option="out=", resume_option="resume=True") as outdir:   # its words
            return run(problem, out=outdir, resume=resume, **kw)
    return wrapper


@_in_run_directory
def optimize(problem: Problem, *, budget: int = 400, seed: int | None = None, method: str = "zoaf",
             workers: int = 0, out: str | Path | None = None, resume: bool = False,
             evaluator: BatchEvaluator | None = None, callback: Callback | None = None, **options: Any) -> Result:
    """Minimize ``problem`` with ``method`` under a budget of simulations; returns the best evaluated point.

    The run stops early when a feasible design reaches the problem's target (``StopReason.TARGET``).

    Args:
        workers: simulations in parallel (worker processes); 0 evaluates in this process.
        out: run directory for ``history.db``, ``result.json``, ``best.cir``, ``convergence.png``.
        resume: continue the run recorded in ``out`` (same problem, method, budget, seed and options).
        evaluator: an evaluator to use (e.g. on a Dask cluster); the run does not close it.
        callback: ``callback(result_so_far)`` after every batch (by scipy's keyword ``intermediate_result`` where it
            takes only that: :func:`zoaf.callbacks.callback_call`); returning True or raising ``StopIteration`` (as
            in scipy) stops the run (``StopReason.CALLBACK``, "stopped by the callback", status 99 as scipy's);
            another exception stops it too, and propagates once its end files are written.
        options: the method's hyper-parameters.
    """
    check_budget(budget)
    if seed is not None and (not _whole(seed) or seed < 0):
        raise InputError(f"seed must be a whole number >= 0, got {seed!r}")
    if not isinstance(problem, Problem):
        raise InputError(f"optimize: problem must be a zoaf Problem (CircuitProblem.from_netlist(...), a "
                         f"Problem subclass; zoaf.minimize for a function), got {type(problem).__name__}")
    if type(problem).simulate is Problem.simulate:      # every point would raise NotImplementedError
        raise InputError(f"optimize: {type(problem).__name__} does not implement simulate(x) -> Outcome")
    call = callback_call(callback)
    if evaluator is not None and not isinstance(evaluator, BatchEvaluator):
        raise InputError(f"evaluator must be a zoaf Evaluator (problem.evaluator(...)), got {type(evaluator).__name__}")
    if evaluator is None:
        check_workers(workers)
    budget, seed = int(budget), None if seed is None else int(seed)   # numpy's: JSON wrote them as text, or 3.0
    outdir = None if out is None else Path(out)      # checked and locked by _in_run_directory
    width = batch_width(outdir, resume, workers)
    opt = registry.create(method, problem.dim, problem.method_budget(budget), seed, unit_steps=problem.unit_steps,
                          integer_axes=problem.integer_axes, workers=width, x0=problem.x0_unit(), **options)
    meta = run_metadata(problem, method, budget, seed, options, width)
    with _open_history(outdir, resume, meta, spec_location(problem, outdir)) as hist:
        ev = evaluator if evaluator is not None else problem.evaluator(workers=workers)
        ev.record_to(hist)
        records: list[Record] = []
        tally = _Tally()
        asks = CallbackAsks(call, lambda: make_result(problem, records, tally, opt.nit, method, seed, None))
        try:
            stop = _loop(opt, ev, problem, records, tally, asks)
        finally:
            if evaluator is None:
                ev.close()
        result = make_result(problem, records, tally, opt.nit, method, seed, stop)
        if outdir is not None:
            write_run_dir(outdir, problem, result, meta.settings)
    asks.reraise(result, outdir)
    return result


def _loop(opt: Optimizer, ev: BatchEvaluator, problem: Problem, records: list[Record], tally: _Tally,
          stop_asked: Callable[[], bool]) -> StopReason | None:
    """ask -> evaluate -> tell until the method is done, the target is reached or the caller stops the run;
    ``records`` and ``tally`` grow as batches complete. Returns why it stopped: also converged once the history holds
    the most rows a history of its budget may (cached points are free; a reader refuses a longer one)."""
    m, target = len(problem.constraint_names), problem.target_fom()
    free_batches, most_rows = 0, max_rows(opt.budget)
    try:
        while not opt.done:
            u = opt.ask()
            batch = ev.evaluate(u, opt.phase)
            records += batch
            for r in batch:
                tally.add(r)
            _tell(opt, u, batch, m)
            free_batches = 0 if any(r.charged for r in batch) else free_batches + 1
            if free_batches >= MAX_FREE_BATCHES or len(records) >= most_rows:
                return StopReason.CONVERGED
            if target is not None and tally.reached(target):
                return StopReason.TARGET
            if stop_asked():
                return StopReason.CALLBACK
    except KeyboardInterrupt:
        for r in ev.cut_batch():        # recorded already: the result counts them too
            records.append(r)
            tally.add(r)
        return StopReason.INTERRUPTED
    return opt.stop_reason


@dataclass(frozen=True)
class _WithArgs:
    """``fun(x, *args)`` as a function of ``x`` that pickles (to worker processes) when ``fun`` does."""

    fun: Callable[..., float]
    args: tuple

    def __call__(self, x: np.ndarray) -> float:
        return self.fun(x, *self.args)


def _whole(n: Any) -> bool:
    """An int (not a bool, not 2.5 cut to 2, not the text "10")."""
    return isinstance(n, (int, np.integer)) and not isinstance(n, bool)


#: scipy.optimize.minimize's keywords zoaf spells otherwise or has no use for, with what to write instead: they
#: reached the method as options ("unknown ZOAF option(s) maxfev; valid:" and sixty names), or were a TypeError.
#: Given as None (scipy's default: not given) they are dropped, as ``jac=False`` and a finite-difference ``jac``
#: (scipy estimates a gradient from fun: nothing is given that zoaf would use).
_SCIPY_KEYWORDS = {
    "maxfev": "write budget=N (the most calls of fun)", "maxfun": "write budget=N (the most calls of fun)",
    "maxiter": "write budget=N (zoaf counts calls of fun, not iterations)",
    "tol": "write target= (stop once a feasible point has fun(x) <= target) or a smaller budget=",
    **dict.fromkeys(("jac", "hess", "hessp"), "leave it out: zoaf uses no derivatives")}
_NO_GRADIENT = (False, "2-point", "3-point", "cs")


def _method_options(budget: Any, method: str, options: dict[str, Any]) -> dict[str, Any]:
    """The method's options of a call written for scipy: ``options={...}`` read as scipy reads it (the method's
    own options; ``disp`` dropped: a run prints nothing), scipy's "not given" values dropped. InputError for a
    scipy keyword ``minimize`` spells otherwise (``maxfev``: ``budget``) that the method does not take as its own
    option (COBYQA's ``maxfev``), or no budget."""
    config = registry.get(method).config_class
    own = {f.name for f in fields(config)} if config is not None else set()
    given = dict(options)
    nested = given.pop("options", None)
    if nested is not None and not isinstance(nested, Mapping):
        raise InputError(f"minimize: options= is a dict of the method's options, as in scipy, got "
                         f"{type(nested).__name__}")
    for key in (nested or {}):
        if not isinstance(key, str):        # was "TypeError: keywords must be strings" from the call with them
            raise InputError(f"minimize: options= names the method's options by text, got the key {key!r}")
        if key in given:
            raise InputError(f"minimize: {key} given twice, as {key}= and in options=")
    given.update((k, v) for k, v in (nested or {}).items() if k != "disp")
    for word, instead in _SCIPY_KEYWORDS.items():
        if word not in given or word in own:
            continue
        value = given[word]
        if value is None or word == "jac" and isinstance(value, (bool, str)) and value in _NO_GRADIENT:
            del given[word]
            continue
        said = f"options={{{word!r}: ...}}" if word in (nested or {}) else f"{word}="
        raise InputError(f"minimize: {said} is scipy's; {instead}")
    if budget is None:
        raise InputError("minimize: budget= is required: the most calls of fun (scipy's maxfev)")
    return given


def _bounds_and_x0(where: tuple[Any, ...], bounds: Any, x0: Any) -> tuple[Any, Any]:
    """(bounds, x0) of ``minimize(fun, bounds)``, zoaf's order, or of ``minimize(fun, x0, bounds=...)``, scipy's:
    the value after ``fun`` is the bounds unless ``bounds=`` names them, then it is the start point."""
    if len(where) > 1:
        raise InputError(f"minimize: {len(where)} values after fun given by position; zoaf.minimize takes "
                         f"minimize(fun, bounds) or scipy's minimize(fun, x0, bounds=...), the rest by keyword "
                         f"(args=, method=, constraints=, ...)")
    if not where:
        if bounds is None:
            raise InputError("minimize: no bounds: zoaf samples every variable within a finite box; give "
                             "bounds=[(lo, hi), ...] (scipy's minimize(fun, x0) without bounds searches "
                             "unbounded, which zoaf does not)")
        return bounds, x0
    if bounds is None:
        return where[0], x0
    if x0 is not None:
        raise InputError("minimize: two start points: one given after fun (scipy's x0, as bounds= is given) and "
                         "one as x0=; give one")
    return bounds, where[0]


def minimize(fun: Callable[..., float], *where: Any, bounds: Any = None, x0: Any = None,
             budget: int | None = None, seed: int | None = None, method: str | None = "zoaf", integers: Any = None,
             log: Any = None, constraints: Any = (), target: float | None = None,
             callback: Callback | None = None, args: tuple = (), **options: Any) -> Result:
    """Minimize a Python black box ``fun(x, *args) -> float`` within ``bounds`` in at most ``budget`` calls.

    Called as ``minimize(fun, bounds, ...)`` or, in scipy's order, ``minimize(fun, x0, bounds=..., ...)``; a box
    of finite bounds is required. ``constraints`` are scipy's (``{"type": "ineq", "fun": g}`` met when
    ``g(x) >= 0``, a list of them, ``NonlinearConstraint``, ``LinearConstraint``; equality constraints are
    refused). The FoM then ranks any feasible point before any infeasible one; the result's ``fun`` is ``fun(x)``
    of the best point, ``constr`` its constraint values in zoaf's convention (``<= 0`` met) and ``maxcv`` the
    largest violation. ``target``: stop once a feasible point has ``fun(x) <= target``. As in scipy, ``bounds`` may
    be (lo, hi) pairs or a ``Bounds``, ``args`` go to ``fun`` after ``x``, ``method=None`` is the default method,
    ``options={...}`` are the method's options (``disp`` ignored), ``jac``, ``hess`` and ``tol`` may be None, and
    ``success`` is false when no point met every constraint.

    Example:
        >>> import numpy as np, zoaf
        >>> res = zoaf.minimize(lambda x: float(np.sum((x - 0.3) ** 2)), [(-1, 1)] * 5, budget=300, seed=0)
        >>> bool(res.fun < 1e-3)
        True
    """
    method = "zoaf" if method is None else method
    options = _method_options(budget, method, options)
    bounds, x0 = _bounds_and_x0(where, bounds, x0)
    if not callable(fun):                                        # else every point failed, calling it
        raise InputError(f"fun must be callable, got {type(fun).__name__}")
    args = args if isinstance(args, tuple) else (args,)          # scipy wraps a lone value (an array too)
    f = _WithArgs(fun, args) if args else fun
    problem = FunctionProblem.from_bounds(f, bounds, integers=integers, log=log, x0=x0,
                                          constraints=scipy_constraints(constraints), target=target)
    result = optimize(problem, budget=budget, seed=seed, method=method, callback=callback, **options)
    return result if result.objective is None else replace(result, fun=result.objective)

"""Drive one optimization: a loop of ask -> evaluate -> tell, recording every call in the history.

With ``out=DIR`` the run writes DESIGN.md's run directory (``history.db`` as it goes; ``result.json``,
``best.cir`` and ``convergence.png`` at the end). ``resume=True`` replays ``history.db``: the optimizer
retraces its asks, each answered from the recorded row (checked to be the same point), then continues, so an
interrupted run ends exactly where the uninterrupted one would.
"""
from __future__ import annotations

import json
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from . import __version__, registry
from .errors import InputError
from .evaluate import Evaluator
from .history import History, Record
from .optim import Result, StopReason
from .problem import FunctionProblem, Problem

#: A method that keeps asking only points already simulated makes no progress: stop after this many batches.
MAX_FREE_BATCHES = 200

Callback = Callable[[Result], "bool | None"]


@dataclass
class _Tally:
    """The best *evaluated* point (lowest FoM, earliest on ties, so replays agree) and the counts, kept as
    records arrive: a result mid-run (every batch, for the progress display) costs O(1), not a history scan."""

    best: Record | None = None
    nfev: int = 0
    ncached: int = 0
    nfailed: int = 0

    def add(self, r: Record) -> None:
        self.nfev += r.charged
        self.ncached += not r.charged
        if not np.isfinite(r.fom):
            self.nfailed += 1
        elif self.best is None or r.fom < self.best.fom:
            self.best = r


def make_result(problem: Problem, records: list[Record], tally: _Tally, nit: int, method: str,
                seed: int | None, stop: StopReason | None) -> Result:
    best = tally.best
    counts = dict(nfev=tally.nfev, ncached=tally.ncached, nfailed=tally.nfailed)
    if best is None:
        nan = np.full(problem.dim, np.nan)
        return Result(x=nan, fun=np.inf, nit=nit, stop_reason=stop and (stop if stop != StopReason.BUDGET
                      else StopReason.FAILED), x_unit=nan, method=method, seed=seed, history=records, **counts)
    o = best.outcome
    x = np.array([best.params[n] for n in problem.names], dtype=float)
    return Result(x=x, fun=o.fom, nit=nit, stop_reason=stop, x_unit=best.u, params=best.params,
                  measures=o.measures, feasible=o.feasible, objective=o.objective, method=method, seed=seed,
                  history=records, **counts)


def run_metadata(problem: Problem, method: str, budget: int, seed: int | None, options: dict[str, Any]) -> dict:
    """What must match for a resume (problem identity, method, budget, seed, options)."""
    return {"problem": problem.metadata(), "method": method, "budget": budget, "seed": seed,
            "options": {k: options[k] for k in sorted(options)}}


def _check_resume(history: History, expected: dict[str, Any]) -> None:
    found = history.meta()
    for key, value in expected.items():
        if json.loads(json.dumps(value, default=str)) != found.get(key):
            raise InputError(f"{history.path}: cannot resume: {key} differs from the recorded run "
                             f"(recorded {found.get(key)!r}, now {value!r})")


def optimize(problem: Problem, *, budget: int = 400, seed: int | None = None, method: str = "zoaf",
             workers: int = 0, out: str | Path | None = None, resume: bool = False,
             evaluator: Evaluator | None = None, callback: Callback | None = None, **options: Any) -> Result:
    """Minimize ``problem`` with ``method`` under a budget of simulations; returns the best evaluated point.

    Args:
        workers: simulations in parallel (worker processes); 0 evaluates in this process.
        out: run directory for ``history.db``, ``result.json``, ``best.cir``, ``convergence.png``.
        resume: continue the run recorded in ``out`` (same problem, method, budget, seed and options).
        evaluator: an evaluator to use (e.g. on a Dask cluster); the run does not close it.
        callback: ``callback(result_so_far)`` after every batch; returning True stops the run.
        options: the method's hyper-parameters.
    """
    if budget < 1:
        raise InputError(f"budget must be >= 1 simulation, got {budget}")
    opt = registry.create(method, problem.dim, budget, seed, unit_steps=problem.unit_steps,
                          workers=max(1, workers), x0=problem.x0_unit(), **options)
    meta = run_metadata(problem, method, budget, seed, options)
    outdir = None if out is None else Path(out)
    if outdir is not None:
        if not resume and (outdir / "history.db").exists():
            raise InputError(f"{outdir}: already holds a run (history.db); use --resume or another --out")
        if resume and not (outdir / "history.db").exists():
            raise InputError(f"{outdir}: nothing to resume (no history.db)")
        outdir.mkdir(parents=True, exist_ok=True)
    hist = History(None if outdir is None else outdir / "history.db")
    if resume:
        _check_resume(hist, meta)
    else:
        hist.set_meta({**meta, "zoaf": __version__, "python": sys.version.split()[0],
                       "numpy": np.__version__, "machine": platform.platform(), "started": time.time()})
    replay = hist.records()
    records: list[Record] = []
    tally = _Tally()
    ev = evaluator if evaluator is not None else Evaluator(problem, workers=workers)
    t0 = time.perf_counter() - (replay[-1].wall if replay else 0.0)
    stop: StopReason | None = None
    free_batches = 0
    try:
        while not opt.done:
            u = opt.ask()
            phase = opt.phase
            x = problem.to_physical(u)
            k = min(len(u), len(replay) - len(records))
            results: list[tuple[np.ndarray, Any, bool]] = []
            for i in range(max(k, 0)):       # answered from the history being replayed
                rec = replay[len(records) + i]
                if rec.params != problem.as_dict(x[i]):
                    raise InputError(f"{hist.path}: cannot resume: simulation {rec.idx} of the history is "
                                     f"another point than the method asks now (history from another version?)")
                ev.seed_cache(x[i], rec.outcome)
                results.append((x[i], rec.outcome, rec.charged))
            if len(results) < len(u):
                results += ev.evaluate(u[len(results):])
            for (xi, o, charged), ui in zip(results, u):
                if len(records) < len(replay):
                    rec = replay[len(records)]
                else:
                    rec = Record(len(records), ui, problem.as_dict(xi), o, phase, charged,
                                 time.perf_counter() - t0)
                    hist.append(rec)
                records.append(rec)
                tally.add(rec)
            charged = np.array([c for _, _, c in results])
            opt.tell(u, np.array([o.fom for _, o, _ in results]), charged=charged)
            free_batches = 0 if charged.any() else free_batches + 1
            if free_batches >= MAX_FREE_BATCHES:
                stop = StopReason.CONVERGED
                break
            if callback is not None and callback(make_result(problem, records, tally, opt.nit, method, seed, None)):
                stop = StopReason.INTERRUPTED
                break
        stop = stop or opt.stop_reason
    except KeyboardInterrupt:
        stop = StopReason.INTERRUPTED
    finally:
        if evaluator is None:
            ev.close()
    result = make_result(problem, records, tally, opt.nit, method, seed, stop)
    if outdir is not None:
        write_run_dir(outdir, problem, result)
    hist.close()
    return result


def result_dict(result: Result) -> dict[str, Any]:
    """``result.json``: deterministic for a seed (no timings: those are in ``history.db``)."""
    return {"method": result.method, "seed": result.seed, "fun": result.fun, "success": result.success,
            "message": result.message, "stop_reason": result.stop_reason and result.stop_reason.value,
            "nfev": result.nfev, "nit": result.nit, "ncached": result.ncached, "nfailed": result.nfailed,
            "params": result.params, "measures": result.measures, "objective": result.objective,
            "feasible": result.feasible, "x_unit": [float(v) for v in np.atleast_1d(result.x_unit)]}


def write_run_dir(outdir: Path, problem: Problem, result: Result) -> None:
    from .plots import plot_convergence   # matplotlib only when a run directory is written

    (outdir / "result.json").write_text(json.dumps(result_dict(result), indent=2, default=float) + "\n")
    if result.params and hasattr(problem, "sized_netlist"):
        from .spice import SPICEINIT

        (outdir / "best.cir").write_text(problem.sized_netlist(result.params))
        (outdir / ".spiceinit").write_text(SPICEINIT)     # `cd DIR && ngspice -b best.cir` as the session ran it
    plot_convergence(result.history, outdir / "convergence.png",
                     f"{problem.name}: {result.method}, seed {result.seed}, best FoM {result.fun:.5g}")


def minimize(fun: Callable[[np.ndarray], float], bounds: Any, *, budget: int, seed: int | None = None,
             method: str = "zoaf", x0: Any = None, integers: Any = None, log: Any = None,
             callback: Callback | None = None, **options: Any) -> Result:
    """Minimize a Python black box ``fun(x) -> float`` within ``bounds`` in at most ``budget`` calls.

    Example:
        >>> import numpy as np, zoaf
        >>> res = zoaf.minimize(lambda x: float(np.sum((x - 0.3) ** 2)), [(-1, 1)] * 5, budget=300, seed=0)
        >>> bool(res.fun < 1e-3)
        True
    """
    problem = FunctionProblem.from_bounds(fun, bounds, integers=integers, log=log, x0=x0)
    return optimize(problem, budget=budget, seed=seed, method=method, callback=callback, **options)

"""Drive one optimization: a loop of ask -> evaluate -> tell, recording every call in the history."""
from __future__ import annotations

import time
from typing import Any, Callable

import numpy as np

from . import registry
from .evaluate import Evaluator
from .history import History, Record
from .optim import Result, StopReason
from .problem import FunctionProblem, Problem

#: A method that keeps asking only points already simulated makes no progress: stop after this many batches.
MAX_FREE_BATCHES = 200


def best_record(records: list[Record]) -> Record | None:
    """The best *evaluated* point: lowest FoM, earliest on ties (so replays agree)."""
    ok = [r for r in records if np.isfinite(r.fom)]
    return min(ok, key=lambda r: (r.fom, r.idx)) if ok else None


def make_result(problem: Problem, records: list[Record], opt: Any, method: str, seed: int | None,
                stop: StopReason | None, history: Any = None) -> Result:
    best = best_record(records)
    nfev = sum(r.charged for r in records)
    if best is None:
        x_u = np.full(problem.dim, np.nan)
        return Result(x=x_u, fun=np.inf, nfev=nfev, nit=opt.nit, stop_reason=stop or StopReason.FAILED,
                      x_unit=x_u, method=method, seed=seed, history=history)
    o = best.outcome
    x = np.array([best.params[n] for n in problem.names], dtype=float)
    return Result(x=x, fun=o.fom, nfev=nfev, nit=opt.nit, stop_reason=stop, x_unit=best.u, params=best.params,
                  measures=o.measures, feasible=o.feasible, objective=o.objective, method=method, seed=seed,
                  history=history, ncached=sum(not r.charged for r in records),
                  nfailed=sum(not np.isfinite(r.fom) for r in records))


def optimize(problem: Problem, *, budget: int = 400, seed: int | None = None, method: str = "zoaf",
             workers: int = 1, history: History | None = None, evaluator: Evaluator | None = None,
             callback: Callable[[Result], bool | None] | None = None, **options: Any) -> Result:
    """Minimize ``problem`` with ``method`` under a budget of simulations; returns the best evaluated point.

    ``callback(result)`` runs after every batch with the result so far; returning True stops the run.
    """
    opt = registry.create(method, problem.dim, budget, seed, unit_steps=problem.unit_steps, workers=workers,
                          x0=problem.x0_unit(), **options)
    hist = history if history is not None else History(None)
    own_eval = evaluator is None
    ev = evaluator if evaluator is not None else Evaluator(problem, workers=workers)
    records = hist.records()
    t0 = time.perf_counter() - (records[-1].wall if records else 0.0)
    stop: StopReason | None = None
    free_batches = 0
    try:
        while not opt.done:
            u = opt.ask()
            phase = opt.phase
            results = ev.evaluate(u)
            for (x, o, charged), ui in zip(results, u):
                rec = Record(len(records), ui, problem.as_dict(x), o, phase, charged, time.perf_counter() - t0)
                records.append(rec)
                hist.append(rec)
            charged = np.array([c for _, _, c in results])
            opt.tell(u, np.array([o.fom for _, o, _ in results]), charged)
            free_batches = 0 if charged.any() else free_batches + 1
            if free_batches >= MAX_FREE_BATCHES:
                stop = StopReason.CONVERGED
                break
            if callback is not None and callback(make_result(problem, records, opt, method, seed, None)):
                stop = StopReason.INTERRUPTED
                break
        stop = stop or opt.stop_reason
    except KeyboardInterrupt:
        stop = StopReason.INTERRUPTED
    finally:
        if own_eval:
            ev.close()
    return make_result(problem, records, opt, method, seed, stop, history=records)


def minimize(fun: Callable[[np.ndarray], float], bounds: Any, *, budget: int, seed: int | None = None,
             method: str = "zoaf", x0: Any = None, integers: Any = None, log: Any = None,
             callback: Callable[[Result], bool | None] | None = None, **options: Any) -> Result:
    """Minimize a Python black box ``fun(x) -> float`` within ``bounds`` in at most ``budget`` calls.

    Example:
        >>> import numpy as np, zoaf
        >>> res = zoaf.minimize(lambda x: float(np.sum((x - 0.3) ** 2)), [(-1, 1)] * 5, budget=300, seed=0)
        >>> bool(res.fun < 1e-3)
        True
    """
    problem = FunctionProblem.from_bounds(fun, bounds, integers=integers, log=log, x0=x0)
    return optimize(problem, budget=budget, seed=seed, method=method, callback=callback, **options)

"""ZOAF on synthetic 22-D functions: ablations, the warm CMA-ES peer, and ZOAF's own overhead.

Every variant is a ``ZOAFConfig`` setting (no code copies). The peers are the registry's ``cma-warm`` (CMA-ES from the best
point of the same Sobol batch ZOAF uses, sigma0 = 0.1: the strongest simple peer in the project's early experiments) and ``random``. All
methods see the same unit box (``FunctionProblem`` mapping, log axes linear) and the same budget.

Usage:
    python benchmarks/zo_synthetic.py                    # 10 seeds, budget 400, all functions and methods
    python benchmarks/zo_synthetic.py --seeds 3 --budget 400 --functions sphere,logquad --methods zoaf,cma-warm
    python benchmarks/zo_synthetic.py --overhead-only
"""
from __future__ import annotations

import argparse
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Callable

import numpy as np

import zoaf
from zoaf.zo import ZOAF
from zoaf.zo.config import ABLATIONS

DIM = 22


# -- test functions (physical x; optima placed off-centre) --------------------------------------------------
def _shift(d: int) -> np.ndarray:
    return 0.7 * np.sin(1.7 * np.arange(d) + 0.4)           # in [-0.7, 0.7]: up to 0.35 of the box off-centre


def sphere(x: np.ndarray) -> float:
    return float(np.sum((x - 5 * _shift(len(x))) ** 2))


def rosenbrock(x: np.ndarray) -> float:
    return float(np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2))


def ackley(x: np.ndarray) -> float:
    z = x - 5 * _shift(len(x))
    d = len(z)
    return float(-20 * np.exp(-0.2 * np.sqrt(np.sum(z * z) / d)) - np.exp(np.sum(np.cos(2 * np.pi * z)) / d)
                 + 20 + np.e)


_R = np.random.default_rng(12345)
_Q, _ = np.linalg.qr(_R.standard_normal((DIM, DIM)))
_A = _Q @ np.diag(np.logspace(-2, 2, DIM)) @ _Q.T
_T = _R.uniform(-2.0, 2.0, DIM)                               # log10 of the optimum, inside [-3, 3]


def logquad(x: np.ndarray) -> float:
    """Circuit-like: positive variables over 6 decades (log axes), an ill-conditioned (1e4), rotated
    quadratic in log10 space, seen through log1p so that far-away designs saturate like a FoM does."""
    z = np.log10(x) - _T
    return float(np.log1p(z @ _A @ z))


FUNCTIONS: dict[str, tuple[Callable[[np.ndarray], float], list[tuple[float, float]], list[int] | None]] = {
    "sphere": (sphere, [(-5.0, 5.0)] * DIM, None),
    "rosenbrock": (rosenbrock, [(-2.0, 2.0)] * DIM, None),
    "ackley": (ackley, [(-5.0, 5.0)] * DIM, None),
    "logquad": (logquad, [(1e-3, 1e3)] * DIM, list(range(DIM))),
}

VARIANTS = ABLATIONS


PEERS = ("cma-warm", "random")


def run_one(args: tuple[str, str, int, int]) -> tuple[str, str, int, float]:
    fname, method, seed, budget = args
    fun, bounds, log = FUNCTIONS[fname]
    peer = method in PEERS                      # a baseline from the registry, at its own defaults
    res = zoaf.minimize(fun, bounds, budget=budget, seed=seed, log=log, method=method if peer else "zoaf",
                        **({} if peer else VARIANTS[method]))
    return fname, method, seed, float(res.fun)


def overhead(budget: int = 2000, dim: int = DIM, seed: int = 0) -> float:
    """Seconds of ZOAF's own ask/tell time per simulated point (objective excluded), at d=22."""
    opt = ZOAF(dim, budget, seed)
    c = np.linspace(0.2, 0.8, dim)
    spent, n = 0.0, 0
    while not opt.done:
        t = time.perf_counter()
        u = opt.ask()
        spent += time.perf_counter() - t
        f = np.sum((u - c) ** 2, axis=1)
        t = time.perf_counter()
        opt.tell(u, f)
        spent += time.perf_counter() - t
        n += len(u)
    return spent / n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--budget", type=int, default=400)
    ap.add_argument("--functions", default=",".join(FUNCTIONS))
    ap.add_argument("--methods", default=",".join([*VARIANTS, *PEERS]))
    ap.add_argument("--jobs", type=int, default=None)
    ap.add_argument("--overhead-only", action="store_true")
    a = ap.parse_args()
    oh = overhead()
    print(f"ZOAF overhead: {oh * 1e3:.3f} ms per simulation (ask+tell, d={DIM}, 2000 simulations)\n")
    if a.overhead_only:
        return
    fns, methods = a.functions.split(","), a.methods.split(",")
    jobs = [(fn, m, s, a.budget) for fn in fns for m in methods for s in range(a.seeds)]
    with ProcessPoolExecutor(a.jobs) as pool:
        out = list(pool.map(run_one, jobs, chunksize=4))
    res: dict[tuple[str, str], list[float]] = {}
    for fn, m, _, v in out:
        res.setdefault((fn, m), []).append(v)
    print(f"median / worst final f over {a.seeds} seeds, d={DIM}, budget={a.budget} (lower is better)\n")
    print("| method | " + " | ".join(fns) + " |")
    print("|---|" + "---|" * len(fns))
    for m in methods:
        cells = [f"{np.median(res[fn, m]):.3g} / {np.max(res[fn, m]):.3g}" for fn in fns]
        print(f"| {m} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()

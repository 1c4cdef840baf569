"""ZOAF on synthetic 22-D functions: ablations, the warm CMA-ES peer, and ZOAF's own overhead.

Every variant is a ``ZOAFConfig`` setting (no code copies). The peers are the registry's ``cma-warm`` (CMA-ES
from the best point of the same Sobol batch ZOAF uses, sigma0 = 0.1: the strongest simple peer in the project's
early experiments) and ``random``. All methods see the same unit box (``FunctionProblem`` mapping, log axes
linear) and the same budget.

``--constrained`` runs the constraint-aware step against its ablations instead, on ``ConstrainedQuadratic``
(22-D, 4 constraints, 3 of them active at a known KKT point), calling ``ask``/``tell`` with the constraint matrix
as a constrained problem does; it reports the best FoM (the objective on the FoM's scale when feasible, 0 at the
optimum; 100 + violation when not) and the distance of the best point to the KKT point.

Usage:
    python benchmarks/zo_synthetic.py                    # 10 seeds, budget 400, all functions and methods
    python benchmarks/zo_synthetic.py --seeds 3 --budget 400 --functions sphere,logquad --methods zoaf,cma-warm
    python benchmarks/zo_synthetic.py --overhead-only
    python benchmarks/zo_synthetic.py --constrained --seeds 20 --budget 300
"""
from __future__ import annotations

import argparse
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Callable

import numpy as np

import zoaf
from zoaf.problem import INFEASIBLE_OFFSET, squash
from zoaf.zo import ZOAF
from zoaf.zo.ablations import ABLATIONS

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
#: The constraint-aware step's ablations, compared on ``ConstrainedQuadratic``.
CONSTRAINED_VARIANTS = ("zoaf", "scalar", "penalty", "no-restoration", "no-constraint-curvature")


class ConstrainedQuadratic:
    """A convex problem in the unit box with a known KKT point x*: a rotated quadratic objective (condition 10)
    whose gradient at x* is -sum_i lam_i grad c_i(x*), so x* is its unique constrained minimizer; constraints
    (normalized, <= 0 satisfied): c1 linear, c2 a convex quadratic (curvature 2), c3 curved in 5 coordinates,
    all three active at x* (lam = 1, 0.5, 0.3), and c4 linear, inactive (-0.3 at x*). f(x*) = 0.

    ``measures(X)`` returns what a circuit's evaluation reports: (FoM, c, objective), the objective on the FoM's
    scale (signed log) and the FoM = objective when feasible, 100 + total violation otherwise (the cliff).
    """

    def __init__(self, dim: int = DIM, seed: int = 7, cond: float = 10.0) -> None:
        r = np.random.default_rng(seed)
        self.x_star = 0.3 + 0.4 * r.random(dim)
        A = r.standard_normal((4, dim))
        self.A = A / np.linalg.norm(A, axis=1, keepdims=True)
        Q, _ = np.linalg.qr(r.standard_normal((dim, dim)))
        self.H = Q @ np.diag(np.logspace(0, np.log10(cond), dim)) @ Q.T
        self.lam = np.array([1.0, 0.5, 0.3, 0.0])
        self.g_star = -self.lam @ self.A

    def raw(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(objective before the squash, constraint matrix) at the rows of ``X``."""
        Z = np.atleast_2d(X) - self.x_star
        f = 0.5 * np.einsum("ij,jk,ik->i", Z, self.H, Z) + Z @ self.g_star
        c = Z @ self.A.T
        c[:, 1] += np.sum(Z * Z, axis=1)
        c[:, 2] += 0.5 * np.sum(Z[:, :5] ** 2, axis=1)
        c[:, 3] -= 0.3
        return f, c

    def measures(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        f, c = self.raw(X)
        objective = np.array([squash(v) for v in f])
        violation = np.sum(np.maximum(c, 0.0), axis=1)
        return np.where(violation > 0, INFEASIBLE_OFFSET + violation, objective), c, objective


def run_constrained(variant: str, seed: int, budget: int, dim: int = DIM) -> tuple[float, float]:
    """(best FoM, distance of the best point to x*) of one ZOAF run on ``ConstrainedQuadratic``."""
    problem = ConstrainedQuadratic(dim)
    opt = ZOAF(dim, budget, seed, **VARIANTS[variant])
    while not opt.done:
        u = opt.ask()
        fom, c, objective = problem.measures(u)
        opt.tell(u, fom, c, objective=objective)
    return opt.best_f, float(np.linalg.norm(opt.best_x - problem.x_star))


PEERS = ("cma-warm", "random")


def run_one(args: tuple[str, str, int, int]) -> tuple[str, str, int, float]:
    fname, method, seed, budget = args
    fun, bounds, log = FUNCTIONS[fname]
    peer = method in PEERS                      # a baseline from the registry, at its own defaults
    res = zoaf.minimize(fun, bounds, budget=budget, seed=seed, log=log, method=method if peer else "zoaf",
                        **({} if peer else VARIANTS[method]))
    return fname, method, seed, float(res.fun)


def overhead(budget: int = 2000, dim: int = DIM, seed: int = 0, constrained: bool = False) -> tuple[float, float]:
    """(wall, CPU) seconds of ZOAF's own ask/tell time per simulated point (objective excluded), at d=22;
    ``constrained``: on ``ConstrainedQuadratic`` (4 constraints), with the constraint-aware step. The CPU time
    is the one to compare across runs on a shared machine, where other jobs inflate the wall time."""
    opt = ZOAF(dim, budget, seed)
    c = np.linspace(0.2, 0.8, dim)
    problem = ConstrainedQuadratic(dim)
    wall, cpu, n = 0.0, 0.0, 0
    while not opt.done:
        t, tc = time.perf_counter(), time.process_time()
        u = opt.ask()
        wall, cpu = wall + time.perf_counter() - t, cpu + time.process_time() - tc
        if constrained:
            f, cons, objective = problem.measures(u)
        else:
            f, cons, objective = np.sum((u - c) ** 2, axis=1), None, None
        t, tc = time.perf_counter(), time.process_time()
        opt.tell(u, f, cons, objective=objective)
        wall, cpu = wall + time.perf_counter() - t, cpu + time.process_time() - tc
        n += len(u)
    return wall / n, cpu / n


def constrained_table(seeds: int, budget: int, methods: list[str], jobs: int | None) -> None:
    """Median and worst best FoM and distance to x* per variant on ``ConstrainedQuadratic``."""
    tasks = [(m, s, budget) for m in methods for s in range(seeds)]
    with ProcessPoolExecutor(jobs) as pool:
        out = list(pool.map(run_constrained, *zip(*tasks)))
    print(f"ConstrainedQuadratic, d={DIM}, 4 constraints (3 active at x*, f* = 0), budget={budget}, {seeds} seeds\n")
    print("| variant | median best FoM | worst best FoM | median |x - x*| | worst |x - x*| |")
    print("|---|---|---|---|---|")
    for m in methods:
        f = np.array([o[0] for (mm, _, _), o in zip(tasks, out) if mm == m])
        dist = np.array([o[1] for (mm, _, _), o in zip(tasks, out) if mm == m])
        print(f"| {m} | {np.median(f):.3g} | {np.max(f):.3g} | {np.median(dist):.3g} | {np.max(dist):.3g} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--budget", type=int, default=400)
    ap.add_argument("--functions", default=",".join(FUNCTIONS))
    ap.add_argument("--methods", default=None, help="default: every ablation and peer (with --constrained: "
                    f"{','.join(CONSTRAINED_VARIANTS)})")
    ap.add_argument("--jobs", type=int, default=None)
    ap.add_argument("--overhead-only", action="store_true")
    ap.add_argument("--constrained", action="store_true", help="the constraint-aware step's table instead")
    a = ap.parse_args()
    for constrained, what in ((False, ""), (True, ", constraint-aware with 4 constraints")):
        wall, cpu = overhead(constrained=constrained)
        print(f"ZOAF overhead{what}: {wall * 1e3:.3f} ms wall, {cpu * 1e3:.3f} ms CPU per simulation (ask+tell, "
              f"d={DIM}, 2000 simulations)")
    print()
    if a.overhead_only:
        return
    if a.constrained:
        constrained_table(a.seeds, a.budget, a.methods.split(",") if a.methods else list(CONSTRAINED_VARIANTS), a.jobs)
        return
    fns, methods = a.functions.split(","), a.methods.split(",") if a.methods else [*VARIANTS, *PEERS]
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

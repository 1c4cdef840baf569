"""Where one batch's time goes on ``dask="local"`` against the local pool: per-batch and per-simulation costs.

Usage:
    python benchmarks/dask_batch.py                          # the synthetic 5 ms problem, batches of 1, 6, 20, 40
    python benchmarks/dask_batch.py --problem circuit        # two_stage_amp
    python benchmarks/dask_batch.py --sizes 6 20 --batches 30

Each simulation stamps its process and its start and end (``time.monotonic``, one clock for every process on
the machine); the client side stamps the call of ``evaluate`` and its return. Per batch (medians over
``--batches`` batches after a warm-up batch, 2 workers): the wall time; each worker's idle time (the batch's wall
time less its simulations' own time); the time from ``evaluate`` to the first simulation's start (dispatch), from
the last simulation's end to ``evaluate``'s return (collect), and the gaps between two simulations of one worker.
A fit of the idle time ``a + b * batch`` over the batch sizes separates the per-batch cost ``a`` from the
per-simulation cost ``b``. "Uneven batches": how many gave one worker more than an even share of the
simulations. Prints markdown tables.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from throughput import make_problem  # noqa: E402

from zoaf.evaluate import Evaluator  # noqa: E402
from zoaf.problem import Outcome, Problem  # noqa: E402


class Stamped(Problem):
    """``inner``'s simulations, each with its process id and its start and end time among the measures."""

    def __init__(self, inner: Problem) -> None:
        self.inner = inner
        self.name, self.parameters = inner.name, inner.parameters

    def __getattr__(self, name: str):
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)

    def simulate(self, x: np.ndarray) -> Outcome:
        t0 = time.monotonic()
        out = self.inner.simulate(x)
        out.measures = {**out.measures, "_pid": os.getpid(), "_t0": t0, "_t1": time.monotonic()}
        return out

    def close(self) -> None:
        self.inner.close()


@dataclass
class Batch:
    """One batch's timeline, in ms."""

    wall: float
    idle: float          # summed over the workers
    dispatch: float      # evaluate() to the first simulation's start
    collect: float       # the last simulation's end to evaluate()'s return
    gaps: list[float]    # between two consecutive simulations of one worker
    excess: int          # simulations on the busiest worker beyond an even share


def one_batch(ev: Evaluator, u: np.ndarray, workers: int) -> Batch:
    t0 = time.monotonic()
    recs = ev.evaluate(u)
    t1 = time.monotonic()
    sims = sorted((r.outcome.measures["_pid"], r.outcome.measures["_t0"], r.outcome.measures["_t1"]) for r in recs)
    gaps = [b[1] - a[2] for a, b in zip(sims, sims[1:]) if a[0] == b[0]]
    busy = sum(s[2] - s[1] for s in sims)
    most = max(sum(s[0] == pid for s in sims) for pid in {s[0] for s in sims})
    return Batch(1e3 * (t1 - t0), 1e3 * (workers * (t1 - t0) - busy), 1e3 * (min(s[1] for s in sims) - t0),
                 1e3 * (t1 - max(s[2] for s in sims)), [1e3 * g for g in gaps], most - -(-len(sims) // workers))


def measure(problem: Problem, size: int, batches: int, dask: str | None, seed: int) -> list[Batch]:
    rng = np.random.default_rng(seed)
    with Evaluator(problem, workers=2, dask=dask) as ev:
        ev.evaluate(rng.random((max(size, 4), problem.dim)))      # start workers, open sessions
        return [one_batch(ev, rng.random((size, problem.dim)), 2) for _ in range(batches)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--problem", choices=["circuit", "synthetic"], default="synthetic")
    ap.add_argument("--sizes", type=int, nargs="+", default=[1, 6, 20, 40])
    ap.add_argument("--batches", type=int, default=20)
    args = ap.parse_args()
    problem = Stamped(make_problem(args.problem))
    print(f"\n### One batch, {problem.name}, 2 workers, medians of {args.batches} batches "
          f"(load {os.getloadavg()[0]:.1f} at the start)\n")
    print("| batch | evaluator | wall ms | idle worker ms | per simulation | dispatch ms | collect ms | "
          "gap ms (median / max) | uneven batches |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    idle: dict[str, list[tuple[int, float]]] = {"local pool": [], 'dask="local"': []}
    for size in args.sizes:
        for label, dask in (("local pool", None), ('dask="local"', "local")):
            bs = measure(problem, size, args.batches, dask, seed=size)
            med = {k: float(np.median([getattr(b, k) for b in bs])) for k in ("wall", "idle", "dispatch", "collect")}
            gaps = [g for b in bs for g in b.gaps] or [float("nan")]
            idle[label].append((size, med["idle"]))
            print(f"| {size} | {label} | {med['wall']:.1f} | {med['idle']:.1f} | {med['idle'] / size:.2f} | "
                  f"{med['dispatch']:.1f} | {med['collect']:.1f} | {np.median(gaps):.2f} / {max(gaps):.1f} | "
                  f"{sum(b.excess > 0 for b in bs)} |",
                  flush=True)
    print("\n| evaluator | per batch (ms of idle worker time) | per simulation |\n|---|---:|---:|")
    for label, pts in idle.items():
        if len(pts) > 1:
            b, a = np.polyfit([p[0] for p in pts], [p[1] for p in pts], 1)
            print(f"| {label} | {a:.1f} | {b:.2f} |")
    print(f"\nLoad at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()

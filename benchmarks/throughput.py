"""Evaluator throughput: simulations/s with 1 vs 2 local workers, Dask overhead, and worker memory in a soak.

Usage:
    python benchmarks/throughput.py                      # two_stage_amp via CircuitProblem, 1 vs 2 workers, dask
    python benchmarks/throughput.py --problem synthetic  # a problem that sleeps 5 ms (no ngspice)
    python benchmarks/throughput.py --soak 10000         # worker RSS over 10000 simulations (2 workers)
    python benchmarks/throughput.py --corners 12         # sky130 sign-off: 12 sizings x 3 process corners,
                                                         # corner affinity on vs off (2 workers)

Prints markdown tables. Targets: 2 workers >= 1.7x one worker on 2 cores; Dask adds <= 2 ms of worker time per
simulation over the local pool; worker RSS grows <= 50 MB per worker over a soak (recycling included).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from zoaf.evaluate import DEFAULT_RECYCLE_AFTER, Evaluator  # noqa: E402
from zoaf.function import FunctionProblem  # noqa: E402
from zoaf.problem import Parameter, Problem  # noqa: E402

DASK = 'dask="local", workers=2'
#: Seconds the synthetic problem sleeps per simulation (about a small circuit's in-process simulation).
SYNTHETIC_SECONDS = 0.005


def _sleep_sphere(x: np.ndarray) -> float:
    time.sleep(SYNTHETIC_SECONDS)
    return float(np.sum(x ** 2))


class SleepProblem(FunctionProblem):
    name = "synthetic-5ms"

    def __init__(self, dim: int = 10) -> None:
        super().__init__(_sleep_sphere, [Parameter(f"x{i}", 0.0, 1.0) for i in range(dim)])


def make_problem(kind: str) -> Problem:
    if kind == "synthetic":
        return SleepProblem()
    from zoaf.circuit import CircuitProblem
    return CircuitProblem.from_netlist(ROOT / "netlists" / "two_stage_amp.cir")


def timed(ev: Evaluator, n: int, batch: int, seed: int) -> tuple[float, int]:
    """Seconds for ``n`` fresh simulations in batches of ``batch``, after one warm-up batch; and n OK."""
    rng = np.random.default_rng(seed)
    ev.evaluate(rng.random((batch, ev.problem.dim)))         # start workers, open sessions
    t0 = time.perf_counter()
    ok = 0
    for _ in range(n // batch):
        ok += sum(o.status.value == "ok" for o in ev.evaluate(rng.random((batch, ev.problem.dim))))
    return time.perf_counter() - t0, ok


def throughput(kind: str, n: int, batch: int) -> None:
    from zoaf import daskpool
    problem = make_problem(kind)
    rows = []
    base = {}
    default = daskpool.DASK_PREFETCH, daskpool.DASK_CHUNK
    dask_rows = {DASK: default, DASK + ", one simulation per task": (default[0], 1),
                 DASK + ", one simulation per task, one task per worker": (1, 1)}
    for label, kw in [("in-process (workers=0)", dict(workers=0)), ("local pool, workers=1", dict(workers=1)),
                      ("local pool, workers=2", dict(workers=2)),
                      *((label, dict(workers=2, dask="local")) for label in dask_rows)]:
        daskpool.DASK_PREFETCH, daskpool.DASK_CHUNK = dask_rows.get(label, default)
        with Evaluator(problem, **kw) as ev:
            dt, ok = timed(ev, n, batch, seed=1)
        m = n // batch * batch
        base[label] = dt / m
        rows.append((label, m, ok, dt, m / dt))
    daskpool.DASK_PREFETCH, daskpool.DASK_CHUNK = default
    print(f"\n### Throughput: {problem.name}, {m} simulations in batches of {batch}\n")
    print("| evaluator | sims | ok | seconds | sims/s | vs workers=1 |")
    print("|---|---:|---:|---:|---:|---:|")
    one = rows[1][4]
    for label, m, ok, dt, rate in rows:
        print(f"| {label} | {m} | {ok} | {dt:.2f} | {rate:.1f} | {rate / one:.2f}x |")
    for label in dask_rows:
        over = 2 * (base[label] - base["local pool, workers=2"]) * 1e3
        print(f"\n{label}: {over:+.2f} ms of worker time per simulation over the local pool "
              f"(2 x wall-time difference per simulation; target <= 2 ms)")


def soak(kind: str, n: int, batch: int, workers: int, recycle_after: int) -> None:
    import psutil
    problem = make_problem(kind)
    rng = np.random.default_rng(2)
    first: dict[int, float] = {}
    last: dict[int, float] = {}
    samples = []
    t0 = time.perf_counter()
    with Evaluator(problem, workers=workers, recycle_after=recycle_after) as ev:
        done = 0
        while done < n:
            k = min(batch, n - done)
            ev.evaluate(rng.random((k, problem.dim)))
            done += k
            for pid in ev.worker_pids():
                try:
                    rss = psutil.Process(pid).memory_info().rss / 2**20
                except psutil.NoSuchProcess:
                    continue
                first.setdefault(pid, rss)
                last[pid] = rss
            if done % max(batch, n // 10) < batch or done == n:
                samples.append((done, time.perf_counter() - t0,
                                [round(last[p], 1) for p in ev.worker_pids() if p in last]))
        stats = ev.stats
    print(f"\n### Soak: {problem.name}, {n} simulations, {workers} workers, recycle_after={recycle_after}\n")
    print("| simulations | seconds | worker RSS (MB) |")
    print("|---:|---:|---|")
    for done, dt, rss in samples:
        print(f"| {done} | {dt:.1f} | {', '.join(f'{r:.1f}' for r in rss)} |")
    growth = {pid: last[pid] - first[pid] for pid in first}
    print(f"\nWorker processes: {len(first)} (events: {stats}); RSS growth per worker process from its first "
          f"sample to its last: max {max(growth.values()):.1f} MB, mean {np.mean(list(growth.values())):.1f} MB "
          f"(target <= 50 MB)")


def corners(sizings: int, batch: int, workers: int) -> None:
    """Sign-off simulations on sky130 (each a (sizing, corner) task; a process-corner switch reloads the PDK in
    a worker): wall time with the pool's corner affinity and without it (a problem that names no affinity)."""
    import os

    from zoaf.circuit import CircuitProblem
    from zoaf.signoff.cornerrun import CornerProblem
    net = ROOT / "netlists" / "sky130" / "two_stage_amp.cir"
    u = np.random.default_rng(3).random((sizings, 22))
    print(f"\n### Corner affinity: sky130 two_stage_amp, ugbw_pvt corners, {sizings} sizings in batches of {batch}, "
          f"{workers} workers, no pruning (load {os.getloadavg()[0]:.1f} at the start)\n")
    print("| corner affinity | simulations | PDK deck switches | seconds | s / simulation |\n|---|---:|---:|---:|---:|")
    foms = {}
    for affine in (True, False):
        problem = CornerProblem.wrap(CircuitProblem(net, objective="ugbw_pvt"), prune=False)
        if not affine:
            problem.sims.affinity = None
        with problem.evaluator(workers=workers) as ev:
            ev.start()
            t0 = time.perf_counter()
            recs = [r for i in range(0, sizings, batch) for r in ev.evaluate(u[i:i + batch])]
            dt = time.perf_counter() - t0
            switches = ev.stats["switches"] if affine else "not counted"
        foms[affine] = [r.outcome.fom for r in recs]
        n = sum(len(r.corner_records) for r in recs)
        print(f"| {'on' if affine else 'off'} | {n} | {switches} | {dt:.1f} | {dt / n:.2f} |", flush=True)
    print(f"\nSame worst-case FoM per sizing either way: {foms[True] == foms[False]}; load at the end "
          f"{os.getloadavg()[0]:.1f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--problem", choices=["circuit", "synthetic"], default="circuit")
    ap.add_argument("-n", type=int, default=400, help="timed simulations per evaluator")
    ap.add_argument("--batch", type=int, default=20)
    ap.add_argument("--soak", type=int, default=0, metavar="N", help="run a memory soak of N simulations")
    ap.add_argument("--workers", type=int, default=2, help="workers for the soak")
    ap.add_argument("--recycle-after", type=int, default=DEFAULT_RECYCLE_AFTER)
    ap.add_argument("--corners", type=int, default=0, metavar="N",
                    help="sky130 sign-off: N sizings at 3 process corners, corner affinity on vs off")
    args = ap.parse_args()
    if args.corners:
        corners(args.corners, min(args.batch, 8), args.workers)
    elif args.soak:
        soak(args.problem, args.soak, max(args.batch, 50), args.workers, args.recycle_after)
    else:
        throughput(args.problem, args.n, args.batch)


if __name__ == "__main__":
    main()

"""Per-evaluation wall time: in-process SpiceSession vs the sandboxed child every ``CircuitProblem`` uses outside
a worker (``workers=0``, ``zoaf check``: one pipe round trip per evaluation) vs a fresh ``ngspice -b`` per
evaluation; the floor (ngspice's analyses alone); RSS soak.

The floor is what no driver of ngspice can go below: ngspice's analysis commands alone (the ``.meas`` cards it
runs after each included), timed inside each zoaf evaluation, which runs them synchronously as a worker does
(the deadline is enforced by killing the process: ``zoaf.isolation``); the ratio is the median over sizings of
the evaluation's time over its analyses'. Everything else a zoaf evaluation spends (``alterparam``, ``reset``
or the fast path's ``alter``s, ``.control`` replay, reading vectors, ``destroy``, Python) is the excess.

All three run the same N random sizings in one process, side by side. Sizings are drawn uniformly in the spec's
box (log axes log-uniform, integers rounded). The soak runs ``--soak`` session evaluations and reports the
process RSS after 100 and after all of them.

    python benchmarks/eval_speed.py --netlist netlists/two_stage_amp.cir --n 200 --soak 5000
    python benchmarks/eval_speed.py --netlist netlists/sky130/two_stage_amp.cir --n 8 --soak 0
    python benchmarks/eval_speed.py --floor-only --n 100 --netlist netlists/*.cir netlists/sky130/*.cir
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from zoaf.circuit import CircuitProblem  # noqa: E402
from zoaf.errors import SimulationError  # noqa: E402
from zoaf.spice import SpiceSession, run_batch  # noqa: E402


def sampler(problem: CircuitProblem, seed: int, walk: float = 0.0):
    """Uniform points of the spec's box (log axes log-uniform, integers rounded), as .param values; with
    ``walk``, points a normal step of that size (in the unit box) from one random centre, as an optimizer's
    probes are (on sky130 most then keep every device's model bin: the fast path's case)."""
    rng = np.random.default_rng(seed)
    if walk:
        centre = rng.uniform(0.2, 0.8, problem.dim)
        return lambda: problem.as_dict(problem.to_physical(np.clip(centre + walk * rng.standard_normal(problem.dim),
                                                                   0, 1)))
    return lambda: problem.as_dict(problem.to_physical(rng.uniform(size=problem.dim)))


def timed(session, params) -> tuple[dict[str, float] | None, float]:
    """(results or None for a failed simulation, seconds) of one evaluation."""
    t0 = time.perf_counter()
    try:
        got = session.evaluate(params)
    except SimulationError:
        got = None
    return got, time.perf_counter() - t0


class FloorSession(SpiceSession):
    """A session that adds up the wall time of its analyses (``analysis_s``) and of every other ngspice command
    by its first word (``commands``: ``reset``, ``alterparam``, ``alter``, ``destroy``, ...)."""

    def __init__(self, *args, **kw) -> None:
        super().__init__(*args, **kw)
        self.analysis_s = 0.0
        self.commands: Counter[str] = Counter()
        self._in_analysis = False

    def _run_analysis(self, command: str, deadline: float | None) -> list[str]:
        t0 = time.perf_counter()
        self._in_analysis = True
        try:
            return super()._run_analysis(command, deadline)
        finally:
            self._in_analysis = False
            self.analysis_s += time.perf_counter() - t0

    def _cmd(self, command: str) -> list[str]:
        if self._in_analysis:
            return super()._cmd(command)
        t0 = time.perf_counter()
        try:
            return super()._cmd(command)
        finally:
            self.commands[command.split(None, 1)[0]] += time.perf_counter() - t0


def session_and_floor(nl, points) -> tuple[list[float], list[float], Counter[str]]:
    """Per sizing: seconds of a zoaf evaluation as a worker runs it (no time limit in the process: synchronous
    analyses), and of ngspice's analyses within it; and the other commands' seconds over all sizings."""
    t_sess, t_floor = [], []
    with FloorSession(nl, timeout=None) as s:
        timed(s, points[0])                                     # warm-up (not timed)
        s.commands.clear()
        for p in points:
            s.analysis_s = 0.0
            t_sess.append(timed(s, p)[1])
            t_floor.append(s.analysis_s)
        return t_sess, t_floor, s.commands


def breakdown_row(name: str, t_sess: list[float], t_floor: list[float], commands: Counter[str]) -> str:
    """Mean ms per sizing: the evaluation, its analyses, each other command word, and the rest (zoaf's Python)."""
    n = len(t_sess)
    words = sorted(commands.items(), key=lambda kv: -kv[1])
    rest = sum(t_sess) - sum(t_floor) - sum(commands.values())
    cells = ", ".join(f"{w} {v / n * 1e3:.3f}" for w, v in words)
    return (f"| {name} | {sum(t_sess) / n * 1e3:.3f} | {sum(t_floor) / n * 1e3:.3f} | {cells} | "
            f"{rest / n * 1e3:.3f} |")


def floor_row(path: Path, n: int, seed: int, walk: float) -> tuple[str, str]:
    """One table row: zoaf's in-process and sandboxed time per sizing as multiples of the floor; and one row of
    where the in-process time goes."""
    problem = CircuitProblem.from_netlist(path)
    draw = sampler(problem, seed, walk)
    points = [draw() for _ in range(n)]
    child = problem.session()
    child.evaluate(points[0])
    t_child = [timed(child, p)[1] for p in points]
    problem.close()
    t_sess, t_floor, commands = session_and_floor(problem.netlist, points)
    f, ms, mc = (statistics.median(t) * 1e3 for t in (t_floor, t_sess, t_child))
    ratio = statistics.median(a / b for a, b in zip(t_sess, t_floor))
    name = f"{path.parent.name}/{path.name}"
    return (f"| {name} | {f:.2f} | {ms:.2f} | {mc:.2f} | {ratio:.2f}x | {mc / f:.2f}x |",
            breakdown_row(name, t_sess, t_floor, commands))


def floor_table(paths: list[Path], n: int, seed: int, walk: float) -> None:
    how = f"steps of {walk} around a centre" if walk else "uniform"
    print(f"### The floor: ngspice's analyses alone ({n} {how} sizings per circuit, seed {seed}; "
          f"load {os.getloadavg()[0]:.1f} at the start)\n")
    print("| circuit | floor ms | SpiceSession ms | sandboxed child ms | session / floor (paired) "
          "| child / floor |")
    print("|---|---:|---:|---:|---:|---:|")
    where = []
    for path in paths:
        row, parts = floor_row(path, n, seed, walk)
        print(row, flush=True)
        where.append(parts)
    print(f"\nLoad average at the end: {os.getloadavg()[0]:.1f} (target: <= 1.2x the floor on every circuit)\n")
    print("Where the in-process time goes (mean ms per sizing):\n")
    print("| circuit | evaluation | analyses | other ngspice commands | rest (zoaf's Python) |")
    print("|---|---:|---:|---|---:|")
    print("\n".join(where))


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--netlist", nargs="+", default=["netlists/two_stage_amp.cir"],
                    help="one netlist; several with --floor-only")
    ap.add_argument("--floor-only", action="store_true",
                    help="only the floor table (no ngspice -b, no soak), for every --netlist")
    ap.add_argument("--n", type=int, default=200, help="sizings timed both ways")
    ap.add_argument("--soak", type=int, default=5000, help="session evaluations for the RSS soak (0: skip)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--walk", type=float, default=0.0, metavar="STEP",
                    help="sizings as steps of STEP (unit box) around a random centre instead of uniform")
    a = ap.parse_args()
    if a.floor_only:
        floor_table([Path(p) for p in a.netlist], a.n, a.seed, a.walk)
        return
    if len(a.netlist) > 1:
        ap.error("several netlists only with --floor-only")
    path = Path(a.netlist[0])
    problem = CircuitProblem.from_netlist(path)          # the spec's box; a PDK placeholder filled in
    nl, d = problem.netlist, problem.dim
    draw = sampler(problem, a.seed, a.walk)
    points = [draw() for _ in range(a.n)]
    t_sess, t_child, t_batch, fails, worst = [], [], [], 0, 0.0
    child = problem.session()                                   # not a worker: a sandboxed child process
    with SpiceSession(nl, timeout=None) as s:                  # as in a worker: synchronous analyses
        s.evaluate(points[0])                                   # warm-up (not timed)
        child.evaluate(points[0])
        for i, p in enumerate(points):
            # alternate which of the two goes first, so that neither always runs right after ngspice -b
            pair = [(s, t_sess), (child, t_child)]
            for sess, times in pair if i % 2 else pair[::-1]:
                result, seconds = timed(sess, p)
                times.append(seconds)
                if sess is s:
                    got = result
            t1 = time.perf_counter()
            try:
                ref = run_batch(nl.with_params(p))
            except SimulationError:
                ref = None
            t_batch.append(time.perf_counter() - t1)
            if (got is None) != (ref is None):
                fails += 1
            elif got is not None:
                worst = max([worst] + [abs(got[k] - ref[k]) / max(abs(ref[k]), 1e-30)
                                       for k in ref if abs(ref[k]) > 1e-12])
        problem.close()
        soak = None
        if a.soak:
            for i in range(a.soak):
                try:
                    s.evaluate(draw())
                except SimulationError:
                    pass
                if i == 99:
                    r100 = rss_mb()
            soak = (r100, rss_mb())
    ms, mb = statistics.median(t_sess) * 1e3, statistics.median(t_batch) * 1e3
    print(f"### Evaluation speed: `{path.name}` ({d} parameters, {a.n} sizings "
          f"from the spec bounds, seed {a.seed})\n")
    print(f"Host: {platform.node()}, Python {platform.python_version()}, ngspice 39 (libngspice in-process)\n")
    print("| | median ms / evaluation | p90 ms |")
    print("|---|---|---|")
    print(f"| SpiceSession (in-process, as a worker runs it: alter where it can, else alterparam + reset) | {ms:.2f} | "
          f"{np.percentile(t_sess, 90) * 1e3:.2f} |")
    mc = statistics.median(t_child) * 1e3
    print(f"| sandboxed child process (CircuitProblem outside a worker) | {mc:.2f} | "
          f"{np.percentile(t_child, 90) * 1e3:.2f} |")
    print(f"| fresh `ngspice -b` subprocess | {mb:.2f} | {np.percentile(t_batch, 90) * 1e3:.2f} |")
    print(f"| **speed-up** | **{mb / ms:.1f}x** | |\n")
    print(f"Sandboxed child: {mc - ms:+.3f} ms per evaluation over the in-process session ({mc / ms - 1:+.1%}).\n")
    mf = statistics.median(session_and_floor(nl, points)[1]) * 1e3
    print(f"Floor (ngspice's analyses alone, same sizings): {mf:.2f} ms; the session takes {ms / mf:.2f}x it, "
          f"the sandboxed child {mc / mf:.2f}x.\n")
    print(f"Agreement: max relative difference {worst:.1e} (ngspice -b prints 6-7 digits); "
          f"{fails} sizings failed one way only.")
    if soak:
        print(f"\nRSS soak: {soak[0]:.1f} MB after 100 session evaluations, {soak[1]:.1f} MB after {a.soak} "
              f"(growth {soak[1] - soak[0]:+.1f} MB; target <= 50 MB).")


if __name__ == "__main__":
    main()

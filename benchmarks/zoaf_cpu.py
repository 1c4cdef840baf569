"""zoaf's own CPU time per evaluation: the thread's CPU time outside ngspice's commands, for the zoaf source tree
given (``--tree``: this checkout or another, e.g. the commit before a change, exported with ``git archive``).

Wall times under load (two cores shared by several processes) inflate and scatter; a thread's CPU time does much
less, so two trees run one after the other compare fairly. The time inside ``NgSpice.command`` (ngspice's work and
the binding's call) is taken out: what is left is zoaf's Python per evaluation, medians over ``--n`` sizings drawn
as ``eval_speed.py`` draws them (uniform in the spec's box, or ``--walk`` steps around one centre).

    python benchmarks/zoaf_cpu.py --tree . --netlist netlists/lna.cir --n 300
    python benchmarks/zoaf_cpu.py --tree ../before --netlist netlists/sky130/folded_cascode.cir --n 100 --walk 0.003
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tree", type=Path, default=Path(__file__).resolve().parent.parent)
    ap.add_argument("--netlist", required=True, help="relative to the tree")
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--walk", type=float, default=0.0, metavar="STEP")
    a = ap.parse_args()
    tree = a.tree.resolve()
    sys.path[:0] = [str(tree), str(tree / "benchmarks")]
    from eval_speed import sampler

    from zoaf import ngbinding
    from zoaf.circuit import CircuitProblem
    from zoaf.errors import SimulationError
    from zoaf.spice import SpiceSession

    inside = [0.0]
    command = ngbinding.NgSpice.command

    def timed_command(self, text: str) -> list[str]:
        t0 = time.thread_time()
        try:
            return command(self, text)
        finally:
            inside[0] += time.thread_time() - t0

    ngbinding.NgSpice.command = timed_command
    problem = CircuitProblem.from_netlist(tree / a.netlist)
    draw = sampler(problem, 0, a.walk)
    points = [draw() for _ in range(a.n)]
    total, own = [], []
    with SpiceSession(problem.netlist, timeout=None) as s:
        s.evaluate(points[0])                                       # warm-up (not timed)
        for p in points:
            inside[0] = 0.0
            t0 = time.thread_time()
            try:
                s.evaluate(p)
            except SimulationError:
                pass
            total.append(time.thread_time() - t0)
            own.append(total[-1] - inside[0])
    print(f"{tree.name} {a.netlist}: CPU ms per evaluation {statistics.median(total) * 1e3:.3f}, outside ngspice's "
          f"commands {statistics.median(own) * 1e3:.3f} (medians of {a.n})")


if __name__ == "__main__":
    main()

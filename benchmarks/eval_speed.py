"""Per-evaluation wall time: in-process SpiceSession vs the sandboxed child every ``CircuitProblem`` uses outside
a worker (``workers=0``, ``zoaf check``: one pipe round trip per evaluation) vs a fresh ``ngspice -b`` per
evaluation; the floor (ngspice's analyses alone); RSS soak.

The floor is what no driver of ngspice can go below, timed inside each zoaf evaluation, which runs the
analyses synchronously as a worker does (the deadline is enforced by killing the process: ``zoaf.isolation``).
Two floors are reported, each as the median over sizings of the evaluation's time over it:
* the analysis commands alone (the ``.meas`` cards ngspice runs after each included);
* those plus the deck's other measurement work: its replayed ``.control`` commands (``let``, ``meas``,
  ``setplot``...) and its ``.meas sp`` cards (run as ``meas ac`` commands), which ``ngspice -b`` runs too.
Everything else a zoaf evaluation spends (``alterparam``, ``reset`` or the fast path's ``alter``s, reading
vectors, ``destroy``, Python) is the excess.

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
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
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
    """A session that adds up the wall time of its analyses (``analysis_s``), of the deck's own measurement work
    around them (``deck``: the replayed ``.control`` commands and ``.meas sp`` cards, by first word) and of every
    other ngspice command, zoaf's own (``commands``: ``reset``, ``alterparam``, ``alter``, ``destroy``, ...)."""

    def __init__(self, *args, **kw) -> None:
        super().__init__(*args, **kw)
        self.analysis_s = 0.0
        self.commands: Counter[str] = Counter()
        self.deck: Counter[str] = Counter()
        self._in_analysis = False
        self._in_deck = 0

    def _run_analysis(self, command: str, deadline: float | None) -> list[str]:
        t0 = time.perf_counter()
        self._in_analysis = True
        try:
            return super()._run_analysis(command, deadline)
        finally:
            self._in_analysis = False
            self.analysis_s += time.perf_counter() - t0

    @contextmanager
    def _deck_work(self) -> Iterator[None]:
        """Marks the deck's own measurement work (its ``.meas`` cards, its replayed ``.control`` lines)."""
        self._in_deck += 1
        try:
            yield
        finally:
            self._in_deck -= 1

    def _analysis(self, *args) -> None:
        with self._deck_work():
            super()._analysis(*args)

    def _replay_control(self, *args) -> None:
        with self._deck_work():
            super()._replay_control(*args)

    def _cmd(self, command: str) -> list[str]:
        if self._in_analysis:
            return super()._cmd(command)
        t0 = time.perf_counter()
        try:
            return super()._cmd(command)
        finally:
            (self.deck if self._in_deck else self.commands)[command.split(None, 1)[0]] += time.perf_counter() - t0


@dataclass
class Floor:
    """Per sizing: a zoaf evaluation as a worker runs it, its analyses, and its analyses plus the deck's own
    measurement work (seconds); over all sizings: the deck's and zoaf's other commands (seconds, by word)."""

    session: list[float]
    analyses: list[float]
    deck_work: list[float]
    deck: Counter[str]
    commands: Counter[str]


def session_and_floor(nl, points) -> Floor:
    """Each sizing timed once in one session with no time limit in the process (synchronous analyses)."""
    out = Floor([], [], [], Counter(), Counter())
    with FloorSession(nl, timeout=None) as s:
        timed(s, points[0])                                     # warm-up (not timed)
        s.commands.clear()
        s.deck.clear()
        for p in points:
            s.analysis_s, deck_before = 0.0, sum(s.deck.values())
            out.session.append(timed(s, p)[1])
            out.analyses.append(s.analysis_s)
            out.deck_work.append(s.analysis_s + sum(s.deck.values()) - deck_before)
        out.deck, out.commands = s.deck, s.commands
    return out


def breakdown_row(name: str, f: Floor) -> str:
    """Mean ms per sizing: the evaluation, its analyses, the deck's measurement commands, zoaf's other
    commands by word, and the rest (zoaf's Python)."""
    n = len(f.session)

    def ms(seconds: float) -> str:
        return f"{seconds / n * 1e3:.3f}"

    words = ", ".join(f"{w} {ms(v)}" for w, v in sorted(f.commands.items(), key=lambda kv: -kv[1]))
    deck = ", ".join(f"{w} {ms(v)}" for w, v in sorted(f.deck.items(), key=lambda kv: -kv[1]))
    rest = sum(f.session) - sum(f.deck_work) - sum(f.commands.values())
    return (f"| {name} | {ms(sum(f.session))} | {ms(sum(f.analyses))} | {deck or '-'} | {words} | "
            f"{ms(rest)} |")


def floor_row(path: Path, n: int, seed: int, walk: float) -> tuple[str, str]:
    """One table row: zoaf's in-process and sandboxed time per sizing as multiples of the two floors; and one
    row of where the in-process time goes."""
    problem = CircuitProblem.from_netlist(path)
    draw = sampler(problem, seed, walk)
    points = [draw() for _ in range(n)]
    child = problem.session()
    child.evaluate(points[0])
    t_child = [timed(child, p)[1] for p in points]
    problem.close()
    f = session_and_floor(problem.netlist, points)
    fa, fd, ms, mc = (statistics.median(t) * 1e3 for t in (f.analyses, f.deck_work, f.session, t_child))
    ratio = statistics.median(a / b for a, b in zip(f.session, f.analyses))
    ratio_deck = statistics.median(a / b for a, b in zip(f.session, f.deck_work))
    name = f"{path.parent.name}/{path.name}"
    return (f"| {name} | {fa:.2f} | {fd:.2f} | {ms:.2f} | {mc:.2f} | {ratio:.2f}x | {ratio_deck:.2f}x | "
            f"{mc / fd:.2f}x |", breakdown_row(name, f))


def floor_table(paths: list[Path], n: int, seed: int, walk: float) -> None:
    how = f"steps of {walk} around a centre" if walk else "uniform"
    print(f"### The floor: ngspice's analyses alone ({n} {how} sizings per circuit, seed {seed}; "
          f"load {os.getloadavg()[0]:.1f} at the start)\n")
    print("| circuit | analyses ms | + deck's measures ms | SpiceSession ms | sandboxed child ms "
          "| session / analyses | session / (analyses + measures) | child / (analyses + measures) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    where = []
    for path in paths:
        row, parts = floor_row(path, n, seed, walk)
        print(row, flush=True)
        where.append(parts)
    print(f"\nLoad average at the end: {os.getloadavg()[0]:.1f} (target: <= 1.2x the floor on every circuit)\n")
    print("Where the in-process time goes (mean ms per sizing):\n")
    print("| circuit | evaluation | analyses | the deck's measurement commands | zoaf's other ngspice commands "
          "| rest (zoaf's Python) |")
    print("|---|---:|---:|---|---|---:|")
    print("\n".join(where))


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


def arguments() -> argparse.Namespace:
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
    if len(a.netlist) > 1 and not a.floor_only:
        ap.error("several netlists only with --floor-only")
    return a


@dataclass
class SideBySide:
    """Seconds per sizing of the three ways, and their agreement."""

    session: list[float] = field(default_factory=list)
    child: list[float] = field(default_factory=list)
    batch: list[float] = field(default_factory=list)
    fails: int = 0                      # sizings that failed one way only
    worst: float = 0.0                  # max relative difference session vs ngspice -b


def side_by_side(s: SpiceSession, child, nl, points) -> SideBySide:
    """Each sizing in the session and the sandboxed child (alternating which goes first, so that neither always
    runs right after ``ngspice -b``), then in a fresh ``ngspice -b``."""
    out = SideBySide()
    for i, p in enumerate(points):
        pair = [(s, out.session), (child, out.child)]
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
        out.batch.append(time.perf_counter() - t1)
        if (got is None) != (ref is None):
            out.fails += 1
        elif got is not None:
            out.worst = max([out.worst] + [abs(got[k] - ref[k]) / max(abs(ref[k]), 1e-30)
                                           for k in ref if abs(ref[k]) > 1e-12])
    return out


def soak_rss(s: SpiceSession, draw, n: int) -> tuple[float, float]:
    """RSS (MB) after 100 and after ``n`` session evaluations of fresh sizings."""
    r100 = rss_mb()
    for i in range(n):
        try:
            s.evaluate(draw())
        except SimulationError:
            pass
        if i == 99:
            r100 = rss_mb()
    return r100, rss_mb()


def report(path: Path, a: argparse.Namespace, dim: int, t: SideBySide, floor: float,
           soak: tuple[float, float] | None) -> None:
    ms, mc, mb = (statistics.median(x) * 1e3 for x in (t.session, t.child, t.batch))
    p90 = {k: np.percentile(x, 90) * 1e3 for k, x in (("s", t.session), ("c", t.child), ("b", t.batch))}
    print(f"### Evaluation speed: `{path.name}` ({dim} parameters, {a.n} sizings "
          f"from the spec bounds, seed {a.seed})\n")
    print(f"Host: {platform.node()}, Python {platform.python_version()}, ngspice 39 (libngspice in-process)\n")
    print("| | median ms / evaluation | p90 ms |\n|---|---|---|")
    print(f"| SpiceSession (in-process, as a worker runs it: alter where it can, else alterparam + reset) | "
          f"{ms:.2f} | {p90['s']:.2f} |")
    print(f"| sandboxed child process (CircuitProblem outside a worker) | {mc:.2f} | {p90['c']:.2f} |")
    print(f"| fresh `ngspice -b` subprocess | {mb:.2f} | {p90['b']:.2f} |")
    print(f"| **speed-up** | **{mb / ms:.1f}x** | |\n")
    print(f"Sandboxed child: {mc - ms:+.3f} ms per evaluation over the in-process session ({mc / ms - 1:+.1%}).\n")
    print(f"Floor (ngspice's analyses alone, same sizings): {floor:.2f} ms; the session takes {ms / floor:.2f}x "
          f"it, the sandboxed child {mc / floor:.2f}x.\n")
    print(f"Agreement: max relative difference {t.worst:.1e} (ngspice -b prints 6-7 digits); "
          f"{t.fails} sizings failed one way only.")
    if soak:
        print(f"\nRSS soak: {soak[0]:.1f} MB after 100 session evaluations, {soak[1]:.1f} MB after {a.soak} "
              f"(growth {soak[1] - soak[0]:+.1f} MB; target <= 50 MB).")


def main() -> None:
    a = arguments()
    if a.floor_only:
        floor_table([Path(p) for p in a.netlist], a.n, a.seed, a.walk)
        return
    path = Path(a.netlist[0])
    problem = CircuitProblem.from_netlist(path)          # the spec's box; a PDK placeholder filled in
    nl = problem.netlist
    draw = sampler(problem, a.seed, a.walk)
    points = [draw() for _ in range(a.n)]
    child = problem.session()                                   # not a worker: a sandboxed child process
    with SpiceSession(nl, timeout=None) as s:                  # as in a worker: synchronous analyses
        s.evaluate(points[0])                                   # warm-up (not timed)
        child.evaluate(points[0])
        t = side_by_side(s, child, nl, points)
        problem.close()
        soak = soak_rss(s, draw, a.soak) if a.soak else None
    floor = statistics.median(session_and_floor(nl, points).analyses) * 1e3
    report(path, a, problem.dim, t, floor, soak)


if __name__ == "__main__":
    main()

"""CPU time to read each benchmark deck (``Netlist.read``: the include walk and its checks, the deck's lines, its
design variables' defaults in the included files), as ``zoaf check``, each worker's deck load, corners, yield and
sensitivity pay it; a PDK deck's placeholders filled from its spec as zoaf fills them.

With ``--old DIR ...`` (checkouts of older commits: ``git worktree add --detach DIR COMMIT``), the same decks are
read by that code too, side by side in one run: each tree in its own process, alternated round by round, so all
see the same load. Reported: the median CPU time over ``--n`` readings per deck and tree (the first reading in a
process included: a worker's deck load is one), and the load average before and after.

With ``--includes MIB ...``, a received deck instead (BENCHMARKS.md §1d, the reader's memory): one that includes a
generated file of each kind in :data:`KINDS` of each size, read the same way, the peak resident memory the reading
grew by (``ru_maxrss``) reported per byte of the include beside the CPU time.

    python benchmarks/parse_speed.py --n 7 --old ../zoaf-f1259111 ../zoaf-head
    python benchmarks/parse_speed.py --n 3 --old ../zoaf-head --includes 1 8
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DECKS = sorted(ROOT.glob("netlists/*.cir")) + sorted(ROOT.glob("netlists/sky130/*.cir"))

#: Run in a child whose ``sys.path`` starts with the tree to time: reads each deck once, prints CPU seconds.
_CHILD = """
import json, sys, time, tomllib
from pathlib import Path
from zoaf.netlist import Netlist
out = {}
for deck in sys.argv[1:]:
    spec = tomllib.loads(Path(deck).with_suffix(".toml").read_text())
    fill = {}
    if "pdk" in spec:
        from zoaf.pdk import placeholders
        fill = placeholders(spec["pdk"], spec.get("corner", "tt"))
    t0 = time.process_time()
    Netlist.read(deck, placeholders=fill)
    out[deck] = time.process_time() - t0
print(json.dumps(out))
"""


#: Run in a child: reads one received deck (no spec), prints CPU seconds and the peak resident KiB the read grew by.
_INCLUDE_CHILD = """
import json, resource, sys, time
from zoaf.netlist import Netlist
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.process_time()
Netlist.read(sys.argv[1])
print(json.dumps([time.process_time() - t0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base]))
"""


def _read_once(tree: Path, decks: list[Path]) -> dict[str, float]:
    """Each deck read once by the code of ``tree``, in a fresh process: CPU seconds per deck."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    done = subprocess.run([sys.executable, "-c", _CHILD, *map(str, decks)], env=env, cwd=tree, check=True,
                          capture_output=True, text=True)
    return json.loads(done.stdout)


def _read_include(tree: Path, deck: Path) -> tuple[float, float]:
    """``deck`` read by the code of ``tree`` in a fresh process: CPU seconds, peak KiB grown."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    done = subprocess.run([sys.executable, "-c", _INCLUDE_CHILD, str(deck)], env=env, cwd=tree, check=True,
                          capture_output=True, text=True)
    cpu, kib = json.loads(done.stdout)
    return cpu, kib


def _cards(make: Callable[[int], str], size: int) -> str:
    """Cards ``make(0)``, ``make(1)``... up to ``size`` characters."""
    out, n, i = [], 0, 0
    while n < size:
        out.append(make(i))
        n, i = n + len(out[-1]), i + 1
    return "".join(out)


#: The generated includes: kind -> (its text of about ``size`` characters, the deck's line that reads it).
KINDS: dict[str, tuple[Callable[[int], str], str]] = {
    "comment lines of 60 characters": (lambda size: _cards(lambda i: f"* {i:057d}\n", size), ".include big.inc"),
    "`*` lines": (lambda size: "*\n" * (size // 2), ".include big.inc"),
    "`.param pN = N.5e-6` lines": (lambda size: _cards(lambda i: f".param p{i} = {i}.5e-6\n", size),
                                   ".include big.inc"),
    "`.model` cards, six `+` lines each": (
        lambda size: _cards(lambda i: f".model m{i} nmos level=1\n" + "+ vto=0.4 kp=1e-4 gamma=0.4 phi=0.6\n" * 6,
                            size), ".include big.inc"),
    "`.subckt` bodies of six lines": (
        lambda size: _cards(lambda i: f".subckt s{i} a b\nr1 a c 1k\nc1 c b 1p\nr2 c d 2k\nc2 d b 2p\n.ends\n", size),
        ".include big.inc"),
    "`.lib` file, 8 `.param`s per section, one read": (
        lambda size: _cards(lambda i: f".lib s{i}\n" + "".join(f".param q{k}_{i} = {{w1*{k}}}\n" for k in range(8))
                            + ".endl\n", size), ".lib big.inc s0"),
}


def _include_decks(folder: Path, sizes: list[float]) -> dict[str, Path]:
    """A deck per kind and size (MiB) in ``folder``, each with its include: label -> deck."""
    decks = {}
    for k, (kind, (text, line)) in enumerate(KINDS.items()):
        for mib in sizes:
            sub = folder / f"{k}-{mib}"
            sub.mkdir()
            (sub / "big.inc").write_text(text(int(mib * 2**20)))
            (sub / "t.cir").write_text(f"t\n.param w1=1u\n{line}\nr1 a 0 {{w1}}\nv1 a 0 1\n.op\n.end\n")
            decks[f"{kind}, {mib:g} MiB"] = sub / "t.cir"
    return decks


def includes(trees: dict[str, Path], sizes: list[float], n: int) -> None:
    """The table of ``--includes``: median CPU s and peak bytes grown per byte of the include, per tree."""
    load0 = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        decks = _include_decks(Path(tmp), sizes)
        runs: dict[tuple[str, str], list[tuple[float, float]]] = {(d, t): [] for d in decks for t in trees}
        for _ in range(n):
            for label, deck in decks.items():
                for name, tree in trees.items():
                    runs[(label, name)].append(_read_include(tree, deck))
        sizes_of = {label: (deck.parent / "big.inc").stat().st_size for label, deck in decks.items()}
    names = list(trees)
    print(f"median CPU s and peak bytes grown per byte of the include over {n} processes; load average "
          f"{load0:.1f} -> {os.getloadavg()[0]:.1f}\n")
    print("| include | " + " | ".join(names + [f"{m} / this tree (CPU)" for m in names[1:]]) + " |")
    print("|---|" + "---:|" * (2 * len(names) - 1))
    for label in decks:
        cpu = [statistics.median(c for c, _ in runs[(label, m)]) for m in names]
        mem = [statistics.median(k for _, k in runs[(label, m)]) * 1024 / sizes_of[label] for m in names]
        cells = [f"{c:.2f} s, {b:.1f}" for c, b in zip(cpu, mem)] + [f"{c / cpu[0]:.2f}x" for c in cpu[1:]]
        print(f"| {label} | " + " | ".join(cells) + " |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=5, help="readings per deck and tree (one process each)")
    ap.add_argument("--old", type=Path, nargs="+", default=[], help="checkouts of older code, read side by side")
    ap.add_argument("--decks", type=Path, nargs="+", default=DECKS)
    ap.add_argument("--includes", type=float, nargs="+", metavar="MIB",
                    help="instead: decks that include a generated file of each kind, of these sizes")
    args = ap.parse_args()
    decks = [d.resolve() for d in args.decks]
    trees = {"this tree": ROOT, **{str(old): old.resolve() for old in args.old}}
    if args.includes:
        includes(trees, args.includes, args.n)
        return
    load0 = os.getloadavg()[0]
    times: dict[str, dict[str, list[float]]] = {name: {str(d): [] for d in decks} for name in trees}
    for _ in range(args.n):
        for name, tree in trees.items():
            for deck, t in _read_once(tree, decks).items():
                times[name][deck].append(t)
    load1 = os.getloadavg()[0]
    names = list(trees)
    print(f"median CPU ms per read over {args.n} processes; load average {load0:.1f} -> {load1:.1f}\n")
    print("| deck | " + " | ".join(names + [f"{n} / this tree" for n in names[1:]]) + " |")
    print("|---|" + "---:|" * (2 * len(names) - 1))
    for d in decks:
        med = [statistics.median(times[n][str(d)]) * 1e3 for n in names]
        cells = [f"{m:.0f}" for m in med] + [f"{m / med[0]:.2f}x" for m in med[1:]]
        print(f"| {d.relative_to(ROOT)} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()

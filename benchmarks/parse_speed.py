"""CPU time to read each benchmark deck (``Netlist.read``: the include walk and its checks, the deck's lines, its
design variables' defaults in the included files), as ``zoaf check``, each worker's deck load, corners, yield and
sensitivity pay it; a PDK deck's placeholders filled from its spec as zoaf fills them.

With ``--old DIR ...`` (checkouts of older commits: ``git worktree add --detach DIR COMMIT``), the same decks are
read by that code too, side by side in one run: each tree in its own process, alternated round by round, so all
see the same load. Reported: the median CPU time over ``--n`` readings per deck and tree (the first reading in a
process included: a worker's deck load is one), and the load average before and after.

    python benchmarks/parse_speed.py --n 7 --old ../zoaf-f1259111 ../zoaf-head
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
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


def _read_once(tree: Path, decks: list[Path]) -> dict[str, float]:
    """Each deck read once by the code of ``tree``, in a fresh process: CPU seconds per deck."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    done = subprocess.run([sys.executable, "-c", _CHILD, *map(str, decks)], env=env, cwd=tree, check=True,
                          capture_output=True, text=True)
    return json.loads(done.stdout)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=5, help="readings per deck and tree (one process each)")
    ap.add_argument("--old", type=Path, nargs="+", default=[], help="checkouts of older code, read side by side")
    ap.add_argument("--decks", type=Path, nargs="+", default=DECKS)
    args = ap.parse_args()
    decks = [d.resolve() for d in args.decks]
    trees = {"this tree": ROOT, **{str(old): old.resolve() for old in args.old}}
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

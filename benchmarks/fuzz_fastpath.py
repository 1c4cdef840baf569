"""Differential fuzzer for the fast path: in-place ``alter`` (:mod:`zoaf.fastpath`) against ``reset``, bit for bit.

Each deck is small, random and seeded (generic models only): R/C/L values and V/I sources' ``dc``/``ac`` as
``{expressions}``, level-1 and BSIM4 MOSFETs (``netlists/models/generic_bsim4.lib``), diodes, BJTs, parametrized
subcircuits nested 1-3 deep (header defaults, body ``.param``s, instance values that read the caller's names, each
other and the defaults, ``m=``), ``.param`` chains with ``.func``, ternaries, comparisons, ``&& || !``, powers of
negative and zero bases, ``nint``/``int``/``floor``/``ceil`` of halves, ``min``/``max``/``pwr``/``pow``/``sqrt`` and
unit suffixes, ``.option scale``, ``.temp``, ``.ac``/``.dc`` with ``.meas`` cards and ``op`` in a ``.control`` block
(ngspice 39 has no ``.meas op``) reading node voltages and device currents. For each deck the driver walks 4-6
random sizings of its design variables in one session with the fast path and in one with ``reset`` only, and every
result must be equal, bit for bit; with ``--batch K`` every K-th deck is also compared with ``ngspice -b`` at REL
1e-12 (as ``tests/test_fidelity.py``); ``--minimize I`` cuts deck I to the lines its mismatch needs.

    nice -n 19 python benchmarks/fuzz_fastpath.py --decks 3000 --seed 4 --batch 20
    python benchmarks/fuzz_fastpath.py --decks 1 --seed 1 --show 17     # print deck 17 of seed 1

Prints one line per mismatch (seed, deck index, first differing result) and the counts at the end; exit 1 when any
deck mismatched.
"""
from __future__ import annotations

import argparse
import json
import math
import subprocess
import random
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "netlists" / "models" / "generic_bsim4.lib"
REL = 1e-12


# ---------------------------------------------------------------------------------------------- the generator
@dataclass
class _Deck:
    rng: random.Random
    design: dict[str, float] = field(default_factory=dict)   # design variable -> its default
    lines: list[str] = field(default_factory=list)
    subckts: list[str] = field(default_factory=list)          # definitions, innermost first
    nodes: int = 0

    def node(self) -> str:
        self.nodes += 1
        return f"n{self.nodes}"


def _expr(rng: random.Random, names: list[str], scale: str) -> str:
    """A random numparam expression over ``names`` whose value is positive, times ``scale``: arithmetic, functions,
    comparisons (1/0), ``&& || !``, ternaries (nested, a signed branch), powers of negative and zero bases, the
    rounding of halves (a design value of 1.5 or 0.25 makes one), ``.func`` ``f1``."""
    a, b = rng.choice(names), rng.choice(names)
    forms = [f"{a}", f"{a}*{b}/({b}+1)", f"max({a}, {b}/2)", f"min({a}, 2*{b})+0.1", f"sqrt({a}*{b}+1)",
             f"pwr({a}, 0.5)+{b}", f"({a} > {b} ? {a} : {b}+0.5)", f"abs({a}-{b})+0.2", f"f1({a}, {b})",
             f"{a}+{b}*1.5", f"floor({a}*3)/3+0.1",
             f"pwr({a}-{b}, 3)+0.1", f"({a}-{b})^3+20", f"({a}-1.5)^1.5+0.1", f"pow({a}, 1.5)", f"{a}**2+{b}",
             f"({a} > {b} ? 0 : {a})^0+{b}", f"({a} >= 1.5 && {b} < 2 ? {a} : {b})",
             f"({a} == {b} || {a} > 2 ? 1.2 : {a})", f"!({a} > {b})+{a}", f"{a}*({b} > 1.5)+0.2",
             f"({a} > 2 ? 1 : {a} < 1 ? 2 : {a})+0.1", f"({a} > {b} ? -1 : 1)+2", f"nint(2*{a}+0.5)/2+0.1",
             f"int(2*{a}+0.5)/2+0.1", f"ceil(2*{a}-0.5)/2+0.6", f"floor(2*{a}-0.5)/2+0.6"]
    return f"({rng.choice(forms)})*{scale}"


def _default(rng: random.Random) -> float:
    return round(rng.uniform(0.5, 3.0), rng.choice((0, 1, 3)))


def _subckts(d: _Deck, depth: int, names: list[str]) -> str:
    """Define nested parametrized subcircuits ``c1`` (outermost) .. ``c<depth>``; the name of the outer one."""
    inner = None
    for level in range(depth, 0, -1):
        rng, name = d.rng, f"c{level}"
        head = ["p", "q"] + (["s"] if rng.random() < 0.5 else [])
        body = [f".subckt {name} a b " + " ".join(f"{h}={_default(rng)}" for h in head)]
        if rng.random() < 0.6:
            body.append(f".param u{level}={{{_expr(rng, head, '1')}}}")
            head = head + [f"u{level}"]
        body.append(f"r1 a m {{{_expr(rng, head, '1k')}}}")
        body.append(f"c1 m 0 {{{_expr(rng, head, '1p')}}}")
        if inner is None:
            body.append(f"r2 m b {{{_expr(rng, head, '2k')}}}")
            if rng.random() < 0.5:
                body.append(f"d1 m 0 dmod area={{{_expr(rng, head, '1')}}}")
        else:
            # the caller's names (numparam reads them inside the new instance: a plan declines the shadowed ones)
            vals = [f"p={{{_expr(rng, head if rng.random() < 0.3 else names, '1')}}}"]
            if rng.random() < 0.7:
                vals.append(f"q={{{rng.choice(['p', 'q', 'p*2'] if rng.random() < 0.3 else names)}+0.5}}")
            if rng.random() < 0.15:
                vals.append(f"m={rng.choice([1, 2])}")
            rng.shuffle(vals)
            body.append(f"x1 m b {inner} " + " ".join(vals))
        body.append(".ends")
        d.subckts.append("\n".join(body))
        inner = name
    return inner


def _devices(d: _Deck, names: list[str], scaled: bool) -> list[str]:
    """Top-level devices between the supply node ``vdd`` and ground, each with an ammeter where its current is read."""
    rng, out = d.rng, []
    w, l = ("1", "1") if scaled else ("1e-6", "1u")      # under .option scale, lengths in microns
    if rng.random() < 0.7:
        n = d.node()
        out += [f"rm1 vdd {n} {{{_expr(rng, names, '5k')}}}",
                f"m1 {n} {n} 0 0 nmos_g w={{{_expr(rng, names, w)}}} l={{{_expr(rng, names, '0.3')}*{l}}}"]
    if rng.random() < 0.6:
        n = d.node()
        out += [f"rm2 vdd {n} {{{_expr(rng, names, '20k')}}}",
                f"m2 {n} {n} 0 0 nl1 w={{{_expr(rng, names, w)}}} l={{2*{l}}}"
                + (f" m={rng.choice([1, 2])}" if rng.random() < 0.3 else "")]
    if rng.random() < 0.5:
        n, e = d.node(), d.node()
        out += [f"rq vdd {n} {{{_expr(rng, names, '10k')}}}", f"vq {e} 0 dc 0", f"q1 {n} {n} {e} qmod"]
    if rng.random() < 0.5:
        n = d.node()
        out += [f"rd vdd {n} {{{_expr(rng, names, '3k')}}}", f"dd {n} 0 dmod"
                + (f" area={{{_expr(rng, names, '1')}}}" if rng.random() < 0.5 else "")]
    if rng.random() < 0.5:
        n = d.node()
        out += [f"ib vdd {n} dc {{{_expr(rng, names, '10u')}}}", f"rb {n} 0 {{{_expr(rng, names, '1k')}}}"]
    return out


def deck(seed: int, index: int) -> tuple[str, dict[str, float]]:
    """Deck ``index`` of ``seed``: its text and its design variables' defaults."""
    rng = random.Random(seed * 1_000_003 + index)
    d = _Deck(rng)
    design = [f"x{i}" for i in range(rng.randint(2, 4))]
    for name in design:
        d.design[name] = _default(rng)
    derived = []
    for i in range(rng.randint(0, 3)):
        derived.append(f"y{i}")
        d.lines.append(f".param y{i}={{{_expr(rng, design + derived[:-1], '1')}}}")
    names = design + derived
    scaled = rng.random() < 0.3
    top = _subckts(d, rng.randint(1, 3), names)
    unit = rng.choice(["1", "0.001k", "1e-6meg", "1000m", "1000mv"])     # 1 with a unit suffix (and a unit)
    d.lines = [f".param {k}={v}" for k, v in d.design.items()] + d.lines
    body = [f"vs vdd 0 dc {{{_expr(rng, names, unit) if rng.random() < 0.5 else 1.5}}} "
            f"ac {{{_expr(rng, names, '0.1') if rng.random() < 0.5 else 1}}}",
            f"xa vdd o1 {top} p={{{_expr(rng, names, '1')}}}"
            + (f" q={{{rng.choice(names)}}}" if rng.random() < 0.6 else "")
            + (f" m={rng.choice([1, 2])}" if rng.random() < 0.1 else ""),
            f"ro o1 0 {{{_expr(rng, names, '10k')}}}", f"lo o1 o2 {{{_expr(rng, names, '1u')}}}",
            f"co o2 0 {{{_expr(rng, names, '1p')}}}"]
    body += _devices(d, names, scaled)
    text = ["* zoaf fast-path fuzz deck", f".include {MODELS}", ".func f1(a, b) {a*b/(a+b)+0.1}",
            ".model nl1 nmos level=1 vto=0.5 kp=100u lambda=0.02", ".model dmod d is=1e-14 n=1.05 cj0=1p",
            ".model qmod npn bf=100 is=1e-16"]
    text += d.lines + d.subckts[::-1] + body
    if scaled:
        text.append(".option scale=1e-6")
    if rng.random() < 0.4:
        text.append(f".temp {rng.choice([0, 27, 60])}")
    text += _analyses(rng, body)
    return "\n".join(text + [".end", ""]), d.design


def _analyses(rng: random.Random, body: list[str]) -> list[str]:
    kinds = [rng.choice(["op", "ac", "dc"])]      # ngspice -b measures the last analysis' plot only
    out = [".save all"]                           # else ngspice -b saves nothing for vdb(o2) ("can't parse 'vd'")
    amm = [ln.split()[0] for ln in body if ln.startswith("v") and ln.split()[0] != "vs"]
    if "op" in kinds:
        out += [".control", "op", "let vo1 = v(o1)", "let is = i(vs)"] + \
            [f"let i{a} = i({a})" for a in amm] + ["set numdgt=15", f"print vo1 is {' '.join('i' + a for a in amm)}",
                                                  ".endc"]       # ngspice 39 has no .meas op
    if "ac" in kinds:
        out += [".ac dec 5 1k 1g", ".meas ac g1 find vdb(o2) at=1meg", ".meas ac gm max vm(o1)",
                ".meas ac pr find vp(o2) at=100meg"]
    if "dc" in kinds:
        out += [".dc vs 0.5 1.5 0.25", ".meas dc vd find v(o1) at=1", ".meas dc ia find i(vs) at=1.25"]
        out += [f".meas dc i{a} find i({a}) at=1.5" for a in amm]
    return out


# ------------------------------------------------------------------------------------------------- the driver
@dataclass
class Finding:
    deck: int
    kind: str            # "mismatch" (fast against reset) or "batch" (against ngspice -b)
    detail: str


def sizings(rng: random.Random, design: dict[str, float]) -> list[dict[str, float]]:
    """4-6 sizings: each changes one or more design variables by a random factor (some by a tiny step)."""
    walk, now = [], dict(design)
    for _ in range(rng.randint(4, 6)):
        for k in rng.sample(sorted(now), 1 if rng.random() < 0.7 else rng.randint(1, len(now))):
            now[k] = design[k] * (rng.choice([1 + 1e-9, 1.0001]) if rng.random() < 0.2 else rng.uniform(0.5, 2.0))
        walk.append(dict(now))
    return walk


def _outcome(run, *args) -> tuple[dict[str, float], str | None]:
    from zoaf.errors import ConvergenceError, MeasureError, SimulationError
    try:
        return run(*args), None
    except MeasureError as e:
        return dict(e.measures), "MeasureError"
    except (ConvergenceError, SimulationError) as e:
        return {}, type(e).__name__


def check(text: str, walk: list[dict[str, float]], folder: Path,
          batch: bool = False) -> tuple[str | None, int]:
    """(the first difference or None, sizings set in place) for one deck."""
    from zoaf.netlist import Netlist
    from zoaf.spice import SpiceSession, run_batch
    path = folder / "fuzz.cir"
    path.write_text(text)
    nl = Netlist.read(path)
    runs, in_place = [], 0
    for fast in (True, False):
        with SpiceSession(nl, fast=fast) as s:
            outs = []
            for values in walk:
                outs.append(_outcome(s.evaluate, values))
                in_place += fast and s._in_place
            runs.append(outs)
    for values, got, ref in zip(walk, *runs):
        if got != ref:
            diff = sorted(k for k in got[0].keys() | ref[0].keys() if got[0].get(k) != ref[0].get(k))
            return f"fast != reset at {values}: {diff[:3]} {got[1]}/{ref[1]}", in_place
    if batch:
        for values, got in zip(walk[:2], runs[0]):
            ref = _outcome(run_batch, nl.with_params(values))
            if got[1] != ref[1] or not all(math.isclose(got[0].get(k, math.nan), v, rel_tol=REL, abs_tol=1e-15)
                                           for k, v in ref[0].items()):
                return f"session != ngspice -b at {values}: {got} {ref}", in_place
    return None, in_place


def minimize(text: str, walk: list[dict[str, float]], folder: Path) -> str:
    """The deck with every line removed (one at a time, greedily) whose removal keeps its fast/reset mismatch (the same
    message: the same sizing, results and errors; another mismatch that a cut deck shows is not followed). Each
    trial runs in a process of its own: a deck ngspice fails to load leaves libngspice unable to load the next."""
    lines, before = text.splitlines(), []
    (folder / "trial.cir").write_text(text)
    want = subprocess.run([sys.executable, __file__, "--check", str(folder / "trial.cir"), json.dumps(walk)],
                          capture_output=True, text=True).stdout
    while lines != before:                      # until a pass removes nothing
        before, i = lines, 1                    # the title line stays
        while i < len(lines):
            trial = lines[:i] + lines[i + 1:]
            (folder / "trial.cir").write_text("\n".join(trial) + "\n")
            out = subprocess.run([sys.executable, __file__, "--check", str(folder / "trial.cir"),
                                  json.dumps(walk)], capture_output=True, text=True).stdout
            if out.startswith("fast") and out == want:
                lines = trial
            else:
                i += 1
    return "\n".join(lines) + "\n"


def fuzz(decks: int, seed: int, batch_every: int = 0, log=print) -> tuple[list[Finding], Counter]:
    """Run ``decks`` decks of ``seed``; the findings and counts (decks, sizings in place, errors, ...)."""
    from zoaf.errors import InputError, ParseError
    counts: Counter = Counter()
    findings = []
    with tempfile.TemporaryDirectory(prefix="zoaf-fuzz-") as tmp:
        for i in range(decks):
            text, design = deck(seed, i)
            walk = sizings(random.Random(seed * 7919 + i), design)
            try:
                diff, in_place = check(text, walk, Path(tmp), bool(batch_every) and i % batch_every == 0)
            except (InputError, ParseError) as e:
                counts["refused"] += 1
                log(f"deck {i}: refused: {e}")
                continue
            counts["decks"] += 1
            counts["sizings"] += len(walk)
            counts["in_place"] += in_place
            counts["planned"] += in_place > 0
            if diff:
                findings.append(Finding(i, "mismatch" if diff.startswith("fast") else "batch", diff))
                log(f"seed {seed} deck {i}: {diff}")
    counts.update(f.kind for f in findings)
    return findings, counts


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--decks", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batch", type=int, default=0, metavar="K", help="every K-th deck against ngspice -b too")
    ap.add_argument("--show", type=int, metavar="I", help="print deck I of the seed and its sizings, run nothing")
    ap.add_argument("--check", nargs=2, metavar=("DECK", "WALK"), help=argparse.SUPPRESS)   # minimize's trials
    ap.add_argument("--minimize", type=int, metavar="I", help="print deck I of the seed cut to the lines its "
                    "mismatch needs")
    a = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    if a.show is not None:
        text, design = deck(a.seed, a.show)
        print(text + "\n* sizings: " + repr(sizings(random.Random(a.seed * 7919 + a.show), design)))
        return 0
    if a.check:
        print(check(Path(a.check[0]).read_text(), json.loads(a.check[1]), Path(a.check[0]).parent)[0])
        return 0
    if a.minimize is not None:
        text, design = deck(a.seed, a.minimize)
        walk = sizings(random.Random(a.seed * 7919 + a.minimize), design)
        with tempfile.TemporaryDirectory(prefix="zoaf-fuzz-") as tmp:
            print(minimize(text, walk, Path(tmp)) + "* sizings: " + repr(walk))
        return 0
    findings, counts = fuzz(a.decks, a.seed, a.batch)
    print(" ".join(f"{k}={counts[k]}" for k in ("decks", "planned", "sizings", "in_place", "refused",
                                                "mismatch", "batch")))
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())

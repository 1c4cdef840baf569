"""Monte Carlo yield math (pure): per-sample draws, the Wilson interval, spec limits, mean/sigma/Cpk.

Sample ``i`` of seed ``s`` is a function of ``(s, i)`` alone, so it is the same whatever worker runs it, in
whatever order, and a yield run resumes (and caches) exactly like an optimization. Two sources of variation:

* ``normal``: ``.param``s zoaf draws, ``default_rng([s, i])``'s standard normals (generic model cards with
  Pelgrom terms);
* ``section``: a PDK library section whose statistical models ngspice draws itself (sky130's ``mc``: its
  ``AGAUSS`` terms are evaluated while the deck is parsed). ngspice's generator is seeded from the time and
  process at start-up and advances with every parse; zoaf sends ``setseed`` with :func:`ngspice_seed` right
  before the ``reset`` that re-parses the deck for the sample, which makes its draws a function of ``(s, i)``.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from .. import units
from ..errors import InputError

if TYPE_CHECKING:                       # zoaf.spec reads [montecarlo] with this module
    from ..spec import Constraint

#: Two-sided 95%: the standard normal's 0.975 quantile.
Z95 = 1.959963984540054
#: A sample sigma below this fraction of the measure's magnitude is floating-point noise (ngspice prints 7
#: significant digits; a constant computed 50 ways differs in its last bits), taken as zero spread.
_NOISE = 1e-12


@dataclass(frozen=True)
class MonteCarlo:
    """The spec's ``[montecarlo]``: ``.param``s drawn standard normal per sample (the model cards scale them:
    global process sigma, Pelgrom ``A_VT / sqrt(W L)`` per device), and/or a PDK statistical section with the
    ``.param`` lines (its switches) added to the deck for the samples."""

    normal: tuple[str, ...] = ()
    section: str | None = None
    params: tuple[tuple[str, float], ...] = ()

    def describe(self) -> str:
        """What varies, in words (under the yield table, in report.md)."""
        parts = [f"{len(self.normal)} .params drawn by zoaf"] if self.normal else []
        if self.section is not None:
            switches = ", ".join(f"{k}={v:g}" for k, v in self.params)
            parts.append(f"PDK section {self.section}" + (f" ({switches})" if switches else "") + " drawn by ngspice")
        return "; ".join(parts)


#: The keys of ``[montecarlo]`` (read in any case: the spec lowers them).
KEYS = ("normal", "section", "params")


def parse_montecarlo(where: str, table: Any) -> MonteCarlo:
    key = f"{where}: montecarlo"
    if not isinstance(table, Mapping):
        raise InputError(f"{key}: must be a table ([montecarlo])")
    extra = set(table) - set(KEYS)
    if extra:
        raise InputError(f"{key}: unknown key(s) {', '.join(sorted(extra))}; expected {', '.join(KEYS)}")
    names = table.get("normal", [])
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise InputError(f"{key}.normal: must be a list of .param names")
    twice = sorted({n.lower() for n in names if [m.lower() for m in names].count(n.lower()) > 1})
    if twice:            # one draw would replace the other: the samples varied fewer .params than they said
        raise InputError(f"{key}.normal: {twice[0]!r} is named twice")
    section = table.get("section")
    if section is not None and (not isinstance(section, str) or not re.fullmatch(r"[A-Za-z0-9_]+", section)):
        raise InputError(f"{key}.section: must be a PDK library section name like \"mc\", got {section!r}")
    params = table.get("params", {})
    if not isinstance(params, Mapping):
        raise InputError(f"{key}.params: must be a table of .param values, e.g. {{ mc_mm_switch = 1 }}")
    bad = [k for k in params if not re.fullmatch(r"[A-Za-z_]\w*", k)]
    if bad:
        raise InputError(f"{key}.params: {bad[0]!r} is not a .param name")
    values = tuple((k.lower(), units.parse_spec(v, what=f"{key}.params.{k}")) for k, v in params.items())
    if values and section is None:
        raise InputError(f"{key}.params: set with a PDK statistical section only (section = \"mc\")")
    if not names and section is None:
        raise InputError(f"{key}: names nothing to vary: give normal = [.param names] and/or section = "
                         "\"<PDK statistical section>\"")
    return MonteCarlo(tuple(n.lower() for n in names), None if section is None else section.lower(), values)


def draws(seed: int, sample: int, names: Sequence[str]) -> dict[str, float]:
    """Sample ``sample``'s standard-normal values, independent of every other sample's."""
    z = np.random.default_rng([int(seed), int(sample)]).standard_normal(len(names))
    return {n: float(v) for n, v in zip(names, z)}


def ngspice_seed(seed: int, sample: int) -> int:
    """The ``setseed`` value of sample ``sample``: in 1 .. 2**31 - 1 (ngspice takes a positive C int)."""
    word = int(np.random.SeedSequence([int(seed), int(sample), 1]).generate_state(1)[0])
    return word % (2**31 - 1) + 1


def wilson(passed: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion: sound at 0 and n passes, unlike p +- z sqrt(p(1-p)/n)."""
    if n <= 0:
        return (0.0, 1.0)
    p = passed / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    # At 0 (n) passes the bound is exactly 0 (1); centre - half rounds to 6.9e-18 at n = 50, which yield.json
    # then printed as a lower bound above zero.
    return (0.0 if passed <= 0 else max(0.0, centre - half), 1.0 if passed >= n else min(1.0, centre + half))


@dataclass(frozen=True)
class Limits:
    """A measure's spec limits from the objective's constraints (None: no limit on that side)."""

    lsl: float | None = None
    usl: float | None = None


def limits(constraints: Sequence[Constraint]) -> dict[str, Limits]:
    out: dict[str, Limits] = {}
    for c in constraints:
        lim = out.get(c.measure, Limits())
        if c.op in (">=", ">"):
            lim = Limits(c.bound if lim.lsl is None else max(lim.lsl, c.bound), lim.usl)
        else:
            lim = Limits(lim.lsl, c.bound if lim.usl is None else min(lim.usl, c.bound))
        out[c.measure] = lim
    return out


@dataclass(frozen=True)
class MeasureStats:
    name: str
    n: int
    mean: float
    sigma: float
    limits: Limits
    cpk: float | None            # min over the given sides of (USL - mean) / 3 sigma, (mean - LSL) / 3 sigma


def measure_stats(name: str, values: Sequence[float], lim: Limits) -> MeasureStats:
    v = np.asarray([x for x in values if math.isfinite(x)], dtype=float)
    if len(v) == 0:
        return MeasureStats(name, 0, math.nan, math.nan, lim, None)
    mean, sigma = float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0
    if sigma <= _NOISE * max(abs(mean), float(np.max(np.abs(v)))):
        sigma = 0.0       # a measure the draws do not move: its rounding noise made Cpk 1e15 here, inf there
    sides = [s for s in ((lim.usl - mean) if lim.usl is not None else None,
                         (mean - lim.lsl) if lim.lsl is not None else None) if s is not None]
    cpk = None if not sides else (min(sides) / (3 * sigma) if sigma > 0 else math.copysign(math.inf, min(sides)))
    return MeasureStats(name, len(v), mean, sigma, lim, cpk)


@dataclass(frozen=True)
class Verdict:
    """One sample judged against the spec, with why it fails: a sample that simulated but lacks a measure the
    spec needs fails too, and says so (it was counted as a plain fail, and its measure's statistics silently
    left it out)."""

    sample: int
    simulated: bool
    missing: tuple[str, ...] = ()       # measures the spec needs that the sample lacks
    failed: tuple[str, ...] = ()        # constraints it misses, as written (``vhalf <= 900m``)
    error: str | None = None            # the simulation's error (why it failed, or what it could not measure)

    @property
    def passed(self) -> bool:
        return self.simulated and not self.missing and not self.failed

    def as_json(self) -> dict[str, Any]:
        return {"sample": self.sample, "simulated": self.simulated, "failed": list(self.failed),
                "missing": list(self.missing), "error": self.error}


def verdict(sample: int, simulated: bool, measures: Mapping[str, float], needed: Sequence[str],
            constraints: Sequence[Constraint], error: str | None = None) -> Verdict:
    """Judge one sample: every ``needed`` measure taken and every constraint met."""
    if not simulated:
        return Verdict(sample, False, error=error)
    missing = tuple(m for m in needed if not math.isfinite(measures.get(m, math.nan)))
    failed = tuple(str(c) for c in constraints if c.measure not in missing and c.value(measures.get(c.measure)) > 0)
    return Verdict(sample, True, missing, failed, error if missing else None)


@dataclass(frozen=True)
class YieldSummary:
    samples: int
    passed: int
    failed_sims: int
    ci: tuple[float, float]
    stats: tuple[MeasureStats, ...]
    incomplete: int = 0                                  # simulated, but lacking a measure the spec needs
    by_spec: tuple[tuple[str, int, int], ...] = ()       # per constraint: samples that miss it, that lack it
    failing: tuple[Verdict, ...] = ()                    # every failing sample, in order

    @property
    def yield_(self) -> float:
        return self.passed / self.samples if self.samples else math.nan

    def first(self, simulated: bool) -> Verdict | None:
        """The first failed simulation (``simulated`` False) or the first sample lacking a measure (True)."""
        return next((v for v in self.failing if v.simulated == simulated and (v.missing or not simulated)), None)

    def lines(self) -> list[str]:
        """The verdict in words (under the yield table, in report.md): the yield with its interval, how many
        samples fail and why (per constraint), the first reason a sample was not measured or not simulated."""
        spec_fails = self.samples - self.passed - self.failed_sims - self.incomplete
        out = [f"yield {self.yield_:.1%} ({self.passed}/{self.samples} pass; 95% Wilson interval {self.ci[0]:.1%} .. "
               f"{self.ci[1]:.1%})"]
        if self.passed < self.samples:
            out.append(f"fails: {spec_fails} miss a spec, {self.incomplete} simulated without a measure the spec "
                       f"needs, {self.failed_sims} failed simulations")
        if not self.by_spec:
            out.append("the objective has no constraint: a sample passes when its measures are taken")
        per = [f"{c}: {k} miss" + (f", {u} unmeasured" if u else "") for c, k, u in self.by_spec if k or u]
        if per:
            out.append("by constraint: " + "; ".join(per))
        for what, v in (("lacking a measure", self.first(True)), ("failed simulation", self.first(False))):
            if v is not None:
                out.append(f"first {what}: sample {v.sample}"
                           + (f" ({', '.join(v.missing)})" if v.missing else "") + f": {v.error or 'no error text'}")
        return out

    def as_json(self) -> dict[str, Any]:
        """Plain JSON: a non-finite value (the Cpk of a measure with no spread, the mean of one never measured)
        is null, since ``Infinity``/``NaN`` are not JSON and strict readers (jq, JavaScript) reject the file."""
        first = {k: (None if v is None else v.as_json()) for k, v in
                 (("first_failed_simulation", self.first(False)), ("first_incomplete", self.first(True)))}
        return {"samples": self.samples, "passed": self.passed, "failed_simulations": self.failed_sims,
                "incomplete_samples": self.incomplete,
                "spec_failures": self.samples - self.passed - self.failed_sims - self.incomplete,
                "yield": _finite(self.yield_), "ci95": list(self.ci), **first,
                "constraints": {c: {"missed": k, "unmeasured": u} for c, k, u in self.by_spec},
                "failing_samples": [v.as_json() for v in self.failing],
                "measures": {s.name: {"n": s.n, "mean": _finite(s.mean), "sigma": _finite(s.sigma),
                                      "lsl": s.limits.lsl, "usl": s.limits.usl, "cpk": _finite(s.cpk)}
                             for s in self.stats}}


def _finite(v: float | None) -> float | None:
    return v if v is not None and math.isfinite(v) else None


def summarize(verdicts: Sequence[Verdict], measures: Sequence[Mapping[str, float]], shown: Sequence[str],
              constraints: Sequence[Constraint]) -> YieldSummary:
    """Yield with its 95% Wilson interval, why the failing samples fail (per constraint: missed or not
    measured), and each shown measure's statistics over the samples that have it (``measures``: of the
    simulated samples)."""
    k, n = sum(v.passed for v in verdicts), len(verdicts)
    lims = limits(constraints)
    stats = tuple(measure_stats(m, [s[m] for s in measures if m in s], lims.get(m, Limits())) for m in shown)
    by_spec = tuple((str(c), sum(str(c) in v.failed for v in verdicts), sum(c.measure in v.missing for v in verdicts))
                    for c in constraints)
    return YieldSummary(n, k, sum(not v.simulated for v in verdicts), wilson(k, n), stats,
                        sum(bool(v.missing) for v in verdicts), by_spec, tuple(v for v in verdicts if not v.passed))

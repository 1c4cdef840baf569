"""Comparison statistics, plots and ``report.md``/``report.html`` from a ``zoaf compare`` directory.

Everything here is computed from the run directories alone (``DIR/<objective>/<method>/seed-<k>/history.db``),
plus ``DIR/compare.json`` when present (the command, the objective's measure and unit, versions). Definitions:

* **final FoM** of a run: its best evaluated FoM (lower is better; ``INFEASIBLE_OFFSET`` + violation when no
  point met the constraints).
* **best feasible objective**: the raw objective (the measure, in its unit) of the run's best *feasible* point;
  feasible FoMs are a monotone function of the objective, so this is the best feasible objective value
  (EXPERIMENTS.md lesson 6: compare this, not penalized FoMs).
* **target**: the best (lowest) median final FoM among the baselines (every method but ``zoaf``).
* **simulations-to-target** of a run: the charged-simulation count at which its best-so-far FoM first reaches
  the target, +inf if never (shown ``>budget``); **seconds-to-target**: the wall time at that moment. Medians
  treat +inf as a value (a median of ``>budget`` means that most runs never reached the target).
* **overhead per simulation**: (wall time - simulator seconds) / charged simulations: what the method costs.
* **p**: two-sided Mann-Whitney U test of ZOAF's final FoMs against each baseline's.

Example:
    >>> md, html = write_report("runs/compare-two_stage_amp-20261201-120000")   # doctest: +SKIP
"""
from __future__ import annotations

import base64
import html
import json
import math
import platform
import re
import warnings
from dataclasses import dataclass, field
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from .errors import InputError
from .history import History, Record
from .plots import FomAxes
from .spec import INFEASIBLE_OFFSET

REFERENCE = "zoaf"
MANIFEST = "compare.json"
#: Stand-in for +inf inside quantile interpolation (inf - inf would give NaN); any interpolation that touched
#: it (above ``_HUGE``: no FoM comes near, they are < 1e3) maps back to +inf (NaN in plots).
_BIG = 1e300
_HUGE = 1e200


# -- one run -------------------------------------------------------------------------------------------------
@dataclass
class RunData:
    """The per-row arrays of one run, as the statistics need them."""

    method: str
    seed: int
    sims: np.ndarray            # charged simulations so far, after each row
    fom: np.ndarray             # FoM of each row (+inf: failed)
    wall: np.ndarray            # seconds since the run started, when the row came back
    seconds: np.ndarray         # simulator seconds of each row
    charged: np.ndarray         # bool
    feasible: np.ndarray        # bool: met the constraints (unconstrained problems: every finite FoM)
    objective: np.ndarray       # raw objective value of each row (NaN when none)
    budget: int
    complete: bool = True
    path: Path | None = None

    @classmethod
    def from_records(cls, records: Sequence[Record], *, method: str, seed: int, budget: int,
                     complete: bool = True, path: Path | None = None) -> "RunData":
        fom = np.array([r.fom for r in records], dtype=float)
        return cls(method, seed, np.cumsum([bool(r.charged) for r in records]).astype(int), fom,
                   np.array([r.wall for r in records], dtype=float),
                   np.array([r.outcome.seconds for r in records], dtype=float),
                   np.array([bool(r.charged) for r in records], dtype=bool),
                   np.array([np.isfinite(r.fom) and r.outcome.feasible is not False for r in records], dtype=bool),
                   np.array([np.nan if r.outcome.objective is None else r.outcome.objective for r in records],
                            dtype=float),
                   budget, complete, path)

    @property
    def nfev(self) -> int:
        return int(self.sims[-1]) if len(self.sims) else 0

    @property
    def best(self) -> np.ndarray:
        """Best-so-far FoM after each row."""
        return np.minimum.accumulate(self.fom) if len(self.fom) else self.fom

    @property
    def final(self) -> float:
        return float(self.fom.min()) if len(self.fom) else math.inf

    @property
    def is_feasible(self) -> bool:
        return bool(self.feasible.any())

    @property
    def best_feasible_objective(self) -> float:
        """Raw objective of the lowest-FoM feasible row (NaN when no row was feasible)."""
        if not self.feasible.any():
            return math.nan
        idx = np.flatnonzero(self.feasible)
        return float(self.objective[idx[np.argmin(self.fom[idx])]])

    @property
    def wall_total(self) -> float:
        return float(self.wall[-1]) if len(self.wall) else 0.0

    @property
    def sim_seconds(self) -> float:
        return float(self.seconds[self.charged].sum())

    @property
    def overhead_per_sim(self) -> float:
        return (self.wall_total - self.sim_seconds) / self.nfev if self.nfev else math.nan

    def to_target(self, target: float) -> tuple[float, float]:
        """(charged simulations, wall seconds) when the best-so-far FoM first reached ``target``; +inf if never."""
        hit = np.flatnonzero(self.best <= target)
        if not len(hit):
            return math.inf, math.inf
        return float(self.sims[hit[0]]), float(self.wall[hit[0]])

    def best_at_sims(self, n: np.ndarray) -> np.ndarray:
        """Best-so-far FoM after ``n`` charged simulations (+inf before the first finite one)."""
        return self._at(self.sims, n)

    def best_at_seconds(self, t: np.ndarray) -> np.ndarray:
        return self._at(self.wall, t)

    def _at(self, axis: np.ndarray, grid: np.ndarray) -> np.ndarray:
        idx = np.searchsorted(axis, grid, side="right") - 1
        best = np.concatenate([[math.inf], self.best])
        return best[np.maximum(idx, -1) + 1]


def load_run(path: str | Path, method: str | None = None, seed: int | None = None) -> RunData:
    """Read one run directory (``history.db``; ``result.json`` marks it complete)."""
    path = Path(path)
    db = path / "history.db"
    if not db.exists():
        raise InputError(f"{path}: not a run directory (no history.db)")
    with History(db) as h:
        meta, records = h.meta(), h.records()
    return RunData.from_records(records, method=method or meta.get("method", path.parent.name),
                                seed=seed if seed is not None else meta.get("seed", -1),
                                budget=int(meta.get("budget", 0)), complete=is_complete(path), path=path)


def is_complete(path: Path) -> bool:
    """A run directory whose run ended (``result.json``) other than by an interrupt (which writes one too)."""
    try:
        return json.loads((Path(path) / "result.json").read_text()).get("stop_reason") != "interrupted"
    except (OSError, ValueError, AttributeError):
        return False


# -- statistics ----------------------------------------------------------------------------------------------
def quartiles(values: Iterable[float]) -> tuple[float, float, float]:
    """(Q1, median, Q3), linear interpolation (numpy's default); +inf counts as the largest value."""
    v = np.asarray(list(values), dtype=float)
    v = v[~np.isnan(v)]
    if not len(v):
        return math.nan, math.nan, math.nan
    q = np.quantile(np.where(np.isinf(v) & (v > 0), _BIG, v), [0.25, 0.5, 0.75])
    return tuple(math.inf if x > _HUGE else float(x) for x in q)   # type: ignore[return-value]


def median(values: Iterable[float]) -> float:
    return quartiles(values)[1]


def mann_whitney(a: Sequence[float], b: Sequence[float]) -> float:
    """Two-sided Mann-Whitney U p-value of two samples (NaN when either is empty)."""
    from scipy.stats import mannwhitneyu

    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if not len(a) or not len(b):
        return math.nan
    a, b = np.where(np.isinf(a), _BIG, a), np.where(np.isinf(b), _BIG, b)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(mannwhitneyu(a, b, alternative="two-sided").pvalue)


def target_fom(finals: dict[str, Sequence[float]], reference: str = REFERENCE) -> float:
    """The best baseline's median final FoM (the reference's own when it is the only method)."""
    medians = {m: median(v) for m, v in finals.items() if len(v)}
    others = [v for m, v in medians.items() if m != reference]
    pool = others or list(medians.values())
    return min(pool) if pool else math.nan


@dataclass
class MethodStats:
    method: str
    runs: int
    q1: float
    median: float
    q3: float
    best: float
    worst: float
    objective_median: float       # best feasible objective, median over runs that found a feasible point
    feasible_rate: float
    sims_to_target: float         # median (+inf: most runs never reached it)
    sims_ratio: float             # this method's median / the reference's (> 1: the reference needs fewer)
    seconds_to_target: float
    seconds_ratio: float
    wall: float                   # median wall seconds per run
    overhead: float               # median optimizer seconds per simulation
    nfev: float                   # median charged simulations per run
    p_value: float                # Mann-Whitney vs the reference (NaN for the reference itself)


@dataclass
class ObjectiveSummary:
    name: str
    measure: str
    unit: str
    sense: str
    budget: int
    target: float
    methods: list[MethodStats]
    runs: dict[str, list[RunData]] = field(repr=False)
    incomplete: int = 0


def _ratio(num: float, den: float) -> float:
    if not (math.isfinite(den) and den > 0) or math.isnan(num):
        return math.nan
    return num / den


def summarize(name: str, runs: dict[str, list[RunData]], *, measure: str = "", unit: str = "", sense: str = "",
              reference: str = REFERENCE) -> ObjectiveSummary:
    """The statistics of one objective from its complete runs, per method (see the module docstring)."""
    runs = {m: [r for r in rs if r.complete] for m, rs in runs.items()}
    runs = {m: rs for m, rs in runs.items() if rs}
    finals = {m: [r.final for r in rs] for m, rs in runs.items()}
    target = target_fom(finals, reference)
    budget = max((r.budget for rs in runs.values() for r in rs), default=0)
    hits = {m: [r.to_target(target) for r in rs] for m, rs in runs.items()}
    ref_sims = median(h[0] for h in hits.get(reference, []))
    ref_secs = median(h[1] for h in hits.get(reference, []))
    stats = []
    for m, rs in runs.items():
        q1, med, q3 = quartiles(finals[m])
        objs = [r.best_feasible_objective for r in rs if r.is_feasible]
        sims, secs = median(h[0] for h in hits[m]), median(h[1] for h in hits[m])
        stats.append(MethodStats(
            m, len(rs), q1, med, q3, min(finals[m]), max(finals[m]), median(objs) if objs else math.nan,
            sum(r.is_feasible for r in rs) / len(rs), sims, _ratio(sims, ref_sims), secs, _ratio(secs, ref_secs),
            median(r.wall_total for r in rs), median(r.overhead_per_sim for r in rs), median(r.nfev for r in rs),
            math.nan if m == reference or reference not in finals else mann_whitney(finals[reference], finals[m])))
    return ObjectiveSummary(name, measure, unit, sense, budget, target, stats, runs)


# -- formatting ----------------------------------------------------------------------------------------------
COLUMNS = ("method", "runs", "median FoM", "IQR", "best", "worst", "best feasible objective", "feasible runs",
           "sims to target", f"x vs {REFERENCE}", "s to target", "wall / run", "overhead / sim", f"p vs {REFERENCE}")


def _g(v: float, digits: int = 4) -> str:
    return "—" if v is None or math.isnan(v) else ("inf" if math.isinf(v) else f"{v:.{digits}g}")


def _seconds(v: float) -> str:
    if math.isnan(v):
        return "—"
    return f"{v * 1e3:.3g} ms" if abs(v) < 1 else f"{v:.3g} s"


_PREFIXES = {-15: "f", -12: "p", -9: "n", -6: "µ", -3: "m", 0: "", 3: "k", 6: "M", 9: "G", 12: "T"}


def format_value(v: float, unit: str = "") -> str:
    """A measure in its unit: SI prefixes for plain SI units (``16.7 µW``, ``52.9 MHz``); plain numbers for dB,
    degrees, compound units (``m^2``, ``ppm/C``) and no unit."""
    if v is None or math.isnan(v):
        return "—"
    if not unit or not unit.isalpha() or unit in ("dB", "deg", "ppm") or not math.isfinite(v) or v == 0:
        return f"{v:.4g} {unit}".strip()
    exp = int(math.floor(math.log10(abs(v)) / 3) * 3)
    exp = min(max(exp, -15), 12)
    return f"{v / 10.0 ** exp:.4g} {_PREFIXES[exp]}{unit}"


def table_rows(s: ObjectiveSummary) -> list[list[str]]:
    """One row of strings per method, in ``COLUMNS`` order (shared by the terminal, Markdown and HTML)."""
    rows = []
    ref_sims = next((m.sims_to_target for m in s.methods if m.method == REFERENCE), math.nan)
    for m in s.methods:
        never = f">{s.budget}"
        sims = never if math.isinf(m.sims_to_target) else _g(m.sims_to_target)
        if math.isinf(m.sims_ratio) or (math.isinf(m.sims_to_target) and math.isfinite(ref_sims) and ref_sims > 0):
            ratio = f">{s.budget / ref_sims:.2g}x"
        else:
            ratio = "—" if math.isnan(m.sims_ratio) else f"{m.sims_ratio:.2g}x"
        secs = "never" if math.isinf(m.seconds_to_target) else _seconds(m.seconds_to_target)
        rows.append([m.method, str(m.runs), _g(m.median), f"{_g(m.q1)} – {_g(m.q3)}", _g(m.best), _g(m.worst),
                     format_value(m.objective_median, s.unit), f"{m.feasible_rate:.0%}", sims, ratio, secs,
                     _seconds(m.wall), _seconds(m.overhead), "—" if math.isnan(m.p_value) else f"{m.p_value:.3g}"])
    return rows


# -- plots -----------------------------------------------------------------------------------------------------
def _bands(curves: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    # Order statistics, no interpolation: the mean of an infeasible FoM (100 + violation) and a feasible one
    # is no FoM any run had, and would be drawn in the feasible panel.
    q = np.quantile(np.where(np.isinf(curves), _BIG, curves), [0.25, 0.5, 0.75], axis=0, method="inverted_cdf")
    q[q > _HUGE] = np.nan
    return q[0], q[1], q[2]


def _color(i: int, method: str) -> str:
    return "black" if method == REFERENCE else f"C{i}"


def plot_summary(s: ObjectiveSummary, outdir: Path) -> list[Path]:
    """Three PNGs: median best-so-far vs simulations and vs seconds (IQR bands), final-FoM strip/box plot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = [outdir / f"{s.name}-vs-simulations.png", outdir / f"{s.name}-vs-seconds.png",
             outdir / f"{s.name}-final.png"]
    budget = max(s.budget, max((r.nfev for rs in s.runs.values() for r in rs), default=1), 1)
    walls = [r.wall[r.wall > 0] for rs in s.runs.values() for r in rs]
    t_lo = min((w.min() for w in walls if len(w)), default=1e-3)
    t_hi = max((w.max() for w in walls if len(w)), default=1.0)
    grids = {"sims": np.arange(1, budget + 1),
             "secs": np.geomspace(max(t_lo, 1e-6), max(t_hi, t_lo * 1.01, 1e-6), 300)}
    for path, key in ((paths[0], "sims"), (paths[1], "secs")):
        grid = grids[key]
        bands = {}
        for m, rs in s.runs.items():
            curves = np.array([r.best_at_sims(grid) if key == "sims" else r.best_at_seconds(grid) for r in rs])
            bands[m] = _bands(curves)
        fig = plt.figure(figsize=(7.5, 5.0), dpi=110)
        fa = FomAxes(fig, [x for b in bands.values() for q in b for x in q] + [s.target])
        for i, (m, (lo, med, hi)) in enumerate(bands.items()):
            c = _color(i, m)
            for (ax, y_med), (_, y_lo), (_, y_hi) in zip(fa.split(med), fa.split(lo), fa.split(hi)):
                ax.plot(grid, y_med, color=c, lw=2.0 if m == REFERENCE else 1.4, drawstyle="steps-post",
                        label=f"{m} ({len(s.runs[m])} runs)")
                ax.fill_between(grid, y_lo, y_hi, color=c, alpha=0.15, lw=0, step="post")
        if math.isfinite(s.target):
            for ax, y in fa.split(np.array([s.target])):
                if np.isfinite(y[0]):
                    ax.axhline(y[0], color="C3", lw=0.9, ls=":", label="target (best baseline median)")
        for ax in fa.axes:
            ax.grid(alpha=0.3, which="both", lw=0.5)
            if key == "secs":
                ax.set_xscale("log")
        if fa.main is not None:
            fa.main.set_ylabel("best feasible FoM so far (lower is better)")
        fa.bottom.set_xlabel("simulations" if key == "sims" else "wall seconds (log)")
        handles, labels = [], []
        for ax in fa.axes:
            for h, lab in zip(*ax.get_legend_handles_labels()):
                if lab not in labels:
                    handles.append(h)
                    labels.append(lab)
        fa.axes[0].legend(handles, labels, fontsize=7, loc="upper right")
        fa.axes[0].set_title(f"{s.name}: median best-so-far FoM over runs, IQR band", fontsize=10)
        fig.subplots_adjust(left=0.12, right=0.98, top=0.93, bottom=0.1, hspace=0.08)
        fig.savefig(path)
        plt.close(fig)
    names = list(s.runs)
    data = [[r.final for r in s.runs[m]] for m in names]
    fig = plt.figure(figsize=(7.5, 4.5), dpi=110)
    fa = FomAxes(fig, [x for d in data for x in d])
    for ax in fa.axes:
        for i, d in enumerate(data):
            (_, y), = [(a, y) for a, y in fa.split(np.array(d)) if a is ax]
            shown = y[np.isfinite(y)]
            if len(shown) >= 3:
                ax.boxplot([shown], positions=[i + 1], widths=0.5, showfliers=False)
            jitter = np.linspace(-0.12, 0.12, len(d)) if len(d) > 1 else np.zeros(1)
            ax.scatter(i + 1 + jitter, y, s=12, color=_color(i, names[i]), alpha=0.8, zorder=3)
        ax.grid(alpha=0.3, axis="y", lw=0.5)
        ax.set_xlim(0.4, len(names) + 0.6)
    fa.bottom.set_xticks(range(1, len(names) + 1), names)
    if fa.main is not None:
        fa.main.set_ylabel("final FoM (lower is better)")
    fa.axes[0].set_title(f"{s.name}: final FoM of each run after {s.budget} simulations", fontsize=10)
    fig.subplots_adjust(left=0.12, right=0.98, top=0.92, bottom=0.08, hspace=0.08)
    fig.savefig(paths[2])
    plt.close(fig)
    return paths


# -- environment (footer) ------------------------------------------------------------------------------------
def versions() -> dict[str, str]:
    """Versions of zoaf, its numeric stack, the optional baselines' libraries and ngspice (without importing)."""
    from . import __version__

    found = {"zoaf": __version__, "python": platform.python_version()}
    for pkg in ("numpy", "scipy", "matplotlib", "torch", "botorch", "gpytorch", "cma", "PySpice"):
        try:
            found[pkg] = importlib_metadata.version(pkg)
        except importlib_metadata.PackageNotFoundError:
            pass
    found["ngspice"] = ngspice_version()
    return found


def ngspice_version() -> str:
    import shutil
    import subprocess

    exe = shutil.which("ngspice")
    if exe is None:
        return "not found"
    try:
        text = subprocess.run([exe, "-v"], capture_output=True, text=True, timeout=10, stdin=subprocess.DEVNULL).stdout
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    m = re.search(r"ngspice-?\s*([\w.+-]+)", text)
    return m.group(1) if m else "unknown"


def machine() -> dict[str, Any]:
    import os

    return {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count()}


def method_settings(name: str) -> dict[str, Any]:
    """A method's default settings: the fields of its config dataclass (ZOAF's ``ZOAFConfig``)."""
    from . import registry
    from .optim import settings

    try:
        cls = registry.get(name)
    except Exception as e:  # noqa: BLE001 - a missing optional dependency must not stop a report
        return {"unavailable": f"{type(e).__name__}: {e}"}
    if name == "zoaf":
        from .zo.config import ZOAFConfig

        return settings(ZOAFConfig())
    return cls.describe()


# -- the report ----------------------------------------------------------------------------------------------
def _seed_of(path: Path) -> int | None:
    m = re.fullmatch(r"seed-(\d+)", path.name)
    return int(m.group(1)) if m else None


def read_manifest(root: Path) -> dict[str, Any]:
    p = root / MANIFEST
    return json.loads(p.read_text()) if p.exists() else {}


def load_comparison(root: str | Path) -> list[ObjectiveSummary]:
    """Every objective's summary from ``root/<objective>/<method>/seed-<k>/`` run directories."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root}: no such directory")
    manifest = read_manifest(root)
    info = manifest.get("objectives", {})
    order = {m: i for i, m in enumerate([REFERENCE, *manifest.get("methods", [])])}
    summaries = []
    obj_dirs = sorted((d for d in root.iterdir() if d.is_dir()),
                      key=lambda d: (list(info).index(d.name) if d.name in info else len(info), d.name))
    for od in obj_dirs:
        runs: dict[str, list[RunData]] = {}
        incomplete = 0
        for md in sorted((d for d in od.iterdir() if d.is_dir()), key=lambda d: (order.get(d.name, 99), d.name)):
            seeds = sorted(((s, d) for d in md.iterdir() if (s := _seed_of(d)) is not None and
                            (d / "history.db").exists()), key=lambda t: t[0])
            for seed, sd in seeds:
                run = load_run(sd, md.name, seed)
                incomplete += not run.complete
                runs.setdefault(md.name, []).append(run)
        if not runs:
            continue
        o = info.get(od.name, {})
        s = summarize(od.name, runs, measure=o.get("measure", ""), unit=o.get("unit", ""), sense=o.get("sense", ""))
        s.incomplete = incomplete
        if s.methods:
            summaries.append(s)
    if not summaries:
        raise InputError(f"{root}: no complete runs found (expected <objective>/<method>/seed-<k>/result.json)")
    return summaries


def _md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows]
    return "\n".join(lines)


def _objective_caption(s: ObjectiveSummary) -> str:
    goal = f"{s.sense} `{s.measure}`" + (f" [{s.unit}]" if s.unit else "") if s.measure else "objective"
    return (f"Goal: {goal}. Budget {s.budget} simulations; target FoM = best baseline median = {_g(s.target, 6)}. "
            f"FoM: lower is better; feasible FoMs are the signed-log objective, infeasible ones "
            f"{INFEASIBLE_OFFSET:g} + violation."
            + (f" {s.incomplete} incomplete run(s) left out." if s.incomplete else ""))


_NOTES = ("**Definitions.** *median FoM / IQR / best / worst*: final best FoM over runs. *best feasible objective*: "
          "median over runs that found a feasible point of the raw objective of their best feasible point. "
          "*sims to target*: median over runs of the first charged simulation at which the best-so-far FoM "
          "reached the target (`>budget`: most runs never did); *x vs zoaf*: that median over ZOAF's (> 1: ZOAF "
          "needs fewer). *s to target*: the same in wall seconds. *overhead / sim*: (wall - simulator seconds) / "
          "simulations. *p*: two-sided Mann-Whitney U test of ZOAF's final FoMs against the method's.")


def _footer(root: Path, manifest: dict[str, Any], methods: Sequence[str], argv: Sequence[str] | None) -> dict[str, Any]:
    import sys

    return {
        "command": manifest.get("command") or "(not recorded)",
        "report command": " ".join(argv if argv is not None else sys.argv),
        "netlist": manifest.get("netlist", "—"), "spec": manifest.get("spec", "—"),
        "budget": manifest.get("budget", "—"), "seeds": manifest.get("seeds", "—"),
        "jobs": manifest.get("jobs", "—"),
        "versions": manifest.get("versions") or versions(),
        "machine": manifest.get("machine") or machine(),
        "settings": {m: method_settings(m) for m in methods},
    }


def _img64(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def write_report(root: str | Path, argv: Sequence[str] | None = None) -> tuple[Path, Path]:
    """(Re)write ``report.md``, ``report.html`` (PNGs embedded) and the PNGs of a comparison directory."""
    root = Path(root)
    summaries = load_comparison(root)
    manifest = read_manifest(root)
    methods = list(dict.fromkeys(m.method for s in summaries for m in s.methods))
    foot = _footer(root, manifest, methods, argv)
    title = f"zoaf comparison: {Path(str(foot['netlist'])).name if foot['netlist'] != '—' else root.name}"
    md = [f"# {title}", ""]
    body = [f"<h1>{html.escape(title)}</h1>"]
    for s in summaries:
        pngs = plot_summary(s, root)
        rows = table_rows(s)
        md += [f"## Objective `{s.name}`", "", _objective_caption(s), "", _md_table(COLUMNS, rows), ""]
        md += [f"![{p.stem}]({p.name})" for p in pngs] + [""]
        body.append(f"<h2>Objective <code>{html.escape(s.name)}</code></h2><p>{html.escape(_objective_caption(s))}</p>")
        body.append("<table><thead><tr>" + "".join(f"<th>{html.escape(c)}</th>" for c in COLUMNS) + "</tr></thead>"
                    "<tbody>" + "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>"
                                         for r in rows) + "</tbody></table>")
        body += [f'<figure><img alt="{html.escape(p.stem)}" src="{_img64(p)}"></figure>' for p in pngs]
    md += [_NOTES, "", "## How this was made", ""]
    body.append(f"<p class=notes>{html.escape(_NOTES).replace('**Definitions.**', '<b>Definitions.</b>')}</p>"
                "<h2>How this was made</h2><ul>")
    for key in ("command", "report command", "netlist", "spec", "budget", "seeds", "jobs"):
        val = foot[key]
        md.append(f"- **{key}**: `{val}`")
        body.append(f"<li><b>{html.escape(key)}</b>: <code>{html.escape(str(val))}</code></li>")
    for key in ("versions", "machine"):
        text = ", ".join(f"{k} {v}" for k, v in foot[key].items())
        md.append(f"- **{key}**: {text}")
        body.append(f"<li><b>{key}</b>: {html.escape(text)}</li>")
    md += ["", "### Method settings (documented defaults)", ""]
    body.append("</ul><h3>Method settings (documented defaults)</h3><ul>")
    for m, settings in foot["settings"].items():
        text = "; ".join(f"{k} = {v}" for k, v in settings.items()) or "—"
        md.append(f"- **{m}**: {text}")
        body.append(f"<li><b>{html.escape(m)}</b>: {html.escape(text)}</li>")
    body.append("</ul>")
    md_path, html_path = root / "report.md", root / "report.html"
    md_path.write_text("\n".join(md) + "\n")
    html_path.write_text(_HTML.format(title=html.escape(title), body="\n".join(body)))
    return md_path, html_path


_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 1200px; margin: 2em auto; padding: 0 1em; color: #222; }}
table {{ border-collapse: collapse; font-size: 0.85em; margin: 1em 0; }}
th, td {{ border: 1px solid #ccc; padding: 0.3em 0.5em; text-align: right; white-space: nowrap; }}
th {{ background: #f3f3f3; }} td:first-child {{ text-align: left; font-weight: 600; }}
figure {{ margin: 1em 0; }} img {{ max-width: 100%; }} .notes {{ font-size: 0.85em; color: #444; }}
code {{ background: #f6f6f6; padding: 0 0.2em; }}
</style></head>
<body>
{body}
</body></html>
"""

"""Comparison statistics from run directories: per-run curves, per-method summaries, tests.

Everything here is computed from the run directories alone (``DIR/<objective>/<method>/seed-<k>/history.db``,
else its ``result.json`` and ``trace.json``, the run's course in a few rows, so that committed results without
their histories still report; runs recorded before traces were kept report their end only: no curve, and no
simulations-to-target where they reached the target). Definitions:

* **final FoM** of a run: its best evaluated FoM (lower is better; ``INFEASIBLE_OFFSET`` + violation when no
  point met the constraints).
* **best feasible objective**: the raw objective (the measure, in its unit) of the run's best *feasible* point;
  feasible FoMs are a monotone function of the objective, so this is the best feasible objective value, the
  number a designer compares (penalized FoMs of infeasible runs are not comparable across methods).
* **target**: the best (lowest) median final FoM among the baselines (every method but ``zoaf``).
* **simulations-to-target** of a run: the charged-simulation count at which its best-so-far FoM first reaches
  the target, +inf if never (shown ``>budget``); **seconds-to-target**: the wall time at that moment. Medians
  treat +inf as a value (a median of ``>budget`` means that most runs never reached the target).
* **overhead per simulation**: (wall time - simulator seconds) / charged simulations: what the method costs.
* **p**: two-sided Mann-Whitney U test of ZOAF's final FoMs against each baseline's; **p (Holm)**: the same
  p-values with Holm's step-down correction for the number of baselines compared on the objective (the family is
  one objective's comparisons ZOAF vs each other method).
* **rank**: position by median final FoM (ties share a rank; lower is better).
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from .errors import InputError, ZoafWarning
from .history import History, Record
from .outfile import read_json

#: The method every other is compared with (targets, ratios, p-values).
REFERENCE = "zoaf"
#: Stand-in for +inf inside quantile interpolation (inf - inf would give NaN); any interpolation that touched
#: it (above ``INF_SEEN``: no FoM comes near, they are < 1e3) maps back to +inf (NaN in plots).
INF_STAND_IN = 1e300
INF_SEEN = 1e200


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
    trajectory: bool = True     # False: only the run's end is known (its result.json, without a trace)

    @classmethod
    def from_records(cls, records: Sequence[Record], *, method: str, seed: int, budget: int,
                     complete: bool = True, path: Path | None = None) -> "RunData":
        """``sims`` counts simulations (``Record.cost``), as ``result.json``'s ``nfev`` does: a corner run's sizing
        costs one per corner simulated (its budget credit, ``charged``, counted sizings)."""
        fom, cost = np.array([r.fom for r in records], dtype=float), np.array([r.cost for r in records], dtype=int)
        return cls(method, seed, np.cumsum(cost).astype(int), fom,
                   np.array([r.wall for r in records], dtype=float),
                   np.array([r.outcome.seconds for r in records], dtype=float), cost > 0,
                   np.array([np.isfinite(r.fom) and r.outcome.feasible is not False for r in records], dtype=bool),
                   np.array([np.nan if r.outcome.objective is None else r.outcome.objective for r in records],
                            dtype=float),
                   budget, complete, path)

    @classmethod
    def from_trace(cls, trace: Mapping[str, Any], **kw: Any) -> "RunData":
        """The rows :meth:`trace` kept, then one row of the totals (no new best: the curves and the times to a
        target are those of the full history)."""
        rows = [list(r) for r in trace["rows"]] or [[0, 0.0, math.inf, False, None]]
        last = rows[-1]
        rows.append([trace["nfev"], trace["wall"], last[2], last[3], last[4]])
        sims, wall, fom, feasible, objective = zip(*rows)
        seconds = [0.0] * (len(rows) - 1) + [trace["sim_seconds"]]
        return cls(sims=np.array(sims, int), fom=np.array([fom_of(v) for v in fom]), wall=_nan_for_null(wall),
                   seconds=_nan_for_null(seconds), charged=np.ones(len(rows), bool),
                   feasible=np.array(feasible, bool),
                   objective=np.array([math.nan if v is None else v for v in objective], float), **kw)

    @classmethod
    def from_final(cls, result: Mapping[str, Any], **kw: Any) -> "RunData":
        """A run known by its ``result.json`` alone: one row, its end (``trajectory`` False)."""
        fun, obj, nfev = fom_of(result.get("fun")), result.get("objective"), result.get("nfev") or 0
        if isinstance(nfev, bool) or not isinstance(nfev, int) or nfev < 0:   # -3 was reported as run so
            raise ValueError(f"nfev {nfev!r:.40} is not a count of simulations")
        if obj is not None and (isinstance(obj, bool) or not isinstance(obj, (int, float))):
            raise ValueError(f"objective {obj!r:.40} is not a number")
        return cls(sims=np.array([nfev]), fom=np.array([fun]), wall=np.array([math.nan]),
                   seconds=np.array([math.nan]), charged=np.ones(1, bool),
                   feasible=np.array([math.isfinite(fun) and result.get("feasible") is not False]),
                   objective=np.array([math.nan if obj is None else float(obj)]), trajectory=False, **kw)

    def trace(self) -> dict[str, Any]:
        """The run's course in a few rows, for ``trace.json``: [simulations, wall, FoM, feasible, objective] of
        each row that improved the best-so-far FoM, and the totals; what every statistic and plot here reads."""
        best = self.best
        keep = np.flatnonzero(np.concatenate([[True], best[1:] < best[:-1]])) if len(best) else []
        rows = [[int(self.sims[i]), float(self.wall[i]), float(self.fom[i]), bool(self.feasible[i]),
                 None if math.isnan(self.objective[i]) else float(self.objective[i])] for i in keep]
        return {"rows": rows, "nfev": self.nfev, "wall": self.wall_total, "sim_seconds": self.sim_seconds}

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
        if not self.trajectory:
            return math.nan, math.nan                   # reached, but when is not known
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


def load_run(path: str | Path, method: str | None = None, seed: int | None = None,
             budget: int | None = None) -> RunData:
    """Read one run directory: ``history.db``, else ``trace.json`` (else the end in ``result.json`` alone;
    ``budget``: the comparison's, which neither file holds). ``result.json`` marks a run complete. A file that
    is not what zoaf writes (the directory may come from elsewhere) is an InputError naming it. A corner run is
    read from its end files: its history holds a row per corner simulated, each judged at its corner alone (read
    as the run, its best single corner was its final FoM, not its sizings' worst case)."""
    path = Path(path)
    db, complete = path / "history.db", is_complete(path)     # outside the try below: its error names result.json
    if db.exists():
        with History(db, read=True) as h:
            meta, records = h.meta(), h.records()
        if not _per_corner(meta):
            return _from_history(path, meta, records, method, seed, complete)
        if not (path / "result.json").exists():
            raise InputError(f"{db}: a corner run's history holds its corners' simulations, not its sizings' worst "
                             "cases: the run is reported once it ends (result.json)")
    try:
        result = _json_object(path / "result.json")
    except FileNotFoundError:
        raise InputError(f"{path}: not a run directory (no history.db or result.json)") from None
    try:
        kw = dict(method=str(method or result.get("method", path.parent.name)),
                  seed=int(seed if seed is not None else result.get("seed", -1)),
                  budget=int(budget or result.get("nfev") or 0), complete=complete, path=path)
    except (TypeError, ValueError, OverflowError) as e:
        raise InputError(f"{path / 'result.json'}: not a zoaf result ({e})") from None
    return _from_files(path, result, kw)


def _per_corner(meta: Mapping[str, Any]) -> bool:
    """A corner run's history (its problem names corners): a row per (sizing, corner) simulation."""
    problem = meta.get("problem")
    return isinstance(problem, Mapping) and bool(problem.get("corners"))


def _from_history(path: Path, meta: Mapping[str, Any], records: list[Record], method: str | None,
                  seed: int | None, complete: bool) -> RunData:
    db = path / "history.db"
    records = records[:_recorded_end(path, len(records))] if complete else records   # an interrupt's: resumed
    try:
        return RunData.from_records(records, method=str(method or meta.get("method", path.parent.name)),
                                    seed=int(seed if seed is not None else meta.get("seed", -1)),
                                    budget=int(meta.get("budget", 0)), complete=complete, path=path)
    except (TypeError, ValueError, OverflowError) as e:
        raise InputError(f"{db}: not a zoaf run history ({e})") from None


def _recorded_end(path: Path, rows: int) -> int:
    """How many of the history's ``rows`` are the finished run's that ``result.json`` ended (its ``sizings``), with a
    warning naming the history for rows after it: a resume that stopped sooner (a target, a callback) leaves the
    rows it did not replay, which were counted as the run's (a final FoM past its budget, unlike result.json)."""
    try:
        end = _json_object(path / "result.json").get("sizings")
    except FileNotFoundError:
        return rows
    if not isinstance(end, int) or isinstance(end, bool) or not 0 <= end < rows:
        return rows
    warnings.warn_explicit(f"{rows - end} row(s) after the run's end (its result.json: {end} sizings) left out: "
                           "they are no part of the run that ended", ZoafWarning, str(path / "history.db"), 0,
                           module=__name__)
    return end


def fom_of(value: Any) -> float:
    """A FoM as ``result.json`` or ``trace.json`` holds it: ``null`` (or missing) is +inf, no FoM (zoaf writes
    strict JSON; files written before hold ``Infinity``, which reads as itself). Anything but a number is a
    ValueError: a received run's ``"1.0"`` (text), ``NaN`` or ``true`` was ranked as that FoM."""
    if value is None:
        return math.inf
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        raise ValueError(f"the FoM {value!r:.40} is not a number")
    return float(value)


def _nan_for_null(values: Sequence[Any]) -> np.ndarray:
    """Times as ``trace.json`` holds them: ``null`` is NaN (unknown)."""
    return np.array([math.nan if v is None else v for v in values], float)


def _json_object(path: Path) -> dict[str, Any]:
    """A JSON object read with :func:`zoaf.outfile.read_json` (bounded, no FIFO); InputError if not an object."""
    data = read_json(path)
    if not isinstance(data, dict):
        raise InputError(f"{path}: not a JSON object")
    return data


def _from_files(path: Path, result: Mapping[str, Any], kw: dict[str, Any]) -> RunData:
    """A run without its history: its ``trace.json``, else its end in ``result.json``. A trace that is there but not
    one zoaf wrote is a warning naming it (the run was reported without its curve, without a word): the report
    goes on from ``result.json``, as for a run recorded before traces were kept (no trace.json, no warning)."""
    trace = path / "trace.json"
    try:
        return RunData.from_trace(_json_object(trace), **kw)
    except FileNotFoundError:
        pass
    except (OSError, TypeError, ValueError, KeyError, IndexError, OverflowError) as e:  # InputError is a ValueError
        why = str(e).removeprefix(f"{trace}: ") if isinstance(e, InputError) else \
            f"not what zoaf writes ({type(e).__name__}: {e})"
        # set at the file (line 0), where a warning at this line of zoaf quoted it and named no file of the user's:
        # the command line says ``warning: DIR/trace.json: ...``, Python ``DIR/trace.json:0: ZoafWarning: ...``
        warnings.warn_explicit(f"{why}; its run is reported by its end in result.json, without a curve",
                               ZoafWarning, str(trace), 0, module=__name__)
    try:
        return RunData.from_final(result, **kw)
    except (TypeError, ValueError, OverflowError) as e:
        raise InputError(f"{path / 'result.json'}: not what zoaf writes ({type(e).__name__}: {e})") from None


def is_complete(path: Path) -> bool:
    """A run directory whose run ended (``result.json``) other than by an interrupt or its callback (which write one
    too: the run goes on from its history). A
    ``result.json`` that is not a JSON object is an InputError naming it: zoaf writes it whole (renamed into place),
    so it was cut or replaced elsewhere, and taking its run for an unfinished one hid that."""
    try:
        return _json_object(Path(path) / "result.json").get("stop_reason") not in ("interrupted", "callback")
    except FileNotFoundError:
        return False


# -- statistics ----------------------------------------------------------------------------------------------
def quartiles(values: Iterable[float]) -> tuple[float, float, float]:
    """(Q1, median, Q3), linear interpolation (numpy's default); +inf counts as the largest value."""
    v = np.asarray(list(values), dtype=float)
    v = v[~np.isnan(v)]
    if not len(v):
        return math.nan, math.nan, math.nan
    q = np.quantile(np.where(np.isinf(v) & (v > 0), INF_STAND_IN, v), [0.25, 0.5, 0.75])
    return tuple(math.inf if x > INF_SEEN else float(x) for x in q)   # type: ignore[return-value]


def median(values: Iterable[float]) -> float:
    return quartiles(values)[1]


def mann_whitney(a: Sequence[float], b: Sequence[float]) -> float:
    """Two-sided Mann-Whitney U p-value of two samples (NaN when either is empty)."""
    from scipy.stats import mannwhitneyu

    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if not len(a) or not len(b):
        return math.nan
    a, b = np.where(np.isinf(a), INF_STAND_IN, a), np.where(np.isinf(b), INF_STAND_IN, b)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(mannwhitneyu(a, b, alternative="two-sided").pvalue)


def holm(pvalues: dict[str, float]) -> dict[str, float]:
    """Holm's step-down adjusted p-values of a family of tests (NaN entries are left out of the family).

    With the m p-values sorted ascending, the i-th (from 0) is adjusted to max over j <= i of (m - j) * p_(j),
    capped at 1: reject at level a where adjusted p < a controls the family-wise error rate at a.
    """
    items = sorted(((p, k) for k, p in pvalues.items() if not math.isnan(p)), key=lambda t: t[0])
    m, out, running = len(items), {k: math.nan for k in pvalues}, 0.0
    for i, (p, k) in enumerate(items):
        running = max(running, min(1.0, (m - i) * p))
        out[k] = running
    return out


def target_fom(finals: dict[str, Sequence[float]], reference: str = REFERENCE) -> float:
    """The best baseline's median final FoM (the reference's own when it is the only method); NaN, no target, when
    that is +inf (most runs of every method failed every simulation): a target of +inf was "reached" by the first
    failed simulation of every run (simulations-to-target 1)."""
    medians = {m: median(v) for m, v in finals.items() if len(v)}
    others = [v for m, v in medians.items() if m != reference]
    pool = others or list(medians.values())
    best = min(pool) if pool else math.nan
    return best if math.isfinite(best) else math.nan


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
    p_holm: float = math.nan      # p_value, Holm-corrected over the objective's comparisons with the reference
    rank: int = 0                 # 1 + the number of methods with a strictly lower median final FoM


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
    #: Methods left out of the statistics by :func:`common_seeds`: method -> its complete seeds 0..k-1.
    short: dict[str, int] = field(default_factory=dict)
    #: Their complete runs, for a ranking of every method on fewer seeds.
    short_runs: dict[str, list[RunData]] = field(default_factory=dict, repr=False)


def common_seeds(runs: dict[str, list[RunData]]) -> tuple[dict[str, list[RunData]], dict[str, int]]:
    """The runs on one set of seeds, so that methods are ranked on equal terms while a suite is partly run.

    Each method's depth is its number of complete seeds 0, 1, ... without a gap; the common depth N is the
    median depth (the lower one of an even count), so one method run ahead (the reference started a seed the
    others have not) or behind (an expensive method at fewer seeds) does not set it. Methods at depth >= N keep
    seeds 0..N-1; the others are returned apart (method -> depth), to be listed, not ranked.
    """
    depth = {}
    for m, rs in runs.items():
        done = {r.seed for r in rs if r.complete}
        depth[m] = next(k for k in range(len(done) + 1) if k not in done)
    n = sorted(depth.values())[(len(depth) - 1) // 2] if depth else 0
    kept = {m: [r for r in rs if r.complete and r.seed < n] for m, rs in runs.items() if depth[m] >= n > 0}
    return kept, {m: d for m, d in depth.items() if m not in kept}


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
    adjusted = holm({m.method: m.p_value for m in stats if m.method != reference})
    for m in stats:
        m.p_holm = adjusted.get(m.method, math.nan)
        m.rank = 1 + sum(o.median < m.median for o in stats)
    return ObjectiveSummary(name, measure, unit, sense, budget, target, stats, runs)

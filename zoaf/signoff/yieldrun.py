"""``zoaf yield``: simulate one sizing over Monte Carlo samples, in parallel, recorded and resumable.

Each sample is a point of ``McSims`` (its index), so samples go through the ``Evaluator`` like any simulation:
worker processes or Dask, sandboxed, one ``history.db`` row each, replayed when the command runs again (more
``--samples`` simulate only the new ones).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from .. import __version__, units
from ..circuit import CircuitProblem
from ..errors import DeckFailure, InputError
from ..evaluate import Evaluator, FailureWatch
from ..history import History, Record, RunMeta
from ..outfile import json_text, write_file
from ..pdk import corners as pdk_sections
from ..problem import Parameter, Problem, Status
from ..rundir import run_directory
from .corners import Corner
from .cornerrun import CornerSims, corner_deck, corner_overrides
from .rundir import discarded_if_empty
from .mc import MonteCarlo, YieldSummary, draws, ngspice_seed, summarize, verdict

METHOD = "montecarlo"
#: The most samples one run asks (all at once): 1e6 simulations are hours; 1e14 ran numpy out of memory.
MAX_SAMPLES = 1_000_000
_GOOD = (Status.OK, Status.CACHED)


class McSims(Problem):
    """One simulation per Monte Carlo sample of one sizing; the point is the sample index (passed through)."""

    def __init__(self, base: CircuitProblem, sizing: Mapping[str, float], seed: int,
                 corner: Corner | None = None) -> None:
        super().__init__([Parameter("sample", 0.0, 1.0)])
        mc = check_montecarlo(base)
        missing = [p for p in base.names if p not in sizing]
        if missing:
            raise InputError(f"the sizing lacks {', '.join(missing)}")
        self.name, self.notes = base.name, base.notes      # the designer's deck's, not the sample deck's
        self.timeout = base.timeout             # the circuit's limit per simulation, for the pool
        self.normal, self.section, self.seed = mc.normal, mc.section, int(seed)
        self.deck, self.overrides = _sample_deck(base, mc, corner)
        self.sizing = np.array([_value(p, sizing[p.name]) for p in base.parameters], dtype=float)
        self.needs_new_process = False
        self.affinity = self.deck.affinity      # a deck loaded afresh for every sample: each its own load

    def prepare(self, x: np.ndarray) -> None:
        draws(self.seed, int(x[0]), self.normal)    # numpy.random's native modules mapped before the lock-down
        self.deck.prepare(self.sizing)

    def to_physical(self, u: np.ndarray) -> np.ndarray:
        return np.asarray(u, dtype=float)

    def _rng_seed(self, sample: int) -> int | None:
        return None if self.section is None else ngspice_seed(self.seed, sample)

    def as_dict(self, x: np.ndarray) -> dict[str, float]:
        i = int(x[0])
        seeded = {} if self.section is None else {"ngspice_seed": self._rng_seed(i)}
        return {"sample": i, **seeded, **draws(self.seed, i, self.normal)}

    def simulate(self, x: np.ndarray):
        i = int(x[0])
        outcome = self.deck.simulate(self.sizing, {**self.overrides, **draws(self.seed, i, self.normal)},
                                     rng_seed=self._rng_seed(i))
        self.needs_new_process = self.deck.needs_new_process
        return outcome

    def close(self) -> None:
        self.deck.close()


def _value(p: Parameter, value: Any) -> float:
    """A sizing's value of ``p``: a finite number (from Python, a NaN was simulated as asked and text was a
    ValueError in the deck's making; a netlist's own value may lie outside the spec's bounds: simulated as written)."""
    number = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))
    try:
        x = float(value) if number else math.nan
    except OverflowError:           # an int past the float range
        x = math.inf
    if not math.isfinite(x):
        raise InputError(f"the sizing's {p.name} = {units.echo(value)}: must be a finite number")
    return x


def check_montecarlo(base: CircuitProblem) -> MonteCarlo:
    """The spec's ``[montecarlo]`` against the netlist (``zoaf yield`` and ``zoaf check`` refuse the same): each
    drawn name a fixed ``.param``, a PDK section one of the PDK library's, its switches no design variables."""
    mc, where = base.spec.montecarlo, f"{base.spec.path or 'spec'}: montecarlo"
    if mc is None:
        raise InputError(f"{base.spec.path or 'spec'}: no [montecarlo] table: name the .params to draw "
                         "(normal = [...]) or the PDK's statistical section (section = \"mc\")")
    for name in mc.normal:
        if name in base.names:              # a draw would replace the sizing with a N(0, 1) value
            raise InputError(f"{where}.normal: {name!r} is a design variable; draw fixed .params only (a mismatch "
                             "term the deck adds to it)")
        if name not in base.netlist.params:
            raise InputError(f"{where}.normal: {name!r} is not a .param of {base.netlist.path}")
    if mc.section is None:
        return mc
    if base.spec.pdk is None:
        raise InputError(f"{where}.section: a PDK statistical section needs a PDK netlist (pdk = \"sky130\")")
    known = pdk_sections(base.spec.pdk)
    if mc.section not in known:
        raise InputError(f"{where}.section: {mc.section!r} is not a section of the {base.spec.pdk} library; "
                         f"it has {', '.join(known)}")
    clash = [k for k, _ in mc.params if k in base.names]
    if clash:
        raise InputError(f"{where}.params: {clash[0]!r} is a design variable")
    return mc


def _sample_deck(base: CircuitProblem, mc: MonteCarlo, corner: Corner | None
                 ) -> tuple[CircuitProblem, dict[str, float]]:
    """The deck the samples run on and the corner's ``.param`` overrides: with a PDK statistical section, the
    netlist read at that section with its switches appended, the corner giving temperature and overrides."""
    if mc.section is None:
        if corner is None:
            return base, {}
        sims = CornerSims(base, [corner])
        return sims.deck(0), sims.overrides[0]
    where = f"{base.spec.path or 'spec'}: montecarlo"
    if corner is not None and corner.process is not None:
        raise InputError(f"--corner {corner.name}: its process {corner.process!r} would replace montecarlo.section "
                         f"{mc.section!r}; use a corner without a process ([corners.NAME] with temp, .params)")
    with_temp = corner is not None and corner.temp is not None
    deck = corner_deck(base, mc.section, with_temp, dict(mc.params))
    overrides = {} if corner is None else corner_overrides(base, corner, True, with_temp, f"{where} corner")
    return deck, overrides


@dataclass
class YieldResult:
    summary: YieldSummary
    records: list[Record]
    out: Path
    shown: tuple[str, ...]
    varied: str = ""                     # what varies (MonteCarlo.describe)
    corner: str | None = None            # the corner of [corners] the samples were simulated at (None: nominal)

    @property
    def at(self) -> str:
        return "the nominal deck" if self.corner is None else f"corner {self.corner}"

    def as_json(self) -> dict[str, Any]:
        return {**self.summary.as_json(), "corner": self.corner}


def _open(out: Path, meta: RunMeta) -> History:
    """The yield history in ``out`` (made and locked by ``run_directory``), refused when it holds another run. One
    recorded before a key was (``RunMeta.ADDED``: a corner's ``corner_values``) is read, as ``zoaf optimize``
    resumes one: such a ``yield-CORNER`` directory was refused as another run, and the command said to move it."""
    hist = History(out / "history.db")
    try:
        recorded = hist.run_meta()
        if recorded is None and not hist.meta():
            hist.set_run(meta, zoaf=__version__, started=time.time())
            return hist
        if recorded is not None and recorded.method != METHOD:     # --out RUN: "its budget differs", said of a yield
            raise InputError(f"{out / 'history.db'}: holds a run of method {units.echo(recorded.method)}, not "
                             "Monte Carlo samples (the run signed off?); use another --out")
        differs = ["problem"] if recorded is None else [key for key, _, _ in meta.differences(recorded)]
        if differs:
            raise InputError(f"{out / 'history.db'}: holds another run (its {differs[0].split('.')[0]} differs); "
                             "use another --out")
    except BaseException:
        hist.close()
        raise
    return hist


def _spec_corner(base: CircuitProblem, corner: Corner | str | None) -> Corner | None:
    """``corner`` as a ``Corner``: a name is looked up in the spec's ``[corners]`` (it was "'str' object has no
    attribute 'name'", a traceback, as was anything else given)."""
    if corner is None or isinstance(corner, Corner):
        return corner
    if not isinstance(corner, str):
        raise InputError(f"corner must be a corner's name (str) or a Corner, got {type(corner).__name__}")
    if base.spec.corners is None:
        raise InputError(f"corner {units.echo(corner)}: {base.spec.path or 'the spec'} has no [corners] table")
    return base.spec.corners.select([corner], "corner")[0]


def run_yield(base: CircuitProblem, sizing: Mapping[str, float], out: Path, *, samples: int, seed: int,
              corner: Corner | str | None = None, workers: int = 1, dask: Any = None) -> YieldResult:
    """Simulate ``samples`` Monte Carlo samples of ``sizing`` (again only those ``out`` has not recorded), each
    within ``base``'s own timeout (``--timeout``), as every sign-off command."""
    for what, value, lo in (("samples", samples, 1), ("seed", seed, 0)):
        # from Python: samples=2.5 drew 3 samples, "2" and seed=-1 were a TypeError or numpy's ValueError
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < lo:
            raise InputError(f"--{what} {value!r}: must be a whole number >= {lo}")
    if samples > MAX_SAMPLES:
        raise InputError(f"--samples {samples}: must be within 1..{MAX_SAMPLES:,}")
    corner = _spec_corner(base, corner)
    asked = corner and corner.name                      # named as asked, simulated and recorded as "all" keeps it:
    if corner is not None and base.spec.corners is not None:    # "hot" of 85c's conditions reads 85c's samples
        corner = base.spec.corners.merged(corner)
    sims = McSims(base, sizing, seed, corner)
    obj = base.objective
    # a corner's values (its process_lib section's too, which no hash covers): samples of other values not replayed
    at = {"corner_values": dict(sorted(sims.overrides.items()))} if corner is not None else {}
    meta = RunMeta({**base.metadata(), "sizing": dict(sizing), "corner": corner and corner.as_json(), **at,
                    "normal": list(sims.normal),
                    **({"section": sims.section, "section_params": dict(base.spec.montecarlo.params)}
                       if sims.section else {})}, METHOD, 0, seed)
    # As a run directory: a file, a link or a run going there is one line; a refused one leaves no directory.
    with run_directory(out, resume=None) as out, _open(out, meta) as hist, \
            discarded_if_empty(hist), Evaluator(sims, workers=workers, timeout=sims.timeout, dask=dask) as ev:
        ev.record_to(hist)
        watch = FailureWatch.of_deck(base, across=False)
        records = _sampled(ev, samples, len(hist), workers, watch)
        if watch.broken():
            raise _stopped(watch, ev, base, asked)
    shown = tuple(dict.fromkeys([obj.measure, *(c.measure for c in obj.constraints)]))
    ok = [r for r in records if r.status in _GOOD]
    verdicts = [verdict(i, r.status in _GOOD, r.outcome.measures, shown, obj.constraints, r.outcome.error)
                for i, r in enumerate(records)]
    summary = summarize(verdicts, [r.outcome.measures for r in ok], shown, obj.constraints)
    result = YieldResult(summary, records, out, shown, base.spec.montecarlo.describe(), asked)
    write_outputs(result, base)
    return result


def _sampled(ev: Evaluator, samples: int, recorded: int, workers: int, watch: FailureWatch) -> list[Record]:
    """Every sample's record, or those simulated when ``watch`` found the deck broken (the first ``LOAD_FAIL_SIZINGS``
    or ``FAIL_FAST_SIZINGS`` samples all failed alike, none measured what the spec needs). Asked in batches while
    the watch is on, then the rest at once: the ``recorded`` ones first (replayed, so that a resume stops where the
    yield stopped), then batches of what the watch lacks, at least one per worker. A sample that measures ends the
    watch: the samples that fail beside it are the yield's loss."""
    records: list[Record] = []
    while len(records) < samples:
        start = len(records)
        size = recorded - start if start < recorded else samples if watch.over else max(workers, watch.short())
        batch = ev.evaluate(np.arange(start, min(samples, start + size), dtype=float)[:, None], METHOD)
        records += batch
        for rec in batch:
            watch.add(rec)
        if watch.broken():
            break
    return records


def _stopped(watch: FailureWatch, ev: Evaluator, base: CircuitProblem, corner: str | None) -> DeckFailure:
    """The one line of a yield stopped on a deck that fails alike at every sample: the deck, the corner, the error."""
    error, n = " ".join(str(watch.error).split()), len(watch.sizings)
    at = "" if corner is None else f" at corner {corner}"
    how = (f"the deck does not load{at} ({error})" if watch.unloadable else
           f"its first {n} samples{at} all failed the same way ({error}), none measured what the spec needs")
    fix = "the deck or [montecarlo]" + (" or the corner" if at else "")
    return DeckFailure(f"{base.netlist.path}: the yield stopped: {how}: fix {fix} and run the yield again with another "
                       f"--out{ev.kept}", error, n)


def write_outputs(result: YieldResult, base: CircuitProblem) -> None:
    """``yield.json``, a histogram per measure and ``report.md`` in the yield directory."""
    from ..report import _md        # ngspice's error texts reach report.md: no HTML or table they could open
    from .plots import plot_histogram

    s = result.summary
    write_file(result.out / "yield.json", json_text(result.as_json(), indent=2, default=float) + "\n")
    ok = [r.outcome.measures for r in result.records if r.status in _GOOD]
    lines = [f"# Monte Carlo yield: {base.name}", "", f"{s.samples} samples at {result.at}; varied: {result.varied}.",
             "",
             *(f"{_md(line)}  " for line in s.lines()), "",
             "| measure | n | mean | sigma | LSL | USL | Cpk |", "|---|---|---|---|---|---|---|"]
    for st in s.stats:
        path = result.out / f"hist_{st.name}.png"
        plot_histogram([m[st.name] for m in ok if st.name in m], st, base.spec.unit_of(st.name), path)
        lines.append(f"| {st.name} | {st.n} | {st.mean:.5g} | {st.sigma:.4g} | {_opt(st.limits.lsl)} "
                     f"| {_opt(st.limits.usl)} | {_opt(st.cpk, '.3g')} |")
    lines += [""] + [f"![{st.name}](hist_{st.name}.png)" for st in s.stats]
    write_file(result.out / "report.md", "\n".join(lines) + "\n")


def _opt(v: float | None, fmt: str = ".5g") -> str:
    return "—" if v is None else format(v, fmt)

"""``zoaf yield``: simulate one sizing over Monte Carlo samples, in parallel, recorded and resumable.

Each sample is a point of ``McSims`` (its index), so samples go through the ``Evaluator`` like any simulation:
worker processes or Dask, sandboxed, one ``history.db`` row each, replayed when the command runs again (more
``--samples`` simulate only the new ones).
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from .. import __version__
from ..circuit import CircuitProblem
from ..errors import InputError
from ..evaluate import Evaluator
from ..history import History, Record, RunMeta
from ..problem import Parameter, Problem, Status
from .corners import Corner
from .cornerrun import CornerSims
from .mc import YieldSummary, draws, limits, summarize

METHOD = "montecarlo"


class McSims(Problem):
    """One simulation per Monte Carlo sample of one sizing; the point is the sample index (passed through)."""

    def __init__(self, base: CircuitProblem, sizing: Mapping[str, float], seed: int,
                 corner: Corner | None = None) -> None:
        super().__init__([Parameter("sample", 0.0, 1.0)])
        mc = base.spec.montecarlo
        if mc is None:
            raise InputError(f"{base.spec.path or 'spec'}: no [montecarlo] table: name the .params to draw "
                             "(normal = [...])")
        for name in mc.normal:
            if name not in base.netlist.params:
                raise InputError(f"{base.spec.path}: montecarlo.normal: {name!r} is not a .param of "
                                 f"{base.netlist.path}")
        missing = [p for p in base.names if p not in sizing]
        if missing:
            raise InputError(f"the sizing lacks {', '.join(missing)}")
        self.name = base.name
        self.normal, self.seed = mc.normal, int(seed)
        sims = CornerSims(base, [corner]) if corner is not None else None
        self.deck = base if sims is None else sims.deck(0)
        self.overrides = {} if sims is None else sims.overrides[0]
        self.sizing = np.array([sizing[p] for p in base.names], dtype=float)
        self.needs_new_process = False

    def to_physical(self, u: np.ndarray) -> np.ndarray:
        return np.asarray(u, dtype=float)

    def as_dict(self, x: np.ndarray) -> dict[str, float]:
        return {"sample": int(x[0]), **draws(self.seed, int(x[0]), self.normal)}

    def simulate(self, x: np.ndarray):
        outcome = self.deck.simulate(self.sizing, {**self.overrides, **draws(self.seed, int(x[0]), self.normal)})
        self.needs_new_process = self.deck.needs_new_process
        return outcome

    def close(self) -> None:
        self.deck.close()


@dataclass
class YieldResult:
    summary: YieldSummary
    records: list[Record]
    out: Path
    shown: tuple[str, ...]


def _open(out: Path, meta: RunMeta) -> History:
    out.mkdir(parents=True, exist_ok=True)
    hist = History(out / "history.db")
    found = hist.meta()
    if not found:
        hist.set_run(meta, zoaf=__version__, started=time.time())
        return hist
    expected = meta.as_json()
    for key in ("problem", "method", "seed", "options"):
        if found.get(key) != expected[key]:
            hist.close()
            raise InputError(f"{out / 'history.db'}: holds another yield run ({key} differs); use another --out")
    return hist


def run_yield(base: CircuitProblem, sizing: Mapping[str, float], out: Path, *, samples: int, seed: int,
              corner: Corner | None = None, workers: int = 1, dask: Any = None,
              timeout: float = 60.0) -> YieldResult:
    """Simulate ``samples`` Monte Carlo samples of ``sizing`` (again only those ``out`` has not recorded)."""
    if samples < 1:
        raise InputError(f"--samples {samples}: must be >= 1")
    sims = McSims(base, sizing, seed, corner)
    obj = base.objective
    meta = RunMeta({**base.metadata(), "sizing": dict(sizing), "corner": corner and corner.as_json(),
                    "normal": list(sims.normal)}, METHOD, 0, seed)
    with _open(out, meta) as hist, Evaluator(sims, workers=workers, timeout=timeout, dask=dask) as ev:
        ev.record_to(hist)
        records = ev.evaluate(np.arange(samples, dtype=float)[:, None], METHOD)
    shown = tuple(dict.fromkeys([obj.measure, *(c.measure for c in obj.constraints)]))
    ok = [r for r in records if r.status in (Status.OK, Status.CACHED)]
    summary = summarize([r in ok and r.outcome.feasible is not False for r in records],
                        [r.outcome.measures for r in ok], shown, limits(obj.constraints), len(records) - len(ok))
    result = YieldResult(summary, records, out, shown)
    write_outputs(result, base)
    return result


def write_outputs(result: YieldResult, base: CircuitProblem) -> None:
    """``yield.json``, a histogram per measure and ``report.md`` in the yield directory."""
    from .plots import plot_histogram

    s = result.summary
    (result.out / "yield.json").write_text(json.dumps(s.as_json(), indent=2, default=float) + "\n")
    ok = [r.outcome.measures for r in result.records if r.status in (Status.OK, Status.CACHED)]
    lines = [f"# Monte Carlo yield: {base.name}", "",
             f"{s.passed}/{s.samples} samples meet the spec: yield {s.yield_:.1%} "
             f"(95% Wilson interval {s.ci[0]:.1%} .. {s.ci[1]:.1%}; {s.failed_sims} failed simulations)", "",
             "| measure | mean | sigma | LSL | USL | Cpk |", "|---|---|---|---|---|---|"]
    for st in s.stats:
        path = result.out / f"hist_{st.name}.png"
        plot_histogram([m[st.name] for m in ok if st.name in m], st, base.spec.unit_of(st.name), path)
        lines.append(f"| {st.name} | {st.mean:.5g} | {st.sigma:.4g} | {_opt(st.limits.lsl)} | {_opt(st.limits.usl)} "
                     f"| {_opt(st.cpk, '.3g')} |")
    lines += [""] + [f"![{st.name}](hist_{st.name}.png)" for st in s.stats]
    (result.out / "report.md").write_text("\n".join(lines) + "\n")


def _opt(v: float | None, fmt: str = ".5g") -> str:
    return "—" if v is None else format(v, fmt)

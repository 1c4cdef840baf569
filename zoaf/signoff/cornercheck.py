"""``zoaf corners``: one sizing simulated at every corner and judged there against the spec, the worst corner
of the objective and of each constraint named (a corner run's optimization shows only its best sizing's). Of a
run directory, the simulations are recorded in its ``corners/<hash>/`` and replayed when the same check runs again:
cut short (Ctrl-C, SIGTERM), it had to simulate every corner anew."""
from __future__ import annotations

import hashlib
import json
import math
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ..circuit import CircuitProblem
from ..errors import SimulationError, ZoafError
from ..evaluate import Evaluator
from ..history import RunMeta
from ..problem import Outcome, Status
from ..spec import Constraint
from .cornerrun import CornerSims
from .rundir import RunDir, recorded


@dataclass(frozen=True)
class CornerVerdict:
    """One corner's measures and the constraints the sizing misses there (a missing measure misses its
    constraint, said so); ``error``: why the simulation failed or what it could not measure."""

    corner: str
    measures: dict[str, float]
    failed: tuple[str, ...]
    simulated: bool
    error: str | None = None

    @property
    def passed(self) -> bool:
        return self.simulated and not self.failed

    def as_json(self) -> dict[str, Any]:
        return {"corner": self.corner, "pass": self.passed, "simulated": self.simulated, "failed": list(self.failed),
                "measures": self.measures, "error": self.error}


def judge_corner(name: str, outcome: Outcome, constraints: Sequence[Constraint]) -> CornerVerdict:
    ok = outcome.status in (Status.OK, Status.CACHED)
    m = outcome.measures
    failed = tuple(f"{c} (not measured)" if not math.isfinite(m.get(c.measure, math.nan)) else str(c)
                   for c in constraints if c.value(m.get(c.measure)) > 0) if ok else ("not simulated",)
    return CornerVerdict(name, dict(m), failed, ok, outcome.error)


@dataclass(frozen=True)
class Worst:
    """Where a constraint (or the objective) is at its worst over the corners, and its value there."""

    what: str                           # the constraint as written, or the objective ("maximize ugbw_hz")
    measure: str
    corner: str
    value: float | None                 # None: not measured there
    margin: float | None = None         # constraints: the relative slack there (< 0: missed), as Constraint.value

    def as_json(self) -> dict[str, Any]:
        return {"what": self.what, "measure": self.measure, "corner": self.corner, "value": self.value,
                "margin": self.margin}


@dataclass(frozen=True)
class CornerCheck:
    verdicts: tuple[CornerVerdict, ...]
    worst: tuple[Worst, ...]            # the objective's first, then each constraint's

    @property
    def passed(self) -> bool:
        return all(v.passed for v in self.verdicts)

    def unmeasured(self, needed: Sequence[str], where: str) -> ZoafError | None:
        """Why the check has no verdict, when no corner measured every one of the ``needed`` measures (a verdict
        at one corner, pass or fail, is one: exit 0): no corner simulated (a ``SimulationError``, exit 2, as
        ``zoaf check`` exits for a sizing that does not simulate), or none measured them (exit 1, as its
        incomplete sizing). It exited 0, and a script read ``"pass": false`` as a design that fails its spec."""
        if not any(v.simulated for v in self.verdicts):
            first = next((v.error for v in self.verdicts if v.error), "no error said")
            return SimulationError(f"{where}: the sizing simulated at none of the {len(self.verdicts)} corners: "
                                   f"{first}")
        if not any(all(math.isfinite(v.measures.get(m, math.nan)) for m in needed) for v in self.verdicts):
            return ZoafError(f"{where}: no corner measured all of {', '.join(needed)}, which the objective judges: "
                             "the sizing has no verdict at any corner")
        return None

    def as_json(self) -> dict[str, Any]:
        return {"pass": self.passed, "corners": [v.as_json() for v in self.verdicts],
                "failing_corners": [v.corner for v in self.verdicts if not v.passed],
                "worst": [w.as_json() for w in self.worst]}


def worst_over(verdicts: Sequence[CornerVerdict], measure: str, sense: str, constraints: Sequence[Constraint]
               ) -> tuple[Worst, ...]:
    """The objective's worst corner (its least value when maximized) and each constraint's (its largest
    normalized violation, a missing measure the worst of all; the first corner on a tie)."""
    ran = [v for v in verdicts if v.simulated] or list(verdicts)

    def value(v: CornerVerdict, name: str) -> float | None:
        x = v.measures.get(name)
        return x if x is not None and math.isfinite(x) else None

    sign = -1.0 if sense == "maximize" else 1.0
    obj = max(ran, key=lambda v: math.inf if value(v, measure) is None else sign * value(v, measure))
    out = [Worst(f"{sense} {measure}", measure, obj.corner, value(obj, measure))]
    for c in constraints:
        at = max(ran, key=lambda v: c.value(value(v, c.measure)))
        x = value(at, c.measure)
        out.append(Worst(str(c), c.measure, at.corner, x, None if x is None else -c.value(x)))
    return tuple(out)


def check_corners(base: CircuitProblem, sims: CornerSims, sizing: Mapping[str, float], *, workers: int = 1,
                  dask: Any = None, record: Path | None = None) -> CornerCheck:
    """Simulate ``sizing`` at each corner of ``sims`` (in parallel, within ``base``'s timeout) and judge each against
    the objective's constraints; recorded in ``record`` (:func:`record_folder`), its rows replayed, if given."""
    corners = sims.corners
    u = base.to_unit(np.array([sizing[n] for n in base.names], float))
    pts = np.array([np.append(u, k) for k in range(len(corners))])
    meta = RunMeta(_identity(sims, sizing), "corners", len(corners), None)
    with nullcontext() if record is None else recorded(record, meta) as hist, \
            Evaluator(sims, workers=min(workers, len(corners)), timeout=sims.timeout, dask=dask) as ev:
        if hist is not None:
            ev.record_to(hist)
        recs = ev.evaluate(pts, "corners")
    obj = base.objective
    verdicts = tuple(judge_corner(c.name, r.outcome, obj.constraints) for c, r in zip(corners, recs))
    return CornerCheck(verdicts, worst_over(verdicts, obj.measure, obj.sense, obj.constraints))


def record_folder(run: RunDir, sims: CornerSims, sizing: Mapping[str, float]) -> Path:
    """Where a check of ``run``'s sizing records its simulations: ``corners/<hash>/`` of the run directory, named by
    what they depend on besides the run (the sizing, the corners and the values each sets, a ``process_lib``
    section's too: an edit there is another check, not a replay). A netlist's sizing has no run directory to
    record in (``zoaf check`` records nothing either)."""
    digest = hashlib.sha256(json.dumps(_identity(sims, sizing), sort_keys=True).encode()).hexdigest()[:12]
    return run.folder("corners", digest)


def _identity(sims: CornerSims, sizing: Mapping[str, float]) -> dict[str, Any]:
    return {"sizing": dict(sizing), "corners": [c.as_json() for c in sims.corners],
            "corner_values": [dict(sorted(v.items())) for v in sims.overrides]}

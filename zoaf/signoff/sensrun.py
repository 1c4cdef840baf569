"""``zoaf sensitivity``: difference every parameter at a run's best sizing (:mod:`.sensitivity` chooses the
steps and extrapolates), the simulations recorded in ``RUN_DIR/sensitivity/`` and replayed when run again.

Cost: the sizing itself (from the run's history when it holds it) plus, per parameter, 4 simulations (central,
two levels; 2 one-sided at a bound), and 2 more (1 one-sided) for each continuous parameter whose first
estimate's error is above the tolerance: at most 1 + 6d."""
from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from .. import units
from ..errors import InputError
from ..evaluate import Evaluator
from ..history import Record, RunMeta
from ..outfile import json_text, write_file
from ..problem import Problem, Status
from .cornerrun import CornerSims
from .rundir import RunDir, recorded
from .sensitivity import (FIRST_LEVELS, Sensitivities, Stencil, extrapolate, needs_level, normalize, quotients,
                          step_words, stencils)

_GOOD = (Status.OK, Status.CACHED)
#: (parameter index, level, offset) -> {"x": the value simulated, "m": its measures, "e": its error}
Points = dict[tuple[int, int, float], dict]


def sensitivity(run: RunDir, *, corner: int | str | None = None, workers: int = 1) -> Sensitivities:
    """The sensitivities of every measure of the spec to every parameter at the run's best sizing (at ``corner``
    of a corner run: its index in ``run.corners`` or its name)."""
    corner = _corner_index(run, corner)
    p = run.problem
    x0 = np.array([run.params[n] for n in p.names], float)
    (at, why), used = _centre(run, corner, x0, workers), 1
    sts = stencils(p.parameters, x0)
    got: Points = {}
    asked = [(st, level) for st in sts for level in range(min(FIRST_LEVELS, st.levels))]
    used += _simulate(run, corner, x0, asked, got, workers, "levels")
    est = _estimates(run, x0, at, sts, got)
    more = [(st, FIRST_LEVELS) for st in sts if needs_level(st, [e[st.index] for e in est.values()], FIRST_LEVELS)]
    if more:
        used += _simulate(run, corner, x0, more, got, workers, "halved")
        est = _estimates(run, x0, at, sts, got)
    names = list(est)
    matrix = np.array([[est[m][j][0] for j in range(p.dim)] for m in names]).reshape(len(names), p.dim)
    error = np.array([[est[m][j][1] for j in range(p.dim)] for m in names]).reshape(len(names), p.dim)
    steps = {p.names[st.index]: step_words(p.parameters[st.index], float(x0[st.index]), st) for st in sts}
    return Sensitivities(tuple(names), tuple(p.names), matrix, error, dict(at), steps, used,
                         unknown=_unknown(run, at, why, got))


def _unknown(run: RunDir, at: Mapping[str, float], why: str | None, got: Points) -> tuple[str, ...]:
    """Why entries are unknown, in words: a measure of the spec the sizing lacks (its error), a parameter whose
    perturbed points all lack a measure the sizing has (their first error): its column showed "—", unsaid."""
    p, out = run.problem, []
    lost = [m for m in p.spec.measures if m not in at]
    if lost:
        out.append(f"{', '.join(lost)}: not measured at the sizing ({why or 'no error text'})")
    for j, name in enumerate(p.names):
        pts = [v for (k, _, _), v in got.items() if k == j]
        gone = [m for m in p.spec.measures if m in at and not any(m in v["m"] for v in pts)]
        if pts and gone:
            error = next((v["e"] for v in pts if v["e"]), "no error text")
            out.append(f"{name}: {', '.join(gone)} not measured at any of its {len(pts)} perturbed points ({error})")
    return tuple(" ".join(line.split()) for line in out)


def _corner_index(run: RunDir, corner: int | str | None) -> int | None:
    """``corner`` as an index of the run's corners: -1 was the last corner and 1.0 or True the second, unsaid; a
    name, or an index past them, a traceback."""
    names = [c.name for c in run.corners]
    if corner is None:
        return None
    if not names:
        raise InputError(f"corner {units.echo(corner)}: {run.path} is not a corner run")
    if isinstance(corner, str) and corner.lower() in names:
        return names.index(corner.lower())
    if isinstance(corner, (int, np.integer)) and not isinstance(corner, (bool, np.bool_)) \
            and 0 <= corner < len(names):
        return int(corner)
    raise InputError(f"corner {units.echo(corner)}: give one of the run's corners, by name or index 0..{len(names) - 1}"
                     f": {', '.join(names)}")


def _centre(run: RunDir, corner: int | None, x0: np.ndarray, workers: int) -> tuple[dict[str, float], str | None]:
    """The best sizing's measures (at ``corner``) and its error (why it lacks a measure): from the run's history,
    else simulated; one that does not simulate is one line naming the deck, before any difference is simulated."""
    names = run.problem.names
    rec = next((r for r in run.records if r.status in _GOOD and (corner is None or r.params.get("corner") == corner)
                and all(r.params.get(n) == v for n, v in zip(names, x0))), None)
    if rec is None:
        rec = _top_up(run, corner, run.problem.to_unit(x0)[None], workers, "at")[0]
    if rec.status not in _GOOD:
        at = "" if corner is None else f" at corner {run.corners[corner].name}"
        raise InputError(f"{run.problem.netlist.path}: the best sizing of {run.path} does not simulate{at} "
                         f"({' '.join(str(rec.outcome.error).split())}): no sensitivity to take there")
    return dict(rec.outcome.measures), rec.outcome.error


def _simulate(run: RunDir, corner: int | None, x0: np.ndarray, asked: Sequence[tuple[Stencil, int]], got: Points,
              workers: int, tag: str) -> int:
    """Simulate the stencil points of ``asked`` (stencil, level) into ``got``; returns how many."""
    p = run.problem
    keys, xs = [], []
    for st, level in asked:
        for off in st.offsets(level):
            x = x0.copy()
            x[st.index] += off
            keys.append((st.index, level, off))
            xs.append(x)
    recs = _top_up(run, corner, p.to_unit(np.array(xs)), workers, tag)
    for key, r in zip(keys, recs):
        got[key] = {"x": float(r.params[p.names[key[0]]]), "m": r.outcome.measures if r.status in _GOOD else {},
                    "e": r.outcome.error}
    return len(recs)


def _estimates(run: RunDir, x0: np.ndarray, at: Mapping[str, float], sts: Sequence[Stencil], got: Points
               ) -> dict[str, list[tuple[float, float]]]:
    """Per spec measure, per parameter: (normalized sensitivity, its estimated error); NaN where the measure
    is ~0 at the sizing (no relative sensitivity) or was not taken."""
    p = run.problem
    out = {}
    for name in p.spec.measures:
        row = [(math.nan, math.nan)] * p.dim
        ref = at.get(name, math.nan)
        seen = [abs(v["m"][name]) for v in got.values() if math.isfinite(v["m"].get(name, math.nan))]
        if math.isfinite(ref) and abs(ref) > 1e-9 * max(seen, default=0.0):
            for st in sts:
                j = st.index
                mine = {(level, off): v for (k, level, off), v in got.items() if k == j}
                slope, err = extrapolate(quotients(st, float(x0[j]), at, mine, name), st.direction == 0)
                row[j] = normalize(p.parameters[j], float(x0[j]), slope, err, ref)
        out[name] = row
    return out


def _top_up(run: RunDir, corner: int | None, u: np.ndarray, workers: int, tag: str) -> list[Record]:
    """Simulate box points ``u`` near the best sizing, recorded in ``RUN_DIR/sensitivity/<tag>-<points hash>/``
    (replayed when the same points are asked again; a run continued since gets its own directory)."""
    problem: Problem = run.problem
    pts = u
    if corner is not None:
        problem = CornerSims(run.problem, run.corners)
        pts = np.hstack([u, np.full((len(u), 1), corner)])
    digest = hashlib.sha256(json.dumps([u.tolist(), corner]).encode()).hexdigest()[:12]
    meta = RunMeta({"run": str(run.path), "points": u.tolist(), "corner": corner}, tag, len(u), None)
    with recorded(run.folder("sensitivity", f"{tag}-{digest}"), meta) as hist, \
            Evaluator(problem, workers=min(workers, len(u)), timeout=run.problem.timeout) as ev:
        ev.record_to(hist)
        return ev.evaluate(pts, tag)


def write_outputs(s: Sensitivities, out: Path, title: str) -> None:
    from .plots import plot_heatmap

    try:
        out.mkdir(parents=True, exist_ok=True)
        write_file(out / "sensitivity.json", json_text(s.as_json(), indent=2) + "\n")
        plot_heatmap(s.matrix, s.measures, s.params, out / "heatmap.png", title)
    except OSError as e:              # a file named `sensitivity`, a full disk: the simulations stay recorded
        raise InputError(f"{out}: cannot write the sensitivities ({e.strerror or e})") from None

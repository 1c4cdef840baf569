"""``zoaf sensitivity``: fit the run's own simulations near its best sizing, top up thin coordinates (at most
2d simulations, recorded in ``RUN_DIR/sensitivity/history.db`` and replayed when run again), write the matrix."""
from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from .. import __version__
from ..errors import InputError
from ..evaluate import Evaluator
from ..history import History, RunMeta
from ..outfile import write_file
from ..problem import Problem, Status
from ..rundir import run_directory
from .cornerrun import CornerSims
from .rundir import RunDir
from .sensitivity import STEP, Sensitivities, central, fit, neighbourhood


def _history_points(run: RunDir, corner: int | None) -> tuple[np.ndarray, list[dict], np.ndarray]:
    """(box points, measures, physical points) of the run's good simulations (at ``corner`` in a corner run)."""
    p = run.problem
    d = p.dim
    recs = [r for r in run.records if r.status in (Status.OK,)
            and (corner is None or r.params.get("corner") == corner)]
    x = np.array([[r.params[n] for n in p.names] for r in recs], float).reshape(-1, d)
    return p.to_unit(x), [r.outcome.measures for r in recs], x     # integers at their cells' centres


def sensitivity(run: RunDir, *, corner: int | None = None, workers: int = 1, step: float = STEP
                ) -> tuple[Sensitivities, int]:
    """The sensitivities at the run's best sizing and the top-up simulations in the fit (replayed ones too)."""
    p = run.problem
    x0 = np.array([run.params[n] for n in p.names], float)
    u0 = p.to_unit(x0)
    u, measures, x = _history_points(run, corner)
    hood = neighbourhood(u, u0, p.unit_steps, step=step)
    steps = np.maximum(step, p.unit_steps * 1.01)
    extra = np.array([np.clip(u0 + s * steps[j] * np.eye(p.dim)[j], 0, 1) for j in hood.thin for s in (1, -1)])
    new_u, new_m, charged = _top_up(run, corner, extra.reshape(-1, p.dim), workers)
    at = next((m for m, xi in zip(measures, x) if np.array_equal(xi, x0)), None)
    if at is None:                       # the best sizing itself, at this corner: not in the history
        _, found, extra_sims = _top_up(run, corner, u0[None], workers, tag="at")
        if not found:
            raise InputError(f"{run.path}: the best sizing does not simulate at this corner")
        at, charged = found[0], charged + extra_sims
    known = _central(p, hood.thin, extra, new_u, new_m)
    xs = x[hood.index]
    ms = [measures[i] for i in hood.index]
    return fit(p.parameters, xs, ms, hood.weights, x0, at, list(p.spec.measures), known), charged


def _central(p: Problem, thin: Sequence[int], asked: np.ndarray, got_u: np.ndarray, got_m: list[dict]
             ) -> dict[int, dict[str, float]]:
    """Central differences along the thin coordinates whose two top-up simulations both came back."""
    by_point = {tuple(u): m for u, m in zip(got_u, got_m)}
    known = {}
    for k, j in enumerate(thin):
        plus, minus = by_point.get(tuple(asked[2 * k])), by_point.get(tuple(asked[2 * k + 1]))
        if plus is not None and minus is not None:
            known[j] = central(p.parameters, j, p.to_physical(asked[2 * k]), p.to_physical(asked[2 * k + 1]),
                               plus, minus)
    return known


def _top_up(run: RunDir, corner: int | None, u: np.ndarray, workers: int, tag: str = "top-up"
            ) -> tuple[np.ndarray, list[dict], int]:
    """Simulate box points ``u`` near the best sizing, recorded in ``RUN_DIR/sensitivity/<tag>-<points hash>/``
    (replayed when the same points are asked again; a run continued since gets its own directory)."""
    if not len(u):
        return u, [], 0
    problem: Problem = run.problem
    pts = u
    if corner is not None:
        problem = CornerSims(run.problem, run.corners)
        pts = np.hstack([u, np.full((len(u), 1), corner)])
    digest = hashlib.sha256(json.dumps([u.tolist(), corner]).encode()).hexdigest()[:12]
    out = run.path / "sensitivity" / f"{tag}-{digest}"
    with run_directory(out, resume=os.path.lexists(out / "history.db")), History(out / "history.db") as hist, \
            Evaluator(problem, workers=min(workers, len(u))) as ev:
        if not hist.meta():
            hist.set_run(RunMeta({"run": str(run.path), "points": u.tolist(), "corner": corner}, tag, len(u), None),
                         zoaf=__version__, started=time.time())
        ev.record_to(hist)
        recs = ev.evaluate(pts, tag)
    good = [r for r in recs if r.status in (Status.OK, Status.CACHED)]
    return np.array([r.u[:run.problem.dim] for r in good]).reshape(-1, run.problem.dim), \
        [r.outcome.measures for r in good], sum(r.charged for r in recs)


def write_outputs(s: Sensitivities, out: Path, title: str) -> None:
    from .plots import plot_heatmap

    try:
        out.mkdir(parents=True, exist_ok=True)
        write_file(out / "sensitivity.json", json.dumps(s.as_json(), indent=2) + "\n")
        plot_heatmap(s.matrix, s.measures, s.params, out / "heatmap.png", title)
    except OSError as e:              # a file named `sensitivity`, a full disk: the top-ups stay recorded
        raise InputError(f"{out}: cannot write the sensitivities ({e.strerror or e})") from None

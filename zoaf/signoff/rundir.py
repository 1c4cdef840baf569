"""Read a run directory back: its problem (netlist, spec, objective, corners), best sizing and history."""
from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..circuit import CircuitProblem
from ..errors import InputError
from ..history import History, Record
from ..outfile import read_json
from .corners import Corner


@dataclass
class RunDir:
    path: Path
    problem: CircuitProblem
    params: dict[str, float]             # the best sizing (result.json)
    records: list[Record]                # one per simulation (a corner run: per sizing and corner)
    corners: tuple[Corner, ...]          # the corners the run judged over (empty: nominal)


def load_run(path: Path, spec: Path | None = None) -> RunDir:
    """The run in ``path`` (``history.db`` and ``result.json``), its netlist read again from where it was run."""
    db, result = path / "history.db", path / "result.json"
    for f in (db, result):
        if not f.is_file():
            raise InputError(f"{path}: not a finished run directory (no {f.name})")
    try:
        with History(db, read=True) as h:
            meta, records = h.meta(), h.records()
    except sqlite3.DatabaseError as e:
        raise InputError(f"{db}: not a zoaf run history ({e})") from None
    problem_meta: dict[str, Any] = meta.get("problem", {})
    if not isinstance(problem_meta, dict) or not isinstance(problem_meta.get("netlist", ""), str):
        raise InputError(f"{db}: not a zoaf run history (its problem is not what zoaf writes)")
    if "netlist" not in problem_meta:       # zoaf.minimize's, say: its problem was a Python function
        raise InputError(f"{db}: a run of {str(problem_meta.get('name', 'a Python problem'))!r}, not a circuit run: "
                         "sign-off simulates a netlist, and this run has none")
    netlist = Path(problem_meta["netlist"])
    if not netlist.is_file():
        raise InputError(f"{db}: the run's netlist {netlist} is not found (run from where the run was started)")
    problem = CircuitProblem(netlist, spec, objective=problem_meta.get("objective"))
    _check_same(db, problem, problem_meta)
    content = read_json(result)
    params = content.get("params") if isinstance(content, dict) else None
    if not params or not isinstance(params, dict):
        raise InputError(f"{result}: the run has no best sizing")
    names = [c["name"] for c in problem_meta.get("corners", [])]
    corners = problem.spec.corners.select(names, f"{db}: corners") if names and problem.spec.corners else ()
    return RunDir(path, problem, params, records, tuple(corners))


def _check_same(db: Path, problem: CircuitProblem, recorded: dict[str, Any]) -> None:
    """Refuse a netlist (or an included file) or spec changed since the run: sign-off would mix the run's
    simulations with those of another circuit, or read its sizing with other bounds, and say nothing."""
    now = problem.metadata()
    if recorded.get("netlist_sha256") not in (None, now["netlist_sha256"]):
        raise InputError(f"{db}: the run's netlist {problem.netlist.path} (or a file it includes) changed since the "
                         "run; restore it, or optimize the edited one anew")
    if recorded.get("spec_sha256") not in (None, now["spec_sha256"]):
        raise InputError(f"{db}: the spec {problem.spec.path} is not the one the run used (its content differs); "
                         "give the run's spec with --spec")


def worst_corner(run: RunDir) -> int:
    """A corner run's corner (index) that set the best sizing's worst case: every sizing was simulated there
    first once an incumbent existed, so it also holds the most history near the best sizing."""
    rows = [r for r in run.records if all(r.params.get(n) == v for n, v in run.params.items())]
    if not rows:
        raise InputError(f"{run.path}: the best sizing is not in history.db")
    return int(max(rows, key=lambda r: (r.fom, -r.params["corner"])).params["corner"])

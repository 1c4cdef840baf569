"""Run history in SQLite: one append-only row per simulation, committed as it completes.

Contract (as Optuna's storages state theirs): rows are never updated or deleted; every write is one
transaction through ``_tx``; WAL mode, so another process may read while a run writes. Resume is a replay
of these rows. Floats are stored as JSON written with ``repr`` and so round-trip bit-exactly.
"""
from __future__ import annotations

import json
import math
import sqlite3
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from .problem import Outcome, Status

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS evals (
    idx INTEGER PRIMARY KEY, u TEXT NOT NULL, params TEXT NOT NULL, measures TEXT NOT NULL,
    fom REAL, objective REAL, feasible INTEGER, status TEXT NOT NULL, error TEXT,
    seconds REAL NOT NULL, phase TEXT NOT NULL, charged INTEGER NOT NULL, wall REAL NOT NULL
);
"""


@dataclass
class Record:
    """One simulator call (or cache hit) of a run."""

    idx: int
    u: np.ndarray               # the point in the unit box, as asked
    params: dict[str, float]    # physical values simulated
    outcome: Outcome
    phase: str
    charged: bool               # counted against the budget (False for cache hits)
    wall: float                 # seconds since the run started, when the result came back

    @property
    def fom(self) -> float:
        return self.outcome.fom


def _num(v: float | None) -> float | None:
    # SQLite has no inf/nan REAL literal problems through Python, but keep NaN out (it becomes NULL).
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else v


class History:
    """Append-only SQLite history of one run; ``History(None)`` keeps it in memory."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = None if path is None else Path(path)
        self._db = sqlite3.connect(":memory:" if path is None else str(path), timeout=30.0)
        if path is not None:
            self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)

    def __enter__(self) -> "History":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        try:
            yield self._db
            self._db.commit()
        except BaseException:
            self._db.rollback()
            raise

    def set_meta(self, meta: dict[str, Any]) -> None:
        with self._tx() as db:
            db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)",
                           [(k, json.dumps(v, default=str)) for k, v in meta.items()])

    def meta(self) -> dict[str, Any]:
        return {k: json.loads(v) for k, v in self._db.execute("SELECT key, value FROM meta")}

    def append(self, rec: Record) -> None:
        o = rec.outcome
        with self._tx() as db:
            db.execute("INSERT INTO evals VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", (
                rec.idx, json.dumps([float(v) for v in rec.u]), json.dumps(rec.params), json.dumps(o.measures),
                _num(o.fom), _num(o.objective), None if o.feasible is None else int(o.feasible), o.status.value,
                o.error, o.seconds, rec.phase, int(rec.charged), rec.wall))

    def __len__(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM evals").fetchone()[0]

    def records(self) -> list[Record]:
        rows = self._db.execute("SELECT * FROM evals ORDER BY idx").fetchall()
        return [Record(idx, np.array(json.loads(u)), json.loads(p),
                       Outcome(Status(st), math.inf if fom is None else fom, json.loads(m), obj,
                               None if feas is None else bool(feas), err, sec), phase, bool(ch), wall)
                for idx, u, p, m, fom, obj, feas, st, err, sec, phase, ch, wall in rows]

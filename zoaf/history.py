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
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from .errors import InputError
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


@dataclass(frozen=True)
class RunMeta:
    """What a resume must find unchanged: the problem (by content), method, budget, seed and options.

    Stored as JSON in the ``meta`` table, one key per field (beside informative keys such as ``zoaf`` or
    ``started`` that are not compared).
    """

    problem: dict[str, Any]
    method: str
    budget: int
    seed: int | None
    options: dict[str, Any]

    #: Problem keys that say where the problem was read from, not what it is: a run directory moved, or a
    #: netlist reached by another path (relative, absolute, through a symlink), still resumes.
    LOCATION = ("name", "netlist")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (tuples become lists, as they come back from the database)."""
        return json.loads(json.dumps(asdict(self), default=str))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RunMeta | None":
        """The run metadata in ``data`` (a ``meta`` table), or None when it holds none."""
        try:
            return cls(dict(data["problem"]), data["method"], data["budget"], data["seed"], dict(data["options"]))
        except (KeyError, TypeError, ValueError):
            return None

    def differences(self, recorded: "RunMeta") -> list[tuple[str, Any, Any]]:
        """(field, recorded value, this value) for each field that differs (``problem.<key>`` for the problem's
        own), locations ignored."""
        now, then = self._flat(), recorded._flat()
        return [(k, then.get(k), now.get(k)) for k in sorted(now.keys() | then.keys()) if now.get(k) != then.get(k)]

    def _flat(self) -> dict[str, Any]:
        d = self.to_dict()
        problem = d.pop("problem")
        return {**d, **{f"problem.{k}": v for k, v in problem.items() if k not in self.LOCATION}}


def _num(v: float | None) -> float | None:
    # SQLite has no inf/nan REAL literal problems through Python, but keep NaN out (it becomes NULL).
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else v


class History:
    """Append-only SQLite history of one run; ``History(None)`` keeps it in memory."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = None if path is None else Path(path)
        with self._errors("open"):
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
    def _errors(self, what: str) -> Iterator[None]:
        """SQLite's errors as one InputError naming the file: a full disk or a read-only run directory is the
        user's to fix, and the rows committed before stay (each row is its own transaction)."""
        where = self.path or "history"
        try:
            yield
        except sqlite3.OperationalError as e:
            raise InputError(f"{where}: cannot {what} the run history ({e}){self._kept(what)}") from None
        except sqlite3.DatabaseError as e:
            if type(e) is not sqlite3.DatabaseError or what == "write":
                raise
            raise InputError(f"{where}: not a zoaf run history ({e})") from None

    def _kept(self, what: str) -> str:
        if what != "write":
            return ""
        try:
            return f"; the {len(self)} simulations recorded before it are kept: make room, then resume the run"
        except sqlite3.Error:
            return ""

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._errors("write"):
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
        with self._errors("read"):
            return {k: json.loads(v) for k, v in self._db.execute("SELECT key, value FROM meta")}

    def run_meta(self) -> RunMeta | None:
        """The recorded run's identity (None for a history without one, e.g. cut off before it started)."""
        return RunMeta.from_dict(self.meta())

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
        with self._errors("read"):
            rows = self._db.execute("SELECT * FROM evals ORDER BY idx").fetchall()
        return [Record(idx, np.array(json.loads(u)), json.loads(p),
                       Outcome(Status(st), math.inf if fom is None else fom, json.loads(m), obj,
                               None if feas is None else bool(feas), err, sec), phase, bool(ch), wall)
                for idx, u, p, m, fom, obj, feas, st, err, sec, phase, ch, wall in rows]

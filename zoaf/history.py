"""Run history in SQLite: one append-only row per simulation, committed as it completes; the run's identity
(:class:`RunMeta`, :mod:`zoaf.runmeta`) stored in its ``meta`` table.

Contract (as Optuna's storages state theirs): rows are never updated or deleted; every write is one
transaction through ``_tx``; WAL mode, so another process may read while a run writes. A reader never writes
the file nor those beside it (:mod:`zoaf.historyfiles`): a run directory may be someone else's. Resume is a
replay of these rows. Floats are stored as JSON written with ``repr`` and so round-trip bit-exactly.

Schema 2 (this version) adds each row's constraint values and objective on the FoM's scale, which a
constraint-aware method is told on replay. A schema-1 history (no such columns) still reads (its rows have
no constraint values) but cannot be resumed: the replayed method would be told less than it was.
"""
from __future__ import annotations

import json
import math
import os
import re
import shutil
import sqlite3
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np

from .errors import InputError
from .historyfiles import MAX_VALUE_BYTES, connect, connect_to_read, refuse_journal
from .methodconfig import MAX_BUDGET
from .outfile import check_own
from .problem import Outcome, Status
from .runmeta import RunMeta, changed_settings

__all__ = ["History", "Record", "RunMeta", "changed_settings", "SCHEMA_VERSION", "max_rows"]

#: Bumped when a row gains what a resumed run must be told; older histories read but do not resume.
SCHEMA_VERSION = 2

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS evals (
    idx INTEGER PRIMARY KEY, u TEXT NOT NULL, params TEXT NOT NULL, measures TEXT NOT NULL,
    fom REAL, objective REAL, feasible INTEGER, status TEXT NOT NULL, error TEXT,
    seconds REAL NOT NULL, phase TEXT NOT NULL, charged INTEGER NOT NULL, wall REAL NOT NULL,
    objective_fom REAL, constraints TEXT NOT NULL DEFAULT '[]'
);
"""
#: The file and those SQLite opens beside it, unseen by zoaf: a received run directory's ``-journal`` is read as a
#: hot journal on every open, WAL mode or not, and a FIFO there hung zoaf forever (SQLite retries the read through
#: signals, so Ctrl-C did not end it); a ``-wal`` FIFO blocked the first write of a resume.
_SQLITE_FILES = ("", "-journal", "-wal", "-shm")
#: Rows read per simulation of a run's recorded budget (each simulation once, and its free cache hits: at most a
#: third of a budget in every run measured), and beyond them (the free batches that end a run, 64 points wide).
ROWS_PER_SIMULATION, FREE_ROWS = 10, 2**14
#: The rows of a history that records no budget (a Monte Carlo run: at most 1,000,000 samples), and of its meta
#: table (zoaf writes some twenty keys).
MAX_ROWS, MAX_META_ROWS = 2**20, 1000
#: The most text a history's rows may hold in all (zoaf writes under a KiB a row): what a row reads back is not
#: bounded by its file (cells of a crafted file may share one 15 MiB overflow chain: 16,384 of them, 240 GiB).
MAX_ROWS_BYTES = 2**30
#: The one column default zoaf's schema has: a row read back with a column it does not store gets the default,
#: so a 15 MiB default made every one of a small file's rows 15 MiB.
_DEFAULTS = {("evals", "constraints"): "'[]'"}
#: The keyword of a table's ``CHECK`` constraint (zoaf's tables have none; a name holding the word is refused too).
_CHECK = re.compile(r"\bcheck\b", re.IGNORECASE)
_COLUMNS = ("idx", "u", "params", "measures", "fom", "objective", "feasible", "status", "error", "seconds",
            "phase", "charged", "wall", "objective_fom", "constraints")


@lru_cache(maxsize=1)
def _own_not_null() -> frozenset[tuple[str, str]]:
    """The (table, column) pairs zoaf's own schema declares NOT NULL: a received table may declare no other."""
    db = sqlite3.connect(":memory:")
    try:
        db.executescript(_SCHEMA)
        return frozenset((t, c[1]) for t in ("meta", "evals") for c in db.execute(f"PRAGMA table_info({t})") if c[3])
    finally:
        db.close()


@dataclass(frozen=True, eq=False)
class Record:
    """One simulator call (or cache hit) of a run: the one type the ``Evaluator`` hands back.

    ``eq=False``: records compare by identity (``u`` is an array); compare ``as_row()`` for content."""

    idx: int
    u: np.ndarray               # the point in the unit box, as asked
    params: dict[str, float]    # physical values simulated
    outcome: Outcome
    phase: str
    wall: float                 # seconds since the run started, when the result came back

    def as_row(self) -> tuple:
        return (self.idx, self.u.tolist(), self.params, self.outcome, self.phase, self.wall)

    @property
    def charged(self) -> bool:
        """Counted against the budget: every simulator call, failed ones included; cache hits are free."""
        return self.outcome.status != Status.CACHED

    @property
    def cost(self) -> int:
        """Simulations this record stands for (a corner run's sizing record: one per corner simulated)."""
        return int(self.charged)

    @property
    def status(self) -> Status:
        return self.outcome.status

    @property
    def fom(self) -> float:
        return self.outcome.fom


def _num(v: float | None) -> float | None:
    # SQLite has no inf/nan REAL literal problems through Python, but keep NaN out (it becomes NULL).
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else v


def _budget_or_none(budget: Any) -> bool:
    """Whether a history's recorded budget is none, or a whole number of simulations a run can have (0: samples)."""
    return budget is None or isinstance(budget, int) and not isinstance(budget, bool) and 0 <= budget <= MAX_BUDGET


def _check_schema(path: Path | None, schema: Any) -> None:
    """InputError for a history a newer zoaf recorded (meta ``schema`` past :data:`SCHEMA_VERSION`): it was resumed
    (rows of this layout appended to a file of another) and read as far as a row this zoaf does not know, then
    refused as "not a zoaf run history"."""
    if isinstance(schema, bool) or not isinstance(schema, int) or schema < 1:
        raise InputError(f"{path}: not a zoaf run history (meta: schema {schema!r:.40} is not what zoaf writes)")
    if schema > SCHEMA_VERSION:
        raise InputError(f"{path}: recorded by a newer zoaf (history schema {schema}; this one reads schemas 1 to "
                         f"{SCHEMA_VERSION}): read or resume it with that zoaf (upgrade this one)")


def max_rows(budget: Any) -> int:
    """The most rows a history of a run of ``budget`` simulations holds (:data:`ROWS_PER_SIMULATION`); one that
    records no budget (not a whole number >= 1) at most :data:`MAX_ROWS`."""
    if isinstance(budget, int) and not isinstance(budget, bool) and budget >= 1:
        return budget * ROWS_PER_SIMULATION + FREE_ROWS
    return MAX_ROWS


class History:
    """Append-only SQLite history of one run; ``History(None)`` keeps it in memory."""

    def __init__(self, path: str | Path | None = None, *, read: bool = False) -> None:
        """``read``: only read the file (a report, a resume's defaults): it is neither made nor changed, and
        one without the tables of a history is an InputError. The file must be a regular file of the run
        directory's own (SQLite would open a link's target: another program's database)."""
        self.path = None if path is None else Path(path)
        if self.path is not None:
            for suffix in _SQLITE_FILES:
                check_own(Path(f"{self.path}{suffix}"))
            if not read:
                refuse_journal(self.path)
        if read and self.path is not None and not os.path.lexists(self.path):   # SQLite would make an empty file
            raise InputError(f"{self.path}: no such run history")
        fresh = self.path is not None and not read and not os.path.lexists(self.path)
        self._private: Path | None = None       # a reader's copy (:func:`connect_to_read`), removed at close
        try:
            with self._errors("open"):
                if read and self.path is not None:
                    self._db, self._private = connect_to_read(self.path)
                else:
                    self._db = connect(self.path)
                if not read:
                    if path is not None:
                        self._db.execute("PRAGMA journal_mode=WAL")
                    self._db.executescript(_SCHEMA)
                self._columns = [row[1] for row in self._db.execute("PRAGMA table_info(evals)")]
                tables = {row[0] for row in self._db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        except BaseException:
            if fresh:
                self.discard()
            else:
                self.close()
            raise
        if not {"meta", "evals"} <= tables:
            self.close()
            raise InputError(f"{self.path}: not a zoaf run history (no meta and evals tables)")
        odd = self._foreign_parts()
        if odd:
            self.close()
            raise InputError(f"{self.path}: not a zoaf run history ({odd}, which zoaf does not write)")

    def _foreign_parts(self) -> str | None:
        """What of the file zoaf never makes, else None. A received run directory is read as data: a generated
        column is computed on every read (one can take seconds a row) and a trigger or view runs SQL of the
        file's author, so a history holding one is refused before any row is read; so is an index zoaf does not
        make, or a ``CHECK`` constraint (its expression is computed on every row zoaf writes: 16 MiB values refused a
        resume's first row, and ``instr`` of two MiB strings took hours a row; a write connection runs none either:
        :func:`zoaf.historyfiles.connect`); so is a ``NOT NULL`` or ``UNIQUE`` zoaf's schema lacks (a row simulated,
        then refused or, ``ON CONFLICT IGNORE``, dropped unsaid)."""
        with self._errors("read"):
            extra = self._db.execute("SELECT type, name FROM sqlite_master WHERE type IN ('trigger', 'view') OR "
                                     "type = 'index' AND sql IS NOT NULL LIMIT 1").fetchone()
            if extra is not None:
                return f"{extra[0]} {extra[1]!r}"
            for table, sql in self._db.execute("SELECT name, sql FROM sqlite_master WHERE type = 'table' AND "
                                              "name IN ('meta', 'evals')"):
                if _CHECK.search(str(sql)):        # the keyword every CHECK constraint is written with
                    return f"a CHECK constraint in table {table}"
            for table in ("meta", "evals"):
                columns = self._db.execute(f"PRAGMA table_xinfo({table})").fetchall()
                hidden = [c[1] for c in columns if c[6] != 0]
                if hidden:
                    return f"hidden or generated column {hidden[0]!r} in table {table}"
                odd = [c[1] for c in columns if c[4] not in (None, _DEFAULTS.get((table, c[1])))]
                if odd:
                    return f"a default value of column {odd[0]!r} in table {table}"
                strict = [c[1] for c in columns if c[3] and (table, c[1]) not in _own_not_null()]
                if strict:                      # a row zoaf writes with that column NULL is refused, or dropped
                    return f"a NOT NULL constraint on column {strict[0]!r} in table {table}"
                unique = self._db.execute("SELECT name FROM pragma_index_list(?) WHERE origin = 'u' LIMIT 1",
                                          (table,)).fetchone()
                if unique:                      # a point simulated again would be refused
                    return f"a UNIQUE constraint ({unique[0]!r}) in table {table}"
        return None

    def discard(self) -> None:
        """Close and remove a history that holds no run (its open or first write failed: a full disk): an empty
        ``history.db`` left behind would refuse both a new run there and its resume."""
        if getattr(self, "_db", None) is not None:
            self._db.close()
        for suffix in _SQLITE_FILES:
            with suppress(OSError):
                Path(f"{self.path}{suffix}").unlink(missing_ok=True)

    def __enter__(self) -> "History":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if getattr(self, "_db", None) is not None:
            self._db.close()
        if self._private is not None:
            shutil.rmtree(self._private, ignore_errors=True)
            self._private = None

    @property
    def schema(self) -> int:
        """The row layout of this file: 1 before constraint values were recorded."""
        return SCHEMA_VERSION if "constraints" in self._columns else 1

    def check_resumable(self, out_option: str = "--out") -> None:
        """InputError for a history this zoaf cannot resume, naming ``out_option``, the caller's way to another run
        directory (the command line's, or ``out=`` from Python)."""
        if self.schema < SCHEMA_VERSION:
            raise InputError(f"{self.path}: cannot resume: recorded by an older zoaf (history schema {self.schema}, "
                             f"without constraint values); start a new run in another {out_option}")

    @contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        """SQLite's errors as one InputError naming the file: a full disk or a read-only run directory is the
        user's to fix, and the rows committed before stay (each row is its own transaction)."""
        where = self.path or "history"
        try:
            yield
        except sqlite3.OperationalError as e:
            raise InputError(f"{where}: cannot {what} the run history ({e}){self._kept(what, e)}") from None
        except sqlite3.IntegrityError as e:   # a constraint zoaf's rows break (a received file's): a traceback
            raise InputError(f"{where}: not a zoaf run history ({e}, a constraint zoaf does not write)") from None
        except sqlite3.DataError as e:         # a value past MAX_VALUE_BYTES: read, or computed by a received
            # file's CHECK as zoaf writes a row (zoaf's own rows hold KiB): a traceback on resume
            by = ", by a constraint zoaf does not write" if what == "write" else ""
            raise InputError(f"{where}: not a zoaf run history ({e}, over {MAX_VALUE_BYTES // 2**20} MiB{by})") \
                from None
        except sqlite3.DatabaseError as e:
            if type(e) is not sqlite3.DatabaseError or what == "write":
                raise
            raise InputError(f"{where}: not a zoaf run history ({e})") from None

    def _kept(self, what: str, error: sqlite3.OperationalError) -> str:
        if what != "write" or self.holds_nothing():      # nothing to resume: the run is refused, no directory kept
            return ""
        fix = "end what holds it" if "locked" in str(error) else "make room"    # another process's lock: no disk
        try:
            return f"; the {len(self)} simulations recorded before it are kept: {fix}, then resume the run"
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

    def set_meta(self, meta: Mapping[str, Any]) -> None:
        with self._tx() as db:
            db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)",
                           [(k, json.dumps(v, default=str)) for k, v in meta.items()])

    def set_run(self, run: RunMeta, **environment: Any) -> None:
        """Record a new run's identity and where it ran (versions, machine, start time)."""
        self.set_meta({**run.as_json(), "schema": SCHEMA_VERSION, **environment})

    def meta(self) -> dict[str, Any]:
        with self._errors("read"):
            rows = self._db.execute("SELECT key, value FROM meta LIMIT ?", (MAX_META_ROWS + 1,)).fetchall()
        if len(rows) > MAX_META_ROWS:
            raise InputError(f"{self.path}: not a zoaf run history (more than {MAX_META_ROWS} meta rows)")
        try:
            data = {str(k): json.loads(v) for k, v in rows}
        except (TypeError, ValueError, RecursionError) as e:
            raise InputError(f"{self.path}: not a zoaf run history (meta: {e})") from None
        if not _budget_or_none(data.get("budget")):   # it sizes the rows read and the plots: 10**400 overflowed
            raise InputError(f"{self.path}: not a zoaf run history (meta: budget {data['budget']!r:.40} is not what "
                             "zoaf writes)")
        _check_schema(self.path, data.get("schema", 1))
        return data

    def run_meta(self) -> RunMeta | None:
        """The recorded run's identity (None for a history without one, e.g. cut off before it started)."""
        data = self.meta()              # its own InputError, not wrapped in "meta: FILE: not a zoaf run history"
        try:
            return RunMeta.from_dict(data)
        except ValueError as e:
            raise InputError(f"{self.path}: not a zoaf run history (meta: {e})") from None

    def append(self, rec: Record) -> None:
        o = rec.outcome
        with self._tx() as db:
            # OR ABORT, whatever conflict clause a received table declares (ON CONFLICT IGNORE: a row dropped unsaid)
            columns, marks = ", ".join(_COLUMNS), ", ".join("?" * len(_COLUMNS))
            db.execute(f"INSERT OR ABORT INTO evals ({columns}) VALUES ({marks})", (
                rec.idx, json.dumps([float(v) for v in rec.u]), json.dumps(rec.params), json.dumps(o.measures),
                _num(o.fom), _num(o.objective), None if o.feasible is None else int(o.feasible), o.status.value,
                o.error, o.seconds, rec.phase, int(rec.charged), rec.wall, _num(o.objective_fom),
                json.dumps(list(o.constraints))))

    def holds(self, idx: int) -> bool:
        """Whether row ``idx`` is stored (committed: an append that Ctrl-C cut after its commit)."""
        with self._errors("read"):
            return self._db.execute("SELECT 1 FROM evals WHERE idx = ?", (idx,)).fetchone() is not None

    def holds_nothing(self) -> bool:
        """No run metadata and no row (False when it cannot be read: then it is kept)."""
        try:
            return self.run_meta() is None and len(self) == 0
        except (sqlite3.Error, InputError):
            return False

    def __len__(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM evals").fetchone()[0]

    def records(self) -> list[Record]:
        """Every row, in order; InputError, before any row is read, for more than the recorded budget allows
        (:func:`max_rows`): a received history of millions of rows was loaded whole by a report or a resume."""
        limit = max_rows(self.meta().get("budget"))
        with self._errors("read"):
            found = self._db.execute("SELECT COUNT(*) FROM (SELECT 1 FROM evals LIMIT ?)", (limit + 1,)).fetchone()[0]
        if found > limit:
            raise InputError(f"{self.path}: not a zoaf run history (more than {limit:,} rows, the most a run of its "
                             f"budget records)")
        self._db.row_factory = sqlite3.Row
        try:
            with self._errors("read"):
                columns = ", ".join(c for c in _COLUMNS if c in self._columns)
                rows = self._bounded(self._db.execute(f"SELECT {columns} FROM evals ORDER BY idx"))
        finally:
            self._db.row_factory = None
        try:
            return [_record(row) for row in rows]
        except (TypeError, ValueError, OverflowError, KeyError, IndexError, AttributeError, RecursionError) as e:
            raise InputError(f"{self.path}: not a zoaf run history (a row: {type(e).__name__}: {e})") from None

    def _bounded(self, cursor: sqlite3.Cursor) -> list[sqlite3.Row]:
        """The rows of ``cursor``, read a batch at a time; InputError once they hold more than
        :data:`MAX_ROWS_BYTES` of text, before more is loaded."""
        rows: list[sqlite3.Row] = []
        size = 0
        while batch := cursor.fetchmany(1024):
            size += sum(len(v) for row in batch for v in row if isinstance(v, (str, bytes)))
            if size > MAX_ROWS_BYTES:
                raise InputError(f"{self.path}: not a zoaf run history (its rows hold more than "
                                 f"{MAX_ROWS_BYTES // 2**20} MiB of text)")
            rows += batch
        return rows


def _floats(text: str) -> dict[str, float]:
    """A JSON object of numbers (a row's measures or parameters), checked: a history may come from elsewhere."""
    return {str(k): float(v) for k, v in json.loads(text).items()}


def _opt(v: Any, default: float | None = None) -> float | None:
    return default if v is None else float(v)


def _record(r: sqlite3.Row) -> Record:
    """One row as a Record; TypeError/ValueError/AttributeError when a value is not of its column's kind,
    OverflowError for an integer no float holds (JSON reads ``1`` then 400 zeros exactly)."""
    new = "constraints" in r.keys()
    inf = math.inf
    outcome = Outcome(Status(r["status"]), _opt(r["fom"], inf), _floats(r["measures"]), _opt(r["objective"]),
                      None if r["feasible"] is None else bool(r["feasible"]),
                      None if r["error"] is None else str(r["error"]), float(r["seconds"]),
                      _opt(r["objective_fom"], inf) if new else inf,
                      tuple(float(v) for v in json.loads(r["constraints"])) if new else ())
    return Record(int(r["idx"]), np.array(json.loads(r["u"]), dtype=float), _floats(r["params"]), outcome,
                  str(r["phase"]), float(r["wall"]))

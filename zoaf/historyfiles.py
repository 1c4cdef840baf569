"""A history's SQLite files, as zoaf opens them: a run directory may be someone else's, and SQLite's own open
writes beside the file it opens (:mod:`zoaf.history` holds the rows).

To read, nothing of the run directory is written (:func:`connect_to_read`: immutable, or a bounded private copy);
to write, no rollback journal is rolled back into the history (:func:`refuse_journal`).
"""
from __future__ import annotations

import os
import shutil
import sqlite3
import stat
import tempfile
from pathlib import Path

from .errors import InputError

__all__ = ["MAX_HISTORY_BYTES", "MAX_VALUE_BYTES", "connect", "connect_to_read", "refuse_journal"]

#: The longest value a history's file may hold (a row's parameters, measures or error; a metadata value): zoaf
#: writes KiB. SQLite refuses a longer one as it reads it, so a received file's 1 GiB text is never loaded.
MAX_VALUE_BYTES = 16 * 2**20
#: The most bytes a history and its ``-wal`` may hold together to be copied to be read: twice the rows' text zoaf
#: reads of a history (``zoaf.history.MAX_ROWS_BYTES``), SQLite's pages around it; a received ``-wal`` of 1 TB
#: (a sparse file) was copied whole into the temporary folder.
MAX_HISTORY_BYTES = 2 * 2**30
#: Copies of a history and its ``-wal`` a reader makes before it takes one whose ``-wal`` a checkpoint restarted;
#: bytes read at a time as it copies.
_COPY_TRIES, _BLOCK = 5, 2**20


def connect(path: Path | None) -> sqlite3.Connection:
    """The history's database, opened to write (a run, a resume), or in memory. A received file's ``CHECK``
    constraints are not run: their SQL is its author's, computed on every row zoaf writes, and within the length
    limit it still takes any time (``instr`` of two strings of MiBs compares bytes quadratically: hours a row, which
    Ctrl-C does not end); zoaf's own tables have none."""
    db = sqlite3.connect(":memory:" if path is None else str(path), timeout=30.0)
    db.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, MAX_VALUE_BYTES)
    db.execute("PRAGMA ignore_check_constraints = ON")
    return db


def refuse_journal(path: Path) -> None:
    """InputError for a rollback journal beside the history ``path`` that zoaf is about to open to write (a run, a
    resume, sign-off's simulations): SQLite's open to write rolls a hot one back into the file before zoaf reads a
    row, so a received run's planted journal rewrote the history a resume continued. zoaf's histories are in WAL
    mode: a zoaf run leaves none (SQLite makes one only for the instant it first switches a new file to WAL)."""
    journal = Path(f"{path}-journal")
    if os.path.lexists(journal):
        raise InputError(f"{journal}: a rollback journal, which no zoaf run leaves (its histories are in WAL mode); "
                         f"SQLite would roll it back into {path.name} as zoaf opened it to write: remove it")


def connect_to_read(path: Path) -> tuple[sqlite3.Connection, Path | None]:
    """The history opened only to read, and the private folder to remove once it is closed (None: none made).

    SQLite's own open writes beside a database it only reads: it rolls a hot ``-journal`` back into the file (a
    received run's planted journal rewrote its ``history.db`` and the rows a report showed), checkpoints the
    ``-wal`` into the file and removes it at close, makes a ``-shm``; and a read-only medium refused the open. So a
    history with no rows in a ``-wal`` (a run that ended, or was never killed amid one) is read as immutable: SQLite
    then takes no lock and never opens its ``-journal``, ``-wal`` or ``-shm``. One with rows there (a run killed
    with kill -9, or one still going) is copied with its ``-wal`` (:data:`MAX_HISTORY_BYTES` at most, the two
    together) to a private folder and read there, where SQLite's recovery of the copy moves the rows (reading it
    as immutable skipped them)."""
    wal = Path(f"{path}-wal")
    if not wal.exists() or wal.stat().st_size == 0:
        db = sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro&immutable=1", uri=True)
        db.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, MAX_VALUE_BYTES)
        return db, None
    private = Path(tempfile.mkdtemp(prefix="zoaf-history-"))
    try:
        copy = private / "history.db"
        for _ in range(_COPY_TRIES):
            header = _wal_header(wal)
            left = MAX_HISTORY_BYTES - _copy_own(path, copy, MAX_HISTORY_BYTES, path)
            _copy_own(wal, Path(f"{copy}-wal"), left, path)
            if _wal_header(wal) == header:      # no checkpoint restarted the -wal meanwhile: the pair is one state
                return connect(copy), private
        raise InputError(f"{path}: its run restarts {wal.name} faster than it can be copied to be read; read it "
                         "once the run ends")
    except BaseException:
        shutil.rmtree(private, ignore_errors=True)
        raise


def _wal_header(wal: Path) -> bytes:
    """The ``-wal``'s header (its checkpoint sequence and salts change when a writer restarts it)."""
    with open(wal, "rb") as f:
        return f.read(32)


def _copy_own(source: Path, target: Path, limit: int, history: Path) -> int:
    """``source``, a regular file (never through a link, never a FIFO: checked again at the open), copied; the bytes
    copied. InputError, naming ``history``, for more than ``limit`` bytes: by its size before anything is copied,
    and as it is read (it may grow meanwhile)."""
    fd = os.open(source, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise InputError(f"{source}: not a regular file; a run directory's files must be its own")
        copied = st.st_size
        if copied <= limit:
            with open(target, "wb") as out:
                while block := f.read(min(_BLOCK, limit + 1 - out.tell())):
                    out.write(block)
                copied = out.tell()
    if copied > limit:
        raise InputError(f"{history}: not a zoaf run history (with its -wal, over {MAX_HISTORY_BYTES // 2**30} GiB, "
                         "more than the rows zoaf reads of a history fill)")
    return copied

"""A run history read back: one a newer zoaf recorded, or one whose schema is not what zoaf writes."""
import re
import sqlite3

import numpy as np
import pytest

import zoaf
from zoaf.errors import InputError
from zoaf.function import FunctionProblem
from zoaf.stats import load_run


def _run(out):
    problem = FunctionProblem.from_bounds(lambda x: float(np.sum(np.square(x))), [(-1, 1)] * 2)
    zoaf.optimize(problem, budget=4, seed=1, method="random", out=out)
    return problem


@pytest.mark.parametrize("schema, says", [
    ("3", r"recorded by a newer zoaf \(history schema 3; this one reads schemas 1 to 2\): read or resume it with "
          r"that zoaf"),
    ('"2"', r"not a zoaf run history \(meta: schema '2' is not what zoaf writes\)")])
def test_a_history_of_a_newer_schema_is_neither_resumed_nor_misread(tmp_path, schema, says):
    """A history whose meta says schema 3 was resumed (rows of schema 2 appended to it) and, once a row held what
    this zoaf does not know, refused as "not a zoaf run history (a row: ValueError: 'pruned' ...)"."""
    out = tmp_path / "run"
    problem = _run(out)
    with sqlite3.connect(out / "history.db") as db:
        db.execute("UPDATE meta SET value = ? WHERE key = 'schema'", (schema,))
        db.execute("UPDATE evals SET status = 'pruned' WHERE idx = 1")
    with pytest.raises(InputError, match=f"^{out / 'history.db'}: {says}"):
        zoaf.optimize(problem, budget=4, seed=1, method="random", out=out, resume=True)
    with pytest.raises(InputError, match=f"^{out / 'history.db'}: {says}"):
        load_run(out)
    with sqlite3.connect(out / "history.db") as db:
        assert db.execute("SELECT COUNT(*) FROM evals").fetchone()[0] == 4      # nothing appended


def test_reading_a_history_that_is_not_there_makes_no_file(tmp_path):
    """Reading is reading: a report's or an analysis's ``History(path, read=True)`` of a run kept without its
    history made an empty ``history.db`` there (SQLite creates what it opens), which every later comparison of the
    folder then refused as "not a zoaf run history"."""
    from zoaf.history import History
    missing = tmp_path / "seed-0" / "history.db"
    missing.parent.mkdir()
    with pytest.raises(InputError, match="no such run history"):
        History(missing, read=True)
    assert not missing.exists()


def test_a_history_another_process_holds_locked_says_so_and_keeps_the_rows(tmp_path, monkeypatch):
    """A lock that another process takes on the history mid-run (a program of the user's, a second zoaf) stopped
    the run with "make room", as if the disk were full; the rows before stay, and the line says what to do."""
    out = tmp_path / "run"
    connect = sqlite3.connect
    monkeypatch.setattr(sqlite3, "connect", lambda *a, **kw: connect(*a, **{**kw, "timeout": min(kw.get(
        "timeout", 5.0), 0.2)}))                                     # not 30 s of waiting for the lock
    holder = connect(out.parent / "unused.db", isolation_level=None)

    def lock(_result) -> None:                                       # after the first batch: a writer's lock
        nonlocal holder
        if not holder.in_transaction:
            holder.close()
            holder = connect(out / "history.db", isolation_level=None)
            holder.execute("BEGIN IMMEDIATE")

    problem = FunctionProblem.from_bounds(lambda x: float(np.sum(np.square(x))), [(-1, 1)] * 2)
    try:
        with pytest.raises(InputError, match=r"history\.db: cannot write the run history \(database is locked\); "
                                             r"the (\d+) simulations recorded before it are kept: end what holds it, "
                                             r"then resume the run$") as e:
            zoaf.optimize(problem, budget=30, seed=1, method="zoaf", out=out, callback=lock)
    finally:
        holder.close()
    kept = int(re.search(r"the (\d+) simulations", str(e.value)).group(1))
    with connect(out / "history.db") as db:
        assert 0 < kept < 30 and db.execute("SELECT COUNT(*) FROM evals").fetchone()[0] == kept

"""Red team, round 28: a received history's own SQL, and ngspice's commands that read or write a file named by a
variable (which no text check sees).

A received run's ``history.db`` (``--resume``, a sign-off folder, an interrupted comparison run) is written by zoaf
row by row, and a ``CHECK`` constraint of its tables is its sender's SQL, run on each of those rows: round 17 bounded
the values such SQL makes (16 MiB), not its time. ``instr`` of two strings compares bytes quadratically (measured
2026-12-03 at load 12: 1.0 s for a 200 KB string, 3.6 s at 400 KB, 19 s at 800 KB; 8 MB is a hundred times that work),
so each row of a resume took hours (one row not written in 5 minutes), which Ctrl-C does not end (the SQLite call
holds the process). A column's ``NOT NULL ON CONFLICT IGNORE`` where zoaf writes NULL (``error``, on every successful
simulation) dropped zoaf's rows without a word, and a ``UNIQUE`` refused one only after it had been simulated. Each is
now refused as the history is opened, before anything runs, in one line, and zoaf's write connection runs no ``CHECK``
at all.

A ``.control`` block's ``load $f`` reads the file a variable names (not in the notes of what a deck reads, which see
only the text), and ``wrdata``/``write``/``hardcopy``, after ``cd`` too, write where a variable says, also in a
whole-deck run (a deck with ``.if`` cards): Landlock refuses the read, and no writing command is ever run.

Held, and covered elsewhere or left as the README says (round 28's other attempts): a 64-deep ``.func`` chain (2^63
calls; the worker's timeout, zoaf's own reading 0.4 s), ``.tran 1e-15 1`` (the timeout, memory well under the
watchdog), ``remcirc``/``setcirc 0`` (that sizing fails, the next loads the deck again), ``.lib`` sections that
include each other (a cycle, refused), ``.controlfoo`` in an included file (refused), ``/dev`` and ``/proc`` includes,
a spec nested 100,000 deep, command words abbreviated or spelled outside ASCII (ngspice runs neither).
"""
from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from attackkit import DIVIDER_SPEC, finished, in_each_backend  # noqa: F401 (a fixture)
from typer.testing import CliRunner

from zoaf.circuit import CircuitProblem
from zoaf.cli import app
from zoaf.historyfiles import connect
from zoaf.problem import Status

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux sandbox")

#: A CHECK that makes a row wait on two strings of ``N`` and ``N/2`` bytes compared quadratically (hours at this N),
#: then refuses it, for every row past the first two.
_SLOW_CHECK = "CHECK (idx < 2 OR instr(printf('%.*c', {n}, 'a'), printf('%.*c', {half}, 'a') || 'b') < 0)"
_HOURS = 8_000_000
#: zoaf's ``evals`` made anew by each received file, and what zoaf says of it.
_TABLES = {
    "slow check": (lambda s: f"{s.rstrip()[:-1]}, {_SLOW_CHECK.format(n=_HOURS, half=_HOURS // 2)})",
                   "a CHECK constraint in table evals"),
    "rows dropped": (lambda s: s.replace("error TEXT,", "error TEXT NOT NULL ON CONFLICT IGNORE,"),
                     "a NOT NULL constraint on column 'error' in table evals"),
    "unique": (lambda s: f"{s.rstrip()[:-1]}, UNIQUE (u))", "a UNIQUE constraint ('sqlite_autoindex_evals_1') in "
                                                             "table evals"),
}
#: Rows as zoaf writes them, made of ``{table}``'s (``{idx}``: their index, ``{error}``: their error).
_ROW = ("INSERT INTO evals SELECT {idx}, u, params, measures, fom, objective, feasible, status, {error}, seconds, "
        "phase, charged, wall, objective_fom, constraints FROM {table} WHERE idx {rows}")


def _evals_sql(db: sqlite3.Connection) -> str:
    return db.execute("SELECT sql FROM sqlite_master WHERE name = 'evals'").fetchone()[0]


def _retable(db: sqlite3.Connection, sql: str) -> None:
    """Make ``evals`` anew as ``sql`` with its first two rows (``error`` never NULL: the third is the resume's)."""
    copy = _ROW.format(idx="idx", error="coalesce(error, '')", table="old", rows="< 2")
    db.executescript(f"PRAGMA journal_mode=DELETE; ALTER TABLE evals RENAME TO old; {sql}; {copy}; DROP TABLE old;")
    db.commit()


def _received_unfinished(finished: Path, tmp_path: Path, case: str) -> Path:  # noqa: F811 (the fixture)
    """A copy of the finished run with two of its three rows and no end files, as received, its ``evals`` made as
    ``case`` makes it."""
    run = Path(shutil.copytree(finished, tmp_path / "received" / "run"))
    (run / "result.json").unlink()
    db = sqlite3.connect(run / "history.db")
    _retable(db, _TABLES[case][0](_evals_sql(db)))
    db.close()
    return run


def _rows(path: Path) -> int:
    db = sqlite3.connect(path)
    try:
        return db.execute("SELECT count(*) FROM evals").fetchone()[0]
    finally:
        db.close()


@pytest.mark.timeout(300)
@pytest.mark.parametrize("case", list(_TABLES))
def test_a_received_historys_own_constraints_are_refused_before_a_resume_runs(finished: Path,  # noqa: F811
                                                                           tmp_path: Path, case: str) -> None:
    """Proved real first, on a copy with plain SQLite: the CHECK runs on a row written (at a small N, where it
    answers at once: refused), ``ON CONFLICT IGNORE`` drops a row whose ``error`` is NULL unsaid, the ``UNIQUE``
    refuses a point written again. Then ``zoaf optimize --resume`` is one line, exit 2, and writes no row."""
    run = _received_unfinished(finished, tmp_path, case)
    db = sqlite3.connect(Path(shutil.copy(run / "history.db", tmp_path / "proof.db")))
    if case == "slow check":
        _retable(db, _evals_sql(db).replace(str(_HOURS // 2), "1000").replace(str(_HOURS), "2000"))
    if case == "rows dropped":
        db.execute(_ROW.format(idx=7, error="NULL", table="evals", rows="= 0"))
        assert db.execute("SELECT count(*) FROM evals").fetchone()[0] == 2          # real: the row is gone, unsaid
    else:
        with pytest.raises(sqlite3.IntegrityError):                                 # real: the sender's SQL ran
            db.execute(_ROW.format(idx=7, error="error", table="evals", rows="= 0"))
    db.close()

    r = CliRunner().invoke(app, ["optimize", str(finished.parent / "mc.cir"), "--workers", "0", "--quiet",
                                 "--resume", str(run)])
    assert r.exit_code == 2 and (r.exception is None or isinstance(r.exception, SystemExit)), r.output
    assert r.output.strip() == (f"error: {run / 'history.db'}: not a zoaf run history ({_TABLES[case][1]}, which "
                                "zoaf does not write)")
    assert _rows(run / "history.db") == 2


def test_zoafs_write_connection_runs_no_check_of_the_file(tmp_path: Path) -> None:
    """The layer under the refusal: a history zoaf opens to write (:func:`zoaf.historyfiles.connect`) runs none of
    its tables' CHECKs, which plain SQLite runs (proved: the same row refused)."""
    path = tmp_path / "history.db"
    db = sqlite3.connect(path)
    db.execute(f"CREATE TABLE evals (idx INTEGER PRIMARY KEY, {_SLOW_CHECK.format(n=2000, half=1000)})")
    db.commit()
    with pytest.raises(sqlite3.IntegrityError, match="CHECK constraint failed"):      # real
        db.execute("INSERT INTO evals VALUES (3)")
    db.close()
    db = connect(path)
    db.execute("INSERT INTO evals VALUES (3)")
    db.commit()
    db.close()
    assert _rows(path) == 1


#: The secret a rawfile outside the deck's folder holds, as the vector ``leak``.
SECRET = 4242.0


def _rawfile(path: Path) -> Path:
    """``path``: an ngspice rawfile of the vector ``leak`` = :data:`SECRET`, written by ``ngspice -b``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    maker = path.parent / "make.cir"
    maker.write_text(f"makes the file\nv1 1 0 {SECRET}\nr1 1 0 1\n.control\nop\nlet leak = v(1)\nwrite {path} leak\n"
                     ".endc\n.end\n")
    r = subprocess.run(["ngspice", "-b", str(maker)], cwd=path.parent, capture_output=True, text=True, timeout=60)
    assert path.is_file(), r.stdout + r.stderr
    maker.unlink()
    return path


def _deck(folder: Path, title: str, control: str, *, measure: str = "vo", cards: str = "") -> Path:
    """``folder/deck.cir``: the divider, its ``.control`` block ``control`` (after ``op``, ``let vo = v(out)``),
    its spec measuring ``measure``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "deck.toml").write_text(DIVIDER_SPEC.replace("vo = {}", f"{measure} = {{}}")
                                      .replace('maximize = "vo"', f'maximize = "{measure}"'))
    deck = folder / "deck.cir"
    deck.write_text(f"{title}\n.param r1=1k\n{cards}v1 in 0 dc 1\nr1 in out {{r1}}\nr2 out 0 1k\n.control\nop\n"
                    f"let vo = v(out)\n{control}\n.endc\n.end\n")
    return deck


@pytest.mark.timeout(300)
def test_a_file_a_variable_names_is_not_read_in_any_backend(tmp_path: Path) -> None:
    """``set f = PATH`` then ``load $f``: no note names the file (the notes read the text), and ``ngspice -b`` makes
    its vector a measure (proved). In every backend Landlock refuses the read: the secret reaches no record."""
    raw = _rawfile(tmp_path / "secret" / "raw.bin")
    deck = _deck(tmp_path / "deck", "loads a file by a variable", f"set f = {raw}\nload $f\nlet got = leak\nprint got",
                 measure="got")
    r = subprocess.run(["ngspice", "-b", str(deck)], cwd=deck.parent, capture_output=True, text=True, timeout=60)
    assert "got = 4.242000e+03" in r.stdout, r.stdout                                     # real
    for kw, [record], _ in in_each_backend(lambda: CircuitProblem(deck, timeout=30)):
        assert record.outcome.status is not Status.OK, (kw, record.outcome)
        assert "Permission denied" in str(record.outcome.error), (kw, record.outcome)
        assert "4242" not in repr(record.outcome) and "4.242" not in repr(record.outcome), kw


@pytest.mark.timeout(300)
def test_writing_commands_write_nothing_in_a_whole_deck_run_of_any_backend(tmp_path: Path) -> None:
    """``wrdata``, ``write`` and ``hardcopy`` into a file a variable names, and after ``cd`` into a plain name, in a
    deck with ``.if`` cards (run whole, as ``ngspice -b`` runs it): ``ngspice -b`` writes all three (proved). In
    every backend none is written, and the measure is the deck's (``r1`` at the box's middle, 5050)."""
    home = tmp_path / "home"
    home.mkdir()
    control = (f"set p = {home / 'by_variable'}\nwrdata $p vo\nwrite $p vo\ncd {home}\nwrite after_cd vo\n"
               "hardcopy hard_copy vo\nprint vo")
    deck = _deck(tmp_path / "deck", "writes files", control, cards=".if (1)\n.param r3=1k\n.endif\n")
    r = subprocess.run(["ngspice", "-b", str(deck)], cwd=deck.parent, capture_output=True, text=True, timeout=60)
    assert sorted(p.name for p in home.iterdir()) == ["after_cd", "by_variable", "hard_copy"], r.stdout   # real
    for p in home.iterdir():
        p.unlink()
    for kw, [record], _ in in_each_backend(lambda: CircuitProblem(deck, timeout=30)):
        vo = record.outcome.measures.get("vo")
        assert record.outcome.status is Status.OK and vo == pytest.approx(1e3 / 6050), (kw, record.outcome)
        assert not any(home.iterdir()), (kw, list(home.iterdir()))

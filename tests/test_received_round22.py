"""Round 22: a received run directory read here, and the library's words.

A hot ``history.db-journal`` planted beside a received history was rolled back into it by SQLite as zoaf opened it
only to read it: the received file was rewritten and a report showed the planted numbers. A run killed with kill -9
(rows left in ``history.db-wal``) must still read in full, without its files written. The netlist and spec a
received history names were parsed before their hashes were checked. ``zoaf.optimize(out=DIR)`` on a folder that
holds a run answered with the command line's options.
"""
from __future__ import annotations

import json
import os
import shutil
import sqlite3
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from attackkit import CORPUS, finished, run  # noqa: F401 (fixtures)
from typer.testing import CliRunner

import zoaf
from zoaf.circuit import CircuitProblem
from zoaf.cli import app
from zoaf.errors import InputError
from zoaf.history import History

PLANTED = 4242.0


def _foms(db: Path) -> list[float]:
    with History(db, read=True) as h:
        return [r.fom for r in h.records()]


def _plant_journal(db: Path, fom: float) -> None:
    """``db-journal``: a hot rollback journal (as a writer killed amid a transaction leaves) whose pages are the
    history's with the first row's FoM made :data:`PLANTED`; SQLite rolls it back into ``db`` on an open."""
    data = db.read_bytes()
    size = struct.unpack(">H", data[16:18])[0]
    planted = db.with_name("planted.db")
    shutil.copy(db, planted)
    with sqlite3.connect(planted) as c:
        c.execute("UPDATE evals SET fom = ? WHERE fom = ?", (PLANTED, fom))
    c.close()
    new = planted.read_bytes()
    pages = [i for i in range(len(data) // size) if data[i * size:(i + 1) * size] != new[i * size:(i + 1) * size]]
    assert pages and len(new) == len(data)
    salt = 0x1234567
    journal = (bytes.fromhex("d9d505f920a163d7") + struct.pack(">IIIII", len(pages), salt, len(data) // size, 512,
                                                               size)).ljust(512, b"\0")
    for i in pages:
        page = new[i * size:(i + 1) * size]
        checksum = (salt + sum(page[k] for k in range(size - 200, 0, -200))) & 0xFFFFFFFF
        journal += struct.pack(">I", i + 1) + page + struct.pack(">I", checksum)
    Path(f"{db}-journal").write_bytes(journal)
    for name in ("planted.db", "planted.db-wal", "planted.db-shm"):
        (db.parent / name).unlink(missing_ok=True)


def _state(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in folder.iterdir() if p.is_file()}


def test_a_planted_journal_is_never_rolled_back_into_a_received_history(run: Path, tmp_path: Path) -> None:
    """Read by ``History(read=True)`` and by ``zoaf yield RUN``: the history's bytes, mtime and the journal stay as
    received, and the rows read are the file's, never the journal's planted FoM (4242 was shown before)."""
    db = run / "history.db"
    foms = _foms(db)
    _plant_journal(db, foms[0])
    before = _state(run)
    assert _foms(db) == foms
    r = CliRunner().invoke(app, ["yield", str(run), "--samples", "2", "--workers", "1", "--out", str(tmp_path / "y")])
    assert r.exit_code == 0, r.output
    assert _state(run) == before
    with sqlite3.connect(db) as c:           # the check can fail: SQLite's own open rolls the journal back
        assert c.execute("SELECT fom FROM evals ORDER BY idx LIMIT 1").fetchone()[0] == PLANTED
    c.close()


_KILLED = """import os, sys, zoaf
zoaf.minimize(lambda x: float((x[0] - 0.2) ** 2), [(-1, 1)], budget=60, seed=0, out=sys.argv[1],
              callback=lambda r: os._exit(0) if r.nfev >= 25 else None)
"""


def test_a_run_killed_with_rows_in_its_wal_reads_in_full_and_unwritten(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """kill -9 left rows in ``history.db-wal``: a reader copies the history and its -wal to a private folder and
    reads every row there (immutable skipped them); the run's files and their mtimes are unchanged (SQLite's own
    close moved the rows into ``history.db`` and removed the -wal), and the run then resumes to its budget."""
    out = tmp_path / "run"
    subprocess.run([sys.executable, "-c", _KILLED, str(out)], check=True, timeout=120, cwd=tmp_path)
    assert (out / "history.db-wal").stat().st_size > 0
    before = _state(out)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    with History(out / "history.db", read=True) as h:
        assert len(h.records()) >= 25
        assert [p.name for p in (tmp_path / "tmp").iterdir()] and not (out / "history.db-journal").exists()
    assert _state(out) == before and not list((tmp_path / "tmp").iterdir())     # the private copy removed
    res = zoaf.minimize(lambda x: float((x[0] - 0.2) ** 2), [(-1, 1)], budget=60, seed=0, out=out, resume=True)
    assert res.nfev == 60


def _edit_problem(run: Path, **changes: str) -> None:
    with sqlite3.connect(run / "history.db") as c:
        problem = json.loads(c.execute("SELECT value FROM meta WHERE key = 'problem'").fetchone()[0])
        c.execute("UPDATE meta SET value = ? WHERE key = 'problem'", (json.dumps({**problem, **changes}),))
    c.close()


@pytest.mark.parametrize("kind", ["fifo", "huge", "other"])
def test_a_netlist_a_received_history_names_is_checked_by_its_hash_before_it_is_parsed(run: Path, tmp_path: Path,
                                                                                       kind: str) -> None:
    """The history names a FIFO (a hang for a reader that opens it blocking), a 70 MiB file, or a deck that is not
    the run's: one line, before any parse (the other deck's parse refused its NUL byte first)."""
    target = tmp_path / f"deck-{kind}.cir"
    if kind == "fifo":
        os.mkfifo(target)
    elif kind == "huge":
        with open(target, "wb") as f:
            f.truncate(70 * 2**20)
    else:
        target.write_bytes(b"not the run's deck\n* \x00\n.end\n")     # its parse: "contains NUL bytes"
    _edit_problem(run, netlist=str(target))
    r = subprocess.run([sys.executable, "-P", "-m", "zoaf", "corners", str(run), "--workers", "1"],
                       capture_output=True, text=True, timeout=60, cwd=tmp_path)
    says = {"fifo": "is not found", "huge": "larger than 64 MiB",
            "other": "(or a file it includes) changed since the run"}[kind]
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and says in r.stderr, r.stderr


def test_a_spec_a_received_history_names_is_checked_by_its_hash_before_it_is_parsed(run: Path, tmp_path: Path
                                                                                  ) -> None:
    """A spec of the designer's that is not TOML: refused as "changed since the run" by its hash, not parsed (a
    parse said where its TOML broke: a line of the designer's file)."""
    mine = tmp_path / "mine.toml"
    mine.write_text("secret = [unclosed\n")
    with sqlite3.connect(run / "history.db") as c:
        c.execute("UPDATE meta SET value = ? WHERE key = 'spec'",
                  (json.dumps({"from_run": os.path.relpath(mine, run), "path": str(mine)}),))
    c.close()
    r = CliRunner().invoke(app, ["corners", str(run), "--workers", "1"])
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.exit_code == 2 and lines == [f"error: {run / 'history.db'}: the spec {mine} the run read changed since "
                                          "the run; restore it, or optimize with the edited one anew"], r.output


def test_optimize_from_python_on_a_folder_holding_a_run_names_the_library_remedy(finished: Path,
                                                                                tmp_path: Path) -> None:
    """``zoaf.optimize(problem, out=RUN)`` said "use --resume or another --out": options a library user has not."""
    run = Path(shutil.copytree(finished, tmp_path / "run"))
    problem = CircuitProblem(finished.parent / "mc.cir")
    with pytest.raises(InputError) as e:
        zoaf.optimize(problem, budget=3, seed=1, out=run)
    assert str(e.value) == f"{run}: already holds a run (history.db); use resume=True or another out="


def test_optimize_from_the_command_line_on_a_folder_holding_a_run_names_its_options(finished: Path,
                                                                                   tmp_path: Path) -> None:
    run = Path(shutil.copytree(finished, tmp_path / "run"))
    r = CliRunner().invoke(app, ["optimize", str(CORPUS / "mc.cir"), "--budget", "3", "--workers", "0", "--quiet",
                                 "--out", str(run)])
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.exit_code == 2 and lines == [f"error: {run}: already holds a run (history.db); use --resume or another "
                                          "--out"], r.output

"""Round 22b: a received run resumed, and the private copy of a received history.

Reading a received history no longer rolled a planted ``history.db-journal`` back, but ``zoaf optimize --resume``
(and ``zoaf compare`` resuming its runs) opened the history to write, and SQLite rolled the journal into it before
zoaf checked anything. A history whose ``-wal`` holds rows is copied to be read: a received ``-wal`` of terabytes
(a sparse file) was copied whole into the temporary folder.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from attackkit import finished  # noqa: F401 (a fixture)
from test_received_round22 import _KILLED, _plant_journal
from typer.testing import CliRunner

import zoaf
from zoaf import history, historyfiles
from zoaf.circuit import CircuitProblem
from zoaf.cli import app
from zoaf.errors import InputError
from zoaf.history import History


def _history_files(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in folder.glob("history.db*")}


def _journal_line(db: Path) -> str:
    return (f"error: {db}-journal: a rollback journal, which no zoaf run leaves (its histories are in WAL mode); "
            f"SQLite would roll it back into {db.name} as zoaf opened it to write: remove it")


def _planted(run: Path) -> dict[str, tuple[bytes, int]]:
    """A planted journal beside ``run``'s history; the history's files as they then are."""
    with History(run / "history.db", read=True) as h:
        _plant_journal(run / "history.db", h.records()[0].fom)
    return _history_files(run)


def _stderr_lines(r: object) -> list[str]:
    return [ln for ln in r.stderr.splitlines() if ln.strip()]     # type: ignore[attr-defined]


def test_resume_refuses_a_planted_journal_before_the_history_is_opened(finished: Path, tmp_path: Path) -> None:
    """``zoaf optimize --resume RUN`` and ``zoaf.optimize(..., resume=True)``: one line naming the journal, the
    history's bytes and mtimes as received (SQLite's open to write rolled the journal back: the planted FoM)."""
    run = Path(shutil.copytree(finished, tmp_path / "run", symlinks=True))
    before = _planted(run)
    deck = finished.parent / "mc.cir"
    r = CliRunner().invoke(app, ["optimize", str(deck), "--resume", str(run), "--workers", "0", "--quiet"])
    assert r.exit_code == 2 and _stderr_lines(r) == [_journal_line(run / "history.db")], r.output
    assert _history_files(run) == before
    with pytest.raises(InputError) as e:
        zoaf.optimize(CircuitProblem(deck), budget=3, seed=1, out=run, resume=True)
    assert f"error: {e.value}" == _journal_line(run / "history.db")
    assert _history_files(run) == before


def test_compare_refuses_a_planted_journal_of_a_run_it_would_resume(finished: Path, tmp_path: Path) -> None:
    """A comparison whose unfinished run holds a planted journal: refused before anything is written (no
    ``compare.json``), the run's history unchanged; a finished run's journal is never opened (only read)."""
    root = tmp_path / "cmp"
    run = Path(shutil.copytree(finished, root / "bw" / "zoaf" / "seed-0", symlinks=True))
    (run / "result.json").unlink()                       # unfinished: compare resumes it
    before = _planted(run)
    r = CliRunner().invoke(app, ["compare", str(finished.parent / "mc.cir"), "-o", "bw", "-m", "zoaf", "--seeds",
                                 "1", "--budget", "3", "--jobs", "1", "--quiet", "--out", str(root)])
    assert r.exit_code == 2 and _stderr_lines(r) == [_journal_line(run / "history.db")], r.output
    assert _history_files(run) == before and not (root / "compare.json").exists()


def test_a_sparse_wal_beyond_a_history_is_refused_without_a_copy(finished: Path, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A ``-wal`` of 3 GiB (sparse: ``truncate -s``): one line, nothing copied to the temporary folder. The bound
    is twice the rows' text zoaf reads of a history."""
    assert historyfiles.MAX_HISTORY_BYTES == 2 * history.MAX_ROWS_BYTES
    run = Path(shutil.copytree(finished, tmp_path / "run", symlinks=True))
    subprocess.run(["truncate", "-s", "3G", str(run / "history.db-wal")], check=True)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    said = (f"{run / 'history.db'}: not a zoaf run history (with its -wal, over 2 GiB, more than the rows zoaf reads "
            "of a history fill)")
    with pytest.raises(InputError) as e:
        History(run / "history.db", read=True)
    assert str(e.value) == said and not list((tmp_path / "tmp").iterdir())
    r = CliRunner().invoke(app, ["sensitivity", str(run), "--workers", "1"])
    assert r.exit_code == 2 and _stderr_lines(r) == [f"error: {said}"], r.output
    assert not list((tmp_path / "tmp").iterdir())


def test_the_bound_counts_a_history_and_its_wal_together(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A run killed with rows in its ``-wal`` reads in full at a bound of its two files' bytes, and is refused one
    byte below it."""
    out = tmp_path / "run"
    subprocess.run([sys.executable, "-c", _KILLED, str(out)], check=True, timeout=120, cwd=tmp_path)
    size = sum((out / name).stat().st_size for name in ("history.db", "history.db-wal"))
    assert (out / "history.db-wal").stat().st_size > 0
    monkeypatch.setattr(historyfiles, "MAX_HISTORY_BYTES", size - 1)
    with pytest.raises(InputError, match="not a zoaf run history \\(with its -wal, over"):
        History(out / "history.db", read=True)
    monkeypatch.setattr(historyfiles, "MAX_HISTORY_BYTES", size)
    with History(out / "history.db", read=True) as h:
        assert len(h.records()) >= 25

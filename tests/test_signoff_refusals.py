"""Refusals of ``optimize``, ``yield`` and ``sensitivity`` that named what the command does not offer, or left
what they had no use for: ``--out RUN/yield/..`` made ``RUN/yield`` only to leave it ("use --resume", which
``yield`` has not, and the empty folder stayed); ``sensitivity`` told to "use another --out", which it has not; a
received history naming a netlist of thousands of characters printed all of them. One line each, exit 2."""
from __future__ import annotations

import errno
import json
import os
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from zoaf.cli import app
from zoaf.rundir import run_directory

CORPUS = Path(__file__).parent / "bad_inputs"
MC = CORPUS / "mc.cir"


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished 3-simulation run of mc.cir (its [montecarlo] draws mc_r), in process."""
    out = tmp_path_factory.mktemp("mc") / "run"
    r = _zoaf("optimize", str(MC), "--budget", "3", "--seed", "1", "--workers", "0", "--quiet", "--out", str(out))
    assert r.exit_code == 0, r.output
    return out


@pytest.fixture
def run(finished: Path, tmp_path: Path) -> Path:
    """A copy of the finished run of its own (a test may add to it)."""
    return Path(shutil.copytree(finished, tmp_path / "run"))


def _zoaf(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


def _error_line(r: Any) -> str:
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.exit_code == 2 and len(lines) == 1 and "Traceback" not in r.output, (r.exit_code, r.output)
    return lines[0]


def _listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def test_optimize_out_through_a_new_folder_and_back_makes_none(run: Path) -> None:
    before = _listing(run)
    r = _zoaf("optimize", str(MC), "--budget", "3", "--workers", "0", "--quiet", "--out", f"{run}/new/..")
    assert _error_line(r) == f"error: {run}: already holds a run (history.db); use --resume or another --out"
    assert _listing(run) == before, "a folder made for the path left behind"


def test_optimize_out_through_a_new_folder_lands_where_the_path_leads(tmp_path: Path) -> None:
    r = _zoaf("optimize", str(MC), "--budget", "2", "--workers", "0", "--quiet", "--out", f"{tmp_path}/new/../fresh")
    assert r.exit_code == 0, r.output
    assert sorted(os.listdir(tmp_path)) == ["fresh"] and (tmp_path / "fresh" / "result.json").is_file()


def test_yield_out_through_a_new_folder_and_back_names_what_yield_offers(run: Path) -> None:
    """Its refusal said "use --resume or another --out" (``yield`` has no --resume: the same command resumes)."""
    before = _listing(run)
    r = _zoaf("yield", str(run), "--out", f"{run}/yield/..", "-n", "2", "-j", "1")
    assert _error_line(r) == (f"error: {run}/history.db: holds a run of method 'zoaf', not Monte Carlo samples (the "
                              "run signed off?); use another --out")
    assert _listing(run) == before


def test_yield_out_through_new_folders_lands_where_the_path_leads(run: Path) -> None:
    r = _zoaf("yield", str(run), "--out", f"{run}/a/b/../../y", "-n", "2", "-j", "1", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["out"] == f"{run}/y"
    assert (run / "y" / "yield.json").is_file() and not (run / "a").exists()


def test_sensitivity_refusal_names_no_option_it_lacks(run: Path) -> None:
    """A top-up folder holding a file of the designer's: "use another --out", which ``sensitivity`` has not."""
    assert _zoaf("sensitivity", str(run), "-j", "1", "--json").exit_code == 0
    (folder,) = (run / "sensitivity").glob("levels-*")
    (folder / "history.db").unlink()
    (folder / "notes.txt").write_text("mine\n")
    before = _listing(run)
    line = _error_line(_zoaf("sensitivity", str(run), "-j", "1"))
    assert line == f"error: {folder}: already holds notes.txt; move them away, then run the same command again"
    assert _listing(run) == before and (folder / "notes.txt").read_text() == "mine\n"


def test_run_directory_makes_no_folder_a_path_only_passes_through(tmp_path: Path) -> None:
    """``new/..`` is taken out before ``mkdir``; an existing link's ``..`` stays the kernel's (its target's
    parent), which a lexical normalization would have changed."""
    with run_directory(tmp_path / "a" / "b" / ".." / ".." / "c") as d:
        assert d == tmp_path / "c" and d.is_dir()
    assert sorted(os.listdir(tmp_path)) == ["c"]
    (tmp_path / "x" / "y").mkdir(parents=True)
    (tmp_path / "link").symlink_to(tmp_path / "x" / "y")
    with run_directory(tmp_path / "link" / ".." / "d") as d:
        assert d.resolve() == tmp_path / "x" / "d"
    assert not (tmp_path / "d").exists()


def _set_meta(run: Path, key: str, edit: Any) -> None:
    with sqlite3.connect(run / "history.db") as db:
        value = json.loads(db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()[0])
        db.execute("UPDATE meta SET value = ? WHERE key = ?", (json.dumps(edit(value)), key))
    db.close()


LONG = "/nowhere/" + "a" * 5000 + "/mc.cir"          # one name past NAME_MAX: "File name too long" from is_file
CLIPPED = "/nowhere/" + "a" * 237 + "... (5016 characters)"


@pytest.mark.parametrize("key, edit, says", [
    ("problem", lambda p: {**p, "netlist": LONG},
     f"the run's netlist {CLIPPED} is not found (run from where the run was started)"),
    ("spec", lambda s: {"from_run": LONG, "path": LONG},
     f"the run's spec {CLIPPED} is not found (moved or removed since the run); give it with --spec"),
])
def test_a_long_path_a_received_history_names_is_clipped(run: Path, key: str, edit: Any, says: str) -> None:
    """It printed all 5,000 characters ("...: File name too long"), the line filling the terminal."""
    _set_meta(run, key, edit)
    for command in ("yield", "sensitivity"):
        assert _error_line(_zoaf(command, str(run), "-j", "1")) == f"error: {run}/history.db: {says}"


def test_a_file_error_clips_its_path(run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Any OSError that reaches the command line names its file clipped (the netlist's was the whole path)."""
    def too_long(*_: Any, **__: Any) -> None:
        raise OSError(errno.ENAMETOOLONG, "File name too long", LONG)

    monkeypatch.setattr("zoaf.signoff.rundir.load_run", too_long)
    assert _error_line(_zoaf("yield", str(run))) == f"error: {CLIPPED}: File name too long"

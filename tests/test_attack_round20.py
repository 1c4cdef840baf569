"""Red team, round 20: a run directory or comparison folder received from someone else, signed off or reported here.

A received run's ``.lock`` that is a FIFO hung ``zoaf corners/yield/sensitivity RUN`` in the open that asks whether
the run is still going; a received comparison's ``result.json`` (or ``trace.json``, ``compare.json``) that is a
link had ``zoaf report`` read the designer's own run through it and write its numbers into the received folder's
report. Each is one error line naming the file, exit 2.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from attackkit import finished  # noqa: F401 (a fixture)
from typer.testing import CliRunner

from tests.test_attack_inputs import grid, one_error  # noqa: F401  (the fixture)
from zoaf.cli import app

COMMANDS = [["sensitivity"], ["yield", "--samples", "2"], ["corners"]]


@pytest.mark.parametrize("command", COMMANDS)
def test_a_fifo_lock_in_a_received_run_is_one_line_not_a_hang(finished: Path, tmp_path: Path,
                                                               command: list[str]) -> None:
    """In a process of its own: the open of the FIFO waits for a writer, so it would hang pytest."""
    run = Path(shutil.copytree(finished, tmp_path / "received" / "run", symlinks=True))
    (run / ".lock").unlink()
    os.mkfifo(run / ".lock")
    r = subprocess.run([sys.executable, "-P", "-m", "zoaf", command[0], str(run), *command[1:], "--workers", "1"],
                       capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert r.returncode == 2 and r.stderr.strip().splitlines() == [
        f"error: {run / '.lock'}: not a regular file; a run directory's files must be its own"], r.stderr
    assert sorted(p.name for p in run.iterdir()) == sorted(p.name for p in finished.iterdir())   # no yield*/


def _linked(grid: Path, tmp_path: Path, name: str) -> Path:
    """``name`` of the comparison (``compare.json``) or of its random run, kept without its history, moved to the
    designer's folder ``tmp_path/mine`` and linked from where it was; the link's path."""
    mine = tmp_path / "mine"
    mine.mkdir()
    folder = grid if name == "compare.json" else grid / "a" / "random" / "seed-0"
    (folder / "history.db").unlink(missing_ok=True)
    shutil.move(folder / name, mine / name)
    (folder / name).symlink_to(mine / name)
    return folder / name


@pytest.mark.parametrize("name", ["result.json", "compare.json"])
def test_a_json_file_of_a_received_comparison_that_is_a_link_is_refused_not_read_through(grid: Path, tmp_path: Path,
                                                                                       name: str) -> None:
    """``seed-0/result.json -> ~/runs/mine/result.json`` (the run kept without its history, as benchmark results
    are): the designer's own run was reported as the sender's, its FoM written into the received ``report.md``."""
    link = _linked(grid, tmp_path, name)
    assert one_error(CliRunner().invoke(app, ["report", str(grid)])) == (
        f"error: {link}: is a link; a run directory's files must be its own (not written through)")
    assert not (grid / "report.md").exists()


def test_a_trace_of_a_received_comparison_that_is_a_link_is_not_read_through(grid: Path, tmp_path: Path) -> None:
    """``trace.json`` beside its run's own ``result.json``: the run is reported by its end, without the linked curve
    (a trace zoaf cannot read is a warning naming it, as before)."""
    link = _linked(grid, tmp_path, "trace.json")
    with pytest.warns(UserWarning, match="^is a link; a run directory's files must be its own") as caught:
        assert CliRunner().invoke(app, ["report", str(grid)]).exit_code == 0
    assert {w.filename for w in caught} == {str(link)}

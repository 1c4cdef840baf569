"""Red team round 9: what a received run or comparison directory holds beside its JSON and ``history.db``.

SQLite opens files next to the history that no check of zoaf's saw: ``history.db-journal`` (read as a hot
journal whenever the history is opened, WAL mode or not), ``-wal`` and ``-shm``. A FIFO there hung ``zoaf
report`` forever; a history's numbers too large for a float ended it with a traceback. Each must be one error
line naming the file, exit 2. The comparisons are a sphere function's (no ngspice): a second or two each.
"""
from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.test_attack_inputs import grid, one_error  # noqa: F401  (the fixture)
from zoaf.cli import app

#: An integer JSON reads exactly but no float holds: ``float()`` raises OverflowError, not ValueError.
HUGE = "1" + "0" * 400


@pytest.mark.parametrize("suffix", ["-journal", "-wal", "-shm"])
def test_a_fifo_beside_a_history_is_one_line_not_a_hang(grid: Path, suffix: str):
    """In a process of its own: SQLite's open of the FIFO retries through any signal, so it would hang pytest."""
    db = grid / "a" / "zoaf" / "seed-0" / "history.db"
    os.mkfifo(f"{db}{suffix}")
    r = subprocess.run([sys.executable, "-P", "-m", "zoaf", "report", str(grid)], capture_output=True, text=True,
                       timeout=60, cwd=grid.parent)
    assert r.returncode == 2 and r.stderr.strip().splitlines() == [
        f"error: {db}{suffix}: not a regular file; a run directory's files must be its own"], r.stderr


@pytest.mark.parametrize("suffix", ["-journal", "-wal", "-shm"])
def test_a_link_beside_a_history_is_refused(grid: Path, tmp_path: Path, suffix: str):
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    db = grid / "a" / "zoaf" / "seed-0" / "history.db"
    Path(f"{db}{suffix}").symlink_to(victim)
    assert f"history.db{suffix}: is a link" in one_error(CliRunner().invoke(app, ["report", str(grid)]))
    assert victim.read_text() == "precious\n"


@pytest.mark.parametrize("change", [
    f"UPDATE evals SET params = '{{\"x0\": {HUGE}}}'",
    f"UPDATE evals SET measures = '{{\"f\": {HUGE}}}'",
    f"UPDATE evals SET u = '[{HUGE}, 0]'",
    f"UPDATE evals SET constraints = '[{HUGE}]'",
])
def test_a_number_too_large_for_a_float_in_a_history_is_one_line(grid: Path, change: str):
    db = grid / "a" / "zoaf" / "seed-0" / "history.db"
    with sqlite3.connect(db) as con:
        con.execute(change)
    con.close()
    assert "not a zoaf run history (a row: OverflowError" in one_error(CliRunner().invoke(app, ["report", str(grid)]))


def test_a_pdk_library_past_the_size_limit_is_one_line_not_read_whole(tmp_path, monkeypatch):
    """``$ZOAF_SKY130_LIB`` may name any file: its section names were read with ``read_text``, a file of any size
    loaded whole into zoaf's own process. Read bounded now, as every include is: one PdkError naming it."""
    from zoaf import pdk

    big = tmp_path / "sky130.lib.spice"
    with open(big, "wb") as f:
        f.truncate(65 * 2**20)                          # sparse: no disk used
    monkeypatch.setenv(pdk.SKY130_ENV, str(big))
    with pytest.raises(pdk.PdkError, match=r"sky130\.lib\.spice: larger than 64 MiB: not a PDK model library"):
        pdk.corners()


@pytest.mark.parametrize("folder", ['a"b', "a\nb"])
def test_a_pdk_library_whose_path_no_lib_line_holds_is_one_line(tmp_path, monkeypatch, folder: str):
    """The library's path goes into the netlist as ``.lib "PATH" tt``: a quote ended the name (another file, not
    found), and a line end split the line: ``.lib "/a`` opened a section definition that took in the rest of the
    netlist, which then parsed with no models and no error."""
    from zoaf import pdk

    lib = tmp_path / folder / "sky130.lib.spice"
    lib.parent.mkdir()
    lib.write_text("* models\n.lib tt\n.endl tt\n")
    monkeypatch.setenv(pdk.SKY130_ENV, str(lib))
    with pytest.raises(pdk.PdkError, match="has a quote or a control character in its path"):
        pdk.placeholders("sky130", "tt")

"""Where ``zoaf yield`` writes without ``--out``: one folder per condition simulated, named as its samples are
recorded, whatever name of the condition was asked (a named corner repeating one of the cross product is merged
into it), and never the folder of a yield at another condition."""
from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from test_signoff_bad_inputs import CORPUS, corner_run
from zoaf.cli import app

#: 85 C twice: the cross product's corner ``85c`` and the named corner ``hot`` (the README's ``slow_hot`` pattern).
HOT = "[corners]\ntemp = [27, 85]\n[corners.hot]\ntemp = 85\n"


def _yield(target: Path, *options: str) -> dict:
    r = CliRunner().invoke(app, ["yield", str(target), "--samples", "2", "--workers", "1", "--json", *options])
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def _rows(folder: Path) -> int:
    with sqlite3.connect(folder / "history.db") as con:
        n = con.execute("select count(*) from evals").fetchone()[0]
    con.close()
    return n


def test_two_names_of_one_corner_write_one_yield_folder_of_a_run(tmp_path: Path) -> None:
    """``yield RUN --corner hot`` wrote ``RUN/yield-hot`` and ``--corner 85c`` ``RUN/yield-85c``: the same samples
    (recorded at the merged corner 85c) simulated twice, in a folder a listing of 85c's yields did not find."""
    run = corner_run(tmp_path, '["27c"]', HOT, "--budget", "4")
    hot = _yield(run, "--corner", "hot")
    assert hot["out"] == str(run / "yield-85c") and hot["corner"] == "hot"
    again = _yield(run, "--corner", "85c")
    assert again["out"] == hot["out"] and again["corner"] == "85c"
    assert {p.name for p in run.iterdir() if p.name.startswith("yield")} == {"yield-85c"}
    assert _rows(run / "yield-85c") == 2                          # the second read the first's samples back
    assert again["yield"] == hot["yield"]


def test_a_netlist_yield_at_a_corner_has_its_own_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A netlist's yield wrote ``runs/<stem>-yield-seed<S>`` at any corner: after the nominal one, ``--corner hot``
    was refused ("holds another run"); it now writes ``runs/mc-yield-85c-seed0``, as ``--corner 85c`` does."""
    shutil.copy(CORPUS / "mc.cir", tmp_path / "mc.cir")
    (tmp_path / "mc.toml").write_text((CORPUS / "mc.toml").read_text() + HOT)
    monkeypatch.chdir(tmp_path)
    assert _yield(tmp_path / "mc.cir")["out"] == str(Path("runs") / "mc-yield-seed0")
    assert _yield(tmp_path / "mc.cir", "--corner", "hot")["out"] == str(Path("runs") / "mc-yield-85c-seed0")
    assert _yield(tmp_path / "mc.cir", "--corner", "85c", "--seed", "3")["out"] == str(Path("runs/mc-yield-85c-seed3"))
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["mc-yield-85c-seed0", "mc-yield-85c-seed3",
                                                                     "mc-yield-seed0"]

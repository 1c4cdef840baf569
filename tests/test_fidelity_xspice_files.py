"""An XSPICE code model that reads a file of the deck's folder (``filesource``'s ``file="data.txt"``): ``ngspice -b``
opens it from the deck's folder whatever the working folder is (it points ``NGSPICE_INPUT_DIR`` there); zoaf loads
the deck line by line in the sandbox's empty folder, where the file was not found, and every backend reported a
misleading "no operating point" for a deck that runs by hand."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from attackkit import in_each_backend
from ngspice_marks import NEEDS_NGSPICE

from zoaf.circuit import CircuitProblem

pytestmark = NEEDS_NGSPICE

DECK = """filesource from the deck's folder
.param rl=1k
a1 %vd([in 0]) src
.model src filesource (file="data.txt" amploffset=[0] amplscale=[1] timeoffset=0 timescale=1
+ timerelative=false amplstep=false)
R1 in out {rl}
R2 out 0 1k
.tran 10u 2m
.meas tran vmax max v(out)
.end
"""
SPEC = """[parameters]
rl = { lo = "100", hi = "10k", scale = "log" }
[measures]
vmax = { unit = "V" }
[objectives]
v = { maximize = "vmax" }
"""


@pytest.mark.parametrize("tran", [".tran 10u 2m", ".tran 10u {tstop}"])    # the second: reloaded whole per sizing
def test_a_code_models_relative_file_is_opened_from_the_decks_folder_in_every_backend(tmp_path: Path,
                                                                                      tran: str) -> None:
    folder, elsewhere = tmp_path / "deck", tmp_path / "elsewhere"
    folder.mkdir()
    elsewhere.mkdir()
    (folder / "data.txt").write_text("0 0\n1e-3 1\n2e-3 0.5\n")
    deck = folder / "fs.cir"
    deck.write_text(DECK.replace(".tran 10u 2m", tran).replace(".param rl=1k", ".param rl=1k tstop=2m"))
    deck.with_suffix(".toml").write_text(SPEC)
    by_hand = subprocess.run(["ngspice", "-b", str(deck)], cwd=elsewhere, capture_output=True, text=True, timeout=60)
    vmax = float(re.search(r"^vmax\s+=\s+(\S+)", by_hand.stdout, re.M).group(1))   # 1 V over 1k/1k, at rl = 1k
    assert vmax == pytest.approx(0.5, rel=2e-3)
    u = CircuitProblem(deck).x0_unit()[None, :]
    for done in in_each_backend(lambda: CircuitProblem(deck), u):
        (rec,) = done.records
        assert rec.outcome.error is None, (done.kw, rec.outcome.error)
        assert rec.outcome.measures["vmax"] == pytest.approx(vmax, rel=1e-6), done.kw

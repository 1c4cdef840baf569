"""A CPL coupled line (``P1 a1 b1 0 a2 b2 0 cline`` with ``.model cline cpl ...``): ``ngspice -b`` runs the deck once,
but ngspice 39 crashes at a ``reset`` of its circuit and, as the heap lies, at another such circuit in the same
process. A session resets at every sizing, the first too (the whole-deck path loads it anew: the third sizing
crashed), so zoaf refuses it in one line."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from ngspice_marks import needs_ngspice

from zoaf.errors import InputError
from zoaf.netlist import Netlist
from zoaf.ngbatch import SPICEINIT

_LINES = ("Two coupled lines\nVs src 0 pulse(0 1 0.2n 100p 100p 2n 10n)\nRs src a1 50\nRq 0 b1 50\n"
          "P1 a1 b1 0 a2 b2 0 cline\nRl1 a2 0 50\nRl2 b2 0 50\n.model cline cpl length={len}\n+ R=0.5 0 0.5\n"
          "+ L=3.0e-7 0.4e-7 3.0e-7\n+ G=0 0 0\n+ C=1.2e-10 -0.2e-10 1.2e-10\n")


def _deck(folder: Path, tail: str) -> Path:
    deck = folder / "cpl.cir"
    deck.write_text(_LINES.replace("Two coupled lines\n", "Two coupled lines\n.param len=0.1\n") + tail)
    return deck


@needs_ngspice
def test_ngspice_b_crashes_at_a_reset(tmp_path):
    """(A second or third such circuit in one process crashed ``ngspice -b`` by hand too, aborted or a segmentation
    fault, or not, as the heap lies: measured, not pinned.)"""
    (tmp_path / ".spiceinit").write_text(SPICEINIT)             # ngspice -b as zoaf runs it (hsa)
    once = _deck(tmp_path, ".tran 5p 6n\n.meas tran next_pk max v(b1)\n.end\n")
    run = subprocess.run(["ngspice", "-b", str(once)], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and "next_pk" in run.stdout, run.stderr
    reset = _deck(tmp_path, ".control\nreset\ntran 5p 6n\n.endc\n.end\n")      # as a session's first sizing
    assert subprocess.run(["ngspice", "-b", str(reset)], cwd=tmp_path, capture_output=True, timeout=120).returncode < 0


def test_a_cpl_line_is_refused_in_one_line(tmp_path):
    deck = _deck(tmp_path, ".tran 5p 6n\n.meas tran next_pk max v(b1)\n.end\n")
    with pytest.raises(InputError) as e:
        Netlist.read(deck)
    message = str(e.value)
    assert "\n" not in message and message.startswith(f"{deck}:6: p1: a CPL coupled line; ngspice 39 crashes"), message
    assert "(LTRA)" in message
    (tmp_path / "cpl.toml").write_text('[parameters]\nlen = { lo = "0.05", hi = "0.2" }\n[measures]\nnext_pk = {}\n'
                                       '[objectives]\nx = { minimize = "next_pk" }\n')
    cli = subprocess.run([sys.executable, "-m", "zoaf", "check", str(deck)], capture_output=True, text=True,
                         timeout=300)
    assert cli.returncode == 2 and "Traceback" not in cli.stderr and f"{deck.name}:6: p1: a CPL" in cli.stderr, cli

"""The noise-figure method of the RF netlists, checked on matched attenuators (closed form: F = L at 290 K).

NF comes from ``.noise`` (input-referred density at a noiseless port source), never from ``sp ... donoise``
(wrong in ngspice 39): NF = 10*log10(1 + inoise^2/(4*k*T0*50)).
"""
from __future__ import annotations

import math
import re
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(shutil.which("ngspice") is None, reason="ngspice is not installed")

NETLIST = Path(__file__).resolve().parent / "netlists" / "attenuator_nf.cir"
NAMES = ("loss_a_db", "nf_a_db", "s11_a", "loss_b_db", "nf_b_db", "s11_b")


def run_batch(text: str, tmp_path: Path) -> dict[str, float]:
    """Run ``ngspice -b`` on ``text``; return the ``name = value`` lines it prints."""
    path = tmp_path / "deck.cir"
    path.write_text(text)
    proc = subprocess.run(["ngspice", "-b", path.name], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    values = {m[0]: float(m[1]) for m in re.findall(r"^(\w+) = (\S+)$", proc.stdout, re.M)}
    missing = [n for n in NAMES if n not in values]
    assert not missing, f"ngspice printed no {missing}:\n{proc.stdout}\n{proc.stderr}"
    return values


def test_nf_of_matched_attenuator_equals_its_loss_at_290k(tmp_path):
    v = run_batch(NETLIST.read_text(), tmp_path)
    assert v["loss_a_db"] == pytest.approx(3.0, abs=1e-9)
    assert v["loss_b_db"] == pytest.approx(6.0, abs=1e-9)
    assert v["s11_a"] < 1e-9 and v["s11_b"] < 1e-9                      # both matched to 50 ohm
    assert abs(v["nf_a_db"] - v["loss_a_db"]) < 0.01
    assert abs(v["nf_b_db"] - v["loss_b_db"]) < 0.01


def test_nf_of_attenuator_above_290k_follows_friis(tmp_path):
    # At a physical temperature T: F = 1 + (L - 1)*T/T0.
    text = NETLIST.read_text()
    assert ".temp 16.85" in text
    v = run_batch(text.replace(".temp 16.85", ".temp 85"), tmp_path)
    for loss_db in (3.0, 6.0):
        expected = 10 * math.log10(1 + (10 ** (loss_db / 10) - 1) * (85 + 273.15) / 290)
        assert v["nf_a_db" if loss_db == 3.0 else "nf_b_db"] == pytest.approx(expected, abs=0.01)
    assert v["nf_a_db"] > v["loss_a_db"] + 0.3


def test_other_attenuations_through_param(tmp_path):
    text = NETLIST.read_text().replace(".param att_a=3 att_b=6", ".param att_a=1 att_b=10")
    v = run_batch(text, tmp_path)
    assert v["loss_a_db"] == pytest.approx(1.0, abs=1e-9) and v["loss_b_db"] == pytest.approx(10.0, abs=1e-9)
    assert abs(v["nf_a_db"] - 1.0) < 0.01 and abs(v["nf_b_db"] - 10.0) < 0.01

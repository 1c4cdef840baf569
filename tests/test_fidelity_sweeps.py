"""``.meas dc`` cards on a ``.dc`` sweep of no voltage source (``temp``, a current source, a resistor): ngspice 39
runs ``find``/``when``/``trig`` there but no interval form (``max``, ``pp``, ``avg``, ...), each of which prints
"no such vector as time, frquency or v-sweep" and fails at every sizing. Checked against ``ngspice -b``."""
from __future__ import annotations

import re
import subprocess
import sys

import pytest
from ngspice_marks import NEEDS_NGSPICE
from test_fidelity import DECKS, _in_a_folder_of_its_own, _ngspice_b  # noqa: F401 (an autouse fixture)

from zoaf.errors import InputError
from zoaf.netlist import Netlist

pytestmark = NEEDS_NGSPICE

_SWEEP = "Sweep\nI1 0 a 1m\nR1 a 0 1k\nV2 b 0 0.5\nR2 b 0 1k\n.dc {sweep}\n.meas dc vmx max v(a)\n.end\n"


def test_interval_measures_on_a_temp_sweep_are_noted_and_a_spec_measuring_one_is_refused(tmp_path):
    """The bandgap deck's ``max``/``min``/``max_at``/``pp`` cards fail in ``ngspice -b`` as in zoaf, at every
    sizing; zoaf said nothing of it, and a spec minimizing the spread (``vspread``) was charged a missing measure at
    every simulation. Each card is noted, and a spec that measures one is refused with its line."""
    deck = tmp_path / "bgr.cir"
    deck.write_text((DECKS / "bgr_bjt_temp.cir").read_text())
    out = _ngspice_b(deck).stdout
    assert re.search(r"^vr27\s+=", out, re.M) and not re.search(r"^(vmax|vmin|tpk|vspread)\s+=", out, re.M)
    nl = Netlist.read(deck)
    lines = [int(n.split(":")[1]) for n in nl.notes if "on a .dc sweep of temp" in n]
    assert lines == [m.line for m in nl.measures if m.name in ("vmax", "vmin", "tpk", "vspread")]
    with pytest.raises(InputError) as e:
        nl.refuse_unmeasurable(["vspread"])
    assert str(e.value).startswith(f"{deck}:21: .meas dc vspread: ngspice 39 runs no `pp` measure on a .dc sweep")
    nl.refuse_unmeasurable(["vr27"])


def test_zoaf_check_says_why_a_measure_is_missing(tmp_path):
    """``zoaf check`` of the bandgap with a spec measuring only ``vr27``: the four other cards fail (exit 1, a
    warning) and each note says why; the notes were printed only when every measure came back."""
    deck = tmp_path / "bgr.cir"
    deck.write_text((DECKS / "bgr_bjt_temp.cir").read_text())
    spec = tmp_path / "bgr.toml"
    spec.write_text('[parameters]\nr1 = { lo = "5k", hi = "20k", scale = "log" }\n[measures]\nvr27 = { unit = "V" }\n'
                    '[objectives.vref]\nminimize = "vr27"\n')
    r = subprocess.run([sys.executable, "-m", "zoaf", "check", str(deck), "--spec", str(spec)], capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 1, r.stderr
    notes = [ln for ln in r.stderr.splitlines() if ln.startswith("note:") and "on a .dc sweep of temp" in ln]
    assert [ln.split(":")[2] for ln in notes] == ["18", "19", "20", "21"]


@pytest.mark.parametrize("sweep, measured", [("I1 0 1m 0.1m", False), ("R2 500 2k 100", False),
                                             ("V2 0 1 0.1", True)])
def test_only_a_voltage_source_sweep_runs_interval_measures(tmp_path, sweep, measured):
    """As ``ngspice -b`` prints it: ``max`` on a voltage source's sweep alone, noted on the others."""
    deck = tmp_path / "sweep.cir"
    deck.write_text(_SWEEP.format(sweep=sweep))
    out = _ngspice_b(deck).stdout
    assert bool(re.search(r"^vmx\s+=", out, re.M)) == measured
    notes = Netlist.read(deck).notes
    assert [n.split(": ", 1)[1].split(":")[0] for n in notes] == ([] if measured else [".meas dc vmx"])

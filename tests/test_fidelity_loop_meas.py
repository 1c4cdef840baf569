"""A ``meas`` command that fails inside a ``.control`` loop is named by its deck line and the loop pass it failed in,
and is a missing result only when its last run failed (as ``ngspice -b`` prints it).

A loop's output comes at its ``end``: the session reported ``end: out of interval`` (and, for a ``meas`` that failed in
an early pass and measured in a later one, a missing result where ``ngspice -b`` prints the later value).
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from ngspice_marks import NEEDS_NGSPICE

from zoaf.errors import MeasureError
from zoaf.netlist import Netlist

DECKS = Path(__file__).parent / "fidelity"
ROOT = Path(__file__).resolve().parents[1]

pytestmark = NEEDS_NGSPICE

from zoaf.spice import SpiceSession, run_batch  # noqa: E402


@pytest.fixture(autouse=True)
def _in_a_folder_of_its_own(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


#: deck -> (the error's text, the results kept beside it, as ngspice -b prints them)
FAILED = {
    "ldo_foreach_meas": (":22: meas dc vin_min when v(out)=1.1962 rise=1, in pass 3 of the foreach at line 18 "
                         "(il = 20m): out of interval", {"vo_nom": 1.195522}),
    "control_nested_loop_meas": (":14: meas ac f10 when vdb(out)=-10, in pass 2 of the foreach at line 9 (cv = 1n), "
                                 "pass 4 of the foreach at line 11 (rv = 1g): out of interval", {"n": 8.0}),
}


@pytest.mark.parametrize("deck", list(FAILED))
def test_a_meas_that_fails_in_a_loop_names_its_line_and_the_pass(deck: str) -> None:
    nl = Netlist.read(DECKS / f"{deck}.cir")
    why, kept = FAILED[deck]
    with pytest.raises(MeasureError) as by_hand:
        run_batch(nl.path)
    assert kept.items() <= by_hand.value.measures.items()
    with SpiceSession(nl) as s:
        for _ in range(2):                      # the first sizing, and one after it (in place or reset)
            with pytest.raises(MeasureError) as e:
                s.evaluate({})
            assert str(e.value) == f"{nl.path}{why}"
            assert e.value.measures == by_hand.value.measures


def test_a_meas_that_fails_outside_a_loop_names_its_line(tmp_path: Path) -> None:
    deck = tmp_path / "rc.cir"
    deck.write_text("RC\n.param r1=1k\nV1 in 0 dc 0 ac 1\nR1 in out {r1}\nC1 out 0 1n\n.control\nac dec 10 1k 10meg\n"
                    "meas ac never when vdb(out)=-300\nmeas ac f3 when vdb(out)=-3\n.endc\n.end\n")
    with SpiceSession(deck) as s, pytest.raises(MeasureError) as e:
        s.evaluate({})
    assert str(e.value) == f"{deck}:8: meas ac never when vdb(out)=-300: out of interval"
    assert list(e.value.measures) == ["f3"] and "out of interval" in e.value.output


def test_a_meas_that_fails_in_an_early_pass_and_measures_in_the_last_is_a_result() -> None:
    nl = Netlist.read(DECKS / "control_loop_meas_recovers.cir")
    ref = run_batch(nl.path)
    assert ref == {"f10": 479049.4, "g1": -16.07224}
    with SpiceSession(nl) as s:
        assert s.evaluate({}) == ref
        assert s.evaluate({"c1": 2e-9}) == run_batch(nl.with_params({"c1": 2e-9}))


def test_check_shows_the_line_and_pass_of_a_meas_that_failed_in_a_loop(tmp_path: Path) -> None:
    """What a user sees: ``zoaf simulate`` (a sandboxed worker, as ``optimize`` runs it) names the line and pass."""
    spec = tmp_path / "ldo.toml"
    spec.write_text('[parameters]\ngm = { lo = "0.5m", hi = "5m", scale = "log" }\n[measures]\nvo_nom = {}\n'
                    'vin_min = {}\n[objectives]\na = { minimize = "vin_min" }\n')
    deck = DECKS / "ldo_foreach_meas.cir"
    r = subprocess.run([sys.executable, "-m", "zoaf", "simulate", str(deck), "--spec", str(spec), "--json"],
                       capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert r.returncode == 1, r.stderr
    out = json.loads(r.stdout)
    assert out["status"] == "incomplete" and out["measures"]["vo_nom"] == 1.195522
    assert out["error"] == f"MeasureError: {deck.resolve()}{FAILED['ldo_foreach_meas'][0]}"

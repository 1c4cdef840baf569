"""Six decks of kinds the benchmark suite lacks (`netlists/e2e/`: an LC VCO, a track-and-hold with a PWL clock, a
differential pair measured by `tf`/`noise` in `.control`, a BJT amplifier with `op` bias checks, a charge pump under
a `.dc` sweep, a sky130 inverter chain), written as outside designers write them: `zoaf simulate` reads what
`ngspice -b` prints on each, and an optimization's `best.cir` prints what the run reported."""
from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from ngspice_marks import needs_ngspice
from test_circuits import ROOT, agree

from zoaf.circuit import CircuitProblem
from zoaf.spice import run_batch

E2E = ROOT / "netlists" / "e2e"
pytestmark = needs_ngspice

#: A second sizing per deck, every design variable moved from the deck's own values (each still simulates).
OTHER_SIZING: dict[str, dict[str, str]] = {
    "lc_vco": {"wn": "12u", "lg": "0.25u", "itail": "1.2m", "ctank": "1.2p"},
    "sample_hold": {"wsw": "3e-05", "lsw": "5e-07", "chold": "2e-13"},
    "diffpair_noise": {"w1": "150u", "l1": "0.2u", "rl": "20k", "itail": "50u"},
    "bjt_ce": {"r1": "22k", "r2": "6.8k", "rc": "2.2k", "re": "470"},
    "charge_pump": {"wn": "2u", "lnn": "2u", "wp": "6u", "lp": "2u", "k": "7", "iref": "14u"},
    "sky130_invchain": {"wn1": "0.7", "beta": "1.3", "fan": "4.5", "nf4": "3"},
}


def zoaf_simulate(deck: Path, sizing: dict[str, str]) -> dict:
    """`zoaf simulate DECK --set ... --json` in a subprocess, as a user runs it."""
    sets = [arg for name, value in sizing.items() for arg in ("--set", f"{name}={value}")]
    r = subprocess.run([sys.executable, "-m", "zoaf", "simulate", str(deck), "--json", *sets], cwd=ROOT,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    return json.loads(r.stdout)


@pytest.mark.parametrize("stem", sorted(OTHER_SIZING))
def test_simulate_prints_what_ngspice_b_prints(stem: str) -> None:
    """At the deck's own sizing (`ngspice -b` on the deck as written, its PDK placeholders filled in) and at a second
    one, every value `ngspice -b` prints is zoaf's to the printed digits, and the spec's measures are among them.
    The two sizings' processes run side by side (two cores: a PDK deck loads its library seconds in each)."""
    deck = E2E / f"{stem}.cir"
    problem = CircuitProblem.from_netlist(deck)
    sizings = ({}, OTHER_SIZING[stem])
    with ThreadPoolExecutor(2) as pool:
        gots = list(pool.map(lambda sizing: zoaf_simulate(deck, sizing), sizings))
        for got in gots:
            assert got["status"] == "ok" and got["error"] is None, got
        written = [deck if not (sizing or problem.spec.pdk) else problem.sized_netlist(got["params"])
                   for sizing, got in zip(sizings, gots)]
        refs = list(pool.map(lambda netlist: run_batch(netlist, timeout=300), written))
    for sizing, got, ref in zip(sizings, gots, refs):
        assert set(problem.spec.measures) <= set(ref), (stem, sizing, ref)
        assert agree(got["measures"], ref), (stem, sizing, got["measures"], ref)
        assert {k: got["measures"][k] for k in ref} == pytest.approx(ref, rel=1e-12, abs=0), (stem, sizing)


def test_optimized_best_cir_prints_the_reported_measures(tmp_path: Path) -> None:
    """`zoaf optimize` on the charge pump (an integer axis), then `ngspice -b best.cir`: the run's measures to every
    digit printed, its sizing inside the spec's box, the unit count an integer."""
    deck = E2E / "charge_pump.cir"
    out = tmp_path / "run"
    r = subprocess.run([sys.executable, "-m", "zoaf", "optimize", str(deck), "--budget", "24", "--workers", "2",
                        "--seed", "0", "--out", str(out), "--quiet"], cwd=ROOT, capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    result = json.loads((out / "result.json").read_text())
    assert result["feasible"] and result["nfev"] == 24
    ref = run_batch(out / "best.cir", timeout=300)
    assert {k: ref.get(k) for k in result["measures"]} == pytest.approx(result["measures"], rel=1e-12, abs=0)
    for p in CircuitProblem.from_netlist(deck).parameters:
        value = result["params"][p.name]
        assert p.lo <= value <= p.hi, (p, value)
        assert not p.integer or value == int(value), (p, value)


def test_a_meas_of_a_vector_outside_the_save_cards_is_measured_as_ngspice_b_measures_it(tmp_path: Path) -> None:
    """A `.save` card naming one node does not stop `ngspice -b` from measuring another node, or a `par()`."""
    deck = tmp_path / "saved.cir"
    deck.write_text("divider with a .save card\n.param rr=1k\nv1 a 0 dc 1\nr1 a b {rr}\nr2 b 0 1k\n"
                    ".dc v1 0 2 0.1\n.meas dc ma find v(a) at=1\n.meas dc mb find v(b) at=1\n"
                    ".meas dc mp find par('v(b)*2') at=1\n.meas dc mq find v(b) at=1.5\n.save v(b)\n.end\n")
    deck.with_suffix(".toml").write_text('[parameters]\nrr = { lo = "100", hi = "10k" }\n[measures]\n'
                                         'ma = {}\nmb = {}\nmp = {}\n[objectives]\no = { minimize = "mb" }\n')
    ref = run_batch(deck)
    assert set(ref) == {"ma", "mb", "mp", "mq"}
    got = zoaf_simulate(deck, {})
    assert {k: got["measures"].get(k) for k in ref} == pytest.approx(ref, rel=1e-12)


def test_the_designers_sizing_is_the_deck_ngspice_b_reads(tmp_path: Path) -> None:
    """A width written `30u` reaches the device as ngspice computes it, an ulp from the 3e-05 zoaf holds for it:
    the deck's own sizing is sent as its own text, so `zoaf simulate` at it prints what `ngspice -b` prints, to
    the 17 digits of a `param=` measure (the track-and-hold's error was 2.67858762825e-05 against 2.67858762848e-05)."""
    for suffix in (".cir", ".toml"):
        text = (E2E / f"sample_hold{suffix}").read_text()
        text = text.replace(".param wsw=4u", ".param wsw=30u").replace("../models/", f"{E2E.parent}/models/")
        (tmp_path / f"sh{suffix}").write_text(text)
    deck = tmp_path / "sh.cir"
    assert ".param wsw=30u" in deck.read_text()
    ref = run_batch(deck)
    got = zoaf_simulate(deck, {})["measures"]
    assert {k: got[k] for k in ref} == ref

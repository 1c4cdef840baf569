"""Random sources and draws: what ``ngspice -b`` cannot repeat, zoaf notes.

A ``trnoise`` source's white and 1/f noise draw from a generator that no seed fixes in ngspice 39 (``.options seed``,
``set rndseed``, ``setseed``): each ``ngspice -b`` run of the same deck measures another value, so zoaf reported
numbers no one could reproduce as if they were: zoaf runs it as ``ngspice -b`` does and notes it, in the deck or an
included file (its random telegraph noise draws from the seeded generator: no note). An ``agauss`` ``.param`` with no ``.options seed`` draws anew at every
parse, by hand as in zoaf: noted; seeded, every sizing draws what ``ngspice -b`` draws
(``tests/fidelity/param_agauss_seeded.cir``).
"""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from ngspice_marks import NEEDS_NGSPICE

from zoaf.netlist import Netlist

pytestmark = NEEDS_NGSPICE

from zoaf.spice import SpiceSession, run_batch  # noqa: E402

NOISY = ("RC driven by white noise\n.param r1=1k c1=1n na=0.1\n.options seed=7\nV1 in 0 dc 0 {source}\n"
         "R1 in out {{r1}}\nC1 out 0 {{c1}}\n.tran 10n 20u\n.meas tran vrms rms v(out) from=2u to=20u\n.end\n")


def _vrms(deck: Path) -> str:
    out = subprocess.run(["ngspice", "-b", str(deck)], capture_output=True, text=True, cwd=deck.parent, timeout=60)
    return re.search(r"^vrms\s*=\s*(\S+)", out.stdout, re.M).group(1)


@pytest.mark.parametrize("source", ["trnoise({na} 10n 0 0)", "trnoise(0 10n 1 1m)", "trnoise 0.1 10n 0 0"])
def test_a_trnoise_source_that_draws_runs_as_in_ngspice_b_with_a_note(tmp_path: Path, source: str) -> None:
    """ngspice -b runs it, another value each run: so does zoaf, saying so (it was refused: a working bench)."""
    deck = tmp_path / "noise.cir"
    deck.write_text(NOISY.format(source=source))
    assert len({_vrms(deck) for _ in range(3)}) > 1          # ngspice -b itself, seeded: another value each run
    nl = Netlist.read(deck)
    assert [n for n in nl.notes if "trnoise" in n] == [
        f"{deck}:4: a trnoise source of white or 1/f noise: ngspice 39 draws it from a generator that no seed fixes "
        "(.options seed, set rndseed, setseed alike), so every ngspice -b run and every sizing of zoaf measures "
        "other values (by hand too) and an optimizer follows noise; for a repeatable bench use .noise, a random "
        "telegraph trnoise(0 0 0 0 rtsam ...) under .options seed, or a pwl source of fixed values"]
    with SpiceSession(nl) as s:
        assert s.evaluate({})["vrms"] > 0


def test_a_trnoise_source_in_an_included_file_is_noted_at_the_include(tmp_path: Path) -> None:
    (tmp_path / "src.inc").write_text("* the noise\nV1 in 0 dc 0 trnoise(0.1 10n 0 0)\n")
    deck = tmp_path / "noise.cir"
    deck.write_text(NOISY.format(source="").replace("V1 in 0 dc 0 \n", ".include src.inc\n"))
    notes = [n for n in Netlist.read(deck).notes if "trnoise" in n]
    assert len(notes) == 1 and notes[0].startswith(
        f"{deck}:4: an included file's 'V1 in 0 dc 0 trnoise(0.1 10n 0 0)': a trnoise source of white"), notes


@pytest.mark.parametrize("source", ["trnoise(0 10n 0 0)", "trnoise(0 10n 0 0 1m 1u 1u)"])
def test_a_trnoise_source_without_white_or_1_over_f_noise_runs_as_in_ngspice_b(tmp_path: Path, source: str) -> None:
    """Zero amplitudes draw nothing; a random telegraph draws from the seeded generator: each run alike."""
    deck = tmp_path / "quiet.cir"
    deck.write_text(NOISY.format(source=source))
    nl = Netlist.read(deck)
    assert not [n for n in nl.notes if "trnoise" in n]
    with SpiceSession(nl) as s:
        for values in ({}, {"r1": 2e3}, {}):
            assert s.evaluate(values) == run_batch(nl.with_params(values))


def test_an_unseeded_draw_is_noted_and_a_seeded_one_is_not(tmp_path: Path) -> None:
    seeded = (Path(__file__).parent / "fidelity" / "param_agauss_seeded.cir").read_text()
    deck = tmp_path / "draw.cir"
    deck.write_text(seeded.replace(".options seed=5\n", ""))
    assert [n for n in Netlist.read(deck).notes if "draws" in n] == [
        f"{deck}:5: agauss() draws a new value at every parse, with no .options seed: every ngspice -b run and every "
        "sizing of zoaf draws another, so the measures are random (by hand too); `.options seed=1` (any number) draws "
        "the same at every sizing (but also at every sample of `zoaf yield`, which seeds a deck without it per sample)"]
    (tmp_path / "seed.inc").write_text(".options seed=3\n")
    deck.write_text(seeded.replace(".options seed=5\n", ".include seed.inc\n"))
    assert not [n for n in Netlist.read(deck).notes if "draws" in n]

"""A deck's first line is its title for ``ngspice -b`` unless a card starts at its column 0: a session, which loads
the deck line by line (``ngSpice_Circ``), must take the same line for a title.

``ngSpice_Circ`` ended the deck at a title whose first word is ``.end`` (the session measured an empty circuit), and
read a card after blanks (`` .temp 100`` simulated every sizing at 100 C, `` .include x.inc`` failed to load) where
``ngspice -b`` reads a title. Such a title is now loaded after a ``*``; a column-0 card is as ``ngspice -b`` reads it
(``.temp 100`` sets the temperature in both; ``.lib`` opens the library: refused, ``test_fidelity_refused.py``).
"""
from __future__ import annotations

from pathlib import Path

import pytest
from ngspice_marks import NEEDS_NGSPICE

from zoaf.netlist import Netlist

pytestmark = NEEDS_NGSPICE

from zoaf.spice import SpiceSession, run_batch  # noqa: E402

#: An RC low-pass whose resistor moves with the temperature: a title read as a `.temp` card shows in f3.
BODY = ("\n.param r1=1k c1=1n\nV1 in 0 dc 0 ac 1\nR1 in out {r1} tc1=2m\nC1 out 0 {c1}\n.ac dec 20 1k 10meg\n"
        ".save v(out)\n.meas ac f3 when vdb(out)=-3\n.end\n")
F3_27C = 158778.0669258152              # ngspice -b at 27 C (1/(2 pi RC) on the 20-point grid)


@pytest.fixture(autouse=True)
def _in_a_folder_of_its_own(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


@pytest.mark.parametrize("title", [".end", ".END of the story", "  .end", "\t.end x", " .temp 100", " .include x.inc",
                                   " .lib x.lib tt", " .param r1=5k", " .subckt lpf in out", " .control"])
def test_a_title_ngspice_b_reads_as_a_title_is_one_in_a_session(tmp_path: Path, title: str) -> None:
    (tmp_path / "x.inc").write_text(".param r1=2k\n")
    (tmp_path / "x.lib").write_text(".lib tt\n.param r1=2k\n.endl tt\n")
    deck = tmp_path / "t.cir"
    deck.write_text(title + BODY)
    nl = Netlist.read(deck)
    assert run_batch(deck) == {"f3": F3_27C}
    sized = tmp_path / "sized.cir"                  # as best.cir: beside the files its title names
    sized.write_text(nl.with_params({"r1": 2e3}))
    with SpiceSession(nl) as s:
        assert s.evaluate({}) == {"f3": F3_27C}
        assert s.evaluate({"r1": 2e3}) == run_batch(sized) == {"f3": pytest.approx(F3_27C / 2, rel=2e-2)}


def test_a_temp_card_at_column_0_of_the_title_is_read_in_both(tmp_path: Path) -> None:
    """ngspice reads a first line ``.temp 100`` (column 0) as the card: both simulate at 100 C."""
    deck = tmp_path / "t.cir"
    deck.write_text(".temp 100" + BODY)
    ref = run_batch(deck)
    assert ref["f3"] < 0.9 * F3_27C
    with SpiceSession(deck) as s:
        assert s.evaluate({}) == ref



@pytest.mark.parametrize("title", [" .include missing.inc", "\t.lib missing.lib tt", " .include {outside}",
                                   " .osdi x.osdi", " .model d1 filesource file={outside}", " .if (1)",
                                   " .options interp"])
def test_a_title_names_nothing_zoaf_follows_or_reads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     title: str) -> None:
    """``ngspice -b`` reads no card in a title, so it opens no file a title names: zoaf's walk followed `` .include
    x.inc`` there (a missing file, or one outside ``ZOAF_INCLUDE_ROOTS``, refused; a note of a file never read) and
    its text scans took the title's cards for the deck's (an ``.osdi`` refused; ``interp``, ``.if`` believed)."""
    outside = tmp_path / "outside.txt"
    outside.write_text(".param r1=5k\n")
    folder = tmp_path / "deck"
    folder.mkdir()
    monkeypatch.setenv("ZOAF_INCLUDE_ROOTS", str(folder))
    deck, plain = folder / "t.cir", folder / "plain.cir"
    deck.write_text(title.format(outside=outside) + BODY)
    plain.write_text("a title" + BODY)
    nl = Netlist.read(deck)
    read = [(n.includes, n.reads_outside, n.notes, n.conditional, n.interp_card) for n in (nl, Netlist.read(plain))]
    assert read[0] == read[1] == ((), (), [], False, False)
    assert run_batch(deck) == {"f3": F3_27C}
    with SpiceSession(nl) as s:
        assert s.evaluate({}) == {"f3": F3_27C}

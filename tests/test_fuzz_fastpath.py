"""``benchmarks/fuzz_fastpath.py``: random small decks, each walked through sizings in place (the fast path) and
with ``reset``, whose results must be equal bit for bit. A seeded sample keeps guarding the fast path; the decks it
once found wrong are in ``tests/fidelity/`` (``diode_m_alter``, ``subckt_instance_header_order``)."""
from __future__ import annotations

import random
import sys
from pathlib import Path

from ngspice_marks import NEEDS_NGSPICE

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import fuzz_fastpath  # noqa: E402

pytestmark = NEEDS_NGSPICE


def test_a_seeded_sample_of_decks_is_equal_in_place_and_after_reset():
    """20 decks: no mismatch, and enough of them resized in place that the comparison means something."""
    findings, counts = fuzz_fastpath.fuzz(20, seed=11, log=lambda _: None)
    assert not findings, findings
    assert counts["decks"] == 20 and counts["planned"] >= 5 and counts["in_place"] >= 15, counts


def test_the_generator_is_seeded_and_varied():
    """The same seed gives the same decks and walks (a finding is replayed from its seed and index); the decks
    use what the fuzzer is meant to cover."""
    decks = [fuzz_fastpath.deck(5, i)[0] for i in range(60)]
    assert decks == [fuzz_fastpath.deck(5, i)[0] for i in range(60)]
    walk = fuzz_fastpath.sizings(random.Random(3), fuzz_fastpath.deck(5, 0)[1])
    assert walk == fuzz_fastpath.sizings(random.Random(3), fuzz_fastpath.deck(5, 0)[1]) and 4 <= len(walk) <= 6
    text = "\n".join(decks)
    for construct in (".subckt c3", ".option scale", ".temp", "\nop\n", ".ac ", ".dc ", "nmos_g", "nl1",
                      " dmod", "qmod", " m=2", "f1(", "sqrt(", "max(", ".param u", "pwr(", "pow(", ")^3", ")^1.5",
                      "**2", ")^0", " ? ", " ? -1 : ", " && ", " || ", "!(", " == ", "nint(", "int(", "ceil(",
                      "floor("):
        assert construct in text, construct


def test_the_sample_is_mostly_resized_in_place():
    """The constructs the generator writes (ternaries, ``&& || !``, powers, ``.func``, a diode's area, a source's
    expression with blanks) are followed in place, not left to ``reset``: most sizings of a seeded sample are set so
    (a construct left to ``reset`` again would show here, where a mismatch test cannot see it)."""
    findings, counts = fuzz_fastpath.fuzz(12, seed=4, log=lambda _: None)
    assert not findings, findings
    assert counts["in_place"] >= 0.6 * counts["sizings"], counts

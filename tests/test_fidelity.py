"""Fidelity: every deck of tests/fidelity gives the same results in a SpiceSession as with ``ngspice -b``.

Each deck runs at its defaults and at other sizings, in process (fast or whole-deck path, whichever zoaf
picks) and with ``ngspice -b`` (:func:`run_batch`); the results must agree to the digits ngspice prints.
Both sides print ``.meas`` results with ``NGSPICE_MEAS_PRECISION`` digits, but ngspice 39 prints
``find``/``max``/``min``/``avg``/``at``/``trig``/``targ`` results and every ``meas`` command result with ``%e``
(7 significant digits) whatever the precision: two equal values may differ by one unit in the 7th digit of
their printed form when the two runs' last bits differ (reset vs fresh parse), i.e. up to 1e-6 relative
(3e-6 gives a margin for a difference of such values). A sizing where ``ngspice -b`` misses a measure must
miss the same one in zoaf, with the same other results. zoaf's fast path also returns the ``.control``
scalars a deck does not print; only printed ones can be compared.
"""
from __future__ import annotations

import math
import shutil
from pathlib import Path

import pytest

from zoaf.errors import MeasureError
from zoaf.netlist import Netlist
from zoaf.units import parse

DECKS = Path(__file__).parent / "fidelity"
REL = 3e-6


def _have_libngspice() -> bool:
    try:
        from zoaf.spice import shared_ngspice
        shared_ngspice()
        return True
    except Exception:  # noqa: BLE001 - any failure to load the library means: skip
        return False


pytestmark = [
    pytest.mark.skipif(not _have_libngspice(), reason="libngspice (PySpice) not available"),
    pytest.mark.skipif(shutil.which("ngspice") is None, reason="ngspice executable not available"),
]

from zoaf.spice import SpiceSession, run_batch  # noqa: E402

#: Sizings other than "every plain-number param x1.1, then x0.9": those that show what a deck is about.
SIZINGS = {"phase_wrap": [{"fp2": 45e3}, {"fp2": 70e3}]}
#: Decks that need the whole-deck (faithful) path, and those that must not.
FAITHFUL = {"control_include_options", "param_chain"}


def sizings(nl: Netlist) -> list[dict[str, float]]:
    stem = nl.path.stem
    if stem in SIZINGS:
        return [{}] + SIZINGS[stem]
    plain = {}
    for name, text in nl.params.items():
        try:
            plain[name] = parse(text)
        except ValueError:
            continue                          # an expression: it follows the others
    return [{}] + [{k: v * f for k, v in plain.items()} for f in (1.1, 0.9)]


def outcome(run, *args) -> tuple[dict[str, float], str | None]:
    """(results, the failed measures' error type or None): a missed measure is a result to compare too."""
    try:
        return run(*args), None
    except MeasureError as e:
        return dict(e.measures), "MeasureError"


def same(got: dict[str, float], ref: dict[str, float], nl: Netlist) -> bool:
    """Every result ngspice -b printed, equal; the same ``.meas`` results. (zoaf also reads the ``.control``
    block's scalars that the deck does not print.)"""
    cards = {m.name for m in nl.measures}
    return (cards & got.keys() == cards & ref.keys() and ref.keys() <= got.keys()
            and all(math.isclose(got[k], ref[k], rel_tol=REL, abs_tol=1e-15) for k in ref))


@pytest.mark.parametrize("deck", sorted(DECKS.glob("*.cir")), ids=lambda p: p.stem)
def test_deck_matches_ngspice_b(deck):
    nl = Netlist.read(deck)
    assert bool(nl.faithful_reasons) == (deck.stem in FAITHFUL), nl.faithful_reasons
    with SpiceSession(nl) as s:
        for values in sizings(nl):
            ref, ref_err = outcome(run_batch, nl.with_params(values))
            got, got_err = outcome(s.evaluate, values)
            assert ref, f"{deck.name} {values}: ngspice -b printed no result"
            assert got_err == ref_err and same(got, ref, nl), (values, got, ref)


def test_corpus_size():
    assert len(list(DECKS.glob("*.cir"))) >= 15

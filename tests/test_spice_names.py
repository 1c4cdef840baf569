"""``SpiceSession.evaluate(names=...)``: the results a caller names are returned whenever they were taken, whatever
happened to the others; a named one that failed still raises the MeasureError naming it. Against ``ngspice -b``."""
from __future__ import annotations

from pathlib import Path

import pytest
from ngspice_marks import NEEDS_NGSPICE

from zoaf.errors import MeasureError

pytestmark = NEEDS_NGSPICE

from zoaf.spice import SpiceSession, run_batch  # noqa: E402

_RC = "Two measures, one that never crosses\n.param r1=1k c1=1n\nV1 in 0 dc 0 ac 1\nR1 in out {{r1}}\nC1 out 0 {{c1}}\n"
#: The same two measures as .meas cards (the second is the repository's meas_out.cir with an {expression} sweep:
#: run whole, as ngspice -b runs it), as a .control block's meas commands, and behind a loop whose let fails.
DECKS = {
    "cards": ".save all\n.ac dec 10 1k 10meg\n.meas ac good when vdb(out)=-3\n.meas ac never when vdb(out)=-300\n",
    "whole deck": (".save all\n.param fmax=10meg\n.ac dec 10 1k {fmax}\n.meas ac good when vdb(out)=-3\n"
                   ".meas ac never when vdb(out)=-300\n"),
    "control": (".control\nac dec 10 1k 10meg\nmeas ac good when vdb(out)=-3\nmeas ac never when vdb(out)=-300\n"
                "print good\n.endc\n"),
    "loop": (".control\nac dec 10 1k 10meg\nmeas ac good when vdb(out)=-3\nrepeat 1\nlet never = nosuch + 1\nend\n"
             "print good\n.endc\n"),
}
#: Why the failing one failed, as the error says it (a loop's failed let is reported at its `end`, by its text).
WHY = {"cards": ".meas never (line 9) produced no value: out of interval", "whole deck": "no value for .meas never",
       "control": "meas ac never when vdb(out)=-300: out of interval", "loop": 'end: Error: RHS " nosuch + 1" invalid'}


@pytest.mark.parametrize("kind", list(DECKS))
def test_a_named_measure_is_returned_whatever_failed_besides(tmp_path: Path, kind: str) -> None:
    """A caller that named ``good`` got a MeasureError about ``never``, which it had not asked for: the failure was
    kept whether or not it was wanted. ``ngspice -b`` prints ``good`` and fails ``never``; so does the session."""
    deck = tmp_path / "two.cir"
    deck.write_text(_RC.format() + DECKS[kind] + ".end\n")
    with pytest.raises(MeasureError) as by_hand:
        run_batch(deck)
    reference = by_hand.value.measures["good"]
    assert reference == pytest.approx(159155, rel=1e-2)            # 1/(2 pi RC), on a coarse grid
    with SpiceSession(deck) as s:
        got = s.evaluate({}, names=["good"])
        assert list(got) == ["good"] and got["good"] == pytest.approx(reference, rel=6e-6)
        with pytest.raises(MeasureError) as e:                      # asked for: still the error naming it
            s.evaluate({}, names=["good", "never"])
        assert WHY[kind] in str(e.value) and "never" not in e.value.measures, str(e.value)
        assert e.value.measures.get("good") == pytest.approx(reference, rel=6e-6)
        with pytest.raises(MeasureError) as e:                      # every result wanted (the spec's path): as before
            s.evaluate({})
        assert WHY[kind] in str(e.value) and "never" not in e.value.measures, str(e.value)
        assert s.evaluate({"r1": 2e3}, names=["good"])["good"] == pytest.approx(reference / 2, rel=2e-2)

"""A ``print`` of another plot's vector prints nothing in ``ngspice -b``, wherever its warning lands in the output.

``dc_sized_sweeps.cir``'s block prints ``vop`` (made in the ``op`` plot) from the plot of a nested ``dc``, which
also measures the deck's ``.meas dc`` cards again and fails them ("out of interval"). ``ngspice -b`` prints the
warning ("vector vop is not available") on stderr between those failures: ``run_batch`` took it for one more
failure report of a card, so it called the run complete where the session (rightly) reports a print that printed
nothing.
"""
from __future__ import annotations

from pathlib import Path

import pytest
from ngspice_marks import NEEDS_NGSPICE

from zoaf.errors import MeasureError
from zoaf.netlist import Netlist

DECKS = Path(__file__).parent / "fidelity"

pytestmark = NEEDS_NGSPICE

from zoaf.spice import SpiceSession, run_batch  # noqa: E402


@pytest.fixture(autouse=True)
def _in_a_folder_of_its_own(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def test_a_print_of_another_plots_vector_among_failed_cards_is_missing_in_both_runs():
    nl = Netlist.read(DECKS / "dc_sized_sweeps.cir")
    with pytest.raises(MeasureError) as in_batch:
        run_batch(nl.path)
    with SpiceSession(nl) as s, pytest.raises(MeasureError) as in_session:
        s.evaluate({})
    assert "vector vop is not available" in str(in_batch.value)
    for e in (in_batch.value, in_session.value):
        got = e.measures
        assert not {"vop", "iop", "n", "vl"} & got.keys(), got
        assert got == {"vhalf": 0.8205707, "vend": 0.8651558, "rq": pytest.approx(0.7500055044868633, rel=1e-14)}

"""A ``meas`` command run several times gives the result of its last run, in a session as in ``ngspice -b``.

``ldo_foreach_meas.cir`` measures ``vin_min`` in each pass of a ``foreach``; the last pass (20 mA) finds no crossing
and prints ``meas dc vin_min ... failed!``. The second pass's value (1.297413) lives on only in plot ``dc2``: the
session read it from there and also reported the failure, ``run_batch`` kept it and ignored the failure. Both
now call ``vin_min`` missing and keep the other results.
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


@pytest.mark.parametrize(("deck", "gone", "kept"), [("ldo_foreach_meas", "vin_min", {"vo_nom": 1.195522}),
                                                    ("control_meas_fails_later", "f10", {"g1": -1.714492e-04})])
def test_a_meas_that_fails_after_it_measured_is_a_missing_result(deck, gone, kept):
    nl = Netlist.read(DECKS / f"{deck}.cir")
    with SpiceSession(nl) as s:
        with pytest.raises(MeasureError) as in_session:
            s.evaluate({})
    with pytest.raises(MeasureError) as in_batch:
        run_batch(nl.path)
    for e in (in_session.value, in_batch.value):
        assert gone not in e.measures and kept.items() <= e.measures.items(), e.measures
    assert gone in str(in_batch.value)

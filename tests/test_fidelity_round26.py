"""Fidelity round 26: decks as ngspice's own distribution writes them (self-checking decks that end in a quit inside
an ``if``) and binned model cards under zoaf's ``ngbehavior=hsa``: what ``ngspice -b`` does, zoaf does, or says why
not in one line."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from ngspice_marks import NEEDS_NGSPICE
from test_fidelity import DECKS, _in_a_folder_of_its_own, _ngspice_b  # noqa: F401 (an autouse fixture)

from zoaf.errors import InputError, SimulationError
from zoaf.netlist import Netlist
from zoaf.spice import SpiceSession, run_batch

pytestmark = NEEDS_NGSPICE


def test_a_quit_after_which_nothing_runs_is_replayed_and_one_before_dot_analyses_refused(tmp_path):
    """ngspice's self-checking decks end ``if ok`` ... ``quit 0`` ``else`` ``quit 1`` ``end``: nothing runs after
    either quit, so a replay without them is ``ngspice -b``'s run (``selfcheck_*.cir``); zoaf refused them as any
    quit inside an if. With ``.meas`` cards, ``ngspice -b`` runs the dot-analyses after the block only where the
    branch it takes does not quit (``f3`` never printed here): that stays refused, in one line with the line."""
    block = (".control\nset numdgt=15\nop\nlet k = 1\nprint k\nif k > 0\n  echo ok\n  quit 0\nelse\n  quit 1\nend\n"
             ".endc\n")
    deck = tmp_path / "q.cir"
    deck.write_text(f"RC\n.param r1=1k\nV1 in 0 dc 1 ac 1\nR1 in out {{r1}}\nC1 out 0 1n\n{block}.end\n")
    with SpiceSession(Netlist.read(deck)) as s:
        assert s.evaluate({"r1": 2e3})["k"] == run_batch(deck)["k"] == 1.0
    deck.write_text(f"RC\n.param r1=1k\nV1 in 0 dc 1 ac 1\nR1 in out {{r1}}\nC1 out 0 1n\n.ac dec 20 1k 100meg\n"
                    f".meas ac f3 when vdb(out)=-3\n{block}.end\n")
    out = _ngspice_b(deck).stdout
    assert re.search(r"^k = 1", out, re.M) and not re.search(r"^f3\s*=", out, re.M), out
    with pytest.raises(InputError) as e:
        Netlist.read(deck)
    line = 1 + deck.read_text().splitlines().index("  quit 0")
    assert str(e.value).startswith(f"{deck}:{line}: quit/exit inside an if block: whether ngspice -b"), str(e.value)


def test_an_alter_across_a_bin_edge_fails_in_zoaf_as_in_ngspice_b(tmp_path: Path) -> None:
    """Under ``ngbehavior=hsa`` (zoaf's setting, and the ``.spiceinit`` beside ``best.cir``) an ``alter @m1[w]`` across
    the bin edge of binned BSIM4 cards finds no bin: ``ngspice -b`` prints "Error: no model available for w=...",
    keeps the old bin with the new width, prints the results and exits with status 1, where plain ngspice re-bins
    ("model has changed from nch.1 to nch.2"). A session fails the sizing with ngspice's line and the command, as
    ``run_batch`` fails; inside the bin both measure alike (``dc_family_alter_width_trig.cir``)."""
    nl = Netlist.read(DECKS / "dc_family_alter_width_trig.cir")
    deck = tmp_path / "hsa" / "crossing.cir"
    deck.parent.mkdir()
    deck.write_text(nl.with_params({"wnew": 10.01e-6}))
    hand = _ngspice_b(deck)
    assert "no model available for w=" in hand.stdout + hand.stderr and hand.returncode == 1
    assert re.search(r"^vd_diff3\s+=", hand.stdout, re.M), hand.stdout
    (tmp_path / "plain").mkdir()
    plain = subprocess.run(["ngspice", "-b", str(deck)], cwd=tmp_path / "plain", capture_output=True, text=True,
                           timeout=120, env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path / "plain")})
    assert "model has changed from nch.1 to nch.2" in plain.stdout + plain.stderr
    with pytest.raises(SimulationError, match="no model available for w="):
        run_batch(deck)
    with SpiceSession(nl) as s, pytest.raises(SimulationError) as e:
        s.evaluate({"wnew": 10.01e-6})
    assert str(e.value).startswith("alter @m1[w]=$&wnew: Error: no model available for w="), str(e.value)

"""Decks as tools export them (Qucs-S, netlist generators) and what ngspice 39 does with them, zoaf as `ngspice -b`.

Qucs-S writes ``echo "" > spice4qucs.cir.noise`` into every deck it exports and destroys every plot after each
analysis; a generator writes a sweep's values on one ``foreach`` line; a ``print`` that cannot see one of its vectors
prints none; ``disto lin`` from a frequency to itself crashes ngspice. The corpus decks (``qucs_*.cir``,
``control_long_lines.cir``, ``ac_group_delay_ladder.cir``) compare every sizing in ``test_fidelity.py``; these tests
pin each fact on its own.
"""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from ngspice_marks import NEEDS_NGSPICE

from zoaf.errors import InputError, MeasureError
from zoaf.netlist import Netlist
from zoaf.ngcommands import MAX_COMMAND

DECKS = Path(__file__).parent / "fidelity"

pytestmark = NEEDS_NGSPICE

from zoaf.spice import SPICEINIT, SpiceSession, run_batch  # noqa: E402

RC = "RC\n.param r1=1k\nV1 in 0 dc 0 ac 1\nR1 in out {r1}\nC1 out 0 1n\n"


@pytest.fixture(autouse=True)
def _in_a_folder_of_its_own(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


@pytest.mark.parametrize("whole", [False, True])
@pytest.mark.parametrize("echo", ['echo "" > spice4qucs.cir.noise', 'echo "$&n  $r_act" >> spice4qucs.ac.cir.res'])
def test_an_echo_into_a_plain_file_of_the_working_folder_runs_and_writes_nothing(tmp_path: Path, echo: str,
                                                                                 whole: bool) -> None:
    """Qucs-S empties its output files with such an ``echo`` in every deck it exports: zoaf refused every one as a
    redirect. It runs now, with the measures ``ngspice -b`` prints, and zoaf writes no file: a session replays no
    ``echo``, and the whole-deck path (``whole``: an ``.options`` line in the block) leaves this one out."""
    deck = tmp_path / "qucs.cir"
    options = ".options reltol=1e-4\n" if whole else ""
    deck.write_text(RC + f".control\n{options}let n = 0\nset r_act = 1\n{echo}\nac dec 10 1k 10meg\n"
                    "meas ac f3 when vdb(out)=-3\nprint f3\n.endc\n.end\n")
    nl = Netlist.read(deck)
    assert bool(nl.faithful_reasons) == whole
    with SpiceSession(nl) as s:
        got = s.evaluate({"r1": 2e3})
    assert not list(tmp_path.glob("spice4qucs*"))
    assert got["f3"] == run_batch(nl.with_params({"r1": 2e3}))["f3"] == pytest.approx(79388.37)


@pytest.mark.parametrize("command", ["echo x > /tmp/zoaf-marker", "echo x > sub/file", "echo x > .spiceinit",
                                     "print v(out) > out.txt", "echo x < in.txt", "echo x > a b"])
def test_other_redirects_stay_refused(tmp_path: Path, command: str) -> None:
    deck = tmp_path / "redirect.cir"
    deck.write_text(RC + f".control\nop\n{command}\n.endc\n.end\n")
    with pytest.raises(InputError) as e:
        Netlist.read(deck)
    assert str(e.value).startswith(f"{deck}:8: .control command ") and "redirects ngspice's output" in str(e.value)


def test_results_printed_before_destroy_all_are_the_deck_s_results() -> None:
    """A Qucs-S block prints its results, then ``destroy all`` (and ``reset``) after each analysis: ``ngspice -b``
    printed ``bw`` (a ``let`` of the ac plot), the session read it after its plot was gone and called it missing."""
    nl = Netlist.read(DECKS / "qucs_bandpass_export.cir")
    with SpiceSession(nl) as s:
        got = s.evaluate({"lval": 12e-6})
    ref = run_batch(nl.with_params({"lval": 12e-6}))
    assert got["bw"] == ref["bw"] == pytest.approx(ref["f_hi"] - ref["f_lo"], rel=1e-6)
    assert {k: got[k] for k in ref} == pytest.approx(ref, rel=1e-12)


def test_a_print_that_cannot_see_one_of_its_vectors_prints_none_in_both_runs(tmp_path: Path) -> None:
    """``print vdc gain`` after an ``ac``: ``vdc`` (a ``meas dc``) is in the dc plot, so ngspice prints neither (one
    "vector vdc is not available" warning). The session called ``gain`` a result and ``run_batch`` called the run
    complete; ``gain`` is missing in both now, the measures kept."""
    deck = tmp_path / "prints.cir"
    deck.write_text(RC + ".control\ndc v1 0 1 0.5\nmeas dc vdc find v(out) at=1\nac dec 10 1k 10meg\n"
                    "meas ac f3 when vdb(out)=-3\nlet gain = vdb(out)[0]\nset numdgt=15\nprint vdc gain\n.endc\n.end\n")
    nl = Netlist.read(deck)
    with SpiceSession(nl) as s, pytest.raises(MeasureError) as in_session:
        s.evaluate({})
    with pytest.raises(MeasureError) as in_batch:
        run_batch(deck)
    assert "vector vdc is not available" in str(in_batch.value)
    assert "`print vdc gain` prints nothing in ngspice: vdc is not in the current plot ac1" in str(in_session.value)
    assert in_session.value.measures == in_batch.value.measures == {"vdc": 1.0, "f3": 158780.0}


def test_a_command_longer_than_libngspice_takes_runs_the_whole_deck() -> None:
    """libngspice 39 reads a command into 1024 bytes: a generator's ``foreach`` of 160 values ran 129 passes, a
    ``let`` of 1,024 characters ended the process ("*** buffer overflow detected ***"). Such a deck is run whole per
    sizing (``ngspice -b`` reads its lines whole): the same results."""
    nl = Netlist.read(DECKS / "control_long_lines.cir")
    assert [r.split(":")[0] for r in nl.faithful_reasons] == ["line 10", "line 18"], nl.faithful_reasons
    with SpiceSession(nl) as s:
        got = s.evaluate({"c1": 12e-9})
    assert got == run_batch(nl.with_params({"c1": 12e-9})) and got["n"] == 160


@pytest.mark.parametrize("length, whole", [(MAX_COMMAND, False), (MAX_COMMAND + 1, True)])
def test_the_longest_command_sent_is_what_libngspice_takes(tmp_path: Path, length: int, whole: bool) -> None:
    let = "let x = 0"
    let += "+1" * ((length - len(let)) // 2) + "0" * ((length - len(let)) % 2)
    deck = tmp_path / "long.cir"
    deck.write_text(RC + f".control\nop\n{let}\nset numdgt=15\nprint x\n.endc\n.end\n")
    nl = Netlist.read(deck)
    assert bool(nl.faithful_reasons) == whole and len(let) == length
    with SpiceSession(nl) as s:
        assert s.evaluate({}) == run_batch(deck)


@pytest.mark.parametrize("card, line", [("disto lin 1 100k 100k", 9), ("disto lin 3 1e5 100k 0.9", 9),
                                        (".disto lin 1 100k 100k", 8)])
def test_a_linear_disto_sweep_from_a_frequency_to_itself_is_refused_in_one_line(tmp_path: Path, card: str, line: int
                                                                                ) -> None:
    """``disto lin N F F`` makes ngspice 39 ask for a negative amount of memory and exit (``ngspice -b``: "malloc:
    Internal Error: can't allocate"); a session's libngspice "cannot recover", so each sizing failed in one
    obscure line (a worker lost per sizing). Refused with its line and the fix; ``disto dec 1 F F`` runs."""
    dot = card.startswith(".")
    deck = tmp_path / "disto.cir"
    deck.write_text("disto\n.param rc=1k\n.model qn npn is=1e-16 bf=100\nVCC vcc 0 dc 5\n"
                    "VIN b 0 dc 0.7 ac 0.01 distof1 0.01 distof2 0.01\nQ1 c b 0 qn\nRC vcc c {rc}\n"
                    + (f"{card}\n.control\nrun\n" if dot else f".control\n{card}\n") + "print v(c)\n.endc\n.end\n")
    (tmp_path / ".spiceinit").write_text(SPICEINIT)
    run = subprocess.run(["ngspice", "-b", str(deck)], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert "can't allocate" in run.stdout + run.stderr                      # real
    with pytest.raises(InputError) as e:
        Netlist.read(deck)
    message = str(e.value)
    assert "\n" not in message and message.startswith(f"{deck}:{line}: `{card.lstrip('.')}`: ") and "crash" in message
    deck.write_text(deck.read_text().replace("disto lin", "disto dec"))
    assert not Netlist.read(deck).notes

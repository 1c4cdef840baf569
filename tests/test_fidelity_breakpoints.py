"""Decks whose output reads like a failure that ``ngspice -b`` goes on after: a transient paused at a ``stop``
breakpoint (and ``resume``), an XSPICE code model's "**** ERROR ****" message; and the words of a card error.

The corpus decks (``control_stop_when.cir``, ``control_define_funcs.cir``, ``xspice_aswitch_ilimit.cir``) compare
their results with ``ngspice -b`` in ``test_fidelity.py``; these tests pin where each reading stops.
"""
from __future__ import annotations

import math
from pathlib import Path

import pytest
from ngspice_marks import NEEDS_NGSPICE

from zoaf.deckcheck import command_problem
from zoaf.errors import ConvergenceError, InputError, MeasureError, ParseError
from zoaf.netlist import Netlist
from zoaf.ngoutput import classify

DECKS = Path(__file__).parent / "fidelity"
needs_ngspice, needs_libngspice = NEEDS_NGSPICE[1], NEEDS_NGSPICE[0]

_PAUSED = ["Doing analysis at TEMP = 27.000000 and TNOM = 27.000000", "1 : condition met: stop  when v(out) > 0.6",
           "doAnalyses: pause requested", "tran simulation interrupted"]


@pytest.mark.parametrize("command", ["stop when v(out) > 0.6", "stop when v(a) < v(b)",
                                     "define above(a, b) a > b"])
def test_stop_and_define_compare_rather_than_redirect(command):
    """ngspice's ``docommand`` never redirects ``stop`` and ``define`` (its ``noredirect`` list): ``stop when v(out) >
    0.6`` sets a breakpoint (``ngspice -b`` writes no file ``0.6``); zoaf refused it as a redirect."""
    assert command_problem(command, allow_shell=False) is None
    assert "redirects" in command_problem("print v(out) > 0.6", allow_shell=False)


def test_a_transient_paused_at_a_breakpoint_is_no_failure_and_an_interrupted_one_is():
    assert classify(_PAUSED, context="tran 10n 20u") is None
    stale = [ln.replace("pause requested", "Too many iterations without convergence") for ln in _PAUSED]
    assert classify(stale, context="tran 10n 20u") is None          # after bsource_ota_loop.cir in the process
    assert isinstance(classify(_PAUSED + ["Error: measure  vend  find(AT) : out of interval"], context="x"),
                      MeasureError)
    halted = [ln for ln in _PAUSED if "condition met" not in ln]       # bg_halt, no breakpoint: still a failure
    assert isinstance(classify(halted, context="tran 10n 20u"), ConvergenceError)


def test_a_code_model_message_is_no_failure_and_what_follows_it_still_is():
    """ilimit prints "**** ERROR ****" and "* CLIMIT function linear range less than zero. *" and goes on;
    ``ngspice -b`` prints every measure (exit status 0). zoaf failed every sizing (``xspice_aswitch_ilimit.cir``)."""
    message = ["**** ERROR ****", "* CLIMIT function linear range less than zero. *", ""]
    assert classify(message + ["Initial Transient Solution"], context="tran 0.2u 200u") is None
    err = classify(message + ["Error: measure  t_lim  when(WHEN) : out of interval"], context="tran 0.2u 200u")
    assert isinstance(err, MeasureError) and "t_lim" in str(err)


@pytest.mark.parametrize("resumed", [True, False])
@needs_ngspice
@needs_libngspice
def test_resume_finishes_the_paused_transient_as_ngspice_b_does(tmp_path, resumed):
    """``resume`` was dropped as an interactive command: the deck's measures after it were missing (``vfinal``,
    ``tend``). With the breakpoint still set, ``resume`` pauses again at once: ``vfinal`` is missing in both."""
    from zoaf.spice import SpiceSession, run_batch

    text = (DECKS / "control_stop_when.cir").read_text()
    deck = tmp_path / "stop.cir"
    deck.write_text(text if resumed else text.replace("delete all\n", ""))
    nl = Netlist.read(deck)
    for values in ({}, {"rr": 1500.0}):
        if resumed:
            with SpiceSession(nl) as s:
                got, ref = s.evaluate(values), run_batch(nl.with_params(values))
        else:
            with pytest.raises(MeasureError) as e, SpiceSession(nl) as s:
                s.evaluate(values)
            with pytest.raises(MeasureError) as batch:
                run_batch(nl.with_params(values))
            got, ref = dict(e.value.measures), dict(batch.value.measures)
            assert "vfinal" not in got and "vfinal" not in ref
        assert ref.keys() <= got.keys() and all(math.isclose(got[k], ref[k], rel_tol=1e-12) for k in ref), (got, ref)
        assert got["tstop"] < 2e-6 and (not resumed or got["tend"] == pytest.approx(20e-6))


@needs_ngspice
@needs_libngspice
def test_a_function_ngspice_lacks_is_named_in_the_one_line(tmp_path):
    """``B1 out 0 v=-sdt(i(V1))/{c1}``: ngspice 39 has no ``sdt``; the card's report says only "parameter value out
    of range or the wrong type", the line before it why. Both now, in one line naming the deck's line (without the
    routine ngspice names after the reason in a process that failed before: ``detected in routine "CAPask"``)."""
    from zoaf.spice import SpiceSession, run_batch

    deck = tmp_path / "sdt.cir"
    deck.write_text("sdt\n.param c1=1n\nV1 in 0 dc 0 pulse(0 1 0 1n 1n 5u 10u)\nR1 in 0 1k\n"
                    "B1 out 0 v=-sdt(i(V1))/{c1}\nR2 out 0 1meg\n.tran 10n 20u\n.meas tran vmax max v(out)\n.end\n")
    for run in (lambda: SpiceSession(deck).load(), lambda: run_batch(deck)):
        with pytest.raises(ParseError) as e:
            run()
        message = str(e.value)
        assert "\n" not in message and f"{deck.name}:5: ngspice cannot read the card" in message, message
        assert message.endswith("wrong type: no such function 'sdt'"), message


_STOP_DECK = ("stop\nv1 in 0 pulse(0 1 0 1u 1u 10u 20u)\nr1 in out 1k\nc1 out 0 1n\n.control\n{stop}\ntran 10n 5u\n"
              "resume\nlet x = v(out)[length(v(out))-1]\nprint x\n.endc\n.end\n")
_HANGS = ["stop foo", "stop after", "stop after 5 10", "stop after 5 > 3", "stop when", "stop after 3 foo",
          "stop when v(out) > 0.1 foo", "stop when v(out) > 0.1 > 0.05", "stop when v(out)>0.1 foo",
          "stop when v(out) > 0.1 after"]
_RUNS = ["stop", "stop after 3", "stop when v(out) > 0.1", "stop when v(out)>0.1", "stop when v(out) gt 0.1",
         "stop after 3 when v(out) > 0.1", "stop when v(out) > 0.1 after 3", "stop after 2 after 3",
         "stop when v(out) > 0.1 when v(out) < 0.05"]


@pytest.mark.parametrize("stop", _HANGS)
def test_a_stop_ngspice_loops_on_is_refused_in_one_line(tmp_path, stop):
    """ngspice 39's breakpoint parser loops for ever on a word it cannot place (``ngspice -b`` too: killed after
    seconds, below); once ``stop`` compares rather than redirects, ``stop when v(out) > 0.1 > 0.05`` passed the check
    and every sizing ran to its time limit. Refused at the read, naming the deck's line."""
    deck = tmp_path / "stop.cir"
    deck.write_text(_STOP_DECK.format(stop=stop))
    with pytest.raises(InputError) as e:
        Netlist.read(deck)
    assert "\n" not in str(e.value) and f"{deck.name}:6:" in str(e.value) and "loops for ever" in str(e.value)


@pytest.mark.parametrize("stop", _RUNS)
def test_a_stop_ngspice_reads_is_kept(tmp_path, stop):
    deck = tmp_path / "stop.cir"
    deck.write_text(_STOP_DECK.format(stop=stop))
    assert any(c.startswith("stop") for c in Netlist.read(deck).control) or stop == "stop"


@needs_ngspice
@pytest.mark.parametrize("stop, hangs", [("stop when v(out) > 0.1 > 0.05", True), ("stop after 5 10", True),
                                         ("stop when v(out) > 0.1 after 3", False)])
def test_ngspice_b_loops_on_the_refused_stops(tmp_path, stop, hangs):
    import subprocess

    deck = tmp_path / "stop.cir"
    deck.write_text(_STOP_DECK.format(stop=stop))
    try:
        r = subprocess.run(["ngspice", "-b", str(deck)], capture_output=True, text=True, timeout=4, cwd=tmp_path)
        looped = False
    except subprocess.TimeoutExpired:
        looped = True
    assert looped == hangs and (hangs or "x = 9.88" in r.stdout)

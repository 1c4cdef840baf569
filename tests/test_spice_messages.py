"""What a failed simulation tells the designer: one line that names ngspice's reason, and for an operating point
that does not converge, that ``ngspice -b`` would go on with its transient fallback where zoaf stops."""
from __future__ import annotations

from pathlib import Path

import pytest
from fresh import in_fresh_process
from ngspice_marks import NEEDS_NGSPICE

from zoaf.errors import ConvergenceError, ParseError
from zoaf.netlist import Netlist
from zoaf.ngoutput import classify

pytestmark = NEEDS_NGSPICE

from zoaf.spice import SpiceSession, run_batch  # noqa: E402

#: A transformer whose primary a voltage source drives: no DC solution (a loop of a source and an inductor).
TRANSFORMER = """transformer driven by a voltage source across its primary
.param rl=1k
v1 in 0 dc 0 sin(0 1 1k)
{primary}
l2 out 0 4m
k1 l1 l2 0.99
rl out 0 {{rl}}
.tran 10u 2m{uic}
.meas tran vpk max v(out)
.end
"""
FALLBACK = "ngspice -b would fall back to a transient operating point here, zoaf does not"


@pytest.mark.parametrize("analysis", [".tran 10u 2m\n.meas tran vpk max v(out)",
                                      ".ac dec 5 1k 1meg\n.meas ac g find vm(out) at=10k",
                                      ".control\nop\nlet vo = v(out)\nprint vo\n.endc"])
def test_an_operating_point_ngspice_b_finds_only_by_its_transient_fallback_says_so_in_one_line(tmp_path, analysis):
    """ngspice 39 falls back to a transient operating point when gmin and source stepping fail; zoaf turns that off
    (its result is the state at the end of a ramp: an inductor's current grows with ``optran``'s final time). The
    session said only "tran simulation(s) aborted": now it says what ngspice -b does there, and what to do."""
    deck = tmp_path / "x.cir"
    text = TRANSFORMER.format(primary="l1 in 0 1m", uic="").replace("sin(0 1 1k)", "sin(0 1 1k) ac 1")
    deck.write_text(text.replace(".tran 10u 2m\n.meas tran vpk max v(out)", analysis))
    with pytest.raises(ConvergenceError) as e:
        SpiceSession(deck).evaluate({"rl": 2e3})
    message = str(e.value)
    assert FALLBACK in message and "singular matrix at l1#branch" in message and ".nodeset" in message, message
    assert "\n" not in message
    with pytest.raises(ConvergenceError, match="Transient op started"):       # what ngspice -b does instead
        run_batch(deck)


@pytest.mark.parametrize("primary, uic", [("l1 in 0 1m", " uic"), ("rs in p 0.1\nl1 p 0 1m", "")])
def test_the_advised_fixes_of_a_missing_operating_point_run_as_ngspice_b_runs_them(tmp_path, primary, uic):
    """Both fixes the message names (``uic``; a resistance in series with the inductor) give zoaf's session
    ``ngspice -b``'s measures over several sizings in one session, and no fallback in ``ngspice -b``."""
    deck = tmp_path / "x.cir"
    deck.write_text(TRANSFORMER.format(primary=primary, uic=uic))
    nl = Netlist.read(deck)
    with SpiceSession(nl) as s:
        for rl in (1e3, 200.0, 5e3):
            assert s.evaluate({"rl": rl}) == run_batch(nl.with_params({"rl": rl}))


def test_a_failure_that_is_no_convergence_gets_no_fallback_note():
    lines = ["Doing analysis at TEMP = 27.000000 and TNOM = 27.000000",
             "doAnalyses: TRAN:  Timestep too small; time = 1e-09, timestep = 1e-21: trouble with node a",
             "tran simulation(s) aborted"]
    err = classify(lines, context="tran 1n 1u")
    assert isinstance(err, ConvergenceError) and FALLBACK not in str(err)


BINNED = """binned models chosen by the width
.param wn=2u lm=1u
vdd d 0 1.8
vg g 0 1
m1 d g 0 0 nm w={wn} l={lm}
.model nm.1 nmos level=14 version=4.8 vth0=0.5 lmin=0.5u lmax=2u wmin=1u wmax=5u
.model nm.2 nmos level=14 version=4.8 vth0=0.4 lmin=0.5u lmax=2u wmin=5u wmax=50u
.op
.control
run
let id = -i(vdd)
print id
.endc
.end
"""


def test_an_error_on_a_card_at_a_reset_names_the_card_and_the_reason(tmp_path):
    """A sizing with no bin for its width fails at ``reset``, where ngspice prints "Error on line:" (no number),
    then the card, then the reason: the message named the reason alone (or only "Error on line:"). The session
    goes on at the next sizing."""
    deck = tmp_path / "x.cir"
    deck.write_text(BINNED)
    with SpiceSession(deck) as s:
        before = s.evaluate({"wn": 2e-6})
        with pytest.raises(ParseError) as e:
            s.evaluate({"wn": 100e-6})
        message = str(e.value)
        assert message == ("reset: ngspice cannot read the card 'm1 d g 0 0 nm w= 1.000000000000000e-04 "
                           "l= 1.000000000000000e-06': could not find a valid modelname"), message
        assert s.evaluate({"wn": 2e-6}) == before


def test_a_card_error_is_one_bounded_line_without_control_characters():
    card = "r1 a 0 \x1b[31m" + "1k " * 300
    err = classify(["Reset re-loads circuit x", "Error on line:", card, "bad\tvalue\x07 for r1"], context="reset")
    message = str(err)
    assert isinstance(err, ParseError) and message.startswith("reset: ngspice cannot read the card 'r1 a 0 [31m1k 1k")
    assert message.endswith(": bad value for r1") and len(message) < 300 and message.isprintable(), message


def test_a_fatal_device_error_is_named():
    """A BSIM4 device with a negative length stops the analysis with "Fatal error: ...": the message said only
    "op simulation(s) aborted"."""
    lines = ["Fatal error: BSIM4: mosfet nm, model m1: Effective channel length <= 0",
             "doAnalyses: no such parameter on this device", "op simulation(s) aborted"]
    assert str(classify(lines, context="op")) == ("op: op simulation(s) aborted (Fatal error: BSIM4: mosfet nm, "
                                                   "model m1: Effective channel length <= 0)")



@pytest.mark.parametrize("said", ["Error: mal formed B line: bearer {}", "Error: measure  vo  (FIND) : failed {}",
                                  "Error: cannot recover {}", "doAnalyses: TRAN:  Timestep too small {}"])
def test_an_error_line_of_any_kind_is_bounded_in_the_stored_message(said):
    """A line of an included file that ngspice's error quotes (a 7,200-character token in a B line went whole into
    the history's error column and result.json) is cut to 200 characters, whatever kind of error carries it."""
    long = said.format("x" * 7200)
    message = str(classify([long], context="tran"))
    assert len(message) < 300 and "x" * 60 in message and "x" * 250 not in message, message


def test_a_missing_measure_reason_is_bounded():
    from zoaf.ngoutput import missing_reason
    reason = missing_reason(["out of interval " + "y" * 5000, "meas vo failed!"], "vo")
    assert len(reason) < 450 and reason.endswith("(meas vo failed!)"), reason


def test_a_load_error_names_the_line_of_the_file_that_ngspice_b_names(tmp_path):
    """ngspice numbers the lines it loads: ``ngspice -b`` says "bad syntax in line 9" of the file, the session, which
    loads its own deck without comments, continuations, the ``.control`` block and the analyses, said "line 5" (a
    ``*`` line now stands for each line it leaves out)."""
    deck = tmp_path / "x.cir"
    deck.write_text("title\n* a comment\n.param g=2\n+ rl=1k\n.control\nrun\n.endc\n\n"
                    "G1 out 0 value={table(v(in), -1, -1m, 1, {g})}\nV1 in 0 dc 0\nR1 in out {rl}\n"
                    ".dc V1 -2 2 0.05\n.meas dc vo find v(out) at=0.5\n.end\n")
    with pytest.raises(Exception) as batch:
        run_batch(deck)
    assert "bad syntax in line 9" in str(batch.value), batch.value
    with pytest.raises(ParseError) as e, SpiceSession(Netlist.read(deck)):
        pass
    assert str(e.value) == f"loading {deck}: Error: bad syntax in line 9", e.value


UNDEFINED = "undefined\n.param r1=1k\nR1 in out {r1}\nV1 in 0 dc 1\nR2 out 0 {r1*zz}\n.op\n.print op v(out)\n.end\n"
BAD_CARD = "bad card\n.param r1=1k\nR1 in out {r1}\nV1 in 0 dc 1\nR2 out 0 {r1} foo=3\n.op\n.print op v(out)\n.end\n"


@pytest.mark.parametrize("text", [UNDEFINED, BAD_CARD])
def test_a_failed_load_names_the_users_file_and_the_line_ngspice_names(tmp_path, text):
    """``run_batch`` of a sized text named its temporary copy (``.../zoaf-batch-*/deck.cir``): it names the file the
    text was written from, and, as the session's load does, the line of a card of the deck (numparam's "Netlist
    line no. 5", "Error on line 5 or its substitute") that ngspice names."""
    deck = tmp_path / "x.cir"
    deck.write_text(text)
    nl = Netlist.read(deck)
    with pytest.raises(ParseError) as batch:
        run_batch(nl.with_params({"r1": 2000.0}), source=deck)
    assert str(batch.value).startswith(f"ngspice -b {deck}:5: "), batch.value
    assert in_fresh_process(_load_error, str(deck)).startswith(f"loading {deck}:5: ")   # numparam's breaks the process


def _load_error(deck: str) -> str:
    try:
        SpiceSession(deck).load()
    except ParseError as e:
        return str(e)
    return "loaded"


@pytest.mark.parametrize("card", ["R8 in 0 {r1*zz}", "R8 in 0 1k foo=2"])
def test_a_line_ngspice_names_in_an_included_file_is_not_called_the_decks(tmp_path, card):
    """ngspice counts an included file's cards in that file: its line 3 is no line of the deck (a card there too)."""
    (tmp_path / "sub.inc").write_text(f"* sub\n.param r1=1k\n{card}\n")
    deck = tmp_path / "x.cir"
    deck.write_text("inc\n.include sub.inc\nR1 in out 1k\nV1 in 0 dc 1\n.op\n.print op v(out)\n.end\n")
    with pytest.raises(ParseError) as batch:
        run_batch(deck)
    assert str(batch.value).startswith(f"ngspice -b {deck}: "), batch.value


def test_a_sized_text_names_the_decks_line_after_a_param_line_it_added(tmp_path):
    """A sized text adds a ``.param`` line after the ``.include`` of a file that defines a sized variable: ngspice's
    line 5 of the text is the deck's line 4."""
    (tmp_path / "vars.spice").write_text(".param r1=1k\n")
    deck = tmp_path / "x.cir"
    deck.write_text("sized\n.include vars.spice\nV1 in 0 dc 1\nR2 in 0 {r1} foo=3\n.op\n.print op v(in)\n.end\n")
    nl = Netlist.read(deck)
    with pytest.raises(ParseError) as batch:
        run_batch(nl.with_params({"r1": 2000.0}), source=deck)
    assert str(batch.value).startswith(f"ngspice -b {deck}:4: ngspice cannot read the card 'r2 in 0 "), batch.value


@pytest.mark.parametrize("card, reason", [(".tran 0 4m 3m", "TSTEP is invalid, must be greater than zero."),
                                          (".tran 1u 1m 2m", "TSTART is invalid, must be less than TSTOP."),
                                          (".ac foo 10 1 1meg", "no such parameter on this device")])
def test_an_analysis_card_ngspice_cannot_read_is_a_parse_error_naming_the_card_and_the_reason(tmp_path, card, reason):
    """``ngspice -b`` reads the card while it loads the deck and stops ("Error on line 7": LTspice's ``.tran 0 TSTOP``
    has no step). A session runs it as a command, which prints the reason, ``in   .tran 0 4m 3m`` and "tran
    simulation(s) aborted": zoaf called that a failure to converge, and named neither the card nor the reason."""
    deck = tmp_path / "x.cir"
    deck.write_text(f"rc\n.param r1=1k\nv1 in 0 dc 1 ac 1 pulse(0 1 0 1n 1n 1 2)\nr1 in out {{r1}}\nc1 out 0 1n\n"
                    f".save all\n{card}\n.meas {card[1:3]} x max v(out)\n.end\n")
    said = f"ngspice cannot read the card {card!r}: {reason}"
    with pytest.raises(ParseError) as batch:
        run_batch(deck)
    assert str(batch.value) == f"ngspice -b {deck}:7: {said}", batch.value
    with pytest.raises(ParseError) as e:
        SpiceSession(deck).evaluate({"r1": 2e3})
    assert str(e.value) == f"{deck}:7: {said}", e.value            # the card's line, as ngspice -b names it


def _own_optran_then_no_fallback(whole: bool, tmp: str) -> tuple[dict, dict, str]:
    """An Xschem bench whose block asks for a transient operating point (``optran 0 0 0 ...``), then a deck with no
    DC solution in the same process: its session, and ``ngspice -b``'s results of the bench."""
    bench = Path(tmp) / "bench.cir"
    text = (Path(__file__).parent / "fidelity" / "xschem_optran_preamp.cir").read_text()
    bench.write_text(text.replace(".control\n", ".control\n.options reltol=1e-4\n") if whole else text)
    nl = Netlist.read(bench)
    assert bool(nl.faithful_reasons) is whole
    with SpiceSession(nl) as s:
        got = s.evaluate({"wn": 9e-6})
    after = Path(tmp) / "after.cir"
    after.write_text(TRANSFORMER.format(primary="l1 in 0 1m", uic=""))
    try:
        said = f"measured {SpiceSession(after).evaluate({'rl': 2e3})}"
    except ConvergenceError as e:
        said = str(e)
    return got, run_batch(nl.with_params({"wn": 9e-6})), said


@pytest.mark.parametrize("whole", [False, True], ids=["session", "whole_deck"])
def test_a_decks_own_optran_runs_as_ngspice_b_and_the_next_deck_gets_no_fallback(tmp_path, whole):
    """Xschem's templates start the block with ``optran 0 0 0 0.1u 2u 0``: every operating point is a transient one,
    which ``ngspice -b`` prints as "Transient op started ... finished successfully" and measures. zoaf failed every
    sizing ("Transient op started"); the deck asked for it, so it measures as ``ngspice -b`` does. ngspice keeps the
    setting past the circuit: the next deck of the process fell back too ("Note: Transient op started") where it has
    no operating point; zoaf sets its own back (with a circuit loaded: without one the command crashes ngspice 39)."""
    got, ref, after = in_fresh_process(_own_optran_then_no_fallback, whole, str(tmp_path))
    assert got.keys() >= ref.keys() == {"gain", "vd0"} and all(abs(got[k] / ref[k] - 1) < 1e-12 for k in ref)
    assert FALLBACK in after and "Transient op" not in after, after

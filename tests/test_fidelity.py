"""Fidelity: every deck of tests/fidelity gives the same results in a SpiceSession as with ``ngspice -b``.

Each deck runs at its defaults and at other sizings, in process (fast or whole-deck path, whichever zoaf
picks) and with ``ngspice -b`` (:func:`run_batch`); the results must be equal to the digits ngspice prints.
Both sides read the same printed digits of the same computation: ``.meas`` cards print ``when`` and
``param=`` results with ``NGSPICE_MEAS_PRECISION`` (17 significant digits) and ``find``/``max``/``avg``/...
and ``meas`` command results with ``%e`` (7 digits, ngspice 39 ignores the precision there) in both runs,
so they are equal (a ``meas`` command's ``rms``/``integ`` prints 17 digits while its vector holds 7: zoaf takes
the printed value, as ``ngspice -b``'s reader does); a ``.control`` value zoaf reads as a vector (full precision)
against its ``print`` with ``numdgt=15`` differs by < 1e-15. Measured: the largest difference over the corpus is
6e-16 relative, hence REL = 1e-12 (a Newton path that differs between ``reset`` and a fresh parse would show as a
failure here).
A sizing where ``ngspice -b`` misses a measure must miss the same one in zoaf, with the same other results.
zoaf's fast path also returns the ``.control`` scalars a deck does not print; only printed ones compare (a scalar
the deck prints where ``print`` cannot see it is missing in both: ``print_other_plot.cir``).
"""
from __future__ import annotations

import math
import re
import subprocess
import sys
from pathlib import Path

import pytest
from ngspice_marks import NEEDS_NGSPICE

from zoaf.errors import ConvergenceError, MeasureError, ParseError, SimulationError, Timeout
from zoaf.netlist import Netlist
from zoaf.units import parse

DECKS = Path(__file__).parent / "fidelity"
ROOT = Path(__file__).resolve().parents[1]
REL = 1e-12


pytestmark = NEEDS_NGSPICE

from zoaf.spice import SPICEINIT, SpiceSession, run_batch  # noqa: E402

#: Sizings other than "the plain-number params as written, then each x1.1, then x0.9": what shows a deck's point.
SIZINGS = {"phase_wrap": [{"fp2": 45e3}, {"fp2": 70e3}],
           "bins_subckt_cross": [{"wn": 2.2e-6}, {"wn": 2.3e-6}, {"lq": 1.1e-6}, {"wn": 1.9e-6, "lq": 1.1e-6},
                                 {"vg": 1.0}, {"nfn": 2, "wn": 4.4e-6}, {"nfn": 2, "wn": 4e-6}, {"nfn": 3, "wn": 4e-6}],
           "model_bin_bounds": [{"lm": 1.3e-6}, {"lsplit": 0.9e-6}, {"lsplit": 1.5e-6, "lm": 1.3e-6}, {"vt": 0.5},
                                {"lm": 1.2e-6}, {"lsplit": 1e-6, "lm": 1e-6}],
           # BSIM4 finger counts stay whole (nf < 1 is a fatal parameter check in both runs)
           "cs_ring_vco": [{"vctrl": 1.2}, {"ms": 3, "nfs": 2}, {"wn": 2e-6, "wp": 3e-6, "vsup": 1.5}, {"ws": 1e-6}],
           # sizings that leave vtp alone: the block's last altermod must not outlive its sizing
           "pfd_cp_altermod": [{"wp": 9e-6}, {"vtp": -0.5}, {"wn": 4e-6}, {"vout": 1.0}, {"wp": 9e-6}],
           # the deck's sizing alone: a pss run costs a second of CPU, and shoots up to 20 times at other sizings
           "pss_ring_osc": [],
           # k alone, set in place: the instance values that read it must read the instance's own w and nf
           "subckt_instance_scope": [{"k": 11.0}, {"k": 9.0, "rt": 1.2e3}, {"w": 2.5, "nf": 3.5}, {"k": 12.0}],
           # quoted values ('15f'): sized explicitly, as the plain-number default sizings skip them
           "sramgen_style_quoted": [{"cload": 30e-15, "rs": 4e3}, {"vdd": 1.6, "tr": 80e-12}],
           # every branch: x == y, x > y (a positive base, a ternary's other side), 2y = 3.5 (a half), area 1 and 2
           "numparam_operators": [{"x": 2.25}, {"x": 2.5}, {"y": 1.75}, {"z": 0.6, "k": 2}, {"x": 1.0, "y": 0.5},
                                  {"x": 0.9, "y": 3.1, "z": 0.3}, {"x": 1.5, "y": 2.25, "z": 0.4, "k": 1}]}
#: Decks that need the whole-deck (faithful) path, and those that must not.
FAITHFUL = {"control_include_options", "control_let_failed_meas_options", "param_chain", "tran_expr",
            "fourier_control_options", "func_analysis", "control_goto", "control_quit_midway_options",
            "dc_sized_sweeps", "plot_whole_deck", "hspice_corner_inverter", "control_long_lines", "b4soi_inverter_dc"}


@pytest.fixture(autouse=True)
def _in_a_folder_of_its_own(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The sessions here run in this process, in its working directory: a BSIM3 deck's parameter check writes
    ``b3v33check.log`` there (a sandboxed worker writes it in its private directory)."""
    monkeypatch.chdir(tmp_path)


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
    # the designer's values given explicitly too: sent as the deck's own text ("1k"), which the whole-deck path
    # once read back with float() and failed
    return [{}, plain] + [{k: v * f for k, v in plain.items()} for f in (1.1, 0.9)]


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


def test_included_params_are_design_variables(tmp_path):
    """Sizes kept in a *_vars file (and a file it includes) are design variables: alterparam edits them in
    process, and best.cir overrides them after the .include so that ngspice -b reproduces the measures."""
    nl = Netlist.read(DECKS / "vars_include.cir")
    assert {"wn", "lgn", "rd", "vbias", "cload", "vdd"} <= nl.params.keys()
    assert nl.params["cload"] == "{wn*20e-9}" and nl.param_files["vbias"].name == "bias_vars.spice"
    values = {"wn": 4.5e-6, "vbias": 0.72}
    best = tmp_path / "best.cir"
    best.write_text(nl.with_params(values))
    assert ".param wn=4.5e-06" in best.read_text() and ".param vbias=0.72" in best.read_text()
    with SpiceSession(nl) as s:
        default, sized = s.evaluate({}), s.evaluate(values)
    assert sized == run_batch(best) and sized["gain_db"] > default["gain_db"] + 1


def test_phase_margin_trap():
    """vp(out) + 180 degrees is the phase margin only while the phase stays above -180 degrees: below, it is
    off by 360 degrees, and a crossing between two points across the wrap interpolates nonsense. The phase
    of -v(out) gives the margin on both sides (README, "Bring your own testbench")."""
    nl = Netlist.read(DECKS / "phase_wrap.cir")
    with SpiceSession(nl) as s:
        negative, across, positive = (s.evaluate({"fp2": f}) for f in (40e3, 45e3, 70e3))
    assert -6 < negative["pm_deg"] < -4 and math.isclose(negative["pm_from_vp"], negative["pm_deg"] + 360)
    assert -2 < across["pm_deg"] < 0 and 90 < across["pm_from_vp"] < 300
    assert 10 < positive["pm_deg"] < 12 and math.isclose(positive["pm_from_vp"], positive["pm_deg"])


def test_whole_deck_path_keeps_the_time_limit(tmp_path):
    deck = tmp_path / "slow.cir"
    deck.write_text("Long transient from .control\n.param r1=1k\nV1 in 0 dc 0 sin(0 1 1meg)\nR1 in out {r1}\n"
                    "C1 out 0 1n\n.control\n.options reltol=1e-4\ntran 1n 50m\nmeas tran vmax max v(out)\n"
                    ".endc\n.end\n")
    assert Netlist.read(deck).faithful_reasons
    with SpiceSession(deck, timeout=0.3) as s:
        with pytest.raises(Timeout, match="0.3 s"):
            s.evaluate({})
    with SpiceSession(DECKS / "control_include_options.cir") as s:   # libngspice still works
        assert s.evaluate({})["fc_khz"] == pytest.approx(128.8807)


def test_a_param_measure_of_a_failed_measure_is_a_missing_measure():
    """A sizing without a unity-gain crossing: ``pm_rad`` fails, so the ``param=`` card built on it prints
    "Expression err ... Cannot compute substitute". That is a missing measure of a valid (bad) design, with
    the other measures kept -- never a failed simulation (a quarter of random sizings of the amplifier)."""
    import numpy as np

    from zoaf.circuit import CircuitProblem
    from zoaf.problem import Status

    p = CircuitProblem(ROOT / "netlists" / "two_stage_amp.cir")
    rng = np.random.default_rng(0)
    try:
        outcomes = [p.simulate(p.to_physical(rng.random(p.dim))) for _ in range(30)]
    finally:
        p.close()
    assert all(o.status == Status.OK for o in outcomes)
    lost = [o for o in outcomes if "pm_deg" not in o.measures]
    assert lost and all("gain_db" in o.measures and "MeasureError" in o.error for o in lost)


def test_a_param_defined_twice_defaults_to_its_last_definition():
    """ngspice takes a ``.param``'s last definition (an included file's too, when it comes later): the default
    zoaf reports and simulates (``zoaf check``, a run's x0) is that one, as ``ngspice -b`` on the deck runs it."""
    nl = Netlist.read(DECKS / "param_twice.cir")
    assert nl.params == {"r1": "2k", "c1": "2n"} and nl.param_files["c1"].name == "twice_vars.spice"
    with SpiceSession(nl) as s:
        written = s.evaluate({k: parse(v) for k, v in nl.params.items()})
    assert written == run_batch(nl.path) and math.isclose(written["tau"], 4e-6)


def test_a_design_param_a_lib_section_defines_again_defaults_to_the_sections_value():
    """A ``.lib`` section the deck reads after its own ``.param vt_shift=0.1`` sets ``vt_shift=0.05`` again: ngspice
    simulates 0.05, and a sized value on the deck's line changes nothing by hand. zoaf reported 0.1 as the default
    and simulated each sizing's value (``alterparam`` edits every definition), so a sizing's measures were not those
    of its ``best.cir``. The section's value is the default now, and ``best.cir`` sizes it after the ``.lib`` line
    (``lib_param_redefined.cir`` compares the sizings)."""
    nl = Netlist.read(DECKS / "lib_param_redefined.cir")
    assert nl.params == {"wn": "2u", "rl": "20k", "vt_shift": "0.05", "kpn": "150u"}, nl.params
    assert nl.param_files["vt_shift"].name == "redefines.lib"
    sized = nl.with_params({"vt_shift": 0.07}).splitlines()
    assert sized[3] == ".param vt_shift=0.07   $ zoaf: sized, overrides the included value", sized[:4]


@pytest.mark.parametrize("card", [".step param r1 1k 3k 1k", ".alter"])
def test_a_card_ngspice_cannot_read_is_one_clear_parse_error(tmp_path, card):
    """``.step`` (LTspice/HSPICE) and ``.alter`` (SPICE2) are "unimplemented control card"s in ngspice 39: the
    session and ``ngspice -b`` both fail with a ParseError that names the card and the reason in one line (the
    batch run said "Simulation interrupted", a ConvergenceError; the session only "Error on line 6 ...")."""
    deck = tmp_path / "card.cir"
    deck.write_text(f"RC\n.param r1=1k\nV1 in 0 dc 0 ac 1\nR1 in out {{r1}}\nC1 out 0 1n\n{card}\n.save all\n"
                    ".ac dec 20 1k 100meg\n.meas ac f3 when vdb(out)=-3\n.end\n")
    for run in (lambda: SpiceSession(deck).load(), lambda: run_batch(deck)):
        with pytest.raises(ParseError) as e:
            run()
        message = str(e.value)
        assert "\n" not in message and f"card {card!r}: unimplemented control card" in message, message


@pytest.mark.parametrize("deck", sorted(DECKS.glob("*.cir")), ids=lambda p: p.stem)
def test_fast_path_equals_reset_bit_for_bit(deck):
    """Every sizing of every deck the fast path plans for gives, in place, every bit that ``reset`` gives."""
    nl = Netlist.read(deck)
    if nl.faithful_reasons:
        pytest.skip("reloaded whole per sizing: no fast path")
    runs, in_place = [], 0
    for fast in (True, False):
        with SpiceSession(nl, fast=fast) as s:
            outs = []
            for values in sizings(nl):
                outs.append(outcome(s.evaluate, values))
                in_place += fast and s._in_place
            runs.append(outs)
    if not in_place:
        pytest.skip("no sizing set in place (no plan, or every one needed a reset): nothing to compare")
    assert runs[0] == runs[1]


def test_run_with_a_file_is_refused_in_one_line(tmp_path):
    """``run FILE`` sends the run to the file instead of memory: ``ngspice -b`` measures nothing after it (the
    ``meas`` command fails), and libngspice 39 crashes on it (a whole-deck session took the worker down). zoaf
    used to run it as a plain ``run`` and report ``f6``; it is refused with one line naming the line."""
    from zoaf.errors import InputError

    deck = tmp_path / "runfile.cir"
    deck.write_text("RC\n.param r1=1k\nV1 in 0 dc 0 ac 1\nR1 in out {r1}\nC1 out 0 1n\n.save v(out)\n"
                    ".ac dec 20 1k 100meg\n.meas ac f3 when vdb(out)=-3\n.control\nrun out.raw\n"
                    "meas ac f6 when vdb(out)=-6\nprint f6\n.endc\n.end\n")
    (tmp_path / ".spiceinit").write_text(SPICEINIT)
    out = subprocess.run(["ngspice", "-b", str(deck)], cwd=tmp_path, capture_output=True, text=True).stdout
    assert re.search(r"^f3\s+=", out, re.M) and not re.search(r"^f6\s+=", out, re.M), out
    with pytest.raises(InputError) as e:
        Netlist.read(deck)
    message = str(e.value)
    assert "\n" not in message and f"{deck}:10: run out.raw: " in message and "crashes" in message, message


def test_a_four_card_with_a_braced_fundamental_is_noted_in_one_line():
    """``.four {f0} v(out)``: ngspice does not substitute the line, so ``ngspice -b`` prints "bad fundamental freq"
    and no Fourier table, then the measures (exit status 0). zoaf said nothing (its session runs no ``.four``
    card) and ``run_batch`` called the run failed; the card is noted in one line, and the measures are equal
    (``test_deck_matches_ngspice_b[four_braced_fundamental]``)."""
    nl = Netlist.read(DECKS / "four_braced_fundamental.cir")
    notes = [n for n in nl.notes if "fundamental" in n]
    assert len(notes) == 1 and "\n" not in notes[0] and notes[0].startswith(f"{nl.path}:8: .four {{f0}}: "), nl.notes
    assert "no Fourier table" in notes[0] and "Write the number" in notes[0]
    assert not [n for n in Netlist.read(DECKS / "four_sens_after_run.cir").notes if "fundamental" in n]


def _plain_batch(deck: Path, folder: Path) -> float:
    """``vo`` as plain ``ngspice -b`` prints it (run from a folder without zoaf's ``.spiceinit``)."""
    out = subprocess.run(["ngspice", "-b", str(deck)], cwd=folder, capture_output=True, text=True).stdout
    return float(re.search(r"^vo\s*=\s*(\S+)", out, re.M).group(1))


@pytest.mark.parametrize("inner", ["X2 d g cell m={mi} wc={w}", "M1 d g 0 0 nm w={wc} l=1u m=2"])
def test_an_m_inside_a_subcircuit_placed_with_m_is_noted_where_plain_ngspice_b_differs(tmp_path, inner):
    """An ``m=`` inside a subcircuit (on an instance or a device, at any depth) that an instance with ``m=`` places:
    both multiply in zoaf and under best.cir's ``.spiceinit`` (``ngbehavior=hsa``), plain ``ngspice -b`` keeps the
    outer ``m`` alone (measured: the same ``vo`` as without the inner one). zoaf said nothing; noted in one line,
    and not where the outer instance has no ``m=`` (plain and hsa agree there)."""
    text = (DECKS / "subckt_nested_m.cir").read_text()      # inner: "X2 d g cell m={mi} wc={w}" as written
    if inner.startswith("M1"):
        text = text.replace(" m={mi}", "").replace("M1 d g 0 0 nm w={wc} l=1u", inner)
    deck, alone, bare = tmp_path / "nested.cir", tmp_path / "alone.cir", tmp_path / "bare"
    deck.write_text(text)
    alone.write_text(text.replace(" m={mi}", "").replace(" m=2\n", "\n"))
    bare.mkdir()
    nl = Netlist.read(deck)
    with SpiceSession(nl) as s:
        hsa, outer_alone = s.evaluate({})["vo"], run_batch(alone)["vo"]
    assert hsa == run_batch(deck)["vo"] and not math.isclose(hsa, outer_alone, rel_tol=0.05)
    assert math.isclose(_plain_batch(deck, bare), outer_alone, rel_tol=1e-6)
    line = 9 if "X2" in inner else 12
    notes = [n for n in nl.notes if "m=" in n]
    assert len(notes) == 1 and notes[0].startswith(f"{deck}:{line}: {inner}: ") and "plain `ngspice -b`" in notes[0]
    top = tmp_path / "top.cir"
    top.write_text(text.replace("X1 vdd g out leg m={mo} w={wv}", "X1 vdd g out leg w={wv}"))
    assert not [n for n in Netlist.read(top).notes if "m=" in n]


def test_a_deriv_meas_command_of_the_control_block_is_noted_as_a_card_is(tmp_path):
    """``meas ac slope deriv ...`` in a ``.control`` block fails at every evaluation ("function 'deriv' currently not
    supported"), in ``ngspice -b`` as in zoaf, as the ``.meas`` card does; zoaf noted only the card."""
    deck = tmp_path / "deriv.cir"
    deck.write_text("rc\n.param r1=1k\nV1 in 0 dc 0 ac 1\nR1 in out {r1}\nC1 out 0 1n\n.control\n"
                    "ac dec 20 1k 100meg\nmeas ac f3db when vdb(out)=-3\nmeas ac slope deriv vdb(out) at=1k\n"
                    "print f3db\n.endc\n.end\n")
    nl = Netlist.read(deck)
    assert [n for n in nl.notes if "deriv" in n] == [
        f"{deck}:9: meas slope: ngspice 39 runs no `deriv` measure (\"function 'deriv' currently not supported\"): it "
        "measures nothing, in ngspice -b as in zoaf (`let` with `deriv()` in a .control block computes the derivative)"]
    with SpiceSession(nl) as s:
        for run in (lambda: s.evaluate({}), lambda: run_batch(deck)):
            with pytest.raises(MeasureError) as e:
                run()
            assert "slope" in str(e.value) and list(e.value.measures) == ["f3db"], e.value


def test_a_deck_whose_meas_cards_read_only_device_vectors_is_noted(tmp_path):
    """``ngspice -b`` runs the dot-analyses only when some card asks for output it can save: with ``.meas`` cards
    of ``@m1[id]`` alone it prints "no simulations run" and exits with status 1, where the session measures. zoaf
    said nothing; the first card is noted in one line (``savecurrents_meas.cir``, with a ``v(d)`` card, runs in
    both and compares)."""
    deck = tmp_path / "currents.cir"
    deck.write_text((DECKS / "savecurrents_meas.cir").read_text().replace(".meas dc vdx find v(d) at=1.2\n", ""))
    (tmp_path / ".spiceinit").write_text(SPICEINIT)
    batch = subprocess.run(["ngspice", "-b", str(deck)], cwd=tmp_path, capture_output=True, text=True)
    assert batch.returncode == 1 and "no simulations run" in batch.stderr, batch.stderr
    notes = [n for n in Netlist.read(deck).notes if "no simulations run" in n]
    assert len(notes) == 1 and notes[0].startswith(f"{deck}:10: ngspice -b runs the dot-analyses only"), notes
    with SpiceSession(deck) as s:
        assert s.evaluate({})["idm"] > 0
    assert not [n for n in Netlist.read(DECKS / "savecurrents_meas.cir").notes if "no simulations run" in n]


def test_a_failed_analysis_is_not_followed_in_place(tmp_path):
    """A node with no DC path (a singular matrix) fails every sizing in ``ngspice -b``; on the fast path the
    sizing after the failure, set in place, converged on what the failed analysis left and returned v(out) =
    0.5. After a failure the next sizing goes through ``reset``, and fails as ``ngspice -b`` does."""
    deck = tmp_path / "floating.cir"
    deck.write_text("floating node\n.param r1=1k\nV1 in 0 dc 1\nR1 in out {r1}\nC1 out x 1n\n.save all\n"
                    ".dc v1 0 1 0.1\n.meas dc vo find v(out) at=0.5\n.end\n")
    nl = Netlist.read(deck)
    with SpiceSession(nl) as s:
        assert s._fast
        for values in ({}, {"r1": 1100.0}, {"r1": 900.0}):
            with pytest.raises(ConvergenceError):
                run_batch(nl.with_params(values))
            with pytest.raises(ConvergenceError):
                s.evaluate(values)


@pytest.mark.parametrize("block", ["run\n", "ac dec 10 1k 1meg\n", "run\nmeas ac f6 when vdb(out)=-6\n"])
def test_a_meas_ngspice_b_saves_nothing_for_after_a_control_block_is_noted(tmp_path, block):
    """After a ``.control`` block ``ngspice -b`` runs the dot-analyses again, saving only what the ``.meas``
    cards name as ``v(...)``: a card on ``vdb(out)`` makes that run fail ("no data saved"), where zoaf measures
    it. The deck is sized as written, with the note ``zoaf check`` shows (it had none with a block)."""
    deck = tmp_path / "ctl.cir"
    deck.write_text("RC\n.param r1=1k\nV1 in 0 dc 0 ac 1\nR1 in out {r1}\nC1 out 0 1n\n.ac dec 20 1k 100meg\n"
                    f".meas ac f3 when vdb(out)=-3\n.control\n{block}.endc\n.end\n")
    with pytest.raises(ConvergenceError, match="no data saved"):
        run_batch(deck)
    nl = Netlist.read(deck)
    assert [n.split(": ", 1)[0] for n in nl.notes] == [f"{deck}:7"], nl.notes
    with SpiceSession(nl) as s:
        assert math.isclose(s.evaluate({})["f3"], 158778.0669258152, rel_tol=1e-12)
    quits = Netlist.from_text(deck.read_text().replace(".endc", "quit\n.endc"), deck)
    assert quits.notes == []                  # no run after the block: its own analyses save every vector


def test_a_result_printed_from_another_plot_is_missing():
    """``print`` looks a vector up in the current plot, then ``const``, and prints nothing when one is elsewhere:
    ``ngspice -b`` never prints ``vt`` (made in tran1, printed in ac1), and prints ``vop`` (made in op1) only after
    ``setplot op1``. zoaf read each result from the plot that made it and reported ``vt``: now a missing result,
    with the print named, and the results ngspice -b printed (``const.kk`` among them) kept."""
    nl = Netlist.read(DECKS / "print_other_plot.cir")
    with pytest.raises(MeasureError) as batch:
        run_batch(nl.path)
    with SpiceSession(nl) as s, pytest.raises(MeasureError) as session:
        s.evaluate({})
    assert "`print vt` prints nothing" in str(session.value) and "vt" not in session.value.measures
    assert batch.value.measures.keys() == {"vop", "g1k", "kk"} <= session.value.measures.keys()


def test_only_a_newline_ends_a_line():
    """ngspice ends a line at ``\\n`` only: NEL (latin-1 0x85, U+0085), U+2028 and U+2029 in a comment leave the
    text after them in the comment. zoaf split there (``str.splitlines``), so ``.param r1=5k`` after U+2029 in a
    comment became the default zoaf reported, and ``R2 out 0 1k`` after NEL a card it simulated (best.cir too)."""
    utf8 = Netlist.read(DECKS / "line_separators_utf8.cir")
    assert utf8.params == {"r1": "1k", "c1": "1n"} and utf8.encoding == "utf-8"
    with SpiceSession(utf8) as s:
        assert same(s.evaluate({}), run_batch(utf8.path), utf8)
    assert utf8.with_params({}) == utf8.text
    latin1 = Netlist.read(DECKS / "c1_nel_latin1.cir")
    assert latin1.encoding == "latin-1" and "r2" not in " ".join(latin1.session_deck()).lower()


def test_c1_bytes_of_a_deck_never_reach_the_terminal(tmp_path):
    """A latin-1 deck's bytes 0x80-0x9f are C1 controls (0x9b: CSI, an escape sequence on some terminals). ngspice
    reads them as any other byte; zoaf refuses a C1 control outside a comment, and its message names it without
    holding it: one line, exit code 2."""
    import sys

    deck = tmp_path / "c1.cir"
    deck.write_bytes(b"C1 \x9b31m title\n.param r1=1k\nV1 in 0 dc 0 ac 1\nR1 in out {r1}\x9b2J\nC1 out 0 1n\n"
                     b".ac dec 20 1k 100meg\n.meas ac f3 when vdb(out)=-3\n.save all\n.end\n")
    (tmp_path / "c1.toml").write_text('[parameters]\nr1 = { lo = "100", hi = "10k" }\n[measures]\nf3 = {}\n'
                                      '[objectives]\nf = { maximize = "f3" }\n')
    r = subprocess.run([sys.executable, "-m", "zoaf", "check", str(deck)], capture_output=True, timeout=300)
    shown = (r.stdout + r.stderr).decode()
    assert r.returncode == 2 and "c1.cir:4: the control character U+009B" in shown, shown
    assert not re.search(r"[\x80-\x9f]", shown) and b"\x9b" not in r.stdout + r.stderr


def _ngspice_b(deck: Path) -> subprocess.CompletedProcess:
    """``ngspice -b`` run by hand in the deck's folder, with the session's settings."""
    (deck.parent / ".spiceinit").write_text(SPICEINIT)
    return subprocess.run(["ngspice", "-b", str(deck)], cwd=deck.parent, capture_output=True, text=True, timeout=120)


def test_two_meas_cards_of_one_name_run_and_a_spec_measuring_it_is_refused(tmp_path):
    """``ngspice -b`` prints a value for each of two ``.meas`` cards of one name; zoaf kept the last alone (a spec
    measure ``f3`` was the -6 dB frequency where the deck's first card and a reader's eye say -3 dB). The deck runs,
    as by hand; a spec that measures that name is refused in one line naming both cards' lines."""
    from zoaf.circuit import CircuitProblem
    from zoaf.errors import InputError

    deck = tmp_path / "twice.cir"
    deck.write_text("RC\n.param r1=1k\nV1 in 0 dc 0 ac 1\nR1 in out {r1}\nC1 out 0 1n\n.save all\n"
                    ".ac dec 20 1k 100meg\n.meas ac f3 when vdb(out)=-3\n.meas ac F3 when vdb(out)=-6\n"
                    ".meas ac g1k find vdb(out) at=1k\n.end\n")
    printed = re.findall(r"^f3\s+=\s+(\S+)", _ngspice_b(deck).stdout, re.M | re.I)
    assert len(printed) == 2 and float(printed[0]) < float(printed[1]), printed
    spec = ("[parameters]\nr1 = { lo = \"100\", hi = \"10k\" }\n[measures]\nM = {}\n[objectives]\n"
            "o = { maximize = \"M\" }\n")
    (tmp_path / "g.toml").write_text(spec.replace("M", "g1k"))
    assert CircuitProblem(deck, spec=tmp_path / "g.toml").netlist.measures[0].name == "f3"   # the deck runs
    (tmp_path / "f.toml").write_text(spec.replace("M", "f3"))
    with pytest.raises(InputError) as e:
        CircuitProblem(deck, spec=tmp_path / "f.toml")
    message = str(e.value)
    assert "\n" not in message and message.startswith(f"{deck}:9: .meas f3: ") and "lines 8, 9" in message, message


def test_a_param_named_like_a_constant_is_kept(tmp_path):
    """``pi`` is no numparam function: a ``.param pi`` is read by ngspice and by zoaf alike."""
    deck = tmp_path / "pi.cir"
    deck.write_text("RC\n.param r1=1k pi=2\nV1 in 0 dc 0 ac 1\nR1 in out {r1*pi}\nC1 out 0 1n\n.save all\n"
                    ".ac dec 20 1k 100meg\n.meas ac f3 when vdb(out)=-3\n.end\n")
    nl = Netlist.read(deck)
    with SpiceSession(nl) as s:
        assert same(s.evaluate({}), run_batch(deck), nl) and math.isclose(s.evaluate({})["f3"], 79388.6, rel_tol=1e-5)


_PZ_DECK = ("RC\n.param r1=1k c1=1n\nvin in 0 dc 0 ac 1\nr1 in out {{r1}}\nc1 out 0 {{c1}}\nrl out 0 10k\n{cards}\n"
            ".control\n{block}\nset numdgt=15\nprint p1\n.endc\n.end\n")


@pytest.mark.parametrize("cards, block", [
    (".op\n.pz in 0 out 0 vol pol", "run\nlet p1 = real(pole(1))"),
    (".op\n.pz in 0 out 0 vol pol", "pz in 0 out 0 vol pol\nlet p1 = real(pole(1))"),
    (".tf v(out) vin\n.pz in 0 out 0 vol pol", "op\nlet p1 = 2"),
])
def test_a_pz_run_ngspice_b_saves_nothing_for_after_the_block_is_no_failure(tmp_path, cards, block):
    """With an output card (``.op``, ``.tf``) ``ngspice -b`` runs the dot-analyses again after the ``.control``
    block, saving only what ``.save``/``.meas``/``.print`` cards name: nothing for ``.pz``, which prints "no data
    saved for pole-zero analysis" after the block's results, exit status 0. ``run_batch`` called that a
    ConvergenceError where the session measured p1: both give p1 now, and ``zoaf check`` notes the card."""
    deck = tmp_path / "pz.cir"
    deck.write_text(_PZ_DECK.format(cards=cards, block=block))
    out = _ngspice_b(deck)
    assert out.returncode == 0 and "no data saved for pole-zero analysis" in out.stderr, out.stderr
    printed = float(re.search(r"^p1 = (\S+)", out.stdout, re.M).group(1))
    nl = Netlist.read(deck)
    with SpiceSession(nl) as s:
        got = s.evaluate({})
    assert run_batch(deck) == {"p1": printed} and math.isclose(got["p1"], printed, rel_tol=REL)
    assert [n.split(": ", 1)[0] for n in nl.notes] == [f"{deck}:8"] and "exit status 0" in nl.notes[0], nl.notes


def test_a_pz_run_that_saves_nothing_in_the_block_still_fails(tmp_path):
    """With ``.save v(out)`` the block's own ``.pz`` run saves nothing too, and p1 is never made: a failure in both
    (ConvergenceError), and no note (the deck fails in zoaf as by hand)."""
    deck = tmp_path / "pz.cir"
    deck.write_text(_PZ_DECK.format(cards=".op\n.pz in 0 out 0 vol pol\n.save v(out)",
                                    block="run\nlet p1 = real(pole(1))"))
    assert "p1 = " not in _ngspice_b(deck).stdout
    nl = Netlist.read(deck)
    with pytest.raises(ConvergenceError, match="no data saved for pole-zero"):
        run_batch(deck)
    with SpiceSession(nl) as s, pytest.raises(ConvergenceError, match="no data saved for pole-zero"):
        s.evaluate({})
    assert nl.notes == []


@pytest.mark.parametrize("card, error, noted", [
    (".tf v(out) vin", "aborted", "exit status 1"),
    (".disto dec 10 1k 1meg", "signal", "segmentation fault"),
])
def test_a_tf_or_disto_run_ngspice_b_saves_nothing_for_is_noted(tmp_path, card, error, noted):
    """The same run of a ``.tf`` card beside ``.op`` stops ``ngspice -b`` ("run simulation(s) aborted", exit status
    1), of a ``.disto`` card crashes it, after the block's results: a failure of the hand run (``best.cir``) that no
    result comes from. The session reports the block's results; ``zoaf check`` shows why the hand run fails, and
    the fix."""
    deck = tmp_path / "ss.cir"
    deck.write_text(_PZ_DECK.format(cards=f".op\n{card}", block="run\nlet p1 = 2"))
    with pytest.raises(SimulationError, match=error):
        run_batch(deck)
    nl = Netlist.read(deck)
    with SpiceSession(nl) as s:
        assert s.evaluate({}) == {"p1": 2.0}
    assert len(nl.notes) == 1 and nl.notes[0].startswith(f"{deck}:8: ") and noted in nl.notes[0], nl.notes
    assert "`.save all`" in nl.notes[0]
    saved = Netlist.from_text(deck.read_text().replace(".op\n", ".op\n.save all\n"), deck)
    assert saved.notes == [] and run_batch(saved.text) == {"p1": 2.0}


def test_a_deriv_meas_card_ngspice_39_cannot_run_is_noted_in_one_line():
    """``.meas tran slope deriv v(out) at=5u`` (or ``when``, in ``dc`` too): ngspice 39 prints "function 'deriv'
    currently not supported" and measures nothing, as a session does (``test_deck_matches_ngspice_b``), but
    ``zoaf check`` said nothing of a card that can never give a value. Each is noted in one line; a ``max`` of the
    ``deriv()`` vector function in a ``meas`` command is not."""
    for deck, lines in (("meas_tran_kinds", (12, 13)), ("dc_meas_options_temp", (10,)), ("mos_opparams", ())):
        nl = Netlist.read(DECKS / f"{deck}.cir")
        notes = [n for n in nl.notes if "deriv" in n]
        assert [n.split(":")[1] for n in notes] == [str(line) for line in lines], nl.notes
        assert all("\n" not in n and "currently not supported" in n and "measures nothing" in n for n in notes)


def test_a_tf_card_without_a_control_block_is_noted_with_the_way_to_read_it(tmp_path):
    """A ``.tf`` card alone: ``ngspice -b`` prints ``transfer_function = ...`` and the impedances, no measure zoaf
    reads (there is no ``.meas tf``): the session and ``run_batch`` give nothing, and a spec measuring
    ``transfer_function`` was told only that the deck has no such measure. The card is noted in one line with the
    ``.control`` way to read it, which ``tf_card_run_lets.cir`` runs and compares."""
    deck = tmp_path / "tf.cir"
    text = (DECKS / "tf_card_run_lets.cir").read_text()
    deck.write_text(text[:text.index("\n.control") + 1] + ".end\n")
    (tmp_path / ".spiceinit").write_text(SPICEINIT)
    batch = subprocess.run(["ngspice", "-b", str(deck)], cwd=tmp_path, capture_output=True, text=True)
    assert "transfer_function = " in batch.stdout, batch.stdout
    nl = Netlist.read(deck)
    with SpiceSession(nl) as s:
        assert s.evaluate({}) == {} == run_batch(deck)
    notes = [n for n in nl.notes if ".tf" in n]
    assert len(notes) == 1 and "\n" not in notes[0] and notes[0].startswith(f"{deck}:9: .tf v(out) vin: "), nl.notes
    assert "let gain = transfer_function" in notes[0]
    assert Netlist.read(DECKS / "tf_card_run_lets.cir").notes == []


def test_a_param_measure_that_is_not_finite_is_a_missing_measure():
    """A ``param=`` card whose value is not finite (``f3/(k-1)`` at k=1, ``ln(k-1)``): ngspice prints "Error: Bad
    value." and ``q = failed``, measures the other cards and exits with status 0. zoaf called the whole simulation
    failed (a ConvergenceError in a session, a SimulationError from ``ngspice -b``); now a missing measure with the
    others kept, in both, and every card at a sizing where the value is finite."""
    nl = Netlist.read(DECKS / "meas_param_not_finite.cir")
    with SpiceSession(nl) as s:
        for run in (s.evaluate, lambda values: run_batch(nl.with_params(values))):
            with pytest.raises(MeasureError) as e:
                run({})
            assert set(e.value.measures) == {"f3", "g1k", "f3k"} and "q" in str(e.value), e.value
            got = run({"k": 1.5})
            assert math.isclose(got["q"], got["f3"] * 2, rel_tol=1e-12) and math.isclose(got["lq"], math.log(0.5))


def test_numparam_operators_are_set_in_place():
    """The deck of numparam's operators (``^`` of negative and zero bases, ternaries, ``&& || !``, ``pwr``, a
    ``.func`` read inside a subcircuit, a diode's area) is resized in place at every sizing, not reset: what
    :func:`test_deck_matches_ngspice_b` and :func:`test_fast_path_equals_reset_bit_for_bit` compare is the fast path."""
    nl = Netlist.read(DECKS / "numparam_operators.cir")
    with SpiceSession(nl) as s:
        s.evaluate({})
        for values in SIZINGS["numparam_operators"]:
            s.evaluate(values)
            assert s._in_place, values

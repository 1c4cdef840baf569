"""Decks zoaf has never seen (tests/compat: mixed case, CRLF, continuations, suffixes, .lib/.include, nested
and parametrized subcircuits, m= multipliers, B/E/G sources, XSPICE code models, BJTs, diodes, coupled inductors,
transmission lines, .temp/.options, Latin-1 comments, .control blocks, every .meas kind, .if blocks, .csparam,
switches, F/H and table sources, .ic with uic, nested .dc sweeps, tf and pz, a title line that reads like a card,
comments inside continuations, m= on MOSFETs, .measure spelled out): zoaf gives the
measures ``ngspice -b`` prints, and its in-place fast path gives the ``reset`` path's, bit for bit, over several
sizings in one session (a sizing changes a random subset of the design variables, so that in-place and reset
sizings alternate), or zoaf refuses the deck with one line."""
from __future__ import annotations

import math
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from fresh import in_fresh_process
from ngspice_marks import NEEDS_NGSPICE

from zoaf import fastpath
from zoaf.circuit import CircuitProblem
from zoaf.errors import InputError, MeasureError
from zoaf.meascards import skipped_named
from zoaf.netlist import Netlist
from zoaf.spec import Spec
from zoaf.units import parse

DECKS = Path(__file__).parent / "compat"
REL = 1e-12                        # the digits ngspice prints (tests/test_fidelity.py says why)
SIZINGS = 6

pytestmark = NEEDS_NGSPICE

from zoaf.spice import SPICEINIT, SpiceSession, run_batch  # noqa: E402


def sizings(nl: Netlist, seed: int) -> list[dict[str, float]]:
    """The defaults, then sizings that each re-scale a random non-empty subset of the plain-number ``.param``s of
    the one before: every other one only among those the fast path may set in place, so that in-place sizings
    follow resets."""
    rng = np.random.default_rng(seed)
    plain = {}
    for name, text in nl.params.items():
        try:
            plain[name] = parse(text, numparam=True)
        except ValueError:
            continue                          # an expression: it follows the others
    plan = fastpath.plan(nl.session_deck(), nl.path.parent, nl.params, nl.analyses + nl.control)
    in_place = [k for k in plain if plan is not None and k in plan.fast]
    out: list[dict[str, float]] = [{}]
    for i in range(SIZINGS):
        names = in_place if i % 2 and in_place else list(plain)
        pick = [k for k in names if rng.random() < 0.5] or [names[0]]
        out.append({**out[-1], **{k: plain[k] * float(rng.uniform(0.7, 1.4)) for k in pick}})
    return out


def outcome(run, *args) -> tuple[dict[str, float], str | None]:
    try:
        return run(*args), None
    except MeasureError as e:
        return dict(e.measures), "MeasureError"


def session_outcomes(nl: Netlist, values: list[dict[str, float]], fast: bool) -> tuple[list, int]:
    """Each sizing's outcome in one session, and how many were set in place; a deck with ``.if`` cards in a
    process of its own (libngspice loads no other deck after one: zoaf.spice)."""
    if nl.conditional:
        return in_fresh_process(_outcomes, nl, values, fast)
    return _outcomes(nl, values, fast)


def _outcomes(nl: Netlist, values: list[dict[str, float]], fast: bool) -> tuple[list, int]:
    out, in_place = [], 0
    with SpiceSession(nl, fast=fast) as s:
        for v in values:
            out.append(outcome(s.evaluate, v))
            in_place += s._in_place
    return out, in_place


def same(got: dict[str, float], ref: dict[str, float]) -> bool:
    """Every result ngspice -b printed, equal to its printed digits (zoaf may also read unprinted lets)."""
    return ref.keys() <= got.keys() and all(math.isclose(got[k], ref[k], rel_tol=REL, abs_tol=1e-15)
                                            for k in ref)


# ---------------------------------------------------------------------- refused: ngspice -b would differ
SEVERAL = "* t\n.param r1=1k\nv1 in 0 dc 1 ac 1\nr1 in e {r1}\nc1 e 0 1n\n.save all\n"


@pytest.mark.parametrize("cards, line", [
    (".op\n.ac dec 10 1 1g\n.meas ac g find v(e) at=1k\n", 9),                  # .op runs last: nothing
    (".ac dec 10 1 1g\n.dc v1 0 1 0.5\n.meas ac g find v(e) at=1k\n.meas dc d find v(e) at=1\n", 9),
    (".dc v1 0 1 0.5\n.ac dec 10 1 1g\n.meas ac g find v(e) at=1k\n.control\nrun\n.endc\n", 9),
    (".ac dec 10 1 1k\n.ac dec 10 1 1g\n.meas ac g when vdb(e)=-3\n", 9),      # measured on one plot only
])
def test_meas_of_an_analysis_batch_mode_does_not_measure_is_refused(tmp_path: Path, cards: str, line: int
                                                                   ) -> None:
    """ngspice -b runs every dot-analysis (ac, dc, op, tran, ... in its own order) and only then takes the
    .meas cards, on the last one's plot: a card of another analysis prints nothing. zoaf, measuring after
    each analysis, would report what ngspice -b does not: it refuses with the card's line."""
    path = tmp_path / "deck.cir"
    path.write_text(SEVERAL + cards + ".end\n")
    (tmp_path / ".spiceinit").write_text(SPICEINIT)
    out = subprocess.run(["ngspice", "-b", str(path)], cwd=tmp_path, capture_output=True, text=True).stdout
    assert "Rows : 91" in out and not re.search(r"^g\s+=", out, re.M)    # the ac ran, its card printed nothing
    with pytest.raises(InputError, match=rf"deck\.cir:{line}: \.meas ac g: ngspice -b"):
        Netlist.read(path)


def test_meas_of_the_last_analysis_run_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "deck.cir"
    path.write_text(SEVERAL + ".dc v1 0 1 0.5\n.ac dec 10 1 1g\n.meas dc d find v(e) at=1\n.end\n")
    nl = Netlist.read(path)
    with SpiceSession(nl) as s:
        assert s.evaluate({"r1": 2e3}) == run_batch(nl.with_params({"r1": 2e3})) == {"d": 1.0}


def test_the_refusals_advice_is_a_deck_zoaf_takes(tmp_path: Path) -> None:
    """The refusal says to run the analyses from a .control block instead of dot-analysis lines: with those
    lines still there it is refused again (ngspice -b measures the block's ac, then prints nothing on the .op
    plot); without them zoaf gives what ngspice -b prints."""
    path = tmp_path / "deck.cir"
    block = ".meas ac g find v(e) at=1k\n.control\nop\nac dec 10 1 1g\n.endc\n.end\n"
    path.write_text(SEVERAL + ".op\n.ac dec 10 1 1g\n" + block)
    with pytest.raises(InputError, match=r"in a \.control block \(ac \.\.\., dc \.\.\.\) instead of dot-analysis"):
        Netlist.read(path)
    path.write_text(SEVERAL + block)
    nl = Netlist.read(path)
    with SpiceSession(nl) as s:
        got = s.evaluate({"r1": 2e3})
    assert got == run_batch(nl.with_params({"r1": 2e3})) and set(got) == {"g"}


# ---------------------------------------------------------------------- the battery
BATTERY = sorted(DECKS.glob("*.cir"))
#: Decks whose every sizing goes through ``reset`` (the others take the fast path at some sizings, a ternary's
#: among them since the fast path computes it as ngspice's numparam does): a transient, a block's own alterparam or
#: alter, a .dc temp sweep, a .if block, a param= card on a rounded measure.
RESET_ONLY = {"ac_phase", "control_alter_subckt", "control_alterparam", "dc_temp", "ic_uic", "if_else", "if_include",
              "if_params", "ihp_style_hisim_mirror",
              "meas_kinds", "rectifier", "switches", "temp_opts", "tline_latin1", "tran_meas",
              "xspice_gain", "bjt_ft_foreach_plots", "func_quoted_defs", "ltspice_buck"}


@pytest.mark.parametrize("deck", BATTERY, ids=lambda p: p.stem)
def test_deck_equals_ngspice_b_and_fast_equals_reset(deck: Path) -> None:
    """Each sizing, in one session: in place or reset, the same bits as a reset-only session; the same
    measures (and the same missing ones) as ``ngspice -b`` on the sized deck."""
    nl = Netlist.read(deck)
    values = sizings(nl, seed=sum(deck.stem.encode()))
    fast, in_place = session_outcomes(nl, values, fast=True)
    slow, _ = session_outcomes(nl, values, fast=False)
    assert fast == slow, [(v, f, s) for v, f, s in zip(values, fast, slow) if f != s]
    assert (in_place > 1) == (deck.stem not in RESET_ONLY), in_place          # the defaults count as in place
    for v, (got, err) in zip(values, fast):
        ref, ref_err = outcome(run_batch, nl.with_params(v))
        assert ref, f"{deck.name} {v}: ngspice -b printed no result"
        assert err == ref_err and same(got, ref), (v, got, ref)


def _load_after_a_conditional_deck(conditional: str) -> list[str]:
    from zoaf.errors import ParseError
    from zoaf.spice import SpiceSession

    got = []
    for stem in (conditional, "funcs", conditional):
        try:
            with SpiceSession(Netlist.read(DECKS / f"{stem}.cir")) as s:
                got.append(str(s.evaluate({})["va" if stem == "funcs" else "f3"] > 0))
        except ParseError as e:
            got.append(f"{e.needs_new_process}: {e}")
    return got


@pytest.mark.parametrize("conditional", ["if_else", "if_include"])
def test_a_process_that_loaded_a_deck_with_if_cards_loads_no_other(conditional: str) -> None:
    """After a deck with .if cards, its own or in an included file, ngspice 39 misreads other decks in the same
    process (the sky130 amplifier's model cards lose their .params: "Undefined parameter", docs/ngspice.md): zoaf
    refuses another deck there and asks for a new process (the pools replace it); the same deck still loads."""
    first, other, again = in_fresh_process(_load_after_a_conditional_deck, conditional)
    assert first == again == "True"
    assert other.startswith("True: ") and "funcs.cir: this process loaded a deck with .if cards" in other


def _spec(nl: Netlist) -> Spec:
    plain = {}
    for name, text in nl.params.items():
        try:
            if (v := parse(text, numparam=True)) > 0:
                plain[name] = {"lo": v / 2, "hi": v * 2}
        except ValueError:
            continue
    never = {m.name for m in nl.measures if m.note is not None and not m.runs_as_ac}  # a spec of one is refused
    measures = {m: {"unit": ""} for m in nl.results if m not in never}
    return Spec.from_dict({"parameters": plain, "measures": measures,
                           "objectives": {"first": {"minimize": next(iter(measures))}}})


@pytest.mark.parametrize("stem", ["mixed_case", "models_lib", "control_then_dot", "control_alterparam", "funcs",
                                  "no_end", "xspice_gain", "tline_latin1", "meas_kinds", "if_else", "csparam",
                                  "tf_pz"])
def test_circuit_problem_through_a_worker_equals_ngspice_b(stem: str) -> None:
    """The evaluator's worker (sandboxed process, fast path and all) gives ngspice -b's measures."""
    from zoaf.circuit import CircuitProblem
    from zoaf.evaluate import Evaluator

    path = DECKS / f"{stem}.cir"
    problem = CircuitProblem(path, _spec(Netlist.read(path)))
    u = np.random.default_rng(5).random((4, problem.dim))
    with Evaluator(problem, workers=1) as ev:
        records = ev.evaluate(u)
    for r in records:
        ref, _ = outcome(run_batch, problem.netlist.with_params(r.params))
        assert ref and same(r.outcome.measures, ref), (r.params, r.outcome, ref)      # (an empty ref matches all)


# ---------------------------------------------------------------------- numbers as numparam reads them
def _ngspice_resistances(tmp_path: Path, values: list[str], factor: str, digits: int) -> list[float]:
    """Each ``.param p=<value>`` as ``ngspice -b`` puts ``{p<factor>}`` into a resistor (printed with ``digits``)."""
    lines = ["* values"] + [f".param p{i}={v}\nr{i} {i} 0 {{p{i}{factor}}}\nv{i} {i} 0 1"
                            for i, v in enumerate(values, 1)]
    prints = "\n".join(f"print @r{i}[resistance]" for i in range(1, len(values) + 1))
    (tmp_path / "v.cir").write_text("\n".join(lines) + f"\n.control\nop\nset numdgt={digits}\n{prints}\n.endc\n.end\n")
    (tmp_path / ".spiceinit").write_text(SPICEINIT)
    out = subprocess.run(["ngspice", "-b", "v.cir"], cwd=tmp_path, capture_output=True, text=True).stdout
    printed = [float(v) for v in re.findall(r"^@r\d+\[resistance\] = (\S+)", out, re.M)]
    assert len(printed) == len(values), out
    return printed


NUMBERS = ["10mil", "5MILS", "1a", "3fa", "2.5kohm", "1meg", "1MEGA", "1e3k", "1.5e-3u", ".5k", "7x", "4t"]


def test_param_numbers_are_read_as_numparam_reads_them(tmp_path: Path) -> None:
    """numparam (``.param`` values, ``{expressions}``, ``param=`` cards) knows no ``mil`` (``10mil`` is 10 milli)
    and no ``a`` (atto): the fast path's values and the designer's sizing a run starts from must be its."""
    from zoaf.circuit import CircuitProblem
    from zoaf.spexpr import evaluate

    ngspice = [v / 1e20 for v in _ngspice_resistances(tmp_path, NUMBERS, "*1e20", 15)]
    ours = [evaluate(n, {}) for n in NUMBERS]
    assert all(math.isclose(a, b, rel_tol=1e-14) for a, b in zip(ours, ngspice)), list(zip(NUMBERS, ours, ngspice))
    deck = DECKS / "funcs.cir"
    problem = CircuitProblem(deck, Spec.from_dict(
        {"parameters": {"wm": {"lo": "1m", "hi": "100m"}}, "measures": {"va": {}},
         "objectives": {"a": {"minimize": "va"}}}))
    assert problem.default_params()["wm"] == evaluate("10mil", {}) == 0.01


EXPRESSIONS = ["nint(2.5)+10", "nint(-2.5)+10", "nint(3.5)", "nint(0.49999999999999994)+1", "int(-2.7)+10",
               "floor(-2.5)+10", "ceil(-2.5)+10", "log(100)", "ln(100)", "log10(100)", "pow(-2,3)+100",
               "(-2)^3+100", "-2^2+100", "2^3^2", "2**3**2", "(2^3)^2", "2*-3+100", "sgn(-2)+10", "min(3,1,2)",
               "max(1,5,2)", "max(3, min(7, 5))", "10/4/5", "2-3-4+100", "1e3/7", "atan(1)*4", "exp(1)"]


def test_expressions_as_numparam_evaluates_them(tmp_path: Path) -> None:
    """What spexpr computes for the fast path is numparam's value, or Unsupported (then ``reset``): numparam's
    ``nint`` rounds half to even, ``^`` and ``**`` group to the left, ``min``/``max`` take two arguments."""
    from zoaf.ngnumbers import device_value
    from zoaf.spexpr import Unsupported, evaluate

    ngspice = _ngspice_resistances(tmp_path, [f"{{{e}}}" for e in EXPRESSIONS], "", 16)
    wrong, left = [], []
    for e, ng in zip(EXPRESSIONS, ngspice):
        try:
            ours = device_value(evaluate("{" + e + "}", {}))[0]      # as the device reads it back
        except Unsupported:
            left.append(e)
            continue
        if not math.isclose(ours, ng, rel_tol=1e-15):
            wrong.append((e, ours, ng))
    assert not wrong
    assert left == ["2^3^2", "2**3**2", "min(3,1,2)", "max(1,5,2)"]      # the rest is computed, not left to reset


SUFFIXED = ["100u", "4.7n", "0.1u", "3.3m", "1.1k", "2.2meg", "7p", "1.7f", "12.345u", "0.07n", "9.99g",
            "3.3e-3u", "123456.789m", "10mil"]


def test_suffixed_numbers_bit_for_bit_as_param_cards_print_them(tmp_path: Path) -> None:
    """numparam scales in doubles (``4.7n`` is ``4.7 * 1e-9``, an ulp above the nearest double): a ``param=``
    card (printed with every digit) shows it, and so would a device value built on a fixed suffixed ``.param``."""
    from zoaf.ngnumbers import device_value
    from zoaf.spexpr import evaluate

    cards = "\n".join(f".meas ac p{i} param='{n}'" for i, n in enumerate(SUFFIXED))
    path = tmp_path / "s.cir"
    path.write_text(f"* s\nv1 1 0 dc 0 ac 1\nr1 1 0 1k\n.ac lin 2 1 2\n.meas ac g find v(1) at=1\n{cards}\n.end\n")
    printed, _ = outcome(run_batch, path)                  # (the find card is not the point)
    assert [printed[f"p{i}"] for i in range(len(SUFFIXED))] == [device_value(evaluate(f"'{n}'", {}))[0]
                                                                for n in SUFFIXED]


@pytest.mark.parametrize("card", [".meas ac f3 when vdb(out)=-3", ".AC dec 10 1 1g", ".op"])
def test_analyses_and_measures_in_an_included_file_are_refused(tmp_path: Path, card: str) -> None:
    """ngspice -b runs and measures them; zoaf reads analyses and .meas cards from the netlist itself, so it
    would run nothing and report no measure: one line naming the included file's line instead."""
    (tmp_path / "bench.inc").write_text(f"* testbench\n.save all\n{card}\n")
    (tmp_path / "top.cir").write_text("* t\n.param r1=1k\nv1 in 0 dc 0 ac 1\nr1 in out {r1}\nc1 out 0 1n\n"
                                      ".include bench.inc\n.ac dec 10 1 1g\n.meas ac g find vdb(out) at=1k\n.end\n")
    with pytest.raises(InputError, match=r"bench\.inc:3: .* in an included file"):
        Netlist.read(tmp_path / "top.cir")


# ---------------------------------------------------------------------- what ngspice -b saves for .meas
@pytest.mark.parametrize("cards, noted, batch", [
    ("", True, False),                                  # nothing saved: ngspice -b runs no analysis
    (".meas ac z find i(v1) at=1e6\n", True, False),    # a current saved, not v(out): "no such vector"
    (".save in\n", False, False),                       # zoaf saves what .save says too: both miss x
    (".save v(out)\n", False, True),
    (".meas ac y find v(out) at=1e6\n", False, True),   # the .meas reader saves v(out) itself
    (".print ac vm(out)\n", False, True),
    (".save all\n", False, True),
])
def test_a_meas_ngspice_b_saves_nothing_for_is_noted(tmp_path: Path, cards: str, noted: bool, batch: bool
                                                     ) -> None:
    """ngspice -b's .meas reader saves v(out) but cannot read vdb(out): unless a card saves v(out), the deck
    run by hand prints no x. zoaf keeps every vector when the deck has no .save card and measures x: the deck
    is sized as written, with a note naming the card and the fix, exactly when the two differ."""
    path = tmp_path / "deck.cir"
    path.write_text("rc\n.param r1=1k\nV1 in 0 dc 0 ac 1\nR1 in out {r1}\nC1 out 0 1n\n.ac dec 20 1 1e9\n"
                    ".meas ac x find vdb(out) at=1e6\n" + cards + ".end\n")
    (tmp_path / ".spiceinit").write_text(SPICEINIT)
    out = subprocess.run(["ngspice", "-b", str(path)], cwd=tmp_path, capture_output=True, text=True).stdout
    assert bool(re.search(r"^x\s+=", out, re.M)) is batch, out
    nl = Netlist.read(path)
    assert [n.split(": ", 1)[0] for n in nl.notes] == ([f"{path}:7"] if noted else [])
    with SpiceSession(nl) as s:
        got, _ = outcome(s.evaluate, {"r1": 1e3})
    assert ("x" in got) is (batch or noted) and math.isclose(got.get("x", -16.07224), -16.07224, rel_tol=1e-6)


def test_a_meas_sp_card_ngspice_b_saves_nothing_for_is_noted(tmp_path: Path) -> None:
    """A .sp deck's .meas sp cards: ngspice -b saves no S-parameter vector (no card names one it can save), so
    the analysis is not run ("no data saved") and nothing is measured; zoaf measures the card. The note says so,
    with `.save all` (the one card that runs it by hand); with that card both measure and nothing is noted."""
    deck = ("lc\n.param c1=1p\nv1 in 0 dc 0 ac 1 portnum 1 z0 50\nv2 out 0 dc 0 ac 1 portnum 2 z0 12.5\n"
            "c1 in 0 {c1}\nl1 in out 1n\n.sp lin 11 2.3g 2.5g\n.meas sp s11max max vdb(s_1_1)\n")
    (tmp_path / ".spiceinit").write_text(SPICEINIT)
    for save, noted in (("", True), (".save all\n", False)):
        path = tmp_path / "deck.cir"
        path.write_text(deck + save + ".end\n")
        out = subprocess.run(["ngspice", "-b", str(path)], cwd=tmp_path, capture_output=True, text=True).stdout
        assert bool(re.search(r"^s11max\s+=", out, re.M)) is not noted, out
        notes = Netlist.read(path).notes
        assert [n.split(": ", 1)[0] for n in notes] == ([f"{path}:8"] if noted else [])
        assert not noted or "`.save all`" in notes[0]


def test_the_cli_shows_the_note_on_stderr(tmp_path: Path) -> None:
    import json
    import sys

    path = tmp_path / "deck.cir"
    path.write_text("rc\n.param r1=1k\nV1 in 0 dc 0 ac 1\nR1 in out {r1}\nC1 out 0 1n\n.ac dec 20 1 1e9\n"
                    ".meas ac x find vdb(out) at=1e6\n.end\n")
    (tmp_path / "deck.toml").write_text('[parameters]\nr1 = { lo = "100", hi = "10k" }\n[measures]\n'
                                        'x = { unit = "dB" }\n[objectives]\no = { maximize = "x" }\n')
    r = subprocess.run([sys.executable, "-m", "zoaf", "check", str(path), "--json"], capture_output=True, text=True)
    assert r.returncode == 0 and json.loads(r.stdout)["measures"]["x"] == -16.07224
    assert f"note: {path}:7: ngspice -b saves only" in " ".join(r.stderr.split()) and "`.save v(out)`" in r.stderr


def test_a_meas_op_card_is_skipped_as_ngspice_b_skips_it(tmp_path: Path) -> None:
    """ngspice 39 prints "unrecognized analysis type 'op'" for a `.meas op` card and runs the rest of the deck
    (exit status 0); zoaf runs it too, notes the card, and refuses a measure of that card by name, in one line."""
    path = Path(__file__).parent / "fidelity" / "meas_op_skipped.cir"
    out = subprocess.run(["ngspice", "-b", str(path)], cwd=tmp_path, capture_output=True, text=True)
    assert out.returncode == 0 and "unrecognized analysis type 'op'" in out.stdout + out.stderr
    nl = Netlist.read(path)
    assert [m.name for m in nl.measures] == ["gdc", "gmax"] and "vout" not in nl.results
    assert [n.split(": ", 1)[0] for n in nl.notes] == [f"{path}:{k}" for k in (9, 12, 13)]
    assert "ngspice does not run `.meas op`" in nl.notes[0]
    with SpiceSession(nl) as s:
        assert s.evaluate({"r1": 2e3}) == run_batch(nl.with_params({"r1": 2e3}))
        with pytest.raises(InputError, match=r"meas_op_skipped.cir:12: \.meas op vout2: ngspice does not run "):
            s.evaluate({}, names=["gdc", "vout2"])
    assert skipped_named(nl.skipped_measures, ["vout2"], ["vout2"], str(path)) is None   # another card gives it
    deck = tmp_path / "d.cir"
    deck.write_text(path.read_text())
    (tmp_path / "d.toml").write_text('[parameters]\nr1 = { lo = "1k", hi = "10k" }\n[measures]\nvout2 = {}\n'
                                     '[objectives]\nv = { maximize = "vout2" }\n')
    with pytest.raises(InputError, match=r"d\.cir:12: \.meas op vout2: ngspice does not run .*the spec measures"):
        CircuitProblem(deck)


_IF_LIB = """NMOS stage whose .lib corner section an .if on a design variable chooses (.elseif, .else)
.param corner=1 wn=2u rl=20k
.if (corner == 1)
.lib 'corners.lib' ss
.elseif (corner == 2)
.lib 'corners.lib' tt
.else
.lib 'corners.lib' ss
.endif
Vdd vdd 0 dc 1.8
Vg g 0 dc 0.9 ac 1
Rl vdd d {rl}
M1 d g 0 0 nm w={wn} l=1u
.ac dec 10 1k 10meg
.meas ac a0 find vdb(d) at=1k
.meas ac f3 when vdb(d)=3
.save all
.end
"""


def test_a_lib_section_an_if_on_a_design_variable_chooses_equals_ngspice_b(tmp_path: Path) -> None:
    """Sizings that flip the branch back and forth in one session (a process of its own: the deck has ``.if``
    cards) give what ``ngspice -b`` gives on each sized deck, with the chosen section's models and ``.param``."""
    shutil.copy(Path(__file__).parent / "fidelity" / "corners.lib", tmp_path)
    (tmp_path / "if_lib.cir").write_text(_IF_LIB)
    nl = Netlist.read(tmp_path / "if_lib.cir")
    values = [{}, {"corner": 2}, {"corner": 3}, {"corner": 1, "wn": 3e-6}, {"corner": 2, "rl": 1e4}, {"corner": 2}]
    got, _ = session_outcomes(nl, values, fast=True)
    ref = [outcome(run_batch, nl.with_params(v)) for v in values]
    assert len({r[0]["a0"] for r in ref}) == 4 and ref[2] == ref[0], ref  # corner 3 is the .else's ss again
    assert all(e == re and same(g, r) for (g, e), (r, re) in zip(got, ref)), (got, ref)


def test_a_param_inside_an_if_block_is_noted_as_read_whichever_branch_is_taken(tmp_path: Path) -> None:
    """``.if (c == 2)`` / ``.param r=3k`` / ``.endif`` at c=1: ngspice 39 reads the ``.param`` all the same (by hand
    and in zoaf: r=3k), which the block's text says otherwise and nothing told. Noted in one line with the ternary
    that does what the block says; a deck that sets it so gets no note."""
    deck = tmp_path / "ifp.cir"
    body = "V1 a 0 1\nR1 a b {r}\nR2 b 0 1k\n.dc V1 0 2 1\n.meas dc vb find v(b) at=1\n.end\n"
    deck.write_text("if param\n.param c=1 r=1k\n.if (c == 2)\n.param r=3k\n.endif\n" + body)
    assert run_batch(deck) == {"vb": 0.25}                                 # 1k / (3k + 1k): the branch's r
    notes = Netlist.read(deck).notes
    assert len(notes) == 1 and "\n" not in notes[0] and notes[0].startswith(f"{deck}:4: .param r=3k: "), notes
    assert "whichever branch is taken" in notes[0]
    deck.write_text("if param\n.param c=1\n.param r={c == 2 ? 3k : 1k}\n" + body)
    assert Netlist.read(deck).notes == [] and run_batch(deck) == {"vb": 0.5}

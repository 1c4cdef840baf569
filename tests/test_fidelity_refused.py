"""Decks ngspice 39 runs differently by hand than a session would, or cannot run at all: what zoaf refuses in one
line (a measure ending in ``targ at=``, ``params:`` on an instance, ``interp`` after a transient) and the state a
process keeps between decks (``interp``) or a block between sizings (a ``goto`` label). Each checked against
``ngspice -b``; the deck-by-deck comparison is ``test_fidelity.py``'s."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from ngspice_marks import NEEDS_NGSPICE
from test_fidelity import DECKS, ROOT, _in_a_folder_of_its_own, _ngspice_b  # noqa: F401 (an autouse fixture)

from zoaf.errors import InputError, MeasureError, ParseError
from zoaf.netlist import Netlist
from zoaf.spice import SpiceSession, run_batch

pytestmark = NEEDS_NGSPICE


_TARG_AT = ("RC pulse\n.param r1=1k c1=1n\nV1 in 0 dc 0 pulse(0 1 1u 10n 10n 5u 10u)\nR1 in out {{r1}}\n"
            "C1 out 0 {{c1}}\n{body}.end\n")


@pytest.mark.parametrize("body, line", [
    (".tran 10n 20u\n.meas tran dt trig v(out) val=0.5 rise=1 targ at=8u\n", 7),
    (".tran 10n 20u\n.meas tran dt TRIG at=1u TARG AT = 8e-6\n", 7),
    (".control\ntran 10n 20u\nmeas tran dt trig v(out) val=0.5 rise=1 targ at=8u\nprint dt\n.endc\n", 8),
])
def test_a_measure_ending_in_targ_at_is_refused_in_one_line(tmp_path, body, line):
    """A ``.meas`` card or ``meas`` command that ends in ``targ at=TIME`` makes ngspice 39 crash (``ngspice -b``:
    a segmentation fault, or exit status 1 after ``trig at=``); zoaf's worker died with it and ``zoaf check`` could
    only say "the sandboxed simulation process died (exit code -11)". Refused with the line and the way out."""
    from zoaf.errors import InputError

    deck = tmp_path / "targ.cir"
    deck.write_text(_TARG_AT.format(body=body))
    assert _ngspice_b(deck).returncode in (1, -11, 139)
    with pytest.raises(InputError) as e:
        Netlist.read(deck)
    message = str(e.value)
    assert "\n" not in message and message.startswith(f"{deck}:{line}: ") and "targ at=" in message, message
    assert "crashes ngspice" in message


@pytest.mark.parametrize("instance", ["X1 in out lpf params: r=1k", "X1 in out lpf PARAMS:r=1k"])
def test_params_colon_on_an_instance_is_refused_in_one_line(tmp_path, instance):
    """Plain ``ngspice -b`` reads ``params: r=1k`` on an instance as ``r=1k``. In the HSPICE-compatible mode zoaf
    runs (and writes into best.cir's ``.spiceinit``) ``params: r=1k`` does not load ("unknown subckt", which zoaf
    passed on without the reason) and ``params:r=1k`` is dropped without a word: the deck ran with r = 500. Refused
    with the line, whichever way it is written."""
    from zoaf.errors import InputError

    deck = tmp_path / "inst.cir"
    deck.write_text("RC\n.param c1=1n\n.subckt lpf in out params: r=500\nR1 in out {r}\nC1 out 0 {c1}\n.ends lpf\n"
                    f"V1 in 0 dc 0 ac 1\n{instance}\n.save all\n.ac dec 20 100 100meg\n"
                    ".meas ac f3 when vdb(out)=-3\n.end\n")
    run = _ngspice_b(deck)
    out = run.stdout + run.stderr
    f3 = re.search(r"^f3\s+=\s+(\S+)", out, re.M)
    assert "unknown subckt" in out if f3 is None else float(f3.group(1)) > 3e5   # r = 500: 3.18e5; r = 1k: 1.59e5
    with pytest.raises(InputError) as e:
        Netlist.read(deck)
    message = str(e.value)
    assert "\n" not in message and message.startswith(f"{deck}:8: `params:` on an instance") and "hsa" in message


_INTERP = ("RC step\n.param r1=1k c1=1n\nV1 in 0 dc 0 pulse(0 1 1u 10n 10n 20u 40u)\nR1 in out {{r1}}\n"
           "C1 out 0 {{c1}}\n{card}.control\nset numdgt=15\ntran 20n 10u\nlet n1 = length(v(out))\n"
           "let a1 = mean(v(out))\nprint n1 a1\n"
           "{turn_on}\ntran 20n 10u\nlet n2 = length(v(out))\nlet a2 = mean(v(out))\nprint n2 a2\n.endc\n.end\n")


@pytest.mark.parametrize("turn_on", ["option interp", "set interp"])
def test_interp_turned_on_after_a_transient_is_refused_in_one_line(tmp_path, turn_on):
    """``ngspice -b`` keeps the first transient's own time points (519) and interpolates the second (501). ngspice 39
    never clears the flag that ``interp`` sets in a process: zoaf's session gave 519 at the first sizing and 501 for
    both transients from the second on (a mean of 0.8004 for 0.7729). Refused with the line and the way out."""
    from zoaf.errors import InputError

    deck = tmp_path / "interp.cir"
    deck.write_text(_INTERP.format(card="", turn_on=turn_on))
    printed = dict(re.findall(r"^(n\d) = (\S+)", _ngspice_b(deck).stdout, re.M))
    assert printed == {"n1": "5.190000000000000e+02", "n2": "5.010000000000000e+02"}, printed
    with pytest.raises(InputError) as e:
        Netlist.read(deck)
    message = str(e.value)
    assert "\n" not in message and message.startswith(f"{deck}:12: {turn_on}: turns interp on after a transient")
    assert "`.options interp`" in message


def _interp_then_others(deck: Path) -> list[str]:
    """In this (fresh) process: the deck with ``.options interp`` at two sizings against ``ngspice -b``, then a
    transient deck without it, then an AC deck."""
    nl = Netlist.read(deck)
    got = []
    with SpiceSession(nl) as s:
        got += [str(s.evaluate(v) == run_batch(nl.with_params(v))) for v in ({}, {"r1": 1100.0})]
    for stem in ("rc_tran_stats", "rc_ac_when"):
        try:
            with SpiceSession(Netlist.read(DECKS / f"{stem}.cir")) as s:
                got.append(str(bool(s.evaluate({}))))
        except (ParseError, MeasureError) as e:
            got.append(f"{type(e).__name__} {getattr(e, 'needs_new_process', '')}: {e}")
    return got


@pytest.mark.parametrize("included", [False, True], ids=["card", "included_card"])
def test_a_process_that_ran_interp_loads_no_transient_deck_without_it(tmp_path, included):
    """A deck with ``.options interp`` interpolates every transient, in ``ngspice -b`` and in zoaf alike (both
    transients: 501 points). After it, ngspice 39 interpolates every transient of the process, another deck's too
    (a transient deck then measured 2% off its ``ngspice -b`` values): such a deck is refused there with a new
    process asked for (the pools start one); a deck without transients still loads. The card counts in an
    included file too (it was looked for in the deck's own text only, and the next deck ran interpolated)."""
    from fresh import in_fresh_process

    card = ".options interp\n"
    if included:
        (tmp_path / "opts.inc").write_text(card)
        card = ".include opts.inc\n"
    deck = tmp_path / "interp.cir"
    deck.write_text(_INTERP.format(card=card, turn_on="echo on"))
    with_card, again, tran, ac = in_fresh_process(_interp_then_others, deck)
    assert with_card == again == "True" and ac == "True", (with_card, again, ac)
    assert tran.startswith("ParseError True: ") and "rc_tran_stats.cir: this process ran a deck with `interp`" in tran


def test_a_goto_loop_of_the_control_block_runs_at_every_sizing():
    """``goto`` jumps back to its ``label`` through the commands ngspice has stored: replayed command by command, the
    second sizing's ``goto`` found the first sizing's label and ran everything since again, without end (a worker
    spent its whole time limit on every sizing). Such a deck runs whole, as ``ngspice -b`` runs it."""
    deck = DECKS / "control_goto.cir"
    code = ("import json\nfrom zoaf.spice import SpiceSession\n"
            f"with SpiceSession({str(deck)!r}) as s:\n"
            "    print(json.dumps([s.evaluate(v) for v in ({}, {'r1': 2000.0}, {})]))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT)
    got = json.loads(out.stdout.splitlines()[-1])
    nl = Netlist.read(deck)
    assert got == [run_batch(nl.with_params(v)) for v in ({}, {"r1": 2000.0}, {})]
    assert got[1]["acc"] == 1.5 and got[0]["acc"] == 2.0


_SP = ("RC two-port\n.param r1=50\nV1 in 0 dc 0 ac 1 portnum 1 z0 50\nV2 out 0 dc 0 ac 0 portnum 2 z0 50\n"
       "R1 in out {{r1}}\nC1 out 0 1p\n{body}.end\n")


@pytest.mark.parametrize("form", ["find vm(s_1_1) at=1g", "when vdb(s_2_1)=-6", "rms vm(s_1_1)"])
def test_a_meas_sp_command_of_a_form_that_crashes_ngspice_is_refused_in_one_line(tmp_path, form):
    """``meas sp x find ...`` (``when``, ``rms``, ``integ``, ``trig``) crashes ngspice 39: ``ngspice -b`` with a
    segmentation fault, and zoaf's worker with it (the command was replayed as written). Refused with the line and
    the way out, ``meas ac`` on the S-parameter plot, which ``ngspice -b`` runs."""
    deck = tmp_path / "sp.cir"
    deck.write_text(_SP.format(body=f".control\nsp lin 100 1meg 10g\nmeas sp x {form}\nprint x\n.endc\n"))
    assert _ngspice_b(deck).returncode in (-11, 139)
    with pytest.raises(InputError) as e:
        Netlist.read(deck)
    message = str(e.value)
    assert "\n" not in message and message.startswith(f"{deck}:9: meas x: ") and "crashes ngspice" in message
    assert f"`meas ac x {form}`" in message
    deck.write_text(deck.read_text().replace("meas sp", "meas ac"))
    assert re.search(r"^x\s+=", _ngspice_b(deck).stdout, re.M)


def test_a_meas_sp_card_of_a_form_that_crashes_ngspice_is_noted():
    """The same forms as ``.meas sp`` cards crash ``ngspice -b`` too; zoaf runs them as ``meas ac`` on the sp plot
    (its design, README), and ``zoaf check`` now says that a run by hand crashes, with the fix. The forms ngspice
    runs as cards stay cards: ``tests/fidelity/sp_meas_forms.cir`` (a ``param=`` on them got no value before)."""
    deck = DECKS / "sp_meas_forms.cir"
    nl = Netlist.from_text(deck.read_text().replace("s21min min vdb(s_2_1)", "s21min find vdb(s_2_1) at=1g"), deck)
    assert [n.split(": ", 1)[0] for n in nl.notes] == [f"{deck}:9"] and "segmentation fault" in nl.notes[0]
    assert "`meas ac s21min find vdb(s_2_1) at=1g`" in nl.notes[0]
    assert [m.name for m in nl.measures if m.runs_as_ac] == ["s21min"]


@pytest.mark.parametrize("picker", ["inc/pick.inc", "pick.inc"])
def test_a_relative_lib_line_in_an_included_file_is_refused_in_one_line(tmp_path, picker):
    """ngspice 39 opens a ``.lib`` file named in an ``.include``d file from the deck's folder, not from the included
    file's (``.include`` lines there are read from the included file's folder). zoaf read and checked
    ``inc/lib/r.lib`` (r1=7k) where ``ngspice -b`` simulated ``lib/r.lib`` (r1=3k), and a session, which loads the
    deck from its own working folder, found no library at all. Refused with the line and the way out."""
    for where, value in (("lib/r.lib", "3k"), ("inc/lib/r.lib", "7k")):
        (tmp_path / where).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / where).write_text(f".lib s\n.param r1={value}\n.endl s\n")
    (tmp_path / picker).write_text(".lib 'lib/r.lib' s\n")
    deck = tmp_path / "deck.cir"
    deck.write_text(f"which library\n.param rl=1g\nV1 a 0 1\nR1 a 0 {{r1}}\nRl a 0 {{rl}}\n.include {picker}\n.op\n"
                    ".control\nrun\nlet r = -1/i(v1)\nset numdgt=15\nprint r\n.endc\n.end\n")
    (tmp_path / "deck.toml").write_text('[parameters]\nrl = { lo = "1meg", hi = "1g" }\n[measures]\nr = {}\n'
                                        '[objectives]\nf = { maximize = "r" }\n')
    assert re.search(r"^r = 2\.99999\d+e\+03", _ngspice_b(deck).stdout, re.M)
    with pytest.raises(InputError, match=f"^{re.escape(str(tmp_path / picker))}:1: .lib lib/r.lib: ngspice 39 "):
        Netlist.read(deck)
    r = subprocess.run([sys.executable, "-m", "zoaf", "check", str(deck)], capture_output=True, text=True,
                       cwd=tmp_path, timeout=300)
    shown = (r.stdout + r.stderr).strip()
    assert r.returncode == 2 and "\n" not in shown and "Traceback" not in shown, shown
    assert f"{tmp_path / picker}:1: .lib lib/r.lib: ngspice 39 opens a .lib file named in an included file" in shown
    (tmp_path / picker).write_text(f".lib '{tmp_path / 'lib/r.lib'}' s\n")       # an absolute path: as by hand
    with SpiceSession(Netlist.read(deck)) as s:
        got = s.evaluate({})
    assert got["r"] == pytest.approx(run_batch(deck)["r"], rel=1e-12) and got["r"] == pytest.approx(3e3, rel=1e-4)


def test_a_gaussian_trrandom_source_is_refused_in_one_line(tmp_path):
    """A Gaussian ``trrandom`` source draws its values in pairs, and ngspice 39 keeps the second of a pair for the
    next draw, in the process: with ``.options seed`` every ``ngspice -b`` run draws the same values, while a
    session's sizings alternated between two results (the same sizing twice: two values), and no command draws from
    that generator to clear it. Refused with the line; ``trrandom_seeded.cir`` runs the other kinds."""
    deck = tmp_path / "gauss.cir"
    deck.write_text("RC with Gaussian noise\n.param r1=1k c1=1n\nV2 b 0 dc 0 trrandom(2 100n 0 0.5 0.2)\n"
                    "R2 b ob {r1}\nC2 ob 0 {c1}\n.options seed=42\n.tran 10n 10u\n.meas tran vb avg v(ob)\n"
                    ".save all\n.end\n")
    printed = {re.search(r"^vb\s+=\s+(\S+)", _ngspice_b(deck).stdout, re.M).group(1) for _ in range(2)}
    assert len(printed) == 1, printed
    with pytest.raises(InputError) as e:
        Netlist.read(deck)
    message = str(e.value)
    assert "\n" not in message and message.startswith(f"{deck}:3: a Gaussian trrandom source (type 2)"), message


@pytest.mark.parametrize("stop, body", [
    ("exit", "repeat 3\n  ac dec 20 1k 100meg\n  let k = k + 1\n  print k\n  exit\nend\n"),
    ("quit", "ac dec 20 1k 100meg\nlet k = 1\nprint k\nif k > 0\n  quit\nend\nlet k = 3\nprint k\n"),
])
def test_a_quit_inside_an_if_or_loop_block_is_refused_in_one_line(tmp_path, stop, body):
    """``ngspice -b`` stops at a ``quit``/``exit`` when it comes to it: ``k = 1`` is all it prints. zoaf replays the
    block without it and ran on (three loop passes, the commands after the ``if``): it reported ``k = 3``. Refused
    with the line; a ``quit`` outside such blocks ends zoaf's replay there too (``control_quit_midway.cir``)."""
    deck = tmp_path / "quit.cir"
    deck.write_text("RC\n.param r1=1k\nV1 in 0 dc 0 ac 1\nR1 in out {r1}\nC1 out 0 1n\n.control\nlet k = 0\n"
                    f"set numdgt=15\n{body}.endc\n.end\n")
    assert re.findall(r"^k = (\S+)", _ngspice_b(deck).stdout, re.M) == ["1.000000000000000e+00"]
    line = 1 + deck.read_text().splitlines().index(f"  {stop}")
    with pytest.raises(InputError) as e:
        Netlist.read(deck)
    message = str(e.value)
    assert "\n" not in message and message.startswith(f"{deck}:{line}: {stop} inside an if/loop block"), message

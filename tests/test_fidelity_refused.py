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
from zoaf.ngbatch import spiceinit
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


def test_meas_ac_on_an_fft_spectrum_is_refused_and_meas_sp_runs(tmp_path):
    """On the spectrum plot an ``fft`` leaves, it is the other way round: ``meas sp ... find`` runs (zoaf refused
    ``tests/fidelity/gilbert_fft.cir``, which ``ngspice -b`` runs, naming ``meas ac``) and ``meas ac`` crashes
    ngspice 39. That one is refused with its line and ``meas sp`` as the fix."""
    text = (DECKS / "gilbert_fft.cir").read_text()
    deck = tmp_path / "mixer.cir"
    deck.write_text(text)
    assert re.search(r"^vif1\s+=", _ngspice_b(deck).stdout, re.M)
    deck.write_text(text.replace("meas sp vif1 find", "meas ac vif1 find"))
    assert _ngspice_b(deck).returncode in (-11, 139)
    with pytest.raises(InputError) as e:
        Netlist.read(deck)
    message = str(e.value)
    line = text.splitlines().index("meas sp vif1 find vifm at=1meg") + 1
    assert "\n" not in message and message.startswith(f"{deck}:{line}: meas vif1: `meas ac` on the spectrum plot")
    assert "`meas sp vif1 find vifm at=1meg`" in message


def test_a_meas_sp_card_of_a_form_that_crashes_ngspice_is_noted():
    """The same forms as ``.meas sp`` cards crash ``ngspice -b`` too; zoaf runs them as ``meas ac`` on the sp plot
    (its design, README), and ``zoaf check`` now says that a run by hand crashes, with the fix. The forms ngspice
    runs as cards stay cards: ``tests/fidelity/sp_meas_forms.cir`` (a ``param=`` on them got no value before)."""
    deck = DECKS / "sp_meas_forms.cir"
    nl = Netlist.from_text(deck.read_text().replace("s21min min vdb(s_2_1)", "s21min find vdb(s_2_1) at=1g"), deck)
    assert [n.split(": ", 1)[0] for n in nl.notes] == [f"{deck}:9"] and "segmentation fault" in nl.notes[0]
    assert "`meas ac s21min find vdb(s_2_1) at=1g`" in nl.notes[0]
    assert [m.name for m in nl.measures if m.runs_as_ac] == ["s21min"]


_LIB_LAYOUTS = {   # file -> text; the deck includes "pick", and lib/r.lib (3k) is what ngspice -b opens
    "included": {"inc/pick.inc": ".lib lib/r.lib s\n", "inc/lib/r.lib": ".lib s\n.param r1=7k\n.endl s\n"},
    "nested": {"inc/pick.inc": "* one level down\n.include sub/two.inc\n", "inc/sub/two.inc": ".lib 'lib/r.lib' s\n",
               "inc/sub/lib/r.lib": ".lib s\n.param r1=7k\n.endl s\n"},
    "beside": {"pick.inc": ".lib lib/r.lib s\n"},
    "library": {"pick.inc": ".lib libs/l.lib top\n", "libs/l.lib": ".lib top\n.include in/li.inc\n.endl top\n",
                "libs/in/li.inc": ".lib r.lib s\n", "libs/r.lib": ".lib s\n.param r1=3k\n.endl s\n",
                "libs/in/r.lib": ".lib s\n.param r1=7k\n.endl s\n", "lib/r.lib": ".lib s\n.param r1=5k\n.endl s\n"},
}


@pytest.mark.parametrize("whole", [False, True], ids=["session", "whole_deck"])
@pytest.mark.parametrize("layout", list(_LIB_LAYOUTS))
def test_a_relative_lib_line_in_an_included_file_opens_the_file_ngspice_b_opens(tmp_path, layout, whole):
    """ngspice 39 (from a working folder without the file) opens a ``.lib`` file named in an ``.include``d file, at
    any depth, from the deck's folder, and one in a library's section or a file it includes from that library's
    folder; an ``.include`` from the including file's folder. zoaf refused such lines (a session, which loads the
    deck line by line, found no library); it now checks the file ngspice -b opens and simulates it, over several
    sizings, on both the session's paths, with the deck in a folder whose name has a blank."""
    folder = tmp_path / "a deck"
    for name, text in {"lib/r.lib": ".lib s\n.param r1=3k\n.endl s\n", **_LIB_LAYOUTS[layout]}.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    deck = folder / "deck.cir"
    pick = "pick.inc" if "pick.inc" in _LIB_LAYOUTS[layout] else "inc/pick.inc"
    deck.write_text(f"which library\n.param rl=1g\nV1 a 0 1\nR1 a 0 {{r1}}\nRl a 0 {{rl}}\n.include {pick}\n.op\n"
                    f".control\n{'.options reltol=1e-3' if whole else ''}\nrun\nlet r = -1/i(v1)\nset numdgt=15\n"
                    "print r\n.endc\n.end\n")
    nl = Netlist.read(deck)
    assert bool(nl.faithful_reasons) == whole
    with SpiceSession(nl) as s:
        for rl in (1e9, 1e4, 1e9):
            sized = folder / "sized.cir"
            sized.write_text(nl.with_params({"rl": rl}))
            want = run_batch(sized)["r"]
            assert s.evaluate({"rl": rl})["r"] == pytest.approx(want, rel=1e-12)
    assert want == pytest.approx(3e3, rel=1e-4)
    run = tmp_path / "run"                              # best.cir, elsewhere, with its .spiceinit (spiceinit)
    run.mkdir()
    (run / "best.cir").write_text(nl.with_params({"rl": 1e4}))
    (run / ".spiceinit").write_text(spiceinit(nl.lib_folder))
    by_hand = subprocess.run(["ngspice", "-b", "best.cir"], cwd=run, capture_output=True, text=True, timeout=120)
    assert float(re.search(r"^r = (\S+)", by_hand.stdout, re.M).group(1)) == pytest.approx(3e3 * 1e4 / 13e3, rel=1e-12)


def test_a_name_a_session_would_find_in_the_decks_folder_first_is_refused_in_one_line(tmp_path):
    """Where an included file's ``.lib`` line makes the session look in the deck's folder, every relative name of
    an included file is looked for there first: one that ngspice -b opens from its own folder but that also exists
    in the deck's is refused with its line."""
    for name, text in {"lib/r.lib": ".lib s\n.param r1=3k\n.endl s\n", "m.inc": "* the deck's\n",
                       "inc/pick.inc": ".lib lib/r.lib s\n.include m.inc\n", "inc/m.inc": "* its own\n"}.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    deck = tmp_path / "deck.cir"
    deck.write_text("two m.inc\nV1 a 0 1\nR1 a 0 {r1}\n.include inc/pick.inc\n.op\n.end\n")
    with pytest.raises(InputError) as e:
        Netlist.read(deck)
    assert "\n" not in str(e.value) and str(e.value).startswith(f"{tmp_path / 'inc/pick.inc'}:2: .include m.inc: ")


_GAUSS = "V2 b 0 dc 0 trrandom(2 100n 0 0.5 0.2)\n"


@pytest.mark.parametrize("where, files, line", [
    ("gauss.cir", {}, 3),
    ("gauss.cir", {"type": "V2 b 0 dc 0 trrandom({gtype} 100n 0 0.5 0.2)\n"}, 3),    # numparam makes it 2: Gaussian
    ("noise.inc", {"noise.inc": f"* in a subcircuit\n.subckt src b\n{_GAUSS}.ends\n"}, 3),
    ("noise.lib", {"noise.lib": ".lib gauss\nV2 b 0 dc 0\n+ trrandom(2 100n 0 0.5 0.2)\n.endl\n"}, 2),
], ids=["deck", "expression", "included", "lib_section"])
def test_a_gaussian_trrandom_source_is_refused_in_one_line(tmp_path, where, files, line):
    """A Gaussian ``trrandom`` source draws its values in pairs, and ngspice 39 keeps the second of a pair for the
    next draw, in the process: with ``.options seed`` every ``ngspice -b`` run draws the same values, while a
    session's sizings alternated between two results (the same sizing twice: two values), and no command draws from
    that generator to clear it. Refused with the line, in the deck and (it was not) in an included file or a
    ``.lib`` section; ``trrandom_seeded.cir`` runs the other kinds."""
    gauss = files.pop("type", _GAUSS)
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    source = {"gauss.cir": gauss, "noise.inc": ".include noise.inc\nX1 b src\n", "noise.lib": ".lib noise.lib gauss\n"}
    deck = tmp_path / "gauss.cir"
    deck.write_text(f"RC with Gaussian noise\n.param r1=1k c1=1n gtype=2\n{source[where]}"
                    "R2 b ob {r1}\nC2 ob 0 {c1}\n.options seed=42\n.tran 10n 10u\n.meas tran vb avg v(ob)\n"
                    ".save all\n.end\n")
    printed = {re.search(r"^vb\s+=\s+(\S+)", _ngspice_b(deck).stdout, re.M).group(1) for _ in range(2)}
    assert len(printed) == 1, printed
    with pytest.raises(InputError) as e:
        Netlist.read(deck)
    message = str(e.value)
    assert "\n" not in message and message.startswith(f"{tmp_path / where}:{line}: a Gaussian trrandom source"), message


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


@pytest.mark.parametrize("card", [".param x=3 $x=4", ".param x=3,$x=4", ".param x=3\t$x=4", ".param x=3 //x=4"])
def test_a_comment_ngspice_drops_from_a_netlist_line_is_dropped(tmp_path, card):
    """Outside ``.control`` ngspice drops a line from a ``$`` after a blank or a comma, whatever follows, and from
    ``//``: ``.param x=3 $x=4`` defines x=3. zoaf dropped only a ``$`` between blanks and read x=4 (the designer's
    sizing, and what the session was sent for it)."""
    deck = tmp_path / "c.cir"
    deck.write_text(f"comments\nV1 a 0 1\n{card}\nR1 a 0 {{x}}\n.op\n.control\nrun\nlet r = -1/i(v1)\nprint r\n"
                    ".endc\n.end\n")
    nl = Netlist.read(deck)
    assert nl.params == {"x": "3"}
    with SpiceSession(nl) as s:
        assert s.evaluate(nl.check_params({"x": 3.0}))["r"] == pytest.approx(run_batch(deck)["r"], rel=1e-12)


def test_an_include_of_a_dollar_name_is_refused_as_ngspice_b_fails_it(tmp_path):
    """``.include $HOME/x.inc``: the name is a comment for ngspice (``Error: .include filename missing``, a fatal
    error), where zoaf read, checked and simulated the file ``$HOME/x.inc`` beside the deck. Refused in one line;
    quoted, it is that file for both."""
    (tmp_path / "$HOME").mkdir()
    (tmp_path / "$HOME/x.inc").write_text(".param x=5\n")
    deck = tmp_path / "d.cir"
    deck.write_text("dollar\nV1 a 0 1\nR1 a 0 {x}\n.include $HOME/x.inc\n.op\n.end\n")
    assert "filename missing" in (_ngspice_b(deck).stdout + _ngspice_b(deck).stderr)
    with pytest.raises(InputError) as e:
        Netlist.read(deck)
    assert "\n" not in str(e.value) and str(e.value).startswith(f"{deck}:4: .include needs a file name"), e.value
    deck.write_text(deck.read_text().replace("$HOME/x.inc", '"$HOME/x.inc"'))
    assert [f.path for f in Netlist.read(deck).includes] == [tmp_path / "$HOME/x.inc"]


@pytest.mark.parametrize("title, told", [(".param r1=5k", "title line is missing"),
                                         (".MEASURE ac f3 when vdb(out)=-3", "title line is missing"),
                                         (".include x.inc", "*include x.inc"),
                                         (".lib x.lib tt", "*lib x.lib tt"),
                                         (".subckt lpf in out", "Mismatch of .subckt")])
def test_a_title_line_ngspice_reads_as_a_card_is_refused_in_one_line(tmp_path, title, told):
    """ngspice reads a first line that starts with ``.param``/``.meas`` as a card and stops ("title line is
    missing!"), opens the file of an ``.include`` or ``.lib`` there (the deck runs with its values; zoaf took a
    ``.lib`` line for a title, unchecked, and a session looked for its file elsewhere), a ``.subckt`` opens a block:
    zoaf took each line as the title, so the session failed with that reason alone or "Could not find include file
    x.inc" (the path not rewritten) where ``ngspice -b`` ran. Refused with line 1 and why; a blank first, a comment
    or ``.title`` is a title for both."""
    (tmp_path / "x.inc").write_text(".param r1=2k\nR9 out 0 3k\n")
    (tmp_path / "x.lib").write_text(".lib tt\n.param r1=2k\n.endl tt\n")       # read too: "*lib x.lib tt" the title
    body = "\n.param r1=1k\nV1 in 0 dc 0 ac 1\nR1 in out {r1}\nC1 out 0 1n\n.ac dec 20 1k 100meg\n.save v(out)\n" \
           ".meas ac f3 when vdb(out)=-3\n.end\n"
    deck = tmp_path / "t.cir"
    deck.write_text(title + body)
    assert told in (_ngspice_b(deck).stdout + _ngspice_b(deck).stderr)
    with pytest.raises(InputError) as e:
        Netlist.read(deck)
    message = str(e.value)
    assert "\n" not in message and message.startswith(f"{deck}:1: the title line starts with .") and \
        title.lower().startswith(message.split()[6].rstrip(":")) and "refused" in message, message
    for fine in (" " + title, "* " + title, ".title " + title):
        deck.write_text(fine + body)
        assert Netlist.read(deck).params == {"r1": "1k"}


@pytest.mark.parametrize("where, line", [("inc", 1), ("deck", 3)])
def test_a_byte_order_mark_starting_a_line_is_refused_with_its_file_and_line(tmp_path, where, line):
    """A UTF-8 BOM (Windows editors write one) at the start of an included file: ``ngspice -b`` reads its three bytes
    as part of the card (``___.param r1=2k``: "unknown device type", so ``r1`` is undefined); a session failed with
    ``cannot read the card '___.param r1=2k'``, naming neither the file nor the mark. Refused with the file, its
    line and why, wherever a line starts with one; before the deck's title it is part of the title, for both."""
    (tmp_path / "x.inc").write_text("\ufeff.param r1=2k\n" if where == "inc" else ".param r1=2k\n", encoding="utf-8")
    deck = tmp_path / "d.cir"
    deck.write_text("\ufeffbom\n.include x.inc\n" + ("\ufeff" if where == "deck" else "") +
                    "V1 in 0 1\nR1 in out {r1}\nR2 out 0 1k\n.op\n.print dc v(out)\n.end\n", encoding="utf-8")
    told = _ngspice_b(deck).stdout + _ngspice_b(deck).stderr
    assert ("Undefined parameter [r1]" if where == "inc" else "unknown device type") in told, told
    with pytest.raises(InputError) as e:
        Netlist.read(deck)
    file = tmp_path / "x.inc" if where == "inc" else deck
    assert "\n" not in str(e.value) and str(e.value).startswith(f"{file}:{line}: the line starts with a UTF-8 "
                                                                f"byte-order mark (U+FEFF)"), e.value


def test_a_byte_order_mark_atop_a_lib_file_read_by_section_is_no_refusal(tmp_path):
    """ngspice reads only the section of a ``.lib file section`` line: a BOM at the top of the file is outside it and
    ``ngspice -b`` runs the deck; so does zoaf, with the same measures."""
    (tmp_path / "c.lib").write_text("\ufeff" + (DECKS / "corners.lib").read_text(), encoding="utf-8")
    deck = tmp_path / "d.cir"
    deck.write_text((DECKS / "lib_section_named_param.cir").read_text().replace("'corners.lib'", "c.lib"))
    nl = Netlist.read(deck)
    with SpiceSession(nl) as s:
        assert s.evaluate({"ss": 3e-6}) == run_batch(nl.with_params({"ss": 3e-6}))


@pytest.mark.parametrize("cards", [".sens v(a)\n.disto dec 5 1k 1meg\n", ".disto dec 5 1k 1meg\n.sens v(a)\n"])
def test_a_meas_card_beside_sens_and_disto_names_the_plot_ngspice_b_measures(tmp_path, cards):
    """``.ac`` with ``.sens`` and ``.disto``: ``ngspice -b`` runs them in its analysis table's order, so the plot it
    measures on is the ``.sens`` one whichever card comes last (``$curplot`` after ``run`` is ``sens2``), and the
    ``.meas ac`` card prints nothing. The refusal named the ``.sens`` without saying the cards' order does not
    matter, which read as a mistake where ``.disto`` comes last."""
    deck = tmp_path / "sd.cir"
    deck.write_text(f"sd\n.param r1=1k\nV1 in 0 dc 1 ac 1 distof1 0.1\nR1 in a {{r1}}\nR2 a 0 2k\nD1 a 0 dd\n"
                    f".model dd d is=1e-12\n.save all\n.ac dec 5 1k 1meg\n{cards}.meas ac g find vdb(a) at=10k\n"
                    ".control\nrun\necho plot=$curplotname\n.endc\n.end\n")
    assert "plot=Sensitivity Analysis" in _ngspice_b(deck).stdout
    with pytest.raises(InputError) as e:
        Netlist.read(deck)
    told = str(e.value)
    assert "\n" not in told and told.startswith(f"{deck}:12: .meas ac g: ") and "(a .sens" in told, told
    assert ("whatever the order of the cards" in told) == cards.endswith("disto dec 5 1k 1meg\n"), told


@pytest.mark.parametrize("params, shown", [
    (".param r1=1k, c1=1n", ".param r1=1k,:"),
    (".param c1=1n r1='max(1k, 500)',c2=1p", ".param r1='max(1k, 500)',:"),
    (".param c1=1n r1=1k,", ".param r1=1k,:"),
])
def test_a_param_value_followed_by_a_comma_is_refused_in_one_line(tmp_path, params, shown):
    """``.param r1=1k, c1=1n``: ngspice 39 never returns from reading it (``ngspice -b`` ran past its time limit,
    and so did a session's load, which no time limit covers: ``zoaf check`` hung); so for a comma after the last of
    several values. Refused with the line; a comma after a blank, inside a function's parentheses, or after a line's
    only value (``.param x=3,$x=4``: ``test_a_comment_ngspice_drops_from_a_netlist_line_is_dropped``) is read, as
    ``ngspice -b`` reads it."""
    text = ("RC\n{p}\nV1 in 0 dc 0 ac 1\nR1 in out {{r1}}\nC1 out 0 {{c1}}\n.save all\n.ac dec 20 1k 100meg\n"
            ".meas ac f3 when vdb(out)=-3\n.end\n")
    deck = tmp_path / "comma.cir"
    deck.write_text(text.format(p=params))
    (tmp_path / ".spiceinit").write_text(spiceinit(tmp_path))
    with pytest.raises(subprocess.TimeoutExpired):
        subprocess.run(["ngspice", "-b", str(deck)], cwd=tmp_path, capture_output=True, timeout=5)
    with pytest.raises(InputError) as e:
        Netlist.read(deck)
    message = str(e.value)
    assert "\n" not in message and message.startswith(f"{deck}:2: {shown} ngspice 39 never returns"), message
    deck.write_text(text.format(p=".param r1={max(1k,500)} , c1=1n"))
    assert Netlist.read(deck).params == {"r1": "{max(1k,500)}", "c1": "1n"}
    assert run_batch(deck)["f3"] > 1e5


_TWO_SINES = ("two sines\n.param k=0.9\nvac1 1 0 dc 0 sin(0 1 1k 0 0)\nvac2 2 0 dc 0 sin(0 1.2 0.9k 0 0)\n"
              "R1 1 0 100k\nR2 2 0 100k\n.tran 10u 5m\n{card}\n.meas tran ok find v(2) at=1m\n.end\n")


@pytest.mark.parametrize("card", [".meas tran a when v(1)=par('k*v(2)')", ".measure tran a find v(2) at=par('1m')",
                                  ".meas tran a trig v(1) val=par('0.5') rise=1 targ v(2) val=0.5 rise=1"])
def test_a_par_after_an_equals_of_a_meas_card_is_refused_in_one_line(tmp_path, card):
    """``par()`` is read as what a card measures (``when par('v(1)-k*v(2)')=0``, ``find par(...)``), but after an
    ``=`` ngspice 39 garbles the card and loads nothing ("unimplemented control card" on a card of ``pa_00``s):
    zoaf's load failed with that card and no line. Refused before, with the line and the form that works."""
    deck = tmp_path / "par.cir"
    deck.write_text(_TWO_SINES.format(card=card))
    run = _ngspice_b(deck)
    assert not re.search(r"^ok\s+=", run.stdout, re.M) and "error" in (run.stdout + run.stderr).lower()
    with pytest.raises(InputError) as e:
        Netlist.read(deck)
    message = str(e.value)
    assert "\n" not in message and message.startswith(f"{deck}:8: .meas a: ngspice 39 cannot read `par(`"), message
    assert "when par(" in message


def test_a_meas_value_written_as_an_expression_is_noted_as_ngspice_reads_it():
    """ngspice 39 reads the value of ``at=``, ``val=``, ``from=``, ``to=``, ``td=`` and ``when x=`` as one number: an
    unquoted expression that starts with a number is that number (``0.5*1.8`` is 0.5, ``2*tau`` is 2 s), and in
    ``when`` one of a vector is 0 (``v(half)*0.9``; in a ``meas`` command, ``adc-3`` too: Xschem benches' -3 dB
    point measured the unity-gain frequency). No word of it by hand, nor in zoaf, which measures the same
    (``test_deck_matches_ngspice_b[meas_misread_values]``): each such card and command is noted with the fix."""
    nl = Netlist.read(DECKS / "meas_misread_values.cir")
    assert [int(n.split(":")[1]) for n in nl.notes] == [20, 9, 11, 13, 15, 16], nl.notes
    assert all("\n" not in n and "ngspice 39 reads `" in n for n in nl.notes)
    assert "when v(out)='0.5*1.8'" in nl.notes[1] and "when par('v(out)-(v(half)*0.9)')=0" in nl.notes[2]
    with pytest.raises(MeasureError) as e:                   # t_half (read as 0) and v2tau (2 s) measure nothing
        run_batch(nl.path)
    got = e.value.measures
    assert "t_half" not in got and "v2tau" not in got and got["t_mid"] < got["t_mid_q"]
    assert got["t_cmd"] == pytest.approx(got["t_mid_q"], rel=1e-6)             # 0.9*v(half) read as 0.9
    assert got["t_vec"] == pytest.approx(got["t_half_p"], rel=1e-6) != got["t_cmd"]   # 0.81, as a vector
    cs = Netlist.read(ROOT / "tests" / "compat" / "xschem_cs_files.cir").notes
    assert len(cs) == 1 and ":26: meas f3: ngspice 39 reads `when vdb(d)=adc-3` as `when vdb(d)=0`" in cs[0], cs


@pytest.mark.parametrize("measure, line", [(".ac dec 10 1 1meg\n.meas ac f3 when vdb(Net-(C1-Pad1))=-3", 8),
                                           (".control\nac dec 10 1 1meg\nmeas ac f3 when vdb(Net-(C1-Pad1))=-3\n"
                                            "print f3\n.endc", 9)])
def test_a_measure_of_a_node_named_with_a_parenthesis_is_refused_in_one_line(tmp_path, measure, line):
    """KiCad 5 named nets ``Net-(C1-Pad1)``: the circuit loads, but ngspice 39 finds no vector of such a node ("no
    such vector as v(net-(c1-pad1))"), and a ``when`` of it (a card's, a command's) printed f3 = 0 by hand, where
    zoaf's session gave no value. Refused in one line with the rename that works."""
    deck = tmp_path / "kicad5.cir"
    deck.write_text(".title KiCad schematic\n.param r1=1k\nR1 /in Net-(C1-Pad1) {r1}\nV1 /in GND dc 0 ac 1\n"
                    f"C1 Net-(C1-Pad1) GND 1u\n.save all\n{measure}\n.end\n")
    run = _ngspice_b(deck)
    assert "no such vector as v(net-(c1-pad1))" in run.stdout + run.stderr
    assert re.search(r"^f3\s+=\s+0\.0+e\+00", run.stdout, re.M), run.stdout      # a value, and a wrong one
    with pytest.raises(InputError) as e:
        Netlist.read(deck)
    message = str(e.value)
    assert "\n" not in message and message.startswith(f"{deck}:{line}: "), message
    assert "`vdb(net-(c1-pad1))`: ngspice 39 reads no node name with a parenthesis" in message

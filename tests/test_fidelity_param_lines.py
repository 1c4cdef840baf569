"""``.param`` lines outside the deck's own top level, as ``ngspice -b`` reads them: in an included file, a ``.lib``
section, a ``.subckt`` body (the deck's or an included file's) and a file a body includes. A comma right after one of
several values makes ngspice 39 hang there as on the deck's top level (refused with the line, by the one check the
deck's own lines use); a function (``.param f(x)=x*2``, which numparam reads as a ``.func``) runs there as it does
on the deck's own lines (it was refused as ".param needs name=value")."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from ngspice_marks import NEEDS_NGSPICE
from test_fidelity import _in_a_folder_of_its_own  # noqa: F401 (an autouse fixture)

from zoaf.errors import InputError
from zoaf.netlist import Netlist
from zoaf.ngbatch import spiceinit
from zoaf.spice import SpiceSession, run_batch

pytestmark = NEEDS_NGSPICE

_DECK = ("RC\n.param r1=1k c1=1n\n{top}\nV1 in 0 dc 0 ac 1\nR1 in out {{{r}}}\nC1 out 0 {{c1}}\n{body}.save all\n"
         ".ac dec 20 1k 100meg\n.meas ac f3 when vdb(out)=-3\n.end\n")
_COMMA = ".param ra=1k, rb=2k\n"
_BODY = ".subckt s a b\n{inner}R1 a b {{ra}}\n.ends\nX1 out 0 s\n"
#: place -> (the deck's line 3, the deck's lines before its analysis, the files beside it, where the line is).
PLACES = {
    "an included file": (".include p.inc", "", {"p.inc": "* p\n" + _COMMA}, "p.inc:2"),
    "a .lib section": (".lib p.lib tt", "", {"p.lib": "* p\n.lib tt\n" + _COMMA + ".endl tt\n"}, "p.lib:3"),
    "the deck's .subckt body": ("* none", _BODY.format(inner=_COMMA), {}, "rc.cir:8"),
    "an included .subckt body": (".include s.inc", "X1 out 0 s\n",
                                 {"s.inc": "* s\n" + _BODY.format(inner=_COMMA).replace("X1 out 0 s\n", "")},
                                 "s.inc:3"),
    "a file a body includes": (".include s.inc", "X1 out 0 s\n",
                               {"s.inc": "* s\n.subckt s a b\n.include p.inc\nR1 a b {ra}\n.ends\n",
                                "p.inc": "* p\n" + _COMMA}, "p.inc:2"),
}


def _deck(folder: Path, top: str, body: str, files: dict[str, str], r: str = "r1") -> Path:
    for name, text in files.items():
        (folder / name).write_text(text)
    (folder / ".spiceinit").write_text(spiceinit(folder))
    deck = folder / "rc.cir"
    deck.write_text(_DECK.format(top=top, body=body, r=r))
    return deck


@pytest.mark.parametrize("place", list(PLACES))
def test_a_param_comma_hangs_ngspice_wherever_the_line_is_and_is_refused_there(tmp_path: Path, place: str) -> None:
    """``ngspice -b`` never returns (a session's load, which no time limit covers, would hang with it); zoaf read
    such a line in an included file, a section or a body without a word. Refused with that file's line."""
    top, body, files, where = PLACES[place]
    deck = _deck(tmp_path, top, body, files)
    with pytest.raises(subprocess.TimeoutExpired):
        subprocess.run(["ngspice", "-b", str(deck)], cwd=tmp_path, capture_output=True, timeout=5)
    with pytest.raises(InputError) as e:
        Netlist.read(deck)
    told = str(e.value)
    assert "\n" not in told and told.startswith(f"{tmp_path / where}: .param ra=1k,: ngspice 39 never returns"), told


def test_a_param_comma_in_a_lib_section_ngspice_does_not_read_is_no_refusal(tmp_path: Path) -> None:
    """ngspice reads only the ``.lib`` line's section: a comma in another one runs, and is read, as by hand."""
    lib = "* p\n.lib tt\n.param ra=1k rb=2k\n.endl tt\n.lib ff\n" + _COMMA + ".endl ff\n"
    deck = _deck(tmp_path, ".lib p.lib tt", "", {"p.lib": lib})
    by_hand = run_batch(deck)["f3"]
    assert by_hand == pytest.approx(159155, rel=1e-2)             # 1/(2 pi RC)
    with SpiceSession(Netlist.read(deck)) as s:
        assert s.evaluate({})["f3"] == pytest.approx(by_hand, rel=6e-6)


@pytest.mark.parametrize("top, name", [(".include fn.inc", "fn.inc"), (".lib fn.lib tt", "fn.lib")])
def test_a_function_on_an_included_param_line_runs_as_by_hand(tmp_path: Path, top: str, name: str) -> None:
    """``.param f(x)=x*2`` in an included file or a section: ``ngspice -b`` defines the function; zoaf refused the
    deck (".param needs name=value"). Read now as the deck's own lines are: the function left to ngspice, the
    values beside it read (the included file's ``rx`` and ``ry`` are design variables)."""
    lines = ".param f(x)=x*2\n.param rx=500 g(a,b)=a+b ry=3\n"
    text = f"* functions\n{lines}" if name == "fn.inc" else f"* functions\n.lib tt\n{lines}.endl tt\n"
    deck = _deck(tmp_path, top, "", {name: text}, r="f(r1)")
    by_hand = run_batch(deck)["f3"]
    assert by_hand == pytest.approx(159155 / 2, rel=1e-2)         # R1 = f(1k) = 2k
    nl = Netlist.read(deck)
    assert {k: nl.params.get(k) for k in ("r1", "rx", "ry")} == (
        {"r1": "1k", "rx": "500", "ry": "3"} if name == "fn.inc" else {"r1": "1k", "rx": None, "ry": None})
    with SpiceSession(nl) as s:
        assert s.evaluate({})["f3"] == pytest.approx(by_hand, rel=6e-6)
        assert s.evaluate({"r1": 2e3})["f3"] == pytest.approx(run_batch(nl.with_params({"r1": 2e3}))["f3"], rel=6e-6)


def test_a_param_of_a_file_the_decks_own_body_includes_is_the_bodys(tmp_path: Path) -> None:
    """ngspice inlines a file a ``.subckt`` body includes, so its ``.param ra`` is the body's own; zoaf listed it as
    a top-level design variable (with its file), which ``--set ra=...`` would then have set where no device saw it."""
    body = ".subckt s a b\n.include p.inc\nR1 a b {ra}\n.ends\nX1 out 0 s\n"
    deck = _deck(tmp_path, "* none", body, {"p.inc": "* p\n.param ra=4k\n"})
    nl = Netlist.read(deck)
    assert "ra" not in nl.params and "ra" not in nl.param_files and set(nl.params) == {"r1", "c1"}
    by_hand = run_batch(deck)["f3"]     # the body's 4k to ground: DC gain 0.8, pole at 1/(2 pi (1k || 4k) 1n)
    pole = 159155 / 0.8
    assert by_hand == pytest.approx(pole * ((0.8 / 10 ** (-3 / 20)) ** 2 - 1) ** 0.5, rel=1e-2)
    with SpiceSession(nl) as s:
        assert s.evaluate({})["f3"] == pytest.approx(by_hand, rel=6e-6)

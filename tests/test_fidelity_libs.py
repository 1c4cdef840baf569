"""``.lib`` lines outside the deck: a design variable a library section defines again, as ngspice inlines it from an
included file or from a file a library and the deck both read, checked against ``ngspice -b`` over several sizings
in one session (sized decks written beside the deck: an included file's relative ``.lib`` opens from its folder)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from ngspice_marks import NEEDS_NGSPICE
from test_fidelity import _in_a_folder_of_its_own, _ngspice_b  # noqa: F401 (an autouse fixture)

from zoaf.errors import InputError
from zoaf.netlist import Netlist
from zoaf.spice import SpiceSession, run_batch

pytestmark = NEEDS_NGSPICE

_BODY = ("V1 a 0 1\nR1 a 0 {rv}\nR2 a 0 {rx}\nRl a 0 {rl}\n.op\n"
         ".control\nrun\nlet r = -1/i(v1)\nset numdgt=15\nprint r\n.endc\n.end\n")


def _write(folder: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)


def _equal_to_ngspice_b(nl: Netlist, sizings: list[dict[str, float]]) -> list[float]:
    got = []
    with SpiceSession(nl) as s:
        for values in sizings:
            sized = nl.path.parent / "sized.cir"
            sized.write_text(nl.with_params(values))
            want = run_batch(sized)["r"]
            got.append(s.evaluate(values)["r"])
            assert got[-1] == pytest.approx(want, rel=1e-12), values
    return got


@pytest.mark.parametrize("where", ["deck", "nested"])
def test_a_lib_section_an_included_file_reads_redefines_design_variables(tmp_path, where):
    """``sub/a.inc`` defines ``rx`` and reads section ``ss`` of ``c.lib`` (opened from the deck's folder), which sets
    ``rv`` and ``rx`` again and a PDK value of its own. ngspice simulates the section's values; zoaf's view kept the
    deck's ``rv=1k`` and the file's ``rx=2k`` (defaults, ``best.cir``: a sizing's measures were not its
    ``best.cir``'s). The section's values are the defaults now, its own ``pdk_k`` no design variable."""
    inc = ".include\tdeeper.inc\n" if where == "nested" else ".lib 'c.lib' ss\n"   # a tab, as ngspice reads it
    _write(tmp_path, {"c.lib": ".lib ss\n.param rv=3k rx=4k pdk_k=5\n.endl ss\n",
                      "sub/c.lib": ".lib ss\n.param rv=9k rx=9k\n.endl ss\n",
                      "sub/a.inc": f".param rx=2k\n{inc}", "sub/deeper.inc": ".lib\t'c.lib' ss\n"})
    deck = tmp_path / "deck.cir"
    deck.write_text(f"lib in an include\n.param rv=1k rl=10k\n.include sub/a.inc\n{_BODY}")
    nl = Netlist.read(deck)
    assert nl.params == {"rv": "3k", "rl": "10k", "rx": "4k"}, nl.params
    assert nl.param_files["rv"] == tmp_path / "c.lib"
    got = _equal_to_ngspice_b(nl, [{}, {"rv": 2e3}, {"rx": 5e3, "rl": 1e3}, {"rv": 3e3}])
    assert got[0] == pytest.approx(1 / (1 / 3e3 + 1 / 4e3 + 1 / 10e3)) and got[1] != got[0]


def test_a_file_a_library_and_the_deck_both_include_opens_its_lib_lines_from_each_ones_folder(tmp_path):
    """``inc/x.inc`` reads ``.lib r.lib s``: included by the deck, ngspice -b opens the deck's ``r.lib``; included by
    the library ``libs/l.lib``, the library's ``libs/r.lib`` (measured: both sections' values are simulated). zoaf
    walked the file once, with the first folder: the other ``r.lib`` was never read nor checked, and the session
    simulated another circuit than ngspice -b. A session looks in the deck's folder first (where the library's
    ``r.lib`` is another file): refused in one line, in either order."""
    _write(tmp_path, {"r.lib": ".lib s\n.param rv=3k\n.endl s\n", "libs/r.lib": ".lib s\n.param rx=7k\n.endl s\n",
                      "inc/x.inc": ".lib r.lib s\n", "libs/l.lib": ".lib top\n.include ../inc/x.inc\n.endl top\n"})
    for order in (".include inc/x.inc\n.lib libs/l.lib top\n", ".lib libs/l.lib top\n.include inc/x.inc\n"):
        deck = tmp_path / "deck.cir"
        deck.write_text(f"both\n.param rv=1k rx=1k rl=1g\n{order}{_BODY}")
        with pytest.raises(InputError) as e:
            Netlist.read(deck)
        assert "\n" not in str(e.value) and f"would open {tmp_path / 'r.lib'}" in str(e.value), e.value


def test_a_file_a_library_and_the_deck_both_include_is_checked_in_each(tmp_path):
    """The library's reading of ``inc/x.inc`` opens ``libs/r.lib``, which holds a ``.control`` block: refused, as
    when the library alone reads it (walked once from the deck first, it went unchecked)."""
    _write(tmp_path, {"r.lib": ".lib s\n.param rv=3k\n.endl s\n",
                      "libs/r.lib": ".lib s\n.control\necho hi\n.endc\n.endl s\n",
                      "inc/x.inc": ".lib r.lib s\n", "libs/l.lib": ".lib top\n.include ../inc/x.inc\n.endl top\n"})
    deck = tmp_path / "deck.cir"
    deck.write_text(f"both\n.param rv=1k rx=1k rl=1g\n.include inc/x.inc\n.lib libs/l.lib top\n{_BODY}")
    with pytest.raises(InputError, match=r"libs/r\.lib:2: a \.control block in an included file"):
        Netlist.read(deck)


@pytest.mark.parametrize("name", ['"sub//x.inc"', "'sub//x.inc'", '"sub/a $b.inc"', '"sub/a;b.inc"'])
def test_a_comment_inside_a_quoted_include_name_fails_as_in_ngspice_b(tmp_path, name):
    """ngspice 39 cuts a netlist line at ``//``, `` $`` and ``;`` inside quotes too: ``.include "sub//x.inc"`` names
    no file ("filename missing", a fatal error). zoaf refuses it in one line, never reading ``sub/x.inc``."""
    _write(tmp_path, {"sub/x.inc": ".param rv=3k\n", "sub/a $b.inc": ".param rv=3k\n", "sub/a;b.inc": ".param rv=3k\n"})
    deck = tmp_path / "deck.cir"
    deck.write_text(f"quoted\n.param rv=1k rx=1k rl=1g\n.include {name}\n{_BODY}")
    by_hand = _ngspice_b(deck)
    assert by_hand.returncode == 1 and ".include filename missing" in by_hand.stdout + by_hand.stderr
    with pytest.raises(InputError, match=rf"^{tmp_path / 'deck.cir'}:3: \.include needs a file name"):
        Netlist.read(deck)


@pytest.mark.parametrize("line", ['.lib "sub//c.lib" ss', ".lib sub//c.lib ss", '.lib "sub/c.lib" ss // a comment'])
def test_a_lib_line_keeps_its_slashes_as_ngspice_b_does(tmp_path, line):
    """ngspice 39 strips no ``//`` comment from a ``.lib`` line's names (``.lib "sub//c.lib" ss`` is ``sub/c.lib``;
    a third word is ignored): zoaf reads the same file and section."""
    _write(tmp_path, {"sub/c.lib": ".lib ss\n.param rv=3k\n.endl ss\n"})
    deck = tmp_path / "deck.cir"
    deck.write_text(f"lib slashes\n.param rv=1k rx=1k rl=1g\n{line}\n{_BODY}")
    nl = Netlist.read(deck)
    assert nl.params["rv"] == "3k"
    _equal_to_ngspice_b(nl, [{}, {"rx": 2e3}, {"rv": 5e3}])


def test_library_sections_that_each_read_the_next_twice_are_read_once_each(tmp_path):
    """Reading the ``.param``s of ``.lib`` sections followed every ``.lib`` line: 40 libraries whose section reads
    the next one's twice (through an included file too) made 2**40 readings (19 deep took 36 s), and ``zoaf
    check`` hung in its own process, before any sandbox or timeout. Each section is read once now."""
    depth = 40
    for i in range(depth):
        nxt = f".lib l{i + 1}.lib s\n.lib l{i + 1}.lib s\n.include i{i + 1}.inc\n"
        (tmp_path / f"l{i}.lib").write_text(f".lib s\n.param p{i}={i}\n{nxt}.endl s\n")
        (tmp_path / f"i{i + 1}.inc").write_text(f".lib l{i + 1}.lib s\n")
    (tmp_path / f"l{depth}.lib").write_text(f".lib s\n.param p{depth}={depth}\n.endl s\n")
    deck = tmp_path / "deck.cir"
    deck.write_text(f"diamonds\n.param p0=-1 p{depth}=-1\n.lib l0.lib s\nV1 a 0 1\nR1 a 0 1k\n.op\n.end\n")
    code = "import sys; from zoaf.netlist import Netlist; print(Netlist.read(sys.argv[1]).params)"
    r = subprocess.run([sys.executable, "-c", code, str(deck)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip() == str({"p0": "0", f"p{depth}": str(depth)})

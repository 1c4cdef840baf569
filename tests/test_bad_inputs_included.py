"""A numparam error inside an included file (an undefined name, a bad expression in a ``.param``) named no line, or
the deck's line of ngspice's number, another card: ngspice numbers an included file's lines its own way (from 1 per
``.include`` of the deck, blank lines left out, nested files counted in; a library's as they are in the file). The
error names the included file's ``file:line`` now, as the deck's own errors name theirs."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from zoaf import deckplaces
from zoaf.cli import app
from zoaf.netlist import Netlist

CORPUS = Path(__file__).parent / "bad_inputs"
BAD = ".param bad = {undefined_name * 2}\n"


def _deck(tmp_path: Path, extra: str, files: dict[str, str]) -> Path:
    """good.cir with ``extra`` after its ``.param`` line (its line 2), the ``files`` beside it, and its spec."""
    deck = tmp_path / "deck.cir"
    deck.write_text((CORPUS / "good.cir").read_text().replace(".param r1=1k c1=1n\n", f".param r1=1k c1=1n\n{extra}"))
    shutil.copy(CORPUS / "good.toml", tmp_path / "deck.toml")
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    return deck


def _error(deck: Path) -> str:
    r = CliRunner().invoke(app, ["check", str(deck)])
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.exit_code == 2 and len(lines) == 1, r.output
    return lines[0]


def test_an_undefined_name_in_an_included_file_names_its_line(tmp_path: Path) -> None:
    # ngspice's "line no. 4" is the included file's line 7 (three blank lines before it); zoaf named the deck's
    # line 4 (V1 ...), where nothing is wrong
    deck = _deck(tmp_path, ".include other.inc\n", {"other.inc": f"* included\n.param keep=1\n\n* c\n\n\n{BAD}"})
    batch = subprocess.run(["ngspice", "-b", str(deck)], capture_output=True, text=True, cwd=tmp_path)
    assert "Undefined parameter [undefined_name]" in batch.stderr and batch.returncode != 0    # ngspice's error too
    assert "Netlist line no. 4:" in batch.stderr
    assert _error(deck).endswith(f"loading {deck}: {tmp_path / 'other.inc'}:7: Undefined parameter [undefined_name]")


def test_the_decks_own_error_still_names_its_line(tmp_path: Path) -> None:
    deck = _deck(tmp_path, BAD, {})
    assert _error(deck).endswith(f"loading {deck}:3: Undefined parameter [undefined_name]")


@pytest.mark.parametrize("files, place", [
    ({"other.inc": "* x\n\n\n.param bad = {(1 +* 2}\n"}, "other.inc:4: Expression err: (1+*2}"),
    ({"other.inc": "* x\n\n.include nested.inc\n", "nested.inc": f"* n\n\n\n{BAD}"},
     "nested.inc:4: Undefined parameter [undefined_name]"),
    ({"other.inc": "* x\n\n.lib lib.lib tt\n", "lib.lib": f"* lib\n\n.lib tt\n\n{BAD}.endl tt\n"},
     "lib.lib:5: Undefined parameter [undefined_name]"),
])
def test_a_bad_expression_a_nested_file_and_a_library_section_name_their_line(tmp_path: Path, files: dict[str, str],
                                                                               place: str) -> None:
    deck = _deck(tmp_path, ".include other.inc\n", files)
    assert _error(deck).endswith(f"loading {deck}: {tmp_path}/{place}")


def test_ngspice_numbers_an_included_file_from_1_per_include_blank_lines_left_out(tmp_path: Path) -> None:
    files = {"a.inc": "* a\n\n.param a1=1\n", "b.inc": "\n\n.include c.inc\n* b\n.param b1=1\n",
             "c.inc": "\n.param c1=1\n"}
    deck = _deck(tmp_path, ".include a.inc\n\n.include b.inc\n", files)
    texts = {(tmp_path / n).resolve(): t for n, t in files.items()}
    nl = Netlist.read(deck)

    def at(n: int) -> set[tuple[str, int]]:
        return {(c.path.name, c.line) for c in deckplaces.numbered(nl.path, nl.text, texts, n)}
    # a.inc: "* a" 1, ".param a1" 2; b.inc: ".include c.inc" 1, c.inc's ".param c1" 2, ngspice's "* end of" 3,
    # "* b" 4, ".param b1" 5 (checked against ngspice -b: an undefined name there is "Netlist line no. 5")
    assert at(1) == {("b.inc", 3)} and at(2) == {("a.inc", 3), ("c.inc", 2)} and at(5) == {("b.inc", 5)}
    assert at(3) == at(4) == at(6) == set()

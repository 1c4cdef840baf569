"""The comment rules that reading a sky130 deck fast must keep: ``first_unquoted`` finds candidates by a regex
(a Python step per character made the sky130 library's reading 8x slower), and the ``.param`` reader skips the
cards it has no use for (``logical_lines(only=...)``). Both are pinned here against the per-character rule they
replace, on random lines of the characters that matter, and the netlist rules against ``ngspice -b``."""
from __future__ import annotations

import random
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from ngspice_marks import needs_ngspice

from zoaf.deckcheck import redirect_at
from zoaf.decktext import (_comment_starts, _netlist_comment_starts, first_unquoted, logical_lines, strip_comment,
                           tab_dollar_comment)
from zoaf.netlist import Netlist

#: The characters the comment, quote and redirect rules read, and some text.
_ALPHABET = ["a", "x", " ", "\t", "$", ";", "/", "//", '"', "'", ",", "<", ">", "=", "*", "+"]


def _per_character(s: str, found: Callable[[str, int], bool]) -> int | None:
    """The rule as it was written first: every character visited, quotes opened and closed."""
    quote = ""
    for i, c in enumerate(s):
        if quote:
            if c == quote:
                quote = ""
        elif c in "\"'":
            quote = c
        elif found(s, i):
            return i
    return None


def _lines(rng: random.Random, n: int) -> list[str]:
    return ["".join(rng.choice(_ALPHABET) for _ in range(rng.randrange(12))) for _ in range(n)]


def test_first_unquoted_finds_what_the_per_character_rule_finds() -> None:
    rng = random.Random(8)
    redirect = (lambda s, i: s[i] in "<>" and s[i + 1:i + 2] != "=")     # deckcheck's, before
    for s in _lines(rng, 20000):
        assert first_unquoted(s, _comment_starts, at=";$") == _per_character(s, _comment_starts), s
        assert first_unquoted(s, _netlist_comment_starts, at=";/$") == _per_character(s, _netlist_comment_starts), s
        assert redirect_at(s) == _per_character(s, redirect), s


@pytest.mark.parametrize("line, netlist, command", [
    (".param a=1 $a=5", ".param a=1 ", ".param a=1 $a=5"),        # '$' after a blank: a netlist comment
    (".param a=1 $\tx", ".param a=1 ", ".param a=1 "),              # '$' between blanks (a tab): on both
    (".param a=1,$x", ".param a=1,", ".param a=1,$x"),              # '$' after a comma: a netlist comment only
    (".include $HOME/x.inc", ".include ", ".include $HOME/x.inc"),
    ("r1 a b 1k //x", "r1 a b 1k ", "r1 a b 1k //x"),               # '//' is a netlist comment only
    ("echo a ; b", "echo a ", "echo a "),                           # ';' on both
    ("echo 'a ; b' $ c", "echo 'a ; b' ", "echo 'a ; b' "),         # quoted: not a comment
    ('.include "a;b//c $d.inc" ; x', '.include "a;b//c $d.inc" ', '.include "a;b//c $d.inc" '),
    ("echo \"a ; b", "echo \"a ; b", "echo \"a ; b"),               # a quote left open runs to the end
    ("x$y a$ b", "x$y a$ b", "x$y a$ b"),                           # '$' inside a word
])
def test_the_comment_rules(line: str, netlist: str, command: str) -> None:
    assert strip_comment(line, commands=False) == netlist
    assert strip_comment(line, commands=True) == command
    assert tab_dollar_comment(line) == ("$\t" in line)


def test_the_reader_of_some_cards_reads_them_as_the_whole_reading_does() -> None:
    """Continuations of a skipped card skipped with it (not joined to the card before), comment lines and blank
    lines between a card and its continuation passed over, a '+' line after the title its own line."""
    rng = random.Random(22)
    starts = [".param p=1 $ c", ".PARAM q=2", ".model m nmos", ".subckt s a", ".ends", "r1 a b 1", "+ w=1 ; c",
              "+ l=2", "* comment", "", "\f.param z=1", ".lib tt", ".endl", ".control", ".endc", "  + x=3 // y"]
    only = (".param", ".lib", ".endl", ".subckt", ".ends")
    for _ in range(3000):
        physical = [rng.choice(starts) + rng.choice(["", " ", " $ k", " ; k", " // k"]) for _ in range(12)]
        every = logical_lines(["title", *physical])
        kept = [ln for ln in every[1:] if ln.raw.lstrip()[:8].lower().startswith(only)]
        some = logical_lines(["title", *physical], only=only)
        assert [(ln.raw, ln.text, ln.lineno, ln.segments) for ln in some[1:]] \
            == [(ln.raw, ln.text, ln.lineno, ln.segments) for ln in kept], physical


_DECK = """comments as ngspice -b reads them
* a comment line: .param a=100
.param a=1 $a=5
.param b=2 //b=6
.param c=3 ;c=7
.param d=4
+ $d=8
.param e={a+b+c+d}
v1 1 0 dc {e}
r1 1 0 1k ; r1 1 0 2k
.control
op
print v(1) ; print v(1)*2
.endc
.end
"""


@needs_ngspice
def test_netlist_comments_against_ngspice(tmp_path: Path) -> None:
    """zoaf reads the values ngspice -b simulates: a, b, c, d are 1, 2, 3, 4, and v(1) is their sum."""
    deck = tmp_path / "comments.cir"
    deck.write_text(_DECK)
    nl = Netlist.read(deck)
    assert {k: nl.params[k] for k in "abcd"} == {"a": "1", "b": "2", "c": "3", "d": "4"}
    out = subprocess.run(["ngspice", "-b", str(deck)], capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert [float(v) for v in re.findall(r"^v\(1\) = (\S+)", out.stdout, re.M)] == [10.0], out.stdout

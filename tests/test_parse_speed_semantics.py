"""The comment rules that reading a sky130 deck fast must keep: ``first_unquoted`` finds candidates by a regex
(a Python step per character made the sky130 library's reading 8x slower), and the ``.param`` reader skips the
cards it has no use for (``logical_lines(only=...)``). Both are pinned here against the per-character rule they
replace, on random lines of the characters that matter, and the netlist rules against ``ngspice -b``. So are the
searches of every included file (a card at a line's start, a word in any case, a ``file=`` on a ``.model`` card, a
control character, a folder's files) against the regexes they replace, on random texts."""
from __future__ import annotations

import random
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from ngspice_marks import needs_ngspice

from zoaf import batchsaves, deckcheck, deckparse, decktext, readscope
from zoaf.deckcheck import redirect_at
from zoaf.decktext import (_comment_starts, _netlist_comment_starts, first_unquoted, logical_lines, strip_comment,
                           tab_dollar_comment)
from zoaf.meascards import SPEC_ASKS, Measure, unmeasurable_named
from zoaf.netlist import Netlist
from zoaf.ngcommands import has_conditional, has_interp_card

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


def test_a_line_without_a_comment_character_is_kept_whole_and_comment_lines_are_those_they_were() -> None:
    """``logical_lines`` strips no comment from a line with none of the characters either rule starts one at (a call
    less per line of a library), and tells comment lines (``*``, a leading form feed) as it did."""
    rng = random.Random(26)
    alphabet = [*_ALPHABET, "\f", "\v", "\x85", "b"]
    for s in ["".join(rng.choice(alphabet) for _ in range(rng.randrange(12))) for _ in range(20000)]:
        if decktext._COMMENT_CHARS.search(s) is None:
            assert strip_comment(s, True) == s == strip_comment(s, False), s
        stripped = s.lstrip()
        was = not stripped or stripped.startswith("*") or s.lstrip(" \t").startswith("\f")
        now = not stripped or stripped[0] == "*" or s[:1] in " \t\f" and s.lstrip(" \t")[:1] == "\f"
        assert was == now, s


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


#: Pieces of an included file's lines: blanks and line ends of every kind, the words the searches look for in both
#: cases, and characters re.IGNORECASE matches beyond what lower() maps ('\u017f' an 's', '\u0130' and '\u0131' an 'i').
_BLANKS = ["", " ", "\t", "\f", "\v", "\x85", "\u2028"]
_ENDS = ["\n", "\n", "\r\n", "\n\n", "\n+", "\v"]
_CARDS = ["", ".save", ".SAVE", ".probe", ".print", ".plot", ".four", "save", "SAVE", "\u017fave", "quit", "exit",
          ".opt", ".OPTIONS", ".if", ".ELSE", ".endif", ".elseif", ".meas", ".op", ".tf", ".model", ".MODEL", "+", "x"]
_WORDS = ["save", "savecurrents", "SaveCurrents", "\u017favecurrents", "seed", "SEED", "\u017feed", "interp", "=",
          "file", "FILE", "f\u0130le", "f\u0131le", "input_file", "'a b'", '"c"', "(", "x", "_", "op", "exit"]


def _texts(n: int, seed: int) -> list[str]:
    """Random texts of a few lines, each a blank, a card's word, and words between blanks and ``=``."""
    rng = random.Random(seed)

    def line() -> str:
        words = [rng.choice(_WORDS) + rng.choice(["", " ", " ", "\t", "=", " = "]) for _ in range(rng.randrange(5))]
        return rng.choice(_BLANKS) + rng.choice(_CARDS) + rng.choice(["", " ", "\t"]) + "".join(words)
    return ["".join(line() + rng.choice(_ENDS) for _ in range(rng.randrange(4))) for _ in range(n)]


def _found(pattern: str, flags: int = 0) -> Callable[[str], bool]:
    return lambda t: re.search(pattern, t, flags) is not None


#: Each search over the included files as it was (a ``^`` under re.M, re.IGNORECASE for a word), and as it is now.
_SEARCHES: list[tuple[str, Callable[[str], bool], Callable[[str], bool]]] = [
    ("limits_saves", lambda t: any(re.search(p, t) for p in (r"(?im)^\s*(?:\.save|\.probe|save)\b",
                                                             "(?i)savecurrents")),
     lambda t: batchsaves.limits_saves([t])),
    ("unsaved_node's", lambda t: any(re.search(p, t) for p in (
        r"(?im)^\s*(\.(save|probe|print|plot|four)|save\b|quit\b|exit\b)", "(?i)savecurrents")),
     lambda t: batchsaves.limits_saves([t]) or batchsaves._has_card(batchsaves._INCLUDED_SAVE, t)),
    ("batch_extra_saves'", _found(r"(?im)^\s*\.(save|probe)\b"),
     lambda t: batchsaves._has_card(batchsaves._HAS_SAVE, t)),
    ("unrun_analyses'", _found(r"(?im)^\s*\.(meas|print|plot|four|op\b|tf\b)"),
     lambda t: batchsaves._has_card(batchsaves._OUTPUT_CARD, t)),
    ("unseeded_draw's", lambda t: re.search(r"^\s*\.opt\w*\s(?:.*\s)?seed\s*=", t.lower(), re.M) is not None,
     lambda t: batchsaves._has_card(batchsaves._SEED_OPTION, t.lower())),
    ("has_conditional", _found(r"^[ \t]*\.(?:if|elseif|else|endif)\b", re.I | re.M), has_conditional),
    ("has_interp_card", _found(r"^[ \t]*\.opt\w*[ \t](?:[^\n]*[ \t])?interp\b", re.I | re.M),
     lambda t: has_interp_card([t])),
]


@pytest.mark.parametrize("name, was, now", _SEARCHES, ids=[s[0] for s in _SEARCHES])
def test_each_search_of_the_included_files_finds_what_it_found(name: str, was: Callable[[str], bool],
                                                                now: Callable[[str], bool]) -> None:
    """Searched after a newline (sre skips to each at memory speed), words in an ASCII text lower-cased: the same
    answers, on texts where each is found and missed hundreds of times."""
    texts = _texts(20000, seed=len(name))
    assert 20 < sum(map(was, texts)) < len(texts) - 20
    for t in texts:
        assert now(t) == was(t), t


def test_the_walk_finds_the_dot_lines_it_found() -> None:
    """The include walk's dot lines (its checks read each), with their continuation lines and offsets."""
    was = re.compile(r"^[ \t]*(\.[A-Za-z_]+)([^\n]*(?:\n[ \t]*\+[^\n]*)*)", re.M)
    for t in _texts(20000, seed=3):
        assert [(m.start(), *m.groups()) for m in deckcheck._DOT_LINE.finditer("\n" + t)] \
            == [(m.start(), *m.groups()) for m in was.finditer(t)], t


def test_the_files_model_cards_name_are_those_they_named(tmp_path: Path) -> None:
    """A file whose text holds no ``file=`` is passed over (a sky130 library's every one): each file a ``.model`` card
    names is still admitted, 'f\u0130le=' (which re.IGNORECASE takes for 'file=') too."""
    scope = readscope.ReadScope(tmp_path / "deck.cir")
    seen: list[tuple[str, str]] = []
    scope.admit = lambda where, how, path: seen.append((where, how))        # type: ignore[method-assign]
    some = 0
    for t in _texts(20000, seed=5):
        seen.clear()
        scope.model_files(tmp_path / "lib.inc", t)
        named = [(m.group(1).lower(), next(g for g in m.groups()[1:] if g is not None))
                 for card in readscope._MODEL.finditer(t) for m in readscope._FILE_PARAM.finditer(card.group(1))]
        assert [how for _, how in seen] == [f".model {word}={name}" for word, name in named if name], t
        some += bool(seen)
    assert some > 50


def test_control_characters_are_found_as_the_regex_found_them() -> None:
    rng = random.Random(11)
    chars = [chr(c) for c in range(1, 0x20)] + ["\x7f", "a", " ", "\xe9", "\u0130", "\u2028"] + ["b"] * 40
    for _ in range(20000):
        t = "".join(rng.choice(chars) for _ in range(rng.randrange(12)))
        bad = decktext._CONTROL.search(t)
        assert decktext.control_character(t) == (None if bad is None else
                                                 f"not a text file (control character {ord(bad.group()):#04x})"), t
        lines = t.split("\n")
        assert decktext.physical_lines(t) == [ln.removesuffix("\r") for ln in lines[:-1 if lines[-1] == "" else None]]


def test_a_folder_holds_what_its_parents_held() -> None:
    """The read scope's roots (absolute) hold a path where its parts begin with theirs, as ``Path.parents`` said."""
    rng = random.Random(13)

    def path() -> Path:
        return Path(rng.choice(["/", "//"]) + "/".join(rng.choice(["a", "b", "ab", "a b", ".."])
                                                       for _ in range(rng.randrange(4))))
    for _ in range(5000):
        p, roots = path(), tuple(path() for _ in range(rng.randrange(3)))
        assert readscope._beneath(p, roots) == any(p == r or r in p.parents for r in roots), (p, roots)


def _section_was(lines: list[str], section: str, path: Path) -> list[str]:
    """A ``.lib`` section as the fast path's reader found it before it indexed each file once: a search per line."""
    for start, ln in enumerate(lines):
        word, *rest = ln.split(None, 1)
        if word == ".lib" and deckcheck.include_args(word, "".join(rest)) == (None, section):
            end = next(i for i in range(start, len(lines)) if lines[i].startswith(".endl"))
            return lines[start + 1:end]
    raise ValueError(f"{path}: no .lib section {section}")


def test_a_library_read_once_gives_each_section_it_gave(tmp_path: Path) -> None:
    """``.lib`` lines naming one library read it once per deck (each had read and searched it whole: 500 sections,
    6 s); each section the lines it had, on random libraries (a section opened twice, ``.endl`` missing or left
    without a name, a ``.lib file section`` line inside one), or the same refusal."""
    rng = random.Random(17)
    words = [".lib a", ".lib b", ".lib c", ".lib x.lib a", ".endl", ".endl a", ".param p=1", "r1 1 0 1k", "* c"]
    lib = tmp_path / "x.lib"
    for _ in range(3000):
        lib.write_text("".join(rng.choice(words) + "\n" for _ in range(rng.randrange(14))))
        lines = decktext.texts(decktext.physical_lines(lib.read_text()))
        read = deckparse._Library.read(lib)
        for section in "abcd":
            try:
                was: list[str] | str = _section_was(lines, section, lib)
            except (ValueError, StopIteration):
                was = "refused"
            try:
                now: list[str] | str = read.section(section, lib)
            except ValueError:
                now = "refused"
            assert now == was, (lib.read_text(), section)


def test_a_deck_reading_many_sections_of_a_library_reads_it_once(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "c.lib").write_text("".join(f".lib s{k}\n.param p{k}={k}\n.endl s{k}\n" for k in range(50)))
    deck = ["t", *(f".lib c.lib s{k}" for k in range(50)), ".include c.lib", "r1 1 0 {p49}"]
    reads: list[Path] = []
    real = deckparse._Library.read
    monkeypatch.setattr(deckparse._Library, "read", classmethod(lambda cls, p: reads.append(p) or real(p)))
    got = deckparse.read_deck(deck, tmp_path)
    assert reads == [(tmp_path / "c.lib").resolve()]
    assert got.params == [(f"p{k}", str(k)) for k in range(50)] * 2 and got.lines[-1] == "r1 1 0 {p49}"


def test_a_name_only_cards_that_measure_nothing_give_is_found_as_it_was() -> None:
    """``unmeasurable_named`` looks each name up once (a search of every card per name, each computing whether it
    measures: 0.33 s for ``evaluate(names=)`` of 500 measures): the same refusal, naming the same card, on random
    decks of skipped (``op``), unmeasurable (``deriv``) and measuring cards and ``.control`` results."""
    rng = random.Random(19)
    kinds = {"ok": "meas ac {} find v(out) at=1k", "deriv": "meas ac {} deriv v(out) at=1k",
             "op": "meas op {} find v(out)"}

    def was(measures: list[Measure], skipped: list[Measure], controls: set[str], used: list[str]) -> str | None:
        results = {*(m.name for m in measures), *controls}
        for name in used:
            for m in skipped:
                if m.name == name.lower() and m.name not in results:
                    return f"p:{m.line}: {m.skip_reason}; refused, as {SPEC_ASKS} {name!r}"
        given = {m.name for m in measures if not m.unsupported} | controls
        for name in used:
            for m in measures:
                if m.unsupported and m.name == name.lower() and m.name not in given:
                    return f"p:{m.line}: {m.note}; refused, as {SPEC_ASKS} {name!r}"
        return None

    refused = 0
    for _ in range(5000):
        cards = [(rng.choice(list(kinds)), rng.choice("abcde")) for _ in range(rng.randrange(8))]
        made = [Measure(k if k == "op" else "ac", n, kinds[k].format(n), i + 1) for i, (k, n) in enumerate(cards)]
        measures, skipped = [m for m in made if not m.skipped], [m for m in made if m.skipped]
        controls = set(rng.sample("abcde", rng.randrange(2)))
        used = [rng.choice("abcdeABC") for _ in range(rng.randrange(5))]
        found = unmeasurable_named(measures, skipped, controls, used, "p")
        assert (None if found is None else str(found)) == was(measures, skipped, controls, used), (cards, used)
        refused += found is not None
    assert 500 < refused < 4500

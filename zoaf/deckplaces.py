"""Which card of a deck's files ngspice's line number N is ("Netlist line no. N", "Error on line N").

ngspice 39 numbers the deck's lines and a ``.lib`` file's as they are in the file, blank lines too, but the lines
of a file that an ``.include`` of the deck (or of a library) reads from 1, blank lines left out, and a file that file
includes in turn counted in right after its ``.include`` line (which counts, and one more line after the file): an
included file's line 7, after three blank lines, is "line no. 4". An error there named the deck's line 4, another
card, or no line at all.
"""
from __future__ import annotations

import itertools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from .deckcheck import MAX_INCLUDE_DEPTH, include_args, resolve

__all__ = ["Card", "numbered", "pick"]


@dataclass(frozen=True)
class Card:
    """A card as ngspice may name it: its file, the file's line it starts on, its text (lower-cased, its ``+``
    continuations joined)."""

    path: Path
    line: int
    text: str


#: A line as ngspice numbers it: its file and its line there (None: the comment ngspice adds after an included file).
_At = tuple[Path, int] | None
#: An ``.include`` line, and a ``.lib NAME`` line (a section's definition: its file is a library). Searched for, and
#: lines counted only up to N, at C speed where it can be: a PDK's libraries run to millions of lines.
_INCLUDE = re.compile(r"^[ \t]*(\.inc\S*)[ \t]+(.*?)\r?$", re.I | re.M)
_SECTION = re.compile(r"^[ \t]*\.lib[ \t]+\S+[ \t]*\r?$", re.I | re.M)


def _card(path: Path, lines: list[str], k: int) -> Card | None:
    """The card that starts on line ``k`` of ``path`` (its physical ``lines``), its ``+`` lines joined; None where
    no card starts there."""
    raw = lines[k - 1].strip() if 0 < k <= len(lines) else ""
    if not raw or raw[0] in "*+":
        return None
    more = []
    for line in itertools.islice(lines, k, None):
        if (nxt := line.strip()) and nxt[0] not in "*+":
            break
        if nxt[:1] == "+":
            more.append(nxt[1:].strip())
    return Card(path, k, " ".join([raw, *more]).lower())


def _included(path: Path, word: str, rest: str, texts: Mapping[Path, str]) -> Path | None:
    """The file (resolved, one the walk read) that ``path``'s ``.include`` line (``word``, ``rest``) reads."""
    if (args := include_args(word.lower(), rest)) is None or args[0] is None:
        return None
    target = resolve(path.parent, args[0]).resolve()
    return target if target in texts else None


def _flattened(path: Path, texts: Mapping[Path, str], n: int, via: tuple[Path, ...] = ()) -> list[_At]:
    """The first ``n`` lines of an included file ``path`` as ngspice numbers them (from 1: index + 1), blank ones
    left out, the files it includes inlined after their ``.include`` lines, each followed by ngspice's comment."""
    out: list[_At] = []
    for k, line in enumerate(texts[path].split("\n"), 1):       # a "\r" before it: stripped
        if len(out) >= n:
            break
        if not line.strip():
            continue
        out.append((path, k))
        m = _INCLUDE.match(line)
        inner = None if m is None else _included(path, m.group(1), m.group(2), texts)
        if inner is not None and inner not in via and len(via) < MAX_INCLUDE_DEPTH:
            out += [*_flattened(inner, texts, n - len(out), (*via, path)), None]
    return out


def numbered(deck: Path, text: str, texts: Mapping[Path, str], n: int) -> list[Card]:
    """The cards of the files the deck ``deck`` (``text``) reads (``texts``: resolved path -> text, as
    :func:`zoaf.deckcheck.walk_includes` read them) that ngspice numbers ``n``, the deck's own left out: a library's
    (a file that defines a ``.lib`` section) on its line ``n``, and those of each file an ``.include`` of the deck
    or of a library reads."""
    libraries = [p for p, t in texts.items() if _SECTION.search(t)]
    found = [(p, n) for p in libraries]
    for path, body in [(deck.resolve(), text), *((p, texts[p]) for p in libraries)]:
        for m in _INCLUDE.finditer(body):
            root = _included(path, m.group(1), m.group(2), texts)
            flat = [] if root is None else _flattened(root, texts, n)
            found.append(flat[n - 1] if 0 < n <= len(flat) else None)
    cards = (_card(at[0], texts[at[0]].split("\n"), at[1]) for at in dict.fromkeys(found) if at is not None)
    return [c for c in cards if c is not None]


def pick(cards: Sequence[Card], card: str = "", said: str = "") -> Card | None:
    """The one of ``cards`` ngspice's error is about, else None: of those whose first word is that of ``card`` (the
    card ngspice printed, if it did), the one that writes what ``said`` quotes of it, where one does: the parameter
    in brackets (numparam's "Undefined parameter [x]"), the expression after "Expression err:" (blanks removed)."""
    if card:
        cards = [c for c in cards if c.text.split(None, 1)[:1] == card.lower().split(None, 1)[:1]]
    said = said.lower()
    names = [rf"(?<![\w.]){re.escape(m)}(?!\w)" for m in re.findall(r"\[([^\]\s]+)\]", said)]
    expression = "".join(m.group(1).split()) if (m := re.search(r"expression err:(.+)", said)) else None
    writing = [c for c in cards if any(re.search(n, c.text) for n in names)
               or expression and expression in "".join(c.text.split())]
    chosen = writing or cards
    return chosen[0] if len(chosen) == 1 else None

"""Which of a deck's top-level ``.param``s no line reads: a design variable that nothing reads changes no
simulation, and a run spends its budget on a dimension that does nothing (said as a ``note:``, and as
``unused_params`` of ``zoaf check --json``).

Read so that a note is never false (it would send a designer to delete a variable the deck needs): a name counts
as read wherever it occurs as a word outside a ``.param`` definition -- an instance or B-source value, a ``.func``,
a ``.subckt`` line's ``params:``, a ``.model`` card, a ``.meas`` expression, an ``.if`` condition, a ``.csparam``,
any ``.control`` line (``alterparam``; a ``let`` too, though ngspice reads ``{w}`` there as the vector ``w``), a
node name, an included file or ``.lib`` section (selected or not) -- and in the value of a definition of a name
that is itself read (``.param area={w*l}`` reads ``w`` and ``l`` only if something reads ``area``), wherever that
definition is (a ``.subckt`` body's of the same name too). Comments and the deck's title read nothing.
"""
from __future__ import annotations

from collections.abc import Container, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .decktext import Line, logical_lines, physical_lines, pieces
from .paramline import WORD, ParamLine, parse_param

__all__ = ["unused"]

@dataclass
class _Reads:
    """The names of ``candidates`` the lines read so far: read outright, or by the definitions of each name."""

    candidates: frozenset[str]
    direct: set[str] = field(default_factory=set)
    defs: dict[str, set[str]] = field(default_factory=dict)

    def names(self, text: str) -> set[str]:
        return {w for w in WORD.findall(text) if w in self.candidates}

    def lines(self, lines: Iterable[Line], quiet: Container[str] = frozenset(),
              parsed: Mapping[int, ParamLine] = {}) -> None:
        """Take ``lines`` (logical, of one file): ``.param`` definitions apart, every word as read. A definition in
        a ``.subckt`` body is taken as a top-level one: its name read anywhere reads its value all the same. A
        ``.param`` line whose text ``quiet`` holds (one the netlist's reader parsed and found to read nothing:
        :func:`zoaf.paramline.reads_nothing`) is passed over: parsed again, it would record nothing; one ``parsed``
        holds by its line number (the deck's own) is taken as parsed there."""
        for ln in lines:
            if ln.text.split(None, 1)[:1] == [".param"] and (ln.raw in quiet
                                                              or self._defines(ln, parsed.get(ln.lineno))):
                continue
            self.direct |= self.names(ln.text)

    def _defines(self, ln: Line, line: ParamLine | None) -> bool:
        """Record the top-level definitions of the ``.param`` line ``ln`` (``line``: it parsed, else parsed here);
        False where it does not read."""
        line = parse_param(ln) if line is None else line
        if line.found is None:
            return False
        for start, stop in line.functions:          # ``f(x)=x*w``: a function, whose body counts as read
            self.direct |= self.names(ln.text[start:stop])
        for name, value, _ in line.found:
            names = self.names(value.lower())
            if name in self.candidates:
                if names:                           # not an empty set per definition: ~200 bytes each
                    self.defs.setdefault(name, set()).update(names)
            else:                                   # another file's own variable: its readers are not followed
                self.direct |= names
        return True

    def read(self) -> set[str]:
        """The names read outright, and those the definitions of a read name read (at any depth)."""
        read: set[str] = set()
        todo = list(self.direct)
        while todo:
            name = todo.pop()
            if name not in read:
                read.add(name)
                todo.extend(self.defs.get(name, ()))
        return read


def unused(names: Iterable[str], deck: Sequence[Line], included: Mapping[Path, str],
           quiet: Mapping[Path, Container[str]] = {}, parsed: Mapping[int, ParamLine] = {}) -> tuple[str, ...]:
    """The names of ``names`` (the deck's top-level ``.param``s, lower-cased) that no line reads, in their order:
    ``deck`` is the deck's logical lines after its title, ``included`` the texts of the files it reads (by path),
    ``quiet`` the lines of theirs known to read nothing (:attr:`zoaf.libparams.Libraries.quiet`), ``parsed`` the
    deck's ``.param`` lines its reader parsed, by line number (:func:`zoaf.paramline.parse_param`). A file that
    holds none of the names the deck leaves unread cannot read one (a definition that reads one names it), so only
    those that do are parsed: a PDK's model library is searched, not parsed."""
    names = list(dict.fromkeys(names))
    reads = _Reads(frozenset(names))
    reads.lines(deck, parsed=parsed)
    unread = frozenset(names) - reads.read()        # once: per name, 10k read names took minutes
    if unread:
        for path, text in included.items():
            if _mentions(text, unread):             # commands=True: a command file's comments, the fewer cut
                for piece, _ in pieces(text):       # a piece's lines at a time: a whole file's were gigabytes
                    reads.lines(logical_lines(physical_lines("\n" + piece), commands=True)[1:], quiet.get(path, ()))
    read = reads.read()
    return tuple(n for n in names if n not in read)


#: The characters of a file whose words are gathered at a time (at a line end after them).
_PIECE = 2**20


def _mentions(text: str, names: frozenset[str]) -> bool:
    """Whether ``text`` holds one of ``names`` as a word. Its words are gathered a piece at a time, in time linear in
    the text whatever the number of names (one regex of the names tried each of them at each word: 10k unread
    names over an include of a few MiB took minutes), and in memory bounded by a piece (a 64 MiB file's words at
    once were gigabytes of strings)."""
    start = 0
    while start < len(text):
        end = text.find("\n", start + _PIECE)
        end = len(text) if end < 0 else end
        if not names.isdisjoint(WORD.findall(text[start:end].lower())):
            return True
        start = end
    return False

"""The structure of a loaded deck as ngspice expands it: ``.param``s in order, subcircuits, element lines.

Read for the fast path (:mod:`zoaf.fastpath`), which needs the whole deck including a PDK's ``.lib`` section
(the netlist reader, :mod:`zoaf.netlist`, reads only the user's files). Lines are logical (``+`` continuations
joined), lower-cased, without comments; ``.include`` and ``.lib <file> <section>`` are followed in place.
"""
from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field
from pathlib import Path

from .deckcheck import include_args, resolve
from .decktext import physical_lines, texts

__all__ = ["Deck", "Subckt", "assignments", "read_deck"]

#: A ``name =``: its name the run of name characters from the run's first letter on (tried at each of a run's
#: characters, as ``([a-z_][\w.]*)\s*=`` is, each read the rest of the run: a 10k-character name took seconds).
_NAME = re.compile(r"(?<![\w.])(?:(?![a-z_])[\w.])*+([a-z_][\w.]*+)\s*=\s*")
_TOKEN = re.compile(r"[^\s=]+")


@dataclass(eq=False)
class Subckt:
    """A ``.subckt``: ports, header parameters (``name=default``), body lines (nested subcircuits kept)."""

    name: str
    ports: list[str]
    params: list[tuple[str, str]]
    body: list[str] = field(default_factory=list)


@dataclass
class Deck:
    """Top-level ``.param`` assignments in order, ``.option`` values, subcircuits and other top-level lines."""

    params: list[tuple[str, str]] = field(default_factory=list)
    options: dict[str, str] = field(default_factory=dict)
    subckts: dict[str, Subckt] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)


def assignments(text: str) -> list[tuple[str, str]]:
    """The ``name=value`` pairs of any line (``value`` a ``{...}`` expression or one token).

    Not :func:`zoaf.paramline.assignments`, which reads a ``.param`` line's value up to the next ``name=``: here a
    value ends at the first blank outside braces (a quoted expression with blanks, as some sky130 ``.param``s
    have, is cut there), which is how the fast path has always read instance, model and ``.param`` lines.
    """
    out, pos = [], 0
    closes = text.rfind("}")    # a "{" past the last "}" opens no {...} value (each searched to the end: quadratic)
    while m := _NAME.search(text, pos):
        if text.startswith("{", m.end()) and m.end() < closes:
            end = text.index("}", m.end()) + 1
        elif token := _TOKEN.match(text, m.end()):
            end = token.end()
        else:                   # "a= =b": no value, no assignment (the next starts after its name)
            pos = m.start(1) + 1
            continue
        out.append((m.group(1), text[m.end():end]))
        pos = end
    return out


@dataclass
class _Library:
    """A file's logical lines (:func:`zoaf.decktext.texts`) and where its ``.lib`` sections start and end, read once
    per deck: each ``.lib`` line naming a file read it whole again and searched it for its section (a deck reading
    500 sections of one library took 6 s)."""

    lines: list[str]
    starts: dict[str, int]      # section -> index of the first ``.lib name`` line opening it (ngspice takes the first)
    ends: list[int]             # indices of the ``.endl`` lines

    @classmethod
    def read(cls, path: Path) -> _Library:
        lines = texts(physical_lines(path.read_text(errors="replace")))
        starts: dict[str, int] = {}
        ends: list[int] = []
        for i, ln in enumerate(lines):
            word, *rest = ln.split(None, 1)
            if word.startswith(".endl"):
                ends.append(i)
            elif word == ".lib" and (args := include_args(word, "".join(rest))) is not None and args[0] is None:
                starts.setdefault(args[1] or "", i)
        return cls(lines, starts, ends)

    def section(self, name: str, path: Path) -> list[str]:
        """The lines of section ``name`` (lower-cased), between its ``.lib name`` and the next ``.endl``; ValueError
        when ``path`` (this file) does not define it."""
        start = self.starts.get(name)
        if start is not None and (k := bisect.bisect_right(self.ends, start)) < len(self.ends):
            return self.lines[start + 1:self.ends[k]]
        raise ValueError(f"{path}: no .lib section {name}")


def _expand(lines: list[str], folder: Path, seen: tuple[Path, ...], files: dict[Path, _Library]) -> list[str]:
    out: list[str] = []
    for ln in lines:
        word, *rest = ln.split(None, 1)
        args = include_args(word, "".join(rest)) if word in (".include", ".inc", ".lib") else None
        if args and args[0] is not None:
            path = resolve(folder, args[0]).resolve()
            if path in seen:
                raise ValueError(f"include cycle at {path}")
            if path not in files:
                files[path] = _Library.read(path)
            lib = files[path]
            out += _expand(lib.lines if args[1] is None else lib.section(args[1], path), path.parent,
                           seen + (path,), files)
        else:
            out.append(ln)
    return out


def read_deck(deck: list[str], folder: Path) -> Deck:
    """The structure of a deck given as its lines (the first is the title), includes resolved from ``folder``."""
    lines = _expand(texts(deck[1:]), folder, (), {})
    out = Deck()
    stack: list[Subckt] = []
    for ln in lines:
        word = ln.split(None, 1)[0]
        if word == ".subckt":
            head = ln.split()
            ports = [t for t in head[2:] if "=" not in t and t != "params:"]
            stack.append(Subckt(head[1], ports, assignments(" ".join(head[2 + len(ports):]))))
        elif word == ".ends":
            sub = stack.pop()
            if stack:
                stack[-1].body.append(f".subckt-def {sub.name}")
            out.subckts.setdefault(sub.name, sub)   # ngspice keeps the first ("redefinition of .subckt, ignored")
        elif stack:
            stack[-1].body.append(ln)
        elif word in (".param", ".params"):
            out.params += assignments(ln[len(word):])
        elif word in (".option", ".options", ".opt"):
            out.options.update(assignments(ln[len(word):]))
        elif word != ".end":
            out.lines.append(ln)
    return out

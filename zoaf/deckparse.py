"""The structure of a loaded deck as ngspice expands it: ``.param``s in order, subcircuits, element lines.

Read for the fast path (:mod:`zoaf.fastpath`), which needs the whole deck including a PDK's ``.lib`` section
(the netlist reader, :mod:`zoaf.netlist`, reads only the user's files). Lines are logical (``+`` continuations
joined), lower-cased, without comments; ``.include`` and ``.lib <file> <section>`` are followed in place.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Deck", "Subckt", "assignments", "logical_lines", "read_deck"]

_ASSIGN = re.compile(r"([a-z_][\w.]*)\s*=\s*(\{[^}]*\}|[^\s=]+)")
_INCLUDE = re.compile(r"^\.inc(?:lude)?\s+\"?([^\"\s]+)\"?\s*$")
_LIB = re.compile(r"^\.lib\s+\"?([^\"\s]+)\"?\s+(\w+)\s*$")


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


def _strip(line: str) -> str:
    """A physical line without its ``;`` or `` $ `` comment."""
    line = line.split(";", 1)[0]
    m = re.search(r"(^|\s)\$(\s|$)", line)
    return line[:m.start()] if m else line


def logical_lines(physical: list[str]) -> list[str]:
    """Continuations joined, comment lines dropped, lower-cased."""
    out: list[str] = []
    for raw in physical:
        s = _strip(raw).strip()
        if not s or s.startswith("*"):
            continue
        if s.startswith("+") and out:
            out[-1] += " " + s[1:].strip().lower()
        else:
            out.append(s.lower())
    return out


def assignments(text: str) -> list[tuple[str, str]]:
    """The ``name=value`` pairs of a line (``value`` a ``{...}`` expression or one token)."""
    return [(m.group(1), m.group(2)) for m in _ASSIGN.finditer(text)]


def _expand(lines: list[str], folder: Path, seen: tuple[Path, ...]) -> list[str]:
    out: list[str] = []
    for ln in lines:
        inc, lib = _INCLUDE.match(ln), _LIB.match(ln)
        if inc or lib:
            path = (folder / (inc or lib).group(1)).resolve()
            if path in seen:
                raise ValueError(f"include cycle at {path}")
            out += _expand(_section(path, lib.group(2) if lib else None), path.parent, seen + (path,))
        else:
            out.append(ln)
    return out


def _section(path: Path, section: str | None) -> list[str]:
    lines = logical_lines(path.read_text(errors="replace").splitlines())
    if section is None:
        return lines
    try:
        start = lines.index(f".lib {section}")
    except ValueError:
        raise ValueError(f"{path}: no .lib section {section}") from None
    end = next(i for i in range(start, len(lines)) if lines[i].startswith(".endl"))
    return lines[start + 1:end]


def read_deck(deck: list[str], folder: Path) -> Deck:
    """The structure of a deck given as its lines (the first is the title), includes resolved from ``folder``."""
    lines = _expand(logical_lines(deck[1:]), folder, ())
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
            out.subckts[sub.name] = sub
        elif stack:
            stack[-1].body.append(ln)
        elif word in (".param", ".params"):
            out.params += assignments(ln[len(word):])
        elif word in (".option", ".options", ".opt"):
            out.options.update(assignments(ln[len(word):]))
        elif word != ".end":
            out.lines.append(ln)
    return out

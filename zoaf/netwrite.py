"""The texts zoaf writes from a netlist it read: the designer's text sized, and the deck a session loads.

Apart from :mod:`zoaf.netlist`, which reads and checks a deck, so that each side stays one job: reading records
where the text changes (:class:`Edits`, filled while parsing), writing applies those edits per sizing
(:meth:`Edits.sized`: ``best.cir`` and the batch deck) or keeps the lines a session loads
(:func:`session_lines`). Pure text processing, as :mod:`zoaf.netlist`.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .decktext import Line, ParamDef, quote

__all__ = ["INCLUDE", "SIZED_MARK", "Edits", "include_file", "session_lines", "session_title"]

#: Ends each ``.param`` line a sized text adds after an ``.include`` (:meth:`Edits.sized`): the lines after it are
#: one further down than in the deck (``ngbatch.run_batch`` names the deck's).
SIZED_MARK = "$ zoaf: sized, overrides the included value"

#: An include line: the command word and blanks (ASCII ones, as ngspice splits), the file (quoted or not), what follows.
INCLUDE = re.compile(r"(\s*\S+\s+)(\"[^\"]*\"|'[^']*'|\S+)(.*)", re.ASCII)


def include_file(raw: str, word: str) -> re.Match[str] | None:
    """The :data:`INCLUDE` match of an include line that names a file; None for ``.lib SECTION`` (a section's
    definition, up to ``.endl``) or a line with no file name."""
    m = INCLUDE.match(raw)
    return None if m is None or (word == ".lib" and not m.group(3).strip()) else m


@dataclass
class Edits:
    """Where a netlist's text changes when it is written, recorded while it is read (physical line indices)."""

    defs: list[ParamDef] = field(default_factory=list)      # every top-level .param assignment, in file order
    includes: dict[int, tuple[int, int, str]] = field(default_factory=dict)  # line -> (col0, col1, absolute file)
    include_defs: dict[int, list[str]] = field(default_factory=dict)  # an include's last line -> params it sets

    def sized(self, physical: list[str], new: Mapping[str, str], commented: set[int],
              inline: Mapping[int, str] | None = None) -> str:
        """``physical`` with the ``new`` values (name -> text) in place of every top-level definition (as ngspice's
        ``alterparam``), include paths absolute, the ``commented`` lines commented out, ``inline`` lines replaced,
        and a ``.param`` line after each include that defines a sized name (ngspice takes the last definition)."""
        lines = ["* zoaf: " + ln if i in commented else ln for i, ln in enumerate(physical)]
        edits: dict[int, list[tuple[int, int, str]]] = {}
        for d in self.defs:
            if d.name in new:
                for k, (idx, c0, c1) in enumerate(d.spans):
                    edits.setdefault(idx, []).append((c0, c1, new[d.name] if k == 0 else ""))
        for idx, (c0, c1, target) in self.includes.items():
            edits.setdefault(idx, []).append((c0, c1, quote(target)))
        for idx, es in edits.items():
            s = lines[idx]
            for c0, c1, rep in sorted(es, reverse=True):
                s = s[:c0] + rep + s[c1:]
            lines[idx] = s
        for idx, text in (inline or {}).items():
            lines[idx] = text
        for idx in sorted(self.include_defs, reverse=True):
            # ngspice takes a param's last definition, also for expressions written before it.
            lines[idx + 1:idx + 1] = [f".param {name}={new[name]}   {SIZED_MARK}"
                                      for name in self.include_defs[idx] if name in new]
        return "\n".join(lines) + "\n"


#: A title ``ngSpice_Circ`` would read otherwise than ``ngspice -b``: a first word ``.end`` (any case), where it ends
#: the deck, and a dot-card after blanks, which it reads as that card (``ngspice -b`` only at column 0).
_CARD_TITLE = re.compile(r"\s+\.|\.end(?:\s|$)", re.I)


def session_title(title: str) -> str:
    """The title line a session loads for ``title``. ``ngspice -b`` reads a first line as the title unless a dot-card
    starts at its column 0 (:func:`zoaf.decktext.title_problem`), but ``ngSpice_Circ``, which loads line by line, also
    reads a card after blanks (`` .temp 100`` set the temperature, `` .include x.inc`` failed) and ends the deck at a
    ``.end ...`` title (an empty circuit measured nothing). Such a title is sent after a ``*``: a title to both."""
    return "zoaf" if not title else f"*{title}" if _CARD_TITLE.match(title) else title


def session_lines(logical: list[Line], dropped: set[int], resolve: Callable[[str], Path],
                  extra: Sequence[str] = ()) -> list[str]:
    """The logical lines after the title a session loads: those not ``dropped`` (by index) nor blank, include paths
    made absolute by ``resolve``, then the ``extra`` cards and ``.end``, which ends the list (also where the deck has
    none: ``ngspice -b`` reads to the end of the file, loading line by line needs it). Each line keeps its place:
    ``*`` lines stand for the comments, continuations and cards left out, so that ngspice's "bad syntax in line 8"
    or "Netlist line no. 8" names the file's line 8 as in ``ngspice -b`` (the session named its own fifth line)."""
    out = []
    for li, ln in enumerate(logical):
        if li == 0 or li in dropped or not ln.text.strip():
            continue
        raw = ln.raw
        word = ln.text.split(None, 1)[0]
        if word == ".end":
            break
        if word in (".include", ".inc", ".lib") and (m := include_file(raw, word)):
            raw = m.group(1) + quote(str(resolve(m.group(2).strip("\"'")))) + m.group(3)
        out += ["*"] * (ln.lineno - 2 - len(out))         # the title is line 1, ``out`` starts at line 2
        out.append(raw.strip())
    return [*out, *extra, ".end"]

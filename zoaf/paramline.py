"""A ``.param`` line read once (:func:`parse_param`): its assignments, the functions defined on it, the comma
ngspice 39 hangs on, and whether it reads any name.

Three readers ask about each ``.param`` line of a deck and of its included files: the comma refusal, the design
variables (:mod:`zoaf.netlist`, :mod:`zoaf.libparams`) and the unused-variable check (:mod:`zoaf.paramuse`). Each
parsed the line on its own, so a received include of ``.param`` lines read at 2-3 s a MiB (BENCHMARKS.md §1d); the
netlist's reader now parses a line once, and gives the check the deck's lines so parsed and tells it which included
lines read nothing (:func:`reads_nothing`), which it passes over.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, replace

from .decktext import Line
from .ngcommands import NAME

__all__ = ["WORD", "ParamLine", "assignments", "parse_param", "reads_nothing"]

#: A word of a lower-cased line: where a ``.param`` name may occur (not the ``u`` of ``10u``).
WORD = re.compile(r"(?<!\w)[a-z_]\w*")
_ASSIGN = re.compile(rf"(?<![=<>!\w.])({NAME})\s*=(?!=)")


def assignments(ln: Line, err) -> list[tuple[str, str, int]]:
    """The ``name=value`` pairs of a ``.param`` line: (lower-case name, value text, its offset in ``ln.raw``)."""
    body_start = len(".param")
    while body_start < len(ln.text) and ln.text[body_start].isalpha():   # ".params" spelling
        body_start += 1
    body = ln.text[body_start:]
    matches = list(_ASSIGN.finditer(body))
    if not matches or body[:matches[0].start()].strip():
        raise err(ln.lineno, f".param needs name=value: {ln.raw.strip()!r}")
    out = []
    for k, m in enumerate(matches):
        v1 = matches[k + 1].start() if k + 1 < len(matches) else len(body)
        raw_val = body[m.end():v1]
        value = raw_val.strip().rstrip(",").strip()
        if not value:
            raise err(ln.lineno, f".param {m.group(1)} has no value")
        start = body_start + m.end() + len(raw_val) - len(raw_val.lstrip())
        out.append((m.group(1), ln.raw[start:start + len(value)], start))
    return out


#: A function defined on a ``.param`` line, up to its ``=``: ``tau2(a, b) =``.
_PARAM_FUNCTION = re.compile(r"(?<![\w.])[a-z_]\w*\s*\([^()=]*\)\s*=(?!=)")
#: The start of the next ``name=`` assignment (where a function's body ends, as numparam splits the line).
_NEXT_ASSIGNMENT = re.compile(r"\s[a-z_]\w*\s*(?:\([^()=]*\)\s*)?=(?!=)")


def _function_spans(text: str) -> tuple[tuple[int, int], ...]:
    """Where each function ``name(args) = body`` of the lower-cased ``.param`` line ``text`` is, up to the next
    assignment: numparam reads ``.param f(x)=x*2`` as ``.func f(x) {x*2}`` (a ``name=value`` may share the line:
    ``.param rx=5 f(x)=x*2 ry=3``). zoaf refused such a line (".param needs name=value") though ``ngspice -b`` runs
    it; :func:`parse_param` blanks each, offsets kept."""
    if "(" not in text:
        return ()                                        # the common case, without a search
    spans, end = [], 0
    while m := _PARAM_FUNCTION.search(text, end):        # from the last body's end (a blank that stays): each
        nxt = _NEXT_ASSIGNMENT.search(text, m.end())     # search from the start made 5,000 functions take 24 s
        end = nxt.start() if nxt else len(text)
        spans.append((m.start(), end))
    return tuple(spans)


def _blanked(ln: Line, spans: tuple[tuple[int, int], ...]) -> Line:
    """``ln`` with ``spans`` of its text blanked in its text and its raw text."""
    if not spans:
        return ln
    text, raw = ln.text, ln.raw
    for start, stop in spans:
        text, raw = (t[:start] + " " * (stop - start) + t[stop:] for t in (text, raw))
    return replace(ln, text=text, raw=raw)


@dataclass(slots=True)
class ParamLine:
    """One reading of a ``.param`` line (:func:`parse_param`), which the comma refusal, the design variables and the
    unused-variable check share."""

    bare: Line                                   # the line with its functions blanked (``_function_spans``)
    functions: tuple[tuple[int, int], ...]       # where they were, in its text
    found: list[tuple[str, str, int]] | None     # its assignments (:func:`assignments`); None: they do not read
    error: str = ""                              # why not: ``.param needs name=value``, ``has no value``

    @property
    def empty(self) -> bool:
        """Whether nothing but functions follows the word: no design variable, and no error."""
        return not self.bare.text[len(".param"):].strip()

    @property
    def comma(self) -> str | None:
        """Why ngspice 39 never returns from the line (:data:`_PARAM_COMMA`), or None: a comma right after one of
        several values, wherever the line is (the deck's top level, a ``.subckt`` body, an included file, a ``.lib``
        section: ``ngspice -b`` hangs on each). A line whose assignments do not read is left to its reader."""
        found, raw = self.found or [], self.bare.raw
        for name, value, start in found if len(found) > 1 else ():
            if raw[start + len(value):start + len(value) + 1] == ",":
                return _PARAM_COMMA.format(name=name, value=value)
        return None


class _Unread(Exception):
    """A ``.param`` line's assignments that do not read (:func:`parse_param`)."""


def _unread(lineno: int, what: str) -> _Unread:
    return _Unread(what)


def parse_param(ln: Line) -> ParamLine:
    """The ``.param`` line ``ln`` read once (:class:`ParamLine`)."""
    spans = _function_spans(ln.text)
    bare = _blanked(ln, spans)
    try:
        return ParamLine(bare, spans, assignments(bare, _unread))
    except _Unread as e:
        return ParamLine(bare, spans, None, str(e))


#: Why a ``.param`` line of several values with a comma after one is refused (``name``, ``value``: that one's).
_PARAM_COMMA = (".param {name}={value},: ngspice 39 never returns from reading a line of several values where one "
               "is followed by a comma (ngspice -b hangs, and so would zoaf's simulation); refused (separate the "
               "assignments with blanks)")


def reads_nothing(line: ParamLine) -> bool:
    """Whether the ``.param`` line read as ``line`` adds nothing to what reads what (:mod:`zoaf.paramuse`), whichever
    names are asked about: its assignments read, it defines no function, and no value names a word (``1.5e-6``,
    ``{2*3}``). The names it defines are all it holds."""
    if line.found is None or line.functions:
        return False
    for _, value, _ in line.found:                  # a loop, not any(): the netlist's reader asks it of each line
        if WORD.search(value.lower()):
            return False
    return True

"""SPICE deck text: logical lines, comments, ``.param`` assignments, placeholders, exact values.

Conventions (SPICE): the first line is the title; ``+`` continues the previous line; ``*`` starts a comment
line; ``;`` and ``$`` followed by a blank start an inline comment; names are case-insensitive (lower-cased
here, as ngspice does). A :class:`Line` keeps where each piece of a logical line came from, so that an edit
(a new ``.param`` value, an absolute include path) lands in the original text with everything else as written.
"""
from __future__ import annotations

import bisect
import functools
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from . import units
from .errors import InputError

__all__ = ["Line", "ParamDef", "after_title", "control_character", "first_unquoted", "format_value", "value_text",
           "included_trrandom", "instance_problem", "logical_lines", "noisy_source", "physical_lines", "physical_spans",
           "pieces", "quote", "strip_comment", "substitute", "tab_dollar_comment", "texts", "title_problem"]

_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
#: A control character a text file holds no reason to (tab, line ends, form feed and vertical tab are text).
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f]")
#: Every byte but those :data:`_CONTROL` matches: deleted from an ASCII text's bytes, they leave its control characters.
_NOT_CONTROL = bytes(b for b in range(256) if not _CONTROL.match(chr(b)))


#: ``params:`` on a subcircuit instance line.
_INSTANCE_PARAMS = re.compile(r"\sparams:", re.I)
#: A ``trrandom`` source of type 2 (Gaussian), or of a type written as an expression (``{t}``, ``{1+1}``: numparam
#: makes it a number, which zoaf's checks do not evaluate).
_GAUSSIAN_TRRANDOM = re.compile(r"(?<![\w.])trrandom\s*\(?\s*(?:\+?2(?:\.0*)?(?=[\s,)])|[{'])", re.I)
_TRRANDOM_WHY = ("a Gaussian trrandom source (type 2, or a type written as an expression, which zoaf does not tell "
                 "from 2): ngspice 39 draws its values in pairs and keeps the second for "
                 "the next run in the process, so a session's every other sizing draws other values than `ngspice -b` "
                 "(a fresh process per run) does; refused (a uniform trrandom, its type written as the number 1, or a "
                 "pwl source of drawn values)")


#: A ``trnoise`` source's arguments: ``na nt nalpha namp rtsam ...``. Its white (``na``) and 1/f (``namp``) noise draw
#: from a generator no seed fixes, where either is not a plain zero (an expression zoaf does not read counts as one);
#: its random telegraph (``rtsam``) draws from the seeded one (``.options seed``: every run alike).
_TRNOISE = re.compile(r"(?<![\w.])trnoise\s*\(?([^)]*)", re.I)
_TRNOISE_AMPLITUDES = (0, 3)


def noisy_source(text: str) -> bool:
    """Whether the element line ``text`` is a source with ``trnoise`` white or 1/f noise (:data:`_TRNOISE`)."""
    m = _TRNOISE.search(text) if text[:1] in "vViI" else None
    args = m.group(1).replace(",", " ").split() if m else []
    return m is not None and any(_meant(args[i]) != 0 for i in _TRNOISE_AMPLITUDES if i < len(args))


def instance_problem(text: str) -> str | None:
    """Why zoaf cannot run the element line ``text`` (logical) as ``ngspice -b`` runs it, else None.

    In HSPICE-compatible mode (``ngbehavior=hsa``, which PDKs need; best.cir's ``.spiceinit`` sets it) ``params:
    r=1k`` on an instance is taken as part of the subcircuit's name ("unknown subckt") and ``params:r=1k`` is dropped
    without a word (r keeps its default), where plain ``ngspice -b`` reads both as ``r=1k``. A Gaussian ``trrandom``
    source draws its values in pairs and ngspice 39 keeps the second of a pair for the next draw, in the process and
    across runs (``reset``, a new deck, ``setseed`` keep it; no command draws from that generator): with a seed,
    every ``ngspice -b`` run draws the same values, while a session's sizings alternate between two draws."""
    if text[:1] in "xX" and _INSTANCE_PARAMS.search(text):
        return ("`params:` on an instance: ngspice in HSPICE-compatible mode (ngbehavior=hsa, which zoaf runs) "
                "fails to load `params: r=1k` (\"unknown subckt\") and silently drops `params:r=1k` (r keeps its "
                "default); write the parameters without `params:` (x1 a b sub r=1k)")
    if text[:1] in "vViI" and _GAUSSIAN_TRRANDOM.search(text):
        return _TRRANDOM_WHY
    return None


#: A first line ngspice reads as a card, not as the deck's title (ngspice 39, a prefix in any case, at column 0).
_TITLE_CARD = re.compile(r"\.(param|meas|inc|lib|subckt|ends|control|endc|if|endif)", re.IGNORECASE)


def title_problem(title: str) -> str | None:
    """Why a deck whose first line is ``title`` does not run as zoaf would run it, or None. ngspice reads a first
    line that starts with ``.param`` or ``.meas`` as a card and stops ("title line is missing!"), opens the file of
    an ``.include`` or ``.lib`` there (zoaf's reader takes the line as the title, and does not rewrite its path), and
    opens a block with ``.subckt``, ``.control``, ``.if``... (or closes one that is not open)."""
    if (m := _TITLE_CARD.match(title)) is None:
        return None
    return (f"the title line starts with .{m.group(1).lower()}: ngspice reads a first line that starts with .param, "
            ".meas, .include, .lib, .subckt, .ends, .control, .endc, .if or .endif as that card, not as the title (a "
            ".param or .meas stops it: 'title line is missing!'); refused (write a title line first)")


def after_title(text: str) -> str:
    """A deck's ``text`` with its title line emptied (the lines keep their numbers), for the checks that search the
    text for cards: ``ngspice -b`` reads none in the title, `` .include x.inc`` there opens nothing (zoaf followed
    it: a missing or outside file refused, a note of a file never read). A card at its column 0 is one ngspice reads
    (:func:`title_problem`, which refuses it afterwards): kept."""
    if _TITLE_CARD.match(text):
        return text
    end = text.find("\n")
    return "" if end < 0 else text[end:]


def included_trrandom(text: str) -> tuple[int, str] | None:
    """The line number of the first Gaussian ``trrandom`` source of an included or ``.lib`` file (``text``: no
    title line), and why it is refused (:func:`instance_problem`): ngspice draws there as in the deck. A file
    without the word (a PDK's every file) is not read line by line."""
    for ln in logical_lines([""] + physical_lines(text))[1:] if "trrandom" in text.lower() else ():
        if ln.text[:1] in "vi" and _GAUSSIAN_TRRANDOM.search(ln.text):
            return ln.lineno - 1, _TRRANDOM_WHY
    return None


def control_character(text: str) -> str | None:
    """Why ``text`` is not a text file -- a NUL or another control character (an escape sequence zoaf would
    echo to the terminal in a message) -- or None."""
    if "\x00" in text:
        return "not a text file (contains NUL bytes)"
    if text.isascii() and not text.encode("ascii").translate(None, _NOT_CONTROL):
        return None                      # the common case, at memory speed (the regex: 15 ms over a PDK's files)
    bad = _CONTROL.search(text)          # one regex: a per-character loop took 42 s on a 64 MiB include
    return None if bad is None else f"not a text file (control character {ord(bad.group()):#04x})"


def format_value(value: float) -> str:
    """A float as ngspice reads it back exactly (Python's shortest round-trip repr, 17 digits at most)."""
    v = float(value)
    if v != v or v in (float("inf"), float("-inf")):
        raise InputError(f"parameter value {value!r} is not a finite number")
    return repr(v)


def value_text(value: float, written: str) -> str:
    """The text that sets a ``.param`` to ``value``: its own ``written`` text where that means ``value`` (the
    designer's sizing: ngspice then computes it as the deck does, ``30u`` as 30 * 1e-6, an ulp from the 3e-05 zoaf
    holds), else :func:`format_value`."""
    return written if _meant(written) == value else format_value(value)


@functools.lru_cache(maxsize=4096)
def _meant(written: str) -> float | None:
    """The number a ``.param``'s text means (None: an expression); cached, as every simulation asks it again."""
    try:
        return units.parse(written.strip("{}' "), numparam=True, nearest=True)
    except InputError:
        return None


@dataclass
class Line:
    """One logical line: joined continuation lines, comments removed, lower-cased, and where it came from."""

    text: str                 # lower-cased logical text, no comments
    raw: str                  # original-case logical text, no comments
    lineno: int               # 1-based number of its first physical line
    segments: list[tuple[int, int, int]]   # (logical start offset, physical line index, column) per piece

    @functools.cached_property
    def starts(self) -> list[int]:
        """Each piece's logical start offset (read once the line is whole)."""
        return [s0 for s0, _, _ in self.segments]


@dataclass(frozen=True)
class ParamDef:
    """One ``name=value`` of a ``.param`` line, and where its value text sits in the physical lines."""

    name: str
    value: str
    lineno: int
    spans: tuple[tuple[int, int, int], ...]   # (physical line index, start col, end col) of the value


def substitute(text: str, path: Path, placeholders: Mapping[str, str]) -> str:
    """``text`` with each ``{{NAME}}`` replaced (InputError, with the line, for an unknown name)."""
    def sub(m: re.Match[str]) -> str:
        key = m.group(1)
        if key not in placeholders:
            lineno = text.count("\n", 0, m.start()) + 1
            raise InputError(f"{path}:{lineno}: unknown placeholder {{{{{key}}}}} "
                             f"(known: {', '.join(sorted(placeholders)) or 'none'})")
        return str(placeholders[key])
    return _PLACEHOLDER.sub(sub, text)


def quote(p: str) -> str:
    """A path as a deck quotes it (it may hold blanks)."""
    return f'"{p}"'


#: What a path written quoted cannot hold: ngspice ends the name at a double quote, the line at a newline.
_UNWRITABLE = re.compile(r'["\x00-\x1f\x7f-\x9f]')


def unquotable(path: Path) -> str | None:
    """Why ``path`` cannot be written by :func:`quote` (``best.cir``, the simulated deck, ``.spiceinit`` name each
    include and the deck's folder absolute and quoted), or None."""
    if bad := _UNWRITABLE.search(str(path)):
        what = "a double quote" if bad.group() == '"' else "a control character"
        return (f"its path {str(path)!r} holds {what}: zoaf writes it quoted (best.cir, the simulated deck, "
                ".spiceinit), where ngspice would read another file or line; rename it")
    return None


def first_unquoted(s: str, found: Callable[[str, int], bool], *, at: str) -> int | None:
    """Offset of the first character outside ``"..."``/``'...'`` quotes where ``found(s, offset)``, or None.

    ``found`` holds only at a character of ``at``: the quotes and those characters are found by a regex and a quoted
    run skipped whole (a Python step per character, over every line of a PDK's library, made reading a sky130 deck
    eight times slower)."""
    stops, pos = _stops(at), 0
    while (m := stops.search(s, pos)) is not None:
        i = m.start()
        if s[i] in "\"'":
            pos = s.find(s[i], i + 1) + 1
            if not pos:
                return None                                 # a quote left open runs to the end of the line
        elif found(s, i):
            return i
        else:
            pos = i + 1
    return None


@functools.lru_cache(maxsize=None)
def _stops(at: str) -> re.Pattern[str]:
    """A quote, or a character of ``at`` (:func:`first_unquoted`)."""
    return re.compile(f"[\"'{re.escape(at)}]")


def _comment_starts(s: str, i: int) -> bool:
    return s[i] == ";" or (s[i] == "$" and (i + 1 == len(s) or s[i + 1] in " \t") and (i == 0 or s[i - 1] in " \t"))


def _netlist_comment_starts(s: str, i: int) -> bool:
    """ngspice's rule outside ``.control``: a ``;``, a ``//``, or a ``$`` at the start or after a blank or a comma,
    whatever follows (``.param x=3 $x=4`` defines x=3; ``.include $HOME/x.inc`` names no file)."""
    return s[i] == ";" or s.startswith("//", i) or s[i] == "$" and (i == 0 or s[i - 1] in " \t,")


def tab_dollar_comment(s: str) -> bool:
    """Whether :func:`strip_comment` cuts ``s`` at a ``$`` followed by a tab: a comment on a netlist line, but
    text on a ``.control`` line, where ngspice reads on (``let x = 1\t$\t> file`` redirects)."""
    i = first_unquoted(s, _comment_starts, at=";$")
    return i is not None and s[i:i + 2] == "$\t"


def strip_comment(s: str, commands: bool = True) -> str:
    """Remove an inline comment (outside quotes): of a ``.control`` line (``commands``), a ``;`` or a ``$``
    between blanks; of a netlist line, as :func:`_netlist_comment_starts` says."""
    i = (first_unquoted(s, _comment_starts, at=";$") if commands
         else first_unquoted(s, _netlist_comment_starts, at=";/$"))
    return s if i is None else s[:i]


#: The characters an inline comment or a quote starts at, by either rule (:func:`strip_comment`).
_COMMENT_CHARS = re.compile("[;$/\"']")


def physical_lines(text: str) -> list[str]:
    """A file's physical lines as ngspice reads them: split at ``\\n`` only, a ``\\r`` before it dropped.

    Not :meth:`str.splitlines`, which also ends a line at a form feed, a vertical tab, NEL (latin-1 byte 0x85,
    U+0085) and U+2028/U+2029: ngspice keeps those inside the line, so the text after one in a comment stayed a
    comment in ``ngspice -b`` and became a card that zoaf's session simulated."""
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    if "\r" not in text:
        return lines                             # the common case, at memory speed (a PDK's 72,000 lines)
    return [ln[:-1] if ln.endswith("\r") else ln for ln in lines]


def logical_lines(physical: list[str], commands: bool = False, only: tuple[str, ...] = ()) -> list[Line]:
    """The logical lines of a deck's physical lines: the title, then each non-comment line with its ``+``
    continuations joined (the first physical line is always the title), comments removed as ngspice removes them
    from netlist lines and, from a ``.control`` line on to ``.endc`` (all along where ``commands``: a file of
    commands), from commands. Linear in the text: a line continued over 200,000 ``+`` lines once took seconds,
    its text grown one piece at a time. ``only``: just the lines whose first word starts with one of these
    (lower-case), the others and their continuations passed over unread (a PDK's model cards, nearly all of its
    text, which its ``.param`` reader has no use for)."""
    control = commands
    out: list[Line] = []
    pieces: list[list[str]] = []                 # per logical line: its raw pieces, joined once at the end
    length = 0                                   # of the last logical line's raw text so far
    kept: bool | None = None                     # whether the last logical line is kept (None: none yet)
    for idx, line in enumerate(physical):
        if kept is False and line[:1] == "+":
            continue            # a continuation of a card passed over (``only``), seen at once: a PDK's most lines
        if idx == 0:
            out.append(Line("", line, 1, [(0, 0, 0)]))
            pieces.append([line])
            continue
        stripped = line.lstrip()
        if not stripped or stripped[0] == "*" or line[:1] in " \t\f" and line.lstrip(" \t")[:1] == "\f":
            continue            # ngspice makes a line that starts with a form feed a comment ("unusual leading")
        if stripped[0] == "+" and kept is not None:
            if kept:
                col = len(line) - len(stripped) + 1
                out[-1].segments.append((length + 1, idx, col))
                pieces[-1].append(" " + strip_comment(line, control).rstrip()[col:])
                length += len(pieces[-1][-1])
            continue
        word = stripped[:8].lower()
        control = commands or word.startswith(".control") or control and not word.startswith(".endc")
        kept = not only or word.startswith(only)
        if kept:
            if _COMMENT_CHARS.search(line):         # else no comment to strip: a call less per line of a library
                line = strip_comment(line, control or word.startswith(".lib"))     # ngspice reads .lib unstripped
            body = line.rstrip()
            out.append(Line("", body, idx + 1, [(0, idx, 0)]))
            pieces.append([body])
            length = len(body)
    for ln, parts in zip(out, pieces):
        ln.raw = "".join(parts)
        ln.text = ln.raw.lower()
    return out


#: A line end before a line that starts a card (no blank, comment or ``+`` first): no logical line crosses it.
_CARD_START = re.compile(r"\n(?=[^\s*+])")
#: A comment line's text after the line end before it (blanks before the ``*``: spaces and tabs only).
_COMMENT_LINE = re.compile(r"\n[ \t]*\*[^\n]*")
#: The characters of an included file read into logical lines at a time (:func:`pieces`).
PIECE = 2**18


def pieces(text: str, size: int = PIECE) -> Iterator[tuple[str, int]]:
    """A file's ``text`` in pieces of about ``size`` characters, each ending before a line that starts a card (so
    that its logical lines are whole), with the number of lines before it: a reader that keeps a few of a file's
    lines builds :class:`Line` objects a piece at a time, not for the whole file at once (a 64 MiB include of
    ``.param`` lines was gigabytes of them). Only for text whose ``.control`` blocks are refused or that is read as
    commands throughout (an included file): each piece starts outside one. A comment line comes as an empty one
    (:func:`logical_lines` passes over both; the lines keep their numbers), whose string Python shares: a piece
    of a file of comments only is the whole file, and its lines were ~30 bytes per byte of the file."""
    start = before = 0
    while start < len(text):
        m = _CARD_START.search(text, start + size) if start + size < len(text) else None
        end = len(text) if m is None else m.end()
        yield _COMMENT_LINE.sub("\n", "\n" + text[start:end])[1:], before
        before += text.count("\n", start, end)
        start = end


def texts(physical: list[str]) -> list[str]:
    """The logical lines of a file's ``physical`` lines (no title line) as lower-cased text, the blanks around
    each physical piece removed, lines that held only a comment dropped. An ``.include``/``.lib`` line keeps
    its file name's case (ngspice opens it as written)."""
    out = []
    for ln in logical_lines(["", *physical])[1:]:
        ends = [s - 1 for s, _, _ in ln.segments[1:]] + [len(ln.raw)]      # a piece, then " " before the next
        text = " ".join(ln.raw[s:e].strip() for (s, _, _), e in zip(ln.segments, ends))
        word, _, rest = text.partition(" ")
        if text:
            out.append(f"{word.lower()} {rest}" if word.lower() in (".include", ".inc", ".lib") else text.lower())
    return out


def physical_spans(ln: Line, start: int, end: int) -> tuple[tuple[int, int, int], ...]:
    """Map logical offsets [start, end) of ``ln.raw`` to (physical line index, col0, col1) pieces.

    Found by bisection over the pieces' starts: called once per ``.param`` assignment, a walk over every piece
    made a line continued over 8,000 ``+`` lines take a minute."""
    starts = ln.starts
    spans = []
    k = max(0, bisect.bisect_right(starts, start) - 1)
    while k < len(starts) and starts[k] < end:
        s0, idx, col = ln.segments[k]
        s1 = starts[k + 1] if k + 1 < len(starts) else len(ln.raw) + 1
        a, b = max(start, s0), min(end, s1 if s1 <= len(ln.raw) else len(ln.raw))
        if a < b:
            spans.append((idx, col + a - s0, col + b - s0))
        k += 1
    return tuple(spans)

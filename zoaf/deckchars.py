"""Text that ngspice and zoaf's reader would read as different cards, or zoaf would echo as an escape sequence:
refused with its file and line before any check reads the text (:func:`refuse_misread`, for a deck and each file it
includes), since every check after it trusts zoaf's reading of lines and words to be ngspice's."""
from __future__ import annotations

import re
from pathlib import Path

from .errors import InputError

__all__ = ["refuse_misread"]

#: A carriage return that does not end a line: ngspice drops it and joins the text around it (``.con\rtrol`` is
#: ``.control``), where zoaf's line splitting would see two lines.
_LONE_CR = re.compile(r"\r(?!\n)")
#: A line whose text starts after a blank other than a space, a tab or a form feed (which makes the line a comment,
#: for ngspice and zoaf's reader alike), as a vertical tab or U+00A0:
#: zoaf's reader strips it as Python does, ngspice keeps it, so ``\xa0.endc`` ended a ``.control`` block for zoaf's
#: checks only, and the commands after it (``alias``, redirects) ran unchecked in ``ngspice -b`` and in zoaf.
_ODD_BLANK = re.compile(r"^[ \t]*([^\S \t\n\r\f])[^\S\n]*\S", re.M)
#: A character ngspice and zoaf read otherwise, outside a comment: a blank inside a line that Python splits words at
#: and ngspice (C's ``isspace``) does not (U+00A0, U+2028, U+3000...: ``.include x.inc\xa0y`` is the file ``x.inc``
#: for zoaf's readers, checked and simulated, and the unchecked ``x.inc\xa0y`` for ``ngspice -b``; ``if\xa0x > file``
#: is an ``if``, a condition, for the checks and an unknown command whose redirect ngspice makes); or a C1 control
#: (U+0080 to U+009F, a byte of a deck read as latin-1: U+009B is ESC ``[`` on terminals that read C1 controls, and
#: zoaf's notes quote a deck's names).
_ODD = "\x1c-\x1f\x80-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"   # for a [class]: C1, what else splits
#: The first :data:`_ODD` character of a line that is no comment (``*``, a form feed), before its inline comment (a
#: ``;``, or a ``$`` between blanks, outside quotes: :func:`zoaf.decktext.strip_comment`): a regex, each part of the
#: line read once (possessive, no backtracking), where a loop per character took 30 s on a 64 MiB include.
_ODD_IN_CODE = re.compile(rf"""^(?![ \t]*[*\f])
    (?:[^;$"'\n{_ODD}]++|"[^"\n{_ODD}]*+"|'[^'\n{_ODD}]*+'|\$(?=[^ \t\n])|(?<=[^ \t\n])\$)*+  # text, "text", $x
    (?:"[^"\n{_ODD}]*|'[^'\n{_ODD}]*)?([{_ODD}])""", re.M | re.X)
_ODD_CHARACTER = re.compile(f"[{_ODD}]")
#: A byte-order mark starting a line after the title (an included file's first line): ngspice keeps its three bytes
#: in the card (``___.param``, "unknown device type"); a session failed naming neither the file nor the mark.
_BOM_STARTS = re.compile("^[ \t]*\ufeff", re.M)
#: Lines holding an :data:`_ODD` character that :func:`_odd_in_code` matches one by one before it searches the rest.
_ODD_LINES = 64


def refuse_misread(path: Path, text: str, *, title: bool = False, bom: bool = True) -> None:
    """InputError, with its line, for text ngspice and zoaf's reader would read as different cards, or zoaf would
    echo as an escape sequence: a carriage return inside a line (ngspice drops it and reads the text around it as
    one word: ``.con\\rtrol`` opens a ``.control`` block, where zoaf's checks would see two lines), a line that
    starts after an odd blank (:data:`_ODD_BLANK`), a Unicode blank or a C1 control outside a comment
    (:data:`_ODD_IN_CODE`), a byte-order mark starting a line (``bom``; not for a ``.lib`` file read by section:
    ngspice reads only the section, and an editor's mark at the top of the file is outside it). Not in a deck's
    first line, its title, whatever it holds."""
    if (m := _LONE_CR.search(text)) is not None:
        line = text.count("\n", 0, m.start()) + 1
        raise InputError(f"{path}:{line}: a carriage return inside a line: ngspice drops it and joins the text "
                         "around it ('.con\\rtrol' is '.control'); refused (end lines with '\\n' or '\\r\\n')")
    if text.isascii() and "\v" not in text:
        return                                          # the common case, at memory speed (PDK files are large)
    start = (text.find("\n") + 1 or len(text)) if title else 0
    if bom and (m := _BOM_STARTS.search(text, start)) is not None:
        line = text.count("\n", 0, m.start()) + 1
        raise InputError(f"{path}:{line}: the line starts with a UTF-8 byte-order mark (U+FEFF), which ngspice reads "
                         "as text ('\\ufeff.param' is an unknown device type); refused (save the file without a BOM)")
    if (m := _ODD_BLANK.search(text, start)) is not None:
        line = text.count("\n", 0, m.start()) + 1
        raise InputError(f"{path}:{line}: the line starts after the blank U+{ord(m.group(1)):04X}, which ngspice "
                         "reads as text ('\\xa0.endc' does not end a .control block there); refused (indent with "
                         "spaces or tabs)")
    if (m := _odd_in_code(text, start)) is not None:
        line, code = text.count("\n", 0, m.start()) + 1, ord(m.group(1))
        if code in range(0x80, 0xa0):
            raise InputError(f"{path}:{line}: the control character U+{code:04X}, which some terminals read as an "
                             "escape sequence (U+009B as ESC '['); refused")
        raise InputError(f"{path}:{line}: the blank U+{code:04X} inside a line, which ngspice reads as text and "
                         "zoaf's reader as a blank ('.include x.inc\\xa0y' is another file for each); refused "
                         "(write a space)")


def _odd_in_code(text: str, start: int) -> re.Match[str] | None:
    """The first line from ``start`` with an :data:`_ODD` character outside a comment (its match), or None. The lines
    that hold one are matched one by one (a file with a few, in comments, is not read whole again), the first
    :data:`_ODD_LINES` of them; then one search reads the rest (a 54 MiB include of such lines took 10 s line by
    line in zoaf's own process, 2 s so)."""
    for _ in range(_ODD_LINES):
        if (odd := _ODD_CHARACTER.search(text, start)) is None:
            return None
        begin = text.rfind("\n", 0, odd.start()) + 1
        if (m := _ODD_IN_CODE.match(text, begin)) is not None:
            return m
        start = text.find("\n", odd.start()) + 1 or len(text)
    return _ODD_IN_CODE.search(text, start)

"""Text checks on a deck and the files it includes: refuse what is certainly an escape, with one clear line.

These checks are the friendly first line, not the guarantee (that is :mod:`zoaf.sandbox`): ngspice expands
aliases and variables and splits at ``;`` after zoaf has read the text, so a filter sees only the spelling on
the page. What is refused here is what can only be an attempt to leave the simulation:

* in ``.control`` commands: ``alias`` (it renames any command), ``circbyline`` (it hands ngspice netlist lines,
  a ``.control`` block among them, that run as commands no check here sees), a ``$`` in the command word (a
  variable names the command), a ``;`` (inside quotes it survives zoaf's comment stripping and separates
  commands once ngspice expands it), a ``>``/``<`` redirect (or one ``set`` or ``option`` puts in a variable),
  and -- unless ``allow_shell`` -- the commands that run programs or load code (:data:`REFUSED_COMMANDS`), back-quote
  substitution and any mention of ``unixcom``;
* on ``.meas`` and analysis lines (zoaf sends them to ngspice's command interpreter): a redirect, a quoted
  ``;``, a back-quote; on ``.option`` lines a ``>`` or ``<`` (an option is a variable: ``.options g=">"``,
  ``$g``);
* in an included or ``.lib`` file: a ``.control`` block (ngspice runs it while the deck loads, in every worker);
  an analysis or a ``.meas`` card (zoaf runs and measures the netlist's own only);
* an include cycle (ngspice 39 segfaults on one).

ngspice 39 redirects at any ``>``/``<`` outside quotes -- inside parentheses too (``let z = (1>0)`` writes a
file ``0)``), escaped or not -- except ``>=``/``<=`` and in the conditions of ``if``/``while``/``dowhile``.

:func:`walk_includes` follows ``.include``/``.inc``/``.lib file section`` recursively (relative paths as ngspice
resolves them from an empty working folder: an ``.include`` from the including file's folder, a ``.lib`` file
from the folder of the library the line sits under, else from the deck's), reads each file once, checks it, and
returns the files by content: the run identity (:meth:`zoaf.netlist.Netlist.digest`) and the sandbox's readable
files use it. zoaf reads them in its own process, so only regular files of bounded size outside ``/proc``,
``/sys`` and ``/dev`` (:mod:`zoaf.infile`), without control characters, at most :data:`MAX_INCLUDE_DEPTH` deep.
"""
from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from .deckchars import refuse_misread
from .decktext import after_title, control_character, first_unquoted, included_trrandom
from .errors import InputError
from .infile import read_bounded
from .ngcommands import ANALYSES, REFUSED_COMMANDS, base_word

__all__ = ["IncludedFile", "Includes", "command_problem", "dot_line_problem", "include_args", "real_path",
           "redirect_at", "resolve", "walk_includes"]

#: Commands whose arguments are conditions, where ``>`` and ``<`` compare rather than redirect: the block openers,
#: and those ngspice's ``docommand`` never redirects (``stop when v(out) > 0.6``, ``define f(a, b) a > b``).
_CONDITIONS = frozenset({"if", "elseif", "while", "dowhile", "stop", "define"})
#: A dot line with its ``+`` continuation lines (one match per logical dot line), searched in ``"\n" + text``: sre
#: skips from newline to newline at memory speed, where a ``^`` under re.M is tried at every position (~20 ms in a
#: sky130 library's 2.9 M characters).
_DOT_LINE = re.compile(r"\n[ \t]*(\.[A-Za-z_]+)([^\n]*(?:\n[ \t]*\+[^\n]*)*)")
#: Includes nested deeper than this are refused (a PDK nests a few levels; the walk recurses per level).
MAX_INCLUDE_DEPTH = 64
#: Characters all included files together may hold (each is also bounded: :data:`zoaf.infile.MAX_FILE_BYTES`): read in
#: zoaf's own process at up to ~27 bytes a character (a file of ``.param`` lines, BENCHMARKS.md §1d), 64 MiB is
#: under 2 GB (256 MiB was ~7 GB); sky130's includes hold 2.8 MiB.
MAX_INCLUDED_CHARS = 64 * 2**20
#: Characters ngspice's command lexer removes or expands in a command word: a backslash escapes the next character,
#: quotes are dropped, braces expand (``sh\ell``, ``'shell'``, ``sh{e}ll`` all run ``shell``).
_SPELLING = re.compile(r"[\\'\"{}`]")
#: An ``.include`` file name as ngspice 39 reads it: quoted, up to the same quote; else up to a blank, quotes and
#: all (``.include a"b`` reads the file ``a"b``, not ``a``).
_INCLUDE_NAME = re.compile(r"\s*(?:\"([^\"]*)\"|'([^']*)'|([^\s\"']\S*))")
#: What separates a ``.lib`` line's file and section for ngspice 39: blanks and quotes alike (``.lib "a b" s`` and
#: ``.lib a"b s`` read section ``b`` of the file ``a``).
_LIB_SEPARATORS = re.compile(r"[\s\"']+")


#: Commands that set ngspice variables (``.option`` lines too: ``.options g=">"`` is ``$g``).
_SETS_VARIABLES = frozenset({"set", "setcs", "option", "options", "opt"})
_IN_A_VARIABLE = ("puts a '>' or '<' in a variable: ngspice redirects at it once '$name' expands in a later command "
                  "('set g = \">\"' or '.options g=\">\"', then 'echo x $g FILE' writes FILE)")


def redirect_at(text: str) -> int | None:
    """Offset of the first ``>``/``<`` ngspice's command interpreter would take as a redirect, or None."""
    return first_unquoted(text, lambda s, i: s[i + 1:i + 2] != "=", at="<>")


_TO_PLAIN_FILE = re.compile(r">>?[ \t]*[a-z0-9_][a-z0-9_.+-]*[ \t]*")     # "> name", ">> name": no folder


def _echo_to_file(text: str, base: str, at: int) -> bool:
    """Whether the command ``text`` (redirect at offset ``at``) is an ``echo`` into one plain file of the working
    folder, as Qucs-S writes in every deck (``echo "" > spice4qucs.cir.noise``; ``echo "$&n $r" >> ...res`` in a
    sweep). zoaf never runs it: a session replays no ``echo``, a whole-deck run leaves this one out
    (:func:`zoaf.ngcommands.batch_drops`)."""
    return base == "echo" and _TO_PLAIN_FILE.fullmatch(text, at) is not None


def command_problem(text: str, *, allow_shell: bool) -> str | None:
    """Why the ``.control`` command ``text`` (lower-cased, comments removed) is refused, or None."""
    word = text.split(None, 1)[0]
    base = base_word(text)
    why = None
    if "$" in word:
        why = "names its command through a variable, which may stand for any command"
    elif ";" in text:
        why = "holds a ';', which separates commands once ngspice expands the line (one command per line)"
    elif base == "alias":
        why = "defines an alias, which may rename any command (shell, write...)"
    elif base == "circbyline":
        why = ("hands ngspice a netlist line by line: a .control block among the lines runs commands zoaf never "
               "checks (shell, write, redirects spelled '>>')")
    elif not allow_shell and "`" in text:
        return f"back-quote command substitution runs a program; refused (allow it with allow_shell=True): {text!r}"
    elif not allow_shell and (base in REFUSED_COMMANDS or base.startswith("!") or re.search(r"\bunixcom\b", text)):
        return f".control command {word!r} runs another program; refused (allow it with allow_shell=True)"
    elif _SPELLING.search(word):
        why = ("spells its command word with a quote, a backslash, a brace or a back-quote, which ngspice removes "
               "or expands ('sh\\ell', \"'shell'\" and 'sh{e}ll' are shell)")
    elif base not in _CONDITIONS and (at := redirect_at(text)) is not None and not _echo_to_file(text, base, at):
        why = "redirects ngspice's output with '>' or '<' (compare with gt, lt, >=, <=)"
    elif base.lstrip(".") in _SETS_VARIABLES and re.search(r"[<>]", text):
        why = _IN_A_VARIABLE
    return None if why is None else f".control command {word!r} {why}; refused"


def dot_line_problem(word: str, text: str) -> str | None:
    """Why a ``.meas`` or analysis line is refused, or None: zoaf sends these lines to ngspice's command
    interpreter, which redirects at ``>``, splits at a ``;`` (even a quoted one) and runs back-quoted programs --
    none of which ``ngspice -b`` does with the card. Or a ``.option`` line that puts a redirect in a variable."""
    if word.startswith(".opt") and re.search(r"[<>]", text):
        return f"a {word} line {_IN_A_VARIABLE}; refused"
    if not (word in (".meas", ".measure") or word[1:] in ANALYSES):
        return None
    if redirect_at(text) is not None:
        return f"a '>' or '<' on a {word} line redirects ngspice's output to a file; refused"
    if ";" in text:
        return f"a quoted ';' on a {word} line would separate commands once zoaf runs the line; refused"
    if "`" in text:
        return f"a back-quote on a {word} line would run a program once zoaf runs the line; refused"
    return None


@dataclass(frozen=True)
class IncludedFile:
    """A file the deck includes (directly or not) and the sha256 of its content (part of the run's identity)."""

    path: Path          # links followed as it was checked (a link swapped in since leads elsewhere: not granted)
    sha256: str


@dataclass
class _Edge:
    word: str           # ".include", ".lib", ...
    target: str         # as written
    path: Path          # resolved
    section: str | None
    line: int


@dataclass
class _Scan:
    """One file's include edges, by the ``.lib`` section they sit in (None: outside any section)."""

    path: Path
    text: str = ""
    sha256: str = ""
    edges: dict[str | None, list[_Edge]] = field(default_factory=dict)


def _scan(path: Path, text: str, *, included: bool, allow_shell: bool) -> _Scan:
    """The include edges of ``text``; for an included file also its escapes (InputError). Past ``.end`` too:
    ``ngspice -b`` reads on (the netlist refuses a dot-command there, but not inside a ``.control`` block left
    open, whose includes it reads: the walk stopped at ``.end`` and left them unread, a traceback)."""
    scan = _Scan(path, text)
    section: str | None = None
    line, pos = 1, 0
    for m in _DOT_LINE.finditer("\n" + text):        # m.start(), the newline before the line there: its start here
        line += text.count("\n", pos, m.start())
        pos = m.start()
        word = m.group(1).lower()
        rest = ("" if word in (".model", ".param")       # read by no check here (a .param: by the netlist's reader)
                else _strip_comments(m.group(2), word.startswith(".inc")))
        where = f"{path}:{line}"
        if included:
            if word.startswith(".control"):
                raise InputError(f"{where}: a .control block in an included file runs in every worker when the "
                                 "deck loads; refused (move it into the netlist itself)")
            why = dot_line_problem(word, word + rest)
            if why:
                raise InputError(f"{where}: {why}")
            if word in (".meas", ".measure") or word[1:] in ANALYSES:
                raise InputError(f"{where}: {word} in an included file: ngspice -b runs it, but zoaf runs and "
                                 "measures the netlist's own analyses and .meas cards only; refused (move it into "
                                 "the netlist itself)")
        if word == ".osdi" and not allow_shell:
            raise InputError(f"{where}: .osdi loads a shared library (code); refused (allow it with allow_shell=True)")
        if word.startswith(".endl"):
            section = None
        elif word.startswith((".inc", ".lib")):
            args = include_args(word, rest)
            if args is None:
                raise InputError(f"{where}: {word} needs a file name (for ngspice a `$` after a blank starts a "
                                 "comment, as `;` and `//` do: `.include $HOME/x.inc` names none; write the path out)")
            target, sec = args
            if target is None:
                section = sec                            # ".lib name" opens a section definition
                continue
            if target[:1] in ("\"", "'") or target[-1:] in ("\"", "'"):
                raise InputError(f"{where}: {word} {target}: a file name that starts or ends with a quote, which "
                                 "ngspice keeps and zoaf's netlist reader drops (it loaded another file); refused "
                                 "(rename the file)")
            resolved = resolve(path.parent, target)
            scan.edges.setdefault(section, []).append(_Edge(word, target, resolved, sec, line))
    return scan


def include_args(word: str, rest: str) -> tuple[str | None, str | None] | None:
    """The file (as written, unquoted) and ``.lib`` section (lower-cased) of a ``.include``/``.inc``/``.lib``
    line (``word``; ``rest`` the text after it, comments removed): ``(file, None)`` for an include, ``(file,
    section)`` for ``.lib file section``, ``(None, name)`` for ``.lib name``, which opens a section
    definition; None when there is no file name. Read as ngspice 39 reads them, so that the file checked is the
    file it includes."""
    if word.startswith(".lib"):
        words = [w for w in _LIB_SEPARATORS.split(rest) if w]
        if not words:
            return None
        return (None, words[0].lower()) if len(words) == 1 else (words[0], words[1].lower())
    a = _INCLUDE_NAME.match(rest)
    return None if a is None else (next(g for g in a.groups() if g is not None), None)


#: Where an inline comment starts on a ``.lib`` line; on an ``.include`` line (as :mod:`zoaf.decktext` reads them).
_COMMENT = re.compile(r";|(?<!\S)\$(?=\s|$)")
_NETLIST_COMMENT = re.compile(r";|//|(?<![^ \t,])\$")


def _strip_comments(text: str, netlist: bool = False) -> str:
    """Drop ``;`` and ``$ `` inline comments of each physical line (``netlist``: also ``//`` and a ``$`` after a
    blank or a comma, as ngspice drops them from an ``.include`` line) and join ``+`` continuations."""
    pieces = []
    for k, piece in enumerate(text.split("\n")):
        if k:
            piece = piece.lstrip()[1:]                  # the '+'
        pieces.append((_NETLIST_COMMENT if netlist else _COMMENT).split(piece, maxsplit=1)[0])
    return " ".join(pieces)


def resolve(folder: Path, target: str) -> Path:
    """An include path as ngspice opens it from a file in ``folder`` (relative to it; ``~/`` expanded). ngspice 39
    expands no ``~user``: ``.include ~user/x.inc`` is the file ``x.inc`` of a folder ``~user`` in ``folder``, where
    zoaf read, checked and simulated the other user's ``x.inc``."""
    t = Path(os.path.expanduser(target) if target.startswith("~/") else target)
    return t if t.is_absolute() else folder / t


@dataclass(frozen=True)
class Includes:
    """What :func:`walk_includes` found: the files by content, and each one's text (resolved path -> text)."""

    files: tuple[IncludedFile, ...]
    texts: dict[Path, str]
    lib_folder: Path | None = None   # the deck's folder, where an included file's relative .lib line is opened


def walk_includes(root: Path, text: str, *, allow_shell: bool = False,
                  admit: Callable[[str, str, Path], None] | None = None) -> Includes:
    """Every file the deck ``root`` (whose text is ``text``) includes, directly or not, each read once, in the
    order first reached; each checked (:func:`_scan`). InputError for a missing file, an escape or a cycle.

    A ``.lib file section`` reads only that section's includes (zoaf's reads: ngspice opens the others too, and
    drops them with their section), but the whole file is checked. The deck and an ``.include``d file are no
    library: ngspice reads the includes inside their ``.lib name`` definitions too (and then refuses the card).
    ``admit(file:line, words, path)`` vets each file before it is first read (:mod:`zoaf.readscope`).
    A file is walked once per folder its ``.lib`` lines open from: included from the deck, the deck's; from a
    library, the library's (one walk with the first folder left the other's library unread, unchecked, unsized).
    """
    refuse_misread(root, text, title=True)
    scans = {root.resolve(): _scan(root, after_title(text), included=False, allow_shell=allow_shell)}
    files: dict[Path, IncludedFile] = {}
    finished: set[tuple[Path, str | None, Path | None]] = set()
    chars = 0
    deck_libs: list[tuple[Path, _Edge]] = []
    followed: list[tuple[Path, _Edge]] = []

    def visit(node: tuple[Path, str | None], stack: list[tuple[Path, str | None]], via: list[str],
              home: Path | None) -> None:
        nonlocal chars
        stack.append(node)
        for e in _edges(scans[node[0]], node[1]):
            if e.section is not None:           # ngspice opens a .lib file from the library's folder or the deck's
                e = replace(e, path=resolve(home or root.resolve().parent, e.target))
                if home is None and len(stack) > 1 and not resolve(Path(), e.target).is_absolute():
                    deck_libs.append((scans[node[0]].path, e))
            if len(stack) > 1:
                followed.append((scans[node[0]].path, e))
            if len(stack) > MAX_INCLUDE_DEPTH:
                raise InputError(f"{scans[node[0]].path}:{e.line}: {e.word} {e.target}: includes nested more than "
                                 f"{MAX_INCLUDE_DEPTH} deep (from {root.name}); refused")
            key = (real_path(f"{scans[node[0]].path}:{e.line}: {e.word} {e.target}", e.path), e.section)
            if key in stack:
                chain = " -> ".join([*via, e.path.name])
                raise InputError(f"{scans[node[0]].path}:{e.line}: {e.word} {e.target} includes itself "
                                 f"(cycle: {chain})")
            inner = e.path.parent if e.section is not None else None if len(stack) == 1 else home
            if (*key, inner and inner.resolve()) in finished:   # once per folder its .lib lines open from
                continue
            if key[0] not in scans:
                if admit is not None:
                    admit(f"{scans[node[0]].path}:{e.line}", f"{e.word} {e.target}", e.path)
                scans[key[0]] = _read(f"{scans[node[0]].path}:{e.line}", e, allow_shell)
                files[key[0]] = IncludedFile(key[0], scans[key[0]].sha256)
                chars += len(scans[key[0]].text)
                if chars > MAX_INCLUDED_CHARS:
                    raise InputError(f"{scans[node[0]].path}:{e.line}: {e.word} {e.target}: the included files "
                                     f"hold more than {MAX_INCLUDED_CHARS // 2**20} MiB of text; refused")
            visit(key, stack, [*via, e.path.name], inner)
        stack.pop()
        finished.add((*node, home and home.resolve()))

    visit((root.resolve(), None), [], [root.name], root.resolve().parent)
    folder = _lib_folder(root.resolve().parent, deck_libs, followed)
    return Includes(tuple(files.values()), {p: scans[p].text for p in files}, folder)


def real_path(where: str, path: Path) -> Path:
    """``path`` with its links followed; InputError naming ``where`` for a loop of links (Python 3.11's resolve
    raised RuntimeError: ``.include loop``, a link to itself, was a traceback)."""
    try:
        return path.resolve()
    except RuntimeError:
        raise InputError(f"{where}: {path} is a loop of symbolic links; refused") from None


def _lib_folder(deck: Path, deck_libs: list[tuple[Path, _Edge]], followed: list[tuple[Path, _Edge]]
                ) -> Path | None:
    """The deck's folder where an included file names a ``.lib`` file relative to it (``deck_libs``), else None.

    ngspice -b opens such a file from the deck's folder; a session, which loads the deck line by line, knows no
    deck folder and looks in its working folder, then in the ``sourcepath`` folders: the session appends the deck's
    folder there. Every relative name of an included file is then looked for there before its own folder: a name
    (``followed``) that exists in both the deck's and its own folder, as two files, is refused; so is a deck folder
    whose name ngspice's command reader would change (a quote, ``$``, ...)."""
    if not deck_libs:
        return None
    if re.search(r"[\"'`$\\;(){}<>]", str(deck)):
        raise InputError(f"{deck_libs[0][0]}:{deck_libs[0][1].line}: .lib {deck_libs[0][1].target}: ngspice opens "
                         f"it from the deck's folder, whose name ({deck}) zoaf cannot hand ngspice; refused (rename "
                         "the folder, or write the path absolute)")
    for path, e in followed:
        there = resolve(deck, e.target)
        if there.exists() and not (e.path.exists() and there.samefile(e.path)):
            raise InputError(f"{path}:{e.line}: {e.word} {e.target}: ngspice -b opens {e.path}, a session (which must "
                             f"look in the deck's folder for {deck_libs[0][0]}:{deck_libs[0][1].line}) would open "
                             f"{there}; refused (rename one, or write the path absolute)")
    return deck


def _edges(scan: _Scan, section: str | None) -> list[_Edge]:
    """The includes of ``scan`` that ngspice reads: those of ``section`` of a library, or every one, in order, of
    a file read whole (``section`` None: the deck, an ``.include``d file). Walking only the lines outside a
    ``.lib name`` definition left a file ngspice reads unread and unchecked (and zoaf's netlist reader, which
    expected its text, with a traceback)."""
    if section is not None:
        return scan.edges.get(section, [])
    return sorted((e for edges in scan.edges.values() for e in edges), key=lambda e: e.line)


def _read(where: str, edge: _Edge, allow_shell: bool) -> _Scan:
    line = f"{where}: {edge.word}"
    try:
        data = read_bounded(edge.path)
    except FileNotFoundError:
        raise InputError(f"{line} file not found: {edge.target} (looked for {edge.path})") from None
    except IsADirectoryError:
        raise InputError(f"{line} {edge.target}: is a directory, not a file ({edge.path})") from None
    except OSError as e:
        raise InputError(f"{line} {edge.target}: cannot read {edge.path}: {e.strerror or e}") from None
    text = data.decode("utf-8", "replace")
    if (why := control_character(text)) is not None:
        raise InputError(f"{line} {edge.target}: {why} ({edge.path})")
    refuse_misread(edge.path, text, bom=edge.section is None)
    if (drawn := included_trrandom(text)) is not None:
        raise InputError(f"{edge.path}:{drawn[0]}: {drawn[1]}")
    scan = _scan(edge.path, text, included=True, allow_shell=allow_shell)
    scan.sha256 = hashlib.sha256(data).hexdigest()
    return scan

"""What a deck reads outside its own folder: one note per file, or, confined by ``ZOAF_INCLUDE_ROOTS``, a refusal.

A deck may ``.include``/``.lib`` any regular file its user can read, as ``ngspice -b`` does, and ngspice's error
messages quote a line of it into a run's results (``.include ~/.aws/credentials`` put the key id into
``result.json``: "Undefined parameter [akia...]"); XSPICE code models read the file a ``.model`` card names
(``filesource file=``, ``table2D``/``table3D`` ``file=``, ``d_source`` ``input_file=``, ``d_state`` ``state_file=``)
and make its numbers results; a ``.control`` block's ``load`` reads a raw file (of any other file, "strange line
in rawfile" quotes the first line into its error). Designers share decks and results, so a received deck's reads
are shown before it runs: each such file outside the deck's folder tree and the system's model folders
(:func:`system_roots`), links followed, with the ``file:line`` that names it. With ``ZOAF_INCLUDE_ROOTS`` set
(folders, ``os.pathsep`` between them; empty: none) such a file must lie under one of those folders, else the deck
is refused with that line.

Includes are vetted as :func:`zoaf.deckcheck.walk_includes` reaches them, before zoaf reads them, in a dead
``.if`` branch too (the walk follows every include line; the sandbox grants each included file to Landlock). A file
a ``.model`` card or ``load`` names is readable in the sandbox only from the trees Landlock grants (the system's
folders, the deck's, an included file): its note says what a kernel without Landlock lets ngspice read.
"""
from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from . import deckcheck, pdk
from .decktext import after_title
from .errors import InputError

__all__ = ["ROOTS_ENV", "OutsideRead", "ReadScope", "system_roots", "walk"]

#: The environment variable that confines what a deck may name to its folder, the system's and these folders.
ROOTS_ENV = "ZOAF_INCLUDE_ROOTS"
#: System folders whose files need no note: installed software and its model libraries, no user's data.
SYSTEM_FOLDERS = ("/usr", "/opt")
#: A ``.model`` card with its ``+`` continuation lines.
_MODEL = re.compile(r"^[ \t]*\.model\b([^\n]*(?:\n[ \t]*\+[^\n]*)*)", re.I | re.M)
#: A ``.control`` block's ``load`` command (it reads a raw file: "Error: strange line in rawfile:" quotes the first
#: line of any other file) and its file names, up to an inline comment.
_CONTROL = re.compile(r"^[ \t]*\.control.*?(?=^[ \t]*\.endc|\Z)", re.I | re.M | re.S)
_LOAD = re.compile(r"^[ \t]*load[ \t]+([^\n;]*)", re.I | re.M)
#: A file-naming parameter of an XSPICE code model (``file``, ``input_file``, ``state_file``) and its value.
_FILE_PARAM = re.compile(r"(?<![\w])(\w*file)\s*=\s*(?:\"([^\"]*)\"|'([^']*)'|([^\s()\[\]\"']+))", re.I)
#: What every :data:`_FILE_PARAM` holds, in a lower-cased text: a file without it (a sky130 library's every file) names
#: no file on a ``.model`` card, and its cards are not read (the two regexes took ~0.15 s per sky130 deck read).
_NAMES_FILE = re.compile(r"file\s*=")


@dataclass(frozen=True)
class OutsideRead:
    """A file a deck names for ngspice to read that lies outside its folder tree and the system's folders."""

    path: Path      # links followed
    where: str      # "file:line" of the line that names it
    how: str        # that line's words: ".include ~/x.inc", "filesource file=..."

    def __str__(self) -> str:
        return (f"{self.where}: {self.how}: reads {self.path}, outside the deck's folder and the system's model "
                f"folders (ngspice may quote its lines into results; {ROOTS_ENV} confines what a deck reads)")

    def as_dict(self) -> dict[str, str]:
        return {"file": str(self.path), "from": self.where, "how": self.how}


def system_roots() -> tuple[Path, ...]:
    """The folders whose files a deck reads without a note: :data:`SYSTEM_FOLDERS` and the sky130 models' tree."""
    try:
        models = (pdk.sky130_tree(),)
    except (pdk.PdkError, OSError):
        models = ()
    return (*map(Path, SYSTEM_FOLDERS), *models)


def _configured_roots(env: Mapping[str, str]) -> tuple[Path, ...] | None:
    """The folders of ``ZOAF_INCLUDE_ROOTS`` (resolved), or None when it is unset; InputError for a relative one."""
    value = env.get(ROOTS_ENV)
    if value is None:
        return None
    roots = []
    for entry in filter(None, value.split(os.pathsep)):
        path = Path(entry).expanduser()
        if not path.is_absolute():
            raise InputError(f"${ROOTS_ENV}: {entry!r} is not an absolute path; name folders absolute, "
                             f"separated by {os.pathsep!r}")
        roots.append(path.resolve())
    return tuple(roots)


def _beneath(path: Path, roots: tuple[Path, ...]) -> bool:
    """Whether ``path`` is one of ``roots`` or lies under one (all absolute: resolved, or the system's folders): its
    parts begin with the root's (``r in path.parents`` made a Path per level, ~10 ms per sky130 deck read)."""
    return any(path.parts[:len(r.parts)] == r.parts for r in roots)


@dataclass
class ReadScope:
    """The files one deck names outside its folder (:attr:`found`); refuses them when confined."""

    deck: Path
    found: list[OutsideRead] = field(default_factory=list)
    folder: Path = field(init=False)
    confined: tuple[Path, ...] | None = field(init=False)      # ZOAF_INCLUDE_ROOTS, None when unset
    free: tuple[Path, ...] = field(init=False)                 # the deck's folder and the system's: no note

    def __post_init__(self) -> None:
        self.folder = self.deck.parent.resolve()
        self.confined = _configured_roots(os.environ)
        self.free = (self.folder, *system_roots())

    def admit(self, where: str, how: str, path: Path) -> None:
        """Note the file ``path`` that ``where`` (``file:line``) names with ``how``; InputError when confined and
        it lies outside the deck's folder, the system's and ``ZOAF_INCLUDE_ROOTS``."""
        resolved = deckcheck.real_path(f"{where}: {how}", path)
        if _beneath(resolved, self.free):
            return
        if self.confined is None:
            self.found.append(OutsideRead(resolved, where, how))
        elif not _beneath(resolved, self.confined):
            roots = os.pathsep.join(map(str, self.confined)) or "empty"
            raise InputError(f"{where}: {how}: {resolved} lies outside the deck's folder ({self.folder}), the "
                             f"system's model folders and ${ROOTS_ENV} ({roots}); refused")

    def model_files(self, path: Path, text: str) -> None:
        """:meth:`admit` each file a ``.model`` card of ``text`` (the file ``path``) names; a relative name as
        XSPICE opens it, from the deck's folder (``NGSPICE_INPUT_DIR``)."""
        if text.isascii() and _NAMES_FILE.search(text.lower()) is None:      # ASCII: lower() maps as re.I matches
            return
        line, pos = 1, 0
        for card in _MODEL.finditer(text):
            line, pos = line + text.count("\n", pos, card.start()), card.start()    # counted from 0 per card: quadratic
            for m in _FILE_PARAM.finditer(card.group(1)):
                name = next(g for g in m.groups()[1:] if g is not None)
                if name:
                    self.admit(f"{path}:{line}", f".model {m.group(1).lower()}={name}",
                               deckcheck.resolve(self.folder, name))

    def loaded_files(self, path: Path, text: str) -> None:
        """:meth:`admit` each file a ``load`` command of the deck's ``.control`` block (``text``) names; a relative
        name from the deck's folder, where one runs it by hand (zoaf's sandbox starts ngspice in an empty one)."""
        for block in _CONTROL.finditer(text):
            for m in _LOAD.finditer(text, block.start(), block.end()):
                line = text.count("\n", 0, m.start()) + 1
                for word in re.split(r"(?<!\S)\$(?=\s|$)", m.group(1), maxsplit=1)[0].split():
                    if name := word.strip("\"'"):
                        self.admit(f"{path}:{line}", f"load {name}", deckcheck.resolve(self.folder, name))


def walk(deck: Path, text: str, *, allow_shell: bool) -> tuple[deckcheck.Includes, tuple[OutsideRead, ...]]:
    """:func:`zoaf.deckcheck.walk_includes` with each file reached vetted before it is read (a missing file, an
    escape, a cycle or a file outside ``ZOAF_INCLUDE_ROOTS`` is refused before anything reads it), then the files
    the ``.model`` cards of the deck and its included files name and its ``.control`` block ``load``s; and what
    of it lies outside the deck's folder."""
    scope = ReadScope(deck)
    found = deckcheck.walk_includes(deck, text, allow_shell=allow_shell, admit=scope.admit)
    cards = after_title(text)                 # the title is no card: ngspice reads nothing it names
    for path, included in [(deck, cards), *found.texts.items()]:
        scope.model_files(path, included)
    scope.loaded_files(deck, cards)
    return found, tuple(scope.found)

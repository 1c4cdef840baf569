"""The top-level ``.param``s an ``.include`` or a ``.lib file section`` line defines, as ngspice inlines them.

ngspice takes a ``.param``'s last definition: a section that defines a deck's design variable again after the
deck's own ``.param`` line (a corner that sets ``vt_shift``) is the value ngspice simulates, whether the ``.lib``
line is the deck's or an included file's. The netlist reader (:mod:`zoaf.netlist`) takes such a definition as the
design variable's default, and ``best.cir`` writes a sized value after the ``.include``/``.lib`` line.

ngspice opens a relative ``.lib`` file of an included file from the deck's folder, one of a library's section (or
of a file that section includes) from the library's folder (:func:`zoaf.deckcheck.walk_includes`).
"""
from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .deckcheck import MAX_INCLUDE_DEPTH, include_args, resolve
from .decktext import Line, logical_lines, physical_lines, pieces
from .errors import InputError
from .paramline import parse_param, reads_nothing

__all__ = ["Libraries"]

Params = dict[str, tuple[str, Path]]
#: name -> (value text, file, whether an included file's own ``.param`` line defines it: a design variable then,
#: where a library section's definition is one only of a name the deck defined before it).
Defs = dict[str, tuple[str, Path, bool]]
#: The cards this reader reads (by the start of their first word); a library's others, its model cards, are skipped.
_READ = (".param", ".inc", ".lib", ".endl", ".subckt", ".ends")


def _error(path: Path) -> Callable[[int, str], InputError]:
    """An error of ``path``'s line (numbered with the blank title line :func:`_lines` puts first)."""
    def err(lineno: int, what: str) -> InputError:
        return InputError(f"{path}:{lineno - 1}: {what}")
    return err


@dataclass
class Libraries:
    """Reads the files :func:`zoaf.deckcheck.walk_includes` read (``texts``: resolved path -> text) for all the
    include lines of one deck: each file's lines, each section and each included file (per folder its ``.lib``
    lines open from) once. Libraries whose section reads the next one's twice, 19 deep, took 36 s (2**19 readings;
    40 deep, zoaf's own process hung); a deck reading 2,500 sections of one library, each of its lines read again
    per section, more than a minute."""

    texts: Mapping[Path, str]
    _lines: dict[Path, list[tuple[str, int]]] = field(default_factory=dict)     # (raw text, line number)
    _starts: dict[Path, dict[str, int]] = field(default_factory=dict)
    _sections: dict[tuple[Path, str], Params] = field(default_factory=dict)
    _included: dict[tuple[Path, Path], Defs] = field(default_factory=dict)
    #: Per file, the texts of the ``.param`` lines read here that read no name (:func:`zoaf.paramline.reads_nothing`):
    #: the unused-variable check passes over a line that reads the same there, not parsing it again.
    quiet: dict[Path, set[str]] = field(default_factory=dict)

    def lines(self, path: Path) -> Iterator[tuple[str, str, Line]]:
        """(word lower-cased, the original-case text after it, line) of each logical line of ``path`` it reads."""
        return map(_split, self._kept(path))

    def _kept(self, path: Path) -> list[tuple[str, int]]:
        """The lines of ``path`` this reader reads, as their text and number only, read a piece of the file at a
        time: a :class:`Line` each, and the whole file's at once, made a 64 MiB include of ``.param`` lines
        gigabytes of them (~25 bytes per byte of the file)."""
        if path not in self._lines:
            self._lines[path] = kept = []
            for piece, before in pieces(self.texts.get(path, "")):
                lines = logical_lines(physical_lines("\n" + piece), only=_READ)[1:]
                kept += [(ln.raw, ln.lineno + before) for ln in lines]
        return self._lines[path]

    def _start(self, path: Path, section: str) -> int:
        """The index in :meth:`lines` after the ``.lib`` line that opens ``section`` in ``path`` (its first, as
        ngspice takes it); past the end when none does."""
        if path not in self._starts:
            self._starts[path] = starts = {}
            for i, (raw, _) in enumerate(self._kept(path)):
                word, rest = _words(raw)
                if word == ".lib" and (args := include_args(word, rest)) is not None and args[0] is None:
                    starts.setdefault(args[1] or "", i + 1)
        return self._starts[path].get(section, len(self._kept(path)))

    def section(self, path: Path, section: str, via: tuple[tuple[Path, str], ...] = ()) -> Params:
        """Top-level ``.param`` name -> (value text, file) of section ``section`` (lower-cased) of the library
        ``path`` (resolved), following its ``.include``s and nested ``.lib`` sections (from the library's folder, as
        ngspice resolves them) in order. The walk refused cycles; this reading refuses them on its own too."""
        if (path, section) in self._sections:
            return self._sections[(path, section)]
        out: Params = {}
        depth, kept = 0, self._kept(path)
        for i in range(self._start(path, section), len(kept)):          # not a slice: a copy per section
            word, rest, ln = _split(kept[i])
            if word.startswith(".endl"):
                break
            if word in (".subckt", ".ends"):
                depth = depth + 1 if word == ".subckt" else max(0, depth - 1)
            args = include_args(word, rest) if word.startswith((".inc", ".lib")) else None
            if word.startswith(".param"):
                out.update((name, (value, path)) for name, value in self._defined(path, ln, depth))
            elif args is not None and args[0] is not None:
                node = (resolve(path.parent, args[0]).resolve(), args[1] or "")
                _check_nesting(path, ln, word, node, (*via, (path, section)))
                defs = (self.included(node[0], path.parent) if args[1] is None
                        else self.section(node[0], args[1], (*via, (path, section))))
                out.update((k, v[:2]) for k, v in defs.items() if not depth)     # a body's: read for its refusals
        self._sections[(path, section)] = out
        return out

    def included(self, path: Path, lib_folder: Path, via: tuple[Path, ...] = ()) -> Defs:
        """The top-level ``.param``s of an ``.include``d file (``path``: resolved) and of the files and ``.lib``
        sections it reads in turn (a relative ``.lib`` file opened from ``lib_folder``), in order (the last
        definition wins, as in ngspice); a file a ``.subckt`` body reads is read for its refusals only. A ``.lib``
        line there was not followed: a design variable its section defines again kept the deck's value in zoaf's
        view (its default, ``best.cir``) where ``ngspice -b`` simulates the section's."""
        if (path, lib_folder) in self._included:
            return self._included[(path, lib_folder)]
        out: Defs = {}
        depth = 0
        for word, rest, ln in self.lines(path):
            if word in (".subckt", ".ends"):
                depth = depth + 1 if word == ".subckt" else max(0, depth - 1)
            args = include_args(word, rest) if word.startswith((".inc", ".lib")) else None
            if word.startswith(".param"):
                out.update((name, (value, path, True)) for name, value in self._defined(path, ln, depth))
            elif args is not None and args[0] is not None:
                if args[1] is None:
                    target = resolve(path.parent, args[0]).resolve()
                    _check_nesting(path, ln, word, (target, ""), tuple((p, "") for p in (*via, path)))
                    defs = self.included(target, lib_folder, (*via, path))
                else:
                    target = resolve(lib_folder, args[0]).resolve()
                    defs = {k: (*v, False) for k, v in self.section(target, args[1]).items()}
                for name, (value, file, plain) in defs.items() if not depth else ():    # a body's: read to check
                    out[name] = (value, file, plain or name in out and out[name][2])
        self._included[(path, lib_folder)] = out
        return out

    def file_params(self, path: Path, word: str, raw: str, known: Mapping[str, str], deck_folder: Path) -> Params:
        """The ``.param``s an ``.include``/``.lib`` line (``word``; ``raw`` its original-case text) of the deck
        (``deck_folder``: its folder, resolved) that reads the file ``path`` (resolved) makes ngspice define: an
        included file's own top-level ones, and of a ``.lib`` section (the line's, or one an included file reads)
        those the deck or the included file defined before it (``known``: design variables; a PDK's own stay
        out)."""
        if not word.startswith(".lib"):
            return {k: (v, f) for k, (v, f, plain) in self.included(path, deck_folder).items() if plain or k in known}
        args = include_args(word, raw.split(None, 1)[1])
        section = args[1] if args is not None else None
        return {k: v for k, v in self.section(path, section or "").items() if k in known}

    def _defined(self, path: Path, ln: Line, depth: int) -> list[tuple[str, str]]:
        """The top-level ``.param``s (name, value text) the ``.param`` line ``ln`` of ``path`` defines: none in a
        ``.subckt`` body (``depth`` > 0), nor a function (``.param f(x)=x*2``, which numparam reads as a ``.func``).
        InputError for a line ngspice 39 never returns from (:attr:`zoaf.paramline.ParamLine.comma`), in a body
        too. The line is parsed once here for all three (and for :attr:`quiet`)."""
        line = parse_param(ln)
        if (why := line.comma) is not None:
            raise _error(path)(ln.lineno, why)
        if reads_nothing(line):
            self.quiet.setdefault(path, set()).add(ln.raw)
        if depth or line.empty:
            return []
        if line.found is None:
            raise _error(path)(ln.lineno, line.error)
        return [(name, value) for name, value, _ in line.found]


def _split(kept: tuple[str, int]) -> tuple[str, str, Line]:
    """A kept line's (word lower-cased, the original-case text after it, its :class:`Line`), made when read."""
    raw, lineno = kept
    return *_words(raw), Line(raw.lower(), raw, lineno, [(0, lineno - 1, 0)])


def _words(raw: str) -> tuple[str, str]:
    """A line's first word, lower-cased, and the original-case text after it (a tab after the word too)."""
    word, rest = (raw.split(None, 1) + ["", ""])[:2]
    return word.lower(), rest


def _check_nesting(path: Path, ln: Line, word: str, node: tuple[Path, str], via: tuple[tuple[Path, str], ...]
                   ) -> None:
    """InputError when ``path``'s line ``ln`` reads ``node`` (a file, its section) again or too deep."""
    if node in via or len(via) >= MAX_INCLUDE_DEPTH:
        raise _error(path)(ln.lineno, f"{word} {node[0].name}: nested more than {MAX_INCLUDE_DEPTH} deep or in a "
                           "cycle; refused")

"""The top-level ``.param``s a ``.lib file section`` line defines, as ngspice inlines that section in its place.

ngspice takes a ``.param``'s last definition: a section that defines a deck's design variable again after the
deck's own ``.param`` line (a corner that sets ``vt_shift``) is the value ngspice simulates. The netlist reader
(:mod:`zoaf.netlist`) takes such a definition as the design variable's default, and ``best.cir`` writes a sized
value after the ``.lib`` line, as it does after an ``.include``.
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from .deckcheck import MAX_INCLUDE_DEPTH, include_args, included_params, resolve
from .decktext import assignments, logical_lines, physical_lines
from .errors import InputError

__all__ = ["file_params", "section_params"]

Params = dict[str, tuple[str, Path]]


def section_params(path: Path, section: str, texts: Mapping[Path, str], _via: tuple[tuple[Path, str], ...] = ()
                   ) -> Params:
    """Top-level ``.param`` name -> (value text, file) of section ``section`` (lower-cased) of the library ``path``
    (resolved), following its ``.include``s and nested ``.lib`` sections (from the library's folder, as ngspice
    resolves them) in order, from the ``texts`` :func:`zoaf.deckcheck.walk_includes` read (which refused cycles;
    this reading refuses them on its own too)."""
    out: Params = {}
    inside, depth = False, 0

    def err(lineno: int, what: str) -> InputError:
        return InputError(f"{path}:{lineno - 1}: {what}")

    for ln in logical_lines([""] + physical_lines(texts.get(path, "")))[1:]:
        word, _, rest = ln.raw.strip().partition(" ")
        word = word.lower()
        if not inside:
            inside = word == ".lib" and include_args(word, rest) == (None, section)
            continue
        if word.startswith(".endl"):
            break
        if word in (".subckt", ".ends"):
            depth = depth + 1 if word == ".subckt" else max(0, depth - 1)
        args = include_args(word, rest) if word.startswith((".inc", ".lib")) and depth == 0 else None
        if depth == 0 and word.startswith(".param"):
            out.update((name, (value, path)) for name, value, _ in assignments(ln, err))
        elif args is not None and args[0] is not None:
            target = resolve(path.parent, args[0].strip("\"'")).resolve()
            if (target, args[1] or "") in (*_via, (path, section)) or len(_via) >= MAX_INCLUDE_DEPTH:
                raise err(ln.lineno, f"{word} {target.name}: nested more than {MAX_INCLUDE_DEPTH} deep or in a cycle; "
                          "refused")
            out.update(included_params(target, texts) if args[1] is None
                       else section_params(target, args[1], texts, (*_via, (path, section))))
    return out


def file_params(path: Path, word: str, raw: str, texts: Mapping[Path, str], known: Mapping[str, str]) -> Params:
    """The ``.param``s an ``.include``/``.lib`` line (``word``; ``raw`` its original-case text) of the file ``path``
    (resolved) makes ngspice define: every top-level one of an included file; of a ``.lib`` section, those the deck
    defined before it (``known``: design variables; a PDK's own stay out)."""
    if not word.startswith(".lib"):
        return included_params(path, texts)
    args = include_args(word, raw.split(None, 1)[1])
    section = args[1] if args is not None else None
    return {k: v for k, v in section_params(path, section or "", texts).items() if k in known}

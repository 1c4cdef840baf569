"""``ngspice -b`` in a subprocess (:func:`run_batch`): the reference :class:`zoaf.spice.SpiceSession` is tested
and benchmarked against, and the settings a hand or batch run needs to print what the session reads."""
from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from .batchsaves import BAD_FUNDAMENTAL, UNSAVED_ANALYSIS
from .errors import DEFAULT_TIMEOUT, InputError, SimulationError, Timeout
from .netlist import Netlist
from .netwrite import SIZED_MARK
from .ngcommands import asks_transient_op
from .ngoutput import RESULT_LINE, batch_results, without_asked_transient_op

if TYPE_CHECKING:
    from .ngbinding import NgSpice

__all__ = ["MEAS_PRECISION", "SPICEINIT", "run_batch", "set_sourcepath", "spiceinit", "without_echoes"]

#: ``.meas`` cards print this many digits after the point (``%.16e``: every bit of a double) for ``when`` and
#: ``param=`` measures; ``find``/``max``/... print ``%e`` whatever it says (ngspice 39), as ``meas`` does.
MEAS_PRECISION = "16"
#: What zoaf sets in every process, by hand (SPICEINIT) and in a session (``ngprocess``): a deck's block that sets
#: one to the same value changes nothing (``ngprocess.Baseline.resets_loaded``).
OWN_SETTINGS = {"ngbehavior": "hsa", "num_threads": "1"}
#: What a hand or batch run needs to match the session (``.spiceinit`` beside the netlist): PDK decks such as
#: sky130 need ``ngbehavior=hsa``; one OpenMP thread is what the session uses.
SPICEINIT = "".join(f"set {name}={value}\n" for name, value in OWN_SETTINGS.items())
#: What a ``plot`` command of a ``.control`` block prints in ``ngspice -b``, which has no graphics, before it goes on
#: with the block (exit status 0): no failure (a session drops the command: ``ngcommands.DROPPED_COMMANDS``).
NO_GRAPHICS = re.compile(r"^\s*error: \(internal\)\s+this operation is not defined for display type printeronly\.",
                         re.IGNORECASE)


def spiceinit(lib_folder: Path | None) -> str:
    """The ``.spiceinit`` beside a sized deck written elsewhere (``best.cir``): :data:`SPICEINIT`, and where an
    included file names a ``.lib`` file relative to the deck's folder (``lib_folder``:
    :attr:`zoaf.netlist.Netlist.lib_folder`), that folder appended to ``sourcepath``, where ngspice looks next."""
    extra = "" if lib_folder is None else f'set sourcepath = ( $sourcepath "{lib_folder}" )\n'
    return SPICEINIT + extra


#: ngspice's own ``sourcepath`` (``. /usr/share/ngspice/scripts``), read at the process's first load.
_SOURCEPATH: list[str] = []


def set_sourcepath(ng: NgSpice, deck_folder: Path | None) -> None:
    """Where ngspice looks for an included file's relative ``.lib`` file: ``ngspice -b`` opens it from the deck's
    folder, a session (the deck loaded line by line, or ``source``d from a temporary folder) from its working
    folder, then the ``sourcepath`` folders: the deck's folder goes last there (:attr:`Netlist.lib_folder`)."""
    _SOURCEPATH[:] = _SOURCEPATH or [" ".join(ng.command("echo $sourcepath")).strip()]
    extra = "" if deck_folder is None else f' "{deck_folder}"'
    ng.command(f"set sourcepath = ( {_SOURCEPATH[0]}{extra} )")


#: What an ``echo`` prints for a ``$name``/``$&name``/``${name}`` in its text: a number (``%G``) or a word.
_SUBSTITUTION = re.compile(r"\$[&?]?(?:\{[^}]*\}|[\w.#()\[\]]+)")


def _echo_line(command: str) -> re.Pattern[str] | None:
    """The lines the ``echo`` ``command`` prints: its words, quotes removed (single ones only outside double ones),
    each substitution one word; None for an echo of substitutions alone (numbers: no check reads one as a failure)."""
    text = (command.split(None, 1) + [""])[1]
    text = text.replace('"', "") if '"' in text else text.replace("'", "")
    parts = [r"\s+".join(map(re.escape, part.split())) for part in _SUBSTITUTION.split(text)]
    return re.compile(r"\s*" + r"\s*\S*\s*".join(parts) + r"\s*", re.I) if any(parts) else None


def without_echoes(lines: list[str], echoes: Iterable[str]) -> list[str]:
    """The output of a whole-deck run less the lines its block's ``echo`` commands printed: a self-checking deck's
    ``echo "ERROR: test1 failed"`` is the designer's text, not ngspice's report (``ngspice -b`` printed every result;
    read as a report, it failed the run). A printed result stays (``echo vo = $&vo`` writes no ``%e``)."""
    patterns = [p for p in map(_echo_line, echoes) if p is not None]
    if not patterns:
        return lines
    return [ln for ln in lines if RESULT_LINE.match(ln) or not any(p.fullmatch(ln) for p in patterns)]


def run_batch(netlist: str | os.PathLike[str], timeout: float = DEFAULT_TIMEOUT, *,
              ngspice: str = "ngspice", source: str | os.PathLike[str] | None = None) -> dict[str, float]:
    """Run ``ngspice -b`` in a subprocess and return the printed results (``name = value`` lines).

    Args:
        netlist: a netlist path, or netlist text (anything containing a newline); text runs from a temporary
            file, so its include paths must be absolute (as :meth:`Netlist.with_params` writes them).
        timeout: wall-clock limit in seconds.
        source: the file a netlist text was written from (:attr:`Netlist.path`), named in errors (with the line
            where ngspice names one of its own cards) in place of the temporary copy that ran.
    Returns:
        name (lower-case) -> value, for every ``.meas`` result and every printed ``.control`` result
        (``let x = ...`` + ``print x``; ``set numdgt=15`` in the block prints them with full precision).
    Raises:
        the same typed errors as :class:`SpiceSession` (a ``.meas`` with no printed value: MeasureError).
    """
    exe = shutil.which(ngspice)
    if exe is None:
        raise InputError(f"{ngspice}: not found on PATH")
    with tempfile.TemporaryDirectory(prefix="zoaf-batch-") as tmp:
        if isinstance(netlist, str) and "\n" in netlist:
            path = Path(tmp) / "deck.cir"
            path.write_text(netlist)
        else:
            path = Path(netlist).absolute()
        named = Path(source).absolute() if source is not None and path.parent == Path(tmp) else path
        nl = Netlist.from_text(path.read_bytes(), named, allow_shell=True)
        # ngspice -b reads .spiceinit from its working directory: the same settings as the session's.
        (Path(tmp) / ".spiceinit").write_text(SPICEINIT)
        try:
            proc = subprocess.run([exe, "-b", str(path)], cwd=tmp, capture_output=True, text=True,
                                  errors="replace", timeout=timeout,
                                  env={**os.environ, "NGSPICE_MEAS_PRECISION": MEAS_PRECISION})
        except subprocess.TimeoutExpired as e:
            out = (e.stdout or "") if isinstance(e.stdout, str) else ""
            raise Timeout(f"ngspice -b {named}: still running after {timeout:g} s (killed)", out) from None
    output = proc.stdout + "\n" + proc.stderr
    lines = output.splitlines()
    if proc.returncode < 0:
        raise SimulationError(f"ngspice -b {named}: killed by signal {-proc.returncode}", output)
    if not nl.limits_saves:   # its .pz/.tf/.disto run after the block's, which no result reads (batchsaves)
        lines = [ln for ln in lines if not UNSAVED_ANALYSIS.search(ln)]
    lines = [ln for ln in lines if not BAD_FUNDAMENTAL.search(ln)    # a .four card's missing table: a note
             and not NO_GRAPHICS.match(ln)]
    if asks_transient_op(nl.control):
        lines = without_asked_transient_op(lines)
    lines = without_echoes(lines, nl.control_echoes)
    file_line = nl.file_line if named == path else functools.partial(_source_line, nl)
    return batch_results(lines, [m.name for m in nl.measures], nl.results, f"ngspice -b {named}", file_line,
                         nl.print_groups)


def _source_line(sized: Netlist, lineno: int, card: str, said: str) -> int | str | None:
    """The line of the deck a sized text (``sized``) was written from, where ngspice's line ``lineno`` of the text is
    one of its cards: less the ``.param`` lines :meth:`Netlist.with_params` added before it (an included file's
    ``path:line`` as it is)."""
    if not isinstance(found := sized.file_line(lineno, card, said), int):
        return found
    return lineno - sum(ln.rstrip().endswith(SIZED_MARK) for ln in sized.text.split("\n")[:lineno - 1])

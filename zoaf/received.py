"""The files a run's history names (its netlist, its spec), checked against the hashes it records before zoaf
parses them: the history may be someone else's, so the path it names is the sender's choice (a FIFO, a device, a
huge file, or a deck of yours whose include walk reads what it names). Only a bounded regular file whose bytes hash
to the recorded value is handed on to be read as a deck or a spec.

Example:
    >>> check_spec(Path("run/history.db"), Path("amp.toml"), problem_meta)   # doctest: +SKIP
"""
from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any, Mapping

from . import units
from .errors import InputError
from .infile import MAX_FILE_BYTES, read_bounded
from .spec import MAX_SPEC_BYTES

__all__ = ["check_deck", "check_spec", "recorded_bytes"]

#: A line of a deck that makes its recorded hash cover other files than its own (an include, a library, a
#: ``{{...}}`` placeholder substituted before hashing): only such a deck is read before its hash is known to match.
_WALKED = re.compile(rb"^[ \t]*\.(inc|lib)|\{\{", re.IGNORECASE | re.MULTILINE)
_BOM = b"\xef\xbb\xbf"


def recorded_bytes(db: Path, path: Path, what: str, limit: int) -> bytes:
    """The bytes of ``path``, a file ``db``'s run names (``what``: "netlist", "spec"): one InputError line for
    anything but a regular file of at most ``limit`` bytes outside ``/proc``, ``/sys``, ``/dev``."""
    try:
        return read_bounded(path, limit, f"a {what}")
    except FileNotFoundError:
        raise InputError(f"{db}: the run's {what} {units.clip_path(str(path))} is not found") from None
    except OSError as e:
        raise InputError(f"{db}: the run's {what} {units.clip_path(str(path))}: {e.strerror or e}") from None


def check_spec(db: Path, path: Path, problem: Mapping[str, Any]) -> None:
    """InputError unless the spec at ``path`` is the one ``db``'s run read: its bytes (less a byte-order mark,
    which the spec's text drops) hash to the recorded ``spec_sha256``."""
    if not isinstance(problem.get("spec_sha256"), str):
        raise InputError(f"{db}: not a zoaf run history (its problem records no spec_sha256, which every circuit run "
                         "records)")
    data = recorded_bytes(db, path, "spec", MAX_SPEC_BYTES)
    if hashlib.sha256(data.removeprefix(_BOM)).hexdigest() != problem.get("spec_sha256"):
        raise InputError(f"{db}: the spec {units.clip_path(str(path))} the run read changed since the run; restore "
                         "it, or optimize with the edited one anew")


def check_deck(db: Path, path: Path, problem: Mapping[str, Any]) -> None:
    """InputError unless the deck at ``path`` may be the one ``db``'s run simulated. A deck that includes nothing
    is its recorded ``netlist_sha256`` (its text, as ``Netlist.digest`` hashes it), so it is checked whole here;
    one whose hash also covers its included files (or a placeholder's text) is walked first, its files read as
    bounded regular files, and checked whole once read (``zoaf.signoff.rundir``)."""
    data = recorded_bytes(db, path, "netlist", MAX_FILE_BYTES)
    try:
        text = data.decode("utf-8").encode()
    except UnicodeDecodeError:              # read as Latin-1, hashed as that text in UTF-8 (``Netlist.digest``)
        text = data.decode("latin-1").encode()
    if hashlib.sha256(text).hexdigest() != problem.get("netlist_sha256") and _WALKED.search(data) is None:
        raise InputError(f"{db}: the run's netlist {units.clip_path(str(path))} (or a file it includes) changed "
                         "since the run; restore it, or optimize the edited one anew")

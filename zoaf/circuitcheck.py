"""Whether a comparison's runs are of one circuit, by what their histories record of it: the content hashes of the
netlist (with its includes) and of the spec, which every circuit run records. ``zoaf compare`` checks the runs it
would reuse against its netlist (``compareplan.check_same_circuit``); ``zoaf report`` checks a received directory's
runs against each other, as it may not have the netlist they ran."""
from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any, Iterable, Mapping

from .errors import InputError
from .history import History

#: What each recorded hash is of, as a refusal names it.
_HASHED = {"netlist_sha256": "netlist (or a file it includes)", "spec_sha256": "spec"}


def recorded_circuit(path: Path) -> tuple[dict[str, str], Mapping[str, Any]] | None:
    """The hashes of its netlist and spec that a run directory's history records, with the problem it records; an
    InputError naming the history for a hash it lacks (:func:`zoaf.circuit.recorded_hashes`). None for a run kept
    without its history (``result.json``/``trace.json`` alone, as benchmark results are): it records nothing."""
    from .circuit import recorded_hashes        # a circuit's comparison only: a function grid loads no deck code

    db = path / "history.db"
    if not db.is_file():
        return None
    with History(db, read=True) as h:
        problem = h.meta().get("problem")
    return recorded_hashes(db, problem), problem


def records_circuit(path: Path) -> bool:
    """Whether a run directory's history records a hash of a netlist or spec: a circuit run, to be checked as one
    whether or not its comparison's ``compare.json`` names a netlist (a function problem's history records none)."""
    db = path / "history.db"
    if not db.is_file():
        return False
    with History(db, read=True) as h:
        problem = h.meta().get("problem")
    return isinstance(problem, Mapping) and any(key in problem for key in _HASHED)


def check_one_circuit(runs: Iterable[Path]) -> None:
    """InputError naming a run directory whose history records another netlist or spec than most of ``runs`` do (or
    records none): a received directory assembled from runs of two circuits, or with a history edited to another
    circuit's hashes, was reported as the one circuit its ``compare.json`` names. Most runs, not the first, are the
    reference, so that the run named is the odd one; on a tie, the first run's circuit is."""
    found = [(path, c[0]) for path in runs if (c := recorded_circuit(path)) is not None]
    if not found:
        return
    common = Counter(tuple(h.values()) for _, h in found).most_common(1)[0][0]   # a tie: the first one seen
    first, usual = next((p, h) for p, h in found if tuple(h.values()) == common)
    for path, hashes in found:
        for key in (k for k in _HASHED if hashes[k] != usual[k]):
            raise InputError(f"{path}: a run of another circuit: its history records another {_HASHED[key]} than "
                             f"{first}'s: a comparison ranks runs of one circuit; move the run out")

"""The process's one libngspice, as sessions use it: set up once, cleared of the previous deck's variables, and
refused to a second deck after one with ``.if`` cards (an ngspice 39 defect, :func:`check_conditional`).

libngspice keeps its state per process (variables, the command history, a misread after conditional cards), so
what a :class:`zoaf.spice.SpiceSession` must know of the decks loaded before it lives here.
"""
from __future__ import annotations

import os

from . import ngbinding
from .errors import ParseError
from .netlist import Netlist
from .ngbatch import MEAS_PRECISION
from .ngbinding import NgSpice

__all__ = ["HISTORY_EVERY", "check_conditional", "forget_previous_deck", "shared_ngspice"]

#: Clear ngspice's command history every this many evaluations (it grows ~6 kB per 100 evaluations).
HISTORY_EVERY = 100
#: The variables ngspice has before any deck (:func:`forget_previous_deck` keeps only these).
_BASELINE_VARS: set[str] = set()
#: The session deck with a conditional card (``.if``) this process loaded, if any: after one, ngspice 39
#: misreads later, different decks of the process (sky130's model cards lose their ``.param``s: "Undefined
#: parameter"), so such a process loads no other deck.
_conditional_deck: tuple[str, ...] | None = None


def shared_ngspice() -> NgSpice:
    """The process's libngspice, set up for sessions on first use. Raises ImportError/OSError without it."""
    # Read by ngspice at each `.meas`; a subprocess `ngspice -b` (run_batch) inherits it.
    os.environ["NGSPICE_MEAS_PRECISION"] = MEAS_PRECISION
    return ngbinding.shared(_setup)


def _setup(ng: NgSpice) -> None:
    ng.command("set num_threads=1")
    # ngspice 39 ignores `.options optran` in a deck and falls back to a transient operating point that may
    # "converge" to a wrong bias. `optran 1 1 1 0 0 0` keeps Newton/gmin/source stepping and turns the fallback
    # off (`optran 0 0 0 0 0 0` also turns the stepping off: every op fails). It survives `reset`; "Transient op
    # started" is still classified as a failure, should it appear.
    ng.command("optran 1 1 1 0 0 0")
    ng.command("set nomoremode")
    ng.command(f"set history={HISTORY_EVERY}")
    _BASELINE_VARS.update(ng.variables())


def forget_previous_deck(ng: NgSpice) -> None:
    """Unset the variables an earlier deck's ``.options``/``.control`` left behind (sky130's ``scale=1e-6``
    would shrink every device of the next circuit loaded in this process a millionfold)."""
    for name in sorted(ng.variables() - _BASELINE_VARS):
        ng.command(f"unset {name}")


def check_conditional(netlist: Netlist) -> None:
    """Remember a deck with ``.if`` cards, its own or in a file it includes; refuse another deck after one
    (``needs_new_process``: the worker pools load it in a fresh process)."""
    global _conditional_deck
    deck = tuple(netlist.session_deck())
    if _conditional_deck is not None and deck != _conditional_deck:
        err = ParseError(f"loading {netlist.path}: this process loaded a deck with .if cards before, after which "
                         f"ngspice misreads other decks; a new process loads it")
        err.needs_new_process = True
        raise err
    if netlist.conditional:
        _conditional_deck = deck

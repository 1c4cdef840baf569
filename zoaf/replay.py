"""A deck's ``.control`` block as :class:`zoaf.spice.SpiceSession` replays it, worked out once per deck.

Every evaluation sends the same commands in the same order; what each one is (an analysis to run and measure, the
netlist's analyses for a ``run``, a plain command), how deep in an ``if``/``while`` block it sits and which results
it defines do not depend on the sizing, so they are read here once instead of per command per sizing (~3 us a
command: a split, two regular expressions, the block depth).
"""
from __future__ import annotations

import enum
from dataclasses import dataclass

from .ngcommands import ANALYSES, block_depth_change, defined_name
from .netlist import Netlist

__all__ = ["Kind", "Script", "Step", "script"]


class Kind(enum.Enum):
    RUN = "run"                 # ``run`` outside a block: the netlist's analyses
    ANALYSIS = "analysis"       # an analysis command outside a block
    COMMAND = "command"         # anything else, sent as it is


@dataclass(frozen=True)
class Step:
    command: str
    kind: Kind
    alterparam: bool = False            # the block's own alterparam (the session re-sends or reloads after it)
    results: tuple[str, ...] = ()       # results defined up to here, whose plot is read after this command


@dataclass(frozen=True)
class Script:
    """What an evaluation runs: the netlist's analyses before the block, the block, and those after it."""

    before: tuple[str, ...]     # the netlist's analyses, unless the block runs analyses itself
    steps: tuple[Step, ...]
    after: tuple[str, ...]      # the netlist's analyses again, as ``ngspice -b`` runs them after such a block


def script(netlist: Netlist) -> Script:
    """The evaluation script of a deck (``run`` in the block stands for the netlist's analyses)."""
    analyses = tuple(netlist.analyses)
    return Script(() if netlist.control_runs_analyses else analyses, tuple(_steps(netlist.control)),
                  analyses if netlist.dot_analyses_after_control else ())


def _steps(control: list[str]) -> list[Step]:
    """The replay of ``control`` (the block's commands, as :attr:`zoaf.netlist.Netlist.control` lists them)."""
    out: list[Step] = []
    depth = 0
    pending: list[str] = []
    for c in control:
        word = c.split(None, 1)[0]
        if depth == 0 and (word == "run" or word in ANALYSES):
            out.append(Step(c, Kind.RUN if word == "run" else Kind.ANALYSIS))
            continue
        depth += block_depth_change(c)
        if (name := defined_name(c)) is not None:
            pending.append(name)
        here = tuple(pending) if depth == 0 else ()
        if here:
            pending = []
        out.append(Step(c, Kind.COMMAND, word == "alterparam", here))
    return out

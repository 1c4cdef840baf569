"""What one in-process evaluation gathered besides its results, and its ``.control`` results read out of ngspice.

A :class:`zoaf.spice.SpiceSession` replays a deck's ``.control`` block command by command, so it must decide, as
``ngspice -b`` would, which results exist: a ``meas`` command's printed value (more digits than its vector), a
result the deck only prints where ngspice cannot see it (none), a measure that gave nothing (a missing measure
of a valid design, with the others kept). :class:`Gathered` holds that per-evaluation bookkeeping; it is made
afresh for each sizing so nothing leaks from one to the next.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .errors import MeasureError
from .netlist import Netlist
from .ngbinding import NgSpice
from .ngcommands import printed_names
from .ngoutput import select, vector_or_printed

__all__ = ["Gathered", "Missing", "plot_of"]


@dataclass(frozen=True)
class Missing:
    """A result that gave nothing: its name (None where a block's failure names none: a loop's failed ``let``s
    reported at its ``end``), why, and ngspice's output."""

    name: str | None
    message: str
    output: str = ""


@dataclass
class Gathered:
    """One evaluation's notes, filled in while its analyses and ``.control`` block run."""

    missing: list[Missing] = field(default_factory=list)            # results giving nothing
    printed: dict[str, float] = field(default_factory=dict)         # meas command results as printed (meas_printed)
    meas_failed: set[str] = field(default_factory=set)              # meas commands whose last run failed
    unmeasured: set[str] = field(default_factory=set)               # .meas cards whose analysis ran and gave nothing
    unprinted: dict[str, str] = field(default_factory=dict)         # results the deck's print could not see: why

    def redefined(self, name: str | None) -> None:
        """A ``let`` of ``name`` succeeded: a failed ``meas`` of that name before it is no missing result (the
        deck's fallback value, ``let f10 = 0``, is what ``ngspice -b`` prints)."""
        if name and name.lower() in self.meas_failed:
            self.meas_failed.discard(name.lower())
            self.missing = [m for m in self.missing if m.name != name.lower()]

    def check_prints(self, ng: NgSpice, netlist: Netlist, at: int) -> None:
        """The deck's ``print`` commands before command ``at`` (dropped from the replay). ``print`` looks its vectors
        up in the current plot (then ``const``), as ``ngGet_Vec_Info`` does, and prints nothing when one is not
        there: a result made in another plot (``let p1`` in ``pz1`` printed after ``setplot tf1``, a ``meas`` of an
        earlier analysis) that the deck only ever prints there is, as in ``ngspice -b``, no result."""
        for command in netlist.control_prints.get(at, ()):
            names = printed_names(command, netlist.control_names)
            missing = [n for n in names if ng.vector(n) is None]
            for name in names:
                if not missing:
                    self.unprinted[name] = ""             # printed: later failed prints do not undo it
                elif name in missing and name not in self.unprinted:
                    self.unprinted[name] = (f"`{command}` prints nothing in ngspice: {name} is not in the "
                                            f"current plot {ng.current_plot()}")

    def collect(self, ng: NgSpice, results: dict[str, float], where: dict[str, str], wanted: list[str] | None
                ) -> dict[str, float]:
        """``results`` with the ``.control`` results (name -> the plot that made it) read out of ngspice; the
        wanted ones, or a :class:`MeasureError` naming the first missing one (carrying those taken). A caller
        that names the results it wants gets them whenever they were taken, whatever happened to the others."""
        for name, plot in where.items():
            if wanted is not None and name not in wanted:
                continue
            if name in self.meas_failed:      # its last meas failed: an older plot's vector is no result
                if not any(m.name == name for m in self.missing):
                    self.missing.append(Missing(name, f".control result {name}: its last meas failed"))
                continue
            v = ng.vector(f"{plot}.{name}")
            if name in self.printed and (v is None or v.size == 1):
                results[name] = vector_or_printed(None if v is None else float(np.real(v[0])), self.printed[name])
                continue
            if self.unprinted.get(name):      # a meas command prints its result itself: handled above
                self.missing.append(Missing(name, f".control result {name}: {self.unprinted[name]}"))
                continue
            if v is None or v.size != 1:
                if wanted is None or v is None and any(m.name in (name, None) for m in self.missing):
                    continue                  # a temporary vector of the block, or a failure said below
                what = "no such vector" if v is None else f"a vector of {v.size} values, not a scalar"
                raise MeasureError(f".control result {name}: {what}")
            if np.iscomplexobj(v) and v[0].imag != 0:
                raise MeasureError(f".control result {name} is complex: take db(), mag() or ph() in the let")
            results[name] = float(np.real(v[0]))
        failed = self._failed(results, wanted)
        if failed:
            more = f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
            raise MeasureError(failed[0].message + more, failed[0].output, results)
        return select(results, wanted)

    def _failed(self, results: dict[str, float], wanted: list[str] | None) -> list[Missing]:
        """The missing results that fail this evaluation: all of them when every result is wanted, else the wanted
        ones (and the unnamed failures, as the likely reason, when a wanted result has no value)."""
        if wanted is None:
            return self.missing
        lacking = any(n not in results for n in wanted)
        return [m for m in self.missing if m.name in wanted or (m.name is None and lacking)]


def plot_of(ng: NgSpice, name: str) -> str:
    """The plot that holds result ``name`` now: the current one, else the newest that has it (an if/loop block's
    body may leave another plot current: ``repeat`` with ``op``, ``let vo``, then ``ac``)."""
    plot = ng.current_plot()
    if ng.vector(f"{plot}.{name}") is not None:
        return plot
    return next((p for p in ng.plots() if ng.vector(f"{p}.{name}") is not None), plot)

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

__all__ = ["Gathered", "plot_of"]


@dataclass
class Gathered:
    """One evaluation's notes, filled in while its analyses and ``.control`` block run."""

    missing: list[tuple[str, str]] = field(default_factory=list)   # (message, ngspice output): measures giving nothing
    printed: dict[str, float] = field(default_factory=dict)         # meas command results as printed (meas_printed)
    unmeasured: set[str] = field(default_factory=set)               # .meas cards whose analysis ran and gave nothing
    unprinted: dict[str, str] = field(default_factory=dict)         # results the deck's print could not see: why

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
        wanted ones, or a :class:`MeasureError` naming the first missing one (carrying those taken)."""
        for name, plot in where.items():
            if wanted is not None and name not in wanted:
                continue
            v = ng.vector(f"{plot}.{name}")
            if name in self.printed and (v is None or v.size == 1):
                results[name] = vector_or_printed(None if v is None else float(np.real(v[0])), self.printed[name])
                continue
            if self.unprinted.get(name):      # a meas command prints its result itself: handled above
                self.missing.append((f".control result {name}: {self.unprinted[name]}", ""))
                continue
            if v is None or v.size != 1:
                if wanted is None:
                    continue                  # a temporary vector of the .control block, not a result
                what = "no such vector" if v is None else f"a vector of {v.size} values, not a scalar"
                raise MeasureError(f".control result {name}: {what}")
            if np.iscomplexobj(v) and v[0].imag != 0:
                raise MeasureError(f".control result {name} is complex: take db(), mag() or ph() in the let")
            results[name] = float(np.real(v[0]))
        if self.missing:
            message, output = self.missing[0]
            more = f" (and {len(self.missing) - 1} more)" if len(self.missing) > 1 else ""
            raise MeasureError(message + more, output, results)
        return select(results, wanted)


def plot_of(ng: NgSpice, name: str) -> str:
    """The plot that holds result ``name`` now: the current one, else the newest that has it (an if/loop block's
    body may leave another plot current: ``repeat`` with ``op``, ``let vo``, then ``ac``)."""
    plot = ng.current_plot()
    if ng.vector(f"{plot}.{name}") is not None:
        return plot
    return next((p for p in ng.plots() if ng.vector(f"{p}.{name}") is not None), plot)

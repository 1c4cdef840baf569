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
from .ngcommands import LOOPS, base_word, block_depth_change, printed_names
from .ngoutput import classify, command_failed, lets_failed, select, vector_or_printed

__all__ = ["Gathered", "Missing", "pass_mark", "plot_of"]

#: What the session echoes at the start of each loop pass (never a result line: no ``=``), with the loop's index in
#: the block and a ``foreach`` variable's value: the output of a loop, which ngspice prints at its ``end``, so
#: tells which pass a failed ``meas`` was in.
PASS_MARK = "zoaf-loop-pass"


def pass_mark(command: str, at: int) -> str | None:
    """The ``echo`` command to send right after ``command``, block command ``at``, when it opens a loop."""
    word = base_word(command)
    if word not in LOOPS:
        return None
    var = command.split()[1:2] if word == "foreach" else []
    return f"echo {PASS_MARK} {at}" + "".join(f" ${v}" for v in var)


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
    meas_why: dict[str, Missing] = field(default_factory=dict)      # meas commands' last failure: where and why
    kept: dict[str, np.ndarray] = field(default_factory=dict)       # results as they were before a `destroy`

    def meas_reports(self, out: list[str], netlist: Netlist, at: int) -> list[str]:
        """``out``, the output of block command ``at`` (a block's ``end`` runs it all), less the pass marks and the
        failed ``meas`` commands' reports, each kept in :attr:`meas_why`: the deck's line of the ``meas``, the loop
        passes it failed in, ngspice's reason. Whether it is a missing result is the last run's to say
        (:attr:`meas_failed`): a pass that fails before one that measures is none, as in ``ngspice -b``."""
        kept: list[str] = []
        marks: list[tuple[int, str]] = []       # (loop index, foreach value) of each pass so far
        for ln in out:
            if ln.startswith(PASS_MARK):
                _, idx, *value = ln.split(None, 2)
                marks.append((int(idx), " ".join(value)))
            elif (failed := command_failed(ln)) is not None:
                reason = kept[-1:] if not lets_failed(kept[-1:]) else []     # not a failed let's report
                said = kept.pop() if reason and classify(reason, context="") is not None else ""
                text = ln.strip().removesuffix("failed!").strip()
                why = f"{_meas_failure(netlist, at, failed, text, marks)}: {' '.join(said.split()) or 'failed'}"
                self.meas_why[failed] = Missing(failed, why, "\n".join(out))
            else:
                kept.append(ln)
        return kept

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
        earlier analysis) that the deck only ever prints there is, as in ``ngspice -b``, no result. Nor is any other
        result of that print (ngspice prints none of its vectors)."""
        for command in netlist.control_prints.get(at, ()):
            names = printed_names(command, netlist.control_names)
            missing = [n for n in names if ng.vector(n) is None]
            for name in names:
                if not missing:
                    self.unprinted[name] = ""             # printed: later failed prints do not undo it
                elif name not in self.unprinted:
                    self.unprinted[name] = (f"`{command}` prints nothing in ngspice: {missing[0]} is not in the "
                                            f"current plot {ng.current_plot()}")

    def keep(self, ng: NgSpice, where: dict[str, str]) -> None:
        """Before a ``destroy`` command: the results made so far (name -> the plot that made it), as they are.
        ``ngspice -b`` printed them before their plot went (a Qucs-S deck destroys every plot after each analysis);
        :meth:`collect` reads a kept one whose plot is gone."""
        for name, plot in where.items():
            if (v := ng.vector(f"{plot}.{name}")) is not None:
                self.kept[name] = v

    def collect(self, ng: NgSpice, results: dict[str, float], where: dict[str, str], wanted: list[str] | None
                ) -> dict[str, float]:
        """``results`` with the ``.control`` results (name -> the plot that made it) read out of ngspice; the
        wanted ones, or a :class:`MeasureError` naming the first missing one (carrying those taken). A caller
        that names the results it wants gets them whenever they were taken, whatever happened to the others."""
        chosen = None if wanted is None else set(wanted)       # a list searched per result: quadratic
        for name, plot in where.items():
            if chosen is not None and name not in chosen:
                continue
            if name in self.meas_failed:      # its last meas failed: an older plot's vector is no result
                if not any(m.name == name for m in self.missing):
                    self.missing.append(self.meas_why.get(name)
                                        or Missing(name, f".control result {name}: its last meas failed"))
                continue
            v = ng.vector(f"{plot}.{name}")
            v = self.kept.get(name) if v is None else v
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


def _meas_failure(netlist: Netlist, at: int, name: str, text: str, marks: list[tuple[int, str]]) -> str:
    """Where the failed ``meas`` ``text`` of ``name`` is (the last such command up to block command ``at``), and the
    pass of each loop around it (outer first), counted in ``marks`` since the enclosing loop's last pass began."""
    commands = netlist.control[:at + 1]
    idx = next((i for i in range(len(commands) - 1, -1, -1) if commands[i] == text), None)
    if idx is None:
        idx = max((i for i, c in enumerate(commands) if c.startswith("meas") and f" {name} " in f" {c} "), default=at)
    opened: list[int] = []
    for i, command in enumerate(commands[:idx]):
        change = block_depth_change(command)
        opened = opened + [i] if change > 0 else opened[:-1] if change < 0 else opened
    passes, since = [], 0
    for loop in (i for i in opened if base_word(commands[i]) in LOOPS):
        mine = [k for k in range(since, len(marks)) if marks[k][0] == loop]
        if not mine:
            break
        value = f" ({commands[loop].split()[1]} = {marks[mine[-1]][1]})" if marks[mine[-1]][1] else ""
        passes.append(f"pass {len(mine)} of the {base_word(commands[loop])} at line "
                      f"{netlist.control_lines[loop]}{value}")
        since = mine[-1]
    where = f", in {', '.join(passes)}" if passes else ""
    return f"{netlist.path}:{netlist.control_lines[idx]}: {commands[idx]}{where}"


def plot_of(ng: NgSpice, name: str) -> str:
    """The plot that holds result ``name`` now: the current one, else the newest that has it (an if/loop block's
    body may leave another plot current: ``repeat`` with ``op``, ``let vo``, then ``ac``)."""
    plot = ng.current_plot()
    if ng.vector(f"{plot}.{name}") is not None:
        return plot
    return next((p for p in ng.plots() if ng.vector(f"{p}.{name}") is not None), plot)

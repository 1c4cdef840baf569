"""What the CLI prints about one sizing (``check``, ``simulate``, the best point of ``optimize``).

The sizing is simulated on the optimizer's own path (``CircuitProblem.simulate`` -> ``Outcome``), so what is
shown is what a run would record: a missing measure appears beside the measures that were taken, with the FoM
the optimizer charges for it. Every constraint of a measure gets its pass/FAIL, and a value is printed with
enough digits to fall on the side of its limit that it really is on. User text (units, paths) is escaped: a
spec's ``unit = "[/red]"`` is text, not rich markup.
"""
from __future__ import annotations

import enum
import math
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

import numpy as np
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from . import units
from .errors import ZoafNote, ZoafWarning
from .optim import StopReason
from .outfile import json_text, printable
from .problem import Outcome, Status
from .spec import Constraint

if TYPE_CHECKING:
    from .circuit import CircuitProblem
    from .netlist import Netlist
    from .optim import Result


def _console(stderr: bool) -> Console:
    """No emoji codes: rich read "amp.cir:100: ..." (an error at line 100) as amp.cir💯, and ":x:" in a path as ❌.
    ``COLUMNS=0`` (a shell that knows no terminal size) made a console of width 0, which printed nothing: every
    table, and the one error line of a bad input (exit 2, no word); rich's default width then."""
    console = Console(stderr=stderr, emoji=False)
    return console if console.width > 0 else Console(stderr=stderr, emoji=False, width=80)


out = _console(stderr=False)
err = _console(stderr=True)

_PREFIX = {"meg": "M", "g": "G", "t": "T", "u": "µ"}   # SPICE suffixes as SI prefixes, for display
#: Significant digits by default, and the most a float needs (repr round-trips in 17).
DIGITS, MAX_DIGITS = 4, 17



def one_line(text: str) -> str:
    return " ".join(printable(text).split()) or "unknown error"


def as_text(text: str) -> str:
    """Text from a deck, its spec or a received directory (a file name, a unit) as rich shows it: markup and
    control or invisible format characters escaped (a unit's bidirectional override reordered its row)."""
    return escape(printable(text))


def fmt(value: float | None, unit: str = "", digits: int = DIGITS) -> str:
    """A value with its unit for display (SI prefix where it reads well); plain text, not markup."""
    if value is None:
        return "—"
    if not math.isfinite(value):
        return str(value)
    if unit in ("dB", "deg", "", "%") or "^" in unit or "/" in unit:   # no SI prefix on areas and ratios
        return f"{value:.{digits}g} {unit}".strip()
    number, prefix = re.match(r"^(.*?)([a-z]*)$", units.format(value, digits)).groups()
    return f"{number} {_PREFIX.get(prefix, prefix)}{unit}"


def _exact_digits(value: float) -> int:
    """The fewest digits (at least DIGITS) that print ``value`` exactly: a limit is shown as written."""
    return next((d for d in range(DIGITS, MAX_DIGITS) if float(f"{value:.{d}g}") == value), MAX_DIGITS)


def _honest_digits(value: float, constraints: Sequence[Constraint]) -> int:
    """The fewest digits (at least DIGITS) with which ``value`` passes or fails each limit as the exact value
    does and equals none it differs from: 129.96 dB under ``>= 130`` shows as 129.96, not as 130."""
    for d in range(DIGITS, MAX_DIGITS):
        shown = float(f"{value:.{d}g}")
        if all((c.value(shown) <= 0) == (c.value(value) <= 0) and (shown != c.bound or value == c.bound)
               for c in constraints):
            return d
    return MAX_DIGITS


def _spec_cell(value: float | None, unit: str, sense: str | None, constraints: Sequence[Constraint]) -> str:
    parts = [f"[cyan]{sense}[/cyan]"] if sense else []
    for c in constraints:
        verdict = "[green]pass[/]" if c.value(value) <= 0 else "[red]FAIL[/]"
        parts.append(f"{verdict} {c.op} {as_text(fmt(c.bound, unit, _exact_digits(c.bound)))}")
    if value is None and (sense or constraints):
        parts.append("[red]not measured[/]")
    return ", ".join(parts)


def print_sizing(problem: CircuitProblem, params: Mapping[str, float], measures: Mapping[str, float],
                 title: str) -> None:
    """The parameters and the measures against the spec of the problem's objective (and its constraints)."""
    t = Table(title=f"{as_text(title)}: parameters", title_justify="left")
    for col in ("parameter", "value", "bounds", "scale"):
        t.add_column(col, justify="right" if col == "value" else "left")
    for row in problem.describe_params(params):
        t.add_row(*map(as_text, row))
    out.print(t)
    m = Table(title="measures", title_justify="left")
    for col in ("measure", "value", "spec"):
        m.add_column(col, justify="right" if col == "value" else "left")
    objective = problem.objective
    constraints = (*(objective.constraints if objective else ()), *problem.constraints)
    for name, unit in problem.spec.measures.items():
        value = measures.get(name)
        mine = [c for c in constraints if c.measure == name]
        digits = DIGITS if value is None or not math.isfinite(value) else _honest_digits(value, mine)
        sense = objective.sense if objective is not None and name == objective.measure else None
        m.add_row(as_text(name), as_text(fmt(value, unit, digits)), _spec_cell(value, unit, sense, mine))
    out.print(m)


def objective_rows(problem: CircuitProblem, outcome: Outcome) -> dict[str, dict[str, Any]]:
    """Per objective of the spec: the FoM a run optimizing it charges for this outcome (the problem's own
    objective straight from the outcome), the objective's value and feasibility; at this outcome's corner alone
    (``corners``: those a run of it judges, at their worst)."""
    rows = {}
    for name, obj in problem.spec.objectives.items():
        if outcome.status != Status.OK:
            fom, value, feasible = math.inf, None, None
        elif problem.objective is not None and name == problem.objective.name:
            fom, value, feasible = outcome.fom, outcome.objective, outcome.feasible
        else:
            score = obj.evaluate(outcome.measures)
            fom, value, feasible = score.fom, score.objective, score.feasible
        rows[name] = {"fom": fom if math.isfinite(fom) else None, "value": value, "feasible": feasible,
                      "constraints": [str(c) for c in obj.constraints], "corners": list(obj.corners)}
    return rows


def _print_objectives(problem: CircuitProblem, rows: Mapping[str, Mapping[str, Any]]) -> None:
    t = Table(title="objectives", title_justify="left")
    for col in ("objective", "goal", "value", "feasible", "FoM"):
        t.add_column(col)
    for name, row in rows.items():
        obj = problem.spec.objectives[name]
        feas = {True: "[green]yes", False: "[red]no", None: "—"}[row["feasible"]]
        at = f" (nominal here; a run takes the worst of {len(obj.corners)} corners)" if obj.corners else ""
        t.add_row(as_text(name), as_text(f"{obj.sense} {obj.measure}{at}"),
                  as_text(fmt(row["value"], problem.spec.unit_of(obj.measure))), feas,
                  "—" if row["fom"] is None else f"{row['fom']:.5g}")
    out.print(t)


class Verdict(str, enum.Enum):
    """What simulating one sizing gave (``status`` of ``--json``)."""

    OK = "ok"
    INCOMPLETE = "incomplete"   # it simulated, but a measure is missing: a run charges a penalty
    FAILED = "failed"           # no measures: a run charges +inf


def simulate_and_show(problem: CircuitProblem, values: Mapping[str, float], as_json: bool, title: str,
                      fixed: Mapping[str, float] | None = None) -> tuple[Verdict, str | None]:
    """Simulate one sizing as the optimizer would and show it (tables, or one JSON object); (verdict, error).
    ``fixed``: other ``.param`` values of the deck for this simulation. A failed simulation shows nothing in
    tables: its error is the caller's to report."""
    x = np.array([values[n] for n in problem.names], dtype=float)
    if fixed:
        title += " with " + ", ".join(f"{k}={units.format(v)}" for k, v in fixed.items())
    try:
        layers = problem.sandbox_report()                # which OS protections the simulation runs under
        outcome = problem.simulate(x, dict(fixed or {}))
    finally:
        problem.close()
    verdict = (Verdict.FAILED if outcome.status != Status.OK else Verdict.INCOMPLETE if outcome.error
               else Verdict.OK)
    error = None if outcome.error is None else one_line(outcome.error)
    params = {p.name: float(values[p.name]) for p in problem.parameters}
    rows = objective_rows(problem, outcome) if verdict != Verdict.FAILED else {}
    if as_json:
        print(json_text({"status": verdict.value, "params": params, "measures": outcome.measures,
                         "objectives": rows, "error": error, "sandbox": layers.as_dict() if layers else None,
                         "reads_outside": [r.as_dict() for r in problem.netlist.reads_outside],
                         "unused_params": unused_params(problem)}))
    elif verdict != Verdict.FAILED:
        out.print(f"sandbox: {layers}", highlight=False, soft_wrap=True)
        print_sizing(problem, params, outcome.measures, title)
        _print_objectives(problem, rows)
        if verdict == Verdict.INCOMPLETE:
            charged = "inf" if not math.isfinite(outcome.fom) else f"{outcome.fom:.5g}"
            err.print(f"[yellow]warning:[/yellow] {escape(error or '')}; a run charges this sizing FoM {charged}",
                      highlight=False, soft_wrap=True)
    return verdict, error


def note_reads(netlist: Netlist) -> None:
    """One ``note:`` line per file the deck names outside its folder (:mod:`zoaf.readscope`), before anything
    simulates it: a received deck's reads, which ngspice's errors may quote into the results a designer shares."""
    for read in netlist.reads_outside:
        err.print(f"[yellow]note:[/yellow] {as_text(str(read))}", highlight=False, soft_wrap=True)


def unused_params(problem: CircuitProblem) -> list[str]:
    """The design variables the spec sizes that no line of the deck or its includes reads (:mod:`zoaf.paramuse`)."""
    unused = set(problem.netlist.unused_params)
    return [name for name in problem.names if name.lower() in unused]


def note_unused(problem: CircuitProblem) -> None:
    """One ``note:`` line per design variable nothing reads, before anything simulates: a run would spend its
    budget on a dimension that changes no simulation."""
    nl = problem.netlist
    for name in unused_params(problem):
        key = name.lower()
        where = f"{nl.path}:{nl.param_lines[key]}" if key in nl.param_lines else nl.param_files.get(key, nl.path)
        said = (f"{where}: .param {name} is a design variable of the spec, but no line of the deck or its includes "
                "reads it: it changes no simulation, and a run spends simulations on it (use it in the deck, or "
                "remove it from the spec's [parameters])")
        err.print(f"[yellow]note:[/yellow] {as_text(said)}", highlight=False, soft_wrap=True)


def note_deck(problem: CircuitProblem) -> None:
    """The ``note:`` lines of every command that simulates a deck (``check``, ``simulate``, ``optimize``,
    ``compare``, sign-off), printed before its first simulation: the files it reads outside its folder
    (:func:`note_reads`) and the design variables it never reads (:func:`note_unused`). Sign-off of a received run
    printed none, yet simulated the same deck."""
    note_reads(problem.netlist)
    note_unused(problem)


def note_reading(netlist: Netlist, quiet: bool = False) -> None:
    """One ``note:`` line per way ``ngspice -b`` reads the deck otherwise than it looks (``Netlist.notes``: a card it
    skips, a vector it would not save), unless ``quiet``: what a run's evaluator says as it starts simulating
    (:class:`zoaf.errors.ZoafNote`), said by ``zoaf compare`` once before its runs, which run in processes of their
    own and say none."""
    for note in () if quiet else netlist.notes:
        err.print(f"[yellow]note:[/yellow] {as_text(note)}", highlight=False, soft_wrap=True)


#: The files of a run directory ``report_run`` names, those written: none of the end files when no sizing had its
#: objective or the run stopped before its first simulation.
RUN_FILES = ("best.cir", "result.json", "trace.json", "history.db", "convergence.png")


def report_run(problem: CircuitProblem, result: Result, out_dir: Path, seconds: float, quiet: bool) -> None:
    """The best sizing of a run and one line of counts; why it failed when no sizing had its objective."""
    if quiet:
        return
    if result.params:
        print_sizing(problem, result.params, result.measures, f"best of {result.nfev} simulations")
        from .signoff.show import corner_table

        corner_table(out, problem, result.history)
    feas = {True: "feasible", False: "INFEASIBLE", None: ""}[result.feasible]
    out.print(f"{result.message}: FoM {result.fun:.6g} {feas} (seed {result.seed}, {result.nfev} simulations, "
              f"{result.ncached} cached, {result.nfailed} failed, {seconds:.1f} s)", highlight=False)
    why = next((r.outcome.error for r in reversed(result.history or []) if r.outcome.error), None)
    # Why there is no best point with its objective (or with every measure it needs); with one, an error of
    # another sizing is not the reason the run ended where it did (an interrupted run, say).
    if why and (result.objective is None or result.stop_reason is StopReason.FAILED):
        out.print(f"last error: {escape(one_line(why))}", highlight=False)
    written = [name for name in RUN_FILES if (out_dir / name).is_file()]
    out.print(f"run directory: {as_text(str(out_dir))}  ({', '.join(written) or 'nothing written'})",
              highlight=False)                         # named with an escape sequence: not one the terminal runs


def own_warnings(shown: Callable[..., None]) -> Callable[..., None]:
    """``warnings.showwarning`` that says zoaf's own warnings (:class:`ZoafWarning`) as the command line's other
    warnings, ``warning: FILE: ...`` in one line (Python's form was ``FILE:0: ZoafWarning: ...``); a library's
    warning keeps Python's form (``shown``)."""
    def show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int, file: Any = None,
                     line: str | None = None) -> None:
        if not issubclass(category, ZoafWarning):
            shown(message, category, filename, lineno, file, line)
            return
        if issubclass(category, ZoafNote):                        # how ngspice -b reads the deck: a note
            err.print(f"[yellow]note:[/yellow] {as_text(str(message))}", highlight=False, soft_wrap=True)
            return
        where = f"{filename}: " if lineno == 0 else ""          # set at the user's file, not at a line of zoaf
        err.print(f"[yellow]warning:[/yellow] {escape(one_line(where + str(message)))}", highlight=False,
                  soft_wrap=True)
    return show_warning

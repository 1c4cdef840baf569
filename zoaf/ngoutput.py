"""Read ngspice's printed output: which error a command's output reports, and the ``name = value`` results.

Shared by the in-process session and the ``ngspice -b`` runs (:mod:`zoaf.spice`): both print the same lines.
"""
from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable

from .errors import ConvergenceError, MeasureError, ParseError, SimulationError

__all__ = ["RESULT_LINE", "batch_results", "block_cards", "classify", "command_failed", "lets_failed", "meas_printed",
           "missing_reason", "printed_results", "select", "split_measurements", "strip_prefix", "vector_or_printed",
           "without_asked_transient_op"]

#: Output lines that mean the simulation failed, by error type (matched lower-case, in this order).
_PARSE_PATTERNS = ("error on line", "cannot recover", "could not find a valid modelname", "not parsed",
                   "unknown model", "no circuit loaded", "aren't any circuits loaded", "there is no circuit",
                   ".end statement", "could not find include file", "unknown subckt", "undefined", "syntax error",
                   "unknown parameter", "unrecognized", "parameters for subcircuit")
_CONVERGENCE_PATTERNS = ("transient op started", "too small", "aborted", "operating point failed",
                         "cannot recover", "singular matrix", "iteration limit", "simulation interrupted",
                         "no convergence", "analysis not run", "no data saved")
_MEASURE_PATTERNS = ("out of interval", "meas ", "measure")
#: Lines that contain a trigger word but are harmless (ngspice recovers after a failed gmin step; "circuit:" and
#: the reset line echo the netlist's title, which may say "error"; ``sens`` prints "GET ERROR: Diode:... -> param
#: lm" for each geometry parameter a diode cannot report, and goes on: ``ngspice -b`` prints the results).
BENIGN = ("warning:", "note: starting", "note: gmin", "note: source", "background thread stopped",
          "circuit:", "reset re-loads circuit", "trying gmin", "get error:")
#: A number as ``.meas`` cards, the ``meas`` command and ``print`` write it: ``%e``, a lower-case exponent always.
#: ``echo $&x`` writes ``%G`` (``1.58489E+06``, ``983619``): a designer's log line, never a result (``echo fc =
#: $&fc`` after ``meas ac fc ...`` was read as ``fc``, six digits, over the measure's own line).
_PRINTED_NUMBER = r"([-+]?(?:\d+(?:\.\d*)?|\.\d+)(?-i:e)[-+]?\d+)(?=\s|,|$)"
#: A printed result: ``.meas`` cards, the ``meas`` command and ``print`` of a scalar all print ``name = value``
#: (``.meas`` may follow it with ``at=``, ``from=`` ...).
RESULT_LINE = re.compile(r"^\s*([a-z_][\w.#()\[\]:]*)\s*=\s*" + _PRINTED_NUMBER, re.I)
#: Any ``name = number`` line (an ``echo``'s too): no error report, whatever its name says.
_ASSIGNMENT = re.compile(r"^\s*[a-z_][\w.#()\[\]:]*\s*=\s*[-+]?\.?\d", re.I)


def classify(lines: Iterable[str], *, context: str, default: type[SimulationError] | None = None,
             file_line: Callable[[int, str, str], int | str | None] | None = None) -> SimulationError | None:
    """The error ngspice's output ``lines`` of one command report, or None when they report none.

    Args:
        lines: ngspice's output of one command (``stdout``/``stderr`` prefixes already removed).
        context: what was run, for the message (``"reset"``, ``"ac dec 10 1 1g"``).
        default: the error type for an unclassified ``error``/``failed`` line (None: SimulationError).
        file_line: the deck file's line that ngspice's line N of a card (printed, or "") is, given ngspice's words,
            or another file's ``path:line``, or None (:meth:`zoaf.netlist.Netlist.file_line`): a parse error follows
            ``context`` (its path) with it.
    """
    lines = [ln for ln in _without_harmless_reports(lines) if ln.strip()]
    low = [ln.lower() for ln in lines]
    bad = [i for i, s in enumerate(low)
           if (not s.lstrip().startswith(BENIGN) and "<<nan, error" not in s) or "transient op started" in s]
    hits = [i for i in bad if any(w in low[i] for w in ("error", "fail", "abort", "not parsed", "cannot",
                                                        "too small", "transient op started",
                                                        "could not find", "out of interval", "undefined",
                                                        "interrupted", "singular", "parameters for subcircuit",
                                                        "permission denied"))]   # the sandbox said no
    if not hits:
        return None
    text = "\n".join(lines)
    first = _clean(lines[hits[0]])
    for i in hits:
        if any(p in low[i] for p in _PARSE_PATTERNS) or _COMMAND_CARD.match(lines[i + 1] if i + 1 < len(lines) else ""):
            said, n, card = _cause(lines, low, i)
            line = None if n is None or file_line is None else file_line(n, card, said)
            where = context if line is None else f"{context}{':' if isinstance(line, int) else ': '}{line}"
            err = ParseError(f"{where}: {said}", text)
            if any("cannot recover" in s or "fatal error" in s for s in low):
                err.needs_new_process = True
            return err
    for i in hits:
        if any(p in low[i] for p in _CONVERGENCE_PATTERNS):
            fatal = next((_clean(ln) for ln in lines[:i] if ln.lower().lstrip().startswith("fatal error:")), "")
            said = _clean(lines[i]).removesuffix(" -") + (f" ({fatal})" if fatal else "")   # "... failed -"
            return ConvergenceError(f"{context}: {said}{_op_fallback(lines, low)}", text)
    for i in hits:
        if any(p in low[i] for p in _MEASURE_PATTERNS):
            return MeasureError(f"{context}: {_clean(lines[i])}", text)
    return (default or SimulationError)(f"{context}: {first}", text)


#: ngspice's reports of a transient operating point: a failure where ngspice falls back to it (zoaf turns that off:
#: :func:`zoaf.ngprocess.shared_ngspice`), none where the deck's own ``optran`` command asks for it and it finishes.
_TRANSIENT_OP = re.compile(r"^\s*note: transient op (started|finished successfully)", re.I)


def without_asked_transient_op(lines: list[str]) -> list[str]:
    """``lines`` less each "Transient op started" that "Transient op finished successfully" follows, and that line:
    the output of a deck whose ``.control`` block asks for a transient operating point with ``optran`` (the
    Xschem templates' ``optran 0 0 0 0.1u 2u 0``), where ``ngspice -b`` prints every result."""
    marks = [(i, m.group(1).lower()) for i, ln in enumerate(lines) if (m := _TRANSIENT_OP.match(ln))]
    done: set[int] = set()
    for (i, kind), (j, then) in zip(marks, marks[1:]):
        if kind == "started" and then == "finished successfully":
            done.update((i, j))
    return [ln for i, ln in enumerate(lines) if i not in done]


#: ngspice's report of a ``.meas`` card it skips (``.meas op``: :attr:`zoaf.meascards.Measure.skipped`), which
#: the card's text follows on the next line; ``ngspice -b`` runs on, and exits with status 0.
_SKIPPED_CARD = re.compile(r"^\s*error: unrecognized analysis type '[^']*' for the following \.meas statement", re.I)
#: An XSPICE code model's message (``cm_message_send``: ilimit's "**** ERROR ****" then "* CLIMIT function linear
#: range less than zero. *"), its text on the next line: the model goes on, and so does ``ngspice -b``.
_CODE_MODEL_MESSAGE = re.compile(r"^\s*\*{4} error \*{4}\s*$", re.I)
#: A ``stop when``/``stop after`` breakpoint met: the analysis pauses ("doAnalyses: pause requested", "tran
#: simulation interrupted") with the points so far in its plot, which ``ngspice -b`` measures (``resume`` goes on).
#: After some other decks in the process (``bsource_ota_loop.cir``) the middle line says "doAnalyses: Too many
#: iterations without convergence" instead, with the same points.
_BREAKPOINT_MET = re.compile(r"^\s*\d+\s*: condition met: stop\b", re.I)
_PAUSED = re.compile(r"^\s*(?:doanalyses: .*|(?:\w+ )?simulation interrupted)\s*$", re.I)


def _without_harmless_reports(lines: Iterable[str]) -> list[str]:
    """``lines`` less the reports that trigger words would misread: a skipped ``.meas`` card and the card it prints
    (which may say "fail"), a code model's message and its text, an analysis paused at a ``stop`` breakpoint."""
    out: list[str] = []
    after_report = paused = False
    for ln in lines:
        report = bool(_SKIPPED_CARD.match(ln) or _CODE_MODEL_MESSAGE.match(ln))
        paused = bool(_BREAKPOINT_MET.match(ln)) or (paused and bool(_PAUSED.match(ln) or not ln.strip()))
        if not report and not after_report and not (paused and _PAUSED.match(ln)):
            out.append(ln)
        after_report = report or (after_report and not ln.strip())
    return out


def _cause(lines: list[str], low: list[str], i: int) -> tuple[str, int | None, str]:
    """Line ``i``, or where it is ngspice's "cannot recover" the first error it printed before: that names what
    went wrong (``Expression err: ln}``, ``Error: Mismatch of .subckt ... .ends``, else numparam's line after its
    "Netlist line no."), the last line never does. "Error on line N or its substitute:" is followed by the card and
    the reason (``.step``: "unimplemented control card"): both, in one line.
    Also the line N ngspice names (numparam's "Netlist line no. N:" before its words) and the card it prints: N is
    the file's line only for the deck's own cards (an included file's are counted in that file), so the caller
    decides whether to name it (``classify``'s ``file_line``)."""
    if "cannot recover" in low[i]:
        said = next((k for k in range(i) if low[k].lstrip().startswith(("error", "expression err"))), None)
        numparam = next((k + 1 for k in range(i - 1) if _NUMPARAM_LINE.match(lines[k])), None)
        if said is not None or numparam is not None:
            j = numparam if said is None else said
            return ("" if said is not None else "numparam: ") + _clean(lines[j]), _numparam_line(lines, j), ""
    if i + 1 < len(lines) and (command := _COMMAND_CARD.match(lines[i + 1])):
        said = _clean(_STALE_ROUTINE.sub("", _ERROR_WORD.sub("", lines[i])))
        return f"ngspice cannot read the card {_clean(command.group(1))!r}: {said}", None, command.group(1)
    rest = [_clean(_STALE_ROUTINE.sub("", ln)) for ln in lines[i + 1:i + 3] if "interrupted" not in ln.lower()]
    if i and _NO_FUNCTION.match(lines[i - 1]):      # the reason the card's generic one hides ("no such function 'sdt'")
        rest.append(_clean(_ERROR_WORD.sub("", lines[i - 1])))
    if (card := _CARD_ERROR.match(lines[i])) and rest:
        return (f"ngspice cannot read the card {rest[0]!r}" + "".join(f": {w}" for w in rest[1:]),
                int(card.group(1)) if card.group(1) else None, rest[0])
    return _clean(lines[i]), _numparam_line(lines, i), ""


def _numparam_line(lines: list[str], j: int) -> int | None:
    """N of numparam's "Netlist line no. N:" right before line ``j`` (its words), else None."""
    at = _NUMPARAM_LINE.match(lines[j - 1]) if j > 0 else None
    return int(at.group(1)) if at else None


#: A B source's expression calling a function ngspice does not have (``sdt``): printed before the card's report.
_NO_FUNCTION = re.compile(r"^\s*error: no such function '[^']*'\s*$", re.I)
#: ngspice's report of a card it cannot read, the card and the reason on the next two lines: "Error on line N or
#: its substitute:" at a load (N: the line ngspice read, the file's for the deck's own), "Error on line:" at a reset.
_CARD_ERROR = re.compile(r"^\s*error on line(?: (\d+))?(?: or its substitute)?:\s*$", re.I)
#: An analysis command's report of the card it could not read (``ngspice -b`` says "Error on line N" at the load):
#: the reason ("Error: TSTEP is invalid, must be greater than zero."), then this line, ``in   .tran 0 4m``; the
#: analysis is then "aborted", which is no failure to converge.
_COMMAND_CARD = re.compile(r"^\s*in\s+(\.\S.*?)\s*$", re.I)
#: The "Error:" words before the reason (``Error:  Error: unknown parameter on .tran - ignored``), and the routine
#: that ngspice names after it (or after a card's reason), which is the last error's of the process (``detected in
#: routine "CAPask"`` after an sdt card).
_ERROR_WORD = re.compile(r"^\s*(?:error:\s*)+", re.I)
_STALE_ROUTINE = re.compile(r"\s*detected in routine \"[^\"]*\"\s*$", re.I)
#: numparam's line before its words ("Undefined parameter [zz]"): N counted as for ``_CARD_ERROR``.
_NUMPARAM_LINE = re.compile(r"^\s*netlist line no\. (\d+):", re.I)


def _clean(line: str, limit: int = 200) -> str:
    """``line`` for a one-line message: control characters and runs of blanks made one blank, at most ``limit``
    characters (a card of a PDK's subcircuit runs to thousands): its head and its tail, where ngspice puts the
    reason after a long path ("...hijack.so: failed to map segment from shared object")."""
    text = " ".join(re.sub(r"[\x00-\x1f\x7f-\x9f]", " ", line).split())
    half = (limit - 5) // 2
    return text if len(text) <= limit else f"{text[:half]} ... {text[-half:]}"


#: The operating-point solver's reports that it gave up (Newton, then gmin and source stepping): the point at which
#: ``ngspice -b`` starts its transient operating point, which zoaf turns off (:func:`zoaf.ngprocess.shared_ngspice`).
_OP_FAILED = re.compile(r"stepping failed|solution failed|operating point failed", re.I)
_SINGULAR = re.compile(r"singular matrix:\s*check node (\S+)", re.I)


def _op_fallback(lines: list[str], low: list[str]) -> str:
    """For an operating point that did not converge, in a session (``ngspice -b`` prints "Transient op started"):
    what ``ngspice -b`` does instead and what to do, else ""."""
    if any("transient op started" in s for s in low) or not any(map(_OP_FAILED.search, lines)):
        return ""
    node = next((m.group(1) for ln in lines if (m := _SINGULAR.search(ln))), None)
    where = f" (singular matrix at {node})" if node else ""
    return (f"; no operating point{where}: ngspice -b would fall back to a transient operating point here, zoaf does"
            " not (that is the state at the end of a ramp, not a bias point): give every node a DC solution (a DC path"
            " to ground, a resistance in series with an inductor across a source, .nodeset or .ic near the intended"
            " bias) or use .tran ... uic")


#: Lines ngspice prints while it evaluates ``.meas`` cards (after a "Measurements for ... Analysis" banner):
#: results, and the reports of a failed measure, including numparam's for a ``param=`` that uses it, and "Error:
#: Bad value." for a ``param=`` whose value is not finite (a division by zero, ``ln(0)``, an overflow), which
#: prints ``name = failed`` and lets the other cards measure.
_MEAS_LINE = re.compile(r"^\s*(?:$|measurements for |error: measure|\.?meas(?:ure)?\b.*failed!?$|netlist line no\.|"
                        r"undefined parameter|expression err|cannot compute substitute|out of interval|"
                        r"insertnumber: fails|error: bad value\.$|"
                        r"s = \"\.meas|"
                        r"[a-z_][\w.]*\s*=\s*(?:failed|[-+\d.]))", re.I)


_FAILURE_REPORT = re.compile(r"^\s*(?:error: measure\b|out of interval|\.?meas(?:ure)?\b.*failed!?$)", re.I)
_LET_FAILED = re.compile(r'^\s*error: (?:rhs|can\'t evaluate) ".*"', re.I)
_FAILED = re.compile(r"^\s*(?:\.?meas\w*\s+\w+\s+(\w+)\b.*failed|(\w+)\s*=\s*failed)", re.I)
#: A ``meas`` command's failure (a ``.meas`` card's starts with its dot).
_COMMAND_FAILED = re.compile(r"^\s*meas(?:ure)?\s+\w+\s+(\w+)\b.*failed!?$", re.I)
#: A ``print`` that prints nothing: one of its vectors is not in the current plot (nor ``const``).
_UNPRINTABLE = re.compile(r"^\s*warning from checkvalid: vector (\S+) is not available or has zero length", re.I)
#: ngspice's reason for a ``meas`` that reads a vector the plot does not hold (not saved), on stderr.
_NO_VECTOR = re.compile(r"^\s*error: no such vector as ", re.I)


def split_measurements(lines: list[str], measures: Iterable[str] | None = None) -> tuple[list[str], list[str]]:
    """(the other lines, the lines of ``.meas`` evaluation): a measure that fails is a missing result, not a
    failed simulation (its numparam report says "Undefined parameter" when a ``param=`` uses it).

    Args:
        lines: one command's output, in order: the lines after a "Measurements for" banner are the measures'.
        measures: for output whose stdout and stderr were read apart (``ngspice -b``): measure lines are
            recognised by their form wherever they are; "Undefined parameter" only for these names, and not where
            ngspice stopped with a fatal error (a card's ``val='iout*0.98'`` names a measure while the deck loads).
    """
    inside, where = False, []
    names = None if measures is None else set(measures)
    if names and any("fatal error in ngspice" in ln.lower() for ln in lines):
        names = set()
    following, last = [""] * len(lines), ""             # the next non-blank line after each line
    for j in range(len(lines) - 1, -1, -1):
        following[j], last = last, (lines[j] if lines[j].strip() else last)
    for i, ln in enumerate(lines):
        # ngspice's reason for a failed card ("no such vector as 'i(r1)'", "function 'deriv' currently not
        # supported") comes right before its "... failed!" line, in any words, or before the card's other report
        # lines (a max over a .dc temp sweep: "no such vector as time, frquency or v-sweep", "out of interval");
        # a print's "vector ... is not available" is never one (a block's print of another plot's vector, read
        # apart on stderr among the failures of the cards that its `dc` measured again)
        m = _MEAS_LINE.match(ln) or (_FAILURE_REPORT.match(following[i]) and not _UNPRINTABLE.match(ln))
        if names is None:
            inside = (inside or ln.strip().lower().startswith("measurements for ")) and bool(m)
        else:
            undefined = re.search(r"undefined parameter \[(\w+)\]", ln, re.I)
            inside = bool(m) and (undefined is None or undefined.group(1).lower() in names)
        where.append(inside)
    # numparam's "Netlist line no. N:" goes with its words: a card's "Undefined parameter" is no measure's
    where = [w if names is None or not _NUMPARAM_LINE.match(ln) or i + 1 == len(lines) else where[i + 1]
             for i, (ln, w) in enumerate(zip(lines, where))]
    return [ln for ln, w in zip(lines, where) if not w], [ln for ln, w in zip(lines, where) if w]


def block_cards(lines: list[str], names: Iterable[str]) -> tuple[dict[str, float], list[str]]:
    """The ``.meas`` card results printed after analyses run inside a ``.control`` block (a loop's, at its ``end``),
    and the output less their lines but failures (a ``param=`` card measured again without a ``reset`` prints
    "insertnumber: fails" and keeps its first value, as ``ngspice -b`` does)."""
    if not any(ln.strip().lower().startswith("measurements for ") for ln in lines):
        return {}, lines
    other, meas = split_measurements(lines)
    return printed_results(meas, names), other + [ln for ln in meas if "fail" in ln.lower()
                                                  and "insertnumber" not in ln.lower()]


def printed_results(lines: Iterable[str], names: Iterable[str]) -> dict[str, float]:
    """name (lower-case) -> value of the printed results among ``names``; a name printed twice: the last. A
    ``print`` of vectors from more than one plot (the current one and ``const``) names each ``plot.name``."""
    wanted = set(names)
    out: dict[str, float] = {}
    for ln in lines:
        if m := RESULT_LINE.match(ln):
            name = m.group(1).lower()
            _, dot, bare = name.partition(".")
            # one plot prefix (``op2.g``); ``print g op1.g`` also prints ``op1.op1.g``, another plot's value of g
            name = bare if name not in wanted and dot and "." not in bare else name
            if name in wanted:
                out[name] = float(m.group(2))
    return out


#: A ``meas`` command's own line (``%-20s=  %e``: two blanks or more after ``=``) and a ``print`` line (``name = v``).
_MEAS_PRINT = re.compile(r"^\s*([a-z_][\w.]*)\s*=\s\s+" + _PRINTED_NUMBER, re.I)
_PRINT = re.compile(r"^\s*([a-z_][\w.]*) = " + _PRINTED_NUMBER, re.I)


def meas_printed(lines: Iterable[str], names: Iterable[str], into: dict[str, float], failed: set[str]) -> None:
    """Update ``into`` with what ``meas`` commands of ``names`` print, in order: ``rms`` and ``integ`` print every
    digit where the vector they make holds 7 (``let name = %e``), and a plot destroyed later takes the vector with it;
    a ``print`` of the name forgets it (the vector is then what ``ngspice -b`` printed last). ``failed`` gets the
    names whose last ``meas`` failed: the result is the last one's (a loop's last pass), not an older plot's value."""
    wanted = set(names)
    for ln in lines:
        if (m := _PRINT.match(ln)) and m.group(1).lower() in wanted:
            into.pop(m.group(1).lower(), None)
            failed.discard(m.group(1).lower())
        elif (m := _MEAS_PRINT.match(ln)) and m.group(1).lower() in wanted:
            into[m.group(1).lower()] = float(m.group(2))
            failed.discard(m.group(1).lower())
        elif (name := command_failed(ln)) in wanted:
            into.pop(name, None)
            failed.add(name)


def command_failed(line: str) -> str | None:
    """The name of the ``meas`` command whose failure ``line`` reports (lower-case), else None."""
    m = _COMMAND_FAILED.match(line)
    return m.group(1).lower() if m else None


def vector_or_printed(vector: float | None, printed: float | None) -> float | None:
    """A ``meas`` command's result as ``ngspice -b`` prints it: ``printed`` where the vector is gone or still holds
    that value (``%e`` of it, as ngspice made it), else the vector (a later ``let`` changed it)."""
    if printed is None or vector is not None and not math.isclose(vector, float(f"{printed:e}"), rel_tol=1e-13):
        return vector
    return printed


def missing_reason(lines: list[str], name: str) -> str:
    """ngspice's own reason a ``.meas`` gave nothing: the line that names it ("... failed!") and the line before
    it when that says why ("out of interval"), never a background-thread note."""
    said = [_clean(s) for s in lines if s.strip() and not s.strip().lower().startswith(BENIGN)]
    at = next((i for i, s in enumerate(said) if name in s.split()), None)
    if at is None:
        return "no result"
    before = said[at - 1] if at > 0 else ""
    if before and "=" not in before and not before.lower().startswith("measurements for"):
        return f"{before} ({said[at]})"
    return said[at]


def strip_prefix(lines: list[str]) -> list[str]:
    """Output lines of libngspice's send_char callback without their ``stdout``/``stderr`` prefix."""
    out = []
    for ln in lines:
        head, _, rest = ln.partition(" ")
        out.append(rest if head in ("stdout", "stderr") else ln)
    return out


#: The line of a failed expression's report that names the term ngspice could not evaluate.
_IN_TERM = re.compile(r"^\s*in term:", re.I)
#: ngspice's reason for a ``let`` that calls a function it lacks (``sum``, a typo), right before the ``RHS ...
#: invalid`` line: "no function as sum with that arity.", or "no such function as sum," and, where the argument
#: is a vector's name, "    or sum(vo) is not available.".
_LET_NO_FUNCTION = re.compile(r"^\s*error: no (?:such )?function as ", re.I)
_NOT_AVAILABLE = re.compile(r"^\s+or .* is not available\.$", re.I)


def _let_reports(lines: list[str]) -> set[int]:
    """The indexes of ``lines`` that report failed ``let``s: ``Error: RHS "..." invalid`` or ``Error: Can't evaluate
    "..."``, and the reason before it where ngspice names the term (``Error: nostrchring on a scalar (out)``, ``in
    term: v(out)[0]``: an index into a one-value vector) or the function it lacks, which ``ngspice -b`` goes on after
    too."""
    found: set[int] = set()
    for i, ln in enumerate(lines):
        if not _LET_FAILED.match(ln):
            continue
        found.add(i)
        reason = i - 1 - (i > 1 and bool(_NOT_AVAILABLE.match(lines[i - 1])))
        if reason >= 0 and _LET_NO_FUNCTION.match(lines[reason]):
            found.update(range(reason, i))
        j = i - 1
        while j >= 0 and (not lines[j].strip() or _IN_TERM.match(lines[j])):
            j -= 1
        terms = [k for k in range(j + 1, i) if _IN_TERM.match(lines[k])]
        if terms and j >= 0 and lines[j].lower().lstrip().startswith("error:") and not _LET_FAILED.match(lines[j]):
            found.update(range(j, i))
    return found


def lets_failed(lines: Iterable[str]) -> bool:
    """Whether the errors in ``lines`` are all failed ``let``s (``RHS "n + 1" invalid``): an ``if``/loop block
    reports its commands' errors at its ``end``, and ``ngspice -b`` goes on after a failed ``let`` there too."""
    lines = list(lines)
    lets = _let_reports(lines)
    errors = [i for i, ln in enumerate(lines) if "error" in ln.lower()]
    return bool(errors) and all(i in lets for i in errors)


def batch_results(lines: list[str], measures: list[str], names: list[str], context: str,
                  file_line: Callable[[int, str, str], int | str | None] | None = None,
                  prints: Iterable[list[str]] = ()) -> dict[str, float]:
    """The results of a whole-deck run, as ``ngspice -b`` prints them: ``names`` that were printed.

    Raises the error the output reports (but a measure error only after the missing-measure check), or
    MeasureError (with the results that were printed) when one of ``measures`` printed no value, or when a
    ``print`` could not see a result (``prints``: the results each print command names; one that cannot see one
    of them prints none).
    """
    results = printed_results(lines, names)
    gone: set[str] = set()
    meas_printed(lines, names, {}, gone)            # a meas command that failed after an earlier one printed a value
    for name in gone:
        results.pop(name, None)
    other, meas = split_measurements(lines, measures)
    # a .control `let` built on a result that is missing (a failed meas): ngspice -b goes on with the block; a
    # failed meas's reason, printed on stderr (read apart from the "... failed!" line that follows it in order)
    failing = any(map(_FAILED.match, meas))
    lets = _let_reports(other)
    told = [ln for i, ln in enumerate(other) if i in lets or failing and _NO_VECTOR.match(ln)]
    meas += told
    err = classify([ln for ln in other if not _ASSIGNMENT.match(ln) and ln not in told], context=context,
                   file_line=file_line)
    if err is not None and not isinstance(err, MeasureError):
        raise err
    missing = [m for m in measures if m not in results]
    if missing:
        raise MeasureError(f"{context}: no value for .meas {', '.join(missing)}", "\n".join(lines), results)
    # A failed `meas` command of the .control block; a name measured once already (ngspice -b runs a deck
    # with .meas cards and a .control `run` twice, and `param=` fails the second time) is no failure.
    failed = [ln.strip() for ln in meas
              if ((f := _FAILED.match(ln)) and (f.group(1) or f.group(2)).lower() not in results)
              or _LET_FAILED.match(ln)]
    # a print of a result made in another plot: it printed nothing (the session says so too: ngresults.Gathered.collect)
    unseen, groups = set(names) - results.keys(), list(prints)
    failed += [ln.strip() for ln in other
               if (u := _UNPRINTABLE.match(ln)) and _silenced(u.group(1).lower(), unseen, groups)]
    if err is not None or failed:
        raise MeasureError(f"{context}: {failed[0] if failed else err}", "\n".join(lines), results)
    return results


def _silenced(vector: str, unseen: set[str], prints: list[list[str]]) -> bool:
    """Whether a print that could not see ``vector`` left a result unprinted (``unseen``: those nothing printed): the
    vector itself, or another result of a print that names it (ngspice prints none of a print's vectors then)."""
    return vector in unseen or any(vector in group and unseen.intersection(group) for group in prints)


def select(results: dict[str, float], wanted: list[str] | None, output: Iterable[str] = ()) -> dict[str, float]:
    """The ``wanted`` results (all when None); MeasureError, with the results there are, for a missing one."""
    if wanted is None:
        return results
    missing = [n for n in wanted if n not in results]
    if missing:
        raise MeasureError(f"no value for {', '.join(missing)}", "\n".join(output), results)
    return {n: results[n] for n in wanted}

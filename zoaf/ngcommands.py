"""ngspice's command language as zoaf reads it: the command words it knows, and what each one does.

The one place for what a ``.control`` command *is* to zoaf: an analysis, a command that runs programs
(refused), one with no place in a per-evaluation replay (dropped), a block opener, or one that defines a result
(``let NAME =``, ``meas TYPE NAME``). :mod:`zoaf.deckcheck` refuses escapes with these words,
:mod:`zoaf.controlblock` reads a deck's block with them, :mod:`zoaf.spice` replays it.
"""
from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Sequence

from .units import parse

__all__ = ["ANALYSES", "BLOCK_OPEN", "DROPPED_COMMANDS", "LOOPS", "MAX_COMMAND", "MEAS_TYPES", "NAME",
           "OPTION_COMMANDS", "REFUSED_COMMANDS", "analysis_crash", "asks_transient_op", "base_word",
           "batch_drops", "block_depth_change", "defined_name", "draws_random", "has_conditional", "has_interp_card",
           "interp_problem", "interpolates", "is_conditional", "meas_problem", "measured_kind", "misread_value",
           "normalize_equals", "printed_names", "runs_transient", "set_names", "sets_options", "sp_crashes",
           "stop_problem", "too_long", "unmeasured_card"]

#: Analysis dot-commands, in ngspice's spelling (without the dot).
ANALYSES = frozenset({"op", "ac", "dc", "tran", "noise", "sp", "pz", "tf", "sens", "disto", "pss", "hb"})
#: Commands after which another plot may be current: an ``if``/loop block holding one leaves its prints unchecked.
PLOT_MOVERS = ANALYSES | {"run", "setplot", "linearize", "fft", "psd", "spec", "destroy", "load"}
#: Commands that leave a spectrum plot current (a real frequency scale), where ngspice 39 runs every `meas sp`
#: form and `meas ac` crashes it (the other way round from an ac or sp analysis plot; measured by hand).
SPECTRUM_MAKERS = frozenset({"fft", "psd", "spec"})
#: The order ngspice runs a deck's dot-analyses in (its analysis table), whatever their order in the deck.
_RUN_ORDER = ("ac", "dc", "op", "tran", "pz", "tf", "disto", "noise", "sens", "pss", "sp")
#: The longest command libngspice 39 takes whole (a 1024-byte buffer, its end included): a longer one is cut (a
#: ``foreach`` of 160 values ran 129 passes) or ends the process (a ``let`` of 1,024: "buffer overflow detected").
MAX_COMMAND = 1023
_QUOTED = re.compile(r"\"[^\"]*\"|'[^']*'")     # quoted text of a command, where ``>`` is no redirect
#: ``.meas`` analysis types ngspice 39 accepts.
MEAS_TYPES = frozenset({"ac", "dc", "tran", "sp"})
#: The ``meas sp`` forms ngspice 39 runs (measured by hand); the others (``find``, ``when``, ``rms``, ``integ``,
#: ``trig``) crash it, ``ngspice -b`` and libngspice alike (a segmentation fault), as a card or a command.
_SP_FORMS = frozenset({"avg", "min", "max", "min_at", "max_at", "pp", "deriv", "derivative", "param"})
#: ``.control`` commands that run other programs, load code or source other command files: refused unless
#: ``allow_shell``. ``shell`` runs /bin/sh; ``aspice``/``rspice``/``jobs`` start and manage ngspice
#: sub-processes; ``codemodel``/``osdi`` load shared libraries; ``source`` runs another deck's commands
#: (which could hold any of these); ``edit`` starts an editor; ``bug`` mails; ``rehash`` scans $PATH for
#: ``unixcom``; ``gnuplot``/``xgraph`` start plotting programs. A ``pre_`` prefix is looked through.
REFUSED_COMMANDS = frozenset({"shell", "aspice", "rspice", "jobs", "codemodel", "osdi", "source", "edit",
                              "bug", "rehash", "gnuplot", "xgraph"})
#: ``.control`` commands kept in the file but never replayed per evaluation: interactive output, files
#: written (``write``, ``wrdata``, ...), process exit, working-directory changes. (``resume`` is replayed: it
#: finishes a transient a ``stop`` breakpoint paused, or runs the netlist's analyses, as in ``ngspice -b``.)
DROPPED_COMMANDS = frozenset({"quit", "exit", "plot", "asciiplot", "hardcopy", "iplot", "write", "wrdata",
                              "wrs2p", "wrnodev", "mdump", "mrdump", "print", "echo", "listing", "show",
                              "showmod", "rusage", "version", "help", "cd", "setcs", "display", "history",
                              "inventory", "sysinfo", "status", "snsave", "snload"})
#: ``.control`` commands that set the circuit's options (``option temp=85``): a ``reset`` keeps them, so the next
#: sizing would start from the block's last setting where ``ngspice -b`` starts from the deck's (``opt`` is no
#: command: ngspice ignores it).
OPTION_COMMANDS = frozenset({"option", "options"})
#: A command that turns ``interp`` on (``set interp``, ``option interp``), and a card that does (``.options interp``):
#: ngspice 39 then interpolates every later transient of the process (a flag it never clears, even for another deck).
_INTERP_COMMAND = re.compile(r"\.?(?:set|options?)\s(?:.*\s)?interp\b", re.I)
#: (It and :data:`_CONDITIONAL_IN_TEXT` are searched in ``"\n" + text``: sre skips from newline to newline at memory
#: speed, where a ``^`` under re.M is tried at every position: ~20 ms per search of a sky130 library.)
_INTERP_CARD = re.compile(r"\n[ \t]*\.opt\w*[ \t](?:[^\n]*[ \t])?interp\b", re.I)
#: A call of a vector function that draws from ngspice's generator (and seeds it first: ``ngprocess.rearm_seed``).
_RANDOM_CALL = re.compile(r"(?<![\w.])(?:rnd|sunif|sgauss|sexp|spoisson)\s*\(", re.I)
#: Control-flow keywords of the command language (blocks closed by ``end``).
BLOCK_OPEN = frozenset({"if", "while", "repeat", "dowhile", "foreach"})
#: The blocks among them that run their body more than once (a failure inside is reported with its pass).
LOOPS = BLOCK_OPEN - {"if"}
_CONDITIONAL_CARD = r"\.(?:if|elseif|else|endif)\b"
_CONDITIONAL = re.compile(r"\s*" + _CONDITIONAL_CARD, re.I)
_CONDITIONAL_IN_TEXT = re.compile(r"\n[ \t]*" + _CONDITIONAL_CARD, re.I)
#: A vector or ``.meas`` result name (lower-cased text).
NAME = r"[a-z_][a-z0-9_.]*"

_LET = re.compile(rf"^let\s+({NAME})\s*=", re.I)
_MEAS_CMD = re.compile(rf"^meas(?:ure)?\s+([a-z]+)\s+({NAME})\b", re.I)
#: One variable of a ``set``/``unset`` command, with its value (a list, a quoted string, a word) if any.
_SET_ITEM = re.compile(r"([a-z_][\w.-]*)\s*(?:=\s*(?:\([^)]*\)|\"[^\"]*\"|'[^']*'|\S+))?", re.I)
_EQ_BLANKS = re.compile(r"\s*=\s*")
#: The bare vector names in a ``print`` command (not a function ``db(``, a plot ``tf1.`` or a name after one).
_PRINT_WORD = re.compile(r"(?<![\w.#@])([a-z_][\w#]*)(?![\w#(.])")


def is_conditional(line: str) -> bool:
    """Whether a deck line is a card of a conditional netlist (``.if``, ``.elseif``, ``.else``, ``.endif``): which
    lines of its block exist is decided at each parse."""
    return _CONDITIONAL.match(line) is not None


def has_conditional(text: str) -> bool:
    """Whether a file's text has a conditional card on any of its lines (:func:`is_conditional`)."""
    return _CONDITIONAL_IN_TEXT.search("\n" + text) is not None


def has_interp_card(texts: Iterable[str]) -> bool:
    """Whether a deck's ``texts`` (its own, its included files') have an ``.options interp`` card."""
    return any(_INTERP_CARD.search("\n" + t) for t in texts)


def interpolates(commands: Iterable[str]) -> bool:
    """Whether a ``.control`` block of ``commands`` turns ``interp`` on."""
    return any(_INTERP_COMMAND.match(c) for c in commands)


def sets_options(commands: Iterable[str]) -> bool:
    """Whether a ``.control`` block of ``commands`` sets the circuit's options (``option``), which a ``reset`` keeps:
    a session loads such a deck afresh for every sizing (``SpiceSession``), a worker before each (its affinity)."""
    return any(base_word(c) in OPTION_COMMANDS for c in commands)


def draws_random(commands: Iterable[str]) -> bool:
    """Whether a ``.control`` block of ``commands`` draws random numbers (``sunif``, ``sgauss``, ``rnd``, ...)."""
    return any(_RANDOM_CALL.search(c) for c in commands)


def runs_transient(analyses: Iterable[str], commands: Iterable[str]) -> bool:
    """Whether a deck with these dot-``analyses`` and ``.control`` ``commands`` may run a transient."""
    return any(a.split(None, 1)[0] == "tran" for a in analyses) or any(base_word(c) == "tran" for c in commands)


def interp_problem(lines: Sequence[tuple[int, str, tuple[int, ...]]], analyses: Sequence[str],
                   interp_card: bool) -> tuple[int, str] | None:
    """(line, why) for a ``.control`` block (its ``(line, command, ...)`` entries) that turns ``interp`` on after a
    transient ran, in a deck with no ``.options interp`` card (``interp_card``: :func:`has_interp_card`):
    ``ngspice -b`` interpolates only the later transients, zoaf's process from the second sizing on every one
    (ngspice never clears the flag)."""
    if interp_card:
        return None
    dot_tran = runs_transient(analyses, ())
    ran = dot_tran and not any(base_word(t) in ANALYSES | {"run"} for _, t, _ in lines)
    for lineno, t, _ in lines:
        if _INTERP_COMMAND.match(t):
            return None if not ran else (lineno, (
                f"{t}: turns interp on after a transient ran; ngspice 39 then interpolates every later transient of "
                "the process, so from the second sizing on the first one would differ from ngspice -b's; refused "
                "(put `.options interp` on a card to interpolate every transient, or `linearize` after the one)"))
        ran |= base_word(t) == "tran" or (base_word(t) == "run" and dot_tran)
    return None


def measured_kind(kinds: Sequence[str]) -> str:
    """The analysis whose plot ngspice takes the ``.meas`` cards on when it runs all the dot-analyses of
    ``kinds`` (batch mode, or ``run``): the one it runs last (``.op`` after ``.ac``/``.dc``)."""
    return max(kinds, key=lambda k: _RUN_ORDER.index(k) if k in _RUN_ORDER else len(_RUN_ORDER))


def unmeasured_card(kinds: Sequence[str], cards: Sequence[tuple[str, str]]) -> tuple[int, str] | None:
    """(index, why) of the first ``.meas`` card, of ``(analysis, name)`` ``cards``, that ``ngspice -b`` would print
    nothing for when it runs the dot-analyses ``kinds`` together (batch mode, or a ``run`` command): it runs them
    all, in its analysis table's order, and only then takes the ``.meas`` cards, on the last one's plot (``.op``
    runs after ``.ac``/``.dc``; of two ``.ac`` lines, the first). zoaf measures after each analysis, so it would
    report what the deck's own run does not."""
    if len(kinds) < 2:
        return None
    last = measured_kind(kinds)
    # ngspice's order, not the deck's: a .sens runs after a .disto written below it (its plot is the current one)
    order = "" if kinds[-1] == last else ", whatever the order of the cards"
    for i, (analysis, name) in enumerate(cards):
        if analysis != last or kinds.count(last) > 1:
            return i, (f".meas {analysis} {name}: ngspice -b runs all of the deck's analyses (.{', .'.join(kinds)}), "
                       f"then measures only the plot of the last one it runs (a .{last}{order}): this card would print "
                       f"nothing, or another analysis' value. Run the analyses one by one in a .control block (ac "
                       f"..., dc ...) instead of dot-analysis lines, or keep one per deck")
    return None


def base_word(command: str) -> str:
    """The command word of ``command`` with a ``pre_`` prefix looked through ("" for a blank line)."""
    word = command.split(None, 1)[0] if command.split() else ""
    return word[4:] if word.startswith("pre_") else word


def block_depth_change(command: str) -> int:
    """+1 for a command that opens an ``if``/``while``/... block, -1 for its ``end``, else 0."""
    word = base_word(command)
    return 1 if word in BLOCK_OPEN else -1 if word == "end" else 0


def defined_name(command: str) -> str | None:
    """The result a ``let NAME = ...`` or ``meas TYPE NAME ...`` command defines, else None."""
    m = _LET.match(command) or _MEAS_CMD.match(command)
    return m.group(m.lastindex or 1) if m else None


def set_names(command: str) -> list[str]:
    """The variables a ``set`` or ``unset`` command sets or unsets, lower-cased (none for another command)."""
    if base_word(command) not in ("set", "unset") or len(command.split()) < 2:
        return []
    return [m.group(1).lower() for m in _SET_ITEM.finditer(command.split(None, 1)[1])]


def printed_names(command: str, names: Iterable[str]) -> list[str]:
    """The ``names`` a ``print`` command reads as bare vectors, which ngspice looks up in the current plot (then in
    ``const``): ``p1`` and ``real(p1)``, not ``pz1.p1`` (which names its plot)."""
    if base_word(command) != "print":
        return []
    words = set(_PRINT_WORD.findall(command.split(None, 1)[1].lower())) if len(command.split()) > 1 else set()
    return [n for n in names if n in words]


def normalize_equals(text: str) -> str:
    """``a = b`` as ``a=b``, as ngspice does to every deck line (``.meas``/``meas`` texts are compared so)."""
    return _EQ_BLANKS.sub("=", text)


def meas_problem(text: str) -> str | None:
    """Why ngspice 39 cannot run a ``.meas`` card or ``meas`` command (``text`` as :func:`normalize_equals`
    gives it), else None: one that ends in ``targ at=TIME`` crashes it (a segmentation fault of ``ngspice -b``,
    and of zoaf's worker, which could only say that it died); one of a node named with a parenthesis measures
    nothing (a ``when`` of one prints 0)."""
    words = text.split()
    if len(words) > 1 and words[-2] == "targ" and words[-1].startswith("at="):
        return (f"a measure that ends in `targ {words[-1]}` crashes ngspice 39 (ngspice -b too: a segmentation "
                "fault); measure from `trig at=` to the target's crossing, or use `find ... at=`/`when`")
    if (node := _PAREN_NODE.search(text)) is not None:
        return (f"`{node.group(0)}`: ngspice 39 reads no node name with a parenthesis in a vector ('no such vector "
                "as v(net-(c1-pad1))'; a `when` of one prints 0 by hand); rename the node (KiCad's newer "
                "netlists write Net-_C1-Pad1_)")
    return None


#: A node name with a parenthesis in a vector of a measure (KiCad 5's ``vdb(Net-(C1-Pad1))``).
_PAREN_NODE = re.compile(r"(?<![\w.@])[vi][a-z]{0,2}\([^()\s,'\"]*\([^()\s]*\)[^()\s,]*\)?")


#: The keys of a ``.meas`` card or ``meas`` command whose value ngspice 39 reads as one number (``when``'s value
#: too: ``when v(out)=VALUE``), and what a value it misreads starts with: a number followed by an operator (``0.25*2``,
#: ``2*tau``: ngspice takes the number and drops the rest); in ``when``, an expression of a vector (``v(2)*0.9``, and
#: in a command, where no ``.param`` is read, ``gain_dc-3``: it takes 0).
_VALUE_KEYS = frozenset({"at", "val", "from", "to", "td"})
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?[a-z]*")
_VECTOR = re.compile(r"[a-z]\w*\([^()]*\)")
_NAME = re.compile(r"[a-z_][\w.#]*(?:\([^()]*\))?")
_OPERATORS = ("-", "+", "*", "/", "^")


def misread_value(text: str, card: bool) -> str | None:
    """Why ngspice 39 measures a ``.meas`` card (``card``) or ``meas`` command (``text`` as :func:`normalize_equals`
    gives it) at another value than the one written, without a word, in ``ngspice -b`` as in zoaf, else None: an
    unquoted ``at=``/``val=``/``from=``/``to=``/``td=`` or ``when`` value that is an expression (measured by hand)."""
    words = text.split()
    for before, word in zip(words, words[1:]):
        key, _, value = word.partition("=")
        if not (key in _VALUE_KEYS or before == "when") or not value or value[0] in "'\"{":
            continue
        number = _NUMBER.match(value)
        vector = (_VECTOR if card else _NAME).match(value) if before == "when" else None
        lead = number or vector
        if lead is None or not value[lead.end():].startswith(_OPERATORS):
            continue
        read, shown = lead.group(0) if number else "0", f"when {key}" if before == "when" else key
        fix = (f"write it in quotes, {shown}='{value}'" if card and number else
               f"measure the difference, when par('{key}-({value})')=0" if card else
               f"compute it first (`let x = {value}`: a vector's name is read) and write {shown}=x")
        return (f"ngspice 39 reads `{shown}={value}` as `{shown}={read}` (the rest of an expression there is dropped "
                f"without a word, in ngspice -b as in zoaf): {fix}")
    return None


#: ``meas`` forms ngspice 39 reads but cannot run, and what it prints for each at every evaluation (the card or
#: command fails, the deck runs on): ``zoaf check`` said nothing of one, though it can never give a value.
_UNSUPPORTED = {"deriv": "function 'deriv' currently not supported", "derivative": "no such function as 'derivative'"}


#: ``meas dc`` forms that read the sweep as an interval: ngspice 39 runs them on a voltage source's sweep only (on a
#: sweep of ``temp``, a current source or a resistor each prints "no such vector as time, frquency or v-sweep").
_INTERVAL_FORMS = frozenset({"max", "min", "pp", "avg", "integ", "rms", "min_at", "max_at"})


def unsupported_form(text: str, swept: str = "") -> str | None:
    """Why a ``.meas`` card or ``meas`` command (``text`` as :func:`normalize_equals` gives it) measures nothing
    in ngspice 39 (its form: ``deriv``; an interval form of ``meas dc`` on a sweep of ``swept``, the name the
    ``.dc`` card sweeps first, that is no voltage source), else None."""
    form = (text.split()[3:4] or [""])[0].split("=")[0]
    if text.split()[1:2] == ["dc"] and form in _INTERVAL_FORMS and swept and not swept.startswith("v"):
        return (f"ngspice 39 runs no `{form}` measure on a .dc sweep of {swept} (of a voltage source only: 'no such "
                "vector as time, frquency or v-sweep'): it measures nothing, in ngspice -b as in zoaf (`find ... "
                "at=`, `when` and `trig`/`targ` run; or in a .control block `dc ...` then `let x = vecmax(v(out))`)")
    if (told := _UNSUPPORTED.get(form)) is None:
        return None
    return (f"ngspice 39 runs no `{form}` measure ({told!r}): it measures nothing, in ngspice -b as in zoaf (`let` "
            "with `deriv()` in a .control block computes the derivative)")


def analysis_crash(text: str) -> str | None:
    """Why an analysis (a ``.control`` command, or a dot card without its dot) crashes ngspice 39, else None:
    ``disto lin N F F`` (a step of 0 over 0; ``disto dec`` and ``ac``/``noise`` of one frequency run)."""
    words = text.split()
    try:
        same = words[:2] == ["disto", "lin"] and len(words) > 4 and parse(words[3]) == parse(words[4])
    except ValueError:                  # an {expression}: the numbers are not known here
        return None
    return None if not same else (
        f"`{text.strip()}`: a linear disto sweep that starts and stops at one frequency crashes ngspice 39 "
        "(ngspice -b: \"malloc: Internal Error: can't allocate -17179869152 bytes\"); refused (sweep to another "
        f"stop frequency, or write `disto dec 1 {words[3]} {words[4]}`)")


#: The comparisons of a ``stop when`` clause, written alone between its two sides.
_STOP_OPS = frozenset({">", "<", "=", "<>", ">=", "<=", "gt", "lt", "eq", "ne", "ge", "le"})


def stop_problem(text: str) -> str | None:
    """Why a ``stop`` command (lower-cased ``text``) hangs ngspice 39, else None. Its breakpoint parser loops for
    ever on a word it cannot place (measured, ``ngspice -b`` killed after seconds): ``stop foo``, ``stop after``,
    ``stop after 5 10``, ``stop when``, ``stop when v(out) > 0.1 foo`` (or ``> 0.05`` after it, which the redirect
    check let through once ``stop`` compares). A clause is ``after N`` or ``when A OP B`` (or ``when A>B`` as one
    word), each followed by another clause or the end; a malformed clause ngspice only reports, so do we not."""
    words = text.split()[1:]
    i = 0
    while i < len(words):
        if words[i] == "after" and i + 1 < len(words):
            i += 2
        elif words[i] == "when" and i + 1 < len(words):
            rest = list(itertools.takewhile(lambda w: w not in ("after", "when"), words[i + 1:]))
            if len(rest) not in (1, 3) or len(rest) == 3 and rest[1] not in _STOP_OPS:
                break
            i += 1 + len(rest)
        else:
            break
    else:
        return None
    return (f"`{text.strip()}`: ngspice 39 loops for ever on a stop it cannot read (here from "
            f"`{' '.join(words[i:]) or 'the end'}`; ngspice -b too); refused (write `stop after N` or "
            "`stop when v(out) > 0.5`, clauses one after another)")


def too_long(lineno: int, command: str) -> str | None:
    """Why the session cannot send ``command`` (line ``lineno``), which puts the deck on the whole-deck path
    (``ngspice -b`` reads its lines whole), else None."""
    return None if len(command) <= MAX_COMMAND else (
        f"line {lineno}: a command of {len(command)} characters (libngspice 39 takes at most {MAX_COMMAND} at a "
        "time; ngspice -b reads the deck's line whole)")


def sp_crashes(text: str) -> bool:
    """Whether a ``meas sp`` command or ``.meas sp`` card (``text`` as :func:`normalize_equals` gives it) is of a
    form that crashes ngspice 39."""
    words = text.split()
    return len(words) > 1 and words[1] == "sp" and (words[3:4] or [""])[0].split("=")[0] not in _SP_FORMS


def asks_transient_op(commands: Iterable[str]) -> bool:
    """Whether a ``.control`` block sets ``optran`` itself (a transient operating point, zoaf's own setting off)."""
    return any(base_word(c) == "optran" for c in commands)


def batch_drops(command: str) -> bool:
    """Whether an in-process batch run leaves this ``.control`` command out: all that the session never
    replays (:data:`DROPPED_COMMANDS`, :data:`REFUSED_COMMANDS`) but ``print`` and ``echo``, which carry
    the results; not an ``echo`` into a file (Qucs-S's ``echo "" > spice4qucs.cir.noise``, the one redirect the
    text checks let through: zoaf writes no file)."""
    base = base_word(command)
    return (base in (DROPPED_COMMANDS | REFUSED_COMMANDS) - {"print", "echo"}
            or base == "echo" and ">" in _QUOTED.sub("", command))

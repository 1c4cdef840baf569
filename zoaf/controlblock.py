"""A deck's ``.control`` block read into what a session replays (:class:`ControlBlock`, :func:`parse_control`).

The command words themselves (what is an analysis, refused, dropped, a block opener, a result's definition) live in
:mod:`zoaf.ngcommands`; this module walks a block's commands with them: which are replayed per sizing, which
the whole-deck path comments out, which results the block defines, which ``print``s are checked where, and the
commands zoaf cannot replay as ``ngspice -b`` runs them (refused in one line naming the deck's line).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from .errors import InputError
from .ngcommands import (BLOCK_OPEN, DROPPED_COMMANDS, PLOT_MOVERS, REFUSED_COMMANDS, SPECTRUM_MAKERS, analysis_crash,
                         base_word, batch_drops, block_depth_change, defined_name, meas_problem, misread_value,
                         normalize_equals, sp_crashes, stop_problem, too_long, unsupported_form)

__all__ = ["ControlBlock", "parse_control"]


@dataclass
class ControlBlock:
    """A deck's ``.control`` block as zoaf replays it.

    Attributes:
        commands: the commands replayed per evaluation, in order (dropped ones removed).
        lines: the deck's line of each of ``commands`` (a failed ``meas`` names it).
        names: the results they define (:func:`defined_name`), first definition first.
        faithful_reasons: dot-commands inside the block, which ngspice applies while reading the deck.
        quits: whether the block has ``quit``/``exit`` (only outside ``if``/loop blocks: the commands after it,
            which ``ngspice -b`` never runs, are left out of the replay and of the batch deck).
        branch_quit: the line of a ``quit``/``exit`` inside ``if`` blocks after which nothing runs
            (:func:`_ends_block`): the replay ends there as ``ngspice -b`` does, whether it runs or not.
        batch_dropped: physical line indexes that :meth:`zoaf.netlist.Netlist.batch_deck` comments out.
        notes: ``(line, why)`` for each ``meas`` that measures nothing in ngspice 39 (:func:`unsupported_form`), or
            at a value it misreads (:func:`misread_value`).
        prints: the ``print`` commands by the index in ``commands`` they come before (dropped from the replay, but
            what they could print is checked there: :func:`printed_names`); those inside an ``if``/loop block
            (which runs at its ``end``) after that ``end``, unless the block changes the plot (:data:`PLOT_MOVERS`):
            its body may leave another plot current after the print ran.
    """

    commands: list[str] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    faithful_reasons: list[str] = field(default_factory=list)
    quits: bool = False
    branch_quit: int | None = None
    batch_dropped: set[int] = field(default_factory=set)
    prints: dict[int, list[str]] = field(default_factory=dict)
    notes: list[tuple[int, str]] = field(default_factory=list)


def _plot_crash(text: str, spectrum: bool) -> str | None:
    """Why a ``meas`` command (``text`` as :func:`normalize_equals` gives it) crashes ngspice 39 on the plot it
    measures (a spectrum one or not: ``spectrum``), else None. A ``meas sp`` of a crashing form runs on a
    spectrum, where ``meas ac`` of any form crashes instead (``ngspice -b`` and zoaf's worker: a segmentation
    fault); the fix each way is the other type."""
    words = text.split()
    if spectrum and words[1:2] == ["ac"]:
        return (f"`meas ac` on the spectrum plot of an fft/psd/spec crashes ngspice 39 (ngspice -b and zoaf's "
                f"worker: a segmentation fault); write `meas sp {text.split(None, 2)[2]}`")
    if not spectrum and sp_crashes(text):
        return (f"a `meas sp` of this form crashes ngspice 39 on an analysis plot (ngspice -b and zoaf's worker: a "
                f"segmentation fault); write `meas ac {text.split(None, 2)[2]}`, which measures the S-parameter plot")
    return None


def _ends_block(words: Sequence[str], i: int) -> bool:
    """Whether the ``quit``/``exit`` at ``words[i]`` (the block's base words) ends the block wherever it stands:
    inside ``if`` blocks only (a loop's next pass would run), and after it only the ``else`` branches it skips, the
    ``end``s, ``echo``s and more quits. ngspice's own self-checking decks end so (``if ok`` ... ``quit 0``
    ``else`` ``quit 1`` ``end``): a replay without it runs nothing that ``ngspice -b`` does not."""
    stack: list[str] = []
    for w in words[:i]:
        if w in BLOCK_OPEN:
            stack.append(w)
        elif w == "end" and stack:
            stack.pop()
    if set(stack) != {"if"}:
        return False
    skipping: int | None = None                 # nesting inside an else branch that is skipped
    for w in words[i + 1:]:
        if skipping is not None:
            skipping += (w in BLOCK_OPEN) - (w == "end")
            skipping = None if skipping < 0 else skipping
        elif w in ("quit", "exit"):
            return True
        elif w == "else":
            skipping = 0
        elif w not in ("end", "echo", ""):
            return False
    return True


def _replay_problem(text: str, base: str, depth: int) -> str | None:
    """Why the session cannot replay the command ``text`` (its base word ``base``, at if/loop ``depth``) as
    ``ngspice -b`` runs it, else None."""
    if (why := analysis_crash(text) or (stop_problem(text) if base == "stop" else None)) is not None:
        return why
    if base == "run" and len(text.split()) > 1:
        return (f"{text.split(None, 1)[0]} {text.split()[1]}: ngspice writes that run to the file instead of memory "
                "(the .meas cards and meas commands after it find nothing), and libngspice 39 crashes on it; refused "
                "(write `run`, then `write FILE` for the file)")
    if base in ("quit", "exit") and depth > 0:
        return (f"{base} inside an if/loop block: ngspice -b stops there when it comes to it, where zoaf, which "
                "replays the block per sizing without it, ran on (another loop pass, the commands after the block); "
                f"refused (end the block's commands instead, or {base} after the block)")
    return None


def _checked_meas(block: ControlBlock, lineno: int, t: str, spectrum: bool,
                  err: Callable[[int, str], InputError]) -> str:
    """The ``meas`` command ``t`` (its ``=`` normalized), refused where ngspice 39 cannot run it or crashes on the
    plot it measures, noted in ``block`` where it measures nothing or a misread value."""
    if (why := meas_problem(t) or _plot_crash(t, spectrum)) is not None:
        raise err(lineno, f"meas {defined_name(t) or ''}: {why}")
    if (why := unsupported_form(t) or misread_value(t, card=False)) is not None:
        block.notes.append((lineno, f"meas {defined_name(t) or ''}: {why}"))
    return t


def _faithful_reason(lineno: int, t: str, base: str) -> str | None:
    """Why the command ``t`` sends the deck down the whole-deck path, else None."""
    if base.startswith("."):
        return f"line {lineno}: {t.split(None, 1)[0]} inside .control (ngspice applies it while reading the deck)"
    if base == "label":         # a goto jumps back through ngspice's stored commands: an earlier sizing's too
        return (f"line {lineno}: {t} (a goto to it from a later sizing would run the earlier sizings' commands "
                "again, without end)")
    return None


def _end_of_branches(block: ControlBlock, written_empty: bool, lineno: int,
                     err: Callable[[int, str], InputError]) -> None:
    """At an ``end``: an ``else`` with nothing left in its branch taken out of the replay. ngspice 39 crashes on an
    empty ``else`` branch ("double free or corruption", or "doblock: Internal Error: bad block type" and garbage
    after it); one whose commands zoaf leaves out (``echo "ERROR: ..."``) was empty in zoaf's replay, where
    ``ngspice -b`` ran the deck. One the deck writes empty is refused (``ngspice -b`` crashes). An empty ``if``
    branch or loop runs: kept."""
    if written_empty:
        raise err(lineno, "an else branch with nothing in it: ngspice 39 crashes on it (\"double free or corruption\","
                  " or \"bad block type\"); refused (remove the else, or give it a command)")
    if block.commands and base_word(block.commands[-1]) == "else":
        block.commands.pop()
        block.lines.pop()


def _batch_empty_elses(block: ControlBlock, lines: Sequence[tuple[int, str, tuple[int, ...]]],
                       words: list[str]) -> None:
    """The ``else`` lines whose branch the whole-deck run leaves empty (a branch of ``plot``s), commented out with
    them: the same crash (:func:`_end_of_branches`). Included commands have no line of their own (kept unless
    :func:`batch_drops` drops them)."""
    kept = [(w, idxs) for (_, t, idxs), w in zip(lines, words)
            if not (set(idxs) <= block.batch_dropped if idxs else batch_drops(t))]
    for (word, idxs), (following, _) in zip(kept, kept[1:]):
        if word == "else" and following == "end":
            block.batch_dropped.update(idxs)


def parse_control(lines: Sequence[tuple[int, str, tuple[int, ...]]], *, problem: Callable[[str], str | None],
                  err: Callable[[int, str], InputError]) -> ControlBlock:
    """Read the block's ``(line number, lower-cased command, physical line indexes)`` entries.

    Raises ``err(line, why)`` for a command ``problem`` refuses (:func:`zoaf.deckcheck.command_problem`) or an
    unclosed ``if``/``while`` block.
    """
    block = ControlBlock()
    words = [base_word(t) for _, t, _ in lines]
    depth = 0
    in_block: list[str] = []                     # the prints of the if/loop block being read
    moves = False                                # whether that block changes the plot
    spectrum = False                             # whether the last plot made is a spectrum (fft, psd, spec)
    for i, (lineno, t, idxs) in enumerate(lines):
        if (why := problem(t)) is not None:
            raise err(lineno, why)
        if block.quits:                         # ngspice -b stops at the quit: what follows never runs
            block.batch_dropped.update(idxs)
            continue
        base = words[i]
        if base in ("quit", "exit") and depth > 0 and _ends_block(words, i):
            block.branch_quit = block.branch_quit or lineno      # the first names it
        elif (why := _replay_problem(t, base, depth)) is not None:
            raise err(lineno, why)
        if (why := _faithful_reason(lineno, t, base)) is not None:
            block.faithful_reasons.append(why)
        if base == "end":
            _end_of_branches(block, i > 0 and words[i - 1] == "else", lineno, err)
        if base in DROPPED_COMMANDS or base in REFUSED_COMMANDS:
            block.quits |= base in ("quit", "exit") and depth == 0     # a branch's: branch_quit
            if batch_drops(t):
                block.batch_dropped.update(idxs)
            if base == "print":
                in_block.append(t)
                if depth == 0:
                    block.prints.setdefault(len(block.commands), []).extend(in_block)
                    in_block = []
            continue
        if base in ("meas", "measure"):
            t = _checked_meas(block, lineno, normalize_equals(t), spectrum, err)
        if base in PLOT_MOVERS:
            spectrum = base in SPECTRUM_MAKERS
        if (why := too_long(lineno, t)) is not None:
            block.faithful_reasons.append(why)
        depth += block_depth_change(t)
        block.commands.append(t)
        block.lines.append(lineno)
        moves |= depth > 0 and base in PLOT_MOVERS
        if depth == 0:                          # a block's prints run when its `end` comes: checked after it
            if in_block and not moves:
                block.prints.setdefault(len(block.commands), []).extend(in_block)
            in_block, moves = [], False
        if (name := defined_name(t)) is not None:
            block.names.append(name)
    if depth > 0:
        raise err(lines[-1][0], "unterminated if/while/repeat block in .control")
    _batch_empty_elses(block, lines, words)
    block.names = list(dict.fromkeys(block.names))      # once: a search per command took minutes over 100k lets
    return block


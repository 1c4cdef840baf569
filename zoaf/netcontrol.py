"""A deck's ``.control`` block as :class:`zoaf.netlist.Netlist` reads it (:class:`ControlReading`, a mixin): its
lines gathered while the deck is read (a file of commands ``.include``d there read in its place, checked and kept
for the batch deck), the block parsed (:func:`zoaf.controlblock.parse_control`) into what a session replays, and what
follows for ``ngspice -b``: whether the block runs the analyses, and the dot-analyses after it."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from . import deckcheck
from .controlblock import parse_control
from .decktext import Line, after_title, logical_lines, physical_lines, tab_dollar_comment
from .errors import InputError
from .ngcommands import ANALYSES, has_interp_card, interp_problem, printed_names
from .netwrite import Edits

__all__ = ["ControlReading"]


class ControlReading:
    """The ``.control`` part of :class:`zoaf.netlist.Netlist` (whose dataclass fields these are)."""

    path: Path
    text: str
    analyses: list[str]
    control: list[str]
    control_lines: list[int]
    control_names: list[str]
    control_quits: bool
    control_prints: dict[int, list[str]]
    faithful_reasons: list[str]
    notes: list[str]
    interp_card: bool
    _physical: list[str]
    _edits: Edits
    _texts: dict[Path, str]
    _dot_outputs: bool
    _batch_dropped: set[int]
    _control_lines: list[tuple[int, str, tuple[int, ...]]]
    _control_files: dict[int, list[tuple[str, str]]]
    _err: Callable[[int, str], InputError]
    _parse_include: Callable[..., None]

    def _control_line(self, ln: Line, word: str) -> None:
        """One line of the deck's ``.control`` block (its ``.include``d commands read in their place)."""
        self._check_control_comments(ln.lineno, [self._physical[seg[1]] for seg in ln.segments])
        if not ln.text.strip():                          # a ';' or '$' comment line: ngspice runs nothing
            return
        self._control_lines.append((ln.lineno, ln.text.strip(), tuple(seg[1] for seg in ln.segments)))
        if word.startswith(".lib"):                     # ngspice inlines the section: its lines run as commands
            raise self._err(ln.lineno, f"{word} inside .control: ngspice runs the library section's lines as "
                            "commands; refused (write the commands in the .control block, or .include a file of "
                            "commands)")
        if word.startswith(".inc"):                     # ngspice matches ".include" by prefix (".includes")
            self._parse_control_include(ln, word)

    def _parse_control_include(self, ln: Line, word: str) -> None:
        """A file of commands ``.include``d in ``.control``: its commands count as the block's (checked, named),
        and :meth:`batch_deck` inlines it, so that the commands zoaf never runs can be left out."""
        self._parse_include(ln, word, params=False)
        if (found := self._edits.includes.get(ln.segments[0][1])) is None:
            return
        path = Path(found[2])
        physical = physical_lines(self._texts[path.resolve()])
        self._check_control_comments(ln.lineno, physical)
        lines = logical_lines([""] + physical, commands=True)[1:]
        self._control_files[ln.segments[0][1]] = [(c.raw, c.text.strip()) for c in lines if c.text.strip()]
        self._control_lines.extend((ln.lineno, text, ()) for _, text in self._control_files[ln.segments[0][1]])

    def _parse_control(self, allow_shell: bool) -> None:
        block = parse_control(self._control_lines, err=self._err,
                              problem=lambda t: deckcheck.command_problem(t, allow_shell=allow_shell))
        self.interp_card = has_interp_card([after_title(self.text), *self._texts.values()])
        if found := interp_problem(self._control_lines, self.analyses, self.interp_card):
            raise self._err(*found)
        if block.branch_quit is not None and self._dot_outputs:
            raise self._err(block.branch_quit, "quit/exit inside an if block: whether ngspice -b then runs the deck's "
                            "dot-analyses depends on the branch it takes; refused (quit after the block, or run the "
                            "analyses in the block)")
        self.control, self.control_names, self.control_quits = block.commands, block.names, block.quits
        self.control_lines = block.lines
        self.faithful_reasons.extend(block.faithful_reasons)
        self._batch_dropped, self.control_prints = block.batch_dropped, block.prints
        self.notes += [f"{self.path}:{line}: {why}" for line, why in block.notes]

    def _check_control_comments(self, lineno: int, physical: list[str]) -> None:
        if any(tab_dollar_comment(p) for p in physical):
            raise self._err(lineno, "a '$' then a tab in a .control command: not a comment there (ngspice reads on, "
                            "past what zoaf checked); refused (write '$ ' or ';' for a comment)")

    @property
    def control_runs_analyses(self) -> bool:
        """True when the ``.control`` block runs analyses itself (then the dot-analyses only run via ``run``)."""
        return any(c.split(None, 1)[0] in ANALYSES | {"run"} for c in self.control)

    @property
    def print_groups(self) -> list[list[str]]:
        """The results each ``print`` command of the block names: a print that cannot see one of its vectors prints
        none of them (:func:`zoaf.ngoutput.batch_results` reads a whole-deck run so)."""
        return [printed_names(c, self.control_names) for cs in self.control_prints.values() for c in cs]

    @property
    def control_echoes(self) -> list[str]:
        """The block's ``echo`` commands as written: what they print is the designer's text, never an error
        report (:func:`zoaf.ngbatch.without_echoes`)."""
        return [text for _, text, _ in self._control_lines if text.split(None, 1)[0].lower() == "echo"]

    @property
    def control_has_run(self) -> bool:
        return any(c.split(None, 1)[0] == "run" for c in self.control)

    @property
    def dot_analyses_after_control(self) -> bool:
        """Whether ``ngspice -b`` runs the dot-analyses after a ``.control`` block that ran analyses of its own
        but no ``run`` (it does for a deck with ``.meas`` cards, as :attr:`batch_runs_dot_analyses` says)."""
        return self.control_runs_analyses and not self.control_has_run and self.batch_runs_dot_analyses

    @property
    def batch_runs_dot_analyses(self) -> bool:
        """Whether ``ngspice -b`` runs the dot-analyses after loading (and after the ``.control`` block): it
        does when the deck has ``.meas``, ``.print``, ``.plot``, ``.four``, ``.op`` or ``.tf`` cards, unless
        the block quits first."""
        return self._dot_outputs and not self.control_quits

"""Read an ngspice netlist: its design ``.param``s, ``.meas`` statements, analyses, includes, ``.control`` block.

Pure text processing (no ngspice). A benchmark netlist is a plain deck that also runs by hand with
``ngspice -b``; :class:`Netlist` finds what zoaf needs in it and writes the two decks zoaf runs:

* :meth:`Netlist.with_params` — the original text with new ``.param`` values (``best.cir``), include paths
  absolute, so it runs from any directory;
* :meth:`Netlist.session_deck` — the deck an in-process :class:`zoaf.spice.SpiceSession` loads once: no
  analysis lines, no ``.control`` block (the session runs those itself per evaluation); ``.meas`` cards stay
  (ngspice evaluates them after each analysis of their type, as in batch mode);
* :meth:`Netlist.batch_deck` — :meth:`with_params` for a session that must reload the whole deck per
  evaluation (:attr:`Netlist.faithful_reasons`).

Text conventions (continuations, comments, case): :mod:`zoaf.decktext`; the writing (the edits recorded while
reading, applied per sizing): :mod:`zoaf.netwrite`; the ``.control`` block: :mod:`zoaf.netcontrol`. Top-level
``.param`` lines (outside ``.subckt``) of the netlist and of the files it ``.include``s are design variables;
the last definition of a name gives its default (ngspice's), and :meth:`with_params` rewrites every top-level
definition (as ngspice's ``alterparam`` does) and overrides an included one after its ``.include`` line.
The included files are read once, by :func:`zoaf.deckcheck.walk_includes`, which also checks them.

Safety: :mod:`zoaf.deckcheck` refuses the certain escapes with one ``file:line:`` line (the guarantee is
:mod:`zoaf.sandbox`). Commands with no place in a per-evaluation replay (plots, file writes, ``quit``) are kept
in the file but dropped from the replay (:data:`zoaf.ngcommands.DROPPED_COMMANDS`).

Example:
    >>> nl = Netlist.read("netlists/two_stage_amp.cir")          # doctest: +SKIP
    >>> nl.params["w1"], [m.name for m in nl.measures]           # doctest: +SKIP
    ('15e-6', ['gain_db', 'ugbw_hz', ...])
    >>> open("best.cir", "w").write(nl.with_params({"w1": 2.2e-5}))  # doctest: +SKIP
"""
from __future__ import annotations

import contextlib
import gc
import hashlib
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from . import batchsaves, deckcheck, deckplaces, libparams, paramuse, readscope
from .deckcheck import IncludedFile
from .decktext import (Line, ParamDef, after_title, control_character, instance_problem, logical_lines, physical_lines,
                       physical_spans, substitute, title_problem, unquotable, value_text)
from .errors import InputError
from .infile import read_bounded
from .meascards import SPEC_ASKS, Measure, parse_meas, unmeasurable_named, unmeasured, with_dc_sweep
from .ngcommands import ANALYSES, analysis_crash, batch_drops, has_conditional, too_long
from .netcontrol import ControlReading
from .netwrite import INCLUDE, Edits, include_file, session_lines, session_title
from .paramline import ParamLine, parse_param

__all__ = ["Measure", "Netlist"]


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cyclic collector paused while a deck is read: the reader leaves hardly a cycle behind, but it makes
    millions of objects of a received include's lines, which each full collection walked again (a 4 MiB include of
    ``.param`` lines read 25% slower, BENCHMARKS.md §1d). Turned on after only if it was on (another thread's
    reading may have paused it)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


@dataclass
class Netlist(ControlReading):
    """A parsed netlist. Use :meth:`read` (a file) or :meth:`from_text`.

    Attributes:
        path: the netlist file (absolute); include paths are resolved relative to its directory.
        text: the text as read, after ``{{NAME}}`` placeholder substitution.
        encoding: the file's encoding (``utf-8``, else ``latin-1``): ``best.cir`` is written back in it.
        params: top-level ``.param`` name -> default value text (the last definition, as ngspice), names
            lower-cased: those of the netlist and of the files it ``.include``s (recursively; not ``.lib`` sections).
        param_lines: name -> line number of that definition in the netlist.
        param_files: name -> the included file of a param last defined there.
        body_params: name -> the line of a ``.param`` of a ``.subckt`` body in the netlist (no design variable).
        measures: the ``.meas`` statements in file order; ``skipped_measures``: those ngspice does not run.
        analyses: analysis commands in file order, without the dot (``"ac dec 10 1 1g"``).
        control: the ``.control`` block's commands to replay per evaluation (dropped ones removed).
        control_names: names a ``.control`` block defines with ``let NAME =`` or ``meas TYPE NAME``.
        results: every name a spec may measure: ``.meas`` names then control names (no duplicates).
        faithful_reasons: why an in-process session must run this deck as ``ngspice -b`` does, reloading it
            per evaluation (constructs ngspice handles while reading the deck); empty: the fast path is exact.
        control_quits: whether the ``.control`` block has ``quit``/``exit`` (``ngspice -b`` stops there).
        control_prints: its ``print`` commands by the ``control`` index they precede (``ControlBlock.prints``).
        has_end: whether the deck has its ``.end`` line.
        notes: what zoaf runs that ``ngspice -b`` would not (:mod:`zoaf.batchsaves`), one line each, to show.
        includes: every file the deck includes, directly or not, by content (:func:`deckcheck.walk_includes`).
        reads_outside: the files it names outside its folder and the system's (:mod:`zoaf.readscope`).
        unused_params: the ``params`` no line of the deck or of its includes reads (:mod:`zoaf.paramuse`).
        conditional: whether the deck or a file it includes has ``.if`` cards (which leave state behind in
            libngspice: :func:`zoaf.spice.SpiceSession.load`); ``interp_card``: ``.options interp`` cards.
    """

    path: Path
    text: str
    encoding: str = "utf-8"
    params: dict[str, str] = field(default_factory=dict)
    param_lines: dict[str, int] = field(default_factory=dict)
    body_params: dict[str, int] = field(default_factory=dict)   # a .subckt body's own .param -> its first line
    measures: list[Measure] = field(default_factory=list)
    skipped_measures: list[Measure] = field(default_factory=list)
    analyses: list[str] = field(default_factory=list)
    control: list[str] = field(default_factory=list)
    control_lines: list[int] = field(default_factory=list)    # the deck's line of each of control
    control_names: list[str] = field(default_factory=list)
    has_end: bool = False
    notes: list[str] = field(default_factory=list)
    includes: tuple[IncludedFile, ...] = ()
    reads_outside: tuple[readscope.OutsideRead, ...] = ()
    unused_params: tuple[str, ...] = ()
    lib_folder: Path | None = None  # the deck's folder, where an included file's .lib line names a file (session)
    conditional: bool = False
    interp_card: bool = False
    extra_save: str | None = None   # the .save card that saves what ngspice -b adds for .meas cards (batchsaves)
    limits_saves: bool = False      # a .save card, save command or savecurrents limits what a run saves
    _physical: list[str] = field(default_factory=list, repr=False)
    _logical: list[Line] = field(default_factory=list, repr=False)
    _edits: Edits = field(default_factory=Edits, repr=False)             # where with_params changes the text
    param_files: dict[str, Path] = field(default_factory=dict)
    _drop_session: set[int] = field(default_factory=set, repr=False)      # logical idx not in session deck
    faithful_reasons: list[str] = field(default_factory=list)
    control_quits: bool = False
    control_prints: dict[int, list[str]] = field(default_factory=dict)
    _dot_outputs: bool = field(default=False, repr=False)
    _batch_dropped: set[int] = field(default_factory=set, repr=False)   # phys idx left out of batch_deck()
    _control_lines: list[tuple[int, str, tuple[int, ...]]] = field(default_factory=list, repr=False)
    _control_files: dict[int, list[tuple[str, str]]] = field(default_factory=dict, repr=False)  # (raw, text)
    _texts: dict[Path, str] = field(default_factory=dict, repr=False)   # included files' texts, while parsing
    _libraries: libparams.Libraries | None = field(default=None, repr=False)    # their .params, while parsing
    _param_reads: dict[int, ParamLine] = field(default_factory=dict, repr=False)  # the deck's, while parsing

    # ------------------------------------------------------------------ reading
    @classmethod
    def read(cls, path: str | os.PathLike[str], *, allow_shell: bool = False,
             placeholders: Mapping[str, str] | None = None) -> "Netlist":
        """Read and check the netlist at ``path``.

        Args:
            path: the netlist file.
            allow_shell: accept ``.control`` commands that run programs (:data:`zoaf.ngcommands.REFUSED_COMMANDS`).
            placeholders: ``{{NAME}}`` -> text substitutions (e.g. the installed PDK's model library path).
        Raises:
            InputError: ``file:line: what is wrong`` for unreadable or malformed input.
        """
        p = Path(path).expanduser().absolute()
        try:
            data = read_bounded(p)
        except OSError as e:
            raise InputError(f"{p}: cannot read netlist: {e.strerror or e}") from None
        return cls.from_text(data, p, allow_shell=allow_shell, placeholders=placeholders)

    @classmethod
    def from_text(cls, text: str | bytes, path: str | os.PathLike[str] = "<netlist>.cir", *,
                  allow_shell: bool = False, placeholders: Mapping[str, str] | None = None) -> "Netlist":
        """Parse netlist ``text`` as if read from ``path`` (relative includes resolve against its directory)."""
        p = Path(path).expanduser().absolute()
        encoding = "utf-8"
        if isinstance(text, bytes):
            if b"\x00" in text:
                raise InputError(f"{p}: not a text file (contains NUL bytes)")
            try:
                text = text.decode("utf-8")
            except UnicodeDecodeError:
                text, encoding = text.decode("latin-1"), "latin-1"     # latin-1 decodes any byte
        if (why := control_character(text)) is not None:
            raise InputError(f"{p}: {why}")
        text = substitute(text, p, placeholders or {})
        if not text.strip():
            raise InputError(f"{p}:1: empty netlist")
        nl = cls(path=p, text=text, encoding=encoding)
        with _collector_paused():
            nl._parse(allow_shell)
        return nl

    def _err(self, lineno: int, what: str) -> InputError:
        return InputError(f"{self.path}:{lineno}: {what}")

    def _parse(self, allow_shell: bool) -> None:
        walk, self.reads_outside = readscope.walk(self.path, self.text, allow_shell=allow_shell)   # includes first
        self.includes, self._texts, self.lib_folder = walk.files, walk.texts, walk.lib_folder
        self._libraries = libparams.Libraries(self._texts)  # one reading of each library for all include lines
        if self.lib_folder is not None and (why := unquotable(self.lib_folder)):
            raise InputError(f"{self.path}: its folder, where an included file's .lib file is looked for, {why}")
        self._physical = physical_lines(self.text)
        self._logical = logical_lines(self._physical)
        self._parse_lines()
        quiet = self._libraries.quiet                       # the .param lines it parsed that read nothing
        self._libraries = None                              # its lines, before paramuse reads the files again
        self.measures = with_dc_sweep(self.measures, self.analyses)
        self._parse_control(allow_shell)
        together = self.batch_runs_dot_analyses or self.control_has_run     # runs the dot-analyses at once
        if together and (found := unmeasured(self.analyses, self.measures)) is not None:
            raise self._err(*found)
        self._batch_notes()
        self.conditional = any(map(has_conditional, [after_title(self.text), *self._texts.values()]))
        self.unused_params = paramuse.unused(self.params, self._logical[1:], self._texts, quiet, self._param_reads)
        self._texts, self._param_reads = {}, {}             # read for the params; not carried to workers

    def _parse_lines(self) -> None:
        """The deck's logical lines up to ``.end``, each to the part it feeds; the ``.control`` block's gathered."""
        in_control: int | None = None
        subckt_depth = 0
        for li, ln in enumerate(self._logical):
            if li == 0:
                if (why := title_problem(ln.raw)) is not None:
                    raise self._err(ln.lineno, why)
                continue                                   # the title line
            t = ln.text
            word = t.split(None, 1)[0] if t.split() else ""
            if in_control is not None:
                self._drop_session.add(li)
                if word.startswith(".endc"):             # ngspice matches both by prefix (".controls")
                    in_control = None
                else:
                    self._control_line(ln, word)
                continue
            if not word.startswith("."):
                if (why := instance_problem(t)) is not None:
                    raise self._err(ln.lineno, why)
                if word[:1] in ("p", "P"):
                    raise self._err(ln.lineno, f"{word}: a CPL coupled line; ngspice 39 crashes at a reset of its "
                                    "circuit, and at another such circuit in the same process (ngspice -b too), "
                                    "where zoaf simulates every sizing: refused (model each line with a T, O "
                                    "(LTRA) or Y (TXL) element)")
                continue
            if word.startswith(".control"):
                in_control = ln.lineno
                self._drop_session.add(li)
            elif word.startswith(".endc"):
                raise self._err(ln.lineno, f"{word} without .control")
            elif word == ".subckt":
                subckt_depth += 1
            elif word == ".ends":
                subckt_depth = max(0, subckt_depth - 1)
            elif word == ".param":
                self._parse_param(ln, in_body=subckt_depth > 0)
            elif (why := deckcheck.dot_line_problem(word, t)) is not None:
                raise self._err(ln.lineno, why)
            elif word in (".include", ".inc", ".lib"):
                self._parse_include(ln, word, in_body=subckt_depth > 0)
            elif word == ".end":
                self.has_end = True
                self._check_after_end(li)
                break
            else:
                self._parse_output(li, ln, word)
        if in_control is not None:
            raise self._err(in_control, ".control block without .endc")

    def _batch_notes(self) -> None:
        """Where the deck's measures or saves differ from what ``ngspice -b`` runs: the notes, the extra ``.save``."""
        self.notes += [f"{self.path}:{m.line}: {m.note}" for m in (*self.skipped_measures, *self.measures) if m.note]
        included = list(self._texts.values())
        limited = batchsaves.limits_saves(included)       # once: each search reads a PDK's 2.9 M characters
        self.notes += [f"{self.path}:{line}: {why}"
                       for line, why in batchsaves.batch_notes(self._logical[1:], included, limited)]
        self.limits_saves = limited or batchsaves.limits_saves([after_title(self.text)])
        self.extra_save = batchsaves.batch_extra_saves(self._logical[1:], included)

    def _check_after_end(self, end: int) -> None:
        """Refuse a dot-command after ``.end`` (logical line ``end``): ``ngspice -b`` still reads it, and runs a
        ``.control`` block or an included file's there, but zoaf's checks and the session stop at ``.end``."""
        for ln in self._logical[end + 1:]:
            word = ln.text.split(None, 1)[0] if ln.text.split() else ""
            if word.startswith(".") and word != ".end":
                raise self._err(ln.lineno, f"{word} after .end: ngspice -b still reads it (a .control block or an "
                                "include there runs); refused (move it before .end)")

    def _parse_output(self, li: int, ln: Line, word: str) -> None:
        """A ``.meas``, analysis, ``.print``/``.plot``/``.four`` line (logical line ``li``); others are ignored."""
        if word in (".meas", ".measure"):
            m = parse_meas(ln, self._err)
            (self.skipped_measures if m.skipped else self.measures).append(m)
            self._dot_outputs = True
            if m.skipped or m.runs_as_ac:
                self._drop_session.add(li)      # some `.meas sp` forms crash ngspice 39: run as `meas ac` commands
        elif word[1:] in ANALYSES:
            if (why := analysis_crash(ln.text.strip()[1:])) is not None:
                raise self._err(ln.lineno, why)
            if "{" in ln.text:
                self.faithful_reasons.append(f"line {ln.lineno}: {word} with a {{expression}} (ngspice "
                                             "substitutes it while reading the deck)")
            elif (why := too_long(ln.lineno, ln.text.strip()[1:])) is not None:
                self.faithful_reasons.append(why)
            self.analyses.append(ln.text.strip()[1:])
            self._drop_session.add(li)
            self._dot_outputs |= word in (".op", ".tf")
        elif word in (".print", ".plot", ".four", ".fourier"):
            self._dot_outputs = True

    def _parse_param(self, ln: Line, in_body: bool) -> None:
        """A ``.param`` line of the deck parsed once for all: the comma ngspice 39 hangs on (refused in a body too), a
        body's own names (named when a spec sizes one), a top-level line's design variables (not a function: numparam
        reads ``.param f(a) = a*2`` as a ``.func``), and the unused-variable check (:attr:`_param_reads`)."""
        line = parse_param(ln)
        if (why := line.comma) is not None:
            raise self._err(ln.lineno, why)
        self._param_reads[ln.lineno] = line
        if in_body:
            for name, _, _ in line.found or ():
                self.body_params.setdefault(name, ln.lineno)
            return
        if line.empty:
            return
        if line.found is None:
            raise self._err(ln.lineno, line.error)
        ln = line.bare
        for name, value, start in line.found:
            spans = physical_spans(ln, start, start + len(value))
            self._edits.defs.append(ParamDef(name, value, ln.lineno, spans))
            self.params[name] = ln.raw[start:start + len(value)]    # ngspice takes the last definition
            self.param_lines[name] = ln.lineno
            self.param_files.pop(name, None)

    def _parse_include(self, ln: Line, word: str, params: bool = True, in_body: bool = False) -> None:
        """An include line's file, checked; its ``.param``s are design variables unless a ``.subckt`` body reads it
        (``in_body``: ngspice inlines it there, so they are the body's own) or ``.control`` does (not ``params``)."""
        if not INCLUDE.match(ln.raw):
            raise self._err(ln.lineno, f"{word} needs a file name")
        if (m := include_file(ln.raw, word)) is None:
            return                                          # ".lib section" ... ".endl": a section definition
        target = m.group(2).strip("\"'")
        resolved = self.resolve(target)
        if not resolved.is_file():
            raise self._err(ln.lineno, f"{word} file not found: {target} (looked for {resolved})")
        if why := unquotable(resolved):
            raise self._err(ln.lineno, f"{word} {target}: {why}")
        spans = physical_spans(ln, m.start(2), m.end(2))
        if len(spans) == 1:
            self._edits.includes[spans[0][0]] = (spans[0][1], spans[0][2], str(resolved))
        if params:      # ngspice takes a .param's last definition: an included file's, a .lib section's too
            found = self._libraries.file_params(resolved.resolve(), word, ln.raw, self.params,
                                                self.path.resolve().parent)
            for name, (value, file) in found.items() if not in_body else ():
                self.params[name], self.param_files[name] = value, file
                self.param_lines.pop(name, None)
            if found and not in_body:
                self._edits.include_defs[ln.segments[-1][1]] = list(found)

    def analysis_line(self, command: str) -> int | None:
        """The deck's first line that runs analysis ``command`` (a dot-analysis card, or a ``.control`` command):
        an analysis ngspice cannot read (``.tran 0 4m 3m``) is named by its card only, run as a command."""
        want = command.lstrip(".").split()
        found = [ln.lineno for ln in self._logical[1:] if ln.text.strip().lstrip(".").split() == want]
        found += [n for n, c in zip(self.control_lines, self.control) if c.split() == want]  # in an included file
        return min(found, default=None)

    def file_line(self, lineno: int, card: str = "", said: str = "") -> int | str | None:
        """Where ngspice's line ``lineno`` ("Error on line N", numparam's "Netlist line no. N") is: this file's line
        (an int), an included or library file's ``path:line`` (a str), or None. N counts the file's lines for the
        deck's own cards (a session loads each on its line: ``session_lines``), an included file's its own way
        (:mod:`zoaf.deckplaces`); of the cards so numbered, the one ``card`` and ``said`` (ngspice's card and
        words) point at (:func:`zoaf.deckplaces.pick`: a subcircuit's expanded card is none of them)."""
        own = next((ln for ln in self._logical[1:] if ln.lineno == lineno and ln.text.strip()), None)
        texts = {f.path.resolve(): f.path.read_text("utf-8", "replace") for f in self.includes}   # read again: an error
        cards = [*([deckplaces.Card(self.path, lineno, own.text)] if own is not None else []),
                 *deckplaces.numbered(self.path, self.text, texts, lineno)]
        found = deckplaces.pick(cards, card, said)
        return None if found is None else found.line if found.path == self.path else f"{found.path}:{found.line}"

    def resolve(self, target: str) -> Path:
        """An include/lib path as ngspice would open it from this netlist (relative to its directory)."""
        return deckcheck.resolve(self.path.parent, target)

    # ------------------------------------------------------------------ views
    @property
    def results(self) -> list[str]:
        """Every name a spec may measure: ``.meas`` result names, then ``.control`` ``let``/``meas`` names."""
        out = [m.name for m in self.measures]
        measured = set(out)                     # not the list: a search per name took minutes over 20k of each
        return out + [n for n in self.control_names if n not in measured]

    def refuse_unmeasurable(self, used: Iterable[str], asks: str = SPEC_ASKS) -> None:
        """InputError for the first name of ``used`` that only cards which measure nothing give
        (:func:`zoaf.meascards.unmeasurable_named`)."""
        found = unmeasurable_named(self.measures, self.skipped_measures, self.control_names, used, str(self.path), asks)
        if found is not None:
            raise found

    def digest(self) -> str:
        """sha256 of the deck and its included files' contents (the deck's own hash when it includes nothing)."""
        h = hashlib.sha256(self.text.encode())
        for f in self.includes:
            h.update(bytes.fromhex(f.sha256))
        return h.hexdigest()

    def reads(self) -> tuple[Path, ...]:
        """What a simulation of this deck may read: the deck's folder (its data files) and each included file,
        links followed -- not the included files' folders: an empty file included from a folder must not open
        that whole folder to the deck."""
        return tuple(dict.fromkeys([self.path.parent.resolve(), *(f.path for f in self.includes)]))  # as checked

    @property
    def title(self) -> str:
        return self._physical[0] if self._physical else ""

    def check_params(self, values: Mapping[str, float]) -> dict[str, str]:
        """Lower-cased name -> exact value text; InputError for a name that is not a top-level ``.param``."""
        out: dict[str, str] = {}
        for name, v in values.items():
            key = name.lower()
            if key not in self.params:
                known = ", ".join(sorted(self.params)) or "none"
                raise InputError(f"{self.path}: no top-level .param {name!r} (known: {known})")
            out[key] = value_text(v, self.params[key])
        return out

    def with_params(self, values: Mapping[str, float] | None = None) -> str:
        """The original netlist text with those ``.param`` values (repr-exact) and absolute include paths.

        Comments, continuation lines and everything else stay as written: this is ``best.cir`` and runs with
        ``ngspice -b`` from any directory. A param of an included file gets a ``.param`` line after the
        ``.include`` (the included file stays as it is: it may be shared).
        """
        return self._edits.sized(self._physical, self.check_params(values or {}), set())

    def batch_deck(self, values: Mapping[str, float] | None = None) -> str:
        """:meth:`with_params` less the ``.control`` commands an in-process batch run must not execute
        (:data:`zoaf.ngcommands.DROPPED_COMMANDS` but ``print`` and ``echo``, which carry the results): commented
        out."""
        return self.batch_text(self.check_params(values or {}))

    def batch_text(self, new: Mapping[str, str]) -> str:
        """:meth:`batch_deck` of values already checked (:meth:`check_params`: name -> the value's text)."""
        inline = {idx: "\n".join(("* zoaf: " if batch_drops(text) else "") + raw for raw, text in lines)
                  for idx, lines in self._control_files.items()}
        text = self._edits.sized(self._physical, new, self._batch_dropped, inline)
        return text.replace("\n", f"\n{self.extra_save}\n", 1) if self.extra_save else text

    def session_deck(self) -> list[str]:
        """The deck a :class:`~zoaf.spice.SpiceSession` loads: one logical line per entry, on its line of the file.

        Analysis lines, the ``.control`` block and ``.meas sp`` cards of the forms that crash ngspice are left out
        (the session runs them itself per evaluation); other ``.meas`` cards stay: ngspice evaluates them after each
        analysis of their type, with its own handling of ``param=``, ``par()``, ``.param``s and ``.func``s. Comments
        are removed (``*`` kept in their place), continuation lines joined, include paths absolute, the extra ``.save``
        and ``.end`` last (added where the deck has none: ``ngspice -b`` runs such a deck; loading line by line
        needs it).
        """
        extra = [self.extra_save] if self.extra_save else []
        return [session_title(self.title), *session_lines(self._logical, self._drop_session, self.resolve, extra)]

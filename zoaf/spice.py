"""Simulate a netlist with ngspice: in-process (:class:`SpiceSession`) or as a subprocess (:func:`run_batch`).

:class:`SpiceSession` drives libngspice (through :mod:`zoaf.ngbinding`) in this process: the netlist is
loaded once and every :meth:`~SpiceSession.evaluate` re-simulates it with new ``.param`` values. There is one
libngspice per process: sessions share it, a new session removes the previous one's circuit. The library is
not thread-safe: use a session from one thread, and one worker process per concurrent simulation.

Per evaluation (the ngspice commands sent):
    1. ``alterparam name=value`` for each changed ``.param`` (repr-exact values), then ``reset``; or, where
       :mod:`zoaf.fastpath` can (sky130 decks: ``reset`` is ~3/4 of an evaluation; small decks such as the
       LNA), ``alter``/``altermod`` of the device values that changed, bit for bit what ``reset`` gives (the
       deck's ``.meas param=`` cards are then computed by the plan: ngspice's keep the last reset's values);
    2. each analysis in netlist order, synchronously; with a ``timeout`` (a session in the caller's own
       process) as ``bg_<analysis>`` in ngspice's background thread, halted with ``bg_halt`` at the limit.
       In zoaf's sandboxed processes the session has no timeout: their parent kills them at the deadline
       (:mod:`zoaf.isolation`); ngspice evaluates the deck's ``.meas`` cards of that analysis type after it
       and prints their results, which are read from its output (:data:`MEAS_PRECISION` digits; ``.meas sp``
       cards run as ``meas ac`` commands on the sp plot: ``.meas sp`` crashes ngspice 39); a ``.control``
       block is replayed after the analyses, or instead of them when it runs analyses itself (``run`` then
       stands for the netlist's analyses);
    3. every ``.control`` result is copied out of ngspice (``ngGet_Vec_Info``), then ``destroy all``, and what the
       block left for the next sizing is undone (:func:`zoaf.ngprocess.forget_sizing`; a block with ``option``
       commands, which set the circuit's options, has the deck loaded afresh).
A deck with constructs ngspice handles while reading it (:attr:`Netlist.faithful_reasons`) is instead loaded
whole per evaluation and run as ``ngspice -b`` runs it (``source``, then ``run`` when batch mode would; in the
background thread only under a ``timeout``, as every analysis), its results read from what it prints. ngspice's
output is captured per command and classified (:func:`classify`) into zoaf's typed errors.

:func:`run_batch` (:mod:`zoaf.ngbatch`, re-exported here) runs ``ngspice -b`` on a netlist in a subprocess and
parses its printed results: the reference the session is tested and benchmarked against.

Example: ``SpiceSession(Netlist.read("tests/netlists/rc.cir")).evaluate({"r1": 2e3})`` gives
``{'f3db': 79577.47...}``.
"""
from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

from . import fastpath, ngprocess, replay
from .errors import DEFAULT_TIMEOUT, ConvergenceError, InputError, MeasureError, ParseError, SimulationError, Timeout
from .netlist import Netlist
from .ngbatch import MEAS_PRECISION, SPICEINIT, run_batch, set_sourcepath, without_echoes
from .ngbinding import NgSpice
from .ngcommands import asks_transient_op, base_word, defined_name, sets_options
from .ngoutput import (batch_results, block_cards, classify, lets_failed, meas_printed, missing_reason,
                       printed_results, select, split_measurements, without_asked_transient_op)
from .ngprocess import FourierNames, shared_ngspice
from .ngresults import Gathered, Missing, pass_mark, plot_of

__all__ = ["MEAS_PRECISION", "SPICEINIT", "SpiceSession", "run_batch", "shared_ngspice"]

#: Where XSPICE code models (``filesource``'s ``file=``) open a relative name: ``ngspice -b`` points it at the deck's
#: folder, whatever the working folder; a deck loaded line by line leaves it unset (the sandbox's empty folder).
INPUT_DIR = "NGSPICE_INPUT_DIR"

# ---------------------------------------------------------------------- the session
class SpiceSession:
    """A netlist loaded into this process's libngspice, re-simulated per :meth:`evaluate`.

    Args:
        netlist: a :class:`~zoaf.netlist.Netlist` or a path to one.
        timeout: wall-clock limit of one evaluation in seconds (None: none; analyses then run synchronously).
    Raises:
        ParseError: the netlist does not load (``needs_new_process`` after a numparam error).
    """

    _active: "SpiceSession | None" = None

    def __init__(self, netlist: Netlist | str | os.PathLike[str], *,
                 timeout: float | None = DEFAULT_TIMEOUT, fast: bool = True) -> None:
        self.netlist = netlist if isinstance(netlist, Netlist) else Netlist.read(netlist)
        self.timeout = timeout
        self.evaluations = 0
        self._ng: NgSpice | None = None
        self._loaded = False
        self._current: dict[str, str] = {}      # param -> value text now in ngspice's deck
        self._broken: ParseError | None = None
        self._fast: fastpath.Plan | None | bool = fast     # fastpath hook: True until planned at the first load
        self._in_place = False                  # this evaluation's sizing was set by the plan (no reset)
        self._failed = False                    # the last analysis failed: the next sizing resets
        self._reload = False                    # the .control block edited the deck beyond what a reset restores
        # its `option` commands set the circuit's options, which a reset keeps: every sizing loads the deck afresh
        # (also after a `set`/`unset` of a variable the deck loaded with: Baseline.resets_loaded)
        self._reloads = sets_options(self.netlist.control)
        self._sets_vars = any(base_word(c) in ("set", "unset") for c in self.netlist.control)
        self._asks_op = asks_transient_op(self.netlist.control)    # its transient operating point is no failure
        self._baseline: ngprocess.Baseline | None = None    # what a sizing starts from (ngprocess.forget_sizing)
        self._script: replay.Script | None = None    # what an evaluation runs, worked out at the first
        self._meas_names = {defined_name(c) for c in self.netlist.control if base_word(c) in ("meas", "measure")}
        self._got = Gathered()                  # what the current evaluation gathered besides its results

    # -- lifecycle
    def __enter__(self) -> "SpiceSession":
        self.load()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def loaded(self) -> bool:
        """Whether this session's deck is loaded now (another session's load in the process unloads it)."""
        return self._loaded

    def load(self) -> None:
        """Load the session deck (done by ``with`` and by the first :meth:`evaluate`)."""
        if self._broken is not None:
            raise self._broken
        ngprocess.check_interpolation(self.netlist)
        ngprocess.check_conditional(self.netlist)
        ng = self._ng = shared_ngspice()
        prev = SpiceSession._active
        if prev is not None and prev._loaded:
            prev.close()
        ngprocess.forget_previous_deck(ng)
        ng.command("set ngbehavior=hsa")
        set_sourcepath(ng, self.netlist.lib_folder)
        os.environ[INPUT_DIR] = str(self.netlist.path.resolve().parent)   # XSPICE's file=, as ngspice -b opens it
        if self.netlist.faithful_reasons:
            self._loaded = True                   # the deck is loaded afresh by each evaluation
            SpiceSession._active = self
            return
        deck = self.netlist.session_deck()
        rc, out = ng.load(deck)
        err = classify(out, context=f"loading {self.netlist.path}", default=ParseError,
                       file_line=self.netlist.file_line)
        if rc != 0 or err is not None or not any(s.startswith("Circuit:") for s in out):
            if not isinstance(err, ParseError):
                err = ParseError(f"loading {self.netlist.path}: ngspice did not load the circuit",
                                 "\n".join(out))
            raise self._parse_failure(err, fatal=rc != 0)
        ngprocess.restore_optran(ng)          # an earlier deck's, with this circuit loaded
        if self._asks_op:
            ngprocess.optran_asked()
        self._loaded = True
        self._current = dict(self.netlist.params)
        SpiceSession._active = self
        if self._fast is True:                                  # fastpath hook: plan once per session
            nl = self.netlist
            self._fast = fastpath.plan(deck, nl.path.parent, nl.params, nl.analyses + nl.control)
        if self._fast:
            self._fast.loaded(self._current)

    def close(self) -> None:
        """Remove this session's circuit from libngspice (the library itself stays for the next session)."""
        if self._loaded and self._ng is not None:
            if not self.netlist.faithful_reasons:       # (a whole-deck run set it back before its remcirc)
                ngprocess.restore_optran(self._ng)      # the block's optran: zoaf's again while the circuit is there
            self._ng.command("destroy all")
            self._ng.command("remcirc")
        self._loaded = False
        if SpiceSession._active is self:
            SpiceSession._active = None

    def _parse_failure(self, err: ParseError, fatal: bool = False) -> ParseError:
        """``err``, marked when no later load in this process can work (a failed load, ngspice's "cannot
        recover"): the session stays broken and its owner replaces the process."""
        if fatal or "cannot recover" in err.output.lower():
            err.needs_new_process = True
            self._broken = err
        return err

    # -- commands
    def _cmd(self, command: str) -> list[str]:
        out = self._ng.command(command)
        return without_asked_transient_op(out) if self._asks_op else out

    def _run_analysis(self, command: str, deadline: float | None) -> list[str]:
        """Run one analysis command, in ngspice's background thread when there is a deadline."""
        if deadline is None:
            return self._cmd(command)
        finished, out = self._ng.background(command, deadline - time.monotonic())
        if not finished:
            raise Timeout(f"{command}: still running after the {self.timeout:g} s limit (halted)",
                          "\n".join(out))
        return without_asked_transient_op(out) if self._asks_op else out

    # -- evaluation
    def evaluate(self, params: Mapping[str, float] | None = None, names: Iterable[str] | None = None,
                 rng_seed: int | None = None) -> dict[str, float]:
        """Simulate with these ``.param`` values (others at their defaults) and return the results.

        Args:
            params: top-level ``.param`` name (any case) -> value in SPICE units.
            names: the results wanted (default: every ``.meas`` name and every scalar ``.control`` result): returned
                whenever they were taken, whatever failed besides.
            rng_seed: re-parse the deck with ngspice's random generator at this seed (``setseed``, then
                ``reset``; never the in-place fast path), so the deck's ``agauss``/``gauss`` draws (a PDK's
                Monte Carlo models) depend on the seed alone, not on what this process parsed before.
        Returns:
            result name -> float.
        Raises:
            InputError: a name that is not a ``.param`` of the netlist, or an unknown result name.
            ParseError, ConvergenceError, MeasureError, Timeout: the simulation failed; ngspice's output is
                on the exception's ``output``. The session stays usable unless ``needs_new_process``.
        """
        nl = self.netlist
        new = nl.check_params(params or {})
        wanted = None if names is None else [n.lower() for n in names]
        if wanted is not None:
            nl.refuse_unmeasurable(wanted, asks="names= asks for")
            known = set(nl.results)             # a property that builds the list: once, not per name
            unknown = [n for n in wanted if n not in known]
            if unknown:
                raise InputError(f"{nl.path}: no result named {', '.join(unknown)} "
                                 f"(known: {', '.join(nl.results)})")
        if not self._loaded:
            self.load()
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        self.evaluations += 1
        if self._baseline is None:
            self._baseline = ngprocess.Baseline.now(self._ng, self._sets_vars, nl.control, nl.control_names)
            self._reloads |= self._baseline.resets_loaded(self.netlist.control)
        try:
            if nl.faithful_reasons:
                return self._evaluate_batch(new, wanted, deadline, rng_seed)
            return self._evaluate(new, wanted, deadline, rng_seed)
        except ParseError as e:
            # A circuit that failed to re-parse is gone from ngspice: reload it before the next evaluation.
            self._loaded = False
            if e.needs_new_process:
                self._broken = e
            raise
        finally:
            if self._loaded:
                self._cmd("destroy all")
                ngprocess.forget_sizing(self._ng, self._baseline)
            if self._reload or self._reloads:
                self._reload = False
                self.close()                    # the next evaluation loads the deck afresh
            if self.evaluations % ngprocess.HISTORY_EVERY == 0:
                self._cmd("unset history")
                self._cmd(f"set history={ngprocess.HISTORY_EVERY}")

    def _evaluate(self, new: dict[str, str], wanted: list[str] | None, deadline: float | None,
                  rng_seed: int | None = None) -> dict[str, float]:
        target = {**self.netlist.params, **new}
        # fastpath hook: set the devices in place where the plan can, else alterparam + reset. Not after a failed
        # analysis: the state it left let the next one converge (a singular matrix) where ngspice -b fails.
        self._in_place = (rng_seed is None and bool(self._fast) and not self._failed
                          and self._fast.resize(self._cmd, target))
        if not self._in_place:
            self._reset_to(target, rng_seed)
        self._failed = False
        try:
            try:
                return self._simulate(wanted, deadline)
            except _NotInPlace:                 # a .meas param= card the plan cannot compute at this sizing
                self._cmd("destroy all")
                self._reset_to(target)
                self._in_place = False
                return self._simulate(wanted, deadline)
        except SimulationError as e:
            self._failed = not isinstance(e, MeasureError)      # a missed measure is a finished analysis
            raise

    def _simulate(self, wanted: list[str] | None, deadline: float | None) -> dict[str, float]:
        """The analyses and the ``.control`` block on the circuit as it now is in ngspice: the results."""
        nl = self.netlist
        results: dict[str, float] = {}
        where: dict[str, str] = {}            # control result name -> plot it was made in
        self._got = Gathered()
        if self._script is None:
            self._script = replay.script(nl)
        for a in self._script.before:         # none when the block runs analyses itself
            self._analysis(a, results, deadline)
        self._replay_control(self._script.steps, results, where, deadline)
        for a in self._script.after:          # as ngspice -b does after the block
            self._analysis(a, results, deadline)
        for m in nl.measures:                 # a card of an analysis the deck never ran: ngspice -b misses it too
            if m.name not in results and m.name not in self._got.unmeasured:
                self._got.missing.append(Missing(m.name, f".meas {m.name} (line {m.line}) produced no value: no "
                                                 f"{m.analysis} analysis measured it"))
        return self._got.collect(self._ng, results, where, wanted)

    def _reset_to(self, target: dict[str, str], rng_seed: int | None = None) -> None:
        """``alterparam`` what differs from ngspice's stored deck, then ``reset`` (re-parse it); with ``rng_seed``
        ``setseed`` just before it (an ``alterparam`` draws nothing; the parse draws in deck order)."""
        for name, value in target.items():
            if self._current.get(name) != value:
                out = self._cmd(f"alterparam {name}={value}")
                err = classify(out, context=f"alterparam {name}={value}", default=ParseError)
                if err is not None:
                    raise err
                self._current[name] = value
        if rng_seed is not None:
            self._setseed(rng_seed)
        out = self._cmd("reset")
        err = classify(out, context="reset", default=ParseError)
        if err is not None:
            raise self._parse_failure(err if isinstance(err, ParseError) else ParseError(str(err), err.output))
        if self._fast:                                          # fastpath hook
            self._fast.loaded(target)

    def _setseed(self, seed: int) -> None:
        out = self._cmd(f"setseed {int(seed)}")
        if any("ignored" in line.lower() for line in out):      # ngspice takes 1 .. INT_MAX, says so otherwise
            raise InputError(f"setseed {seed}: refused by ngspice ({' '.join(s.strip() for s in out)})")

    def _evaluate_batch(self, new: dict[str, str], wanted: list[str] | None, deadline: float | None,
                        rng_seed: int | None = None) -> dict[str, float]:
        """The whole sized deck, loaded afresh and run as ``ngspice -b`` runs it: ``source`` (which runs its
        ``.control`` block), then ``run`` when batch mode would; results are what it prints.

        For decks with constructs ngspice handles while reading them (:attr:`Netlist.faithful_reasons`). As
        slow as a deck load per evaluation, but in this process and under the same time limit.
        """
        nl = self.netlist
        with tempfile.TemporaryDirectory(prefix="zoaf-deck-") as tmp:
            path = Path(tmp) / "deck.cir"
            deck = nl.batch_text(new)          # the values' texts: the designer's as written ("1k")
            path.write_text(FourierNames.rebase(deck))
            if rng_seed is not None:
                self._setseed(rng_seed)
            try:
                out = self._run_analysis(f"source {path}", deadline)
                if nl.batch_runs_dot_analyses:
                    out += self._run_analysis("run", deadline)
            finally:
                if "four" in deck.lower():          # fourier or .four: the process's call count moved
                    FourierNames.counted(self._ng.vector_names())
                if self._asks_op:                   # the block's optran: zoaf's again while the circuit is there
                    ngprocess.optran_asked()
                    ngprocess.restore_optran(self._ng)
                self._cmd("remcirc")
        try:
            results = batch_results(without_echoes(out, nl.control_echoes), [m.name for m in nl.measures],
                                    nl.results, f"{nl.path} (as ngspice -b)", prints=nl.print_groups)
        except MeasureError as e:
            if wanted is None or any(n not in e.measures for n in wanted):
                raise
            results = dict(e.measures)          # the results asked for were taken, whatever failed besides
        return select(results, wanted, out)

    def _analysis(self, command: str, results: dict[str, float], deadline: float | None) -> None:
        """Run one analysis; take the results its ``.meas`` cards print (ngspice runs them after it)."""
        kind = command.split(None, 1)[0]
        before = self._ng.current_plot()
        out, meas = split_measurements(self._run_analysis(command, deadline))
        err = classify(out, context=command, default=ConvergenceError)
        if isinstance(err, ParseError) and (line := self.netlist.analysis_line(command)) is not None:
            err = classify(out, context=f"{self.netlist.path}:{line}", default=ConvergenceError)   # the card's line
        if err is not None:
            raise err
        plot = self._ng.current_plot()
        if not plot.startswith(kind) or (plot == before and kind != "op"):
            raise ConvergenceError(f"{command}: produced no {kind} plot (current plot {plot!r})",
                                   "\n".join(out))
        mine = [m for m in self.netlist.measures if m.analysis == kind]
        results.update(printed_results(meas, [m.name for m in mine]))
        reasons = self._param_measures(kind, results) if self._in_place else {}
        for m in mine:
            if m.runs_as_ac:
                # this `.meas sp` form crashes ngspice 39: run as `meas ac` on the sp plot (the same layout).
                meas = self._cmd("meas ac " + m.text.split(None, 2)[2])
                value = self._ng.vector(m.name)
                if value is not None and value.size:
                    results[m.name] = float(np.real(value[0]))
            if m.name not in results:
                # Keep going: the other measures of a valid design are still worth having (MeasureError.measures).
                why = reasons.get(m.name) or missing_reason(meas, m.name)
                self._got.missing.append(Missing(m.name, f".meas {m.name} (line {m.line}) produced no value: {why}",
                                                 "\n".join(meas)))
                self._got.unmeasured.add(m.name)

    def _param_measures(self, kind: str, results: dict[str, float]) -> dict[str, str]:
        """fastpath hook: the ``param=`` cards of ``kind`` at a sizing set in place, computed by the plan (ngspice's
        own keep the value of the last ``reset``); the reason for each that gets no value."""
        try:
            values = self._fast.param_measures(kind, results)
        except fastpath.Unsupported as e:
            raise _NotInPlace(str(e)) from None
        for name, value in values.items():
            results.pop(name, None)
            if value is not None:
                results[name] = value
        return {name: "a measure it reads gave no value" for name, value in values.items() if value is None}

    def _replay_control(self, steps: tuple[replay.Step, ...], results: dict[str, float], where: dict[str, str],
                        deadline: float | None) -> None:
        fourier = FourierNames()
        measured = [m.name for m in self.netlist.measures]     # once: built per step, 2,000 lets x 2,000 cards
        for at, step in enumerate(steps):
            self._got.check_prints(self._ng, self.netlist, at)
            if step.kind is replay.Kind.RUN:
                for a in self.netlist.analyses:
                    self._analysis(a, results, deadline)
                continue
            if step.kind is replay.Kind.ANALYSIS:
                self._analysis(step.command, results, deadline)
                continue
            if base_word(step.command) == "destroy":
                self._got.keep(self._ng, where)     # printed before their plot goes, in ngspice -b
            out = self._cmd(step.command)
            if (mark := pass_mark(step.command, at)) is not None:
                self._cmd(mark)                 # echoed at each pass: names the pass a meas failed in
            meas_printed(out, self._meas_names, self._got.printed, self._got.meas_failed)
            out = self._got.meas_reports(out, self.netlist, at)
            cards, out = block_cards(out, measured)     # the block's own analyses'
            if cards and self._in_place and self._fast.cards:
                raise _NotInPlace("param= cards measured after a block's analyses: the plan computes them in _analysis")
            results.update(cards)
            fourier.after(step.command, self._cmd)
            if step.alterparam:
                self._altered_by_block(step.command)
            err = classify(out, context=step.command, default=SimulationError) if out else None
            # ngspice -b goes on after a failed meas, and after a let built on one (its result is then missing)
            let = base_word(step.command) == "let" or (base_word(step.command) == "end" and lets_failed(out))
            if isinstance(err, MeasureError) or (err is not None and let):
                name = defined_name(step.command)       # None at a loop's `end`: which let failed is not said
                self._got.missing.append(Missing(name and name.lower(), str(err), err.output))
            elif err is not None:
                raise err
            elif base_word(step.command) == "let":
                self._got.redefined(defined_name(step.command))
            for name in step.results:
                where[name] = plot_of(self._ng, name)
            if self.timeout is not None and deadline is not None and time.monotonic() > deadline:
                raise Timeout(f"{step.command}: evaluation ran past the {self.timeout:g} s limit")
        self._got.check_prints(self._ng, self.netlist, len(steps))

    def _altered_by_block(self, command: str) -> None:
        """The block's own ``alterparam`` edited ngspice's stored deck, which the next sizing starts from (a
        ``reset`` keeps it): that name is re-sent at the next sizing; ``alterparam <subckt> name=...`` edits a
        subcircuit's default, which only a fresh load of the deck restores."""
        words = command.replace("=", " = ").split()
        if len(words) > 2 and words[2] == "=":
            self._current.pop(words[1].lower(), None)
        else:
            self._reload = True


class _NotInPlace(Exception):
    """A sizing set in place whose ``param=`` cards the plan cannot compute: simulate it again after a reset."""

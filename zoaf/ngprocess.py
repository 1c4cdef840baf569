"""The process's one libngspice, as sessions use it: set up once, cleared of the previous deck's variables and of
what a sizing's ``.control`` block left (:func:`forget_sizing`), refused to a second deck after one with ``.if``
cards, and to a transient without ``interp`` after one with it (ngspice 39 defects: :func:`check_conditional`,
:func:`check_interpolation`).

libngspice keeps its state per process (variables, the command history, a misread after conditional cards, the
count of ``fourier`` calls that names their vectors: :class:`FourierNames`), so what a
:class:`zoaf.spice.SpiceSession` must know of the decks loaded before it lives here.
"""
from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from . import ngbinding
from .errors import ParseError, SimulationError
from .netlist import Netlist
from .ngbatch import MEAS_PRECISION, OWN_SETTINGS
from .ngbinding import NgSpice
from .ngcommands import base_word, block_depth_change, draws_random, interpolates, runs_transient, set_names

__all__ = ["HISTORY_EVERY", "Baseline", "FourierNames", "check_conditional", "check_interpolation",
           "forget_previous_deck", "forget_sizing", "optran_asked", "rearm_seed", "restore_optran", "shared_ngspice"]

#: Newton, gmin and source stepping kept, the transient operating point ngspice 39 falls back to turned off.
OWN_OPTRAN = "optran 1 1 1 0 0 0"
#: Whether a deck's own ``optran`` command may have run since zoaf's: ngspice keeps its step and final time in
#: statics that outlive the circuit, so a later deck of the process would fall back where ``ngspice -b`` does not.
_optran_moved = False
#: Clear ngspice's command history every this many evaluations (it grows ~6 kB per 100 evaluations).
HISTORY_EVERY = 100
#: The prefix of the ``const`` vectors that keep the built-in constants a deck redefines (:class:`Baseline`).
_SAVED = "zoaf_saved_"
#: The variables ngspice has before any deck (:func:`forget_previous_deck` keeps only these).
_BASELINE_VARS: set[str] = set()
#: ``rndseed`` as ngspice starts with it ("1"): the seed of a fresh process's first draw (:func:`rearm_seed`).
_startup_seed = "1"
#: The seed :func:`rearm_seed` draws at, so that ngspice's next draw reseeds: ngspice takes 1 .. INT_MAX, and a
#: deck that seeds with exactly this one would not be reseeded.
_REARM_SEED = 2147483647
#: Whether this process loaded a deck that turns ``interp`` on: ngspice 39 then interpolates every later transient
#: of the process, another deck's too (a static flag nothing clears; ``unset interp`` and ``remcirc`` do not).
_interpolating = False
#: The session deck with a conditional card (``.if``) this process loaded, if any: after one, ngspice 39
#: misreads later, different decks of the process (sky130's model cards lose their ``.param``s: "Undefined
#: parameter"), so such a process loads no other deck.
_conditional_deck: tuple[str, ...] | None = None


def shared_ngspice() -> NgSpice:
    """The process's libngspice, set up for sessions on first use. Raises ImportError/OSError without it."""
    # Read by ngspice at each `.meas`; a subprocess `ngspice -b` (run_batch) inherits it.
    os.environ["NGSPICE_MEAS_PRECISION"] = MEAS_PRECISION
    return ngbinding.shared(_setup)


def _sets_own_value(command: str, name: str) -> bool:
    """Whether ``command`` is a ``set`` of ``name`` to the value zoaf gave it itself (``ngbatch.OWN_SETTINGS``):
    no reload per sizing for it (the LNA's and the sky130 decks' ``set num_threads=1`` turned their fast path off)."""
    m = re.search(rf"(?<![\w.-]){re.escape(name)}\s*=\s*(\S+)", command, re.I)
    return base_word(command) == "set" and m is not None and OWN_SETTINGS.get(name) == m.group(1).strip("\"'")


def _setup(ng: NgSpice) -> None:
    global _startup_seed
    ng.command(f"set num_threads={OWN_SETTINGS['num_threads']}")
    # ngspice 39 ignores `.options optran` in a deck and falls back to a transient operating point that may
    # "converge" to a wrong bias. `optran 1 1 1 0 0 0` keeps Newton/gmin/source stepping and turns the fallback
    # off (`optran 0 0 0 0 0 0` also turns the stepping off: every op fails). It survives `reset`; "Transient op
    # started" is still classified as a failure, should it appear (not where the deck's own `optran` asked for it:
    # ``ngoutput.without_asked_transient_op``); a failed operating point says that ngspice -b would fall back
    # there (``ngoutput._op_fallback``).
    ng.command(OWN_OPTRAN)
    ng.command("set nomoremode")
    ng.command(f"set history={HISTORY_EVERY}")
    _BASELINE_VARS.update(ng.variables())
    _startup_seed = _seed(ng)


def _seed(ng: NgSpice) -> str:
    """``rndseed`` now, as ngspice writes it."""
    return " ".join(ng.command("echo $rndseed")).strip()


def optran_asked() -> None:
    """Remember that a deck's block sets ``optran`` (:func:`restore_optran` sets zoaf's back)."""
    global _optran_moved
    _optran_moved = True


def restore_optran(ng: NgSpice) -> None:
    """zoaf's ``optran`` again after a deck that set its own, with a circuit loaded: the command writes into the
    current circuit, and without one ngspice 39 crashes (a segmentation fault, after an earlier ``optran``)."""
    global _optran_moved
    if _optran_moved:
        ng.command(OWN_OPTRAN)
        _optran_moved = False


def forget_previous_deck(ng: NgSpice, keep: set[str] | frozenset[str] | None = None) -> None:
    """Unset the variables an earlier deck's ``.options``/``.control`` left behind (sky130's ``scale=1e-6``
    would shrink every device of the next circuit loaded in this process a millionfold); with ``keep``, those beyond
    it that a sizing's ``.control`` block set (``ngspice -b`` starts each run without them). A new deck's random
    draws start as in a fresh process (:func:`rearm_seed`)."""
    for name in sorted(ng.variables() - (_BASELINE_VARS if keep is None else keep)):
        ng.command(f"unset {name}")
    if keep is None:
        rearm_seed(ng, _startup_seed)


def rearm_seed(ng: NgSpice, seed: str) -> None:
    """Leave ngspice's generator as a fresh process has it for a deck's draws, with ``rndseed`` at ``seed``.

    ``checkseed`` (run by ``sunif``, ``sgauss``, ``rnd``, ...) reseeds the generator from ``rndseed`` only when
    that differs from the seed it used last (a static): a fresh ``ngspice -b`` has used none, so its first draw
    seeds with ``rndseed`` (1, or the deck's ``set rndseed``, ``.options seed``) and every run draws the same
    numbers; a session's next sizing went on drawing from where the previous one stopped. One draw at
    :data:`_REARM_SEED` makes that the last seed used, so the next draw reseeds."""
    ng.command(f"set rndseed={_REARM_SEED}")
    ng.command("let zoaf_rearm = sunif(0)")
    ng.command("unlet zoaf_rearm")
    ng.command(f"set rndseed={seed}")


@dataclass(frozen=True)
class Baseline:
    """What a deck's load left in the process, which each of its runs by ``ngspice -b`` starts from: the ``const``
    plot's vectors (``.csparam`` makes its own there) and, for a deck whose block has ``set``/``unset`` commands
    (else None: not looked at, a listing per sizing saved), the variables; ``consts``: the built-in constants the
    block may redefine (``let pi = 3`` before any analysis writes ``const.pi``), each kept as a copy
    (:data:`_SAVED` + name) that restores it exactly, complex ``i`` too; ``seed``: for a block that draws random
    numbers (else None), ``rndseed`` as the deck loaded with it (:func:`rearm_seed` after each sizing)."""

    vectors: frozenset[str]
    variables: frozenset[str] | None
    consts: tuple[str, ...] = ()
    seed: str | None = None

    @classmethod
    def now(cls, ng: NgSpice, variables: bool, commands: Iterable[str] = (), lets: Iterable[str] = ()) -> "Baseline":
        """The process's state now, for a deck whose block has these ``commands`` and ``let``s these ``lets``."""
        defined = set(lets)
        consts = tuple(sorted(n for n in ng.vector_names() if n.lower() in defined))
        for name in consts:
            ng.command(f"let {_SAVED}{name} = {name}")
        seed = _seed(ng) if draws_random(commands) else None
        return cls(frozenset(ng.vector_names()), frozenset(ng.variables()) if variables else None, consts, seed)

    def resets_loaded(self, commands: Iterable[str]) -> bool:
        """Whether ``commands`` change a variable the deck loaded with: ``set`` one there now, or ``unset`` one
        they did not set first (an ``.options savecurrents`` card's, there from the first analysis on). Only
        loading the deck again restores it as ``ngspice -b``'s next run has it (a ``reset`` does not)."""
        loaded, own = {v.lower() for v in self.variables or ()}, set()
        for c in commands:
            names = [n for n in set_names(c) if not _sets_own_value(c, n)]
            if any(n in loaded or (base_word(c) == "unset" and n not in own) for n in names):
                return True
            own.update(names)
        return False


def forget_sizing(ng: NgSpice, baseline: Baseline) -> None:
    """After a sizing's ``destroy all``, forget what ``ngspice -b`` would not have at its next run: the vectors the
    ``.control`` block made in the ``const`` plot (``let n = 0`` before any analysis: another deck's, or sizing's,
    ``let n = n + 1`` found it there), the constants it redefined, the variables its ``set`` commands added
    (``set units=degrees``) and where its random draws left the generator."""
    if extra := sorted(ng.vector_names() - baseline.vectors):
        ng.command("unlet " + " ".join(extra))
    for name in baseline.consts:
        ng.command(f"let {name} = {_SAVED}{name}")
    if baseline.variables is not None:
        forget_previous_deck(ng, keep=baseline.variables)
    if baseline.seed is not None:
        rearm_seed(ng, baseline.seed)


def check_conditional(netlist: Netlist) -> None:
    """Remember a deck with ``.if`` cards, its own or in a file it includes; refuse another deck after one
    (``needs_new_process``: the worker pools load it in a fresh process)."""
    global _conditional_deck
    deck = tuple(netlist.session_deck())
    if _conditional_deck is not None and deck != _conditional_deck:
        err = ParseError(f"loading {netlist.path}: this process loaded a deck with .if cards before, after which "
                         f"ngspice misreads other decks; a new process loads it")
        err.needs_new_process = True
        raise err
    if netlist.conditional:
        _conditional_deck = deck


def check_interpolation(netlist: Netlist) -> None:
    """Refuse a deck that runs transients without ``interp`` in a process that interpolates them since an earlier
    deck turned it on (``needs_new_process``: the worker pools load it in a fresh process, where its transients
    keep the time points ``ngspice -b`` gives them); remember a deck that turns it on."""
    global _interpolating
    interp = netlist.interp_card or interpolates(netlist.control)
    if _interpolating and not interp and runs_transient(netlist.analyses, netlist.control):
        err = ParseError(f"loading {netlist.path}: this process ran a deck with `interp` before, after which ngspice "
                         "interpolates every transient; a new process loads it")
        err.needs_new_process = True
        raise err
    _interpolating |= interp


class FourierNames:
    """The names ``ngspice -b`` gives ``fourier``'s vectors, in a process that runs it again and again.

    ``fourier`` names its vectors ``fourier<call><vector>`` with the call counted over the process (a static in
    ngspice that nothing resets): ``ngspice -b`` runs a deck's first ``fourier`` as ``fourier11``, a session's
    next evaluation makes ``fourier21`` and a deck reading ``fourier11`` fails there. After each command that ran
    ``fourier`` (:meth:`ran`), :meth:`aliases` gives the ``let`` commands that copy the new vectors to the names
    of a fresh process. A loop that reads them before its ``end`` still sees the process's names, and a loop that
    runs an analysis per pass leaves each pass's vectors in its own plot, of which only the current one is looked
    at (``display``): the earlier passes keep the process's names. The whole-deck path runs the block inside
    ``source``: :meth:`rebase` renames its references before, :meth:`counted` counts its calls after.
    """

    seen = 0            #: the last call number found in this process (its libngspice's counter)
    _SCAN = 100000      #: call numbers looked at past :attr:`seen` (calls made by whole-deck runs are not seen)

    def __init__(self) -> None:
        self.calls = 0          # fourier calls of this evaluation, as ngspice -b numbers them
        self._depth, self._pending = 0, False

    def after(self, command: str, send: Callable[[str], list[str]]) -> None:
        """After ``command`` was sent: copy the vectors of the ``fourier`` calls it ran (``display`` lists them:
        they are 2-d, which ``ngGet_Vec_Info`` does not show)."""
        if self.ran(command):
            listed = {ln.split(":")[0].strip() for ln in send("display")}
            for alias in self.aliases(listed.__contains__):
                send(alias)

    def ran(self, command: str) -> bool:
        """Whether ``command``, just sent, ran a ``fourier`` (a block runs at its closing ``end``)."""
        self._depth += block_depth_change(command)
        self._pending |= base_word(command) == "fourier"
        if self._depth > 0:
            return False
        ran, self._pending = self._pending, False
        return ran

    def aliases(self, exists: Callable[[str], bool]) -> list[str]:
        """``let fourier<k><i> = fourier<call><i>`` for the calls made since the last look, in order."""
        out: list[str] = []
        for call in self._new_calls(exists):
            self.calls += 1
            i = 1
            while exists(real := f"fourier{call}{i}"):
                if call != self.calls:
                    out.append(f"let fourier{self.calls}{i} = {real}")
                i += 1
        return out

    @classmethod
    def _new_calls(cls, exists: Callable[[str], bool]) -> list[int]:
        """The call numbers past :attr:`seen` whose vectors exist (consecutive once one is found)."""
        calls: list[int] = []
        call, misses = cls.seen + 1, 0
        while misses < (1 if calls else cls._SCAN):
            if exists(f"fourier{call}1"):
                calls.append(call)
                cls.seen, misses = call, 0
            else:
                misses += 1
            call += 1
        return calls

    @classmethod
    def counted(cls, names: set[str]) -> None:
        """After a whole-deck run (``source``): count the calls it made from the vectors they left."""
        cls._new_calls(names.__contains__)

    @classmethod
    def rebase(cls, deck: str) -> str:
        """The whole-deck path's deck with its ``.control`` block's ``fourier<k><i>`` names (as ``ngspice -b``
        numbers them) renamed to those this process will make, ``fourier<seen+k><i>``: the block runs inside
        ``source``, where no copy can follow each call. Only one-digit calls and vectors can be told apart
        (``fourier112`` is call 1 or 11): a longer name in a process that ran ``fourier`` before is refused."""
        if cls.seen == 0:
            return deck
        out, block = [], False
        for line in deck.split("\n"):
            word = line.split(None, 1)[0].lower() if line.split() else ""
            block = word.startswith(".control") or (block and not word.startswith(".endc"))
            if block and (long := _LONG_NAME.search(line)):
                raise SimulationError(f"{long.group(0)}: fourier names its vectors fourier<call><vector> with the "
                                      "call counted over the process; zoaf renames one-digit calls and vectors "
                                      "only: read this one in a fresh process (a deck of its own)")
            out.append(_FOURIER_NAME.sub(lambda m: f"fourier{cls.seen + int(m.group(1))}{m.group(2)}", line)
                       if block else line)
        return "\n".join(out)


#: ``fourier<call><vector>``, one digit each, as a name in a command (not inside a longer word).
_FOURIER_NAME = re.compile(r"(?<![\w#@$])fourier([1-9])([1-9])(?![\w])", re.IGNORECASE)
#: A longer one, where call and vector cannot be told apart.
_LONG_NAME = re.compile(r"(?<![\w#@$])fourier\d{3,}(?![\w])", re.IGNORECASE)

"""zoaf's exceptions.

Every error inherits ``ZoafError`` and the matching built-in, so callers can catch either (as in Nevergrad).
``InputError`` is the user's fault (bad netlist, spec, option): the CLI prints it as one line, exit code 2.
``SimulationError`` is one failed simulation: the optimizer sees ``+inf`` and the history records why.

This module is also the first that ``import zoaf`` loads, so it holds the command line's Ctrl-C while loading
(:func:`guard_loading`): ``zoaf/__init__`` imports numpy and the optimizer (a fifth of a second) before
:mod:`zoaf.cli` is reached, and a Ctrl-C there was an import's traceback.
"""
from __future__ import annotations

import difflib
import os
import signal
import sys
from typing import Iterable


def _interrupted_while_loading(signum: int, frame: object) -> None:
    """Ctrl-C while the command line loads: no command has started, so there is nothing to keep; said as the
    CLI says it, not as the traceback of the import it cut."""
    os.write(2, b"interrupted\n")
    os._exit(130)


#: SIGINT's handler before :func:`guard_loading`, for :func:`end_loading` to give back; None when not guarded.
_before_loading: object = None


def guard_loading() -> None:
    """Until :func:`end_loading`, Ctrl-C ends the process with ``interrupted`` and exit 130. Only Python's own
    handler is replaced, and only in the main thread (an ignored SIGINT, as in a background job, stays ignored)."""
    global _before_loading
    if _before_loading is None and signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        try:
            _before_loading = signal.signal(signal.SIGINT, _interrupted_while_loading)
        except ValueError:      # another thread: SIGINT is the main thread's to handle
            pass


def end_loading() -> None:
    """Give SIGINT back its handler from before :func:`guard_loading` (a program that imports zoaf keeps its
    own; a command, once it runs, handles Ctrl-C itself)."""
    global _before_loading
    if _before_loading is not None:
        signal.signal(signal.SIGINT, _before_loading)
        _before_loading = None


def _runs_the_command_line() -> bool:
    """This process is zoaf's command line: ``python -m zoaf`` (whose ``sys.argv[0]`` is ``-m`` while Python locates
    the module, as now), or a program whose main module is importing zoaf's CLI at this moment (the installed
    ``zoaf`` script's ``from zoaf.cli import main``). Not the program's name: one of a user's own, named ``zoaf``,
    that imports zoaf as a library keeps its Ctrl-C."""
    if sys.argv and sys.argv[0] == "-m":
        args = sys.orig_argv
        return "-mzoaf" in args or any(a == "-m" and b == "zoaf" for a, b in zip(args, args[1:]))
    return _main_imports("zoaf.cli")


def _main_imports(module: str) -> bool:
    """Whether the main module's code stands at an ``import`` of ``module`` (the instruction it is running)."""
    import opcode

    frame = sys._getframe()
    while frame.f_back is not None:
        frame = frame.f_back
    code, at = frame.f_code.co_code, frame.f_lasti
    if frame.f_globals.get("__name__") != "__main__" or not 0 <= at < len(code) \
            or code[at] != opcode.opmap["IMPORT_NAME"]:
        return False
    arg, shift = code[at + 1], 8
    while at >= 2 and code[at - 2] == opcode.EXTENDED_ARG:     # an index past 255 into co_names
        at -= 2
        arg, shift = arg | code[at + 1] << shift, shift + 8
    return arg < len(frame.f_code.co_names) and frame.f_code.co_names[arg] == module


if _runs_the_command_line():    # first, before the exception types: the sooner, the less an import's traceback
    guard_loading()


class ZoafError(Exception):
    """Base of every zoaf error."""


class InputError(ZoafError, ValueError):
    """Bad user input: a netlist, a spec, a parameter value or an option. Message names file/line/field."""


class DeckFailure(InputError):
    """A deck's run stopped early: every simulation so far failed with one and the same error, at sizings across the
    box, and none simulated (``zoaf.evaluate.FAIL_FAST_SIZINGS``); its simulations stay in the run's history.
    ``error`` is that error, ``sizings`` how many sizings showed it."""

    def __init__(self, message: str, error: str = "", sizings: int = 0) -> None:
        super().__init__(message)
        self.error, self.sizings = error, sizings

    def __reduce__(self) -> tuple:                     # its fields kept across processes (a comparison's job)
        return type(self), (str(self), self.error, self.sizings)


class ZoafWarning(UserWarning):
    """Something about the user's input or runs that zoaf goes on despite: the command line says it as its own
    ``warning:`` line (naming the file where the warning is set at one, line 0), not as Python's warning form."""


class ZoafNote(ZoafWarning):
    """How ``ngspice -b`` reads a deck otherwise than it looks (``Netlist.notes``: a card it skips, a vector it does
    not save), said as a run's first simulation starts (:class:`zoaf.evaluate.Evaluator`), after every check of its
    input: the command line says it as a ``note:`` line, once, none with ``--quiet``."""


def did_you_mean(name: object, known: Iterable[str], cutoff: float = 0.75) -> str:
    """``"did you mean 'x'? "`` for the known name closest to a misspelt one (``RANDOM``, ``alpha_0``), else ``""``."""
    near = difflib.get_close_matches(str(name).lower(), list(known), n=1, cutoff=cutoff)
    return f"did you mean {near[0]!r}? " if near else ""


class SimulationError(ZoafError, RuntimeError):
    """One simulation did not produce its measures. ``output`` holds ngspice's own lines."""

    status = "failed"
    #: True when libngspice is left in a state where nothing loads any more: the process must be replaced.
    needs_new_process = False

    def __init__(self, message: str, output: str = "") -> None:
        super().__init__(_clip(message, MAX_MESSAGE_CHARS))
        self.output = _clip(output, MAX_OUTPUT_CHARS)


#: What an error keeps of ngspice's output and of its own message: a deck's loop can print without end, and the
#: error travels from the sandboxed process (at most 64 MiB a reply: a larger one read as a dead worker) into the
#: history.
MAX_OUTPUT_CHARS = 2**20
MAX_MESSAGE_CHARS = 2**14


def _clip(text: str, limit: int) -> str:
    """``text``, or its head and tail around a note of how much was left out (shorter than ``limit``: clipped
    again, as when the error is unpickled, it stays the same)."""
    if len(text) <= limit:
        return text
    half = (limit - 100) // 2
    return f"{text[:half]} ... ({len(text) - 2 * half} characters left out) ... {text[-half:]}"


class ParseError(SimulationError):
    """The netlist does not load into ngspice."""


class ConvergenceError(SimulationError):
    """An operating point or transient analysis did not converge."""


class MeasureError(SimulationError):
    """A measure produced nothing (out of interval, no such vector).

    The simulation itself ran: ``measures`` holds the measures that were taken, so that a valid but bad design
    (no unity-gain crossing, say) still ranks above a failed simulation.
    """

    def __init__(self, message: str, output: str = "", measures: dict[str, float] | None = None) -> None:
        super().__init__(message, output)
        self.measures = dict(measures or {})


#: Seconds one simulation (one evaluation of a sizing) may run unless told otherwise: the default of every
#: timeout in zoaf (sky130 decks load in ~5 s; simulations take ms).
DEFAULT_TIMEOUT = 60.0


class Timeout(SimulationError):
    """A simulation ran past its wall-clock limit (:data:`DEFAULT_TIMEOUT` unless told)."""

    status = "timeout"


class WorkerCrash(SimulationError):
    """The worker process running a simulation died (segfault, SIGKILL, out of memory)."""

    status = "crashed"

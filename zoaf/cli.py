"""The ``zoaf`` command line: the app, its shared options and error handling, ``check`` and ``simulate``;
``optimize`` is registered on :data:`app` by :mod:`zoaf.optimizecmd`, ``compare`` and ``report`` by
:mod:`zoaf.comparecmd`, ``corners``, ``yield`` and ``sensitivity`` by :mod:`zoaf.signoff.commands`, all imported at
the end of this module (in the order ``zoaf --help`` lists them).

Exit codes: 0 success, 1 the run itself failed, 2 bad input or usage (one red line on stderr, no traceback;
``--debug`` shows it).
"""
from __future__ import annotations

import _thread
import errno
import logging
import signal
import sys
import threading
import traceback
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Callable, Iterator, NoReturn, Optional

from .errors import end_loading, guard_loading

guard_loading()      # Ctrl-C while this module loads (typer, rich, every command): "interrupted", exit 130; given
                     # back at its end (guarded already when this process is the command line: zoaf.errors)

import click  # noqa: E402  (after the handler above: these imports are most of a command's start)
import typer  # noqa: E402
from rich.markup import escape  # noqa: E402

from . import units  # noqa: E402
from .errors import DEFAULT_TIMEOUT, InputError, SimulationError, ZoafError, ZoafNote  # noqa: E402
from .outfile import printable  # noqa: E402
from . import show  # noqa: E402
from .show import as_text, err, one_line  # noqa: E402

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Size analog/RF circuits by zeroth-order optimization over ngspice simulations.")
_state = {"debug": False}


class GivenPath(click.ParamType):
    """A path argument or option as given, an empty one refused: click's ``Path("")`` is ``.``, so ``--spec "$UNSET"``
    read the working directory as the spec (".: is a directory"), and ``zoaf report .`` was refused as empty."""

    name = "path"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Path:
        if isinstance(value, Path):
            return value
        if not str(value).strip():
            self.fail(f"{value!r}: empty path; name a file or folder", param, ctx)
        return Path(value)


GIVEN_PATH = GivenPath()
NetlistArg = Annotated[Path, typer.Argument(help="ngspice netlist (.cir) with .param design variables.",
                                            show_default=False, click_type=GIVEN_PATH)]
SpecOpt = Annotated[Optional[Path], typer.Option("--spec", help="Spec TOML (default: <netlist stem>.toml).",
                                                 click_type=GIVEN_PATH)]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object instead of tables.")]
ShellOpt = Annotated[bool, typer.Option("--allow-shell", help="Allow `shell` in .control (a netlist is code).")]
TimeoutOpt = Annotated[float, typer.Option("--timeout", help="Seconds per simulation before it is killed.")]


@app.callback()
def _main(debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False,
          verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log what zoaf does.")] = False) -> None:
    _state["debug"] = debug
    level = logging.DEBUG if debug else logging.INFO if verbose else logging.WARNING
    handler = logging.StreamHandler()
    handler.setFormatter(_Printable("%(levelname)s %(name)s: %(message)s"))
    handler.setLevel(level)     # a library's logger of its own level (distributed's: INFO) passes the root's by
    logging.basicConfig(level=level, handlers=[handler])   # (--dask local -q printed 24 INFO lines)


class _Printable(logging.Formatter):
    """Log lines quote what a sandboxed process sent (a forged reply's class name wrote its escape sequences to the
    terminal): shown printable, as every other line zoaf prints."""

    def format(self, record: logging.LogRecord) -> str:
        return printable(super().format(record))


#: A file error that names a path the user gave amiss (exit 2, as bad input); any other (a full disk) exits 1.
_BAD_PATH = frozenset({errno.EACCES, errno.EPERM, errno.ENOENT, errno.ENOTDIR, errno.EISDIR, errno.EROFS,
                       errno.EEXIST, errno.ENAMETOOLONG, errno.ELOOP})


@contextmanager
def _errors() -> Iterator[None]:
    """Domain errors become one red line and an exit code (only here, as fastapi-cli does)."""
    try:
        yield
    except typer.Exit:
        raise
    except ZoafError as e:
        if _state["debug"]:
            raise
        if _cut_by_ctrl_c(e):          # an import cut by Ctrl-C: a pybind11 module raises ImportError, which the
            say_interrupted()          # registry reported as a method that "cannot import"
        err.print(f"[red]error:[/red] {escape(one_line(str(e)))}", highlight=False, soft_wrap=True)
        raise typer.Exit(2 if isinstance(e, (InputError, SimulationError)) else 1) from None
    except KeyboardInterrupt:          # before a run's own handling (loading the deck, starting workers): typer
        say_interrupted()              # would turn it into a silent exit 130
    except OSError as e:               # a file zoaf could not write or read (a read-only comparison directory for
        if _state["debug"] or e.filename is None:     # `zoaf report`): the file and why, not a traceback
            raise
        where = units.clip_path(str(e.filename))   # a path a received history names runs to thousands of characters
        err.print(f"[red]error:[/red] {escape(one_line(f'{where}: {e.strerror or e}'))}", highlight=False,
                  soft_wrap=True)
        raise typer.Exit(2 if e.errno in _BAD_PATH else 1) from None   # a full disk or EIO: the run failed


@contextmanager
def notes_said(quiet: bool) -> Iterator[None]:
    """The notes a run says as its first simulation starts (:class:`zoaf.errors.ZoafNote`: how ``ngspice -b`` reads
    the deck), each once per command, none with ``--quiet``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore" if quiet else "default", ZoafNote)
        yield


def _say_uncut(line: str) -> None:
    """Ctrl-C's line, with SIGINT ignored while it is said: a second press (or one delivered again from a
    finalizer) cut rich's print after its write and before its buffer was cleared, and the line came twice."""
    try:
        before = signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:                 # not the main thread: its SIGINT is not this thread's
        before = None
    try:
        err.print(line, highlight=False, soft_wrap=True)
    finally:
        if before is not None:
            signal.signal(signal.SIGINT, before)


def say_interrupted(line: str = "interrupted") -> NoReturn:
    """Ctrl-C's one line (markup escaped by the caller), exit 130."""
    _say_uncut(line)
    raise typer.Exit(130)


def _cut_by_ctrl_c(e: BaseException | None) -> bool:
    """Whether ``e`` was raised while a KeyboardInterrupt was handled (its cause or context, at any depth)."""
    seen: set[int] = set()
    while e is not None and id(e) not in seen:
        if isinstance(e, KeyboardInterrupt):
            return True
        seen.add(id(e))
        e = e.__cause__ or e.__context__
    return False


def _check_timeout(timeout: float) -> None:
    from .circuit import check_timeout

    check_timeout(timeout, "--timeout")


def _problem(netlist: Path, spec: Optional[Path], objective: Optional[str] = None, allow_shell: bool = False,
             timeout: float = DEFAULT_TIMEOUT, x0: str = "netlist", corners: bool = False):
    """The circuit of a command; ``corners`` (a run): its spec's sign-off tables checked as ``zoaf check`` checks
    them (a corner the objective does not judge refused only at sign-off, after the run), and judged over its
    objective's corners when it names any."""
    from .circuit import CircuitProblem
    from .signoff.cornerrun import CornerProblem
    from .signoff.speccheck import check_signoff

    _check_timeout(timeout)
    problem = CircuitProblem(netlist, spec, objective=objective, allow_shell=allow_shell, timeout=timeout, x0=x0)
    show.note_deck(problem)                     # its reads beyond its folder, unread variables: before it runs
    if not corners:
        return problem
    check_signoff(problem)
    return CornerProblem.wrap(problem)


def one_value(option: str, given: Optional[list[str]], what: str) -> Optional[str]:
    """The one value of an option a command takes once (``what``: its one thing), declared as a list so that a
    second is seen: it replaced the first unsaid, where ``compare -o`` and ``corners --corner`` take each
    (``optimize -o bw -o lf`` optimized lf alone). The same name twice, in any case, is once."""
    first: dict[str, str] = {}
    for v in given or ():
        first.setdefault(v.lower(), v)
    values = list(first.values())
    if len(values) > 1:
        raise InputError(f"{option} given {len(values)} times ({', '.join(values)}): {what}; give one")
    return values[0] if values else None


def _dir_option(option: str, value: Optional[str]) -> Optional[Path]:
    """A directory option as a Path through no folder that does not exist (``RUN/new/..`` is ``RUN``, as
    ``rundir.run_directory`` makes it); an empty one is refused (``Path("")`` would be the working directory)."""
    from .rundir import unmade

    if value is not None and not value.strip():
        raise InputError(f"{option} {value!r}: empty path; name a directory")
    return None if value is None else unmade(Path(value))


def _simulate_and_show(problem, values: dict[str, float], as_json: bool, title: str, given: set[str],
                       fixed: Optional[dict[str, float]] = None) -> None:
    """Exit 2 when the sizing did not simulate, 1 when it did but a measure is missing (shown, with its FoM).
    ``given``: the names set on the command line (checked there); the deck's own values outside the spec's box
    are simulated as written, with a note (a run would never simulate them)."""
    for p in problem.parameters:
        if p.name not in given and not p.admits(values[p.name], exact=True):
            err.print(f"[yellow]note:[/yellow] {as_text(str(problem.netlist.path))}: .param {p.name} = "
                      f"{units.format(values[p.name])}, but the spec's parameters.{p.name} is "
                      f"{'an integer ' if p.integer else ''}within [{units.format(p.lo)}, {units.format(p.hi)}]: "
                      "simulated as written", highlight=False, soft_wrap=True)
    verdict, error = show.simulate_and_show(problem, values, as_json, title, fixed or {})
    for note in problem.netlist.notes if verdict != show.Verdict.FAILED else ():   # why a measure is missing
        err.print(f"[yellow]note:[/yellow] {as_text(note)}", highlight=False, soft_wrap=True)
    if verdict == show.Verdict.FAILED and not as_json:
        err.print(f"[red]error:[/red] {as_text(str(problem.netlist.path))}: simulation failed: "
                  f"{as_text(error or '')}",
                  highlight=False, soft_wrap=True)
    if verdict != show.Verdict.OK:
        raise typer.Exit(2 if verdict == show.Verdict.FAILED else 1)


@app.command()
def check(netlist: NetlistArg, spec: SpecOpt = None, as_json: JsonOpt = False, allow_shell: ShellOpt = False,
          timeout: TimeoutOpt = DEFAULT_TIMEOUT) -> None:
    """Validate a netlist and its spec, simulate the default sizing, show parameters and measures."""
    from .signoff.speccheck import check_signoff

    with _errors():
        problem = _problem(netlist, spec, allow_shell=allow_shell, timeout=timeout)
        check_signoff(problem)          # what optimize, corners and yield refuse of the spec, refused here too
        _simulate_and_show(problem, problem.default_params(), as_json, f"{netlist.name} (default sizing)", set())


@app.command()
def simulate(netlist: NetlistArg,
             set_: Annotated[Optional[list[str]], typer.Option(
                 "--set", help="NAME=VALUE, e.g. w1=20u (repeat).")] = None,
             spec: SpecOpt = None, as_json: JsonOpt = False, allow_shell: ShellOpt = False,
             timeout: TimeoutOpt = DEFAULT_TIMEOUT) -> None:
    """Simulate one sizing: the netlist's defaults changed by --set NAME=VALUE."""
    with _errors():
        problem = _problem(netlist, spec, allow_shell=allow_shell, timeout=timeout)
        values, fixed = problem.default_params(), {}
        known, given = {p.name: p for p in problem.parameters}, {}
        for item in set_ or []:
            name, sep, text = item.partition("=")
            name = name.strip().lower()
            if not sep:
                raise InputError(f"--set {item!r}: expected NAME=VALUE, e.g. --set w1=20u")
            if name not in known and name not in problem.netlist.params:
                others = sorted(set(problem.netlist.params) - set(known))
                raise InputError(f"--set {item!r}: unknown parameter {name!r}; parameters: {', '.join(known)}; "
                                 f"fixed .params of the deck: {', '.join(others) or 'none'}")
            if name in given:           # which value would win is a guess: the last, silently
                raise InputError(f"--set {item!r}: {name} is already set (--set {given[name]})")
            given[name] = item.strip()
            v = units.parse_spec(text, what=f"--set {name}")
            p = known.get(name)
            if p is None:               # a fixed .param (a supply): an override ngspice takes, as a corner's
                fixed[name] = v
            elif not p.admits(v, exact=True):
                raise InputError(f"--set {name}={text}: must be {'an integer ' if p.integer else ''}within "
                                 f"[{units.format(p.lo)}, {units.format(p.hi)}]")
            else:
                values[name] = v
        _simulate_and_show(problem, values, as_json, netlist.name, set(given), fixed)


from . import optimizecmd as _optimize_command  # noqa: E402,F401  (registers `optimize`)
from . import comparecmd as _compare_commands  # noqa: E402,F401  (registers `compare` and `report`)
from .signoff import commands as _signoff_commands  # noqa: E402,F401  (`corners`, `yield`, `sensitivity`)

end_loading()


def _interrupt(signum: int, frame: Any) -> None:
    """SIGTERM as Ctrl-C: it ended a run silently (no result.json, no best.cir, no resume line)."""
    raise KeyboardInterrupt


def _ctrl_c_again(hook: Callable[[Any], Any]) -> Callable[[Any], None]:
    """``sys.unraisablehook`` that delivers again a Ctrl-C that landed in a finalizer (a weakref callback, a
    ``__del__``): Python prints it as "Exception ignored ... KeyboardInterrupt" and drops it, and the command went
    on to exit 0. Signalled anew once the finalizer has returned (within it, it would be dropped again), it
    reaches the code that runs next."""
    def unraisable(u: Any) -> None:
        if isinstance(u.exc_value, KeyboardInterrupt):
            again = threading.Timer(0.01, _thread.interrupt_main)
            again.daemon = True
            again.start()
            _pending.append(again)
        else:
            hook(u)
    return unraisable


#: Ctrl-Cs to deliver again (:func:`_ctrl_c_again`): when ``main`` ends, one not yet delivered is cancelled (it
#: would cut the exit with a traceback) and the exit status is 130.
_pending: list[threading.Timer] = []


def main() -> None:
    """Entry point. Usage errors (bad option value, missing argument) become one red line, exit code 2, like
    domain errors: click's own report is a usage line, a hint line and a box."""
    on_term = signal.signal(signal.SIGTERM, _interrupt)   # `kill`, a scheduler: the Ctrl-C path (rows kept, end files)
    plain, shown = warnings.formatwarning, warnings.showwarning   # a library's warning may quote a name from a run
    warnings.formatwarning = lambda *a, **k: printable(plain(*a, **k))   # directory (matplotlib: "Glyph 27
    warnings.showwarning = show.own_warnings(shown)                                 # (\x1b) missing")
    unraisable = sys.unraisablehook
    sys.unraisablehook = _ctrl_c_again(unraisable)
    try:
        code = app(standalone_mode=False)
    except click.exceptions.NoArgsIsHelpError as e:
        code = e.exit_code                               # typer has printed the help already
    except click.ClickException as e:
        where = f"{e.ctx.command_path}: " if getattr(e, "ctx", None) is not None else ""
        hint = " (see --help)" if isinstance(e, click.UsageError) else ""
        err.print(f"[red]error:[/red] {escape(where + one_line(e.format_message()))}{hint}", highlight=False,
                  soft_wrap=True, markup=True)
        code = e.exit_code
    except (KeyboardInterrupt, click.Abort):
        _say_uncut("interrupted")
        code = 130
    except Exception:                     # a bug's traceback, or one a sandboxed process forged (the exception a pool
        sys.stderr.write(printable(traceback.format_exc()))   # worker "raised"): its escape sequences not run
        code = 1
    finally:                              # as they were: main() called in a process that goes on (a test)
        unfired = [again for again in _pending if not again.finished.is_set()]
        for again in _pending:
            again.cancel()
        _pending.clear()
        signal.signal(signal.SIGTERM, signal.SIG_DFL if on_term is None else on_term)
        warnings.formatwarning, warnings.showwarning, sys.unraisablehook = plain, shown, unraisable
    if unfired and code != 130:           # a Ctrl-C in a finalizer as the command ended: still an interruption
        _say_uncut("interrupted")
        code = 130
    sys.exit(code if isinstance(code, int) else 0)

"""The ``zoaf`` command line: ``optimize``, ``check``, ``simulate``; ``compare`` and ``report`` are registered on
:data:`app` by :mod:`zoaf.comparecmd`, ``corners``, ``yield`` and ``sensitivity`` by :mod:`zoaf.signoff.commands`,
both imported at the end of this module.

Exit codes: 0 success, 1 the run itself failed, 2 bad input or usage (one red line on stderr, no traceback;
``--debug`` shows it).
"""
from __future__ import annotations

import _thread
import errno
import logging
import math
import os
import secrets
import signal
import sys
import threading
import time
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Callable, Iterator, NoReturn, Optional

from .errors import end_loading, guard_loading

guard_loading()      # Ctrl-C while this module loads (typer, rich, every command): "interrupted", exit 130; given
                     # back at its end (guarded already when this process is the command line: zoaf.errors)

import click  # noqa: E402  (after the handler above: these imports are most of a command's start)
import typer  # noqa: E402
from rich.markup import escape  # noqa: E402
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn  # noqa: E402

from . import registry, units  # noqa: E402
from .circuit import X0_CHOICES  # noqa: E402
from .errors import DEFAULT_TIMEOUT, InputError, SimulationError, ZoafError  # noqa: E402
from .outfile import json_text, printable  # noqa: E402
from . import show  # noqa: E402
from .show import as_text, err, one_line  # noqa: E402

if TYPE_CHECKING:
    from .history import RunMeta

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Size analog/RF circuits by zeroth-order optimization over ngspice simulations.")
_state = {"debug": False}

NetlistArg = Annotated[Path, typer.Argument(help="ngspice netlist (.cir) with .param design variables.",
                                            show_default=False)]
SpecOpt = Annotated[Optional[Path], typer.Option("--spec", help="Spec TOML (default: <netlist stem>.toml).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object instead of tables.")]
ShellOpt = Annotated[bool, typer.Option("--allow-shell", help="Allow `shell` in .control (a netlist is code).")]
TimeoutOpt = Annotated[float, typer.Option("--timeout", help="Seconds per simulation before it is killed.")]


@app.callback()
def _main(debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False,
          verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log what zoaf does.")] = False) -> None:
    _state["debug"] = debug
    logging.basicConfig(level=logging.DEBUG if debug else logging.INFO if verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")


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
    show.note_reads(problem.netlist)            # what a received deck reads beyond its folder, before it runs
    if not corners:
        return problem
    check_signoff(problem)
    return CornerProblem.wrap(problem)


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


def _resume_defaults(run_dir: Path) -> RunMeta:
    from .history import History

    db = run_dir / "history.db"
    if not db.is_file():
        why = "not a regular file" if db.exists() else "nothing to resume (no history.db)"
        raise InputError(f"{db if db.exists() else run_dir}: {why}")
    with History(db, read=True) as h:
        meta = h.run_meta()
    if meta is None:
        raise InputError(f"{db}: no run metadata: nothing to resume")
    kind = _signoff_kind(meta)
    if kind is not None:        # was "--method: unknown method 'montecarlo'", or "a run of 'a Python problem'"
        raise InputError(f"{db}: the simulations of zoaf {kind}, not an optimization run: nothing for zoaf optimize "
                         f"to resume; give the run's own directory (zoaf {kind} RUN continues these)")
    if "netlist_sha256" not in meta.problem:       # zoaf.minimize's, say: its keys were a KeyError traceback here
        raise InputError(f"{db}: a run of {meta.problem.get('name', 'a Python problem')!r}, not of a netlist: "
                         f"resume it from Python (zoaf.optimize(problem, out=..., resume=True))")
    return meta


def _signoff_kind(meta: RunMeta) -> str | None:
    """The sign-off command whose directory (``RUN/yield*``, ``RUN/sensitivity/*``) recorded ``meta``, else None."""
    from .signoff.yieldrun import METHOD

    if meta.method == METHOD:
        return "yield"
    return "sensitivity" if {"run", "points"} <= meta.problem.keys() else None


@app.command()
def optimize(
    netlist: NetlistArg,
    spec: SpecOpt = None,
    objective: Annotated[Optional[str], typer.Option(
        "--objective", "-o", help="Objective of the spec (default: its first).")] = None,
    budget: Annotated[Optional[int], typer.Option("--budget", "-b", help="Simulations (default 400).", min=1)] = None,
    seed: Annotated[Optional[int], typer.Option(
        "--seed", help="Random seed (default: drawn and recorded).", min=0)] = None,
    method: Annotated[Optional[str], typer.Option(
        "--method", "-m", help=f"{', '.join(registry.methods())} (default zoaf).")] = None,
    out_dir: Annotated[Optional[str], typer.Option("--out", help="Run directory (default runs/<stem>-<time>).")] = None,
    workers: Annotated[int, typer.Option(
        "--workers", "-j", help="Parallel simulations (default: cores).", min=0)] = os.cpu_count() or 1,
    resume: Annotated[Optional[str], typer.Option("--resume", help="Continue the run in this directory.")] = None,
    dask: Annotated[Optional[str], typer.Option("--dask", help="Dask scheduler address, or 'local'.")] = None,
    as_json: JsonOpt = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar or tables.")] = False,
    allow_shell: ShellOpt = False,
    timeout: TimeoutOpt = DEFAULT_TIMEOUT,
    x0: Annotated[Optional[str], typer.Option(        # a choice: its refusal names --x0 (was the library's x0)
        "--x0", click_type=click.Choice(X0_CHOICES), help="First start: netlist (its .param values, default) or "
        "center (the box centre).")] = None,
) -> None:
    """Size a circuit: optimize its spec's objective and write the run directory (best.cir, result.json...)."""
    with _errors():                    # the imports too: a Ctrl-C amid them was a silent exit 130
        from .run import check_budget, check_resume, check_workers, run_metadata
        from .rundir import recorded_spec

        out_path, resume_path = _dir_option("--out", out_dir), _dir_option("--resume", resume)
        check_workers(workers, dask, "--workers")
        if budget is not None:
            check_budget(budget, "--budget")
        if resume_path is not None:
            meta = _resume_defaults(resume_path)
            spec = spec if spec is not None else recorded_spec(resume_path)       # a run made with --spec
            objective = objective or meta.problem["objective"]
            x0 = meta.problem.get("x0") if x0 is None else x0
            budget, seed = budget or meta.budget, seed if seed is not None else meta.seed
            method = meta.method if method is None else method
            if out_path is not None and out_path.resolve() != resume_path.resolve():
                raise InputError(f"--out {out_path}: a resumed run stays in its directory (--resume {resume_path}); "
                                 f"give one of the two")
            out_path = resume_path
        budget, method = budget or 400, "zoaf" if method is None else method   # --method '' is no method
        x0 = "netlist" if x0 is None else x0                                      # --x0 '' is no start
        try:
            registry.available(method)         # before the progress bar starts
        except InputError as e:
            raise InputError(f"--method: {e}") from None
        seed = seed if seed is not None else secrets.randbelow(2**31)
        problem = _problem(netlist, spec, objective, allow_shell, timeout, x0, corners=True)
        if resume_path is not None:   # here, before workers and the progress bar start
            check_resume(resume_path / "history.db", meta, run_metadata(problem, method, budget, seed, {}))
        if out_path is None:
            out_path = Path("runs") / f"{netlist.stem}-{datetime.now():%Y%m%d-%H%M%S}"
        t0 = time.perf_counter()
        result = _run(netlist, problem, out_path, resume=resume_path is not None, progress=not (quiet or as_json),
                      budget=budget, seed=seed, method=method, workers=workers, timeout=timeout, dask=dask)
        _ended(netlist, problem, result, out_path, time.perf_counter() - t0, as_json, quiet)


def _run(netlist: Path, problem: Any, out_path: Path, *, resume: bool, progress: bool, budget: int, seed: int,
         method: str, workers: int, timeout: float, dask: str | None) -> Any:
    """Run the optimization in its locked run directory; a Ctrl-C outside the run's own handling (which writes the
    end files) says how to resume where there is a history."""
    from .run import optimize as run_optimize
    from .rundir import run_directory

    # Locked before workers start: a second process on the same run is refused before it costs anything.
    try:
        with run_directory(out_path, resume=resume):
            evaluator = problem.evaluator(workers=workers, timeout=timeout, dask=dask)
            with evaluator.start(), _progress(progress, budget) as update:
                return run_optimize(problem, budget=budget, seed=seed, method=method, workers=workers, out=out_path,
                                    resume=resume, evaluator=evaluator, callback=update)
    except KeyboardInterrupt:      # outside the run's own handling (its end files): say how to resume, if it can
        if not (out_path / "history.db").is_file():
            raise
        _interrupted(netlist, out_path)


def _ended(netlist: Path, problem: Any, result: Any, out_path: Path, seconds: float, as_json: bool,
           quiet: bool) -> None:
    """Say how a run ended (JSON or tables) and exit with its code: 130 interrupted (with the resume command),
    1 not completed; an INFEASIBLE best sizing is a finished run: it says so, exit 0."""
    from .optim import StopReason
    from .rundir import result_dict

    if as_json:
        print(json_text({**result_dict(result), "out": str(out_path), "seconds": seconds}, default=float))
    else:
        show.report_run(problem, result, out_path, seconds, quiet)
    if result.stop_reason is StopReason.INTERRUPTED:
        _interrupted(netlist, out_path)
    if not result.completed:
        if quiet and not as_json:         # the one line that says why the exit code is 1
            err.print(f"error: {escape(one_line(result.message))}", highlight=False, soft_wrap=True)
        raise typer.Exit(1)


def _interrupted(netlist: Path, out_path: Path) -> NoReturn:
    say_interrupted(f"interrupted: resume with  zoaf optimize {as_text(str(netlist))} --resume "
                    f"{as_text(str(out_path))}")


@contextmanager
def _progress(show: bool, budget: int) -> Iterator[Any]:
    if not show:
        yield None
        return
    cols = [TextColumn("[bold]{task.fields[phase]:<10}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("best {task.fields[best]}"), TextColumn("{task.fields[feasible]}"),
            TextColumn("{task.fields[rate]} sim/s"), TimeElapsedColumn()]
    with Progress(*cols, console=err, transient=False) as bar:
        task = bar.add_task("optimize", total=budget, phase="", best="—", feasible="", rate="—")
        t0 = time.perf_counter()

        def update(result: Any) -> None:
            recs = result.history
            rate = result.nfev / max(time.perf_counter() - t0, 1e-9)
            bar.update(task, completed=result.nfev, phase=recs[-1].phase if recs else "",
                       best="—" if not math.isfinite(result.fun) else f"{result.fun:.5g}",
                       feasible={True: "[green]feasible", False: "[red]infeasible", None: ""}[result.feasible],
                       rate=f"{rate:.0f}")
        yield update


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
    import warnings

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

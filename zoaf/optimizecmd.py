"""``zoaf optimize``, registered on :data:`zoaf.cli.app` (imported by it after its shared options and error
handling, before the other modules' commands, so that ``zoaf --help`` lists it where it always stood): a resume's
defaults read from its history, the run in its locked directory with its progress bar, and how it ended."""
from __future__ import annotations

import math
import os
import secrets
import shlex
import time
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Iterator, NoReturn, Optional

import click
import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from . import registry, show
from .circuit import FOM_OBJECTIVE, X0_CHOICES
from .cli import JsonOpt, NetlistArg, ShellOpt, SpecOpt, TimeoutOpt, _dir_option, _errors, _problem, app, one_value, \
    notes_said, say_interrupted
from .errors import DEFAULT_TIMEOUT, InputError
from .outfile import json_text
from .show import as_text, err, one_line
from .units import clip_path

if TYPE_CHECKING:
    from .history import RunMeta

#: ``zoaf optimize``'s exit code for a finished run in which no sizing met every constraint (1: the run failed,
#: 2: bad input).
INFEASIBLE_EXIT = 3


def _resume_defaults(run_dir: Path) -> RunMeta:
    from .history import History

    from .report import MANIFEST

    db = run_dir / "history.db"
    if run_dir.is_file():           # --resume RUN/history.db said "RUN/history.db: ... (no history.db)"
        hint = f": give the folder that holds it (--resume {run_dir.parent})" if run_dir.name == db.name else ""
        raise InputError(f"{run_dir}: a file, not a run directory{hint}")
    if not os.path.lexists(db) and (run_dir / MANIFEST).is_file():     # said "nothing to resume (no history.db)"
        raise InputError(f"{run_dir}: a comparison (zoaf compare), not a run: the same zoaf compare command with "
                         f"--out {run_dir} resumes it; zoaf optimize resumes one of its runs, "
                         f"{run_dir}/<objective>/<method>/seed-<k>")
    if not db.is_file():
        why = "not a regular file" if db.exists() else "nothing to resume (no history.db)"
        raise InputError(f"{db if db.exists() else run_dir}: {why}")
    with History(db, read=True) as h:
        meta = h.run_meta()
        if meta is None:
            raise InputError(f"{db}: no run metadata: nothing to resume")
        kind = _signoff_kind(meta)
        if kind is not None:        # was "--method: unknown method 'montecarlo'", or "a run of 'a Python problem'"
            raise InputError(f"{db}: the simulations of zoaf {kind}, not an optimization run: nothing for zoaf "
                             f"optimize to resume; give the run's own directory (zoaf {kind} RUN continues these)")
        if "netlist_sha256" not in meta.problem:    # zoaf.minimize's, say: its keys were a KeyError traceback here
            raise InputError(f"{db}: a run of {meta.problem.get('name', 'a Python problem')!r}, not of a netlist: "
                             f"resume it from Python (zoaf.optimize(problem, out=..., resume=True))")
        h.check_resumable()          # in this command's words: the run checks it again in the library's
    return meta


def _another_deck(run_dir: Path, meta: RunMeta, netlist: Path, error: InputError) -> InputError:
    """``error``, the run's spec refused for ``netlist``, said as what it is when the run was made from another
    netlist ("mc.toml: montecarlo.normal: 'mc_r' is not a .param of good.cir" named neither the run nor its deck) or
    with a Python fom (its objective refused as the spec's "unknown objective 'custom'")."""
    then = meta.problem.get("netlist")
    if meta.problem.get("objective") == FOM_OBJECTIVE and "unknown objective" in str(error):   # said of the spec
        return InputError(f"{run_dir}/history.db: a run of a Python fom (CircuitProblem(fom=...)), not of an "
                          "objective of the spec: resume it in Python (zoaf.optimize(problem, out=..., resume=True))")
    if not isinstance(then, str) or Path(then).resolve() == Path(netlist).resolve():
        return error
    return InputError(f"{run_dir}/history.db: a run of {clip_path(then)}, not of {netlist}: resume it with its own "
                      f"netlist (this one: {error})")


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
    objective: Annotated[Optional[list[str]], typer.Option(     # a list: a second -o replaced the first unsaid
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

        objective = one_value("--objective", objective, "a run optimizes one objective (zoaf compare takes several)")
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
            if method == meta.method:     # a received history's method was refused as "--method: ...", never given
                _method(method, f"{resume_path / 'history.db'}: method")
            if out_path is not None and out_path.resolve() != resume_path.resolve():
                raise InputError(f"--out {out_path}: a resumed run stays in its directory (--resume {resume_path}); "
                                 f"give one of the two")
            out_path = resume_path
        budget, method, x0 = budget or 400, _method(method), "netlist" if x0 is None else x0   # --x0 '' is no start
        seed = seed if seed is not None else secrets.randbelow(2**31)
        try:
            problem = _problem(netlist, spec, objective, allow_shell, timeout, x0, corners=True)
        except InputError as e:
            raise (e if resume_path is None else _another_deck(resume_path, meta, netlist, e)) from None
        if resume_path is not None:   # here, before workers and the progress bar start
            check_resume(resume_path / "history.db", meta, run_metadata(problem, method, budget, seed, {}))
        if out_path is None:
            out_path = Path("runs") / f"{netlist.stem}-{datetime.now():%Y%m%d-%H%M%S}"
        t0 = time.perf_counter()
        with notes_said(quiet):
            result = _run(netlist, problem, out_path, resume=resume_path is not None, progress=not (quiet or as_json),
                          budget=budget, seed=seed, method=method, workers=workers, timeout=timeout, dask=dask)
        _ended(netlist, problem, result, out_path, time.perf_counter() - t0, as_json, quiet)


def _method(method: str | None, where: str = "--method") -> str:
    """The run's method (``zoaf`` by default; ``--method ''`` is no method), refused by its option's name (or the
    history's ``where``) before the progress bar starts."""
    method = "zoaf" if method is None else method
    try:
        registry.available(method)
    except InputError as e:
        raise InputError(f"{where}: {e}") from None
    return method


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
    1 not completed, 3 finished INFEASIBLE (no sizing met every constraint: exit 0 said a script's run succeeded,
    and ``-q`` said nothing at all)."""
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
    if result.feasible is False:
        if quiet and not as_json:         # the one line that says why the exit code is 3
            err.print(f"INFEASIBLE: {escape(one_line(result.message))} (the least violation: FoM {result.fun:.6g}; "
                      f"run directory {as_text(str(out_path))})", highlight=False, soft_wrap=True)
        raise typer.Exit(INFEASIBLE_EXIT)


def _interrupted(netlist: Path, out_path: Path) -> NoReturn:
    """The command that resumes, quoted for the shell (``my amp.cir`` was said as two words, as compare's is not)."""
    say_interrupted(f"interrupted: resume with  zoaf optimize {as_text(shlex.quote(str(netlist)))} --resume "
                    f"{as_text(shlex.quote(str(out_path)))}")


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

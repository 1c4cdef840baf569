"""The sign-off commands ``zoaf corners``, ``zoaf yield`` and ``zoaf sensitivity``, registered on ``zoaf.cli.app``
(imported by it last, so the shared options and error handling are defined by then)."""
from __future__ import annotations

import os
import sqlite3
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Iterator, Optional

import typer

from ..cli import (GIVEN_PATH, JsonOpt, SpecOpt, TimeoutOpt, _check_timeout, _dir_option, _errors, _problem, app,
                   notes_said, one_value, say_interrupted)
from ..errors import DEFAULT_TIMEOUT, InputError, ZoafError
from ..history import History
from ..outfile import json_text
from ..run import check_workers
from .yieldrun import MAX_SAMPLES
from ..show import as_text, note_deck, out

if TYPE_CHECKING:
    from ..circuit import CircuitProblem
    from .corners import Corner
    from .rundir import RunDir

#: The options ``zoaf corners`` and ``zoaf yield`` share: what to sign off, whose constraints, where to simulate.
TargetArg = Annotated[Path, typer.Argument(help="A run directory (its best sizing) or a netlist (as it is).",
                                           show_default=False, click_type=GIVEN_PATH)]
ObjectiveOpt = Annotated[Optional[list[str]], typer.Option(     # a list: a second -o replaced the first unsaid
    "--objective", "-o", help="Whose constraints are the spec (netlist).")]
WorkersOpt = Annotated[int, typer.Option("--workers", "-j", help="Parallel simulations.", min=1)]
DaskOpt = Annotated[Optional[str], typer.Option("--dask", help="Dask scheduler address, or 'local'.")]
#: As ``optimize``'s and ``compare``'s: no tables, nor the notes on how ``ngspice -b`` reads a deck (``notes_said``).
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No tables.")]


#: The files of a run directory that a sign-off command may be given in its place.
_RUN_FILES = ("history.db", "result.json", "trace.json")


def _refuse_run_file(target: Path) -> None:
    """A run's own file given for its directory: ``corners RUN/history.db`` read it as a netlist ("RUN/history.toml:
    spec file not found"), ``sensitivity RUN/history.db`` said "not a finished run directory (no history.db)"."""
    if target.name in _RUN_FILES and target.is_file():
        raise InputError(f"{target}: a file of a run directory, not the run: give the directory "
                         f"({target.parent})")


def _load_run(path: Path, spec: Optional[Path], timeout: float) -> RunDir:
    """The run in ``path``, its deck's notes printed (:func:`zoaf.show.note_deck`) before anything simulates it, as
    for a netlist given (``_problem``): a received run's deck reads outside its folder all the same."""
    from .rundir import load_run

    _refuse_run_file(path)
    run = load_run(path, spec, timeout)
    note_deck(run.problem)
    return run


def _signoff_target(target: Path, spec: Optional[Path], objective: Optional[str], timeout: float, workers: int,
                    dask: Optional[str]) -> tuple[CircuitProblem, dict[str, float], RunDir | None]:
    """A run directory (its problem, best sizing and the run) or a netlist (its own sizing, no run), simulated within
    ``timeout``; the options both sign-off commands share are checked first, so a bad one costs no deck load."""
    check_workers(workers, dask, "--workers")
    _check_timeout(timeout)
    _refuse_run_file(target)
    if target.is_dir():
        run = _load_run(target, spec, timeout)
        judged = run.problem.objective.name
        if objective is not None and objective.lower() != judged:   # was ignored: the run's objective judged
            raise InputError(f"--objective {objective}: {target} is a run of objective {judged!r}, which sign-off "
                             "judges; give the netlist to judge a sizing against another objective")
        return run.problem, run.params, run
    problem = _problem(target, spec, objective, timeout=timeout)
    return problem, problem.default_params(), None


#: The greatest ``--seed`` of a yield: its folder is named by it (300 digits were "File name too long", said of
#: the folder, not of the option).
MAX_SEED = 2**64 - 1


def _yield_folder(target: Path, run: RunDir | None, corner: Corner | None, seed: int) -> Path:
    """Where ``zoaf yield`` writes without ``--out``: ``RUN/yield`` (``RUN/yield-seed<S>`` for a seed other than 0:
    ``--seed 5`` after a first yield was refused, "holds another run (its seed differs)"; seed 0 keeps the name of
    the samples recorded before), or ``runs/<stem>-yield-seed<S>`` for a netlist; at a corner ``yield-<corner>``,
    named as the samples are recorded (:meth:`CornerSet.merged`), so that two names of one condition (``hot``
    repeating ``85c``) write one folder, and a nominal and a corner yield never share one (the netlist's did)."""
    at = "" if corner is None else f"-{corner.name}"
    if run is not None:
        return run.folder(f"yield{at}" + (f"-seed{seed}" if seed else ""))
    return Path("runs") / f"{target.stem}-yield{at}-seed{seed}"


@contextmanager
def _kept_on_ctrl_c(folder: Path | None) -> Iterator[None]:
    """Ctrl-C (or SIGTERM) amid a yield, a sensitivity or a run's corner check: say how many simulations
    ``folder``'s histories (``history.db``, or its sub-folders') keep and that the same command replays them; it
    said only "interrupted", and a designer ran it anew elsewhere, or thought them lost. None: nothing is kept."""
    try:
        yield
    except KeyboardInterrupt:
        if folder is None:
            raise
        kept = 0
        for db in [folder / "history.db", *sorted(folder.glob("*/history.db"))]:
            try:
                with History(db, read=True) as h:
                    kept += len(h)
            except (ZoafError, sqlite3.Error, OSError):
                continue                    # none there (yet), or not one to count: nothing said of it
        if not kept:
            raise
        say_interrupted(f"interrupted: {kept} simulation{'s' * (kept != 1)} kept in {as_text(str(folder))}; the "
                        "same command again replays them and simulates only the rest")


@app.command(name="yield")
def yield_(
    target: TargetArg,
    samples: Annotated[int, typer.Option("--samples", "-n", help="Monte Carlo samples.", min=1,
                                               max=MAX_SAMPLES)] = 200,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the draws (same seed: same samples).", min=0,
                                      max=MAX_SEED)] = 0,
    corner: Annotated[Optional[list[str]], typer.Option(     # a list: a second --corner replaced the first unsaid
        "--corner", help="A corner of the spec's \\[corners] table.")] = None,
    out_dir: Annotated[Optional[str], typer.Option("--out", help="Yield directory (default RUN_DIR/yield[-CORNER]"
                                                   "[-seedS], a netlist's runs/STEM-yield[-CORNER]-seedS).")] = None,
    spec: SpecOpt = None,
    objective: ObjectiveOpt = None,
    workers: WorkersOpt = os.cpu_count() or 1,
    dask: DaskOpt = None,
    timeout: TimeoutOpt = DEFAULT_TIMEOUT,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Monte Carlo yield of a run's best sizing (or a netlist's) against its spec, with a 95% interval."""
    from .show import yield_table
    from .yieldrun import run_yield

    with _errors():
        objective = one_value("--objective", objective, "a yield judges one objective's constraints")
        corner = one_value("--corner", corner, "a yield is of one corner (zoaf corners takes several)")
        chosen_out = _dir_option("--out", out_dir)          # an empty one would be the working directory
        problem, sizing, run = _signoff_target(target, spec, objective, timeout, workers, dask)
        chosen = None
        if corner is not None:
            if problem.spec.corners is None:
                raise InputError(f"--corner {corner}: {problem.spec.path} has no [corners] table")
            chosen = problem.spec.corners.select([corner], "--corner")[0]
            if run is not None:
                run.warn_corners([chosen])
        merged = chosen and problem.spec.corners.merged(chosen)
        out_path = chosen_out or _yield_folder(target, run, merged, seed)
        with _kept_on_ctrl_c(out_path), notes_said(quiet):
            result = run_yield(problem, sizing, out_path, samples=samples, seed=seed, corner=chosen,
                               workers=workers, dask=dask)
        if as_json:
            print(json_text({**result.as_json(), "out": str(result.out)}, default=float))
        elif not quiet:
            yield_table(out, result, problem.spec.unit_of)


@app.command(name="corners")
def corners_(
    target: TargetArg,
    corner: Annotated[Optional[list[str]], typer.Option(
        "--corner", help="A corner of the spec's \\[corners] table (repeat; default: the objective's, else all).")
    ] = None,
    spec: SpecOpt = None,
    objective: ObjectiveOpt = None,
    workers: WorkersOpt = os.cpu_count() or 1,
    dask: DaskOpt = None,
    timeout: TimeoutOpt = DEFAULT_TIMEOUT,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """A sizing at every PVT corner: each corner's measures and pass/fail, the worst corner of each spec."""
    from .cornercheck import check_corners, record_folder
    from .cornerrun import CornerSims
    from .show import corner_check_table

    with _errors():
        objective = one_value("--objective", objective, "corners judge one objective's constraints")
        problem, sizing, run = _signoff_target(target, spec, objective, timeout, workers, dask)
        table = problem.spec.corners
        if table is None:
            raise InputError(f"{problem.spec.path}: no [corners] table")
        wanted = corner or list(problem.objective.corners) or "all"
        chosen = table.select(wanted, "--corner" if corner else f"objectives.{problem.objective.name}.corners")
        if run is not None:
            run.warn_corners(chosen)
        with notes_said(quiet):
            sims = CornerSims(problem, chosen)
            record = None if run is None else record_folder(run, sims, sizing)
            with _kept_on_ctrl_c(record):
                result = check_corners(problem, sims, sizing, workers=workers, dask=dask, record=record)
        if as_json:
            print(json_text({**result.as_json(), "sizing": sizing}, default=float))
        elif not quiet:
            what = "the netlist's sizing" if run is None else "the run's best sizing"
            corner_check_table(out, result, problem.spec, problem.objective, what)
        no_verdict = result.unmeasured(problem.needed, str(target))     # said after what was measured
        if no_verdict is not None:
            raise no_verdict


@app.command()
def sensitivity(
    run_dir: Annotated[Path, typer.Argument(help="A run directory.", show_default=False, click_type=GIVEN_PATH)],
    corner: Annotated[Optional[list[str]], typer.Option(     # a list: a second --corner replaced the first unsaid
        "--corner", help="Corner run: the corner (default: the best sizing's worst).")] = None,
    spec: SpecOpt = None,
    workers: Annotated[int, typer.Option(
        "--workers", "-j", help="Parallel top-up simulations.", min=1)] = os.cpu_count() or 1,
    timeout: TimeoutOpt = DEFAULT_TIMEOUT,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Normalized sensitivity of every measure to every parameter at a run's best sizing (extrapolated differences)."""
    from .rundir import worst_corner
    from .sensrun import sensitivity as run_sensitivity, write_outputs
    from .show import sensitivity_table

    with _errors():
        corner = one_value("--corner", corner, "a sensitivity is of one corner (zoaf corners takes several)")
        check_workers(workers, option="--workers")
        _check_timeout(timeout)
        if run_dir.is_file() and run_dir.name not in _RUN_FILES:    # was "not a finished run directory (no history.db)"
            raise InputError(f"{run_dir}: a file, not a run directory: zoaf sensitivity reads a run's best sizing and "
                             "simulations (the directory of zoaf optimize --out DIR)")
        run = _load_run(run_dir, spec, timeout)
        k, chosen = None, None
        if run.corners:
            chosen = None if corner is None else run.problem.spec.corners.select([corner], "--corner")[0]
            k = worst_corner(run) if chosen is None else run.judged(chosen)
            if k is None:                       # a spec corner the run's objective did not judge
                raise InputError(f"--corner {corner}: the run judged only {', '.join(c.name for c in run.corners)}; "
                                 "it has no simulations at that corner")
            run.check_corner(run.corners[k].name, "zoaf sensitivity")
        elif corner is not None:
            raise InputError(f"--corner {corner}: {run_dir} is not a corner run")
        at = None if k is None else (chosen or run.corners[k]).name    # a merged corner named as asked
        with _kept_on_ctrl_c(run_dir / "sensitivity"), notes_said(quiet):
            s = replace(run_sensitivity(run, corner=k, workers=workers), corner=at)
        write_outputs(s, run.folder("sensitivity"), f"{run.problem.name}: normalized sensitivities")
        if as_json:
            print(json_text(s.as_json()))
        elif not quiet:
            obj = run.problem.objective
            sensitivity_table(out, s, [obj.measure, *(c.measure for c in obj.constraints)], corner=at)
            out.print(f"written: {as_text(str(run_dir / 'sensitivity'))}  (sensitivity.json, heatmap.png)",
                      highlight=False)

"""``zoaf compare`` and ``zoaf report``, registered on ``zoaf.cli.app`` (imported by it after its shared options and
error handling): the comparison grid with its progress bars, and the terminal summary of a comparison directory."""
from __future__ import annotations

import math
import os
import shlex
import sys
import warnings
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Callable, Iterator, Optional

import typer
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from . import registry
from .cli import (GIVEN_PATH, NetlistArg, ShellOpt, SpecOpt, TimeoutOpt, _check_timeout, _dir_option, _errors, app,
                  say_interrupted)
from .errors import DEFAULT_TIMEOUT, InputError, ZoafWarning
from .show import as_text, err, one_line, out


def _split(option: str, values: Optional[list[str]], what: str) -> list[str] | None:
    """Repeatable options that also take comma lists: ``-o a -o b,c`` -> [a, b, c]; None when not given. An empty
    name is refused (``-o ""`` was dropped, and so ran every objective): ``what`` says what to name instead."""
    if values is None:
        return None
    names = [v.strip() for item in values for v in item.split(",")]
    if not all(names):
        raise InputError(f"{option} {','.join(values)!r}: an empty name; name {what}, or leave {option} out")
    return names


@contextmanager
def _compare_progress(show: bool, seeds: int, budget: int) -> Iterator[Any]:
    """One bar per (objective, method): simulations over its seeds, runs done, best final FoM so far."""
    if not show:
        yield None
        return
    cols = [TextColumn("[bold]{task.description:<22}"), BarColumn(), TextColumn("runs {task.fields[runs]}"),
            TextColumn("best {task.fields[best]}"), TimeElapsedColumn()]
    bar = Progress(*cols, console=err, transient=False)   # started by the plan: a refusal stays one line
    try:
        overall = bar.add_task("all runs", total=1, runs="", best="")
        rows: dict[tuple[str, str], Any] = {}
        sims: dict[tuple[str, str, int], int] = {}
        done: dict[tuple[str, str], list[float]] = {}
        state = {"total": 0, "finished": 0}

        def update(ev: Any) -> None:
            if ev.kind == "plan":
                bar.start()
                state["total"] = ev.total
                bar.update(overall, total=ev.total, runs=f"0/{ev.total}")
                return
            key = (ev.objective, ev.method)
            if key not in rows:
                rows[key] = bar.add_task(f"{ev.objective}/{ev.method}", total=seeds * budget, runs=f"0/{seeds}",
                                         best="—")
            sims[(*key, ev.seed)] = budget if ev.kind in ("done", "reused", "failed") else ev.nfev
            fields: dict[str, Any] = {}
            if ev.kind in ("done", "reused", "failed"):
                state["finished"] += 1
                done.setdefault(key, []).append(ev.best)
                fields["runs"] = f"{len(done[key])}/{seeds}" + (" [red]failed" if ev.kind == "failed" else "")
                finite = [b for b in done[key] if math.isfinite(b)]
                fields["best"] = f"{min(finite):.5g}" if finite else "—"
                bar.update(overall, completed=state["finished"], runs=f"{state['finished']}/{state['total']}")
            bar.update(rows[key], completed=sum(v for k, v in sims.items() if k[:2] == key), **fields)
        yield update
    finally:
        if bar.live.is_started:
            bar.stop()


#: Columns of the terminal summary (report.md has them all).
_SUMMARY_COLUMNS = ("method", "median FoM", "best feasible objective", "feasible runs", "sims to target",
                    "x vs zoaf", "s to target", "wall / run", "overhead / sim", "p vs zoaf")


def _print_comparison(root: Path) -> None:
    from .report import COLUMNS, load_comparison, table_rows

    keep = [COLUMNS.index(c) for c in _SUMMARY_COLUMNS if c in COLUMNS]
    with warnings.catch_warnings():     # said once already, as the report was written: each came twice
        warnings.simplefilter("ignore", ZoafWarning)
        summaries = load_comparison(root)
    for s in summaries:
        unit = f" [{s.unit}]" if s.unit else ""
        t = Table(title=escape(one_line(f"{s.name}: {s.sense} {s.measure}{unit}, {s.budget} simulations, "
                                        + (f"target FoM {s.target:.5g}" if math.isfinite(s.target) else
                                           "no target FoM (no median run gave a finite one)"))),
                  title_justify="left")
        for i in keep:
            t.add_column(COLUMNS[i], justify="left" if i == 0 else "right", no_wrap=i == 0)
        for row in table_rows(s):
            t.add_row(*(escape(one_line(row[i])) for i in keep))   # names are a directory's: its sender's
        out.print(t)


def _installed_methods(quiet: bool) -> list[str]:
    """``zoaf compare``'s default: every method whose libraries are installed, saying which are left out."""
    names = registry.installed()
    left = [m for m in registry.methods() if m not in names]
    if left and not quiet:
        extras = sorted({registry.get(m).extra for m in left})
        err.print(escape(f"not compared (their libraries are not installed): {', '.join(left)}; install them "
                         f"with pip install 'zoaf[{','.join(extras)}]'"), highlight=False)
    return names


def _ended_by_ctrl_c(root: Path, update: Any) -> Callable[[Any], None]:
    """``update`` for the comparison's events, and a run that ended interrupted (Ctrl-C, SIGTERM: ``optimize`` keeps
    its rows and returns) ends the comparison: it went on to the next run, and at the end reported "no complete
    runs found", exit 2."""
    from .compareplan import run_path
    from .stats import is_complete

    def progress(ev: Any) -> None:
        if update is not None:
            update(ev)
        if ev.kind == "done" and not is_complete(run_path(root, ev.objective, ev.method, ev.seed)):
            raise KeyboardInterrupt
    return progress


@app.command()
def compare(
    netlist: NetlistArg,
    spec: SpecOpt = None,
    objective: Annotated[Optional[list[str]], typer.Option(
        "--objective", "-o", help="Objective(s) of the spec, repeat or comma list (default: all).")] = None,
    methods: Annotated[Optional[list[str]], typer.Option(      # a list: a second --methods dropped the first
        "--methods", "-m", help="Methods, repeat or comma list (default: every installed one).")] = None,
    seeds: Annotated[int, typer.Option("--seeds", help="Runs per method: seeds 0..N-1.", min=1)] = 10,
    budget: Annotated[int, typer.Option("--budget", "-b", help="Simulations per run.", min=1)] = 300,
    out_dir: Annotated[Optional[str], typer.Option(
        "--out", help="Comparison directory (default runs/compare-<stem>-<time>); existing runs are reused.")] = None,
    jobs: Annotated[int, typer.Option(
        "--jobs", "-j", help="Runs in parallel, one process each (default: cores).", min=1)] = os.cpu_count() or 1,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars or tables.")] = False,
    allow_shell: ShellOpt = False,
    timeout: TimeoutOpt = DEFAULT_TIMEOUT,
) -> None:
    """Compare ZOAF with the baselines at equal budgets: every objective x method x seed, then report.md/.html."""
    with _errors():
        from .compare import compare as run_compare
        from .compareplan import check_seeds
        from .report import MANIFEST
        from .run import check_budget, check_workers

        _check_timeout(timeout)
        check_workers(jobs, option="--jobs")
        check_budget(budget, "--budget")
        check_seeds(seeds, "--seeds")
        root = (_dir_option("--out", out_dir)
                or Path("runs") / f"compare-{netlist.stem}-{datetime.now():%Y%m%d-%H%M%S}")
        names = _split("--methods", methods, "a method (zoaf, cma, ...)")
        for name in names or ():
            try:
                registry.available(name)         # as optimize's --method: the line names the option
            except InputError as e:
                raise InputError(f"--methods: {e}") from None
        chosen = _split("--objective", objective, "an objective of the spec")
        try:
            with _compare_progress(not quiet, seeds, budget) as update:
                run_compare(netlist, chosen, names or _installed_methods(quiet), seeds, budget, root, jobs,
                            spec=spec, allow_shell=allow_shell, timeout=timeout,
                            progress=_ended_by_ctrl_c(root, update), argv=sys.argv, quiet=quiet)
        except KeyboardInterrupt:
            if not (root / MANIFEST).is_file():       # nothing written yet: nothing to resume
                raise
            again = ["zoaf", *sys.argv[1:], *([] if out_dir is not None else ["--out", str(root)])]
            say_interrupted(f"interrupted: resume with  {escape(' '.join(map(shlex.quote, again)))}")
        if not quiet:
            _print_comparison(root)
            out.print(as_text(f"report: {root / 'report.md'}  {root / 'report.html'}"), highlight=False, soft_wrap=True)


@app.command()
def report(directory: Annotated[Path, typer.Argument(help="A `zoaf compare` directory.", show_default=False,
                                                     click_type=GIVEN_PATH)],
           quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No tables.")] = False) -> None:
    """Rewrite report.md, report.html and the plots of a comparison from its run directories."""
    with _errors():
        from .report import write_report

        md, html = write_report(directory, argv=sys.argv)
        if not quiet:
            _print_comparison(directory)
            out.print(as_text(f"report: {md}  {html}"), highlight=False, soft_wrap=True)   # named by its sender

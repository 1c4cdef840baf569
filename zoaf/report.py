"""A comparison's tables, plots and ``report.md``/``report.html`` from a ``zoaf compare`` directory.

Everything here is computed from the run directories alone (the statistics and their definitions are in
``zoaf.stats``), plus ``DIR/compare.json`` when present (the command, the objective's measure and unit,
versions).

Example:
    >>> md, html = write_report("runs/compare-two_stage_amp-20261201-120000")   # doctest: +SKIP
"""
from __future__ import annotations

import base64
import html
import math
import platform
import re
import shlex
import warnings
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any, Mapping, Sequence


from .circuitcheck import check_one_circuit, records_circuit
from .errors import InputError, ZoafWarning
from .outfile import printable, read_json, utf8, write_file
from .plots import plot_summary
from .problem import INFEASIBLE_OFFSET
from .stats import (REFERENCE, MethodStats, ObjectiveSummary, RunData, common_seeds, is_complete, load_run,
                    summarize)

#: The comparison directory's manifest (written by ``zoaf.compare``).
MANIFEST = "compare.json"


# -- formatting ----------------------------------------------------------------------------------------------
COLUMNS = ("method", "runs", "median FoM", "IQR", "best", "worst", "best feasible objective", "feasible runs",
           "sims to target", f"x vs {REFERENCE}", "s to target", "wall / run", "overhead / sim", f"p vs {REFERENCE}",
           "p (Holm)")


def _g(v: float, digits: int = 4) -> str:
    return "—" if v is None or math.isnan(v) else ("inf" if math.isinf(v) else f"{v:.{digits}g}")


def _p(v: float) -> str:
    return "—" if math.isnan(v) else f"{v:.3g}"


def _seconds(v: float) -> str:
    if math.isnan(v):
        return "—"
    return f"{v * 1e3:.3g} ms" if abs(v) < 1 else f"{v:.3g} s"


_PREFIXES = {-15: "f", -12: "p", -9: "n", -6: "µ", -3: "m", 0: "", 3: "k", 6: "M", 9: "G", 12: "T"}


def format_value(v: float, unit: str = "") -> str:
    """A measure in its unit: SI prefixes for plain SI units (``16.7 µW``, ``52.9 MHz``); plain numbers for dB,
    degrees, compound units (``m^2``, ``ppm/C``) and no unit."""
    if v is None or math.isnan(v):
        return "—"
    if not unit or not unit.isalpha() or unit in ("dB", "deg", "ppm") or not math.isfinite(v) or v == 0:
        return f"{v:.4g} {unit}".strip()
    exp = int(math.floor(math.log10(abs(v)) / 3) * 3)
    exp = min(max(exp, -15), 12)
    return f"{v / 10.0 ** exp:.4g} {_PREFIXES[exp]}{unit}"


def table_rows(s: ObjectiveSummary) -> list[list[str]]:
    """One row of strings per method, in ``COLUMNS`` order (shared by the terminal, Markdown and HTML)."""
    rows = []
    ref_sims = next((m.sims_to_target for m in s.methods if m.method == REFERENCE), math.nan)
    for m in s.methods:
        never = f">{s.budget}"
        sims = never if math.isinf(m.sims_to_target) else _g(m.sims_to_target)
        if math.isinf(m.sims_ratio) or (math.isinf(m.sims_to_target) and math.isfinite(ref_sims) and ref_sims > 0):
            ratio = f">{s.budget / ref_sims:.2g}x"
        else:
            ratio = "—" if math.isnan(m.sims_ratio) else f"{m.sims_ratio:.2g}x"
        secs = "never" if math.isinf(m.seconds_to_target) else _seconds(m.seconds_to_target)
        rows.append([m.method, runs_cell(m), _g(m.median), f"{_g(m.q1)} – {_g(m.q3)}", _g(m.best), _g(m.worst),
                     format_value(m.objective_median, s.unit), f"{m.feasible_rate:.0%}", sims, ratio, secs,
                     _seconds(m.wall), _seconds(m.overhead), _p(m.p_value), _p(m.p_holm)])
    return rows


#: What a runs cell's "(one value)" means (the report's and the benchmark summary's notes).
ONE_VALUE = ("\"(one value)\": every run ended at the same FoM: a floor that every run reached, or a method "
             "deterministic from the designer's sizing, whose runs are then one sample of its path, not many.")


def runs_cell(m: MethodStats) -> str:
    """The number of runs, marked when every run ended at the same FoM (a floor, or a method deterministic from the
    designer's sizing, which repeats one path whatever the seed: its runs are then one sample, not many)."""
    return f"{m.runs} (one value)" if m.runs > 1 and m.best == m.worst else str(m.runs)


# -- environment (footer) ------------------------------------------------------------------------------------
def versions() -> dict[str, str]:
    """Versions of zoaf, its numeric stack, the optional baselines' libraries and ngspice (without importing)."""
    from . import __version__

    found = {"zoaf": __version__, "python": platform.python_version()}
    for pkg in ("numpy", "scipy", "matplotlib", "torch", "botorch", "gpytorch", "cma", "PySpice"):
        try:
            found[pkg] = importlib_metadata.version(pkg)
        except importlib_metadata.PackageNotFoundError:
            pass
    found["ngspice"] = ngspice_version()
    return found


def ngspice_version() -> str:
    import shutil
    import subprocess

    exe = shutil.which("ngspice")
    if exe is None:
        return "not found"
    try:
        text = subprocess.run([exe, "-v"], capture_output=True, text=True, timeout=10, stdin=subprocess.DEVNULL).stdout
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    m = re.search(r"ngspice-?\s*([\w.+-]+)", text)
    return m.group(1) if m else "unknown"


def machine() -> dict[str, Any]:
    import os

    return {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count()}


def method_settings(name: str) -> dict[str, Any]:
    """A method's default settings: the fields of its config dataclass (ZOAF's ``ZOAFConfig``)."""
    from . import registry

    try:
        cls = registry.get(name)
    except Exception as e:  # noqa: BLE001 - a missing optional dependency must not stop a report
        return {"unavailable": f"{type(e).__name__}: {e}"}
    return cls.describe()


# -- the report ----------------------------------------------------------------------------------------------
def _seed_of(path: Path) -> int | None:
    m = re.fullmatch(r"seed-(\d+)", path.name)
    return int(m.group(1)) if m else None


#: What each manifest key holds (``compare.json`` may come with a directory from elsewhere).
_MANIFEST_KINDS = {"objectives": dict, "methods": list, "objectives_order": list, "versions": dict,
                   "machine": dict, "budget": int, "seeds": int}


def read_manifest(root: Path) -> dict[str, Any]:
    """``compare.json`` ({} when missing); InputError when it is not the object ``zoaf compare`` writes."""
    try:
        data = read_json(root / MANIFEST)
    except FileNotFoundError:
        return {}
    bad = "not a JSON object" if not isinstance(data, dict) else next(
        (f"{k}: not a {t.__name__}" for k, t in _MANIFEST_KINDS.items() if k in data and not isinstance(data[k], t)),
        None)
    if bad is None:             # a budget of -4 or true was reported as given ("budget: -4", ">-4" sims to target)
        bad = next((f"{k}: {data[k]!r:.40} is not a count >= 1" for k in ("budget", "seeds")
                    if k in data and (isinstance(data[k], bool) or data[k] < 1)), None)
    if bad is None and (any(not isinstance(o, dict) for o in data.get("objectives", {}).values())
                        or any(not isinstance(m, str)
                               for k in ("methods", "objectives_order") for m in data.get(k, []))):
        bad = "objectives or methods: not what zoaf writes"
    if bad:
        raise InputError(f"{root / MANIFEST}: not a zoaf comparison manifest ({bad})")
    return data


def own_folder(d: Path) -> bool:
    """True; InputError for a link: a received comparison's ``a -> ~/runs/a`` had another directory's runs read
    (their histories opened read-write, their ``-wal`` made and removed there) and reported as its own."""
    if d.is_symlink():
        raise InputError(f"{d}: is a link; a comparison directory's folders must be its own (zoaf compare makes "
                         "no link)")
    return True


def _load_finished_or_readable(path: Path, method: str, seed: int, budget: int | None) -> RunData | None:
    """A run directory's run; None, with a warning naming the file, for an unfinished run whose history cannot be
    read (an empty ``history.db`` of a run killed as it started refused the whole comparison): it is left out, as
    an unfinished run is. A finished run's files are its results, so an unreadable one is still refused."""
    try:
        return load_run(path, method, seed, budget)
    except InputError as e:
        if is_complete(path):
            raise
        db = path / "history.db"
        warnings.warn_explicit(f"{str(e).removeprefix(f'{db}: ')}; an unfinished run, left out of the report",
                               ZoafWarning, str(db), 0, module=__name__)
        return None


def _check_one_budget(runs: dict[str, list[RunData]]) -> None:
    """InputError for runs whose histories record other budgets: runs of budgets 2 and 5 were ranked against each
    other under "Budget 5 simulations", as ``zoaf compare`` refuses to make them. A run without its history records
    none (its ``nfev`` is no budget), and ``compare.json``'s is not one a run records."""
    first: tuple[int, Path] | None = None
    for run in (r for rs in runs.values() for r in rs if r.path is not None and (r.path / "history.db").exists()):
        first = first or (run.budget, run.path)
        if run.budget != first[0]:
            raise InputError(f"{run.path}: a run of budget {run.budget}, where {first[1]} has {first[0]}: a "
                             f"comparison ranks runs of one budget; move the run out, or rerun it with --budget "
                             f"{first[0]}")


def _objective_runs(od: Path, order: Mapping[str, int], budget: int | None) -> tuple[dict[str, list[RunData]], int]:
    """An objective folder's runs by method (in the manifest's order), and how many of them are incomplete."""
    runs: dict[str, list[RunData]] = {}
    incomplete = 0
    for md in sorted((d for d in od.iterdir() if d.is_dir()), key=lambda d: (order.get(d.name, 99), d.name)):
        seeds = sorted(((s, d) for d in md.iterdir() if (s := _seed_of(d)) is not None and own_folder(d) and
                        ((d / "history.db").exists() or (d / "result.json").exists())), key=lambda t: t[0])
        for seed, sd in seeds:
            run = _load_finished_or_readable(sd, md.name, seed, budget)
            incomplete += run is None or not run.complete
            if run is not None:
                runs.setdefault(md.name, []).append(run)
    return runs, incomplete


def load_comparison(root: str | Path, *, same_seeds: bool = False) -> list[ObjectiveSummary]:
    """Every objective's summary from ``root/<objective>/<method>/seed-<k>/`` run directories; with
    ``same_seeds``, on the seeds most methods have completed (:func:`zoaf.stats.common_seeds`). The runs of a
    circuit's comparison (``compare.json`` names its netlist) must record one netlist and spec."""
    root = Path(root)
    if root.name == MANIFEST and root.is_file():        # was "not a directory (a comparison's ...)", no folder named
        raise InputError(f"{root}: the manifest of a comparison, not its folder: zoaf report {root.parent}")
    if not root.is_dir():
        what = "not a directory (a comparison's, from zoaf compare --out)" if root.exists() else "no such directory"
        raise InputError(f"{root}: {what}")
    manifest = read_manifest(root)
    info = manifest.get("objectives", {})
    order = {m: i for i, m in enumerate([REFERENCE, *manifest.get("methods", [])])}
    summaries = []
    obj_dirs = sorted((d for d in root.iterdir() if d.is_dir()),
                      key=lambda d: (list(info).index(d.name) if d.name in info else len(info), d.name))
    for d in (d for od in obj_dirs for d in (od, *od.iterdir()) if d.is_dir()):
        if printable(d.name) != d.name:     # names may come from a directory made elsewhere
            raise InputError(f"{str(d)!r}: a folder name with a control or invisible format character (zoaf would "
                             "print it)")
        if utf8(d.name) != d.name:          # a figure's title refused it (a TypeError traceback)
            raise InputError(f"{utf8(str(d))}: a folder name that is not UTF-8 text (zoaf compare writes none); "
                             f"rename it")
        own_folder(d)
    loaded = [(od.name, *_objective_runs(od, order, manifest.get("budget"))) for od in obj_dirs]
    paths = [r.path for _, runs, _ in loaded for rs in runs.values() for r in rs if r.path is not None]
    if "netlist" in manifest or any(map(records_circuit, paths)):   # a circuit's comparison, whatever compare.json
        check_one_circuit(paths)    # says; refused, as a run of another budget is (not left out)
    for name, runs, incomplete in loaded:
        if not runs:
            continue
        _check_one_budget(runs)
        short: dict[str, int] = {}
        every = runs
        if same_seeds:
            runs, short = common_seeds(runs)
            if not runs:
                continue
        o = info.get(name, {})
        s = summarize(name, runs, measure=str(o.get("measure", "")), unit=str(o.get("unit", "")),
                      sense=str(o.get("sense", "")))
        s.incomplete, s.short = incomplete, short
        s.short_runs = {m: [r for r in every[m] if r.complete] for m in short}
        if s.methods:
            summaries.append(s)
    if not summaries and (root / "history.db").is_file():     # said only what a comparison's folder holds
        raise InputError(f"{root}: a run (zoaf optimize), not a comparison: its own report is result.json, best.cir "
                         "and convergence.png; zoaf report reads the folder of a zoaf compare --out")
    whole = next((up for up in (root.parent, root.parent.parent) if (up / MANIFEST).is_file()), None)
    if not summaries and whole is not None:     # an objective's or a method's folder: "no complete runs found"
        raise InputError(f"{root}: a folder inside the comparison {whole}, not a comparison: zoaf report {whole}")
    if not summaries:
        raise InputError(f"{root}: no complete runs found (expected <objective>/<method>/seed-<k>/result.json)")
    return summaries


def _md(text: Any) -> str:
    """Text that may come from a directory made elsewhere (names, units, versions) as Markdown text: one line,
    no control characters, and no HTML, code span, table cell, link or image it could open (a unit
    ``![x](https://host/x.png)`` was an image a viewer fetched from the network)."""
    text = " ".join(printable(str(text)).split())
    return re.sub(r"([\\`<&|\[\]])", r"\\\1", text)


def _code(text: Any) -> str:
    """``text`` as one Markdown code span, fenced by more back-quotes than any run in it."""
    text = " ".join(printable(str(text)).split()).replace("|", "\\|")
    fence = "`" * (max((len(r) for r in re.findall(r"`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _html(text: Any) -> str:
    """Text that may come from a directory made elsewhere as HTML text: escaped, its control and invisible format
    characters shown (a bidirectional override in a unit reordered the page's line as a browser showed it)."""
    return html.escape(printable(str(text)))


def _target(name: str) -> str:
    """A file name as a Markdown link's target: in angle brackets, after ``./``, unless it is a plain name (the
    figure of an objective folder ``https:host`` was ``https:host-final.png``, which a browser fetches)."""
    return name if re.fullmatch(r"[\w.+-]+", name) else f"<./{_md(name)}>"


def _md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(_md(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def _objective_caption(s: ObjectiveSummary, md: bool = True) -> str:
    """The objective's caption: Markdown (its names escaped), or plain text for HTML to escape."""
    text, code = (_md, _code) if md else (str, lambda v: f"`{v}`")
    goal = f"{text(s.sense)} {code(s.measure)}" + (f" [{text(s.unit)}]" if s.unit else "") if s.measure else "objective"
    return (f"Goal: {goal}. Budget {s.budget} simulations; target FoM = best baseline median = {_g(s.target, 6)}. "
            f"FoM: lower is better; feasible FoMs are the signed-log objective, infeasible ones "
            f"{INFEASIBLE_OFFSET:g} + violation."
            + (f" {s.incomplete} incomplete run(s) left out." if s.incomplete else ""))


_NOTES = ("**Definitions.** *median FoM / IQR / best / worst*: final best FoM over runs. *best feasible objective*: "
          "median over runs that found a feasible point of the raw objective of their best feasible point. "
          "*sims to target*: median over runs of the first charged simulation at which the best-so-far FoM "
          "reached the target (`>budget`: most runs never did); *x vs zoaf*: that median over ZOAF's (> 1: ZOAF "
          "needs fewer). *s to target*: the same in wall seconds. *overhead / sim*: (wall - simulator seconds) / "
          "simulations. *p*: two-sided Mann-Whitney U test of ZOAF's final FoMs against the method's. *runs* "
          + ONE_VALUE)


def user_command(argv: Sequence[str]) -> str:
    """A command line as a user types it: the program by its name (``zoaf``, not its installed path), and
    paths inside the working directory relative to it, so that a committed report can be rerun as written."""
    cwd = Path.cwd()

    def word(i: int, a: str) -> str:
        p = Path(a)
        if i == 0 and (p.name == "zoaf" or p.parts[-2:] == ("zoaf", "__main__.py")):     # python -m zoaf's too
            return "zoaf"
        if p.is_absolute() and p.is_relative_to(cwd):
            return str(p.relative_to(cwd))
        return shlex.quote(a)
    return " ".join(word(i, a) for i, a in enumerate(argv))


def _footer(root: Path, manifest: dict[str, Any], methods: Sequence[str], argv: Sequence[str] | None) -> dict[str, Any]:
    import sys

    return {
        "command": manifest.get("command") or "(not recorded)",
        "report command": user_command(argv if argv is not None else sys.argv),
        "netlist": manifest.get("netlist", "—"), "spec": manifest.get("spec", "—"),
        "budget": manifest.get("budget", "—"), "seeds": manifest.get("seeds", "—"),
        "jobs": manifest.get("jobs", "—"),
        "versions": manifest.get("versions") or versions(),
        "machine": manifest.get("machine") or machine(),
        "settings": {m: method_settings(m) for m in methods},
    }


def _img64(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def write_report(root: str | Path, argv: Sequence[str] | None = None) -> tuple[Path, Path]:
    """(Re)write ``report.md``, ``report.html`` (PNGs embedded) and the PNGs of a comparison directory."""
    root = Path(root)
    summaries = load_comparison(root)
    manifest = read_manifest(root)
    methods = list(dict.fromkeys(m.method for s in summaries for m in s.methods))
    foot = _footer(root, manifest, methods, argv)
    title = f"zoaf comparison: {Path(str(foot['netlist'])).name if foot['netlist'] != '—' else root.name}"
    md = [f"# {_md(title)}", ""]
    body = [f"<h1>{_html(title)}</h1>"]
    for s in summaries:
        pngs = plot_summary(s, root)
        rows = table_rows(s)
        md += [f"## Objective {_code(s.name)}", "", _objective_caption(s), "", _md_table(COLUMNS, rows), ""]
        md += [f"![{_md(p.stem)}]({_target(p.name)})" for p in pngs] + [""]
        caption = _html(_objective_caption(s, md=False))
        body.append(f"<h2>Objective <code>{_html(s.name)}</code></h2><p>{caption}</p>")
        body.append("<table><thead><tr>" + "".join(f"<th>{_html(c)}</th>" for c in COLUMNS) + "</tr></thead>"
                    "<tbody>" + "".join("<tr>" + "".join(f"<td>{_html(c)}</td>" for c in r) + "</tr>"
                                         for r in rows) + "</tbody></table>")
        body += [f'<figure><img alt="{_html(p.stem)}" src="{_img64(p)}"></figure>' for p in pngs]
    md += [_NOTES, "", "## How this was made", ""]
    body.append(f"<p class=notes>{html.escape(_NOTES).replace('**Definitions.**', '<b>Definitions.</b>')}</p>"
                "<h2>How this was made</h2><ul>")
    for key in ("command", "report command", "netlist", "spec", "budget", "seeds", "jobs"):
        val = foot[key]
        md.append(f"- **{key}**: {_code(val)}")
        body.append(f"<li><b>{_html(key)}</b>: <code>{_html(val)}</code></li>")
    for key in ("versions", "machine"):
        text = ", ".join(f"{k} {v}" for k, v in foot[key].items())
        md.append(f"- **{key}**: {_md(text)}")
        body.append(f"<li><b>{key}</b>: {_html(text)}</li>")
    md += ["", "### Method settings (documented defaults)", ""]
    body.append("</ul><h3>Method settings (documented defaults)</h3><ul>")
    for m, settings in foot["settings"].items():
        text = "; ".join(f"{k} = {v}" for k, v in settings.items()) or "—"
        md.append(f"- **{_md(m)}**: {_md(text)}")
        body.append(f"<li><b>{_html(m)}</b>: {_html(text)}</li>")
    body.append("</ul>")
    md_path, html_path = root / "report.md", root / "report.html"
    write_file(md_path, "\n".join(md) + "\n")        # never through a link the directory holds
    write_file(html_path, _HTML.format(title=_html(title), body="\n".join(body)))
    return md_path, html_path


_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 1200px; margin: 2em auto; padding: 0 1em; color: #222; }}
table {{ border-collapse: collapse; font-size: 0.85em; margin: 1em 0; }}
th, td {{ border: 1px solid #ccc; padding: 0.3em 0.5em; text-align: right; white-space: nowrap; }}
th {{ background: #f3f3f3; }} td:first-child {{ text-align: left; font-weight: 600; }}
figure {{ margin: 1em 0; }} img {{ max-width: 100%; }} .notes {{ font-size: 0.85em; color: #444; }}
code {{ background: #f6f6f6; padding: 0 0.2em; }}
</style></head>
<body>
{body}
</body></html>
"""

"""Run and comparison directories from someone else: `zoaf report`, `--resume` and the sign-off commands read and
write inside a directory whose entries its sender chose.

A link in it (``report.md -> ~/.bashrc``, ``.lock``, ``history.db`` to another program's database) must never
have zoaf write where it points; a FIFO or ``/dev/zero`` in it must be one error line, not a hang; a file that
is not what zoaf writes must be one line naming it, exit 2, never a traceback; names in it must not reach the
Markdown report as HTML nor the terminal as escape sequences. The comparisons are a sphere function's (no
ngspice), so each test takes a second or two.
"""
from __future__ import annotations

import json
import os
import re
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import zoaf
from zoaf.cli import app
from zoaf.compare import run_grid
from zoaf.function import FunctionProblem

#: A line of shell that a report written through a link into ~/.bashrc would run at the next login.
SHELL_LINE = "touch PWNED"
#: HTML a Markdown viewer would run.
HTML = "<img src=x onerror=alert(1)>"


def sphere(objective: str) -> FunctionProblem:
    return FunctionProblem.from_bounds(lambda x: float(np.sum(np.asarray(x) ** 2)), [(-1, 1)] * 2)


@pytest.fixture
def grid(tmp_path: Path) -> Path:
    """A finished comparison directory: objective ``a``, methods zoaf and random, one seed each."""
    root = tmp_path / "cmp"
    assert run_grid(sphere, root, objectives=["a"], methods=["zoaf", "random"], seeds=1, budget=8) == []
    (root / "compare.json").write_text(json.dumps({   # as `zoaf compare` writes it
        "command": "zoaf compare sphere", "budget": 8, "seeds": 1, "methods": ["zoaf", "random"],
        "objectives": {"a": {"measure": "f", "sense": "minimize", "unit": "V", "constraints": []}}}))
    return root


def one_error(r) -> str:
    """The single error line of a refused command (exit 2, no traceback)."""
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.exit_code == 2 and len(lines) == 1 and lines[0].startswith("error: "), (r.exit_code, r.output)
    assert r.exception is None or isinstance(r.exception, SystemExit), r.exception
    return lines[0]


def victims(tmp_path: Path, *names: str) -> dict[Path, str]:
    made = {}
    for name in names:
        (tmp_path / name).write_text(f"precious {name}\n")
        made[tmp_path / name] = f"precious {name}\n"
    return made


def test_report_replaces_links_in_the_directory_and_never_writes_through_them(grid: Path, tmp_path: Path):
    targets = victims(tmp_path, "bashrc", "profile", "png")
    objective = f"a\n{SHELL_LINE}\n"                        # a line of its own in report.md
    (grid / "a").rename(grid / objective)
    for name, target in (("report.md", "bashrc"), ("report.html", "profile"), (f"{objective}-final.png", "png")):
        (grid / name).unlink(missing_ok=True)
        (grid / name).symlink_to(tmp_path / target)
    r = CliRunner().invoke(app, ["report", str(grid), "-q"])
    assert r.exit_code == 0, r.output
    assert {p: p.read_text() for p in targets} == targets
    assert not any(p.is_symlink() for p in grid.iterdir())
    assert f"\n{SHELL_LINE}\n" not in (grid / "report.md").read_text()


def test_a_fifo_or_a_device_in_a_comparison_is_one_line_not_a_hang(grid: Path):
    run = grid / "a" / "zoaf" / "seed-0"
    (run / "history.db").unlink()
    (run / "result.json").unlink()
    os.mkfifo(run / "result.json")
    own = "a run directory's files must be its own"
    assert f"result.json: not a regular file; {own}" in one_error(CliRunner().invoke(app, ["report", str(grid)]))
    (run / "result.json").unlink()
    (run / "result.json").symlink_to("/dev/zero")
    assert f"result.json: is a link; {own}" in one_error(CliRunner().invoke(app, ["report", str(grid)]))
    (grid / "compare.json").unlink()
    os.mkfifo(grid / "compare.json")
    assert "compare.json: not a regular file" in one_error(CliRunner().invoke(app, ["report", str(grid)]))


@pytest.mark.parametrize("change, says", [
    ("UPDATE evals SET status = 'bogus'", "not a zoaf run history (a row: ValueError"),
    ("UPDATE evals SET measures = '[1]'", "not a zoaf run history (a row"),
    ("UPDATE evals SET u = '[[['", "not a zoaf run history (a row"),
    ("UPDATE meta SET value = 'not json' WHERE key = 'method'", "not a zoaf run history (meta"),
    ("DROP TABLE evals", "not a zoaf run history (no meta and evals tables)"),
])
def test_a_history_that_is_not_what_zoaf_writes_is_one_line(grid: Path, change: str, says: str):
    db = grid / "a" / "zoaf" / "seed-0" / "history.db"
    with sqlite3.connect(db) as con:
        con.execute(change)
    con.close()
    assert says in one_error(CliRunner().invoke(app, ["report", str(grid)]))


@pytest.mark.parametrize("name, content, says", [
    ("compare.json", "[]", "compare.json: not a zoaf comparison manifest (not a JSON object)"),
    ("compare.json", '{"objectives": 5}', "compare.json: not a zoaf comparison manifest (objectives: not a dict)"),
    ("compare.json", "[" * 100000 + "]" * 100000, "compare.json: not JSON"),
    ("a/zoaf/seed-0/trace.json", '{"rows": [[1, 2, 3, 4, 5]], "nfev": 1e400, "wall": 1, "sim_seconds": 1}', None),
    ("a/zoaf/seed-0/result.json", '{"fun": "abc"}', "result.json: not what zoaf writes"),
])
def test_json_that_is_not_what_zoaf_writes_is_one_line(grid: Path, name: str, content: str, says: str | None):
    for run in grid.glob("a/*/seed-0"):
        (run / "history.db").unlink()
    if name.endswith("result.json"):
        (grid / "a/zoaf/seed-0/trace.json").unlink()
    (grid / name).write_text(content)
    r = CliRunner().invoke(app, ["report", str(grid), "-q"])
    if says is None:                                 # a trace zoaf did not write: the run's end alone
        assert r.exit_code == 0, r.output
    else:
        assert says in one_error(r)


def test_markdown_report_holds_no_html_from_the_directory(grid: Path):
    manifest = json.loads((grid / "compare.json").read_text())
    manifest["versions"] = {"zoaf": HTML}
    manifest["machine"] = {"cpus": f"2\n# {HTML}"}
    manifest["command"] = f"zoaf ` {HTML} `"
    manifest["objectives"]["a"]["unit"] = HTML
    (grid / "compare.json").write_text(json.dumps(manifest))
    (grid / "a" / "random").rename(grid / "a" / f"r{HTML}|x")
    assert CliRunner().invoke(app, ["report", str(grid), "-q"]).exit_code == 0
    md = (grid / "report.md").read_text()
    outside_code = [ln for ln in md.splitlines() if re.search(r"(?<!\\)<img", ln) and "`" not in ln]   # unescaped
    assert not outside_code, outside_code
    assert f"`` zoaf ` {HTML} ` ``" in md      # a code span fenced longer than the back-quotes it holds
    assert HTML not in (grid / "report.html").read_text()


def test_control_characters_from_a_directory_never_reach_the_terminal(grid: Path):
    (grid / "a" / "random").rename(grid / "a" / "r\x1b]0;PWNED\x07\x1b[2J")
    line = one_error(CliRunner().invoke(app, ["report", str(grid)]))
    assert "a folder name with a control" in line and "\x1b" not in line


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    """A finished run directory of the sphere."""
    out = tmp_path / "run"
    zoaf.optimize(sphere("a"), budget=6, seed=1, method="random", out=out)
    return out


@pytest.mark.parametrize("name", [".lock", "history.db"])
def test_resume_refuses_a_lock_or_history_that_is_a_link(run_dir: Path, tmp_path: Path, name: str):
    victim = tmp_path / "victim.sqlite"
    with sqlite3.connect(victim) as con:
        con.execute("CREATE TABLE bookmarks (x)")
    con.close()
    before = victim.read_bytes()
    if name == "history.db":
        (run_dir / name).unlink()
    (run_dir / name).unlink(missing_ok=True)
    (run_dir / name).symlink_to(victim)
    with pytest.raises(zoaf.errors.InputError, match=f"{name}: is a link"):
        zoaf.optimize(sphere("a"), budget=6, seed=1, method="random", out=run_dir, resume=True)
    assert victim.read_bytes() == before


def test_resume_writes_its_end_files_beside_links_not_through_them(run_dir: Path, tmp_path: Path):
    targets = victims(tmp_path, "bashrc", "png")
    for name, target in (("result.json", "bashrc"), ("convergence.png", "png")):
        (run_dir / name).unlink()
        (run_dir / name).symlink_to(tmp_path / target)
    os.unlink(run_dir / "trace.json")
    os.mkfifo(run_dir / "trace.json")                  # would block a plain open for writing
    zoaf.optimize(sphere("a"), budget=6, seed=1, method="random", out=run_dir, resume=True)
    assert {p: p.read_text() for p in targets} == targets
    assert json.loads((run_dir / "result.json").read_text())["nfev"] == 6


def test_a_history_with_values_of_another_kind_is_refused_before_it_runs(run_dir: Path, tmp_path: Path):
    with sqlite3.connect(run_dir / "history.db") as con:
        con.execute("UPDATE meta SET value = '\"abc\"' WHERE key = 'budget'")
    con.close()
    netlist = Path(__file__).parent / "bad_inputs" / "good.cir"
    line = one_error(CliRunner().invoke(app, ["optimize", str(netlist), "--resume", str(run_dir)]))
    assert "history.db: not a zoaf run history (meta: budget 'abc' is not what zoaf writes)" in line


def test_an_error_line_shows_no_escape_sequence_a_history_holds(run_dir: Path):
    with sqlite3.connect(run_dir / "history.db") as con:
        (problem,) = con.execute("SELECT value FROM meta WHERE key = 'problem'").fetchone()
        crafted = {**json.loads(problem), "netlist": "x\x1b]52;c;cm0gLXJmIH4K\x07\x1b[2J.cir"}   # hashes kept
        con.execute("UPDATE meta SET value = ? WHERE key = 'problem'", (json.dumps(crafted),))
    con.close()
    line = one_error(CliRunner().invoke(app, ["yield", str(run_dir), "--samples", "1"]))
    assert "\x1b" not in line and "\x07" not in line      # refused (no hashes) or not found: never raw


def test_a_spec_nested_too_deep_is_one_line(tmp_path: Path):
    spec = tmp_path / "deep.toml"
    spec.write_text("a = " + "[" * 5000 + "]" * 5000 + "\n")
    netlist = Path(__file__).parent / "bad_inputs" / "good.cir"
    assert one_error(CliRunner().invoke(app, ["check", str(netlist), "--spec", str(spec)])).endswith(
        "deep.toml: TOML nested too deep: not a spec")


def test_reading_a_folder_named_as_a_file_leaves_no_descriptor_open(tmp_path: Path):
    """``--spec DIR`` or an ``.include`` of a folder: the descriptor opened to check it stayed open (``fdopen``
    refuses a folder's descriptor before the ``with`` owned it), one more per call in a library session."""
    import os

    from zoaf.infile import read_bounded

    before = len(os.listdir("/proc/self/fd"))
    for _ in range(3):
        with pytest.raises(IsADirectoryError):
            read_bounded(tmp_path)
    assert len(os.listdir("/proc/self/fd")) == before

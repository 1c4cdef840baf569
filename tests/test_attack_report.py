"""Red team round 10: what a received comparison directory makes ``zoaf report`` write, and what it reads.

Names, units and versions come from the directory's sender: report.md rendered them as links and images (a viewer
fetched ``![u](https://host/u.png)`` from the network); a ``$`` in a folder's name was mathtext to matplotlib and
a history's recorded budget sized the plots' axis (tracebacks); a linked folder was read through; and a history
was loaded whole, whatever its rows or values. The comparisons are a sphere function's (no ngspice): seconds each.
"""
from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import pytest
from attackkit import INVISIBLE, INVISIBLE_SHOWN
from markdown_it import MarkdownIt
from typer.testing import CliRunner

from tests.test_attack_inputs import grid, one_error  # noqa: F401  (the fixture)
from zoaf.cli import app
from zoaf.history import MAX_META_ROWS, MAX_VALUE_BYTES, max_rows

#: A remote image and a script link, as a sender may write them in any text field of compare.json.
IMAGE, LINK = "![u](https://attacker.example/u.png)", "[click](javascript:alert(1))"


def _tags(markdown: str) -> list[str]:
    """Every link and image a CommonMark viewer (with tables) makes of ``markdown``."""
    rendered = MarkdownIt("commonmark").enable("table").render(markdown)
    return re.findall(r"<(?:a|img)\b[^>]*>", rendered)


def test_report_md_carries_no_link_or_image_from_the_directory(grid: Path):
    manifest = json.loads((grid / "compare.json").read_text())
    manifest["objectives"]["a"].update(unit=IMAGE, measure=f"f {LINK}")
    manifest.update(versions={"zoaf": IMAGE}, machine={"platform": LINK})
    (grid / "compare.json").write_text(json.dumps(manifest))
    r = CliRunner().invoke(app, ["report", str(grid), "-q"])
    assert r.exit_code == 0, r.output
    tags = _tags((grid / "report.md").read_text())
    assert tags == [f'<img src="a-{k}.png" alt="a-{k}" />' for k in ("vs-simulations", "vs-seconds", "final")]
    page = (grid / "report.html").read_text()         # escaped as it was: no link, each image its own PNG
    assert "<a " not in page and "<script" not in page
    assert all(src.startswith("data:image/png;base64,") for src in re.findall(r'<img [^>]*src="([^"]*)"', page))


def test_a_dollar_in_a_folder_name_is_text_in_the_plots_not_mathtext(grid: Path):
    (grid / "a" / "random").rename(grid / "a" / "$\\foo{$")
    (grid / "a").rename(grid / "$\\bar{$")
    r = CliRunner().invoke(app, ["report", str(grid), "-q"])
    assert r.exit_code == 0 and r.exception is None, r.output
    assert (grid / "$\\bar{$-final.png").stat().st_size > 0


def _history(grid: Path) -> Path:
    return grid / "a" / "zoaf" / "seed-0" / "history.db"


def _change(db: Path, sql: str) -> None:
    with sqlite3.connect(db) as con:
        con.execute(sql)
    con.close()


def _more_rows(db: Path, count: int) -> None:
    """``count`` copies of the history's last row, numbered on."""
    with sqlite3.connect(db) as con:
        cols = ", ".join(row[1] for row in con.execute("PRAGMA table_info(evals)") if row[1] != "idx")
        con.execute(f"WITH RECURSIVE n(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM n WHERE k < {count}) "
                    f"INSERT INTO evals ({cols}) SELECT {cols} FROM n, (SELECT * FROM evals ORDER BY idx DESC LIMIT 1)")
    con.close()


def test_a_history_with_more_rows_than_its_budget_allows_is_refused_before_they_are_read(grid: Path):
    db = _history(grid)
    with sqlite3.connect(db) as con:
        budget, rows = json.loads(con.execute("SELECT value FROM meta WHERE key = 'budget'").fetchone()[0]), \
            con.execute("SELECT COUNT(*) FROM evals").fetchone()[0]
    con.close()
    _more_rows(db, max_rows(budget) - rows)
    assert CliRunner().invoke(app, ["report", str(grid), "-q"]).exit_code == 0     # the most it may hold: read
    _more_rows(db, 1)
    assert one_error(CliRunner().invoke(app, ["report", str(grid)])) == (
        f"error: {db}: not a zoaf run history (more than {max_rows(budget):,} rows, the most a run of its budget "
        "records)")


@pytest.mark.parametrize("change", [
    f"UPDATE evals SET error = hex(zeroblob({MAX_VALUE_BYTES // 2 + 1}))",
    f"INSERT INTO meta VALUES ('notes', '\"' || hex(zeroblob({MAX_VALUE_BYTES // 2 + 1})) || '\"')",
    f"WITH RECURSIVE n(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM n WHERE k < {MAX_META_ROWS}) "
    "INSERT INTO meta SELECT 'k' || k, '1' FROM n",
])
def test_a_history_with_a_huge_value_or_meta_table_is_one_line(grid: Path, change: str):
    """A value is refused as SQLite reads it (over MAX_VALUE_BYTES), the meta table past its bound unread."""
    _change(_history(grid), change)
    assert "not a zoaf run history (" in one_error(CliRunner().invoke(app, ["report", str(grid)]))


@pytest.mark.parametrize("folder", ["a", "a/zoaf", "a/zoaf/seed-0"])
def test_a_linked_folder_in_a_comparison_is_refused_not_read_through(grid: Path, tmp_path: Path, folder: str):
    """``a -> ~/runs/a``: another directory's runs were read (their histories opened read-write) as the sender's."""
    elsewhere = tmp_path / "elsewhere"
    (grid / folder).rename(elsewhere)
    (grid / folder).symlink_to(elsewhere, target_is_directory=True)
    assert one_error(CliRunner().invoke(app, ["report", str(grid)])) == (
        f"error: {grid / folder}: is a link; a comparison directory's folders must be its own (zoaf compare makes "
        "no link)")


def test_a_huge_budget_does_not_size_the_plots(grid: Path):
    """The simulations axis had a point per simulation of the comparison's budget (a run known by its trace):
    ``10**13`` asked numpy for 73 TiB (a MemoryError traceback), ``10**9`` for gigabytes per method."""
    manifest = json.loads((grid / "compare.json").read_text())
    (grid / "compare.json").write_text(json.dumps({**manifest, "budget": 10**13}))
    _history(grid).unlink()
    r = CliRunner().invoke(app, ["report", str(grid), "-q"])
    assert r.exit_code == 0 and r.exception is None, r.output
    assert (grid / "a-vs-simulations.png").stat().st_size > 0


def test_a_history_recording_a_budget_no_run_has_is_one_line(grid: Path):
    """``10**400`` reads as a Python int: it sized the rows read and the plots (an OverflowError traceback)."""
    _change(_history(grid), f"UPDATE meta SET value = '{10**400}' WHERE key = 'budget'")
    line = one_error(CliRunner().invoke(app, ["report", str(grid)]))
    assert "not a zoaf run history (meta: budget 1000000000" in line


@pytest.mark.parametrize("wall", ["Infinity", "1e308"])
def test_a_run_time_past_any_axis_is_off_the_plot_not_a_traceback(grid: Path, wall: str):
    """A trace's (or a history's) wall time spans the seconds axis: ``Infinity`` was an axis limit (ValueError),
    ``1e308`` overflowed matplotlib's log ticks (OverflowError)."""
    run = _history(grid).parent
    _history(grid).unlink()                                  # the run by its trace.json
    (run / "trace.json").write_text(f'{{"rows": [[1, {wall}, 0.5, true, 0.5]], "nfev": 8, "wall": 1.0, '
                                    '"sim_seconds": 0.1}')
    r = CliRunner().invoke(app, ["report", str(grid), "-q"])
    assert r.exit_code == 0 and r.exception is None, r.output


def test_invisible_characters_of_a_directory_are_shown_escaped_in_the_report_and_its_tables(grid: Path):
    """A unit, a measure, a netlist's name and the versions reached the terminal, report.md and report.html as
    they were; ESC reached report.html too (HTML was escaped, not made printable)."""
    manifest = json.loads((grid / "compare.json").read_text())
    manifest["objectives"]["a"].update(unit=f"V{INVISIBLE}", measure=f"f{INVISIBLE}\x1b[31m")
    manifest.update(netlist=f"/x/a{INVISIBLE}.cir", versions={"zoaf": f"1{INVISIBLE}"})
    (grid / "compare.json").write_text(json.dumps(manifest))
    for db in (grid / "a").rglob("history.db"):     # a circuit's histories record its hashes, the sphere's none:
        db.unlink()                                 # its runs kept by their end files, as benchmark results are
    r = CliRunner().invoke(app, ["report", str(grid)])
    assert r.exit_code == 0, r.output
    for text in (r.output, (grid / "report.md").read_text(), (grid / "report.html").read_text()):
        assert not set(INVISIBLE + "\x1b") & set(text) and INVISIBLE_SHOWN in text, ascii(text)


def test_a_folder_named_with_an_invisible_character_is_refused(grid: Path):
    (grid / "a" / "random").rename(grid / "a" / f"ran{INVISIBLE}dom")
    line = one_error(CliRunner().invoke(app, ["report", str(grid)]))
    assert line.endswith("a folder name with a control or invisible format character (zoaf would print it)")
    assert not set(INVISIBLE) & set(line), ascii(line)


def test_the_comparison_folders_own_name_reaches_the_terminal_escaped(grid: Path):
    """The folder itself is named by its sender (a tarball's top folder): ``report: DIR/report.md`` printed its ESC
    (a terminal title set, or any escape sequence) and its bidirectional override as they were."""
    named = grid.rename(grid.with_name(f"cmp\x1b]0;PWNED\x1b\\{INVISIBLE}"))
    r = CliRunner().invoke(app, ["report", str(named)])
    assert r.exit_code == 0, r.output
    assert not set(INVISIBLE + "\x1b") & set(r.output) and INVISIBLE_SHOWN in r.output, ascii(r.output)

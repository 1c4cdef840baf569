"""The notes on how ``ngspice -b`` reads a deck (``Netlist.notes``: here a ``.meas op`` card, which it skips, and the
corpus deck's ``vdb(out)`` with no ``.save``) are said by every command that simulates the deck, once, as its first
simulation starts: only ``check`` and ``simulate`` said them (after the table), so a designer who ran ``optimize``,
``compare`` or sign-off never saw them. A run's evaluator says them (``ZoafNote``) after every check of the run's
input, so that a refusal stays one line; ``--quiet`` leaves them out, sign-off's too (added there with
``optimize``'s meaning: no tables)."""
from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from attackkit import CORPUS
from ngspice_marks import NEEDS_NGSPICE
from typer.testing import CliRunner

from zoaf import compare
from zoaf.cli import app
from zoaf.errors import ZoafNote
from zoaf.evaluate import Evaluator
from zoaf.localpool import LocalPool
from zoaf.netlist import Netlist

pytestmark = NEEDS_NGSPICE

#: A card ngspice skips ("unrecognized analysis type"), and what its note says.
SKIPPED = ".meas op vdc find v(out)\n"
NOTE = "ngspice does not run `.meas op` (it prints 'unrecognized analysis type' and skips the card)"


class FirstSimulation(Exception):
    """Raised where a command would simulate first: what was said by then was said before any simulation."""


def _first_simulation(*args: object, **kwargs: object) -> None:
    raise FirstSimulation


@pytest.fixture(scope="module")
def deck_and_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The corpus' RC deck with the skipped card and a corner table, and a run of 3 simulations of it."""
    folder = tmp_path_factory.mktemp("notes")
    deck = folder / "mc.cir"
    deck.write_text((CORPUS / "mc.cir").read_text().replace(".end\n", SKIPPED + ".end\n"))
    (folder / "mc.toml").write_text((CORPUS / "mc.toml").read_text() + "\n[corners]\ntemp = [27, 85]\n")
    r = CliRunner().invoke(app, ["optimize", str(deck), "--budget", "3", "--seed", "1", "--workers", "0", "--quiet",
                                 "--out", str(folder / "run")])
    assert r.exit_code == 0, r.output
    return deck, folder / "run"


def _notes(deck: Path) -> list[str]:
    notes = Netlist.read(deck).notes
    assert f"{deck}:9: .meas op vdc: {NOTE}: it measures nothing" in notes and len(notes) == 2
    return notes


#: Each command that runs simulations of a deck (a netlist or a run directory given).
COMMANDS = [["optimize", "{deck}", "--budget", "3", "--workers", "0", "--out", "{tmp}/o"],
            ["corners", "{deck}"], ["corners", "{run}"], ["yield", "{deck}", "--out", "{tmp}/y"],
            ["yield", "{run}", "--samples", "2", "--out", "{tmp}/y"], ["sensitivity", "{run}"]]


@pytest.mark.parametrize("args", COMMANDS, ids=[" ".join(a[:2]) for a in COMMANDS])
def test_a_run_says_how_ngspice_reads_the_deck_once_before_it_simulates(
        deck_and_run: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, args: list[str]) -> None:
    deck, run = deck_and_run
    monkeypatch.setattr(Evaluator, "_simulate_here", _first_simulation)
    monkeypatch.setattr(LocalPool, "run", _first_simulation)
    for quiet, said in ((False, _notes(deck)), (True, [])):
        extra = ["--quiet"] * quiet + (["--workers", "1"] if args[0] != "optimize" else [])
        with warnings.catch_warnings(record=True) as caught:
            r = CliRunner().invoke(app, [*(a.format(deck=deck, run=run, tmp=tmp_path / str(quiet)) for a in args),
                                         *extra])
        assert isinstance(r.exception, FirstSimulation), r.output
        assert [str(w.message) for w in caught if w.category is ZoafNote] == said


def test_compare_says_them_once_before_its_runs(deck_and_run: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch,
                                                tmp_path: Path) -> None:
    """Its runs run in processes of their own (or in its own, ``--jobs 1``): their problems say none."""
    deck, _ = deck_and_run
    monkeypatch.setattr(compare, "_run_tasks", _first_simulation)
    for quiet, said in ((False, [f"note: {n}" for n in _notes(deck)]), (True, [])):
        r = CliRunner().invoke(app, ["compare", str(deck), "--methods", "random", "--seeds", "1", "--budget", "3",
                                     "--out", str(tmp_path / str(quiet)), *["--quiet"] * quiet])
        assert isinstance(r.exception, FirstSimulation), r.output
        assert [ln for ln in r.stderr.splitlines() if ln.startswith("note:")] == said
    assert compare._circuit_problem(str(deck), None, False, 10.0, "bw").notes == ()


def _zoaf(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "zoaf", *map(str, args)], capture_output=True, text=True,
                          timeout=300)


@pytest.mark.parametrize("command", [["sensitivity", "{run}", "-j", "1"],
                                     ["compare", "{deck}", "-m", "random", "--seeds", "2", "-b", "3", "-j", "1",
                                      "--out", "{tmp}/c"]])
def test_the_command_line_says_each_note_once(deck_and_run: tuple[Path, Path], tmp_path: Path,
                                              command: list[str]) -> None:
    """As ``note:`` lines, once, however many evaluators the command makes (sensitivity: one per set of points) or
    runs it makes in its own process (``compare --jobs 1``)."""
    deck, run = deck_and_run
    r = _zoaf(*(a.format(deck=deck, run=run, tmp=tmp_path) for a in command))
    assert r.returncode == 0, r.stderr
    assert [ln for ln in r.stderr.splitlines() if ln.startswith("note:")] == [f"note: {n}" for n in _notes(deck)]


def test_a_refused_run_folder_is_still_one_line(deck_and_run: tuple[Path, Path], tmp_path: Path) -> None:
    """Its refusal comes before the first simulation, so before the notes: one line, as every bad input."""
    deck, _ = deck_and_run
    (tmp_path / "afile").write_text("")
    r = _zoaf("optimize", deck, "--budget", "3", "--workers", "0", "--out", tmp_path / "afile")
    assert r.returncode == 2 and len(r.stderr.splitlines()) == 1 and r.stderr.startswith("error: "), r.stderr


def test_signoff_quiet_prints_no_table(deck_and_run: tuple[Path, Path], tmp_path: Path) -> None:
    """As ``optimize --quiet``: the exit code and the files written say the rest (a yield's folder)."""
    _, run = deck_and_run
    for args in (["corners", str(run)], ["yield", str(run), "--samples", "2", "--out", str(tmp_path / "y")],
                 ["sensitivity", str(run)]):
        said, quiet = (CliRunner().invoke(app, [*args, "--workers", "1", *extra]) for extra in ([], ["--quiet"]))
        assert said.exit_code == quiet.exit_code == 0, said.output + quiet.output
        assert said.stdout.strip() and quiet.stdout == "", quiet.stdout

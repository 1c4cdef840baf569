"""Sign-off says what ``check``, ``simulate``, ``optimize`` and ``compare`` say of a deck before its first simulation:
one ``note:`` line per file it reads outside its folder and per design variable it never reads. ``zoaf corners``,
``zoaf yield`` and ``zoaf sensitivity`` of a run directory (often a received one) printed none, yet simulated the
same deck."""
from __future__ import annotations

from pathlib import Path

import pytest
from attackkit import CORPUS
from typer.testing import CliRunner

from zoaf.cli import app
from zoaf.evaluate import Evaluator

#: The spec of the corpus' RC deck with a corner table (for ``zoaf corners``) and, for the deck that reads outside
#: its folder, a design variable no line of the deck reads.
CORNERS = "\n[corners]\ntemp = [27, 85]\n"
SPARE = 'spare = { lo = "1", hi = "2" }\n'


class FirstSimulation(Exception):
    """Raised where sign-off would simulate first: what stderr holds then was said before any simulation."""


def _sender(folder: Path, outside: Path | None) -> tuple[Path, Path]:
    """``folder/deck/mc.cir`` (including ``outside`` when given, and sizing an unread ``spare`` then) and its run
    of 3 simulations, ``folder/deck/run``."""
    deck = folder / "deck"
    deck.mkdir(parents=True)
    text = (CORPUS / "mc.cir").read_text()
    spec = (CORPUS / "mc.toml").read_text() + CORNERS
    if outside is not None:
        text = text.replace(".param r1=1k", f".param spare=1\n.include {outside}\n.param r1=1k", 1)
        spec = spec.replace("[parameters]\n", f"[parameters]\n{SPARE}", 1)
    (deck / "mc.cir").write_text(text)
    (deck / "mc.toml").write_text(spec)
    r = CliRunner().invoke(app, ["optimize", str(deck / "mc.cir"), "--budget", "3", "--seed", "1", "--workers", "0",
                                 "--quiet", "--out", str(deck / "run")])
    assert r.exit_code == 0, r.output
    return deck / "mc.cir", deck / "run"


@pytest.fixture(scope="module")
def outside(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """(deck, run, the file it includes from outside its folder)."""
    root = tmp_path_factory.mktemp("outside")
    included = root / "elsewhere" / "extra.inc"
    included.parent.mkdir()
    included.write_text("* nothing but a file outside the deck's folder\n")
    return (*_sender(root, included), included)


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return _sender(tmp_path_factory.mktemp("clean"), None)


def _signoff(monkeypatch: pytest.MonkeyPatch, command: str, target: Path, out: Path) -> list[str]:
    """``zoaf COMMAND TARGET`` stopped at its first simulation: the lines on stderr by then."""
    def first_simulation(self: Evaluator, *args: object, **kwargs: object) -> None:
        raise FirstSimulation

    monkeypatch.setattr(Evaluator, "evaluate", first_simulation)
    extra = {"corners": [], "yield": ["--samples", "2", "--out", str(out)], "sensitivity": []}[command]
    r = CliRunner().invoke(app, [command, str(target), "--workers", "1", *extra])
    assert isinstance(r.exception, FirstSimulation), r.output
    return [ln for ln in r.stderr.splitlines() if ln.strip()]


COMMANDS = [("corners", "run"), ("yield", "run"), ("sensitivity", "run"), ("corners", "netlist"),
            ("yield", "netlist")]


@pytest.mark.parametrize("command, target", COMMANDS)
def test_signoff_notes_a_read_outside_the_folder_and_an_unread_variable_before_it_simulates(
        outside: tuple[Path, Path, Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, command: str,
        target: str) -> None:
    deck, run, included = outside
    lines = _signoff(monkeypatch, command, run if target == "run" else deck, tmp_path / "y")
    assert lines == [f"note: {deck}:3: .include {included}: reads {included}, outside the deck's folder and the "
                     "system's model folders (ngspice may quote its lines into results; ZOAF_INCLUDE_ROOTS confines "
                     "what a deck reads)",
                     f"note: {deck}:2: .param spare is a design variable of the spec, but no line of the deck or its "
                     "includes reads it: it changes no simulation, and a run spends simulations on it (use it in the "
                     "deck, or remove it from the spec's [parameters])"]


@pytest.mark.parametrize("command, target", COMMANDS)
def test_signoff_of_a_clean_deck_says_nothing_before_it_simulates(clean: tuple[Path, Path],
                                                                    monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                                    command: str, target: str) -> None:
    deck, run = clean
    assert _signoff(monkeypatch, command, run if target == "run" else deck, tmp_path / "y") == []


"""Sign-off's reach into a run: the timeout its simulations get (the command's ``--timeout``, the problem's own, as
``zoaf optimize``'s) and a named corner that ``corners = "all"`` merged into the cross product's corner of the same
conditions. Runs are of the bad-input corpus' RC deck, in process (a few simulations each)."""
from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

import pytest
from typer.testing import CliRunner

from test_signoff_bad_inputs import _one_line, _process_run, corner_run
from zoaf.cli import app
from zoaf.errors import ZoafWarning
from zoaf.evaluate import Evaluator
from zoaf.signoff import cornercheck, sensrun, yieldrun


@pytest.fixture
def merged(tmp_path: Path) -> Path:
    """A finished run of mc.cir judged over ``corners = "all"`` of temp = [27, 85] and a corner ``hot`` at 85
    (merged into 85c: one simulation per sizing there)."""
    return corner_run(tmp_path, '"all"', "[corners]\ntemp = [27, 85]\n[corners.hot]\ntemp = 85\n", "--budget", "4")


@pytest.mark.parametrize("command, module", [(["yield", "--samples", "2"], yieldrun), (["corners"], cornercheck),
                                             (["sensitivity"], sensrun)])
def test_sign_off_simulates_within_the_timeout_it_is_given(merged: Path, monkeypatch: pytest.MonkeyPatch,
                                                           command: list[str], module: ModuleType) -> None:
    """``zoaf yield`` killed every sample at a hard-coded 60 s, ``corners`` and ``sensitivity`` at the evaluator's
    default 60 s (below the problem's own, whatever it was), and none had ``--timeout``: a deck that ``optimize
    --timeout 300`` sized could not be signed off. Each takes ``--timeout`` for the problem and its evaluator."""
    seen: list[float] = []

    class Spy(Evaluator):
        def __init__(self, problem, **options) -> None:
            super().__init__(problem, **options)
            seen.append(self.timeout)

    monkeypatch.setattr(module, "Evaluator", Spy)
    r = CliRunner().invoke(app, [command[0], str(merged), *command[1:], "--workers", "1", "--timeout", "300"])
    assert r.exit_code == 0 and seen and set(seen) == {300.0}, (r.output, seen)
    _one_line(CliRunner().invoke(app, [command[0], str(merged), *command[1:], "--timeout", "0"]),
              "--timeout 0: must be > 0")


def test_sensitivity_at_a_named_corner_merged_under_all_reads_its_simulations(merged: Path) -> None:
    """``hot`` is 85c's conditions, which the run simulated at every sizing, yet ``--corner hot`` was refused as
    "the run judged only 27c, 85c; it has no simulations at that corner". It reads 85c's, named as asked."""
    r = CliRunner().invoke(app, ["sensitivity", str(merged), "--corner", "hot", "--workers", "1", "--json"])
    assert r.exit_code == 0, r.output
    hot = json.loads(r.stdout)
    r = CliRunner().invoke(app, ["sensitivity", str(merged), "--corner", "85c", "--workers", "1", "--json"])
    assert r.exit_code == 0 and hot["corner"] == "hot", r.output
    assert {**hot, "corner": "85c"} == json.loads(r.stdout)     # the same simulations: replayed, not run anew


def test_a_merged_corner_whose_process_changed_is_said(tmp_path: Path) -> None:
    """``zoaf corners RUN --corner slow`` of a ``slow`` merged into ss under "all": the run's ss values changed since,
    said for ``--corner ss`` but not for ``slow``, the same conditions."""
    out, lib, _ = _process_run(tmp_path, '[corners.slow]\nprocess = "ss"\n')
    lib.write_text(lib.read_text().replace("mc_c=2", "mc_c=-1"))
    with pytest.warns(ZoafWarning, match=r"corner ss sets mc_c = -1\.0 now, 2\.0 in the run: signed off at the"):
        r = CliRunner().invoke(app, ["corners", str(out), "--corner", "slow", "--workers", "1"])
    assert r.exit_code == 0, r.output


@pytest.mark.parametrize("name, shown", [(" hot", "' hot'"), ("", "''"), ("nope", "nope")])
def test_an_unknown_corner_is_shown_as_given(merged: Path, name: str, shown: str) -> None:
    """``--corner ' hot'`` said "unknown corner(s) hot; [corners] defines 27c, 85c, hot", and ``--corner ''``
    "unknown corner(s) ;": a name that reads as a defined one, or as none."""
    _one_line(CliRunner().invoke(app, ["sensitivity", str(merged), "--corner", name, "--workers", "1"]),
              f"--corner: unknown corner(s) {shown}; [corners] defines 27c, 85c, hot")

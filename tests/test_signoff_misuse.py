"""Sign-off misused in a hurry: spec keys of ``[corners]`` in another case, ``zoaf yield --out`` at the run itself
or at a Dask address nothing answers, Ctrl-C amid ``yield``/``sensitivity``, a history cut before its start was
recorded. One line (exit 2, no traceback) or what the designer meant; nothing computed lost, and said so."""
from __future__ import annotations

import shutil
import sqlite3
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from zoaf.cli import app
from zoaf.errors import InputError
from zoaf.history import History
from zoaf.spec import Spec

CORPUS = Path(__file__).parent / "bad_inputs"
LIB = Path(__file__).parent.parent / "netlists" / "models" / "generic_corners.lib"
BASE = (CORPUS / "good.toml").read_text()


def _one_line(r: Any, says: str) -> None:
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.exit_code == 2 and len(lines) == 1 and says in lines[0], (r.exit_code, r.output)
    assert "Traceback" not in r.output


@pytest.fixture(scope="module")
def mc_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished 3-simulation run of mc.cir (its [montecarlo] draws mc_r), in process."""
    out = tmp_path_factory.mktemp("mc") / "run"
    r = CliRunner().invoke(app, ["optimize", str(CORPUS / "mc.cir"), "--budget", "3", "--seed", "1", "--workers", "0",
                                 "--quiet", "--out", str(out)])
    assert r.exit_code == 0, r.output
    return out


def _spec(tmp_path: Path, extra: str) -> Spec:
    (tmp_path / "s.toml").write_text(BASE + extra)
    return Spec.read(tmp_path / "s.toml")


_CASE = " (names are case-insensitive, as in SPICE)"


@pytest.mark.parametrize("extra, says", [
    # the 85 C list silently replaced by the 27 C one: 1 corner simulated where 2 were meant
    ("[corners]\nTEMP = [85]\ntemp = [27]\n", "corners.temp: the same name as corners.TEMP" + _CASE),
    ("[corners.hot]\nVDD = 1\nvdd = 2\n", "corners.hot.vdd: the same name as corners.hot.VDD" + _CASE),
    ('[montecarlo]\nsection = "mc"\nparams = { SW = 1, sw = 0 }\n',
     "montecarlo.params.sw: the same name as montecarlo.params.SW" + _CASE),
    # "" was the spec's own folder: "process_lib .: cannot read (is a directory)"
    ('[corners]\nprocess = ["tt"]\nprocess_lib = ""\n', "corners.process_lib: must be a path string, got ''"),
])
def test_corner_keys_differing_in_case_only_or_an_empty_process_lib_are_refused(tmp_path: Path, extra: str,
                                                                                 says: str) -> None:
    with pytest.raises(InputError) as e:
        _spec(tmp_path, extra)
    assert str(e.value) == f"{tmp_path / 's.toml'}: {says}"


def test_a_named_corner_reads_its_keys_in_any_case(tmp_path: Path) -> None:
    """The cross product took TEMP = [85] as a temperature; a named corner refused it ("'temp' is not a .param"),
    its Process as "'ss' is not a SPICE number", and [corners] PROCESS_LIB as a list of supplies."""
    shutil.copy(LIB, tmp_path / "corners.lib")
    spec = _spec(tmp_path, '[corners]\nPROCESS_LIB = "corners.lib"\nTEMP = [27]\n'
                           '[corners.Slow_Hot]\nTEMP = 125\nProcess = "SS"\nVDD = "1.62"\n')
    assert spec.corners is not None and spec.corners.process_lib == tmp_path / "corners.lib"
    assert [c.as_json() for c in spec.corners.corners] == [
        {"name": "27c", "process": None, "temp": 27.0, "params": {}},
        {"name": "slow_hot", "process": "ss", "temp": 125.0, "params": {"vdd": 1.62}}]


def test_yield_out_at_the_run_signed_off_names_what_it_holds(mc_run: Path) -> None:
    """It said "holds another run (its budget differs)", of the run the designer had just made."""
    rows = (mc_run / "history.db").read_bytes()
    r = CliRunner().invoke(app, ["yield", str(mc_run), "--samples", "2", "--workers", "1", "--out", str(mc_run)])
    _one_line(r, f"{mc_run / 'history.db'}: holds a run of method 'zoaf', not Monte Carlo samples (the run signed "
                 "off?); use another --out")
    assert (mc_run / "history.db").read_bytes() == rows and not (mc_run / "yield.json").exists()


def test_a_yield_refused_as_its_workers_start_leaves_no_directory(mc_run: Path, tmp_path: Path) -> None:
    """A Dask address nothing answers: the refusal left OUT/history.db (no sample), a directory a refused run must
    not leave (and a folder that looked like a yield's)."""
    out = tmp_path / "y"
    r = CliRunner().invoke(app, ["yield", str(mc_run), "--samples", "2", "--dask", "", "--out", str(out)])
    _one_line(r, "--dask : cannot reach a Dask scheduler there")
    assert not out.exists()


def _rows(folder: Path) -> int:
    total = 0
    for db in folder.rglob("history.db"):
        with History(db, read=True) as h:
            total += len(h)
    return total


def _ctrl_c_after_first_batch(monkeypatch: pytest.MonkeyPatch, first: int | None = None) -> None:
    """Evaluator.evaluate simulates (and records) its first batch, or its first ``first`` points over however many
    batches the command asks (a yield asks its first samples in small batches), then Ctrl-C."""
    from zoaf.evaluate import Evaluator

    evaluate = Evaluator.evaluate
    done = [0]

    def cut(self: Evaluator, x: Any, *args: Any, **kwargs: Any) -> Any:
        left = len(x) if first is None else first - done[0]
        if left > len(x):
            done[0] += len(x)
            return evaluate(self, x, *args, **kwargs)
        evaluate(self, x[:left], *args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(Evaluator, "evaluate", cut)


def _main(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    from zoaf import cli

    monkeypatch.setattr(sys, "argv", ["zoaf", *args])
    with pytest.raises(SystemExit) as exit_:
        cli.main()
    err = capsys.readouterr().err               # less the notes on how ngspice -b reads mc.cir (test_deck_notes.py)
    return exit_.value.code, "".join(ln for ln in err.splitlines(keepends=True) if not ln.startswith("note: "))


def test_ctrl_c_amid_a_yield_says_what_is_kept_and_the_same_command_finishes_it(
        mc_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """It said only "interrupted": a designer took the samples simulated for lost and ran it anew elsewhere."""
    out = tmp_path / "y"
    command = ["yield", str(mc_run), "--samples", "5", "--workers", "1", "--out", str(out)]
    with monkeypatch.context() as m:
        _ctrl_c_after_first_batch(m, first=3)
        code, said = _main(m, capsys, *command)
    assert (code, said) == (130, f"interrupted: 3 simulations kept in {out}; the same command again replays them "
                                 "and simulates only the rest\n")
    code, _ = _main(monkeypatch, capsys, *command)
    assert code == 0 and _rows(out) == 5                # the 3 replayed, 2 simulated


def test_ctrl_c_amid_a_sensitivity_says_what_is_kept(mc_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    shutil.copytree(mc_run, run)
    _ctrl_c_after_first_batch(monkeypatch)
    code, said = _main(monkeypatch, capsys, "sensitivity", str(run), "--workers", "1")
    kept = _rows(run / "sensitivity")
    assert kept >= 8 and (code, said) == (130, f"interrupted: {kept} simulations kept in {run / 'sensitivity'}; the "
                                               "same command again replays them and simulates only the rest\n")


def test_ctrl_c_before_a_yields_first_sample_leaves_nothing(mc_run: Path, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "y"
    _ctrl_c_after_first_batch(monkeypatch, first=0)
    assert _main(monkeypatch, capsys, "yield", str(mc_run), "--samples", "2", "--workers", "1", "--out",
                 str(out)) == (130, "interrupted\n")
    assert not out.exists()


@pytest.mark.parametrize("command", [["yield", "--samples", "2", "--workers", "1"], ["sensitivity", "--workers", "1"]])
def test_a_history_cut_before_its_run_was_recorded_says_so(mc_run: Path, tmp_path: Path, command: list[str]) -> None:
    """kill -9 as the run started (no meta, no row): it said "a run of 'a Python problem', not a circuit run"."""
    run = tmp_path / "run"
    shutil.copytree(mc_run, run)
    with sqlite3.connect(run / "history.db") as db:
        db.execute("DELETE FROM meta")
        db.execute("DELETE FROM evals")
    _one_line(CliRunner().invoke(app, [command[0], str(run), *command[1:]]),
              f"{run / 'history.db'}: records no run (no problem in its meta table: cut short as it started?); "
              "optimize anew")
    assert not (run / command[0]).exists()

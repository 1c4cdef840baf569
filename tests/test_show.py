"""`zoaf check`/`simulate` tell the truth, through the real CLI on real netlists (subprocesses, no mocks).

A missing measure is shown beside the measures that were taken, with the FoM the optimizer charges (the same
``CircuitProblem.simulate`` path); every constraint of a measure gets its verdict; a failing value never
displays as equal to its limit; a spec's text is printed as text, not rich markup. A run whose every
simulation lost the objective's measure is no success, and says why in ngspice's words.
"""
from __future__ import annotations

import json
import re
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from attackkit import INVISIBLE, INVISIBLE_SHOWN

from test_cli import zoaf
from zoaf import units
from zoaf.circuit import CircuitProblem
from zoaf.optim import StopReason
from zoaf.run import optimize as run_optimize
from zoaf.show import RUN_FILES, report_run
from zoaf.problem import INFEASIBLE_OFFSET, MISSING_VIOLATION

ROOT = Path(__file__).parent.parent
CORPUS = ROOT / "tests" / "bad_inputs"
#: meas_out.cir's `never` measure asks for a crossing outside the sweep: no sizing ever gives it.
LOST_SPEC = """
[parameters]
r1 = { lo = "100", hi = "100k", scale = "log" }
c1 = { lo = "10p", hi = "10n", scale = "log" }
[measures]
f3db = { unit = "Hz" }
never = { unit = "dB" }
[objectives]
bw = { maximize = "f3db", constraints = ["never >= -1"] }
lost = { minimize = "never" }
"""


@pytest.fixture()
def lost(tmp_path: Path) -> Path:
    """meas_out.cir with the lost measure first: the first ``meas`` after an analysis in ngspice's background
    thread also prints the thread's "Background thread stopped" note, which must not pass for the reason."""
    lines = (ROOT / "tests" / "netlists" / "meas_out.cir").read_text().splitlines()
    first, lost_line = lines.index(".meas ac f3db when vdb(out)=-3"), lines.index(".meas ac never when vdb(out)=-300")
    lines[first], lines[lost_line] = lines[lost_line], lines[first]
    (tmp_path / "meas_out.cir").write_text("\n".join(lines) + "\n")
    (tmp_path / "meas_out.toml").write_text(LOST_SPEC)
    return tmp_path / "meas_out.cir"


def rc_with(tmp_path: Path, objective: str, unit: str = "dB") -> Path:
    """The corpus' RC low-pass with another objective line (and gain_lf's unit)."""
    spec = (CORPUS / "good.toml").read_text().replace('gain_lf = { unit = "dB" }', f'gain_lf = {{ unit = "{unit}" }}')
    (tmp_path / "rc.toml").write_text(re.sub(r"(?m)^bw = .*$", objective, spec))
    shutil.copy(CORPUS / "good.cir", tmp_path / "rc.cir")
    return tmp_path / "rc.cir"


def row(stdout: str, name: str) -> list[str]:
    """The cells of a table row (rich's box characters as separators)."""
    line = next(ln for ln in stdout.splitlines() if re.match(rf"^│ {name}\s", ln))
    return [c.strip() for c in line.strip("│ ").split("│")]


@pytest.mark.parametrize("command", [["check"], ["simulate", "--set", "r1=2k"]])
def test_missing_measure_shows_what_was_taken_and_the_fom_charged(lost: Path, command: list[str]) -> None:
    r = zoaf(*command, str(lost), "--json")
    assert r.returncode == 1, r.stdout + r.stderr
    data = json.loads(r.stdout)
    assert data["status"] == "incomplete"
    assert set(data["measures"]) == {"f3db"} and data["measures"]["f3db"] > 0
    assert data["error"] == ("MeasureError: .meas never (line 8) produced no value: out of interval "
                             "(.meas ac never when vdb(out)=-300 failed!)")
    problem = CircuitProblem(lost)
    params = data["params"]
    outcome = problem.simulate(np.array([params[n] for n in problem.names]))   # what a run records
    assert data["objectives"]["bw"]["fom"] == outcome.fom == INFEASIBLE_OFFSET + MISSING_VIOLATION
    assert data["objectives"]["lost"]["fom"] == INFEASIBLE_OFFSET + MISSING_VIOLATION

    text = zoaf(*command, str(lost))
    assert text.returncode == 1
    assert row(text.stdout, "f3db")[1] == units.format(data["measures"]["f3db"]).replace("k", " kHz")
    assert row(text.stdout, "never")[1:] == ["—", "FAIL >= -1 dB, not measured"]
    assert row(text.stdout, "bw")[-1] == "110"
    assert " ".join(text.stderr.split()) == ("warning: MeasureError: .meas never (line 8) produced no value: out "
                                             "of interval (.meas ac never when vdb(out)=-300 failed!); a run "
                                             "charges this sizing FoM 110")


def test_every_constraint_of_a_measure_is_shown(tmp_path: Path) -> None:
    rc = rc_with(tmp_path, 'bw = { maximize = "f3db", constraints = ["gain_lf >= -1", "gain_lf <= -0.5"] }')
    r = zoaf("check", str(rc))
    assert r.returncode == 0, r.stderr
    assert row(r.stdout, "gain_lf")[2] == "pass >= -1 dB, FAIL <= -0.5 dB"


def test_a_failing_value_never_displays_as_its_limit(tmp_path: Path) -> None:
    """The limit a hair above the value: at 4 digits both would read the same; the FAIL must be visible."""
    f3db = json.loads(zoaf("check", str(CORPUS / "good.cir"), "--json").stdout)["measures"]["f3db"]
    bound = float(f"{f3db * (1 + 3e-5):.6g}")
    assert f"{bound:.4g}" == f"{f3db:.4g}" and f3db < bound
    rc = rc_with(tmp_path, f'bw = {{ minimize = "gain_lf", constraints = ["f3db >= {bound!r}"] }}')
    r = zoaf("check", str(rc))
    assert r.returncode == 0, r.stderr
    _, value, spec = row(r.stdout, "f3db")
    shown_bound = re.fullmatch(r"FAIL >= (.+)", spec).group(1)

    def number(text: str) -> float:
        return units.parse(text.removesuffix("Hz").replace(" ", "").replace("M", "meg"))

    assert number(shown_bound) == bound                    # the limit as written
    assert number(value) < bound and value != shown_bound  # the value on its failing side


def test_markup_in_a_spec_is_printed_as_text(tmp_path: Path) -> None:
    rc = rc_with(tmp_path, 'bw = { maximize = "f3db", constraints = ["gain_lf >= -1"] }', unit="[/red]")
    r = zoaf("check", str(rc))
    assert r.returncode == 0, r.stderr
    assert row(r.stdout, "gain_lf")[2] == "pass >= -1 [/red]"


@pytest.mark.parametrize("objective", ["lost", "bw"])   # the objective's measure, a constrained one
def test_a_measure_lost_at_every_sizing_is_no_success(lost: Path, tmp_path: Path, objective: str) -> None:
    args = ["optimize", str(lost), "-o", objective, "--budget", "8", "--seed", "1", "--workers", "1"]
    with ThreadPoolExecutor(1) as pool:                  # the --json run and the printed one side by side
        printed = pool.submit(zoaf, *args, "--out", str(tmp_path / "run2"))
        r = zoaf(*args, "--out", str(tmp_path / "run"), "--json")
    assert r.returncode == 1, r.stderr
    result = json.loads(r.stdout)
    assert result["success"] is False and result["stop_reason"] == "failed"
    assert json.loads((tmp_path / "run" / "result.json").read_text())["success"] is False
    r = printed.result()
    assert r.returncode == 1
    assert "last error: MeasureError: .meas never (line 8) produced no value: out of interval" in r.stdout
    assert "background thread" not in (r.stdout + r.stderr).lower()
    listed = re.search(r"run directory: .*  \((.*)\)", r.stdout.replace("\n", "")).group(1).split(", ")
    assert listed == [n for n in RUN_FILES if (tmp_path / "run2" / n).is_file()], r.stdout


def always_failing_rc(tmp_path: Path) -> Path:
    """The corpus' RC with f3db its only measure and every sizing's corner below the sweep: each simulation fails
    (no measure taken), so a run has no best point and FoM +inf."""
    deck = "\n".join(ln for ln in (CORPUS / "good.cir").read_text().splitlines() if "gain_lf" not in ln)
    (tmp_path / "rc.cir").write_text(deck + "\n")
    (tmp_path / "rc.toml").write_text('[parameters]\nr1 = { lo = "1meg", hi = "10meg" }\n'
                                      'c1 = { lo = "1u", hi = "10u" }\n[measures]\nf3db = { unit = "Hz" }\n'
                                      '[objectives]\nbw = { maximize = "f3db" }\n')
    return tmp_path / "rc.cir"


def test_a_run_where_every_simulation_failed_lists_only_the_files_it_wrote(tmp_path: Path) -> None:
    """No best point, so no best.cir, and the run directory line does not name one."""
    r = zoaf("optimize", str(always_failing_rc(tmp_path)), "--budget", "3", "--workers", "1",
             "--out", str(tmp_path / "run"))
    assert r.returncode == 1 and "no simulation succeeded" in r.stdout, r.stdout + r.stderr
    listed = re.search(r"run directory: .*  \((.*)\)", r.stdout.replace("\n", "")).group(1).split(", ")
    assert listed == ["result.json", "trace.json", "history.db", "convergence.png"], r.stdout
    assert not (tmp_path / "run" / "best.cir").exists()


def test_an_interrupted_feasible_run_shows_no_other_sizings_error(tmp_path: Path, capsys) -> None:
    """Stopped (by its callback, as Ctrl-C would) once a sizing lost its f3db (the crossing beyond the sweep): the
    best point is feasible, so that sizing's MeasureError is not why the run has no better one and is not printed."""
    problem = CircuitProblem(CORPUS / "good.cir")
    result = run_optimize(problem, budget=60, seed=5, method="zoaf", workers=0, out=tmp_path / "run",
                          callback=lambda r: any(rec.outcome.error for rec in r.history))
    assert result.stop_reason is StopReason.CALLBACK and result.feasible and any(
        "MeasureError" in (rec.outcome.error or "") for rec in result.history)
    report_run(problem, result, tmp_path / "run", 1.0, quiet=False)
    text = capsys.readouterr().out
    assert "stopped by the callback: FoM" in text and "last error" not in text, text


@pytest.mark.parametrize("missing", [False, True])
def test_invisible_characters_of_a_deck_and_its_spec_are_shown_escaped(tmp_path: Path, missing: bool) -> None:
    """The deck's file name (the tables' title), an included file's name (a ``note:`` line) and the error line
    quoting a missing include reached the terminal as they were; a unit holding them is refused, its line
    escaped."""
    folder, other = tmp_path / "deck", tmp_path / "other"
    folder.mkdir()
    other.mkdir()
    inc = other / f"o{INVISIBLE}cni.x"
    if not missing:
        inc.write_text("* nothing\n")
    rc = rc_with(folder, 'bw = { maximize = "f3db" }')
    deck = rc.rename(folder / f"r{INVISIBLE}c.cir")
    spec = (folder / "rc.toml").rename(deck.with_suffix(".toml"))
    deck.write_text(deck.read_text().replace(".param", f".include {inc}\n.param", 1))
    r = zoaf("check", str(deck))
    assert r.returncode == (2 if missing else 0), r.stderr
    shown = r.stdout + r.stderr
    assert not set(INVISIBLE) & set(shown), ascii(shown)
    assert shown.count(INVISIBLE_SHOWN) >= 2, shown   # the title and the note, or the error's name and path
    spec.write_text(spec.read_text().replace('gain_lf = { unit = "dB" }', f'gain_lf = {{ unit = "d{INVISIBLE}B" }}'))
    r = zoaf("check", str(deck))
    assert r.returncode == 2 and r.stdout == "" and len(r.stderr.splitlines()) == 1, r.stdout + r.stderr
    assert "measures.gain_lf.unit: invisible format character U+202E" in r.stderr, r.stderr
    assert not set(INVISIBLE) & set(r.stderr) and INVISIBLE_SHOWN in r.stderr, ascii(r.stderr)

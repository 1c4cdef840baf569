"""Sign-off (`zoaf yield`, `zoaf sensitivity`) of a run whose inputs changed since, or at a corner it never
simulated: one error line (exit 2), nothing of the run changed. Runs are of the bad-input corpus' RC deck, in
process (a few simulations each)."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from zoaf.cli import app

CORPUS = Path(__file__).parent / "bad_inputs"


def _one_line(r, pattern: str) -> None:
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.exit_code == 2 and len(lines) == 1 and pattern in lines[0], (r.exit_code, r.output)


@pytest.fixture
def run(tmp_path: Path) -> Path:
    """A finished 4-simulation run of a copy of mc.cir (the copy may be edited), judged over two temperatures
    of which its objective names one."""
    for name in ("mc.cir", "mc.toml"):
        shutil.copy(CORPUS / name, tmp_path / name)
    spec = tmp_path / "mc.toml"
    spec.write_text(spec.read_text().replace('constraints = ["gain_lf >= -1"] }',
                                             'constraints = ["gain_lf >= -1"], corners = ["27c"] }')
                    + "[corners]\ntemp = [27, 85]\n")
    out = tmp_path / "run"
    r = CliRunner().invoke(app, ["optimize", str(tmp_path / "mc.cir"), "--budget", "4", "--seed", "1",
                                 "--workers", "0", "--quiet", "--out", str(out)])
    assert r.exit_code == 0, r.output
    return out


def test_sensitivity_at_a_corner_the_run_never_simulated_is_one_line(run: Path) -> None:
    """A corner of [corners] the objective did not judge: a ValueError traceback (list.index)."""
    _one_line(CliRunner().invoke(app, ["sensitivity", str(run), "--corner", "85c", "--workers", "1"]),
              "--corner 85c: the run judged only 27c")
    assert not (run / "sensitivity").exists()


@pytest.mark.parametrize("edit, says", [
    ("mc.cir", "(or a file it includes) changed since the run"),
    ("mc.toml", "is not the one the run used"),
])
@pytest.mark.parametrize("command", [["sensitivity"], ["yield", "--samples", "2"]])
def test_sign_off_of_a_run_whose_netlist_or_spec_changed_is_refused(run: Path, edit: str, says: str,
                                                                    command: list[str]) -> None:
    """The run's simulations were fitted beside simulations of the edited deck (a sensitivity of -0.1 where the
    run's own circuit gives -1), or its sizing read with another spec, and nothing said so."""
    path = run.parent / edit
    path.write_text(path.read_text().replace("C1 out 0 {c1}", "C1 out 0 {c1*10}")
                    .replace('gain_lf >= -1"]', 'gain_lf >= -2"]'))
    rows = (run / "history.db").read_bytes()
    _one_line(CliRunner().invoke(app, [command[0], str(run), *command[1:], "--workers", "1"]), says)
    assert (run / "history.db").read_bytes() == rows
    assert not (run / command[0]).exists()


@pytest.mark.parametrize("command", [["sensitivity"], ["yield", "--samples", "2"]])
def test_sign_off_of_a_run_the_library_made_says_it_is_no_circuit_run(tmp_path: Path, command: list[str]) -> None:
    """A zoaf.minimize run directory has no netlist: it said "the run's netlist . is not found"."""
    import numpy as np
    from zoaf.run import minimize

    minimize(lambda x: float(np.sum(x ** 2)), [(-1, 1)] * 2, budget=4, seed=0, out=tmp_path / "run")
    r = CliRunner().invoke(app, [command[0], str(tmp_path / "run"), *command[1:]])
    _one_line(r, f"{tmp_path / 'run' / 'history.db'}: a run of 'function', not a circuit run: sign-off simulates "
                 "a netlist, and this run has none")


def test_more_samples_than_a_run_can_hold_is_refused_before_anything_runs(tmp_path: Path) -> None:
    """All samples are asked at once: 10**14 of them was a numpy memory traceback."""
    from zoaf.signoff.yieldrun import MAX_SAMPLES

    for name in ("mc.cir", "mc.toml"):
        shutil.copy(CORPUS / name, tmp_path / name)
    r = CliRunner().invoke(app, ["yield", str(tmp_path / "mc.cir"), "--samples", str(10**14)])
    assert r.exit_code == 2 and "--samples" in r.output and "Traceback" not in r.output, r.output
    assert not (tmp_path / "yield").exists() and not list(tmp_path.glob("yield*"))
    assert MAX_SAMPLES >= 100_000                      # a 99.99% yield needs ~1e5 samples for a tight interval
    from zoaf.circuit import CircuitProblem
    from zoaf.errors import InputError
    from zoaf.signoff.yieldrun import run_yield

    problem = CircuitProblem(tmp_path / "mc.cir")
    with pytest.raises(InputError, match=r"--samples 100000000000000: must be within 1\.\.1,000,000"):
        run_yield(problem, {}, tmp_path / "lib", samples=10**14, seed=0)
    assert not (tmp_path / "lib").exists()


def test_a_corner_run_resumed_after_its_process_lib_changed_is_refused(tmp_path: Path) -> None:
    """A corner's process values come from ``process_lib``, which neither the netlist's hash nor the spec's covers:
    a run interrupted, its process section edited, resumed and mixed rows of two process models. The values each
    corner sets are part of the run's identity now: an edit of them is one line naming the value; a comment is not
    one."""
    shutil.copy(CORPUS / "mc.cir", tmp_path / "mc.cir")
    (tmp_path / "mc.toml").write_text((CORPUS / "mc.toml").read_text().replace(
        'constraints = ["gain_lf >= -1"] }', 'constraints = ["gain_lf >= -1"], corners = "all" }')
        + '[corners]\nprocess = ["tt", "ss"]\nprocess_lib = "rc.lib"\n')
    lib = tmp_path / "rc.lib"
    lib.write_text(".lib tt\n.param mc_r=0\n.endl tt\n.lib ss\n.param mc_r=2\n.endl ss\n")
    out, args = tmp_path / "run", ["optimize", str(tmp_path / "mc.cir"), "--workers", "0", "--quiet"]
    r = CliRunner().invoke(app, [*args, "--budget", "8", "--seed", "1", "--method", "random", "--out", str(out)])
    assert r.exit_code == 0, r.output
    lib.write_text(lib.read_text().replace("mc_r=2", "mc_r=-1"))
    _one_line(CliRunner().invoke(app, [*args, "--resume", str(out)]),
              "cannot resume: problem.corner_values.ss.mc_r is -1.0 now, 2.0 in the recorded run")
    lib.write_text(lib.read_text().replace("mc_r=-1", "mc_r=2") + "* the ss shift, checked\n")
    assert CliRunner().invoke(app, [*args, "--resume", str(out)]).exit_code == 0

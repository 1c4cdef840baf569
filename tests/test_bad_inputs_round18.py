"""Bad inputs, round 18: the library's and the command line's refusals that were a traceback, silently wrong, said
twice or of another thing, and what Ctrl-C amid a batch keeps. (The command-line cases of this round are in
bad_inputs/cases.toml, under "round 18".)"""
from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import zoaf
from zoaf.errors import InputError

CORPUS = Path(__file__).parent / "bad_inputs"


def _square(x: np.ndarray) -> float:
    return float(np.sum(x ** 2))


@pytest.mark.parametrize("kwargs, says", [
    ({"bounds": [(-1j, 1), (0, 1)]}, r"^bounds must be numbers, got \[\(\(-0-1j\), 1\), \(0, 1\)\]$"),
    ({"bounds": [(-1, 1)] * 2, "x0": [0.1 + 1j, 0]}, r"^x0 must be numbers, got \[\(0\.1\+1j\), 0\]$"),
    ({"bounds": [(-1, 1)] * 2, "target": 1j}, r"^target must be numbers, got 1j$")])
def test_a_complex_number_is_refused_not_cut_to_its_real_part(kwargs: dict, says: str) -> None:
    """numpy kept the real part with a ComplexWarning: bounds [(-1j, 1)] ran as (0, 1), x0 0.1+1j started at 0.1."""
    with pytest.raises(InputError, match=says):
        zoaf.minimize(_square, budget=3, seed=0, **kwargs)


def test_options_keyed_by_no_text_are_named() -> None:
    """``options={1: 2}`` was "TypeError: keywords must be strings" from the call that passed them on."""
    with pytest.raises(InputError, match=r"^minimize: options= names the method's options by text, got the key 1$"):
        zoaf.minimize(_square, [(-1, 1)], budget=3, seed=0, options={1: 2})


def test_an_out_that_is_no_path_is_named_and_nothing_is_made(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``out=5`` was pathlib's "expected str, bytes or os.PathLike object, not int"."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InputError, match=r"^out must be a directory path \(str or Path\), got int$"):
        zoaf.minimize(_square, [(-1, 1)], budget=3, seed=0, out=5)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("kwargs, says", [
    ({"netlist": 3}, r"^compare: netlist must be a path \(str or Path\), got int$"),
    ({"out": 3}, r"^compare: out must be a path \(str or Path\), got int$"),
    ({"progress": 3}, r"^compare: progress must be callable \(progress\(event\)\), got int$"),
    ({"objectives": [3]}, r"^compare: objectives are the spec's objective names, got 3$")])
def test_compare_arguments_of_the_wrong_kind_are_named_before_anything_is_written(kwargs: dict, says: str,
                                                                                 tmp_path: Path) -> None:
    """A number as the netlist or out was pathlib's TypeError, an objective named by a number "'int' object has no
    attribute 'strip'", and a progress that is no function raised at the first run, its manifest written."""
    from zoaf.compare import compare

    args = {"netlist": CORPUS / "good.cir", "methods": ["random"], "seeds": 1, "budget": 2, "jobs": 1,
            "out": tmp_path / "cmp", **kwargs}
    with pytest.raises(InputError, match=says):
        compare(**args)
    assert not (tmp_path / "cmp").exists()


@pytest.mark.parametrize("kwargs, says", [
    ({"samples": 2.5, "seed": 0}, r"^--samples 2\.5: must be a whole number >= 1$"),
    ({"samples": "2", "seed": 0}, r"^--samples '2': must be a whole number >= 1$"),
    ({"samples": 2, "seed": -1}, r"^--seed -1: must be a whole number >= 0$"),
    ({"samples": 2, "seed": 1.5}, r"^--seed 1\.5: must be a whole number >= 0$")])
def test_a_yield_of_samples_or_a_seed_that_are_no_whole_numbers_is_refused(kwargs: dict, says: str,
                                                                           tmp_path: Path) -> None:
    """``run_yield(samples=2.5)`` drew 3 samples, ``seed=1.5`` drew as seed 1; ``samples="2"`` was a TypeError and
    ``seed=-1`` numpy's ValueError."""
    from zoaf.circuit import CircuitProblem
    from zoaf.signoff.yieldrun import run_yield

    problem = CircuitProblem(CORPUS / "mc.cir")
    with pytest.raises(InputError, match=says):
        run_yield(problem, problem.default_params(), tmp_path / "y", workers=1, **kwargs)
    assert not (tmp_path / "y").exists()


def test_a_sky130_library_variable_naming_a_folder_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``ZOAF_SKY130_LIB`` set to the PDK's folder, for the library in it, was said "no such file"."""
    from zoaf import pdk

    monkeypatch.setenv(pdk.SKY130_ENV, str(tmp_path))
    with pytest.raises(pdk.PdkError, match=rf"^\$ZOAF_SKY130_LIB={tmp_path}: a folder; name the model library file "
                                           r"in it \(sky130\.lib\.spice\)$"):
        pdk.find_sky130_lib()


def test_ctrl_c_amid_a_batch_keeps_its_completed_simulations_in_the_result(tmp_path: Path) -> None:
    """The simulations of a batch that completed before Ctrl-C were in the history but not in the result: a run
    said "interrupted: FoM inf (0 simulations)" and wrote a result.json without the feasible sizing its history
    held. The resumed run still ends where the uninterrupted one does."""
    calls: list[int] = []

    def ctrl_c_at_the_third_call(x: np.ndarray) -> float:
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return _square(x)

    args = {"budget": 8, "seed": 0, "method": "random", "batch": 4}
    res = zoaf.minimize(ctrl_c_at_the_third_call, [(-1, 1)] * 2, out=tmp_path / "run", **args)
    assert res.message == "interrupted" and res.nfev == 2 and len(res.history) == 2
    assert res.fun == min(r.outcome.fom for r in res.history) and np.isfinite(res.fun)
    kept = json.loads((tmp_path / "run" / "result.json").read_text())
    assert kept["nfev"] == 2 and kept["fun"] == res.fun
    resumed = zoaf.minimize(_square, [(-1, 1)] * 2, out=tmp_path / "run", resume=True, **args)
    whole = zoaf.minimize(_square, [(-1, 1)] * 2, **args)
    assert (resumed.nfev, resumed.fun, list(resumed.x)) == (whole.nfev, whole.fun, list(whole.x))


def test_a_report_says_each_warning_once(tmp_path: Path) -> None:
    """``zoaf report`` (with its tables) said a trace.json's warning twice: once as it wrote the report, once as it
    read the comparison again for its tables."""
    from test_report import write_run

    for k in range(2):
        write_run(tmp_path / "power" / "zoaf" / f"seed-{k}", [3.0, 2.0 + k], 2, "zoaf", k)
    bad = tmp_path / "power" / "zoaf" / "seed-1"
    (bad / "history.db").unlink()
    (bad / "trace.json").write_text('{"rows": 5}')
    r = subprocess.run([sys.executable, "-m", "zoaf", "report", str(tmp_path)], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stderr.splitlines() == [f"warning: {bad / 'trace.json'}: not what zoaf writes (TypeError: "
                                     "'int' object is not iterable); its run is reported by its end in result.json, "
                                     "without a curve"], r.stderr


def test_the_resume_command_an_interrupt_says_is_quoted_for_the_shell(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """A netlist ``my rc.cir`` (or a run folder with a blank) was said unquoted: the command pasted back into a shell
    read ``my`` as the netlist."""
    from zoaf import cli

    for suffix in (".cir", ".toml"):
        shutil.copy(CORPUS / f"good{suffix}", tmp_path / f"my rc{suffix}")
    netlist, out = tmp_path / "my rc.cir", tmp_path / "my run"

    def interrupted(*args, **kwargs) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("zoaf.plots.plot_convergence", interrupted)   # Ctrl-C as the end files are written
    monkeypatch.setattr(sys, "argv", ["zoaf", "optimize", str(netlist), "--budget", "2", "--seed", "0",
                                      "--workers", "0", "--quiet", "--out", str(out)])
    with pytest.raises(SystemExit) as e:
        cli.main()
    said = capsys.readouterr().err.splitlines()[-1]
    assert e.value.code == 130 and said.startswith("interrupted: resume with  "), said
    assert shlex.split(said.removeprefix("interrupted: resume with  ")) == [
        "zoaf", "optimize", str(netlist), "--resume", str(out)]

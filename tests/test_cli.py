"""The ``zoaf`` command line end to end on the real benchmark, netlists/two_stage_amp.cir (subprocesses).

``check`` and ``simulate`` on the default and a changed sizing; ``optimize`` writes a complete run directory
whose ``best.cir`` reproduces ``result.json`` under ``ngspice -b``; the same seed gives the same result.
"""
from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest

from zoaf import units
from zoaf.netlist import Netlist
from zoaf.spec import Spec

ROOT = Path(__file__).parent.parent
AMP = ROOT / "netlists" / "two_stage_amp.cir"
SPEC = Spec.read(AMP.with_suffix(".toml"))
PARAMS = [p.name for p in SPEC.parameters]
MEASURES = list(SPEC.measures)
#: Simulations per optimize run: enough for every phase of a short run, ~5-10 s.
BUDGET = 60


def zoaf(*args: str, cwd: Path = ROOT, timeout: float = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ, COLUMNS="200", NO_COLOR="1", TERM="dumb")
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    r = subprocess.run([sys.executable, "-m", "zoaf", *args], cwd=cwd, env=env, capture_output=True, text=True,
                       timeout=timeout)
    assert "Traceback" not in r.stdout + r.stderr, r.stderr
    return r


def _ended_code(r: subprocess.CompletedProcess) -> int:
    """The exit code of an ``optimize --json`` run that ended: 3 where no sizing met every constraint, else 0."""
    return 3 if json.loads(r.stdout)["feasible"] is False else 0


def test_spec_has_22_parameters() -> None:
    assert len(PARAMS) == 22


def test_check_tables() -> None:
    r = zoaf("check", str(AMP))
    assert r.returncode == 0, r.stderr
    for name in PARAMS + MEASURES + list(SPEC.objectives):
        assert name in r.stdout, f"{name} missing from `zoaf check` output"
    assert "maximize ugbw_hz (nominal here; a run takes the worst of 12 corners)" in r.stdout


def test_check_json() -> None:
    r = zoaf("check", str(AMP), "--json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert set(data) == {"status", "params", "measures", "objectives", "error", "sandbox", "reads_outside",
                         "unused_params"}
    assert data["status"] == "ok" and data["error"] is None and data["reads_outside"] == []
    assert data["sandbox"]["seccomp"]["state"] == "active"    # the default sizing ran sandboxed
    assert list(data["params"]) == PARAMS
    assert all(isinstance(v, float) for v in data["params"].values())
    nl = Netlist.read(AMP)
    for name, value in data["params"].items():           # SI floats equal to the netlist's .param defaults
        assert value == units.parse(nl.params[name]), name
    assert data["params"]["w1"] == 8e-6
    assert set(MEASURES) <= set(data["measures"])
    assert all(isinstance(v, float) and math.isfinite(v) for v in data["measures"].values())
    assert set(data["objectives"]) == set(SPEC.objectives)
    for row in data["objectives"].values():
        assert set(row) == {"fom", "value", "feasible", "constraints", "corners"}
    # a corner objective is shown at the nominal sizing only, and says so (it read as the worst case)
    assert len(data["objectives"]["ugbw_pvt"]["corners"]) == 12 and data["objectives"]["ugbw"]["corners"] == []


def test_simulate_set_values() -> None:
    default = json.loads(zoaf("check", str(AMP), "--json").stdout)
    r = zoaf("simulate", str(AMP), "--set", "w1=20u", "--set", "cc=2p", "--json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["status"] == "ok"
    assert data["params"]["w1"] == 2e-5
    assert data["params"]["cc"] == 2e-12
    others = {k: v for k, v in data["params"].items() if k not in ("w1", "cc")}
    assert others == {k: v for k, v in default["params"].items() if k not in ("w1", "cc")}
    assert data["measures"]["ugbw_hz"] != default["measures"]["ugbw_hz"]   # the new sizing was simulated


# ---------------------------------------------------------------------- optimize
@pytest.fixture(scope="module")
def run_dirs(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[Path, dict]]:
    """Two optimize runs with the same seed, with 1 and 2 worker processes: (run dir, --json output). They run side
    by side (on two cores, the fixture takes about the longer run, not both)."""
    outs = [tmp_path_factory.mktemp("opt") / name for name in ("a", "b")]

    def run(out: Path, workers: str) -> subprocess.CompletedProcess:
        return zoaf("optimize", str(AMP), "--budget", str(BUDGET), "--seed", "1", "--json", "--out", str(out),
                    "--workers", workers)
    with ThreadPoolExecutor(2) as pool:
        done = list(pool.map(run, outs, ("1", "2")))
    for r in done:         # an INFEASIBLE end (no sizing met every constraint) exits 3
        assert r.returncode == _ended_code(r), r.stdout[-3000:] + r.stderr[-3000:]
    return [(out, json.loads(r.stdout)) for out, r in zip(outs, done)]


def test_optimize_run_directory(run_dirs: list[tuple[Path, dict]]) -> None:
    out, printed = run_dirs[0]
    for name in ("best.cir", "result.json", "history.db", "convergence.png"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    result = json.loads((out / "result.json").read_text())
    assert result["nfev"] == printed["nfev"] == BUDGET
    assert result["seed"] == 1 and math.isfinite(result["fun"])
    assert result["success"] == result["feasible"] and "constraint" in result["message"]   # INFEASIBLE, yet exit 0
    assert set(result["params"]) == set(PARAMS)
    assert set(MEASURES) <= set(result["measures"])
    assert Path(printed["out"]) == out
    for p in SPEC.parameters:                              # the best point is inside the box
        assert p.lo <= result["params"][p.name] <= p.hi, p.name


def test_best_cir_reproduces_result(run_dirs: list[tuple[Path, dict]], tmp_path: Path) -> None:
    """``ngspice -b best.cir`` (from another directory: include paths are absolute) gives result.json's measures."""
    from zoaf.spice import run_batch

    out, _ = run_dirs[0]
    if shutil.which("ngspice") is None:
        pytest.fail("ngspice is not on PATH")
    best = tmp_path / "best.cir"
    shutil.copy(out / "best.cir", best)
    result = json.loads((out / "result.json").read_text())
    got = run_batch(best)
    meas_names = [m.name for m in Netlist.read(best).measures]
    assert set(meas_names) <= set(got), f"ngspice -b printed {sorted(got)}"
    common = sorted(set(got) & set(result["measures"]))
    assert set(meas_names) <= set(common)
    for name in common:
        # ngspice -b prints `meas` results with 6 significant digits: equal to that precision (5e-6)
        assert math.isclose(got[name], result["measures"][name], rel_tol=6e-6, abs_tol=1e-12), \
            f"{name}: ngspice -b best.cir gives {got[name]!r}, result.json has {result['measures'][name]!r}"
    nl = Netlist.read(best)
    for name in PARAMS:                                    # best.cir carries result.json's values exactly
        assert float(nl.params[name]) == result["params"][name], name


def test_same_seed_same_result(run_dirs: list[tuple[Path, dict]]) -> None:
    """Same seed, 1 or 2 workers: the same result.json and best.cir (results do not depend on timing; ZOAF's
    batches on the amplifier are wider than 2 either way), but for the batch width each run records."""
    (a, _), (b, _) = run_dirs
    ra, rb = (json.loads((d / "result.json").read_text()) for d in (a, b))
    assert (ra["settings"].pop("batch_width"), rb["settings"].pop("batch_width")) == (1, 2)
    assert ra == rb
    assert (a / "best.cir").read_text() == (b / "best.cir").read_text()


def test_resume_finished_run_changes_nothing(run_dirs: list[tuple[Path, dict]]) -> None:
    out, _ = run_dirs[1]
    before = (out / "result.json").read_text()
    r = zoaf("optimize", str(AMP), "--resume", str(out), "--json", "--workers", "1")
    assert r.returncode == _ended_code(r), r.stderr[-3000:]
    assert json.loads((out / "result.json").read_text()) == json.loads(before)
    assert json.loads(r.stdout)["nfev"] == BUDGET


def test_optimize_starts_from_the_netlist_sizing_or_the_centre(tmp_path: Path) -> None:
    import sqlite3

    defaults = Netlist.read(AMP).params
    starts = ((None, tmp_path / "netlist"), ("center", tmp_path / "center"))

    def run(x0: str | None, out: Path) -> subprocess.CompletedProcess:
        return zoaf("optimize", str(AMP), "--budget", "1", "--seed", "0", "--workers", "0", "--quiet", "--out",
                    str(out), *(("--x0", x0) if x0 else ()))
    with ThreadPoolExecutor(2) as pool:                  # the two runs side by side
        done = list(pool.map(run, *zip(*starts)))
    for (x0, out), r in zip(starts, done):
        assert r.returncode in (0, 1, 3), r.stderr[-3000:]
        with sqlite3.connect(out / "history.db") as db:
            u, params = db.execute("SELECT u, params FROM evals WHERE idx = 0").fetchone()
        if x0 is None:    # ZOAF's first point is the designer's sizing: every .param as written in the netlist
            assert json.loads(params) == pytest.approx({n: units.parse(defaults[n]) for n in PARAMS}, rel=1e-9)
        else:
            assert json.loads(u) == [0.5] * len(PARAMS)
    r = zoaf("optimize", str(AMP), "--budget", "1", "--x0", "middle", "--out", str(tmp_path / "bad"))
    assert r.returncode == 2 and "--x0" in r.stderr and "middle" in r.stderr


def test_resume_with_another_out_is_refused(run_dirs: list[tuple[Path, dict]], tmp_path: Path) -> None:
    """--out beside --resume was silently ignored (the run went on in the --resume directory)."""
    out, _ = run_dirs[1]
    other = tmp_path / "other"
    before = (out / "history.db").read_bytes()
    r = zoaf("optimize", str(AMP), "--resume", str(out), "--out", str(other), "--workers", "1")
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert f"--out {other}: a resumed run stays in its directory" in r.stderr
    assert not other.exists() and (out / "history.db").read_bytes() == before


def test_a_quiet_run_that_found_no_sizing_says_why(tmp_path: Path) -> None:
    """``--quiet`` with exit code 1 printed nothing: a script saw the code and no reason."""
    (tmp_path / "rc.toml").write_text('[parameters]\nr1 = { lo = "100", hi = "10k" }\n[measures]\nf3 = {}\ng = {}\n'
                                      '[objectives]\nf3 = { maximize = "f3" }\n')
    (tmp_path / "rc.cir").write_text("rc\n.param r1=1k\nv1 in 0 dc 0 ac 1\nr1 in out {r1}\nc1 out 0 1n\n"
                                     ".ac dec 10 1k 1meg\n.meas ac f3 when vdb(out)=-300\n"
                                     ".meas ac g find vdb(out) at=1k\n.end\n")           # f3: never that low
    r = zoaf("optimize", str(tmp_path / "rc.cir"), "--budget", "2", "--quiet", "--workers", "0",
             "--out", str(tmp_path / "run"))
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.returncode == 1 and r.stdout == "" and len(lines) == 1, r.stderr
    assert lines[0].startswith("error: no sizing gave every measure the objective needs (the first error: ")


CORPUS = ROOT / "tests" / "bad_inputs"


def rc_deck(tmp_path: Path, params: str, spec_params: str) -> Path:
    """The corpus' RC low-pass driven by a fixed `.param vsup` (its gain_lf is 20 log10(vsup)), with other
    `.param` defaults and spec [parameters]."""
    deck = (CORPUS / "good.cir").read_text().replace(".param r1=1k c1=1n", f".param {params}")
    (tmp_path / "rc.cir").write_text(deck.replace("dc 0 ac 1", "dc 0 ac {vsup}").replace(".ac", ".save all\n.ac"))
    spec = (CORPUS / "good.toml").read_text().split("[measures]")[1]
    (tmp_path / "rc.toml").write_text(f"[parameters]\n{spec_params}\n[measures]{spec}")
    return tmp_path / "rc.cir"


@pytest.mark.parametrize("command", [["check"], ["simulate"]])
def test_a_deck_default_outside_the_box_is_simulated_with_a_note(tmp_path: Path, command: list[str]) -> None:
    """r1 = 200k against a 100k upper bound, k = 2.5 on an integer axis: simulated as written (a run never
    would: the note says so, one line each), not refused and not silently."""
    rc = rc_deck(tmp_path, "r1=200k c1=100p vsup=1 k=2.5", 'r1 = { lo = "100", hi = "100k" }\n'
                 'c1 = { lo = "10p", hi = "10n" }\nk = { lo = 1, hi = 4, type = "int" }')
    r = zoaf(*command, str(rc), "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["params"]["r1"] == 2e5
    notes = [ln for ln in r.stderr.splitlines() if ln.startswith("note:")]
    assert notes == [f"note: {rc}:2: .param k is a design variable of the spec, but no line of the deck or its "
                     "includes reads it: it changes no simulation, and a run spends simulations on it (use it in the "
                     "deck, or remove it from the spec's [parameters])",      # k: the deck never reads it
                     f"note: {rc}: .param r1 = 200k, but the spec's parameters.r1 is within [100, 100k]: "
                     "simulated as written",
                     f"note: {rc}: .param k = 2.5, but the spec's parameters.k is an integer within [1, 4]: "
                     "simulated as written"], r.stderr


def test_set_takes_a_fixed_param_of_the_deck(tmp_path: Path) -> None:
    """`--set vsup=2` on the deck's supply (a .param the spec does not size) is the override a corner makes:
    simulated with it (gain_lf is 20 log10 2 dB); a name that is no .param at all is still refused."""
    rc = rc_deck(tmp_path, "r1=1k c1=1n vsup=1", 'r1 = { lo = "100", hi = "100k" }\nc1 = { lo = "10p", hi = "10n" }')
    r = zoaf("simulate", str(rc), "--set", "vsup=2", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["measures"]["gain_lf"] == pytest.approx(20 * math.log10(2), abs=1e-3)
    r = zoaf("simulate", str(rc), "--set", "vbias=2")
    assert r.returncode == 2 and "unknown parameter 'vbias'; parameters: r1, c1; fixed .params of the deck: " \
        "vsup" in r.stderr, r.stderr


@contextmanager
def read_only(path: Path) -> Iterator[None]:
    """``path``, a directory, unwritable: by its mode, or for root (whom modes do not stop) ``chattr +i``; the test
    is skipped where neither holds."""
    path.chmod(0o555)
    immutable = False
    try:
        try:
            (path / ".probe").touch()
        except PermissionError:
            pass
        else:
            (path / ".probe").unlink()
            immutable = subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode == 0
            if not immutable:
                pytest.skip("no way to make a directory read-only here (root, no chattr)")
        yield
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(path)], check=True)
        path.chmod(0o755)


def test_a_read_only_comparison_directory_is_one_line(tmp_path: Path) -> None:
    """``zoaf report`` and ``zoaf compare`` on a comparison directory they cannot write printed a PermissionError
    traceback naming a temporary file."""
    rc = ROOT / "tests" / "bad_inputs" / "good.cir"
    out = tmp_path / "cmp"
    grid = ["-m", "random", "--budget", "3", "--jobs", "1", "-q", "--out", str(out)]
    assert zoaf("compare", str(rc), "--seeds", "1", *grid).returncode == 0
    with read_only(out):
        for command, written in ((["report", str(out), "-q"], r"\S+\.png"),
                                 (["compare", str(rc), "--seeds", "2", *grid], "compare.json")):
            r = zoaf(*command)
            assert (r.returncode, r.stdout, r.stderr.count("\n")) == (2, "", 1), r.stderr
            why = "(Permission denied|Operation not permitted)"
            assert re.fullmatch(f"error: {re.escape(str(out))}/{written}: {why}\n", r.stderr), r.stderr
    assert not (out / "bw" / "random" / "seed-1").exists()

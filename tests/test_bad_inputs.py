"""The bad-input corpus (tests/bad_inputs/cases.toml) through the real CLI, in subprocesses.

Every case must exit with code 2 and print exactly one line on stderr that names the file/line/field (the
case's regex), never a traceback. The terminal is made narrow (COLUMNS=40) so that any rich wrapping of the
error line would show up as a second line. The subprocesses run concurrently (one fixture launches them all),
so the ~90 cases (~0.3 s of CPU each) take about a minute over the cores rather than more.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

CORPUS = Path(__file__).parent / "bad_inputs"
CASES = tomllib.loads((CORPUS / "cases.toml").read_text())["case"]
#: Written by cir/shell_control.cir's `shell` command if the refusal ever failed.
PWNED = Path("/tmp/zoaf_pwned")
#: Seconds one case may take (a bad input must be refused fast, before any optimization starts).
CASE_TIMEOUT = 60


def _env() -> dict[str, str]:
    env = dict(os.environ, COLUMNS="40", LINES="20", NO_COLOR="1", TERM="dumb")
    root = str(Path(__file__).parent.parent)
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "") if env.get("PYTHONPATH") else root
    return env


def _run(case: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "zoaf", *case["args"]], cwd=CORPUS, env=_env(),
                          capture_output=True, text=True, timeout=CASE_TIMEOUT)


def _make_unversionable() -> list[Path]:
    """The inputs git cannot hold: a FIFO, and a spec one byte over the size limit (1 MiB is too big to commit)."""
    fifo, big = CORPUS / "spec" / "fifo", CORPUS / "spec" / "too_large"
    fifo.unlink(missing_ok=True)
    os.mkfifo(fifo)
    big.write_text("# padding\n" * (2**20 // 10) + "#" * (2**20 % 10 + 1))
    return [fifo, big]


@pytest.fixture(scope="module")
def results() -> dict[str, subprocess.CompletedProcess]:
    PWNED.unlink(missing_ok=True)
    made = _make_unversionable()
    try:
        with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
            done = dict(zip([c["id"] for c in CASES], pool.map(_run, CASES)))
    finally:
        for path in made:
            path.unlink(missing_ok=True)
    yield done


def test_corpus_is_well_formed() -> None:
    ids = [c["id"] for c in CASES]
    assert len(ids) == len(set(ids)), "duplicate case ids"
    assert len(CASES) >= 30
    for c in CASES:
        assert set(c) <= {"id", "args", "error", "json", "why"}, c["id"]
        re.compile(c["error"])
        for a in c["args"]:
            if a.endswith((".cir", ".toml")) and "nosuch" not in a and "no_spec_beside.toml" not in a:
                assert (CORPUS / a).exists(), f"{c['id']}: {a} is missing from the corpus"


def test_good_pair_is_good() -> None:
    """The corpus' base netlist + spec are valid: each bad case fails for its own reason only."""
    r = subprocess.run([sys.executable, "-m", "zoaf", "check", "good.cir", "--json"], cwd=CORPUS, env=_env(),
                       capture_output=True, text=True, timeout=CASE_TIMEOUT)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["status"] == "ok"


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_bad_input(case: dict, results: dict[str, subprocess.CompletedProcess]) -> None:
    r = results[case["id"]]
    shown = f"args: {case['args']}\nstdout: {r.stdout[-2000:]}\nstderr: {r.stderr[-4000:]}"
    assert "Traceback" not in r.stdout + r.stderr, shown
    assert r.returncode == 2, shown
    if case.get("json"):
        assert r.stderr.strip() == "", shown
        lines = [ln for ln in r.stdout.splitlines() if ln.strip()]
        assert len(lines) == 1, shown
        data = json.loads(lines[0])
        assert data["status"] == "failed", shown
        assert re.search(case["error"], data["error"]), shown
        return
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, f"expected exactly one error line\n{shown}"
    line = lines[0]
    assert line.startswith("error: "), shown
    assert re.search(case["error"], line), f"regex {case['error']!r} does not match\n{shown}"
    assert r.stdout.strip() == "", f"nothing on stdout for a refused input\n{shown}"


def test_shell_was_not_run(results: dict[str, subprocess.CompletedProcess]) -> None:
    assert not PWNED.exists(), "the refused `shell` command in cir/shell_control.cir ran"


def test_refused_optimize_writes_no_run_directory(tmp_path: Path) -> None:
    """A bad input is refused before anything is created: no half-made run directory is left behind."""
    out = tmp_path / "run"
    r = subprocess.run([sys.executable, "-m", "zoaf", "optimize", "good.cir", "--spec", "spec/lo_ge_hi.toml",
                        "--out", str(out), "--budget", "3"], cwd=CORPUS, env=_env(), capture_output=True,
                       text=True, timeout=CASE_TIMEOUT)
    assert r.returncode == 2, r.stderr
    assert not out.exists()


def test_title_words_are_not_errors(tmp_path: Path) -> None:
    """A valid netlist whose title line says 'cannot'/'error' must simulate (ngspice echoes the title on reset)."""
    text = (CORPUS / "good.cir").read_text().splitlines()
    text[0] = "RC low-pass: this title says error, cannot, failed and aborted, the circuit is fine"
    (tmp_path / "title.cir").write_text("\n".join(text) + "\n")
    r = subprocess.run([sys.executable, "-m", "zoaf", "check", str(tmp_path / "title.cir"), "--spec",
                        str(CORPUS / "good.toml"), "--json"], env=_env(), capture_output=True, text=True,
                       timeout=CASE_TIMEOUT)
    assert r.returncode == 0, r.stdout + r.stderr
    assert json.loads(r.stdout)["status"] == "ok"

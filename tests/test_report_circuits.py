"""``zoaf report DIR`` checks that a comparison's runs are of one circuit whenever their histories record a circuit's
hashes, not only when ``compare.json`` names the netlist: a received folder whose ``compare.json`` names none (edited,
or assembled by hand) ranked runs of two circuits as one's. A function-problem grid, whose histories record no
hashes, is reported as before."""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from attackkit import CORPUS
from typer.testing import CliRunner

import zoaf
from zoaf.cli import app


@pytest.fixture(scope="module")
def compared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sender's finished comparison of a copy of mc.cir (objective ``bw``, method random, seeds 0 to 2), and the
    designer's other deck (its capacitor scaled) beside it."""
    sender = tmp_path_factory.mktemp("sender")
    for name in ("mc.cir", "mc.toml"):
        shutil.copy(CORPUS / name, sender / name)
    (sender / "other.cir").write_text((CORPUS / "mc.cir").read_text().replace("C1 out 0 {c1}", "C1 out 0 {c1*7}"))
    shutil.copy(CORPUS / "mc.toml", sender / "other.toml")
    r = CliRunner().invoke(app, ["compare", str(sender / "mc.cir"), "--methods", "random", "--seeds", "3",
                                 "--budget", "3", "--jobs", "1", "--quiet", "--out", str(sender / "cmp")])
    assert r.exit_code == 0, r.output
    return sender


@pytest.fixture
def unnamed(compared: Path, tmp_path: Path) -> Path:
    """A received copy of the comparison whose ``compare.json`` names no netlist."""
    root = Path(shutil.copytree(compared / "cmp", tmp_path / "received" / "cmp", symlinks=True))
    manifest = json.loads((root / "compare.json").read_text())
    assert manifest.pop("netlist")
    (root / "compare.json").write_text(json.dumps(manifest))
    return root


def _report(root: Path):
    return CliRunner().invoke(app, ["report", str(root), "-q"])


def test_a_run_of_another_circuit_is_refused_when_compare_json_names_no_netlist(compared: Path, unnamed: Path) -> None:
    """Seed 2 made again on the other deck: it was ranked with the others (exit 0); refused in one line naming it."""
    seed2 = unnamed / "bw" / "random" / "seed-2"
    shutil.rmtree(seed2)
    made = CliRunner().invoke(app, ["optimize", str(compared / "other.cir"), "--method", "random", "--budget", "3",
                                    "--seed", "2",
                                    "--workers", "0", "--quiet", "--out", str(seed2)])
    assert made.exit_code == 0, made.output
    r = _report(unnamed)
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.exit_code == 2 and len(lines) == 1, r.output
    assert lines[0] == (f"error: {seed2}: a run of another circuit: its history records another netlist (or a file it "
                        f"includes) than {unnamed / 'bw' / 'random' / 'seed-0'}'s: a comparison ranks runs of one "
                        "circuit; move the run out")
    assert not (unnamed / "report.md").exists() or "seed-2" not in (unnamed / "report.md").read_text()


def test_runs_of_one_circuit_are_reported_when_compare_json_names_no_netlist(unnamed: Path) -> None:
    r = _report(unnamed)
    assert r.exit_code == 0, r.output
    assert re.search(r"^\| random \| 3 \|", (unnamed / "report.md").read_text(), re.M)


def test_a_function_problem_grid_is_reported(tmp_path: Path) -> None:
    """``zoaf.minimize`` runs laid out as a comparison: their histories record no circuit, and nothing is refused."""
    for method in ("random", "de"):
        for seed in range(2):
            zoaf.minimize(lambda x: float(np.sum((x - 0.3) ** 2)), [(-1, 1)] * 2, budget=6, seed=seed, method=method,
                          out=tmp_path / "quad" / method / f"seed-{seed}")
    r = _report(tmp_path)
    assert r.exit_code == 0, r.output
    text = (tmp_path / "report.md").read_text()
    assert re.search(r"^\| random \| 2 \|", text, re.M) and re.search(r"^\| de \| 2 \|", text, re.M)


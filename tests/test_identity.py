"""A run's identity covers the files its deck includes, by content: --resume refuses a run whose models changed."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import zoaf
from zoaf.circuit import CircuitProblem
from zoaf.errors import InputError

HERE = Path(__file__).parent


def test_resume_refused_when_an_included_file_changed(tmp_path):
    deck = tmp_path / "rc.cir"
    deck.write_text((HERE / "netlists" / "rc.cir").read_text().replace("Rl out 0 {rload}", ".include load.inc"))
    (tmp_path / "load.inc").write_text("* the load\nRl out 0 {rload}\n")
    shutil.copy(HERE / "bad_inputs" / "good.toml", tmp_path / "rc.toml")
    run = tmp_path / "run"
    first = zoaf.optimize(CircuitProblem(deck), budget=4, seed=0, method="random", out=run)
    (tmp_path / "load.inc").write_text("* the load, changed\nRl out 0 {2*rload}\n")
    with pytest.raises(InputError, match=r"cannot resume: problem.netlist_sha256 differs"):
        zoaf.optimize(CircuitProblem(deck), budget=4, seed=0, method="random", out=run, resume=True)
    (tmp_path / "load.inc").write_text("* the load\nRl out 0 {rload}\n")      # the same content again
    again = zoaf.optimize(CircuitProblem(deck), budget=4, seed=0, method="random", out=run, resume=True)
    assert again.fun == first.fun

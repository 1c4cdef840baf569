"""A failure inside Nevergrad ends the run with what it computed, in one line.

Nevergrad 1.0.12's ``MetaModel`` (NGOpt's pick at small dimension with ``num_workers >= 2``, at any budget; also
at large ones) calls ``float()`` on a 1-element array once its quadratic model of the archive's best points is
good enough, which numpy >= 2.4 refuses (``TypeError``). On a circuit whose objective is rarely that regular the
model is refused first ("unlearnable") and nothing happens; on a smooth one the run ended with a traceback.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import zoaf
from zoaf import registry
from zoaf.errors import ZoafError, ZoafWarning
from zoaf.optim import StopReason

ROOT = Path(__file__).parent.parent
pytest.importorskip("nevergrad")

#: q = (a - 0.3)^2 + (b - 0.3)^2 + 0.01 measured by ngspice: smooth enough for Nevergrad's quadratic model.
QUADRATIC_DECK = ("quadratic\n.param a=0.5 b=0.5\nv1 in 0 dc 0 ac {(a-0.3)*(a-0.3)+(b-0.3)*(b-0.3)+0.01}\n"
                  "r1 in 0 1k\n.ac dec 2 1k 10k\n.meas ac q find vm(in) at=1k\n.end\n")
QUADRATIC_SPEC = ('[parameters]\na = { lo = "0", hi = "1" }\nb = { lo = "0", hi = "1" }\n[measures]\nq = {}\n'
                  '[objectives]\nq = { minimize = "q" }\n')


def test_the_cli_run_ends_with_its_best_point_and_one_line(tmp_path: Path) -> None:
    """``zoaf optimize --method ngopt --workers 2`` on a smooth circuit: Nevergrad's TypeError was a traceback and
    no end files; now one ``warning:`` line names it, the run's best point so far is its result (exit 1)."""
    (tmp_path / "quad.cir").write_text(QUADRATIC_DECK)
    (tmp_path / "quad.toml").write_text(QUADRATIC_SPEC)
    env = dict(os.environ, COLUMNS="400", NO_COLOR="1", TERM="dumb", PYTHONPATH=str(ROOT))
    r = subprocess.run([sys.executable, "-m", "zoaf", "optimize", str(tmp_path / "quad.cir"), "--method", "ngopt",
                        "--workers", "2", "--budget", "50", "--seed", "0", "--out", str(tmp_path / "run")],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 1 and "Traceback" not in r.stdout + r.stderr, r.stdout + r.stderr
    warned = [ln for ln in (r.stdout + r.stderr).splitlines() if ln.startswith("warning: ngopt: Nevergrad")]
    assert len(warned) == 1 and "failed inside NGOpt (its pick: MetaModel)" in warned[0], r.stdout + r.stderr
    assert "TypeError: only 0-dimensional arrays" in warned[0] and "metamodel.py:" in warned[0]
    result = json.loads((tmp_path / "run" / "result.json").read_text())
    assert result["stop_reason"] == "method-failed" and 0 < result["nfev"] < 50
    assert (tmp_path / "run" / "best.cir").is_file()
    with zoaf.history.History(tmp_path / "run" / "history.db", read=True) as h:
        foms = [rec.fom for rec in h.records()]
    assert len(foms) == result["nfev"] and result["fun"] == min(foms)


def test_a_failure_mid_run_stops_the_method_with_a_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever Nevergrad raises after the first tell (here its metamodel's step, replaced): ``zoaf.minimize``
    returns the best point of the simulations made, ``StopReason.METHOD_FAILED``, and warns once naming it."""
    from nevergrad.optimization import optimizerlib

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("inside the library")

    monkeypatch.setattr(optimizerlib, "learn_on_k_best", broken)
    calls: list[float] = []

    def fun(x: np.ndarray) -> float:
        calls.append(float(np.sum((x - 0.3) ** 2)))
        return calls[-1]

    with pytest.warns(ZoafWarning, match=r"ngopt: Nevergrad .* failed inside NGOpt .*RuntimeError: inside the "
                                         r"library \(at nevergrad/.*\); the run ends there"):
        res = zoaf.minimize(fun, [(-1, 1)] * 2, budget=50, seed=0, method="ngopt", num_workers=2)
    assert res.stop_reason is StopReason.METHOD_FAILED and not res.success and res.status == 2
    assert res.nfev == len(calls) < 50 and res.fun == min(calls)


def test_a_failure_at_the_first_ask_is_one_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing simulated yet: the run fails as a ZoafError naming Nevergrad (the command line's one line)."""
    opt = registry.create("ngcma", 2, 20, 0)
    monkeypatch.setattr(opt._ng, "ask", lambda: 1 / 0)
    with pytest.raises(ZoafError, match=r"ngcma: Nevergrad .* failed inside CMA .*after 0 simulations.*"
                                        r"ZeroDivisionError: division by zero; before any simulation$"):
        opt.ask()

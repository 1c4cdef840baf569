"""The house's conventions kept: a run its callback stopped says so (not "interrupted", as a Ctrl-C), as scipy's does."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import zoaf
from zoaf.history import History
from zoaf.stats import is_complete


def _sphere(x: np.ndarray) -> float:
    return float(np.sum((np.asarray(x) - 0.3) ** 2))


def _rows(db: Path) -> int:
    with History(db) as h:
        return len(list(h.records()))


@pytest.mark.parametrize("how", ["returns True", "raises StopIteration"])
def test_a_callback_that_stops_the_run_is_its_own_stop_reason(tmp_path: Path, how: str) -> None:
    """A callback's stop said "interrupted", status 1, as a Ctrl-C does. It is ``StopReason.CALLBACK`` now: message
    "stopped by the callback", status 99 and no success, as scipy's ``minimize`` after a ``StopIteration``; the
    result is the best point so far with every row, and the run resumes to where the uncut one ends."""
    seen: list[int] = []

    def enough(result: zoaf.Result) -> bool:
        seen.append(result.nfev)
        if result.nfev >= 30 and how == "raises StopIteration":
            raise StopIteration
        return result.nfev >= 30

    args = {"budget": 80, "seed": 4, "method": "zoaf"}
    out = tmp_path / "cut"
    res = zoaf.minimize(_sphere, [(-1, 1)] * 3, callback=enough, out=out, **args)
    assert res.stop_reason is zoaf.StopReason.CALLBACK and res.message == "stopped by the callback"
    assert res.status == 99 and not res.success and not res.completed
    assert res.nfev == seen[-1] >= 30 and res.nfev < 80 and len(res.history) == res.nfev == _rows(out / "history.db")
    best = min(res.history, key=lambda r: r.outcome.fom)
    assert res.fun == best.outcome.fom == _sphere(res.x) and list(res.x) == list(best.params.values())
    kept = json.loads((out / "result.json").read_text())
    assert kept["stop_reason"] == "callback" and kept["message"] == "stopped by the callback"
    assert not is_complete(out)                  # a comparison resumes it, as an interrupted one
    resumed = zoaf.minimize(_sphere, [(-1, 1)] * 3, out=out, resume=True, **args)
    whole = zoaf.minimize(_sphere, [(-1, 1)] * 3, out=tmp_path / "whole", **args)
    assert resumed.stop_reason is whole.stop_reason is not zoaf.StopReason.CALLBACK
    assert (out / "result.json").read_text() == (tmp_path / "whole" / "result.json").read_text()


def test_ctrl_c_still_says_interrupted() -> None:
    """The two stops stay apart: a KeyboardInterrupt raised by ``fun`` is the user's, status 1."""
    def ctrl_c_late(x: np.ndarray) -> float:
        ctrl_c_late.calls += 1
        if ctrl_c_late.calls == 12:
            raise KeyboardInterrupt
        return _sphere(x)

    ctrl_c_late.calls = 0
    res = zoaf.minimize(ctrl_c_late, [(-1, 1)] * 2, budget=40, seed=0, method="random")
    assert res.stop_reason is zoaf.StopReason.INTERRUPTED and res.message == "interrupted" and res.status == 1
    assert res.nfev == 11

"""The fault-injection wrapper: faults depend on the point only, at the asked rates, and pickle."""
from __future__ import annotations

import os
import pickle

import numpy as np
import pytest

from zoaf.errors import InputError
from zoaf.evaluate import Evaluator
from zoaf.faults import FaultyProblem
from zoaf.function import FunctionProblem
from zoaf.problem import Parameter, Status


def total(x: np.ndarray) -> float:
    return float(np.sum(x))


def inner() -> FunctionProblem:
    return FunctionProblem(total, [Parameter("a", 0.0, 1.0), Parameter("b", 1e-6, 1e-3, "log")])


def test_fault_depends_only_on_the_point_and_salt():
    p = FaultyProblem(inner(), fail=0.2, hang=0.1, kill=0.1)
    q = pickle.loads(pickle.dumps(p))
    xs = p.to_physical(np.random.default_rng(0).random((200, 2)))
    assert [p.fault_of(x) for x in xs] == [q.fault_of(x) for x in xs]
    other = FaultyProblem(inner(), fail=0.2, hang=0.1, kill=0.1, salt=1)
    assert [p.fault_of(x) for x in xs] != [other.fault_of(x) for x in xs]


def test_fault_rates_match_the_fractions():
    p = FaultyProblem(inner(), fail=0.1, hang=0.05, kill=0.02, poison=0.03)
    xs = p.to_physical(np.random.default_rng(1).random((20000, 2)))
    faults = [p.fault_of(x) for x in xs]
    for name, frac in [("fail", 0.1), ("hang", 0.05), ("kill", 0.02), ("poison", 0.03), (None, 0.8)]:
        assert abs(faults.count(name) / len(xs) - frac) < 0.01, name


def test_in_process_faults_fail_instead_of_killing_the_caller():
    p = FaultyProblem(inner(), kill=1.0, kill_always=True)
    o = p.simulate(np.array([0.5, 1e-4]))
    assert o.status is Status.FAILED and "suppressed" in o.error
    assert FaultyProblem(inner(), fail=1.0).simulate(np.array([0.5, 1e-4])).status is Status.FAILED
    ok = FaultyProblem(inner()).simulate(np.array([0.5, 1e-4]))
    assert ok.status is Status.OK and ok.fom == pytest.approx(0.5001)


def test_kill_marks_the_point_so_only_the_first_attempt_dies(tmp_path):
    p = FaultyProblem(inner(), kill=1.0, marker_dir=tmp_path)
    with Evaluator(p, workers=1) as ev:
        res = ev.evaluate(np.array([[0.2, 0.5], [0.7, 0.1]]))
        assert [o.status for o in res] == [Status.OK, Status.OK]
        assert ev.stats["crashed"] == 2
    assert len(os.listdir(tmp_path)) == 2


def test_bad_fractions_are_refused():
    with pytest.raises(InputError, match="fractions"):
        FaultyProblem(inner(), fail=0.7, hang=0.5)
    with pytest.raises(InputError, match="fractions"):
        FaultyProblem(inner(), kill=-0.1)

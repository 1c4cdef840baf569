"""The run loop: budget, best evaluated point, run directory, exact resume by replay."""
import json
import math
import sys

import numpy as np
import pytest

import zoaf
from zoaf.errors import InputError
from zoaf.history import History
from zoaf.function import FunctionProblem


def sphere(x):
    return float(np.sum((np.asarray(x) - 0.3) ** 2))


def problem(d=4):
    return FunctionProblem.from_bounds(sphere, [(-1, 1)] * d)


def rows(path):
    with History(path) as h:
        return [(r.idx, r.params, r.outcome.status, r.fom, r.charged, r.phase) for r in h.records()]


@pytest.mark.parametrize("method", ["zoaf", "random"])
def test_budget_and_best_evaluated_point(method):
    calls = []
    res = zoaf.minimize(lambda x: calls.append(x) or sphere(x), [(-1, 1)] * 4, budget=57, seed=3, method=method)
    assert res.nfev == len(calls) <= 57
    assert res.fun == min(sphere(c) for c in calls)          # the best *evaluated* point
    assert sphere(res.x) == res.fun


def test_extra_arguments_reach_fun_as_in_scipy():
    calls = []
    res = zoaf.minimize(lambda x, a, b: calls.append((a, b)) or float(np.sum((x - a) ** 2)) + b, [(-1, 1)] * 2,
                        budget=60, seed=0, args=(0.25, 1.0))
    assert set(calls) == {(0.25, 1.0)} and abs(res.fun - 1.0) < 0.01 and np.allclose(res.x, 0.25, atol=0.1)


def test_fun_may_return_a_one_element_array_as_in_scipy():
    """scipy.optimize.minimize takes a size-1 array from ``fun``; float() of one is an error in numpy 2."""
    res = zoaf.minimize(lambda x: np.array([sphere(x)]), [(-1, 1)] * 2, budget=40, seed=0)
    assert res.nfev == 40 and res.fun == sphere(res.x) and res.fun < 0.05
    # two numbers fail each point as NaN does (a run ended by a TypeError lost every value): the message says why
    res = zoaf.minimize(lambda x: np.array([1.0, 2.0]), [(-1, 1)] * 2, budget=5, seed=0)
    assert res.nfev == 5 and not res.success
    assert res.message == "no simulation succeeded (the first error: ValueError: fun returned ndarray of shape (2,), " \
                          "not a number)"


def test_unknown_method_and_option_are_input_errors():
    with pytest.raises(InputError, match="unknown method 'nope'"):
        zoaf.minimize(sphere, [(0, 1)], budget=5, method="nope")
    with pytest.raises(InputError, match="bogus"):
        zoaf.minimize(sphere, [(0, 1)], budget=5, method="random", bogus=1)


@pytest.mark.parametrize("blocked, method, extra", [("nevergrad", "ngcma", "peers"), ("botorch", "bo", "bo"),
                                                    ("cobyqa", "zoaf-cobyqa", "peers"), ("PyNomad", "nomad", "peers")])
def test_a_method_whose_library_is_missing_is_one_error_before_any_simulation(monkeypatch, blocked, method, extra):
    """BO once simulated its whole Sobol batch, then died in a traceback on ``import botorch``."""
    calls = []
    monkeypatch.setitem(sys.modules, blocked, None)              # as if not installed
    with pytest.raises(InputError, match=rf"method '{method}' needs {blocked}, which is not installed: "
                                         rf"pip install 'zoaf\[{extra}\]'"):
        zoaf.minimize(lambda x: calls.append(x) or sphere(x), [(-1, 1)] * 3, budget=30, seed=0, method=method)
    assert not calls
    assert method not in zoaf.registry.installed() and "zoaf" in zoaf.registry.installed()


def test_a_history_killed_before_its_metadata_is_started_not_refused(tmp_path):
    """A comparison resumes every run directory that has a history.db; one made but killed before its metadata
    was written (no record either) once failed its run at every rerun: "no run metadata: nothing to resume"."""
    (tmp_path / "run").mkdir()
    History(tmp_path / "run" / "history.db").close()
    res = zoaf.optimize(problem(), budget=30, seed=1, method="random", out=tmp_path / "run", resume=True)
    fresh = zoaf.optimize(problem(), budget=30, seed=1, method="random", out=tmp_path / "fresh")
    assert res.nfev == 30 and rows(tmp_path / "run" / "history.db") == rows(tmp_path / "fresh" / "history.db")
    assert res.fun == fresh.fun


def test_run_directory_and_exact_resume(tmp_path):
    full = zoaf.optimize(problem(), budget=80, seed=7, method="zoaf", out=tmp_path / "full")
    assert {p.name for p in (tmp_path / "full").iterdir()} >= {"history.db", "result.json", "convergence.png"}
    # interrupt after a few batches, then resume: same rows, same result.json
    seen = []
    part = zoaf.optimize(problem(), budget=80, seed=7, method="zoaf", out=tmp_path / "cut",
                         callback=lambda r: seen.append(1) or len(seen) >= 3)
    assert part.stop_reason == zoaf.StopReason.CALLBACK and part.nfev < 80
    done = zoaf.optimize(problem(), budget=80, seed=7, method="zoaf", out=tmp_path / "cut", resume=True)
    assert rows(tmp_path / "cut" / "history.db") == rows(tmp_path / "full" / "history.db")
    assert (tmp_path / "cut" / "result.json").read_text() == (tmp_path / "full" / "result.json").read_text()
    assert done.fun == full.fun and np.array_equal(done.x, full.x)


def test_resume_refuses_other_settings(tmp_path):
    zoaf.optimize(problem(), budget=20, seed=1, method="random", out=tmp_path / "r")
    with pytest.raises(InputError, match="seed differs"):
        zoaf.optimize(problem(), budget=20, seed=2, method="random", out=tmp_path / "r", resume=True)
    with pytest.raises(InputError, match="already holds a run"):
        zoaf.optimize(problem(), budget=20, seed=1, method="random", out=tmp_path / "r")


def test_failures_are_recorded_not_fatal(tmp_path):
    def flaky(x):
        if x[0] > 0.5:
            raise ValueError("diverged")
        return sphere(x)

    res = zoaf.minimize(flaky, [(-1, 1)] * 3, budget=60, seed=0, method="random")
    failed = [r for r in res.history if r.outcome.status == zoaf.Status.FAILED]
    assert failed and all(math.isinf(r.fom) and "diverged" in r.outcome.error for r in failed)
    assert res.nfev == 60 and math.isfinite(res.fun)


def test_integer_points_are_cached_not_charged():
    res = zoaf.minimize(lambda x: float((x[0] - 3) ** 2 + (x[1] - 0.2) ** 2), [(0, 5), (-1, 1)], budget=60,
                        seed=0, integers=[0])
    assert all(float(r.params["x0"]).is_integer() for r in res.history)
    cached = [r for r in res.history if not r.charged]
    assert all(r.outcome.status == zoaf.Status.CACHED for r in cached)
    assert res.nfev == sum(r.charged for r in res.history) <= 60
    assert res.x[0] == 3


def test_a_run_stops_before_its_history_holds_more_rows_than_a_reader_takes(tmp_path, monkeypatch):
    """Cached points are free, so a method that keeps asking sizings already simulated grew the history past the
    bound a reader (``zoaf report``, ``--resume``) refuses: the run made a history it could not read back."""
    monkeypatch.setattr(zoaf.history, "FREE_ROWS", 0)
    res = zoaf.minimize(lambda x: float(x[0]), [(0, 1)], budget=3, seed=0, integers=[0], method="random",
                        out=tmp_path / "run")
    assert res.stop_reason == zoaf.StopReason.CONVERGED
    assert len(res.history) == zoaf.history.max_rows(3) == 30
    with History(tmp_path / "run" / "history.db", read=True) as h:
        assert len(h.records()) == 30


def test_history_round_trips_floats_exactly(tmp_path):
    res = zoaf.optimize(problem(), budget=15, seed=0, method="random", out=tmp_path / "h")
    with History(tmp_path / "h" / "history.db") as h:
        recs = h.records()
        meta = h.meta()
    assert [r.u.tolist() for r in recs] == [r.u.tolist() for r in res.history]
    assert meta["seed"] == 0 and meta["method"] == "random" and meta["budget"] == 15
    assert json.loads((tmp_path / "h" / "result.json").read_text())["fun"] == res.fun


def test_a_run_whose_sizings_all_lack_the_objective_says_so(tmp_path):
    """Every simulation ran but none measured the objective: the message said "no simulation succeeded" (with
    nfailed 0); it now says what is missing and the first error."""
    from zoaf.circuit import CircuitProblem

    (tmp_path / "rc.toml").write_text('[parameters]\nr1 = { lo = "100", hi = "10k" }\n[measures]\nf3 = {}\ng = {}\n'
                                      '[objectives]\nf3 = { maximize = "f3" }\n')
    deck = tmp_path / "rc.cir"
    deck.write_text("rc\n.param r1=1k\nv1 in 0 dc 0 ac 1\nr1 in out {r1}\nc1 out 0 1n\n.ac dec 10 1k 1meg\n"
                    ".meas ac f3 when vdb(out)=-300\n.meas ac g find vdb(out) at=1k\n.end\n")   # f3: never that low
    res = zoaf.optimize(CircuitProblem(deck), budget=3, seed=0, workers=0)
    assert res.nfev == 3 and res.nfailed == 0 and not res.success
    assert res.message.startswith("no sizing gave every measure the objective needs (the first error: MeasureError: "
                                  ".meas f3 (line 7) produced no value")


def test_the_result_reads_as_scipys_by_key():
    """Code written against scipy's OptimizeResult (a dict) reads ``res["x"]``, ``res["fun"]``, ``keys()``."""
    res = zoaf.minimize(lambda x: float(np.sum((x - 0.3) ** 2)), [(-1, 1)] * 2, budget=20, seed=0)
    np.testing.assert_array_equal(res["x"], res.x)
    assert (res["fun"], res["nfev"], res["message"], res["success"]) == (res.fun, 20, res.message, True)
    assert res["status"] == 0 and {"x", "fun", "nfev", "nit", "message", "success"} <= set(res.keys())
    with pytest.raises(KeyError):
        res["jac"]
    assert "x" in res and "jac" not in res and list(res) == list(res.keys())
    assert res.get("fun") == res.fun and res.get("jac", 0) == 0 and {**res}["nfev"] == 20


def test_a_run_resumed_with_another_budget_says_why_and_what_to_do(tmp_path):
    """A finished run resumed with a larger budget said only "budget differs (recorded 3, now 5)"."""
    zoaf.optimize(problem(), budget=3, seed=1, method="random", out=tmp_path / "r")
    with pytest.raises(InputError) as e:
        zoaf.optimize(problem(), budget=5, seed=1, method="random", out=tmp_path / "r", resume=True)
    said = str(e.value)
    assert said.startswith(f"{tmp_path / 'r' / 'history.db'}: cannot resume with budget 5: the run was made with 3")
    assert "shapes its method's schedule" in said and "resume with budget 3" in said and "new run" in said
    assert "\n" not in said

"""The library with careless input: a user's ``Problem`` whose ``simulate`` raises or returns what is no
``Outcome``, and ``zoaf.minimize``/``zoaf.optimize`` arguments of the wrong kind.

A bad point fails that point only (the run goes on, its history holds what it computed) and a run where every point
fails ends as scipy's do, ``success=False`` with a message naming the first error; a bad argument is an
``InputError`` (a ``ValueError``) naming it, before anything runs.
"""
from __future__ import annotations

import json
import math
import pickle
import re
from pathlib import Path

import numpy as np
import pytest

import zoaf
from zoaf.errors import InputError
from zoaf.history import History
from zoaf.problem import Outcome, Parameter, ParameterError, Problem, Status


class Careless(Problem):
    """A user's problem with one constraint whose ``simulate`` does what ``mode`` says where ``a > 0.5`` and
    returns a good outcome elsewhere (``everywhere``: at every point; mode "good": nowhere). Module level: it
    pickles to worker processes."""

    name = "careless"

    def __init__(self, mode: str, everywhere: bool = True) -> None:
        super().__init__([Parameter("a", 0.0, 1.0), Parameter("b", 0.0, 1.0)])
        self.mode, self.everywhere = mode, everywhere

    @property
    def constraint_names(self) -> tuple[str, ...]:
        return ("g",)

    def simulate(self, x: np.ndarray):
        if self.mode == "good" or not self.everywhere and x[0] <= 0.5:
            return Outcome(Status.OK, fom=float(x[0]), measures={"m": 1.0}, feasible=True, objective_fom=float(x[0]),
                           constraints=(-1.0,))
        if self.mode == "raise":
            raise RuntimeError("the model diverged")
        return {"none": None, "dict": {"fom": "low"}, "list": [1.0, 2.0, 3.0],
                "nan": Outcome(Status.OK, fom=math.nan, constraints=(0.0,)),
                "text": Outcome(Status.OK, fom=1.0, measures={"gain": "high"}, constraints=(0.0,)),
                "count": Outcome(Status.OK, fom=1.0, constraints=(0.0, 1.0)),
                "status": Outcome("fine", fom=1.0)}[self.mode]


FIRST_ERRORS = {
    "raise": r"RuntimeError: the model diverged \(raised at test_bad_problems\.py:\d+\)",
    "none": r"Careless\.simulate returned NoneType, not an Outcome",
    "dict": r"Careless\.simulate returned dict, not an Outcome",
    "list": r"Careless\.simulate returned list, not an Outcome",
    "nan": r"Careless\.simulate returned an Outcome whose fom or a constraint value is NaN",
    "text": r"Careless\.simulate returned an Outcome whose measure 'gain' must be a number, got 'high'",
    "count": r"Careless\.simulate returned an Outcome whose constraints must be a tuple of the problem's 1 values",
    "status": r"Careless\.simulate returned an Outcome whose status must be one of ok, failed, timeout, crashed",
}


@pytest.mark.parametrize("mode", FIRST_ERRORS)
def test_a_simulate_that_fails_everywhere_ends_the_run_as_scipy_does(mode: str, tmp_path: Path) -> None:
    """A raise ended the run with that exception; None, a dict or a list with an AttributeError; a text FoM with
    numpy's TypeError; a text measure, a short constraint row or a NaN FoM went into the history unnoticed."""
    res = zoaf.optimize(Careless(mode), budget=4, seed=0, workers=0, out=tmp_path / "run")
    assert (res.success, res.nfev, res.nfailed) == (False, 4, 4)
    first = rf"no simulation succeeded \(the first error: {FIRST_ERRORS[mode]}.*\)"
    assert re.fullmatch(first, res.message), res.message
    saved = json.loads((tmp_path / "run" / "result.json").read_text())
    assert saved["success"] is False and saved["message"] == res.message
    with History(tmp_path / "run" / "history.db", read=True) as h:
        assert [r.status for r in h.records()] == [Status.FAILED] * 4


@pytest.mark.parametrize("workers", [0, 2])
def test_a_simulate_that_raises_at_some_points_fails_those_only(workers: int) -> None:
    """In a worker process the exception was re-raised in the parent: the batch, and the run, were lost."""
    res = zoaf.optimize(Careless("raise", everywhere=False), budget=12, seed=0, workers=workers)
    statuses = [r.status for r in res.history]
    assert res.success and res.nfev == 12 and res.x[0] <= 0.5
    assert Status.OK in statuses and 0 < res.nfailed == statuses.count(Status.FAILED) < 12
    errors = {r.outcome.error for r in res.history if r.status == Status.FAILED}
    assert len(errors) == 1 and re.fullmatch(FIRST_ERRORS["raise"], errors.pop())


def test_a_function_that_returns_inf_everywhere_says_so() -> None:
    """Every point failed, and the message said only 'no simulation succeeded'."""
    res = zoaf.minimize(lambda x: math.inf, [(0, 1)], budget=3, seed=0)
    assert res.message == "no simulation succeeded (the first error: ValueError: fun returned inf)"


@pytest.mark.parametrize("kwargs, message", [
    ({"integers": [True, False]}, "integers: True is not an index into the 2 bounds"),   # a mask: indices 0, 1
    ({"integers": [0.5]}, "integers: 0.5 is not an index"),                                # never matched an axis
    ({"log": "1"}, "log: '1' is not an index"),                                            # a TypeError
    ({"constraints": {"type": "ineq", "fun": lambda x, a: a - x[0], "args": 2}}, None),  # a lone arg, as scipy's
])
def test_minimize_index_lists_and_constraint_args(kwargs: dict, message: str | None) -> None:
    call = lambda: zoaf.minimize(lambda x: float(x[0] ** 2), [(1, 2), (1, 2)], budget=3, seed=0, **kwargs)
    if message is None:
        assert call().success
        return
    with pytest.raises(InputError, match=re.escape(message)):
        call()


def test_library_objects_of_the_wrong_kind_are_named_before_anything_runs(tmp_path: Path) -> None:
    """Each was an AttributeError or TypeError deep in the run, or (fun=3) a run whose every point failed."""
    with pytest.raises(InputError, match="fun must be callable, got int"):
        zoaf.minimize(3, [(0, 1)], budget=3)
    with pytest.raises(InputError, match=r"parameters must be zoaf Parameters, got tuple \('a', 0, 1\)"):
        Careless.__base__([("a", 0, 1)])
    with pytest.raises(InputError, match="parameter 'a': lo must be a number, got '0'"):
        Parameter("a", "0", 1)
    with pytest.raises(InputError, match="parameter 'a': integer must be True or False, got 'yes'"):
        Parameter("a", 0, 3, integer="yes")
    with pytest.raises(InputError, match="parameter name must be non-empty text, got 3"):
        Parameter(3, 0, 1)
    with pytest.raises(InputError, match="Problem does not implement simulate"):
        zoaf.optimize(Problem([Parameter("a", 0, 1)]), budget=2, out=tmp_path / "run")
    with pytest.raises(InputError, match="evaluator must be a zoaf Evaluator"):
        zoaf.optimize(Careless("none"), budget=2, evaluator=3)
    assert list(tmp_path.iterdir()) == []


class WithArtifacts(Careless):
    """A good problem whose ``artifacts`` return ``files`` (or raise, for None)."""

    def __init__(self, files: dict | None) -> None:
        super().__init__("good")
        self.files = files

    def artifacts(self, params: dict[str, float]) -> dict:
        if self.files is None:
            raise KeyError("no template")
        return self.files


@pytest.mark.parametrize("files, says", [
    ({"../escape.txt": "x"}, "'../escape.txt' is not a file name of its own in the run directory"),
    ({"result.json": "{}"}, "'result.json' is not a file name of its own"),
    ({"a.txt": 3}, "'a.txt' holds int, not text or bytes"),
    (None, "raised KeyError: 'no template'; history.db keeps every simulation"),
])
def test_artifacts_are_checked_before_anything_is_written(files: dict | None, says: str, tmp_path: Path) -> None:
    """'../escape.txt' was written beside the run directory, a raise ended the finished run with a traceback."""
    out = tmp_path / "run"
    with pytest.raises(InputError, match=re.escape(f"WithArtifacts.artifacts{'' if files is None else ':'}")
                       + ".*" + re.escape(says)):
        zoaf.optimize(WithArtifacts(files), budget=4, seed=0, out=out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]
    assert sorted(p.name for p in out.iterdir()) == [".lock", "history.db"]
    with History(out / "history.db", read=True) as h:
        assert len(h.records()) == 4


# ---------------------------------------------------------------------- ask/tell methods and their registry
def test_a_method_is_refused_a_start_or_steps_that_are_not_one_finite_number_per_coordinate() -> None:
    """A NaN x0 came back as an asked point (the user's fun then blamed for it), a longer one was a broadcasting
    ValueError inside the method (or, in CMA, asks of the wrong dimension); dim '2' a TypeError."""
    from zoaf import registry

    for method in ("random", "cma", "de"):
        with pytest.raises(InputError, match=re.escape("x0 must be 2 finite numbers, got [nan, 0.5]")):
            registry.create(method, 2, 10, seed=0, x0=np.array([np.nan, 0.5]))
    with pytest.raises(InputError, match=re.escape("x0 must be 2 finite numbers, got [0.0, 0.0, 0.0]")):
        registry.create("cma", 2, 10, seed=0, x0=np.zeros(3))
    with pytest.raises(InputError, match="unit_steps must be 2 finite numbers"):
        registry.create("zoaf", 2, 10, seed=0, unit_steps=np.zeros(3))
    with pytest.raises(InputError, match="dim must be a whole number >= 1, got '2'"):
        registry.create("zoaf", "2", 10)


def test_a_method_is_refused_a_start_outside_the_unit_box() -> None:
    """``ZOAF(x0=[1.5, 0.5])`` (a physical value for a box coordinate) was clipped to the bound and started there
    without a word; a start within the box, a bound included, is the first point asked."""
    from zoaf import registry

    for method in ("zoaf", "random", "cma"):
        with pytest.raises(InputError, match=re.escape("x0[1] = -0.25 lies outside the unit box [0, 1]")):
            registry.create(method, 2, 10, seed=0, x0=[0.5, -0.25])
    x0 = np.array([1.0, 0.0])
    opt = registry.create("zoaf", 2, 10, seed=0, x0=x0)
    x0[0] = 0.5                                   # the caller's array, changed after: not the method's start
    assert opt.ask()[0].tolist() == [1.0, 0.0]


def test_tell_refuses_constraint_values_of_another_shape() -> None:
    """A row more was reshaped into another constraint count without a word; a count that changed between tells was
    a concatenation error deep in ZOAF's model."""
    from zoaf import registry

    opt = registry.create("zoaf", 2, 20, seed=0)
    x = opt.ask()
    with pytest.raises(ValueError, match=rf"constraint values of shape \({len(x) + 1}, 2\) for {len(x)} points"):
        opt.tell(x, np.ones(len(x)), np.ones((len(x) + 1, 2)))
    opt.tell(x, np.ones(len(x)), np.ones((len(x), 2)), objective=np.ones(len(x)))
    x = opt.ask()
    with pytest.raises(ValueError, match="and 2 constraints, as told before"):
        opt.tell(x, np.ones(len(x)), np.ones((len(x), 3)), objective=np.ones(len(x)))


def test_register_refuses_what_is_no_method_and_takes_a_class_defined_in_a_function(monkeypatch) -> None:
    """A target without a colon, of another kind or naming a missing module was taken, to fail with a raw
    ValueError, AttributeError or ModuleNotFoundError at the first run; a class defined in a function could never
    be found by its name."""
    from zoaf import registry
    from zoaf.optim import Optimizer

    monkeypatch.setattr(registry, "_METHODS", dict(registry._METHODS))   # no method left for later tests

    class Nearby(Optimizer):
        def _ask(self) -> np.ndarray:
            return self.rng.random((1, self.dim))

        def _tell(self, x, f, c, objective) -> None:
            pass

    registry.register("nearby", Nearby)
    assert zoaf.minimize(lambda x: float(x[0] ** 2), [(0, 1)], budget=3, seed=0, method="nearby").nfev == 3
    for target in ("nocolon", 3, np.ndarray):
        with pytest.raises(InputError, match="expected an Optimizer subclass or 'module:Class'"):
            registry.register("bad", target)
    registry.register("gone", "nosuch.module:Method")
    with pytest.raises(InputError, match=r"method 'gone': cannot import 'nosuch.module:Method' \(ModuleNotFound"):
        zoaf.minimize(lambda x: float(x[0] ** 2), [(0, 1)], budget=3, method="gone")
    with pytest.raises(InputError, match="a method name must be non-empty text"):
        registry.register("", Nearby)


def test_a_budget_past_what_a_method_takes_is_refused() -> None:
    """NOMAD given 2**31 simulations or more ended the process with a segmentation fault."""
    with pytest.raises(InputError, match=r"budget 2147483648: more simulations than a run can make; at most "
                                         r"2147483647"):
        zoaf.minimize(lambda x: float(x[0] ** 2), [(0, 1)], budget=2**31, method="nomad")


@pytest.mark.parametrize("seeds", [[-1], "3", 2.5, []])
def test_compare_refuses_seeds_that_are_no_whole_numbers(seeds, tmp_path: Path) -> None:
    """Text or a fraction was a TypeError, a negative seed a run that failed in the grid."""
    from zoaf.compare import compare

    corpus = Path(__file__).parent / "bad_inputs"
    with pytest.raises(InputError, match="seeds must be a count or a list of whole numbers >= 0"):
        compare(corpus / "good.cir", methods=["random"], seeds=seeds, budget=2, jobs=1, out=tmp_path / "cmp")
    assert list(tmp_path.iterdir()) == []


def test_compare_takes_one_name_as_one_method(tmp_path: Path) -> None:
    """methods="cma" was read letter by letter: 'unknown method 'c''."""
    from zoaf.compare import compare

    corpus = Path(__file__).parent / "bad_inputs"
    with pytest.raises(InputError, match="unknown method 'nope';"):
        compare(corpus / "good.cir", methods="nope", seeds=1, budget=2, jobs=1, out=tmp_path / "cmp")


def test_a_circuit_whose_python_fom_never_gives_a_number_says_the_simulations_ran() -> None:
    """Every sizing simulated, but the FoM function raised: the message said 'no simulation succeeded'."""
    from zoaf.circuit import CircuitProblem

    problem = CircuitProblem.from_netlist(Path(__file__).parent / "bad_inputs" / "good.cir", fom=lambda m: m["nope"])
    res = zoaf.optimize(problem, budget=3, seed=0)
    assert [r.status for r in res.history] == [Status.OK] * 3 and all(r.outcome.measures for r in res.history)
    assert (res.success, res.message) == (False, "no simulation gave a finite FoM (the first error: fom raised "
                                                 "KeyError: 'nope')")


def _sphere(x: np.ndarray) -> float:
    return float(np.sum((x - 0.3) ** 2))


def test_a_callback_that_raises_stop_iteration_ends_the_run_with_its_result(tmp_path: Path) -> None:
    """scipy >= 1.11: a callback ends a run by raising StopIteration, and ``minimize`` returns what it found. It
    propagated out of zoaf.minimize, with the evaluations done."""
    seen: list[int] = []

    def enough(result: zoaf.Result) -> None:
        seen.append(result.nfev)
        if result.nfev >= 20:
            raise StopIteration

    r = zoaf.minimize(_sphere, [(-1, 1)] * 3, budget=200, seed=0, method="random", callback=enough,
                      out=tmp_path / "run")
    assert r.stop_reason is zoaf.StopReason.CALLBACK and not r.success and r.nfev == seen[-1] >= 20
    assert math.isfinite(r.fun) and len(r.history) == r.nfev < 200
    assert json.loads((tmp_path / "run" / "result.json").read_text())["nfev"] == r.nfev


def test_a_callback_that_raises_ends_the_run_and_its_error_propagates_with_the_run_kept(tmp_path: Path) -> None:
    """Other exceptions propagate, as scipy's do, but only once the run's end files are written: the run directory
    kept its rows and no result.json, and the error did not say where the run stood. It resumes from there."""
    def broken(result: zoaf.Result) -> None:
        if result.nfev >= 20:
            raise ZeroDivisionError("a bug in the callback")

    out = tmp_path / "run"
    with pytest.raises(ZeroDivisionError, match="a bug in the callback") as raised:
        zoaf.minimize(_sphere, [(-1, 1)] * 3, budget=60, seed=0, method="random", callback=broken, out=out)
    done = json.loads((out / "result.json").read_text())
    assert done["stop_reason"] == "callback" and done["nfev"] >= 20
    assert f"the run's result and rows are in {out} (resume=True continues it)" in raised.value.__notes__[0]
    again = zoaf.minimize(_sphere, [(-1, 1)] * 3, budget=60, seed=0, method="random", out=out, resume=True)
    assert again.nfev == 60 and again.completed
    assert again.fun == zoaf.minimize(_sphere, [(-1, 1)] * 3, budget=60, seed=0, method="random").fun


@pytest.mark.parametrize("method", ["zoaf", "cma", "de", "random"])
def test_tell_answers_each_ask_once_with_its_own_points(method: str) -> None:
    """tell() took what no ask returned: told twice, the budget was charged twice; before any ask, or with a
    subset, other or moved points, the method's model held values of points it never asked (cma, de: an
    IndexError or AttributeError from inside them). Each is now an InputError, and the method is left as it was."""
    from zoaf import registry

    sphere = lambda u: np.sum((u - 0.3) ** 2, axis=1)
    opt = registry.create(method, 3, 60, seed=0)
    with pytest.raises(InputError, match=f"{method}: tell.*got 2 points, but nothing was asked yet"):
        opt.tell(np.full((2, 3), 0.5), np.ones(2))
    x = opt.ask()
    for wrong in (x[:1] if len(x) > 1 else x + 0.1, np.clip(x + 0.1, 0, 1), x + 5):
        with pytest.raises(InputError, match=f"got {len(wrong)} points, not those of an untold ask \\(of {len(x)}"):
            opt.tell(wrong, sphere(wrong))
    assert (opt.nfev, opt.nit) == (0, 0)
    opt.tell(x, sphere(x))
    with pytest.raises(InputError, match="but every ask has been told"):
        opt.tell(x, sphere(x))
    assert (opt.nfev, opt.nit) == (len(x), 1)
    while not opt.done:                               # the run goes on as if nothing had been refused
        x = opt.ask()
        opt.tell(x, sphere(x))
    assert opt.nfev == 60


@pytest.mark.parametrize("method", ["zoaf", "cma", "de", "random"])
def test_a_tell_of_the_asked_points_reordered_or_rounded_is_the_same_tell(method: str) -> None:
    """Rows told in another order, as float32 or through text (an external simulator's files) answer their ask:
    the method is told its own points, in its order, and asks next what it would have asked."""
    from zoaf import registry

    sphere = lambda u: np.sum((u - 0.3) ** 2, axis=1)
    plain, other = registry.create(method, 3, 40, seed=1), registry.create(method, 3, 40, seed=1)
    while not plain.done:
        x, y = plain.ask(), other.ask()
        assert np.array_equal(x, y)
        plain.tell(x, sphere(x))
        told = np.array([[float(f"{v:.9g}") for v in row] for row in x[::-1]]).astype(np.float32)
        other.tell(told, sphere(x)[::-1])
    assert (plain.best_f, plain.nfev) == (other.best_f, other.nfev) and np.array_equal(plain.best_x, other.best_x)


@pytest.mark.parametrize("method", ["cma", "de", "ngcma"])
def test_a_second_ask_before_a_tell_is_refused_where_the_method_keeps_one_batch(method: str) -> None:
    """cma raised an IndexError from inside, DE told one batch's values to the other's points, BO and TuRBO
    asked the same points twice: one line now, and the run goes on once the first ask is told."""
    from zoaf import registry

    opt = registry.create(method, 3, 40, seed=0)
    x = opt.ask()
    with pytest.raises(InputError, match=f"{method}: ask\\(\\) again before the last ask's points were told"):
        opt.ask()
    opt.tell(x, np.sum(x ** 2, axis=1))
    while not opt.done:
        x = opt.ask()
        opt.tell(x, np.sum(x ** 2, axis=1))
    assert opt.nfev == 40


@pytest.mark.parametrize("method", ["zoaf", "random"])
def test_tell_fails_a_point_told_nan_or_minus_inf_and_refuses_what_is_no_number(method: str) -> None:
    """A told ``-inf`` became the best point of any method (``zoaf.minimize`` fails it, as NaN); the text "1" was
    read as 1.0, None as a failure. Now ``-inf`` fails its point as NaN does, and text, None or a bool in ``f``,
    ``c`` or ``objective`` is one InputError naming its row, the ask left to be told."""
    from zoaf import registry

    opt = registry.create(method, 2, 40, seed=0)
    x = opt.ask()
    f = np.sum(x ** 2, axis=1)
    for told, says in ((["1"] + list(f[1:]), "tell: f[0] = '1' is not a number"),
                       ([*f[:-1], None], f"tell: f[{len(f) - 1}] = None is not a number")):
        with pytest.raises(InputError, match=re.escape(says)):
            opt.tell(x, np.array(told, dtype=object))
    c = np.zeros((len(x), 2), dtype=object)
    c[-1, 1] = "0.5"
    with pytest.raises(InputError, match=re.escape(f"tell: c[{len(x) - 1}, 1] = '0.5' is not a number")):
        opt.tell(x, f, c)
    with pytest.raises(InputError, match=re.escape("tell: objective[0] = True is not a number")):
        opt.tell(x, f, np.zeros((len(x), 2)), objective=[True, *f[1:]])
    assert (opt.nfev, opt.nit) == (0, 0)
    f[0], f[-1] = -np.inf, np.nan
    opt.tell(x, f)
    assert opt.best_f == (min(f[1:-1]) if len(f) > 2 else np.inf) and opt.nfev == len(x)
    while not opt.done:                               # the run goes on as if nothing had been refused
        x = opt.ask()
        opt.tell(x, np.where(np.arange(len(x)) == 0, -np.inf, np.sum(x ** 2, axis=1)))
    assert np.isfinite(opt.best_f) and opt.best_x is not None


def test_asks_may_be_told_in_any_order() -> None:
    """Two asks before their tells (as a pool that evaluates batches concurrently would): each is told once."""
    from zoaf import registry

    opt = registry.create("random", 2, 40, seed=0)
    a, b = opt.ask(), opt.ask()
    opt.tell(b, np.ones(len(b)))
    opt.tell(a, np.zeros(len(a)))
    assert opt.nfev == len(a) + len(b) and opt.best_f == 0.0


def test_a_circuit_problem_is_refused_arguments_of_the_wrong_kind_and_points_of_the_wrong_length() -> None:
    """``allow_shell="no"`` is truthy: it let the deck run programs; ``spec={...}`` was a TypeError traceback; a point
    of one value for a deck of many simulated the rest at the deck's own values without a word."""
    from zoaf.circuit import CircuitProblem

    amp = Path(__file__).resolve().parents[1] / "netlists" / "two_stage_amp.cir"
    with pytest.raises(InputError, match="allow_shell 'no': True or False"):
        CircuitProblem(amp, allow_shell="no")
    with pytest.raises(InputError, match=r"spec \{'a': 1\}: a zoaf.spec.Spec or the path of a TOML spec"):
        CircuitProblem(amp, spec={"a": 1})
    p = CircuitProblem(amp)
    out = p.simulate(np.array([1e-6]))
    assert out.status == Status.FAILED and f"a point of 1 values for {len(p.parameters)} parameters" in out.error


@pytest.mark.parametrize("kwargs, field, says", [
    ({"lo": 2, "hi": 1}, "lo", "lo must be < hi, got lo=2, hi=1"),
    ({"lo": 0, "hi": math.nan}, "hi", "hi must be a finite number, got nan"),
    ({"lo": 0, "hi": 1, "scale": "log"}, "lo", "lo must be > 0 on a log scale, got 0"),
    ({"lo": 1, "hi": 2.5, "integer": True}, "hi", "hi must be a whole number (an integer parameter), got 2.5"),
    ({"lo": 1, "hi": 1e30, "integer": True}, "hi", "hi must be within -2**53..2**53 (an integer parameter: past it "
                                                   "a float skips whole numbers), got 1e+30"),
    ({"lo": 1, "hi": 3, "init": 4}, "init", "init 4 lies outside lo..hi = 1..3"),
    ({"lo": 1, "hi": 3, "init": "2"}, "init", "init must be a number, got '2'"),
    ({"lo": -1e308, "hi": 1e308}, None, "the span hi - lo of -1e+308..1e+308 overflows a float; narrow the bounds")])
def test_a_parameter_refusal_names_its_field(kwargs: dict, field: str | None, says: str) -> None:
    """``Parameter`` said ``parameter 'r1': lo must be < hi`` in words only, so the spec repeated its bound checks to
    name ``parameters.r1.lo``: two copies of one set of rules. The refusal carries the field; the spec says it at
    its TOML key from Parameter's own rules (and it crosses a process boundary whole: a comparison's runs)."""
    with pytest.raises(ParameterError) as e:
        Parameter("r1", **kwargs)
    again = pickle.loads(pickle.dumps(e.value))
    assert (e.value.field, str(e.value)) == (again.field, str(again)) == (field, f"parameter 'r1': {says}")
    key = "s.toml: parameters.r1" if field is None else f"s.toml: parameters.r1.{field}"
    assert str(e.value.at("s.toml: parameters.r1")) == f"{key}: {e.value.detail}"


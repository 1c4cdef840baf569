"""``zoaf.minimize`` with careless arguments, as a scipy user writes them: constraints that give no values, a
matrix or another count, bounds and ``x0`` named by index, numpy complex or masked values, scipy's own keywords
(``maxfev``, ``options``), a misspelt method or option name: each one line, or a failed point where scipy would
fail it. ``test_bad_problems.py`` has a careless ``Problem`` and the ask/tell protocol."""
from __future__ import annotations

import math
import re

import numpy as np
import pytest
from scipy.optimize import NonlinearConstraint
from test_bad_problems import _sphere

import zoaf
from zoaf.errors import InputError


def test_resume_without_a_run_directory_is_refused() -> None:
    """``resume=True`` without ``out=`` was ignored: a fresh run, its caller thinking a recorded one continued."""
    with pytest.raises(InputError, match="resume=True continues the run recorded in a run directory: give it as out="):
        zoaf.minimize(_sphere, [(-1, 1)] * 2, budget=10, seed=0, method="random", resume=True)


@pytest.mark.parametrize("returns, says", [(None, "a constraint returned None, not numbers"),
                                           ("0.5", "a constraint returned str '0.5', not numbers")])
def test_a_constraint_that_returns_none_or_text_is_named(returns: object, says: str) -> None:
    """numpy read a constraint's None as NaN (every point failed "a constraint returned NaN") and its text "0.5"
    as 0.5 (a constraint met that returned no number); ``fun`` returning either was already refused."""
    for constraint in ({"type": "ineq", "fun": lambda x: returns}, NonlinearConstraint(lambda x: returns, 0, 1)):
        with pytest.raises(InputError, match=re.escape(f"constraints[0]: calling it at x = [0.0, 0.0] raised "
                                                       f"ValueError: {says}")):
            zoaf.minimize(_sphere, [(-1, 1)] * 2, budget=10, seed=0, method="random", constraints=constraint)


def test_a_constraint_whose_count_of_values_changes_fails_those_points() -> None:
    """The count of each constraint's values is learnt at the start point; a point where it differs was scored with
    values taken for other constraints' (the docstring promised that such a point fails). The line names which
    constraint: the first here, whose count changes while the total stays the same (it was not noticed)."""
    r = zoaf.minimize(_sphere, [(-1, 1)] * 2, budget=40, seed=0, method="random",
                      constraints=[{"type": "ineq", "fun": lambda x: x if x[0] <= 0 else x[:1]},
                                   {"type": "ineq", "fun": lambda x: x[:1] if x[0] <= 0 else x}])
    failed = [h for h in r.history if h.u[0] > 0.5]
    assert failed and all(h.outcome.error == "ValueError: constraints[0] returned 1 values here, 2 at the start "
                          "point" for h in failed)
    assert all(h.outcome.error is None for h in r.history if h.u[0] <= 0.5)


@pytest.mark.parametrize("value, says", [
    ([], "constraints[1]: no values at x = [0.0, 0.0] (an empty array, or no finite bound)"),
    (np.ones((2, 2)), "constraints[1]: calling it at x = [0.0, 0.0] raised ValueError: a constraint returned an "
                      "array of shape (2, 2), not a scalar or 1-D array")])
def test_a_constraint_that_gives_no_values_or_a_matrix_is_named_by_index(value: object, says: str) -> None:
    """A constraint that returned ``[]`` constrained nothing, and a 2x2 array was flattened into four constraints,
    both without a word; each is refused before anything runs, named by its index (scipy's and zoaf's own)."""
    met = {"type": "ineq", "fun": lambda x: 1.0}
    for constraint in ({"type": "ineq", "fun": lambda x: value}, NonlinearConstraint(lambda x: value, 0, 1)):
        with pytest.raises(InputError, match=re.escape(says)):
            zoaf.minimize(_sphere, [(-1, 1)] * 2, budget=10, seed=0, method="random", constraints=[met, constraint])
    with pytest.raises(InputError, match=re.escape(says)):
        zoaf.FunctionProblem.from_bounds(_sphere, [(-1, 1)] * 2, constraints=[lambda x: -1.0, lambda x: value])


@pytest.mark.parametrize("kwargs, says", [
    ({"x0": ["0.5", "0.1"]}, r"x0 must be numbers, got \['0.5', '0.1'\]"),
    ({"bounds": [("-1", "1")] * 2}, r"bounds must be numbers, got \[\('-1', '1'\), \('-1', '1'\)\]"),
    ({"bounds": [(-1, "1"), (0, 1)]}, r"bounds must be numbers, got \[\(-1, '1'\), \(0, 1\)\]"),
    ({"bounds": [(None, 1), (0, 1)]}, r"bounds: None \(scipy's 'no bound'\) is not one here: zoaf samples every "
                                      r"variable within finite \(lo, hi\), got \[\(None, 1\), \(0, 1\)\]")])
def test_text_in_a_list_and_none_bounds_are_named(kwargs: dict, says: str) -> None:
    """``x0="0.5"`` was refused but ``x0=["0.5", "0.1"]`` (and text bounds) were read as numbers; a bound of None
    (scipy's "unbounded") was refused as "lo=nan", a value the user never wrote."""
    args = {"bounds": [(-1, 1)] * 2, **kwargs}
    with pytest.raises(InputError, match=f"^{says}$"):
        zoaf.minimize(_sphere, args.pop("bounds"), budget=10, seed=0, method="random", **args)


@pytest.mark.parametrize("value", [np.complex128(1 + 1j), np.array(0.5 + 2j), np.array([0.5 + 0j]), np.ma.masked],
                         ids=["numpy-complex", "0-d-complex", "complex-array", "masked"])
def test_numpy_complex_or_masked_values_fail_their_point(value: object) -> None:
    """Python's ``complex`` failed its point, but numpy's were taken as their real part (a ComplexWarning only),
    and a masked value as 0.0: a function whose value went complex was minimized as if it were real."""
    res = zoaf.minimize(lambda x: value, [(-1, 1)], budget=2, seed=0)
    assert res.nfev == 2 and res.nfailed == 2 and math.isinf(res.fun)
    assert re.search(r"fun returned (complex128|a masked value), not a number$", res.history[0].outcome.error)
    with pytest.raises(InputError, match=r"a constraint returned (complex128|a masked value), not numbers$"):
        zoaf.minimize(lambda x: float(x[0]), [(-1, 1)], budget=2, seed=0,
                      constraints={"type": "ineq", "fun": lambda x: value})


@pytest.mark.parametrize("kwargs, says", [
    ({"maxfev": 10}, r"^minimize: maxfev= is scipy's; write budget=N \(the most calls of fun\)$"),
    ({"budget": 10, "maxiter": 5}, r"^minimize: maxiter= is scipy's; write budget=N"),
    ({"budget": 10, "options": {"maxfev": 5}}, r"^minimize: options=\{'maxfev': \.\.\.\} is scipy's; write budget=N"),
    ({"budget": 10, "tol": 1e-6}, r"^minimize: tol= is scipy's; write target="),
    ({"budget": 10, "jac": True}, r"^minimize: jac= is scipy's; leave it out: zoaf uses no derivatives$"),
    ({"budget": 10, "method": "random", "maxfev": 5}, r"^minimize: maxfev= is scipy's"),
    ({}, r"^minimize: budget= is required: the most calls of fun \(scipy's maxfev\)$")])
def test_scipy_keywords_zoaf_spells_otherwise_are_named(kwargs: dict, says: str) -> None:
    """scipy's ``maxfev``/``options``/``tol`` reached ZOAF as options ("unknown ZOAF option(s) maxfev; valid:" and
    sixty names), or a missing budget was Python's TypeError."""
    with pytest.raises(InputError, match=says):
        zoaf.minimize(lambda x: float(x[0] ** 2), [(-1, 1)], seed=0, **kwargs)


def test_a_method_that_takes_maxfev_as_its_own_option_still_gets_it() -> None:
    if "cobyqa" not in zoaf.registry.installed():
        pytest.skip("cobyqa is not installed")
    res = zoaf.minimize(lambda x: float(np.sum((x - 0.3) ** 2)), [(-1, 1)] * 2, budget=20, seed=0, method="cobyqa",
                        maxfev=6)
    assert res.nfev == 6


@pytest.mark.parametrize("name, says", [("RANDOM", "did you mean 'random'? choose one of"),
                                        ("zoaf_cobyqa", "did you mean 'zoaf-cobyqa'?"),
                                        ("nope", "unknown method 'nope'; choose one of")])
def test_an_unknown_method_names_the_one_likely_meant(name: str, says: str) -> None:
    with pytest.raises(InputError, match=re.escape(says)):
        zoaf.registry.get(name)


@pytest.mark.parametrize("kwargs, says", [
    ({"x0": [0.0, 5.0]}, r"^x0\[1\] = 5 lies outside bounds\[1\] = \(-1, 1\)$"),
    ({"x0": [0.0, float("nan")]}, r"^x0\[1\] = nan lies outside bounds\[1\] = \(-1, 1\)$"),
    ({"x0": [[0.0, 0.5]]}, r"^x0 must be one point \(a 1-D sequence\), got shape \(1, 2\)$"),
    ({"bounds": [(-1, 1), (1, -1)]}, r"^bounds\[1\]: lo must be < hi, got lo=1, hi=-1$"),
    ({"bounds": [(-1, 1), (0, 2)], "log": [0]}, r"^bounds\[0\]: lo must be > 0 on a log scale, got -1$"),
    ({"x0": [0.0, 0.5], "integers": [1]}, r"^x0\[1\] = 0\.5 is not a whole number, and integers names axis 1$"),
    ({"bounds": [(-1, 1), (1, 1e30)], "integers": [1]},
     r"^bounds\[1\]: hi must be within -2\*\*53\.\.2\*\*53 \(an integer parameter: past it a float skips "
     r"whole numbers\)")])
def test_x0_and_bounds_are_named_by_index_as_scipy_names_them(kwargs: dict, says: str) -> None:
    """"parameter 'x1': init=5 lies outside [-1, 1]" named an axis as the keyword ``x0`` is spelt; a 2-D ``x0``
    (which scipy refuses) was flattened; a fraction on an integer axis was rounded without a word; an integer axis
    past 2**53 ran (its steps of one lost; NOMAD's granularity check crashed the process)."""
    kwargs = {"bounds": [(-1, 1)] * 2, **kwargs}
    with pytest.raises(InputError, match=says):
        zoaf.minimize(lambda x: float(np.sum(x ** 2)), kwargs.pop("bounds"), budget=2, seed=0, **kwargs)


def test_a_misspelt_zoaf_option_names_the_one_likely_meant():
    with pytest.raises(InputError, match="did you mean 'alpha0'"):
        zoaf.minimize(lambda x: float(x[0] ** 2), [(-1, 1)], budget=10, alpha_0=0.3)


def test_ngopt_that_picks_cma_past_memory_is_refused() -> None:
    """``ngopt`` (Nevergrad's NGOpt) picks its algorithm at its first ask: at a large dimension with workers it picks
    pycma's CMA-ES (inside a meta-model), whose d x d matrices then filled the memory, where ``cma``, ``cma-warm``
    and ``ngcma`` refuse that dimension in one line. Refused as they are; where NGOpt picks no CMA, it runs."""
    pytest.importorskip("nevergrad")
    from zoaf import registry

    with pytest.raises(InputError, match=r"^ngopt: Nevergrad's NGOpt picks CMA-ES here, and dimension 500000 needs "
                                         r"~\d+ GiB for pycma's 500000 x 500000 covariance matrices.*use zoaf or de"):
        registry.create("ngopt", 500_000, 400, seed=0, workers=4)
    assert registry.create("ngopt", 500_000, 400, seed=0, workers=1).dim == 500_000     # COBYLA: no CMA
    assert registry.create("ngopt", 200, 400, seed=0, workers=4).dim == 200


@pytest.mark.parametrize("constraints, says", [
    (lambda x: x[0], "got function: write {'type': 'ineq', 'fun': g} (met when g(x) >= 0)"), (5, "got int")])
def test_constraints_that_are_no_constraint_or_list_of_them_are_named(constraints: object, says: str) -> None:
    """A bare function as ``constraints=`` (scipy wants a dict or a list of them) was a TypeError traceback: "'function'
    object is not iterable"."""
    with pytest.raises(InputError, match=re.escape("constraints: expected a dict, NonlinearConstraint or "
                                                   f"LinearConstraint, or a list of them, {says}")):
        zoaf.minimize(_sphere, [(-1, 1)] * 2, budget=10, seed=0, method="random", constraints=constraints)


def test_numpy_integer_budget_and_seed_are_whole_numbers(tmp_path) -> None:
    """``budget=np.int64(6)`` passed the check but was recorded as the text "6": the run ended "None: not a zoaf run
    history (meta: budget '6' ...)" before its first point; ``seed=np.int64(3)`` reached result.json as 3.0 and the
    history as "3", which no resume could read."""
    import json

    out = tmp_path / "run"
    kw = dict(budget=np.int64(6), seed=np.int64(3), method="random", out=out)
    first = zoaf.minimize(_sphere, [(-1, 1)] * 2, **kw)
    assert (first.nfev, first.seed) == (6, 3) and json.loads((out / "result.json").read_text())["seed"] == 3
    assert zoaf.minimize(_sphere, [(-1, 1)] * 2, resume=True, **{**kw, "budget": np.int32(6)}).fun == first.fun


def test_a_constraint_dict_is_read_as_scipy_reads_it_and_a_misspelt_key_is_named() -> None:
    """``{'type': 'INEQ', ...}``, which scipy takes (it lowers the type), was refused; ``{'type': 'ineq', 'fn': g}``
    was refused as the whole dict, the misspelt key unnamed."""
    bounds, kw = [(-1, 1)] * 2, dict(budget=6, seed=0, method="random")
    upper = zoaf.minimize(_sphere, bounds, constraints={"type": "INEQ", "fun": lambda x: 0.5 - x[0]}, **kw)
    lower = zoaf.minimize(_sphere, bounds, constraints={"type": "ineq", "fun": lambda x: 0.5 - x[0]}, **kw)
    assert upper.nfev == 6 and upper.fun == lower.fun
    with pytest.raises(InputError, match=r"constraints\[1\]: unknown key 'fn'; did you mean 'fun'\? a constraint "
                                         "dict has type, fun, args and jac"):
        zoaf.minimize(_sphere, bounds, constraints=[{"type": "ineq", "fun": _sphere}, {"type": "ineq", "fn": _sphere}],
                      **kw)


@pytest.mark.parametrize("kwargs, says", [
    ({"bounds": [(0, 10**400)] * 2}, r"bounds must be finite numbers, got an integer past the float range in "),
    ({"x0": [10**400, 0]}, r"x0 must be finite numbers, got an integer past the float range in "),
    ({"bounds": [("-1", "9" * 500)] * 2}, r"bounds must be numbers, got ")])
def test_an_integer_past_the_float_range_is_refused_in_one_bounded_line(kwargs: dict, says: str) -> None:
    """Python ints are unbounded: a bound or start of 10**400 was numpy's OverflowError traceback, and a long
    value was echoed whole into the one error line."""
    args = {"bounds": [(-1, 1)] * 2, **kwargs}
    with pytest.raises(InputError, match=f"^{says}") as caught:
        zoaf.minimize(_sphere, args.pop("bounds"), budget=10, seed=0, method="random", **args)
    assert len(str(caught.value)) < 150


def test_a_parameter_of_an_integer_past_the_float_range_is_refused_by_its_field() -> None:
    """``Parameter("x", 0, 10**400)`` and an init of 10**400 were OverflowErrors, not the field's refusal."""
    from zoaf.problem import Parameter, ParameterError

    with pytest.raises(ParameterError, match=r"^parameter 'x': hi must be a finite number, got 1000+\.\.\. \(401 "):
        Parameter("x", 0, 10**400)
    with pytest.raises(ParameterError, match=r"^parameter 'x': init must be a finite number"):
        Parameter("x", 0, 1, init=10**400)

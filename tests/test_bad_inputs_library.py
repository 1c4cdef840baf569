"""Bad inputs, round 15: the library's ask/tell entry point (``zoaf.registry.create``) and ``zoaf.minimize`` as a
user of scipy, pycma, Nevergrad or Optuna misuses them. Each case was a traceback, a hang, a crash of the process
or a silent wrong answer before; now it is one ``InputError`` naming the argument or option."""
from __future__ import annotations

import numpy as np
import pytest

import zoaf
from zoaf import registry
from zoaf.errors import InputError


def _sphere(x: np.ndarray) -> float:
    return float(np.sum((x - 0.3) ** 2))


def _peer(name: str) -> str:
    """``name``, skipped where its library (the ``[peers]`` extra) is not installed."""
    if name not in registry.installed():
        pytest.skip(f"{name} needs the [peers] extra")
    return name


@pytest.mark.parametrize("seed", [-1, "1", 1.5, True, np.random.RandomState(0)])
def test_a_seed_that_is_no_whole_number_is_named(seed: object) -> None:
    """-1 was numpy's ValueError traceback ("expected non-negative integer"), text and 1.5 read as "method 'zoaf':
    SeedSequence expects int", True seeded as 1."""
    with pytest.raises(InputError, match=r"^seed must be a whole number >= 0 or a numpy Generator, got "):
        registry.create("zoaf", 2, 20, seed)


def test_numpy_integer_and_generator_seeds_are_taken() -> None:
    same = registry.create("zoaf", 2, 20, np.int64(3)).ask()
    assert np.array_equal(same, registry.create("zoaf", 2, 20, 3).ask())
    drawn = registry.create("random", 2, 20, np.random.default_rng(5)).ask()
    assert np.array_equal(drawn, registry.create("random", 2, 20, 5).ask())


def test_ask_after_the_budget_is_one_input_error() -> None:
    """It was a RuntimeError (a bug of zoaf's, to the reader) where every other misuse of the protocol is one."""
    opt = registry.create("random", 2, 5, 0)
    while not opt.done:
        x = opt.ask()
        opt.tell(x, np.array([_sphere(r) for r in x]))
    with pytest.raises(InputError, match=r"^random: ask\(\) after the run is done \(budget\); check done first$"):
        opt.ask()


@pytest.mark.parametrize(("method", "options", "says"), [
    ("cma", {"popsize": "x"}, "cma option popsize='x': must be a whole number from 0 to 2147483647"),
    ("cma", {"popsize": 1e300}, "cma option popsize=1e\\+300: must be a whole number from 0 to 2147483647"),
    ("cma", {"bound_handler": "clip"}, "cma option bound_handler='clip': must be one of penalty, transform"),
    ("cma", {"sigma0": -1}, r"cma option sigma0 must be in \(0, 1\], got -1"),
    ("cma-warm", {"n_init": float("nan")}, "cma-warm option n_init=nan: must be a whole number from 0 to"),
    ("de", {"popsize": "x"}, "de option popsize='x': must be a whole number"),
    ("de", {"mutation": "x"}, r"de option mutation must be a float or a \(lo, hi\) range within \[0, 2\], got x"),
    ("de", {"recombination": float("nan")}, "de option recombination=nan: must be a finite number"),
    ("random", {"batch": "x"}, "random option batch='x': must be a whole number"),
    ("zoaf", {"window": 1e300}, "ZOAF option window=1e\\+300: must be a whole number from 0 to 2147483647"),
    ("zoaf", {"max_restarts": -1}, "ZOAF option max_restarts=-1: must be a whole number from 0"),
    ("zoaf", {"acceptance": "strict"}, "ZOAF option acceptance='strict': must be one of filter, penalty"),
    ("cma", {"popsize": 3}, r"cma option popsize must be at least 4 \(or None\), got 3"),
    ("cma", {"popsiz": 8}, "unknown cma option\\(s\\) popsiz; did you mean 'popsize'\\? valid: bound_handler, popsize"),
])
def test_a_baseline_option_of_the_wrong_type_or_range_is_named(method: str, options: dict, says: str) -> None:
    """Each was a traceback, at construction (pycma's enum: "'clip' is not a valid BoundHandler") or after the first
    generation had been simulated (popsize 3: pycma's IndexError; 'x': int() of it), or a hang (popsize 1e300)."""
    with pytest.raises(InputError, match=says):
        registry.create(method, 2, 20, 0, **options)


@pytest.mark.parametrize(("method", "options", "says"), [
    ("nomad", {"max_bb_eval": -1}, "nomad option max_bb_eval=-1: must be a whole number from 0"),
    ("nomad", {"max_bb_eval": 0}, r"nomad option max_bb_eval must be at least 1 \(or None: the budget\), got 0"),
    ("nomad", {"constraints": "EB2"}, "nomad option constraints='EB2': must be one of"),
    ("cobyqa", {"radius_init": "x"}, "cobyqa option radius_init='x': must be a number"),
    ("cobyqa", {"radius_final": 1}, "cobyqa option radii must satisfy 0 <= radius_final <= radius_init"),
    ("cobyqa", {"maxfev": 0}, r"cobyqa option maxfev must be at least 1 \(or None: the budget\), got 0"),
    ("tpe", {"n_startup_trials": "x"}, "tpe option n_startup_trials='x': must be a whole number"),
    ("tpe", {"n_ei_candidates": 0}, "tpe option n_ei_candidates must be at least 1, got 0"),
    ("tpe", {"multivariate": "yes"}, "tpe option multivariate='yes': must be True or False"),
    ("ngopt", {"num_workers": 0}, r"ngopt option num_workers must be at least 1 \(or None: the run's workers\)"),
    ("ngopt", {"optimizer": "DE"}, "ngopt option optimizer='DE': must be one of NGOpt, CMA"),
])
def test_a_peer_option_of_the_wrong_type_or_range_is_named(method: str, options: dict, says: str) -> None:
    """NOMAD's max_bb_eval=-1 aborted the Python process (a C++ exception: every result lost), 0 ran the whole
    budget as None; COBYQA's and Optuna's own ValueErrors came at the first ask or after the startup trials, text
    was a comparison TypeError, and a multivariate='yes' was taken as True."""
    with pytest.raises(InputError, match=says):
        registry.create(_peer(method), 2, 20, 0, **options)


def test_des_mutation_range_is_still_taken_as_a_pair() -> None:
    assert registry.create("de", 2, 20, 0, mutation=(0.4, 0.9)).config.mutation == (0.4, 0.9)


def test_a_whole_float_option_is_taken_as_an_int() -> None:
    opt = registry.create("cma", 2, 40, 0, popsize=6.0)
    assert opt.config.popsize == 6 and isinstance(opt.config.popsize, int) and len(opt.ask()) == 6


def test_bounds_that_fix_a_variable_say_so() -> None:
    """scipy takes lb == ub as a fixed variable; "lo must be < hi, got lo=2, hi=2" did not say what to do."""
    with pytest.raises(InputError, match=r"^bounds\[1\] = \(2, 2\) fixes x\[1\], which zoaf does not take: .*args=$"):
        zoaf.minimize(_sphere, [(-1, 1), (2, 2)], budget=5)

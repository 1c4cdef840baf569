"""External peers (Nevergrad NGOpt/CMA, Optuna TPE, COBYQA, NOMAD) and the constrained forms of every method.

Synthetic constrained problem: minimize ``|x - A|^2`` subject to ``x_0 >= 0.5`` (normalized: ``c = (0.5 - x_0) /
0.5 <= 0``), ``A = (0.3, ...)`` infeasible, so the constrained optimum lies on the face ``x_0 = 0.5`` with value
0.04. The FoM follows zoaf's convention: the objective where feasible, ``100 + violation`` where not.
"""
from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from zoaf import registry

PEERS = ["ngopt", "ngcma", "tpe", "cobyqa", "nomad"]
DIM, A, FACE = 3, 0.3, 0.5
OPTIMUM = (FACE - A) ** 2   # the constrained optimum's objective
BUDGET = 80
#: Deterministic by design: COBYQA; NGOpt at this budget and dimension selects a deterministic method. (NOMAD's
#: ORTHO N+1 polls depend on its seed, which must reach it.)
DETERMINISTIC = {"cobyqa", "ngopt"}


def objective(x: np.ndarray) -> np.ndarray:
    return np.sum((x - A) ** 2, axis=1)


def constraints(x: np.ndarray) -> np.ndarray:
    return ((FACE - x[:, 0]) / FACE)[:, None]


def fom(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    o, c = objective(x), constraints(x)
    v = np.maximum(c, 0).sum(axis=1)
    return np.where(v <= 0, o, 100 + v), c, o


def threads_settle(count: int, wait: float = 5.0) -> bool:
    """Whether the live threads come back to ``count`` within ``wait`` seconds (a stopped thread ends async)."""
    import gc
    import time

    gc.collect()
    deadline = time.monotonic() + wait
    while threading.active_count() > count and time.monotonic() < deadline:
        time.sleep(0.05)
    return threading.active_count() == count


def drive(name: str, budget: int = BUDGET, seed: int = 0, constrained: bool = True,
          fom_carries_feasibility: bool = True, **kw):
    """Run to the end; returns (optimizer, asked batches, best feasible objective).

    ``constrained=False`` tells only the objective (the method ignores the constraint); with
    ``fom_carries_feasibility=False`` the FoM told is the bare objective and only ``c`` carries the constraint.
    """
    opt = registry.create(name, DIM, budget, seed, **kw)
    asks, best = [], np.inf
    while not opt.done:
        x = opt.ask()
        asks.append(x)
        f, c, o = fom(x)
        if constrained:
            opt.tell(x, f if fom_carries_feasibility else o, c, objective=o)
        else:
            opt.tell(x, objective(x))
        feasible = c[:, 0] <= 1e-9
        if feasible.any():
            best = min(best, float(o[feasible].min()))
    return opt, asks, best


@pytest.mark.parametrize("name", PEERS)
def test_peer_spends_the_budget_and_replays(name):
    threads = threading.active_count()
    opt, asks, _ = drive(name, budget=30)
    assert opt.nfev == sum(len(a) for a in asks)
    assert opt.nfev == 30 or opt.stop_reason.value == "converged", (name, opt.nfev, opt.stop_reason)
    assert np.concatenate(asks).min() >= 0 and np.concatenate(asks).max() <= 1
    _, asks2, _ = drive(name, budget=30)
    assert len(asks) == len(asks2) and all(np.array_equal(a, b) for a, b in zip(asks, asks2)), name
    _, asks3, _ = drive(name, budget=30, seed=1)
    assert name in DETERMINISTIC or not all(np.array_equal(a, b) for a, b in zip(asks, asks3)), f"{name}: seed ignored"
    del opt
    assert threads_settle(threads), f"{name}: a thread leaked"


@pytest.mark.parametrize("name", PEERS)
def test_constraints_reach_the_peer(name):
    """The unconstrained optimum is infeasible: told ``c``, the method ends feasible and near the face."""
    opt, _, best = drive(name)
    assert best < OPTIMUM + 0.03, f"{name}: best feasible objective {best:.4g}, optimum {OPTIMUM}"
    assert opt.best_f < 100   # its best FoM is feasible


@pytest.mark.parametrize("name", [p for p in PEERS if p != "cobyqa"])   # COBYQA: continuous only
def test_integer_axes_are_declared(name):
    """An integer axis with 5 levels: every asked point lies on a level's cell centre."""
    opt, asks, _ = drive(name, budget=30, unit_steps=np.array([0.0, 0.2, 0.0]))
    levels = np.concatenate(asks)[:, 1]
    on_level = np.isclose(levels[:, None], (np.arange(5) + 0.5) / 5).any(axis=1)
    assert on_level.all(), f"{name}: off-level asks {np.unique(levels)[:5]}"


def test_every_integer_of_a_log_axis_is_a_level():
    """A log-scaled integer 1..512: level k is the integer 1 + k and maps to its own cell's centre (equal cells at
    least one integer wide gave only the levels 1, 3, 9, 29, 91, ...)."""
    from zoaf.axes import IntegerAxis
    from zoaf.problem import Parameter

    axis = Parameter("n", 1, 512, scale="log", integer=True).integer_axis
    opt = registry.create("random", 2, 10, seed=0, integer_axes=(axis, None))
    assert opt.integer_levels.tolist() == [512, 0]
    k = np.column_stack([np.arange(512.0), np.full(512, 0.25)])
    box = opt.from_levels(k)
    np.testing.assert_array_equal(axis.value(box[:, 0]), np.arange(1, 513))
    np.testing.assert_array_equal(opt.to_levels(box), k)
    assert isinstance(axis, IntegerAxis) and axis.log


@pytest.mark.parametrize("name", ["ngcma", "tpe", "nomad"])
def test_a_log_scaled_integer_optimum_is_reached(name):
    """On a log axis 1..512 the peers reach the count 40 (NOMAD, given the equal-cell levels, ended at 29)."""
    import zoaf

    f = lambda x: float((x[0] - 40.0) ** 2 + (x[1] - 0.3) ** 2)
    res = zoaf.minimize(f, [(1, 512), (0, 1)], budget=200, seed=0, integers=[0], log=[0], method=name)
    assert res.x[0] == 40


def test_cobyqa_starts_at_x0_and_moves_freely_on_an_integer_axis():
    """COBYQA declares no integer levels: its first ask is x0 itself and its asks leave the two lowest cells of
    an integer axis with 5 levels (the shared level mapping once confined them there)."""
    x0 = np.array([0.3, 0.9, 0.5])
    _, asks, _ = drive("cobyqa", budget=30, unit_steps=np.array([0.0, 0.2, 0.0]), x0=x0)
    np.testing.assert_array_equal(asks[0][0], x0)
    assert np.concatenate(asks)[:, 1].max() > 0.4


@pytest.mark.parametrize("name", ["cobyqa", "nomad"])
def test_own_loop_closes_its_thread_when_abandoned(name):
    threads = threading.active_count()
    opt = registry.create(name, DIM, 50, 0)
    for _ in range(5):
        x = opt.ask()
        opt.tell(x, objective(x))
    assert threading.active_count() == threads + 1
    opt.close()
    assert threading.active_count() == threads
    opt = registry.create(name, DIM, 50, 0)
    for _ in range(5):
        x = opt.ask()
        opt.tell(x, objective(x))
    del opt, x
    assert threads_settle(threads), f"{name}: dropping the optimizer left its thread running"


def test_cobyqa_converges_early_and_says_so():
    opt, _, _ = drive("cobyqa", budget=200, constrained=False)
    assert opt.stop_reason.value == "converged" and opt.nfev < 200 and opt.best_f < 1e-5


#: Every method with its budget on the 3-D constrained problem (the GP methods are slow: small budgets).
ALL = {**{p: BUDGET for p in PEERS}, "cma": 120, "cma-warm": 120, "de": 120, "bo": 24, "turbo": 30}


@pytest.mark.parametrize("name", [m for m in ALL if m not in PEERS])
def test_constraints_reach_the_baseline(name):
    """Told ``c``, each baseline ends feasible near the constrained optimum; told only the objective, not."""
    opt, _, best = drive(name, budget=ALL[name])
    assert best < OPTIMUM + 0.03 and opt.best_f < 100, f"{name}: best feasible {best:.4g}, optimum {OPTIMUM}"
    _, _, blind = drive(name, budget=ALL[name], constrained=False)
    assert best < blind, f"{name}: no better with the constraints ({best:.4g}) than without ({blind:.4g})"


@pytest.mark.parametrize("name", [m for m in ALL if m != "random"])
def test_the_constraint_matrix_itself_is_used(name):
    """``f`` is told as the bare objective (no feasibility in it): only ``c`` can steer the method to x_0 >= 0.5."""
    _, _, best = drive(name, budget=ALL[name], fom_carries_feasibility=False)
    assert best < OPTIMUM + 0.03, f"{name}: best feasible {best:.4g} with the constraints only in c"


def test_random_returns_the_best_feasible_point():
    opt, asks, best = drive("random", budget=60)
    x = np.concatenate(asks)
    assert objective(x).min() < best   # an infeasible point had a better objective ...
    assert opt.best_f == best and constraints(opt.best_x[None])[0, 0] <= 0   # ... the feasible one is returned


@pytest.mark.parametrize("name", PEERS)
def test_peer_tolerates_failed_simulations(name):
    """~20% of simulations fail (``f``, ``c`` and the objective ``+inf``): the peer goes on and finds the face."""
    opt = registry.create(name, DIM, BUDGET, 0)
    best = np.inf
    while not opt.done:
        x = opt.ask()
        f, c, o = fom(x)
        failed = np.modf(np.abs(np.sin(1e3 * x @ np.arange(1, DIM + 1))) * 1e4)[0] < 0.2
        f, o = np.where(failed, np.inf, f), np.where(failed, np.inf, o)
        c = np.where(failed[:, None], np.inf, c)
        opt.tell(x, f, c, objective=o)
        ok = ~failed & (c[:, 0] <= 0)
        best = min(best, float(o[ok].min())) if ok.any() else best
    assert opt.nfev == BUDGET or opt.stop_reason.value == "converged"
    assert best < OPTIMUM + 0.05, f"{name}: best feasible {best:.4g} with failures"


def test_nomad_takes_a_budget_beyond_a_c_int():
    """NOMAD's MAX_BB_EVAL is a C int: a budget of 2**40 overflowed it, NOMAD refused the negative limit and the
    process died of a segfault (so this runs in a child process: the old failure took pytest down)."""
    script = ("import numpy as np\nfrom zoaf import registry\nopt = registry.create('nomad', 3, 2**40, 0)\n"
              "for _ in range(5):\n    x = opt.ask()\n    opt.tell(x, np.sum((x - 0.3) ** 2, axis=1))\n"
              "opt.close()\nprint(opt.nfev)\n")
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                       cwd=Path(__file__).parent.parent)
    assert r.returncode == 0 and r.stdout.split() == ["5"], (r.returncode, r.stderr[-2000:])

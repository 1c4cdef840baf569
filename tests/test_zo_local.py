"""ZOAF with COBYQA as its local phase (``local="cobyqa"``): the same seed asks the same points, the budget is
kept exactly, the runs' threads end, and the local run is the package's own COBYQA."""
import threading

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from zoaf.errors import InputError
from zoaf.problem import INFEASIBLE_OFFSET
from zoaf.zo import ZOAF

from test_peers import threads_settle
from test_zo_constrained import _run


def test_equal_seeds_ask_equal_points_and_the_budget_is_spent_exactly():
    threads = threading.active_count()
    opt, a = _run(1, 200, local="cobyqa")       # at 300 its restarts run out first (285 simulations, converged)
    _, b = _run(1, 200, local="cobyqa")
    np.testing.assert_array_equal(a, b)
    assert len(a) == opt.nfev == 200
    _, other = _run(2, 200, local="cobyqa")
    assert not np.array_equal(a[: len(other)], other[: len(a)])
    _, default = _run(1, 200)
    np.testing.assert_array_equal(a[:13], default[:13])     # x0 and the Sobol batch (2d) are ZOAF's own
    assert not np.array_equal(a[13:20], default[13:20])
    assert threads_settle(threads), "a finished run left a COBYQA thread running"


def test_the_first_local_points_are_cobyqas_initial_interpolation_set():
    """From the start's point, COBYQA first moves one coordinate at a time by its initial radius: ZOAF's first
    probe distance (h_max = 0.25 at alpha0 = 0.5)."""
    _, asks = _run(0, 40, local="cobyqa", n_init=0, n_starts=1)
    moves = asks[1:4] - asks[0]
    assert np.all(np.count_nonzero(moves, axis=1) == 1)
    np.testing.assert_allclose(np.abs(moves).max(axis=1), 0.25)


def test_an_abandoned_run_ends_its_threads():
    threads = threading.active_count()
    opt = ZOAF(3, 100, 0, local="cobyqa")
    for _ in range(12):
        u = opt.ask()
        opt.tell(u, np.sum((u - 0.3) ** 2, axis=1))
    assert threading.active_count() > threads
    del opt, u
    assert threads_settle(threads), "dropping the optimizer left a COBYQA thread running"


def test_an_unknown_local_solver_names_the_valid_ones():
    with pytest.raises(InputError, match="local='newuoa'.*zoaf, cobyqa"):
        ZOAF(2, 10, 0, local="newuoa")


@settings(max_examples=15, deadline=None)
@given(dim=st.integers(1, 5), budget=st.integers(1, 90), seed=st.integers(0, 2**16), m=st.integers(0, 2),
       fail=st.booleans(), workers=st.integers(1, 3), handover=st.booleans())
def test_asks_stay_in_box_and_budget_through_failures(dim, budget, seed, m, fail, workers, handover):
    """Failed simulations, unmeasurable objectives and unconstrained problems: every ask one point in the box,
    the charged simulations exactly the asked ones, never past the budget."""
    rng = np.random.default_rng(seed)
    A, r = rng.standard_normal((m, dim)), rng.uniform(-0.5, 0.5, m)
    opt, asked = ZOAF(dim, budget, seed, workers=workers, local="cobyqa", local_handover=handover), 0
    while not opt.done:
        u = opt.ask()
        assert np.all((u >= 0) & (u <= 1)) and u.shape[1] == dim
        asked += len(u)
        obj = np.sum((u - 0.3) ** 2, axis=1)
        if fail:
            obj[rng.random(len(u)) < 0.2] = np.inf
        if m == 0:
            opt.tell(u, obj)
            continue
        c = u @ A.T - r
        if fail:
            c[rng.random(len(u)) < 0.2] = np.inf
        v = np.maximum(c, 0).sum(axis=1)
        opt.tell(u, np.where(np.isinf(v), np.inf, np.where(v > 0, INFEASIBLE_OFFSET + v, obj)), c, objective=obj)
    assert asked == opt.nfev <= budget


def test_with_grace_the_rung_counts_from_the_end_of_cobyqas_initial_set():
    """Halving compares the starts after their first model steps: the first start hands over after 2d + the
    usual rung (15% of the budget after the Sobol batch) instead of the rung alone."""
    def first_handover(**options):
        opt, active = ZOAF(4, 200, 0, local="cobyqa", **options), None
        while not opt.done:
            u = opt.ask()
            opt.tell(u, np.sum((u - 0.3) ** 2, axis=1) + 0.1 * np.sum(np.sin(25 * u), axis=1))
            if active is not None and opt._active is not active:
                return opt.nfev
            active = opt._active
    n0, rung = 1 + 8, int(0.15 * (200 - 9))     # x0 and the Sobol batch (2d = 8); the rung
    assert first_handover() == n0 + rung
    assert first_handover(local_grace=True) == n0 + 2 * 4 + rung


def _linear(seed: int, **options) -> float:
    """Best FoM of a 4-D run: minimize sum(u) s.t. sum(u) >= 2.4 and a ball, from the infeasible centre."""
    opt = ZOAF(4, 80, seed, local="cobyqa", n_init=0, n_starts=1, **options)
    while not opt.done:
        u = opt.ask()
        obj = u.sum(axis=1)
        c = np.column_stack([2.4 - obj, np.sum((u - 0.6) ** 2, axis=1) - 0.3])
        v = np.maximum(c, 0).sum(axis=1)
        opt.tell(u, np.where(v > 0, INFEASIBLE_OFFSET + v, obj), c, objective=obj)
    return opt.best_f


@pytest.mark.parametrize("seed", [0, 1])
def test_the_margin_keeps_cobyqa_that_far_inside_its_constraints(seed):
    """COBYQA told c + 1e-3 <= 0 ends feasible with the active bound's slack ~1e-3; untold, on the bound."""
    assert _linear(seed) == pytest.approx(2.4, abs=1e-9)
    assert 2.4 + 5e-4 <= _linear(seed, local_margin=1e-3) <= 2.4 + 2e-3


def test_with_handover_zoafs_steps_go_on_from_the_best_point_of_a_stalled_cobyqa_run():
    """A start's COBYQA run that stalls hands the start, not the run, on: the next ask is a ZOAF step batch
    around the best point COBYQA found (its constraint measures kept), and the budget is still spent exactly."""
    opt = ZOAF(4, 200, 0, local="cobyqa", local_handover=True, n_init=0, n_starts=1)
    best, handed = None, None
    while not opt.done:
        u = opt.ask()
        if opt._phase in ("random", "coordinate") and handed is None:
            handed = opt._active
            np.testing.assert_array_equal(handed.x, best[0])
            assert handed.fx == best[1] and handed.local is None and handed.con is not None
            np.testing.assert_allclose(handed.con.y[0], best[1])
        obj = np.sum((u - 0.3) ** 2, axis=1) + 0.1 * np.sum(np.sin(25 * u), axis=1)
        c = (0.2 - u[:, 0])[:, None]
        f = np.where(c[:, 0] > 0, INFEASIBLE_OFFSET + c[:, 0], obj)
        if opt._phase == "cobyqa" and (best is None or f[0] < best[1]):
            best = (u[0].copy(), float(f[0]))
        opt.tell(u, f, c, objective=obj)
    assert handed is not None and opt.nfev == 200
    assert opt.best_f <= best[1]


def test_the_zoaf_cobyqa_method_runs_its_ablation_settings_and_keeps_its_budget():
    """`zoaf-cobyqa` is a registry method (the comparison ranks it beside `zoaf`) whose runs are exactly those of
    ZOAF with the ablation `local-cobyqa-grace-m3-late-polish-after`: the same asks per seed, every simulation
    charged once; its report footer lists those settings; a caller's option still overrides the preset. The preset
    keeps ``exact_step`` off, as its runs recorded it, and the ablation run with the default's exact step asks the
    same points: COBYQA takes every step, ZOAF's model step never runs."""
    from zoaf import registry
    from zoaf.report import method_settings
    from zoaf.zo.ablations import ABLATIONS
    from test_zo_constrained import _Quadratic

    def asks(opt):
        problem, out = _Quadratic(), []
        while not opt.done:
            u = opt.ask()
            out.append(u)
            fom, c, obj = problem.measures(u)
            opt.tell(u, fom, c, objective=obj)
        return opt, np.vstack(out)

    opt, a = asks(registry.create("zoaf-cobyqa", 6, 150, 4))
    _, b = asks(ZOAF(6, 150, 4, **ABLATIONS["local-cobyqa-grace-m3-late-polish-after"]))
    np.testing.assert_array_equal(a, b)
    assert len(a) == opt.nfev == 150 and opt.name == "zoaf-cobyqa"
    shown = method_settings("zoaf-cobyqa")
    assert (shown["local"], shown["local_grace"], shown["local_margin"]) == ("cobyqa", True, 1e-3)
    assert (shown["n_starts"], shown["late_init"], shown["polish"]) == (1, True, "after-batch")
    assert shown["exact_step"] is False and ZOAF(2, 10).config.exact_step is True
    assert registry.create("zoaf-cobyqa", 6, 10, 0, local_margin=0.0).config.local_margin == 0.0

"""ZOAF end to end: convergence under stated budgets, box, budget, failures, determinism."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import zoaf
from zoaf.errors import InputError
from zoaf.zo import ZOAF

D = 22
C = 0.7 * np.sin(1.7 * np.arange(D) + 0.4)          # optimum off-centre, inside [-1, 1]


def sphere(x, c=C):
    return float(np.sum((x - c) ** 2))


def test_sphere_22d_reaches_1e_3_within_1500():
    for seed in (0, 1):
        res = zoaf.minimize(sphere, [(-1, 1)] * D, budget=1500, seed=seed)
        assert res.fun < 1e-3, (seed, res.fun)
        assert res.nfev <= 1500


def test_rosenbrock_22d_within_1500():
    """Stated tolerance: f < 25 after 1500 calls (random points in [-2, 2]^22 score ~1e4; warm CMA-ES reaches
    ~130 at 400). The valley floor is reached; following it to (1, ..., 1) needs far more calls."""
    rosen = lambda x: float(np.sum(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2))
    res = zoaf.minimize(rosen, [(-2, 2)] * D, budget=1500, seed=0)
    assert res.fun < 25.0


def test_integer_variables_found_exactly():
    """16 continuous in [-1, 1] + 6 integers in [-10, 10]; the integers must be exact in every seed and the
    median f (over 3 seeds) < 1e-3 within 1500 calls."""
    c = np.concatenate([C[:16], [3, -7, 0, 10, -2, 5]])
    bounds = [(-1, 1)] * 16 + [(-10, 10)] * 6
    funs = []
    for seed in range(3):
        res = zoaf.minimize(lambda x: sphere(x, c), bounds, budget=1500, seed=seed, integers=range(16, 22))
        np.testing.assert_array_equal(res.x[16:], c[16:])
        funs.append(res.fun)
    assert np.median(funs) < 1e-3


def test_optimum_on_a_bound():
    c = C + 0.5                                       # a third of the coordinates' optima lie beyond +1
    fstar = sphere(np.clip(c, -1, 1), c)
    res = zoaf.minimize(lambda x: sphere(x, c), [(-1, 1)] * D, budget=1500, seed=0)
    assert res.fun - fstar < 1e-3
    assert np.all(res.x[c > 1] > 1 - 1e-3)


def test_failed_evaluations_tolerated():
    """10% of the points (a fixed pseudo-random set) fail: still f < 1e-2 on a 10-D sphere in 800 calls."""
    def flaky(x):
        if (int(abs(np.sum(x)) * 1e9) % 10) == 0:
            return float("nan")
        return sphere(x, C[:10])
    res = zoaf.minimize(flaky, [(-1, 1)] * 10, budget=800, seed=3)
    assert res.nfailed > 20 and res.fun < 1e-2


def test_everything_fails_without_crashing():
    res = zoaf.minimize(lambda x: float("inf"), [(0, 1)] * 4, budget=50, seed=0)
    assert res.nfev == 50 and not res.success and res.fun == np.inf


def test_same_seed_identical_history_and_workers_fill_batches():
    a = zoaf.minimize(sphere, [(-1, 1)] * D, budget=300, seed=7)
    b = zoaf.minimize(sphere, [(-1, 1)] * D, budget=300, seed=7)
    assert a.nfev == b.nfev == 300 and len(a.history) == len(b.history)    # cache hits are free extra rows
    assert all(np.array_equal(r.u, s.u) for r, s in zip(a.history, b.history))
    c = zoaf.minimize(sphere, [(-1, 1)] * D, budget=300, seed=8)
    assert not all(np.array_equal(r.u, s.u) for r, s in zip(a.history, c.history))
    opt = ZOAF(D, 300, 0, workers=8)
    opt.tell(opt.ask(), np.zeros(len(opt.ask())))   # the Sobol batch
    assert len(opt.ask()) >= 8


def test_unknown_option_is_input_error():
    with pytest.raises(InputError, match="unknown ZOAF option"):
        ZOAF(3, 100, 0, qq=3)
    with pytest.raises(InputError, match="mode"):
        ZOAF(3, 100, 0, mode="bogus")


def test_coordinate_phase_steps_per_direction_on_badly_scaled_axes():
    """Curvatures 1 to 1e4 along the axes: one step length cannot suit every axis, a step per direction can.
    From the same start (the centre, whole budget), the coordinate phase alone must beat the random-direction
    phase alone (median of 5 seeds, 1500 calls; measured 8.6 vs 20.1)."""
    a = np.logspace(0, 4, D)
    f = lambda x: float(np.sum(a * (x - C) ** 2))
    med = {mode: np.median([zoaf.minimize(f, [(-1, 1)] * D, budget=1500, seed=s, mode=mode, n_init=0).fun
                            for s in range(5)]) for mode in ("coordinate", "random")}
    assert med["coordinate"] < 0.7 * med["random"], med


@pytest.mark.parametrize("options", [{}, {"mode": "random"}, {"mode": "coordinate"}, {"n_starts": 1, "n_init": 0},
                                     {"monitor": False}, {"estimator": "classic"},
                                     {"mode": "coordinate", "estimator": "classic"}, {"basis_prior": 1.0}])
def test_ablation_variants_run(options):
    res = zoaf.minimize(sphere, [(-1, 1)] * D, budget=400, seed=0, **options)
    assert res.nfev <= 400 and res.fun < 1.0


@settings(max_examples=25, deadline=None)
@given(dim=st.integers(1, 8), budget=st.integers(1, 150), seed=st.integers(0, 2**16), fail=st.booleans(),
       n_int=st.integers(0, 3), workers=st.integers(1, 5))
def test_asks_stay_in_box_and_budget(dim, budget, seed, fail, n_int, workers):
    steps = np.array([0.1 if i < n_int else 0.0 for i in range(dim)])
    opt = ZOAF(dim, budget, seed, unit_steps=steps, workers=workers)
    rng = np.random.default_rng(seed)
    c = rng.uniform(-0.2, 1.2, dim)                   # optimum possibly outside the box
    asked = 0
    while not opt.done:
        u = opt.ask()
        assert u.ndim == 2 and u.shape[1] == dim and len(u) >= 1
        assert np.all((u >= 0) & (u <= 1))
        asked += len(u)
        assert asked <= budget
        f = np.sum((u - c) ** 2, axis=1)
        if fail:
            f[rng.random(len(f)) < 0.3] = np.inf
        opt.tell(u, f)
    assert opt.nfev <= budget
    if opt.stop_reason is zoaf.StopReason.BUDGET:
        assert asked == budget


@pytest.mark.parametrize("x0", [None, np.array([0.9, 0.1, 0.8, 0.2])])
def test_first_start_is_x0_or_the_centre_whatever_its_value(x0):
    """The centre (or the user's x0) is simulated first and the first local search starts there even when it
    is the worst point of the batch: its first probes lie within the smoothing radius h_max of it."""
    opt = ZOAF(4, 200, seed=0, x0=x0)
    batch = opt.ask()
    start = np.full(4, 0.5) if x0 is None else x0
    np.testing.assert_array_equal(batch[0], start)
    f = np.arange(len(batch), 0, -1, dtype=float)           # the first point is the worst
    opt.tell(batch, f)
    probes = opt.ask()
    assert np.all(np.linalg.norm(probes - start, axis=1) <= opt.config.h_max + 1e-12)
    opt = ZOAF(4, 200, seed=0, x0=x0, centre_start=False)  # not forced: the best Sobol point starts
    batch = opt.ask()
    opt.tell(batch, np.arange(len(batch), 0, -1, dtype=float))
    assert np.all(np.linalg.norm(opt.ask() - batch[-1], axis=1) <= opt.config.h_max + 1e-12)


def _unconstrained_trace(seed: int, **options) -> tuple[str, float]:
    """Digest of every ask of a 6-D run (values rounded to 12 digits) and the best value found."""
    import hashlib
    opt = ZOAF(6, 150, seed, **options)
    c = np.linspace(0.2, 0.8, 6)
    asks = []
    while not opt.done:
        u = opt.ask()
        asks.append(u)
        opt.tell(u, np.sum((u - c) ** 2, axis=1) + 0.1 * np.sin(7 * u[:, 0]))
    return hashlib.sha256(np.round(np.vstack(asks), 12).tobytes()).hexdigest()[:16], opt.best_f


@pytest.mark.parametrize("seed, options, digest, best", [
    (0, {}, "583139d8f932d4ab", 0.05454345513249999),
    (1, {}, "9172081c6bd0cc2e", 0.05452631335754664),
    (2, {"mode": "coordinate"}, "f626babd11f941e1", 0.054524678665824486),
])
def test_unconstrained_runs_unchanged_by_the_constraint_aware_step(seed, options, digest, best):
    """Without a constraint matrix the method is today's: asks and result pinned from the code before the
    constraint-aware step existed (equal seeds, equal asks)."""
    assert _unconstrained_trace(seed, **options) == (digest, best)

"""ZO estimators: exactness on linear/quadratic functions, unbiasedness in expectation, bounds, failures."""
import numpy as np
import pytest

from zoaf.zo import estimators as est
from zoaf.zo.multistart import distinct_ranking, rung_budget, sobol_batch
from zoaf.zo.schedule import next_alpha, smoothing_radius

D = 6
G = np.array([1.0, -2.0, 0.5, 3.0, -1.5, 0.25])


def linear(P):
    return np.atleast_2d(P) @ G + 1.0


def quadratic(P, c=np.linspace(0.2, 0.8, D), a=np.linspace(1.0, 10.0, D)):
    P = np.atleast_2d(P)
    return np.sum(a * (P - c) ** 2, axis=1)


def quad_grad(x, c=np.linspace(0.2, 0.8, D), a=np.linspace(1.0, 10.0, D)):
    return 2 * a * (x - c)


def test_coordinate_forward_exact_on_linear():
    x = np.full(D, 0.4)
    P = est.coordinate_probes(x, 1e-3, np.arange(D))
    g, ok = est.coordinate_estimate(linear(x)[0], linear(P), x, P, np.arange(D))
    assert ok.all()
    np.testing.assert_allclose(g, G, atol=1e-9)


def test_coordinate_central_is_second_order_on_quadratic():
    x = np.full(D, 0.45)
    for h in (1e-2, 1e-3):
        P = est.coordinate_probes(x, h, np.arange(D), central=True)
        g, ok = est.coordinate_estimate(0.0, quadratic(P), x, P, np.arange(D), central=True)
        np.testing.assert_allclose(g, quad_grad(x), atol=1e-8)      # central differences: exact for quadratics
    # forward differences: error a_i * h (first order), checked against its exact size
    h = 1e-2
    P = est.coordinate_probes(x, h, np.arange(D))
    g, _ = est.coordinate_estimate(quadratic(x)[0], quadratic(P), x, P, np.arange(D))
    np.testing.assert_allclose(g - quad_grad(x), np.linspace(1.0, 10.0, D) * h, atol=1e-9)


def test_coordinate_subset_and_clipped_probe_uses_actual_displacement():
    x = np.full(D, 0.5)
    x[2] = 0.9995                                      # a forward probe of 1e-2 would be clipped to 5e-4
    coords = np.array([0, 2])
    P = est.coordinate_probes(x, 1e-2, coords)
    assert P[1, 2] < x[2]                             # turned towards the interior, full length
    g, ok = est.coordinate_estimate(linear(x)[0], linear(P), x, P, coords)
    assert ok.tolist() == [True, False, True, False, False, False]
    np.testing.assert_allclose(g[coords], G[coords], atol=1e-9)
    # a probe that is clipped anyway (h larger than the room on both sides) still divides by the true move
    y = np.full(D, 0.5)
    P = est.coordinate_probes(y, 0.8, np.array([1]))
    g, _ = est.coordinate_estimate(linear(y)[0], linear(P), y, P, np.array([1]))
    assert g[1] == pytest.approx(G[1])


def test_failed_probes_are_dropped():
    x = np.full(D, 0.5)
    P = est.coordinate_probes(x, 1e-3, np.arange(D))
    F = linear(P)
    F[3] = np.inf
    g, ok = est.coordinate_estimate(linear(x)[0], F, x, P, np.arange(D))
    assert not ok[3] and g[3] == 0 and np.isfinite(g).all()
    rng = np.random.default_rng(0)
    U = est.random_directions(rng, 4, D, "gaussian")
    P = est.random_probes(x, U, 1e-3)
    F = linear(P)
    g_all = est.random_estimate(linear(x)[0], F[:3], x, P[:3], 1e-3)
    F[3] = np.inf
    np.testing.assert_allclose(est.random_estimate(linear(x)[0], F, x, P, 1e-3), g_all)


@pytest.mark.parametrize("kind", ["gaussian", "rademacher", "orthogonal"])
@pytest.mark.parametrize("central", [False, True])
def test_random_estimate_unbiased(kind, central):
    """Mean over 3000 draws of a q=4 estimate is within 5% (in norm) of the true gradient.

    Per draw the estimate's spread is about |g| sqrt(d/q); the mean's standard error is then ~0.02 |g|.
    """
    rng = np.random.default_rng(1)
    x, h = np.full(D, 0.5), 1e-3
    fun, true = (linear, G) if not central else (quadratic, quad_grad(x))
    acc = np.zeros(D)
    n = 3000
    for _ in range(n):
        U = est.random_directions(rng, 4, D, kind)
        P = est.random_probes(x, U, h, central=central)
        acc += est.random_estimate(fun(x)[0], fun(P), x, P, h, central=central)
    assert np.linalg.norm(acc / n - true) < 0.05 * np.linalg.norm(true)


def test_orthogonal_directions_are_orthogonal_and_respect_mask():
    rng = np.random.default_rng(2)
    active = np.array([True, True, False, True, True, True])
    U = est.random_directions(rng, 5, D, "orthogonal", active)
    assert np.all(U[:, 2] == 0)
    np.testing.assert_allclose(U @ U.T, 5 * np.eye(5), atol=1e-10)   # norm^2 = d_active = 5, mutually orthogonal


def test_regression_estimate_exact_on_linear_and_sphere_with_curvature():
    rng = np.random.default_rng(3)
    x = np.full(D, 0.5)
    X = x + 0.05 * rng.standard_normal((2 * D, D))
    np.testing.assert_allclose(est.regression_estimate(x, linear(x)[0], X, linear(X)), G, atol=1e-9)
    c = np.linspace(0.3, 0.6, D)
    sph = lambda P: 3.0 * np.sum((np.atleast_2d(P) - c) ** 2, axis=1)
    g, curv = est.regression_estimate(x, sph(x)[0], X, sph(X), curvature=True)
    np.testing.assert_allclose(g, 6.0 * (x - c), atol=1e-8)
    assert curv == pytest.approx(6.0)
    # fewer points than unknowns: the minimum-norm solution is the projection on the probed span
    U = est.random_directions(rng, 2, D, "orthogonal") / np.sqrt(D)
    P = est.random_probes(x, U, 1e-3)
    g = est.regression_estimate(x, linear(x)[0], P, linear(P))
    np.testing.assert_allclose(g, U.T @ (U @ G), atol=1e-9)


def test_regression_estimates_exact_for_every_measure_in_one_solve():
    """Objective and constraints from the same points: exact gradients of linear measures, exact gradient and
    curvature of isotropic quadratics, each column equal to the single-measure estimate; a measure that could
    not be read at some points still gets its exact gradient from the others."""
    rng = np.random.default_rng(4)
    x = np.full(D, 0.5)
    X = x + 0.05 * rng.standard_normal((3 * D, D))
    H = rng.standard_normal((3, D))
    lin = lambda P: np.atleast_2d(P) @ H.T + np.array([1.0, -2.0, 0.0])
    Gs, curv = est.regression_estimates(x, lin(x)[0], X, lin(X))
    np.testing.assert_allclose(Gs, H, atol=1e-9)
    assert np.all(curv == 0)
    c = np.linspace(0.3, 0.6, D)
    quad = lambda P: np.stack([k * np.sum((np.atleast_2d(P) - c) ** 2, axis=1) for k in (1.0, -2.0)], axis=1)
    Gs, curv = est.regression_estimates(x, quad(x)[0], X, quad(X), curvature=True)
    np.testing.assert_allclose(Gs, [2.0 * (x - c), -4.0 * (x - c)], atol=1e-8)
    np.testing.assert_allclose(curv, [2.0, -4.0], atol=1e-8)
    w = rng.uniform(0.5, 2.0, len(X))
    Gs, _ = est.regression_estimates(x, lin(x)[0], X, lin(X), w)
    for j in range(3):
        np.testing.assert_allclose(Gs[j], est.regression_estimate(x, lin(x)[0, j], X, lin(X)[:, j], w), atol=1e-9)
    Y = lin(X)
    Y[:4, 0] = np.inf                                       # the objective unmeasurable at 4 points
    Gs, _ = est.regression_estimates(x, lin(x)[0], X, Y)
    np.testing.assert_allclose(Gs, H, atol=1e-9)


def test_adapted_basis_follows_the_moves_and_skips_frozen_coordinates():
    rng = np.random.default_rng(3)
    ridge = np.array([1.0, 1.0, 0.0, 0.0, 0.0, 0.0]) / np.sqrt(2)
    moves = np.outer(rng.normal(size=12), ridge) + 1e-3 * rng.normal(size=(12, D))   # moves along a ridge
    B, scale = est.adapted_basis(moves, np.ones(D, bool))
    np.testing.assert_allclose(B @ B.T, np.eye(D), atol=1e-12)                     # orthonormal
    assert abs(B[0] @ ridge) > 0.999                                                 # ridge first,
    assert scale[0] > 2.0 * scale[1] and scale[1] == pytest.approx(np.sqrt(0.5), rel=1e-2)   # longest step
    active = np.array([True, True, False, True, True, True])
    B, scale = est.adapted_basis(moves, active)
    assert B.shape == (5, D) and np.all(B[:, 2] == 0)                                # frozen: no direction
    B, scale = est.adapted_basis(np.empty((0, D)), np.ones(D, bool))                # no moves: the axes
    np.testing.assert_allclose(np.abs(B), np.eye(D)) and np.testing.assert_allclose(scale, 1.0)


def test_basis_probes_flip_at_a_bound_and_directional_update_matches_coordinates():
    x = np.array([0.95, 0.5, 0.02])
    B = np.eye(3)
    P = est.basis_probes(x, B, np.full(3, 0.2), signs=np.array([1.0, -1.0, -1.0]))
    np.testing.assert_allclose(P - x, np.diag([-0.2, -0.2, 0.2]))   # no room up (x0) / down (x2): flipped
    R = est.adapted_basis(np.array([[1.0, -2.0, 0.5]]), np.ones(3, bool))[0]
    assert np.all((est.basis_probes(x, R, np.full(3, 0.3)) >= 0) & (est.basis_probes(x, R, np.full(3, 0.3)) <= 1))
    f = lambda Q: np.atleast_2d(Q) @ np.array([1.0, -2.0, 3.0])
    y = np.full(3, 0.5)
    P = est.basis_probes(y, R, np.full(3, 0.1))                         # unclipped: orthogonal displacements
    g = est.directional_update(np.zeros(3), f(y)[0], f(P), y, P)      # any basis: exact on linear functions
    np.testing.assert_allclose(g, [1.0, -2.0, 3.0], atol=1e-9)
    P = est.coordinate_probes(x, 1e-3, np.arange(3))
    gc, _ = est.coordinate_estimate(f(x)[0], f(P), x, P, np.arange(3))
    np.testing.assert_allclose(est.directional_update(np.zeros(3), f(x)[0], f(P), x, P), gc, atol=1e-9)


def test_integer_min_step_and_frozen_mask():
    steps = np.array([0.0, 0.1, 0.1])
    d = est.min_step_displacement(np.array([0.01, 0.01, 0.06, -0.07, 0.3]), np.array([0, 0.1, 0.1, 0.1, 0.1]))
    np.testing.assert_allclose(d, [0.01, 0.0, 0.1, -0.1, 0.3])   # < half a step dropped, else >= one step
    P = est.coordinate_probes(np.full(3, 0.5), 1e-3, np.arange(3), unit_steps=steps)
    assert abs(P[1, 1] - 0.5) >= 0.1 - 1e-12 and abs(P[2, 2] - 0.5) >= 0.1 - 1e-12
    x = np.array([0.0, 1.0, 0.0, 0.5])
    g = np.array([1.0, -1.0, -1.0, 5.0])
    assert est.frozen_mask(x, g).tolist() == [True, True, False, False]


def test_multistart_ranking_budget_and_schedule():
    X = np.array([[0.1, 0.1], [0.12, 0.1], [0.9, 0.9], [0.5, 0.5]])
    F = np.array([1.0, 0.5, 2.0, np.inf])
    assert distinct_ranking(X, F, 0.1) == [1, 2]
    assert sum(rung_budget(100, 3, 0.2, halving=False)) == 100
    assert rung_budget(100, 2, 0.2, halving=True) == [20, 20]
    S = sobol_batch(16, 3, np.random.default_rng(0))
    assert S.shape == (16, 3) and S.min() >= 0 and S.max() <= 1
    np.testing.assert_array_equal(S, sobol_batch(16, 3, np.random.default_rng(0)))
    assert next_alpha(0.1, np.array([0.1, 0.2]), np.array([True, True]), 2.0, 0.5) == pytest.approx(0.4)
    assert next_alpha(0.1, np.array([0.1, 0.2]), np.array([True, False]), 2.0, 0.5) == pytest.approx(0.1)
    assert next_alpha(0.1, np.array([0.1, 0.2]), np.array([False, False]), 2.0, 0.5) == pytest.approx(0.05)
    assert smoothing_radius(1e-6, 0.5, 1e-3, 0.1) == 1e-3


def test_outliers_switch_the_regression_to_ranks():
    from zoaf.zo.estimators import has_outliers
    smooth = np.linspace(1.0, 2.0, 12)
    assert not has_outliers(1.5, smooth)
    assert has_outliers(1.5, np.append(smooth, 101.0))      # a constraint cliff: infeasible FoM = 100 + v
    assert not has_outliers(3.0, np.full(5, 3.0))            # flat: nothing to rank


def test_axis_curvatures_exact_for_a_quadratic_steep_along_its_gradient():
    """f = g.D + (a (u.D)^2 + b (|D|^2 - (u.D)^2)) / 2 with u = g/|g| is fitted exactly from random points:
    the curvature along the gradient a and across it b, where the isotropic fit gives one value between."""
    rng = np.random.default_rng(3)
    d, a, b = 5, 40.0, 2.0
    x, g = np.full(d, 0.5), rng.standard_normal(d)
    u = g / np.linalg.norm(g)
    X = x + 0.05 * rng.standard_normal((30, d))
    Dx = X - x
    Y = Dx @ g + 0.5 * (a * (Dx @ u) ** 2 + b * (np.sum(Dx * Dx, axis=1) - (Dx @ u) ** 2))
    U, along, across = est.axis_curvatures(x, np.zeros(1), X, Y[:, None], g[None, :], np.zeros(1))
    np.testing.assert_allclose([along[0], across[0]], [a, b], rtol=1e-8)
    np.testing.assert_allclose(U[0], u)


def test_least_change_models_interpolate_keep_a_right_hessian_and_learn_a_quadratic():
    """Powell's least-change update: every point is interpolated; a Hessian that already models the function
    is left exactly as it is (the change is the least that interpolates: none) with the exact gradient; from a
    zero Hessian, refits on fresh 2d + 1 points at moving iterates converge to the true Hessian."""
    rng = np.random.default_rng(0)
    B = rng.standard_normal((D, D))
    Hq = B @ B.T
    f = lambda P: np.atleast_2d(P) @ G + 0.5 * np.einsum("ni,ij,nj->n", np.atleast_2d(P), Hq, np.atleast_2d(P))
    x = np.full(D, 0.3)
    X = x + 0.1 * rng.standard_normal((2 * D + 1, D))
    g, H = est.least_change_models(x, f(x), X, f(X)[:, None], Hq[None])
    np.testing.assert_allclose(H[0], Hq, atol=1e-9)
    np.testing.assert_allclose(g[0], G + Hq @ x, atol=1e-9)
    H = np.zeros((1, D, D))
    for _ in range(30):
        x = x + 0.05 * rng.standard_normal(D)
        X = x + 0.1 * rng.standard_normal((2 * D + 1, D))
        g, H = est.least_change_models(x, f(x), X, f(X)[:, None], H)
        Dx = X - x
        np.testing.assert_allclose(f(x) + Dx @ g[0] + 0.5 * np.einsum("ni,ij,nj->n", Dx, H[0], Dx), f(X),
                                   atol=1e-9)
    assert np.linalg.norm(H[0] - Hq) < 0.01 * np.linalg.norm(Hq)


def test_whole_cells_probe_an_integer_whose_cell_outgrew_the_steps():
    """x0 an integer whose cell (0.3) is over twice the coordinate steps (0.05): its probe rounds back onto x (a
    cached, wasted simulation) unless ``whole_cells``, which moves it by the cell, to the side with room at a bound;
    a mostly-continuous direction keeps its own length, the continuous axis is untouched."""
    x, cells = np.array([0.5, 0.5]), np.array([0.3, 0.0])
    P = est.basis_probes(x, np.eye(2), np.full(2, 0.05), unit_steps=cells)
    np.testing.assert_array_equal(P[0], x)
    P = est.basis_probes(x, np.eye(2), np.full(2, 0.05), unit_steps=cells, whole_cells=True)
    np.testing.assert_allclose(P, [[0.8, 0.5], [0.5, 0.55]])
    at_top = est.basis_probes(np.array([0.9, 0.5]), np.eye(2)[:1], np.array([0.05]), unit_steps=cells,
                              whole_cells=True)
    np.testing.assert_allclose(at_top, [[0.6, 0.5]])
    tilted = np.array([[0.6, 0.8]])             # mostly the continuous axis: its integer part is dropped as before
    np.testing.assert_allclose(est.basis_probes(x, tilted, np.array([0.05]), unit_steps=cells, whole_cells=True),
                               [[0.5, 0.54]])

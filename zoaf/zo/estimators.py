"""Zeroth-order gradient estimators: pure functions, no state, no I/O.

Each estimator comes as two halves so that all of a step's simulations leave as one batch: ``*_probes``
returns the points to simulate, ``*_estimate`` turns their values into a gradient estimate. Probes live in
the unit box; a probe clipped at a bound enters the estimate with its *actual* displacement (the nominal
one would bias it), and a failed probe (``+inf``) is dropped rather than poisoning the estimate.

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x = np.full(3, 0.5); f = lambda p: p @ np.array([1.0, -2.0, 3.0])
    >>> P = coordinate_probes(x, 1e-3, np.arange(3))
    >>> g, ok = coordinate_estimate(f(x), f(P), x, P, np.arange(3))
    >>> np.round(g, 6).tolist()
    [1.0, -2.0, 3.0]
"""
from __future__ import annotations

import numpy as np

__all__ = ["random_directions", "random_probes", "random_estimate", "coordinate_probes", "coordinate_estimate",
           "directional_update", "regression_estimate", "min_step_displacement", "trial_move", "frozen_mask",
           "adapted_basis", "basis_probes", "axis_set", "neighbourhood", "regression_estimates", "least_change_models"]


def random_directions(rng: np.random.Generator, q: int, dim: int, kind: str = "gaussian",
                      active: np.ndarray | None = None) -> np.ndarray:
    """``q`` random directions, shape (q, dim), with E[u u^T] = I on the active coordinates.

    ``kind``: ``gaussian`` (N(0, I)), ``rademacher`` (+-1) or ``orthogonal`` (Gaussian directions
    orthonormalised, then scaled to norm sqrt(d_active): uniform on that sphere, mutually orthogonal when
    q <= d_active). Inactive coordinates (``active[i]`` False) get 0.
    """
    mask = np.ones(dim, bool) if active is None else np.asarray(active, bool)
    k = int(mask.sum())
    u = np.zeros((q, dim))
    if k == 0 or q == 0:
        return u
    if kind == "gaussian":
        u[:, mask] = rng.standard_normal((q, k))
    elif kind == "rademacher":
        u[:, mask] = rng.choice((-1.0, 1.0), size=(q, k))
    elif kind == "orthogonal":
        blocks, left = [], q
        while left > 0:       # more directions than dimensions: stack independent orthonormal blocks
            m = min(left, k)
            a = rng.standard_normal((k, m))
            qm, r = np.linalg.qr(a)
            qm = qm * np.sign(np.diag(r))   # makes the orthonormal frame Haar-distributed
            blocks.append(qm.T * np.sqrt(k))
            left -= m
        u[:, mask] = np.vstack(blocks)
    else:
        raise ValueError(f"unknown direction kind {kind!r}; choose gaussian, rademacher or orthogonal")
    return u


def min_step_displacement(delta: np.ndarray, unit_steps: np.ndarray | None) -> np.ndarray:
    """Integer coordinates: a component of ``delta`` under half a unit step is dropped, a larger one is raised
    to at least the unit step.

    A move under the unit step rounds back to the same simulated value (a wasted difference); raising every
    tiny component instead would make each random probe jump all integers at once, drowning the continuous
    coordinates' differences when the smoothing radius is small. Dropped integers are probed by the
    coordinate phase, by a full step while its step along them is at least half of one (``basis_probes``;
    always with ``whole_cells``).
    """
    if unit_steps is None or not np.any(unit_steps > 0):
        return delta
    s = np.asarray(unit_steps, float)
    a = np.abs(delta)
    out = np.where((s > 0) & (a < 0.5 * s), 0.0, delta)
    return np.where((s > 0) & (a >= 0.5 * s) & (a < s), np.sign(delta) * s, out)


def trial_move(p: np.ndarray, length: float, unit_steps: np.ndarray) -> np.ndarray:
    """Displacement ``length`` along unit direction ``p``. Integer components that would move under half a
    step are dropped and the rest renormalised, so a rounded-away integer does not eat the step length."""
    s = unit_steps
    if not np.any(s > 0):
        return length * p
    drop = (s > 0) & (np.abs(length * p) < 0.5 * s)
    if drop.any() and not drop.all() and np.any(p[~drop] != 0):
        p = np.where(drop, 0.0, p)
        p = p / np.linalg.norm(p)
    return min_step_displacement(length * p, s)


def random_probes(x: np.ndarray, directions: np.ndarray, h: float, *, central: bool = False,
                  unit_steps: np.ndarray | None = None) -> np.ndarray:
    """Points x + h u_i (and x - h u_i when ``central``: rows q..2q-1), clipped to the box."""
    delta = min_step_displacement(h * np.asarray(directions, float), unit_steps)
    pts = x + delta
    if central:
        pts = np.vstack([pts, x - delta])
    return np.clip(pts, 0.0, 1.0)


def random_estimate(fx: float, f_probes: np.ndarray, x: np.ndarray, probes: np.ndarray, h: float, *,
                    central: bool = False) -> np.ndarray:
    """Random-direction estimate (1/q) sum_i df_i s_i / h^2 from the actual displacements s_i.

    Forward: s_i = p_i - x, df_i = f(p_i) - f(x). Central (probes stacked as from ``random_probes``):
    s_i = (p+_i - p-_i) / 2, df_i = (f(p+_i) - f(p-_i)) / 2. Unclipped, s_i = h u_i and this is the textbook
    estimate, unbiased for a linear function when E[u u^T] = I. Pairs with a failed value are dropped and
    the mean is over the surviving ones; no survivor gives a zero vector.
    """
    f_probes = np.asarray(f_probes, float)
    probes = np.atleast_2d(probes)
    if central:
        q = len(probes) // 2
        s = (probes[:q] - probes[q:]) / 2.0
        df = (f_probes[:q] - f_probes[q:]) / 2.0
    else:
        s = probes - x
        df = f_probes - fx
    ok = np.isfinite(df)
    if not np.isfinite(fx) and not central or not ok.any():
        return np.zeros(len(x))
    return (df[ok] @ s[ok]) / (ok.sum() * h * h)


def coordinate_probes(x: np.ndarray, h: float | np.ndarray, coords: np.ndarray, *, central: bool = False,
                      signs: np.ndarray | None = None, unit_steps: np.ndarray | None = None) -> np.ndarray:
    """One probe per coordinate in ``coords`` (forward), or two (central: +h rows, then -h rows).

    Forward probes are ``basis_probes`` along the unit axes: they move by ``signs[j] * h`` (default +h) but
    flip to the side with room when the probe would be clipped to less than half its length (a coordinate at
    or near a bound). Integer coordinates move by at least their unit step.
    """
    coords = np.asarray(coords, int)
    n = len(coords)
    hs = np.broadcast_to(np.asarray(h, float), (len(x),))[coords]
    if unit_steps is not None:
        hs = np.maximum(hs, np.asarray(unit_steps, float)[coords])
    if not central:
        return basis_probes(x, np.eye(len(x))[coords], hs, signs=signs, unit_steps=unit_steps)
    plus = np.tile(x, (n, 1))
    minus = np.tile(x, (n, 1))
    plus[np.arange(n), coords] = x[coords] + hs
    minus[np.arange(n), coords] = x[coords] - hs
    return np.clip(np.vstack([plus, minus]), 0.0, 1.0)


def basis_probes(x: np.ndarray, directions: np.ndarray, steps: np.ndarray, *, signs: np.ndarray | None = None,
                 unit_steps: np.ndarray | None = None, whole_cells: bool = False) -> np.ndarray:
    """Forward probes x + signs[j] * steps[j] * directions[j] (unit rows of an orthonormal basis), clipped.

    A probe that the box would cut to less than half its length flips to the other side when that side has
    more room, so a direction pointing out of a bound still measures something. ``whole_cells``: a direction
    that mostly follows an integer axis moves that integer by at least its unit step, however short its step
    (else, once the steps are shorter than half a cell, its probe rounds back onto ``x``: the integer is never
    probed again).
    """
    directions = np.atleast_2d(np.asarray(directions, float))
    n = len(directions)
    sg = np.ones(n) if signs is None else np.where(np.asarray(signs, float) < 0, -1.0, 1.0)
    delta = (sg * np.asarray(steps, float))[:, None] * directions
    if whole_cells and unit_steps is not None:
        cell = np.asarray(unit_steps, float)
        own = np.argmax(np.abs(directions), axis=1)          # the axis each direction mostly follows
        rows = np.flatnonzero(cell[own] > 0)
        k = own[rows]
        delta[rows, k] = np.sign(delta[rows, k]) * np.maximum(np.abs(delta[rows, k]), cell[k])
    room = _room(x, delta)                          # fraction of each probe that fits in the box
    back = _room(x, -delta)
    flip = (room < 0.5) & (back > room)
    delta[flip] *= -1.0
    return np.clip(x + min_step_displacement(delta, unit_steps), 0.0, 1.0)


def axis_set(x: np.ndarray, h: float, unit_steps: np.ndarray | None = None) -> np.ndarray:
    """COBYQA's initial interpolation set less its centre: x +- h along each axis (integers by whole cells), a
    probe the box cuts short turned to the other side (``basis_probes``); a point twice over (both sides of a
    short axis turned alike) is kept once, as it would be simulated once."""
    d = len(x)
    P = basis_probes(x, np.vstack([np.eye(d), np.eye(d)]), np.full(2 * d, h), signs=np.repeat([1.0, -1.0], d),
                     unit_steps=unit_steps, whole_cells=True)
    _, first = np.unique(P, axis=0, return_index=True)
    keep = np.sort(first)
    return P[keep[np.any(P[keep] != x, axis=1)]]


def _room(x: np.ndarray, delta: np.ndarray) -> np.ndarray:
    """Largest t in [0, 1] per row with x + t * delta inside the unit box."""
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(delta > 0, (1.0 - x) / delta, np.where(delta < 0, -x / delta, np.inf))
    return np.clip(np.min(t, axis=1), 0.0, 1.0)


def coordinate_estimate(fx: float, f_probes: np.ndarray, x: np.ndarray, probes: np.ndarray,
                        coords: np.ndarray, *, central: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Partial derivatives from coordinate probes, divided by the actual (clipped) displacement.

    Returns ``(g, ok)``: ``g`` has shape (d,), zero where not estimated; ``ok[i]`` is True for coordinates
    with a usable estimate (probe(s) finite and a nonzero displacement).
    """
    coords = np.asarray(coords, int)
    n = len(coords)
    f_probes = np.asarray(f_probes, float)
    probes = np.atleast_2d(probes)
    if central:
        step = probes[np.arange(n), coords] - probes[n + np.arange(n), coords]
        df = f_probes[:n] - f_probes[n:]
    else:
        step = probes[np.arange(n), coords] - x[coords]
        df = f_probes - fx
    good = np.isfinite(df) & (step != 0)
    g = np.zeros(len(x))
    ok = np.zeros(len(x), bool)
    g[coords[good]] = df[good] / step[good]
    ok[coords[good]] = True
    return g, ok


def directional_update(g: np.ndarray, fx: float, f_probes: np.ndarray, x: np.ndarray, probes: np.ndarray
                       ) -> np.ndarray:
    """The estimate ``g`` with its component along each probe's actual displacement replaced by the measured
    directional derivative (f(p) - f(x)) / |p - x|: the coordinate-wise estimate in any orthonormal basis
    (along the axes it equals ``coordinate_estimate``). Failed or zero-length probes leave ``g`` unchanged."""
    g = np.array(g, float)
    for p, fp in zip(np.atleast_2d(probes), np.asarray(f_probes, float)):
        s = p - x
        n = float(np.linalg.norm(s))
        if n > 0 and np.isfinite(fp - fx):
            u = s / n
            g += ((fp - fx) / n - g @ u) * u
    return g


def adapted_basis(moves: np.ndarray, active: np.ndarray, prior: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """An orthonormal basis of the active subspace adapted to recent successful moves (Rosenbrock's rotating
    coordinates, ACiD's covariance): the eigenvectors of ``(1 - prior) * C + prior * I``, where ``C`` is the
    moves' second moment normalised to mean eigenvalue 1. Returns ``(B, scale)``: rows of ``B`` are the
    directions, largest eigenvalue first; ``scale`` = sqrt(eigenvalue), the relative step along each.

    On a ridge the accepted moves line up with it, so the first direction follows the ridge and gets the
    longest step, while steps across it stay short: what CMA-ES's covariance learns, from moves already made.
    No moves: the active unit axes, in order.
    """
    idx = np.flatnonzero(active)
    k, d = len(idx), len(active)
    M = np.asarray(moves, float).reshape(-1, d)[:, idx]
    C = M.T @ M
    tr = float(np.trace(C))
    C = (1.0 - prior) * (k / tr) * C + prior * np.eye(k) if tr > 0 else np.eye(k)
    lam, V = np.linalg.eigh(C)
    order = np.lexsort((np.arange(k), -np.round(lam, 12)))   # largest first; ties keep axis order
    B = np.zeros((k, d))
    B[:, idx] = V[:, order].T
    return B, np.sqrt(np.maximum(lam[order], 0.0))


#: The regression estimate uses memory points within this many step lengths (or probe radii) of the iterate:
#: the linear model is trusted over the region the next trial steps will cover (up to ``grow * alpha``).
NEIGHBOURHOOD = 3.0


def neighbourhood(X: np.ndarray, x: np.ndarray, length: float, h: float, memory: int, min_points: int = 0,
                  weighting: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
    """Indices of the memory points ``X`` a regression at ``x`` uses (the last ``memory`` within
    ``NEIGHBOURHOOD * length``) and their weights (None unless ``weighting``: 1 / (distance^2 + h^2)). With
    ``min_points``, the nearest points make up the count when the radius holds fewer: coordinate probes keep their
    own step lengths, often beyond a small step's radius, and a fit on fewer points than unknowns returns a
    gradient cut to their span, which a model step would read as stationarity."""
    dist = np.linalg.norm(X - x, axis=1)
    near = np.flatnonzero(dist <= NEIGHBOURHOOD * length)[-memory:]
    if len(near) < min_points:
        near = np.sort(np.argsort(dist, kind="stable")[:min_points])
    D2 = np.sum((X[near] - x) ** 2, axis=1)
    return near, (1.0 / (D2 + h * h) if weighting else None)


def regression_estimate(x: np.ndarray, fx: float, X: np.ndarray, F: np.ndarray,
                        weights: np.ndarray | None = None, curvature: bool = False
                        ) -> np.ndarray | tuple[np.ndarray, float]:
    """Least-squares gradient at ``x`` from evaluated points near it: min sum w_i (F_i - fx - g.(X_i - x))^2.

    Reuses every recent probe, trial step and former iterate. With fewer points than dimensions it returns
    the minimum-norm solution: for q orthogonal forward probes, the gradient projected on their span (the
    classic estimate, with its exact scale). Non-finite values and points equal to ``x`` are ignored.
    """
    X = np.atleast_2d(X)
    F = np.asarray(F, float)
    D = X - x
    df = F - fx
    ok = np.isfinite(df) & np.any(D != 0, axis=1)
    if not np.isfinite(fx) or not ok.any():
        return (np.zeros(len(x)), 0.0) if curvature else np.zeros(len(x))
    D, df = D[ok], df[ok]
    A = np.hstack([D, 0.5 * np.sum(D * D, axis=1, keepdims=True)]) if curvature else D
    if weights is not None:
        w = np.sqrt(np.asarray(weights, float)[ok])
        A, df = A * w[:, None], df * w
    sol, *_ = np.linalg.lstsq(A, df, rcond=1e-10)
    return (sol[:-1], float(sol[-1])) if curvature else sol


def regression_estimates(x: np.ndarray, y0: np.ndarray, X: np.ndarray, Y: np.ndarray,
                         weights: np.ndarray | None = None, curvature: bool = False
                         ) -> tuple[np.ndarray, np.ndarray]:
    """``regression_estimate`` for several measures at once (objective and constraints): one least-squares
    solve with a right-hand side per column of ``Y`` (n, r), so every probe estimates every gradient at no
    extra simulation. Returns ``(G, curv)``: G (r, d) gradients at ``x``, curv (r,) isotropic curvatures (zeros
    unless ``curvature``).

    Rows where a column or ``y0`` is not finite are dropped for that column: columns sharing a pattern of
    finite rows share one solve (the usual case: one pattern, a failed simulation fails every measure).
    """
    X = np.atleast_2d(X)
    Y = np.asarray(Y, float).reshape(len(X), -1)
    y0 = np.asarray(y0, float).reshape(-1)
    D = X - x
    moved = np.any(D != 0, axis=1)
    A = np.hstack([D, 0.5 * np.sum(D * D, axis=1, keepdims=True)]) if curvature else D
    w = np.sqrt(np.asarray(weights, float)) if weights is not None else np.ones(len(X))
    with np.errstate(invalid="ignore"):              # inf - inf of a failed row: dropped just below
        dY = (Y - y0) * w[:, None]
    A = A * w[:, None]
    ok = np.isfinite(dY) & moved[:, None]
    G, curv = np.zeros((Y.shape[1], len(x))), np.zeros(Y.shape[1])
    same = bool(np.all(ok == ok[:, :1]))                 # the usual case: one pattern, no np.unique needed
    patterns, which = (ok[:, :1].T, np.zeros(Y.shape[1], int)) if same else np.unique(ok.T, axis=0, return_inverse=True)
    for p, rows in enumerate(patterns):
        cols = np.flatnonzero(which.reshape(-1) == p)
        if not rows.any():
            continue
        sol, *_ = np.linalg.lstsq(A[rows], dY[np.ix_(rows, cols)], rcond=1e-10)
        G[cols] = sol[: len(x)].T
        if curvature:
            curv[cols] = sol[-1]
    return G, curv


def axis_curvatures(x: np.ndarray, y0: np.ndarray, X: np.ndarray, Y: np.ndarray, G: np.ndarray,
                    isotropic: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each measure's curvature along its own gradient and across it: a least-squares fit per column of ``Y``
    of what its first-pass gradient ``G`` (r, d) leaves, y - y0 - G.D, on the two features (u.D)^2/2 and
    (|D|^2 - (u.D)^2)/2, u = G/|G|. One isotropic scalar makes a constraint that bends steeply towards its
    boundary (a power bound) equally steep along it, and caps the steps that follow the boundary. Fed the
    start's whole memory: on the neighbourhood's d + 2 points the residual of the d + 1 unknown first pass has
    one degree of freedom, and the split returns the isotropic value both ways. Returns (U (r, d), along (r,),
    across (r,)); a column with fewer than 3 finite rows or a zero gradient keeps its ``isotropic`` curvature
    both ways (U = 0).
    """
    X = np.atleast_2d(X)
    Y = np.asarray(Y, float).reshape(len(X), -1)
    y0 = np.asarray(y0, float).reshape(-1)
    D = X - x
    sq = np.sum(D * D, axis=1)
    U, along, across = np.zeros_like(G), np.array(isotropic, float), np.array(isotropic, float)
    for i, g in enumerate(G):
        norm = float(np.linalg.norm(g))
        rows = np.isfinite(Y[:, i]) & np.any(D != 0, axis=1) & np.isfinite(y0[i])
        if norm == 0 or not np.isfinite(norm) or rows.sum() < 3:
            continue
        u = g / norm
        t2 = (D[rows] @ u) ** 2
        A = np.c_[0.5 * t2, 0.5 * (sq[rows] - t2)]
        sol, *_ = np.linalg.lstsq(A, Y[rows, i] - y0[i] - D[rows] @ g, rcond=1e-10)
        U[i], along[i], across[i] = u, sol[-2], sol[-1]
    return U, along, across


def least_change_models(x: np.ndarray, y0: np.ndarray, X: np.ndarray, Y: np.ndarray, H: np.ndarray
                        ) -> tuple[np.ndarray, np.ndarray]:
    """Quadratic models y0 + g.D + D^T H' D / 2 (D = X - x) of every column of ``Y`` that interpolate the points,
    with the Hessian changed least from ``H`` (r, d, d) in the Frobenius norm: Powell's update (NEWUOA, COBYQA).
    The change is sum_j lam_j D_j D_j^T, with (lam, g) from the KKT system [[A, D], [D^T, 0]] (A_ij =
    (D_i.D_j)^2 / 2), so curvature learnt at earlier iterates is kept where the new points say nothing about it,
    and a few points a step refine it along the directions they span. Distances are scaled to the farthest
    point for conditioning; the system is solved by least squares (fewer points than d + 1, or collinear ones,
    leave it singular: the minimum-norm solution). Returns (G (r, d), H' (r, d, d))."""
    X = np.atleast_2d(X)
    Y = np.asarray(Y, float).reshape(len(X), -1)
    y0 = np.asarray(y0, float).reshape(-1)
    D = X - x
    d = len(x)
    G, Hn = np.zeros((Y.shape[1], d)), np.array(H, float, copy=True)
    for i in range(Y.shape[1]):
        rows = np.isfinite(Y[:, i]) & np.any(D != 0, axis=1) & np.isfinite(y0[i])
        if not rows.any():
            continue
        Di = D[rows]
        sigma = float(np.max(np.linalg.norm(Di, axis=1)))
        S = Di / sigma
        n = len(S)
        W = np.zeros((n + d, n + d))
        W[:n, :n], W[:n, n:], W[n:, :n] = 0.5 * (S @ S.T) ** 2, S, S.T
        r = Y[rows, i] - y0[i] - 0.5 * np.einsum("nj,jk,nk->n", Di, H[i], Di)
        sol, *_ = np.linalg.lstsq(W, np.r_[r, np.zeros(d)], rcond=1e-12)
        G[i] = sol[n:] / sigma
        Hn[i] = H[i] + (S.T * sol[:n]) @ S / sigma ** 2
    return G, Hn


def ranks(fx: float, F: np.ndarray) -> tuple[float, np.ndarray]:
    """Values replaced by their normalised ranks in [0, 1] (ties share the mean rank): the iterate's and the
    neighbours'. Monotone, so descent directions keep their sense; scale-free, so a cliff does not dominate."""
    v = np.concatenate([[fx], np.asarray(F, float)])
    _, inverse, counts = np.unique(v, return_inverse=True, return_counts=True)   # numpy: scipy's rankdata
    mean_rank = np.cumsum(counts) - (counts + 1) / 2.0                          # costs ~1 ms of dispatch
    r = mean_rank[inverse] / max(len(v) - 1, 1)
    return float(r[0]), r[1:]


#: A value this many median absolute deviations from the neighbourhood's median is an outlier (a cliff).
OUTLIER_SPREAD = 20.0


def has_outliers(fx: float, F: np.ndarray, spread: float = OUTLIER_SPREAD) -> bool:
    """Whether the iterate's and neighbours' values hold an outlier: a jump no smooth model should fit."""
    v = np.concatenate([[fx], np.asarray(F, float)])
    med = np.median(v)
    mad = np.median(np.abs(v - med))
    return bool(np.max(np.abs(v - med)) > spread * mad) if mad > 0 else bool(np.any(v != med))


def frozen_mask(x: np.ndarray, g: np.ndarray, tol: float = 1e-12) -> np.ndarray:
    """Coordinates pinned at a bound whose descent direction (-g) points out of the box: nothing to gain."""
    return ((x <= tol) & (g > 0)) | ((x >= 1.0 - tol) & (g < 0))

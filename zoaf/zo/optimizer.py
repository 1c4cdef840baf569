"""ZOAF: hybrid zeroth-order optimization with one-shot Sobol multi-start and a sliding-window monitor.

A state machine over batches (every batch is one ``ask``; every simulation of a step leaves in it):

1. ``multistart``: ``x0`` (else the box centre) plus one scrambled Sobol batch of ``n_init`` points. The
   centre and the best distinct Sobol point become starts; the others wait as restart candidates.
2. Per start, steps of one batch each: two trial steps along the current gradient estimate (lengths
   ``alpha`` and ``grow * alpha``: a one-batch line search) plus ``q`` probes around the iterate. In the
   ``random`` phase the probes go along random orthogonal directions at the smoothing radius; in the
   ``coordinate`` phase they are a block of a sweep over the directions of a basis adapted to the start's
   accepted moves (the axes at first; a ridge the moves follow becomes the first direction), each direction
   with its own step length and side, adapted like a compass search (success: longer, same side; failure:
   shorter, other side). Whatever point of the batch beats the iterate becomes the iterate (greedy
   acceptance). The gradient is then re-estimated at the iterate by least squares over every recent
   evaluated point near it (probes, trials, former iterates), so estimates accumulate across steps.
3. The monitor watches the start's best-so-far values: the first stall of the random phase (or 30% of the
   start's budget) switches to the coordinate phase; there, stalls shrink every step and repeated stalls
   early-stop the start. With successive halving each start first gets one rung and only the best goes on.
4. A start that ended early hands its budget to a restart at the next Sobol candidate (then the best point).

Every point is projected onto the box; coordinates pinned at a bound whose descent direction points outward
are frozen. The result is the best *evaluated* point (the base tracks it). Only the seeded generator is
random, so equal seeds give bit-identical asks, whatever ``workers`` timing does.

Example:
    >>> import numpy as np, zoaf
    >>> res = zoaf.minimize(lambda x: float(np.sum((x - 0.3) ** 2)), [(-1, 1)] * 4, budget=200, seed=1)
    >>> bool(res.fun < 1e-4)
    True
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..optim import Optimizer, StopReason
from . import estimators as est
from .config import ZOAFConfig
from .monitor import Action, WindowMonitor, decide
from .multistart import distinct_ranking, rung_budget, sobol_batch
from .schedule import next_alpha, smoothing_radius, trial_lengths

#: The regression estimate uses memory points within this many step lengths (or probe radii) of the iterate:
#: the linear model is trusted over the region the next trial steps will cover (up to ``grow * alpha``).
NEIGHBOURHOOD = 3.0


@dataclass
class _Start:
    """One local search: iterate, step length, probe memory, monitor and budget bookkeeping."""

    x: np.ndarray
    fx: float
    alpha: float
    mode: str
    monitor: WindowMonitor
    horizon: int                     # simulations this start may expect in all (for the switch timing)
    allot: int = 0                   # budget cap of the current stint (absolute: compared with ``used``)
    used: int = 0
    stalls: int = 0
    v: np.ndarray | None = None      # unit direction of the last accepted move (momentum)
    curv: float = 0.0                # isotropic curvature fitted with the gradient (regression estimate)
    g: np.ndarray | None = None
    ended: str | None = None         # "converged" | "stopped"
    X: np.ndarray = field(default_factory=lambda: np.empty((0, 0)))
    F: np.ndarray = field(default_factory=lambda: np.empty(0))
    moves: list[np.ndarray] = field(default_factory=list)   # recent accepted displacements (basis adaptation)
    basis: np.ndarray | None = None  # coordinate phase: directions (rows) of the current sweep
    steps: np.ndarray | None = None  # coordinate phase: step length along each direction
    signs: np.ndarray | None = None  # coordinate phase: side to probe next along each direction
    queue: list[int] = field(default_factory=list)   # directions left in the current sweep


class ZOAF(Optimizer):
    """Hybrid zeroth-order optimizer (see the module docstring); hyper-parameters: ``ZOAFConfig``."""

    name = "zoaf"

    def __init__(self, dim: int, budget: int, seed: int | None = None, *, unit_steps: np.ndarray | None = None,
                 workers: int = 1, x0: np.ndarray | None = None, **hyperparameters: Any) -> None:
        super().__init__(dim, budget, seed, unit_steps=unit_steps, workers=workers, x0=x0)
        self.config = ZOAFConfig.from_options(hyperparameters)
        self._n_init = self.config.resolved_n_init(dim, budget)
        self._memory = self.config.resolved_memory(dim)
        self._pending: dict[str, Any] | None = None
        self._init_X: np.ndarray | None = None
        self._init_F: np.ndarray | None = None
        self._starts: list[_Start] = []
        self._plan: list[tuple[int | str, str]] = []   # stints to run: (start index | "winner", "rung"|"share")
        self._active: _Start | None = None
        self._candidates: list[int] = []
        self._restarts = 0

    # -- protocol ----------------------------------------------------------------------------------------
    def _ask(self) -> np.ndarray:
        if self._init_X is None or self._active is None:
            return self._ask_init()
        return self._ask_step(self._active)

    def _tell(self, x: np.ndarray, f: np.ndarray, c: np.ndarray | None = None,
              objective: np.ndarray | None = None) -> None:
        kind = self._pending["kind"] if self._pending else None
        if kind == "init":
            self._tell_init(x, f)
        elif kind == "step" and self._active is not None:
            self._tell_step(self._active, x, f)
        self._pending = None
        self._advance()

    # -- multi-start ---------------------------------------------------------------------------------------
    def _ask_init(self) -> np.ndarray:
        self._phase = "multistart"
        if self._init_X is None:
            # The first point is the user's x0 (spec ``init``, ``minimize(x0=)``) or else the box centre, the
            # start ``centre_start`` keeps whatever its FoM (cold CMA-ES starts there too).
            first = [self.x0] if self.x0 is not None else [np.full(self.dim, 0.5)] \
                if self._n_init == 0 or self.config.centre_start else []
            pts = np.vstack(first + [sobol_batch(self._n_init, self.dim, self.rng)])
        else:   # every point so far failed: keep sampling the box until something simulates
            pts = sobol_batch(max(self._n_init, self.workers, 1), self.dim, self.rng)
        self._pending = {"kind": "init"}
        return pts

    def _tell_init(self, x: np.ndarray, f: np.ndarray) -> None:
        if self._init_X is None:
            self._init_X, self._init_F = x.copy(), f.copy()
        else:
            self._init_X, self._init_F = np.vstack([self._init_X, x]), np.concatenate([self._init_F, f])
        if not np.isfinite(self._init_F).any():
            return
        cfg = self.config
        min_distance = cfg.min_start_distance * np.sqrt(self.dim)
        ranking = distinct_ranking(self._init_X, self._init_F, min_distance)
        if cfg.centre_start and np.isfinite(self._init_F[0]):   # x0 / the centre starts whatever its FoM
            far = np.linalg.norm(self._init_X - self._init_X[0], axis=1) >= min_distance
            ranking = [0] + [i for i in ranking if far[i]]
        k = min(cfg.n_starts, len(ranking))
        self._candidates = ranking[k:]
        post = self.remaining
        if post <= 0:
            return
        stints = rung_budget(post, k, cfg.rung_fraction, cfg.halving)
        halving = cfg.halving and k > 1
        for j, i in enumerate(ranking[:k]):
            horizon = post - (k - 1) * stints[0] if halving else stints[j]
            self._starts.append(self._new_start(self._init_X[i], float(self._init_F[i]), horizon))
        if halving:
            self._plan = [(j, "rung") for j in range(k)] + [("winner", "rest")]
            for st, b in zip(self._starts, stints):
                st.allot = b
        else:
            self._plan = [(j, "share") for j in range(k)]

    def _new_start(self, x: np.ndarray, fx: float, horizon: int, alpha: float | None = None) -> _Start:
        cfg = self.config
        mode = "coordinate" if cfg.mode == "coordinate" else "random"
        return _Start(x=x.copy(), fx=fx, alpha=cfg.alpha0 if alpha is None else alpha, mode=mode,
                      monitor=WindowMonitor(cfg.resolved_window(self.dim), cfg.rel_tol), horizon=max(1, horizon),
                      X=np.empty((0, self.dim)), F=np.empty(0))

    def _advance(self) -> None:
        """Make sure an unfinished start with budget is active, or end the run."""
        st = self._active
        if self.remaining <= 0 or not self._starts:
            return                        # nothing simulated successfully yet: ``_ask`` samples the box again
        if st is not None and st.ended is None and st.used < st.allot:
            return
        while self._plan:
            who, how = self._plan.pop(0)
            if who == "winner":
                live = [s for s in self._starts if np.isfinite(s.fx)]
                if not live:
                    break
                st = min(live, key=lambda s: s.fx)
                if st.ended is not None:
                    break
                st.allot = st.used + self.remaining
            else:
                st = self._starts[who]
                if how == "share":
                    stints_left = 1 + sum(1 for w, _ in self._plan if w != "winner")
                    st.allot = st.used + self.remaining // stints_left
                    st.horizon = st.allot
            if st.ended is None and st.used < st.allot:
                self._activate(st)
                return
        self._restart()

    def _activate(self, st: _Start) -> None:
        self._active = st
        self._phase = st.mode

    def _restart(self) -> None:
        """The planned starts are over with budget left: the next Sobol candidate, else polish the best."""
        cfg = self.config
        if self._restarts >= cfg.max_restarts or self.best_x is None:
            self._active = None
            self._stop = StopReason.CONVERGED if any(s.ended == "converged" for s in self._starts) \
                else StopReason.EARLY_STOPPED
            return
        self._restarts += 1
        if self._candidates and self.remaining >= 3 * self.dim:
            i = self._candidates.pop(0)
            st = self._new_start(self._init_X[i], float(self._init_F[i]), self.remaining)
        else:
            st = self._new_start(self.best_x, self.best_f, self.remaining, alpha=cfg.alpha0 / 4)
        st.allot = self.remaining
        self._starts.append(st)
        self._activate(st)

    # -- one step ------------------------------------------------------------------------------------------
    def _ask_step(self, st: _Start) -> np.ndarray:
        cfg, d = self.config, self.dim
        x = st.x
        active = np.ones(d, bool) if st.g is None else ~est.frozen_mask(x, st.g)
        if not active.any():
            active[:] = True              # a corner: re-probe everything (probes turn towards the interior)
        h = smoothing_radius(st.alpha, cfg.h_ratio, cfg.h_min, cfg.h_max)
        parts: list[np.ndarray] = []
        lengths = np.empty(0)
        if st.g is not None and np.any(st.g[active] != 0):
            p = np.where(active, -st.g, 0.0)
            p /= np.linalg.norm(p)
            if cfg.momentum > 0 and st.v is not None:
                v = np.where(active, st.v, 0.0)
                p = p + cfg.momentum * v
                p = p / np.linalg.norm(p) if np.linalg.norm(p) > 0 else np.where(active, -st.g, 0.0)
            lengths = trial_lengths(st.alpha, cfg.grow)
            parts.append(np.clip(x + np.array([self._trial_move(p, L) for L in lengths]), 0.0, 1.0))
        q = max(cfg.q, self.workers - len(lengths))
        q = max(1, min(q, self.remaining - len(lengths))) if self.remaining > len(lengths) else q
        meta: dict[str, Any] = {"kind": "step", "n_trials": len(lengths), "lengths": lengths, "x": x.copy(),
                                "fx": st.fx, "h": h, "mode": st.mode}
        if st.mode == "random":
            k = int(active.sum())
            u = est.random_directions(self.rng, q, d, cfg.directions, active)
            meta["scale"] = h / np.sqrt(k)            # so that the probes sit at distance ~h
            probes = est.random_probes(x, u, meta["scale"], unit_steps=self.unit_steps)
        else:
            dirs = self._next_directions(st, active, q)
            probes = est.basis_probes(x, st.basis[dirs], st.steps[dirs], signs=st.signs[dirs],
                                      unit_steps=self.unit_steps)
            meta["dirs"] = dirs
        parts.append(probes)
        self._pending = meta
        self._phase = st.mode
        return np.vstack(parts)

    def _trial_move(self, p: np.ndarray, length: float) -> np.ndarray:
        """Displacement ``length`` along unit direction ``p``. Integer components that would move under half a
        step are dropped and the rest renormalised, so a rounded-away integer does not eat the step length."""
        s = self.unit_steps
        if not np.any(s > 0):
            return length * p
        drop = (s > 0) & (np.abs(length * p) < 0.5 * s)
        if drop.any() and not drop.all() and np.any(p[~drop] != 0):
            p = np.where(drop, 0.0, p)
            p = p / np.linalg.norm(p)
        return est.min_step_displacement(length * p, s)

    def _next_directions(self, st: _Start, active: np.ndarray, q: int) -> np.ndarray:
        """The next block of a sweep. Each sweep starts on a fresh basis adapted to the start's recent accepted
        moves (``est.adapted_basis``): steps along it keep the typical length they reached in the last sweep
        (the first sweep: ``h_max``, re-exploring every direction at scale after the random phase), scaled per
        direction, and probe first on the side the gradient estimate calls downhill."""
        if not st.queue or st.basis is None:
            cfg = self.config
            B, scale = est.adapted_basis(np.array(st.moves).reshape(-1, self.dim), active, cfg.basis_prior)
            base = float(np.exp(np.mean(np.log(st.steps)))) if st.steps is not None else cfg.h_max
            slope = B @ st.g if st.g is not None else np.zeros(len(B))
            st.basis, st.steps = B, np.clip(base * scale, cfg.h_min, cfg.step_max)
            st.signs = np.where(slope > 0, -1.0, 1.0)
            st.queue = list(range(len(B)))
        block, st.queue = st.queue[:q], st.queue[q:]
        return np.array(block, int)

    def _tell_step(self, st: _Start, X: np.ndarray, F: np.ndarray) -> None:
        cfg, meta = self.config, self._pending
        st.used += int(self.last_charged.sum())
        fx_old, nt = meta["fx"], meta["n_trials"]
        ok = np.isfinite(F)
        if ok.any():
            st.X = np.vstack([st.X, X[ok]])[-4 * self._memory:]
            st.F = np.concatenate([st.F, F[ok]])[-4 * self._memory:]
        if nt:
            improved = np.zeros(nt, bool)
            improved[: min(nt, len(F))] = F[:nt] < fx_old
            st.alpha = next_alpha(st.alpha, meta["lengths"], improved, cfg.grow, cfg.shrink)
        probes_ok = ok[nt:]
        if len(probes_ok) and not probes_ok.any():
            st.alpha *= cfg.shrink        # every probe failed: retry closer to the iterate
        if meta["mode"] == "coordinate":    # per direction: longer after a success, else try the other side
            better = F[nt:] < fx_old      # the base may have cut the batch to the budget
            dirs = meta["dirs"][: len(better)]
            st.steps[dirs] = np.clip(np.where(better, st.steps[dirs] * cfg.grow, st.steps[dirs] * cfg.shrink ** 0.5),
                                     cfg.h_min, cfg.step_max)
            st.signs[dirs] = np.where(better, st.signs[dirs], -st.signs[dirs])
        i = int(np.argmin(F))
        if F[i] < st.fx:                  # greedy acceptance: any point of the batch that beats the iterate
            move = X[i] - st.x
            if np.linalg.norm(move) > 0:
                st.v = move / np.linalg.norm(move)
                st.moves = [*st.moves, move][-self._memory:]
            st.x, st.fx = X[i].copy(), float(F[i])
        st.g = self._estimate(st, X[nt:], F[nt:], meta)
        st.monitor.push(st.fx, int(self.last_charged.sum()))
        if st.alpha < cfg.alpha_min and (st.steps is None or np.all(st.steps <= cfg.h_min)):
            st.ended = "converged"
            return
        k = int((~est.frozen_mask(st.x, st.g)).sum()) if st.g is not None else self.dim
        action = decide(st.monitor.stalled(), st.mode, hybrid=cfg.mode == "hybrid",
                        used_fraction=st.used / st.horizon, remaining=min(st.allot - st.used, self.remaining),
                        sweep_cost=max(1, k), stalls=st.stalls, switch_min_used=cfg.switch_min_used,
                        switch_force=cfg.switch_force, min_sweeps=cfg.min_sweeps, max_stalls=cfg.max_stalls,
                        monitor=cfg.monitor)
        if action is Action.SWITCH:
            st.mode, st.stalls, st.queue = "coordinate", 0, []
            st.monitor.reset()
            self._phase = "coordinate"
        elif action is Action.SHRINK:
            st.alpha *= cfg.shrink
            if st.steps is not None:
                st.steps = np.maximum(st.steps * cfg.shrink, cfg.h_min)
            st.stalls += 1
            st.monitor.reset()
        elif action is Action.STOP:
            st.ended = "stopped"

    def _estimate(self, st: _Start, P: np.ndarray, FP: np.ndarray, meta: dict[str, Any]) -> np.ndarray | None:
        """Gradient estimate at the (possibly new) iterate."""
        if self.config.estimator == "regression":
            h = smoothing_radius(st.alpha, self.config.h_ratio, self.config.h_min, self.config.h_max)
            radius = NEIGHBOURHOOD * max(st.alpha, h)
            dist = np.linalg.norm(st.X - st.x, axis=1)
            near = np.flatnonzero(dist <= radius)[-self._memory:]
            if len(near) == 0:
                return st.g
            D2 = np.sum((st.X[near] - st.x) ** 2, axis=1)
            w = 1.0 / (D2 + h * h) if self.config.weighting else None
            fx, F = st.fx, st.F[near]
            if self.config.values == "rank" or (self.config.values == "auto" and est.has_outliers(fx, F)):
                fx, F = est.ranks(fx, F)
            if self.config.curvature:
                g, st.curv = est.regression_estimate(st.x, fx, st.X[near], F, w, curvature=True)
                return g
            return est.regression_estimate(st.x, fx, st.X[near], F, w)
        # classic: this step's probes only, at the centre they were taken around
        if meta["mode"] == "random":
            g = est.random_estimate(meta["fx"], FP, meta["x"], P, meta["scale"])
            return g if np.any(g != 0) else st.g
        return est.directional_update(np.zeros(self.dim) if st.g is None else st.g, meta["fx"], FP, meta["x"], P)

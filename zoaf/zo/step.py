"""One step of a ZOAF start (:class:`StartSteps`, a mixin of :class:`zoaf.zo.optimizer.ZOAF`): the batch a step
asks (trial points along the descent direction or from the model problem, then random or compass probes; a
start's axis set; its COBYQA run's point) and what the step learns from it (the iterate moved under the acceptance
rule, the trust radius and sweep steps adapted, the gradient and models estimated again at the iterate, the
monitor's action). The optimizer module holds which start runs and when; this one what a start does with a batch.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from . import estimators as est
from .config import ZOAFConfig
from .coordinate import Sweep
from .local import LocalBatch, LocalSolver
from .monitor import Action, Phase, StartView, decide
from .schedule import next_alpha, ratio_alpha, smoothing_radius, trial_lengths
from .state import AxisBatch, Ending, Pending, Start, StepBatch

__all__ = ["StartSteps"]


class StartSteps:
    """The step rules of :class:`zoaf.zo.optimizer.ZOAF` (whose attributes, and its base's, these are)."""

    config: ZOAFConfig
    dim: int
    rng: np.random.Generator
    workers: int
    remaining: int
    last_charged: np.ndarray
    steps_at: Callable[[np.ndarray], np.ndarray]
    _memory: int
    _pending: Pending | None
    _phase: str

    def _ask_step(self, st: Start) -> np.ndarray:
        if st.local is not None:
            self._pending, self._phase = LocalBatch(), LocalSolver.COBYQA.value
            return st.local.point[None, :]
        cfg, d = self.config, self.dim
        x = st.x
        if st.axes_due:
            self._pending, self._phase = AxisBatch(x.copy(), st.fx), st.phase.value
            return est.axis_set(x, smoothing_radius(st.alpha, cfg.h_ratio, cfg.h_min, cfg.h_max), self.steps_at(x))
        active = np.ones(d, bool) if st.g is None else ~est.frozen_mask(x, st.g)
        if not active.any():
            active[:] = True              # a corner: re-probe everything (probes turn towards the interior)
        h = smoothing_radius(st.alpha, cfg.h_ratio, cfg.h_min, cfg.h_max)
        trials, lengths = self._trials(st, active)
        q = max(cfg.q, self.workers - len(lengths))
        q = max(1, min(q, self.remaining - len(lengths))) if self.remaining > len(lengths) else q
        if st.phase is Phase.RANDOM:
            u = est.random_directions(self.rng, q, d, cfg.directions, active)
            scale = h / np.sqrt(int(active.sum()))      # so that the probes sit at distance ~h
            probes = est.random_probes(x, u, scale, unit_steps=self.steps_at(x))
            batch = StepBatch(x.copy(), st.fx, st.phase, lengths, scale=scale)
        else:
            dirs = self._next_directions(st, active, q)
            sw = st.sweep
            steps = sw.steps[dirs]
            if cfg.probe_cap > 0 and st.con is not None:
                steps = np.minimum(steps, cfg.probe_cap * max(st.alpha, h))
            probes = est.basis_probes(x, sw.basis[dirs], steps, signs=sw.signs[dirs],
                                      unit_steps=self.steps_at(x), whole_cells=cfg.integer_cells)
            batch = StepBatch(x.copy(), st.fx, st.phase, lengths, dirs=dirs)
        self._pending, self._phase = batch, st.phase.value
        if cfg.integer_repair and st.con is not None:
            return st.con.repaired(x, np.vstack([trials, probes]), self.steps_at(x), cfg.step_options())
        return np.vstack([trials, probes])

    def _trials(self, st: Start, active: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """A step's trial points and their step lengths: from the model problem when constraint-aware, else
        along the (momentum-bent) descent direction of the active coordinates; none before an estimate."""
        cfg, x = self.config, st.x
        if st.con is not None:            # within a radius no shorter than ``alpha_min`` (the coordinate phase
            # may go on while failed trials shrink alpha)
            return st.con.trials(x, max(st.alpha, cfg.alpha_min), cfg.grow, cfg.step_options(), self.steps_at(x))
        if st.g is None or not np.any(st.g[active] != 0):
            return np.empty((0, self.dim)), np.empty(0)
        p = np.where(active, -st.g, 0.0)
        p /= np.linalg.norm(p)
        if cfg.momentum > 0 and st.v is not None:
            v = np.where(active, st.v, 0.0)
            p = p + cfg.momentum * v
            p = p / np.linalg.norm(p) if np.linalg.norm(p) > 0 else np.where(active, -st.g, 0.0)
        lengths = trial_lengths(st.alpha, cfg.grow)
        moves = [est.trial_move(p, L, self.steps_at(x)) for L in lengths]
        return np.clip(x + np.array(moves), 0.0, 1.0), lengths

    def _next_directions(self, st: Start, active: np.ndarray, q: int) -> np.ndarray:
        """The next block of a sweep. Each sweep starts on a fresh basis adapted to the start's recent accepted
        moves (``est.adapted_basis``): steps along it keep the typical length they reached in the last sweep
        (the first sweep: ``h_max``, re-exploring every direction at scale after the random phase), scaled per
        direction, and probe first on the side the gradient estimate calls downhill."""
        if st.sweep is None or not st.sweep.queue:
            cfg = self.config
            B, scale = est.adapted_basis(np.array(st.moves).reshape(-1, self.dim), active, cfg.basis_prior)
            base = st.sweep.typical_step if st.sweep is not None else cfg.h_max
            slope = B @ st.g if st.g is not None else np.zeros(len(B))
            st.sweep = Sweep.new(B, scale, base, slope, cfg.h_min, cfg.step_max)
        return st.sweep.next_block(q)

    def _tell_step(self, st: Start, batch: StepBatch, X: np.ndarray, F: np.ndarray, Y: np.ndarray | None) -> None:
        cfg, nt = self.config, batch.n_trials
        st.used += int(self.last_charged.sum())
        self._remember(st, X, F, Y)
        accepted, choice = st.judge(F, Y)
        if nt:
            improved = np.zeros(nt, bool)
            improved[: min(nt, len(F))] = accepted[:nt]
            if cfg.ratio_radius and st.con is not None and len(F) >= nt:
                rho = st.con.ratios(X[:nt] - batch.x, Y[:nt])
                st.alpha = ratio_alpha(st.alpha, batch.lengths, rho, cfg.grow, cfg.shrink)
            else:
                st.alpha = next_alpha(st.alpha, batch.lengths, improved, cfg.grow, cfg.shrink)
        probes_ok = np.isfinite(F[nt:])
        if len(probes_ok) and not probes_ok.any():
            st.alpha *= cfg.shrink        # every probe failed: retry closer to the iterate
        if batch.phase is Phase.COORDINATE:
            better = accepted[nt:]        # the base may have cut the batch to the budget
            st.sweep.update(batch.dirs[: len(better)], better, cfg.grow, cfg.shrink, cfg.h_min, cfg.step_max)
        if choice is not None:
            st.move(X[choice], float(F[choice]), None if Y is None else Y[choice], self._memory)
        st.g = self._estimate(st, batch, X[nt:], F[nt:])
        st.monitor.push(st.score, int(self.last_charged.sum()))
        if st.alpha < cfg.alpha_min and (st.sweep is None or st.sweep.exhausted(cfg.h_min)):
            st.ended = Ending.CONVERGED
            return
        self._act(st)

    def _remember(self, st: Start, X: np.ndarray, F: np.ndarray, Y: np.ndarray | None) -> None:
        """Keep a batch's simulated points (and measures) in the start's memory, which the estimates read."""
        ok = np.isfinite(F)
        if ok.any():
            st.X = np.vstack([st.X, X[ok]])[-4 * self._memory:]
            st.F = np.concatenate([st.F, F[ok]])[-4 * self._memory:]
        if st.con is not None:
            st.con.remember(Y, F, 4 * self._memory)

    def _tell_local(self, st: Start, X: np.ndarray, F: np.ndarray, Y: np.ndarray | None) -> None:
        """The local run's point: answer it, keep the start's best point, let the monitor judge the start;
        ``local_handover``: a stall or the run's end hands the start to ZOAF's own steps."""
        charged = int(self.last_charged.sum())
        st.used += charged
        self._remember(st, X, F, Y)
        if F[0] < st.fx:
            st.x, st.fx = X[0].copy(), float(F[0])
            if st.con is not None:
                st.con.move(Y[0])
        st.local.tell(float(F[0]), None if Y is None else Y[0])
        st.monitor.push(st.score, min(charged, st.used - st.grace))   # the window opens after the initial set
        ended = st.local.point is None
        if not ended:
            self._act(st)
        if self.config.local_handover and (ended or st.stalls or st.ended is not None):
            self._hand_over(st)
        elif ended:
            st.ended = Ending.CONVERGED
        elif st.ended is not None:
            st.local.close()

    def _tell_axes(self, st: Start, batch: AxisBatch, X: np.ndarray, F: np.ndarray, Y: np.ndarray | None) -> None:
        """The start's axis set (``axis_start``): the iterate moves to its best point under the acceptance rule, the
        first models are fitted there from the whole set, the step length becomes the set's radius h (trials at
        ``alpha0`` left the basin the set found: the band-pass, traced). No monitor window holds the set."""
        st.axes_due = False
        st.used += int(self.last_charged.sum())
        self._remember(st, X, F, Y)
        _, choice = st.judge(F, Y)
        if choice is not None:
            st.move(X[choice], float(F[choice]), None if Y is None else Y[choice], self._memory)
        st.g = self._estimate(st, StepBatch(batch.x, batch.fx, Phase.COORDINATE, np.empty(0)), X, F)
        st.alpha = smoothing_radius(st.alpha, self.config.h_ratio, self.config.h_min, self.config.h_max)

    def _hand_over(self, st: Start) -> None:
        """ZOAF's own steps go on from the best point of the start's COBYQA run (``local_handover``)."""
        cfg = self.config
        st.local.close()
        st.local, st.ended, st.stalls, st.g, st.sweep = None, None, 0, None, None
        st.alpha = cfg.alpha0 / 4
        st.phase = Phase.COORDINATE if cfg.mode == Phase.COORDINATE.value else Phase.RANDOM
        st.monitor.reset()
        self._phase = st.phase.value

    def _act(self, st: Start) -> None:
        """The monitor's action at the end of a step: switch phase, shrink the steps or early-stop."""
        cfg = self.config
        k = int((~est.frozen_mask(st.x, st.g)).sum()) if st.g is not None else self.dim
        view = StartView(st.phase, used_fraction=st.used / st.horizon,
                         remaining=min(st.allot - st.used, self.remaining), sweep_cost=max(1, k), stalls=st.stalls)
        action = decide(st.monitor.stalled(), view, cfg)
        if action is Action.SWITCH:
            st.phase, st.stalls = Phase.COORDINATE, 0
            st.monitor.reset()
            self._phase = st.phase.value
        elif action is Action.SHRINK:
            st.alpha *= cfg.shrink
            if st.sweep is not None:
                st.sweep.shrink(cfg.shrink, cfg.h_min)
            st.stalls += 1
            st.monitor.reset()
        elif action is Action.STOP:
            st.ended = Ending.STOPPED

    def _neighbourhood(self, st: Start, min_points: int = 0) -> tuple[np.ndarray, np.ndarray | None, float]:
        """Memory points the regression uses at the iterate (``est.neighbourhood``) and the smoothing radius."""
        h = smoothing_radius(st.alpha, self.config.h_ratio, self.config.h_min, self.config.h_max)
        near, w = est.neighbourhood(st.X, st.x, max(st.alpha, h), h, self._memory, min_points, self.config.weighting)
        return near, w, h

    def _estimate(self, st: Start, batch: StepBatch, P: np.ndarray, FP: np.ndarray) -> np.ndarray | None:
        """Gradient estimate at the (possibly new) iterate from the batch's probes ``P`` (values ``FP``) and the
        memory; constraint-aware: every measure's model, and the descent direction the probes follow."""
        cfg = self.config
        if cfg.estimator == "regression" or st.con is not None:
            near, w, h = self._neighbourhood(st, 0 if st.con is None else self.dim + 2)
            if len(near) == 0:
                return st.g
            if st.con is not None:
                return st.con.refit(st.x, st.X[near], st.con.Y[near], w, cfg.curvature,
                                    cfg.near_active * max(st.alpha, h), cfg.penalty_factor,
                                    (st.X, st.con.Y) if cfg.anisotropic_curvature else None,
                                    cfg.least_change)
            fx, F = st.fx, st.F[near]
            if cfg.values == "rank" or (cfg.values == "auto" and est.has_outliers(fx, F)):
                fx, F = est.ranks(fx, F)
            if cfg.curvature:
                g, _ = est.regression_estimate(st.x, fx, st.X[near], F, w, curvature=True)
                return g
            return est.regression_estimate(st.x, fx, st.X[near], F, w)
        # classic: this step's probes only, at the centre they were taken around
        if batch.phase is Phase.RANDOM:
            g = est.random_estimate(batch.fx, FP, batch.x, P, batch.scale)
            return g if np.any(g != 0) else st.g
        return est.directional_update(np.zeros(self.dim) if st.g is None else st.g, batch.fx, FP, batch.x, P)

"""ZOAF: hybrid zeroth-order optimization with one-shot Sobol multi-start and a sliding-window monitor.

A state machine over batches (every batch is one ``ask``; every simulation of a step leaves in it):

1. ``multistart``: ``x0`` (else the box centre) plus one scrambled Sobol batch of ``n_init`` points. The
   centre and the best distinct Sobol point become starts; the others wait as restart candidates.
2. Per start, steps of one batch each: two trial steps along the current gradient estimate (lengths
   ``alpha`` and ``grow * alpha``) plus ``q`` probes around the iterate, along random orthogonal directions
   (``random`` phase) or a block of a compass-like sweep over an adapted basis (``coordinate`` phase). Any point
   of the batch that beats the iterate becomes the iterate; the gradient is re-estimated there by least squares
   over every recent evaluated point near it, so estimates accumulate across steps.
3. The monitor watches the start's best-so-far values: the first stall of the random phase (or 30% of the
   start's budget) switches to the coordinate phase; there, stalls shrink every step and repeated stalls
   early-stop the start. With successive halving each start first gets one rung and only the best goes on.
4. A start that ended early hands its budget to a restart at the next Sobol candidate (then the best point).
   With ``polish`` (``"first"`` by default) a start the monitor stopped while it held the best point is first
   restarted from it at a quarter of ``alpha0`` (once per improvement of the best; not in ``max_restarts``).

Constrained problems (``tell(c=..., objective=...)``): each start also keeps every point's measures, fits each
one's gradient and curvature, takes its trial points from a trust-region model problem (``model_step``) and moves
by a filter over (objective, violation) (``acceptance``); see ``constrained`` and docs/method.md.

Points are projected onto the box; coordinates pinned at a bound whose descent points outward are frozen. The
result is the best *evaluated* point. Only the seeded generator is random: equal seeds give bit-identical asks,
whatever ``workers`` timing does. The state between ``ask`` and ``tell`` is typed (``state``, ``coordinate.Sweep``,
``multistart.PlannedStint``); this module holds the rules of the starts (1, 4: which start runs, with what budget),
``step`` those of one step (2, 3).

Example:
    >>> import numpy as np, zoaf
    >>> res = zoaf.minimize(lambda x: float(np.sum((x - 0.3) ** 2)), [(-1, 1)] * 4, budget=200, seed=1)
    >>> bool(res.fun < 1e-4)
    True
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..axes import IntegerAxes
from ..optim import Optimizer, StopReason
from ..problem import INFEASIBLE_OFFSET
from .config import ZOAFConfig
from .constrained import ConstrainedState
from .monitor import Phase, WindowMonitor
from .multistart import PlannedStint, Stint, distinct_ranking, plan_stints, rung_budget, sobol_batch
from .schedule import smoothing_radius
from .local import CobyqaRun, LocalBatch, LocalSolver, initial_set
from .state import AxisBatch, Ending, InitBatch, Pending, Samples, Start, StepBatch
from .step import StartSteps

class ZOAF(StartSteps, Optimizer):
    """Hybrid zeroth-order optimizer (see the module docstring); hyper-parameters: ``ZOAFConfig``."""

    name = "zoaf"
    config_class = ZOAFConfig
    asks_ahead = True

    def __init__(self, dim: int, budget: int, seed: int | None = None, *, unit_steps: np.ndarray | None = None,
                 workers: int = 1, x0: np.ndarray | None = None, integer_axes: IntegerAxes = None,
                 **hyperparameters: Any) -> None:
        super().__init__(dim, budget, seed, unit_steps=unit_steps, workers=workers, x0=x0, integer_axes=integer_axes)
        self.config = ZOAFConfig.from_options(hyperparameters)
        self._n_init = self.config.resolved_n_init(dim, budget)
        self._memory = self.config.resolved_memory(dim)
        # simulations a start's local solver needs before its progress can be judged (``local_grace``)
        self._grace = initial_set(self.config.local, dim) if self.config.local_grace else 0
        self._pending: Pending | None = None
        self._init: Samples | None = None
        self._best_y: np.ndarray | None = None      # measures of the best point (constraint-aware restarts)
        self._starts: list[Start] = []
        self._plan: list[PlannedStint] = []
        self._active: Start | None = None
        self._candidates: list[int] = []
        self._restarts = 0
        self._late = self.config.late_init        # ``late_init``: the Sobol batch is still to draw
        self._late_due = False                     # ... and the next ask draws it
        self._polished = np.inf                    # ``polish``: the best FoM the last polish started from

    # -- protocol ----------------------------------------------------------------------------------------
    def _ask(self) -> np.ndarray:
        if self._late_due:
            self._late_due, self._pending, self._phase = False, InitBatch(late=True), "multistart"
            return sobol_batch(self._n_init, self.dim, self.rng)
        if self._init is None or self._active is None:
            return self._ask_init()
        return self._ask_step(self._active)

    def _tell(self, x: np.ndarray, f: np.ndarray, c: np.ndarray | None = None,
              objective: np.ndarray | None = None) -> None:
        batch, self._pending = self._pending, None
        y = self._measures(x, f, c, objective)
        if isinstance(batch, InitBatch):
            (self._tell_late if batch.late else self._tell_init)(x, f, y)
        elif isinstance(batch, StepBatch) and self._active is not None:
            self._tell_step(self._active, batch, x, f, y)
        elif isinstance(batch, LocalBatch) and self._active is not None:
            self._tell_local(self._active, x, f, y)
        elif isinstance(batch, AxisBatch) and self._active is not None:
            self._tell_axes(self._active, batch, x, f, y)
        self._advance()
        if self.done:
            for st in self._starts:
                if st.local is not None:
                    st.local.close()

    def _measures(self, x: np.ndarray, f: np.ndarray, c: np.ndarray | None, objective: np.ndarray | None
                  ) -> np.ndarray | None:
        """Rows [objective, c_1..c_m] when the problem reports constraints and the constraint-aware step is on
        (else None: the scalar method); follows the best point's row, which a restart from it needs."""
        if c is None or objective is None or not self.config.constraints:
            return None
        y = np.column_stack([objective, np.sign(c) * np.log1p(np.abs(c)) if self.config.log_violation else c])
        i = int(np.argmin(f))
        if f[i] == self.best_f and np.array_equal(x[i], self.best_x):
            self._best_y = y[i].copy()
        return y

    # -- multi-start ---------------------------------------------------------------------------------------
    def _ask_init(self) -> np.ndarray:
        self._phase = "multistart"
        if self._init is None:
            # The first point is the user's x0 (spec ``init``, ``minimize(x0=)``) or else the box centre, the
            # start ``centre_start`` keeps whatever its FoM (cold CMA-ES starts there too).
            first = [self.x0] if self.x0 is not None else [np.full(self.dim, 0.5)] \
                if self._n_init == 0 or self.config.centre_start else []
            pts = np.vstack(first + [sobol_batch(0 if self._late else self._n_init, self.dim, self.rng)])
        else:   # every point so far failed: keep sampling the box until something simulates
            pts = sobol_batch(max(self._n_init, self.workers, 1), self.dim, self.rng)
        self._pending = InitBatch()
        return pts

    def _tell_init(self, x: np.ndarray, f: np.ndarray, y: np.ndarray | None) -> None:
        if self._init is None:
            self._init = Samples(x.copy(), f.copy(), None if y is None else y.copy())
        else:
            self._init.add(x, f, y)
        init, cfg = self._init, self.config
        if not np.isfinite(init.F).any():
            return
        min_distance = cfg.min_start_distance * np.sqrt(self.dim)
        ranking = distinct_ranking(init.X, init.F, min_distance)
        if cfg.centre_start and np.isfinite(init.F[0]):   # x0 / the centre starts whatever its FoM
            far = np.linalg.norm(init.X - init.X[0], axis=1) >= min_distance
            ranking = [0] + [i for i in ranking if far[i]]
        k = min(cfg.n_starts, len(ranking))
        self._candidates = ranking[k:]
        post = self.remaining
        if post <= 0:
            return
        stints = rung_budget(post, k, cfg.rung_fraction, cfg.halving)
        halving = cfg.halving and k > 1
        if halving:   # the rung counts from the end of the start's initial set, as far as the budget allows
            stints = [max(s, min(s + self._grace + 2 * self.dim * cfg.opens_with_axes(j == 0, True), post // k))
                      for j, s in enumerate(stints)]
        self._plan = plan_stints(k, halving)
        for j, i in enumerate(ranking[:k]):
            horizon = post - (k - 1) * stints[0] if halving else stints[j]
            self._starts.append(self._new_start(init.X[i], float(init.F[i]), horizon, y=init.row(i)))
            if halving:
                self._starts[-1].allot = stints[j]

    def _tell_late(self, x: np.ndarray, f: np.ndarray, y: np.ndarray | None) -> None:
        """The batch drawn when the first start ended early: restart from its best distinct point."""
        n0 = len(self._init.F)
        self._init.add(x, f, y)
        ranking = distinct_ranking(x, f, self.config.min_start_distance * np.sqrt(self.dim))
        if ranking and self.remaining > 0:
            self._candidates = [n0 + i for i in ranking[1:]]
            self._add_start(x[ranking[0]], float(f[ranking[0]]), y=None if y is None else y[ranking[0]])

    def _new_start(self, x: np.ndarray, fx: float, horizon: int, alpha: float | None = None,
                   y: np.ndarray | None = None) -> Start:
        cfg = self.config
        alpha = cfg.alpha0 if alpha is None else alpha
        cobyqa = cfg.local is LocalSolver.COBYQA     # no phases to switch: stalls count towards the early stop
        phase = Phase.COORDINATE if cfg.mode == Phase.COORDINATE.value or cobyqa else Phase.RANDOM
        con = None if y is None or (cobyqa and not cfg.local_handover) else ConstrainedState.new(
            y, fx, cfg.acceptance, cfg.penalty0, cfg.filter_ceiling, cfg.filter_envelope)
        st = Start(x=x.copy(), fx=fx, alpha=alpha, phase=phase, horizon=max(1, horizon),
                   monitor=WindowMonitor(cfg.resolved_window(self.dim), cfg.rel_tol, INFEASIBLE_OFFSET
                                         if cfg.monitor_violation and y is not None else None),
                   X=np.empty((0, self.dim)), F=np.empty(0), con=con,
                   axes_due=cfg.opens_with_axes(not self._starts, fresh=alpha == cfg.alpha0))
        if cobyqa:
            st.local = CobyqaRun.begin(x, fx, y, smoothing_radius(alpha, cfg.h_ratio, cfg.h_min, cfg.h_max),
                                       cfg.h_min, st.horizon + 1, cfg.local_margin)
            st.ended = Ending.CONVERGED if st.local.point is None else None
            st.grace = self._grace
        return st

    def _advance(self) -> None:
        """Make sure an unfinished start with budget is active, or end the run."""
        st = self._active
        if self.remaining <= 0 or not self._starts:
            return                        # nothing simulated successfully yet: ``_ask`` samples the box again
        if st is not None and st.ended is None and st.used < st.allot:
            return
        while self._plan:
            st = self._begin(self._plan.pop(0))
            if st is None:
                break
            if st.ended is None and st.used < st.allot:
                self._activate(st)
                return
        self._restart()

    def _begin(self, stint: PlannedStint) -> Start | None:
        """The start a planned stint runs, its budget cap set; None: the rest has no live start to go on."""
        if stint.kind is Stint.REST:
            live = [s for s in self._starts if np.isfinite(s.score)]
            if not live:
                return None
            st = min(live, key=lambda s: s.score)
            if st.ended is not None:
                return None
            st.allot = st.used + self.remaining
            return st
        st = self._starts[stint.start]
        if stint.kind is Stint.SHARE:
            stints_left = 1 + sum(1 for p in self._plan if p.kind is not Stint.REST)
            st.allot = st.used + self.remaining // stints_left
            st.horizon = st.allot
        return st

    def _activate(self, st: Start) -> None:
        self._active = st
        self._phase = st.phase.value

    def _restart(self) -> None:
        """The planned starts are over with budget left: the next Sobol candidate, else polish the best
        (``polish``: a stopped start that holds the best is polished first, not counted as a restart)."""
        cfg = self.config
        holder = min(self._starts, key=lambda s: s.score) if self._starts else None
        if cfg.polish != "off" and not (self._late and cfg.polish == "after-batch") and holder is not None \
                and holder.ended is Ending.STOPPED and holder.score <= self.best_f < self._polished \
                and self.remaining >= 3 * self.dim:
            self._polished = self.best_f
            self._add_start(self.best_x, self.best_f, alpha=cfg.alpha0 / 4, y=self._best_y)
            return
        if self._restarts >= cfg.max_restarts or self.best_x is None:
            self._active = None
            self._stop = StopReason.CONVERGED if any(s.ended is Ending.CONVERGED for s in self._starts) \
                else StopReason.EARLY_STOPPED
            return
        self._restarts += 1
        if self._late and 0 < self._n_init <= self.remaining - 3 * self.dim:
            self._late, self._late_due, self._active = False, True, None
        elif self._candidates and self.remaining >= 3 * self.dim:
            i = self._candidates.pop(0)
            self._add_start(self._init.X[i], float(self._init.F[i]), y=self._init.row(i))
        else:
            self._add_start(self.best_x, self.best_f, alpha=cfg.alpha0 / 4, y=self._best_y)

    def _add_start(self, x: np.ndarray, fx: float, alpha: float | None = None, y: np.ndarray | None = None) -> None:
        """A restart with all the budget left."""
        st = self._new_start(x, fx, self.remaining, alpha=alpha, y=y)
        st.allot = self.remaining
        self._starts.append(st)
        self._activate(st)


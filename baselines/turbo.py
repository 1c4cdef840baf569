"""TuRBO-1 (Eriksson et al. 2019): Bayesian optimization in one trust region, following BoTorch's tutorial.

A GP (Matern-5/2 ARD) is fitted to the points of the current trust region's run; the next q points are drawn
by Thompson sampling over a candidate set of perturbed Sobol points inside a box around the best point, whose
side per coordinate is ``L * w_i`` (``w`` the ARD lengthscales normalized to geometric mean 1). The box
doubles after ``success_tolerance`` successive improving batches, halves after ``failure_tolerance``
successive non-improving ones; when ``L < L_min`` the method restarts from a fresh Sobol design, discarding
the old trust region's data (as the paper; the tutorial stops there).

Defaults and why (``TuRBO.defaults``):

* ``L_init = 0.8``, ``L_min = 0.5**7``, ``L_max = 1.6``; ``failure_tolerance = ceil(max(4 / q, d / q))``;
  ``success_tolerance = 3`` (the paper's; the tutorial's 10 would rarely fire within 300 simulations);
  an improvement must beat the best by ``1e-3 |best|`` (tutorial).
* initial design (each restart): scrambled Sobol, ``n_init = 2 d`` (tutorial), at most a third of the budget.
* batch: ``q = max(workers, 4)`` like :mod:`zoaf.baselines.bo`.
* candidates: ``min(100 d, 5000)`` per batch (the paper's code; the tutorial's ``min(5000, max(2000, 200 d))``
  = 4400 at d = 22 cost ~3 s of CPU per batch in the exact joint Thompson sample, ~8x more), each perturbed in
  each coordinate with probability ``min(20 / d, 1)`` (tutorial); Thompson sampling without replacement
  (``MaxPosteriorSampling``), exact Cholesky (``max_cholesky_size = inf``).
* model: ``SingleTaskGP`` with ``ScaleKernel(MaternKernel(nu=2.5, ARD))``, lengthscales in [0.005, 4],
  noise in [1e-8, 1e-3] (tutorial), ``Standardize(m=1)`` outcomes, fitted with ``fit_gpytorch_mll`` capped
  at 75 L-BFGS-B iterations and warm-started within a trust-region run.
* outcomes: failed points imputed with the worst finite value and warped with the same monotone log
  transform as BO (:func:`zoaf.baselines.bo.log_warp`, ``log_transform=True``); the tutorial uses plain
  standardization. The trust-region bookkeeping uses the raw values (ranks only).
* seeding: as BO (``torch.random.fork_rng`` seeded from the run's generator, float64).

Example:
    >>> import numpy as np
    >>> from zoaf.baselines.turbo import TuRBO
    >>> opt = TuRBO(2, budget=20, seed=0)
    >>> while not opt.done:
    ...     x = opt.ask()
    ...     opt.tell(x, np.sum((x - 0.3) ** 2, axis=1))
    >>> bool(opt.best_f < 0.01)
    True
"""
from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np

from zoaf.optim import Optimizer

from ._sobol import sobol
from .bo import DEFAULT_Q, FIT_MAXITER, gp_targets, hyper_state, torch_seeded

#: Trust-region side lengths in the unit box (tutorial and paper).
LENGTH_INIT, LENGTH_MIN, LENGTH_MAX = 0.8, 0.5**7, 1.6
#: Successive improving batches before the region doubles (paper: 3).
SUCCESS_TOLERANCE = 3
#: Relative margin an improvement must clear (tutorial).
IMPROVEMENT_MARGIN = 1e-3


class TuRBO(Optimizer):
    """TuRBO-1 with restarts on [0, 1]^d; one q-batch per ask.

    Args:
        n_init: Sobol design size at the start and after each restart (default ``min(2 d, budget // 3)``).
        q: points per batch (default ``max(workers, 4)``).
        success_tolerance: improving batches before expanding (default 3).
        failure_tolerance: failing batches before shrinking (default ``ceil(max(4 / q, d / q))``).
        n_candidates: Thompson-sampling candidates (default ``min(100 d, 5000)``).
        log_transform: warp outcomes as BO does (default True).
        fit_maxiter: L-BFGS-B iterations per GP fit (default 75).
    """

    name = "turbo"
    defaults: ClassVar[dict[str, Any]] = {
        "length_init": LENGTH_INIT, "length_min": LENGTH_MIN, "length_max": LENGTH_MAX,
        "success_tolerance": SUCCESS_TOLERANCE, "failure_tolerance": "ceil(max(4/q, d/q))",
        "n_init": "min(2*d, budget//3) Sobol, at every restart", "q": f"max(workers, {DEFAULT_Q})",
        "n_candidates": "min(100*d, 5000)", "model": "SingleTaskGP, ScaleKernel(Matern-5/2 ARD)",
        "log_transform": "as bo", "fit_maxiter": FIT_MAXITER, "restarts": "fresh Sobol design, old data dropped",
    }

    def __init__(self, dim: int, budget: int, seed: int | None = None, *, unit_steps: np.ndarray | None = None,
                 workers: int = 1, x0: np.ndarray | None = None, n_init: int | None = None, q: int | None = None,
                 success_tolerance: int = SUCCESS_TOLERANCE, failure_tolerance: int | None = None,
                 n_candidates: int | None = None, log_transform: bool = True,
                 fit_maxiter: int = FIT_MAXITER) -> None:
        super().__init__(dim, budget, seed, unit_steps=unit_steps, workers=workers, x0=x0)
        self.n_init = max(2, min(2 * dim, budget // 3)) if n_init is None else max(1, int(n_init))
        self.q = max(self.workers, DEFAULT_Q) if q is None else max(1, int(q))
        self.success_tolerance = max(1, int(success_tolerance))
        self.failure_tolerance = (math.ceil(max(4.0 / self.q, dim / self.q)) if failure_tolerance is None
                                  else max(1, int(failure_tolerance)))
        self.n_candidates = min(100 * dim, 5000) if n_candidates is None else max(self.q, n_candidates)
        self.log_transform = bool(log_transform)
        self.fit_maxiter = int(fit_maxiter)
        self.nrestarts = 0
        self._restart()

    @classmethod
    def describe(cls) -> dict[str, Any]:
        return dict(cls.defaults)

    def _restart(self) -> None:
        self.length = LENGTH_INIT
        self._succ = self._fail = 0
        self._tr_best = np.inf
        self._X: list[np.ndarray] = []
        self._f: list[float] = []
        self._design: np.ndarray | None = None
        self._hypers: dict[str, Any] | None = None
        self._phase = "sobol" if self.nrestarts == 0 else f"sobol-run{self.nrestarts}"

    def _ask(self, n: int | None) -> np.ndarray:
        if len(self._X) < (self.n_init if self._design is None else len(self._design)):
            if self._design is None:
                self._design = sobol(self.n_init, self.dim, self.rng)
                if self.x0 is not None and self.nrestarts == 0:  # as ZOAF: a given start joins the batch
                    self._design = np.vstack([self.x0, self._design])
            return self._design[len(self._X):]
        self._phase = "turbo" if self.nrestarts == 0 else f"turbo-run{self.nrestarts}"
        with torch_seeded(self.rng):
            return self._next_batch(min(self.q, self.remaining))

    def _fit(self, X: Any, Y: Any) -> Any:
        import gpytorch
        from botorch.fit import fit_gpytorch_mll
        from botorch.models import SingleTaskGP
        from botorch.models.transforms.outcome import Standardize
        from gpytorch.constraints import Interval
        from gpytorch.kernels import MaternKernel, ScaleKernel
        from gpytorch.likelihoods import GaussianLikelihood
        from gpytorch.mlls import ExactMarginalLogLikelihood

        likelihood = GaussianLikelihood(noise_constraint=Interval(1e-8, 1e-3))
        covar = ScaleKernel(MaternKernel(nu=2.5, ard_num_dims=self.dim, lengthscale_constraint=Interval(0.005, 4.0)))
        model = SingleTaskGP(X, Y, covar_module=covar, likelihood=likelihood, outcome_transform=Standardize(m=1))
        if self._hypers is not None:
            model.load_state_dict(self._hypers, strict=False)
        mll = ExactMarginalLogLikelihood(model.likelihood, model)
        with gpytorch.settings.max_cholesky_size(float("inf")):
            try:
                fit_gpytorch_mll(mll, optimizer_kwargs={"options": {"maxiter": self.fit_maxiter}})
            except Exception:  # keep the previous (or default) hyper-parameters
                if self._hypers is not None:
                    model.load_state_dict(self._hypers, strict=False)
        model.eval()
        self._hypers = hyper_state(model)
        return model

    def _next_batch(self, q: int) -> np.ndarray:
        import gpytorch
        import torch
        from botorch.generation import MaxPosteriorSampling
        from torch.quasirandom import SobolEngine

        f = np.array(self._f)
        X = torch.tensor(np.array(self._X), dtype=torch.double)
        Y = torch.tensor(gp_targets(f, self.log_transform), dtype=torch.double).unsqueeze(-1)
        model = self._fit(X, Y)

        center = X[int(np.argmax(Y.squeeze(-1).numpy()))].clone()
        w = model.covar_module.base_kernel.lengthscale.squeeze().detach().reshape(-1)
        w = w / w.mean()
        w = w / torch.prod(w.pow(1.0 / len(w)))
        lb = torch.clamp(center - w * self.length / 2.0, 0.0, 1.0)
        ub = torch.clamp(center + w * self.length / 2.0, 0.0, 1.0)
        engine = SobolEngine(self.dim, scramble=True, seed=int(torch.randint(2**31 - 1, (1,))))
        pert = lb + (ub - lb) * engine.draw(self.n_candidates, dtype=torch.double)
        mask = torch.rand(self.n_candidates, self.dim, dtype=torch.double) <= min(20.0 / self.dim, 1.0)
        none = torch.where(mask.sum(dim=1) == 0)[0]
        mask[none, torch.randint(0, self.dim, size=(len(none),))] = True
        cand = center.expand(self.n_candidates, self.dim).clone()
        cand[mask] = pert[mask]
        with torch.no_grad(), gpytorch.settings.max_cholesky_size(float("inf")):
            nxt = MaxPosteriorSampling(model=model, replacement=False)(cand, num_samples=q)
        return nxt.numpy()

    def _tell(self, x: np.ndarray, f: np.ndarray, c: np.ndarray | None = None,
              objective: np.ndarray | None = None) -> None:
        in_design = len(self._X) < (self.n_init if self._design is None else len(self._design))
        self._X.extend(np.asarray(x, dtype=float))
        self._f.extend(np.asarray(f, dtype=float))
        fbest = float(np.min(f))
        if in_design:
            self._tr_best = min(self._tr_best, fbest)
            return
        improved = (fbest < self._tr_best - IMPROVEMENT_MARGIN * abs(self._tr_best) if np.isfinite(self._tr_best)
                    else np.isfinite(fbest))
        if improved:
            self._succ, self._fail = self._succ + 1, 0
        else:
            self._succ, self._fail = 0, self._fail + 1
        if self._succ == self.success_tolerance:
            self.length, self._succ = min(2.0 * self.length, LENGTH_MAX), 0
        elif self._fail == self.failure_tolerance:
            self.length, self._fail = self.length / 2.0, 0
        self._tr_best = min(self._tr_best, fbest)
        if self.length < LENGTH_MIN and self.remaining > 0:
            self.nrestarts += 1
            self._restart()

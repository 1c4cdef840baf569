"""Bayesian optimization: a BoTorch ``SingleTaskGP`` with q-batch log expected improvement (``qLogEI``).

Each iteration fits a GP to every point simulated so far and asks the q points that jointly maximize
``qLogExpectedImprovement`` (Ament et al. 2023). The objective is deterministic (ngspice re-simulates
bit-identically), so plain qLogEI against the best observed value is used rather than the noisy variant.

On a constrained problem (``c`` told) BO is BoTorch's constrained form: a ``ModelListGP`` of one
``SingleTaskGP`` for the objective (warped as below) and one per normalized constraint, and the q-batch
``qLogNoisyExpectedImprovement`` with outcome constraints ``c_i(x) <= 0`` (BoTorch's recommended acquisition
for constraints: it weighs improvement by the modelled probability of feasibility, fat-tailed smoothed).
Each model is imputed separately where the simulation failed (the worst finite value of its outcome). The
effort caps below apply to each model, so the cost grows with the number of outcomes: measured (d = 10,
3 constraints, 40 simulations, one thread) 0.30 s of CPU per simulation against 0.12 s unconstrained.

Defaults and why (:class:`BOConfig`):

* initial design: scrambled Sobol, ``n_init = 2 * (d + 1)`` points (BoTorch tutorials' size), at most a
  third of the budget.
* batch: ``q = max(workers, 4)`` (the q of the project's BO prototype; one BO iteration is one batch).
* model: ``SingleTaskGP`` on the unit box (inputs need no normalizing) with BoTorch's defaults: RBF ARD kernel
  with dimension-scaled log-normal lengthscale prior (Hvarfner et al. 2024), learned noise,
  ``Standardize(m=1)`` outcome transform. Failed points (``+inf``) are imputed with the worst finite value seen.
* outcome warping (``log_transform=True``): the GP models ``-log(f - f_min + delta)`` with
  ``delta = max(|f_min|, 1e-3 * (median(f) - f_min))`` (floored at 1e-12). For a positive FoM this is exactly
  ``-log f`` (what the project's BO prototype used); it is monotone, so it preserves ranks, defined for negative FoMs
  (negated maximize objectives) and scale-free; it tames penalized infeasible values that are orders of
  magnitude above the feasible ones.
* fitting: ``fit_gpytorch_mll`` (L-BFGS-B) with at most ``fit_maxiter = 50`` iterations, warm-started from the
  previous iteration's hyper-parameters; a full refit every ``refit_every = 1`` iterations (a larger value
  only re-conditions the GP on the new data with the old hyper-parameters, cheaper for long runs).
* acquisition optimization: ``optimize_acqf`` over the unit box, joint over the q points, ``num_restarts = 4``,
  ``raw_samples = 256``, ``maxiter = 50`` (L-BFGS-B), 128 quasi-MC samples (BoTorch: 10 restarts, 512 raw
  samples, 200 iterations, 512 MC samples). torch runs on one thread (see :func:`torch_seeded`). Measured:
  a d = 22, 300-simulation run costs ~65 s of CPU (~0.22 s per simulation; the project's BO
  prototype: 0.74 s), so 10 seeds x a few circuits stay affordable on 2 cores.
* seeding: each iteration runs inside ``torch.random.fork_rng`` with a seed drawn from the run's generator,
  in double precision, so equal seeds give equal asks and the global torch state is untouched.

Example:
    >>> import numpy as np
    >>> from zoaf.baselines.bo import BO
    >>> opt = BO(2, budget=16, seed=0)
    >>> while not opt.done:
    ...     x = opt.ask()
    ...     opt.tell(x, np.sum((x - 0.3) ** 2, axis=1))
    >>> bool(opt.best_f < 0.01)
    True
"""
from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass, field
from typing import Any, Iterator

import numpy as np

from zoaf.methodconfig import AT_MOST_BUDGET
from zoaf.optim import Optimizer
from zoaf.sobol import sobol_batch

#: Default q-batch floor (the project's BO prototype's q).
DEFAULT_Q = 4
#: Capped acquisition-optimization effort (BoTorch tutorials use 10 restarts and 512 raw samples).
NUM_RESTARTS, RAW_SAMPLES, ACQF_MAXITER = 4, 256, 50
#: Quasi-MC samples of the q-batch acquisition (BoTorch's default is 512; 128 changes the batch little).
MC_SAMPLES = 128
#: L-BFGS-B iterations of a hyper-parameter fit (warm-started, so few are needed).
FIT_MAXITER = 50


@contextlib.contextmanager
def torch_seeded(rng: np.random.Generator) -> Iterator[None]:
    """Run torch code with its global RNG forked and seeded from ``rng`` (restored on exit), on one thread.

    The GP matrices (n <= a few hundred) are far too small to gain from intra-op threads, and comparison runs
    go in parallel processes: extra threads only contend (on a loaded 2-core machine they cost 3-10x).
    """
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(rng.integers(2**63 - 1)))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # BoTorch's numerical/optimization warnings: handled by retries
                yield
    finally:
        torch.set_num_threads(threads)


def impute_failures(f: np.ndarray) -> np.ndarray:
    """Replace ``+inf`` (failed simulations) by the worst finite value; all failed -> zeros."""
    finite = np.isfinite(f)
    if not finite.any():
        return np.zeros_like(f)
    return np.where(finite, f, f[finite].max())


def log_warp(f: np.ndarray) -> np.ndarray:
    """Monotone ``log(f - f_min + delta)`` with ``delta = max(|f_min|, 1e-3 (median - f_min), 1e-12)``.

    Equals ``log f`` for a positive FoM; defined for any sign; ranks are preserved.
    """
    fmin = float(f.min())
    delta = max(abs(fmin), 1e-3 * float(np.median(f) - fmin), 1e-12)
    return np.log(f - fmin + delta)


def gp_targets(f: np.ndarray, log_transform: bool) -> np.ndarray:
    """Minimization values -> GP targets to *maximize*: impute failures, optionally warp, negate."""
    y = impute_failures(np.asarray(f, dtype=float))
    if log_transform:
        y = log_warp(y)
    return -y


def hyper_state(model: Any) -> dict[str, Any]:
    """The model's hyper-parameters (kernel, mean, likelihood), without data-dependent transform buffers."""
    return {k: v.clone() for k, v in model.state_dict().items() if "outcome_transform" not in k}


def constraint_targets(c: np.ndarray) -> np.ndarray:
    """Constraint matrix -> GP targets, column by column: failures (``+inf``) imputed as the worst finite value."""
    return np.column_stack([impute_failures(col) for col in np.asarray(c, dtype=float).T])


@dataclass
class Observations:
    """What a GP baseline was told, in order: the points, their FoMs and, in a constrained run, the raw objectives
    and constraint values (modelled apart); and the Sobol design that comes before the first model step (TuRBO
    starts a fresh one at each restart)."""

    X: list[np.ndarray] = field(default_factory=list)
    f: list[float] = field(default_factory=list)
    obj: list[float] = field(default_factory=list)
    c: list[np.ndarray] = field(default_factory=list)
    design: np.ndarray | None = None

    def designing(self, n_init: int) -> bool:
        """Whether the next points still come from the design (``n_init`` points, drawn at the first ask)."""
        return len(self.X) < (n_init if self.design is None else len(self.design))

    def design_left(self, n_init: int, dim: int, rng: np.random.Generator, x0: np.ndarray | None) -> np.ndarray:
        """The design's points not yet told; as ZOAF, a user-given start ``x0`` is simulated with the batch."""
        if self.design is None:
            self.design = sobol_batch(n_init, dim, rng)
            if x0 is not None:
                self.design = np.vstack([x0, self.design])
        return self.design[len(self.X):]

    def add(self, x: np.ndarray, f: np.ndarray, c: np.ndarray | None, objective: np.ndarray | None) -> None:
        self.X.extend(np.asarray(x, dtype=float))
        self.f.extend(np.asarray(f, dtype=float))
        if c is not None:
            self.obj.extend(objective)
            self.c.extend(c)


@dataclass(frozen=True)
class BOConfig:
    """BO's settings (see the module docstring for the reasons and the measured cost).

    Attributes:
        n_init: Sobol initial design, None = ``min(2 (d + 1), budget // 3)``, at least 2.
        q: points per batch, None = ``max(workers, 4)``.
        log_transform: warp the objective with :func:`log_warp`.
        refit_every: refit hyper-parameters every this many iterations (else only re-condition).
        fit_maxiter, num_restarts, raw_samples, acqf_maxiter, mc_samples: the capped effort.
        acquisition: qLogEI, or qLogNEI with outcome constraints on a ModelListGP when constrained.
    """

    n_init: int | None = field(default=None, metadata=AT_MOST_BUDGET)
    q: int | None = None
    log_transform: bool = True
    refit_every: int = 1
    fit_maxiter: int = FIT_MAXITER
    num_restarts: int = NUM_RESTARTS
    raw_samples: int = RAW_SAMPLES
    acqf_maxiter: int = ACQF_MAXITER
    mc_samples: int = MC_SAMPLES
    acquisition: str = field(default="qLogEI; constrained: qLogNEI, ModelListGP, outcome constraints", init=False)


class BO(Optimizer):
    """GP-qLogEI Bayesian optimization on [0, 1]^d (qLogNEI with constraints); one q-batch per ask."""

    name = "bo"
    config_class = BOConfig
    requires, extra = ("torch", "botorch", "gpytorch"), "bo"

    def __init__(self, dim: int, budget: int, seed: int | None = None, *, unit_steps: np.ndarray | None = None,
                 workers: int = 1, x0: np.ndarray | None = None, **options: Any) -> None:
        super().__init__(dim, budget, seed, unit_steps=unit_steps, workers=workers, x0=x0, **options)
        cfg = self.config
        self.n_init = max(2, min(2 * (dim + 1), budget // 3)) if cfg.n_init is None else max(1, int(cfg.n_init))
        self.q = max(self.workers, DEFAULT_Q) if cfg.q is None else max(1, int(cfg.q))
        self._seen = Observations()
        self._hypers: dict[str, Any] | None = None
        self._iter = 0
        self._phase = "sobol"

    def _ask(self) -> np.ndarray:
        if self._seen.designing(self.n_init):
            return self._seen.design_left(self.n_init, self.dim, self.rng, self.x0)
        self._phase = "bo"
        with torch_seeded(self.rng):
            return self._next_batch(min(self.q, self.remaining))

    def _fit(self, X: Any, Y: Any) -> Any:
        """One GP per column of ``Y`` (a ``ModelListGP`` when there are several), warm-started and capped."""
        from botorch.fit import fit_gpytorch_mll
        from botorch.models import ModelListGP, SingleTaskGP
        from botorch.models.transforms.outcome import Standardize
        from gpytorch.mlls import ExactMarginalLogLikelihood, SumMarginalLogLikelihood

        gps = [SingleTaskGP(X, Y[:, i:i + 1], outcome_transform=Standardize(m=1)) for i in range(Y.shape[1])]
        model = gps[0] if len(gps) == 1 else ModelListGP(*gps)
        if self._hypers is not None:
            model.load_state_dict(self._hypers, strict=False)
        if self._hypers is None or self._iter % self.config.refit_every == 0:
            mll = (ExactMarginalLogLikelihood(model.likelihood, model) if len(gps) == 1
                   else SumMarginalLogLikelihood(model.likelihood, model))
            try:
                fit_gpytorch_mll(mll, optimizer_kwargs={"options": {"maxiter": self.config.fit_maxiter}})
            except Exception:  # a failed fit keeps the previous (or default) hyper-parameters
                if self._hypers is not None:
                    model.load_state_dict(self._hypers, strict=False)
        model.eval()
        self._hypers = hyper_state(model)
        return model

    def _acquisition(self, model: Any, X: Any, Y: Any, sampler: Any) -> Any:
        from botorch.acquisition.logei import qLogExpectedImprovement, qLogNoisyExpectedImprovement
        from botorch.acquisition.objective import GenericMCObjective

        if Y.shape[1] == 1:
            return qLogExpectedImprovement(model, best_f=Y.max(), sampler=sampler)
        constraints = [lambda Z, i=i: Z[..., i] for i in range(1, Y.shape[1])]   # feasible where <= 0
        return qLogNoisyExpectedImprovement(model, X_baseline=X, sampler=sampler, constraints=constraints,
                                            objective=GenericMCObjective(lambda Z, X=None: Z[..., 0]))

    def _next_batch(self, q: int) -> np.ndarray:
        import torch
        from botorch.optim import optimize_acqf
        from botorch.sampling import SobolQMCNormalSampler

        cfg, seen = self.config, self._seen
        X = torch.tensor(np.array(seen.X), dtype=torch.double)
        if seen.c:   # objective (to maximize) and constraints (<= 0 feasible), one model each
            y = np.column_stack([gp_targets(np.array(seen.obj), cfg.log_transform),
                                 constraint_targets(np.array(seen.c))])
        else:
            y = gp_targets(np.array(seen.f), cfg.log_transform)[:, None]
        Y = torch.tensor(y, dtype=torch.double)
        model = self._fit(X, Y)
        self._iter += 1
        acqf = self._acquisition(model, X, Y, SobolQMCNormalSampler(torch.Size([cfg.mc_samples])))
        bounds = torch.stack([torch.zeros(self.dim), torch.ones(self.dim)]).double()
        cand, _ = optimize_acqf(acqf, bounds=bounds, q=q, num_restarts=cfg.num_restarts,
                                raw_samples=cfg.raw_samples, options={"maxiter": cfg.acqf_maxiter})
        return cand.detach().numpy()

    def _tell(self, x: np.ndarray, f: np.ndarray, c: np.ndarray | None = None,
              objective: np.ndarray | None = None) -> None:
        self._seen.add(x, f, c, objective)

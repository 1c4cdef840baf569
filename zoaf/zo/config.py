"""Every ZOAF hyper-parameter in one place: its name, default and the reason for that default.

Distances are in the unit box [0, 1]^d (log-scaled parameters are linear there). Defaults are fixed across
benchmarks: no per-circuit tuning. Ablations are configurations, not code copies:

    ZOAFConfig(mode="random")                 # random-direction phase only
    ZOAFConfig(mode="coordinate")             # coordinate phase from the first step
    ZOAFConfig(n_starts=1, n_init=0)          # no multi-start: one start at x0 (the box centre by default)
    ZOAFConfig(centre_start=False)            # starts: the best Sobol points only (the centre is not forced)
    ZOAFConfig(monitor=False)                 # fixed schedule: switch at ``switch_force``, no stall logic
    ZOAFConfig(estimator="classic")           # textbook estimates from this step's probes only (no reuse)
    ZOAFConfig(basis_prior=1.0)               # coordinate phase on the plain axes (no adapted basis)
    ZOAFConfig(constraints=False)             # constrained problems: the scalar FoM only (no constraint model)
    ZOAFConfig(acceptance="penalty")          # constraint-aware moves by an exact penalty instead of the filter
    ZOAFConfig(least_change=True, ratio_radius=True)  # COBYQA-like least-change models and radius rule
    ZOAFConfig(local="cobyqa")                # each start's local search is a COBYQA run (the [peers] extra)
"""
from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

from ..errors import InputError
from ..methodconfig import checked_options, typed_option
from .acceptance import Rule
from .local import LocalSolver
from .model_step import StepOptions

MODES = ("hybrid", "random", "coordinate")
ESTIMATORS = ("regression", "classic")
POLISH = ("off", "first", "after-batch")
VALUES = ("auto", "raw", "rank")
DIRECTIONS = ("orthogonal", "gaussian", "rademacher")
AXIS_STARTS = ("off", "first", "every")


@dataclass(frozen=True)
class ZOAFConfig:
    """ZOAF's hyper-parameters (see each field's docstring for why its default)."""

    mode: str = "hybrid"
    """``hybrid``: random directions, then coordinate refinement when the monitor says so; ``random`` or
    ``coordinate``: one phase throughout (ablations)."""

    n_init: int | None = None
    """Size of the one-shot scrambled Sobol batch; ``None`` = 2d, at most 15% of the budget. 2d is what the
    warm CMA-ES peer starts from; the cap keeps most of a small budget for local search. 0 = no
    batch: the only start is ``x0``."""

    centre_start: bool = True
    """The first start is the box centre (``x0`` when given) whatever its FoM; the other ``n_starts - 1`` are the
    best distinct Sobol points. The centre (the geometric mean of the bounds on log axes: a designer's nominal)
    is a start that descends well even where its own FoM is poor, and successive halving drops it after one
    rung where it does not (BENCHMARKS.md section 4: better worst runs on all 8 circuit objectives measured)."""

    n_starts: int = 2
    """Starts in all (distinct basins): the centre (``centre_start``) and the best Sobol point. Two, because
    with successive halving the second one costs only one rung and rescues runs whose other start sits in a
    poor basin."""

    late_init: bool = False
    """Draw the Sobol batch only when ``x0``'s start ends early, and restart from its best point, instead of
    before any start (the first batch is ``x0`` alone, so it is the only start): the designer's local run gets
    all the budget it can use, a second basin what it leaves (ablation ``local-cobyqa-grace-m3-late``)."""

    polish: str = "first"
    """When the start that holds the best point was stopped by the monitor (not converged), restart from that
    point at a quarter of ``alpha0`` before the next other restart (again only once the best has improved; not
    counted in ``max_restarts``): a stalled local run is often short of its basin's bottom. ``first``: also
    before the late Sobol batch; ``after-batch``: only once that batch is drawn (or without ``late_init``);
    ``off`` (ablation ``no-polish``). At 300 simulations it seldom comes (no objective of 15 changes
    significantly); at 1,000 it is better in median on all ten objectives measured, significantly on six, and
    loses none (BENCHMARKS.md section 4, "The polish for the default")."""

    min_start_distance: float = 0.15
    """A start closer than this times sqrt(d) to a better one is skipped (same basin)."""

    halving: bool = True
    """Successive halving: every start first gets one rung; only the best continues."""

    rung_fraction: float = 0.15
    """Share of the post-Sobol budget each start gets in the halving rung. Small enough that a losing start
    wastes little, large enough (~50 simulations at B=400, d=22) to reveal which basin descends faster."""

    q: int = 4
    """Probe directions per step (raised to fill ``workers``). Few probes per step and many steps: with probe
    reuse (``estimator='regression'``) the gradient estimate accumulates across steps, so small batches move
    the iterate more often."""

    directions: str = "orthogonal"
    """Random directions: ``orthogonal`` (Gaussian, orthonormalised, so q probes span q dimensions),
    ``gaussian`` or ``rademacher``."""

    estimator: str = "regression"
    """``regression``: least-squares gradient from every recent evaluated point near the iterate (probes,
    trial steps, earlier iterates): a prototype whose estimate used only its own step's probes did no better
    than greedy probing; ``classic``: the textbook
    forward-difference estimate from this step's probes only."""

    values: str = "auto"
    """What the regression fits: ``raw`` values, their ``rank`` among the neighbourhood, or ``auto``: ranks
    only when the neighbourhood holds outliers (a value farther from the median than ``OUTLIER_SPREAD`` times
    the median absolute deviation: a constraint cliff, where infeasible FoMs sit 100+ above feasible ones),
    raw values otherwise. Raw values keep the magnitudes the curvature fit needs (sphere at B=400: 8e-8 raw
    vs 3e-3 rank); ranks keep a cliff from dominating the fit (BENCHMARKS.md, section 4 and 5)."""

    curvature: bool = True
    """Fit an isotropic curvature term 0.5 c |x - x_k|^2 beside the gradient: it absorbs most of the
    second-order bias of differences taken at a step's distance from the iterate."""

    weighting: bool = False
    """Weight each memory point by 1 / (|x_i - x_k|^2 + h^2): near points count more."""

    momentum: float = 0.0
    """Weight of the last accepted move's direction added to the normalised descent direction of the
    trial steps (heavy ball): damps zig-zag in narrow valleys."""

    memory: int | None = None
    """Recent points kept for the regression estimate; ``None`` = 2d (more rows than unknowns, still local)."""

    alpha0: float = 0.5
    """Initial step length along the normalised estimate (box units, Euclidean): ~0.1 per coordinate in 22-D,
    the radius warm CMA-ES starts with (sigma0 = 0.1). 0.1 was too local with the former coordinate phase (runs
    stayed in the basin of their Sobol start); with the compass-search phase and the centre start the two tie on
    the amplifier (BENCHMARKS.md section 4, ``small-steps``)."""

    alpha_min: float = 1e-4
    """A start whose step fell below this has converged (below ~1e-5, the noise of values written with few
    digits dominates); in the coordinate phase only once every direction's step is down to ``h_min`` too: at an
    active-constraint corner the steps along the gradient all fail while single directions still make
    progress."""

    grow: float = 2.0
    """Step factor after the longest trial step succeeded (expanding line search)."""

    shrink: float = 0.5
    """Step factor after no trial step improved (and for a monitor stall)."""

    h_ratio: float = 0.5
    """Smoothing radius (probe distance) = h_ratio * step, so the probes sample the region the next step will
    cover: large probes early smooth rugged landscapes, small ones late give accurate gradients."""

    h_min: float = 1e-3
    """Smallest probe distance: finite differences >= 1e-3 are safe against SPICE noise."""

    h_max: float = 0.25
    """Largest probe distance: half of ``alpha0``, so that the first probes see the scale of the first steps."""

    basis_prior: float = 0.5
    """Coordinate phase: weight of the identity in the covariance whose eigenvectors are the sweep's
    directions (``est.adapted_basis``); the rest is the second moment of the last ``memory`` accepted moves.
    1 = plain axes; lower = directions follow the moves (a ridge) more closely."""

    step_max: float = 0.5
    """Coordinate phase: longest probe along one direction (box units). The first sweep probes at ``h_max``;
    a direction's step grows by ``grow`` after a success and shrinks by sqrt(``shrink``) after a failure,
    when the next probe tries the other side (two failures: ``shrink``): a compass search per direction."""

    window: int | None = None
    """Monitor window, in charged simulations of the start; ``None`` = max(d, 16): about one sweep."""

    rel_tol: float = 1e-3
    """Relative improvement of the best value over the window below which the window signals a stall."""

    monitor_violation: bool = False
    """Constraint-aware: an infeasible start's progress is judged relative to its violation (its FoM is
    ``INFEASIBLE_OFFSET`` + violation, so relative to the FoM a violation halved from 0.1 to 0.05 is 0.05% and
    reads as a stall). Off (ablation ``monitor-violation``): BENCHMARKS.md section 4 ("Infeasible starts judged
    by their violation")."""

    log_violation: bool = False
    """Constraint-aware: model each normalized constraint value c as sign(c) log(1 + |c|) (zero, and so which side
    of its bound a point lies, unchanged; slope 1 near the bound). A measure that follows a power law in log-scaled
    sizes (a power, a bandwidth) is then nearly linear far from its bound, where its linear violation (a power 9x
    over its bound counts 8) dominates the restoration step and the filter's ranking of infeasible points. Off
    (ablation ``log-violation``): BENCHMARKS.md section 4 ("Constraint violations in log units"): no significant
    difference on nineteen circuit objectives. It is log(value/bound) for ``<=`` only (a ``>=`` miss is log(2 -
    value/bound), under log 2); the log ratio both ways was no better (section 4, "Misses as log ratios")."""

    monitor: bool = True
    """Sliding-window monitor on/off. Off: fixed schedule (switch at ``switch_force``, no stall shrink, no
    early stop; the step still adapts by trial success)."""

    switch_min_used: float = 0.0
    """A stall switches random -> coordinate only after this fraction of the start's budget. 0: the first stall
    of the random phase switches. The prototype's switch at 15-25% lost 2x because its sweeps cost
    2d central differences each; ours cost nothing extra (forward probes, a block per step, every probe a
    candidate iterate), and switching early wins on the circuits (BENCHMARKS.md section 4: 0.5 lost on
    `fom` and `ugbw`)."""

    switch_force: float = 0.3
    """The switch happens at this fraction of the start's budget even without a stall: random directions
    explore while the step is long, the coordinate phase does most of the descent. Measured on the amplifier
    (20 seeds, B=300): 0.2-0.4 tie, 0.8 (the former default) loses on `fom`, `ugbw` and `gain`."""

    min_sweeps: float = 1.0
    """The switch also needs budget for this many cheap sweeps (d forward probes each) of the coordinates."""

    max_stalls: int = 3
    """Stalls in coordinate mode (each shrinks step and probe distance) before the start is early-stopped and
    its budget handed to the next start or a restart."""

    max_restarts: int = 4
    """Restarts from the remaining Sobol points (then from the best point) after the starts ended early."""

    constraints: bool = True
    """When the problem reports its constraints (``tell(c=...)``), model the objective and each constraint
    separately: trial steps from a trust-region model problem on their estimated gradients, moves by
    ``acceptance``. False: the scalar FoM only, constraints or not (the method before; ablation ``scalar``).
    Without constraints the method is the same either way."""

    acceptance: Rule = Rule.FILTER
    """How the constraint-aware iterate moves: ``filter`` over (objective, violation) or ``penalty`` (exact
    penalty, adaptive weight); see ``zoaf.zo.acceptance``."""

    boundary_fraction: float = 0.5
    """A model step goes at most this fraction of the way to each modelled constraint's boundary (and aims the
    same fraction past it when violated): an active boundary is approached geometrically from the feasible side
    instead of straddled, where the FoM's cliff makes a point 1e-9 past it worthless. Halving the slack per
    step leaves room for the error of estimated curved constraints (synthetic 22-D benchmark, 20 seeds, B=1000:
    median / worst FoM 6.5e-5 / 2.2e-4 at 0.5, 4.6e-4 / 1.0e-2 at 0.9; 0.3 ties 0.5 at B=300)."""

    near_active: float = 2.0
    """A constraint enters the model problem when its linearization could reach its target within this many
    step lengths: the others cannot bind, and their gradient estimates stay out of the solve."""

    restoration: bool = True
    """From an infeasible iterate, first find the least linearized l1 violation within the box and radius
    (an LP), then descend the objective without giving it back. Off (ablation): violated constraints are
    dropped from the model problem and only the acceptance rule pulls towards feasibility."""

    min_extension: float = 0.1
    """The extended trial (``grow`` times the model step, cut back to the modelled constraints) is simulated
    only when it reaches beyond the step by more than this share of the step's length. Near an active
    boundary the cut leaves it (nearly) the step itself on most steps (traced on the amplifier: the two trials
    of most steps differed in the fourth digit), a second simulation of the same design. 0: always simulated
    (the former behaviour, ablation ``duplicate-trials``). BENCHMARKS.md section 4 ("More progress per
    simulation"): no significant loss on the 9 circuit objectives, better medians on 7 (the LNA's ``nf``
    significantly), slightly worse on the bandgap's ``tc`` and the synthetic problem at B=1000."""

    integer_cells: bool = False
    """A coordinate-phase probe along a direction that mostly follows an integer axis moves that integer by at
    least one cell, however short the direction's step has become: a shorter move rounds back onto the iterate
    (a cached, wasted probe), so an integer whose cell is longer than twice the steps is never probed again.
    Off (with ``integer_repair``: ablation ``cells-repair``): BENCHMARKS.md section 4 ("Integer steps"), worse in
    median on 12 of 17 objectives with integer axes, significantly on the push-pull stage (299 vs 232 µA)."""

    integer_repair: bool = False
    """A trial or probe that moves an integer coordinate by a cell (a finger count: often a large share of the
    box) also moves the continuous coordinates least, within its own length, so that no modelled constraint it
    would break is broken (``model_step.repair``): an integer step whose effect a width or ratio must offset
    (the first stage of a buffer, two fingers within an input-width bound) is then tried inside the bound.
    Off (ablation ``repair``): BENCHMARKS.md section 4 ("Integer steps"), no significant difference on 17
    objectives with integer axes (the LNA's gain p = 0.064 better, the amplifier's follower p = 0.089 worse),
    and the inverter chain keeps its one-finger first stage."""

    constraint_curvature: bool = True
    """Keep each constraint's fitted isotropic curvature in the model problem (a curved boundary is met
    closer to where it is); off: linearized constraints only."""

    anisotropic_curvature: bool = False
    """Fit each constraint's curvature along its own gradient and across it (the first-pass fit's residual over
    the start's whole memory, on two curvature features) instead of one isotropic scalar, and solve the model
    problem with those Hessians (SLSQP in the step's d coordinates). Meant for a constraint that bends steeply
    towards its bound and is nearly flat along it (the amplifier's power: median 19.5 along, 0.2 across).
    Off (ablation ``anisotropic`` turns it on): BENCHMARKS.md section 4 ("Anisotropic constraint curvature"),
    no significant difference on 9 circuit objectives (smallest p 0.13, `ugbw` better), medians worse on the
    amplifier's `fom` (59 vs 66 MHz) and the LNA's `area` (FoM 1.15 vs 1.02); the COBYQA gap stays."""

    exact_step: bool = True
    """Constraint-aware steps: solve the model problem itself, min g0.s + k0/2 |s|^2 over the modelled
    constraints, the box and the radius (SLSQP), instead of projecting the objective model's minimizer onto them.
    Where the fitted curvature k0 is below |g0| / (``model_step.FAR`` L) that minimizer is placed FAR radii away,
    which amounts to a curvature of |g0| / (FAR L): along an active constraint whose normal takes most of g0 the
    projection then moves only FAR times the tangential share of g0 radii, the radius follows the step, and it
    falls geometrically (traced on the Sallen-Key filter: steps of 0.3 L, L 0.029 -> 1e-4 in 46 simulations,
    where the model problem's own step is L). On by default (the projection: ablation ``projected-step``):
    BENCHMARKS.md section 4 ("The model step along an active constraint", and "...: the rest of the suite"):
    over 28 circuit objectives better medians on 18, worse on 7, none significantly (smallest p 0.54),
    significantly better on 4 (the Sallen-Key filter, the fully-differential OTA, the push-pull stage, the CS
    amplifier); 9x better on the 22-D synthetic problem at B = 1000."""

    probe_cap: float = 0.0
    """Constraint-aware coordinate phase: probe at most this many trust radii max(alpha, h) away (0: off). Far
    probes across a narrow feasible band give the constraints' fits points where they are far from linear. Off
    (ablation ``probe-cap``: 1): BENCHMARKS.md section 4 ("Probes within the trust radius")."""

    least_change: bool = False
    """Model the objective and each constraint by a quadratic that interpolates the neighbourhood's points, its full
    Hessian changed least (Frobenius norm) from the start's previous one (Powell's update, as COBYQA's models:
    curvature learnt earlier is kept), and solve the model problem with those Hessians (SLSQP). Meant for the
    amplifier's power bound, whose isotropic fit under-predicts the rise towards it 1.2-18x. Off (ablation
    ``least-change``; with ``ratio_radius``: ``least-change-ratio``): BENCHMARKS.md section 4 ("Least-change
    quadratic models"): with ``ratio_radius``, significantly better on the amplifier's `ugbw` (445 vs 274 MHz, p =
    0.013) and the LNA's `area` (p = 0.039), better medians on `fom` and `follower`, but worse medians on the LNA's
    `gain` (21.1 vs 21.6 dB, p = 0.072), the amplifier's `gain` (78.8 vs 79.4 dB), the bandgap's `power` (26 vs 15
    uW) and the 22-D synthetic problem (35x; alone, 3x): 2d points determine a d = 22 Hessian poorly. COBYQA's `fom`
    (188 MHz) stays out of reach (82)."""

    ratio_radius: bool = False
    """Constraint-aware steps: the trust radius follows the trials' ratio of actual to predicted reduction of
    the merit o + mu v (``schedule.ratio_alpha``, Powell's rule) instead of whether the filter accepted them.
    Off (ablation ``ratio``): alone no change on the amplifier (`fom` 57 vs 58 MHz, 10 seeds) and 13x worse on
    the synthetic problem; it adds to ``least_change`` on the amplifier (see there)."""

    axis_start: str = "off"
    """A start's first batch is COBYQA's initial set around its point, x +- h along each axis (h its first probe
    distance, ``h_max`` for a fresh start; integers by whole cells): the iterate moves to the set's best point
    under the acceptance rule, its first models are fitted from the whole set and its step becomes h (trials at
    ``alpha0`` left the basin the set found on the band-pass), so every axis is measured from
    the same centre before any move (the coordinate phase moves after each block of ``q``, and the random phase
    moves every coordinate at once). The halving rung and the monitor's window count from the end of the set.
    ``first``: the run's first start only (x0's, the designer's point); ``every``: every start but a polish or a
    restart from the best point. Off (ablations ``axis-start``, ``axis-start-every``): BENCHMARKS.md section 4
    ("Axis probes from the start"): the band-pass meets its spec in 9 runs of 10 (the default: 1); over 21 suite
    objectives no significant difference, medians better on 8 and worse on 13."""

    local: LocalSolver = LocalSolver.ZOAF
    """Each start's local search: ZOAF's own steps, or ``cobyqa``: a COBYQA run from the start's point (initial
    radius the start's first probe distance, final radius ``h_min``, at most the start's horizon of
    simulations; objective and constraints the measures the constraint-aware step models), under the same
    multi-start, halving and monitor (its stalls end the start; ``zoaf.zo.local``). Off (ablation
    ``local-cobyqa``): BENCHMARKS.md section 4 ("COBYQA as ZOAF's local phase"): significantly better on the
    amplifier's `fom` (116 vs 66 MHz) and `follower` and the LNA's `gain`, significantly worse on the LNA's `nf`
    and `area`, 150x worse on the 22-D synthetic problem; the halving rung ends before COBYQA's 2d + 1 initial
    points (``local_grace`` fixes that) and COBYQA converges onto active constraints from outside
    (``local_margin``)."""

    local_grace: bool = False
    """With ``local="cobyqa"``: judge a start from the end of its solver's initial interpolation set (2d
    simulations after the start's point, ``local.initial_set``): the halving rung is that set plus the usual rung,
    and the monitor's window opens only after it, so the multi-start compares starts after their first model
    steps and never counts the geometry phase as a stall. Off (ablation ``local-cobyqa-grace``): BENCHMARKS.md
    section 4 ("The local phase judged after its initial set"): on the amplifier x0 now wins the rung and `fom`,
    `ugbw`, `gain` and `peaking` become significantly better than the default's, but the LNA's `nf` and `area`
    stay significantly worse (COBYQA's integer axes freeze there) and the synthetic problem 5x worse."""

    local_margin: float = 0.0
    """With ``local="cobyqa"``: COBYQA is told each normalized constraint as c + local_margin <= 0. From an
    infeasible start COBYQA converges onto the active constraints from outside (traced on the 22-D synthetic
    problem: 159 simulations, every one infeasible, the last 4e-7 past a bound), where the FoM's cliff makes
    such a point worth 100. 1e-3 (ablation ``local-cobyqa-grace-m3``): every synthetic run feasible, at the
    margin's cost (1.4e-3 on every seed against the default's median 8.3e-4, worst 3.0e-3). 1e-4 is too small:
    x0's run can still be infeasible at the end of its rung (seed 2, traced), so a Sobol start wins; 4 of 10
    seeds ended at 0.03-0.13. With ``local_grace`` (``local-cobyqa-grace-m3``): better than the default on all
    five amplifier objectives (significantly; 20 seeds) and the bandgap's two (10 seeds), worse on the LNA's `nf`
    (significantly) and `area` and the synthetic median (1.4e-3 vs 8.3e-4)."""

    local_handover: bool = False
    """With ``local="cobyqa"``: when a start's COBYQA run stalls (the monitor's first stall) or converges, the
    start goes on with ZOAF's own steps from its best point (step ``alpha0 / 4``, as a polish restart; its memory
    and measures are COBYQA's points) instead of ending. COBYQA's trust radius shrinks below an integer axis's
    cell and freezes it (the LNA's finger count and turns, traced); ZOAF's steps move an integer axis by at
    least a cell. Off (ablation ``local-cobyqa-grace-m3-handover``): BENCHMARKS.md section 4 ("ZOAF's steps
    after COBYQA's"): it wins back the LNA's `area` and part of its `nf`, but after a first stall COBYQA still
    makes most of its progress on the amplifier (`fom` 71 vs 118 MHz without it) and the LNA's `gain`."""

    penalty0: float = 1.0
    """Initial penalty weight (objective and normalized violations are both O(1) on the FoM's scales)."""

    penalty_factor: float = 2.0
    """The penalty weight is kept at least this multiple of the largest Lagrange multiplier estimate: above 1,
    the exact penalty's minimizer is the constrained optimum, with room for estimation error."""

    filter_ceiling: float = 1e-3
    """The filter accepts no point whose total normalized violation exceeds both this and the iterate's: from a
    feasible iterate it may cross an active boundary by a hair (0.1% of a spec) where that buys objective, but
    not wander outside on the strength of a lower objective alone (with a ceiling of 1, measured: iterates
    left the feasible region for probes 7% outside)."""

    filter_envelope: float = 1e-5
    """A point must beat a filter pair by this share of the pair's violation: no acceptance of negligible
    gains (Fletcher and Leyffer's envelope)."""

    def __post_init__(self) -> None:
        self._check_types()

        def bad(name: str, rule: str) -> InputError:
            return InputError(f"ZOAF option {name}={getattr(self, name)!r}: {rule}")
        if self.mode not in MODES:
            raise bad("mode", f"must be one of {', '.join(MODES)}")
        if self.estimator not in ESTIMATORS:
            raise bad("estimator", f"must be one of {', '.join(ESTIMATORS)}")
        if self.values not in VALUES:
            raise bad("values", f"must be one of {', '.join(VALUES)}")
        if self.polish not in POLISH:
            raise bad("polish", f"must be one of {', '.join(POLISH)}")
        if self.axis_start not in AXIS_STARTS:
            raise bad("axis_start", f"must be one of {', '.join(AXIS_STARTS)}")
        if self.directions not in DIRECTIONS:
            raise bad("directions", f"must be one of {', '.join(DIRECTIONS)}")
        if self.n_init is not None and self.n_init < 0:
            raise bad("n_init", "must be >= 0 or None")
        for name in ("n_starts", "q", "max_stalls"):
            if getattr(self, name) < 1:
                raise bad(name, "must be >= 1")
        for name in ("alpha0", "alpha_min", "h_min", "h_max", "h_ratio", "grow", "rel_tol", "step_max"):
            if not (getattr(self, name) > 0 and math.isfinite(getattr(self, name))):
                raise bad(name, "must be a positive finite number")
        if not 0 < self.shrink < 1:
            raise bad("shrink", "must lie in (0, 1)")
        for name in ("rung_fraction", "switch_min_used", "switch_force", "basis_prior"):
            if not 0 <= getattr(self, name) <= 1:
                raise bad(name, "must lie in [0, 1]")
        if not 0 <= self.boundary_fraction < 1:
            raise bad("boundary_fraction", "must lie in [0, 1)")
        for name in ("near_active", "penalty0", "penalty_factor", "filter_ceiling"):
            if not (getattr(self, name) > 0 and math.isfinite(getattr(self, name))):
                raise bad(name, "must be a positive finite number")
        for name in ("min_extension", "probe_cap"):
            if not (getattr(self, name) >= 0 and math.isfinite(getattr(self, name))):
                raise bad(name, "must be a finite number >= 0")
        if not 0 <= self.filter_envelope < 1:
            raise bad("filter_envelope", "must lie in [0, 1)")
        if not (self.local_margin >= 0 and math.isfinite(self.local_margin)):
            raise bad("local_margin", "must be a finite number >= 0")
        if self.h_min > self.h_max:
            raise bad("h_min", f"must be <= h_max={self.h_max}")

    def _check_types(self) -> None:
        """A number or flag of the wrong type is one line naming the option (``q="a"`` was a comparison error)."""
        for f in fields(self):
            object.__setattr__(self, f.name, typed_option(f, getattr(self, f.name), "ZOAF option"))

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> "ZOAFConfig":
        """Build from keyword options; an unknown name is an ``InputError`` listing the valid ones."""
        return cls(**checked_options(cls, options, "ZOAF option"))

    def resolved_n_init(self, dim: int, budget: int) -> int:
        if self.n_init is not None:
            return min(self.n_init, max(budget - 1, 0))
        return int(max(0, min(2 * dim, int(0.15 * budget))))

    def opens_with_axes(self, first: bool, fresh: bool) -> bool:
        """Whether a start opens with its axis set (``first``: the run's first start; ``fresh``: not a polish or a
        restart from the best point); never for a COBYQA local phase, whose own initial set is the same."""
        mode = self.axis_start
        return self.local is LocalSolver.ZOAF and fresh and (mode == "every" or (mode == "first" and first))

    def resolved_memory(self, dim: int) -> int:
        return self.memory if self.memory is not None else 2 * dim

    def resolved_window(self, dim: int) -> int:
        return self.window if self.window is not None else max(dim, 16)

    def step_options(self) -> StepOptions:
        return StepOptions(boundary_fraction=self.boundary_fraction, near_active=self.near_active,
                           curvature=self.curvature, constraint_curvature=self.constraint_curvature,
                           restoration=self.restoration, min_extension=self.min_extension,
                           anisotropic_curvature=self.anisotropic_curvature, exact_step=self.exact_step)

"""Named ablations of ZOAF: each a set of :class:`~zoaf.zo.config.ZOAFConfig` overrides, shared by the
benchmarks (``benchmarks/ablation.py``, ``benchmarks/zo_synthetic.py``) and the presets (``zoaf.zo.presets``), so
that a variant is a name, never a copy of code. A component earns its place when removing it loses on the same
budget and seeds (BENCHMARKS.md section 4).
"""
from __future__ import annotations

from typing import Any

__all__ = ["ABLATIONS"]

ABLATIONS: dict[str, dict[str, Any]] = {
    "zoaf": {},
    "random-only": {"mode": "random"},
    "coordinate-only": {"mode": "coordinate"},
    "no-multistart": {"n_starts": 1, "n_init": 0},
    "late": {"n_starts": 1, "late_init": True},
    "no-centre": {"centre_start": False},
    "no-monitor": {"monitor": False},
    "monitor-violation": {"monitor_violation": True},
    "no-reuse": {"estimator": "classic"},
    "one-start": {"n_starts": 1},
    "no-curvature": {"curvature": False},
    "raw-values": {"values": "raw"},
    "rank-values": {"values": "rank"},
    "small-steps": {"alpha0": 0.1, "h_max": 0.1},
    "axes": {"basis_prior": 1.0},
    "late-switch": {"switch_min_used": 0.5, "switch_force": 0.8},
    # step rate: more model steps per simulation (BENCHMARKS.md section 4, "More progress per simulation")
    "duplicate-trials": {"min_extension": 0.0},
    "q2": {"q": 2},
    "q1": {"q": 1},
    "q6": {"q": 6},
    "small-rung": {"rung_fraction": 0.05},
    "slow-shrink": {"shrink": 0.7},
    "grow3": {"grow": 3.0},
    "boundary-0.8": {"boundary_fraction": 0.8},
    "boundary-0.3": {"boundary_fraction": 0.3},
    "fine-probes": {"h_ratio": 0.25},
    "patient": {"rel_tol": 1e-4},
    "floor": {"alpha_min": 1e-3},
    "weighting": {"weighting": True},
    # constraint-aware step (constrained problems only; the same method as ``zoaf`` without constraints)
    "scalar": {"constraints": False},
    "penalty": {"acceptance": "penalty"},
    "no-restoration": {"restoration": False},
    "no-constraint-curvature": {"constraint_curvature": False},
    "anisotropic": {"anisotropic_curvature": True},
    # COBYQA-like models and radius rule (BENCHMARKS.md section 4, "Least-change quadratic models")
    "least-change": {"least_change": True},
    "least-change-q2": {"least_change": True, "q": 2},
    "least-change-nms": {"least_change": True, "n_starts": 1, "n_init": 0},
    "ratio": {"ratio_radius": True},
    "least-change-ratio": {"least_change": True, "ratio_radius": True},
    "least-change-ratio-nms": {"least_change": True, "ratio_radius": True, "n_starts": 1, "n_init": 0},
    "lcr-random": {"least_change": True, "ratio_radius": True, "mode": "random"},
    "lcr-bf0.8": {"least_change": True, "ratio_radius": True, "boundary_fraction": 0.8},
    "lcr-q2": {"least_change": True, "ratio_radius": True, "q": 2},
    "least-change-memory4d": {"least_change": True, "memory": 88},
    # COBYQA as the local phase (BENCHMARKS.md section 4, "COBYQA as ZOAF's local phase")
    "local-cobyqa": {"local": "cobyqa"},
    "local-cobyqa-grace": {"local": "cobyqa", "local_grace": True},
    "local-cobyqa-m4": {"local": "cobyqa", "local_margin": 1e-4},
    "local-cobyqa-m3": {"local": "cobyqa", "local_margin": 1e-3},
    "local-cobyqa-grace-m4": {"local": "cobyqa", "local_grace": True, "local_margin": 1e-4},
    "local-cobyqa-grace-m3": {"local": "cobyqa", "local_grace": True, "local_margin": 1e-3},
    "local-cobyqa-grace-m3-handover": {"local": "cobyqa", "local_grace": True, "local_margin": 1e-3,
                                       "local_handover": True},
    # what the multi-start costs the COBYQA local phase (section 4, "What the multi-start costs zoaf-cobyqa")
    "local-cobyqa-grace-m3-one": {"local": "cobyqa", "local_grace": True, "local_margin": 1e-3, "n_starts": 1},
    "local-cobyqa-grace-m3-nms": {"local": "cobyqa", "local_grace": True, "local_margin": 1e-3, "n_starts": 1,
                                  "n_init": 0},
    "local-cobyqa-grace-m3-late": {"local": "cobyqa", "local_grace": True, "local_margin": 1e-3, "n_starts": 1,
                                   "late_init": True},
    "local-cobyqa-grace-m3-late-polish": {"local": "cobyqa", "local_grace": True, "local_margin": 1e-3,
                                          "n_starts": 1, "late_init": True, "polish": "first"},
    "local-cobyqa-grace-m3-late-polish-after": {"local": "cobyqa", "local_grace": True, "local_margin": 1e-3,
                                                "n_starts": 1, "late_init": True, "polish": "after-batch"},
    "late-polish": {"n_starts": 1, "late_init": True, "polish": "first"},
    "no-polish": {"polish": "off"},
    "log-violation": {"log_violation": True},
    "repair": {"integer_repair": True},
    "cells-repair": {"integer_cells": True, "integer_repair": True},
    "exact-step": {"exact_step": True},      # the default since it was measured (the name its runs have)
    "projected-step": {"exact_step": False},
    "probe-cap": {"probe_cap": 1.0},     # coordinate probes within the trust radius (constraint-aware)
    "axis-start": {"axis_start": "first"},     # COBYQA's initial set around x0 first (section 4, "Axis probes")
    "axis-start-every": {"axis_start": "every"},
}

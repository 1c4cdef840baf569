"""The sliding-window monitor and its decisions, on constructed traces."""
from dataclasses import replace

import numpy as np
import pytest

from zoaf.zo.config import ZOAFConfig
from zoaf.zo.monitor import Action, Phase, StartView, WindowMonitor, decide

CONFIG = ZOAFConfig(switch_min_used=0.5, switch_force=0.8, min_sweeps=1.0, max_stalls=3)


def test_window_stall_fires_only_on_flat_full_window():
    m = WindowMonitor(window=10, rel_tol=1e-3)
    for v in np.geomspace(100, 1, 10):
        m.push(v)
    assert not m.full and not m.stalled()             # not judged before the window is full
    m.push(0.9)
    assert m.full and not m.stalled()                 # steady improvement
    m.reset()
    m.push(5.0, n=11)                                  # batch of 11 simulations, no progress
    assert m.stalled()
    m.reset()
    for v in [5.0] * 5 + [4.9999] * 6:                 # 2e-5 relative: below 1e-3
        m.push(v)
    assert m.stalled()


def test_window_handles_infinite_values():
    m = WindowMonitor(window=3, rel_tol=1e-3)
    m.push(np.inf, n=4)
    assert m.stalled()                                 # nothing ever succeeded: a stall
    m.reset()
    m.push(np.inf, 2)
    m.push(1.0, 2)
    assert not m.stalled()                             # became finite: progress


def _decide(stalled, phase, config=CONFIG, *, used_fraction, remaining, sweep_cost=22, stalls=0):
    return decide(stalled, StartView(Phase(phase), used_fraction, remaining, sweep_cost, stalls), config)


def test_switch_waits_for_budget_share_and_sweep_cost():
    assert _decide(True, "random", used_fraction=0.2, remaining=300) is Action.SHRINK
    assert _decide(True, "random", used_fraction=0.6, remaining=150) is Action.SWITCH
    assert _decide(True, "random", used_fraction=0.6, remaining=10) is Action.SHRINK   # no sweep fits
    assert _decide(False, "random", used_fraction=0.85, remaining=60) is Action.SWITCH  # forced, late
    assert _decide(False, "random", used_fraction=0.6, remaining=150) is Action.NONE


def test_stalls_in_coordinate_mode_early_stop():
    common = dict(used_fraction=0.9, remaining=100)
    assert _decide(True, "coordinate", stalls=0, **common) is Action.SHRINK
    assert _decide(True, "coordinate", stalls=1, **common) is Action.SHRINK
    assert _decide(True, "coordinate", stalls=2, **common) is Action.STOP
    # random-only mode stops after the same number of stalls (nothing to switch to)
    assert _decide(True, "random", replace(CONFIG, mode="random"), stalls=2, **common) is Action.STOP


def test_monitor_off_is_a_fixed_schedule():
    config = replace(CONFIG, monitor=False)
    common = dict(remaining=200, stalls=5)
    assert _decide(True, "random", config, used_fraction=0.5, **common) is Action.NONE
    assert _decide(True, "coordinate", config, used_fraction=0.9, **common) is Action.NONE
    assert _decide(False, "random", config, used_fraction=0.8, **common) is Action.SWITCH


def test_with_the_infeasible_offset_a_shrinking_violation_is_progress():
    """An infeasible start's FoM is 100 + violation: halving a 0.1 violation is 0.05% of the FoM, a stall when
    judged on the FoM, 50% of the violation when judged on it (``monitor_violation``); reaching feasibility is
    always progress, and a flat violation still stalls."""
    trace = [100.1, 100.09, 100.08, 100.065, 100.05]
    plain, offset = WindowMonitor(4, 1e-3), WindowMonitor(4, 1e-3, offset=100.0)
    for v in trace:
        plain.push(v)
        offset.push(v)
    assert plain.stalled() and not offset.stalled()
    assert offset.improvement() == pytest.approx(0.5)
    offset.push(3.0)
    assert offset.improvement() == np.inf
    flat = WindowMonitor(4, 1e-3, offset=100.0)
    for _ in range(5):
        flat.push(100.2)
    assert flat.stalled()

"""The sliding-window monitor and its decisions, on constructed traces."""
import numpy as np

from zoaf.zo.monitor import Action, WindowMonitor, decide

KW = dict(switch_min_used=0.5, switch_force=0.8, min_sweeps=1.0, max_stalls=3)


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


def test_switch_waits_for_budget_share_and_sweep_cost():
    common = dict(hybrid=True, sweep_cost=22, stalls=0, **KW)
    assert decide(True, "random", used_fraction=0.2, remaining=300, **common) is Action.SHRINK
    assert decide(True, "random", used_fraction=0.6, remaining=150, **common) is Action.SWITCH
    assert decide(True, "random", used_fraction=0.6, remaining=10, **common) is Action.SHRINK   # no sweep fits
    assert decide(False, "random", used_fraction=0.85, remaining=60, **common) is Action.SWITCH  # forced, late
    assert decide(False, "random", used_fraction=0.6, remaining=150, **common) is Action.NONE


def test_stalls_in_coordinate_mode_early_stop():
    common = dict(hybrid=True, used_fraction=0.9, remaining=100, sweep_cost=22, **KW)
    assert decide(True, "coordinate", stalls=0, **common) is Action.SHRINK
    assert decide(True, "coordinate", stalls=1, **common) is Action.SHRINK
    assert decide(True, "coordinate", stalls=2, **common) is Action.STOP
    # random-only mode stops after the same number of stalls (nothing to switch to)
    assert decide(True, "random", stalls=2, **{**common, "hybrid": False}) is Action.STOP


def test_monitor_off_is_a_fixed_schedule():
    common = dict(hybrid=True, remaining=200, sweep_cost=22, stalls=5, monitor=False, **KW)
    assert decide(True, "random", used_fraction=0.5, **common) is Action.NONE
    assert decide(True, "coordinate", used_fraction=0.9, **common) is Action.NONE
    assert decide(False, "random", used_fraction=0.8, **common) is Action.SWITCH

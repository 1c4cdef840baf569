"""Size the two-stage amplifier for a custom figure of merit written in Python.

Maximize the unity-gain bandwidth per watt, subject to DC gain and phase margin:
the FoM is a function of the measures dict; constraints rank infeasible designs behind every feasible one.

    python examples/custom_fom.py [BUDGET]
"""
import sys
from pathlib import Path

import zoaf
from zoaf.circuit import CircuitProblem

NETLIST = Path(__file__).resolve().parent.parent / "netlists" / "two_stage_amp.cir"


def main(budget: int = 120, seed: int = 0) -> zoaf.Result:
    problem = CircuitProblem.from_netlist(
        NETLIST,
        fom=lambda m: -m["ugbw_hz"] / m["power_w"],          # Hz per watt, maximized
        constraints=["gain_db >= 60", "pm_deg >= 60"],
    )
    result = zoaf.optimize(problem, budget=budget, seed=seed)
    print(result)
    print(f"UGBW {result.measures['ugbw_hz'] / 1e6:.2f} MHz at {result.measures['power_w'] * 1e3:.3f} mW, "
          f"gain {result.measures['gain_db']:.1f} dB, PM {result.measures['pm_deg']:.1f} deg, "
          f"feasible: {result.feasible}")
    return result


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 120)

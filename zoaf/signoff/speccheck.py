"""``zoaf check``'s look at the sign-off tables: the spec's ``[corners]`` and ``[montecarlo]`` against the netlist,
refused as ``zoaf optimize``, ``zoaf corners`` and ``zoaf yield`` refuse them, without simulating a corner or a
sample (``check`` said nothing of a corner that overrides an unknown ``.param``, and the run refused it later)."""
from __future__ import annotations

from pathlib import Path

from ..circuit import CircuitProblem
from .cornerrun import _refuse_own_temperature, corner_overrides
from .yieldrun import check_montecarlo


def check_signoff(problem: CircuitProblem) -> None:
    """InputError naming the spec key of the first corner or Monte Carlo name the netlist cannot take."""
    spec = problem.spec
    if spec.corners is not None:
        with_temp = any(c.temp is not None for c in spec.corners.corners)
        if with_temp:
            path = Path(problem.netlist.path)
            _refuse_own_temperature(path.read_bytes().decode(problem.netlist.encoding), path)
        for c in spec.corners.corners:
            corner_overrides(problem, c, spec.pdk is not None, with_temp, f"{spec.path or 'spec'}: corners.{c.name}")
    if spec.montecarlo is not None:
        check_montecarlo(problem)

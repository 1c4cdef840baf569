"""The sign-off tables checked before anything is simulated (``zoaf check``, ``zoaf optimize``, ``zoaf compare``):
the spec's ``[corners]`` and ``[montecarlo]`` against the netlist, refused as ``zoaf corners`` and ``zoaf yield``
refuse them, without simulating a corner or a sample (``check`` said nothing of a corner that overrides an unknown
``.param``; a run judged only its objective's corners, and the spec's error surfaced at sign-off, after it)."""
from __future__ import annotations

from pathlib import Path

from ..circuit import CircuitProblem
from .cornerrun import corner_overrides, refuse_own_temperature
from .yieldrun import check_montecarlo


def check_signoff(problem: CircuitProblem) -> None:
    """InputError naming the spec key of the first corner or Monte Carlo name the netlist cannot take."""
    spec = problem.spec
    if spec.corners is not None:
        with_temp = any(c.temp is not None for c in spec.corners.corners)
        if with_temp:
            path = Path(problem.netlist.path)
            refuse_own_temperature(path.read_bytes().decode(problem.netlist.encoding), path)
        for c in spec.corners.corners:
            corner_overrides(problem, c, spec.pdk is not None, with_temp, f"{spec.path or 'spec'}: corners.{c.name}")
    if spec.montecarlo is not None:
        check_montecarlo(problem)

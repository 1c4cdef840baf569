"""The load grace (``zoaf.workers.LOAD_GRACE``) with a real PDK, in the local pool and on Dask alike: a worker's
first simulation of a sky130 process corner loads the PDK library (seconds), longer than the simulation limit
here; it is granted the grace apart from the simulation's limit, and so is a switch to another process corner in the
same worker."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from ngspice_marks import needs_ngspice

from zoaf.circuit import CircuitProblem
from zoaf.evaluate import Evaluator
from zoaf.problem import Status
from zoaf.signoff.cornerrun import CornerProblem

NET = Path(__file__).parent.parent / "netlists" / "sky130" / "two_stage_amp.cir"
LIMIT = 2.0                         # a simulation takes ~0.1 s (a re-parse under heavy load ~1 s), loading the PDK ~5 s


@needs_ngspice
def test_a_pdk_load_longer_than_the_timeout_gets_the_grace_in_both_pools() -> None:
    pytest.importorskip("distributed")
    results = {}
    for dask in (None, "local"):
        corner = CornerProblem.wrap(CircuitProblem(NET, objective="ugbw_pvt"), prune=False)
        sims = corner.sims                              # a simulation per (sizing, corner); affinity: the process
        assert [sims.affinity(np.array([k])) for k in (0, 1)] == ["tt", "ss"]
        d = corner.dim
        u = np.array([[*np.full(d, 0.5), 0], [*np.full(d, 0.45), 0], [*np.full(d, 0.5), 1], [*np.full(d, 0.45), 1]])
        with Evaluator(sims, workers=1, dask=dask, timeout=LIMIT) as ev:   # one worker: tt, tt, then ss, ss
            res = ev.evaluate(u)
            stats = ev.stats
        corner.close()
        assert [r.status for r in res] == [Status.OK] * 4, [(r.outcome.error, r.outcome.seconds) for r in res]
        assert stats["timeouts"] == 0
        assert all(r.outcome.seconds < LIMIT for r in res)   # each load timed apart, not in its simulation's time
        results[dask] = [(r.outcome.fom, r.outcome.measures) for r in res]
    assert results["local"] == results[None]

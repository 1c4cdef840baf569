"""Fault injection for tests: a picklable ``Problem`` wrapper that fails, hangs or kills its worker.

Which fault a point gets depends only on the point (a hash of its physical values and ``salt``), never on
timing or on which worker runs it, so a run with faults is as reproducible as one without. The fractions
split [0, 1): a point whose hash falls in the first ``fail`` part fails, the next ``hang`` part sleeps for
``hang_seconds`` (past the evaluator's timeout), the next ``kill`` part SIGKILLs its own process, the next
``poison`` part fails and asks for a new process (``needs_new_process``). Others run the wrapped problem.

A kill happens only on a point's first attempt (a marker file per point in ``marker_dir``), so the retry
succeeds; ``kill_always=True`` kills on every attempt, so the point ends ``crashed``. The wrapper never kills
the process that created it (``workers=0``): there the point fails instead.

Example:
    >>> from zoaf.function import FunctionProblem
    >>> inner = FunctionProblem.from_bounds(lambda x: float(x.sum()), [(0, 1)] * 3)
    >>> faulty = FaultyProblem(inner, fail=0.1, hang=0.01, kill=0.01)
    >>> faulty.fault_of(np.array([0.1, 0.2, 0.3])) in (None, "fail", "hang", "kill")
    True
"""
from __future__ import annotations

import hashlib
import os
import signal
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InputError
from .problem import Outcome, Problem, Status

FAULTS = ("fail", "hang", "kill", "poison")


class FaultyProblem(Problem):
    """Wraps ``inner``; fractions in [0, 1] of points that ``fail``, ``hang``, ``kill`` or ``poison``."""

    def __init__(self, inner: Problem, *, fail: float = 0.0, hang: float = 0.0, kill: float = 0.0,
                 poison: float = 0.0, hang_seconds: float = 3600.0, kill_always: bool = False,
                 marker_dir: str | os.PathLike | None = None, salt: int = 0) -> None:
        super().__init__(inner.parameters)
        fractions = {"fail": fail, "hang": hang, "kill": kill, "poison": poison}
        if any(not 0.0 <= v <= 1.0 for v in fractions.values()) or sum(fractions.values()) > 1.0:
            raise InputError(f"fault fractions must lie in [0, 1] and sum to <= 1, got {fractions}")
        self.inner = inner
        self.name = f"faulty-{inner.name}"
        self.fractions = fractions
        self.hang_seconds = float(hang_seconds)
        self.kill_always = bool(kill_always)
        self.marker_dir = str(marker_dir if marker_dir is not None else tempfile.mkdtemp(prefix="zoaf-faults-"))
        self.salt = int(salt)
        self.needs_new_process = False
        self._parent_pid = os.getpid()

    def _digest(self, x: np.ndarray) -> bytes:
        data = np.ascontiguousarray(np.asarray(x, dtype=np.float64)).tobytes()
        return hashlib.sha256(self.salt.to_bytes(8, "little", signed=True) + data).digest()

    def fault_of(self, x: np.ndarray) -> str | None:
        """The fault physical point ``x`` gets (``None``: it runs normally); the same in every process."""
        h = int.from_bytes(self._digest(x)[:8], "little") / 2.0**64
        edge = 0.0
        for name in FAULTS:
            edge += self.fractions[name]
            if h < edge:
                return name
        return None

    def simulate(self, x: np.ndarray) -> Outcome:
        fault = self.fault_of(x)
        if fault == "fail":
            return Outcome(Status.FAILED, error="injected failure")
        if fault == "poison":
            self.needs_new_process = True
            return Outcome(Status.FAILED, error="injected failure that needs a new process")
        if fault == "hang":
            time.sleep(self.hang_seconds)
            return Outcome(Status.FAILED, error=f"injected hang of {self.hang_seconds:g} s ended")
        if fault == "kill":
            if os.getpid() == self._parent_pid:
                return Outcome(Status.FAILED, error="injected kill suppressed in the creating process")
            marker = Path(self.marker_dir) / self._digest(x).hex()
            if self.kill_always or not marker.exists():
                marker.touch()
                os.kill(os.getpid(), signal.SIGKILL)
        return self.inner.simulate(x)

    def metadata(self) -> dict[str, Any]:
        return {**self.inner.metadata(), "faults": self.fractions, "salt": self.salt}

    def close(self) -> None:
        self.inner.close()

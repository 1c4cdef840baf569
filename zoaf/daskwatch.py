"""The Dask client's own deadline: a worker that the scheduler no longer hears from, given up and killed.

A Dask worker keeps a simulation's timeout in its own process (:mod:`zoaf.daskworker`), which cannot keep it when the
whole process stops: native code holding the GIL, a stopped process (SIGSTOP). Its event loop falls silent then too:
it sends the scheduler a heartbeat about every half second while it simulates or loads a deck (ngspice's calls
release the GIL). So the client, while no reply comes, looks at which worker runs its tasks and when the scheduler
last heard from each (:class:`Silences`), gives up one silent for the timeout and :data:`SILENCE_MARGIN` by its own
clock (no clock of another machine compared), and has its nanny kill it (:func:`kill`); :mod:`zoaf.daskpool` reads
its tasks as a dead worker's. Imported by :mod:`zoaf.daskpool` only when a pool is made.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Collection, Iterable

from . import proctree

log = logging.getLogger(__name__)

#: Seconds beyond a simulation's timeout that the scheduler may not hear from a worker running a task of the pool
#: before the client gives it up as frozen: heartbeats come every ~0.5 s, a loaded machine delays them by seconds.
SILENCE_MARGIN = 5.0
#: Seconds between the client's looks at its workers while no reply comes (two questions to the scheduler each).
SILENCE_POLL = 1.0
#: Seconds :func:`kill` waits for the scheduler to let the killed worker go.
GONE_WAIT = 10.0
#: Seconds the client waits for a worker's restart through the scheduler (:mod:`zoaf.daskpool`) before it has the
#: worker's nanny kill it: a restart first asks the worker to close, which a stopped process never does.
RESTART_WAIT = 20.0


@dataclass(frozen=True)
class Frozen:
    """The reply of a task whose worker fell silent: read as a dead worker's (:mod:`zoaf.daskpool`)."""

    addr: str
    silent: float


@dataclass
class Silences:
    """When the client last saw each worker's heartbeat change: worker address -> (its ``last_seen`` at the
    scheduler, the client's ``time.monotonic()`` when that value was new)."""

    heard: dict[str, tuple[float | None, float]] = field(default_factory=dict)

    def frozen(self, client: Any, flying: Collection[str], timeout: float,
               given_up: Iterable[str]) -> list[tuple[str, Frozen]]:
        """The tasks of ``flying`` (by key) on a worker silent for longer than ``timeout`` + :data:`SILENCE_MARGIN`,
        but those of workers ``given_up`` already."""
        try:
            processing = client.processing()
            workers = client.scheduler_info(n_workers=-1).get("workers", {})
        except Exception as e:                            # pragma: no cover - the scheduler went away
            log.warning("could not ask the Dask scheduler about its workers: %s", e)
            return []
        now, bound, done = time.monotonic(), timeout + SILENCE_MARGIN, set(given_up)
        out = []
        for addr, keys in processing.items():
            seen = workers.get(addr, {}).get("last_seen")
            if addr not in self.heard or seen != self.heard[addr][0]:
                self.heard[addr] = seen, now              # heard of since the last look
            silent = now - self.heard[addr][1]
            mine = [key for key in keys if key in flying]
            if silent > bound and mine and addr not in done:
                log.warning("dask worker %s silent for %.0f s: given up, killed", addr, silent)
                out += [(key, Frozen(addr, silent)) for key in mine]
        return out


def kill(client: Any, addr: str) -> bool:
    """Have the nanny of the worker at ``addr`` SIGKILL it (:func:`kill_worker_process`; a restart through the
    scheduler first asks the worker to close, and waited on a stopped one), then wait until the scheduler has let it
    go: a task sent before went to the dead worker and came back a crash, spending its retry. False where its nanny
    could not be asked."""
    try:
        client.run(kill_worker_process, workers=[addr], nanny=True)
    except Exception as e:                                # pragma: no cover - a worker without nanny, a scheduler gone
        log.warning("could not have the nanny of dask worker %s kill it: %s", addr, e)
        return False
    end = time.monotonic() + GONE_WAIT
    while addr in client.scheduler_info(n_workers=-1).get("workers", {}) and time.monotonic() < end:
        time.sleep(0.05)
    return True


def kill_worker_process(dask_worker: Any) -> int | None:
    """Run on a worker's nanny (``Client.run(nanny=True)``): SIGKILL its worker process and what that started, which a
    frozen process cannot refuse; the nanny then starts a fresh worker. The process id killed, or None."""
    pid = getattr(getattr(getattr(dask_worker, "process", None), "process", None), "pid", None)
    if pid:
        proctree.kill_tree(pid)
    return pid

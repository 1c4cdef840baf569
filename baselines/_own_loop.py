"""Ask/tell for libraries that run their own loop (COBYQA, NOMAD): the loop runs in a helper thread.
(ZOAF's ``local="cobyqa"`` option drives one COBYQA run per start through the same ``Channel``.)

The library's evaluation callback hands its point to ``_ask`` and blocks until ``_tell`` answers, so the two
threads strictly alternate (the run is as deterministic as the library). The budget stays exact: the first
point (the library's start) is asked by the adapter itself, so that the number of constraints is known before
the library is configured, and served to the library from a memo when it asks for it; the library's own
evaluation limit is the budget, so it never asks for more than the run may charge. When the run ends early
(the caller stops, or cache hits left the library short), :meth:`OwnLoop.close` (also called when the
optimizer is garbage-collected) answers the library's pending request with "closed", and the library's
callback ends its loop (COBYQA: an exception; NOMAD: failed evaluations until its limit, at no simulation cost).
"""
from __future__ import annotations

import queue
import threading
import time
import weakref
from typing import Any, Callable

import numpy as np

from zoaf.optim import Optimizer, StopReason

from ._peers import StandIn

#: (objective, constraints or None) for one point, in the library's coordinates, all finite.
Answer = tuple[float, "np.ndarray | None"]
#: The library's evaluation: a point in library coordinates -> its answer, or None once the run is closed.
Evaluate = Callable[[np.ndarray], "Answer | None"]

_DONE, _CLOSED = object(), object()


def point_key(v: np.ndarray) -> bytes:
    """A point's memo key: its coordinates to 12 digits (the library may hand back a copy of the start)."""
    return np.round(np.asarray(v, dtype=float), 12).tobytes()


class LoopClosed(Exception):
    """Raised by a library callback that can end its loop by an exception (COBYQA) once the run is closed."""

#: Seconds to wait for a closed library to leave its loop.
JOIN_TIMEOUT = 30.0


class Channel:
    """The hand-over between the library's thread and ask/tell: one point out, one answer back."""

    def __init__(self) -> None:
        self.points: queue.Queue[Any] = queue.Queue(maxsize=1)
        self.answers: queue.Queue[Any] = queue.Queue(maxsize=1)
        self.closed = threading.Event()
        self.thread: threading.Thread | None = None
        self.error: BaseException | None = None

    def evaluate(self, x: np.ndarray) -> Answer | None:
        """Called in the library's thread: block until the optimizer answers (None: the run is closed)."""
        if self.closed.is_set():
            return None
        self.points.put(np.array(x, dtype=float))
        answer = self.answers.get()
        return None if answer is _CLOSED else answer

    def start(self, loop: Callable[[Evaluate], None], name: str) -> None:
        """Run the library's loop in its helper thread (it blocks at its first evaluation)."""
        self.thread = threading.Thread(target=self.run, args=(loop,), daemon=True, name=name)
        self.thread.start()

    def next_point(self, memo: dict[bytes, Answer], owner: str) -> np.ndarray | None:
        """The library's next request that ``memo`` cannot answer (memo hits are answered here, at no
        simulation cost); None: the library ended its loop (a library error is re-raised, naming ``owner``)."""
        while True:
            p = self.points.get()
            if p is _DONE:
                self.thread.join(JOIN_TIMEOUT)
                if self.error is not None:
                    raise RuntimeError(f"{owner}: the library failed: {self.error!r}") from self.error
                return None
            hit = memo.get(point_key(p))
            if hit is None:
                return p
            self.answers.put(hit)

    def run(self, loop: Callable[[Evaluate], None]) -> None:
        try:
            loop(self.evaluate)
        except BaseException as e:  # noqa: BLE001 - re-raised in the optimizer's thread
            if not self.closed.is_set():
                self.error = e
        finally:
            self.points.put(_DONE)

    def close(self) -> None:
        """Tell a waiting library the run is over and wait for its thread to end (idempotent)."""
        self.closed.set()
        try:
            self.answers.put_nowait(_CLOSED)
        except queue.Full:
            pass
        if self.thread is not None and self.thread is not threading.current_thread():
            deadline = time.monotonic() + JOIN_TIMEOUT
            while self.thread.is_alive() and time.monotonic() < deadline:   # answer its last requests "closed"
                try:
                    if self.points.get(timeout=0.05) is not _DONE:
                        self.answers.put_nowait(_CLOSED)
                except (queue.Empty, queue.Full):
                    pass


class OwnLoop(Optimizer):
    """Base of the adapters: subclasses give the start point and :meth:`_library_loop`; one point per ask."""

    def __init__(self, dim: int, budget: int, seed: int | None = None, *, unit_steps: np.ndarray | None = None,
                 workers: int = 1, x0: np.ndarray | None = None, **options: Any) -> None:
        super().__init__(dim, budget, seed, unit_steps=unit_steps, workers=workers, x0=x0, **options)
        self._chan = Channel()
        weakref.finalize(self, self._chan.close)
        self._levels = self.integer_levels
        self._stand_in = StandIn()
        self._memo: dict[bytes, Answer] = {}
        self._next: np.ndarray | None = None     # library coordinates of the point asked now
        self._phase = "start"

    def _start_point(self) -> np.ndarray:
        """The library's start in its own coordinates (box centre, or ``x0``); subclasses map integer axes."""
        return self.x0 if self.x0 is not None else np.full(self.dim, 0.5)

    def _library_loop(self, start: np.ndarray, nconstraints: int, seed: int) -> Callable[[Evaluate], None]:
        """The library's whole run as a function of the evaluation callback. It must not refer to ``self``
        (the thread would keep the optimizer alive and its finalizer could never close the loop)."""
        raise NotImplementedError

    def _to_box(self, v: np.ndarray) -> np.ndarray:
        return self.from_levels(v)

    def _ask(self) -> np.ndarray:
        if self._next is None:   # nothing asked by the library yet: the start point
            self._next = self._start_point()
        return self._to_box(self._next)[None, :]

    def _tell(self, x: np.ndarray, f: np.ndarray, c: np.ndarray | None, objective: np.ndarray | None) -> None:
        obj = self._stand_in.objective(f if objective is None else objective)
        answer: Answer = (float(obj[0]), None if c is None else self._stand_in.constraints(c[0]))
        if self._chan.thread is None:
            if self.remaining <= 0:   # a one-simulation budget: the library is never started
                return
            self._memo[point_key(self._next)] = answer
            loop = self._library_loop(self._next, 0 if c is None else c.shape[1], int(self.rng.integers(1, 2**31 - 1)))
            self._chan.start(loop, f"zoaf-{self.name}")
        else:
            self._chan.answers.put(answer)
        if self.remaining <= 0:
            self.close()
        else:
            self._await_library()

    def _await_library(self) -> None:
        """Take the library's next request, serving memo hits; the library ending early is convergence."""
        p = self._chan.next_point(self._memo, self.name)
        if p is None:
            self._stop = StopReason.CONVERGED
        else:
            self._next, self._phase = p, self.name

    def close(self) -> None:
        """End the library's thread (idempotent); called when the budget is spent or the optimizer is dropped."""
        self._chan.close()

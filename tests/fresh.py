"""Run part of a test in a spawned process of its own: what ngspice work leaves in a process cannot be undone
(a sandbox; libngspice after a deck with ``.if`` cards, see ``zoaf.spice``)."""
from __future__ import annotations

import multiprocessing as mp
from concurrent.futures import ProcessPoolExecutor


def in_fresh_process(fn, *args, timeout: float = 120):
    """``fn(*args)`` in a new spawned process; its result (``fn`` and its arguments must pickle)."""
    with ProcessPoolExecutor(1, mp_context=mp.get_context("spawn")) as ex:
        return ex.submit(fn, *args).result(timeout=timeout)

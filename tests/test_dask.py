"""The Dask backend on a real LocalCluster (loopback): same results as the local pool, crashes, timeouts."""
from __future__ import annotations

import gc
import time
import urllib.error
import urllib.request

import numpy as np
import pytest

pytest.importorskip("distributed")

import zoaf  # noqa: E402
from zoaf.evaluate import Evaluator  # noqa: E402
from zoaf.faults import FaultyProblem  # noqa: E402
from zoaf.function import FunctionProblem  # noqa: E402
from zoaf.problem import Parameter, Status  # noqa: E402


def sphere(x: np.ndarray) -> float:
    return float(np.sum((x - 0.3) ** 2))


class Sphere(FunctionProblem):
    def __init__(self, dim: int = 3) -> None:
        super().__init__(sphere, [Parameter(f"x{i}", 0.0, 1.0) for i in range(dim)])


def pick(faulty: FaultyProblem, fault: str | None, n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out: list[np.ndarray] = []
    while len(out) < n:
        u = rng.random(faulty.dim)
        if faulty.fault_of(faulty.to_physical(u)) == fault:
            out.append(u)
    return np.array(out)


def _key(res) -> list:
    return [(tuple(r.params.values()), r.outcome.status, r.outcome.fom, r.charged) for r in res.history]


def test_dask_local_cluster_matches_the_local_pool_and_handles_faults():
    # a hang sleeps 600 s: were it not killed at the 1 s timeout, the TIMEOUT status check below would fail
    problem = FaultyProblem(Sphere(), fail=0.15, hang=0.05, kill=0.05, hang_seconds=600, salt=4)
    # 1. an optimization on a problem without kills or hangs: the same history as in-process
    clean = FaultyProblem(Sphere(), fail=0.15, salt=4)
    with Evaluator(clean, workers=0) as ev:
        ref = zoaf.optimize(clean, budget=40, seed=11, method="random", workers=2, evaluator=ev)
    with Evaluator(clean, workers=2, dask="local") as ev:
        got = zoaf.optimize(clean, budget=40, seed=11, method="random", workers=2, evaluator=ev)
        pool = ev._pool
        assert len(pool.client.nthreads()) == 2
    assert _key(got) == _key(ref)
    assert pool._own == []                                  # the cluster it started is closed
    # 2. a kill is retried, a hang times out, failures fail; the cluster goes on
    kill, hang, good = pick(problem, "kill", 1), pick(problem, "hang", 1), pick(problem, None, 4)
    with Evaluator(problem, workers=2, dask="local", timeout=1.0) as ev:
        res = ev.evaluate(np.vstack([good[:2], kill, hang, good[2:], good[:1]]))
        assert [o.status for o in res] == [Status.OK] * 3 + [Status.TIMEOUT] + [Status.OK] * 2 + [Status.CACHED]
        want = [sphere(problem.to_physical(u)) for u in np.vstack([good[:2], kill])]
        np.testing.assert_array_equal([o.fom for o in res[:3]], want)
        assert [r.charged for r in res] == [True] * 6 + [False]
        later = ev.evaluate(pick(problem, None, 4, seed=1))
        assert [o.status for o in later] == [Status.OK] * 4
        assert ev.stats["timeouts"] == 1
        assert ev.stats["crashed"] + ev.stats["suspects"] >= 1   # a kill beside a prefetched task: a suspect


def test_dask_prefetch_a_worker_killed_mid_batch_costs_only_its_own_task():
    # 40 simulations on two workers go as four tasks of ten, two in flight per worker: when the killer's worker
    # dies, its task fails with nine others, and the scheduler may also fail a task waiting behind it. Those must
    # not spend their retry: they rerun one at a time, and only the killer is charged.
    problem = FaultyProblem(Sphere(), kill=0.1, kill_always=True, salt=9)
    kill, good = pick(problem, "kill", 1), pick(problem, None, 39)
    u = np.vstack([good[:5], kill, good[5:]])
    with Evaluator(problem, workers=2, dask="local") as ev:
        res = ev.evaluate(u)
        assert [o.status for o in res] == [Status.OK] * 5 + [Status.CRASHED] + [Status.OK] * 34
        assert "2 attempt(s)" in res[5].outcome.error
        np.testing.assert_array_equal([o.fom for i, o in enumerate(res) if i != 5],
                                      [sphere(problem.to_physical(x)) for x in good])
        assert ev.stats["crashed"] == 2                     # the killer's two attempts, nobody else's
        assert ev.stats["suspects"] >= 10                   # its task's others, uncharged
        later = ev.evaluate(pick(problem, None, 6, seed=2))   # back to prefetch: the cluster goes on
        assert [o.status for o in later] == [Status.OK] * 6


def test_dask_hangs_on_a_single_worker_time_out_and_the_batch_ends():
    # A hung simulation's worker is restarted. Were the finished tasks still wanted then, the scheduler would
    # recompute them on the fresh worker, a hang among them would take that worker too, and so on for ever.
    problem = FaultyProblem(Sphere(), hang=0.2, hang_seconds=600, salt=4)
    hang, good = pick(problem, "hang", 2), pick(problem, None, 6)
    t0 = time.perf_counter()
    with Evaluator(problem, workers=1, dask="local", timeout=1.0) as ev:
        res = ev.evaluate(np.vstack([good[:1], hang[:1], good[1:3], hang[1:], good[3:]]))
        assert [o.status for o in res] == [Status.OK, Status.TIMEOUT, Status.OK, Status.OK, Status.TIMEOUT] + \
            [Status.OK] * 3
        np.testing.assert_array_equal([o.fom for o in res if o.status == Status.OK],
                                      [sphere(problem.to_physical(x)) for x in good])
        assert ev.stats["timeouts"] == 2 and ev.stats["crashed"] == 0
    assert time.perf_counter() - t0 < 60


def test_dask_results_whose_events_are_not_seen_come_from_the_tasks():
    # A task's replies come back as an event on the pool's topic, ahead of the task's own result; without the
    # events (unsubscribed here) every result is read from its future, and the values are the same.
    problem = Sphere()
    u = np.random.default_rng(3).random((11, problem.dim))
    with Evaluator(problem, workers=2, dask="local") as ev:
        first = ev.evaluate(u[:5])
        assert ev._pool.client.get_events(ev._pool.token)          # these came as events
        ev._pool.client.unsubscribe_topic(ev._pool.token)
        later = ev.evaluate(u[5:])
    assert [r.outcome.status for r in first + later] == [Status.OK] * 11
    assert [r.outcome.fom for r in first + later] == [sphere(problem.to_physical(x)) for x in u]


def test_dask_local_admits_no_client_without_its_credentials():
    """``--dask local`` listens on 127.0.0.1: over plain TCP any user of the machine could connect to its scheduler
    or a worker and run code as you (Dask's transport is pickle). Only the pool's own client, holding the
    throwaway authority's certificate, gets in; the workers listen under TLS too."""
    import distributed
    with Evaluator(Sphere(), workers=1, dask="local") as ev:
        ev.evaluate(np.full((1, 3), 0.5))
        client = ev._pool.client
        addresses = [client.scheduler.address, *client.nthreads()]
        assert all(a.startswith("tls://") for a in addresses)
        for address in addresses:
            for plain in (address, address.replace("tls://", "tcp://")):
                with pytest.raises((OSError, TypeError, TimeoutError)):
                    distributed.Client(plain, timeout=3).close()
                # the refused Client is finalized here: collected later, its __del__ ran inside the next Client's
                # start and waited on the lock that start held (distributed's LoopRunner: the suite hung for good)
                gc.collect()


def test_dask_local_serves_no_http_page():
    """Without a dashboard, ``--dask local``'s scheduler still served its info pages and metrics over plain HTTP on
    127.0.0.1:8787 (and each worker its own): any user of the machine could read the cluster's state there."""
    import psutil

    with Evaluator(Sphere(), workers=1, dask="local") as ev:
        ev.evaluate(np.full((1, 3), 0.5))
        me = psutil.Process()
        ports = {c.laddr.port for p in (me, *me.children(recursive=True)) for c in p.net_connections("tcp")
                 if c.status == psutil.CONN_LISTEN}
        answered = []
        for port in sorted(ports):
            for path in ("/info/main/workers.html", "/json/counts.json", "/metrics", "/health"):
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
                        answered.append((port, path, r.status))
                except urllib.error.HTTPError as e:
                    assert e.code == 404
                except OSError:         # a TLS listener: no HTTP at all
                    pass
        assert ports and answered == []


@pytest.mark.parametrize("reply", [b"", b"HTTP/1.0 400 Bad Request\r\n\r\n" * 4], ids=["silent", "not-dask"])
def test_an_address_where_no_dask_scheduler_answers_is_one_line_not_a_hang(monkeypatch, reply):
    """``distributed`` bounds only the TCP connect: a listener that never speaks hung ``--dask ADDR`` without end,
    and one that answers other bytes gave a MemoryError traceback (its reply read as a frame length)."""
    import socket
    import threading

    from zoaf import daskpool
    from zoaf.errors import InputError

    monkeypatch.setattr(daskpool, "DASK_CONNECT_TIMEOUT", 1)
    server = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []

    def serve() -> None:
        conn, _ = server.accept()
        held.append(conn)                 # kept open, so the client waits on it
        if reply:
            conn.sendall(reply)

    threading.Thread(target=serve, daemon=True).start()
    address = f"tcp://127.0.0.1:{server.getsockname()[1]}"
    t0 = time.monotonic()
    with pytest.raises(InputError, match="cannot reach a Dask scheduler there"):
        with Evaluator(Sphere(), workers=1, dask=address) as ev:
            ev.evaluate(np.full((1, 3), 0.5))
    assert time.monotonic() - t0 < 30
    server.close()
    for c in held:
        c.close()

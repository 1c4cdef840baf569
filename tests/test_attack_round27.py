"""Red team, round 27: what a deck's programs and native code do to the process they run in, and to zoaf's relay of
its standard error.

A program a deck ran (``--allow-shell``) and left writing to stderr without end (``yes >&2 &``) held zoaf for good:
the relay (:mod:`zoaf.relay`) read on as long as anything waited, in its thread and in the pool's drain at each
simulation's end, so the run waited past every timeout (4 sizings with ``--timeout 5`` killed after 5 minutes, no row
recorded). A read now takes at most :data:`zoaf.relay.DRAIN_MAX` bytes, a drain only what waited as it began, and a
line past the bounds is dropped without being looked at.

A program stopped its Dask worker: ``kill -STOP`` of the simulation thread's id (that thread is in the program's
Landlock domain, and a stop signal stops every thread of the process), or the kernel's own signal to a descriptor's
owner (``F_SETOWN_EX`` to that thread, ``F_SETSIG`` = SIGSTOP, ``O_ASYNC``). A Dask worker's timeout is kept by a
thread of its own, stopped with it: the run waited for good (a pool's parent kills a stopped worker at its deadline,
a timed-out simulation). Native code in the simulation thread stopped its process as well. The simulation thread
and what it starts now send no stop signal and set no descriptor's signal (seccomp: :data:`zoaf.syscalls.STOP_CALLS`).
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from attackkit import in_each_backend, program_deck

from zoaf import relay, sandbox
from zoaf.circuit import CircuitProblem
from zoaf.problem import Outcome, Status

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux sandbox")

#: Seconds a simulation may take: what a stopped worker would be charged in a pool.
TIMEOUT = 10
#: Writers a program leaves behind: more than zoaf's relay reads.
WRITERS = 4


def test_writers_without_end_hold_neither_the_relay_nor_a_pools_drain(capsys: pytest.CaptureFixture[str]):
    """Four writers without end on one process's stderr: the drain a pool makes at a simulation's end waited for good
    (behind the relay thread, which read on as long as anything waited). Now it returns at once, relays the
    simulation's first lines, says the rest is dropped, and ``finish`` returns within FINISH_WAIT."""
    mine, theirs = relay.socket_pair()
    source = relay.watch(mine, "worker 9")
    writers = [subprocess.Popen(["yes", "FLOODFLOODFLOOD"], stdout=theirs.fileno()) for _ in range(WRITERS)]
    theirs.close()
    try:
        drained = threading.Event()
        threading.Thread(target=lambda: (source.next_simulation(), drained.set()), daemon=True).start()
        assert drained.wait(10)
        start = time.monotonic()
        source.finish()
        assert time.monotonic() - start < relay.FINISH_WAIT + 2
    finally:
        for w in writers:
            w.kill()
            w.wait()
    lines = capsys.readouterr().err.splitlines()      # the simulation's, then finish's (a simulation's count anew)
    assert all(line.startswith("[worker 9] ") for line in lines) and "FLOOD" in lines[0], lines[:3]
    assert "the rest of its output dropped" in lines[relay.SIM_LINES] and len(lines) <= 2 * (relay.SIM_LINES + 1)


def test_a_lines_bytes_reach_zoaf_printable(capsys: pytest.CaptureFixture[str]):
    """A NUL, a byte that is no UTF-8, a C1 CSI (``\\xc2\\x9b``: an escape sequence on some terminals) and a
    right-to-left override in a line a worker writes: each shown, none passed to the terminal as it is."""
    mine, theirs = relay.socket_pair()
    source = relay.watch(mine, "worker 5")
    theirs.sendall(b"A\0B\xffC\xc2\x9b[2JD\xe2\x80\xaeE\n")
    theirs.close()
    source.finish()
    assert capsys.readouterr().err == "[worker 5] A?B\ufffdC?[2JD\\u202eE\n"


@pytest.mark.timeout(240)
def test_a_program_left_writing_to_stderr_holds_no_run_in_any_backend(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]):
    """A deck's program starts four writers that outlive it (``yes >&2 &``) at each sizing: every simulation still
    ends, each with its measure, and zoaf's stderr holds a bounded count of the worker's lines."""
    (tmp_path / "flood.sh").write_text(f"for i in {' '.join(map(str, range(WRITERS)))}; do yes FLOODFLOODFLOOD >&2 "
                                       "</dev/null & done\necho 1\n")
    deck = program_deck(tmp_path, "floods stderr", f"sh {tmp_path / 'flood.sh'}")
    for kw, records, _ in in_each_backend(lambda: CircuitProblem(deck, allow_shell=True, timeout=TIMEOUT),
                                          np.array([[0.5], [0.25]])):
        assert [r.outcome.measures.get("got") for r in records] == [1.0, 1.0], (kw, [r.outcome for r in records])
    err = capsys.readouterr().err
    assert "the rest of its output dropped" in err and len(err) < 100_000, err[-2000:]


#: A program that stops every thread of the process ``argv[1]`` (default: its parent, the worker), by ``kill`` of
#: the thread's id and by the kernel's signal to a descriptor's owner; it prints 1 (the measure ``got``).
_STOP = """import fcntl, os, signal, struct, sys
pid = int(sys.argv[1]) if len(sys.argv) > 1 else os.getppid()
how = sys.argv[2] if len(sys.argv) > 2 else "kill sigio"
for tid in map(int, os.listdir(f"/proc/{pid}/task")):
    if "kill" in how:
        try:
            os.kill(tid, signal.SIGSTOP)
        except PermissionError:
            pass
    if "sigio" in how:
        r, w = os.pipe()
        try:
            fcntl.fcntl(r, 15, struct.pack("ii", 0, tid))          # F_SETOWN_EX, F_OWNER_TID
            fcntl.fcntl(r, 10, int(signal.SIGSTOP))                # F_SETSIG
        except PermissionError:
            continue
        fcntl.fcntl(r, fcntl.F_SETFL, fcntl.fcntl(r, fcntl.F_GETFL) | os.O_ASYNC)
        os.write(w, b"x")
print(1)
"""
#: A process of two threads, waiting: the victim of the proof.
_VICTIM = "import threading, time; threading.Thread(target=time.sleep, args=(60,)).start(); time.sleep(60)"


class Stopper(CircuitProblem):
    """Native code in the simulation thread (modelled, as round 18 does, by Python there after the lock-down): once
    simulated, it stops its own process."""

    def simulate(self, x: np.ndarray, *args, **kw) -> Outcome:
        outcome = super().simulate(x, *args, **kw)
        if sandbox.current() is not None:                  # a sandboxed thread (not zoaf's own, for workers=0)
            try:
                os.kill(os.getpid(), signal.SIGSTOP)
            except PermissionError:
                pass
        return outcome


def _stopped(pid: int) -> bool:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "T":
            return True
        time.sleep(0.05)
    return False


@pytest.mark.timeout(240)
def test_neither_a_program_nor_native_code_stops_its_worker_in_any_backend(tmp_path: Path):
    """A program stopped its worker by a thread's id, or by ``F_SETSIG``; native code in the simulation thread, by
    ``kill`` of its process: a Dask worker then never timed out, and the run waited for good (a pool's simulation
    timed out). Proved real first: outside the sandbox, each way stops a process of two threads. Now each is refused
    in every backend, and every simulation ends with its measure."""
    (tmp_path / "stop.py").write_text(_STOP)
    for how in ("kill", "sigio"):
        victim = subprocess.Popen([sys.executable, "-c", _VICTIM])
        try:
            time.sleep(0.5)
            subprocess.run([sys.executable, str(tmp_path / "stop.py"), str(victim.pid), how], check=True, timeout=30,
                           capture_output=True)
            assert _stopped(victim.pid), how                                   # real
        finally:
            victim.kill()
            victim.wait()
    deck = program_deck(tmp_path, "stops its worker", f"exec {sys.executable} {tmp_path / 'stop.py'}")
    started = time.monotonic()
    for kw, [record], _ in in_each_backend(lambda: Stopper(deck, allow_shell=True, timeout=TIMEOUT)):
        assert record.outcome.status is Status.OK and record.outcome.measures.get("got") == 1.0, (kw, record.outcome)
    assert time.monotonic() - started < 3 * 60

"""Load a deck only in a sandboxed process: here when this process is a worker, else in a sandboxed child.

:func:`open_session` is how :class:`~zoaf.circuit.CircuitProblem` gets its ngspice session. In a process that
exists to simulate (a pool or Dask worker: :func:`zoaf.sandbox.designate`) the process locks itself down and
drives libngspice directly. Anywhere else -- the caller's own process with ``workers=0``, ``zoaf check``,
``zoaf simulate`` -- the process must not be locked down (it writes run directories), so the session is a
:class:`ChildSession`: one persistent spawned child that locks itself down before libngspice starts and then
answers one pipe round trip per evaluation (tens of microseconds against the milliseconds of a simulation).
The child is a fresh interpreter that imports zoaf only (not the caller's main module, as ``spawn`` would:
a script without an ``if __name__ == "__main__"`` guard works); its standard error is a socket whose lines zoaf
relays (:mod:`zoaf.relay`), not zoaf's own.

In every sandboxed process the analyses run **synchronously** (no ``bg_`` thread, no ``bg_halt``): handing each
analysis to ngspice's background thread and waiting for it cost ~6.5 ms per sizing on a loaded machine, more than
the whole analysis of a small deck. The time limit is enforced from outside instead: the pool kills a worker
past its deadline (:mod:`zoaf.localpool`), Dask's nanny restarts one (:mod:`zoaf.daskpool`), and a
:class:`ChildSession` kills its child when an evaluation has no answer after ``timeout`` seconds. A child that
dies (a segfault in ngspice) or is killed so raises :class:`~zoaf.errors.WorkerCrash` or
:class:`~zoaf.errors.Timeout`; the next evaluation starts a new child (the sandbox again before any deck), as
it does after an error that leaves libngspice unusable (``needs_new_process``). A child killed from outside
between two evaluations (the kernel's OOM killer, a stray ``kill``) is seen before the next one is sent, which then
runs in a fresh child; a send that finds it gone raises :class:`~zoaf.errors.WorkerCrash` (before, every later
evaluation of the session failed with the same broken pipe).
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import traceback
from collections.abc import Iterable, Mapping
from multiprocessing.connection import Connection
from typing import Any

from . import proctree, relay, sandbox, watchdog
from .errors import SimulationError, Timeout, WorkerCrash, ZoafError
from .netlist import Netlist
from .ngcommands import sets_options
from .replies import BAD_REPLY, MAX_REPLY_BYTES, child_reply, load_reply, receive
from .workers import LOAD_GRACE, sigint_ignored

__all__ = ["ChildSession", "open_session"]

#: Seconds ``close`` waits for the child to close its session before killing it.
CLOSE_GRACE = 5.0


def open_session(netlist: Netlist, *, timeout: float | None, policy: sandbox.Policy) -> Any:
    """A session that evaluates ``netlist`` in a sandboxed process (this one if it is a worker)."""
    if sandbox.designated():
        from .spice import SpiceSession, shared_ngspice

        sandbox.enter(policy, start=shared_ngspice)     # libngspice starts after Landlock, before "no new code"

        return SpiceSession(netlist, timeout=None)      # synchronous: the parent kills us at the deadline
    return ChildSession(netlist, timeout=timeout, policy=policy)


#: What the child interpreter runs: the parent's sys.path, then the loop (argv: sys.path as JSON, socket fd). With
#: ``-P``: ``python -c`` puts the working directory first on sys.path, and a ``json.py`` there (a received deck's
#: folder, which the ``zoaf`` command itself never imports from) ran, unsandboxed, before anything else.
_CHILD = ("import json, sys; sys.path[:] = json.loads(sys.argv[1]); "
          "from zoaf.isolation import _child_main; _child_main(int(sys.argv[2]))")


def _child_main(fd: int) -> None:
    """Body of the child: lock down, then run the session's methods as asked until told to stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)        # Ctrl-C reaches the group: the parent decides
    conn = Connection(fd)
    if (first := _recv(conn)) is None:                  # the parent went away as the child started (a SIGTERM)
        return
    netlist, policy = first
    sandbox.designate()
    session = open_session(netlist, timeout=None, policy=policy)
    try:
        try:
            conn.send(sandbox.current())
        except OSError:                                 # the same, a moment later: no BrokenPipeError traceback
            return
        while (msg := _recv(conn)) is not None:
            method, args = msg
            try:
                reply: tuple = ("ok", getattr(session, method)(*args))
            except Exception as e:                      # the parent loads zoaf's errors and builtins only
                sent = e if isinstance(e, ZoafError) else RuntimeError(f"{type(e).__name__}: {e}")
                reply = ("raised", sent, traceback.format_exc())
            try:
                conn.send(reply)
            except OSError:                             # the parent went away: nothing to say, no traceback
                return
            except Exception:                           # an unpicklable exception: its text goes back
                conn.send(("raised", RuntimeError(reply[2]), reply[2]))
    finally:
        session.close()


def _recv(conn: Any) -> Any:
    try:
        return conn.recv()
    except (EOFError, OSError):                         # the parent went away
        return None


def _child_environment() -> dict[str, str]:
    """What the child keeps of the environment, this process's temporary folder (it makes its private directory
    there, where :func:`zoaf.sandbox.remove_private_dirs` looks for it: without ``TMPDIR`` it used ``/tmp`` and a
    crashed child's directory, with what the deck wrote, stayed there) and home (ngspice expands ``~/`` in the
    includes it reads as the checks did here)."""
    return {**sandbox.kept_environment(), "TMPDIR": tempfile.gettempdir(), "HOME": os.path.expanduser("~")}


class ChildSession:
    """A :class:`~zoaf.spice.SpiceSession` in one persistent sandboxed child process (same methods)."""

    def __init__(self, netlist: Netlist, *, timeout: float | None, policy: sandbox.Policy) -> None:
        watchdog.Limits.from_env()                      # a bad ZOAF_MAX_MEMORY/DISK: one line here, not in the child
        self.netlist = netlist
        self.timeout = timeout
        self.policy = policy
        self._report: sandbox.SandboxReport | None = None
        self._proc: Any = None
        self._conn: Any = None
        self._stderr: relay.Source | None = None
        self._loaded = False                            # the deck is loaded in the current child
        # its session loads the deck afresh for every sizing (ngcommands.sets_options): each load asked apart, with
        # the load's bound, before the evaluation and its timeout
        self._reloads = sets_options(netlist.control)

    def __enter__(self) -> "ChildSession":
        self.load()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _start(self) -> None:
        mine, theirs = socket.socketpair()
        err, its_err = relay.socket_pair()              # its stderr: relayed, never zoaf's own (zoaf.relay)
        with mine, theirs, its_err, sigint_ignored():
            self._proc = subprocess.Popen([sys.executable, "-P", "-c", _CHILD, json.dumps(sys.path),
                                           str(theirs.fileno())],
                                          pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL,
                                          env=_child_environment(),            # not even in /proc/PID/environ
                                          stdout=subprocess.DEVNULL,   # keeps `--json` output clean
                                          stderr=its_err.fileno())
            self._conn = Connection(mine.detach())
        self._stderr = relay.watch(err, f"worker {self._proc.pid}")
        self._conn.send((self.netlist, self.policy))
        self._loaded = False
        self._report = self._wait("starting", self._start_limit())

    @property
    def sandbox(self) -> sandbox.SandboxReport:
        """The layers the child runs under (starts it)."""
        if self._proc is None:
            self._start()
        return self._report

    def _start_limit(self) -> float | None:
        return None if self.timeout is None else self.timeout + LOAD_GRACE

    def _wait(self, what: str, limit: float | None) -> Any:
        """The child's answer to ``what`` (a method, or "starting": its sandbox report), checked for its shape."""
        try:
            if self._conn.poll(limit):
                reply = load_reply(receive(self._conn))
                if what == "starting" and not isinstance(reply, sandbox.SandboxReport):
                    raise ValueError(f"a {type(reply).__name__} where its sandbox report belongs")
                return reply if what == "starting" else child_reply(reply, what)
        except BAD_REPLY as e:
            self.close(kill=True)
            raise WorkerCrash(f"{what}: the sandboxed simulation process sent back something that is not a "
                              f"result ({e}); killed") from None
        except (EOFError, OSError) as e:
            # Over MAX_REPLY_BYTES is an OSError without errno ("bad message length"); EOF or a reset is its end.
            if not isinstance(e, EOFError) and e.errno is None and self._proc.poll() is None:
                self.close(kill=True)
                raise WorkerCrash(f"{what}: the sandboxed simulation process sent back more than "
                                  f"{MAX_REPLY_BYTES // 2**20} MiB; killed") from None
            raise self._died(what) from None
        except BaseException:                           # Ctrl-C: the child may be busy; do not reuse it
            self.close(kill=True)
            raise
        self.close(kill=True)
        raise Timeout(f"{what}: no answer from the sandboxed simulation process after {limit:g} s (killed)")

    def _died(self, what: str) -> WorkerCrash:
        """The crash of a child that ended: closed, so that the next call starts a fresh one."""
        code = self._exit_code()
        self.close()
        return WorkerCrash(f"{what}: " + (watchdog.reason(code) or
                                          f"the sandboxed simulation process died (exit code {code})"))

    def _call(self, method: str, *args: Any, limit: float | None) -> Any:
        if self._proc is None:
            self._start()
        try:
            self._conn.send((method, args))
        except OSError:                                 # it died after its last answer, before this call
            raise self._died(method) from None
        reply = self._wait(method, limit)
        self._stderr.next_simulation()
        if reply[0] == "ok":
            return reply[1]
        exc = reply[1]
        if isinstance(exc, SimulationError) and exc.needs_new_process:
            self.close()                                # a fresh child for the next evaluation
            exc.needs_new_process = False
        raise exc

    @property
    def loaded(self) -> bool:
        """Whether the deck is loaded in a child now."""
        return self._proc is not None and self._loaded

    def load(self) -> None:
        """Start the child and load the deck there (a PDK deck takes seconds: not counted in ``timeout``)."""
        self._call("load", limit=self._start_limit())
        self._loaded = True

    def evaluate(self, params: Mapping[str, float] | None = None, names: Iterable[str] | None = None,
                 rng_seed: int | None = None) -> dict[str, float]:
        """As :meth:`zoaf.spice.SpiceSession.evaluate`, in the child, killed after ``timeout`` seconds."""
        if self._proc is not None and self._proc.poll() is not None:
            self.close()                                # killed from outside since its last answer: start afresh
        if self._proc is None or not self._loaded:
            self.load()
        self._loaded = not self._reloads
        return self._call("evaluate", params, None if names is None else list(names), rng_seed,
                          limit=self.timeout)

    def close(self, *, kill: bool = False) -> None:
        """Stop the child: it closes its session first, unless ``kill``."""
        proc, conn, self._proc, self._conn = self._proc, self._conn, None, None
        if proc is None:
            return
        if kill:
            proctree.kill_tree(proc.pid)
        try:
            conn.send(None)
        except OSError:
            pass
        try:
            proc.wait(CLOSE_GRACE)
        except subprocess.TimeoutExpired:
            proctree.kill_tree(proc.pid)
            proc.wait()
        conn.close()
        self._stderr.finish()
        sandbox.remove_private_dirs(proc.pid)

    def _exit_code(self) -> int | None:
        try:
            return self._proc.wait(CLOSE_GRACE)
        except subprocess.TimeoutExpired:
            return None

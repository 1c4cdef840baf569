"""A simulating process's standard error: a socket of its own, which zoaf's process reads and relays line by line.

A simulating process inherited zoaf's standard error. Where that is a pipe (``zoaf optimize ... 2>&1 | tee log``,
CI, a wrapper script), a deck reopened it through ``/proc/self/fd/2`` (Landlock does not govern pipes): it read,
until its timeout, what zoaf and its other workers wrote there (lines the designer then never saw), and wrote
lines into zoaf's output that read as zoaf's own. Now the process's descriptor 2 is one end of a Unix socket whose
other end only zoaf's process holds (:func:`socket_pair`, or a connection to a :class:`Listener` for a Dask
worker). A socket cannot be reopened through ``/proc`` (``ENXIO``): a deck reaches not even its own; what the
process and its programs write on descriptor 2 zoaf relays to its standard error (:class:`Source`), each line marked
``[worker PID] ``, its control characters escaped (:func:`zoaf.outfile.printable`, a carriage return too: it
rewrote the line's start on a terminal), cut at :data:`MAX_LINE` bytes, at most :data:`SIM_LINES` lines per
simulation and :data:`WORKER_LINES` per process, saying once where it drops the rest: a deck that writes a gigabyte
fills neither zoaf's memory nor the terminal.

One daemon thread per zoaf process reads every source; a pool drains a source itself at the end of
each simulation (:meth:`Source.next_simulation`: what the process wrote before its reply is relayed before zoaf
records that reply) and when its process ended (:meth:`Source.finish`: to the end, or for :data:`FINISH_WAIT`
seconds at most where a program the deck started still holds the socket: a worker killed mid-line leaves no hang).
A read takes at most :data:`DRAIN_MAX` bytes, and a pool's drain only what waited as it began: a program a deck left
writing without end (``yes >&2 &``) kept both reading for good, and the run waited on them past every timeout. A
line past the bounds is dropped without being looked at, so such a writer costs zoaf little.
"""
from __future__ import annotations

import fcntl
import os
import selectors
import socket
import struct
import sys
import termios
import threading
import time

from .outfile import printable

__all__ = ["DRAIN_MAX", "FINISH_WAIT", "Listener", "MAX_LINE", "SIM_LINES", "Source", "WORKER_LINES", "connect_stderr",
           "socket_pair", "take_stderr", "watch"]

#: Bytes of one line relayed; the rest of a longer line is dropped (the line says so).
MAX_LINE = 1000
#: Lines relayed per simulation, and per process over its life.
SIM_LINES = 50
WORKER_LINES = 1000
#: Seconds :meth:`Source.finish` reads on after its process ended (programs it started may hold the socket).
FINISH_WAIT = 1.0
#: Bytes read at a time, and at most in one call (the relay thread's, or a pool's at a simulation's end).
_CHUNK = 1 << 16
DRAIN_MAX = 16 * _CHUNK
#: Bytes of a Dask worker's first line (its address, the key a pool marks its simulations by).
_MAX_KEY = 200
_OUT = threading.Lock()                                  # one relayed line at a time
_START = threading.Lock()


def socket_pair() -> tuple[socket.socket, socket.socket]:
    """(zoaf's end, the simulating process's end) of a new stderr socket; zoaf's end only reads."""
    mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    mine.shutdown(socket.SHUT_WR)                        # nothing ever goes the other way
    return mine, theirs


def take_stderr(sock: socket.socket | None) -> None:
    """In a simulating process, before any deck: ``sock`` becomes descriptor 2 (None: ``/dev/null``, where no relay
    answered); the descriptor ``sock`` held is closed. What held zoaf's standard error is then gone."""
    fd = os.open(os.devnull, os.O_WRONLY) if sock is None else sock.detach()
    try:
        os.dup2(fd, 2)
    finally:
        os.close(fd)


def connect_stderr(path: str | None, key: str) -> None:
    """A Dask worker's :func:`take_stderr`: a connection to the :class:`Listener` at ``path`` (None: none, a cluster
    zoaf did not start: its stderr is not zoaf's), which first names the worker by ``key``."""
    if path is None:
        return
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(path)
        sock.sendall(key.encode()[:_MAX_KEY] + b"\n")
    except OSError:
        sock.close()
        sock = None
    take_stderr(sock)


class Source:
    """One simulating process's stderr as zoaf reads it: lines relayed under ``label``, within the caps."""

    def __init__(self, sock: socket.socket, label: str, *, keyed: bool = False) -> None:
        sock.setblocking(False)
        self.sock, self.label = sock, label
        self.key: str | None = None
        self._keyed = keyed                             # its first line is its key, not output
        self._lock = threading.RLock()
        self._partial = bytearray()
        self._cut = False                               # dropping the rest of an over-long line
        self._sim = self._total = 0
        self._said_sim = self._said_total = False
        self._closed = False

    def fileno(self) -> int:
        return self.sock.fileno()

    def readable(self) -> None:
        """The relay thread's call: read what is there; at the end, the last partial line, then close."""
        with self._lock:
            if not self._closed and not self._drain(DRAIN_MAX):
                self._close()

    def next_simulation(self) -> None:
        """A simulation ended: relay what its process wrote so far (what waits now, not what a program it left
        goes on writing), then start the next simulation's count."""
        with self._lock:
            if not self._closed and not self._drain(self._waiting()):
                self._close()
            self._sim, self._said_sim = 0, False

    def finish(self, wait: float = FINISH_WAIT) -> None:
        """Its process ended: read to the end (at most ``wait`` seconds), relay the last partial line, close."""
        end = time.monotonic() + wait
        with self._lock, selectors.DefaultSelector() as ready:
            if not self._closed:
                ready.register(self.sock, selectors.EVENT_READ)
            while not self._closed and self._drain(DRAIN_MAX):
                left = end - time.monotonic()
                if left <= 0 or not ready.select(left):
                    break
            if not self._closed:
                self._close()

    def _waiting(self) -> int:
        """The bytes waiting to be read now (:data:`DRAIN_MAX` where the system does not say)."""
        try:
            return struct.unpack("i", fcntl.ioctl(self.sock.fileno(), termios.FIONREAD, b"\0" * 4))[0]
        except OSError:
            return DRAIN_MAX

    def _drain(self, limit: int) -> bool:
        """Read what waits, ``limit`` bytes at most (the stream's end is seen with the first read); False at the end
        of the stream."""
        while True:
            try:
                data = self.sock.recv(max(1, min(_CHUNK, limit)))
            except (BlockingIOError, InterruptedError):
                return True
            except OSError:
                return False
            if not data:
                return False
            self._feed(data)
            limit -= len(data)
            if limit <= 0:
                return True

    def _dropping(self) -> bool:
        """Whether a line now would be dropped, its drop said already."""
        if self._keyed and self.key is None:
            return False
        if self._total >= WORKER_LINES:
            return self._said_total
        return self._sim >= SIM_LINES and self._said_sim

    def _feed(self, data: bytes) -> None:
        while data:
            if self._dropping():                        # skip to the last line's start, looking at nothing between
                end = data.rfind(b"\n")
                self._partial.clear()
                self._cut = end < 0                     # the rest of a dropped line is dropped too
                if end < 0:
                    return
                data = data[end + 1:]                   # the start of a line (no newline): kept below
            head, newline, data = data.partition(b"\n")
            if not self._cut:
                self._partial += head[:MAX_LINE + 1 - len(self._partial)]
            if newline:
                if not self._cut:
                    self._line(bytes(self._partial))
                self._partial.clear()
                self._cut = False
            elif len(self._partial) > MAX_LINE:
                self._line(bytes(self._partial))
                self._partial.clear()
                self._cut = True

    def _line(self, raw: bytes) -> None:
        if self._keyed and self.key is None:
            self.key = raw[:_MAX_KEY].decode(errors="replace")
            return
        if self._total >= WORKER_LINES:
            if not self._said_total:
                self._said_total = True
                self._say(f"(more than {WORKER_LINES} lines: the rest of this process's output dropped)")
        elif self._sim >= SIM_LINES:
            if not self._said_sim:
                self._said_sim = True
                self._say(f"(more than {SIM_LINES} lines in one simulation: the rest of its output dropped)")
        else:
            self._sim += 1
            self._total += 1
            text = raw[:MAX_LINE].decode(errors="replace").removesuffix("\r")
            self._say(printable(text).replace("\r", "?") + (" (line cut)" if len(raw) > MAX_LINE else ""))

    def _say(self, text: str) -> None:
        with _OUT:
            try:
                sys.stderr.write(f"[{self.label}] {text}\n")
                sys.stderr.flush()
            except Exception:                          # noqa: BLE001 - none, or closed: the relay reads on all the same
                pass

    def _close(self) -> None:
        if self._partial:
            self._line(bytes(self._partial))
            self._partial.clear()
        self._closed = True
        _relay().remove(self)
        self.sock.close()


class Listener:
    """Where the Dask workers zoaf starts connect their stderr (:func:`connect_stderr`): a Unix socket at ``path``
    (in a folder only this user may enter); each connection a :class:`Source` labelled by its process id."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(64)
        self.sock.setblocking(False)
        self.sources: list[Source] = []
        _relay().add(self)

    def fileno(self) -> int:
        return self.sock.fileno()

    def readable(self) -> None:
        try:
            conn, _ = self.sock.accept()
        except OSError:                                 # taken already, or closed
            return
        self.sources = [s for s in self.sources if not s._closed] + [watch(conn, f"dask worker {_pid(conn)}",
                                                                           keyed=True)]

    def next_simulation(self, key: str) -> None:
        """The Dask worker named ``key`` (its address) ended a task: :meth:`Source.next_simulation`."""
        for source in self.sources:
            if source.key == key:
                source.next_simulation()

    def close(self) -> None:
        """Accept no more; read each worker's stderr to its end (its cluster closed first)."""
        _relay().remove(self)
        self.sock.close()
        end = time.monotonic() + FINISH_WAIT
        for source in self.sources:
            source.finish(max(0.0, end - time.monotonic()))


def _pid(conn: socket.socket) -> int | str:
    """The process id of a connection's peer (Linux's ``SO_PEERCRED``; elsewhere ``?``)."""
    if not hasattr(socket, "SO_PEERCRED"):
        return "?"
    return struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i")))[0]


class _Relay:
    """The thread that reads every source of this process as it becomes readable (``epoll`` on Linux: a source
    registered while the thread waits is watched at once)."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self._selector = selectors.DefaultSelector()
        self._watched: dict[int, Source | Listener] = {}
        self._lock = threading.Lock()
        threading.Thread(target=self._run, name="zoaf-stderr-relay", daemon=True).start()

    def add(self, obj: Source | Listener) -> None:
        with self._lock:
            self._watched[obj.fileno()] = obj
            self._selector.register(obj.fileno(), selectors.EVENT_READ)

    def remove(self, obj: Source | Listener) -> None:
        with self._lock:
            fd = obj.fileno()
            if self._watched.get(fd) is obj:
                del self._watched[fd]
                self._selector.unregister(fd)

    def _run(self) -> None:
        while True:
            for key, _ in self._selector.select():
                with self._lock:
                    obj = self._watched.get(key.fd)     # None: removed since (its descriptor maybe another's now)
                if obj is not None:
                    obj.readable()


_RELAYS: list[_Relay] = []


def _relay() -> _Relay:
    """This process's relay thread, started on first use (a forked child starts its own)."""
    with _START:
        if not _RELAYS or _RELAYS[0].pid != os.getpid():
            _RELAYS[:] = [_Relay()]
        return _RELAYS[0]


def watch(sock: socket.socket, label: str, *, keyed: bool = False) -> Source:
    """Relay what arrives on ``sock`` (zoaf's end of a process's stderr) as ``[label] line``."""
    source = Source(sock, label, keyed=keyed)
    _relay().add(source)
    return source

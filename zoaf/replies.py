"""Loading what a sandboxed process sends back: a restricted unpickler.

A pool worker, a Dask-less ``workers=0`` child: each runs the deck, so a reply is untrusted. Native code in that
process (a ``codemodel`` loaded with ``--allow-shell``, a memory bug of ngspice exploited by a deck) could write
a pickle to the pipe that runs anything in zoaf's own, unsandboxed process when loaded with ``pickle.loads``.
:func:`load_reply` builds only what a simulation's reply is made of: containers, numbers, text, numpy scalars
and arrays, an :class:`~zoaf.problem.Outcome`, the sandbox report, and exception classes already imported (a
custom problem's own errors; not ``SystemExit`` or ``KeyboardInterrupt``, which would stop zoaf), never a function
or a module the reply names; :func:`pool_reply` and :func:`child_reply` then take only the answer to the task the
process runs, in its shape, and of the size zoaf stores: an outcome's fields (:func:`outcome`), measures
(:func:`measures`) and an exception's text are checked and rebuilt here, since the parent writes them into the
history for every simulation (a forged 15 MiB error text, 300 times, was 4.5 GB of ``history.db``; a numpy integer
measure, or an int past a float, a traceback when the row was written).
"""
from __future__ import annotations

import io
import numbers
import os
import pickle
import select
import struct
import sys
import time
from multiprocessing.connection import Connection
from typing import Any

import numpy as np

from . import units
from .errors import MAX_MESSAGE_CHARS, MAX_OUTPUT_CHARS, MeasureError, SimulationError, ZoafError
from .outfile import printable
from .problem import Outcome, Status, _checked

__all__ = ["BAD_REPLY", "BadAnswer", "MAX_ERROR_CHARS", "MAX_MEASURES", "MAX_NAME_CHARS", "MAX_REPLY_BYTES",
           "REPLY_WAIT", "child_reply", "load_reply", "measures", "outcome", "pool_reply", "receive"]

#: The largest reply zoaf reads from a sandboxed process (a simulation's reply is a few kB).
MAX_REPLY_BYTES = 64 * 2**20
#: Seconds a reply may take from its first byte to its last (it is written at once: a few kB). ``recv_bytes`` waits
#: for a message's rest without end: native code that wrote a message's start and no more held zoaf past every
#: timeout (the pool's loop, and so every worker's deadline, waited in that read).
REPLY_WAIT = 30.0
#: What :func:`load_reply` raises on bytes that are not a reply (the sender is then killed, its task charged).
BAD_REPLY = (pickle.UnpicklingError, ValueError, TypeError, AttributeError, IndexError)


class BadAnswer(ValueError):
    """The answer to the task a worker runs, in its shape, holds what is not a result: that task is charged as
    crashed, not run again (the same deck would answer alike); other bad replies cannot name their task."""


#: An outcome's error text at most: a simulation error's message (:data:`~zoaf.errors.MAX_MESSAGE_CHARS`) and what
#: judging its measures adds.
MAX_ERROR_CHARS = 2 * MAX_MESSAGE_CHARS
#: Measures of one simulation, and the characters of a measure's name, at most (a deck's ``.meas`` cards and
#: ``.control`` results: tens): each is stored in the history's row.
MAX_MEASURES, MAX_NAME_CHARS = 1024, 256
#: Text and items a whole reply may hold, counted with repeats (a pickle refers to one string many times: a list
#: of a million references to it was a reply of kilobytes and text of terabytes): an error's output and traceback.
_MAX_TEXT = 2 * MAX_OUTPUT_CHARS

_BUILTINS = frozenset({"dict", "list", "tuple", "set", "frozenset", "float", "int", "complex", "str", "bytes",
                       "bool", "slice"})
_CLASSES = frozenset({("zoaf.sandbox", "SandboxReport"), ("zoaf.sandbox", "Layer"), ("zoaf.sandbox", "LayerState"),
                      ("zoaf.problem", "Outcome"), ("zoaf.problem", "Status"),
                      ("pathlib", "PosixPath"), ("pathlib", "Path"),
                      ("numpy", "dtype"), ("numpy", "ndarray"),
                      ("numpy._core.multiarray", "scalar"), ("numpy._core.multiarray", "_reconstruct"),
                      ("numpy.core.multiarray", "scalar"), ("numpy.core.multiarray", "_reconstruct")})


class _ReplyUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module == "builtins" and name in _BUILTINS) or (module, name) in _CLASSES:
            return super().find_class(module, name)
        if module.startswith("numpy") and name.endswith("DType"):      # numpy 2's dtype classes (np.dtypes)
            return super().find_class(module, name)
        found = getattr(sys.modules.get(module), name, None)          # imported already: no import runs here
        if isinstance(found, type) and issubclass(found, Exception):   # no SystemExit, KeyboardInterrupt
            return found
        # the names are the sender's text, and the message reaches the log and the terminal: shown printable
        raise pickle.UnpicklingError(f"{units.clip(printable(f'{module}.{name}'))} is not part of a simulation's reply")


def receive(conn: Connection) -> bytes:
    """``conn.recv_bytes(MAX_REPLY_BYTES)`` bounded in time too: a ValueError "malformed reply" (one of
    :data:`BAD_REPLY`) when a message begun does not end within :data:`REPLY_WAIT` s; as ``recv_bytes``, an OSError
    for one past :data:`MAX_REPLY_BYTES` (``bad message length``: not read) or an end mid-message, an EOFError for
    an end before one."""
    fd, deadline = conn.fileno(), time.monotonic() + REPLY_WAIT
    size = struct.unpack("!i", _read(fd, 4, deadline, first=True))[0]
    if size == -1:                                     # multiprocessing's header of a message past 2 GiB
        size = struct.unpack("!Q", _read(fd, 8, deadline))[0]
    if not 0 <= size <= MAX_REPLY_BYTES:
        raise OSError("bad message length")
    return _read(fd, size, deadline)


def _read(fd: int, n: int, deadline: float, *, first: bool = False) -> bytes:
    """``n`` bytes of ``fd`` by ``deadline`` (``first``: the start of a message, where an end is an EOFError)."""
    got, poller = bytearray(), select.poll()
    poller.register(fd, select.POLLIN)
    while len(got) < n:
        if not poller.poll(max(0.0, deadline - time.monotonic()) * 1000):
            raise ValueError(f"malformed reply: {len(got):,} bytes of {n:,} came in {REPLY_WAIT:g} s")
        chunk = os.read(fd, min(n - len(got), 1 << 20))
        if not chunk:
            raise EOFError if first and not got else OSError("got end of file during message")
        got += chunk
    return bytes(got)


def load_reply(data: bytes) -> Any:
    """``pickle.loads`` of a reply, restricted as the module says (``pickle.UnpicklingError`` otherwise)."""
    return _ReplyUnpickler(io.BytesIO(data)).load()


#: A pool worker's messages (:mod:`zoaf.localpool`), by kind: the type of each field.
_POOL = {"ready": (str, int), "fatal": (str, str), "loaded": (str, int, float),
         "done": (str, int, float, Outcome, bool),
         "raised": (str, int, float, (Exception, type(None)), str, bool)}
#: A ``workers=0`` child's answers (:mod:`zoaf.isolation`), by kind; what ``ok`` carries depends on the call.
_CHILD = {"ok": (str, object), "raised": (str, Exception, str)}


def _shaped(msg: Any, shapes: dict[str, tuple]) -> tuple:
    """``msg`` if it is a tuple of one of ``shapes``' kinds with fields of its types, else a ValueError."""
    kind = msg[0] if isinstance(msg, tuple) and msg else None
    types = shapes.get(kind) if isinstance(kind, str) else None
    if types is None or len(msg) != len(types) or not all(isinstance(f, t) for f, t in zip(msg, types)):
        raise ValueError(f"malformed reply: a message of no known shape ({type(msg).__name__}"
                         f"{f' {kind!r}' if isinstance(kind, str) and len(kind) < 40 else ''})")
    return msg


def pool_reply(msg: Any, running: int | None, *, ready: bool, constraints: int) -> tuple:
    """A pool worker's message, checked against what it may say now: ``ready`` or ``fatal`` before it is
    ``ready``, then only the answer to its ``running`` task (its id) and that its load is done (``loaded``, heeded
    once per task: :mod:`zoaf.localpool`): a forged reply for another sizing, or one sent twice, was recorded as the
    next task's outcome (and with none behind, an IndexError traceback). A ``done`` message's outcome is rebuilt by
    :func:`outcome` (``constraints``: the problem's count)."""
    kind = _shaped(msg, _POOL)[0]
    if (kind in ("ready", "fatal")) == ready or kind in ("loaded", "done", "raised") and msg[1] != running:
        raise ValueError(f"a {kind!r} message for task {msg[1]!r:.40} where it runs task {running}"
                         if kind in ("loaded", "done", "raised") else f"a second {kind!r} message")
    try:
        _text_within(msg, _MAX_TEXT)
        if kind == "done":
            return (*msg[:3], outcome(msg[3], constraints), msg[4])
        if kind == "raised" and msg[3] is not None:
            _exception_text(msg[3])
    except ValueError as e:
        raise BadAnswer(str(e)) from None
    return msg


def child_reply(msg: Any, method: str) -> tuple:
    """A ``workers=0`` child's answer to ``method``: ``("raised", exception, traceback)``, or ``("ok", value)``
    where ``load`` gives None and ``evaluate`` a dict of names to numbers."""
    kind, value = _shaped(msg, _CHILD)[:2]
    _text_within(msg, _MAX_TEXT)
    if kind == "raised":
        return kind, _child_exception(value), msg[2]
    if method == "load" and value is not None:
        raise ValueError(f"malformed reply: load answered {type(value).__name__}, not None")
    return msg if method == "load" else (kind, measures(value, nones=True))


def outcome(value: Any, constraints: int) -> Outcome:
    """A sandboxed process's outcome, rebuilt from fields of the types and sizes a simulation gives (as a
    problem's own ``simulate`` is checked, ``constraints``: its count); ValueError "reply too large" or "malformed
    reply" naming the first field that is not."""
    if not isinstance(value, Outcome):
        raise ValueError(f"malformed reply: {type(value).__name__} where an Outcome belongs")
    fields = getattr(value, "__dict__", {})
    error, limits = fields.get("error"), fields.get("constraints")
    if error is not None and (type(error) is not str or len(error) > MAX_ERROR_CHARS):
        raise ValueError(_too_large("error text", error, MAX_ERROR_CHARS) if isinstance(error, str)
                         else f"malformed reply: its error is {type(error).__name__}, not text")
    if not isinstance(limits, (tuple, list)) or len(limits) > max(constraints, MAX_MEASURES):
        raise ValueError(_too_large("constraint values", limits, constraints) if isinstance(limits, (tuple, list))
                         else f"malformed reply: its constraints are {type(limits).__name__}, not a tuple")
    value.measures = measures(fields.get("measures"))
    try:
        return _checked(value, constraints)
    except (ValueError, TypeError, OverflowError, AttributeError) as e:
        raise ValueError(f"malformed reply: {str(e)[:200]}") from None


def measures(value: Any, *, nones: bool = False) -> dict[str, float]:
    """A reply's measures as plain names and floats (``nones``: a measure may be None, not taken): a dict of at
    most :data:`MAX_MEASURES` names of at most :data:`MAX_NAME_CHARS` characters, else a ValueError."""
    if not isinstance(value, dict):
        raise ValueError(f"malformed reply: measures are {type(value).__name__}, not a dict")
    if len(value) > MAX_MEASURES:
        raise ValueError(_too_large("measures", value, MAX_MEASURES))
    out: dict[str, Any] = {}
    for k, v in value.items():
        if not isinstance(k, str):
            raise ValueError(f"malformed reply: a measure named by {type(k).__name__}, not text")
        if len(k) > MAX_NAME_CHARS:
            raise ValueError(_too_large("measure name", k, MAX_NAME_CHARS))
        if v is None and nones:
            out[str.__str__(k)] = None
            continue
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Real):
            raise ValueError(f"malformed reply: measure {k[:40]!r} is {type(v).__name__}, not a number")
        try:
            out[str.__str__(k)] = float(v)
        except (OverflowError, TypeError, ValueError):
            raise ValueError(f"malformed reply: measure {k[:40]!r} is no float") from None
    return out


def _child_exception(exc: Exception) -> Exception:
    """What the ``workers=0`` child raised, as it sends one (a zoaf error, else a RuntimeError naming it), with
    the text and fields a simulation error has: its message becomes the outcome's error, a MeasureError's
    measures its measures, its ``status`` the outcome's (a forged "cached" was free of the budget)."""
    if not isinstance(exc, (ZoafError, RuntimeError)):
        raise ValueError(f"malformed reply: the child raised {type(exc).__name__}, which it never sends")
    _exception_text(exc)
    if isinstance(exc, SimulationError):
        fields = vars(exc)
        status, output = fields.get("status", type(exc).status), fields.get("output", "")
        if status not in (Status.FAILED, Status.TIMEOUT, Status.CRASHED) or type(output) is not str:
            raise ValueError(f"malformed reply: a {type(exc).__name__} of status {status!r:.40}")
        exc.status, exc.needs_new_process = Status(status).value, bool(fields.get("needs_new_process", False))
    if isinstance(exc, MeasureError):
        exc.measures = measures(vars(exc).get("measures", {}))
    return exc


def _exception_text(exc: BaseException) -> None:
    """ValueError unless ``exc``'s text (what becomes an outcome's error, or the line a run ends with) is at most
    :data:`MAX_ERROR_CHARS`."""
    text = str(exc)
    if len(text) > MAX_ERROR_CHARS:
        raise ValueError(_too_large(f"{type(exc).__name__}'s text", text, MAX_ERROR_CHARS))


def _too_large(what: str, value: Any, limit: int) -> str:
    return f"reply too large: its {what} holds {len(value):,} items or characters, at most {limit:,}"


def _text_within(value: Any, limit: int) -> None:
    """ValueError "reply too large" when ``value`` holds more than ``limit`` characters and items, each reference
    counted (before anything formats it); stops counting at the limit."""
    left = limit
    todo = [value]
    while todo:
        v = todo.pop()
        left -= 1 + (len(v) if isinstance(v, (str, bytes, dict, tuple, list, set, frozenset)) else 0)
        if left < 0:
            raise ValueError(f"reply too large: it holds more than {limit:,} characters and items")
        if isinstance(v, dict):
            todo.extend(v.keys())
            todo.extend(v.values())
        elif isinstance(v, (tuple, list, set, frozenset)):
            todo.extend(v)
        elif isinstance(v, (BaseException, Outcome)):
            todo.append(getattr(v, "__dict__", {}))
            if isinstance(v, BaseException):
                todo.extend(v.args)
        elif isinstance(v, np.ndarray):
            left -= v.size

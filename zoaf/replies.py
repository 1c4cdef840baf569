"""Loading what a sandboxed process sends back: a restricted unpickler.

A pool worker, a Dask-less ``workers=0`` child: each runs the deck, so a reply is untrusted. Native code in that
process (a ``codemodel`` loaded with ``--allow-shell``, a memory bug of ngspice exploited by a deck) could write
a pickle to the pipe that runs anything in zoaf's own, unsandboxed process when loaded with ``pickle.loads``.
:func:`load_reply` builds only what a simulation's reply is made of: containers, numbers, text, numpy scalars
and arrays, an :class:`~zoaf.problem.Outcome`, the sandbox report, and exception classes already imported (a
custom problem's own errors; not ``SystemExit`` or ``KeyboardInterrupt``, which would stop zoaf), never a function
or a module the reply names; :func:`pool_reply` and :func:`child_reply` then take only the answer to the task the
process runs, in its shape.
"""
from __future__ import annotations

import io
import numbers
import pickle
import sys
from typing import Any

from .problem import Outcome

__all__ = ["BAD_REPLY", "MAX_REPLY_BYTES", "child_reply", "load_reply", "pool_reply"]

#: The largest reply zoaf reads from a sandboxed process (a simulation's reply is a few kB).
MAX_REPLY_BYTES = 64 * 2**20
#: What :func:`load_reply` raises on bytes that are not a reply (the sender is then killed, its task charged).
BAD_REPLY = (pickle.UnpicklingError, ValueError, TypeError, AttributeError, IndexError)

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
        raise pickle.UnpicklingError(f"{module}.{name} is not part of a simulation's reply")


def load_reply(data: bytes) -> Any:
    """``pickle.loads`` of a reply, restricted as the module says (``pickle.UnpicklingError`` otherwise)."""
    return _ReplyUnpickler(io.BytesIO(data)).load()


#: A pool worker's messages (:mod:`zoaf.localpool`), by kind: the type of each field.
_POOL = {"ready": (str, int), "fatal": (str, str), "done": (str, int, float, Outcome, bool),
         "raised": (str, int, float, (Exception, type(None)), str, bool)}
#: A ``workers=0`` child's answers (:mod:`zoaf.isolation`), by kind; what ``ok`` carries depends on the call.
_CHILD = {"ok": (str, object), "raised": (str, Exception, str)}


def _shaped(msg: Any, shapes: dict[str, tuple]) -> tuple:
    """``msg`` if it is a tuple of one of ``shapes``' kinds with fields of its types, else a ValueError."""
    kind = msg[0] if isinstance(msg, tuple) and msg else None
    types = shapes.get(kind) if isinstance(kind, str) else None
    if types is None or len(msg) != len(types) or not all(isinstance(f, t) for f, t in zip(msg, types)):
        raise ValueError(f"a message of no known shape ({type(msg).__name__} {str(msg)[:80]!r})")
    return msg


def pool_reply(msg: Any, running: int | None, *, ready: bool) -> tuple:
    """A pool worker's message, checked against what it may say now: ``ready`` or ``fatal`` before it is
    ``ready``, then only the answer to its ``running`` task (its id): a forged reply for another sizing, or one
    sent twice, was recorded as the next task's outcome (and with none behind, an IndexError traceback)."""
    kind = _shaped(msg, _POOL)[0]
    if (kind in ("ready", "fatal")) == ready or kind in ("done", "raised") and msg[1] != running:
        raise ValueError(f"a {kind!r} message for task {msg[1]!r} where it runs task {running}"
                         if kind in ("done", "raised") else f"a second {kind!r} message")
    return msg


def child_reply(msg: Any, method: str) -> tuple:
    """A ``workers=0`` child's answer to ``method``: ``("raised", exception, traceback)``, or ``("ok", value)``
    where ``load`` gives None and ``evaluate`` a dict of names to numbers."""
    kind, value = _shaped(msg, _CHILD)[:2]
    if kind == "ok" and not (value is None if method == "load" else _measures(value)):
        raise ValueError(f"{method} answered {type(value).__name__} {str(value)[:80]!r}")
    return msg


def _measures(value: Any) -> bool:
    return isinstance(value, dict) and all(isinstance(k, str) and (v is None or isinstance(v, numbers.Real))
                                           and not isinstance(v, bool) for k, v in value.items())

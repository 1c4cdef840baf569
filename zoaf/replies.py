"""Loading what a sandboxed process sends back: a restricted unpickler.

A pool worker, a Dask-less ``workers=0`` child: each runs the deck, so a reply is untrusted. Native code in that
process (a ``codemodel`` loaded with ``--allow-shell``, a memory bug of ngspice exploited by a deck) could write
a pickle to the pipe that runs anything in zoaf's own, unsandboxed process when loaded with ``pickle.loads``.
:func:`load_reply` builds only what a simulation's reply is made of: containers, numbers, text, numpy scalars
and arrays, an :class:`~zoaf.problem.Outcome`, the sandbox report, and exception classes already imported (a
custom problem's own errors), never a function or a module the reply names.
"""
from __future__ import annotations

import io
import pickle
import sys
from typing import Any

__all__ = ["BAD_REPLY", "MAX_REPLY_BYTES", "load_reply"]

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
        if isinstance(found, type) and issubclass(found, BaseException):
            return found
        raise pickle.UnpicklingError(f"{module}.{name} is not part of a simulation's reply")


def load_reply(data: bytes) -> Any:
    """``pickle.loads`` of a reply, restricted as the module says (``pickle.UnpicklingError`` otherwise)."""
    return _ReplyUnpickler(io.BytesIO(data)).load()

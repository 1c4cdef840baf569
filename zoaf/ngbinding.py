"""The one place zoaf touches PySpice and libngspice's C interface: everything else uses :class:`NgSpice`.

PySpice's ``NgSpiceShared`` loads the library and registers its callbacks; zoaf overrides four of its private
hooks (:data:`PYSPICE_HOOKS`): the output callback keeps only the lines of the current command (PySpice's lists
grow forever), the background-thread callback signals a finished ``bg_`` command, the status callback is
silenced, and the version is read from the library itself (PySpice's reader goes through its own output
lists, which zoaf's callback no longer fills). Should a PySpice upgrade move those hooks,
:func:`missing_hooks` names them and :func:`shared` refuses to start (``tests/test_ngbinding.py`` fails).

libngspice is one global state per process and not thread-safe (``docs/ngspice.md``): there is one
:class:`NgSpice` per process (:func:`shared`), used from one thread at a time.
"""
from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .ngoutput import strip_prefix

__all__ = ["PYSPICE_HOOKS", "NgSpice", "missing_hooks", "shared"]

#: The private ``NgSpiceShared`` methods this module overrides or relies on.
PYSPICE_HOOKS = ("_send_char", "_send_stat", "_background_thread_running", "_get_version", "_init_ngspice")
#: Seconds to wait for ngspice's background thread to stop after ``bg_halt``.
HALT_WAIT = 10.0
_VERSION = re.compile(r"\*\* ngspice-(\d+)")

_SHARED: "NgSpice | None" = None
_SHARED_LOCK = threading.Lock()


def missing_hooks(cls: type) -> list[str]:
    """The :data:`PYSPICE_HOOKS` that ``cls`` (PySpice's ``NgSpiceShared``) lacks: empty when it fits."""
    return [name for name in PYSPICE_HOOKS if not callable(getattr(cls, name, None))]


def _subclass() -> tuple[type, Any]:
    """PySpice's ``NgSpiceShared`` with zoaf's hooks, and PySpice's cffi handle (imported on first use)."""
    logging.getLogger("PySpice").setLevel(logging.CRITICAL)   # "Unsupported Ngspice version": not PySpice's job
    from PySpice.Spice.NgSpice.Shared import NgSpiceShared, ffi

    missing = missing_hooks(NgSpiceShared)
    if missing:
        import PySpice
        raise ImportError(f"PySpice {PySpice.__version__}: NgSpiceShared has no {', '.join(missing)}; zoaf's "
                          "binding (zoaf/ngbinding.py) overrides them: use a PySpice with these hooks (1.5)")

    class _Ng(NgSpiceShared):
        def __init__(self) -> None:
            self.lines: list[str] = []
            self.bg_done = threading.Event()
            super().__init__(ngspice_id=0, send_data=False)

        @staticmethod
        def _send_char(message_c, ngspice_id, user_data):   # type: ignore[override]
            ffi.from_handle(user_data).lines.append(ffi.string(message_c).decode("utf-8", "replace"))
            return 0

        @staticmethod
        def _send_stat(message, ngspice_id, user_data):     # type: ignore[override]
            return 0

        @staticmethod
        def _background_thread_running(no_bg, ngspice_id, user_data):  # type: ignore[override]
            # ngspice calls this with False when its thread starts and True when it ends.
            if no_bg:
                ffi.from_handle(user_data).bg_done.set()
            return 0

        def _get_version(self) -> None:
            self.lines = []
            self._ngspice_shared.ngSpice_Command(b"version -f")
            said = strip_prefix(self.lines)
            found = next((m for m in map(_VERSION.search, said) if m), None)
            self._ngspice_version = int(found.group(1)) if found else None
            self._extensions = [e for e in ("XSPICE", "CIDER") if any(e in s for s in said)]
            self._has_xspice, self._has_cider = "XSPICE" in self._extensions, "CIDER" in self._extensions

    return _Ng, ffi


class NgSpice:
    """The process's libngspice: commands, their output, background runs, vectors, the current plot."""

    def __init__(self) -> None:
        cls, self._ffi = _subclass()
        self._ng = cls()
        self._lib = self._ng._ngspice_shared

    @property
    def version(self) -> int | None:
        """The library's major version (``39`` for ngspice-39.3), as it prints it; None if it did not say."""
        return self._ng._ngspice_version

    def command(self, command: str) -> list[str]:
        """Send one command; return its output lines without ``stdout``/``stderr`` prefixes."""
        self._ng.lines = []
        self._lib.ngSpice_Command(command.encode())
        return strip_prefix(self._ng.lines)

    def load(self, deck: Sequence[str]) -> tuple[int, list[str]]:
        """Load a circuit, one logical line per entry (``ngSpice_Circ``): its return code and output lines."""
        keep = [self._ffi.new("char[]", line.encode()) for line in deck]
        self._ng.lines = []
        rc = self._lib.ngSpice_Circ(self._ffi.new("char*[]", keep + [self._ffi.NULL]))
        return rc, strip_prefix(self._ng.lines)

    def background(self, command: str, seconds: float) -> tuple[bool, list[str]]:
        """Run ``command`` in ngspice's background thread, halted after ``seconds``: (finished, output lines)."""
        ng = self._ng
        ng.bg_done.clear()
        ng.lines = []
        self._lib.ngSpice_Command(("bg_" + command).encode())
        if not ng.bg_done.wait(max(0.0, seconds)):
            self._lib.ngSpice_Command(b"bg_halt")
            ng.bg_done.wait(HALT_WAIT)
            out = strip_prefix(ng.lines)
            self._settle()
            return False, out
        self._settle()
        return True, strip_prefix(ng.lines)

    def _settle(self) -> None:
        for _ in range(10000):          # the thread calls back just before it exits
            if not self._lib.ngSpice_running():
                return
            time.sleep(1e-4)

    def vector(self, name: str) -> np.ndarray | None:
        """A copy of vector ``name`` (``plot.name`` or in the current plot); None when there is none.

        ``ngGet_Vec_Info`` points into one static struct: the data is copied before the next command."""
        ffi = self._ffi
        vi = self._lib.ngGet_Vec_Info(name.encode())
        if vi == ffi.NULL:
            return None
        n = vi.v_length
        if vi.v_compdata != ffi.NULL:
            return np.frombuffer(ffi.buffer(vi.v_compdata, 16 * n), np.complex128).copy()
        if vi.v_realdata == ffi.NULL:
            return None
        return np.frombuffer(ffi.buffer(vi.v_realdata, 8 * n), np.float64).copy()

    def plots(self) -> list[str]:
        """Every plot's name, the newest first (``ngSpice_AllPlots``), ``const`` last."""
        return self._strings(self._lib.ngSpice_AllPlots())

    def vector_names(self) -> set[str]:
        """Every vector's name in every plot (``ngSpice_AllPlots``/``ngSpice_AllVecs``: 2-d ones too)."""
        names: set[str] = set()
        for plot in self.plots():
            names.update(self._strings(self._lib.ngSpice_AllVecs(plot.encode())))
        return names

    def _strings(self, array: Any) -> list[str]:
        """A NULL-terminated ``char **`` the library owns, copied."""
        out: list[str] = []
        while array != self._ffi.NULL and array[len(out)] != self._ffi.NULL:
            out.append(self._ffi.string(array[len(out)]).decode())
        return out

    def current_plot(self) -> str:
        """The name of the current plot (``ac1``, ``tran2``, ...)."""
        return self._ffi.string(self._lib.ngSpice_CurPlot()).decode()

    def variables(self) -> set[str]:
        """Names of the front-end variables (``set`` with no argument lists them, ``* name`` for read-only)."""
        return {ln.lstrip("* ").split("\t")[0].split()[0] for ln in self.command("set") if ln.strip()}


def shared(setup: Callable[[NgSpice], None] | None = None) -> NgSpice:
    """The process's one :class:`NgSpice`, created (then passed to ``setup``) on first use.

    Raises ImportError (no PySpice, or one whose hooks moved) or OSError (no libngspice).
    """
    global _SHARED
    with _SHARED_LOCK:
        if _SHARED is None:
            ng = NgSpice()
            if setup is not None:
                setup(ng)
            _SHARED = ng
        return _SHARED

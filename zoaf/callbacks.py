"""The user's ``callback`` of a run: checked before anything is simulated, called after every batch as scipy calls
one, and what it says (stop, or an exception raised once the run's end files are written)."""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .errors import InputError
from .optim import Result

__all__ = ["Callback", "CallbackAsks", "callback_call"]

Callback = Callable[[Result], "bool | None"]
#: scipy's name for the result a callback takes (scipy >= 1.11 calls ``callback(intermediate_result=res)``).
KEYWORD = "intermediate_result"


def callback_call(callback: Callback | None) -> Callable[[Result], object] | None:
    """How the run calls ``callback`` with its result so far: ``callback(result)``, else by scipy's keyword,
    ``callback(intermediate_result=result)`` (a keyword-only parameter of that name). InputError before any
    simulation when it can be called neither way (``(xk, state)``, a keyword-only parameter of another name): it
    raised a TypeError after the first batch. A callable whose signature Python cannot read is taken as it is."""
    if callback is None:
        return None
    if not callable(callback):
        raise InputError(f"callback must be callable, got {type(callback).__name__}")
    try:
        sig = inspect.signature(callback)
    except (TypeError, ValueError):
        return callback
    for args, kwargs in [((None,), {}), ((), {KEYWORD: None})]:
        try:
            sig.bind(*args, **kwargs)
        except TypeError:
            continue
        return callback if args else lambda result: callback(**{KEYWORD: result})
    raise InputError(f"callback{sig} cannot be called with the result so far: it must accept one positional "
                     f"argument, callback(result), or the keyword {KEYWORD} as in scipy")


@dataclass
class CallbackAsks:
    """Whether the user's ``callback(result_so_far)`` stops the run, as in scipy >= 1.11: True, or ``StopIteration``
    raised, ends it with its result. Any other exception also ends it, and is raised once the run's result and end
    files are written (it propagated from the loop: the run directory kept its rows but no result.json)."""

    callback: Callable[[Result], object] | None         # :func:`callback_call`'s
    so_far: Callable[[], Result]
    raised: Exception | None = None

    def __call__(self) -> bool:
        if self.callback is None:
            return False
        try:
            return bool(self.callback(self.so_far()))
        except StopIteration:
            return True
        except Exception as e:          # noqa: BLE001 - raised again by reraise(), after the end files
            self.raised = e
            return True

    def reraise(self, result: Result, outdir: Path | None) -> None:
        if self.raised is None:
            return
        kept = f"; the run's result and rows are in {outdir} (resume=True continues it)" if outdir else ""
        self.raised.add_note(f"zoaf: the callback raised after {result.nfev} simulations, which ended the run{kept}")
        raise self.raised

"""Files in a directory that someone else may have made: a run or comparison directory received from elsewhere.

``zoaf report DIR``, ``zoaf optimize --resume DIR``, ``zoaf yield DIR`` and ``zoaf sensitivity DIR`` write into
a directory whose entries its sender chose. A ``report.md`` that is a link to ``~/.bashrc`` would have zoaf
write there (and report.md holds names the sender chose: a line of shell), a ``.lock`` link would have zoaf
truncate its target, a FIFO would block zoaf forever. So every file zoaf writes there is written as a new file
and renamed over the name (``os.replace`` replaces a link, never writes through it); the lock file and the
history, which are written in place, must be regular files of their own (not a link, not a second name of
another file); and the JSON zoaf reads there must be a file of its own too (a ``result.json`` link read your own
run as the sender's), read as :mod:`zoaf.infile` reads a model file (bounded: a FIFO is one error, not a hang).

Example:
    >>> write_file(Path("runs/amp/best.cir"), text)          # doctest: +SKIP
"""
from __future__ import annotations

import io
import json
import math
import numbers
import os
import re
import secrets
import stat
import unicodedata
from contextlib import suppress
from pathlib import Path
from typing import Any

from .errors import InputError
from .infile import read_bounded

#: Control characters rich passes to the terminal as they are (ESC starts a sequence that can retitle the
#: window, hide or rewrite lines, or set the clipboard); C1 controls too (0x9b is a CSI on some terminals).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
#: Unicode's invisible format characters (category Cf: the bidirectional overrides and isolates U+202A-U+202E,
#: U+2066-U+2069, zero-width ones, U+FEFF) and its line and paragraph separators: a terminal or browser that
#: honours them shows a line reordered ("Trojan Source": ``o\u202ecni.x`` reads as ``ox.inc``) or a name cut.
_INVISIBLE = frozenset({"Cf", "Zl", "Zp"})


def printable(text: str) -> str:
    """Text that may come from a file someone else made (a history's error, a directory's name), for the
    terminal or a report: each control character but tab and line ends shown as ``?``, each invisible format
    character as its escape (``\\u202e``)."""
    text = _CONTROL.sub("?", text)
    if text.isascii():
        return text
    return "".join(f"\\u{ord(c):04x}" if unicodedata.category(c) in _INVISIBLE else c for c in text)


def first_invisible(text: str) -> str | None:
    """The first invisible format or separator character of ``text`` (what :func:`printable` escapes), or None:
    for inputs that refuse one rather than show it escaped (a spec's title and units)."""
    if text.isascii():
        return None
    return next((c for c in text if unicodedata.category(c) in _INVISIBLE), None)


__all__ = ["check_own", "first_invisible", "json_text", "open_own", "printable", "read_json", "save_figure", "utf8",
           "write_file"]

#: The largest JSON file of a run directory read (result.json, trace.json, compare.json are KiB).
MAX_JSON_BYTES = 16 * 2**20


def json_text(value: Any, **kw: Any) -> str:
    """``value`` as strict JSON: a non-finite number (a failed run's FoM is +inf) is ``null``. Python's default
    ``Infinity`` and ``NaN`` are no JSON: ``JSON.parse``, jq and most parsers refuse the whole file. Numpy values
    become plain ones; ``kw`` as :func:`json.dumps` takes it (``default`` for other objects)."""
    return json.dumps(_finite(value), allow_nan=False, **kw)


def _finite(value: Any) -> Any:
    if isinstance(value, numbers.Real) and not isinstance(value, numbers.Integral):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if hasattr(value, "tolist"):            # a numpy array or scalar
        return _finite(value.tolist())
    return value


def utf8(text: str) -> str:
    """``text`` that encodes as UTF-8: a file name's undecodable bytes (Python's surrogate escapes, ``\\udcff``)
    become ``?``. Writing them failed (UnicodeEncodeError), and matplotlib refused them in a figure's title: a
    netlist named in Latin-1 ended its run with a traceback once every simulation was done."""
    return text.encode("utf-8", "replace").decode("utf-8")


def write_file(path: Path, content: str | bytes) -> None:
    """Write ``content`` to ``path`` as a new file renamed over it: a link or FIFO at ``path`` is replaced, not
    written through; the mode is the umask's, as ``open`` would give. OSError as writing would raise it, named
    by ``path`` (it named the temporary file, or nothing: a full disk's write has no file name)."""
    path = Path(path)
    data = utf8(content).encode() if isinstance(content, str) else content
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666)
    except OSError as e:
        raise OSError(e.errno, e.strerror, str(path)) from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException as e:
        with suppress(OSError):
            os.unlink(tmp)
        if isinstance(e, OSError):
            raise OSError(e.errno, e.strerror, str(path)) from None
        raise


def save_figure(fig: Any, path: Path, **kw: Any) -> None:
    """A matplotlib figure as PNG at ``path``, written as :func:`write_file` writes."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", **kw)
    write_file(path, buf.getvalue())


def check_own(path: Path) -> None:
    """InputError unless ``path`` is missing or a regular file of its own: not a link (zoaf would write where
    it points), a FIFO or device, nor a second name of another file (a hard link)."""
    try:
        st = os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return
    if stat.S_ISLNK(st.st_mode):
        raise InputError(f"{path}: is a link; a run directory's files must be its own (not written through)")
    if not stat.S_ISREG(st.st_mode) or st.st_nlink > 1:
        why = "has other names (a hard link)" if stat.S_ISREG(st.st_mode) else "not a regular file"
        raise InputError(f"{path}: {why}; a run directory's files must be its own")


def open_own(path: Path) -> int:
    """A read-write descriptor of the regular file ``path`` of its own, created if missing (the lock file)."""
    check_own(path)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, 0o644)
    except OSError as e:
        raise InputError(f"{path.parent}: cannot write the run directory ({e.strerror})") from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or st.st_nlink > 1:       # swapped since the check
        os.close(fd)
        raise InputError(f"{path}: not a regular file of its own")
    return fd


def read_json(path: Path) -> Any:
    """The JSON in the regular file ``path`` of its directory's own (:func:`check_own`: a received comparison's
    ``result.json`` link had the designer's own run read and reported as the sender's); FileNotFoundError when
    missing, InputError when it is not a bounded regular file or not JSON."""
    check_own(Path(path))
    try:
        data = read_bounded(Path(path), MAX_JSON_BYTES)
    except (FileNotFoundError, NotADirectoryError):
        raise FileNotFoundError(path) from None
    except OSError as e:
        raise InputError(f"{path}: cannot read ({e.strerror or e})") from None
    try:
        return json.loads(data)
    except (ValueError, RecursionError) as e:
        raise InputError(f"{path}: not JSON ({e})") from None

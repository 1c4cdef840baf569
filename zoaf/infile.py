"""Read a file that untrusted input names (a deck's ``.include``, a spec's ``process_lib``) in zoaf's own process.

zoaf reads every included file itself, unsandboxed, before any simulation (to check it and hash it), so the
name is chosen by the deck's author: ``/dev/zero`` would fill the memory, a FIFO or ``/dev/tty`` would block
the run forever, ``/proc/self/environ`` would hand zoaf's own environment to the deck. Only a regular file of
bounded size, outside the kernel's pseudo-file trees, is read; anything else is an :class:`UnreadableFile`,
an ``OSError`` whose ``strerror`` says why (callers already report ``strerror`` with their ``file:line``).

Example:
    >>> read_bounded(Path("/dev/zero"))                       # doctest: +SKIP
    UnreadableFile: under /dev: a device or kernel file, not a model file
"""
from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

__all__ = ["MAX_FILE_BYTES", "PSEUDO_TREES", "UnreadableFile", "read_bounded"]

#: The largest file read (a PDK's biggest model file is a few MiB).
MAX_FILE_BYTES = 64 * 2**20
#: Trees of devices and kernel files: never a model file.
PSEUDO_TREES = (Path("/proc"), Path("/sys"), Path("/dev"))


class UnreadableFile(OSError):
    """A file zoaf refuses to read: not a regular file, too large, or a device or kernel file."""


def _pseudo_tree(path: Path) -> Path | None:
    """The pseudo-file tree ``path`` lies in, as written or once its links are followed, or None."""
    for p in (Path(os.path.normpath(path.absolute())), path.resolve()):
        for tree in PSEUDO_TREES:
            if p.parts[:len(tree.parts)] == tree.parts:     # p is tree or under it (`in p.parents`: ~15 ms a PDK)
                return tree
    return None


def read_bounded(path: Path, limit: int = MAX_FILE_BYTES, what: str = "a model file") -> bytes:
    """The bytes of the regular file ``path`` (at most ``limit``); FileNotFoundError, IsADirectoryError, or
    UnreadableFile for a device, FIFO, socket, kernel file or a file larger than ``limit`` (``what`` it should
    have been, in the message)."""
    tree = _pseudo_tree(path)
    if tree is not None:
        raise UnreadableFile(errno.EPERM, f"under {tree}: a device or kernel file, not {what}")
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)   # a FIFO does not block
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):                          # checked before fdopen, which refuses a folder's fd
        os.close(fd)
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, "is a directory")
        raise UnreadableFile(errno.EPERM, "not a regular file (a FIFO, a device or a socket)")
    with os.fdopen(fd, "rb") as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise UnreadableFile(errno.EFBIG, f"larger than {limit // 2**20} MiB: not {what}")
    return data

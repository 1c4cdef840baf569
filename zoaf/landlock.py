"""Linux Landlock through ctypes: confine the calling thread's file-system access to a few directory trees.

Landlock (Linux >= 5.13) lets an unprivileged process drop file-system rights for good: after
:func:`restrict`, the calling thread (and every thread or process it starts later) can only read and write
beneath the directories it named. Rights are checked when a file is opened, so descriptors opened before stay
usable. A thread's domain cannot be widened again, only narrowed further.

Only the calling thread is restricted (ABI < 8 has no way to restrict the other threads of a process): call it
from the thread that will open files on the untrusted input's behalf, before that thread starts any other.

Example:
    >>> abi = version()                                             # doctest: +SKIP
    >>> restrict(read=["/usr", "/etc"], write=["/tmp/private"])     # doctest: +SKIP
"""
from __future__ import annotations

import ctypes
import errno
import os
import platform
from collections.abc import Iterable
from pathlib import Path

__all__ = ["LandlockError", "restrict", "version"]

# x86_64 and aarch64 share the generic syscall numbers for Landlock.
_SYS_CREATE_RULESET, _SYS_ADD_RULE, _SYS_RESTRICT_SELF = 444, 445, 446
_CREATE_RULESET_VERSION = 1
_RULE_PATH_BENEATH = 1
_PR_SET_NO_NEW_PRIVS = 38

# LANDLOCK_ACCESS_FS_* (include/uapi/linux/landlock.h)
EXECUTE, WRITE_FILE, READ_FILE, READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
_ABI1_ALL = (1 << 13) - 1            # EXECUTE .. MAKE_SYM: everything ABI 1 knows
REFER, TRUNCATE = 1 << 13, 1 << 14   # ABI 2, ABI 3
#: Making a character or block device file: never granted, not even beneath ``write`` (root's device file in a
#: private directory would open the kernel log, a disk, any terminal).
MAKE_DEVICE = 1 << 6 | 1 << 11
#: LANDLOCK_SCOPE_* (ABI 6): no connection to an abstract Unix socket, no signal to a process outside the domain.
SCOPE_ABSTRACT_UNIX_SOCKET, SCOPE_SIGNAL = 1 << 0, 1 << 1
#: Rights a rule on a single file (not a directory) may carry.
_FILE_RIGHTS = EXECUTE | WRITE_FILE | READ_FILE | TRUNCATE
#: Rights granted beneath read-only trees.
READ_ONLY = EXECUTE | READ_FILE | READ_DIR


class LandlockError(OSError):
    """Landlock is unavailable or a rule could not be added."""


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64),
                ("scoped", ctypes.c_uint64)]


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


def _syscall(number: int, *args: object) -> int:
    res = _libc.syscall(ctypes.c_long(number), *args)
    if res < 0:
        e = ctypes.get_errno()
        raise LandlockError(e, os.strerror(e))
    return res


def version() -> int:
    """The kernel's Landlock ABI version (>= 1); LandlockError saying why when it has none."""
    if platform.system() != "Linux" or platform.machine() not in ("x86_64", "aarch64"):
        raise LandlockError(errno.ENOSYS, f"no Landlock on {platform.system()} {platform.machine()}")
    try:
        return _syscall(_SYS_CREATE_RULESET, None, ctypes.c_size_t(0), ctypes.c_uint32(_CREATE_RULESET_VERSION))
    except LandlockError as e:
        why = {errno.ENOSYS: "kernel without Landlock", errno.EOPNOTSUPP: "Landlock disabled at boot"}
        raise LandlockError(e.errno, why.get(e.errno, e.strerror)) from None


def handled_rights(abi: int) -> int:
    """Every file-system right the kernel of ABI ``abi`` can refuse (so every one not granted is refused)."""
    return _ABI1_ALL | (REFER if abi >= 2 else 0) | (TRUNCATE if abi >= 3 else 0)


def scopes(abi: int) -> int:
    """What the kernel of ABI ``abi`` can keep inside the domain: signals (a program a deck runs with
    ``--allow-shell`` could stop or kill zoaf, or any program of yours) and abstract Unix sockets."""
    return SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL if abi >= 6 else 0


def restrict(read: Iterable[str | os.PathLike[str]], write: Iterable[str | os.PathLike[str]] = (),
             write_files: Iterable[str | os.PathLike[str]] = (), resolved: Iterable[Path] = ()) -> int:
    """Confine the calling thread: read (and map/execute) beneath ``read``, anything but device files beneath
    ``write``, read and write the single files ``write_files`` (``/dev/null``); signal only processes it started
    (ABI 6).
    Paths that do not exist are skipped, and so is a path of ``resolved`` (paths of ``read`` whose links were
    followed when they were checked) that now leads elsewhere: a rule is for the file a path opens, and a link
    put in since (a shared folder's include swapped for a link to ``~/.ssh/id_rsa``) granted the link's target.

    Returns the ABI version enforced. Raises LandlockError when Landlock is unavailable.
    """
    abi = version()
    handled = handled_rights(abi)
    attr = _RulesetAttr(handled_access_fs=handled, scoped=scopes(abi))
    fd = _syscall(_SYS_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(ctypes.sizeof(attr)),
                  ctypes.c_uint32(0))
    try:
        rules = [(p, READ_ONLY) for p in read] + [(p, handled & ~MAKE_DEVICE) for p in write]
        rules += [(p, _FILE_RIGHTS & handled) for p in write_files]
        exact = frozenset(resolved)
        for path, rights in rules:
            _add_rule(fd, Path(path), rights, exact=Path(path) in exact)
        if _libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            e = ctypes.get_errno()
            raise LandlockError(e, f"prctl(PR_SET_NO_NEW_PRIVS): {os.strerror(e)}")
        _syscall(_SYS_RESTRICT_SELF, ctypes.c_int(fd), ctypes.c_uint32(0))
    finally:
        os.close(fd)
    return abi


def _add_rule(ruleset_fd: int, path: Path, rights: int, *, exact: bool = False) -> None:
    """A rule granting ``rights`` beneath ``path``; ``exact``: only if no link is on it (the path the kernel
    opened is ``path`` itself)."""
    try:
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except FileNotFoundError:
        return
    try:
        if exact and os.readlink(f"/proc/self/fd/{fd}") != str(path):
            return
        if not path.is_dir():
            rights &= _FILE_RIGHTS
        beneath = _PathBeneathAttr(allowed_access=rights, parent_fd=fd)
        _syscall(_SYS_ADD_RULE, ctypes.c_int(ruleset_fd), ctypes.c_int(_RULE_PATH_BENEATH),
                 ctypes.byref(beneath), ctypes.c_uint32(0))
    finally:
        os.close(fd)

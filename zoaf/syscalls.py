"""The system calls the sandbox's seccomp filters refuse on the simulation thread (and what it starts), each list
with why, and the loader of a filter (:func:`load_filter`; which filter holds which list is :mod:`zoaf.sandbox`'s
choice). A rule is a call's name, or ``(name, (arg, op, mask, value), ...)`` for a call refused only with those
arguments (a number for a name libseccomp may not know).
"""
from __future__ import annotations

import ctypes
import errno
import signal
from collections.abc import Iterable

__all__ = ["ABSENT_CALLS", "CODE_CALLS", "DISK_CALLS", "LOCK_CALLS", "METADATA_CALLS", "NAMESPACE_CALLS",
           "NETWORK_CALLS", "REACH_CALLS", "STOP_CALLS", "clear_read_implies_exec", "load_filter"]

#: System calls that open a connection to anything: ``socket`` (TCP, UDP, a local daemon's Unix socket such as
#: Docker's), ``socketpair`` (a pair of Unix datagram sockets sends to any datagram socket by its path, which
#: Landlock does not govern: ``/dev/log``, the journal's), and io_uring, whose operations open and connect sockets
#: past a filter on ``socket``.
NETWORK_CALLS = ("socket", "socketpair", "io_uring_setup", "io_uring_enter", "io_uring_register")
#: System calls that reach past Landlock: into another process (trace it: write its memory, set its registers; copy
#: its memory; take its descriptors: layer 10; set its resource limits, ``prlimit64`` of a pid: an ``RLIMIT_CPU``
#: of 1 s kills any program of yours, zoaf included), into your kernel keyrings (your user keyring holds what you,
#: or systemd for a disk's passphrase, keep there) and your programs' System V shared memory, queues and
#: semaphores (attached by number: no file to refuse), a watch on any folder (``inotify``, ``fanotify``: the names
#: of the files made or opened in your home as they are), and the ``ioctl``s that act on zoaf's terminal (a program
#: held zoaf's stderr before it was relayed, and may still open ``/dev/tty`` where Landlock is missing): type into it (``TIOCSTI``, ``TIOCLINUX``'s paste: your shell ran it once zoaf ended),
#: take its foreground (``TIOCSPGRP``: zoaf, in the background, stopped or died at its next line), or, on a Linux
#: console, rewrite its keyboard (every old-style ``KD*`` request, ``0x4Bxx``: ``KDSKBSENT`` sets what F1 types, on
#: every console and after zoaf ends; ``KDSKBENT``, ``KDSETKEYCODE``, ``KDSKBMODE``) or switch and lock its
#: consoles (``VT_*``, ``0x56xx``). The kernel reads an ``ioctl`` request as 32 bits: the filter compares those only.
TIOCSTI, TIOCLINUX, TIOCSPGRP = 0x5412, 0x541C, 0x5410
KD_REQUESTS, VT_REQUESTS = 0x4B00, 0x5600
#: Calls that reschedule another process of yours (a pid or group other than the caller's own, 0): an unprivileged
#: program may raise the nice value of any of them (``setpriority(PRIO_USER)``: all your programs, for good), its
#: I/O class (``ioprio_set``), pin it to one CPU or make it ``SCHED_IDLE``; Landlock scopes none of these. And
#: ``perf_event_open``, which samples another process's registers and stack where Landlock is not there to refuse.
_OTHERS = (0, "NE", 0, 0)
REACH_CALLS = ("ptrace", "process_vm_readv", "process_vm_writev", "pidfd_getfd",
               "keyctl", "add_key", "request_key", "shmget", "shmat", "shmctl", "msgget", "msgsnd", "msgrcv",
               "msgctl", "semget", "semop", "semtimedop", "semctl", ("prlimit64", _OTHERS),
               "inotify_add_watch", "fanotify_mark",
               ("setpriority", _OTHERS), ("setpriority", (1, "NE", 0, 0)), ("ioprio_set", (0, "NE", 1, 0)),
               ("ioprio_set", (1, "NE", 0, 0)), *((call, _OTHERS) for call in (
                   "sched_setaffinity", "sched_setscheduler", "sched_setparam", "sched_setattr")),
               "perf_event_open",
               *(("ioctl", (1, "MASKED_EQ", 0xFFFFFFFF, r)) for r in (TIOCSTI, TIOCLINUX, TIOCSPGRP)),
               *(("ioctl", (1, "MASKED_EQ", 0xFFFFFF00, r)) for r in (KD_REQUESTS, VT_REQUESTS)))
#: Signals that stop a process rather than end it. A program a deck runs (``--allow-shell``) stopped its Dask worker
#: by the simulation thread's id (``kill -STOP TID``: that thread is in the program's Landlock domain, and a stop
#: stops every thread): a Dask worker's own thread keeps its timeout, so the run waited for good (a pool's parent
#: kills a stopped worker at its deadline). The calls that send one, by the argument that holds the signal (32 bits,
#: as the kernel reads it), and ``fcntl(F_SETSIG)``, with which the kernel sends any signal to a descriptor's owner
#: (``F_SETOWN``) when it is ready. No simulation stops a process or sets a descriptor's signal.
STOP_SIGNALS = (signal.SIGSTOP, signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU)
F_SETSIG = 10
STOP_CALLS = (*((call, (arg, "MASKED_EQ", 0xFFFFFFFF, int(sig))) for call, arg in (
                  ("kill", 1), ("tkill", 1), ("tgkill", 2), ("rt_sigqueueinfo", 1), ("rt_tgsigqueueinfo", 2),
                  ("pidfd_send_signal", 1)) for sig in STOP_SIGNALS),
              ("fcntl", (1, "MASKED_EQ", 0xFFFFFFFF, F_SETSIG)))
#: ``fcntl`` commands that lock a file (POSIX and open-file-description locks) or lease it.
F_SETLK, F_SETLKW, F_OFD_SETLK, F_OFD_SETLKW, F_SETLEASE = 6, 7, 37, 38, 1024
#: Locks and leases on any file it may open for reading, which Landlock does not govern: a program's read lock on
#: the ``history.db`` of a run kept in the deck's folder failed the run after 30 s ("database is locked"), and a
#: lease makes others' opens of the file wait 45 s each (``/proc/sys/fs/lease-break-time``). Neither ngspice nor
#: the simulating thread locks a file.
LOCK_CALLS = ("flock", *(("fcntl", (1, "MASKED_EQ", 0xFFFFFFFF, c))
                         for c in (F_SETLK, F_SETLKW, F_OFD_SETLK, F_OFD_SETLKW, F_SETLEASE)))
#: ``fchmodat2``, ``setxattrat``, ``removexattrat`` by number (one on x86-64 and aarch64 alike): libseccomp before
#: 2.6 does not know their names.
FCHMODAT2, SETXATTRAT, REMOVEXATTRAT = 452, 463, 466
#: ``ioctl`` requests that set a file's inode flags (``chattr``: an owner sets ``nodump``, which backups skip,
#: ``noatime``, ``sync``, ``nocow`` on a file it opened only for reading), its XFS attributes and project, its
#: generation, or make it read-only for good (fs-verity) or an empty folder encrypted: 64-bit requests, then 32.
FILE_ATTRIBUTE_REQUESTS = (0x40086602, 0x40046602, 0x401C5820, 0x40087602, 0x40047602, 0x40806685, 0x800C6613)
#: System calls Landlock does not govern that change what your files are: a file's mode, owner and extended
#: attributes (``chmod 666`` of your ``~/.bashrc`` or the folders of your Python environment lets another user
#: write code you run; ``fchmod`` of the terminal zoaf's stderr holds, any user's keys), by path or by a descriptor
#: Landlock let it open for reading; its times by path (``futimens`` of a file it opened, as ``touch`` does, stays).
#: And POSIX message queues (no file for Landlock to refuse unlinking: a program deleted another program's queue,
#: and made queues it could not open that stayed, counting against your quota, after zoaf ended).
METADATA_CALLS = ("chmod", "fchmod", "fchmodat", (FCHMODAT2,), "chown", "fchown", "lchown", "fchownat",
                  "setxattr", "lsetxattr", "fsetxattr", "removexattr", "lremovexattr", "fremovexattr",
                  (SETXATTRAT,), (REMOVEXATTRAT,), "utime", "utimes", "futimesat",
                  ("utimensat", (1, "NE", 0, 0)),
                  "mq_open", "mq_unlink", "mq_timedsend", "mq_timedreceive", "mq_notify", "mq_getsetattr",
                  *(("ioctl", (1, "MASKED_EQ", 0xFFFFFFFF, r)) for r in FILE_ATTRIBUTE_REQUESTS))

#: ``fallocate``: a file's blocks claimed without writing them, as many as the disk has free, in one call (4 GB in
#: 10 ms on ext4, measured; a tmpfs ``TMPDIR`` takes them from memory): a program run with ``--allow-shell`` held
#: 1 GiB past a 64 MiB ``ZOAF_MAX_DISK`` before the watchdog's next sample, and could fill the disk so. Written bytes
#: take the disk's time, which the watchdog samples. No simulation preallocates a file.
DISK_CALLS = ("fallocate",)

#: ``mmap``/``mprotect`` bits: an executable mapping, and one backed by no file.
PROT_EXEC, MAP_ANONYMOUS = 0x4, 0x20
#: ``clone``/``unshare`` flags that make a new namespace (user, mount, cgroup, UTS, IPC, PID, network);
#: ``CLONE_NEWTIME`` (0x80) is ``unshare``'s only: in ``clone``'s flags that bit is the exit signal's.
CLONE_NEW = (0x10000000, 0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x20000000, 0x40000000)
#: New namespaces, and a fault handler in user space. In a new user namespace a program holds every capability
#: again (no capability is what keeps a root program off device files and ``CAP_SYS_PTRACE``), over what that
#: namespace owns: Landlock refuses ``mount``, but not the kernel code such namespaces open to any user
#: (``fsopen``/``fsconfig`` of a new mount namespace's file systems, the usual way to an exploit of the kernel),
#: nor does ``userfaultfd`` (which stretches a kernel race at will) serve a simulation. ``setns`` joins one.
#: ``bpf`` too: where ``kernel.unprivileged_bpf_disabled`` is 0 it loads programs into the kernel's verifier.
NAMESPACE_CALLS = ("unshare", "setns", "userfaultfd", "bpf", *(("clone", (0, "MASKED_EQ", f, f)) for f in CLONE_NEW))
#: Calls the filter makes look absent (``ENOSYS``): ``clone3`` passes its flags in memory, which seccomp cannot
#: read; glibc then starts threads and programs with ``clone``, whose flags it reads.
ABSENT_CALLS = ("clone3",)

#: ``personality(2)``: the flag that makes every readable mapping executable, and the argument that only reads.
READ_IMPLIES_EXEC, PER_QUERY = 0x0400000, 0xFFFFFFFF
#: What maps new code from a file: ``dlopen`` maps a library's segments executable (``mmap``), or makes them so
#: (``mprotect``, a library with text relocations). Anonymous executable memory (libffi's closures) is left alone:
#: filling it needs native code already running. And ``personality`` but its query: with ``READ_IMPLIES_EXEC``
#: the kernel adds ``PROT_EXEC`` to a readable mapping after the filter has seen the call, and a library whose
#: segments are all read-only ran its constructor.
CODE_CALLS = (("mmap", (2, "MASKED_EQ", PROT_EXEC, PROT_EXEC), (3, "MASKED_EQ", MAP_ANONYMOUS, 0)),
              ("mprotect", (2, "MASKED_EQ", PROT_EXEC, PROT_EXEC)),
              ("pkey_mprotect", (2, "MASKED_EQ", PROT_EXEC, PROT_EXEC)),
              ("personality", (0, "NE", PER_QUERY, 0)))

Rule = str | tuple


def load_filter(refused: Iterable[Rule], err: int, *, every_thread: bool, absent: Iterable[str] = ()) -> str | None:
    """Load a seccomp filter that makes ``refused`` fail with ``err`` and ``absent`` with ``ENOSYS``: in every
    thread of the process (``TSYNC``), or in the calling thread and what it starts. A rule's arguments hold when
    each ``(arg, op, a, b)`` does (``pyseccomp.Arg``; ``op`` its attribute name, as ``"MASKED_EQ"``). None once
    loaded, else why not (no libseccomp, a kernel without seccomp)."""
    try:
        import pyseccomp as sc
        filt = sc.SyscallFilter(sc.ALLOW)
        actions = [(r, sc.ERRNO(err)) for r in refused] + [(a, sc.ERRNO(errno.ENOSYS)) for a in absent]
        for rule, action in actions:
            name, *args = (rule,) if isinstance(rule, str) else rule
            filt.add_rule(action, name, *(sc.Arg(i, getattr(sc, op), a, b) for i, op, a, b in args))
        if every_thread:
            filt.set_attr(sc.Attr.CTL_TSYNC, 1)
        filt.load()
    except (ImportError, OSError, RuntimeError) as e:
        return f"{type(e).__name__}: {e}"
    return None


def clear_read_implies_exec() -> None:
    """Clear ``READ_IMPLIES_EXEC`` from the calling thread's persona (so the threads and programs it starts): a
    process started with it (``setarch -X``, where the kernel keeps it across ``execve``) maps every readable
    file executable, which the code filter, reading ``mmap``'s arguments, does not see."""
    personality = ctypes.CDLL(None, use_errno=True).personality
    personality.argtypes = [ctypes.c_ulong]
    persona = personality(PER_QUERY)
    if persona != -1 and persona & READ_IMPLIES_EXEC:
        personality(persona & ~READ_IMPLIES_EXEC)

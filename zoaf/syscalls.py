"""The system calls the sandbox's seccomp filters refuse on the simulation thread (and what it starts), each list
with why: data only, the filters are built in :mod:`zoaf.sandbox`. A rule is a call's name, or ``(name, (arg,
op, mask, value), ...)`` for a call refused only with those arguments (a number for a name libseccomp may not know).
"""
from __future__ import annotations

__all__ = ["CODE_CALLS", "METADATA_CALLS", "NETWORK_CALLS", "REACH_CALLS"]

#: System calls that open a connection to anything: ``socket`` (TCP, UDP, a local daemon's Unix socket such as
#: Docker's), and io_uring, whose operations open and connect sockets past a filter on ``socket``.
NETWORK_CALLS = ("socket", "io_uring_setup", "io_uring_enter", "io_uring_register")
#: System calls that reach past Landlock: into another process (trace it: write its memory, set its registers; copy
#: its memory; take its descriptors: layer 10; set its resource limits, ``prlimit64`` of a pid: an ``RLIMIT_CPU``
#: of 1 s kills any program of yours, zoaf included), into your kernel keyrings (your user keyring holds what you,
#: or systemd for a disk's passphrase, keep there) and your programs' System V shared memory, queues and
#: semaphores (attached by number: no file to refuse), a watch on any folder (``inotify``, ``fanotify``: the names
#: of the files made or opened in your home as they are), and the ``ioctl``s that act on zoaf's terminal (a program
#: holds zoaf's stderr): type into it (``TIOCSTI``, ``TIOCLINUX``'s paste: your shell ran it once zoaf ended),
#: take its foreground (``TIOCSPGRP``: zoaf, in the background, stopped or died at its next line). The kernel
#: reads an ``ioctl`` request as 32 bits: the filter compares those only.
TIOCSTI, TIOCLINUX, TIOCSPGRP = 0x5412, 0x541C, 0x5410
REACH_CALLS = ("ptrace", "process_vm_readv", "process_vm_writev", "pidfd_getfd",
               "keyctl", "add_key", "request_key", "shmget", "shmat", "shmctl", "msgget", "msgsnd", "msgrcv",
               "msgctl", "semget", "semop", "semtimedop", "semctl", ("prlimit64", (0, "NE", 0, 0)),
               "inotify_add_watch", "fanotify_mark",
               *(("ioctl", (1, "MASKED_EQ", 0xFFFFFFFF, r)) for r in (TIOCSTI, TIOCLINUX, TIOCSPGRP)))
#: ``fchmodat2``, ``setxattrat``, ``removexattrat`` by number (one on x86-64 and aarch64 alike): libseccomp before
#: 2.6 does not know their names.
FCHMODAT2, SETXATTRAT, REMOVEXATTRAT = 452, 463, 466
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
                  "mq_open", "mq_unlink", "mq_timedsend", "mq_timedreceive", "mq_notify", "mq_getsetattr")

#: ``mmap``/``mprotect`` bits: an executable mapping, and one backed by no file.
PROT_EXEC, MAP_ANONYMOUS = 0x4, 0x20
#: What maps new code from a file: ``dlopen`` maps a library's segments executable (``mmap``), or makes them so
#: (``mprotect``, a library with text relocations). Anonymous executable memory (libffi's closures) is left alone:
#: filling it needs native code already running.
CODE_CALLS = (("mmap", (2, "MASKED_EQ", PROT_EXEC, PROT_EXEC), (3, "MASKED_EQ", MAP_ANONYMOUS, 0)),
              ("mprotect", (2, "MASKED_EQ", PROT_EXEC, PROT_EXEC)),
              ("pkey_mprotect", (2, "MASKED_EQ", PROT_EXEC, PROT_EXEC)))

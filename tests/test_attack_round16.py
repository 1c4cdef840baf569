"""Red team, round 16: what a program a deck runs (``--allow-shell``) did past Landlock, which governs opening,
making and removing files, not a file's mode, owner, attributes or times, nor POSIX message queues.

Each attack is proved real first (plain ``ngspice -b`` runs the deck: the damage is done), then run through
zoaf's backends (``workers=0``, a pool worker, Dask), where it must do nothing.
"""
from __future__ import annotations

import ctypes
import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from attackkit import DIVIDER_SPEC

from zoaf.circuit import CircuitProblem
from zoaf.evaluate import Evaluator

pytestmark = [pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux sandbox"),
              pytest.mark.skipif(not shutil.which("python3"), reason="the deck's program is a python3 script")]

BACKENDS = ({"workers": 0}, {"workers": 1}, {"workers": 1, "dask": "local"})

#: Changes the mode of a file of yours outside the deck's reach (argv[1]) and of the deck's own folder (argv[2],
#: which Landlock lets it open for reading), sets an attribute on the first and its times.
_CHMODDER = """
import os, sys
for act in (lambda: os.chmod(sys.argv[1], 0o666), lambda: os.fchmod(os.open(sys.argv[2], os.O_RDONLY), 0o777),
            lambda: os.setxattr(sys.argv[1], "user.zoaf", b"x"), lambda: os.utime(sys.argv[1], (0, 0))):
    try:
        act()
    except OSError:
        pass
print(0)
"""

#: Deletes a POSIX message queue of another program (argv[1]) and makes one of its own (argv[2]).
_QUEUES = """
import ctypes, os, sys
rt = ctypes.CDLL("librt.so.1", use_errno=True)
rt.mq_unlink(sys.argv[1].encode())
rt.mq_open(sys.argv[2].encode(), os.O_CREAT | os.O_RDWR, 0o600, None)
print(0)
"""


def _deck(folder: Path, title: str, command: str) -> Path:
    """A divider whose ``.control`` block runs ``command`` (back-quoted: --allow-shell); its spec beside it."""
    (folder / "deck.toml").write_text(DIVIDER_SPEC)
    deck = folder / "deck.cir"
    deck.write_text(f"{title}\n.param r1=1k\nv1 in 0 dc 1\nr1 in out {{r1}}\nr2 out 0 1k\n.control\n"
                    f"set x = `{command}`\nop\nlet vo = v(out)\nprint vo\n.endc\n.end\n")
    return deck


def _in_every_backend(deck: Path, ready: Callable[[], None], unharmed: Callable[[], bool]) -> None:
    """The deck's program did its damage under plain ``ngspice -b``, and none in any backend of zoaf's."""
    ready()
    subprocess.run(["ngspice", "-b", str(deck)], cwd=deck.parent, capture_output=True, timeout=60)
    assert not unharmed()                                                 # real
    for kw in BACKENDS:
        ready()
        with Evaluator(CircuitProblem(deck, allow_shell=True), **kw) as ev:
            [record] = ev.evaluate(np.array([[0.5]]))
        assert set(record.outcome.measures) == {"vo"}, (kw, record.outcome)
        assert unharmed(), kw


def test_a_program_a_deck_runs_cannot_change_your_files_modes_in_any_backend(tmp_path: Path):
    """Landlock governs opening a file, not ``chmod``: a program (--allow-shell) made a file of yours outside the
    sandbox (``~/.bashrc``) writable by every user of the machine, and the folders it may read (the deck's, your
    Python environment's) too, where another user then writes code you run; it set the file's attributes and times.
    Before the fix, the file's mode was 0666 after every backend."""
    victim, deck_folder = tmp_path / "outside" / "bashrc", tmp_path / "deck"
    victim.parent.mkdir()
    deck_folder.mkdir()
    (deck_folder / "chmod.py").write_text(_CHMODDER)
    deck = _deck(deck_folder, "chmod", f"python3 {deck_folder / 'chmod.py'} {victim} {deck_folder}")

    def ready() -> None:
        victim.unlink(missing_ok=True)                  # a new file: no attribute left from the run before
        victim.write_text("# yours\n")
        victim.chmod(0o600)
        os.utime(victim, (1e9, 1e9))
        deck_folder.chmod(0o755)

    def unharmed() -> bool:
        st = victim.stat()
        return (stat.S_IMODE(st.st_mode), stat.S_IMODE(deck_folder.stat().st_mode), st.st_mtime) == \
            (0o600, 0o755, 1e9) and "user.zoaf" not in _attributes(victim)

    _in_every_backend(deck, ready, unharmed)


def _attributes(path: Path) -> list[str]:
    try:
        return os.listxattr(path)
    except OSError:                                     # a file system without them
        return []


def test_a_program_a_deck_runs_cannot_remove_or_make_message_queues_in_any_backend(tmp_path: Path):
    """POSIX message queues have no file for Landlock to refuse unlinking: a program (--allow-shell) deleted a queue
    another program of yours had made, and made queues (refused their opening, not their making) that stayed after
    zoaf ended, counting against your per-user quota until none of your programs could make one. Before the fix,
    the victim's queue was gone and the deck's there after every backend."""
    rt = ctypes.CDLL("librt.so.1", use_errno=True)
    victim, made = f"/zoaf-victim-{os.getpid()}", f"/zoaf-made-{os.getpid()}"
    (tmp_path / "queues.py").write_text(_QUEUES)
    deck = _deck(tmp_path, "queues", f"python3 {tmp_path / 'queues.py'} {victim} {made}")

    def exists(name: str) -> bool:
        fd = rt.mq_open(name.encode(), os.O_RDONLY, 0, None)
        if fd >= 0:
            os.close(fd)
        return fd >= 0

    def ready() -> None:
        rt.mq_unlink(made.encode())
        fd = rt.mq_open(victim.encode(), os.O_CREAT | os.O_RDWR, 0o600, None)
        if fd < 0:
            pytest.skip(f"no POSIX message queues here (errno {ctypes.get_errno()})")
        os.close(fd)

    try:
        _in_every_backend(deck, ready, lambda: exists(victim) and not exists(made))
    finally:
        rt.mq_unlink(victim.encode())
        rt.mq_unlink(made.encode())

"""Red team, round 17: what a program a deck runs (``--allow-shell``) did with calls Landlock does not govern: lock or
lease a file it may read, set its inode flags, rewrite a console's keyboard, reschedule your other programs; and a
received history whose own SQL computed a value past SQLite's length limit as a resume wrote its first row.

Each attack on a file or a process is proved real first (plain ``ngspice -b`` runs the deck: the damage is done),
then run through zoaf's backends (``workers=0``, a pool worker, Dask), where every call is refused.
"""
from __future__ import annotations

import fcntl
import os
import shutil
import sqlite3
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest
from attackkit import finished, in_each_backend, program_deck  # noqa: F401 (a fixture)
from typer.testing import CliRunner

from zoaf.circuit import CircuitProblem
from zoaf.cli import app

pytestmark = [pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux sandbox"),
              pytest.mark.skipif(not shutil.which("python3"), reason="the deck's program is a python3 script")]

FS_IOC_GETFLAGS, FS_IOC_SETFLAGS, FS_NODUMP_FL = 0x80086601, 0x40086602, 0x40

#: Each call a program makes on a file of the deck's folder it opened for reading (argv[1]) or on another process
#: of yours (argv[2]); it prints the sum of the bits of those not refused with EACCES.
_PROBE = r'''
import ctypes, errno, fcntl, os, struct, sys
libc = ctypes.CDLL(None, use_errno=True)
fd, victim = os.open(sys.argv[1], os.O_RDONLY), int(sys.argv[2])
lock = struct.pack("hhqqi", fcntl.F_RDLCK, 0, 0, 0, 0)
calls = [lambda: fcntl.flock(fd, fcntl.LOCK_SH), lambda: fcntl.fcntl(fd, fcntl.F_SETLK, lock),
         lambda: fcntl.fcntl(fd, 37, lock), lambda: fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_RDLCK),
         lambda: fcntl.ioctl(fd, 0x40086602, struct.pack("l", 0x40)),
         lambda: fcntl.ioctl(2, 0x4B49, bytes(514)), lambda: fcntl.ioctl(2, 0x4B47, bytes(4)),
         lambda: fcntl.ioctl(2, 0x4B4D, bytes(8)), lambda: fcntl.ioctl(2, 0x5606, 1),
         lambda: os.setpriority(os.PRIO_PROCESS, victim, 19), lambda: os.setpriority(os.PRIO_PGRP, victim, 19),
         lambda: os.sched_setaffinity(victim, {0}),
         lambda: os.sched_setscheduler(victim, os.SCHED_IDLE, os.sched_param(0))]
got = 0
for bit, call in enumerate(calls):
    try:
        call()
        got |= 1 << bit
    except OSError as e:
        got |= 0 if e.errno == errno.EACCES else 1 << bit
print(got)
'''
_NAMES = ("flock", "F_SETLK", "F_OFD_SETLK", "F_SETLEASE", "FS_IOC_SETFLAGS", "KDSKBSENT", "KDSKBENT",
          "KDSETKEYCODE", "VT_ACTIVATE", "setpriority", "setpriority(PRIO_PGRP)", "sched_setaffinity",
          "sched_setscheduler")


def _flags(path: Path) -> int:
    fd = os.open(path, os.O_RDONLY)
    try:
        return struct.unpack("l", fcntl.ioctl(fd, FS_IOC_GETFLAGS, bytes(8)))[0]
    finally:
        os.close(fd)


def test_a_program_a_deck_runs_cannot_lock_flag_or_reschedule_outside_its_sandbox_in_any_backend(tmp_path: Path):
    """Landlock governs opening a file, not what a descriptor opened for reading does: a program (--allow-shell)
    locked and leased the deck's files (a run kept beside them, its ``history.db``, stalled), set ``nodump`` on
    them (your backups skip the file), rewrote a console's function keys and switched its console, and raised the
    nice value of your other programs and pinned them to one CPU, for good. Before the fix, every call but the
    console's (ENOTTY: no console here) succeeded in every backend."""
    model = tmp_path / "model.inc"
    model.write_text("* the designer's\n")
    (tmp_path / "probe.py").write_text(_PROBE)
    victim = subprocess.Popen(["sleep", "300"], start_new_session=True)     # its own group, for PRIO_PGRP
    try:
        deck = program_deck(tmp_path, "calls", f"python3 {tmp_path / 'probe.py'} {model} {victim.pid}")
        subprocess.run(["ngspice", "-b", str(deck)], cwd=tmp_path, capture_output=True, timeout=60)
        assert _flags(model) & FS_NODUMP_FL and os.getpriority(os.PRIO_PROCESS, victim.pid) == 19   # real
        assert os.sched_getaffinity(victim.pid) == {0} or os.cpu_count() == 1
        model.unlink()
        model.write_text("* the designer's\n")
        victim.kill()
        victim.wait()
        victim = subprocess.Popen(["sleep", "300"], start_new_session=True)
        deck = program_deck(tmp_path, "calls", f"python3 {tmp_path / 'probe.py'} {model} {victim.pid}")
        for done in in_each_backend(lambda: CircuitProblem(deck, allow_shell=True)):
            [record] = done.records
            got = int(record.outcome.measures["got"])
            assert got == 0, (done.kw, [n for bit, n in enumerate(_NAMES) if got >> bit & 1])
        assert not _flags(model) & FS_NODUMP_FL
        assert os.getpriority(os.PRIO_PROCESS, victim.pid) == 0
        assert os.sched_getaffinity(victim.pid) == os.sched_getaffinity(0)
    finally:
        victim.kill()
        victim.wait()


#: Forks a program that outlives its deck's line and holds a read lock on each file of the run (argv[1]) it opens.
_LOCKER = r'''
import fcntl, os, struct, sys, time
if os.fork():
    print(0)
    sys.exit(0)
os.setsid()
null = os.open(os.devnull, os.O_RDWR)
for fd in (0, 1, 2):
    os.dup2(null, fd)
held = 0
for name in ("history.db-shm", "history.db"):
    try:
        fd = os.open(os.path.join(sys.argv[1], name), os.O_RDONLY)
        fcntl.fcntl(fd, fcntl.F_SETLK, struct.pack("hhqqi", fcntl.F_RDLCK, 0, 0, 0, 0))
        held += 1
    except OSError:
        pass
if held:
    time.sleep(120)
'''


def test_a_program_a_deck_runs_cannot_stall_a_run_kept_in_the_decks_folder(tmp_path: Path):
    """``zoaf optimize deck.cir --out run --allow-shell`` in the deck's folder: a program of the deck held a read lock
    on ``history.db`` and its ``-shm`` (Landlock lets it open the deck's folder for reading), and zoaf's first write
    waited 30 s, then failed the run ("database is locked")."""
    (tmp_path / "locker.py").write_text(_LOCKER)
    deck = program_deck(tmp_path, "calls", f"python3 {tmp_path / 'locker.py'} {tmp_path / 'run'}")
    start = time.monotonic()
    r = CliRunner().invoke(app, ["optimize", str(deck), "--budget", "4", "--workers", "0", "--allow-shell",
                                 "--quiet", "--out", str(tmp_path / "run")])
    assert r.exit_code == 0, r.output
    assert time.monotonic() - start < 25
    db = sqlite3.connect(tmp_path / "run" / "history.db")
    assert db.execute("SELECT count(*) FROM evals").fetchone()[0] >= 4
    db.close()


def _received_unfinished(finished: Path, tmp_path: Path, sql: str) -> Path:
    """A copy of the finished run without its last row and end files, as received: ``sql`` run on its history."""
    run = Path(shutil.copytree(finished, tmp_path / "received" / "run"))
    (run / "result.json").unlink()
    db = sqlite3.connect(run / "history.db")
    db.execute("DELETE FROM evals WHERE idx = (SELECT max(idx) FROM evals)")
    db.commit()
    table = db.execute("SELECT sql FROM sqlite_master WHERE name = 'evals'").fetchone()[0]
    db.executescript(sql.replace("{evals}", table.rstrip()[:-1]))
    db.close()
    return run


@pytest.mark.parametrize("sql, says", [
    ("CREATE INDEX big ON evals(length(zeroblob(20000000 + idx)));",
     "not a zoaf run history (index 'big', which zoaf does not write)"),
    ("PRAGMA journal_mode=DELETE; DROP TABLE evals; {evals}, CHECK (length(zeroblob(20000000)) > 0));",
     "not a zoaf run history (a CHECK constraint in table evals, which zoaf does not write)")])
def test_a_history_whose_sql_computes_a_value_past_sqlites_limit_is_one_line_on_resume(finished: Path,
                                                                                        tmp_path: Path, sql: str,
                                                                                        says: str) -> None:
    """A received history whose index expression or CHECK makes a 20 MB blob for each row written: ``zoaf optimize
    --resume`` ended in a ``DataError`` traceback (exit 1) at its first row."""
    run = _received_unfinished(finished, tmp_path, sql)
    r = CliRunner().invoke(app, ["optimize", str(finished.parent / "mc.cir"), "--workers", "0", "--quiet",
                                 "--resume", str(run)])
    assert r.exit_code == 2, r.output
    assert r.output.strip() == f"error: {run / 'history.db'}: {says}"
    assert r.exception is None or isinstance(r.exception, SystemExit)


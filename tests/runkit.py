"""A ``zoaf optimize`` child stopped by a signal once it has committed some rows: the kill/resume and Ctrl-C/SIGTERM
tests share how they wait for the rows, stop the run and make sure nothing is left running."""
from __future__ import annotations

import sqlite3
import subprocess
import time
from pathlib import Path


def count(run: Path) -> int:
    """Rows committed so far, read-only (a plain connect would create an empty history.db under the run)."""
    if not (run / "history.db").exists():
        return 0
    try:
        with sqlite3.connect(f"file:{run / 'history.db'}?mode=ro", uri=True, timeout=1) as db:
            return db.execute("SELECT COUNT(*) FROM evals").fetchone()[0]
    except sqlite3.Error:                               # the file made, its table not yet
        return 0


def signal_after(proc: subprocess.Popen, run: Path, rows: int, signum: int, *, wait_s: float = 120,
                 poll_s: float = 0.2, timeout: float = 120) -> tuple[str, str]:
    """Sends ``signum`` once ``run`` has ``rows`` rows (or ``wait_s`` passed), then the child's stdout and stderr.
    A child still running after ``timeout`` is killed: a regression would go on for its whole budget."""
    try:
        deadline = time.monotonic() + wait_s
        while count(run) < rows and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(poll_s)
        assert proc.poll() is None, "the run ended before the signal: " + proc.stderr.read()
        proc.send_signal(signum)
        return proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

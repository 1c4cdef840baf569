"""Red team, round 29: the disk a simulating process may fill, what it leaves behind, and a reply cut short.

Found and fixed:
- a program run with ``--allow-shell`` claimed a file's blocks without writing them (``fallocate``: 4 GB in 10 ms,
  measured on this machine's ext4): 1 GiB held past a 64 MiB ``ZOAF_MAX_DISK`` before the watchdog's next sample,
  its simulation back OK; the same call takes every free byte of the disk at once. The simulation thread and what it
  starts now preallocate nothing (seccomp: :data:`zoaf.syscalls.DISK_CALLS`);
- a folder its owner may not list, made with no ``chmod`` (``umask 477; mkdir d``, still writable), with files in it:
  no removal could empty it, and the private directory stayed in the temporary folder after the run, in every
  backend. The removal now gives such folders their owner's rights first (:func:`zoaf.watchdog.remove_tree`);
- native code in a pool worker (or the ``workers=0`` child) that wrote a message's start and no more held zoaf for
  good: ``recv_bytes`` waited for the rest, and the pool's loop, which keeps every worker's deadline, with it (a 3 s
  timeout, still waiting after 40 s). A reply's rest now comes within :data:`zoaf.replies.REPLY_WAIT` s or its sender
  is killed (:func:`zoaf.replies.receive`); while the pool read such a reply, another worker's answer, sent in
  time, waited unread past its deadline and was charged as a timeout (found in review): a reply there to read is now
  read before any deadline is judged.

Held (the strongest kept below where no test covered the mechanism): a hard link from the deck's folder into the
private directory, then written through; the deck's file moved into the private directory; a core dump written in
the deck's folder (the program's working folder there, ``ulimit -c unlimited``: the kernel's write is the crashing
program's, under its Landlock domain); a symbolic link out, written through. Held and covered elsewhere, or left as
the README says: 512 MiB in a ``memfd`` (no folder lists it: counted as a removed file a program holds); a sparse file
of a terabyte (its blocks counted, not its size: nothing held); a FIFO as an XSPICE ``filesource`` file (the sandboxed
process waits, ``--timeout`` ends it; zoaf's own process never opens it); a program reading zoaf's ``/proc/PID/
environ`` and ``cmdline`` with a secret in zoaf's environment (Landlock: no other process's ``/proc`` entries; the
secret in no output, history or relayed line, every backend); rich markup and OSC 8 links in a deck's title, a
spec's units (shown as text); a received run's ``result.json`` or ``trace.json`` nested 200,000 deep (``corners``,
``sensitivity``, ``yield``: one line; ``--resume`` rewrites it). Not reached: a Dask worker's private directory with
such a folder, left to the ``sh`` program that removes it after a crash (the watchdog's next sample finds the folder
unlistable and ends the process with its own removal first); a Dask worker's reply, which Dask's transport carries.
"""
from __future__ import annotations

import os
import resource
import shutil
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from multiprocessing import Pipe
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from attackkit import BACKENDS, DIVIDER_SPEC, in_each_backend, program_deck

from zoaf import replies, watchdog
from zoaf.circuit import CircuitProblem
from zoaf.errors import WorkerCrash
from zoaf.evaluate import Evaluator
from zoaf.problem import Outcome, Parameter, Problem, Status
from zoaf.sandbox import PRIVATE_PREFIX

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux sandbox")

#: Bytes a program claims at once: far past the disk limit the tests set (64 MiB).
CLAIM = 256 << 20
#: What a reply cut short says: the first 10 bytes of a message of 1,000.
CUT_SHORT = struct.pack("!i", 1000) + b"x" * 10


def _finishes(within: float, fn: Callable[[], Any]) -> Any:
    """``fn()``'s result, failing the test if it takes more than ``within`` s (it would hang the suite: the thread
    is left behind)."""
    out: list[Any] = []
    worker = threading.Thread(target=lambda: out.append(fn()), daemon=True)
    worker.start()
    worker.join(within)
    assert out, f"still waiting after {within:g} s"
    return out[0]


# -- the disk claimed in one call ------------------------------------------------------------------------------------
@pytest.mark.skipif(shutil.which("fallocate") is None, reason="no fallocate program (util-linux)")
def test_a_program_claims_no_disk_past_the_limit_in_one_call_in_any_backend(tmp_path: Path, monkeypatch):
    """``fallocate`` claims the blocks without writing them, faster than the watchdog samples: 256 MiB held past a
    64 MiB limit, the simulation back OK with the blocks as its measure. Proved real first: under ``ngspice -b``
    the file holds them. Now the call is refused: nothing held, the simulation OK."""
    if subprocess.run(["fallocate", "-l", "4096", str(tmp_path / "probe")]).returncode != 0:
        pytest.skip("the temporary folder's file system preallocates nothing")
    (tmp_path / "claim.sh").write_text(f"fallocate -l {CLAIM} fill.raw 2>/dev/null\nstat -c %b fill.raw\n")
    deck = program_deck(tmp_path, "claims", f"sh {tmp_path / 'claim.sh'}")
    (tmp_path / "plain").mkdir()
    r = subprocess.run(["ngspice", "-b", str(deck)], cwd=tmp_path / "plain", capture_output=True, text=True,
                       timeout=120)
    assert (tmp_path / "plain" / "fill.raw").stat().st_blocks * 512 >= CLAIM, r.stdout       # real
    (tmp_path / "plain" / "fill.raw").unlink()
    monkeypatch.setenv("ZOAF_MAX_DISK", "64M")
    for kw, [record], _ in in_each_backend(lambda: CircuitProblem(deck, allow_shell=True)):
        assert record.outcome.status is Status.OK, (kw, record.outcome)
        assert record.outcome.measures["got"] == 0, kw                  # no block held


# -- what a run leaves behind ----------------------------------------------------------------------------------------
#: Makes a folder its owner cannot list, with 100 kB in it, without ``chmod`` (refused in the sandbox).
_HIDE = "umask 0477\nmkdir hidden\numask 022\ndd if=/dev/zero of=hidden/data bs=1024 count=100 status=none\necho 1\n"


def _owner_only() -> list[str]:
    """The command prefix that runs a program with its owner's rights only: as root, with no capability (root
    lists and removes any folder); nothing for another user."""
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        pytest.skip("running as root, and no setpriv (util-linux) to drop root's capabilities")
    return ["setpriv", "--bounding-set=-all", "--inh-caps=-all"]


#: Simulates a deck (argv[1]) once in each backend, in a process of its own (with its owner's rights only).
_EACH_BACKEND = f"""import sys
sys.path.insert(0, {str(Path(__file__).parent)!r})
from attackkit import in_each_backend
from zoaf.circuit import CircuitProblem
for kw, [record], _ in in_each_backend(lambda: CircuitProblem(sys.argv[1], allow_shell=True)):
    print(kw, record.outcome.status, record.outcome.error)
"""


def test_a_folder_its_owner_cannot_list_leaves_nothing_behind_in_any_backend(tmp_path: Path):
    """A program's ``umask 477; mkdir hidden`` (no ``chmod``) then a file in it: no removal emptied the folder, and
    the private directory stayed in the temporary folder after the run. Proved real first: such a folder outlives
    Python's removal. The backends run in a process with its owner's rights only (as root, no capability)."""
    prefix = _owner_only()
    (tmp_path / "hide.sh").write_text(_HIDE)
    proof = tmp_path / "proof"
    proof.mkdir()
    subprocess.run([*prefix, "sh", str(tmp_path / "hide.sh")], cwd=proof, check=True, capture_output=True)
    subprocess.run([*prefix, sys.executable, "-c", "import shutil, sys; shutil.rmtree(sys.argv[1], True)",
                    str(proof)], check=True)
    assert (proof / "hidden").exists()                                   # real: it outlives the removal
    subprocess.run(["chmod", "-R", "u+rwx", str(proof)], check=True)
    shutil.rmtree(proof)
    deck = program_deck(tmp_path, "hides", f"sh {tmp_path / 'hide.sh'}")
    temp = tmp_path / "temp"
    temp.mkdir()
    r = subprocess.run([*prefix, sys.executable, "-c", _EACH_BACKEND, str(deck)], env={**os.environ,
                       "TMPDIR": str(temp)}, cwd=tmp_path, capture_output=True, text=True, timeout=180)
    assert r.returncode == 0 and r.stdout.count("\n") == len(BACKENDS), r.stdout + r.stderr[-3000:]
    deadline = time.monotonic() + 10                                     # a Dask worker's removal ends with it
    while list(temp.glob(f"{PRIVATE_PREFIX}*")) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not list(temp.glob(f"{PRIVATE_PREFIX}*")), r.stdout


def test_the_removal_changes_no_mode_through_a_link(tmp_path: Path):
    """The removal gives unlistable folders their owner's rights back: never through a link, neither the folder it
    removes (a name in a shared temporary folder another user may make, pointing at your files) nor one below it."""
    victim = tmp_path / "yours"
    (victim / "locked").mkdir(parents=True)
    (victim / "locked").chmod(0o500)
    private = tmp_path / f"{PRIVATE_PREFIX}1-x"
    private.mkdir()
    (private / "a" / "b").mkdir(parents=True)
    (private / "a" / "b" / "link").symlink_to(victim, target_is_directory=True)
    (private / "a").chmod(0o300)                                         # no listing: the mode is changed here
    for target in (tmp_path / f"{PRIVATE_PREFIX}2-x", private):
        if target != private:
            target.symlink_to(victim, target_is_directory=True)
        watchdog.remove_tree(target)
        assert (victim / "locked").stat().st_mode & 0o777 == 0o500 and victim.is_dir(), target
    assert not private.exists()


# -- the deck's folder: linked, moved, dumped into --------------------------------------------------------------------
#: A program that goes for the deck's folder ($1) from its working folder: writes into a file there through a hard
#: link, moves one out, and has the kernel write a core file there.
_FOLDER = """here=$(pwd)
cd "$1"
ln linked.txt "$here/linked" && echo PWNED >> "$here/linked"
mv moved.txt "$here/moved"
ulimit -c unlimited 2>/dev/null
sh -c 'kill -SEGV $$'
echo 1
"""


def _dumps_in_working_folder() -> bool:
    """Whether the kernel writes a core file into a crashing program's working folder (not to a program: ``|...``)."""
    try:
        pattern = Path("/proc/sys/kernel/core_pattern").read_text().strip()
    except OSError:
        return False
    return not pattern.startswith("|") and "/" not in pattern and resource.getrlimit(resource.RLIMIT_CORE)[1] != 0


def test_a_program_neither_links_moves_nor_dumps_into_the_decks_folder_in_any_backend(tmp_path: Path):
    """Landlock governs a hard link (``REFER``: the deck's file, linked into the private directory, was writable
    there), a move out of the deck's folder, and the kernel's core file, written with the crashing program's rights.
    Proved real first: under ``ngspice -b`` the file is written and moved, and the core file made there."""
    folder = tmp_path / "deck"
    folder.mkdir()
    (folder / "attack.sh").write_text(_FOLDER)
    deck = program_deck(folder, "goes for its folder", f"sh {folder / 'attack.sh'} {folder}")

    def fresh() -> None:
        for name in ("linked.txt", "moved.txt"):
            (folder / name).write_text("precious\n")
        for core in folder.glob("core*"):
            core.unlink()

    fresh()
    (tmp_path / "plain").mkdir()
    subprocess.run(["ngspice", "-b", str(deck)], cwd=tmp_path / "plain", capture_output=True, timeout=120)
    assert (folder / "linked.txt").read_text() == "precious\nPWNED\n" and not (folder / "moved.txt").exists()
    dumps = _dumps_in_working_folder()
    assert bool(list(folder.glob("core*"))) == dumps                     # real, where the kernel dumps there
    fresh()
    for kw, [record], _ in in_each_backend(lambda: CircuitProblem(deck, allow_shell=True)):
        assert record.outcome.measures.get("got") == 1, (kw, record.outcome)     # the program ran to its end
        assert (folder / "linked.txt").read_text() == "precious\n", kw
        assert (folder / "moved.txt").read_text() == "precious\n", kw
        assert not list(folder.glob("core*")), kw
        fresh()


# -- a reply cut short -----------------------------------------------------------------------------------------------
class CutShort(Problem):
    """fom = a; but first the worker's connection gets the start of a message and no more (native code in the
    worker could write it), and the simulation never ends."""

    name = "cut-short"

    def __init__(self) -> None:
        super().__init__([Parameter("a", 0.0, 1.0)])

    def simulate(self, x: np.ndarray) -> Outcome:
        frame = sys._getframe(1)
        while "conn" not in frame.f_locals:              # the worker's loop: its connection
            frame = frame.f_back
        os.write(frame.f_locals["conn"].fileno(), CUT_SHORT)
        time.sleep(3600)
        return Outcome(Status.OK, fom=float(x[0]))


def test_a_pool_workers_reply_cut_short_holds_no_run(monkeypatch):
    """The pool waited in ``recv_bytes`` for the rest, its loop (every worker's deadline) with it: a 3 s timeout
    still waiting after 40 s. Now the worker is killed once the rest has not come within REPLY_WAIT."""
    monkeypatch.setattr(replies, "REPLY_WAIT", 1.0)

    def run() -> list:
        with Evaluator(CutShort(), workers=1, timeout=3, retries=0) as ev:
            return ev.evaluate(np.array([[0.5]]))

    [record] = _finishes(60, run)
    assert record.outcome.status is Status.CRASHED, record.outcome


def test_the_workers0_childs_answer_cut_short_is_one_line(tmp_path: Path, monkeypatch):
    """The ``workers=0`` child's answer, read as the pool's was: a message begun and never ended waited for good
    (the child's connection is replaced, as round 18 does, by one holding that start). Now one line, the child
    killed, and a fresh child answers."""
    monkeypatch.setattr(replies, "REPLY_WAIT", 1.0)
    (tmp_path / "deck.toml").write_text(DIVIDER_SPEC)
    deck = tmp_path / "deck.cir"
    deck.write_text("divider\nv1 in 0 dc 1\n.param r1=1k\nr1 in out {r1}\nr2 out 0 1k\n.dc v1 0 1 1\n"
                    ".meas dc vo find v(out) at=1\n.end\n")
    session = CircuitProblem(deck).session()
    session.load()
    child = session._proc
    ours, theirs = Pipe()
    os.write(theirs.fileno(), CUT_SHORT)
    session._conn = ours
    try:
        def cut() -> str:
            with pytest.raises(WorkerCrash, match=r"not a result \(malformed reply: 10 bytes of 1,000") as e:
                session.evaluate({"r1": 1e3})
            return str(e.value)

        assert "\n" not in _finishes(60, cut)
        assert child.wait(10) is not None                                # killed, not reused
        assert session.evaluate({"r1": 1e3}) == {"vo": pytest.approx(0.5)}
    finally:
        theirs.close()
        session.close()


class CutShortBeside(CutShort):
    """A worker cuts its reply short at a < 0.5 (after 1 s); the others answer in 2 s."""

    def simulate(self, x: np.ndarray) -> Outcome:
        if x[0] < 0.5:
            time.sleep(1.0)
            return super().simulate(x)
        time.sleep(2.0)
        return Outcome(Status.OK, fom=float(x[0]))


def test_a_reply_cut_short_costs_no_other_worker_its_sizing(monkeypatch):
    """While the pool read the cut reply (up to REPLY_WAIT s), a healthy worker's answer, sent in time, waited unread
    past its deadline and was charged as a timeout, its worker killed (found in review). A reply there to read is
    now read first."""
    monkeypatch.setattr(replies, "REPLY_WAIT", 6.0)

    def run() -> list:
        with Evaluator(CutShortBeside(), workers=2, timeout=4, retries=0) as ev:
            return ev.evaluate(np.array([[0.1], [0.6], [0.7]]))

    cut, *healthy = _finishes(90, run)
    assert cut.outcome.status is Status.CRASHED, cut.outcome
    assert [r.outcome.status for r in healthy] == [Status.OK, Status.OK], [r.outcome for r in healthy]

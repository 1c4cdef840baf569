"""Red team, round 30: a tree deeper than a path, and what deck commands and received files no round tried do.

Found and fixed: a program run with ``--allow-shell`` that nests folders its owner cannot list deeper than
``PATH_MAX`` (``umask 477``, then relative ``mkdir``/``chdir``: 32 levels of 250-character names) left its private
directory in the temporary folder after the run, in every backend: the removal reached each folder by its full path
(ENAMETOOLONG past 4,096 bytes), so it could neither give the deeper ones their owner's rights back nor empty them.
A listable tree of 1,200 levels of 10-character names, the path's length alone, was called more than any disk limit
by the watchdog's count by paths, and left by the removal in the process (shutil's recursion). Both now walk the
tree by descriptors, one folder open at a time, never through a link, up through ``..`` checked to be the folder they
came down from (:func:`zoaf.watchdog.remove_tree`, ``_held``).

Held (the strongest kept below where no test covered the mechanism): ``quit 5`` in the ``.control`` block of a deck
that reloads whole each sizing (``.if`` cards): the sizing OK and the worker serving the next; ``bg_run``/``bg_halt``
as ``.control`` commands (the API's only: the sizing OK); ``destroy all`` before the results are printed (that sizing
fails with one line); ``set sourcepath = ( /etc )`` (includes are made absolute before they load); a ``.control``
block in an included file that ``quit``s (refused, as every included block); XSPICE ``filesource`` of ``/dev/fd/3``
.. ``/dev/fd/20`` in every backend (the ``workers=0`` child could not open one; a pool or Dask worker's read of its
own pipe waited until the timeout ended it); ``.include`` of links to ``/proc/self/environ`` and ``/dev/fd/0`` (one
line, as test_attack_decks_text's links to ``/dev``); ``.tran 1e-15 1`` past a 3 s timeout in every backend (no
private directory left); a received ``history.db`` whose ``meta`` is an FTS5 virtual table (one line), or that holds
3,000 more tables, a column of a collation only its sender had, a cascading foreign key (read as data:
``sensitivity`` and ``--resume`` as on the plain run). A walk moved under (the new walk's own check, kept below).
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from attackkit import BACKENDS, DIVIDER_SPEC, in_each_backend, program_deck
from test_attack_round29 import _EACH_BACKEND, _owner_only

from zoaf import watchdog
from zoaf.circuit import CircuitProblem
from zoaf.problem import Status
from zoaf.sandbox import PRIVATE_PREFIX

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux sandbox")

#: A folder name as long as a name may be, and how many nested ones make a path past PATH_MAX (4,096 bytes) twice:
#: made in a ms, before the watchdog's next sample (600 names of 10 characters do the same, but take the program
#: 0.4 s under Landlock, which checks each access up the whole path: the watchdog ends it half-way).
NAME, LEVELS = "a" * 250, 32

#: Nests LEVELS folders its owner cannot list (``umask 477``: no ``chmod``, which the sandbox refuses), each entered
#: by its relative name, with a file at the bottom; prints 1.
_DEEP = f"""import os
os.umask(0o477)
for _ in range({LEVELS}):
    os.mkdir({NAME!r})
    os.chdir({NAME!r})
with open("data", "w") as f:
    f.write("x" * 10000)
print(1)
"""


def _nest(top: Path, levels: int) -> int:
    """``levels`` folders of 10-character names nested under ``top`` (made by descriptors: no path reaches the
    bottom), a 10 kB file at the bottom; its allocated bytes."""
    fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(levels):
            os.mkdir("a" * 10, dir_fd=fd)
            child = os.open("a" * 10, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = child
        data = os.open("data", os.O_WRONLY | os.O_CREAT, 0o600, dir_fd=fd)
        os.write(data, b"x" * 10000)
        blocks = os.fstat(data).st_blocks * 512
        os.close(data)
        return blocks
    finally:
        os.close(fd)


def test_a_tree_deeper_than_a_path_is_counted_and_removed(tmp_path: Path):
    """1,200 folders of 10-character names, all listable: the count by paths called it more than any limit
    (ENAMETOOLONG) and the removal left it (shutil's recursion). Proved real first: no path opens its bottom."""
    folder = tmp_path / f"{PRIVATE_PREFIX}999999999-deep"
    folder.mkdir()
    try:
        blocks = _nest(folder, 1200)
        with pytest.raises(OSError, match="too long"):                  # real: past PATH_MAX
            os.stat(folder.joinpath(*["a" * 10] * 1200, "data"))
        assert watchdog._held(folder) == blocks
        watchdog.remove_tree(folder)
        assert not folder.exists()
    finally:                                    # pytest's own removal of old temporary folders recurses too
        subprocess.run(["rm", "-rf", str(folder)], check=False, timeout=120)


def test_a_tree_deeper_than_a_path_leaves_nothing_behind_in_any_backend(tmp_path: Path):
    """A program nests 32 folders of 250-character names its owner cannot list (no ``chmod``), a file at the bottom:
    the removal reached each by its full path, gave the deeper ones no rights back, and the private directory stayed
    in the temporary folder after the run, in every backend. Proved real first: such a tree outlives Python's removal
    after a walk by paths that gives each folder it reaches its owner's rights (the removal's before). The backends
    run with their owner's rights only (as root, no capability)."""
    prefix = _owner_only()
    (tmp_path / "deep.py").write_text(_DEEP)
    proof = tmp_path / "proof"
    proof.mkdir()
    subprocess.run([*prefix, sys.executable, str(tmp_path / "deep.py")], cwd=proof, check=True, capture_output=True)
    by_paths = ("import os, shutil, stat, sys\n"
                "for root, dirs, _ in os.walk(sys.argv[1]):\n"
                "    for d in dirs:\n"
                "        try: os.chmod(os.path.join(root, d), 0o700)\n"
                "        except OSError: pass\n"
                "shutil.rmtree(sys.argv[1], True)\n")
    subprocess.run([*prefix, sys.executable, "-c", by_paths, str(proof)], check=True, timeout=120)
    assert (proof / NAME).exists()                                       # real: it outlives a removal by paths
    subprocess.run(["rm", "-rf", str(proof)], check=True, timeout=120)   # root's rm: capabilities list any folder
    deck = program_deck(tmp_path, "nests", f"{sys.executable} {tmp_path / 'deep.py'}")
    temp = tmp_path / "temp"
    temp.mkdir()
    r = subprocess.run([*prefix, sys.executable, "-c", _EACH_BACKEND, str(deck)], env={**os.environ,
                       "TMPDIR": str(temp)}, cwd=tmp_path, capture_output=True, text=True, timeout=240)
    assert r.returncode == 0 and r.stdout.count("\n") == len(BACKENDS), r.stdout + r.stderr[-3000:]
    deadline = time.monotonic() + 10                                     # a Dask worker's removal ends with it
    while list(temp.glob(f"{PRIVATE_PREFIX}*")) and time.monotonic() < deadline:
        time.sleep(0.2)
    left = list(temp.glob(f"{PRIVATE_PREFIX}*"))
    subprocess.run(["rm", "-rf", str(temp)], check=False, timeout=120)   # what a failure left, for tmp_path's removal
    assert not left, r.stdout


def test_the_walk_stops_at_a_folder_moved_under_it(tmp_path: Path):
    """The walk goes up through ``..``: a folder moved elsewhere while the walk is inside it is not the parent it
    came down from, and the walk ends there (nothing outside the tree is counted or removed)."""
    tree, elsewhere = tmp_path / "tree", tmp_path / "elsewhere"
    (tree / "a" / "b").mkdir(parents=True)
    elsewhere.mkdir()
    (elsewhere / "keep").write_text("yours")
    moved: list[str] = []

    def listed(fd: int, entries: list, top: bool) -> None:
        if not top and not moved:                   # inside tree/a: move it under `elsewhere`
            os.rename(tree / "a", elsewhere / "a")
            moved.append("a")

    with pytest.raises(watchdog._Moved):
        watchdog._walk(tree, listed, strict=True)
    assert (elsewhere / "keep").read_text() == "yours" and (elsewhere / "a" / "b").is_dir()


_QUITS = """quits with a code
.param r1=1k
.if (1 > 0)
r3 out 0 1meg
.endif
v1 in 0 dc 1
r1 in out {r1}
r2 out 0 1k
.control
op
let vo = v(out)
print vo
quit 5
.endc
.end
"""


def test_a_quit_in_a_whole_deck_run_ends_no_worker_in_any_backend(tmp_path: Path):
    """``quit 5`` after the results, in a deck with ``.if`` cards (reloaded whole each sizing, its block run as the
    deck's): under ``ngspice -b`` it ends the process with that code; in zoaf two sizings are OK in one worker,
    each the divider's value."""
    deck = tmp_path / "deck.cir"
    deck.write_text(_QUITS)
    (tmp_path / "deck.toml").write_text(DIVIDER_SPEC)
    r = subprocess.run(["ngspice", "-b", str(deck)], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert r.returncode == 5, r.stdout                                   # real: the process ends with the code
    u = np.array([[0.0], [1.0]])
    for kw, records, _ in in_each_backend(lambda: CircuitProblem(deck), u):
        for record in records:
            r1 = record.params["r1"]
            expected = 1 / (1 + r1 / (1000 * 1e6 / (1000 + 1e6)))
            assert record.outcome.status is Status.OK, (kw, record.outcome)
            assert record.outcome.measures["vo"] == pytest.approx(expected, rel=1e-9), kw

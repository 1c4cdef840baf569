"""What the attack tests share: the one-measure specs their decks are simulated with, a deck that runs a program,
zoaf's backends each attack goes through, a finished run to receive, native code a deck loads, the invisible
characters a name hides behind."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any, Callable, Iterator, NamedTuple

import numpy as np
import pytest
from typer.testing import CliRunner

from zoaf.cli import app
from zoaf.evaluate import Evaluator
from zoaf.history import Record
from zoaf.problem import Problem

#: A spec for a deck with one parameter ``r1`` and one measure ``leak`` (tests rename it: ``vo``, ``i``).
SPEC = """title = "reads a file"
[parameters]
r1 = { lo = "100", hi = "10k" }
[measures]
leak = {}
[objectives]
o = { maximize = "leak" }
"""

#: A one-measure spec for the program decks (``vo``: the divider's output, which each deck prints).
DIVIDER_SPEC = """title = "a divider"
[parameters]
r1 = { lo = "100", hi = "10k" }
[measures]
vo = {}
[objectives]
o = { maximize = "vo" }
"""

#: The received-input corpus: ``mc.cir`` and its spec are the run a received folder holds.
CORPUS = Path(__file__).parent / "bad_inputs"


def program_deck(folder: Path, title: str, command: str) -> Path:
    """``folder/deck.cir``: a divider whose ``.control`` block runs ``command`` (a back-quoted program:
    --allow-shell) and makes what it prints the measure ``got``; its spec (:data:`DIVIDER_SPEC` and ``got``)
    beside it."""
    (folder / "deck.toml").write_text(DIVIDER_SPEC.replace("vo = {}", "vo = {}\ngot = {}"))
    deck = folder / "deck.cir"
    deck.write_text(f"{title}\n.param r1=1k\nv1 in 0 dc 1\nr1 in out {{r1}}\nr2 out 0 1k\n.control\n"
                    f"set x = `{command}`\nop\nlet vo = v(out)\nlet got = $x\nprint vo got\n.endc\n.end\n")
    return deck


def finished_run(sender: Path) -> Path:
    """``sender/run``: a finished 3-simulation run of a copy of ``mc.cir`` (its spec beside it, in ``sender``), the
    run a received folder's tests copy and tamper with."""
    for name in ("mc.cir", "mc.toml"):
        shutil.copy(CORPUS / name, sender / name)
    r = CliRunner().invoke(app, ["optimize", str(sender / "mc.cir"), "--budget", "3", "--seed", "1", "--workers", "0",
                                 "--quiet", "--out", str(sender / "run")])
    assert r.exit_code == 0, r.output
    return sender / "run"


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sender's :func:`finished_run`, once per test module that imports this fixture."""
    return finished_run(tmp_path_factory.mktemp("sender"))


@pytest.fixture
def run(finished: Path, tmp_path: Path) -> Path:
    """A copy of the finished run, received into a folder of its own (its recorded paths still name the sender's)."""
    return Path(shutil.copytree(finished, tmp_path / "received" / "run", symlinks=True))


#: Every way zoaf simulates, as ``Evaluator`` options: a sandboxed child, a pool worker, a Dask worker.
BACKENDS: tuple[dict[str, Any], ...] = ({"workers": 0}, {"workers": 1}, {"workers": 1, "dask": "local"})


class Evaluated(NamedTuple):
    """Points evaluated in one backend, its ``Evaluator`` closed since: its options, the records, and the pool's
    counts (taken while it ran: a closed evaluator has none)."""

    kw: dict[str, Any]
    records: list[Record]
    stats: dict[str, int]


def in_each_backend(problem: Callable[[], Problem], u: np.ndarray | None = None, *,
                    backends: tuple[dict[str, Any], ...] = BACKENDS,
                    while_open: Callable[[Evaluated], None] | None = None) -> Iterator[Evaluated]:
    """The unit points ``u`` (default: the one point 0.5) evaluated by a new ``problem()`` in each backend in turn,
    each yielded once its evaluator is closed (what must be gone by then is checked after it); ``while_open`` checks
    what must hold before the close (a program the deck started still running)."""
    for kw in backends:
        with Evaluator(problem(), **kw) as ev:
            done = Evaluated(kw, ev.evaluate(np.array([[0.5]]) if u is None else u), ev.stats)
            if while_open is not None:
                while_open(done)
        yield done


#: A library whose constructor, through CPython's API, replaces the function zoaf's watchdog thread calls every
#: 0.1 s: that thread predates Landlock, so the replacement writes where the simulating thread may not.
#: Invisible format characters: a right-to-left override, a left-to-right isolate, a zero-width space. A terminal
#: or browser that honours them shows ``o<RLO>cni.x`` as ``ox.inc`` ("Trojan Source": a deck hides what it reads).
INVISIBLE = "\u202e\u2066\u200b"
#: How zoaf shows them.
INVISIBLE_SHOWN = "\\u202e\\u2066\\u200b"

_HIJACK_C = r'''#define _GNU_SOURCE
#include <dlfcn.h>
static const char *code = "import zoaf.watchdog as w\n_held = w._held\n"
  "def hijacked(d, _held=_held):\n    open('%s', 'w').close()\n    return _held(d)\n"
  "w._held = hijacked\nimport time\ntime.sleep(0.5)\n";
__attribute__((constructor)) static void hijack(void) {
  int (*ensure)(void) = (int (*)(void))dlsym(RTLD_DEFAULT, "PyGILState_Ensure");
  void (*release)(int) = (void (*)(int))dlsym(RTLD_DEFAULT, "PyGILState_Release");
  int (*run)(const char *) = (int (*)(const char *))dlsym(RTLD_DEFAULT, "PyRun_SimpleString");
  if (ensure && release && run) { int g = ensure(); run(code); release(g); }
}
'''


def hijacker(folder: Path, marker: Path) -> Path:
    """``folder/hijack.so``, built with gcc: loaded in a sandboxed process, it has ``marker`` written (any file)."""
    (folder / "hijack.c").write_text(_HIJACK_C.replace("%s", str(marker)))
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(folder / "hijack.so"), str(folder / "hijack.c"), "-ldl"],
                   check=True, timeout=60)
    return folder / "hijack.so"

"""A received deck cannot make zoaf's own (unsandboxed) process take gigabytes while it reads the deck's includes:
``Netlist.read`` of a generated include peaks at a small multiple of the include's size (the reader built a
``Line`` per line of the whole file, twice over: ~72 bytes per byte of ``.param`` lines, ~38 of a ``.lib`` file's,
BENCHMARKS.md §1d), all included files together are bounded (64 MiB, refused in one line), and reading an included
file a piece at a time (:func:`zoaf.decktext.pieces`) gives the lines, numbers and values reading it whole gave."""
from __future__ import annotations

import random
import shutil
import subprocess
import sys
from pathlib import Path

from zoaf.decktext import logical_lines, physical_lines, pieces
from zoaf.netlist import Netlist

#: Run in a fresh process: reads the deck, prints the peak resident KiB grown by the read and the include's bytes.
_CHILD = """
import resource, sys
from pathlib import Path
from zoaf.netlist import Netlist
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
nl = Netlist.read(sys.argv[1])
assert len(nl.params) > 1000, len(nl.params)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base, Path(sys.argv[2]).stat().st_size)
"""


def _include(path: Path) -> None:
    """~1.6 MiB of ``.param`` lines, the old reader's worst (~72 bytes a byte; comment lines ~7, model cards ~5)."""
    path.write_text("".join(f".param p{i} = {i}.5e-6\n" for i in range(60_000)))


def test_include_read_in_a_small_multiple_of_its_size(tmp_path: Path) -> None:
    _include(tmp_path / "big.inc")
    (tmp_path / "t.cir").write_text("t\n.include big.inc\n.param w1=1u\nr1 a 0 {w1}\nv1 a 0 1\n.op\n.end\n")
    r = subprocess.run([sys.executable, "-c", _CHILD, str(tmp_path / "t.cir"), str(tmp_path / "big.inc")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    grown_kib, size = map(int, r.stdout.split())
    # before: ~72 bytes a byte; now ~25 (the ~7 of the result itself: a design variable per line). 45: room for a
    # loaded machine's allocator
    assert grown_kib * 1024 < 45 * size, f"{grown_kib / 1024:.0f} MiB for a {size / 2**20:.1f} MiB include"


def test_param_defaults_of_a_large_include_kept(tmp_path: Path) -> None:
    """Read by pieces, a file's ``.param``s are its design variables, each with its value, the last one winning."""
    lines = [f".param p{i} = {i}.5e-6" for i in range(12_000)] + [".param p7 = 3", "* end"]   # 2 pieces
    (tmp_path / "big.inc").write_text("\n".join(lines) + "\n")
    (tmp_path / "t.cir").write_text("t\n.include big.inc\nr1 a 0 {p7+p11999}\nv1 a 0 1\n.op\n.end\n")
    nl = Netlist.read(tmp_path / "t.cir")
    assert len(nl.params) == 12_000
    assert (nl.params["p7"], nl.params["p11999"], nl.params["p9876"]) == ("3", "11999.5e-6", "9876.5e-6")
    assert nl.param_files["p7"] == (tmp_path / "big.inc").resolve()


def _random_text(rng: random.Random) -> str:
    words = [".param a=1", ".param b = {a*2}", "+ c=3", "  + d=4", "* x", "  * y", "", " ", "\t", "r1 a b 1k",
             ".model m nmos", "+ vto=0.4 $ c", ".lib tt", ".endl", ".subckt s a", ".ends", "\f.param z=1",
             " .param e=5", "+", "*+", "\v* v", ".include x.inc ; c", "m1 d g s b m w=1u", "\r"]
    return "\n".join(rng.choice(words) for _ in range(rng.randrange(1, 200))) + rng.choice(["", "\n", "\r\n"])


def test_pieces_read_as_the_whole_file() -> None:
    """Every logical line (its text, number and pieces' count) read piece by piece, pieces as small as a line or
    as large as the file, is the one the whole file's reading gives, with ``only`` and as commands too."""
    rng = random.Random(8)
    for _ in range(150):
        text = _random_text(rng)
        for kw in ({}, {"only": (".param", ".lib", ".endl")}, {"commands": True}):
            whole = [(ln.raw, ln.lineno) for ln in logical_lines(physical_lines("\n" + text), **kw)[1:]]
            for size in (1, 7, 50, 10**6):
                parts = [(ln.raw, ln.lineno + before) for piece, before in pieces(text, size)
                         for ln in logical_lines(physical_lines("\n" + piece), **kw)[1:]]
                assert parts == whole, (text, size, kw)


def test_included_files_over_the_bound_refused_in_one_line(tmp_path: Path) -> None:
    """Two includes of 40 MiB (each under the per-file bound) hold more than the 64 MiB all included files may:
    refused with the line that includes the second, exit 2, before it is parsed."""
    block = "* a comment line of a received library\n" * (40 * 2**20 // 39)
    for name in ("a.inc", "b.inc"):
        (tmp_path / name).write_text(block)
    shutil.copy(Path(__file__).parent / "bad_inputs" / "good.toml", tmp_path / "t.toml")
    (tmp_path / "t.cir").write_text("t\n.include a.inc\n.include b.inc\n.param r1=1k c1=1n\nr1 a 0 {r1}\n.end\n")
    r = subprocess.run([sys.executable, "-m", "zoaf", "check", str(tmp_path / "t.cir")], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and f"{tmp_path / 't.cir'}:3: .include b.inc" in lines[0], r.stderr
    assert "hold more than 64 MiB of text; refused" in lines[0], r.stderr

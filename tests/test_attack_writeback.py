"""Attack decks aimed at what zoaf writes back: ``best.cir`` (run by hand with ``ngspice -b`` later, outside any
sandbox) and the deck a session loads, where zoaf rewrites each include path absolute and quoted.

Each attack is proved real first: plain ``ngspice -b`` reads another file than the checked one from the text
zoaf wrote.
"""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from zoaf.errors import InputError
from zoaf.netlist import Netlist

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="file names with quotes")

_BODY = ("v1 in 0 dc 1\nr1 in out {rr}\n.param r1=1k\nr2 out 0 {r1}\n.dc v1 0 1 1\n.meas dc vo find v(out) at=1\n"
         ".end\n")


@pytest.mark.parametrize("folder, name", [(".", 'c"d'), ('pkg"', "m.inc"), ("amp\n.control\n.endc\n", "m.inc")],
                         ids=["quote_in_name", "quote_in_folder", "newline_in_folder"])
def test_an_include_path_ngspice_would_read_as_another_file_or_line_is_refused(tmp_path: Path, folder: str,
                                                                               name: str):
    """zoaf writes each include back absolute and quoted (``best.cir``, the session's deck): ``.include c"d``, the
    file ``c"d`` the checks read, became ``.include "/dir/c"d"``, which ngspice reads as the file ``/dir/c``: never
    checked, its ``.control`` block run at the session's load and when the designer ran ``best.cir`` by hand
    (``shell`` too). A quote in the deck's folder (a received archive names its folders) did the same, and a
    newline there ended the written ``.include`` line and started others. Such an include is refused with its line."""
    where = tmp_path / folder
    where.mkdir(exist_ok=True)
    (where / name).write_text(".param rr=1000\n")                        # checked: vo = 0.5
    for other in ("c", "pkg"):                                           # what the quoted path reads: vo = 0.995
        (tmp_path / other).write_text(".param rr=5\n.control\necho UNCHECKED\n.endc\n")
    (tmp_path / "run").mkdir()
    best = tmp_path / "run" / "best.cir"
    best.write_text(f't\n.include "{where.resolve() / name}"\n{_BODY}')   # as zoaf wrote it back
    r = subprocess.run(["ngspice", "-b", str(best)], capture_output=True, text=True, timeout=60, cwd=best.parent)
    assert not re.search(r"vo\s*=\s*5\.0+e-01", r.stdout), r.stdout      # real: not the checked file
    deck = where / "deck.cir"
    deck.write_text(f"t\n.include {name}\n{_BODY}")
    with pytest.raises(InputError, match=r"deck\.cir:2: .*(double quote|control character)"):
        Netlist.read(deck)

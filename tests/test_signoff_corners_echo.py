"""A ``[corners]`` table's names, keys and values in an error line: each clipped (``zoaf.units.clip``/``echo``), as
the rest of the spec's errors are. A 5,000-character corner name, key or value made one unreadable line, thousands
of corner names a line of pages."""
from __future__ import annotations

from pathlib import Path

import pytest
from test_signoff_corners import _divider_spec
from typer.testing import CliRunner

from zoaf.cli import app

LONG = "h" * 5000
CLIPPED = "hhhhhhhhhhhhhhhhhhhhhhhhhhhhhh... (5000 characters)"
#: The divider's spec ends in its [corners] table (vsup = ["0.3", "1"]): a key appended is one of that table.
CASES = [
    (f"[corners.{LONG}]\ntemp = \"hot\"\n", f"corners.{CLIPPED}.temp: 'hot' is not degrees Celsius"),
    (f"[corners.{LONG}]\nprocess = \"ss\"\n", f"corners.{CLIPPED}: process 'ss' needs process_lib"),
    (f"{LONG} = []\n", f"corners.{CLIPPED}: empty list"),
    (f"process = \"{LONG}\"\n", "process 'hhhhhhhhhhhhhhhhhhhhhhhhhhhhh... (5002 characters) needs process_lib"),
    (f"[corners.a]\ntemp = \"{LONG}\"\n",
     "corners.a.temp: 'hhhhhhhhhhhhhhhhhhhhhhhhhhhhh... (5002 characters) is not degrees Celsius"),
    (f"[corners.a]\n{LONG} = \"abc\"\n", f"corners.a.{CLIPPED}: 'abc' is not a SPICE number"),
    (f"[corners.{LONG}a]\ntemp = 27\n[corners.{LONG}b]\ntemp = \"27\"\n",
     "corners hhhhhhhhhhhhhhhhhhhhhhhhhhhhhh... (5001 characters) and hhhhhhhhhhhhhhhhhhhhhhhhhhhhhh... "
     "(5001 characters) are the same conditions (temp=27)"),
    (f'[corners."{LONG}!"]\ntemp = 27\n',
     "corner name 'hhhhhhhhhhhhhhhhhhhhhhhhhhhhh... (5003 characters) has characters other than"),
]


@pytest.mark.parametrize("extra, says", CASES)
def test_a_long_corner_name_key_or_value_is_clipped_in_the_error_line(tmp_path: Path, extra: str, says: str) -> None:
    res = CliRunner().invoke(app, ["check", str(_divider_spec(tmp_path, extra))])
    lines = res.stderr.strip().splitlines()
    assert res.exit_code == 2 and len(lines) == 1 and says in lines[0], res.output[:1000]
    assert len(lines[0]) < 400 and str(tmp_path / "divider.toml") in lines[0], lines[0]


def test_an_unknown_corner_lists_the_first_ten_of_thousands(tmp_path: Path) -> None:
    """``--corner nope`` of 1,800 corners listed each of them: a line of 20,000 characters."""
    temps = ", ".join(str(t) for t in range(900))
    deck = _divider_spec(tmp_path, f"temp = [{temps}]\n")
    res = CliRunner().invoke(app, ["corners", str(deck), "--corner", "nope"])
    lines = res.stderr.strip().splitlines()
    assert res.exit_code == 2 and len(lines) == 1, res.output[:1000]
    assert "--corner: unknown corner(s) nope; [corners] defines vsup=0.3_0c, vsup=0.3_1c, vsup=0.3_2c," in lines[0]
    assert lines[0].endswith(", ... (1800 in all)") and len(lines[0]) < 400, lines[0]

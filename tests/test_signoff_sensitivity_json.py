"""``sensitivity.json`` on disk says what ``zoaf sensitivity --json`` prints, the corner included: the README's "the
JSON's `corner` names it" held for the printed JSON only (the file written beside the heat map lacked the key, so a
corner run's file did not say at which corner its numbers were taken)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from ngspice_marks import needs_ngspice
from typer.testing import CliRunner

from zoaf.cli import app

DECKS = Path(__file__).parent / "signoff_decks"


#: The divider with a spec of supply corners whose worst is the higher supply (vmax minimized).
_CORNER_SPEC = """[parameters]
r1 = { lo = "100", hi = "1.4k", scale = "log" }
[measures]
vmax = { unit = "V" }
[objectives]
low = { minimize = "vmax", corners = "all" }
[corners]
vsup = ["0.5", "1"]
"""


def _run(tmp_path: Path, stem: str, spec: str | None) -> Path:
    """A two-simulation run of ``signoff_decks/<stem>.cir`` (its own spec, else ``spec``) in ``tmp_path / "run"``."""
    for suffix in (".cir", ".toml"):
        shutil.copy(DECKS / f"{stem}{suffix}", tmp_path / f"{stem}{suffix}")
    if spec is not None:
        (tmp_path / f"{stem}.toml").write_text(spec)
    out = tmp_path / "run"
    r = CliRunner().invoke(app, ["optimize", str(tmp_path / f"{stem}.cir"), "--budget", "2", "--workers", "1",
                                 "--quiet", "--out", str(out)])
    assert r.exit_code == 0, r.output
    return out


@needs_ngspice
@pytest.mark.parametrize("stem, spec, corner", [("divider", _CORNER_SPEC, "vsup=1"), ("rc_pole", None, None)])
def test_the_written_json_is_the_printed_json(tmp_path: Path, stem: str, spec: str | None, corner: str | None) -> None:
    """A corner run (its worst corner, the higher supply) and a nominal run (no corner: null in both)."""
    run = _run(tmp_path, stem, spec)
    res = CliRunner().invoke(app, ["sensitivity", str(run), "--json", "--workers", "1"])
    assert res.exit_code == 0, res.output
    printed = json.loads(res.stdout)
    written = json.loads((run / "sensitivity" / "sensitivity.json").read_text())
    assert printed["corner"] == corner and written["corner"] == corner
    assert written == printed

"""What a received deck reads beyond its folder: shown before it runs, refused under ``ZOAF_INCLUDE_ROOTS``.

``.include ~/.aws/credentials`` put the key id into ``result.json`` ("Undefined parameter [akia...]"), from a dead
``.if`` branch too; XSPICE's ``filesource`` made a file's number a measure. zoaf keeps ``ngspice -b``'s reach (any
file the user can read) but names each such file, with the line that reads it, and confines it when asked.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from attackkit import SPEC

from zoaf import readscope
from zoaf.errors import InputError
from zoaf.netlist import Netlist

KEY = "AKIAEXAMPLE12345"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder of secrets beside the deck's folder ``tmp_path / 'deck'``; no confinement set."""
    monkeypatch.delenv(readscope.ROOTS_ENV, raising=False)
    (tmp_path / "deck").mkdir()
    home = tmp_path / "home"
    (home / ".aws").mkdir(parents=True)
    (home / ".aws" / "credentials").write_text(f"[default]\naws_access_key_id = {KEY}\n")
    (home / "secret.txt").write_text("0 0\n1e-3 7.5\n")
    (home / "models.lib").write_text(f"* lib\n.lib tt\n.include {home / 'nested.inc'}\n.endl\n")
    (home / "nested.inc").write_text("* nested\n")
    return home


def _deck(home: Path, body: str) -> Path:
    deck = home.parent / "deck" / "deck.cir"
    deck.write_text(f"t\n.param r1 = 1k\n.param flag = 0\n{body}v1 in 0 dc 1\nr1 in out {{r1}}\nr2 out 0 1k\n"
                    ".dc v1 1 1 1\n.meas dc leak find v(out) at=1\n.end\n")
    (deck.parent / "deck.toml").write_text(SPEC)
    return deck


def _reads(deck: Path) -> list[tuple[str, str]]:
    return [(r.where, str(r.path)) for r in Netlist.read(deck).reads_outside]


def test_each_file_read_outside_the_decks_folder_is_named_with_its_line(home: Path):
    """Dead ``.if`` branch, a ``.lib`` section and what it includes, a link in the deck's folder, ``../``, a
    filesource: each named once with the line that reads it; the deck's own files are not."""
    inside = home.parent / "deck" / "local.inc"
    inside.write_text("* mine\n")
    (home.parent / "deck" / "creds").symlink_to(home / ".aws" / "credentials")
    deck = _deck(home, f".if (flag == 1)\n.include {home / '.aws' / 'credentials'}\n.endif\n"
                       f".lib {home / 'models.lib'} tt\n.include local.inc\n.include ../home/secret.txt\n"
                       f".include creds\n.model src filesource (file=\"../home/secret.txt\" amploffset=[0])\n")
    lib = home / "models.lib"
    assert _reads(deck) == [(f"{deck}:5", str(home / ".aws" / "credentials")), (f"{deck}:7", str(lib)),
                            (f"{lib}:3", str(home / "nested.inc")), (f"{deck}:9", str(home / "secret.txt")),
                            (f"{deck}:11", str(home / "secret.txt"))]


def test_a_control_load_outside_the_decks_folder_is_named_and_refused_when_confined(home: Path,
                                                                                     monkeypatch: pytest.MonkeyPatch):
    """``load FILE`` reads a raw file; of any other file ngspice's error quotes the first line ("strange line in
    rawfile: [default]")."""
    deck = _deck(home, f".control\nload local.raw ~/x.raw $ {home}/c.raw\n  load '{home / 'netrc'}'\n.endc\n")
    monkeypatch.setenv("HOME", str(home))
    assert _reads(deck) == [(f"{deck}:5", str(home / "x.raw")), (f"{deck}:6", str(home / "netrc"))]
    monkeypatch.setenv(readscope.ROOTS_ENV, "")
    with pytest.raises(InputError, match=rf"^{deck}:5: load ~/x\.raw: .* lies outside"):
        Netlist.read(deck)


def test_system_and_pdk_model_folders_need_no_note(home: Path, monkeypatch: pytest.MonkeyPatch):
    system, pdk = home.parent / "usr", home.parent / "pdk"
    for folder in (system, pdk):
        folder.mkdir()
        (folder / "m.lib").write_text("* models\n.lib tt\n.endl\n")
    monkeypatch.setattr(readscope, "SYSTEM_FOLDERS", (str(system),))
    monkeypatch.setenv("ZOAF_SKY130_LIB", str(pdk / "m.lib"))
    assert _reads(_deck(home, f".lib {system / 'm.lib'} tt\n.lib {pdk / 'm.lib'} tt\n")) == []


def test_the_installed_sky130_tree_needs_no_note_and_no_root(monkeypatch: pytest.MonkeyPatch):
    """The package's library includes ``../../cells/...`` beside its own folder: ~90 notes per sky130 deck, and a
    refusal of the PDK itself under an empty ``ZOAF_INCLUDE_ROOTS``, until the whole ``sky130_fd_pr`` tree was free."""
    monkeypatch.delenv("ZOAF_SKY130_LIB", raising=False)
    deck = Path(__file__).resolve().parents[1] / "netlists" / "sky130" / "folded_cascode.cir"
    r = _check(deck, {readscope.ROOTS_ENV: ""})
    assert r.returncode == 0 and json.loads(r.stdout)["reads_outside"] == [], r.stdout + r.stderr
    assert "note:" not in r.stderr, r.stderr


def test_include_roots_refuse_a_file_outside_them_with_its_line(home: Path, monkeypatch: pytest.MonkeyPatch):
    deck = _deck(home, f".if (flag == 1)\n.include {home / '.aws' / 'credentials'}\n.endif\n")
    monkeypatch.setenv(readscope.ROOTS_ENV, os.pathsep.join([str(home / "other"), str(home / "more")]))
    with pytest.raises(InputError, match=rf"^{deck}:5: \.include .*credentials: .* lies outside .*; refused$"):
        Netlist.read(deck)
    monkeypatch.setenv(readscope.ROOTS_ENV, str(home / ".aws"))
    assert _reads(deck) == []                      # allowed, and no note: the user named the folder


def test_include_roots_refuse_a_model_file_outside_them(home: Path, monkeypatch: pytest.MonkeyPatch):
    deck = _deck(home, f".model src filesource (amploffset=[0]\n+ file='{home / 'secret.txt'}')\n")
    monkeypatch.setenv(readscope.ROOTS_ENV, "")     # set and empty: the deck's folder only
    with pytest.raises(InputError, match=rf"^{deck}:4: \.model file=.*secret\.txt: .* lies outside"):
        Netlist.read(deck)


def test_a_relative_include_root_is_one_line(home: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv(readscope.ROOTS_ENV, "models")
    with pytest.raises(InputError, match=r"^\$ZOAF_INCLUDE_ROOTS: 'models' is not an absolute path"):
        Netlist.read(_deck(home, ""))


def _check(deck: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-P", "-m", "zoaf", "check", str(deck), "--json"], capture_output=True,
                          text=True, timeout=120, env={**os.environ, **env}, cwd=deck.parent)


def test_zoaf_check_names_the_read_before_it_fails_and_refuses_it_when_confined(home: Path):
    """The credentials' key reaches the error as ngspice quotes it; the note says which line read which file."""
    deck = _deck(home, f".if (flag == 1)\n.include {home / '.aws' / 'credentials'}\n.endif\n")
    r = _check(deck, {})
    report = json.loads(r.stdout)
    assert r.returncode == 2 and KEY.lower() in report["error"].lower(), r.stdout + r.stderr
    assert report["reads_outside"] == [{"file": str(home / ".aws" / "credentials"), "from": f"{deck}:5",
                                        "how": f".include {home / '.aws' / 'credentials'}"}]
    assert r.stderr.startswith(f"note: {deck}:5: .include "), r.stderr
    r = _check(deck, {readscope.ROOTS_ENV: str(home / "other")})
    assert r.returncode == 2 and r.stdout == "" and len(r.stderr.strip().splitlines()) == 1, r.stdout + r.stderr
    assert r.stderr.startswith(f"error: {deck}:5: .include ") and "refused" in r.stderr and KEY not in r.stderr


@pytest.mark.parametrize("line", [".include loop\n", ".model src filesource (file=loop amploffset=[0])\n"])
def test_a_loop_of_links_is_one_line(home: Path, line: str):
    """``Path.resolve`` raises RuntimeError on a loop of links (Python 3.11): ``.include loop`` was a traceback."""
    (home.parent / "deck" / "loop").symlink_to("loop")
    deck = _deck(home, line)
    with pytest.raises(InputError, match=rf"^{deck}:4: .*loop is a loop of symbolic links; refused$"):
        Netlist.read(deck)

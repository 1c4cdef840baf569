"""The command line given what it did not expect of it: a user's own program named ``zoaf`` that imports zoaf as a
library (its Ctrl-C its own), a run directory named with an escape sequence (printed without it), an option's value
refused in the option's name, an option given twice."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from test_cli import ROOT, zoaf


def test_a_users_own_program_named_zoaf_keeps_its_ctrl_c(tmp_path: Path) -> None:
    """The command line's loading handler was set by the program's name: a user's script named ``zoaf`` that imports
    zoaf as a library had Ctrl-C end it (exit 130, "interrupted") where its own ``except KeyboardInterrupt`` ran."""
    script = tmp_path / "zoaf"
    script.write_text("import os, signal, time\nsignal.signal(signal.SIGINT, signal.default_int_handler)\n"
                      "import zoaf\ntry:\n    os.kill(os.getpid(), signal.SIGINT)\n    time.sleep(5)\n"
                      "except KeyboardInterrupt:\n    print('its own')\n")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    r = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
                       timeout=120)
    assert (r.returncode, r.stdout) == (0, "its own\n"), r.stderr


def test_a_run_directory_named_with_an_escape_sequence_is_printed_without_it(tmp_path: Path) -> None:
    """``--out`` named with an escape sequence (a script's name for it) reached the terminal as it was, in the run's
    last line, where every name zoaf prints from elsewhere is shown without control characters (``?``)."""
    rc = ROOT / "tests" / "bad_inputs" / "good.cir"
    r = zoaf("optimize", str(rc), "--budget", "3", "--seed", "0", "--workers", "0", "--out", "r\x1b[2JX", cwd=tmp_path)
    assert r.returncode == 0 and "\x1b" not in r.stdout + r.stderr, r.stdout
    assert "run directory: r?[2JX  (best.cir" in r.stdout
    assert (tmp_path / "r\x1b[2JX" / "result.json").is_file()


def test_an_unknown_x0_names_the_option(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    """``--x0 CENTER`` said "x0 'CENTER': choose one of ...", the library's keyword, not the option given."""
    from zoaf.cli import main

    rc = ROOT / "tests" / "bad_inputs" / "good.cir"
    for value in ("CENTER", ""):
        monkeypatch.setattr(sys, "argv", ["zoaf", "optimize", str(rc), "--x0", value, "--out", str(tmp_path / "r")])
        with pytest.raises(SystemExit) as end:
            main()
        lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
        assert end.value.code == 2 and len(lines) == 1 and f"'--x0': {value!r} is not one of" in lines[0], lines
    assert not (tmp_path / "r").exists()


def test_methods_given_twice_compares_both(tmp_path: Path) -> None:
    """``--methods random --methods de`` compared de alone (the last option won, unsaid), where ``--objective``
    given twice takes both."""
    rc = ROOT / "tests" / "bad_inputs" / "good.cir"
    r = zoaf("compare", str(rc), "--methods", "random", "--methods", "de", "--seeds", "1", "--budget", "2",
             "--jobs", "1", "--quiet", "--out", str(tmp_path / "cmp"))
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in (tmp_path / "cmp" / "bw").iterdir()) == ["de", "random"]

"""Ctrl-C and SIGTERM at every stage of the ``zoaf`` command line (loading, the deck, a method's import, a finalizer,
a comparison, a run): one word or the resume line, exit code 130, nothing half-written."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from runkit import count, signal_after

ROOT = Path(__file__).parent.parent
AMP = ROOT / "netlists" / "two_stage_amp.cir"


@pytest.mark.parametrize("command", [["check", str(AMP)], ["optimize", str(AMP), "--budget", "2", "--workers", "0"]])
def test_ctrl_c_before_the_run_starts_says_interrupted(command: list[str], tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """A Ctrl-C while the deck loads (before a run handles it) exited 130 without a word: typer swallowed it."""
    from zoaf import cli, optimizecmd

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(optimizecmd if command[0] == "optimize" else cli, "_problem", interrupted)
    out = ["--out", str(tmp_path / "run")] if command[0] == "optimize" else []
    monkeypatch.setattr(sys, "argv", ["zoaf", *command, *out])
    with pytest.raises(SystemExit) as exit_:
        cli.main()
    assert exit_.value.code == 130
    assert capsys.readouterr().err.strip() == "interrupted"
    assert not (tmp_path / "run").exists()


def test_ctrl_c_amid_a_methods_import_says_interrupted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """A Ctrl-C while a method's module loads a pybind11 extension (scipy.spatial for ZOAF) becomes that module's
    ``ImportError: initialization failed``: the CLI said "error: --method: method 'zoaf': cannot import", exit 2."""
    from zoaf import cli, registry

    (tmp_path / "cut_by_ctrl_c.py").write_text(
        "raise ImportError('initialization failed') from KeyboardInterrupt()   # what pybind11 raises\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(registry._METHODS, "cut", "cut_by_ctrl_c:Method")
    monkeypatch.setattr(sys, "argv", ["zoaf", "optimize", str(AMP), "--method", "cut", "--out", str(tmp_path / "run")])
    with pytest.raises(SystemExit) as exit_:
        cli.main()
    assert (exit_.value.code, capsys.readouterr().err) == (130, "interrupted\n")
    assert not (tmp_path / "run").exists()


#: A Ctrl-C that lands in a finalizer (here a ``__del__``; a weakref callback of multiprocessing, in practice).
CTRL_C_IN_A_FINALIZER = """
import sys
from zoaf import cli
loaded = cli._problem
class Finalized:
    def __del__(self):
        raise KeyboardInterrupt
def problem(*args, **kwargs):
    Finalized()                       # collected at once: its __del__ runs here
    return loaded(*args, **kwargs)
cli._problem = problem
sys.argv = ["zoaf", "check", sys.argv[1]]
cli.main()
"""


def test_ctrl_c_in_a_finalizer_still_interrupts() -> None:
    """Python drops a KeyboardInterrupt raised in a finalizer ("Exception ignored in ... Traceback"): ``zoaf
    compare`` printed that and went on to exit 0, as if Ctrl-C had not been pressed."""
    import signal

    # a shell's background job (make under nohup) starts with SIGINT ignored, and a Ctrl-C delivered again is then
    # ignored too: the child gets Python's own handler, as at a terminal
    r = subprocess.run([sys.executable, "-c", CTRL_C_IN_A_FINALIZER, str(AMP)], cwd=ROOT, capture_output=True,
                       text=True, timeout=120, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    assert (r.returncode, r.stdout, r.stderr) == (130, "", "interrupted\n")


def test_ctrl_c_amid_a_compare_run_ends_the_comparison(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """With ``--jobs 1`` the runs are in zoaf's own process, and ``optimize`` keeps an interrupted run's rows and
    returns: the comparison went on to the next run, then said "no complete runs found", exit 2."""
    from zoaf import cli
    from zoaf.evaluate import Evaluator

    evaluate, batches = Evaluator.evaluate, []

    def ctrl_c_in_the_second_batch(self: Evaluator, *args: Any, **kwargs: Any) -> Any:
        batches.append(1)
        if len(batches) == 2:
            raise KeyboardInterrupt
        return evaluate(self, *args, **kwargs)

    monkeypatch.setattr(Evaluator, "evaluate", ctrl_c_in_the_second_batch)
    out = tmp_path / "cmp"
    args = ["compare", str(AMP), "-o", "fom", "-m", "random", "--seeds", "3", "--budget", "4", "--jobs", "1", "-q"]
    monkeypatch.setattr(sys, "argv", ["zoaf", *args])
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_:
        cli.main()
    assert exit_.value.code == 130
    root = next((tmp_path / "runs").iterdir()).relative_to(tmp_path)
    assert capsys.readouterr().err == f"interrupted: resume with  zoaf {' '.join(args)} --out {root}\n"
    root = tmp_path / root
    runs = root / "fom" / "random"
    assert (runs / "seed-0" / "best.cir").is_file() and (runs / "seed-1" / "history.db").is_file()
    assert not (runs / "seed-2").exists() and len(batches) == 2


def test_sigterm_ends_a_run_as_ctrl_c_does(tmp_path: Path) -> None:
    """``kill PID`` (a job scheduler's SIGTERM) ended a run silently: no resume line, no end files. It now takes the
    Ctrl-C path: one line naming the resume command, exit 130, the rows kept."""
    import signal

    out = tmp_path / "run"
    env = dict(os.environ, COLUMNS="200", NO_COLOR="1", TERM="dumb")
    proc = subprocess.Popen([sys.executable, "-m", "zoaf", "optimize", str(AMP), "-o", "fom", "--method", "random",
                             "--budget", "100000", "--workers", "1", "--quiet", "--out", str(out)],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stdout, stderr = signal_after(proc, out, 5, signal.SIGTERM, timeout=60)
    assert proc.returncode == 130 and "Traceback" not in stdout + stderr, stderr
    assert f"interrupted: resume with  zoaf optimize {AMP} --resume {out}" in stderr
    assert count(out) >= 5


def ctrl_c_as_imported(module: str) -> str:
    """Python run first in a child that sends it SIGINT as ``module`` is first imported (a Ctrl-C at that moment)."""
    return f"""
import os, signal, sys
signal.signal(signal.SIGINT, signal.default_int_handler)   # as at a terminal (a background job ignores SIGINT)
class CtrlC:
    def find_spec(self, name, path=None, target=None):
        if name == {module!r}:
            os.kill(os.getpid(), signal.SIGINT)
sys.meta_path.insert(0, CtrlC())
"""


#: A child that sends itself SIGINT as the command line starts importing typer (as Ctrl-C in its first half
#: second does), then starts `zoaf` the way each entry point does.
CTRL_C_WHILE_LOADING = ctrl_c_as_imported("typer") + "import runpy\nsys.argv = ['zoaf', '--help']\n"


@pytest.mark.parametrize("start", ["runpy.run_module('zoaf', run_name='__main__')",      # python -m zoaf
                                   "from zoaf.cli import main; sys.exit(main())"])       # the installed script
def test_ctrl_c_while_the_command_line_loads_is_one_word_and_exit_130(start: str) -> None:
    r = subprocess.run([sys.executable, "-c", CTRL_C_WHILE_LOADING + start], cwd=ROOT,
                       capture_output=True, text=True, timeout=120)
    assert (r.returncode, r.stdout, r.stderr) == (130, "", "interrupted\n")


#: sitecustomize.py that sends SIGINT as numpy is first imported: by ``zoaf/__init__``, before zoaf.cli loads.
CTRL_C_AS_ZOAF_LOADS = ctrl_c_as_imported("numpy")


@pytest.mark.parametrize("entry", [["-m", "zoaf"], [str(Path(sys.executable).parent / "zoaf")]],
                         ids=["python -m zoaf", "installed script"])
def test_ctrl_c_while_the_package_loads_is_one_word_and_exit_130(entry: list[str], tmp_path: Path) -> None:
    """A Ctrl-C in the first fifth of a second (``import zoaf``: numpy, the optimizer, before zoaf.cli set its
    handler) printed the traceback of the import it cut."""
    if not Path(entry[-1]).is_file() and entry[0] != "-m":
        pytest.skip("no installed zoaf script next to this Python")
    (tmp_path / "sitecustomize.py").write_text(CTRL_C_AS_ZOAF_LOADS)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), str(ROOT)]))
    r = subprocess.run([sys.executable, *entry, "optimize", str(AMP), "--budget", "2", "--out", str(tmp_path / "run")],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert (r.returncode, r.stdout, r.stderr) == (130, "", "interrupted\n")
    assert not (tmp_path / "run").exists()


def test_importing_the_command_line_leaves_sigint_as_it_was() -> None:
    """A program that imports zoaf.cli (a test, a notebook) keeps its Ctrl-C."""
    code = ("import signal; before = signal.getsignal(signal.SIGINT); import zoaf.cli; "   # SIG_IGN under `cmd &`
            "print(signal.getsignal(signal.SIGINT) is before)")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.stdout == "True\n", r.stderr

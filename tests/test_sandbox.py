"""zoaf.sandbox: the operating system stops what the text checks miss (real processes, real ngspice).

Every escape is tried twice on the same deck: by a plain ``ngspice -b`` (the escape is real: its marker file
appears) and loaded straight into a sandboxed process, past zoaf's text checks (the marker never appears).
"""
from __future__ import annotations

import errno
import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from attackkit import DIVIDER_SPEC, in_each_backend
from fresh import in_fresh_process

from zoaf import sandbox
from zoaf.circuit import CircuitProblem
from zoaf.errors import SimulationError
from zoaf.problem import Outcome
from zoaf.spice import SpiceSession

HERE = Path(__file__).parent / "netlists"
SPEC = Path(__file__).parent / "bad_inputs" / "good.toml"     # r1, c1 of rc.cir; measures f3db, gain_lf
pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux sandbox")


# -- the layers themselves ------------------------------------------------------------------------------
def _os_probe(read: list[str], allow_exec: bool, outside: str, secret: str) -> dict:
    report = sandbox.enter(sandbox.Policy(tuple(map(Path, read)), allow_exec))

    def attempt(action) -> int:
        try:
            action()
        except OSError as e:
            return e.errno
        return 0

    return {"report": report, "cwd": os.getcwd(), "home": os.environ["HOME"],
            "exec": attempt(lambda: subprocess.run(["/bin/true"], check=True)),
            "write_outside": attempt(lambda: Path(outside).write_text("x")),
            "write_inside": attempt(lambda: (report.directory / "ok").write_text("x")),
            "read_other": attempt(lambda: Path(secret).read_text()),
            "read_granted": attempt(lambda: [p.read_text() for p in Path(read[0]).iterdir()]),
            "socket": attempt(lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM).close()),
            "unix_socket": attempt(lambda: socket.socket(socket.AF_UNIX, socket.SOCK_STREAM).close()),
            "oom_score_adj": int(Path("/proc/self/oom_score_adj").read_text())}


@pytest.fixture
def dirs(tmp_path: Path) -> tuple[Path, Path, Path]:
    granted, other = tmp_path / "deck", tmp_path / "other"
    granted.mkdir()
    other.mkdir()
    (granted / "model.lib").write_text("* models\n")
    (other / "secret.txt").write_text("not for decks\n")
    return granted, other / "marker", other / "secret.txt"


def test_exec_fails_eperm_writes_and_foreign_reads_fail_eacces(dirs):
    granted, marker, secret = dirs
    got = in_fresh_process(_os_probe, [str(granted)], False, str(marker), str(secret))
    r = got["report"]
    assert [ly.state for ly in r.layers if ly.name != "code"] == [sandbox.LayerState.ACTIVE] * 6
    assert r.code.state is sandbox.LayerState.UNAVAILABLE      # applied only once a simulator is started
    assert got["oom_score_adj"] == sandbox.OOM_SCORE_ADJ    # a deck that eats the memory is what the kernel ends
    assert got["cwd"] == got["home"] == str(r.directory) and r.directory.name.startswith("zoaf-sandbox-")
    assert got["exec"] == errno.EPERM
    assert got["write_outside"] == errno.EACCES and not marker.exists()
    assert got["read_other"] == errno.EACCES
    assert got["write_inside"] == 0 and got["read_granted"] == 0
    assert got["socket"] == got["unix_socket"] == errno.EACCES
    assert not r.directory.exists()                      # the private directory goes with its process


def test_zoaf_check_shows_the_layers_and_allow_shell_lifts_only_the_exec_and_code_filters():
    for extra, lifted in (([], "active"), (["--allow-shell"], "lifted")):
        r = subprocess.run([sys.executable, "-m", "zoaf", "check", str(HERE / "rc.cir"), "--spec", str(SPEC),
                            "--json", *extra], capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        layers = json.loads(r.stdout)["sandbox"]
        assert {k: v["state"] for k, v in layers.items()} == {"private_dir": "active", "seccomp": lifted,
                                                             "landlock": "active", "network": "active",
                                                             "code": lifted, "memory": "active",
                                                             "disk": "active"}


def test_allow_shell_lifts_only_the_exec_filter(dirs):
    granted, marker, secret = dirs
    got = in_fresh_process(_os_probe, [str(granted)], True, str(marker), str(secret))
    assert got["report"].seccomp.state is sandbox.LayerState.LIFTED
    assert got["report"].landlock.state is sandbox.LayerState.ACTIVE
    assert got["exec"] == 0                              # programs run...
    assert got["write_outside"] == errno.EACCES and not marker.exists()   # ...and still cannot write outside
    assert got["read_other"] == errno.EACCES
    assert got["socket"] == errno.EACCES                 # ...nor open a socket


# -- escapes the text checks refuse, loaded past them ----------------------------------------------------
ESCAPES = {      # name -> .control lines; {m} is the marker path. Each one, run by ngspice -b, makes {m}.
    "shell": ["shell touch {m}"],
    "alias_shell": ["alias sh shell", "sh touch {m}"],
    "alias_in_if": ["if 1", "alias sh shell", "end", "sh touch {m}"],
    "variable_command": ["set c = shell", "\\$c touch {m}"],
    "unixcom": ["set unixcom", "touch {m}"],
    "unixcom_indirect": ["set u = unixcom", "set $u", "rehash", "touch {m}"],
    "let_redirect": ["let x = 1 > {m}"],
    "parenthesised_redirect": ["let x = (1 >{m} )"],
    "set_redirect": ["set > {m}"],
    "meas_redirect": ["tran 1u 10u", "meas tran y find v(in) at=5u > {m}"],
    "analysis_redirect": ["op > {m}"],
    "echo_alias_redirect": ["alias e echo", "e pwned > {m}"],
    "wrdata_alias": ["op", "alias w wrdata", "w {m} v(in)"],
    "write_alias": ["op", "alias w write", "w {m}"],
}
DECK = "escape {name}\nV1 in 0 dc 1\nR1 in 0 1k\n{body}.end\n"


def _escape_decks(tmp_path: Path) -> dict[str, tuple[Path, Path]]:
    """name -> (deck, marker): the ESCAPES as .control blocks, plus .control in an .include and a .lib file."""
    out = {}
    for name, lines in ESCAPES.items():
        folder = tmp_path / name
        folder.mkdir()
        m = folder / "marker"
        body = ".control\n" + "".join(ln.format(m=m) + "\n" for ln in lines) + ".endc\n"
        (folder / "deck.cir").write_text(DECK.format(name=name, body=body))
        out[name] = (folder / "deck.cir", m)
    for name, include in (("include_control", ".include {f}/inc.cir\n"), ("lib_control", ".lib {f}/lib.cir fast\n")):
        folder = tmp_path / name
        include = include.format(f=folder)              # absolute, as zoaf's session deck writes them
        folder.mkdir()
        m = folder / "marker"
        control = f".control\nshell touch {m}\necho pwned > {m}\n.endc\n"
        (folder / "inc.cir").write_text("* an innocent-looking model file\n" + control)
        (folder / "lib.cir").write_text(f"* models\n.lib fast\n{control}.endl fast\n")
        (folder / "deck.cir").write_text(DECK.format(name=name, body=include))
        out[name] = (folder / "deck.cir", m)
    for name, line in (("lib_in_control", ".lib {f}/lib.cir fast"),
                       ("include_prefix_in_control", ".includes {f}/cmds")):
        folder = tmp_path / name                         # ngspice runs the lines these bring into .control
        folder.mkdir()
        m = folder / "marker"
        (folder / "lib.cir").write_text(f"* models\n.lib fast\nshell touch {m}\necho pwned > {m}\n.endl fast\n")
        (folder / "cmds").write_text(f"shell touch {m}\necho pwned > {m}\n")
        body = f".control\n{line.format(f=folder)}\n.endc\n"
        (folder / "deck.cir").write_text(DECK.format(name=name, body=body))
        out[name] = (folder / "deck.cir", m)
    folder = tmp_path / "control_after_end"              # ngspice -b reads on past .end
    folder.mkdir()
    m = folder / "marker"
    (folder / "deck.cir").write_text(DECK.format(name="control_after_end", body="")
                                     + f".control\nshell touch {m}\necho pwned > {m}\n.endc\n")
    out["control_after_end"] = (folder / "deck.cir", m)
    folder = tmp_path / "control_prefix"                 # ngspice takes any .control* ... .endc* for a block
    folder.mkdir()
    m = folder / "marker"
    body = f".controls\nshell touch {m}\necho pwned > {m}\n.endcontrol\n"
    (folder / "deck.cir").write_text(DECK.format(name="control_prefix", body=body))
    out["control_prefix"] = (folder / "deck.cir", m)
    if shutil.which("gcc"):                              # codemodel: a library whose constructor escapes
        folder = tmp_path / "codemodel"
        folder.mkdir()
        m = folder / "marker"
        (folder / "evil.c").write_text('#include <stdio.h>\n#include <stdlib.h>\n'
                                       '__attribute__((constructor)) static void pwn(void) {\n'
                                       f'  FILE *f = fopen("{m}", "w"); if (f) fclose(f);\n'
                                       f'  if (system("touch {m}")) {{}}\n}}\n')
        subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(folder / "evil.so"), str(folder / "evil.c")],
                       check=True, timeout=60)
        body = f".control\ncodemodel {folder / 'evil.so'}\n.endc\n"
        (folder / "deck.cir").write_text(DECK.format(name="codemodel", body=body))
        out["codemodel"] = (folder / "deck.cir", m)
    return out


def _load_in_sandbox(decks: list[str]) -> list[list[str]]:
    """Load each deck (its .control runs at load, as in every worker) in a sandboxed libngspice, no checks."""
    sandbox.enter(sandbox.Policy(tuple(Path(d).parent for d in decks)))
    from zoaf.spice import shared_ngspice
    ng = shared_ngspice()
    outputs = []
    for deck in decks:
        outputs.append(ng.load(Path(deck).read_text().splitlines())[1])
        ng.command("remcirc")
    return outputs


def test_escapes_loaded_past_the_text_checks_never_leave_the_sandbox(tmp_path):
    decks = _escape_decks(tmp_path)
    outputs = in_fresh_process(_load_in_sandbox, [str(d) for d, _ in decks.values()])
    for (name, (deck, marker)), out in zip(decks.items(), outputs):
        assert not marker.exists(), f"{name}: escaped the sandbox"
        assert any("circuit:" in ln.lower() for ln in out), f"{name}: the deck did not load:\n{out}"
    for name, (deck, marker) in decks.items():     # the same decks without the sandbox do escape
        subprocess.run(["ngspice", "-b", str(deck)], cwd=deck.parent, capture_output=True, timeout=60)
        assert marker.exists(), f"{name}: not an escape in plain ngspice -b (the test proves nothing)"


def test_redirects_fail_visibly_in_a_sandboxed_session(tmp_path):
    """Past the text checks, a redirect in a replayed .control command fails the simulation: no file."""
    marker = tmp_path / "marker"
    deck = tmp_path / "deck.cir"
    deck.write_text((HERE / "rc.cir").read_text().replace(".end\n", f".control\nlet x = 1 > {marker}\n.endc\n.end\n"))
    out = in_fresh_process(_session_in_sandbox, str(deck))
    assert out.startswith("SimulationError") and not marker.exists(), out


def _session_in_sandbox(deck: str) -> str:
    from zoaf.netlist import Netlist
    from zoaf.deckcheck import command_problem
    assert command_problem("let x = 1 > m", allow_shell=False)      # the text check would refuse it...
    nl = Netlist.read(HERE / "rc.cir")
    nl.control = [Path(deck).read_text().split(".control\n")[1].split("\n")[0]]   # ...so go round it
    sandbox.enter(sandbox.Policy((Path(deck).parent, HERE)))
    try:
        SpiceSession(nl).evaluate({})
    except SimulationError as e:
        return f"SimulationError: {e}"
    return "ran"


# -- the real paths: CircuitProblem in this process (workers=0), pool workers, Dask ----------------------
class ReportingProblem(CircuitProblem):
    """Says, in each outcome, which layers the process that simulated it ran under."""

    def simulate(self, x: np.ndarray) -> Outcome:
        out = super().simulate(x)
        out.error = str(self.sandbox_report())
        return out


def test_spiceinit_in_cwd_home_and_deck_folder_is_never_read(tmp_path, monkeypatch):
    """A .spiceinit that, if read, would silence alterparam (an alias) and leave a marker."""
    ref = CircuitProblem(HERE / "rc.cir", SPEC)
    with SpiceSession(ref.netlist) as s:                 # the reference, before any .spiceinit is around
        want = s.evaluate({"r1": 2e3})
    deck_dir, home = tmp_path / "deck", tmp_path / "home"
    deck_dir.mkdir()
    home.mkdir()
    shutil.copy(HERE / "rc.cir", deck_dir / "rc.cir")
    markers = [where / "spiceinit_ran" for where in (tmp_path, home, deck_dir)]
    for m in markers:
        (m.parent / ".spiceinit").write_text(f"alias alterparam echo\necho pwned > {m}\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(home))
    p = CircuitProblem(deck_dir / "rc.cir", SPEC)
    try:
        got = p.session().evaluate({"r1": 2e3})
    finally:
        p.close()
    assert not any(m.exists() for m in markers)
    assert got == want


def test_same_measures_sandboxed_or_not_in_every_backend():
    p = ReportingProblem(HERE / "rc.cir", SPEC)
    x = p.to_physical(np.array([[0.2, 0.7], [0.9, 0.1]]))
    with SpiceSession(p.netlist) as s:                   # the reference: plain libngspice in this process
        want = [s.evaluate(p.as_dict(xi)) for xi in x]
    for kw, records, _ in in_each_backend(lambda: ReportingProblem(HERE / "rc.cir", SPEC), p.to_unit(x)):
        outcomes = [r.outcome for r in records]
        assert [o.measures for o in outcomes] == want, kw
        assert all("seccomp: active" in o.error and "landlock: active" in o.error for o in outcomes), kw
        memory = "GiB resident)" if "dask" in kw else "resident, first for the OOM killer)"
        assert all("network: active" in o.error and memory in o.error for o in outcomes), kw
        assert all("disk: active (at most 2 GiB of files)" in o.error for o in outcomes), kw


def test_a_locked_down_process_serves_only_decks_its_policy_covers(tmp_path):
    """A Dask worker locked down for one deck is replaced rather than reused for another deck's folders."""
    a, sub, b = tmp_path / "a", tmp_path / "a" / "models", tmp_path / "b"
    assert sandbox.Policy((a,)).covers(sandbox.Policy((sub,)))
    assert not sandbox.Policy((a,)).covers(sandbox.Policy((a, b)))
    assert sandbox.Policy((a,)).covers(sandbox.Policy((a,), allow_exec=True)) is False
    assert sandbox.Policy((a,), allow_exec=True).covers(sandbox.Policy((a,))) is False
    assert sandbox.Policy((a,), allow_exec=True).covers(sandbox.Policy((a,), allow_exec=True))
    assert in_fresh_process(_enter_twice, str(a), str(sub), str(b)) == ("ok", "SandboxError", True)


def _enter_twice(a: str, sub: str, b: str) -> tuple:
    sandbox.enter(sandbox.Policy((Path(a),)))
    sandbox.enter(sandbox.Policy((Path(sub),)))          # covered: the same lock-down serves it
    try:
        sandbox.enter(sandbox.Policy((Path(b),)))
    except sandbox.SandboxError as e:
        return "ok", type(e).__name__, e.needs_new_process
    return "ok", "entered", False


def _import_after_lockdown(folder: str, module: str) -> int:
    sys.path.insert(0, folder)                          # as PYTHONPATH puts it
    sandbox.enter(sandbox.Policy(()))
    try:
        __import__(module)
    except OSError as e:
        return e.errno
    return 0


@pytest.mark.parametrize("installed", [True, False])
def test_packages_installed_into_a_pythonpath_folder_stay_importable(tmp_path: Path, installed: bool):
    """``pip install --target DIR`` with DIR on PYTHONPATH: PySpice, imported after the lock-down, failed with
    EACCES and ``zoaf check`` with a traceback. A folder of installed packages (pip's ``*.dist-info``) is read;
    any other folder on ``sys.path`` (the user's home, a script's folder) stays closed."""
    (tmp_path / "probe_pkg.py").write_text("VALUE = 1\n")
    if installed:
        (tmp_path / "probe_pkg-1.0.dist-info").mkdir()
    got = in_fresh_process(_import_after_lockdown, str(tmp_path), "probe_pkg")
    if installed:
        assert got == 0
    else:
        assert got == errno.EACCES




@pytest.mark.parametrize("command", [
    ["optimize", "deck.cir", "--workers", "1", "--budget", "4", "--out", "run"],
    ["optimize", "deck.cir", "--workers", "1", "--budget", "4", "--out", "run", "--dask", "local"],
    ["compare", "deck.cir", "--methods", "random", "--seeds", "2", "--budget", "4", "--jobs", "2", "--out", "cmp"],
], ids=["pool", "dask", "compare"])
def test_a_module_in_the_working_directory_is_not_imported_by_spawned_processes(tmp_path: Path, command: list[str]):
    """A spawned process starts as ``python -c``, which puts the working directory first on sys.path until spawn
    restores the parent's: a ``multiprocessing/`` there (a received deck's folder one runs zoaf from) ran in every
    pool worker, Dask process and comparison job before any lock-down. The ``zoaf`` command itself, a console
    script, never imports from the working directory."""
    marker = tmp_path / "marker"
    (tmp_path / "multiprocessing").mkdir()
    (tmp_path / "multiprocessing" / "__init__.py").write_text(
        f"open({str(marker)!r}, 'a').write('ran')\nraise ImportError('hijacked')\n")
    (tmp_path / "deck.toml").write_text(DIVIDER_SPEC)
    (tmp_path / "deck.cir").write_text("t\n.param r1=1k\nv1 in 0 dc 1\nr1 in out {r1}\nr2 out 0 1k\n.dc v1 0 1 1\n"
                                       ".meas dc vo find v(out) at=1\n.end\n")
    r = subprocess.run([str(Path(sys.executable).parent / "zoaf"), *command], cwd=tmp_path, capture_output=True,
                       text=True, timeout=300, env={**os.environ, "PYTHONSAFEPATH": ""})
    assert not marker.exists(), r.stderr[-2000:]
    assert r.returncode == 0, r.stderr[-2000:]


def test_the_workers0_child_whose_parent_is_gone_at_its_start_ends_without_a_traceback(tmp_path):
    """A SIGTERM to ``zoaf compare`` while a ``workers=0`` child starts: the parent's end of the pipe is closed
    before the child reads its deck. The child ends quietly (was: an EOFError or BrokenPipeError traceback on the
    terminal before the "interrupted" line)."""
    code = ("import os, socket\nfrom zoaf.isolation import _child_main\n"
            "a, b = socket.socketpair()\nb.close()\n_child_main(os.dup(a.fileno()))\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stderr) == (0, "")

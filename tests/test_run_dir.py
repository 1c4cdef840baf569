"""Run directories through the real CLI: resumed from any path that reaches them, held by one process at a
time, never half-made by a refused run, and a full disk reported in one line with the rows written kept.

The RC low-pass of the bad-input corpus keeps each run to a second or two.
"""
from __future__ import annotations

import fcntl
import json
import math
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from runkit import count as rows
from zoaf.circuit import CircuitProblem
from zoaf.errors import InputError
from zoaf.history import History
from zoaf.rundir import LOCK_FILE
from zoaf.run import optimize as run_optimize

ROOT = Path(__file__).parent.parent
CORPUS = ROOT / "tests" / "bad_inputs"
RC = CORPUS / "good.cir"
BUDGET = 60
ARGS = ["--budget", str(BUDGET), "--seed", "5", "--method", "zoaf", "--workers", "1"]


def zoaf(*args: str, cwd: Path = ROOT, preexec=None, wait: bool = True):
    env = dict(os.environ, PYTHONPATH=str(ROOT), COLUMNS="200", NO_COLOR="1", TERM="dumb")
    cmd = [sys.executable, "-m", "zoaf", *args]
    if not wait:
        return subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                text=True, preexec_fn=preexec)
    r = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300, preexec_fn=preexec)
    assert "Traceback" not in r.stdout + r.stderr, r.stderr
    return r


def one_error_line(r: subprocess.CompletedProcess) -> str:
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), r.stdout + r.stderr
    return lines[0]


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """result.json of the uninterrupted run every resumed one must reproduce."""
    out = tmp_path_factory.mktemp("ref") / "run"
    r = zoaf("optimize", str(RC), *ARGS, "--out", str(out), "--quiet")
    assert r.returncode == 0, r.stderr
    return json.loads((out / "result.json").read_text())


def test_moved_run_resumes_through_a_symlink_and_a_relative_netlist(tmp_path: Path, reference: dict) -> None:
    """Started from an absolute netlist path, cut short, moved, then resumed through a symlink with the netlist
    named relative to another working directory: the same run, ending where the uninterrupted one ends."""
    batches: list[int] = []
    part = run_optimize(CircuitProblem(RC.resolve()), budget=BUDGET, seed=5, method="zoaf", workers=0,
                        out=tmp_path / "first", callback=lambda r: batches.append(1) or len(batches) >= 3)
    assert part.nfev < BUDGET
    (tmp_path / "first").rename(tmp_path / "moved")
    (tmp_path / "link").symlink_to(tmp_path / "moved")
    r = zoaf("optimize", os.path.relpath(RC, CORPUS / "cir"), "--resume", str(tmp_path / "link"), "--json",
             cwd=CORPUS / "cir")
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "moved" / "result.json").read_text()) == reference


def test_changed_netlist_still_refuses_resume(tmp_path: Path) -> None:
    """Identity is the content: the same path with other text is another problem. Said in words, not as the two
    hashes that differ."""
    netlist = tmp_path / "rc.cir"
    shutil.copy(RC, netlist)
    shutil.copy(CORPUS / "good.toml", tmp_path / "rc.toml")
    assert zoaf("optimize", str(netlist), "--budget", "4", "--out", str(tmp_path / "run"), "-q").returncode == 0
    netlist.write_text(netlist.read_text().replace("dec 20", "dec 21"))
    line = one_error_line(zoaf("optimize", str(netlist), "--resume", str(tmp_path / "run")))
    assert line.endswith("cannot resume: problem.netlist_sha256 differs from the recorded run: another netlist, or "
                         "an edit since (of an include too); resume with the run's own netlist, or start a new run")
    other = (CORPUS / "good.toml").read_text() + "# another spec\n"
    (tmp_path / "rc.toml").write_text(other)                   # two hashes ("recorded 'fe5b...', now '8927...'")
    line = one_error_line(zoaf("optimize", str(RC), "--spec", str(tmp_path / "rc.toml"), "--resume",
                               str(tmp_path / "run")))
    assert "differs from the recorded run: another" in line and "recorded '" not in line, line


def test_second_process_is_refused_while_the_run_goes(tmp_path: Path) -> None:
    """A lock held for the whole run: resuming or restarting it elsewhere is one line, by any path; the kernel
    drops the lock when the run dies (kill -9 included)."""
    run = tmp_path / "run"
    first = zoaf("optimize", str(RC), "--budget", "100000", "--method", "random", "--workers", "1", "--quiet",
                 "--out", str(run), wait=False)
    try:
        deadline = time.monotonic() + 120
        while rows(run) < 5:
            assert first.poll() is None and time.monotonic() < deadline, first.stderr.read()
            time.sleep(0.2)
        (tmp_path / "link").symlink_to(run)
        pattern = rf"error: .*: a run is still going in this directory \(process {first.pid}\)"
        for args in (["--resume", str(tmp_path / "link")], ["--out", str(run)]):
            assert re.match(pattern, one_error_line(zoaf("optimize", str(RC), "--budget", "100000",
                                                         "--method", "random", *args))), args
        assert first.poll() is None, "the refused processes must not disturb the running one"
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=60)
    with open(run / LOCK_FILE) as f:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)   # released by the kernel: no stale lock to clean up


def test_refused_run_leaves_no_directory_it_created(tmp_path: Path) -> None:
    r = zoaf("optimize", str(RC), "--dask", "local", "--workers", "0", "--out", str(tmp_path / "new" / "run"))
    assert "dask needs workers >= 1" in one_error_line(r)
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize("contents", [[], [LOCK_FILE]])
def test_empty_directory_has_nothing_to_resume(tmp_path: Path, contents: list[str]) -> None:
    """Empty, or holding only the lock of a run killed before it recorded anything."""
    for name in contents:
        (tmp_path / name).write_text("")
    line = one_error_line(zoaf("optimize", str(RC), "--resume", str(tmp_path)))
    assert line == f"error: {tmp_path}: nothing to resume (no history.db)"


def _file_size_limit() -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, resource.RLIM_INFINITY))


@pytest.mark.parametrize("medium", ["tmpfs", "file-size-limit"])
def test_full_disk_is_one_line_and_keeps_the_rows(tmp_path: Path, medium: str, reference: dict) -> None:
    """Writing fails mid-run (a small tmpfs, or RLIMIT_FSIZE where mounting is not allowed): one line, exit 2,
    the rows committed before survive, and the run resumes to the uninterrupted result once there is room."""
    disk = tmp_path / "disk"
    disk.mkdir()
    preexec = None
    if medium == "tmpfs":
        if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=128k", "tmpfs", str(disk)],
                          capture_output=True).returncode != 0:
            pytest.skip("mounting a tmpfs needs root")
    else:
        preexec = _file_size_limit
    run = disk / "run"
    try:
        line = one_error_line(zoaf("optimize", str(RC), *ARGS, "--out", str(run), "--quiet", preexec=preexec))
        m = re.search(r"history\.db: cannot write the run history \((database or disk is full|disk I/O error)\); "
                      r"the (\d+) simulations recorded before it are kept", line)
        assert m, line
        kept = int(m.group(2))
        with History(run / "history.db") as h:
            assert len(h) == kept > 0
        shutil.copytree(run, tmp_path / "roomy")
    finally:
        if medium == "tmpfs":
            subprocess.run(["umount", str(disk)], check=True)
    r = zoaf("optimize", str(RC), "--resume", str(tmp_path / "roomy"), "--quiet")
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "roomy" / "result.json").read_text()) == reference


def test_results_that_cannot_be_written_leave_none_half_written(tmp_path: Path, reference: dict) -> None:
    """The end of a run fails to write (result.json is in the way as a directory): one line, no result files,
    every simulation in history.db, and a resume writes them once the way is clear. (The way is blocked after a
    first part of the run: a new run refuses a directory that holds anything.)"""
    run = tmp_path / "run"
    run_optimize(CircuitProblem(RC), budget=BUDGET, seed=5, method="zoaf", workers=0, out=run,
                 callback=lambda r: r.nfev >= 3)
    (run / "result.json").unlink()
    (run / "result.json").mkdir()
    line = one_error_line(zoaf("optimize", str(RC), "--resume", str(run), "--quiet"))
    assert line.startswith(f"error: {run}: cannot write the run's results (Is a directory)"), line
    assert rows(run) == reference["nfev"] + reference["ncached"]   # every simulation and cache hit
    assert not any((run / name).is_file() for name in ("best.cir", "convergence.png"))
    (run / "result.json").rmdir()
    assert zoaf("optimize", str(RC), "--resume", str(run), "--quiet").returncode == 0
    assert json.loads((run / "result.json").read_text()) == reference


@pytest.mark.parametrize("held", [["mine.txt"], [".spiceinit", "best.cir"], ["result.json", "trace.json"]])
def test_a_new_run_refuses_a_directory_that_holds_files(tmp_path: Path, held: list[str]) -> None:
    """``--out`` a folder of the designer's own (``--out .``), or a finished run kept without its history: the new
    run's end files replaced theirs (a failed end removed them). Refused in one line; the folder as it was."""
    for name in held:
        (tmp_path / name).write_text(f"the user's {name}\n")
    line = one_error_line(zoaf("optimize", str(RC), *ARGS, "--out", str(tmp_path), "--quiet"))
    assert line == (f"error: {tmp_path}: already holds {', '.join(held)}; a new run needs a new or empty directory "
                    f"(its end files would replace files of the same name): use another --out")
    assert sorted(os.listdir(tmp_path)) == held, "a lock file left among the user's files"
    assert all((tmp_path / name).read_text() == f"the user's {name}\n" for name in held)
    with pytest.raises(InputError, match=r"already holds (.*, )?mine\.txt"):
        (tmp_path / "mine.txt").write_text("")
        run_optimize(CircuitProblem(RC), budget=3, seed=0, workers=0, out=tmp_path)


def test_a_run_directory_that_is_a_dangling_link_is_named(tmp_path: Path) -> None:
    """``--out`` a link to a folder that does not exist: "cannot write the run directory (File exists)"."""
    (tmp_path / "run").symlink_to(tmp_path / "gone" / "run")
    line = one_error_line(zoaf("optimize", str(RC), *ARGS, "--out", str(tmp_path / "run"), "--quiet"))
    assert line == f"error: {tmp_path}/run: a link to {tmp_path}/gone/run, which does not exist"
    assert not (tmp_path / "gone").exists()


def test_a_netlist_named_in_latin1_ends_its_run(tmp_path: Path) -> None:
    """A file name that is no UTF-8 (a Latin-1 ``amp\xe9.cir``): the convergence plot's title refused its
    surrogate escape, so every simulation ran and the run ended with a TypeError traceback, exit 1, no results."""
    folder = os.fsencode(tmp_path)
    for ext in (b".cir", b".toml"):
        shutil.copy(RC.with_suffix(ext.decode()), folder + b"/rc\xe9" + ext)
    r = zoaf("optimize", os.fsdecode(folder + b"/rc\xe9.cir"), "--budget", "3", "--seed", "0", "--workers", "1",
             "--out", str(tmp_path / "run"), "--quiet")
    assert r.returncode == 0, r.stderr
    assert {"result.json", "convergence.png", "best.cir"} <= set(os.listdir(tmp_path / "run"))


def test_a_run_on_a_read_only_medium_is_read(tmp_path: Path) -> None:
    """A finished run copied to a read-only mount: SQLite could not open its WAL history there ("unable to open
    database file": it makes a -shm file beside it), so `zoaf yield` refused a run it only reads."""
    ro = tmp_path / "ro"
    ro.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(ro)], capture_output=True).returncode:
        pytest.skip("mounting a tmpfs needs root")
    try:
        assert zoaf("optimize", str(CORPUS / "mc.cir"), "--budget", "3", "--seed", "1", "--workers", "0", "--quiet",
                    "--out", str(ro / "run")).returncode == 0
        subprocess.run(["mount", "-o", "remount,ro", str(ro)], check=True)
        with History(ro / "run" / "history.db", read=True) as h:
            assert len(h) == 3
        r = zoaf("yield", str(ro / "run"), "--samples", "2", "--workers", "1", "--out", str(tmp_path / "y"))
        assert r.returncode == 0, r.stderr
        assert not (ro / "run" / "history.db-shm").exists()
    finally:
        subprocess.run(["umount", "-l", str(ro)], check=True)     # lazy: a failed check may hold a file there


def test_a_killed_run_on_a_read_only_medium_is_read_in_full(tmp_path: Path) -> None:
    """A run killed before SQLite moved its rows from ``history.db-wal`` into the database, then found on a
    read-only mount: reading it as immutable skipped the -wal file (916 of 1,100 rows, or "not a zoaf run
    history"), then it was refused ("copy the run directory to a writable place"). zoaf now reads a private copy
    of the history and its -wal: every row."""
    ro = tmp_path / "ro"
    ro.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(ro)], capture_output=True).returncode:
        pytest.skip("mounting a tmpfs needs root")
    try:
        code = ("import os, zoaf\nzoaf.minimize(lambda x: float(x[0] ** 2), [(-1, 1)], budget=50, seed=0, "
                f"out={str(ro / 'run')!r}, callback=lambda r: os._exit(0) if r.nfev >= 20 else None)\n")
        subprocess.run([sys.executable, "-c", code], cwd=tmp_path, check=True, timeout=120)
        assert (ro / "run" / "history.db-wal").stat().st_size > 0
        subprocess.run(["mount", "-o", "remount,ro", str(ro)], check=True)
        with History(ro / "run" / "history.db", read=True) as h:
            assert len(h) >= 20
    finally:
        subprocess.run(["umount", "-l", str(ro)], check=True)


def test_best_cir_of_a_latin1_deck_keeps_its_bytes_and_reproduces(tmp_path: Path):
    """A deck in Latin-1 (accented comments) came back UTF-8 in best.cir: now byte for byte the deck but its
    sizing, and ``ngspice -b best.cir`` gives result.json's measures."""
    from zoaf.spice import run_batch

    deck = ROOT / "tests" / "compat" / "tline_latin1.cir"
    shutil.copy(deck, tmp_path / "t.cir")
    (tmp_path / "t.toml").write_text('[parameters]\nrl = { lo = "50", hi = "100" }\n[measures]\nvb = { unit = "V" }\n'
                                     'tdel = { unit = "s" }\n[objectives]\nvb = { maximize = "vb" }\n')
    run_optimize(CircuitProblem(tmp_path / "t.cir"), budget=6, seed=0, out=tmp_path / "run")
    best, orig = (tmp_path / "run" / "best.cir").read_bytes(), deck.read_bytes()
    assert b"accentu\xe9s" in best and best.splitlines()[0] == orig.splitlines()[0]
    changed = [(a, b) for a, b in zip(orig.splitlines(), best.splitlines()) if a != b]
    assert [a.split(b"=")[0] for a, b in changed] == [b".param z0"] and len(best.splitlines()) == len(orig.splitlines())
    result = json.loads((tmp_path / "run" / "result.json").read_text())
    got = run_batch(tmp_path / "run" / "best.cir")
    assert got["vb"] == pytest.approx(result["measures"]["vb"], rel=1e-6)


def test_ctrl_c_amid_the_end_files_leaves_none_of_them_and_the_cli_says_how_to_resume(tmp_path: Path, monkeypatch,
                                                                                        capsys) -> None:
    """Ctrl-C while the end files were written left result.json (a run `zoaf compare` takes as complete) without
    convergence.png, and the CLI said only 'interrupted'. (The plot, the last of them, is where it lands.)"""
    import numpy as np
    from zoaf import cli
    from zoaf.function import FunctionProblem

    def interrupted(*args, **kwargs) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("zoaf.plots.plot_convergence", interrupted)
    problem = FunctionProblem.from_bounds(lambda x: float(np.sum(x ** 2)), [(-1, 1)] * 2)
    with pytest.raises(KeyboardInterrupt):
        run_optimize(problem, budget=6, seed=0, out=tmp_path / "run")
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == [LOCK_FILE, "history.db"]
    monkeypatch.undo()
    assert run_optimize(problem, budget=6, seed=0, out=tmp_path / "run", resume=True).nfev == 6
    assert (tmp_path / "run" / "convergence.png").is_file()

    monkeypatch.setattr("zoaf.plots.plot_convergence", interrupted)    # the CLI, in this process, likewise
    monkeypatch.setattr(sys, "argv", ["zoaf", "optimize", str(RC), *ARGS[:2], "--workers", "0", "--quiet",
                                      "--out", str(tmp_path / "cli")])
    with pytest.raises(SystemExit) as e:
        cli.main()
    assert e.value.code == 130 and "interrupted: resume with  zoaf optimize" in capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "cli").iterdir()) == [LOCK_FILE, "history.db"]


def test_resuming_a_run_the_library_made_is_one_line(tmp_path: Path) -> None:
    """`zoaf optimize --resume` of a zoaf.minimize run directory was a KeyError traceback ('objective')."""
    import numpy as np
    from zoaf.run import minimize

    minimize(lambda x: float(np.sum(x ** 2)), [(-1, 1)] * 2, budget=4, seed=0, out=tmp_path / "run")
    line = one_error_line(zoaf("optimize", str(RC), "--resume", str(tmp_path / "run")))
    assert line == (f"error: {tmp_path / 'run' / 'history.db'}: a run of 'function', not of a netlist: resume it "
                    "from Python (zoaf.optimize(problem, out=..., resume=True))")


SLOW = "length(replace(hex(zeroblob(100000000)), '0', '00'))"     # seconds a row, computed on every read


@pytest.fixture(scope="module")
def six_rows(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished 6-simulation run through the CLI, which each crafted copy starts from (a run is moveable)."""
    run = tmp_path_factory.mktemp("six") / "run"
    assert zoaf("optimize", str(RC), "--budget", "6", "--seed", "1", "--out", str(run), "-q").returncode == 0
    return run


@pytest.mark.parametrize("craft", [f"ALTER TABLE evals ADD COLUMN slow INTEGER GENERATED ALWAYS AS ({SLOW}) VIRTUAL",
                                   f"CREATE VIEW slow AS SELECT {SLOW} FROM evals",
                                   "CREATE TRIGGER spy AFTER INSERT ON evals BEGIN DELETE FROM meta; END"],
                         ids=["generated-column", "view", "trigger"])
def test_history_with_sql_zoaf_never_writes_is_refused_at_once(tmp_path: Path, craft: str, six_rows: Path) -> None:
    """A received run directory whose history.db computes on read (a generated column: the whole resume or
    report took 20 minutes and gigabytes) or runs its author's SQL (a trigger, a view): one line, exit 2, before
    any row is read, by every reader."""
    import sqlite3

    run = tmp_path / "comparison" / "fom" / "zoaf" / "seed-1"      # as `zoaf report` finds runs
    shutil.copytree(six_rows, run)
    with sqlite3.connect(run / "history.db") as db:
        db.execute(craft)
    db.close()
    for args in (["optimize", str(RC), "--resume", str(run)], ["report", str(tmp_path / "comparison")],
                 ["yield", str(run), "-n", "4"]):
        start = time.monotonic()
        line = one_error_line(zoaf(*args))
        assert time.monotonic() - start < 20, args
        assert line.startswith(f"error: {run / 'history.db'}: not a zoaf run history ("), (args, line)
        assert "which zoaf does not write" in line, (args, line)


def _strict(text: str):
    """JSON as JSON.parse reads it: Infinity and NaN are no JSON."""
    def refuse(constant: str):
        raise ValueError(f"{constant} is not JSON")
    return json.loads(text, parse_constant=refuse)


def test_a_run_where_every_simulation_failed_writes_strict_json_that_zoaf_reads_back(tmp_path: Path) -> None:
    """Its FoM is +inf and its box point NaN: written as null (they were Infinity and NaN, which JSON.parse and jq
    refuse) in result.json, trace.json and `--json`; `zoaf report` reads the run from each of its files, and a
    result.json written before (Infinity) still reads as +inf."""
    from test_show import always_failing_rc
    from zoaf.stats import load_run

    failing = always_failing_rc(tmp_path)
    failed, good = tmp_path / "cmp" / "bw" / "zoaf" / "seed-1", tmp_path / "cmp" / "bw" / "random" / "seed-1"
    r = zoaf("optimize", str(failing), "--budget", "3", "--seed", "1", "--workers", "1", "--json",
             "--out", str(failed))
    assert r.returncode == 1 and _strict(r.stdout)["fun"] is None, r.stdout + r.stderr
    assert _strict((failed / "result.json").read_text())["fun"] is None
    _strict((failed / "trace.json").read_text())
    assert zoaf("optimize", str(RC), "--budget", "6", "--method", "random", "--out", str(good), "-q").returncode == 0
    for gone in ("history.db", "trace.json"):       # report then reads trace.json, then result.json alone
        (failed / gone).unlink()
        assert load_run(failed).final == math.inf
        r = zoaf("report", str(tmp_path / "cmp"))
        assert r.returncode == 0, r.stderr
    (failed / "result.json").write_text((failed / "result.json").read_text().replace("null", "Infinity", 1))
    assert json.loads((failed / "result.json").read_text())["fun"] == math.inf and load_run(failed).final == math.inf

"""Sign-off (`zoaf yield`, `zoaf sensitivity`) of a run whose inputs changed since, or at a corner it never
simulated: one error line (exit 2), nothing of the run changed. Runs are of the bad-input corpus' RC deck, in
process (a few simulations each)."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from test_cli import zoaf
from zoaf.cli import app

CORPUS = Path(__file__).parent / "bad_inputs"


def _one_line(r, pattern: str) -> None:
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.exit_code == 2 and len(lines) == 1 and pattern in lines[0], (r.exit_code, r.output)


def corner_run(folder: Path, judged: str, table: str, *options: str, netlist: str | None = None) -> Path:
    """A finished run (``folder / 'run'``, seed 1, in process) of copies of mc.cir and mc.toml in ``folder`` (the
    copies may be edited; ``netlist``: the deck's text instead), its objective judged at ``judged`` (the TOML value of
    its ``corners``) of the corner ``table`` appended to the spec; ``options``: more of ``optimize``'s."""
    (folder / "mc.cir").write_text((CORPUS / "mc.cir").read_text() if netlist is None else netlist)
    (folder / "mc.toml").write_text((CORPUS / "mc.toml").read_text().replace(
        'constraints = ["gain_lf >= -1"] }', f'constraints = ["gain_lf >= -1"], corners = {judged} }}') + table)
    out = folder / "run"
    r = CliRunner().invoke(app, ["optimize", str(folder / "mc.cir"), "--workers", "0", "--quiet", "--seed", "1",
                                 "--out", str(out), *options])
    assert r.exit_code == 0, r.output
    return out


@pytest.fixture
def run(tmp_path: Path) -> Path:
    """A finished 4-simulation run of a copy of mc.cir (the copy may be edited), judged over two temperatures
    of which its objective names one."""
    return corner_run(tmp_path, '["27c"]', "[corners]\ntemp = [27, 85]\n", "--budget", "4")


def test_sensitivity_at_a_corner_the_run_never_simulated_is_one_line(run: Path) -> None:
    """A corner of [corners] the objective did not judge: a ValueError traceback (list.index)."""
    _one_line(CliRunner().invoke(app, ["sensitivity", str(run), "--corner", "85c", "--workers", "1"]),
              "--corner 85c: the run judged only 27c")
    assert not (run / "sensitivity").exists()


@pytest.mark.parametrize("edit, says", [
    ("mc.cir", "(or a file it includes) changed since the run"),
    ("mc.toml", "the run read changed since the run; restore it"),
])
@pytest.mark.parametrize("command", [["sensitivity"], ["yield", "--samples", "2"]])
def test_sign_off_of_a_run_whose_netlist_or_spec_changed_is_refused(run: Path, edit: str, says: str,
                                                                    command: list[str]) -> None:
    """The run's simulations were fitted beside simulations of the edited deck (a sensitivity of -0.1 where the
    run's own circuit gives -1), or its sizing read with another spec, and nothing said so."""
    path = run.parent / edit
    path.write_text(path.read_text().replace("C1 out 0 {c1}", "C1 out 0 {c1*10}")
                    .replace('gain_lf >= -1"]', 'gain_lf >= -2"]'))
    rows = (run / "history.db").read_bytes()
    _one_line(CliRunner().invoke(app, [command[0], str(run), *command[1:], "--workers", "1"]), says)
    assert (run / "history.db").read_bytes() == rows
    assert not (run / command[0]).exists()


@pytest.mark.parametrize("command", [["sensitivity"], ["yield", "--samples", "2"]])
def test_sign_off_of_a_run_the_library_made_says_it_is_no_circuit_run(tmp_path: Path, command: list[str]) -> None:
    """A zoaf.minimize run directory has no netlist: it said "the run's netlist . is not found"."""
    import numpy as np
    from zoaf.run import minimize

    minimize(lambda x: float(np.sum(x ** 2)), [(-1, 1)] * 2, budget=4, seed=0, out=tmp_path / "run")
    r = CliRunner().invoke(app, [command[0], str(tmp_path / "run"), *command[1:]])
    _one_line(r, f"{tmp_path / 'run' / 'history.db'}: a run of 'function', not a circuit run: sign-off simulates "
                 "a netlist, and this run has none")


def test_more_samples_than_a_run_can_hold_is_refused_before_anything_runs(tmp_path: Path) -> None:
    """All samples are asked at once: 10**14 of them was a numpy memory traceback."""
    from zoaf.signoff.yieldrun import MAX_SAMPLES

    for name in ("mc.cir", "mc.toml"):
        shutil.copy(CORPUS / name, tmp_path / name)
    r = CliRunner().invoke(app, ["yield", str(tmp_path / "mc.cir"), "--samples", str(10**14)])
    assert r.exit_code == 2 and "--samples" in r.output and "Traceback" not in r.output, r.output
    assert not (tmp_path / "yield").exists() and not list(tmp_path.glob("yield*"))
    assert MAX_SAMPLES >= 100_000                      # a 99.99% yield needs ~1e5 samples for a tight interval
    from zoaf.circuit import CircuitProblem
    from zoaf.errors import InputError
    from zoaf.signoff.yieldrun import run_yield

    problem = CircuitProblem(tmp_path / "mc.cir")
    with pytest.raises(InputError, match=r"--samples 100000000000000: must be within 1\.\.1,000,000"):
        run_yield(problem, {}, tmp_path / "lib", samples=10**14, seed=0)
    assert not (tmp_path / "lib").exists()


def _process_run(tmp_path: Path, corners: str = "") -> tuple[Path, Path, list[str]]:
    """A finished 8-simulation run of mc.cir, its capacitor given a process term mc_c, judged over two process
    corners of ``rc.lib`` (corner ss sets mc_c = 2; ``corners``: more of the [corners] table): the run, the library
    and the arguments of its ``optimize``."""
    lib = tmp_path / "rc.lib"
    lib.write_text(".lib tt\n.param mc_c=0\n.endl tt\n.lib ss\n.param mc_c=2\n.endl ss\n")
    out = corner_run(tmp_path, '"all"', '[corners]\nprocess = ["tt", "ss"]\nprocess_lib = "rc.lib"\n' + corners,
                     "--budget", "8", "--method", "random",
                     netlist=(CORPUS / "mc.cir").read_text().replace("mc_r=0", "mc_r=0 mc_c=0")
                     .replace("C1 out 0 {c1}", "C1 out 0 {c1*(1+0.1*mc_c)}"))
    return out, lib, ["optimize", str(tmp_path / "mc.cir"), "--workers", "0", "--quiet"]


def test_a_corner_run_resumed_after_its_process_lib_changed_is_refused(tmp_path: Path) -> None:
    """A corner's process values come from ``process_lib``, which neither the netlist's hash nor the spec's covers:
    a run interrupted, its process section edited, resumed and mixed rows of two process models. The values each
    corner sets are part of the run's identity now: an edit of them is one line naming the value; a comment is not
    one."""
    out, lib, args = _process_run(tmp_path)
    lib.write_text(lib.read_text().replace("mc_c=2", "mc_c=-1"))
    _one_line(CliRunner().invoke(app, [*args, "--resume", str(out)]),
              "cannot resume: problem.corner_values.ss.mc_c is -1.0 now, 2.0 in the recorded run")
    lib.write_text(lib.read_text().replace("mc_c=-1", "mc_c=2") + "* the ss shift, checked\n")
    assert CliRunner().invoke(app, [*args, "--resume", str(out)]).exit_code == 0


def _unnoted(stderr: str) -> list[str]:
    """stderr's lines less the notes on how ngspice -b reads mc.cir (tests/test_deck_notes.py)."""
    return [ln for ln in stderr.splitlines() if not ln.startswith("note: ")]


def test_sign_off_after_the_process_lib_changed_says_so(tmp_path: Path) -> None:
    """``zoaf corners RUN``, ``yield RUN --corner`` and ``sensitivity RUN`` used the current ``process_lib`` without
    a word when the run was optimized at other corner values. A designer re-checking a sizing after a model update
    wants the corners simulated at the new values (that is what a sign-off is for) but must know they are not the
    run's: ``corners`` and ``yield``, which simulate anew, say it in one warning line and go on (a yield directory
    of the old values is not replayed as the new ones: refused, as any other run there). ``sensitivity`` reads the
    run's own simulations at the corner beside new ones, which would be of two process models: it refuses, as it
    refuses a changed netlist. A corner whose values did not change is not named."""
    out, lib, _ = _process_run(tmp_path)
    y = ["yield", str(out), "--corner", "ss", "--samples", "2", "--workers", "1"]
    assert zoaf(*y, cwd=tmp_path).returncode == 0
    lib.write_text(lib.read_text().replace("mc_c=2", "mc_c=-1"))
    said = f"warning: {out / 'history.db'}: corner ss sets mc_c = -1.0 now, 2.0 in the run"
    r = zoaf("corners", str(out), "--workers", "1", cwd=tmp_path)
    assert r.returncode == 0 and "meets the spec" in r.stdout, r.stderr
    assert _unnoted(r.stderr) == [f"{said}: signed off at the current values"]
    assert _unnoted(zoaf("corners", str(out), "--corner", "tt", "--workers", "1", cwd=tmp_path).stderr) == []
    r = zoaf(*y, cwd=tmp_path)
    assert r.returncode == 2 and r.stderr.splitlines()[0].startswith(said), r.stderr
    assert r.stderr.splitlines()[1:] == [f"error: {out / 'yield-ss' / 'history.db'}: holds another run (its problem "
                                         "differs); use another --out"]
    r = zoaf(*y, "--out", str(tmp_path / "y"), cwd=tmp_path)
    assert r.returncode == 0 and r.stderr.startswith(said) and "yield 100.0%" in r.stdout, r.stderr
    r = CliRunner().invoke(app, ["sensitivity", str(out), "--corner", "ss", "--workers", "1"])
    _one_line(r, f"{said[9:]}; zoaf sensitivity reads the run's simulations there")
    assert not (out / "sensitivity").exists()


def test_check_refuses_the_corner_and_montecarlo_names_optimize_and_yield_refuse(tmp_path: Path) -> None:
    """``zoaf check`` passed a spec whose corner overrides an unknown .param or a design variable, or whose
    [montecarlo] draws one, and a deck with its own temperature under [corners] temp: ``optimize`` (of an
    objective with corners) and ``yield`` refused them only when they first simulated. One line, exit 2, before
    anything is simulated (a corner the objective does not judge included)."""
    shutil.copy(CORPUS / "mc.cir", tmp_path / "mc.cir")
    (tmp_path / "hot.cir").write_text((CORPUS / "mc.cir").read_text().replace(".end", ".temp 50\n.end"))
    good = (CORPUS / "mc.toml").read_text()
    cases = [("mc.cir", good + '[corners]\ntemp = [27, 85]\nnosuch = [1, 2]\n',
              "corners.27c_nosuch=1: 'nosuch' is not a .param of"),
             ("mc.cir", good + '[corners.hot]\ntemp = 85\nr1 = 2\n', "corners.hot: 'r1' is a design variable"),
             ("mc.cir", good.replace('normal = ["mc_r"]', 'normal = ["nosuch"]'),
              "montecarlo.normal: 'nosuch' is not a .param of"),
             ("mc.cir", good.replace('normal = ["mc_r"]', 'normal = ["r1"]'), "montecarlo.normal: 'r1' is a design"),
             ("hot.cir", good + '[corners]\ntemp = [27, 85]\n', "hot.cir:9: .temp 50: the deck sets its own")]
    for deck, text, says in cases:
        (tmp_path / "s.toml").write_text(text)
        _one_line(CliRunner().invoke(app, ["check", str(tmp_path / deck), "--spec", str(tmp_path / "s.toml")]), says)


def test_a_montecarlo_draw_of_a_value_a_process_section_sets_is_refused(tmp_path: Path) -> None:
    """``yield --corner tt`` drew mc_r, which corner tt's process_lib section sets: the draw replaced the corner's
    value, silently (a corner's own ``mc_r = 1`` was refused already)."""
    out, lib, _ = _process_run(tmp_path)
    lib.write_text(lib.read_text().replace(".param mc_c=0", ".param mc_c=0 mc_r=1"))
    for command in (["check", str(tmp_path / "mc.cir")], ["yield", str(out), "--corner", "tt", "--samples", "2"]):
        _one_line(CliRunner().invoke(app, command),
                  "mc.toml: montecarlo.normal: 'mc_r' is also set by corner tt of [corners]")
    assert not (out / "yield-tt").exists()


def test_sign_off_of_a_run_still_going_is_refused(run: Path) -> None:
    """A run resumed and still going: its result.json is an earlier end's best, which sign-off took for the run's
    (its history read as it was written)."""
    import fcntl

    with open(run / ".lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        for command in (["corners"], ["sensitivity"], ["yield", "--samples", "2"]):
            _one_line(CliRunner().invoke(app, [command[0], str(run), *command[1:], "--workers", "1"]),
                      f"{run}: the run is still going (process ")
    assert not (run / "yield").exists() and not (run / "sensitivity").exists()


def test_a_corner_named_twice_is_refused(run: Path) -> None:
    """``--corner 27c --corner 27C`` simulated the corner twice and said "meets the spec at all 2 corners"."""
    _one_line(CliRunner().invoke(app, ["corners", str(run), "--corner", "27c", "--corner", "27C", "--workers", "1"]),
              "--corner: corner 27c is named twice")


def test_another_objective_for_a_run_is_refused(run: Path) -> None:
    """``zoaf yield RUN --objective X`` judged the run's objective and ignored X (a misspelt one too)."""
    _one_line(CliRunner().invoke(app, ["yield", str(run), "--objective", "nope", "--samples", "2"]),
              "--objective nope: ")
    assert not (run / "yield").exists()
    assert CliRunner().invoke(app, ["yield", str(run), "--objective", "BW", "--samples", "2",
                                    "--workers", "1"]).exit_code == 0


@pytest.mark.parametrize("value, says", [
    ('"abc"', "params.r1: 'abc' is not a finite number"), (None, "params.r1: missing"),
    ("1" + "0" * 400, f"params.r1: '1{'0' * 39}' is not a finite number"),
    ("1e9", "params.r1 = 1e+09 lies outside the spec's parameters.r1")])
@pytest.mark.parametrize("command", [["corners"], ["sensitivity"], ["yield", "--samples", "2"]])
def test_a_best_sizing_result_json_does_not_hold_is_one_line(run: Path, value: str | None, says: str,
                                                             command: list[str]) -> None:
    """An edited or truncated result.json: a ValueError, KeyError or OverflowError traceback, or a sizing outside
    the box simulated as the run's best."""
    import json

    result = run / "result.json"
    content = json.loads(result.read_text())
    if value is None:
        del content["params"]["r1"]
    else:
        content["params"]["r1"] = json.loads(value)
    result.write_text(json.dumps(content))
    _one_line(CliRunner().invoke(app, [command[0], str(run), *command[1:], "--workers", "1"]),
              f"{result}: {says}")


@pytest.mark.parametrize("key, value", [("corners", [1]), ("corners", "27c"), ("objective", 5)])
def test_a_history_whose_problem_zoaf_did_not_write_is_one_line(run: Path, key: str, value: object) -> None:
    """An edited history.db (its problem's corners not a list of corners, its objective no name): a TypeError or
    AttributeError traceback from every sign-off command."""
    import json
    import sqlite3

    with sqlite3.connect(run / "history.db") as db:
        problem = json.loads(db.execute("select value from meta where key = 'problem'").fetchone()[0])
        db.execute("update meta set value = ? where key = 'problem'", (json.dumps({**problem, key: value}),))
    db.close()
    for command in (["corners"], ["sensitivity"], ["yield", "--samples", "2"]):
        _one_line(CliRunner().invoke(app, [command[0], str(run), *command[1:], "--workers", "1"]),
                  f"{run / 'history.db'}: not a zoaf run history (its problem is not what zoaf writes)")


@pytest.mark.parametrize("command", [["optimize", "--budget", "2", "--workers", "0", "--quiet", "--out"],
                                     ["compare", "--methods", "random", "--seeds", "1", "--budget", "2", "--jobs",
                                      "1", "--quiet", "--out"]])
def test_a_run_refuses_the_sign_off_names_check_refuses_before_it_simulates(tmp_path: Path,
                                                                           command: list[str]) -> None:
    """``zoaf optimize`` and ``zoaf compare`` judged only the objective's corners: a corner of ``[corners]`` it does
    not use, or a ``[montecarlo]`` draw of an unknown .param, ran the whole budget and was refused only at sign-off.
    Refused as ``zoaf check`` refuses it: one line, exit 2, no directory made."""
    shutil.copy(CORPUS / "mc.cir", tmp_path / "mc.cir")
    (tmp_path / "hot.cir").write_text((CORPUS / "mc.cir").read_text().replace(".end", ".temp 50\n.end"))
    good = (CORPUS / "mc.toml").read_text()
    cases = [("mc.cir", good + '[corners]\ntemp = [27, 85]\nnosuch = [1, 2]\n', "corners.27c_nosuch=1: 'nosuch' is"),
             ("mc.cir", good.replace('normal = ["mc_r"]', 'normal = ["nosuch"]'), "montecarlo.normal: 'nosuch' is"),
             ("hot.cir", good + '[corners]\ntemp = [27, 85]\n', "hot.cir:9: .temp 50: the deck sets its own")]
    for deck, text, says in cases:
        (tmp_path / "s.toml").write_text(text)
        r = CliRunner().invoke(app, [command[0], str(tmp_path / deck), "--spec", str(tmp_path / "s.toml"),
                                     *command[1:], str(tmp_path / "out")])
        _one_line(r, says)
        assert not (tmp_path / "out").exists()


def test_a_corner_yield_recorded_before_corner_values_is_read(tmp_path: Path) -> None:
    """A ``yield-CORNER`` directory of a zoaf that did not record the corner's values was refused as "another run
    (its problem differs)", though it was this one: it is read, as ``optimize --resume`` reads such a run (its
    samples replayed, only the new ones simulated)."""
    import json
    import sqlite3

    out, _, _ = _process_run(tmp_path)
    y = ["yield", str(out), "--corner", "ss", "--workers", "1"]
    assert CliRunner().invoke(app, [*y, "--samples", "2"]).exit_code == 0
    db = out / "yield-ss" / "history.db"
    with sqlite3.connect(db) as con:
        problem = json.loads(con.execute("select value from meta where key = 'problem'").fetchone()[0])
        del problem["corner_values"]
        con.execute("update meta set value = ? where key = 'problem'", (json.dumps(problem),))
    con.close()
    with sqlite3.connect(db) as con:
        before = con.execute("select idx, params, measures from evals").fetchall()
    con.close()
    r = CliRunner().invoke(app, [*y, "--samples", "3"])
    assert r.exit_code == 0, r.output
    with sqlite3.connect(db) as con:
        assert con.execute("select idx, params, measures from evals").fetchall()[:2] == before
    con.close()


def test_resuming_a_sign_off_directory_as_a_run_says_what_it_is(run: Path) -> None:
    """``zoaf optimize --resume RUN/yield`` said "--method: unknown method 'montecarlo'" (its rows' tag read as a
    method), and ``--resume RUN/sensitivity/levels-...`` "a run of 'a Python problem', not of a netlist"."""
    for command in (["yield", str(run), "--samples", "2"], ["sensitivity", str(run)]):
        assert CliRunner().invoke(app, [*command, "--workers", "1"]).exit_code == 0
    for kind, folder in (("yield", run / "yield"), ("sensitivity", next((run / "sensitivity").glob("*-*")))):
        rows = (folder / "history.db").read_bytes()
        _one_line(CliRunner().invoke(app, ["optimize", str(run.parent / "mc.cir"), "--resume", str(folder)]),
                  f"{folder / 'history.db'}: the simulations of zoaf {kind}, not an optimization run")
        assert (folder / "history.db").read_bytes() == rows


def test_sign_off_of_a_comparison_names_where_its_runs_are(tmp_path: Path) -> None:
    """``zoaf corners CMP`` of a ``zoaf compare`` directory said "not a finished run directory (no history.db)"."""
    for name in ("mc.cir", "mc.toml"):
        shutil.copy(CORPUS / name, tmp_path / name)
    cmp = tmp_path / "cmp"
    assert CliRunner().invoke(app, ["compare", str(tmp_path / "mc.cir"), "--methods", "random", "--seeds", "1",
                                    "--budget", "2", "--jobs", "1", "--quiet", "--out", str(cmp)]).exit_code == 0
    for command in (["corners"], ["sensitivity"], ["yield", "--samples", "2"]):
        _one_line(CliRunner().invoke(app, [command[0], str(cmp), *command[1:]]),
                  f"{cmp}: a comparison (zoaf compare), not a run: sign off one of its runs, "
                  f"{cmp}/<objective>/<method>/seed-<k>")


@pytest.fixture
def other_spec_run(tmp_path: Path) -> Path:
    """A finished run of mc.cir made with ``--spec other.toml`` (no mc.toml beside it), from another directory
    than the one sign-off runs in."""
    shutil.copy(CORPUS / "mc.cir", tmp_path / "mc.cir")
    shutil.copy(CORPUS / "mc.toml", tmp_path / "other.toml")
    r = CliRunner().invoke(app, ["optimize", str(tmp_path / "mc.cir"), "--spec", str(tmp_path / "other.toml"),
                                 "--budget", "3", "--seed", "1", "--workers", "0", "--quiet", "--out",
                                 str(tmp_path / "run")])
    assert r.exit_code == 0, r.output
    return tmp_path / "run"


def test_sign_off_of_a_run_made_with_another_spec_reads_that_spec(other_spec_run: Path) -> None:
    """The run did not record its spec: every sign-off command looked for mc.toml ("spec file not found") unless
    ``--spec`` was given again."""
    r = CliRunner().invoke(app, ["sensitivity", str(other_spec_run), "--workers", "1", "--json"])
    assert r.exit_code == 0, r.output
    assert (other_spec_run / "sensitivity" / "sensitivity.json").is_file()


@pytest.mark.parametrize("change, says", [
    ("edit", "the spec {spec} the run read changed since the run; restore it"),
    ("remove", "the run's spec {spec} is not found (moved or removed since the run); give it with --spec"),
    ("another", "the spec {spec} is not the one the run used (its content differs); give the run's spec")])
def test_a_recorded_spec_edited_or_gone_since_the_run_is_one_line(other_spec_run: Path, change: str,
                                                                 says: str) -> None:
    """The spec the run recorded, edited or removed since the run: one line naming it; another spec given with
    ``--spec`` is refused as before."""
    spec, given = other_spec_run.parent / "other.toml", []
    if change == "remove":
        spec.unlink()
    else:
        spec = spec if change == "edit" else spec.with_name("another.toml")
        spec.write_text((CORPUS / "mc.toml").read_text().replace('gain_lf >= -1"]', 'gain_lf >= -2"]'))
        given = [] if change == "edit" else ["--spec", str(spec)]
    for command in (["corners"], ["sensitivity"], ["yield", "--samples", "2"]):
        r = CliRunner().invoke(app, [command[0], str(other_spec_run), *command[1:], *given, "--workers", "1"])
        _one_line(r, f"{other_spec_run / 'history.db'}: " + says.format(spec=spec.resolve() if not given else spec))
    assert not (other_spec_run / "yield").exists()


def test_resuming_a_run_made_with_another_spec_reads_that_spec(other_spec_run: Path) -> None:
    """``--resume`` without ``--spec`` read mc.toml: "spec file not found"."""
    r = CliRunner().invoke(app, ["optimize", str(other_spec_run.parent / "mc.cir"), "--resume", str(other_spec_run),
                                 "--workers", "0", "--quiet"])
    assert r.exit_code == 0, r.output


@pytest.mark.parametrize("rl, code, says", [
    ("0", 2, "the sizing simulated at none of the 2 corners: corner 27c_rl=0: "),
    ("-1", 1, "no corner measured all of f3db, gain_lf, which the objective judges")])
def test_corners_where_nothing_was_measured_exits_non_zero(tmp_path: Path, rl: str, code: int, says: str) -> None:
    """A sizing that failed at every corner exited 0 (``"pass": false``, read by a script as a design that misses its
    spec): no corner simulated (a load of 1/0) exits 2 as ``zoaf check`` does, none measured the objective (a
    negative load: no -3 dB point) exits 1; the corners are shown first."""
    deck = (CORPUS / "mc.cir").read_text().replace(".param r1=1k", ".param rl=1meg r1=1k")
    (tmp_path / "mc.cir").write_text(deck.replace("C1 out 0 {c1}", "C1 out 0 {c1}\nR2 out 0 {1/rl}"))
    (tmp_path / "mc.toml").write_text((CORPUS / "mc.toml").read_text() + f'[corners]\ntemp = [27, 125]\nrl = "{rl}"\n')
    r = CliRunner().invoke(app, ["corners", str(tmp_path / "mc.cir"), "--workers", "1", "--json"])
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert (r.exit_code, len(lines)) == (code, 1) and says in lines[0], r.output
    assert '"failing_corners": ["27c_rl=' in r.stdout            # what was simulated is shown all the same

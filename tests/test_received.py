"""A run directory received from someone else, signed off here (`zoaf sensitivity/yield/corners RUN`): what it
records (the netlist and spec it names, a folder or file that is a link, its history's tables) cannot make zoaf
simulate a deck of this machine unchecked, write outside it, or end in a traceback; nor can a received comparison
directory have `zoaf report` rank runs of two circuits as one's. Runs are of the bad-input corpus' RC deck, in process
(a few simulations each)."""
from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import struct
from pathlib import Path

import pytest
from attackkit import CORPUS, finished, run  # noqa: F401 (fixtures)
from typer.testing import CliRunner

from zoaf.cli import app

COMMANDS = [["sensitivity"], ["yield", "--samples", "2"], ["corners"]]


def _one_line(r, pattern: str) -> None:
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.exit_code == 2 and len(lines) == 1 and pattern in lines[0], (r.exit_code, r.output)


@pytest.fixture
def private(tmp_path: Path) -> Path:
    """The designer's own folder: a deck and spec of the same names and parameters, and a sensitivity result."""
    mine = tmp_path / "private"
    mine.mkdir()
    (mine / "secret.cir").write_text((CORPUS / "mc.cir").read_text().replace("C1 out 0 {c1}", "C1 out 0 {c1*7}"))
    (mine / "secret.toml").write_text((CORPUS / "mc.toml").read_text().replace("gain_lf >= -1", "gain_lf >= -2"))
    (mine / "sensitivity.json").write_text("the designer's own\n")
    return mine


def _edit_meta(run: Path, key: str, edit) -> None:
    db = sqlite3.connect(run / "history.db")
    value = json.loads(db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()[0])
    db.execute("UPDATE meta SET value = ? WHERE key = ?", (json.dumps(edit(value)), key))
    db.commit()
    db.close()


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() if p.is_file() else b"" for p in folder.rglob("*")}


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("file", ["netlist", "spec"])
def test_a_history_naming_a_file_of_this_machine_without_its_hash_is_refused(run: Path, private: Path,
                                                                            file: str, command: list[str]) -> None:
    """Its problem names the designer's deck (or spec) and records no hash of it: sign-off skipped the check, and
    simulated the private deck, its measures written into the received folder (for the sender to read back)."""
    if file == "netlist":
        _edit_meta(run, "problem", lambda p: {**{k: v for k, v in p.items() if k != "netlist_sha256"},
                                              "netlist": str(private / "secret.cir")})
    else:
        _edit_meta(run, "problem", lambda p: {k: v for k, v in p.items() if k != "spec_sha256"})
        _edit_meta(run, "spec", lambda s: {"from_run": os.path.relpath(private / "secret.toml", run),
                                           "path": str(private / "secret.toml")})
    before = _tree(run)
    r = CliRunner().invoke(app, [command[0], str(run), *command[1:], "--workers", "1"])
    _one_line(r, f"{run / 'history.db'}: not a zoaf run history (its problem records no {file}_sha256")
    assert _tree(run) == before


@pytest.mark.parametrize("folder, command", [("sensitivity", ["sensitivity"]),
                                             ("yield", ["yield", "--samples", "2"])])
def test_a_sign_off_folder_of_a_received_run_that_is_a_link_is_refused(run: Path, private: Path, folder: str,
                                                                      command: list[str]) -> None:
    """``RUN/sensitivity -> ~/mine``: zoaf wrote its histories, lock and results through the link, replacing the
    designer's own ``sensitivity.json``; ``RUN/yield`` to an empty folder had the yield run written there."""
    target = private if folder == "sensitivity" else private / "empty"
    target.mkdir(exist_ok=True)
    (run / folder).symlink_to(target)
    before = _tree(private)
    r = CliRunner().invoke(app, [command[0], str(run), *command[1:], "--workers", "1"])
    _one_line(r, f"{run / folder}: is a link; a run directory's folders must be its own")
    assert _tree(private) == before


def test_a_sensitivity_history_folder_that_is_a_link_is_refused(run: Path, private: Path) -> None:
    """The folder of one set of points (``RUN/sensitivity/<tag>-<hash>``, a name the sender can compute) as a link:
    its history and lock were made where it points."""
    r = CliRunner().invoke(app, ["sensitivity", str(run), "--workers", "1"])
    assert r.exit_code == 0, r.output
    inner = next(p for p in (run / "sensitivity").iterdir() if p.is_dir())
    shutil.rmtree(inner)
    (private / "empty").mkdir()
    inner.symlink_to(private / "empty")
    before = _tree(private)
    _one_line(CliRunner().invoke(app, ["sensitivity", str(run), "--workers", "1"]),
              f"{inner}: is a link; a run directory's folders must be its own")
    assert _tree(private) == before


def test_a_result_json_that_is_a_link_is_refused(run: Path, finished: Path, private: Path) -> None:
    """``result.json -> ~/runs/mine/result.json``: the designer's own best sizing was read, simulated and written
    into the received folder's sign-off files. A run's files must be its own, as its ``history.db``."""
    shutil.copy(finished / "result.json", private / "result.json")
    (run / "result.json").unlink()
    (run / "result.json").symlink_to(private / "result.json")
    _one_line(CliRunner().invoke(app, ["sensitivity", str(run), "--workers", "1"]),
              f"{run / 'result.json'}: is a link; a run directory's files must be its own")
    assert not (run / "sensitivity").exists()


def test_a_history_whose_table_refuses_zoafs_rows_is_one_line(run: Path) -> None:
    """A received sensitivity history whose ``evals`` table carries a CHECK zoaf never writes: the first row zoaf
    appended ended in an IntegrityError traceback (exit 1)."""
    assert CliRunner().invoke(app, ["sensitivity", str(run), "--workers", "1"]).exit_code == 0
    (run / "sensitivity" / "sensitivity.json").unlink()
    db_path = next((run / "sensitivity").glob("*/history.db"))
    db = sqlite3.connect(db_path)
    sql = db.execute("SELECT sql FROM sqlite_master WHERE name = 'evals'").fetchone()[0]
    db.executescript(f"PRAGMA journal_mode=DELETE; DROP TABLE evals; {sql.rstrip()[:-1]}, CHECK (idx < 0));")
    db.close()
    _one_line(CliRunner().invoke(app, ["sensitivity", str(run), "--workers", "1"]),
              f"{db_path}: not a zoaf run history (a CHECK constraint in table evals, which zoaf does not write)")


@pytest.mark.parametrize("folder", ["bw", "bw/random", "bw/random/seed-0"])
def test_a_folder_of_a_received_comparison_that_is_a_link_is_refused_before_any_run(tmp_path: Path, private: Path,
                                                                                   folder: str) -> None:
    """``zoaf compare --out CMP`` where ``CMP/bw -> ~/mine``: the runs were made (and their ``best.cir`` written)
    in the designer's folder; only the report after them refused the link."""
    for name in ("mc.cir", "mc.toml"):
        shutil.copy(CORPUS / name, tmp_path / name)
    link = tmp_path / "cmp" / folder
    link.parent.mkdir(parents=True)
    (private / "empty").mkdir()
    link.symlink_to(private / "empty")
    r = CliRunner().invoke(app, ["compare", str(tmp_path / "mc.cir"), "--methods", "random", "--seeds", "1",
                                 "--budget", "3", "--jobs", "1", "--quiet", "--out", str(tmp_path / "cmp")])
    _one_line(r, f"{link}: is a link; a comparison directory's folders must be its own")
    assert not any((private / "empty").iterdir())


def test_a_history_whose_column_defaults_to_a_long_text_is_refused_before_its_rows_are_read(run: Path) -> None:
    """Rows stored without a column read back its DEFAULT: a 15 MiB file of 16,384 such rows (as many as a history
    of budget 1 may hold) made every row's error 15 MiB, 240 GiB to load. Measured with 40 rows: a 15 MiB file, a
    reader at 715 MiB. zoaf writes one default, ``constraints``' ``'[]'``."""
    db = sqlite3.connect(run / "history.db")
    columns = [c[1] for c in db.execute("PRAGMA table_info(evals)")]
    kept = columns[:columns.index("error")]
    db.executescript(f"PRAGMA journal_mode=DELETE; CREATE TABLE short AS SELECT {', '.join(kept)} FROM evals; "
                     f"DROP TABLE evals; ALTER TABLE short RENAME TO evals; "
                     f"ALTER TABLE evals ADD COLUMN error TEXT DEFAULT '{'x' * 2**20}';")
    for name in columns[columns.index("error") + 1:]:
        db.execute(f"ALTER TABLE evals ADD COLUMN {name} DEFAULT {0 if name != 'constraints' else repr('[]')}")
    db.close()
    _one_line(CliRunner().invoke(app, ["sensitivity", str(run), "--workers", "1"]),
              f"{run / 'history.db'}: not a zoaf run history (a default value of column 'error' in table evals")
    assert not (run / "sensitivity").exists()


def test_rows_past_the_bound_on_their_text_are_refused_as_they_are_read(run: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """What a row reads back is not bounded by the file (cells of a crafted file can share one overflow chain):
    the rows are read a batch at a time, their text counted (here a bound of 100 bytes for a run's few rows)."""
    import zoaf.history

    monkeypatch.setattr(zoaf.history, "MAX_ROWS_BYTES", 100)
    with pytest.raises(zoaf.history.InputError, match="not a zoaf run history .its rows hold more than 0 MiB"):
        with zoaf.history.History(run / "history.db", read=True) as h:
            h.records()


def _super_journal(journal: Path, named: Path, db_bytes: int) -> None:
    """A hot rollback journal of no pages whose transaction spanned attached databases: its tail names the
    super-journal ``named`` (SQLite's journal layout: a 512-byte header; the name, its length and byte sum, the
    magic)."""
    magic = bytes.fromhex("d9d505f920a163d7")
    header = (magic + struct.pack(">IIIII", 0, 0x1234, db_bytes // 4096, 512, 4096)).ljust(512, b"\0")
    name = str(named).encode()
    tail = struct.pack(">I", 2**30 // 4096 + 1) + name + struct.pack(">II", len(name), sum(name)) + magic
    journal.write_bytes(header + tail)


@pytest.mark.parametrize("command", [["sensitivity"], ["optimize", "--resume"]])
def test_a_journal_naming_a_super_journal_never_has_sqlite_delete_that_file(run: Path, finished: Path,
                                                                            private: Path, tmp_path: Path,
                                                                            command: list[str]) -> None:
    """SQLite rolls a hot ``history.db-journal`` back as it opens the history to write, then deletes the
    super-journal it names when no journal still points to it: any file you may delete (here the designer's own
    deck), by any command that opened a received history so (the control below: a plain open). zoaf opens one only to
    read it (immutable: SQLite never opens its journal) or refuses to write beside a journal (a zoaf run leaves
    none): the file survives, the history is as received. A check of its own for such a journal is no longer made."""
    journal, victim = run / "history.db-journal", private / "secret.cir"
    _super_journal(journal, victim, (run / "history.db").stat().st_size)
    control = Path(shutil.copytree(run, tmp_path / "control"))
    named = Path(shutil.copy(victim, tmp_path / "named.cir"))
    _super_journal(control / "history.db-journal", named, (control / "history.db").stat().st_size)
    sqlite3.connect(control / "history.db").execute("SELECT COUNT(*) FROM evals").fetchall()
    assert not named.exists()                       # the planted journal works on an open that may write
    before = (run / "history.db").read_bytes()
    args = [command[0], *([str(finished.parent / "mc.cir")] if command[0] == "optimize" else []), *command[1:]]
    r = CliRunner().invoke(app, [*args, str(run), "--workers", "1"])
    assert victim.is_file() and journal.is_file() and (run / "history.db").read_bytes() == before
    if command[0] == "optimize":                    # a resume writes: refused, as any journal is
        _one_line(r, f"{journal}: a rollback journal, which no zoaf run leaves")
    else:                                           # sign-off only reads the received history
        assert r.exit_code == 0, r.output


@pytest.fixture(scope="module")
def compared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sender's finished comparison of a copy of mc.cir: objective ``bw``, method random, seeds 0 to 2."""
    sender = tmp_path_factory.mktemp("sender")
    for name in ("mc.cir", "mc.toml"):
        shutil.copy(CORPUS / name, sender / name)
    r = CliRunner().invoke(app, ["compare", str(sender / "mc.cir"), "--methods", "random", "--seeds", "3",
                                 "--budget", "3", "--jobs", "1", "--quiet", "--out", str(sender / "cmp")])
    assert r.exit_code == 0, r.output
    return sender / "cmp"


@pytest.fixture
def comparison(compared: Path, tmp_path: Path) -> Path:
    """A copy of the finished comparison, received into a folder of its own."""
    return Path(shutil.copytree(compared, tmp_path / "received" / "cmp", symlinks=True))


def _seed(comparison: Path, k: int) -> Path:
    return comparison / "bw" / "random" / f"seed-{k}"


@pytest.mark.parametrize("file, named", [("netlist", "netlist (or a file it includes)"), ("spec", "spec")])
def test_a_received_comparison_with_a_history_of_another_circuits_hashes_is_refused_naming_it(
        comparison: Path, file: str, named: str) -> None:
    """One run's history edited to another circuit's hash (the first run's, so that the runs after it are the
    many): ``zoaf report`` ranked it with the others as the circuit compare.json names, where ``zoaf compare``
    refuses to reuse it. Refused in one line naming that run, before report.md is written."""
    report = (comparison / "report.md").read_bytes()
    _edit_meta(_seed(comparison, 0), "problem", lambda p: {**p, f"{file}_sha256": "0" * 64})
    _one_line(CliRunner().invoke(app, ["report", str(comparison), "-q"]),
              f"{_seed(comparison, 0)}: a run of another circuit: its history records another {named} than "
              f"{_seed(comparison, 1)}'s: a comparison ranks runs of one circuit; move the run out")
    assert (comparison / "report.md").read_bytes() == report


def test_a_run_of_another_circuit_moved_into_a_received_comparison_is_refused(comparison: Path,
                                                                             private: Path) -> None:
    """A run of the designer's other deck (its capacitor scaled), made as the comparison's seed 2 was."""
    shutil.rmtree(_seed(comparison, 2))
    r = CliRunner().invoke(app, ["optimize", str(private / "secret.cir"), "--method", "random", "--budget", "3",
                                 "--seed", "2", "--workers", "0", "--quiet", "--out", str(_seed(comparison, 2))])
    assert r.exit_code == 0, r.output
    _one_line(CliRunner().invoke(app, ["report", str(comparison), "-q"]),
              f"{_seed(comparison, 2)}: a run of another circuit: its history records another netlist (or a file "
              f"it includes) than {_seed(comparison, 0)}'s")


def test_a_history_of_a_received_comparison_that_records_no_hash_is_refused(comparison: Path) -> None:
    """Unchecked, a history without its hashes passed for any circuit's."""
    _edit_meta(_seed(comparison, 1), "problem", lambda p: {k: v for k, v in p.items() if k != "spec_sha256"})
    _one_line(CliRunner().invoke(app, ["report", str(comparison), "-q"]),
              f"{_seed(comparison, 1) / 'history.db'}: not a zoaf run history (its problem records no spec_sha256")


def test_a_received_comparison_run_kept_without_its_history_is_reported_as_it_is(comparison: Path) -> None:
    """A run kept as benchmark results are (``result.json``, ``trace.json``) records no circuit: the report takes
    it, with the runs whose histories record the comparison's one circuit."""
    (_seed(comparison, 0) / "history.db").unlink()
    assert {"result.json", "trace.json"} <= {p.name for p in _seed(comparison, 0).iterdir()}
    r = CliRunner().invoke(app, ["report", str(comparison), "-q"])
    assert r.exit_code == 0, r.output
    assert re.search(r"^\| random \| 3 \|", (comparison / "report.md").read_text(), re.M)

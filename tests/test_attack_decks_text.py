"""Attack decks the text checks refuse with one line: files zoaf's own process would read, redirects hidden in
variables, command words ngspice unquotes, and text zoaf's readers and ngspice read as different cards or files.

Each attack is proved real first where it can be (plain ``ngspice -b`` runs it, or loads another file), then it
must be one ``file:line:`` error (exit code 2 from the command line), never a traceback.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from attackkit import SPEC
from fresh import in_fresh_process

from zoaf.circuit import CircuitProblem
from zoaf.deckcheck import MAX_INCLUDE_DEPTH
from zoaf.errors import InputError
from zoaf.evaluate import Evaluator
from zoaf.netlist import Netlist
from zoaf.signoff.corners import process_params

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux sandbox")


# -- files zoaf's own process would read: refused before anything reads them --------------------------------
def _include(tmp_path: Path, target: str) -> Path:
    deck = tmp_path / "deck.cir"
    deck.write_text(f"t\n.include {target}\nR1 1 0 1k\n.end\n")
    return deck


@pytest.mark.parametrize("target, why", [
    ("/dev/zero", "under /dev: a device or kernel file"),              # never ends: filled the memory
    ("/dev/tty", "under /dev"),                                        # waits for the user's keys
    ("/proc/self/environ", "under /proc"),                             # zoaf's own environment
    ("/sys/kernel/mm/transparent_hugepage/enabled", "under /sys"),
    ("zero_link.inc", "under /dev"),                                   # a link in the deck's folder to /dev/zero
    ("fifo.inc", "not a regular file"),                                # blocked the run forever
    ("big.inc", "larger than 64 MiB"),
])
def test_includes_that_are_not_model_files_are_refused_with_their_line(tmp_path: Path, target: str, why: str):
    (tmp_path / "zero_link.inc").symlink_to("/dev/zero")
    os.mkfifo(tmp_path / "fifo.inc")
    with open(tmp_path / "big.inc", "wb") as f:
        f.truncate(64 * 2**20 + 1)                       # sparse: no disk used
    with pytest.raises(InputError, match=rf"deck\.cir:2: \.include {re.escape(target)}: cannot read .*{why}"):
        Netlist.read(_include(tmp_path, target))


def test_a_too_deep_include_chain_is_one_error_not_a_traceback(tmp_path: Path):
    depth = MAX_INCLUDE_DEPTH + 1
    for i in range(depth):
        (tmp_path / f"c{i}.inc").write_text(f"* level {i}\n.include c{i + 1}.inc\n")
    (tmp_path / f"c{depth}.inc").write_text("* the bottom\n")
    with pytest.raises(InputError, match=rf"c{MAX_INCLUDE_DEPTH - 1}\.inc:2: \.include c{MAX_INCLUDE_DEPTH}\.inc: "
                                         rf"includes nested more than {MAX_INCLUDE_DEPTH} deep"):
        Netlist.read(_include(tmp_path, "c0.inc"))
    (tmp_path / "c1.inc").write_text("* a short chain\n")
    assert len(Netlist.read(_include(tmp_path, "c0.inc")).includes) == 2     # a PDK's few levels are fine


def test_files_that_each_include_the_next_twice_are_read_once_each(tmp_path: Path):
    """Reading the ``.param``s of included files followed every ``.include`` line: 40 files that each include the
    next twice made 2**40 readings, and ``zoaf check`` hung in its own process, before any sandbox or timeout.
    Each file is read once now: its parameters come back at once (the sandboxed load is bounded by the timeout)."""
    depth = 40
    for i in range(depth):
        (tmp_path / f"f{i}.inc").write_text(f".param p{i}={i}\n.include f{i + 1}.inc\n.include f{i + 1}.inc\n")
    (tmp_path / f"f{depth}.inc").write_text(f".param p{depth}={depth}\n")
    deck = _include(tmp_path, "f0.inc")
    code = ("import sys; from zoaf.netlist import Netlist; "
            "print(sorted(Netlist.read(sys.argv[1]).param_files))")
    r = subprocess.run([sys.executable, "-c", code, str(deck)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip() == str(sorted(f"p{i}" for i in range(depth + 1)))


@pytest.mark.parametrize("chain", [1, 300])
def test_includes_inside_lib_sections_never_recurse_to_a_traceback(tmp_path: Path, chain: int):
    """The include walk follows a ``.lib`` section's includes only where the section is used, but reading an
    included file's ``.param``s followed every ``.include`` of it: one that includes itself from inside a ``.lib``
    section (ngspice 39 segfaults), or a chain of them, recursed until ``zoaf check`` died with a traceback. The
    walk now reads those includes too (ngspice does) and refuses the cycle or the depth itself."""
    for i in range(chain):
        nxt = f"f{(i + 1) % chain}.inc"          # the last one includes the first: a cycle, or itself
        (tmp_path / f"f{i}.inc").write_text(f"* level {i}\n.lib s\n.include {nxt}\n.endl\n")
    libs = "".join(f".lib f{i}.inc s\n" for i in range(chain))    # what the walk reads each file through
    deck = tmp_path / "deck.cir"
    deck.write_text(f"lib cycle\n.include f0.inc\n{libs}.param r1=1k\nv1 1 0 1\nr1 1 0 {{r1}}\n.dc v1 1 1 1\n"
                    ".meas dc i1 find i(v1) at=1\n.end\n")
    (tmp_path / "deck.toml").write_text(SPEC.replace("leak", "i1"))
    r = subprocess.run([sys.executable, "-m", "zoaf", "check", str(deck)], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert re.search(r"f\d+\.inc:3: \.include f\d+\.inc:? (includes itself \(cycle: deck\.cir -> f0\.inc|"
                     r"includes nested more than \d+ deep)", r.stderr), r.stderr


@pytest.mark.parametrize("value", ['">"', "'<'", '( ">>" x )'])
def test_a_redirect_hidden_in_a_variable_is_refused(tmp_path: Path, value: str):
    """ngspice redirects after it expands variables: ``set g = ">"`` then ``echo x $g FILE`` wrote FILE, past
    the text check of redirects (the ``>`` is quoted where it is written). Proved real first with ``ngspice -b``;
    the sandbox refused the write (Landlock), the text check now refuses the deck."""
    marker = tmp_path / "MARKER"
    deck = tmp_path / "deck.cir"
    deck.write_text(f"hidden redirect\nv1 1 0 1\nr1 1 0 1k\n.control\nset g = \">\"\nop\necho x $g {marker}\n"
                    ".endc\n.end\n")
    subprocess.run(["ngspice", "-b", str(deck)], capture_output=True, timeout=60)
    assert marker.exists()                                                # real
    marker.unlink()
    deck.write_text(deck.read_text().replace('set g = ">"', f"set g = {value}"))
    with pytest.raises(InputError, match=r"deck\.cir:5: \.control command 'set' puts a '>' or '<' in a variable"):
        Netlist.read(deck)


@pytest.mark.parametrize("where, setting, says", [
    ("deck", '.options g=">"', r"deck\.cir:2: a \.options line puts a '>' or '<' in a variable"),
    ("deck", ".option g = <", r"deck\.cir:2: a \.option line puts a '>' or '<' in a variable"),
    ("include", '.opt g=">"', r"opts\.inc:1: a \.opt line puts a '>' or '<' in a variable"),
    ("control", 'option g=">"', r"deck\.cir:6: \.control command 'option' puts a '>' or '<' in a variable"),
])
def test_a_redirect_hidden_in_an_option_is_refused(tmp_path: Path, where: str, setting: str, says: str):
    """An option is a variable too: ``.options g=">"`` (in the deck or an included file) or the command ``option
    g=">"``, then ``echo x $g FILE``, wrote FILE past the text checks -- in a deck zoaf reloads per sizing (an
    analysis with a ``{expression}``), into a pipe of the worker's too (see test_attack_programs_resources). Proved real
    first with ``ngspice -b``; refused now with its line, exit code 2, no traceback."""
    marker = tmp_path / "MARKER"
    (tmp_path / "opts.inc").write_text(f"{setting}\n" if where == "include" else "* none\n")
    top = {"deck": setting, "include": ".include opts.inc"}.get(where, "* none")
    block = setting if where == "control" else "* none"
    deck = tmp_path / "deck.cir"
    deck.write_text(f"hidden redirect\n{top}\n.param r1=1k\nv1 1 0 1\n.control\n{block}\nop\n"
                    f"echo x $g {marker}\n.endc\nr1 1 0 {{r1}}\n.end\n")
    if "<" not in setting:
        subprocess.run(["ngspice", "-b", str(deck)], capture_output=True, timeout=60, cwd=tmp_path)
        assert marker.exists()                                            # real
    r = _check_cli(deck)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert re.search(says, r.stderr) and len(r.stderr.strip().splitlines()) == 1, r.stderr


@pytest.mark.parametrize("backend", [["--workers", "0"], ["--workers", "1"], ["--workers", "1", "--dask", "local"]])
def test_a_deck_cannot_write_into_zoafs_output_in_any_backend(tmp_path: Path, backend: list[str]):
    """A deck titled ``>`` makes ``$curplottitle`` a redirect past the text checks: ``echo TEXT $curplottitle
    /proc/self/fd/1`` (a deck reloaded per sizing replays ``echo``) wrote into the standard output a pool or Dask
    worker shared with zoaf, in the middle of ``zoaf optimize --json``'s. Proved real first with ``ngspice -b``; a
    simulating process's standard output is ``/dev/null`` now (the ``workers=0`` child's already was)."""
    deck = tmp_path / "deck.cir"
    deck.write_text(">\n.param r1=1k\nv1 in 0 dc 1\nr1 in out {r1}\nr2 out 0 1k\n.dc v1 0 {1} 1\n"
                    ".meas dc vo find v(out) at=1\n.control\nrun\necho INJECTED $curplottitle /proc/self/fd/1\n"
                    ".endc\n.end\n")
    (tmp_path / "deck.toml").write_text(SPEC.replace("leak", "vo"))
    assert "INJECTED" in subprocess.run(["ngspice", "-b", str(deck)], capture_output=True, text=True,
                                        timeout=60).stdout                                       # real
    r = subprocess.run([sys.executable, "-m", "zoaf", "optimize", str(deck), "--budget", "3", "--json", "--out",
                        str(tmp_path / "run"), *backend], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "INJECTED" not in r.stdout and json.loads(r.stdout)["nfev"] == 3, r.stdout


@pytest.mark.parametrize("line", ['.include c"d', '.lib "a b" sec', '.lib a"b sec'])
def test_an_include_is_checked_as_the_file_ngspice_reads(tmp_path: Path, line: str):
    """zoaf read a file name up to a quote, ngspice 39 up to a blank (``.include a"b`` is the file ``a"b``) and, on
    a ``.lib`` line, takes quotes for blanks (``.lib "a b" sec`` is section ``b`` of the file ``a``): zoaf checked
    and hashed another file than the one ngspice ran, whose ``.control`` block no check saw. Proved real first:
    ``ngspice -b`` runs that block."""
    (tmp_path / "a").write_text(".lib b\n.control\necho FROM_THE_UNCHECKED_SECTION\n.endc\n.endl\n")
    (tmp_path / "a b").write_text(".lib sec\n.endl\n")
    (tmp_path / "c").write_text("* a model file\n")
    (tmp_path / 'c"d').write_text(".control\necho FROM_THE_UNCHECKED_SECTION\n.endc\n")
    deck = tmp_path / "deck.cir"
    deck.write_text(f"inc\n{line}\nv1 1 0 1\nr1 1 0 1\n.op\n.end\n")
    r = subprocess.run(["ngspice", "-b", str(deck)], capture_output=True, text=True, timeout=60)
    assert "FROM_THE_UNCHECKED_SECTION" in r.stdout                     # real
    with pytest.raises(InputError, match=r'/(a|c"d):[12]: a \.control block in an included file'):
        Netlist.read(deck)


def test_a_spec_process_lib_is_read_only_if_it_is_a_model_file(tmp_path: Path):
    os.mkfifo(tmp_path / "fifo.lib")
    for lib, why in (("/dev/zero", "under /dev"), (str(tmp_path / "fifo.lib"), "not a regular file")):
        with pytest.raises(InputError, match=rf"process_lib {re.escape(lib)}: cannot read \({why}"):
            process_params(Path(lib), "tt", "spec: corners")


# -- zoaf's own command path: analysis lines run as commands, where ngspice runs back-quoted programs -------
def _run_analysis(deck: str, analysis: str, sandboxed: bool) -> str:
    """Simulate ``deck`` with ``analysis`` as its analysis line, past the text checks, programs allowed."""
    from zoaf import sandbox
    from zoaf.spice import SpiceSession

    nl = Netlist.read(deck)
    nl.analyses = [analysis]                             # the text check would refuse it: go round it
    if sandboxed:
        sandbox.enter(sandbox.Policy((Path(deck).parent,), allow_exec=True))
    with SpiceSession(nl) as s:
        return repr(s.evaluate({}))


def test_a_back_quote_in_an_analysis_line_is_refused_and_stays_in_the_sandbox(tmp_path: Path):
    deck = tmp_path / "rc.cir"
    text = ("rc\n.param r1=1k\nV1 in 0 dc 0 ac 1\nR1 in out {r1}\nC1 out 0 1n\n.ac dec 10 1k 1meg\n"
            ".meas ac g find vdb(out) at=1k\n.end\n")
    marker = tmp_path / "marker"
    analysis = f"ac dec 10 1k 1meg `touch {marker}`"
    deck.write_text(text.replace(".ac dec 10 1k 1meg", "." + analysis))
    with pytest.raises(InputError, match=r"rc\.cir:6: a back-quote on a \.ac line would run a program"):
        Netlist.read(deck, allow_shell=True)
    deck.write_text(text)
    for sandboxed in (True, False):                      # fresh processes: a sandbox cannot be undone
        in_fresh_process(_run_analysis, str(deck), analysis, sandboxed)
        assert marker.exists() is not sandboxed, f"sandboxed={sandboxed}"   # real without the sandbox


# -- command words and lines ngspice reads otherwise than zoaf's reader ------------------------------------
@pytest.mark.parametrize("command", ["sh\\ell touch m", "'shell' touch m", "s'h'ell touch m", "sh{e}ll touch m",
                                     "{shell} touch m", "'alias' s shell", "code\\model lib.so", "`echo shell` x"])
def test_a_command_word_ngspice_would_unquote_or_expand_is_refused(tmp_path: Path, command: str):
    """ngspice's lexer drops backslashes and quotes and expands braces in the command word: each ran ``shell``."""
    deck = tmp_path / "deck.cir"
    deck.write_text(f"t\nR1 1 0 1k\n.control\n{command}\n.endc\n.end\n")
    with pytest.raises(InputError, match=r"deck\.cir:4: \.control command .* spells its command word"):
        Netlist.read(deck, allow_shell=True)


def test_a_carriage_return_inside_a_line_is_refused_in_the_deck_and_its_includes(tmp_path: Path):
    """ngspice drops a carriage return and joins the text around it: ``.con\\rtrol`` in an included file opened a
    ``.control`` block that zoaf, splitting the line there, never saw (and ngspice ran at load)."""
    marker = tmp_path / "marker"
    (tmp_path / "models.inc").write_text(f"* models\n.con\rtrol\necho pwned > {marker}\n.endc\n", newline="")
    deck = tmp_path / "deck.cir"
    deck.write_text("t\n.include models.inc\nV1 1 0 1\nR1 1 0 1k\n.op\n.end\n")
    subprocess.run(["ngspice", "-b", str(deck)], cwd=tmp_path, capture_output=True, timeout=60)
    assert marker.exists()                               # real: plain ngspice -b runs the hidden block
    with pytest.raises(InputError, match=r"models\.inc:2: a carriage return inside a line"):
        Netlist.read(deck)
    deck.write_text("t\nV1 1 0 1\nR1 1 0 1k\n.con\rtrol\n.endc\n.end\n", newline="")
    with pytest.raises(InputError, match=r"deck\.cir:4: a carriage return inside a line"):
        Netlist.read(deck)
    (tmp_path / "models.inc").write_text("* models\r\nR9 9 0 1k\r\n", newline="")   # DOS line ends are fine
    deck.write_text("t\r\n.include models.inc\r\nV1 1 0 1\r\nR1 1 0 1k\r\n.op\r\n.end\r\n", newline="")
    Netlist.read(deck)


# -- circbyline: netlist lines whose .control block runs commands no text check saw ----------------------------
def test_circbyline_in_control_is_refused_even_with_allow_shell(tmp_path: Path):
    """``circbyline`` hands ngspice a netlist line by line; a ``.control`` block among the lines ran ``shell``, a
    ``write`` and redirects spelled ``'>>'`` (unquoted when the line is stored) at the ``.end`` line, past every
    text check. Through it a deck wrote a pickle into a Dask worker's stop queue (test_attack_programs_resources)."""
    marker = tmp_path / "marker"
    deck = tmp_path / "deck.cir"
    deck.write_text(f"t\nV1 1 0 1\nR1 1 0 1k\n.control\nop\ncircbyline inner\ncircbyline v9 9 0 1\n"
                    f"circbyline .control\ncircbyline echo pwned '>>' {marker}\ncircbyline .endc\n"
                    "circbyline .end\n.endc\n.end\n")
    subprocess.run(["ngspice", "-b", str(deck)], cwd=tmp_path, capture_output=True, timeout=60)
    assert marker.read_text() == "pwned\n"               # real: plain ngspice -b runs the hidden block
    for allow_shell in (False, True):
        with pytest.raises(InputError, match=r"deck\.cir:6: \.control command 'circbyline' hands ngspice a netlist"):
            Netlist.read(deck, allow_shell=allow_shell)


# -- what the include walk skipped: the netlist reader met files it had not read ---------------------------------
def _check_cli(deck: Path) -> subprocess.CompletedProcess[str]:
    (deck.parent / "deck.toml").write_text(SPEC.replace("leak", "vo"))
    return subprocess.run([sys.executable, "-m", "zoaf", "check", str(deck)], capture_output=True, text=True,
                          timeout=120)


def test_an_include_after_end_in_an_open_control_block_is_one_line_not_a_traceback(tmp_path: Path):
    """The include walk stopped at ``.end``, the netlist reader not inside an unclosed ``.control`` block: it asked
    for a file never read (KeyError). ``ngspice -b`` runs the block's lines after ``.end``, the file's among them."""
    (tmp_path / "cmds.inc").write_text("echo from-cmds-inc\n")
    deck = tmp_path / "deck.cir"
    deck.write_text("t\n.param r1=1k\nv1 in 0 dc 1\nr1 in out {r1}\nr2 out 0 1k\n.control\nop\nlet vo = v(out)\n"
                    "print vo\n.end\n.include cmds.inc\n")
    r = subprocess.run(["ngspice", "-b", str(deck)], capture_output=True, text=True, timeout=60)
    assert "from-cmds-inc" in r.stdout                   # real: ngspice -b reads on and runs the file's commands
    r = _check_cli(deck)
    assert (r.returncode, r.stderr.strip()) == (2, f"error: {deck}:6: .control block without .endc"), r.stderr
    deck.write_text(deck.read_text().replace(".control\n", "* a block opened by a continuation\n; c\n+ .control\n"))
    r = _check_cli(deck)                                  # for zoaf's reader only: the same traceback
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr


def test_an_include_inside_a_lib_definition_of_the_deck_is_read_and_checked(tmp_path: Path):
    """The walk skipped the lines of a ``.lib name`` definition in the deck or an ``.include``d file, which
    ``ngspice -b`` reads (a missing file there is its error): a ``.control`` block in such a file passed the
    check, and a command file ``.include``d in ``.control`` there was a KeyError traceback."""
    deck = tmp_path / "deck.cir"
    body = "t\n.param r1=1k\nv1 in 0 dc 1\nr1 in out {r1}\nr2 out 0 1k\n"
    deck.write_text(f"{body}.lib tt\n.include nowhere.inc\n.endl\n.op\n.end\n")
    r = subprocess.run(["ngspice", "-b", str(deck)], capture_output=True, text=True, timeout=60)
    assert "Could not find include file nowhere.inc" in r.stdout + r.stderr   # real: ngspice reads it
    (tmp_path / "evil.inc").write_text("* models\n.control\necho pwned\n.endc\n")
    (tmp_path / "models.inc").write_text("* models\n.lib other\n.include evil.inc\n.endl\n")
    for text in (f"{body}.lib tt\n.include evil.inc\n.endl\n.op\n.end\n", f"{body}.include models.inc\n.op\n.end\n"):
        deck.write_text(text)
        with pytest.raises(InputError, match=r"evil\.inc:2: a \.control block in an included file"):
            Netlist.read(deck)
    (tmp_path / "cmds.inc").write_text("echo from-cmds-inc\n")
    deck.write_text(f"{body}.lib tt\n.control\n.include cmds.inc\n.endc\n.endl\n.op\n.end\n")
    r = _check_cli(deck)
    assert r.returncode in (0, 1, 2) and "Traceback" not in r.stderr, r.stderr


def test_a_comment_line_in_a_control_block_runs_as_in_ngspice(tmp_path: Path):
    """A ``; note`` line in ``.control`` left an empty command that the text check indexed (IndexError): ngspice
    runs nothing for it, and zoaf measures what ``ngspice -b`` prints."""
    deck = tmp_path / "deck.cir"
    for comment in ("; a note", "$ a note", ";", "$"):
        deck.write_text(f"t\n.param r1=1k\nv1 in 0 dc 1\nr1 in out {{r1}}\nr2 out 0 1k\n.control\nop\n{comment}\n"
                        "let vo = v(out)\nprint vo\n.endc\n.end\n")
        assert "vo = 5.000000e-01" in subprocess.run(["ngspice", "-b", str(deck)], capture_output=True, text=True,
                                                      timeout=60).stdout
        r = _check_cli(deck)
        assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
        assert "maximize vo │ 0.5 " in r.stdout, r.stdout


@pytest.mark.parametrize("blank", ["\v", "\xa0", "\u3000"])
def test_a_card_after_an_odd_blank_is_refused_in_the_deck_and_its_includes(tmp_path: Path, blank: str):
    """zoaf's reader strips a form feed, a vertical tab or a Unicode blank before a card, ngspice does not: for
    zoaf ``\\xa0.endc`` ended the ``.control`` block, the lines after it were netlist lines, and ``ngspice -b`` (and
    zoaf's batch run of the deck) ran them as commands: a redirect, an ``alias``, past every text check."""
    marker = tmp_path / "marker"
    deck = tmp_path / "deck.cir"
    deck.write_text(f"t\nV1 1 0 1\nR1 1 0 1k\n.control\nop\n{blank}.endc\necho pwned > {marker}\n.end\n")
    subprocess.run(["ngspice", "-b", str(deck)], cwd=tmp_path, capture_output=True, timeout=60)
    assert marker.exists()                               # real: plain ngspice -b reads on in the block
    for allow_shell in (False, True):
        with pytest.raises(InputError, match=rf"deck\.cir:6: the line starts after the blank U\+{ord(blank):04X}"):
            Netlist.read(deck, allow_shell=allow_shell)
    (tmp_path / "models.inc").write_text(f"* models\n{blank}.endc\n")
    deck.write_text("t\n.include models.inc\nV1 1 0 1\nR1 1 0 1k\n.op\n.end\n")
    with pytest.raises(InputError, match=rf"models\.inc:2: the line starts after the blank U\+{ord(blank):04X}"):
        Netlist.read(deck)
    deck.write_text(f"{blank}title\nV1 1 0 1\nR1 1 0 1k\n.op\n.end\n")          # the title is any text
    assert Netlist.read(deck).title == f"{blank}title"


def test_a_line_after_a_form_feed_is_a_comment_as_in_ngspice(tmp_path: Path):
    """ngspice makes a line that starts with a form feed a comment ("unusual leading characters"): ``\\f.endc``
    leaves the block open (refused: what follows would run as commands); a page break before a comment, a
    card or a ``.param`` is read as ngspice reads it (zoaf once read the card, and refused the page break)."""
    marker = tmp_path / "marker"
    deck = tmp_path / "deck.cir"
    deck.write_text(f"t\nV1 1 0 1\nR1 1 0 1k\n.control\nop\n\f.endc\necho pwned > {marker}\n.end\n")
    subprocess.run(["ngspice", "-b", str(deck)], cwd=tmp_path, capture_output=True, timeout=60)
    assert marker.exists()                               # real: plain ngspice -b reads on in the block
    with pytest.raises(InputError, match=r"deck\.cir:4: \.control block without \.endc"):
        Netlist.read(deck)                               # zoaf too reads the block as left open: refused
    deck.write_text("t\n.param r1=1k\nv1 in 0 dc 1\nr1 in out {r1}\nr2 out 0 1k\n\f* page 2\n \fr3 out 0 1k\n"
                    "\f.param r1=3k\n.dc v1 0 1 1\n.meas dc vo find v(out) at=1\n.end\n")
    r = subprocess.run(["ngspice", "-b", str(deck)], capture_output=True, text=True, timeout=60)
    assert re.search(r"vo\s*=\s*5\.0+e-01", r.stdout), r.stdout     # r3 and the second r1 are comments
    nl = Netlist.read(deck)
    assert nl.params["r1"] == "1k"
    (tmp_path / "deck.toml").write_text(SPEC.replace("leak", "vo"))
    with Evaluator(CircuitProblem(deck), workers=0) as ev:
        [record] = ev.evaluate(np.array([[(1e3 - 100) / (10e3 - 100)]]))
    assert record.outcome.measures["vo"] == pytest.approx(0.5, rel=1e-9), record.outcome


@pytest.mark.parametrize("brk", ["\f", "\v", "\x85", "\u2028", "\u2029"])
def test_a_param_in_an_included_comment_is_not_a_value(tmp_path: Path, brk: str):
    """Python's ``splitlines`` ends a line at a form feed, a vertical tab, NEL, U+2028/U+2029; ngspice does not: the
    ``.param r1=5`` after one in an included file's comment line was, for zoaf, the value r1 has (the default
    sizing it showed and started from), where ``ngspice -b`` reads a comment and simulates r1 = 1000."""
    (tmp_path / "p.inc").write_text(f"* models\n* note{brk}.param r1=5\n")
    deck = tmp_path / "deck.cir"
    deck.write_text("t\n.param r1=1000\n.include p.inc\nv1 in 0 dc 1\nr1 in out {r1}\nr2 out 0 1k\n.dc v1 0 1 1\n"
                    ".meas dc vo find v(out) at=1\n.end\n")
    r = subprocess.run(["ngspice", "-b", str(deck)], capture_output=True, text=True, timeout=60)
    assert re.search(r"vo\s*=\s*5\.0+e-01", r.stdout), r.stdout        # r1 = 1000: 1k / (1k + 1k)
    nl = Netlist.read(deck)
    assert nl.params["r1"] == "1000" and "r1" not in nl.param_files


@pytest.mark.parametrize("name", ['x.inc"', "x.inc'", "\"'x.inc\"", "'x.inc\"'"])
def test_an_include_name_with_a_quote_at_its_end_is_refused(tmp_path: Path, name: str):
    """ngspice 39 reads ``.include x.inc"`` as the file ``x.inc"`` (the walk read and checked that one); zoaf's
    netlist reader dropped the quote and had ngspice load ``x.inc``: another file, never checked (its ``.control``
    block ran at load), nor part of the run's identity, and another measure than ``ngspice -b``'s."""
    read = name[1:-1] if name[0] in "\"'" and name[0] == name[-1] else name     # the file ngspice opens
    (tmp_path / read).write_text(".param rr=1000\n")
    (tmp_path / "x.inc").write_text(".param rr=5\n.control\necho UNCHECKED\n.endc\n")
    deck = tmp_path / "deck.cir"
    deck.write_text(f"t\n.include {name}\nv1 in 0 dc 1\nr1 in out {{rr}}\nr2 out 0 1k\n.dc v1 0 1 1\n"
                    ".meas dc vo find v(out) at=1\n.end\n")
    r = subprocess.run(["ngspice", "-b", str(deck)], capture_output=True, text=True, timeout=60)
    assert re.search(r"vo\s*=\s*5\.0+e-01", r.stdout) and "UNCHECKED" not in r.stdout, r.stdout   # rr = 1000
    with pytest.raises(InputError, match=r"deck\.cir:2: \.include .*: a file name that starts or ends with a quote"):
        Netlist.read(deck)


@pytest.mark.parametrize("blank", ["\xa0", "\u2028", "\u3000"])
def test_a_unicode_blank_inside_a_line_is_refused_in_the_deck_and_its_includes(tmp_path: Path, blank: str):
    """Python splits words at a Unicode blank, ngspice (C's ``isspace``) does not: ``.include x.inc\\xa0y`` had zoaf
    check and simulate ``x.inc`` where ``ngspice -b`` loads the file ``x.inc\\xa0y`` (never checked, its
    ``.control`` block run at load, not part of the run's identity); ``if\\xa0x > FILE`` was a condition for the
    checks, where ngspice runs an unknown command and makes its redirect. In a comment it is text for both."""
    (tmp_path / "x.inc").write_text(".param rr=1000\n")
    (tmp_path / f"x.inc{blank}y").write_text(".param rr=5\n.control\necho UNCHECKED\n.endc\n")
    marker = tmp_path / "marker"
    deck = tmp_path / "deck.cir"
    body = "v1 in 0 dc 1\nr1 in out {rr}\nr2 out 0 1k\n.dc v1 0 1 1\n.meas dc vo find v(out) at=1\n"
    cases = {2: f"t\n.include x.inc{blank}y\n{body}.end\n",
             9: f"t\n.param rr=1000\n{body}.control\nif{blank}x > {marker}\n.endc\n.end\n"}
    for line, text in cases.items():
        deck.write_text(text)
        r = subprocess.run(["ngspice", "-b", str(deck)], capture_output=True, text=True, timeout=60)
        assert "UNCHECKED" in r.stdout or marker.exists(), r.stdout    # real: another file, or a redirect
        r = _check_cli(deck)
        assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
        assert re.fullmatch(rf"error: {re.escape(str(deck))}:{line}: the blank U\+{ord(blank):04X} inside a line, "
                            r"which ngspice reads as text [^\n]*\n", r.stderr), r.stderr
    (tmp_path / "models.inc").write_text(f"* café{blank}notes\n.param rr=1000 ; 1{blank}k\n.control\n"
                                         f"if{blank}x > {marker}\n.endc\n")
    deck.write_text(f"t\n.include models.inc\n{body}.end\n")
    with pytest.raises(InputError, match=r"models\.inc:4: the blank U\+"):
        Netlist.read(deck)
    (tmp_path / "models.inc").write_text(f"* café{blank}notes\n.param rr=1000 ; 1{blank}k\n")
    deck.write_text(f"t{blank}title\n.include models.inc\n{body}.end\n")   # comments and the title are any text
    assert Netlist.read(deck).params["rr"] == "1000"


@pytest.mark.parametrize("encoded", [b"\xc2\x9b", b"\x9b"])            # UTF-8, or a byte of a latin-1 deck
def test_a_c1_control_in_a_decks_names_never_reaches_the_terminal(tmp_path: Path, encoded: bytes):
    """zoaf's notes quote a deck's names: a ``.meas op`` card named ``x<U+009B>2J`` (C1's CSI: ESC ``[`` on terminals
    that read C1 controls; ``2J`` clears the screen) had ``zoaf check`` write the sequence to the terminal as is.
    In a comment it is text."""
    deck = tmp_path / "deck.cir"
    body = b"t\n.param r1=1k\nv1 in 0 dc 1\nr1 in out {r1}\nr2 out 0 1k\n.dc v1 0 1 1\n.meas dc vo find v(out) at=1\n"
    deck.write_bytes(body + b".meas op x" + encoded + b"2J 1\n.end\n")
    r = _check_cli(deck)
    assert r.returncode == 2 and "\x9b" not in r.stderr, r.stderr
    says = rf"error: {re.escape(str(deck))}:8: the control character U\+009B, [^\n]*\n"
    assert re.fullmatch(says, r.stderr), r.stderr
    deck.write_bytes(body + b"* x" + encoded + b"2J\n.end\n")
    assert _check_cli(deck).returncode == 0

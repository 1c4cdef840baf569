"""zoaf.netlist: parsing, refusals, the decks it writes (pure text, no ngspice)."""
from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from zoaf.decktext import format_value
from zoaf.errors import InputError
from zoaf.netlist import Netlist

HERE = Path(__file__).parent / "netlists"


def write(tmp_path: Path, text: str, name: str = "t.cir") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def test_rc_params_measures_analyses():
    nl = Netlist.read(HERE / "rc.cir")
    assert nl.params == {"r1": "1k", "c1": "1n", "rload": "1meg"}
    assert nl.param_lines == {"r1": 3, "c1": 3, "rload": 4}
    assert [(m.analysis, m.name, m.line) for m in nl.measures] == [("ac", "f3db", 11), ("ac", "gain_lf", 12)]
    assert nl.analyses == ["ac dec 20 1k 100meg"]
    assert nl.results == ["f3db", "gain_lf"] and nl.control == [] and nl.has_end


def test_continuation_case_comments(tmp_path):
    p = write(tmp_path, "title\n* comment .param x=1\n.PARAM WM20=15E-6 $ width\n.param\n+ A = 2  b={a*2}"
                        " ; c=3\nR1 1 0 {wm20}\n.MEAS TRAN Vmax MAX v(1)\n+ from=0\n.tran 1n 1u\n.end\n")
    nl = Netlist.read(p)
    assert nl.params == {"wm20": "15E-6", "a": "2", "b": "{a*2}"}
    assert nl.param_lines["a"] == 4
    assert nl.measures[0].text == "meas tran vmax max v(1) from=0"
    out = nl.with_params({"WM20": 1.6e-5, "a": 1 / 3, "b": 7})
    assert ".PARAM WM20=1.6e-05 $ width" in out
    assert "+ A = 0.3333333333333333  b=7.0 ; c=3" in out
    assert Netlist.from_text(out, p).params == {"wm20": "1.6e-05", "a": "0.3333333333333333", "b": "7.0"}
    # the designer's own value keeps its text: ngspice computes 15E-6 as 15 * 1e-6, an ulp from 1.5e-05
    assert ".PARAM WM20=15E-6 $ width" in nl.with_params({"WM20": 1.5e-5, "a": 2})


def test_control_block_names_and_replay():
    nl = Netlist.read(HERE / "control_let.cir")
    assert nl.control_names == ["vop", "gdc", "fhalf", "ratio"]
    assert not any(c.startswith(("print", "echo")) for c in nl.control)
    assert nl.control_runs_analyses
    deck = nl.session_deck()
    assert not any(x.lower().startswith((".control", ".endc", "let", ".ac", ".meas")) for x in deck)
    assert deck[-1] == ".end" and ".save all" in deck


def test_shell_refused_unless_allowed():
    with pytest.raises(InputError, match=r"shell.cir:8: .*'shell'"):
        Netlist.read(HERE / "shell.cir")
    nl = Netlist.read(HERE / "shell.cir", allow_shell=True)
    assert "shell echo hello" not in nl.control        # never replayed per evaluation


@pytest.mark.parametrize("line", ["shell ls", "pre_shell ls", "set unixcom", "let x = `ls`", "source x.cir",
                                  "codemodel /tmp/x.so"])
def test_program_running_commands_refused(tmp_path, line):
    p = write(tmp_path, f"t\nR1 1 0 1\n.control\n{line}\n.endc\n.end\n")
    with pytest.raises(InputError, match=r"t.cir:4:"):
        Netlist.read(p)


@pytest.mark.parametrize("text, match", [
    ("", r":1: empty"),
    ("   \n\n", r":1: empty"),
    ("t\nR1 1 0 1\n.param x\n.end\n", r":3: .param needs name=value"),
    ("t\nR1 1 0 1\n.param x=\n.end\n", r":3: .param x has no value"),
    ("t\nR1 1 0 1\n.control\nop\n.end\n", r":3: .control block without .endc"),
    ("t\n.include nosuch.lib\n.end\n", r":2: .include file not found: nosuch.lib"),
    ("t\n.lib 'nosuch.lib' tt\n.end\n", r":2: .lib file not found"),
    ("t\n.lib \"{{pdk}}\" tt\n.end\n", r":2: unknown placeholder"),
])
def test_malformed_input(tmp_path, text, match):
    with pytest.raises(InputError, match=match):
        Netlist.read(write(tmp_path, text))


def test_binary_garbage(tmp_path):
    p = tmp_path / "g.cir"
    p.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(InputError, match="not a text file"):
        Netlist.read(p)
    with pytest.raises(InputError, match="cannot read"):
        Netlist.read(tmp_path / "missing.cir")


def test_includes_absolute_and_placeholders(tmp_path):
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "m.lib").write_text(".lib tt\n.model n1 nmos level=1\n.endl\n")
    (tmp_path / "sub.inc").write_text("* nothing\n")
    p = write(tmp_path, "t\n.include sub.inc\n.lib \"{{lib}}\" tt\n.param w=1u\nM1 1 1 0 0 n1 w={w}\n.op\n.end\n")
    nl = Netlist.read(p, placeholders={"lib": "models/m.lib"})
    out = nl.with_params({"w": 2e-6})
    assert f'.include "{tmp_path}/sub.inc"' in out
    assert f'.lib "{tmp_path}/models/m.lib" tt' in out and ".param w=2e-06" in out
    assert f'.include "{tmp_path}/sub.inc"' in nl.session_deck()


def test_unknown_param_and_value_format():
    nl = Netlist.read(HERE / "rc.cir")
    with pytest.raises(InputError, match="no top-level .param 'nope'"):
        nl.with_params({"nope": 1.0})
    assert float(format_value(1.2345678901234567e-6)) == 1.2345678901234567e-6
    with pytest.raises(InputError):
        format_value(float("nan"))


def test_subckt_params_are_not_design_variables(tmp_path):
    p = write(tmp_path, "t\n.param a=1\n.subckt s 1 2 b=2\n.param c=3\nR1 1 2 {b*c}\n.ends\nX1 1 0 s\n.op\n.end\n")
    assert Netlist.read(p).params == {"a": "1"}


def test_params_of_included_files(tmp_path):
    write(tmp_path, "* sizes\n.param w1=2u\n.subckt s a b q=1\n.param inner=1\n.ends\n.include loop_vars.spice\n",
          "top_vars.spice")
    write(tmp_path, ".param w2={w1*2}\n", "loop_vars.spice")                            # nested include
    p = write(tmp_path, "t\n.include top_vars.spice\n.param w1=9u\nR1 1 0 {w1}\n.end\n")
    nl = Netlist.read(p)
    assert nl.params == {"w1": "9u", "w2": "{w1*2}"} and nl.param_files["w2"].name == "loop_vars.spice"   # the last
    out = nl.with_params({"w1": 3e-6, "w2": 1e-6})
    assert out.splitlines()[1:5] == [f'.include "{tmp_path / "top_vars.spice"}"',
                                     ".param w1=3e-06   $ zoaf: sized, overrides the included value",
                                     ".param w2=1e-06   $ zoaf: sized, overrides the included value",
                                     ".param w1=3e-06"]


def test_a_param_defined_twice_in_an_included_file_defaults_to_the_last(tmp_path):
    """ngspice takes the last definition, in an included file as at the top level."""
    write(tmp_path, ".param a=1\n.param b=1\n.param a=2\n", "vars.spice")
    p = write(tmp_path, "t\n.include vars.spice\nR1 1 0 {a+b}\n.end\n")
    assert Netlist.read(p).params == {"a": "2", "b": "1"}


def test_batch_deck_and_faithful_reasons(tmp_path):
    p = write(tmp_path, "t\n.param r=1k\nR1 1 0 {r}\nV1 1 0 1\n.op\n.control\nop\n.options temp=50\n"
                        "meas dc x find v(1) at = 0\nprint v(1)\nwrdata out.txt v(1)\nquit\n.endc\n.end\n")
    nl = Netlist.read(p)
    assert nl.faithful_reasons == ["line 8: .options inside .control (ngspice applies it while reading the deck)"]
    assert "meas dc x find v(1) at=0" in nl.control and nl.control_quits and not nl.batch_runs_dot_analyses
    deck = nl.batch_deck({"r": 2e3}).splitlines()
    assert ".param r=2000.0" in deck and "print v(1)" in deck
    assert "* zoaf: wrdata out.txt v(1)" in deck and "* zoaf: quit" in deck


# -- escapes: one clear file:line, whatever the spelling (the sandbox is the guarantee; see test_sandbox) ----
@pytest.mark.parametrize("line, what", [
    ("alias sh shell", "alias"),
    ("alias w wrdata", "alias"),
    ("$c touch x", "variable"),
    ("\\$c touch x", "variable"),
    ("pre_$c", "variable"),
    ('set v = "shell ls; echo"', "';'"),
    ("let x = 1 > out.txt", "redirect"),
    ("let x = (1>out.txt)", "redirect"),
    ("let x = vec(1)\\>out.txt", "redirect"),
    ("set > vars.txt", "redirect"),
    ("print v(1) >> log.txt", "redirect"),
    ("echo pwned >sub/out.txt", "redirect"),      # into a plain file of the working folder: runs (Qucs-S)
    ("meas ac g find vdb(out) at=1k > m.txt", "redirect"),
    ("op > op.txt", "redirect"),
    ("let x = 1 < in.txt", "redirect"),
    ("set u = unixcom", "runs another program"),
    ("unset nounixcom unixcom", "runs another program"),
    ("osdi /tmp/x.osdi", "runs another program"),
    ("!ls", "runs another program"),
])
def test_control_escapes_refused(tmp_path, line, what):
    p = write(tmp_path, f"t\nR1 1 0 1\n.op\n.control\nlet ok = 1\n{line}\n.endc\n.end\n")
    with pytest.raises(InputError, match=rf"t.cir:6: .*{what}"):
        Netlist.read(p)


@pytest.mark.parametrize("line", ["if ok > 0", "while ok < 0", "dowhile ok > 1", "let b = 3 >= 2",
                                  "let c = ok <= 1", "let s = 'a>b'", "let d = ok gt 0"])   # a `set` of '>': refused
def test_comparisons_are_not_redirects(tmp_path, line):
    end = "end\n" if line.split()[0] in ("if", "while", "dowhile") else ""
    p = write(tmp_path, f"t\nR1 1 0 1\n.op\n.control\nlet ok = 1\n{line}\n{end}.endc\n.end\n")
    assert Netlist.read(p).control[1] == line


@pytest.mark.parametrize("line, ok", [
    (".meas ac g find vdb(out) at=1k > g.txt", False),
    (".meas ac g find vdb(out) at=1k\n+ >g.txt", False),
    (".ac dec 10 1 1g >ac.txt", False),
    (".op > op.txt", False),
    (".meas ac r param='g > 1 ? 1 : 0'", True),
    (".param big = {2 > 1 ? 1 : 0}", True),
    (".meas ac x when vdb(out)=-3", True),
])
def test_dot_line_redirects(tmp_path, line, ok):
    p = write(tmp_path, f"t\nR1 out 0 1\n.param a=1\n{line}\n.end\n")
    if ok:
        Netlist.read(p)
    else:
        with pytest.raises(InputError, match=r"t.cir:4: .*redirects"):
            Netlist.read(p)


# -- includes: walked recursively, checked, by content ------------------------------------------------------
def test_control_in_an_included_or_lib_file_refused(tmp_path):
    write(tmp_path, "* models\nR9 9 0 1\n\n.control\nshell touch x\n.endc\n", "inc.cir")
    write(tmp_path, "* lib\n.lib fast\n.control\nset > f\n.endc\n.endl fast\n", "lib.cir")
    sub = tmp_path / "sub"
    sub.mkdir()
    write(sub, "* nested\n.include ../inc.cir\n", "nested.cir")
    for include, where in ((".include inc.cir", r"inc.cir:4: a .control block"),
                           (".lib lib.cir fast", r"lib.cir:3: a .control block"),
                           (".inc sub/nested.cir", r"inc.cir:4: a .control block")):
        p = write(tmp_path, f"t\nR1 1 0 1\n{include}\n.end\n")
        with pytest.raises(InputError, match=where):
            Netlist.read(p)
    write(tmp_path, "* models\n.meas ac g find vdb(out) at=1k > g.txt\n", "meas.inc")
    with pytest.raises(InputError, match=r"meas.inc:2: .*redirects"):
        Netlist.read(write(tmp_path, "t\nR1 1 0 1\n.include meas.inc\n.end\n"))


@pytest.mark.parametrize("files, match", [
    ({"t.cir": "t\nR1 1 0 1\n.include t.cir\n.end\n"},
     r"t.cir:3: .include t.cir includes itself \(cycle: t.cir -> t.cir\)"),
    ({"t.cir": "t\n.include a.inc\n.end\n", "a.inc": "* a\n.include sub/b.inc\n", "sub/b.inc": "* b\n.inc ../a.inc\n"},
     r"b.inc:2: .inc ../a.inc includes itself \(cycle: t.cir -> a.inc -> b.inc -> a.inc\)"),
    ({"t.cir": "t\n.lib l.lib tt\n.end\n", "l.lib": ".lib tt\n.lib l.lib tt\n.endl tt\n"}, r"l.lib:2: .lib l.lib"),
])
def test_include_cycles_are_one_clear_line(tmp_path, files, match):
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text(text)
    with pytest.raises(InputError, match=match):
        Netlist.read(tmp_path / "t.cir")


def test_include_walk_sections_relative_paths_and_diamonds(tmp_path):
    (tmp_path / "m").mkdir()
    write(tmp_path / "m", "* lib\n.lib tt\n.include tt.inc\n.lib all.lib common\n.endl tt\n"
                          ".lib ff\n.include missing_ff.inc\n.endl ff\n.lib common\n.include common.inc\n.endl\n",
          "all.lib")
    write(tmp_path / "m", "* tt\n.include common.inc\n", "tt.inc")
    write(tmp_path / "m", "* common\nR5 5 0 1\n", "common.inc")
    nl = Netlist.read(write(tmp_path, "t\n.lib m/all.lib tt\n.include m/common.inc\nR1 1 0 1\n.end\n"))
    assert [f.path.name for f in nl.includes] == ["all.lib", "tt.inc", "common.inc"]   # once each; ff unread
    included = {(tmp_path / "m" / f).resolve() for f in ("all.lib", "tt.inc", "common.inc")}
    assert set(nl.reads()) == {tmp_path.resolve(), *included}          # the files, not their folder
    with pytest.raises(InputError, match=r"all.lib:7: .include file not found: missing_ff.inc"):
        Netlist.read(write(tmp_path, "t\n.lib m/all.lib ff\n.end\n"))


def test_digest_covers_included_files_by_content(tmp_path):
    for d in ("a", "b"):
        (tmp_path / d).mkdir()
        write(tmp_path / d, "* models\n.param rv=1k\n", "models.inc")
        write(tmp_path / d, "t\n.include models.inc\nR1 1 0 {rv}\n.end\n")
    a, b = Netlist.read(tmp_path / "a" / "t.cir"), Netlist.read(tmp_path / "b" / "t.cir")
    assert a.digest() == b.digest()                      # same content, other folder
    write(tmp_path / "b", "* models\n.param rv=2k\n", "models.inc")
    assert Netlist.read(tmp_path / "b" / "t.cir").digest() != a.digest()
    plain = Netlist.read(HERE / "rc.cir")                # no includes: the deck's own hash, as before
    assert plain.digest() == hashlib.sha256(plain.text.encode()).hexdigest()


def test_include_cycle_exits_2_with_one_line(tmp_path):
    shutil.copy(Path(__file__).parent / "bad_inputs" / "good.toml", tmp_path / "t.toml")
    write(tmp_path, "t\n.param r1=1k c1=1n\n.include t.cir\n.end\n")
    r = subprocess.run([sys.executable, "-m", "zoaf", "check", str(tmp_path / "t.cir")], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 2 and r.stdout == "", r
    assert re.fullmatch(r"error: \S*t.cir:3: .include t.cir includes itself \(cycle: t.cir -> t.cir\)\n",
                        r.stderr.replace("\n", " ", r.stderr.count("\n") - 1)), r.stderr

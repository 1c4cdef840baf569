import math

import pytest
from hypothesis import given, strategies as st

from zoaf.errors import InputError
from zoaf.problem import INFEASIBLE_OFFSET, MISSING_VIOLATION, Score
from zoaf.spec import Constraint, Spec

GOOD = """
title = "t"
[parameters]
w1 = { lo = "1u", hi = "100u", scale = "log" }
nf = { lo = 1, hi = 16, type = "int" }
cc = { lo = "0.1p", hi = "10p", scale = "log", init = "1p" }
[measures]
gain_db = { unit = "dB" }
ugbw_hz = { unit = "Hz" }
power_w = { unit = "W" }
[objectives]
fom = { maximize = "ugbw_hz", constraints = ["gain_db >= 60", "power_w <= 1m"] }
gain = { maximize = "gain_db" }
"""


def write(tmp_path, text, name="s.toml"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_reads_a_spec(tmp_path):
    s = Spec.read(write(tmp_path, GOOD))
    assert [p.name for p in s.parameters] == ["w1", "nf", "cc"]
    w1, nf, cc = s.parameters
    assert (w1.lo, w1.hi, w1.scale) == (1e-6, 100e-6, "log") and nf.integer and cc.init == 1e-12
    assert s.default_objective == "fom"
    assert s.objective("fom").constraints == (Constraint("gain_db", ">=", 60.0), Constraint("power_w", "<=", 1e-3))


def test_constrained_fom_ranks_feasible_first_then_by_violation(tmp_path):
    obj = Spec.read(write(tmp_path, GOOD)).objective("fom")
    good = obj.evaluate({"ugbw_hz": 1e6, "gain_db": 70, "power_w": 1e-4})
    better = obj.evaluate({"ugbw_hz": 1e8, "gain_db": 61, "power_w": 9e-4})
    near = obj.evaluate({"ugbw_hz": 1e9, "gain_db": 59, "power_w": 1e-4})
    far = obj.evaluate({"ugbw_hz": 1e9, "gain_db": -1000, "power_w": 5e-3})
    missing = obj.evaluate({"gain_db": 70, "power_w": 1e-4})
    assert better.fom < good.fom < near.fom < far.fom < missing.fom < math.inf
    assert good.feasible and better.feasible and not near.feasible and not far.feasible
    assert near.fom == pytest.approx(INFEASIBLE_OFFSET + 1 / 60)
    assert far.objective == 1e9   # raw objective kept for reporting
    # constraint values, <= 0 met, not capped: (60 - 59)/60; (60 + 1000)/60 and (5m - 1m)/1m
    assert near.constraints == pytest.approx((1 / 60, (1e-4 - 1e-3) / 1e-3))
    assert far.constraints == pytest.approx((1060 / 60, 4.0))
    assert far.fom == pytest.approx(INFEASIBLE_OFFSET + MISSING_VIOLATION + 4.0)   # the FoM caps each at 10
    # the objective on the FoM's scale: the FoM where feasible, modelled across the boundary where not
    assert good.objective_fom == good.fom and near.objective_fom == pytest.approx(-math.log1p(1e9))
    assert missing.objective_fom == math.inf and missing.constraints == pytest.approx((-1 / 6, -0.9))


def test_unconstrained_objective_is_plain_signed_value(tmp_path):
    obj = Spec.read(write(tmp_path, GOOD)).objective("gain")
    assert obj.evaluate({"gain_db": 42.0}) == Score(-42.0, 42.0, None, -42.0, ())


def test_missing_constraint_measure_is_large_and_finite(tmp_path):
    obj = Spec.read(write(tmp_path, GOOD)).objective("fom")
    s = obj.evaluate({"ugbw_hz": 1e6, "power_w": 1e-4})
    assert s.constraints[0] == MISSING_VIOLATION and s.fom == INFEASIBLE_OFFSET + MISSING_VIOLATION


@given(st.floats(-1e29, 1e29), st.floats(0, 1e3))
def test_any_feasible_beats_any_infeasible(v, miss):
    c = Constraint("g", ">=", 1.0)
    feasible = Score.of(v, [c.value(2.0)]).fom
    infeasible = Score.of(-1e29, [c.value(1.0 - miss - 1e-9)]).fom
    assert feasible < infeasible <= INFEASIBLE_OFFSET + MISSING_VIOLATION


def test_strict_inequality_on_its_bound_is_not_met():
    assert Constraint("g", ">", 1.0).value(1.0) > 0 and Constraint("g", ">=", 1.0).value(1.0) == 0


@pytest.mark.parametrize("text, match", [
    ("title = 'x'\n[parameters\n", "TOML syntax error"),
    (GOOD.replace('gain = { maximize = "gain_db" }', 'gain = { maximize = "gain_db", target = "fast" }'),
     "objectives.gain.target: 'fast' is not a SPICE number"),
    (GOOD.replace('lo = "1u", hi = "100u"', 'lo = "100u", hi = "1u"'),
     r"s\.toml: parameters\.w1\.lo: must be < hi, got lo=0\.0001, hi=1e-06$"),
    (GOOD.replace('lo = "1u", hi = "100u"', 'lo = "0", hi = "1u"'),
     r"s\.toml: parameters\.w1\.lo: must be > 0 on a log scale, got 0$"),
    (GOOD.replace('lo = "1u", hi = "100u"', 'lo = "u1", hi = "1u"'), "parameters.w1.lo"),
    (GOOD.replace('scale = "log" }', 'scale = "sqrt" }', 1),
     r"s\.toml: parameters\.w1\.scale: must be 'lin' or 'log', got 'sqrt'$"),
    (GOOD.replace('"gain_db >= 60"', '"gain_db => 60"'), "objectives.fom.constraints"),
    (GOOD.replace('"gain_db >= 60"', '"__import__(os) >= 1"'), "objectives.fom.constraints"),
    (GOOD.replace('"gain_db >= 60"', '"noise >= 1"'), r"objectives\.fom\.constraints: measure 'noise' is not listed"),
    (GOOD.replace('maximize = "gain_db"', 'maximize = "gain_db", minimize = "gain_db"'), "exactly one"),
    (GOOD.replace("[measures]", "[measures]\nbad = { unit = 3 }"), "measures.bad.unit"),
    (GOOD.replace('type = "int"', 'type = "integer"'), "nf.type"),
    (GOOD.replace("title", "titel"), r"unknown key 'titel'; did you mean 'title'\?$"),
    (GOOD.replace('init = "1p"', 'init = "1n"'), r"s\.toml: parameters\.cc\.init: 1e-09 lies outside lo\.\.hi = "),
    (GOOD.replace('init = "1p"', 'init = "nan"'), "cc.init"),
    (GOOD.replace('hi = "100u"', 'hi = "1e999"'), "w1.hi"),
    ("", "missing \\[parameters\\]"),
])
def test_errors_name_file_and_key(tmp_path, text, match):
    p = write(tmp_path, text)
    with pytest.raises(InputError, match=match) as e:
        Spec.read(p)
    assert str(p) in str(e.value) and "\n" not in str(e.value)


def test_missing_and_binary_files(tmp_path):
    with pytest.raises(InputError, match="not found"):
        Spec.read(tmp_path / "nope.toml")
    p = tmp_path / "bin.toml"
    p.write_bytes(bytes(range(256)))
    with pytest.raises(InputError, match="not a text file"):
        Spec.read(p)


def test_check_against_netlist(tmp_path):
    s = Spec.read(write(tmp_path, GOOD))
    s.check_against(["W1", "nf", "cc", "vdd"], ["GAIN_DB", "ugbw_hz", "power_w"], "amp.cir")
    with pytest.raises(InputError, match="parameters.nf: no '.param nf='"):
        s.check_against(["w1", "cc"], ["gain_db", "ugbw_hz", "power_w"], "amp.cir")
    with pytest.raises(InputError, match="measures.power_w"):
        s.check_against(["w1", "nf", "cc"], ["gain_db", "ugbw_hz"], "amp.cir")


def test_a_spec_that_starts_with_a_byte_order_mark_is_read(tmp_path):
    """Windows editors (Notepad's "UTF-8 with BOM") start a file with U+FEFF; TOML has no place for it, and the spec
    was refused with "TOML syntax error ... (at line 1, column 1)", a riddle. It is read as the same spec without."""
    plain = Spec.read(write(tmp_path, GOOD))
    bom = tmp_path / "bom.toml"
    bom.write_bytes(b"\xef\xbb\xbf" + GOOD.encode())
    spec = Spec.read(bom)
    assert (spec.parameters, spec.measures, spec.objectives, spec.text) == \
        (plain.parameters, plain.measures, plain.objectives, plain.text)


@pytest.mark.parametrize("old, new, says", [
    ('hi = "100u"', 'hii = "100u"', r"s\.toml: parameters\.w1: unknown key 'hii'; did you mean 'hi'\?$"),
    ('gain = { maximize', 'gain = { maximise', r"s\.toml: objectives\.gain: unknown key 'maximise'; did you mean "
                                               r"'maximize'\?$"),
    ('power_w = { unit', 'power_w = { units', r"s\.toml: measures\.power_w: unknown key 'units'; did you mean "
                                              r"'unit'\?$"),
    ('scale = "log", init', 'scale = "log", Initial', r"s\.toml: parameters\.cc: unknown key 'Initial'; did you mean "
                                                   r"'init'\?$"),
    ('type = "int"', 'type = "int", step = 2', r"parameters\.nf: unknown key 'step'; expected one of hi, init, lo, "
                                               r"scale, type, unit$")])
def test_a_misspelt_key_is_refused_with_the_key_it_is_likely_meant_for(tmp_path, old, new, says):
    """A typo was refused as "unknown key(s) hii", with no hint of which key was meant."""
    with pytest.raises(InputError, match=says):
        Spec.read(write(tmp_path, GOOD.replace(old, new, 1)))


@pytest.mark.parametrize("old, new, says", [
    ('title = "t"', 'title = "t"\ncorner = "ff"', r"s\.toml: corner: 'ff' needs a pdk \(it picks the PDK's process "
                                                  r"section\); without one, the deck's own models are simulated"),
    ('init = "1p"', 'init = "1p", unit = ["F"]', r"s\.toml: parameters\.cc\.unit: must be a string, got \['F'\]$"),
    ('type = "int"', 'type = "int", unit = 5', r"parameters\.nf\.unit: must be a string, got 5$"),
    ('type = "int"', 'type = "int", init = 2.5',
     r"s\.toml: parameters\.nf\.init: 2\.5 is not a whole number \(an integer parameter\)$")])
def test_keys_that_were_silently_ignored_or_rewritten_are_refused(tmp_path, old, new, says):
    """``corner`` without ``pdk`` was ignored (the deck's own models simulated, the designer believing it was
    the ff corner); a parameter's ``unit`` that is no string was shown as its Python text (``['F']``); an integer
    parameter's fractional ``init`` was rounded (2.5 to 2) where ``--set nf=2.5`` is refused."""
    with pytest.raises(InputError, match=says):
        Spec.read(write(tmp_path, GOOD.replace(old, new, 1)))



@pytest.mark.parametrize("old, new, says", [
    ('nf = { lo = 1,', 'nf = { lo = 1.5,', r"s\.toml: parameters\.nf\.lo: must be a whole number \(an integer "
                                            r"parameter\), got 1\.5$"),
    ('w1 = { lo = "1u", hi = "100u", scale = "log" }', 'w1 = { lo = -1e308, hi = 1e308 }',
     r"s\.toml: parameters\.w1: the span hi - lo of -1e\+308\.\.1e\+308 overflows a float; narrow the bounds$"),
    ('gain = { maximize = "gain_db" }', 'gain = { maximize = "gain" }',
     r"s\.toml: objectives\.gain\.maximize: measure 'gain' is not listed in \[measures\]$"),
    ('title = "t"', "title = 5", r"s\.toml: title: must be a string, got 5$"),
    (GOOD, 'parameters = 5', r"s\.toml: parameters: must be a table \(\[parameters\]\), got int$"),
    ('unit = "dB"', 'unit = "d\\u001bB"', r"s\.toml: measures\.gain_db\.unit: control character 0x1b"),
    ('"power_w <= 1m"', '"power_w <= 1m\\u001b"', r"s\.toml: objectives\.fom\.constraints\[1\]: control character")])
def test_every_spec_message_names_its_toml_field(tmp_path, old, new, says):
    """Messages read ``parameter 'r1': lo must be < hi``, ``title must be a string`` or ``measures: f3db: unit:``,
    where the rest of zoaf names the field as TOML spells it: ``parameters.r1.lo``, ``title``,
    ``measures.f3db.unit``."""
    with pytest.raises(InputError, match=says):
        Spec.read(write(tmp_path, GOOD.replace(old, new, 1)))


@pytest.mark.parametrize("old, new, says", [
    ('title = "t"', 'title = "t\\u202egnp.exe"', r"s\.toml: title: invisible format character U\+202E"),
    ('unit = "dB"', 'unit = "d\\u2066B"', r"s\.toml: measures\.gain_db\.unit: invisible format character U\+2066"),
    ('unit = "Hz"', 'unit = "H\\u200bz"', r"s\.toml: measures\.ugbw_hz\.unit: invisible format character U\+200B"),
    ('title = "t"', 'title = "t\\u2028x"', r"s\.toml: title: invisible format character U\+2028"),
    ('power_w = {', '"p\\u202ew" = {', r"s\.toml: measures\.p\\u202ew: invisible format character U\+202E")])
def test_invisible_format_characters_in_spec_strings_are_refused(tmp_path, old, new, says):
    """A bidirectional override (U+202A-U+202E, U+2066-U+2069) or a zero-width character in a title or a unit shows
    a different text on the terminal and in reports than the spec holds; refused as control characters are, and
    the error line itself shows the key escaped."""
    with pytest.raises(InputError, match=says) as caught:
        Spec.read(write(tmp_path, GOOD.replace(old, new, 1)))
    assert str(caught.value).isascii()


@pytest.mark.parametrize("bound", ["1e-320", "-1e-31", "5e-300"])
def test_a_constraint_bound_whose_normalized_miss_overflows_is_refused(tmp_path, bound):
    """A miss is divided by |bound|: at 1e-320 every constraint value was +-inf (``Infinity`` in history.db)."""
    text = GOOD.replace('"power_w <= 1m"', f'"power_w <= {bound}"')
    with pytest.raises(InputError, match=r"s\.toml: objectives\.fom\.constraints: bound of 'power_w <= .*nearer 0"):
        Spec.read(write(tmp_path, text))
    assert Constraint.parse("power_w <= 1e-30").value(1.0) == pytest.approx(1e30)   # the least bound kept: finite
    assert Constraint.parse("power_w <= 0").value(1.0) == 1.0

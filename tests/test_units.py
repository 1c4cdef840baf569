import math
import re

import pytest
from hypothesis import given, strategies as st

from zoaf import units
from zoaf.errors import InputError


@pytest.mark.parametrize("text, value", [
    ("1.5u", 1.5e-6), ("10meg", 10e6), ("10MEG", 10e6), ("2m", 2e-3), ("2M", 2e-3), ("10pF", 10e-12),
    ("1e-6", 1e-6), ("3k", 3e3), ("1kohm", 1e3), ("4.7n", 4.7e-9), ("1t", 1e12), ("2g", 2e9), ("5f", 5e-15),
    ("5V", 5.0), ("-3.3", -3.3), (".5u", 0.5e-6), ("1mil", 25.4e-6), (7, 7.0), (0.25, 0.25), (" 2u ", 2e-6),
    ("1e3k", 1e6), ("100u", 1e-4), ("0.1p", 1e-13),
])
def test_parse_examples(text, value):
    assert units.parse(text) == value


@pytest.mark.parametrize("bad", ["", "abc", "1..2", "u1", "nan", "inf", "1e999", float("nan"), True, "1 2"])
def test_parse_rejects(bad):
    with pytest.raises(InputError, match="w1"):
        units.parse(bad, what="w1")


@given(st.floats(min_value=1e-18, max_value=1e14, allow_nan=False))
def test_format_round_trips_to_display_precision(v):
    assert units.parse(units.format(v, 6)) == pytest.approx(v, rel=1e-5)


@pytest.mark.parametrize("value, shown", [
    (1e308, "1e+308"), (-1e308, "-1e+308"), (1e15, "1e+15"), (999.96e12, "1e+15"), (999.9e12, "999.9t"),
    (1.5e12, "1.5t"), (1e-16, "1e-16"), (1e-15, "1f"),
])
def test_format_past_the_si_prefixes_is_plain_scientific(value, shown):
    """Past ``t``, the largest prefix, a value showed as ``1e+296t`` (1e308 / 1e12 in ``g`` format, then ``t``)."""
    assert units.format(value) == shown


@given(st.floats(min_value=1e-18, max_value=1.7e308))
def test_format_never_writes_an_exponent_and_a_prefix(v):
    text = units.format(v, 6)
    assert not re.search(r"e[+-]?\d+[a-z]", text), text
    assert units.parse(text) == pytest.approx(v, rel=1e-5)


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_exact_round_trips_bit_for_bit(v):
    assert units.parse(units.exact(v)) == v


@given(st.floats(min_value=1e-15, max_value=1e12), st.sampled_from(sorted(units.SCALE)))
def test_suffix_scales(v, suffix):
    text = f"{v!r}{suffix}"
    assert math.isclose(units.parse(text), v * float(units.SCALE[suffix]), rel_tol=1e-12)


def test_numparam_reads_no_mil_and_no_atto():
    """ngspice's numparam (``.param`` values, ``{expressions}``): ``mil`` is milli plus a unit, ``a`` a unit;
    zoaf's own inputs and device lines keep SPICE's 25.4u and atto (checked against ngspice in test_compat)."""
    assert units.parse("10mil", numparam=True) == 0.01 and units.parse("10mil") == 254e-6
    assert units.parse("5MILS", numparam=True) == 0.005
    assert units.parse("1a", numparam=True) == 1.0 and units.parse("1a") == 1e-18
    assert units.parse("2.5k", numparam=True) == units.parse("2.5k") == 2500.0


def test_numparam_scales_in_doubles_unless_nearest():
    assert units.parse("4.7n", numparam=True) == 4.7 * 1e-9 != 4.7e-9
    assert units.parse("4.7n", numparam=True, nearest=True) == 4.7e-9
    assert units.parse("10mil", numparam=True, nearest=True) == 0.01


@pytest.mark.parametrize("text, value", [("200meg", 2e8), ("200MEGHz", 2e8), ("10mHz", 1e-2), ("10kHz", 1e4),
                                         ("5MIL", 5 * 25.4e-6), ("60dB", 60.0), (1.5, 1.5), ("1e6", 1e6)])
def test_spec_numbers_read_as_spice_reads_them(text, value):
    assert units.parse_spec(text, what="x") == pytest.approx(value, rel=1e-15)


@pytest.mark.parametrize("text, why", [("200MHz", "reads as 200 milli"), ("1M", "reads as 1 milli"),
                                       ("1Mohm", "write 1megohm for mega"), ("50ppm", "reads as 50 pico"),
                                       ("3PPB", "reads as 3 pico")])
def test_spec_numbers_that_mean_something_else_than_written_are_refused(text, why):
    """SPICE's M is milli and p pico: a spec's `ugbw >= 200MHz` was a 0.2 Hz bound that every design met."""
    assert units.parse(text) < 1                                     # what SPICE (and ngspice) make of them
    with pytest.raises(InputError, match=why):
        units.parse_spec(text, what="x")


@pytest.mark.parametrize("text", ["1µ", "2.5μ"])
def test_a_micro_sign_is_refused_with_the_spice_spelling(text):
    """SPICE writes micro as u: the micro sign (U+00B5, or Greek mu) gets that hint in its one line."""
    with pytest.raises(InputError, match="write u for micro"):
        units.parse(text, what="r1")


@pytest.mark.parametrize("value", [10**400, "9" * 400, "1" * 5000 + "M", "x" * 10**5])
def test_an_error_line_echoes_a_bounded_head_of_a_huge_value(value):
    """TOML integers are unbounded and a spec string runs to a MiB: the one error line showed all 400 digits."""
    with pytest.raises(InputError, match="r1.hi") as caught:
        units.parse_spec(value, what="r1.hi")
    assert len(str(caught.value)) < 200
    assert f"({len(repr(value))} characters)" in str(caught.value)

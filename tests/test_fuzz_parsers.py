"""Fuzzing the parsers of user input: whatever the text, bytes or nested data, they return or raise
``InputError`` (the CLI's one-line exit-2 error), never anything else."""
from __future__ import annotations

import math
import string
from pathlib import Path
from typing import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from zoaf import units
from zoaf.errors import InputError
from zoaf.netlist import Netlist
from zoaf.spec import Constraint, Spec

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# ---------------------------------------------------------------------- units
_number_like = st.from_regex(r"\A\s*[+-]?(\d{0,400}\.?\d{0,5}|\.\d{1,5})([eE][+-]?\d{1,30})?"
                             r"(meg|mil|[tgkmunpfaTGKMUNPFA])?[a-zA-Z]{0,4}\s*\Z", fullmatch=True)


@FUZZ
@given(st.one_of(st.text(), _number_like, st.text(alphabet=string.digits + "eE+-.kmuMEGgnpf ", max_size=40)))
def test_units_parse_text(text: str) -> None:
    try:
        v = units.parse(text, what="field")
    except InputError as e:
        assert "field" in str(e) and "\n" not in str(e).strip()
        return
    assert isinstance(v, float) and math.isfinite(v)


@FUZZ
@given(st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(min_value=-10**400, max_value=10**400),
                 st.booleans(), st.none(),
                 st.lists(st.integers(), max_size=3), st.binary(max_size=20)))
def test_units_parse_any_value(value: object) -> None:
    try:
        v = units.parse(value)   # type: ignore[arg-type]
    except InputError:
        return
    assert math.isfinite(v)


@FUZZ
@given(st.floats(allow_nan=False, allow_infinity=False, min_value=-1e300, max_value=1e300))
def test_units_exact_round_trips(v: float) -> None:
    assert units.parse(units.exact(v)) == v


# ---------------------------------------------------------------------- spec
_scalars = st.one_of(st.none(), st.booleans(), st.integers(min_value=-10**400, max_value=10**400),
                     st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=20),
                     st.sampled_from(["1u", "100u", "log", "lin", "int", "float", "gain >= 1", "1e999", "0",
                                      "-1", "nan", "f3db", "r1"]))
_keys = st.one_of(st.text(max_size=10), st.sampled_from(
    ["title", "parameters", "measures", "objectives", "pdk", "corner", "lo", "hi", "scale", "type", "init",
     "unit", "minimize", "maximize", "constraints", "r1", "c1", "f3db", "gain_lf"]))
_data = st.recursive(_scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                        st.dictionaries(_keys, inner, max_size=5)), max_leaves=30)

_param = st.fixed_dictionaries({"lo": _scalars, "hi": _scalars},
                               optional={"scale": _scalars, "type": _scalars, "init": _scalars, "unit": _scalars})
_objective = st.dictionaries(st.sampled_from(["minimize", "maximize", "constraints", "scale", "x"]),
                             st.one_of(_scalars, st.lists(st.one_of(_scalars, st.from_regex(
                                 r"\A[a-z_]{1,6}\s*(>=|<=|>|<|==|=>)\s*\S{0,6}\Z")), max_size=3)), max_size=3)
_specish = st.fixed_dictionaries(
    {"parameters": st.dictionaries(st.sampled_from(["r1", "c1", "w-1", "", "nf"]), st.one_of(_param, _scalars),
                                   max_size=3),
     "measures": st.dictionaries(st.sampled_from(["f3db", "gain_lf", "1x"]),
                                 st.one_of(st.fixed_dictionaries({}, optional={"unit": _scalars}), _scalars),
                                 max_size=2),
     "objectives": st.dictionaries(st.sampled_from(["bw", "o2"]), st.one_of(_objective, _scalars), max_size=2)},
    optional={"title": _scalars, "pdk": _scalars})


def _spec_ok_or_input_error(data: object) -> None:
    try:
        spec = Spec.from_dict(data)   # type: ignore[arg-type]
    except InputError as e:
        assert str(e).strip() and "\n" not in str(e).strip()
        return
    assert spec.parameters and spec.objectives


@FUZZ
@given(st.dictionaries(_keys, _data, max_size=6))
def test_spec_from_random_nested_dict(data: dict) -> None:
    _spec_ok_or_input_error(data)


@FUZZ
@given(_specish)
def test_spec_from_spec_shaped_dict(data: dict) -> None:
    _spec_ok_or_input_error(data)


@FUZZ
@given(st.one_of(st.binary(max_size=400), st.text(max_size=400).map(str.encode),
                 st.text(alphabet="[]{}=\"'#.,\n abclohi1u", max_size=200).map(str.encode)))
def test_spec_read_random_bytes(tmp_path_factory: pytest.TempPathFactory, raw: bytes) -> None:
    _read_ok_or_input_error(Spec.read, tmp_path_factory.mktemp("spec") / "fuzz.toml", raw)


def _read_ok_or_input_error(read: Callable[[Path], object], path: Path, raw: bytes) -> None:
    """``read`` of a file holding ``raw`` returns, or raises an InputError that names the file."""
    path.write_bytes(raw)
    try:
        read(path)
    except InputError as e:
        assert str(path) in str(e)


@FUZZ
@given(st.text(max_size=60))
def test_constraint_parse(text: str) -> None:
    try:
        c = Constraint.parse(text)
    except InputError:
        return
    assert c.op in (">=", "<=", ">", "<") and math.isfinite(c.bound)


# ---------------------------------------------------------------------- netlist
_netlist_lines = st.lists(st.one_of(
    st.text(max_size=40),
    st.sampled_from([".param r1=1k", ".param", ".param r1=", ".param r1 = {2*x}", ".end", ".endc", ".control",
                     ".meas ac x max vdb(out)", ".meas", ".meas q y", ".include nosuch.lib", ".lib x",
                     ".lib nosuch.lib tt", ".subckt a b", ".ends", "+ r2=3", "* comment", "run", "shell ls",
                     "let x = 1", "if 1", "end", "`ls`", "pre_shell ls", "set unixcom", ".ac dec 10 1 1g",
                     "R1 a b {r1}", ".param a=1 b=2 c=", "{{pdk}}", ".inc ''"])), max_size=25)


@FUZZ
@given(_netlist_lines)
def test_netlist_from_random_lines(lines: list[str]) -> None:
    _netlist_ok_or_input_error("\n".join(lines))


@FUZZ
@given(st.one_of(st.text(max_size=300), st.binary(max_size=300)))
def test_netlist_from_random_text(text: str | bytes) -> None:
    _netlist_ok_or_input_error(text)


@FUZZ
@given(st.binary(max_size=300))
def test_netlist_read_random_bytes(tmp_path_factory: pytest.TempPathFactory, raw: bytes) -> None:
    _read_ok_or_input_error(Netlist.read, tmp_path_factory.mktemp("cir") / "fuzz.cir", raw)


def _netlist_ok_or_input_error(text: str | bytes) -> None:
    try:
        nl = Netlist.from_text(text, Path("/nonexistent/fuzz.cir"))
    except InputError as e:
        assert "fuzz.cir" in str(e)
        return
    assert nl.session_deck()[-1].lower() == ".end"          # the session loads the deck line by line up to it
    # what zoaf writes from a netlist it accepted must not raise either
    nl.session_deck()
    values = {name: 1.5 for name in nl.params}
    nl.with_params(values)

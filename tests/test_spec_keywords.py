"""The spec's keywords in any case, as its names and ngspice's: ``corners = "ALL"`` was refused with 'must be "all"
or ...', ``scale = "LOG"``, ``type = "Int"`` and a ``Maximize`` key likewise, while corner keys were read in any
case. Read as their lower-case spelling; two keys that differ in case only are refused, as two names are."""
from __future__ import annotations

from pathlib import Path

import pytest

from zoaf.errors import InputError
from zoaf.spec import Spec

CORPUS = Path(__file__).parent / "bad_inputs"
LIB = Path(__file__).parent.parent / "netlists" / "models" / "generic_corners.lib"
BASE = (CORPUS / "good.toml").read_text()
CORNERS = f'[corners]\nprocess = ["tt", "ss"]\ntemp = [27, 85]\nprocess_lib = "{LIB}"\n'


def _read(tmp_path: Path, text: str) -> Spec:
    (tmp_path / "s.toml").write_text(text)
    return Spec.read(tmp_path / "s.toml")


@pytest.mark.parametrize("written", ['"ALL"', '"All"'])
def test_corners_all_is_read_in_any_case(tmp_path: Path, written: str) -> None:
    spec = _read(tmp_path, BASE.replace('constraints = ["gain_lf >= -1"] }',
                                        f'constraints = ["gain_lf >= -1"], corners = {written} }}') + CORNERS)
    assert spec.objectives["bw"].corners == ("tt_27c", "tt_85c", "ss_27c", "ss_85c")


@pytest.mark.parametrize("old, new", [
    ('r1 = { lo = "100", hi = "100k", scale = "log" }', 'r1 = { lo = "100", hi = "100k", scale = "LOG" }'),
    ('r1 = { lo = "100", hi = "100k", scale = "log" }', 'r1 = { lo = "100", hi = "100k", Scale = "Log" }'),
    ('r1 = { lo = "100", hi = "100k", scale = "log" }', 'r1 = { LO = "100", HI = "100k", scale = "log" }'),
    ('bw = { maximize', 'bw = { Maximize'),
    ('bw = { maximize = "f3db", constraints', 'bw = { MAXIMIZE = "f3db", Constraints'),
    ('f3db = { unit = "Hz" }', 'f3db = { Unit = "Hz" }'),
    ('[parameters]', '[Parameters]'),
    ('title =', 'TITLE ='),
])
def test_keywords_are_read_in_any_case(tmp_path: Path, old: str, new: str) -> None:
    """Each spelling reads the same spec as the lower-case one (it was "unknown key" or "must be 'lin' or 'log'")."""
    assert old in BASE
    plain, other = _read(tmp_path, BASE), _read(tmp_path, BASE.replace(old, new))
    assert (other.title, other.parameters, other.measures, other.objectives) == \
        (plain.title, plain.parameters, plain.measures, plain.objectives)


def test_an_integer_type_is_read_in_any_case(tmp_path: Path) -> None:
    text = BASE.replace('c1 = { lo = "10p", hi = "10n", scale = "log" }', 'n = { lo = 1, hi = 8, type = "Int" }')
    (n,) = [p for p in _read(tmp_path, text).parameters if p.name == "n"]
    assert n.integer and (n.lo, n.hi) == (1, 8)


def test_montecarlo_keys_are_read_in_any_case(tmp_path: Path) -> None:
    spec = _read(tmp_path, BASE + '[MonteCarlo]\nNormal = ["mc_r"]\n')
    assert spec.montecarlo is not None and spec.montecarlo.normal == ("mc_r",)


@pytest.mark.parametrize("old, new, says", [
    ('r1 = { lo = "100",', 'r1 = { lo = "100", LO = "200",',
     "s.toml: parameters.r1: keys 'lo' and 'LO' are the same key (keys are case-insensitive)"),
    ('bw = { maximize = "f3db",', 'bw = { maximize = "f3db", Maximize = "gain_lf",',
     "s.toml: objectives.bw: keys 'maximize' and 'Maximize' are the same key (keys are case-insensitive)"),
    ('[parameters]', '[Parameters]\nr2 = { lo = 1, hi = 2 }\n[parameters]',
     "s.toml: keys 'Parameters' and 'parameters' are the same key (keys are case-insensitive)"),
    # a value no keyword names is echoed as written, not lowered
    ('scale = "log" }', 'scale = "Logarithmic" }',
     "s.toml: parameters.r1.scale: must be 'lin' or 'log', got 'Logarithmic'"),
    ('c1 = { lo = "10p", hi = "10n", scale = "log" }', 'n = { lo = 1, hi = 8, type = "Integer" }',
     "s.toml: parameters.n.type: must be 'float' or 'int', got 'Integer'"),
])
def test_keys_differing_in_case_only_and_unknown_keywords_are_refused(tmp_path: Path, old: str, new: str,
                                                                      says: str) -> None:
    with pytest.raises(InputError) as e:
        _read(tmp_path, BASE.replace(old, new, 1))
    assert str(e.value) == f"{tmp_path}/{says}"


def test_corners_other_than_all_are_still_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError) as e:
        _read(tmp_path, BASE.replace('constraints = ["gain_lf >= -1"] }',
                                     'constraints = ["gain_lf >= -1"], corners = "any" }') + CORNERS)
    assert str(e.value) == (f"{tmp_path}/s.toml: objectives.bw.corners: must be \"all\" or a non-empty list of "
                            "corner names")

"""zoaf.spice: the in-process session against ``ngspice -b``, failure classification, timeout, memory."""
from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from ngspice_marks import NEEDS_NGSPICE

from zoaf.errors import ConvergenceError, InputError, MeasureError, ParseError, Timeout
from zoaf.netlist import Netlist
from zoaf.units import parse

HERE = Path(__file__).parent / "netlists"
ROOT = Path(__file__).parent.parent


pytestmark = NEEDS_NGSPICE

from zoaf.spice import SpiceSession, run_batch  # noqa: E402


def close(a: dict[str, float], b: dict[str, float]) -> bool:
    """Equal to ngspice -b's printing precision: `when` measures print 6 significant digits (5e-6)."""
    return a.keys() == b.keys() and all(
        math.isclose(a[k], b[k], rel_tol=6e-6, abs_tol=1e-12) for k in a)


def sizings(nl: Netlist, names: list[str], n: int, seed: int, spread: float = 0.3):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        yield {k: parse(nl.params[k]) * rng.uniform(1 - spread, 1 + spread) for k in names}


@pytest.mark.parametrize("name, params", [("rc.cir", ["r1", "c1"]), ("amp.cir", ["wn", "lm", "rd"]),
                                          ("control_let.cir", ["r1", "c1"])])
def test_session_matches_batch(tmp_path, name, params):
    nl = Netlist.read(HERE / name)
    with SpiceSession(nl) as s:
        for values in sizings(nl, params, 3, seed=1):
            got = s.evaluate(values)
            ref = run_batch(nl.with_params(values))
            assert close(got, ref), (values, got, ref)
            assert set(got) == set(nl.results)


@pytest.mark.skipif(not (ROOT / "netlists" / "two_stage_amp.cir").exists(), reason="no two_stage_amp.cir")
def test_two_stage_amp_acceptance():
    """The project's acceptance test: 5 random sizings within +-30% of the defaults."""
    import tomllib
    nl = Netlist.read(ROOT / "netlists" / "two_stage_amp.cir")
    spec = ROOT / "netlists" / "two_stage_amp.toml"
    names = list(tomllib.loads(spec.read_text())["parameters"]) if spec.exists() else list(nl.params)[:22]
    with SpiceSession(nl) as s:
        for values in sizings(nl, names, 5, seed=7):
            values = {k: (round(v) if k.startswith("nf") else v) for k, v in values.items()}
            got, ref = s.evaluate(values), run_batch(nl.with_params(values))
            assert close(got, ref), (values, got, ref)


def test_with_params_runs_from_anywhere(tmp_path):
    nl = Netlist.read(HERE / "amp.cir")
    values = {"wn": 12e-6, "rd": 1.234567890123e4}
    best = tmp_path / "best.cir"
    best.write_text(nl.with_params(values))
    with SpiceSession(nl) as s:
        assert close(run_batch(best), s.evaluate(values))
    assert "1.234567890123e4" not in best.read_text() and "12345.67890123" in best.read_text()


def test_failures_are_typed_and_session_survives():
    rc = Netlist.read(HERE / "rc.cir")
    with pytest.raises(ConvergenceError, match="aborted|Transient op started"):   # no optran fallback
        SpiceSession(HERE / "noconv.cir").evaluate({})
    with pytest.raises(ParseError, match="valid modelname") as e:
        SpiceSession(HERE / "unknown_model.cir").evaluate({})
    assert not e.value.needs_new_process and "nosuchmodel" in e.value.output
    s = SpiceSession(HERE / "meas_out.cir")
    with pytest.raises(MeasureError, match="never") as e:
        s.evaluate({})
    assert "out of interval" in e.value.output
    # the measures that were taken survive: a valid but bad design is not a crashed simulation
    # 1/(2 pi RC), on a coarse grid
    assert list(e.value.measures) == ["f3db"] and e.value.measures["f3db"] == pytest.approx(159155, rel=1e-2)
    with pytest.raises(MeasureError):
        s.evaluate({"r1": 2e3})                 # the same session again
    s.close()
    with SpiceSession(rc) as s:                 # the process's libngspice still works
        assert close(s.evaluate({"r1": 2e3}), run_batch(rc.with_params({"r1": 2e3})))
        with pytest.raises(InputError, match="no top-level .param 'nope'"):
            s.evaluate({"nope": 1})
        with pytest.raises(InputError, match="no result named"):
            s.evaluate({}, names=["nope"])
        assert list(s.evaluate({}, names=["gain_lf"])) == ["gain_lf"]
    with pytest.raises(ConvergenceError):
        run_batch(HERE / "noconv.cir")
    with pytest.raises(ParseError):
        run_batch(HERE / "unknown_model.cir")
    with pytest.raises(MeasureError, match="never"):
        run_batch(HERE / "meas_out.cir")


@pytest.mark.parametrize("instance, reason", [("X1 out s", "Too few"), ("X1 out 0 in s", "Too many")])
def test_a_subcircuit_instance_with_the_wrong_node_count_fails_its_load_with_the_reason(tmp_path, instance, reason):
    """ngspice prints "Too few parameters for subcircuit type" and keeps no circuit, with no word zoaf took for an
    error: the load passed and the first analysis failed with "there aren't any circuits loaded", which names
    neither the line nor the cause. The load fails now, with ngspice's reason."""
    deck = tmp_path / "x.cir"
    deck.write_text(f"RC\n.param r1=1k\nV1 in 0 dc 1\nR1 in out {{r1}}\n.subckt s a b\nR1 a b 1k\n.ends\n{instance}\n"
                    ".dc v1 0 1 0.5\n.meas dc vo find v(out) at=1\n.end\n")
    with pytest.raises(ParseError) as e:
        SpiceSession(deck).load()
    assert f'{reason} parameters for subcircuit type "s" (instance: xx1)' in str(e.value), str(e.value)
    assert "\n" not in str(e.value) and not e.value.needs_new_process
    with pytest.raises(ParseError):
        run_batch(deck)


def test_a_numparam_error_that_breaks_libngspice_names_numparam_s_reason(tmp_path):
    """``$`` with no blank before it is no comment: numparam says "; sign expected." and libngspice cannot recover.
    zoaf's message was ngspice's last line ("ngspice.dll cannot recover and awaits to be detached"), which says
    nothing of the cause; it now gives numparam's words."""
    deck = tmp_path / "dollar.cir"
    deck.write_text("dollar\n.param r1=1k\n.param r3={r1 + 500}$no blank\nV1 in 0 dc 1\nR3 in 0 {r3}\n"
                    ".dc v1 1 2 1\n.meas dc i1 find i(v1) at=1\n.end\n")
    code = (f"from zoaf.spice import SpiceSession\nfrom zoaf.errors import ParseError\n"
            f"try:\n    SpiceSession({str(deck)!r}).evaluate({{}})\n"
            f"except ParseError as e:\n    print('needs', e.needs_new_process, str(e))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert f"needs True loading {deck}:3: numparam: ; sign expected." in out.stdout, out.stdout + out.stderr


def test_numparam_error_needs_new_process():
    """A numparam error breaks libngspice for good: run it in a child process."""
    code = (f"from zoaf.spice import SpiceSession, run_batch\n"
            f"from zoaf.errors import ParseError\n"
            f"try:\n    SpiceSession({str(HERE / 'numparam.cir')!r}).evaluate({{}})\n"
            f"except ParseError as e:\n    print('needs', e.needs_new_process, str(e))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert "needs True" in out.stdout, out.stdout + out.stderr
    with pytest.raises(ParseError) as e:
        run_batch(HERE / "numparam.cir")
    assert e.value.needs_new_process and "nosuchparam" in e.value.output


def test_timeout_halts_and_session_survives():
    with SpiceSession(HERE / "slow.cir", timeout=0.3) as s:
        with pytest.raises(Timeout, match="0.3 s"):
            s.evaluate({})
    with SpiceSession(HERE / "rc.cir", timeout=5) as s:
        assert s.evaluate({})["f3db"] > 0
    with pytest.raises(Timeout):
        run_batch(HERE / "slow.cir", timeout=0.3)


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="needs /proc")
def test_memory_bounded():
    rng = np.random.default_rng(0)
    with SpiceSession(HERE / "amp.cir") as s:
        for i in range(2000):
            s.evaluate({"wn": float(rng.uniform(5e-6, 20e-6)), "rd": float(rng.uniform(5e3, 2e4))})
            if i == 99:
                base = _rss()
        growth = _rss() - base
    assert growth < 20e6, f"RSS grew {growth / 1e6:.1f} MB over 1900 evaluations"


def test_fourier_names_rebased_in_the_control_block_only(monkeypatch):
    """The whole-deck path renames the block's ``fourier<k><i>`` to the process's call numbers (``seen + k``),
    nothing outside the block, and refuses a name whose call and vector cannot be told apart rather than read
    another call's vector."""
    from zoaf.errors import SimulationError
    from zoaf.ngprocess import FourierNames

    deck = ("t\nR1 fourier11 0 1k\n.control\nfourier 1k v(out)\nlet h = fourier11[1][1] + fourier12[1][2]\n"
            "print tran1.fourier21\n.endc\n.end\n")
    monkeypatch.setattr(FourierNames, "seen", 0)
    assert FourierNames.rebase(deck) == deck
    monkeypatch.setattr(FourierNames, "seen", 4)
    assert FourierNames.rebase(deck) == deck.replace("h = fourier11[1][1] + fourier12", "h = fourier51[1][1] + "
                                                     "fourier52").replace("tran1.fourier21", "tran1.fourier61")
    with pytest.raises(SimulationError, match="^fourier112: .*fresh process"):
        FourierNames.rebase(deck.replace("fourier12[", "fourier112["))

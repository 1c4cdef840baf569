"""The fast path (alter/altermod, no reset) gives bit-for-bit the results of the reset path, and steps aside
when it cannot: a model-bin crossing, a .param that reaches an analysis, analyses that leave state."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from ngspice_marks import needs_ngspice

from zoaf import fastpath
from zoaf.ngnumbers import device_value
from zoaf.netlist import Netlist
from zoaf.ngcommands import MAX_COMMAND
from zoaf.spexpr import Unsupported, evaluate

ROOT = Path(__file__).resolve().parents[1]
AMP = ROOT / "netlists" / "sky130" / "two_stage_amp.cir"


# ---------------------------------------------------------------------- no ngspice
def test_expressions_as_numparam() -> None:
    assert evaluate("{max(1, min(nint(nf1), floor(w1/wfmin + 1e-6)))}", {"nf1": 2.6, "w1": 10, "wfmin": 0.5}) == 3
    assert evaluate("{2*as + 1u}", {"as": 1.0}) == 2 + 1e-6            # a Python keyword as a name, a suffix
    assert evaluate("'41.6503*1.024'", {}) == 41.6503 * 1.024
    assert evaluate("{1 + 0*agauss(0, 1, 1)}", {}) == 1                # switched off: a constant
    with pytest.raises(Unsupported):
        evaluate("{1 + agauss(0, 1, 1)}", {})
    assert evaluate("{a > 1 ? 2 : 3}", {"a": 1.0}) == 3                 # numparam's ternary (docs/ngspice.md)
    with pytest.raises(Unsupported):
        evaluate("{a > 1 ? 2 : 1/0}", {"a": 2.0})                      # a branch that fails: left to reset


def test_alters_are_sent_in_lines_that_ngspice_reads_whole() -> None:
    """ngspice 39 reads a command line into a 1024-byte buffer, its end included (``MAX_COMMAND``, 1,023 characters;
    docs/ngspice.md): every line of a sizing's ``alter``s stays within it, each command once, in order."""
    commands = [f"alter @r.x{i}.rload[resistance]=1.234567890123456e+0{i % 10}" for i in range(200)]
    sent: list[str] = []
    assert fastpath._send_lines(lambda line: sent.append(line) or [line], commands) == sent
    assert len(sent) > 1 and max(map(len, sent)) <= fastpath._LINE <= MAX_COMMAND
    assert [c for line in sent for c in line.split(" ; ")] == commands


@pytest.mark.parametrize("v", [0.0073677338136156085, -2.44426032e-12, 1e300, 1e-30, 3.0, 0.1, 0.0])
def test_device_values_are_16_digits_read_back_within_an_ulp(v: float) -> None:
    """What ngspice's reader makes of numparam's ``%.15e`` text: not always the nearest double, never further than
    an ulp; the spelling carries those 16 digits (read back exactly by ngspice: tests/test_fastpath_params.py)."""
    value, text = device_value(v)
    assert float(text) == float(f"{v:.15e}")
    assert abs(value - float(text)) <= math.ulp(value)


def _plan(tmp_path: Path, body: str):
    path = tmp_path / "deck.cir"
    path.write_text("* deck\n" + body + "\n.end\n")
    nl = Netlist.read(path)
    return fastpath.plan(nl.session_deck(), nl.path.parent, nl.params, nl.analyses + nl.control)


def test_what_alter_cannot_follow_is_left_to_reset(tmp_path: Path) -> None:
    base = ".param r1=1k r2=2k f0=1k\nv1 in 0 dc 0 ac 1\nr1 in out {r1}\nr2 out 0 {r2}\nc1 out 0 1n\n"
    plan = _plan(tmp_path, base + ".ac dec 10 {f0} 1meg\n.meas ac g find vdb(out) at=1k\n")
    assert plan is not None and plan.fast == {"r1", "r2"}             # f0 reaches an analysis card
    assert _plan(tmp_path, base + ".ac dec 10 1 1meg\n.meas ac g find vdb(out) at=1k\n"
                           ".meas ac h param='g*2'\n") is None       # numparam keeps a .meas param= value
    assert _plan(tmp_path, base + ".tran 1u 1m\n.meas tran v find v(out) at=1m\n") is None


def test_compiled_values_are_spexprs_in_numparams_scopes(tmp_path: Path) -> None:
    """The plan's compiled values: a derived .param, a parametrized instance's header value and body .param,
    a switched-off random function, a two-argument max, read as :func:`evaluate` reads them in each scope."""
    body = (".param r1=1k c1=1n k=2\n.param rr={r1*k}\n"
            ".subckt rc a b params: rv=1 cv=1\n.param half={rv/2}\nr1 a m {half}\n"
            "r2 m b {half+0*agauss(0,1,1)}\nc1 b 0 {cv*k}\n.ends\n"
            "v1 in 0 dc 0 ac 1\nx1 in out rc rv={rr} cv={c1}\nr3 out 0 {max(r1,2k)}\n.ac dec 10 1 1meg\n")
    plan = _plan(tmp_path, body)
    assert plan is not None and plan.fast == {"r1", "c1", "k", "rr"}
    sizing = {"r1": "1500.0", "c1": "2.2e-09", "k": "3.0", "rr": "{r1*k}"}
    values = {k: v for k, (v, _) in plan.program.state(sizing, {}).values.items()}
    half = evaluate("{rv/2}", {"rv": evaluate("{r1*k}", {"r1": 1500.0, "k": 3.0})})
    assert values == {("alter", "r.x1.r1", "resistance"): device_value(half)[0],
                      ("alter", "r.x1.r2", "resistance"): device_value(half)[0],
                      ("alter", "c.x1.c1", "capacitance"): device_value(2.2e-9 * 3.0)[0],
                      ("alter", "r3", "resistance"): device_value(2000.0)[0]}
    drawn = _plan(tmp_path, body.replace("0*agauss", "agauss"))
    with pytest.raises(Unsupported):                                   # a value a random function changes
        drawn.program.state(sizing, {})


# ---------------------------------------------------------------------- sky130: against the reset path


def _walk(problem, n: int, seed: int) -> list[dict[str, float]]:
    """Small steps around a random centre, as an optimizer's probes are (few model-bin crossings)."""
    rng = np.random.default_rng(seed)
    u0 = rng.uniform(0.3, 0.7, problem.dim)
    return [problem.as_dict(problem.to_physical(np.clip(u0 + 0.003 * rng.standard_normal(problem.dim), 0, 1)))
            for _ in range(n)]


def _run(netlist, sizings, fast: bool) -> tuple[list[dict[str, float]], int]:
    """Each sizing's results, and how many sizings took the fast path."""
    from zoaf.spice import SpiceSession

    used = 0
    with SpiceSession(netlist, fast=fast) as s:
        if fast:
            resize = s._fast.resize

            def counted(send, params) -> bool:
                nonlocal used
                ok = resize(send, params)
                used += ok
                return ok

            s._fast.resize = counted
        return [s.evaluate(values) for values in sizings], used


@needs_ngspice
def test_sky130_fast_path_equals_reset_bit_for_bit() -> None:
    pytest.importorskip("PySpice")
    from zoaf.circuit import CircuitProblem

    problem = CircuitProblem.from_netlist(AMP, objective="gain")
    sizings = _walk(problem, 6, seed=5)
    # a bin crossing: M1's finger width w1/nf1 from 4.95 um to 5.05 um crosses the 5 um edge of nfet_01v8
    cross = dict(sizings[-1], w1=9.9, nf1=2)
    sizings += [cross, dict(cross, w1=10.1)]
    fast, used = _run(problem.netlist, sizings, fast=True)
    slow, _ = _run(problem.netlist, sizings, fast=False)
    assert fast == slow                                                # every bit of every measure
    assert used >= 4                                                   # the walk took the fast path


@needs_ngspice
def test_sky130_bins_are_ngspices() -> None:
    """The bin the plan expects for each device is the one ngspice chose when it parsed the deck."""
    pytest.importorskip("PySpice")
    from zoaf.circuit import CircuitProblem
    from zoaf.spice import SpiceSession

    problem = CircuitProblem.from_netlist(AMP, objective="gain")
    values = _walk(problem, 1, seed=7)[0]
    with SpiceSession(problem.netlist) as s:
        s.evaluate(values)
        plan = s._fast
        state = plan._state({**problem.netlist.params, **problem.netlist.check_params(values)})
        for leaf in plan.program.leaves:
            if not leaf.bins:
                continue
            shown = {ln.split()[0]: float(ln.split()[1]) for ln in
                     s._ng.command(f"showmod {leaf.path} : lmin lmax wmin wmax")[2:] if len(ln.split()) == 2}
            b = next(b for b in leaf.bins if b.name == state.bins[leaf.path])
            assert [shown[k] for k in ("lmin", "lmax", "wmin", "wmax")] == \
                pytest.approx([b.lmin, b.lmax, b.wmin, b.wmax], rel=1e-5), leaf.path

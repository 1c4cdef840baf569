"""Square spiral inductor model (zoaf.layout.spiral) and its ngspice twin in netlists/lna.cir."""
from __future__ import annotations

import math
import re
import subprocess
from pathlib import Path

import pytest
from ngspice_marks import needs_ngspice
from hypothesis import given, settings
from hypothesis import strategies as st

from zoaf.layout.spiral import (DEFAULT_PROCESS, PiModel, SpiralGeometry, SpiralGeometryError, SpiralProcess,
                                inductance_current_sheet, inductance_wheeler, param_subckt, pi_model,
                                series_resistance, skin_depth, subckt)

REPO = Path(__file__).resolve().parents[1]
LNA = REPO / "netlists" / "lna.cir"

um = 1e-6


def test_hand_calculated_geometry():
    # n = 3, w = 10 um, s = 2 um, d_out = 200 um, default process, f = 2.4 GHz; every number by hand.
    g = SpiralGeometry(n=3, w=10 * um, s=2 * um, d_out=200 * um)
    mu0, eps0 = 4e-7 * math.pi, 8.8541878128e-12
    d_in = 200e-6 - 2 * 3 * 10e-6 - 2 * 2 * 2e-6            # 132 um
    d_avg = (200e-6 + d_in) / 2                               # 166 um
    rho = (200e-6 - d_in) / (200e-6 + d_in)                   # 68/332
    length = 4 * 3 * d_avg                                    # 1.992 mm
    assert g.d_in == pytest.approx(132e-6, rel=1e-12)
    assert g.fill_ratio == pytest.approx(68 / 332, rel=1e-12)
    assert g.length == pytest.approx(1.992e-3, rel=1e-12)
    assert g.area == pytest.approx(4e-8, rel=1e-12)

    l_wheeler = 2.34 * mu0 * 9 * d_avg / (1 + 2.75 * rho)
    l_sheet = mu0 * 9 * d_avg * 1.27 / 2 * (math.log(2.07 / rho) + 0.18 * rho + 0.13 * rho ** 2)
    delta = math.sqrt(2.2e-8 / (math.pi * 2.4e9 * mu0))
    r_ac = 2.2e-8 * length / (10e-6 * delta * (1 - math.exp(-3e-6 / delta)))
    m = pi_model(g, 2.4e9)
    assert inductance_wheeler(g) == pytest.approx(l_wheeler, rel=1e-9)
    assert inductance_current_sheet(g) == pytest.approx(l_sheet, rel=1e-9)
    assert skin_depth(2.4e9) == pytest.approx(delta, rel=1e-9)
    for name, expected in {"ls": l_wheeler, "rs": r_ac, "cs": 3 * (10e-6) ** 2 * 3.9 * eps0 / 1e-6,
                           "cox": 3.9 * eps0 * length * 10e-6 / (2 * 5e-6), "csi": 1e-6 * length * 10e-6 / 2,
                           "rsi": 2 / (1e5 * length * 10e-6)}.items():
        assert getattr(m, name) == pytest.approx(expected, rel=1e-9), name
    # rounded magnitudes, as a sanity check of the hand formulas themselves
    assert (round(m.ls * 1e9, 2), round(m.rs, 2), round(m.cox * 1e15, 1)) == (2.81, 3.34, 68.8)
    assert pi_model(g, 2.4e9, formula="current-sheet").ls == pytest.approx(l_sheet, rel=1e-9)


def test_inductance_scales_with_turns_squared_at_fixed_mean_diameter_and_fill():
    # rho = (n*w + (n-1)*s)/d_avg: keep n*w and (n-1)*s fixed while n changes.
    d_avg, nw, ns = 150 * um, 40 * um, 6 * um
    ref = None
    for n in (2, 3, 4, 5, 7):
        w, s = nw / n, ns / (n - 1)
        g = SpiralGeometry(n=n, w=w, s=s, d_out=d_avg + nw + ns)
        assert g.d_avg == pytest.approx(d_avg, rel=1e-12)
        ref = ref or (inductance_wheeler(g) / n ** 2, inductance_current_sheet(g) / n ** 2)
        assert inductance_wheeler(g) / n ** 2 == pytest.approx(ref[0], rel=1e-12)
        assert inductance_current_sheet(g) / n ** 2 == pytest.approx(ref[1], rel=1e-12)


@pytest.mark.parametrize("n", [2, 3, 4, 6])
@pytest.mark.parametrize("w_um", [5, 10, 20])
@pytest.mark.parametrize("d_in_um", [60, 120, 200])
def test_wheeler_and_current_sheet_agree_for_typical_geometry(n, w_um, d_in_um):
    # Mohan et al.: both within a few % of field solvers for typical fill ratios; the current-sheet
    # expression diverges (ln(c2/rho)) for nearly hollow spirals, rho -> 0.
    g = SpiralGeometry.from_inner_diameter(n=n, w=w_um * um, s=2 * um, d_in=d_in_um * um)
    assert inductance_current_sheet(g) == pytest.approx(inductance_wheeler(g), rel=0.10 if g.fill_ratio > 0.08 else 0.2)
    if g.fill_ratio >= 0.15:
        assert inductance_current_sheet(g) == pytest.approx(inductance_wheeler(g), rel=0.03)


def test_skin_effect_limits():
    g = SpiralGeometry(n=3, w=10 * um, s=2 * um, d_out=200 * um)
    r_dc = DEFAULT_PROCESS.rho_metal * g.length / (g.w * DEFAULT_PROCESS.t_metal)
    assert DEFAULT_PROCESS.sheet_resistance * g.length / g.w == pytest.approx(r_dc, rel=1e-12)
    assert series_resistance(g, 0.0) == pytest.approx(r_dc, rel=1e-12)
    assert series_resistance(g, 1.0) == pytest.approx(r_dc, rel=1e-4)     # delta = 75 mm >> t = 3 um
    freqs = [10.0 ** k for k in range(3, 12)]
    rs = [series_resistance(g, f) for f in freqs]
    assert all(a < b for a, b in zip(rs, rs[1:]))                        # grows with frequency
    # t/delta = 6.4 at 25 GHz: R ~ 1/delta ~ sqrt(f)
    assert series_resistance(g, 100e9) / series_resistance(g, 25e9) == pytest.approx(2.0, rel=5e-3)
    with pytest.raises(ValueError, match="frequency"):
        series_resistance(g, -1.0)


def test_spiral_that_does_not_fit_raises_a_clear_error():
    with pytest.raises(SpiralGeometryError, match=r"n=6, w=2e-05 m, s=3e-06 m, d_out=0.0002 m\) does not fit"):
        SpiralGeometry(n=6, w=20 * um, s=3 * um, d_out=200 * um)     # d_in = -70 um
    with pytest.raises(ValueError, match="d_in .* <= 0"):
        SpiralGeometry(n=1, w=100 * um, s=2 * um, d_out=200 * um)   # d_in = 0 exactly
    for bad in ({"n": 0.5}, {"w": 0.0}, {"s": -1e-6}, {"d_out": math.nan}):
        with pytest.raises(SpiralGeometryError):
            SpiralGeometry(**{"n": 2, "w": 10 * um, "s": 2 * um, "d_out": 200 * um, **bad})
    with pytest.raises(ValueError, match="gsub_per_area"):
        SpiralProcess(gsub_per_area=0.0)
    with pytest.raises(ValueError, match="formula"):
        pi_model(SpiralGeometry(2, 10 * um, 2 * um, 200 * um), 1e9, formula="grover")


@settings(max_examples=200, deadline=None)
@given(n=st.integers(1, 10), w=st.floats(1, 40), s=st.floats(0.5, 10), d_in=st.floats(10, 400))
def test_any_inner_diameter_gives_a_valid_positive_model(n, w, s, d_in):
    g = SpiralGeometry.from_inner_diameter(n=n, w=w * um, s=s * um, d_in=d_in * um)
    assert g.d_in == pytest.approx(d_in * um, rel=1e-9)
    assert 0 < g.fill_ratio < 1
    m = pi_model(g, 2.4e9)
    assert all(v > 0 and math.isfinite(v) for v in vars(m).values())


# ---- the ngspice twin: the same formulas as .param expressions ----------------------------------------

GEOMETRIES = [SpiralGeometry(3, 10 * um, 2 * um, 200 * um), SpiralGeometry(4, 8 * um, 2.5 * um, 250 * um),
              SpiralGeometry.from_inner_diameter(1, 25 * um, 3 * um, 80 * um),
              SpiralGeometry.from_inner_diameter(7, 6 * um, 1.5 * um, 150 * um)]
FREQS = (1e6, 1.2e9, 2.4e9)


def _impedance(m: PiModel, f: float) -> complex:
    """Input impedance at p1 with p2 and the substrate terminal grounded (port 2's shunt is shorted)."""
    w = 2 * math.pi * f
    z_series = m.rs + 1j * w * m.ls
    z_shunt = 1 / (1j * w * m.cox) + 1 / (1 / m.rsi + 1j * w * m.csi)
    return 1 / (1 / z_series + 1j * w * m.cs + 1 / z_shunt)


def _simulate(subckt_text: str, instances: list[str], tmp_path: Path) -> list[tuple[float, list[complex]]]:
    """For each instance line 'X1 p1 0 0 ...': DC resistance (op, 1 A) and the AC impedance at FREQS."""
    blocks = []
    for k, inst in enumerate(instances):
        blocks.append(f"{inst.replace('X1 p1', f'X{k} p{k}')}\nI{k} 0 p{k} dc 1 ac 1\n")
    prints = " ".join(f"v(p{k})" for k in range(len(instances)))
    deck = (f"* spiral check\n{subckt_text}{''.join(blocks)}.control\nset numdgt=15\nop\nprint {prints}\n"
            f"ac lin 1 {FREQS[0]} {FREQS[0]}\nprint {prints}\nac lin 1 {FREQS[1]} {FREQS[1]}\nprint {prints}\n"
            f"ac lin 1 {FREQS[2]} {FREQS[2]}\nprint {prints}\n.endc\n.end\n")
    (tmp_path / "spiral.cir").write_text(deck)
    out = subprocess.run(["ngspice", "-b", "spiral.cir"], cwd=tmp_path, capture_output=True, text=True,
                         timeout=60).stdout
    values = {}
    for name, re_part, im_part in re.findall(r"^v\((p\d+)\) = ([^,\s]+)(?:,(\S+))?$", out, re.M):
        values.setdefault(name, []).append(complex(float(re_part), float(im_part or 0)))
    assert len(values) == len(instances), out
    return [(vals[0].real, vals[1:]) for _, vals in sorted(values.items(), key=lambda kv: int(kv[0][1:]))]


def _check(subckt_text: str, tmp_path: Path) -> None:
    instances = [f"X1 p1 0 0 spiral n={g.n} w={g.w!r} s={g.s!r} dout={g.d_out!r} f=2.4g" for g in GEOMETRIES]
    for g, (r_dc, zs) in zip(GEOMETRIES, _simulate(subckt_text, instances, tmp_path)):
        m = pi_model(g, 2.4e9)
        assert r_dc == pytest.approx(m.rs, rel=1e-9)          # R is taken at f = 2.4 GHz, a fixed element
        assert len(zs) == len(FREQS)
        for f, z in zip(FREQS, zs):
            assert z == pytest.approx(_impedance(m, f), rel=1e-9), (g, f)
        # low frequency: Z ~ Rs + j*w*(L + Rs^2*C_shunt), the second term < 1e-3 of the first here
        assert zs[0].imag / (2 * math.pi * FREQS[0]) == pytest.approx(m.ls, rel=2e-3)


@needs_ngspice
def test_param_subckt_in_ngspice_matches_python(tmp_path):
    _check(param_subckt(), tmp_path)


@needs_ngspice
def test_fixed_value_subckt_in_ngspice_matches_python(tmp_path):
    g = GEOMETRIES[1]
    (r_dc, zs), = _simulate(subckt(pi_model(g, 2.4e9)), ["X1 p1 0 0 spiral"], tmp_path)
    assert r_dc == pytest.approx(pi_model(g, 2.4e9).rs, rel=1e-9)
    assert zs[2] == pytest.approx(_impedance(pi_model(g, 2.4e9), 2.4e9), rel=1e-9)


@needs_ngspice
def test_lna_netlist_spiral_matches_python(tmp_path):
    text = LNA.read_text()
    found = re.search(r"^\.subckt spiral .*?^\.ends spiral\s*$", text, re.M | re.S | re.I)
    assert found, f"{LNA} has no '.subckt spiral ... .ends spiral' block"
    _check(found.group(0) + "\n", tmp_path)

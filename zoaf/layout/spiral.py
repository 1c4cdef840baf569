"""Square on-chip spiral inductor: geometry -> inductance, loss and the Yue & Wong pi model.

Use it to size RF circuits by layout geometry instead of by ideal L values: the optimizer then pays for a
larger inductance in area, series resistance (Q) and substrate capacitance, as a designer does.

Formulas (all SI units: metres, henries, ohms, farads, siemens, hertz):

- inner diameter ``d_in = d_out - 2*n*w - 2*(n-1)*s``; the spiral must fit (``d_in > 0``);
- inductance, modified Wheeler expression (Mohan et al., JSSC 1999, square: K1 = 2.34, K2 = 2.75)
  ``L = K1*mu0*n^2*d_avg/(1 + K2*rho)``, with ``d_avg = (d_out+d_in)/2`` and fill ratio
  ``rho = (d_out-d_in)/(d_out+d_in)``; the current-sheet expression of the same paper as an alternative;
- trace length ``l = 4*n*d_avg`` (each turn taken as a square of side ``d_avg``: exact for the mean
  perimeter, it ignores the last half-turn/underpass lead);
- series resistance with skin effect ``R = rho_m*l/(w*delta*(1 - exp(-t/delta)))``,
  ``delta = sqrt(rho_m/(pi*f*mu0))``: the DC value ``rho_m*l/(w*t)`` at low f, growing as sqrt(f) at high f;
- Yue & Wong (1998) pi model: ``Cs = n*w^2*eps_ox/t_ox_under`` (turns over the underpass),
  ``Cox = eps_ox*l*w/(2*t_ox)``, ``Csi = Csub*l*w/2``, ``Rsi = 2/(Gsub*l*w)`` at each port.

The same formulas exist as ngspice ``.param`` expressions (:func:`param_subckt`, used verbatim in
``netlists/lna.cir``) so that a netlist reproduces its results with only geometry ``.param`` values changed.

Example:
    >>> g = SpiralGeometry(n=3, w=10e-6, s=2e-6, d_out=200e-6)
    >>> m = pi_model(g, f=2.4e9)
    >>> round(m.ls * 1e9, 3), round(m.rs, 3)   # nH, ohm
    (2.81, 3.343)
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import InputError

MU0 = 4e-7 * math.pi
"""Vacuum permeability (H/m), the classic exact value (CODATA 2018 differs by 5e-10 relative)."""
EPS0 = 8.8541878128e-12
"""Vacuum permittivity (F/m), CODATA 2018."""

# Mohan et al. 1999, Table I (modified Wheeler) and Table II (current sheet), square spiral.
WHEELER_K1, WHEELER_K2 = 2.34, 2.75
SHEET_C1, SHEET_C2, SHEET_C3, SHEET_C4 = 1.27, 2.07, 0.18, 0.13


class SpiralGeometryError(InputError):
    """A spiral geometry that cannot exist (does not fit, non-positive width, fewer than one turn...)."""


@dataclass(frozen=True)
class SpiralProcess:
    """Process constants of a generic RF back-end (thick top metal over a lightly doped substrate).

    Defaults are representative textbook values, not any foundry's:

    Attributes:
        rho_metal: top-metal resistivity, 2.2e-8 ohm*m (electroplated Cu, ~30% above bulk copper).
        t_metal: top-metal thickness, 3 um (an RF "thick top metal"; sheet resistance 7.3 mohm/sq).
        eps_r_ox: relative permittivity of the inter-metal oxide, 3.9 (SiO2).
        t_ox: oxide thickness from the spiral to the substrate, 5 um.
        t_ox_under: oxide thickness between the spiral and its underpass, 1 um.
        csub_per_area: substrate capacitance per area, 1e-6 F/m^2 (= 1e-3 fF/um^2: eps_Si over ~100 um).
        gsub_per_area: substrate conductance per area, 1e5 S/m^2 (= 1e-7 S/um^2: 10 ohm*cm over ~100 um).
    """

    rho_metal: float = 2.2e-8
    t_metal: float = 3e-6
    eps_r_ox: float = 3.9
    t_ox: float = 5e-6
    t_ox_under: float = 1e-6
    csub_per_area: float = 1e-6
    gsub_per_area: float = 1e5

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if not (math.isfinite(value) and value > 0):
                raise InputError(f"spiral process constant {name} must be a positive number, got {value!r}")

    @property
    def eps_ox(self) -> float:
        """Absolute oxide permittivity (F/m)."""
        return self.eps_r_ox * EPS0

    @property
    def sheet_resistance(self) -> float:
        """Top-metal DC sheet resistance (ohm/square)."""
        return self.rho_metal / self.t_metal


DEFAULT_PROCESS = SpiralProcess()


@dataclass(frozen=True)
class SpiralGeometry:
    """Square spiral: ``n`` turns (>= 1, fractional allowed), trace width ``w``, spacing ``s``, outer diameter.

    Raises ``SpiralGeometryError`` (a ``ValueError``) when the values are not a spiral that fits.
    """

    n: float
    w: float
    s: float
    d_out: float

    def __post_init__(self) -> None:
        values = {"n": self.n, "w": self.w, "s": self.s, "d_out": self.d_out}
        bad = [k for k, v in values.items() if not math.isfinite(v)]
        if bad:
            raise SpiralGeometryError(f"spiral {self._describe()}: {', '.join(bad)} must be finite")
        if self.n < 1:
            raise SpiralGeometryError(f"spiral {self._describe()}: needs at least one turn (n >= 1)")
        if self.w <= 0 or self.s <= 0 or self.d_out <= 0:
            raise SpiralGeometryError(f"spiral {self._describe()}: w, s and d_out must be > 0")
        if self.d_in <= 0:
            raise SpiralGeometryError(
                f"spiral {self._describe()} does not fit: d_in = d_out - 2*n*w - 2*(n-1)*s = {self.d_in:.4g} m "
                f"<= 0; use fewer turns, a narrower trace or a larger outer diameter "
                f"(d_out > {self.d_out - self.d_in:.4g} m)")

    @classmethod
    def from_inner_diameter(cls, n: float, w: float, s: float, d_in: float) -> SpiralGeometry:
        """The spiral with this hollow inner diameter: ``d_out = d_in + 2*n*w + 2*(n-1)*s`` (always fits)."""
        return cls(n=n, w=w, s=s, d_out=d_in + 2 * n * w + 2 * (n - 1) * s)

    def _describe(self) -> str:
        return f"(n={self.n:g}, w={self.w:.4g} m, s={self.s:.4g} m, d_out={self.d_out:.4g} m)"

    @property
    def d_in(self) -> float:
        """Inner diameter (m)."""
        return self.d_out - 2 * self.n * self.w - 2 * (self.n - 1) * self.s

    @property
    def d_avg(self) -> float:
        """Average diameter ``(d_out + d_in)/2`` (m)."""
        return (self.d_out + self.d_in) / 2

    @property
    def fill_ratio(self) -> float:
        """Fill ratio ``rho = (d_out - d_in)/(d_out + d_in)``, in (0, 1)."""
        return (self.d_out - self.d_in) / (self.d_out + self.d_in)

    @property
    def length(self) -> float:
        """Trace length ``4*n*d_avg`` (m): n square turns of side d_avg; leads and the underpass ignored."""
        return 4 * self.n * self.d_avg

    @property
    def area(self) -> float:
        """Silicon area ``d_out^2`` (m^2)."""
        return self.d_out ** 2


def inductance_wheeler(g: SpiralGeometry) -> float:
    """Modified Wheeler inductance (H), Mohan et al. 1999: about 2-3% error against field solvers."""
    return WHEELER_K1 * MU0 * g.n ** 2 * g.d_avg / (1 + WHEELER_K2 * g.fill_ratio)


def inductance_current_sheet(g: SpiralGeometry) -> float:
    """Current-sheet inductance (H), Mohan et al. 1999: ``mu0*n^2*d_avg*c1/2*(ln(c2/rho)+c3*rho+c4*rho^2)``."""
    rho = g.fill_ratio
    return (MU0 * g.n ** 2 * g.d_avg * SHEET_C1 / 2
            * (math.log(SHEET_C2 / rho) + SHEET_C3 * rho + SHEET_C4 * rho ** 2))


def skin_depth(f: float, rho_metal: float = DEFAULT_PROCESS.rho_metal) -> float:
    """Skin depth ``sqrt(rho_m/(pi*f*mu0))`` (m); infinite at f = 0."""
    if not f >= 0:
        raise InputError(f"frequency must be >= 0 Hz, got {f!r}")
    return math.inf if f == 0 else math.sqrt(rho_metal / (math.pi * f * MU0))


def series_resistance(g: SpiralGeometry, f: float, process: SpiralProcess = DEFAULT_PROCESS) -> float:
    """Series resistance (ohm) at frequency ``f`` with the skin effect, ``rho_m*l/(w*delta*(1-exp(-t/delta)))``."""
    delta = skin_depth(f, process.rho_metal)
    # delta*(1 - exp(-t/delta)) is the effective thickness; it tends to t as delta -> inf (DC).
    t_eff = process.t_metal if math.isinf(delta) else -delta * math.expm1(-process.t_metal / delta)
    return process.rho_metal * g.length / (g.w * t_eff)


@dataclass(frozen=True)
class PiModel:
    """Element values of the Yue & Wong pi model (SI units).

    Series branch p1-p2: ``ls`` in series with ``rs``, shunted by ``cs``. At each port: ``cox`` to an inner node
    that goes to the substrate terminal through ``rsi`` in parallel with ``csi``.
    """

    ls: float
    rs: float
    cs: float
    cox: float
    csi: float
    rsi: float


def pi_model(g: SpiralGeometry, f: float, process: SpiralProcess = DEFAULT_PROCESS,
             formula: str = "wheeler") -> PiModel:
    """The pi-model element values of ``g`` with the series resistance taken at frequency ``f``.

    Args:
        g: the spiral geometry.
        f: frequency (Hz) at which the skin-effect resistance is evaluated (the model's R is then fixed).
        process: process constants.
        formula: ``"wheeler"`` (default) or ``"current-sheet"`` for the inductance.
    """
    inductance = {"wheeler": inductance_wheeler, "current-sheet": inductance_current_sheet}.get(formula)
    if inductance is None:
        raise InputError(f"formula must be 'wheeler' or 'current-sheet', got {formula!r}")
    lw = g.length * g.w
    return PiModel(
        ls=inductance(g),
        rs=series_resistance(g, f, process),
        cs=g.n * g.w ** 2 * process.eps_ox / process.t_ox_under,
        cox=process.eps_ox * lw / (2 * process.t_ox),
        csi=process.csub_per_area * lw / 2,
        rsi=2 / (process.gsub_per_area * lw),
    )


def _topology(ls: str, rs: str, cs: str, cox: str, csi: str, rsi: str) -> str:
    return (f"L1 p1 mid {ls}\nR1 mid p2 {rs}\nC1 p1 p2 {cs}\n"
            f"Cox1 p1 sub1 {cox}\nCsi1 sub1 gnd {csi}\nRsi1 sub1 gnd {rsi}\n"
            f"Cox2 p2 sub2 {cox}\nCsi2 sub2 gnd {csi}\nRsi2 sub2 gnd {rsi}\n")


def subckt(m: PiModel, name: str = "spiral") -> str:
    """An ngspice ``.subckt <name> p1 p2 gnd`` with the fixed element values of ``m`` (written exactly: shortest
    round-trip)."""
    v = {k: repr(float(getattr(m, k))) for k in ("ls", "rs", "cs", "cox", "csi", "rsi")}
    return f".subckt {name} p1 p2 gnd\n{_topology(**v)}.ends {name}\n"


def param_subckt(process: SpiralProcess = DEFAULT_PROCESS, name: str = "spiral") -> str:
    """The parametric ``.subckt <name> p1 p2 gnd params: n w s dout f ...``: the formulas above in numparam.

    ngspice computes the element values itself, so ``alterparam`` + ``reset`` on the geometry re-evaluates
    them. Instantiate as ``X1 a b 0 spiral n={..} w={..} s={..} dout={..} f=2.4g``. ngspice 39's numparam
    has no ``pi``: the constants are written out. A geometry that does not fit gives nonsense values there
    (no error), so netlists should pass ``dout`` computed from an inner diameter.
    """
    p = process
    mu0, pi, eps0 = repr(MU0), repr(math.pi), repr(EPS0)
    return (
        f".subckt {name} p1 p2 gnd params: n=3 w=10u s=2u dout=200u f=2.4g "
        f"rhom={p.rho_metal!r} tm={p.t_metal!r} epsrox={p.eps_r_ox!r} tox={p.t_ox!r} "
        f"tunder={p.t_ox_under!r} csub={p.csub_per_area!r} gsub={p.gsub_per_area!r}\n"
        f"* d_in, d_avg, fill ratio, trace length 4*n*d_avg (m); modified Wheeler L (Mohan 1999, square)\n"
        f".param sp_din = {{dout - 2*n*w - 2*(n-1)*s}}\n"
        f".param sp_davg = {{(dout + sp_din)/2}}\n"
        f".param sp_fill = {{(dout - sp_din)/(dout + sp_din)}}\n"
        f".param sp_len = {{4*n*sp_davg}}\n"
        f".param sp_ls = {{{WHEELER_K1}*{mu0}*n*n*sp_davg/(1 + {WHEELER_K2}*sp_fill)}}\n"
        f"* skin depth and series resistance at f; Yue & Wong pi-model capacitances and substrate loss\n"
        f".param sp_delta = {{sqrt(rhom/({pi}*f*{mu0}))}}\n"
        f".param sp_rs = {{rhom*sp_len/(w*sp_delta*(1 - exp(-tm/sp_delta)))}}\n"
        f".param sp_cs = {{n*w*w*epsrox*{eps0}/tunder}}\n"
        f".param sp_cox = {{epsrox*{eps0}*sp_len*w/(2*tox)}}\n"
        f".param sp_csi = {{csub*sp_len*w/2}}\n"
        f".param sp_rsi = {{2/(gsub*sp_len*w)}}\n"
        + _topology("{sp_ls}", "{sp_rs}", "{sp_cs}", "{sp_cox}", "{sp_csi}", "{sp_rsi}")
        + f".ends {name}\n"
    )

"""PVT corners: the spec's ``[corners]`` table and the worst case over corners (pure: no simulation here).

Spec syntax (``<stem>.toml``)::

    [corners]
    process = ["tt", "ff", "ss"]        # cross product of the lists ...
    temp    = [-40, 27, 125]            # degrees C
    vsup    = ["1.62", "1.8", "1.98"]   # any other key: a .param of the netlist, overridden per corner
    process_lib = "models/generic_corners.lib"   # no pdk: the .lib file whose sections are the processes
    [corners.slow_hot]                  # ... and/or named corners
    process = "ss"
    temp = 125
    vsup = "1.62"
    [objectives]
    ugbw = { maximize = "ugbw_hz", constraints = ["pm_deg >= 60"], corners = "all" }   # or ["slow_hot", ...]

A process is a ``.lib`` section: with ``pdk`` the netlist's ``{{corner}}`` placeholder; without, a section of
``process_lib`` holding ``.param`` lines (the model cards' shifts), applied as parameter overrides.
"""
from __future__ import annotations

import itertools
import math
from collections import Counter
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping, Sequence

from .. import units
from ..errors import InputError
from ..infile import read_bounded
from ..problem import INFEASIBLE_OFFSET, MISSING_VIOLATION, Outcome, Score, Status

#: The most corners a ``[corners]`` cross product makes: each is simulated at every sizing (a PVT table has tens), and
#: lists of 1,000 temperatures and 1,000 supplies read for hours (a million corners) before anything ran.
MAX_CORNERS = 10_000
#: Keys of a corner that are not ``.param`` overrides.
_RESERVED = ("process", "temp")
_PARAM_LINE = re.compile(r"^\s*\.param\s+(.*)$", re.I)
_ASSIGN = re.compile(r"([A-Za-z_]\w*)\s*=\s*(\S+)")
_SECTION = re.compile(r"^\s*\.lib\s+([A-Za-z0-9_]+)\s*$", re.I)
_ENDL = re.compile(r"^\s*\.endl\b", re.I)
#: A temperature as a designer writes it: a number, optionally in C (``27``, ``-40.5``, ``1e2``, ``27C``, ``27degC``).
_CELSIUS = re.compile(r"\s*[-+]?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?(c|degc)?\s*", re.I)


@dataclass(frozen=True)
class Corner:
    """One PVT condition: a process section (None: the nominal deck), a temperature (None: the deck's own) and
    ``.param`` overrides (e.g. the supply)."""

    name: str
    process: str | None = None
    temp: float | None = None
    params: tuple[tuple[str, float], ...] = ()

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "process": self.process, "temp": self.temp, "params": dict(self.params)}

    @property
    def conditions(self) -> tuple[Any, ...]:
        """What is simulated, whatever the corner's name: two corners of equal conditions are one simulation."""
        return self.process, self.temp, tuple(sorted(self.params))

    def describe(self) -> str:
        """The conditions in words (``process=ss, temp=125, vsup=1.62``)."""
        return ", ".join([*([f"process={self.process}"] if self.process else []),
                          *([f"temp={self.temp:g}"] if self.temp is not None else []),
                          *(f"{n}={units.format(v)}" for n, v in sorted(self.params))])


@dataclass(frozen=True)
class CornerSet:
    """The spec's corners, in order, and where generic process sections come from."""

    corners: tuple[Corner, ...]
    process_lib: Path | None = None

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.corners)

    def select(self, wanted: str | Sequence[str], where: str) -> tuple[Corner, ...]:
        """The corners an objective or ``--corner`` names: ``"all"`` or a list of names (InputError naming
        ``where``, also for two names of the same conditions). ``"all"`` holds a named corner that repeats one of
        the cross product (the README's ``slow_hot``, named to be judged alone) once: both were simulated and
        counted, each sizing's condition twice."""
        if isinstance(wanted, str) and wanted.lower() == "all":      # a keyword of the spec: in any case
            first: dict[tuple[Any, ...], Corner] = {}
            for c in self.corners:
                first.setdefault(c.conditions, c)
            return tuple(first.values())
        by_name = {c.name: c for c in self.corners}
        if isinstance(wanted, str) or not isinstance(wanted, Sequence) or not wanted:
            raise InputError(f"{where}: must be \"all\" or a non-empty list of corner names")
        missing = [w for w in wanted if str(w).lower() not in by_name]
        if missing:
            # quoted where blank or spaced: "--corner ' hot'" read "unknown corner(s) hot; [corners] defines ..., hot"
            shown = (str(w) if re.fullmatch(rf"\S{{1,{units.MAX_ECHO}}}", str(w)) else units.echo(str(w))
                     for w in missing)
            raise InputError(f"{where}: unknown corner(s) {', '.join(shown)}; "
                             f"[corners] defines {_listed(list(by_name))}")
        lowered = [str(w).lower() for w in wanted]
        twice = next((w for i, w in enumerate(lowered) if w in lowered[:i]), None)
        if twice is not None:        # simulated and listed twice, counted twice in "all N corners"
            raise InputError(f"{where}: corner {units.clip(twice)} is named twice")
        chosen = tuple(by_name[w] for w in lowered)
        refuse_same_conditions(where, chosen)   # `--corner hot --corner 85c`: one condition, simulated twice
        return chosen

    def merged(self, corner: Corner) -> Corner:
        """The corner ``"all"`` keeps for ``corner``'s conditions (the first defined with them, or ``corner``): a
        named one repeating a corner of the cross product is simulated and recorded as that one, so that
        ``yield --corner hot`` and ``--corner 85c`` are one set of samples, not the same samples simulated twice."""
        return next((c for c in self.corners if c.conditions == corner.conditions), corner)

    def check_processes(self, where: str) -> dict[str, dict[str, float]]:
        """Without a PDK, every corner's process must be a section of ``process_lib``: checked when the spec is
        read, since a corner run, ``zoaf corners`` or ``yield --corner`` reads it only when it simulates it
        (a missing file was accepted by every command that did not). Returns each such corner's process values."""
        values = {}
        for c in self.corners:
            if c.process is None:
                continue
            key = f"{where}: corners.{units.clip(c.name)}"
            if self.process_lib is None:
                raise InputError(f"{key}: process {units.echo(c.process)} needs process_lib in [corners] (no pdk)")
            values[c.name] = process_params(self.process_lib, c.process, key)
        return values


def parse_corners(where: str, table: Any, base: Path | None) -> CornerSet:
    """Read a ``[corners]`` table: cross-product lists and ``[corners.NAME]`` tables (errors name the key)."""
    key = f"{where}: corners"
    if not isinstance(table, Mapping):
        raise InputError(f"{key}: must be a table ([corners])")
    # keys in any case, as SPICE names (the spec refuses two differing in case only): a named corner's TEMP was
    # refused as "'temp' is not a .param", its Process as "'ss' is not a SPICE number", PROCESS_LIB as a supply
    table = {k.lower(): v for k, v in table.items()}
    lib = table.get("process_lib")
    if lib is not None and (not isinstance(lib, str) or not lib.strip()):     # "": the spec's folder, "is a directory"
        raise InputError(f"{key}.process_lib: must be a path string, got {units.echo(lib)}")
    process_lib = None if lib is None else (base / lib if base is not None else Path(lib))
    axes = {k: v for k, v in table.items() if k != "process_lib" and not isinstance(v, Mapping)}
    named = [_named(f"{key}.{units.clip(k)}", k, {n.lower(): v for n, v in t.items()})
             for k, t in table.items() if isinstance(t, Mapping)]
    cross = _cross(key, axes)
    corners = cross + named
    dup = sorted(n for n, k in Counter(c.name for c in corners).items() if k > 1)
    if dup:
        raise InputError(f"{key}: corner name(s) defined twice: {_listed(dup)}")
    if not corners:
        raise InputError(f"{key}: defines no corner")
    refuse_same_conditions(key, cross)
    refuse_same_conditions(key, named)
    return CornerSet(tuple(corners), process_lib)


def refuse_same_conditions(key: str, corners: Sequence[Corner]) -> None:
    """InputError for two of ``corners`` of the same conditions (``rl = ["0", "0.0"]``): each was simulated, and
    counted in "all N corners", twice, without a word. Refused rather than merged: a repeat within a list is a
    typo, and which of two names to keep is the designer's call. (A named corner that repeats one of the cross
    product names it to be judged alone, as the README shows: :meth:`CornerSet.select` merges those in "all", and
    refuses a list naming both, an objective's or ``--corner``'s; a run recorded with both is still read.)"""
    seen: dict[tuple[Any, ...], str] = {}
    for c in corners:
        first = seen.setdefault(c.conditions, c.name)
        if first != c.name:
            raise InputError(f"{key}: corners {units.clip(first)} and {units.clip(c.name)} are the same conditions "
                             f"({units.clip(c.describe())}): each would be simulated twice; remove one")


def _listed(names: Sequence[str], most: int = 10) -> str:
    """``names`` for an error line: each clipped (:func:`zoaf.units.clip`), the first ``most`` of them (a cross
    product makes thousands of corners, a library thousands of sections)."""
    shown = ", ".join(map(units.clip, names[:most])) or "none"
    return shown if len(names) <= most else f"{shown}, ... ({len(names)} in all)"


def _cross(key: str, axes: Mapping[str, Any]) -> list[Corner]:
    if not axes:
        return []
    lists = {k: (v if isinstance(v, list) else [v]) for k, v in axes.items()}
    for k, v in lists.items():
        if not v:
            raise InputError(f"{key}.{units.clip(k)}: empty list")
    if (count := math.prod(map(len, lists.values()))) > MAX_CORNERS:
        sizes = " x ".join(f"{units.clip(k)} {len(v)}" for k, v in lists.items())
        raise InputError(f"{key}: the lists make {count:,} corners ({sizes}), each simulated at every sizing; at "
                         f"most {MAX_CORNERS:,}")
    out = []
    for combo in itertools.product(*lists.values()):
        values = dict(zip(lists, combo))
        _corner(key, "checked", values)                  # bad values name their key before naming the corner
        out.append(_corner(key, _name(values), values))
    return out


def _named(key: str, name: str, values: Mapping[str, Any]) -> Corner:
    """A ``[corners.NAME]`` table: an empty one is refused rather than read as the nominal deck, since it is far
    more often a table whose keys were lost (a misplaced header) than a deliberate nominal corner, and a nominal
    corner says so with ``temp = 27``."""
    if not values:
        raise InputError(f"{key}: empty corner table: set process, temp or a .param override (a nominal corner: "
                         "temp = 27)")
    return _corner(key, name, values)


def _name(values: Mapping[str, Any]) -> str:
    parts = []
    for k, v in values.items():
        if k == "process":
            parts.append(str(v).lower())
        elif k == "temp":
            parts.append(f"{units.parse(v, what='temp'):g}C")
        else:
            parts.append(f"{k}={v}")
    return "_".join(parts)


def _corner(key: str, name: str, values: Mapping[str, Any]) -> Corner:
    if not re.match(r"^[\w.=+-]+$", name):
        raise InputError(f"{key}: corner name {units.echo(name)} has characters other than letters, digits, _ . = + -")
    process = values.get("process")
    if process is not None and not (isinstance(process, str) and re.fullmatch(r"[A-Za-z0-9_]+", process)):
        raise InputError(f"{key}.process: must be a section name like \"ss\", got {units.echo(process)}")
    temp = None if "temp" not in values else _temperature(f"{key}.temp", values["temp"])
    if temp is not None and not -273.15 < temp < 1000:
        raise InputError(f"{key}.temp: {temp:g} C is not a plausible temperature")
    params = tuple((k.lower(), units.parse_spec(v, what=f"{key}.{units.clip(k)}")) for k, v in values.items()
                   if k not in _RESERVED)
    return Corner(name.lower(), None if process is None else process.lower(), temp, params)


def _temperature(key: str, value: Any) -> float:
    """A corner's temperature in degrees Celsius: a number, optionally followed by ``C``. SPICE's reading of a
    letter after it is a scale: ``"125F"`` (meant Fahrenheit) was simulated at 1.25e-13 C, ``"300K"`` refused as
    300,000 C."""
    if isinstance(value, str) and not _CELSIUS.fullmatch(value):
        raise InputError(f"{key}: {units.echo(value)} is not degrees Celsius: give a number (temp = 125, \"-40\", "
                         "\"27C\"); SPICE reads a letter after it as a scale (F is femto, K kilo)")
    return units.parse_spec(value, what=key)


def process_params(lib: Path, section: str, where: str) -> dict[str, float]:
    """The ``.param`` assignments of one ``.lib`` section of a generic corner file (plain numbers only)."""
    try:
        # at "\n" only, as ngspice reads (str.splitlines also breaks at NEL, U+2028: inside a comment there)
        lines = [ln.removesuffix("\r") for ln in read_bounded(lib).decode("utf-8", "replace").split("\n")]
    except OSError as e:
        raise InputError(f"{where}: process_lib {lib}: cannot read ({e.strerror})") from None
    params: dict[str, float] = {}
    current, found = None, set()
    for n, line in enumerate(lines, 1):
        m = _SECTION.match(line)
        if m:
            current = m.group(1).lower()
            found.add(current)
        elif _ENDL.match(line):
            current = None
        elif current == section and (p := _PARAM_LINE.match(line)):
            for name, value in _ASSIGN.findall(p.group(1).split("$")[0]):
                params[name.lower()] = units.parse(value, what=f"{lib}:{n}: .param {units.clip(name)}", numparam=True)
    if section not in found:
        raise InputError(f"{where}: process {units.echo(section)}: no '.lib {units.clip(section)}' section in {lib}; "
                         f"it has {_listed(sorted(found))}")
    return params


# ------------------------------------------------------------------------------------------ worst case
@dataclass(frozen=True)
class WorstCase:
    """A sizing judged over corners: the aggregated outcome, and which corner set each part of it."""

    outcome: Outcome
    worst: int                          # position (in the list given) of the corner with the highest FoM
    constraint_corners: tuple[int, ...] = field(default=())   # per constraint, where it is worst


def worst_case(outcomes: Sequence[Outcome], *, minimize: bool, scale: float = 1.0,
               directions: Mapping[str, bool] | None = None,
               constrained: Sequence[str | None] = ()) -> WorstCase:
    """The worst case of one sizing's corner outcomes, judged as one outcome.

    The objective is its worst value (the largest when minimized), each constraint its largest normalized
    value (each at its own worst corner); the FoM is ``Score.of`` of those, so it never decreases as corners
    are added (what makes pruning safe). A corner that failed fails the sizing. ``directions``: per measure,
    True when larger is worse; those measures are reported at their worst, the others at the worst corner.
    ``constrained``: the measure of each constraint, in order. A measure bounded on both sides has no single
    "worst" direction (its maximum may pass ``f <= 1.05g`` while its minimum fails ``f >= 950meg``), so a
    constrained measure is reported at the corner of its most violated (or least met) constraint: the value
    shown beside the spec is the one that decides it (None in ``constrained``: a constraint not to report by).
    """
    if not outcomes:
        raise ValueError("worst_case: no corner outcomes")
    foms = [o.fom for o in outcomes]
    worst = max(range(len(outcomes)), key=lambda i: (foms[i], -i))
    seconds = sum(o.seconds for o in outcomes)
    bad = [o for o in outcomes if o.status not in (Status.OK, Status.CACHED)]
    if bad:
        return WorstCase(Outcome(bad[0].status, error=bad[0].error, seconds=seconds), worst)
    m = len(outcomes[0].constraints)
    values = [max(o.constraints[j] for o in outcomes) for j in range(m)]
    where = tuple(max(range(len(outcomes)), key=lambda i: outcomes[i].constraints[j]) for j in range(m))
    raws = [o.objective for o in outcomes]
    if any(r is None or not math.isfinite(r) for r in raws):
        score = Score.unmeasured(values, INFEASIBLE_OFFSET + MISSING_VIOLATION * (1 + m))
    else:
        raw = max(raws) if minimize else min(raws)
        score = Score.of(raw if minimize else -raw, values, scale, raw)
    binding = _binding_corners(constrained, values, where)
    measures = _worst_measures(outcomes, worst, directions or {}, binding)
    status = Status.OK if any(o.status == Status.OK for o in outcomes) else Status.CACHED
    errors = "; ".join(o.error for o in outcomes if o.error) or None
    outcome = Outcome.scored(score, measures, seconds if status == Status.OK else 0.0, errors)
    return WorstCase(replace(outcome, status=status), worst, where)


def _binding_corners(constrained: Sequence[str | None], values: Sequence[float], where: Sequence[int]
                     ) -> dict[str, int]:
    """Per constrained measure, the corner of its constraint with the largest worst-case value (the first on a
    tie): the corner whose value of that measure decides its spec."""
    out: dict[str, tuple[float, int]] = {}
    for name, v, k in zip(constrained, values, where):
        if name is not None and (name not in out or v > out[name][0]):
            out[name] = (v, k)
    return {name: k for name, (_, k) in out.items()}


def _worst_measures(outcomes: Sequence[Outcome], worst: int, directions: Mapping[str, bool],
                    binding: Mapping[str, int]) -> dict[str, float]:
    """The worst corner's measures, each directed measure replaced by its worst value over the corners and
    each constrained one (``binding``) by its value at the corner of its binding constraint. A judged measure
    missing at any corner is missing from the worst case: filled in from the corners that have it, a ring
    that does not oscillate at 0.3 V showed its 1.5 V frequency as "pass", and a run no sizing of which is
    measured at every corner ended "INFEASIBLE" (exit 0) instead of naming the missing measure (exit 1)."""
    measures = dict(outcomes[worst].measures)
    for name, larger_is_worse in directions.items():
        values = [o.measures[name] for o in outcomes if name in o.measures and math.isfinite(o.measures[name])]
        if values:
            measures[name] = max(values) if larger_is_worse else min(values)
    for name, k in binding.items():
        value = outcomes[k].measures.get(name)
        if value is not None and math.isfinite(value):
            measures[name] = value
    for name in {*directions, *binding}:
        if any(not math.isfinite(o.measures.get(name, math.nan)) for o in outcomes):
            measures.pop(name, None)
    return measures

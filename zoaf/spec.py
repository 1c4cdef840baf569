"""The spec sidecar ``<stem>.toml``: design variables, measures, objectives and constraints.

Format::

    title = "Two-stage Miller OTA"
    pdk = "sky130"            # optional: the netlist's {{sky130}} placeholder points at the installed PDK
    corner = "tt"
    [parameters]
    w1  = { lo = "1u", hi = "100u", scale = "log" }
    nf5 = { lo = 1, hi = 16, type = "int" }
    [measures]
    gain_db = { unit = "dB" }
    [objectives]              # the first is the default; target: stop once a feasible design reaches it
    peaking = { minimize = "peaking_db", constraints = ["gain_db >= 50"], target = 0.5 }
    pvt = { maximize = "ugbw_hz", constraints = ["pm_deg >= 60"], corners = "all" }   # worst case over corners
    [corners]                 # PVT corners (zoaf.signoff.corners): cross product of lists, or [corners.NAME]
    process = ["tt", "ss"]
    temp = [27, 125]
    [montecarlo]              # .params drawn standard normal per Monte Carlo sample (zoaf.signoff.mc)
    normal = ["mc_m1", "mc_m2"]
    # section = "mc"          # with pdk: the PDK's statistical section, drawn by ngspice, seeded per sample
    # params = { mc_mm_switch = 1 }   # .param lines added to that deck (sky130: device mismatch)

Constraints are parsed (``name op number``), never ``eval``-ed. Every error names the file, the key and what
is wrong. Names are case-insensitive, as in SPICE.
"""
from __future__ import annotations

import math
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from . import units
from .errors import InputError
from .infile import UnreadableFile, read_bounded
from .problem import INFEASIBLE_OFFSET, MISSING_VIOLATION, Parameter, ParameterError, Score
from .signoff.corners import CornerSet, parse_corners
from .signoff.mc import KEYS as MC_KEYS, MonteCarlo, parse_montecarlo
from .spectables import (keyword as _keyword, keywords as _keywords, named_tables as _named_tables, top_key_hint,
                         refuse_case_twins as _refuse_case_twins, refuse_controls as _refuse_controls,
                         refuse_ngspice_word, refuse_table_arrays, table as _table)

#: The bound may hold one blank before a unit word ("60 dB"), for units.parse_spec to refuse with its hint.
_CONSTRAINT = re.compile(r"^\s*([A-Za-z_][\w.]*)\s*(>=|<=|>|<)\s*(\S+(?:\s+[A-Za-z]+)?)\s*$")
#: What a refused constraint most likely meant: (pattern searched, hint). The first that matches is said.
_CONSTRAINT_HINTS = (
    (re.compile("[\u2265\u2264]"), "write >= for \u2265 and <= for \u2264"),
    (re.compile(r"=>|=<"), "write >= or <= (the '=' second)"),
    (re.compile(r"(?<![<>!=])=(?!=)|=="), "an equality never holds at a sampled design: bound the measure "
                                           "from both sides, as two constraints"),
    (re.compile(r"^\s*\S+\s*(>=|<=|>|<)\s*[A-Za-z_][\w.]*\s*(>=|<=|>|<)"),
     "write a range as two constraints, each with the measure first ('x >= 1', 'x <= 2')"),
    (re.compile(r"^\s*[-+.\d]\S*\s*(>=|<=|>|<)\s*[A-Za-z_][\w.]*\s*$"),
     "write the measure first ('x >= 60', not '60 <= x')"),
    # a line's first operator, the first separator after it, an operator after that: atomic, so each line is read
    # once (".*" from each operator took hours over a string of a MiB of "<")
    (re.compile(r"(?m)^(?>[^\n]*?(?:>=|<=|>|<))(?>[^\n]*?(?:,|;|\band\b|&))[^\n]*?(?:>=|<=|>|<)"),
     "give each constraint its own string in the list"))
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")      # fullmatch: a trailing newline is not a name

#: A line no TOML has and every netlist does (a dot card: ``.end``, ``.param``, ``.meas``, an analysis): the
#: netlist given where the spec goes, said so rather than as a TOML syntax error on its title line.
_SPICE_CARD = re.compile(r"^[ \t]*\.(?:end|param|meas|measure|subckt|include|lib|control|ac|dc|tran|op|noise)"
                         r"\b[^\n]{0,30}", re.IGNORECASE | re.MULTILINE)
#: A spec is a page of TOML: more is not one (and is not read into memory).
MAX_SPEC_BYTES = 2**20
#: The most parts of a dotted key or table name (a spec's own have 3: ``montecarlo.normal.w1``): tomllib reads a key
#: in time quadratic in its parts (a MiB of ``x.a.a.a...`` took hours, 20k parts a RecursionError in zoaf's walk).
MAX_KEY_PARTS = 32
#: A key of more (where one starts: a line, after ``[``, ``{`` or ``,``). Possessive, so each place is read once; a
#: quoted part (a string value) is one part.
_PART = r"""(?:[\w-]++|"(?:[^"\\\n]|\\.)*+"|'[^'\n]*+')"""
_DEEP_KEY = re.compile(rf"(?m)(?:^|[\[{{,])[ \t]*+{_PART}(?:[ \t]*+\.[ \t]*+{_PART}){{{MAX_KEY_PARTS}}}")
#: The least objective ``scale``, and magnitude of a nonzero constraint bound: the FoM squashes measure / scale, which
#: overflowed to -inf for every point at 1e-320 (a run of feasible designs said "no simulation gave a finite FoM"),
#: and a miss is divided by |bound| (+-inf constraint values); at 1e-30 any value ngspice prints stays finite.
MIN_SCALE = 1e-30
#: The greatest objective ``scale``: the FoM of a measure near 0 is about measure / scale, which at 1e308 fell to
#: subnormals, then 0 (1e-19 W and 1e-20 W tied); at 1e30 any value ngspice prints keeps its order.
MAX_SCALE = 1e30
#: The largest magnitude of a constraint value (a relative miss; met, its negative): the models a method fits to
#: constraint values square and sum them (a variance, a least-squares fit), which stays finite at 1e300 a term; a
#: circuit's real misses are far below it, so the order of any two is kept.
MAX_CONSTRAINT = 1e150


@dataclass(frozen=True)
class Constraint:
    """``measure op bound``; violation is normalized by |bound| (by 1 when the bound is 0)."""

    measure: str
    op: str
    bound: float

    @classmethod
    def parse(cls, text: str, *, where: str = "constraint") -> "Constraint":
        m = _CONSTRAINT.match(str(text))
        if m is None:
            hint = next((f": {h}" for pattern, h in _CONSTRAINT_HINTS if pattern.search(str(text))), "")
            raise InputError(f"{where}: {units.echo(text)} is not 'name op number' with op one of >=, <=, >, <{hint}")
        name, op, number = m.groups()
        what = f"{where}: bound of {units.echo(text)}"
        bound = units.parse_spec(number, what=what)
        if 0 < abs(bound) < MIN_SCALE:      # 1e-320: every miss divided by it was +-inf in the history
            raise InputError(f"{what}: {units.echo(number)} is nearer 0 than {MIN_SCALE:g} (the violation is divided "
                             "by the bound's magnitude and would overflow); write 0, or the measure in a larger unit")
        return cls(name.lower(), op, bound)

    def value(self, measured: float | None) -> float:
        """The normalized constraint value handed to the methods: <= 0 when met, > 0 by the relative miss.

        ``gain_db >= 60`` gives ``(60 - gain)/60``; ``<=`` the mirror (normalized by 1 when the bound is 0).
        Not capped below :data:`MAX_CONSTRAINT`, so a method that models it sees the slope far from feasibility; a
        missing measure gives ``MISSING_VIOLATION``, the violation the FoM charges for it. A strict inequality met
        with equality gives 1e-12 (not met). A difference past the float range (``>= 1e308`` measured ``-1e308``)
        is taken bound by bound (2, as it is); a quotient past :data:`MAX_CONSTRAINT` (``1e300`` over a bound of
        ``1e-30``) is that cap, of its sign: +-inf there made a method's model of the constraint inf or nan.
        """
        if measured is None or not math.isfinite(measured):
            return MISSING_VIOLATION
        norm = abs(self.bound) if self.bound != 0 else 1.0
        over, under = (self.bound, measured) if self.op in (">=", ">") else (measured, self.bound)
        gap = (over - under) / norm
        if not math.isfinite(gap):
            gap = over / norm - under / norm
        gap = min(max(gap, -MAX_CONSTRAINT), MAX_CONSTRAINT)
        return 1e-12 if gap == 0 and self.op in (">", "<") else gap

    def __str__(self) -> str:
        return f"{self.measure} {self.op} {units.format(self.bound)}"


@dataclass(frozen=True)
class Objective:
    """A named figure of merit: one measure to minimize or maximize under constraints, with an optional target
    (the measure's value at which the spec is met: a run may stop at the first feasible design reaching it)."""

    name: str
    measure: str
    sense: str                     # "minimize" | "maximize"
    constraints: tuple[Constraint, ...] = ()
    scale: float = 1.0             # the squash's linear range, in the measure's unit
    target: float | None = None
    corners: tuple[str, ...] = ()  # judged at its worst over these corners of [corners] (empty: nominal)

    def evaluate(self, measures: Mapping[str, float]) -> Score:
        """Judge one simulation's measures; lower FoM is better. A missing objective measure gives the finite
        ``INFEASIBLE_OFFSET + MISSING_VIOLATION * (1 + constraints)``: behind every measured design, ahead of
        a failed simulation (+inf)."""
        values = [c.value(measures.get(c.measure)) for c in self.constraints]
        raw = measures.get(self.measure)
        if raw is None or not math.isfinite(raw):
            return Score.unmeasured(values, INFEASIBLE_OFFSET + MISSING_VIOLATION * (1 + len(self.constraints)))
        return Score.of(self._signed(raw), values, self.scale, raw)

    def target_fom(self) -> float | None:
        """The FoM of a feasible design whose objective equals the target (None without a target)."""
        if self.target is None:
            return None
        return Score.of(self._signed(self.target), [-1.0] * len(self.constraints), self.scale).fom

    def _signed(self, raw: float) -> float:
        return raw if self.sense == "minimize" else -raw


@dataclass
class Spec:
    path: Path | None
    title: str
    parameters: tuple[Parameter, ...]
    measures: dict[str, str]                  # name -> unit
    objectives: dict[str, Objective]
    pdk: str | None = None
    corner: str | None = None
    text: str = field(default="", repr=False)
    corners: CornerSet | None = None          # [corners] (zoaf.signoff.corners)
    montecarlo: MonteCarlo | None = None      # [montecarlo] (zoaf.signoff.mc)

    @property
    def default_objective(self) -> str:
        return next(iter(self.objectives))

    def objective(self, name: str | None) -> Objective:
        if name is None:
            return self.objectives[self.default_objective]
        try:
            return self.objectives[name.lower()]
        except KeyError:
            raise InputError(f"{self._where()}: unknown objective {units.echo(name)}; "
                             f"choose one of {', '.join(map(units.clip, self.objectives))}") from None

    def unit_of(self, measure: str) -> str:
        return self.measures.get(measure, "")

    def _where(self) -> str:
        return str(self.path) if self.path else "spec"

    @staticmethod
    def find_for(netlist: str | Path) -> Path:
        """``<stem>.toml`` beside the netlist; InputError for a ``.toml`` netlist, which is its own ``<stem>.toml``:
        the spec given where the netlist goes (its refusal was "no '.param r1=' in amp.toml", read as a deck)."""
        path = Path(netlist)
        if path.suffix.lower() == ".toml":
            raise InputError(f"{units.clip_path(str(path))}: a spec (.toml) where the netlist goes: give the SPICE "
                             "netlist; zoaf reads the spec beside it (<stem>.toml) or from --spec")
        return path.with_suffix(".toml")

    @classmethod
    def read(cls, path: str | Path) -> "Spec":
        path = Path(path)
        try:                            # as an include: a FIFO blocks, /dev/zero never ends, /proc/self/environ
            raw = read_bounded(path, MAX_SPEC_BYTES, "a spec")
        except FileNotFoundError:
            raise InputError(f"{path}: spec file not found (give one with --spec)") from None
        except UnreadableFile as e:
            raise InputError(f"{path}: {e.strerror}") from None
        except OSError as e:
            raise InputError(f"{path}: cannot read spec: {e.strerror}") from None
        try:
            text = raw.decode("utf-8-sig")  # a byte-order mark (Windows editors write one): TOML has no place for it
            if deep := _DEEP_KEY.search(text):
                raise InputError(f"{path}:{text.count(chr(10), 0, deep.end()) + 1}: a TOML key of more than "
                                 f"{MAX_KEY_PARTS} dotted parts: TOML nested too deep: not a spec")
            data = tomllib.loads(text)
        except UnicodeDecodeError:
            raise InputError(f"{path}: not a text file (UTF-8 TOML expected)") from None
        except tomllib.TOMLDecodeError as e:
            if card := _SPICE_CARD.search(text):    # the netlist where the spec goes: its title line was the error
                raise InputError(f"{path}: a SPICE netlist, not a TOML spec (its {units.echo(card.group().strip())} "
                                 "card): the netlist and the spec swapped? the spec is the TOML file "
                                 "(--spec FILE.toml)") from None
            raise InputError(f"{path}: TOML syntax error: {e}") from None
        except RecursionError:          # tomllib recurses per nested array or table: "a = [[[[...]]]]"
            raise InputError(f"{path}: TOML nested too deep: not a spec") from None
        _refuse_controls(str(path), data)
        return cls.from_dict(data, path=path, text=text)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, path: Path | None = None, text: str = "") -> "Spec":
        where = str(path) if path else "spec"
        data = _keywords(where, data, ("title", "parameters", "measures", "objectives", "pdk", "corner", "corners",
                                       "montecarlo"))
        if isinstance(data.get("montecarlo"), Mapping):
            data["montecarlo"] = _keywords(f"{where}: montecarlo", data["montecarlo"], MC_KEYS)
        for table, value in _named_tables(data):
            _refuse_case_twins(where, table, value)
            refuse_table_arrays(where, table, value)
        params = tuple(_parameter(where, name, value) for name, value in _table(where, data, "parameters").items())
        if not params:
            raise InputError(f"{where}: [parameters] is empty: name at least one design variable")
        measures = {}
        for name, value in _table(where, data, "measures", required=False).items():
            _check_name(where, "measures", name)
            value = value if isinstance(value, Mapping) else {"unit": value}
            value = _keywords(f"{where}: measures.{units.clip(name)}", value, ("unit",))
            unit = value.get("unit", "")
            if not isinstance(unit, str):
                raise InputError(f"{where}: measures.{units.clip(name)}.unit: must be a string, got {units.echo(unit)}")
            measures[name.lower()] = unit
        corners = None if "corners" not in data else parse_corners(where, data["corners"], path and path.parent)
        objectives = {}
        for name, value in _table(where, data, "objectives").items():
            obj = _objective(where, name, value, corners)
            for field_, m in [(obj.sense, obj.measure), *(("constraints", c.measure) for c in obj.constraints)]:
                if m not in measures:
                    raise InputError(f"{where}: objectives.{units.clip(name)}.{field_}: measure {units.echo(m)} is "
                                     "not listed in [measures]")
            objectives[obj.name] = obj
        if not objectives:
            raise InputError(f"{where}: [objectives] is empty: name at least one objective")
        title = data.get("title", path.stem if path else "circuit")
        pdk, corner = data.get("pdk"), data.get("corner")
        for key, value in (("title", title), ("pdk", pdk), ("corner", corner)):
            if value is not None and not isinstance(value, str):
                raise InputError(f"{where}: {key}: must be a string, got {units.echo(value)}")
        if corner is not None and not corner.strip():   # "" was read as no corner: tt simulated, unsaid
            raise InputError(f"{where}: corner: empty; name the PDK's process corner (tt, ff, ss, ...), or leave the "
                             "key out for tt")
        if corner is not None and pdk is None:  # {{corner}} is a PDK's placeholder: without one it was ignored
            raise InputError(f"{where}: corner: {units.echo(corner)} needs a pdk (it picks the PDK's process section); "
                             f"without one, the deck's own models are simulated: list corners in [corners]")
        processes = corners.check_processes(where) if corners is not None and pdk is None else {}
        mc = None if "montecarlo" not in data else parse_montecarlo(where, data["montecarlo"])
        for c in corners.corners if corners is not None and mc is not None else ():
            # under `yield --corner` the draw replaced the corner's value (its own or its process_lib section's)
            both = sorted(({n for n, _ in c.params} | set(processes.get(c.name, {}))) & set(mc.normal))
            if both:
                raise InputError(f"{where}: montecarlo.normal: {units.echo(both[0])} is also set by corner "
                                 f"{units.clip(c.name)} of [corners]; a sample would replace the corner's value: draw "
                                 "another .param")
        return cls(path, title, params, measures, objectives, pdk, corner, text, corners, mc)

    def check_against(self, netlist_params: Iterable[str], netlist_results: Iterable[str], netlist: str,
                      body_params: Mapping[str, int] | None = None) -> None:
        """Every parameter must be a ``.param`` of the netlist and every measure one of its results;
        ``body_params``: the line of a name a ``.subckt`` body defines (said "no '.param r1='" of a deck that has
        one, in a body)."""
        params, results = {p.lower() for p in netlist_params}, {r.lower() for r in netlist_results}
        if self.path is not None and self.path.resolve() == Path(netlist).resolve():
            raise InputError(f"{netlist}: given as both the netlist and the spec: give the SPICE netlist, and the "
                             "spec (TOML) beside it (<stem>.toml) or with --spec")
        for p in self.parameters:
            if p.name not in params:
                name, line = units.clip(p.name), (body_params or {}).get(p.name)
                if line is not None:
                    raise InputError(f"{self._where()}: parameters.{name}: {netlist}:{line} defines .param {name} "
                                     "inside a .subckt body, the subcircuit's own: no sizing reaches it; a design "
                                     "variable is a top-level .param (define it outside the .subckt, not again in "
                                     "its body)")
                raise InputError(f"{self._where()}: parameters.{name}: no '.param {name}=' in {netlist}")
        for m in self.measures:
            if m not in results:
                raise InputError(f"{self._where()}: measures.{units.clip(m)}: {netlist} has no .meas (or .control "
                                 f"meas/let) named {units.echo(m)}; it has: "
                                 f"{', '.join(map(units.clip, sorted(results))) or 'none'}"
                                 + top_key_hint("measures", m))


def _check_name(where: str, table: str, name: str) -> None:
    if not _NAME.fullmatch(name):
        raise InputError(f"{where}: {table}.{units.clip(name)}: not a valid SPICE name")


def _parameter(where: str, name: str, value: Any) -> Parameter:
    _check_name(where, "parameters", name)
    key = f"{where}: parameters.{units.clip(name)}"
    refuse_ngspice_word(key, name)
    if not isinstance(value, Mapping):
        raise InputError(f"{key}: expected a table like {{ lo = \"1u\", hi = \"10u\" }}, got {units.echo(value)}"
                         + top_key_hint("parameters", name))
    value = _keywords(key, value, ("lo", "hi", "scale", "type", "init", "unit"))
    for k in ("lo", "hi"):
        if k not in value:
            raise InputError(f"{key}: missing '{k}'")
    lo = units.parse_spec(value["lo"], what=f"{key}.lo")
    hi = units.parse_spec(value["hi"], what=f"{key}.hi")
    init = None if "init" not in value else units.parse_spec(value["init"], what=f"{key}.init")
    kind = _keyword(value.get("type", "float"), ("float", "int"))
    if kind not in ("float", "int"):
        raise InputError(f"{key}.type: must be 'float' or 'int', got {units.echo(kind)}")
    unit = value.get("unit", "")
    if not isinstance(unit, str):      # was shown as str() of it: unit = ["F"] as "['F']"
        raise InputError(f"{key}.unit: must be a string, got {units.echo(unit)}")
    try:                               # the rules are Parameter's; each refusal said at its TOML key
        return Parameter(name.lower(), lo, hi, _keyword(value.get("scale", "lin"), ("lin", "log")), kind == "int",
                         init, unit)
    except ParameterError as e:
        raise e.at(key) from None


def _check_compatible(key: str, constraints: tuple[Constraint, ...], texts: list[str]) -> None:
    """Refuse constraints no design meets together (``gain_db >= 60`` with ``gain_db <= 50``: a run spent its
    budget and said only that no point met every constraint) and one listed twice (its violation counted twice).
    ``texts``: the constraints as written, for the message. Each is compared with the tightest earlier bound of the
    other side only (each pair compared took minutes over the 80k constraints a spec's MiB holds)."""
    seen: set[Constraint] = set()
    tightest: dict[tuple[str, bool], Constraint] = {}       # (measure, a lower bound?) -> the tightest so far
    for i, c in enumerate(constraints):
        if c in seen:
            raise InputError(f"{key}: {units.echo(texts[i])} is listed twice")
        seen.add(c)
        lower = c.op in (">=", ">")
        if (other := tightest.get((c.measure, not lower))) is not None and _clash(c, other):
            j = next(j for j, d in enumerate(constraints) if _clash(c, d))      # the first, as said before
            raise InputError(f"{key}: {units.echo(texts[j])} and {units.echo(texts[i])} cannot both hold: "
                             "no design is feasible")
        side = (c.measure, lower)           # the greater bound on its side, or the strict one, meets fewer values
        tightest[side] = max(tightest.get(side, c), c, key=lambda d: (d.bound if lower else -d.bound, len(d.op) == 1))


def _clash(c: Constraint, d: Constraint) -> bool:
    """Whether no value of their measure meets both ``c`` and ``d``."""
    lo, hi = (c, d) if c.op in (">=", ">") else (d, c)
    return (c.measure == d.measure and lo.op in (">=", ">") and hi.op in ("<=", "<")
            and (lo.bound > hi.bound or lo.bound == hi.bound and not (lo.op == ">=" and hi.op == "<=")))


def _objective(where: str, name: str, value: Any, corners: CornerSet | None) -> Objective:
    _check_name(where, "objectives", name)
    key = f"{where}: objectives.{units.clip(name)}"
    if not isinstance(value, Mapping):
        raise InputError(f"{key}: expected a table like {{ minimize = \"measure\" }}, got {units.echo(value)}"
                         + top_key_hint("objectives", name))
    value = _keywords(key, value, ("minimize", "maximize", "constraints", "scale", "target", "corners"))
    senses = [s for s in ("minimize", "maximize") if s in value]
    if len(senses) != 1:
        raise InputError(f"{key}: give exactly one of 'minimize' or 'maximize'")
    measure = value[senses[0]]
    if not isinstance(measure, str):
        raise InputError(f"{key}.{senses[0]}: must be a measure name, got {units.echo(measure)}")
    cons = value.get("constraints", [])
    if isinstance(cons, str) or not isinstance(cons, list):
        raise InputError(f"{key}.constraints: must be a list of strings like [\"gain_db >= 60\"]")
    constraints = tuple(Constraint.parse(c, where=f"{key}.constraints") for c in cons)
    _check_compatible(f"{key}.constraints", constraints, [str(c).strip() for c in cons])
    if _keyword(value.get("scale"), ("lin", "log")) in ("lin", "log"):     # "'log' is not a SPICE number"
        raise InputError(f"{key}.scale: {units.echo(value['scale'])} is a parameter's scale; an objective's is a "
                         "number: the measure's size, in its unit, past which its FoM grows logarithmically")
    scale = units.parse_spec(value.get("scale", 1.0), what=f"{key}.scale")
    if not scale >= MIN_SCALE:
        raise InputError(f"{key}.scale: must be >= {MIN_SCALE:g} (the FoM divides the measure by it), got {scale:g}")
    if scale > MAX_SCALE:
        raise InputError(f"{key}.scale: must be at most {MAX_SCALE:g} (the FoM divides the measure by it: past that, "
                         f"small measures tie at 0), got {scale:g}")
    target = None if "target" not in value else units.parse_spec(value["target"], what=f"{key}.target")
    judged: tuple[str, ...] = ()
    if "corners" in value:
        if corners is None:
            raise InputError(f"{key}.corners: the spec has no [corners] table")
        chosen = corners.select(value["corners"], f"{key}.corners")
        judged = tuple(c.name for c in chosen)
    return Objective(name.lower(), measure.lower(), senses[0], constraints, scale, target, judged)

"""Re-size devices in place with ``alter``/``altermod`` instead of ``reset``: no re-parse per sizing.

``reset`` re-parses the whole stored deck; on a PDK deck that is mostly the PDK's subcircuits, expanded once
per device with their binned model cards (sky130's ``nfet_01v8``: 48 bins, copied per instance because a card
reads the instance's ``nf``/``w``), about 3/4 of an evaluation. When a sizing changes only ``.param``s that
flow into device values (instance parameters, an R/C/L value, a source's ``dc``/``ac``, a diode's ``area``), the
:class:`Plan` computes those values as ngspice's numparam would (:mod:`zoaf.spexpr`, compiled once per deck by
:mod:`zoaf.plancode`; a top-level ``.func``'s calls expanded first, as ngspice expands them), and sends only the ones
that changed, several ``alter``s per command line.

Falls back to ``reset`` (``resize`` returns False) whenever it cannot be sure to be equal to it:
* a changed ``.param`` reaches anything else (an analysis, an ``.options`` value such as a corner's
  ``temp={zoaf_temp}``, a model card outside a device subcircuit, a behavioural source, a subcircuit instance's
  ``m=``, a ``.meas`` other than a ``param=`` card :mod:`zoaf.parammeas` computes, ...) — worked out once from
  the whole deck, PDK included;
* a device would change model bin: ``alter`` re-bins in ngspice 39, but under ``.option scale`` (sky130) it
  looks the bin up with the unscaled width and finds none ("no model available"), keeping the old bin;
* an expression or construct :mod:`zoaf.spexpr` does not evaluate, a ``.if`` block (its branch is chosen at the
  re-parse), or any unexpected ngspice output;
* a diode with ``m`` (its own or an enclosing instance's) other than 1, or a level-3 (geometric) diode under
  ``.option scale`` (sky130's diodes): every ``alter``, of any device, multiplies its area again;
and it is not used at all for decks whose analyses leave state behind (``tran``, ``dc temp``, ...), since
without a ``reset`` the next evaluation would start from it, nor for decks with a ``param=`` card that reads a
measure ngspice does not print in full (:mod:`zoaf.parammeas`). Parametrized subcircuits are expanded: their
elements' values are computed in each instance's numparam scope.
Equality with the ``reset`` path, bit for bit, is pinned by ``tests/test_fastpath.py`` (sky130: a walk of small
steps, a bin crossing), ``tests/test_fastpath_params.py`` (``param=`` cards, nested parametrized subcircuits,
the LNA) and ``tests/test_fidelity_sky130.py`` (Xschem's instance lines, a MIM capacitor, a section's switches).
The in-repo decks that take it: ``netlists/sky130/*.cir`` and ``netlists/lna.cir``; the others keep ``reset`` (a
transient, a ``dc temp`` sweep, ``param=`` cards on ``find``/``max`` measures).
"""
from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path

from . import parammeas, units
from .deckparse import Deck, Subckt, assignments, read_deck
from .errors import InputError
from .ngcommands import ANALYSES, base_word, block_depth_change, is_conditional
from .plancode import Bin, Frame, Leaf, Program, State, sub_params
from .spexpr import Function, Unsupported, evaluate, expand, functions, names

__all__ = ["Plan", "plan"]

#: Element letter -> the parameter ``alter`` sets for its value.
_VALUE_PARAM = {"r": "resistance", "c": "capacitance", "l": "inductance"}
#: A V/I source's word before a value -> the parameter ``alter`` sets.
_SOURCE_PARAM = {"dc": "dc", "ac": "acmag"}
#: What ``alter`` prints for every width/length change under ``.option scale`` (see the module doc).
_REBIN_NOISE = "error: no model available for"
#: A quoted instance value (``'expr'``, blanks allowed), read as ``{expr}``.
_QUOTED = re.compile(r"'([^'{}]*)'")
#: The longest command line sent: ngspice 39 reads one into a 1024-byte buffer, its end included (1,023 characters
#: work, 1,024 already break it: the rest is read as garbage; ``ngcommands.MAX_COMMAND``), so the ``alter``s of a
#: sizing go in ``;``-separated lines up to this long.
_LINE = 1000


class Plan:
    """What a deck's sizings can change in place, and the values of the sizing now in ngspice."""

    def __init__(self, program: Program, fast: set[str], cards: list[parammeas.ParamMeasure]) -> None:
        self.program, self.fast = program, fast
        self.cards = cards                      # the deck's .meas param= cards, computed per in-place sizing
        self.state: State | None = None
        self.applied: dict[str, str] = {}
        self._declined: tuple[dict[str, str], State] | None = None    # a state resize computed, then reset
        self.funcs: dict[str, Function] = {}    # the deck's .func, expanded in a sizing's texts as in the deck's

    def loaded(self, params: Mapping[str, str]) -> None:
        """ngspice now holds the deck at these ``.param`` values (after a load or a ``reset``)."""
        self.applied = dict(params)
        declined, self._declined = self._declined, None
        if declined is not None and declined[0] == self.applied:
            self.state = declined[1]           # a model-bin change: the reset's state is the one just computed
            return
        try:
            self.state = self._state(params)
        except Unsupported:
            self.state = None

    def resize(self, send: Callable[[str], list[str]], params: Mapping[str, str]) -> bool:
        """Set the devices to these ``.param`` values with ``alter``/``altermod``; False: ``reset`` instead."""
        changed = {k for k, v in params.items() if self.applied.get(k) != v}
        if self.state is None or not changed <= self.fast:
            return False
        try:
            new = self._state(params)
        except Unsupported:
            return False
        if new.bins != self.state.bins:
            self._declined = (dict(params), new)
            return False
        now = self.state.values
        out = _send_lines(send, [f"{verb} @{where}[{param}]={text}" for (verb, where, param), (value, text)
                                 in new.values.items() if now.get((verb, where, param), (None,))[0] != value])
        if any(s.strip() and not s.lower().startswith(_REBIN_NOISE) for s in out):
            self.state = None                  # a mixed state: only a reset restores a known one
            return False
        self.state, self.applied = new, dict(params)
        return True

    def param_measures(self, analysis: str, measured: Mapping[str, float]) -> dict[str, float | None]:
        """The ``param=`` cards of ``analysis`` at the sizing set in place (:func:`zoaf.parammeas.compute`):
        ngspice's own cards keep the value of the last ``reset``."""
        cards = [c for c in self.cards if c.analysis == analysis]
        if not cards or self.state is None:
            return {}
        return parammeas.compute(cards, {**self.program.base, **self.state.scope}, measured)

    def _state(self, params: Mapping[str, str]) -> State:
        if self.funcs:
            params = {k: expand(v, self.funcs) for k, v in params.items()}
        return self.program.state(params, self.state.bins if self.state else {})


def _send_lines(send: Callable[[str], list[str]], commands: list[str]) -> list[str]:
    """Send ``commands`` ``;``-separated, as few lines as :data:`_LINE` allows (ngspice runs each in turn; each line
    costs a call through the binding, a history entry and its leak besides ngspice's own ~4 us per ``alter``: the
    LNA's 57 went from 0.22 to 0.18 ms, medians in one session); their output."""
    out: list[str] = []
    line = ""
    for c in commands:
        if line and len(line) + len(c) + 3 > _LINE:
            out += send(line)
            line = ""
        line = f"{line} ; {c}" if line else c
    return out + send(line) if line else out


# ---------------------------------------------------------------------- building a plan
def plan(deck_lines: list[str], folder: Path, design: Mapping[str, str], commands: list[str]) -> Plan | None:
    """The fast path for a session deck (its lines, as loaded; ``commands`` the analyses and ``.control``
    lines the session sends), or None when no design ``.param`` can use it."""
    try:
        funcs = functions(deck_lines)
        if funcs:                            # read as ngspice reads them: the calls expanded, the .func lines gone
            deck_lines = [_expand_line(ln, funcs) for ln in deck_lines
                          if (m := re.match(r"\.func\s+(\w+)", ln, re.I)) is None or m.group(1).lower() not in funcs]
            commands = [_expand_line(c, funcs) for c in commands]
        built = _Builder(read_deck(deck_lines, folder), design, commands).build()
        if built is not None:
            built.funcs = funcs
        return built
    except (Unsupported, ValueError, KeyError, IndexError, StopIteration, OSError):
        return None                          # a deck the plan does not follow: every sizing resets


def _expand_line(ln: str, funcs: Mapping[str, Function]) -> str:
    """A deck line with its ``.func`` calls expanded (:func:`zoaf.spexpr.expand`), as ngspice expands them before
    numparam: a ``.param`` line's values, the ``{...}`` and ``'...'`` expressions of the others."""
    if ln.lower().startswith(".param"):
        return ln[:6] + expand(ln[6:], funcs)
    return re.sub(r"\{[^{}]*\}|'[^']*'", lambda m: expand(m.group(0), funcs), ln)


class _Builder:
    def __init__(self, deck: Deck, design: Mapping[str, str], commands: list[str]) -> None:
        self.deck, self.design, self.commands = deck, set(design), commands
        self.leaves: list[Leaf] = []
        self.slow: set[str] = set()           # names read where alter cannot follow

    def build(self) -> Plan | None:
        defined = [k for k, _ in self.deck.params]
        bodies = [ln for s in self.deck.subckts.values() for ln in s.body]
        twice = self._twice(defined)
        if any(ln.startswith(".subckt-def") for ln in bodies):
            raise Unsupported("a nested subcircuit definition")
        if any(map(is_conditional, self.deck.lines + bodies)):
            raise Unsupported("a .if block: which of its lines a sizing keeps is known at the re-parse only")
        exprs = dict(self.deck.params)
        cards = parammeas.read(self.deck.lines, exprs)      # computed in Python: what they read is not slow
        for ln in self.deck.lines:
            if not parammeas.is_card(ln):
                self._element(ln, "", (), ())
        for value in self.deck.options.values():       # `.options temp={zoaf_temp}`: read at the re-parse only
            self._slow(value)
        for c in self.commands:
            _check_command(c)
            self._slow(c)
        _check_saves(self.commands)
        dependent = self._dependent(exprs)
        slow = set(self.slow)
        for name in reversed(defined):         # a slow derived .param makes what it reads slow
            if name in slow:
                slow |= _words(exprs[name])
        fast = {n for n in self.design if n not in slow}
        if not fast:
            return None
        base: dict[str, float] = dict(twice)
        for k, v in self.deck.params:
            if k not in dependent and k not in twice:
                try:
                    base[k] = evaluate(v, base)
                except Unsupported:
                    pass                       # a PDK parameter nothing here reads (or the read fails later)
        if any(n in exprs and n not in base and n not in dependent for c in cards for n in names(c.expr)):
            raise Unsupported("a .meas param= card reads a .param not evaluated here")
        first = dict(reversed(self.deck.params))        # a design variable defined twice: once, where it first is
        followed = [(k, first.pop(k)) for k, _ in self.deck.params if k in dependent and k in first]
        program = Program(self.leaves, followed, base, self.design, units.parse(self.deck.options.get("scale", "1")))
        return Plan(program, fast, cards)

    def _twice(self, defined: list[str]) -> dict[str, float]:
        """The fixed ``.param``s defined more than once, at their last definition, which every reader takes (ngspice
        39: ``.param a=1``, ``.param b={a*2}``, ``.param a=3`` gives b=6); a design variable so defined is the
        sizing's value everywhere (``alterparam`` edits every definition), as a deck sets the switches of the sky130
        section it reads (``.param mc_mm_switch=0`` after ``.lib ... tt_mm``). Unsupported where a definition is no
        plain number (its readers would have to be ordered as numparam orders them)."""
        twice = {k for k in defined if defined.count(k) > 1}
        try:
            for k, v in self.deck.params:
                if k in twice:
                    units.parse(v, numparam=True)
        except InputError:
            raise Unsupported(f"a .param defined twice: {', '.join(sorted(twice))}") from None
        last = dict(self.deck.params)
        return {k: units.parse(last[k], numparam=True) for k in twice - self.design}

    def _dependent(self, exprs: dict[str, str]) -> set[str]:
        """The ``.param``s whose value follows a design variable (evaluated per sizing)."""
        dep = set(self.design)
        for k, v in exprs.items():
            if k not in self.design and _words(v) & dep:
                dep.add(k)
        return dep

    def _element(self, ln: str, prefix: str, stack: tuple[str, ...], frames: tuple[Frame, ...]) -> None:
        """Sort one line of subcircuit path ``prefix`` into leaves (values alter can set) or slow names."""
        if ln.startswith("x"):                 # Xschem's sky130 lines: ad='int((nf+1)/2) * W/nf * 0.29'
            ln = _QUOTED.sub(r"{\1}", ln)       # ngspice reads a quoted value as the braced one
        tokens = ln.split()
        name, letter = tokens[0], tokens[0][0]
        inst = assignments(ln)
        positional = [t for t in ln.split("=")[0].split()[:-1 if inst else None] if t != "params:"]
        if frames and tokens[0] == ".param":
            return                             # a parametrized instance's own .param: in its scope
        if letter == "d" and len(positional) > 3:
            self._diode(positional[3], stack, dict(inst).get("m", "1"))
        if ln.startswith(".") or "'" in ln:
            self._slow(ln, frames)
        elif letter == "x":
            self._instance(name, positional[-1], inst, prefix, stack, frames)
        elif letter == "m" and not any(s.startswith(f".model {positional[5]}.") for s in self.deck.lines):
            self.leaves.append(Leaf(_path(letter, prefix, name), inst, frames=frames))   # unbinned: no bin
        elif (values := _values(letter, tokens) if letter != "d" else [(k, v) for k, v in inst if k == "area"]) \
                and ln.count("{") == len(values) and all(v.startswith("{") for _, v in values):
            self.leaves.append(Leaf(_path(letter, prefix, name), values, frames=frames))
        else:
            self._slow(ln, frames)

    def _instance(self, name: str, subckt: str, inst: list[tuple[str, str]], prefix: str,
                  stack: tuple[str, ...], frames: tuple[Frame, ...]) -> None:
        sub = self.deck.subckts.get(subckt)
        if sub is None or sub.name in stack:
            raise Unsupported(f"{name}: unknown or recursive subcircuit")
        xpath = f"{prefix}{name}"
        for k, v in inst:
            if k == "m":                       # multiplies every device inside: only a re-parse follows it
                self._slow(f"{{{v.strip('{}')}}}", frames)
                if v.strip() != "1" and self._has_diode(sub, stack):
                    raise Unsupported(f"{name}: m={v} on a diode, which every alter multiplies again")
        if _is_device(sub):
            self._pdk_leaf(sub, inst, xpath, frames)
            return
        if inst or sub_params(sub):           # parametrized: its elements' values follow the instance's
            frames += (Frame(xpath, sub, tuple(inst)),)
        for body in sub.body:
            self._element(body, f"{xpath}.", stack + (sub.name,), frames)

    def _pdk_leaf(self, sub: Subckt, inst: list[tuple[str, str]], xpath: str, frames: tuple[Frame, ...]
                  ) -> None:
        mline = next(b for b in sub.body if b.startswith("m"))
        positional = mline.split("=")[0].split()[:-1]
        model = positional[5]
        local = {k for k, _ in sub.params} | {k for b in sub.body if b.startswith(".param")
                                               for k, _ in assignments(b[len(".param"):])}
        bins = []
        for b in sub.body:
            if b.startswith(f".model {model}."):
                params = dict(assignments(b))
                edges = [units.parse(params.get(k, d)) for k, d in
                         (("lmin", "0"), ("lmax", "1"), ("wmin", "0"), ("wmax", "1"))]
                per_instance = {k: v for k, v in params.items() if v.startswith("{") and _words(v) & local}
                bins.append(Bin(b.split()[1], *edges, per_instance))
        if not bins:
            raise Unsupported(f"{xpath}: no binned model {model} in {sub.name}")
        self.leaves.append(Leaf(f"m.{xpath}.{positional[0]}", list(inst), sub, assignments(mline), bins, xpath,
                                 frames))

    def _diode(self, model: str, stack: tuple[str, ...], m: str) -> None:
        """Unsupported for a diode that every ``alter``, of any device, scales once more (ngspice 39): one with
        ``m`` other than 1 (its area is multiplied by m again: a level-1 diode's current doubled after one alter of
        an inductor elsewhere), and a level-3 (geometric) one under ``.option scale`` (sky130's: area and perimeter
        by scale^2 again, its current at 1 V fell from 8.9e-9 A to 4e-15 A). A model not found counts. The card is
        looked up where ngspice looks: the body that holds the line, then the top level (where every subcircuit is
        defined), not a caller's body (a level-1 card there is not the one the diode reads)."""
        if m.strip() != "1":
            raise Unsupported(f"diode m={m}, which every alter multiplies again")
        if units.parse(self.deck.options.get("scale", "1")) == 1:
            return
        scopes = [self.deck.subckts[stack[-1]].body] if stack else []
        scopes.append(self.deck.lines)
        card = next((ln for body in scopes for ln in body if ln.split()[:2] == [".model", model]), None)
        if card is None or units.parse(dict(assignments(card)).get("level", "1")) == 3:
            raise Unsupported(f"diode model {model}: level 3 under .option scale, which every alter scales again")

    def _has_diode(self, sub: Subckt, stack: tuple[str, ...]) -> bool:
        """Whether a diode is inside ``sub``, at any depth (an instance ``m=`` reaches it as the diode's own)."""
        inner = [self.deck.subckts.get(t) for b in sub.body if b.startswith("x") for t in b.split("=")[0].split()]
        return any(b.startswith("d") for b in sub.body) or \
            any(s is not None and s.name not in stack + (sub.name,) and self._has_diode(s, stack + (sub.name,))
                for s in inner)

    def _slow(self, ln: str, frames: tuple[Frame, ...] = ()) -> None:
        """Every word ``ln``'s expressions read is slow (a superset of the names); inside parametrized
        instances, also everything their instance lines read, which may reach ``ln`` through their scope."""
        read = set().union(*(_words(e) for e in re.findall(r"\{(?!\$)[^}]*\}|'[^']*'", ln)))
        self.slow |= read
        if read and frames:
            self.slow |= set().union(*(_words(v) for f in frames for _, v in f.inst))


def _check_command(command: str) -> None:
    """Unsupported for a command after which the next evaluation would not start from what a ``reset``
    gives: a ``dc temp`` sweep leaves the circuit at its last temperature (a bandgap's temperature
    coefficient came out 20% off), a transient leaves its state vectors, the block's own alter or reset."""
    words = command.replace("=", " ").split()
    if not words:
        return
    if words[0] in ("tran", "alter", "altermod", "alterparam", "reset", "pss", "hb", "sens", "disto") or \
            words[0] == "dc" and any(not w[0] in "vi" for w in words[1::4]):
        raise Unsupported(f"{command!r} leaves state a reset would clear")


def _check_saves(commands: list[str]) -> None:
    """Unsupported for a ``save`` command that the next sizing's analyses would see earlier than a fresh run does:
    the block's saves outlive ``destroy all`` (a ``reset`` clears them), so a ``save v(x)`` after an ``ac`` limited
    the next sizing's first ``ac`` to ``v(x)`` too (its ``meas`` of ``v(out)`` failed). Saves before any analysis,
    outside loops, are the same at every sizing."""
    analysed, depth = False, 0
    for c in commands:
        if base_word(c) == "save" and (analysed or depth > 0):
            raise Unsupported(f"{c!r} after an analysis or in a loop: the next sizing would start with it")
        analysed |= base_word(c) in ANALYSES or base_word(c) == "run"
        depth += block_depth_change(c)


def _words(expr: str) -> set[str]:
    """Every name-like word of an expression: a superset of the parameters it reads, whatever its syntax."""
    return set(re.findall(r"[a-z_]\w*", expr))


def _path(letter: str, prefix: str, name: str) -> str:
    """ngspice's name of an expanded device: ``r.xol.rz`` inside ``xol``, ``vga`` at the top."""
    return f"{letter}.{prefix}{name}" if prefix else name


def _is_device(sub: Subckt) -> bool:
    """A PDK device wrapper: ``.param`` lines, one MOSFET, its model cards."""
    kinds = [b.split()[0] for b in sub.body]
    return kinds.count(".model") > 0 and sum(k.startswith("m") for k in kinds) == 1 and \
        all(k in (".param", ".model") or k.startswith("m") for k in kinds)


def _values(letter: str, tokens: list[str]) -> list[tuple[str, str]]:
    """The ``{expr}`` values alter can set: an R/C/L value (``{x}`` or ``c={x}``), a V/I source's ``dc`` and ``ac``
    magnitude."""
    if letter in "rcl":                        # "{x}", or the PDK's "c = {carea}" (no model, nothing else)
        value = re.fullmatch(rf"(?:{letter}\s*=\s*)?(\{{[^{{}}]*\}})", " ".join(tokens[3:]))
        found = [(_VALUE_PARAM[letter], value.group(1))] if value else []
    elif letter in "vi":                       # "dc {max(a, b)}": an expression may hold blanks
        found = [(_SOURCE_PARAM[w], v) for w, v in re.findall(r"(?<!\S)(dc|ac)\s+(\{[^{}]*\})", " ".join(tokens[3:]))]
    else:
        return []
    return [(k, v) for k, v in found if v.startswith("{") and v.endswith("}")]

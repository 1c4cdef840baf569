"""The fast path's device values per sizing as compiled Python: numparam's scopes resolved once per deck.

:class:`zoaf.fastpath.Plan` needs, per sizing, the value numparam would give every device value it sets. Which
scope each name of each expression is read from (the top level, a parametrized subcircuit instance, a PDK
device's wrapper) and the values of the fixed ``.param``s are the same for every sizing, so they are resolved
here once, into one function of straight-line code: the same expression trees (:func:`zoaf.spexpr.tree`) on the
same doubles in the same order, hence bit for bit the values :func:`zoaf.spexpr.evaluate` gives in a scope chain
(which cost ~1 ms per sizing on the sky130 folded cascode: 390 expressions, each a scope dict and an ``eval``).
A model bin's per-instance card is compiled the first time a device uses that bin. A device value equal to the
last sizing's keeps its spelling for ``alter`` (:func:`zoaf.ngnumbers.device_value`) instead of recomputing it.
"""
from __future__ import annotations

import ast
import copy
import math
from collections import ChainMap
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from . import units
from .deckparse import Subckt, assignments
from .errors import InputError
from .ngnumbers import device_value
from .spexpr import RANDOM, Unsupported, evaluate, function_table, names, tree

__all__ = ["Bin", "Frame", "Leaf", "Program", "State"]

#: A geometry this close (relative) to a bin edge is left to ``reset``: ngspice's own comparison decides.
EDGE = 1e-9
#: What a device value's computation may raise (as :func:`zoaf.spexpr.evaluate` turns into Unsupported).
_FAILS = (ArithmeticError, ValueError, TypeError)

Key = tuple[str, str, str]      # (alter|altermod, device or model, parameter)
Scope = Mapping[str, ast.expr]  # name -> its value in the generated code: a local variable or a constant


@dataclass
class Bin:
    name: str
    lmin: float
    lmax: float
    wmin: float
    wmax: float
    params: dict[str, str]          # model parameters given as {expressions} of the instance's parameters


@dataclass(frozen=True)
class Frame:
    """A parametrized subcircuit instance the device is inside (``xlg`` of ``spiral n={lg_n} ...``)."""

    xpath: str                      # its instance path: xlg, xol.xb
    sub: Subckt
    inst: tuple[tuple[str, str], ...]   # the instance line's name={expr} (caller's scope)


@dataclass
class Leaf:
    """A device whose values the plan sets: an M in a PDK subcircuit, a user-level M, or an R/C/L/V/I value."""

    path: str                       # ngspice's expanded name: m.xol.xm1.msky130_fd_pr__nfet_01v8, r.xol.rz
    inst: list[tuple[str, str]]     # the instance line's name={expr} (caller's scope)
    sub: Subckt | None = None       # the PDK subcircuit the instance expands (None: the line is the device)
    device: list[tuple[str, str]] = field(default_factory=list)   # device parameters (subcircuit scope)
    bins: list[Bin] = field(default_factory=list)
    xpath: str = ""                 # the subcircuit instance path (model copies are named <xpath>:<model>)
    frames: tuple[Frame, ...] = ()  # the parametrized subcircuit instances it is inside, outermost first


@dataclass
class State:
    bins: dict[str, str]
    values: dict[Key, tuple[float, str]]    # -> (value, its spelling for alter)
    scope: dict[str, float]                 # the top-level .params that follow the design (the rest: base)


@dataclass
class _Layout:
    """Where one leaf's values are in the compiled function's output, and its bins' compiled cards."""

    leaf: Leaf
    keys: list[Key]                 # its values' alter keys, in the order the values come
    start: int
    stop: int
    at: dict[str, int] = field(default_factory=dict)     # a binned device's parameter -> index in the output
    export: int = -1                # index of the values its cards read in the function's exports
    read: tuple[str, ...] = ()      # the names those are
    cards: dict[str, tuple[list[Key], Callable[..., tuple[float, ...]]] | Unsupported] = field(default_factory=dict)
    by_name: dict[str, Bin] = field(default_factory=dict)    # its bins by name (the first of a name)

    def __post_init__(self) -> None:
        for b in self.leaf.bins:
            self.by_name.setdefault(b.name, b)


class Program:
    """A deck's device values as a function of a sizing's ``.param`` texts (:meth:`state`)."""

    def __init__(self, leaves: list[Leaf], dependent: list[tuple[str, str]], base: dict[str, float],
                 design: set[str], scale: float) -> None:
        self.base, self.design, self.scale = base, frozenset(design), scale
        self.layouts: list[_Layout] = []
        compiler = _Compiler()
        self._main = compiler.main(self, leaves, dependent)
        self._globals = compiler.globals
        self._last: tuple[tuple[float, ...], list[tuple[float, str]]] = ((), [])

    @property
    def leaves(self) -> list[Leaf]:
        return [lay.leaf for lay in self.layouts]

    def state(self, params: Mapping[str, str], now: Mapping[str, str]) -> State:
        """The values at these ``.param`` texts; ``now``: the bins in use (tried first). Unsupported where the
        plan cannot follow (a value it cannot compute, no bin or a bin edge)."""
        if params.keys() != self.design:
            raise Unsupported("a sizing of other .params than the plan's")
        scope: dict[str, float] = {}
        try:
            raw, exports = self._main(params, scope)
        except _FAILS as e:
            raise Unsupported(f"a device value: {e}") from None
        devices = self._devices(raw)
        state = State({}, {}, scope)
        for lay in self.layouts:
            state.values.update(zip(lay.keys, devices[lay.start:lay.stop]))
            if lay.leaf.bins:
                b = self._bin(lay, devices, now.get(lay.leaf.path))
                state.bins[lay.leaf.path] = b.name
                keys, card = self._card(lay, b)
                try:
                    values = card(*exports[lay.export])
                except _FAILS as e:
                    raise Unsupported(f"{lay.leaf.path} {b.name}: {e}") from None
                state.values.update(zip(keys, map(_device, values)))
        return state

    def _devices(self, raw: tuple[float, ...]) -> list[tuple[float, str]]:
        """Each value as the device reads it, and its spelling: the last sizing's where the value is the same."""
        last_raw, last = self._last
        if len(last_raw) == len(raw):
            out = [d if r == q and (r or repr(r) == repr(q)) else _device(r) for r, q, d in zip(raw, last_raw, last)]
        else:
            out = [_device(r) for r in raw]
        self._last = (raw, out)
        return out

    def _bin(self, lay: _Layout, devices: list[tuple[float, str]], now: str | None) -> Bin:
        """The bin ngspice would pick (``lmin <= l < lmax``, ``wmin <= w/nf < wmax``), the one in use tried first."""
        at = lay.at
        length = devices[at["l"]][0] * self.scale
        width = devices[at["w"]][0] * self.scale / max(devices[at["nf"]][0] if "nf" in at else 1.0, 1.0)
        first = lay.by_name.get(now) if now is not None else None
        if first is not None and first.lmin <= length < first.lmax and first.wmin <= width < first.wmax:
            return _off_edges(first, length, width, lay.leaf.path)
        for b in lay.leaf.bins:
            if b.lmin <= length < b.lmax and b.wmin <= width < b.wmax:
                return _off_edges(b, length, width, lay.leaf.path)
        raise Unsupported(f"{lay.leaf.path}: no bin for l={length:g} w/nf={width:g}")

    def _card(self, lay: _Layout, b: Bin) -> tuple[list[Key], Callable[..., tuple[float, ...]]]:
        """The keys of a bin's per-instance card values and their function of the leaf's exported names."""
        got = lay.cards.get(b.name)
        if got is None:
            scope = {n: ast.Name(f"a{i}", ast.Load()) for i, n in enumerate(lay.read)}
            try:
                result = ast.Tuple([_expression(v, scope) for v in b.params.values()], ast.Load())
                fn = _function(self._globals, [f"a{i}" for i in range(len(lay.read))], [], result)
                got = ([("altermod", f"{lay.leaf.xpath}:{b.name}", k) for k in b.params], fn)
            except Unsupported as e:
                got = e
            lay.cards[b.name] = got
        if isinstance(got, Unsupported):
            raise got
        return got


class _Compiler:
    """Writes the sizing's function: ``main(params, scope) -> (device values, per binned leaf its names' values)``,
    filling ``scope`` with the top-level ``.param``s that follow the design."""

    def __init__(self) -> None:
        self.body: list[ast.stmt] = []
        self.outputs: list[ast.expr] = []
        self.exports: list[ast.expr] = []
        self.count = 0
        self.globals: dict[str, object] = {}

    def main(self, program: Program, leaves: list[Leaf], dependent: list[tuple[str, str]]
             ) -> Callable[[Mapping[str, str], dict[str, float]], tuple[tuple[float, ...], tuple[tuple, ...]]]:
        base = program.base
        top: dict[str, ast.expr] = {k: ast.Constant(v) for k, v in base.items()}
        for name, expr in dependent:
            if name in program.design:         # a sizing's value: a number read as numparam reads it
                node = self._assign(self._sized(name, expr, top))
            else:
                node = self._assign(_expression(expr, top))
            self.body.append(ast.Assign([ast.Subscript(ast.Name("scope", ast.Load()), ast.Constant(name),
                                                       ast.Store())], node))
            top[name] = node
        frames: dict[str, Scope] = {}
        for leaf in leaves:
            program.layouts.append(self._leaf(leaf, self._frame(leaf.frames, top, frames)))
        draws = {f"r{c}_{f}": fn for c in (0, 1) for f, fn in function_table(float(c)).items() if f in RANDOM}
        self.globals = {"__builtins__": {}, "float": float, "_same": _same,
                        "_number": lambda text, scope: _number(text, scope, base), **function_table(0.0), **draws}
        result = ast.Tuple([ast.Tuple(self.outputs, ast.Load()), ast.Tuple(self.exports, ast.Load())], ast.Load())
        return _function(self.globals, ["params", "scope"], self.body, result)

    @staticmethod
    def _sized(name: str, expr: str, top: Scope) -> ast.expr:
        """A design ``.param``'s value from the sizing's text (:func:`_number`); where the deck gives it as an
        expression (the LNA's ``lg_dout={lg_din + ...}``) and the sizing keeps that text, the expression compiled."""
        text = ast.Subscript(ast.Name("params", ast.Load()), ast.Constant(name), ast.Load())
        read = _call("_number", text, ast.Name("scope", ast.Load()))
        try:
            units.parse(expr, numparam=True)
            return read                        # a number: read per sizing
        except InputError:
            pass
        try:
            deck = _expression(expr, top)
        except Unsupported:
            return read                        # as the sizing's text is: it may be one evaluated later
        return ast.IfExp(ast.Compare(copy.deepcopy(text), [ast.Eq()], [ast.Constant(expr)]), deck, read)

    def _assign(self, value: ast.expr) -> ast.Name:
        name = f"t{self.count}"
        self.count += 1
        self.body.append(ast.Assign([ast.Name(name, ast.Store())], value))
        return ast.Name(name, ast.Load())

    def _value(self, text: str, scope: Scope) -> ast.Name:
        return self._assign(_expression(text, scope))

    def _frame(self, frames: tuple[Frame, ...], top: Scope, done: dict[str, Scope]) -> Scope:
        """Numparam's scope inside nested parametrized instances (each computed once)."""
        if not frames:
            return top
        inner = frames[-1]
        if inner.xpath not in done:
            outer = self._frame(frames[:-1], top, done)
            done[inner.xpath] = self._subckt(inner.sub, self._instance(inner.sub, inner.inst, outer), outer)
        return done[inner.xpath]

    def _instance(self, sub: Subckt, inst: Sequence[tuple[str, str]], outer: Scope) -> dict[str, ast.expr]:
        """An instance line's values as numparam reads them: in the order the subcircuit declares them (its header,
        then its body's ``.param``s, as a PDK wrapper does), each inside the new instance, where those declared before
        it hold the line's values, whatever the order the line writes them in (``w=5 nf=4 ad={w*10+nf}`` is 54 at a
        top-level ``w=2 nf=3``: Xschem's sky130 lines compute ``ad``/``nrd`` from their own ``W``/``nf`` so), while a
        value's own name and those the line gives after it are the caller's (declared ``p q``: ``q={q+0.5}
        p={sqrt(q*p+1)}`` reads the caller's q and p). A value that reads a parameter the line leaves to its default,
        a later one the caller lacks, or a name the line gives that the subcircuit does not declare is Unsupported
        (``reset``)."""
        given = dict(inst)
        order: dict[str, int] = {}
        for i, (k, _) in enumerate(sub_params(sub)):
            order.setdefault(k, i)
        done: dict[str, ast.expr] = {}

        def value(key: str) -> ast.expr:
            if key not in done:
                local: dict[str, ast.expr] = {}
                for n in names(given[key]) - {key}:
                    if n in given and n in order and order[n] < order.get(key, -1):
                        local[n] = value(n)
                    elif n in given and (n not in order or n not in outer):
                        raise Unsupported(f"{sub.name}: {key}={given[key]} reads {n}, given later or no parameter")
                    elif n in order and n not in given:
                        raise Unsupported(f"{sub.name}: {key}={given[key]} reads the default of {n}")
                done[key] = self._value(given[key], ChainMap(local, outer))
            return done[key]

        return {k: value(k) for k in given}

    def _subckt(self, sub: Subckt, inst: dict[str, ast.expr], outer: Scope) -> Scope:
        """Numparam's scope inside one instance: the caller's, then header defaults and body ``.param``s (the
        instance's values, passed on at full precision, override both, as in ngspice's hsa mode)."""
        local: ChainMap[str, ast.expr] = ChainMap({}, outer)
        for k, v in sub_params(sub):
            local[k] = inst[k] if k in inst else self._value(v, local)
        return local

    def _leaf(self, leaf: Leaf, scope: Scope) -> _Layout:
        start = len(self.outputs)
        if leaf.sub is None:                  # the line is the device: an unbinned M, an R/C/L, a source
            self.outputs += [self._value(v, scope) for _, v in leaf.inst]
            return _Layout(leaf, [("alter", leaf.path, k) for k, _ in leaf.inst], start, len(self.outputs))
        local = self._subckt(leaf.sub, self._instance(leaf.sub, leaf.inst, scope), scope)
        self.outputs += [self._value(v, local) for _, v in leaf.device]
        at = {k: start + i for i, (k, _) in enumerate(leaf.device)}     # a parameter given twice: the last
        if "l" not in at or "w" not in at:
            raise Unsupported(f"{leaf.path}: no l or w to choose a bin by")
        read = set()
        for b in leaf.bins:
            for v in b.params.values():
                try:
                    read |= names(v)
                except Unsupported:
                    pass                      # raised if the bin is ever used (Program._card)
        read = tuple(sorted(n for n in read if n in local))
        self.exports.append(ast.Tuple([copy.copy(local[n]) for n in read], ast.Load()))
        return _Layout(leaf, [("alter", leaf.path, k) for k, _ in leaf.device], start, len(self.outputs), at,
                       len(self.exports) - 1, read)


def _expression(text: str, scope: Scope) -> ast.expr:
    """``float(<the expression>)`` with each name replaced by its value's node; for one that calls a random
    function, its values at draws 0 and 1, which must be the same (:func:`zoaf.spexpr.evaluate`)."""
    body, read, random = tree(text)
    missing = sorted(read - scope.keys())
    if missing:
        raise Unsupported(f"{text!r}: unknown {missing[0]}")
    if not random:
        return _call("float", _Rewrite(scope, "").visit(copy.deepcopy(body)))
    draws = [_call("float", _Rewrite(scope, f"r{c}_").visit(copy.deepcopy(body))) for c in (0, 1)]
    return _call("_same", *draws, ast.Constant(text))


class _Rewrite(ast.NodeTransformer):
    """Parameter names to their values' nodes; random functions to the draw's (``r0_agauss``)."""

    def __init__(self, scope: Scope, prefix: str) -> None:
        self.scope, self.prefix = scope, prefix

    def visit_Name(self, node: ast.Name) -> ast.expr:
        if node.id.startswith("p_"):
            return copy.copy(self.scope[node.id[2:]])
        return ast.Name(self.prefix + node.id if node.id in RANDOM else node.id, ast.Load())


def _call(name: str, *args: ast.expr) -> ast.Call:
    return ast.Call(ast.Name(name, ast.Load()), list(args), [])


def _function(globals_: dict[str, object], args: list[str], body: list[ast.stmt], result: ast.expr) -> Callable:
    """A compiled ``def f(<args>): <body>; return <result>`` over ``globals_``."""
    module = ast.parse(f"def f({', '.join(args)}):\n    pass")
    module.body[0].body = [*body, ast.Return(result)]
    namespace: dict[str, object] = {}
    exec(compile(ast.fix_missing_locations(module), "<fastpath plan>", "exec"), globals_, namespace)  # noqa: S102
    return namespace["f"]


def _off_edges(b: Bin, length: float, width: float, path: str) -> Bin:
    """``b``, unless the geometry is within :data:`EDGE` of one of its edges."""
    if abs(length - b.lmin) <= EDGE * abs(b.lmin) or abs(length - b.lmax) <= EDGE * abs(b.lmax) or \
            abs(width - b.wmin) <= EDGE * abs(b.wmin) or abs(width - b.wmax) <= EDGE * abs(b.wmax):
        raise Unsupported(f"{path}: on a bin edge")
    return b


def _same(a: float, b: float, text: str) -> float:
    if a != b:
        raise Unsupported(f"{text!r} depends on a random function")
    return a


def _number(text: str, scope: Mapping[str, float], base: Mapping[str, float]) -> float:
    """A sizing's ``.param`` value: a number read as numparam reads it, else an expression of the ``.param``s so
    far (``scope``: those that follow the design; ``base``: the fixed ones)."""
    try:
        return _numparam(text)
    except InputError:
        return evaluate(text, ChainMap(scope, base))


@lru_cache(maxsize=4096)
def _numparam(text: str) -> float:
    return units.parse(text, numparam=True)


def _device(v: float) -> tuple[float, str]:
    """A value as the device reads it from its expanded line, and its spelling for ``alter``; Unsupported where
    ngspice would get no number."""
    if not math.isfinite(v):
        raise Unsupported(f"a device value {v}")
    return device_value(v)


@lru_cache(maxsize=64)
def sub_params(sub: Subckt) -> tuple[tuple[str, str], ...]:
    """A subcircuit's header parameters and body ``.param`` assignments, in order."""
    body = [a for b in sub.body if b.startswith(".param") for a in assignments(b[len(".param"):])]
    return tuple(sub.params) + tuple(body)

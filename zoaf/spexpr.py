"""Evaluate ngspice ``.param`` expressions (``{max(1, floor(w1/wfmin + 1e-6))}``) in Python.

The fast path (:mod:`zoaf.fastpath`) computes the values ngspice's numparam would give a device after a
``reset``, so that it can set them with ``alter`` instead of re-parsing the deck. Only what it can evaluate
exactly is accepted: SPICE numbers with suffixes, ``+ - * / ^ **``, comparisons, ``&& || !``, ternaries ``c ? a : b``
and the functions below, with numparam's meanings under ``ngbehavior=hsa`` (zoaf's; docs/ngspice.md); an unknown name
or construct raises :class:`Unsupported` and the caller falls back to ``reset``.
A value that depends on a random function (``agauss``, ...) is Unsupported: it is evaluated with them at 0 and
at 1, and must come out the same (Monte Carlo switches at 0 multiply them away).
"""
from __future__ import annotations

import ast
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache

from . import units

__all__ = ["RANDOM", "Function", "Unsupported", "evaluate", "expand", "function_table", "functions", "names",
           "tree"]


#: What an expression nested thousands deep raises in Python's parser, compiler or evaluator.
_TOO_DEEP = (RecursionError, MemoryError)


class Unsupported(ValueError):
    """An expression the fast path does not evaluate (ngspice must re-parse the deck instead)."""


def _nint(x: float) -> float:
    """numparam's ``nint``: to the nearest integer, halves to even (``nint(2.5)`` is 2), as C's ``rint``."""
    return float(round(x))


def _round(y: float) -> float:
    """C's ``round``: halves away from zero (``round(2.5)`` is 3), where Python's rounds them to even."""
    t = math.trunc(y)
    return float(t + math.copysign(1, y) if abs(y - t) >= 0.5 else t)


def _power(x: float, y: float) -> float:
    """numparam's ``x ^ y`` and ``x ** y`` under ``ngbehavior=hsa``: a negative base to the rounded exponent
    (``(-2)^2.5`` is -8), a zero base 0 whatever the exponent (``0^0`` is 0), else C's ``pow``."""
    if x < 0:
        return math.pow(x, _round(y))
    return 0.0 if x == 0 else math.pow(x, y)


def _pwr(x: float, y: float) -> float:
    """numparam's ``pwr(x, y)``: ``|x|`` to the ``y`` (``pwr(-2, 3)`` is 8)."""
    return math.pow(abs(x), y)


def _if(c: float, a: float, b: float) -> float:
    """``c ? a : b``, both branches computed: one that fails (``1/0``, ``pow(-2, 0.5)``) leaves it to ``reset``."""
    return a if c != 0 else b


def _two(f):
    """``min``/``max`` of numparam take two arguments (a third is not an error there, and not what Python does)."""
    return lambda a, b: f(a, b)


_FUNCTIONS = {"max": _two(max), "min": _two(min), "abs": abs, "sqrt": math.sqrt, "exp": math.exp, "ln": math.log,
              "log": math.log, "log10": math.log10, "floor": math.floor, "ceil": math.ceil, "nint": _nint,
              "int": math.trunc, "pow": math.pow, "pwr": _pwr, "sin": math.sin, "cos": math.cos, "tan": math.tan,
              "atan": math.atan, "sgn": lambda x: float((x > 0) - (x < 0)),
              # the operators the tree calls (see _Numparam): && || ! as 1/0, ^ under hsa, ternaries
              "_and": lambda a, b: float(a != 0 and b != 0), "_or": lambda a, b: float(a != 0 or b != 0),
              "_not": lambda a: float(a == 0), "_power": _power, "_if": _if,
              }
_RANDOM = ("agauss", "gauss", "aunif", "unif", "limit")
#: The random functions (their value is 0 under the switches that turn Monte Carlo off).
RANDOM = frozenset(_RANDOM)
_NODES = (ast.Expression, ast.BinOp, ast.UnaryOp, ast.Call, ast.Name, ast.Load, ast.Constant, ast.Add,
          ast.Sub, ast.Mult, ast.Div, ast.Pow, ast.USub, ast.UAdd, ast.Compare, ast.Lt, ast.Gt, ast.LtE,
          ast.GtE, ast.Eq, ast.NotEq, ast.BoolOp, ast.And, ast.Or, ast.Invert)
_NAME = re.compile(r"(?<![\w.])([a-z_]\w*)(?!\w|\s*\()")
_NUMBER = re.compile(r"(?<![\w.])((?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?)(meg|mil|[tgkmunpfa])?[a-z]*", re.I)


#: The longest expression evaluated here (sky130's longest is 287 characters); a longer one is left to ``reset``.
#: Reading a parenthesis or a ternary reads the rest of its level: 20,000 chained ternaries (80 kB, which
#: ``ngspice -b`` evaluates in 0.2 s) held a worker 170 s per sizing, a sum of a MB nested 200 deep (6.6 s) past 40.
MAX_EXPRESSION = 4096


def _python(text: str) -> str:
    """The expression as Python source: numbers with suffixes spelled out, ``^`` as ``**``, names lower-cased and
    prefixed, ``&& || !`` as ``and or ~`` (:class:`_Numparam` makes them numparam's), ternaries as ``_if`` calls."""
    text = text.strip()
    for a, b in ("{}", "''", '""'):
        if len(text) > 1 and text[0] == a and text[-1] == b:
            text = text[1:-1].strip()
    if len(text) > MAX_EXPRESSION:
        raise Unsupported(f"an expression of more than {MAX_EXPRESSION} characters: {text[:40]!r}...")
    if any(c in text for c in "'\"[]~%\\") or re.search(r"(?<!&)&(?!&)|(?<!\|)\|(?!\|)|<>|\b_\w*\s*\(", text):
        raise Unsupported(f"construct not evaluated here: {text!r}")
    text = _NUMBER.sub(lambda m: repr(units.parse(m.group(0), numparam=True)), text).replace("^", "**").lower()
    text = _NAME.sub(r"p_\1", text)          # parameter names may be Python keywords (sky130's "as")
    return _groups(re.sub(r"!(?!=)", "~", text).replace("&&", " and ").replace("||", " or "))


def _groups(text: str) -> str:
    """``text`` with its ternaries as calls, those inside each parenthesis and each argument first."""
    out, i = [], 0
    while i < len(text):
        if text[i] != "(":
            out.append(text[i])
            i += 1
            continue
        depth, j, args, start = 0, i, [], i + 1
        for j in range(i, len(text)):
            depth += (text[j] == "(") - (text[j] == ")")
            if depth == 1 and text[j] == ",":
                args.append(text[start:j])
                start = j + 1
            if depth == 0:
                break
        if depth:
            raise Unsupported(f"unbalanced parentheses: {text!r}")
        out.append("(" + ",".join(map(_groups, args + [text[start:j]])) + ")")
        i = j + 1
    return _ternary("".join(out))


#: A ternary's marks, found by the regex engine (a Python loop per character took seconds over a long level).
_TERNARY_MARKS = re.compile(r"[?:]")


def _ternary(text: str) -> str:
    """``c ? a : b`` (no parenthesis left at this level) as ``_if(c, a, b)``: ``?`` and ``:`` bind loosest in
    numparam and nest to the right (``0 ? 1 : x < 1 ? 3 : 4`` is 4 at x=2, ``x > 1 ? 5 : 6 + 100`` is 5)."""
    if "?" not in text:
        if ":" in text:
            raise Unsupported(f"a ':' without '?': {text[:40]!r}")
        return text
    q = text.index("?")
    depth = 0
    for mark in _TERNARY_MARKS.finditer(text, q):
        depth += 1 if mark.group() == "?" else -1
        if depth == 0:
            j = mark.start()
            return f"_if({_ternary(text[:q])}, {_ternary(text[q + 1:j])}, {_ternary(text[j + 1:])})"
    raise Unsupported(f"a '?' without ':': {text[:40]!r}")


@lru_cache(maxsize=4096)
def _code(text: str):
    """(compiled expression, names it reads, whether it calls a random function)."""
    body, read, random = tree(text)
    try:
        return compile(ast.Expression(body), "<expr>", "eval"), read, random
    except _TOO_DEEP as e:
        raise Unsupported(f"{text[:40]!r}...: {type(e).__name__}") from None


@lru_cache(maxsize=4096)
def tree(text: str) -> tuple[ast.expr, frozenset[str], bool]:
    """The checked expression as a Python tree (a parameter ``x`` is the name ``p_x``; functions by their
    numparam names, see :func:`function_table`), the parameter names it reads, whether it calls a random
    function. Shared, never to be modified: :mod:`zoaf.plancode` copies what it rewrites."""
    checked = _tree(text)
    calls = {n.func.id for n in ast.walk(checked) if isinstance(n, ast.Call)}
    read = frozenset(n.id[2:] for n in ast.walk(checked) if isinstance(n, ast.Name) and n.id.startswith("p_"))
    return checked.body, read, bool(calls & set(_RANDOM))


class _Numparam(ast.NodeTransformer):
    """The checked tree with numparam's operators: ``a < b < c`` as ``(a < b) < c`` (numparam compares left to right,
    ``==`` and ``<`` alike: ``z > x > 1.5`` is 0 at z=3, x=2, ``x == 2 == 1`` is 1, where Python chains), ``&&``
    ``||`` ``!`` as calls giving 1 or 0 (both operands computed, as numparam does), ``^`` as :func:`_power`."""

    def visit_Compare(self, node: ast.Compare) -> ast.expr:
        self.generic_visit(node)
        left: ast.expr = node.left
        for op, right in zip(node.ops, node.comparators):
            left = ast.Compare(left, [op], [right])
        return left

    def visit_BoolOp(self, node: ast.BoolOp) -> ast.expr:
        self.generic_visit(node)
        left = node.values[0]
        for right in node.values[1:]:
            left = _call("_and" if isinstance(node.op, ast.And) else "_or", left, right)
        return left

    def visit_UnaryOp(self, node: ast.UnaryOp) -> ast.expr:
        self.generic_visit(node)
        return _call("_not", node.operand) if isinstance(node.op, ast.Invert) else node

    def visit_BinOp(self, node: ast.BinOp) -> ast.expr:
        self.generic_visit(node)
        return _call("_power", node.left, node.right) if isinstance(node.op, ast.Pow) else node


def _call(name: str, *args: ast.expr) -> ast.Call:
    return ast.Call(ast.Name(name, ast.Load()), list(args), [])


def _tree(text: str) -> ast.Expression:
    try:
        tree = ast.parse(_python(text), mode="eval")
    except (SyntaxError, ValueError, ArithmeticError) as e:
        raise Unsupported(f"{text!r}: {e}") from None
    except _TOO_DEEP as e:   # 2,000 nested signs: Python's parser recurses where numparam does not (reset reads it)
        raise Unsupported(f"{text[:40]!r}...: {type(e).__name__}") from None
    for node in ast.walk(tree):
        _check(node, text)
    try:
        return ast.fix_missing_locations(_Numparam().visit(tree))
    except _TOO_DEEP as e:
        raise Unsupported(f"{text[:40]!r}...: {type(e).__name__}") from None


def _check(node: ast.AST, text: str) -> None:
    """Unsupported for a node whose numparam value may differ from what :class:`_Numparam` makes of it."""
    if not isinstance(node, _NODES):
        raise Unsupported(f"{text!r}: {type(node).__name__} not evaluated here")
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow) and isinstance(node.right, ast.BinOp) \
            and isinstance(node.right.op, ast.Pow):
        raise Unsupported(f"{text!r}: a ^ b ^ c groups to the left in numparam, to the right here")
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Invert) and isinstance(node.operand, ast.BinOp):
        raise Unsupported(f"{text!r}: numparam's '!' takes the atom (!x^2 is (!x)^2), Python's the power")
    after = {ast.BinOp: lambda n: [n.right], ast.Compare: lambda n: n.comparators, ast.BoolOp: lambda n: n.values[1:],
             ast.Call: lambda n: n.args[1:] if isinstance(n.func, ast.Name) and n.func.id == "_if" else []}
    if any(map(_signed_operand, after.get(type(node), lambda n: [])(node))):
        raise Unsupported(f"{text!r}: a signed operand after an operator (numparam reads 'y*-x+1' as 'y*x-1', "
                          "'y*-x^2' as 'y*x^(-2)')")
    if isinstance(node, ast.Call) and (not isinstance(node.func, ast.Name)
                                       or node.func.id not in _FUNCTIONS and node.func.id not in _RANDOM):
        raise Unsupported(f"{text!r}: unknown function")


def _signed_operand(node: ast.expr) -> bool:
    """Whether ``node``, an operand after an operator, is signed otherwise than a plain number (``-2``): numparam
    reads one otherwise than Python (measured in ngspice 39: ``y*-x+1`` is 5 at x=2, y=3, ``y+-x+1`` 4, ``3*-x^2``
    is ``3*x^-2``, 0.75, ``3*-2^2`` is 12; ``y*-x`` and ``y*-(x)`` fail to load), where the fast path set Python's
    value and a ``reset`` numparam's. The tree has lost the parentheses: ``3*(-x)`` goes to ``reset`` too."""
    if not isinstance(node, ast.UnaryOp) or isinstance(node.op, ast.Invert):
        return False                          # '!' is numparam's unary operator: 'y + !x' reads as Python reads it
    while isinstance(node, ast.UnaryOp):
        node = node.operand
    return not isinstance(node, ast.Constant)


def names(text: str) -> frozenset[str]:
    """The parameter names an expression reads (lower-case)."""
    return _code(text)[1]


def evaluate(text: str, values: Mapping[str, float]) -> float:
    """The expression's value with these parameter values; Unsupported for what is not evaluated here."""
    code, read, random = _code(text)
    try:
        scope = {f"p_{k}": values[k] for k in read}
    except KeyError as e:
        raise Unsupported(f"{text!r}: unknown {e.args[0]}") from None
    if not random:
        return _run(code, text, _GLOBALS[0.0], scope)
    got = {_run(code, text, _GLOBALS[c], scope) for c in (0.0, 1.0)}
    if len(got) != 1:
        raise Unsupported(f"{text!r} depends on a random function")
    return got.pop()


def _const(c: float):
    return lambda *_: c


def function_table(draw: float) -> dict[str, object]:
    """The functions an expression may call, by name, with the random ones returning ``draw``: a value that
    depends on them is evaluated at draws 0 and 1, and must come out the same."""
    return {**_FUNCTIONS, **{f: _const(draw) for f in _RANDOM}}


#: The functions, with the random ones returning 0 or 1.
_GLOBALS = {c: {"__builtins__": {}, **function_table(c)} for c in (0.0, 1.0)}


def _run(code, text: str, functions: dict, scope: dict) -> float:
    try:
        return float(eval(code, functions, scope))  # noqa: S307 - a checked tree, no builtins
    except (ArithmeticError, ValueError, TypeError, *_TOO_DEEP) as e:
        raise Unsupported(f"{text!r}: {e}") from None


# ---------------------------------------------------------------------- .func, expanded as ngspice expands it
@dataclass(frozen=True)
class Function:
    """A deck's ``.func name(args) {body}``."""

    args: tuple[str, ...]
    body: str


_FUNC = re.compile(r"\.func\s+([a-z_]\w*)\s*\(([^()]*)\)\s*=?\s*(.+)$", re.I)
_CALL = re.compile(r"(?<![\w.])([a-z_]\w*)\s*\(", re.I)
#: Deeper nesting of calls than this is taken for recursion (which crashes ngspice 39: it never loads such a deck).
_DEPTH = 20


def functions(lines: Iterable[str]) -> dict[str, Function]:
    """The top-level ``.func`` definitions of a deck's lines. One inside a ``.subckt`` is local to it in ngspice: left
    unexpanded (a value calling it stays Unsupported), and Unsupported where it shares a top-level one's name."""
    out: dict[str, Function] = {}
    local: set[str] = set()
    depth = 0
    for ln in lines:
        word = ln.split(maxsplit=1)[0].lower() if ln.strip() else ""
        depth += (word == ".subckt") - (word == ".ends")
        if word != ".func":
            continue
        m = _FUNC.match(ln.strip())
        if not m:
            raise Unsupported(f"a .func not read here: {ln.strip()[:60]!r}")
        if depth:
            local.add(m.group(1).lower())
            continue
        body = m.group(3).strip()
        if len(body) > 1 and (body[0], body[-1]) in (("{", "}"), ("'", "'")):
            body = body[1:-1]
        out[m.group(1).lower()] = Function(tuple(a.strip().lower() for a in m.group(2).split(",")), body)
    if local & out.keys():
        raise Unsupported(f"a subcircuit's .func named as a top-level one: {sorted(local & out.keys())[0]}")
    return out


def expand(text: str, funcs: Mapping[str, Function], depth: int = 0) -> str:
    """``text`` with each call of a ``.func`` replaced by its body as ngspice does before numparam reads the deck:
    the body in parentheses, each argument in parentheses (``fm(x+1)`` of ``{a*2}`` is 6 at x=2, ``fs(x)^2`` of
    ``{a+1}`` is 9), the body's other names read where the call is (a subcircuit's own ``k``)."""
    out, i = [], 0
    for m in _CALL.finditer(text):
        f = funcs.get(m.group(1).lower())
        if f is None or m.start() < i:
            continue
        if depth > _DEPTH:
            raise Unsupported(f"a .func nested deeper than {_DEPTH} calls (recursive?): {text[:60]!r}")
        args, end = _arguments(text, m.end())
        if len(args) != len(f.args):
            raise Unsupported(f"{m.group(1)}: {len(args)} arguments for {len(f.args)}")
        values = {a: "(" + expand(v, funcs, depth + 1) + ")" for a, v in zip(f.args, args)}
        body = re.sub(r"(?<![\w.])[a-z_]\w*(?!\w)", lambda w: values.get(w.group(0).lower(), w.group(0)), f.body,
                      flags=re.I)
        call = "(" + expand(body, funcs, depth + 1) + ")"
        if len(call) > MAX_EXPRESSION:   # a body that calls the one below twice doubles at each level: 2^16 leaves
            raise Unsupported(f"{m.group(1)}(...) expands past {MAX_EXPRESSION} characters: {text[:60]!r}")
        out += [text[i:m.start()], call]
        i = end
    return "".join(out) + text[i:]


def _arguments(text: str, start: int) -> tuple[list[str], int]:
    """The comma-separated arguments of a call whose ``(`` ends at ``start``, and the index after its ``)``."""
    depth, args, begin = 1, [], start
    for j in range(start, len(text)):
        depth += (text[j] == "(") - (text[j] == ")")
        if depth == 1 and text[j] == ",":
            args.append(text[begin:j])
            begin = j + 1
        elif depth == 0:
            return args + [text[begin:j]], j + 1
    raise Unsupported(f"unbalanced parentheses: {text[:60]!r}")

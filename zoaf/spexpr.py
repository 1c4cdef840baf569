"""Evaluate ngspice ``.param`` expressions (``{max(1, floor(w1/wfmin + 1e-6))}``) in Python.

The fast path (:mod:`zoaf.fastpath`) computes the values ngspice's numparam would give a device after a
``reset``, so that it can set them with ``alter`` instead of re-parsing the deck. Only what it can evaluate
exactly is accepted: SPICE numbers with suffixes, ``+ - * / ^ **``, comparisons and the functions below; an
unknown name or construct raises :class:`Unsupported` and the caller falls back to ``reset``.
A value that depends on a random function (``agauss``, ...) is Unsupported: it is evaluated with them at 0 and
at 1, and must come out the same (Monte Carlo switches at 0 multiply them away).
"""
from __future__ import annotations

import ast
import math
import re
from collections.abc import Mapping
from functools import lru_cache

from . import units

__all__ = ["RANDOM", "Unsupported", "evaluate", "function_table", "names", "tree"]


#: What an expression nested thousands deep raises in Python's parser, compiler or evaluator.
_TOO_DEEP = (RecursionError, MemoryError)


class Unsupported(ValueError):
    """An expression the fast path does not evaluate (ngspice must re-parse the deck instead)."""


def _nint(x: float) -> float:
    """numparam's ``nint``: to the nearest integer, halves to even (``nint(2.5)`` is 2), as C's ``rint``."""
    return float(round(x))


def _two(f):
    """``min``/``max`` of numparam take two arguments (a third is not an error there, and not what Python does)."""
    return lambda a, b: f(a, b)


_FUNCTIONS = {"max": _two(max), "min": _two(min), "abs": abs, "sqrt": math.sqrt, "exp": math.exp, "ln": math.log,
              "log": math.log, "log10": math.log10, "floor": math.floor, "ceil": math.ceil, "nint": _nint,
              "int": math.trunc, "pow": math.pow, "sin": math.sin, "cos": math.cos, "tan": math.tan,
              "atan": math.atan, "sgn": lambda x: float((x > 0) - (x < 0)),
              }
_RANDOM = ("agauss", "gauss", "aunif", "unif", "limit")
#: The random functions (their value is 0 under the switches that turn Monte Carlo off).
RANDOM = frozenset(_RANDOM)
_NODES = (ast.Expression, ast.BinOp, ast.UnaryOp, ast.Call, ast.Name, ast.Load, ast.Constant, ast.Add,
          ast.Sub, ast.Mult, ast.Div, ast.Pow, ast.USub, ast.UAdd, ast.Compare, ast.Lt, ast.Gt, ast.LtE,
          ast.GtE, ast.Eq, ast.NotEq)
_NAME = re.compile(r"(?<![\w.])([a-z_]\w*)(?!\w|\s*\()")
_NUMBER = re.compile(r"(?<![\w.])((?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?)(meg|mil|[tgkmunpfa])?[a-z]*", re.I)


def _python(text: str) -> str:
    """The expression as Python source: numbers with suffixes spelled out, ``^`` as ``**``, names lower-cased."""
    text = text.strip()
    for a, b in ("{}", "''", '""'):
        if len(text) > 1 and text[0] == a and text[-1] == b:
            text = text[1:-1].strip()
    if any(c in text for c in "?:'\"[]&|!"):
        raise Unsupported(f"construct not evaluated here: {text!r}")
    text = _NUMBER.sub(lambda m: repr(units.parse(m.group(0), numparam=True)), text).replace("^", "**").lower()
    return _NAME.sub(r"p_\1", text)          # parameter names may be Python keywords (sky130's "as")


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


class _LeftComparisons(ast.NodeTransformer):
    """``a < b < c`` as ``(a < b) < c``: numparam compares left to right, ``==`` and ``<`` alike (``z > x > 1.5`` is
    0 at z=3, x=2, ``x == 2 == 1`` is 1), where Python chains (``a < b and b < c``)."""

    def visit_Compare(self, node: ast.Compare) -> ast.expr:
        self.generic_visit(node)
        left: ast.expr = node.left
        for op, right in zip(node.ops, node.comparators):
            left = ast.Compare(left, [op], [right])
        return left


def _tree(text: str) -> ast.Expression:
    try:
        tree = ast.fix_missing_locations(_LeftComparisons().visit(ast.parse(_python(text), mode="eval")))
    except (SyntaxError, ValueError, ArithmeticError) as e:
        raise Unsupported(f"{text!r}: {e}") from None
    except _TOO_DEEP as e:   # 2,000 nested signs: Python's parser recurses where numparam does not (reset reads it)
        raise Unsupported(f"{text[:40]!r}...: {type(e).__name__}") from None
    for node in ast.walk(tree):
        if not isinstance(node, _NODES):
            raise Unsupported(f"{text!r}: {type(node).__name__} not evaluated here")
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow) and isinstance(node.right, ast.BinOp) \
                and isinstance(node.right.op, ast.Pow):
            raise Unsupported(f"{text!r}: a ^ b ^ c groups to the left in numparam, to the right here")
        if isinstance(node, (ast.BinOp, ast.Compare)) and any(
                map(_signed_operand, [node.right] if isinstance(node, ast.BinOp) else node.comparators)):
            raise Unsupported(f"{text!r}: a signed operand after an operator (numparam reads 'y*-x+1' as 'y*x-1', "
                              "'y*-x^2' as 'y*x^(-2)')")
        if isinstance(node, ast.Call) and (not isinstance(node.func, ast.Name)
                                           or node.func.id not in _FUNCTIONS and node.func.id not in _RANDOM):
            raise Unsupported(f"{text!r}: unknown function")
    return tree


def _signed_operand(node: ast.expr) -> bool:
    """Whether ``node``, an operand after an operator, is signed otherwise than a plain number (``-2``): numparam
    reads one otherwise than Python (measured in ngspice 39: ``y*-x+1`` is 5 at x=2, y=3, ``y+-x+1`` 4, ``3*-x^2``
    is ``3*x^-2``, 0.75, ``3*-2^2`` is 12; ``y*-x`` and ``y*-(x)`` fail to load), where the fast path set Python's
    value and a ``reset`` numparam's. The tree has lost the parentheses: ``3*(-x)`` goes to ``reset`` too."""
    if not isinstance(node, ast.UnaryOp):
        return False
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

"""docs/architecture.md's module table holds: every module is in it, and a module imports at module level only the
modules of rows above its own (or before it in its row), but for the exceptions the doc lists."""
from __future__ import annotations

import ast
import functools
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "architecture.md"
#: The doc's one module-level exception: cli.py imports the commands registered on its app last (import cycles).
LAST_IMPORTS = {("cli", "optimizecmd"), ("cli", "comparecmd"), ("cli", "signoff.commands")}


def _rooms() -> dict[str, tuple[int, int]]:
    """Module (dotted, below ``zoaf``; a package by its name) -> (row, place in its row) of the module table."""
    text = DOC.read_text()
    table = text[text.index("## The rooms"):text.index("The rule is about imports")]
    order: dict[str, tuple[int, int]] = {}
    for row, line in enumerate(ln for ln in table.splitlines() if ln.startswith("| `")):
        first = line.split("|")[1]
        names = re.findall(r"`([\w/]+(?:\.py|/))`", first)
        for place, name in enumerate(names):
            order[name.removesuffix(".py").removesuffix("/").replace("/", ".")] = (row, place)
    return order


@functools.cache
def _modules() -> dict[str, Path]:
    """Every module of the package (``baselines/`` is installed as ``zoaf.baselines``) by its dotted name; not a
    subpackage's ``__init__.py`` that holds its docstring alone."""
    found = {".".join(p.relative_to(ROOT / "zoaf").with_suffix("").parts): p for p in (ROOT / "zoaf").rglob("*.py")}
    found |= {f"baselines.{p.stem}": p for p in (ROOT / "baselines").glob("*.py")}
    return {m: p for m, p in found.items()
            if not (m.endswith(".__init__") and len(ast.parse(p.read_text()).body) <= 1)}


def _room(module: str, rooms: dict[str, tuple[int, int]]) -> str | None:
    """The table's name for ``module``: itself, else the package row it belongs to (``zo``, ``baselines``)."""
    parts = module.split(".")
    return next((".".join(parts[:k]) for k in range(len(parts), 0, -1) if ".".join(parts[:k]) in rooms), None)


def _imports(module: str, path: Path) -> set[str]:
    """What ``module`` imports at module level (not under ``if TYPE_CHECKING:``), as dotted names below ``zoaf``."""
    package = module.split(".")[:-1]                    # a package's __init__ too: "signoff.__init__"
    out: set[str] = set()

    def visit(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                continue
            if isinstance(node, (ast.If, ast.Try)):
                visit([*node.body, *getattr(node, "orelse", []), *getattr(node, "finalbody", []),
                       *(s for h in getattr(node, "handlers", []) for s in h.body)])
            elif isinstance(node, ast.Import):
                out.update(a.name.removeprefix("zoaf.") for a in node.names if a.name.startswith("zoaf."))
            elif isinstance(node, ast.ImportFrom):
                out.update(_named(node, package))

    visit(ast.parse(path.read_text()).body)
    return {m for m in out if m and m != "__init__"}


def _named(node: ast.ImportFrom, package: list[str]) -> list[str]:
    """The zoaf modules a ``from ... import`` names: ``from . import units`` the module ``units``, ``from .units import
    parse`` the module it takes a name from (``""``: the package itself)."""
    if node.level:
        base = ".".join([*package[:len(package) - node.level + 1], node.module or ""]).strip(".")
    elif node.module is not None and node.module.split(".")[0] == "zoaf":
        base = node.module.removeprefix("zoaf").strip(".")
    else:
        return []
    return [f"{base}.{a.name}".strip(".") if f"{base}.{a.name}".strip(".") in _modules() else base for a in node.names]


def test_every_module_is_in_the_table() -> None:
    rooms = _rooms()
    missing = [m for m in _modules() if _room(m, rooms) is None]
    assert not missing, f"modules missing from docs/architecture.md's table: {missing}"


def test_modules_import_only_rooms_above() -> None:
    rooms = _rooms()
    wrong = []
    for module, path in sorted(_modules().items()):
        mine = _room(module, rooms)
        for imported in _imports(module, path):
            theirs = _room(imported, rooms)
            if None in (mine, theirs) or theirs == mine or (mine, theirs) in LAST_IMPORTS:
                continue
            if rooms[theirs] >= rooms[mine]:
                wrong.append(f"{module} imports {imported}")
    assert not wrong, f"against docs/architecture.md's import order: {wrong}"

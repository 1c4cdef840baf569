"""README.md and docs/ say what the repository holds: every relative link resolves (a file, and an anchor to a
heading of the file it names), every BENCHMARKS.md section they cite exists with the title they quote, every
repository path they name exists, every ``module.name`` or ``Class.member`` they name is defined, every module is
named in docs/architecture.md's table and every benchmark script in its benchmarks table, the README's options are
zoaf's, and its Python examples print what their comments say.
(``tests/test_architecture.py`` checks the table's import order and that each module has a room.)"""
from __future__ import annotations

import ast
import functools
import math
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
ARCHITECTURE = ROOT / "docs" / "architecture.md"
BENCHMARKS = ROOT / "BENCHMARKS.md"
LINK = re.compile(r"\[[^\]\n]*\]\(([^)\s]+)\)")
#: ``§4``, ``§1b``, then optionally the title quoted: ``[§4, "Integer steps"]``, ``§11 ("one run of ...")``.
SECTION = re.compile(r'§\s?(\d+[a-z]?)\b(?:,\s*|\s*\()?(?:"([^"\n]+)")?')
#: A path of the repository as the texts write it (a placeholder such as ``tests/test_X.py`` or
#: ``benchmarks/results/<circuit>`` is cut or skipped).
PATH = re.compile(r"(?<![\w/.~-])((?:zoaf|tests|benchmarks|netlists|examples|baselines|docs)/[\w./-]*)")
PLACEHOLDER = re.compile(r"(^|[/_])[A-Z]+(\.\w+)?$")
SUFFIXES = {"py", "md", "db", "json", "toml", "cir", "lib", "png", "html", "spice", "txt", "log"}


def slugs(markdown: str) -> set[str]:
    """The anchors GitHub gives a file's headings: lower case, punctuation dropped, blanks as ``-``, a repeated
    heading numbered ``-1``, ``-2``."""
    seen: dict[str, int] = {}
    out: set[str] = set()
    for heading in re.findall(r"^#{1,6}\s+(.+?)\s*#*$", markdown, re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        out.add(f"{slug}-{seen[slug]}" if slug in seen else slug)
        seen[slug] = seen.get(slug, 0) + 1
    return out


def broken_links(doc: Path, text: str) -> list[str]:
    """Each relative link of ``text`` (written in ``doc``) whose file is missing, or whose anchor is no heading."""
    wrong = []
    for target in LINK.findall(text):
        if re.match(r"[a-z]+:", target):
            continue                                         # https:, mailto:
        path, _, anchor = target.partition("#")
        file = (doc.parent / path).resolve() if path else doc
        if not file.exists():
            wrong.append(f"{doc.name}: {target}: no such file")
        elif anchor and (file.suffix != ".md" or anchor not in slugs(file.read_text())):
            wrong.append(f"{doc.name}: {target}: no heading {anchor!r} in {file.name}")
    return wrong


def _sections(benchmarks: str) -> dict[str, str]:
    """BENCHMARKS.md's numbered sections (``## 4.``, ``### 1b.``) -> their text up to the next numbered one."""
    marks = list(re.finditer(r"^#{2,3} (\d+[a-z]?)\. ", benchmarks, re.M))
    ends = [m.start() for m in marks[1:]] + [len(benchmarks)]
    out: dict[str, str] = {}
    for mark, end in zip(marks, ends):
        out.setdefault(mark.group(1), "")
        out[mark.group(1)] += benchmarks[mark.start():end]
        if mark.group(1)[-1].isalpha():                      # §1b is part of §1 too
            out.setdefault(mark.group(1)[:-1], "")
            out[mark.group(1)[:-1]] += benchmarks[mark.start():end]
    return out


def broken_sections(doc: Path, text: str, benchmarks: str) -> list[str]:
    """Each ``§N`` of ``text`` that BENCHMARKS.md lacks, or whose quoted title is no heading or bold lead-in of it."""
    sections = _sections(benchmarks)
    wrong = []
    for number, title in SECTION.findall(text.replace("\n", " ")):
        if number not in sections:
            wrong.append(f"{doc.name}: §{number}: no such section of BENCHMARKS.md")
            continue
        if not title:
            continue
        plain = sections[number].replace("`", "").lower()
        titles = re.findall(r"^#+ (.*)$", plain, re.M) + re.findall(r"\*\*(.+?)\*\*", plain.replace("\n", " "))
        wanted = title.replace("`", "").lower().strip(". ")              # "...: the rest of the suite"
        if not any(wanted in t for t in titles):
            wrong.append(f'{doc.name}: §{number}, "{title}": no such heading in that section')
    return wrong


def test_links_resolve() -> None:
    wrong = [w for doc in DOCS for w in broken_links(doc, doc.read_text())]
    assert not wrong, wrong


def test_cited_benchmark_sections_exist() -> None:
    benchmarks = BENCHMARKS.read_text()
    wrong = [w for doc in DOCS for w in broken_sections(doc, doc.read_text(), benchmarks)]
    assert not wrong, wrong


def test_the_checks_find_a_broken_link_anchor_and_section(tmp_path: Path) -> None:
    doc = tmp_path / "README.md"
    doc.write_text("# Top\n")
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("# A\n## The rooms (a list)\n## The rooms (a list)\n")
    good = "[a](docs/a.md) [b](docs/a.md#the-rooms-a-list-1) [c](https://x.org/#y) [d](#top)\n# Top\n"
    assert broken_links(doc, good) == []
    bad = "[a](docs/b.md) [b](docs/a.md#the-rooms-a-list-2) [c](#nowhere)\n# Top\n"
    assert len(broken_links(doc, bad)) == 3
    benchmarks = "## 4. Ablation\n### What changed, and why\n**Integer steps.** text\n### 4b. More\n## 5. End\n"
    assert broken_sections(doc, 'see §4 [§4, "Integer steps"] §4b (§5, "end")', benchmarks) == []
    assert len(broken_sections(doc, 'see §6, [§4, "Integer stops"], §5 ("more")', benchmarks)) == 3


def test_named_paths_exist() -> None:
    wrong = []
    for doc in DOCS:
        text = doc.read_text()
        for m in PATH.finditer(text):
            path = m.group(1).rstrip(".,;:")
            after = text[m.end():m.end() + 1]
            if after and after in "<*{" or PLACEHOLDER.search(path):
                continue
            if not (ROOT / path).exists():
                wrong.append(f"{doc.name}:{text[:m.start()].count(chr(10)) + 1}: {path}")
    assert not wrong, f"paths README.md or docs/ name that the repository lacks: {wrong}"


def _top_level(body: list[ast.stmt]) -> set[str]:
    """The names statements bind at their own level (under ``if``/``try`` too): defs, classes, assignments, imports."""
    out: set[str] = set()
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            out.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            out.update((a.asname or a.name).split(".")[-1] for a in node.names)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            out.update(n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name))
        elif isinstance(node, (ast.If, ast.Try)):
            out |= _top_level([*node.body, *node.orelse, *getattr(node, "finalbody", []),
                               *(s for h in getattr(node, "handlers", []) for s in h.body)])
    return out


@functools.cache
def _definitions() -> tuple[dict[str, set[str]], dict[str, set[str]], dict[str, set[str]]]:
    """Module stem -> the names it binds at module level, and its classes' members (``netlist.check_params``);
    class -> its members (``self.x = ...`` included); class -> the names of its bases."""
    names: dict[str, set[str]] = {}
    members: dict[str, set[str]] = {}
    bases: dict[str, set[str]] = {}
    for path in [*(ROOT / "zoaf").rglob("*.py"), *(ROOT / "baselines").glob("*.py")]:
        tree = ast.parse(path.read_text())
        names.setdefault(path.stem, set()).update(_top_level(tree.body))
        for cls in (n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)):
            bases.setdefault(cls.name, set()).update(ast.unparse(b).split(".")[-1] for b in cls.bases)
            members.setdefault(cls.name, set()).update(
                _top_level(cls.body), (n.attr for n in ast.walk(cls) if isinstance(n, ast.Attribute)
                                       and isinstance(n.ctx, ast.Store) and ast.unparse(n.value) in ("self", "cls")))
            names[path.stem] |= members[cls.name]
    return names, members, bases


def _member(cls: str, name: str, seen: frozenset[str] = frozenset()) -> bool:
    _, members, bases = _definitions()
    return name in members.get(cls, ()) or any(_member(b, name, seen | {cls}) for b in bases.get(cls, ()) - seen)


def test_named_functions_and_classes_exist() -> None:
    names, members, _ = _definitions()
    wrong = []
    for doc in DOCS:
        text = doc.read_text()
        for m in re.finditer(r"`([A-Za-z_]\w*)\.([A-Za-z_]\w*)(?:\(.*?\))?`", text):
            owner, name = m.groups()
            if name in SUFFIXES:                                  # a file: `history.db`, `report.md`
                continue
            if owner in names and owner != "zoaf" and name not in names[owner] \
                    or owner in members and owner not in names and not _member(owner, name):
                wrong.append(f"{doc.name}:{text[:m.start()].count(chr(10)) + 1}: {owner}.{name}")
    assert not wrong, f"names README.md or docs/ give that the code lacks: {wrong}"


def _table(heading: str, end: str) -> list[list[str]]:
    """The rows of docs/architecture.md's table under ``heading`` (up to ``end``), as lists of cells."""
    text = ARCHITECTURE.read_text()
    part = text[text.index(heading):text.index(end, text.index(heading))]
    return [line.split("|")[1:-1] for line in part.splitlines() if line.startswith("| `")]


def test_every_module_is_named_in_the_architecture() -> None:
    """A module of a package row (``zo/``, ``baselines/``) by its name in that row, any other by its path; and no
    row for a module that is gone."""
    rows = _table("## The rooms", "The rule is about imports")
    firsts = [set(re.findall(r"`([\w/]+(?:\.py|/))`", row[0])) for row in rows]
    files = [*(ROOT / "zoaf").rglob("*.py"), *(ROOT / "baselines").glob("*.py")]
    missing = []
    for path in files:
        rel = path.relative_to(ROOT / "zoaf" if path.is_relative_to(ROOT / "zoaf") else ROOT).as_posix()
        package = rel.rpartition("/")[0] + "/"
        if path.name == "__init__.py" and package != "/":     # a package's row, where it holds more than a docstring
            named = len(ast.parse(path.read_text()).body) <= 1 or any(package in first for first in firsts)
        else:
            named = any(rel in first or package in first and re.search(rf"`{path.stem}(\.py)?`", "|".join(row))
                        for first, row in zip(firsts, rows))
        if not named:
            missing.append(rel)
    assert not missing, f"modules docs/architecture.md's table does not name: {missing}"
    stale = [n for first in firsts for n in first if not (ROOT / "zoaf" / n).exists() and not (ROOT / n).exists()]
    assert not stale, f"rows of docs/architecture.md's table for modules that are gone: {stale}"


def test_every_benchmark_script_has_its_row() -> None:
    named = {n for row in _table("## The benchmarks", "**How to run") for n in re.findall(r"`(\w+\.py)`", row[0])}
    missing = sorted(p.name for p in (ROOT / "benchmarks").glob("*.py") if p.name not in named)
    assert not missing, f"benchmark scripts without a row in docs/architecture.md: {missing}"


@pytest.mark.parametrize("doc", DOCS, ids=lambda d: d.name)
def test_no_reference_outside_the_repository(doc: Path) -> None:
    """No machine path, sibling checkout or document that is not in the repository."""
    found = re.findall(r"/work/\S*|\.\./shared\S*|DESIGN\.md|NGSPICE\.md|EXPERIMENTS\.md", doc.read_text())
    assert not found, found


def _expected(line: str) -> str | None:
    """What a README example line says its ``print`` shows: a comment that starts with a number or ``[`` (a comment
    in words says what is printed, not its value), up to a remark in brackets after two blanks."""
    comment = line.partition("#")[2].strip()
    return comment.partition("  (")[0].strip() if re.match(r"[-\[\d]", comment) else None


def _same(shown: str, printed: str) -> bool:
    """Equal words, and numbers equal to the 1e-3 the text rounds them to."""
    a, b = (re.sub(r"[\[\]]", " ", s).split() for s in (shown, printed))
    return len(a) == len(b) and all(
        math.isclose(float(x), float(y), rel_tol=1e-3) if re.fullmatch(r"-?[\d.]+(e-?\d+)?", x) else x == y
        for x, y in zip(a, b))


def test_the_readme_library_examples_print_what_they_say(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each ``print`` of the README's Python examples shows the numbers its comment (or the comment line below it)
    gives: the examples run as written, from the repository root."""
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text[text.index("## Library"):text.index("## Netlists and specs")], re.S)
    assert len(blocks) == 2
    monkeypatch.chdir(ROOT)
    for block in blocks:
        printed: list[str] = []
        space = {"print": lambda *args: printed.append(" ".join(map(str, args)))}
        exec(compile(block, "README.md", "exec"), space)
        lines = [ln for ln in block.splitlines() if ln.strip()]
        calls = [i for i, ln in enumerate(lines) if ln.startswith("print(")]
        assert len(calls) == len(printed)
        for i, out in zip(calls, printed):
            below = lines[i + 1] if i + 1 < len(lines) and lines[i + 1].startswith("#") else ""
            shown = _expected(lines[i]) or _expected(below)
            assert shown is None or _same(shown, out), (lines[i], shown, out)
        if "problem" in space:
            space["problem"].close()


#: Options the README gives to other programs (pytest-xdist, ``dask scheduler``/``dask worker``).
FOREIGN_OPTIONS = {"--dist", "--nthreads", "--nworkers", "--tls-ca-file", "--tls-cert", "--tls-key"}


def test_readme_options_are_zoafs() -> None:
    """Each ``$ zoaf COMMAND ...`` line of the README uses that command's options; any other ``--option`` it names is
    one of zoaf's (or another program's it names)."""
    import typer.main

    from zoaf.cli import app

    group = typer.main.get_command(app)
    own = {o for p in group.params for o in p.opts}
    per_command = {name: own | {o for p in sub.params for o in p.opts} for name, sub in group.commands.items()}
    text = (ROOT / "README.md").read_text()
    wrong = [f"{name}: {opt}" for line in re.findall(r"^\$ zoaf (.*)$", text, re.M)
             for name in [next(w for w in line.split() if not w.startswith("-"))]
             for opt in re.findall(r"(?<!\S)(--?[a-z][\w-]*)", line.partition("#")[0]) if opt not in per_command[name]]
    every = set().union(*per_command.values()) | FOREIGN_OPTIONS
    wrong += sorted(set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", text)) - every)
    assert not wrong, f"options the README names that zoaf lacks: {wrong}"

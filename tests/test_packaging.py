"""The installed package holds every module: setuptools' explicit package list once left ``zoaf.signoff`` out,
so a wheel install (not the editable one the tests run from) could not import ``zoaf.spec``."""
from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_package_of_the_source_tree_is_installed() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    dirs = config.get("package-dir", {})
    listed = {name: ROOT / dirs.get(name, name.replace(".", "/")) for name in config["packages"]}
    assert all((path / "__init__.py").exists() for path in listed.values()), listed
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "zoaf").rglob("__init__.py")}
    found |= {name for name, path in dirs.items() if (ROOT / path / "__init__.py").exists()}
    assert found == set(listed), f"packages not installed: {sorted(found - set(listed))}"

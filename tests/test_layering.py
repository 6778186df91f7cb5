"""The layering rule: nothing under zoo/ imports a plugin package; plugins import only zoo's public API."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PUBLIC_ZOO_MODULES = {"zoo", "zoo.interfaces", "zoo.errors", "zoo.options", "zoo.data", "zoo.layers"}


def _imports(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


def test_core_never_imports_plugins():
    plugin_packages = {p.name for p in (ROOT / "plugins").iterdir() if p.is_dir() and p.name.startswith("zoo_")}
    assert plugin_packages, "no plugin packages found"
    offenders = [(str(f.relative_to(ROOT)), name) for f in (ROOT / "zoo").rglob("*.py") for name in _imports(f)
                 if name.split(".")[0] in plugin_packages or name.split(".")[0] == "plugins"]
    assert not offenders


def test_plugins_use_only_the_public_api_and_not_each_other():
    offenders = []
    for package in (ROOT / "plugins").iterdir():
        for f in package.rglob("*.py"):
            for name in _imports(f):
                top = name.split(".")[0]
                if top == "zoo" and name not in PUBLIC_ZOO_MODULES:
                    offenders.append((str(f.relative_to(ROOT)), name))
                if top.startswith("zoo_") and top != package.name:
                    offenders.append((str(f.relative_to(ROOT)), name))
    assert not offenders


def test_no_bare_top_level_plugins_package():
    assert not (ROOT / "plugins" / "__init__.py").exists()

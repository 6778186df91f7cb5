"""The layering rules (STYLE.md): commands reach the core only through zoo.api; the core never imports zoo.api,
the CLI or a plugin; plugins import only zoo's public API."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PUBLIC_ZOO_MODULES = {"zoo", "zoo.interfaces", "zoo.errors", "zoo.options", "zoo.data", "zoo.layers"}


FACE = ("zoo.cli", "zoo.commands", "zoo.__main__")  # the command line: argparse, one zoo.api call, printing
FACE_MAY_IMPORT = ("zoo.api", "zoo.cli", "zoo.commands")  # and argparse helpers under zoo.commands


def _imports(path: Path) -> list[str]:
    """Every module an import statement names (``from zoo import api`` names ``zoo.api``), lazy ones included."""
    return _imports_of(path.read_text(), str(path))


def _imports_of(source: str, filename: str = "<test>") -> list[str]:
    names = []
    for node in ast.walk(ast.parse(source, filename=filename)):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module == "zoo" and node.level == 0:
            # `from zoo import api` imports the module zoo.api; `from zoo import hookimpl` a name of zoo itself
            names += [f"zoo.{a.name}" if _is_zoo_module(a.name) else "zoo" for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


def _is_zoo_module(name: str) -> bool:
    return (ROOT / "zoo" / f"{name}.py").exists() or (ROOT / "zoo" / name / "__init__.py").exists()


def _module(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts)


def _within(name: str, packages: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in packages)


def layering_offences(module: str, imports: list[str]) -> list[str]:
    """The imports of ``module`` that break the house's layers."""
    zoo_imports = [n for n in imports if n == "zoo" or n.startswith("zoo.")]
    if _within(module, FACE):  # a command: only zoo.api (and the command line's own modules)
        return [n for n in zoo_imports if not _within(n, FACE_MAY_IMPORT)]
    if module == "zoo.api":
        return [n for n in zoo_imports if _within(n, FACE)]
    return [n for n in zoo_imports if _within(n, ("zoo.api", *FACE))]  # the core sits under the API


def test_commands_use_only_the_api_and_the_core_never_imports_it():
    offenders = [(_module(f), bad) for f in sorted((ROOT / "zoo").rglob("*.py"))
                 for bad in layering_offences(_module(f), _imports(f))]
    assert not offenders


@pytest.mark.parametrize("module, source, bad", [
    ("zoo.commands.train", "from zoo.training import run", ["zoo.training"]),
    ("zoo.commands.eval", "def f():\n    from zoo.errors import OptionError", ["zoo.errors"]),
    ("zoo.cli", "import zoo", ["zoo"]),
    ("zoo.bench.grid", "from zoo import api", ["zoo.api"]),
    ("zoo.training.loop", "from zoo.commands._table import format_table", ["zoo.commands._table"]),
    ("zoo.api", "from zoo.cli import main", ["zoo.cli"]),
    ("zoo.commands.bench", "from zoo import api\nfrom zoo.commands._recipe import recipe_layer", []),
    ("zoo.api", "from zoo.bench.runner import run_benchmark", []),
])
def test_the_layering_check_catches_each_kind_of_offence(module, source, bad):
    assert layering_offences(module, _imports_of(source)) == bad


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

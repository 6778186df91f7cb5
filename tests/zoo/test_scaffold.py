"""``zoo plugins new NAME`` writes a plugin package that passes the contract kit as generated, and installs."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from zoo import api
from zoo.cli import main
from zoo.scaffold import new_plugin, package_files
from zoo.testing import check_model_plugin, specs_of


@pytest.fixture
def generated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    target = new_plugin("tiny-seg", tmp_path)
    monkeypatch.syspath_prepend(str(target / "src"))
    yield target
    for module in [m for m in sys.modules if m == "zoo_tiny_seg" or m.startswith("zoo_tiny_seg.")]:
        del sys.modules[module]


def test_the_generated_package_passes_the_kit(generated):
    import zoo_tiny_seg.plugin

    specs = specs_of(zoo_tiny_seg.plugin)
    assert [s.name for s in specs] == ["tiny-seg"]
    results = check_model_plugin(specs[0], options={"width": 4})
    assert {r.status for r in results} <= {"passed", "skipped"}, results
    reg = api.load_registry(plugins=[zoo_tiny_seg.plugin], autoload=False)
    assert reg.models.names() == ["tiny-seg"]


def test_the_generated_package_declares_its_entry_point_and_kit_test(generated):
    meta = tomllib.loads((generated / "pyproject.toml").read_text())
    assert meta["project"]["name"] == "zoo-tiny-seg"
    assert meta["project"]["entry-points"]["segzoo"] == {"tiny-seg": "zoo_tiny_seg.plugin"}
    assert "parametrize_with_checks(zoo_tiny_seg.plugin)" in (generated / "tests" / "test_plugin.py").read_text()


def test_names_and_existing_folders_are_checked(tmp_path, capsys):
    assert main(["plugins", "new", "Tiny_Seg", "--dir", str(tmp_path)]) == 2
    assert "plugin name 'Tiny_Seg' is not valid" in capsys.readouterr().err
    assert main(["plugins", "new", "tiny-seg", "--dir", str(tmp_path)]) == 0
    assert (tmp_path / "zoo-tiny-seg" / "src" / "zoo_tiny_seg" / "model.py").is_file()
    assert main(["plugins", "new", "tiny-seg", "--dir", str(tmp_path)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["plugins", "new"]) == 2
    assert capsys.readouterr().err == "zoo: error: zoo plugins new: the following arguments are required: name\n"
    assert main(["plugins", "tiny-seg"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("zoo: error: zoo plugins: ") and "'tiny-seg'" in err and "new" in err


def test_package_files_are_the_documented_layout():
    assert sorted(package_files("a-b")) == ["README.md", "pyproject.toml", "src/zoo_a_b/__init__.py",
                                             "src/zoo_a_b/model.py", "src/zoo_a_b/plugin.py",
                                             "tests/test_plugin.py"]


@pytest.mark.slow
def test_pip_installs_the_generated_package_and_zoo_finds_it(tmp_path, monkeypatch, capsys):
    target = new_plugin("tiny-seg", tmp_path / "src")
    site = tmp_path / "site"  # pip --target: a real install that leaves the shared environment alone
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--no-index", "--target", str(site), str(target)], check=True, capture_output=True)
    monkeypatch.syspath_prepend(str(site))
    try:
        assert main(["plugins"]) == 0
        row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("tiny-seg"))
        assert row.split()[:4] == ["tiny-seg", "zoo-tiny-seg", "0.1.0", "ok"]
        api.reset_default_registry()
        assert main(["models", "tiny-seg"]) == 0
        assert "tiny-seg" in capsys.readouterr().out
    finally:
        for module in [m for m in sys.modules if m.startswith("zoo_tiny_seg")]:
            del sys.modules[module]

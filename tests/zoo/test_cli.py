"""Every foundation subcommand, in-process through ``zoo.cli.main``, on a registry of a fake plugin."""

from __future__ import annotations

import pytest

import zoo
from zoo import api
from zoo.cli import main
from tests.zoo import fake_plugin


@pytest.fixture
def fake_registry():
    api.reset_default_registry(api.load_registry(plugins=[fake_plugin], autoload=False))


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_version(capsys):
    with pytest.raises(SystemExit) as excinfo:
        main(["--version"])
    assert excinfo.value.code == 0
    assert capsys.readouterr().out.strip() == f"zoo {zoo.__version__} (segzoo)"


def test_models_lists_with_descriptions_and_filters(capsys, fake_registry):
    code, out, _ = run(capsys, "models")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["model", "plugin", "description"]
    assert lines[1].startswith("tiny-net ") and "Two convolutions" in lines[1]
    code, out, _ = run(capsys, "models", "*wide")
    assert code == 0 and "tiny-net-wide" in out and "tiny-net " not in out


def test_unknown_model_is_one_line_exit_2(capsys, fake_registry):
    code, out, err = run(capsys, "models", "tiny-nett")
    assert code == 2 and out == ""
    assert err == ("zoo: error: unknown model 'tiny-nett'; did you mean 'tiny-net' or 'tiny-net-wide'?; "
                   "available: tiny-net, tiny-net-wide\n")


def test_datasets_and_metrics(capsys, fake_registry):
    code, out, _ = run(capsys, "datasets")
    assert code == 0 and out.splitlines()[1].split()[:3] == ["noise", "3", "2"]
    code, out, _ = run(capsys, "metrics")
    assert code == 0 and out.splitlines()[1].split()[:2] == ["agreement", "higher"]


def test_plugins_shows_status(capsys, fake_registry):
    code, out, _ = run(capsys, "plugins")
    assert code == 0
    assert "tests.zoo.fake_plugin" in out and " ok " in out
    assert "zoo_register_datasets,zoo_register_metrics,zoo_register_models" in out


def test_plugins_shows_failed_plugin_from_real_entry_point(capsys, make_dist):
    make_dist("zoo-broken", "0.3.1", "broken", "zoo_broken_plugin", "import not_a_real_module_xyz\n")
    code, out, err = run(capsys, "plugins")
    assert code == 0
    row = next(line for line in out.splitlines() if line.startswith("broken"))
    assert row.split()[:4] == ["broken", "zoo-broken", "0.3.1", "failed"]
    assert "not_a_real_module_xyz" in row
    assert "plugin 'broken' (zoo-broken 0.3.1) failed to load" in err


def test_strict_plugins_flag(capsys, make_dist, monkeypatch):
    monkeypatch.delenv("ZOO_STRICT_PLUGINS", raising=False)
    make_dist("zoo-broken", "0.3.1", "broken", "zoo_broken_plugin", "import not_a_real_module_xyz\n")
    code, _, err = run(capsys, "--strict-plugins", "models")
    assert code == 2 and "strict plugin mode is on" in err and len(err.splitlines()) == 1


def test_info_prints_parameters_and_gmacs(capsys, fake_registry):
    code, out, _ = run(capsys, "info", "tiny-net", "--width", "2", "--image-size", "8")
    assert code == 0
    assert "tiny-net: Two convolutions" in out
    assert "parameters:  59" in out
    assert "options:     width=4, kernel=3" in out


def test_info_unknown_option_is_one_line_exit_2(capsys, fake_registry):
    code, out, err = run(capsys, "info", "tiny-net", "--bogus", "1")
    assert code == 2 and out == ""
    assert err == "zoo: error: unknown option 'bogus' for model 'tiny-net'; valid options: width=4, kernel=3\n"


def test_usage_errors_are_one_line_exit_2(capsys):
    code, _, err = run(capsys, "models", "--bogus")
    assert code == 2 and err == "zoo: error: zoo models: unrecognized arguments: --bogus\n"
    code, _, err = run(capsys, "no-such-command")
    assert code == 2 and len(err.splitlines()) == 1
    assert err.startswith("zoo: error: unknown command 'no-such-command'; choose from bench, datasets, ")
    code, _, err = run(capsys, "bench-cel")  # the internal command is never offered
    assert code == 2 and "did you mean 'bench'?" in err and "bench-cell" not in err.replace("'bench-cel'", "")


def test_zoo_plugins_new_has_its_own_help(capsys):
    with pytest.raises(SystemExit):
        main(["plugins", "new", "--help"])
    out = capsys.readouterr().out
    assert out.startswith("usage: zoo plugins new") and "--dir DIR" in out and "zoo.testing kit" in out


def test_console_script_runs():
    import subprocess
    import sys
    from pathlib import Path

    script = Path(sys.executable).with_name("zoo")
    result = subprocess.run([str(script), "plugins"], capture_output=True, text=True, check=True)
    assert "segzoo" in result.stdout

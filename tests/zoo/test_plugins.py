"""Plugin discovery and loading through real entry points (dist-infos on sys.path), not mocks of pluggy."""

from __future__ import annotations

import subprocess
import sys

import pytest

from zoo import api
from zoo.errors import DuplicateNameError, PluginLoadError, UnknownNameError

GOOD = """
import torch
import zoo
from zoo.interfaces import ModelSpec

def good_net(*, in_channels: int, num_classes: int, width: int = 8) -> torch.nn.Module:
    \"\"\"A good third-party model.\"\"\"
    return torch.nn.Conv2d(in_channels, num_classes, 1)

@zoo.hookimpl
def zoo_register_models():
    return [ModelSpec("good-net", good_net)]
"""


def _infos(reg):
    return {p.name: p for p in reg.plugins}


def test_entry_point_discovery_records_distribution_and_version(make_dist):
    make_dist("zoo-good", "1.2.3", "good", "zoo_good_plugin", GOOD)
    reg = api.load_registry()
    assert "good-net" in reg.models
    provider = reg.models.provider("good-net")
    assert (provider.name, provider.distribution, provider.version) == ("good", "zoo-good", "1.2.3")
    assert provider.hooks == ("zoo_register_models",)
    assert reg.models.get("good-net").description == "A good third-party model."


def test_plugin_that_raises_on_import_is_reported_and_others_load(make_dist, caplog):
    make_dist("zoo-good", "1.0", "good", "zoo_good_plugin", GOOD)
    make_dist("zoo-broken", "0.3.1", "broken", "zoo_broken_plugin", "import not_a_real_module_xyz\n")
    reg = api.load_registry()
    info = _infos(reg)["broken"]
    assert info.status == "failed"
    assert "ModuleNotFoundError" in info.error and "not_a_real_module_xyz" in info.error
    assert "good-net" in reg.models
    message = info.failure_message()
    assert "'broken' (zoo-broken 0.3.1)" in message and "ZOO_DISABLE_PLUGINS=broken" in message
    assert "zoo-broken 0.3.1" in caplog.text  # reported loudly, once
    assert caplog.text.count("zoo-broken 0.3.1") == 1
    with pytest.raises(UnknownNameError, match=r"failed to load: ModuleNotFoundError"):
        reg.models.get("broken-net")


def test_misspelled_hook_is_a_failure_with_a_suggestion(make_dist):
    make_dist("zoo-typo", "1.0", "typo", "zoo_typo_plugin", """
import zoo

@zoo.hookimpl
def zoo_register_model():
    return []
""")
    info = _infos(api.load_registry())["typo"]
    assert info.status == "failed"
    assert "unknown hook 'zoo_register_model'" in info.error
    assert "did you mean 'zoo_register_models'" in info.error


def test_bad_hook_signature_is_a_failure(make_dist):
    make_dist("zoo-badsig", "1.0", "badsig", "zoo_badsig_plugin", """
import zoo

@zoo.hookimpl
def zoo_register_models(config):
    return []
""")
    info = _infos(api.load_registry())["badsig"]
    assert info.status == "failed"
    assert "PluginValidationError" in info.error and "config" in info.error


def test_hook_that_raises_marks_only_that_plugin_failed(make_dist):
    make_dist("zoo-good", "1.0", "good", "zoo_good_plugin", GOOD)
    make_dist("zoo-raiser", "2.0", "raiser", "zoo_raiser_plugin", """
import zoo

@zoo.hookimpl
def zoo_register_models():
    raise RuntimeError("cannot find my config")
""")
    reg = api.load_registry()
    info = _infos(reg)["raiser"]
    assert info.status == "failed" and "cannot find my config" in info.error
    assert "good-net" in reg.models


def test_a_name_clash_between_third_party_plugins_keeps_the_first_in_load_order(make_dist, caplog):
    make_dist("zoo-good", "1.0", "good", "zoo_good_plugin", GOOD)
    make_dist("zoo-copycat", "9.9", "copycat", "zoo_copycat_plugin", GOOD)
    reg = api.load_registry()
    assert reg.models.provider("good-net").name == "copycat"  # third-party entry points load in name order
    info = _infos(reg)["good"]
    assert info.status == "failed" and info.hooks == ("zoo_register_models",)
    assert info.failure_message() == (
        "plugin 'good' (zoo-good 1.0) failed to load: model 'good-net' is already registered by plugin 'copycat' "
        "(zoo-copycat 9.9), which keeps it (the first registrant wins); rename it; uninstall it or set "
        "ZOO_DISABLE_PLUGINS=good")
    assert caplog.text.count("is already registered") == 1  # one warning line
    with pytest.raises(DuplicateNameError, match=r"'good' \(zoo-good 1.0\).*'copycat' \(zoo-copycat 9.9\)"):
        api.load_registry(strict=True)


# A third-party plugin that reuses a built-in name of each kind (and adds one name of its own).
CLASH = """
import zoo
from zoo.interfaces import DatasetSpec, MetricSpec, ModelSpec

def clash_net(*, in_channels: int, num_classes: int, width: int = 8):
    \"\"\"A model that {what}.\"\"\"
    import torch
    return torch.nn.Conv2d(in_channels, num_classes, 1)

def clash_data(*, root: str = "."):
    \"\"\"Data that {what}.\"\"\"
    raise RuntimeError("never built here")

def clash_metric(*, num_classes: int, ignore_index=None, class_names=None):
    \"\"\"A metric that {what}.\"\"\"
    raise RuntimeError("never built here")

@zoo.hookimpl
def zoo_register_{kind}s():
    return [{spec}("{name}", {builder}{override}), {spec}("clash-extra", {builder})]
"""
KINDS = {"model": ("ModelSpec", "clash_net", "unet", "models"),
         "dataset": ("DatasetSpec", "clash_data", "shapes", "datasets"),
         "metric": ("MetricSpec", "clash_metric", "dice", "metrics")}


def _clash_source(kind: str, *, override: bool = False) -> str:
    spec, builder, name, _ = KINDS[kind]
    what = "overrides the built-in" if override else "clashes"
    return CLASH.format(kind=kind, spec=spec, builder=builder, name=name, what=what,
                        override=", override=True" if override else "")


@pytest.mark.parametrize("kind", list(KINDS))
def test_a_plugin_clashing_with_a_builtin_name_fails_alone_and_is_named(make_dist, capsys, kind):
    from zoo.cli import main

    make_dist("zoo-clash", "0.2", "clash", "zoo_clash_plugin", _clash_source(kind))
    _, _, name, listing = KINDS[kind]
    registry = getattr(api.load_registry(), listing)
    assert registry.provider(name).distribution == "segzoo"  # the built-in keeps its name
    assert "clash-extra" not in registry  # nothing half-registers
    capsys.readouterr()

    api.reset_default_registry()
    assert main([listing if kind != "dataset" else "datasets"]) == 0  # every command still works ...
    out, err = capsys.readouterr()
    assert f"{name} " in out
    expected = (f"plugin 'clash' (zoo-clash 0.2) failed to load: {kind} {name!r} is already registered by plugin "
                f"'{'unet' if kind == 'model' else listing}' (segzoo 0.1.0), which keeps it")
    assert err.count("\n") == 1 and expected in err  # ... with one warning line naming both distributions
    assert "set override=True" in err and "ZOO_DISABLE_PLUGINS=clash" in err

    assert main(["plugins"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("clash "))
    assert row.split()[:4] == ["clash", "zoo-clash", "0.2", "failed"] and "already registered" in row

    command = listing if kind != "dataset" else "datasets"
    assert main([command, "clash-*"]) == 2  # a pattern that matches nothing quotes the failure
    assert "note: plugin 'clash' (zoo-clash 0.2) failed to load" in capsys.readouterr().err

    api.reset_default_registry()  # a new process, in effect
    assert main(["--strict-plugins", command]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and expected in err and "strict plugin mode is on" in err
    with pytest.raises(DuplicateNameError):
        api.load_registry(strict=True)


@pytest.mark.parametrize("kind", list(KINDS))
def test_an_explicit_override_replaces_a_builtin_and_is_shown(make_dist, capsys, kind):
    from zoo.cli import main

    make_dist("zoo-clash", "0.2", "clash", "zoo_clash_plugin", _clash_source(kind, override=True))
    _, _, name, listing = KINDS[kind]
    reg = api.load_registry(strict=True)  # an override is not a failure
    api.reset_default_registry(reg)
    registry = getattr(reg, listing)
    assert registry.provider(name).distribution == "zoo-clash" and "clash-extra" in registry
    assert registry.get(name).description.endswith("overrides the built-in.")
    assert _infos(reg)["clash"].overrides == (f"{kind} {name!r} of plugin "
                                              f"'{'unet' if kind == 'model' else listing}' (segzoo 0.1.0)",)
    capsys.readouterr()
    assert main(["plugins"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("clash "))
    assert row.split()[3] == "ok" and f"overrides {kind} {name!r}" in row


def test_an_override_never_takes_a_third_party_name(make_dist):
    make_dist("zoo-good", "1.0", "good", "zoo_good_plugin", GOOD)
    make_dist("zoo-later", "1.0", "later", "zoo_later_plugin", GOOD.replace('good_net)]', 'good_net, override=True)]'))
    reg = api.load_registry()
    assert reg.models.provider("good-net").name == "good"
    assert "override=True replaces only a built-in name" in _infos(reg)["later"].error


@pytest.mark.slow
def test_train_and_bench_work_next_to_a_plugin_clashing_on_every_kind(make_dist, tmp_path, capsys):
    from zoo.cli import main

    source = _clash_source("model") + (
        "\n@zoo.hookimpl\ndef zoo_register_datasets():\n    return [DatasetSpec('shapes', clash_data)]\n"
        "\n@zoo.hookimpl\ndef zoo_register_metrics():\n    return [MetricSpec('dice', clash_metric)]\n")
    make_dist("zoo-clash", "0.2", "clash", "zoo_clash_plugin", source)
    api.reset_default_registry()
    assert main(["train", "--model", "unet", "--dataset", "shapes", "--epochs", "1", "--width", "4", "--depth", "2",
                 "--image-size", "32", "--batch-size", "4", "--train-items", "8", "--val-items", "4",
                 "--test-items", "4", "--metrics", "dice", "--device", "cpu", "--quiet",
                 "--out", str(tmp_path / "run")]) == 0
    assert "dice" in capsys.readouterr().out
    api.reset_default_registry()
    assert main(["bench", "--models", "unet", "--profile", "quick", "--dry-run", "--out", str(tmp_path / "b")]) == 0
    out, err = capsys.readouterr()
    assert "unet" in out and "plugin 'clash' (zoo-clash 0.2) failed to load: model 'unet'" in err
    api.reset_default_registry()
    assert main(["--strict-plugins", "train", "--model", "unet", "--dataset", "shapes",
                 "--out", str(tmp_path / "strict")]) == 2
    assert "strict plugin mode is on" in capsys.readouterr().err


def test_blocking_prevents_import(make_dist, monkeypatch):
    make_dist("zoo-broken", "0.3.1", "broken", "zoo_broken_plugin", "raise SystemError('imported!')\n")
    monkeypatch.setenv("ZOO_DISABLE_PLUGINS", "broken, other")
    reg = api.load_registry()
    assert _infos(reg)["broken"].status == "blocked"
    assert "zoo_broken_plugin" not in sys.modules


def test_autoload_disabled_loads_only_explicit_plugins(make_dist, monkeypatch):
    from tests.zoo import fake_plugin

    make_dist("zoo-good", "1.0", "good", "zoo_good_plugin", GOOD)
    monkeypatch.setenv("ZOO_DISABLE_PLUGIN_AUTOLOAD", "1")
    reg = api.load_registry(plugins=[fake_plugin])
    assert reg.models.names() == ["tiny-net", "tiny-net-wide"]
    assert [p.name for p in reg.plugins] == [fake_plugin.__name__]


@pytest.mark.parametrize("how", ["argument", "environment"])
def test_strict_mode_turns_failures_into_errors(make_dist, monkeypatch, how):
    make_dist("zoo-broken", "0.3.1", "broken", "zoo_broken_plugin", "import not_a_real_module_xyz\n")
    kwargs = {}
    if how == "argument":
        kwargs["strict"] = True
    else:
        monkeypatch.setenv("ZOO_STRICT_PLUGINS", "1")
    with pytest.raises(PluginLoadError, match=r"'broken' \(zoo-broken 0.3.1\) failed to load.*strict"):
        api.load_registry(**kwargs)


def test_builders_with_var_kwargs_are_rejected():
    import types

    import zoo
    from zoo.interfaces import ModelSpec

    def sloppy(*, in_channels, num_classes, **kwargs):
        """Swallows options."""

    plugin = types.SimpleNamespace(__name__="sloppy_plugin",
                                   zoo_register_models=zoo.hookimpl(lambda: [ModelSpec("sloppy", sloppy)]))
    reg = api.load_registry(plugins=[plugin], autoload=False)
    info = reg.plugins[0]
    assert info.status == "failed" and "**kwargs" in info.error
    assert "sloppy" not in reg.models


def test_invalid_names_are_rejected():
    import types

    import zoo
    from zoo.interfaces import ModelSpec

    def net(*, in_channels: int, num_classes: int):
        """A net."""

    plugin = types.SimpleNamespace(__name__="caps", zoo_register_models=zoo.hookimpl(
        lambda: [ModelSpec("My_UNet", net)]))
    info = api.load_registry(plugins=[plugin], autoload=False).plugins[0]
    assert info.status == "failed" and "'My_UNet' is not valid" in info.error


def test_import_zoo_loads_no_plugins_and_no_torch():
    code = ("import sys, zoo, zoo.api, zoo.cli; "
            "bad = [m for m in sys.modules if m.startswith(('zoo_', 'torch'))]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_builtin_plugins_are_registered_through_entry_points():
    reg = api.load_registry()
    builtins = {p.name: p for p in reg.plugins if p.distribution == "segzoo"}
    assert {"unet", "datasets", "metrics"} <= set(builtins)
    assert all(p.status == "ok" for p in builtins.values()), builtins

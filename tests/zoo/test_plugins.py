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


def test_duplicate_name_raises_naming_both_providers(make_dist):
    make_dist("zoo-good", "1.0", "good", "zoo_good_plugin", GOOD)
    make_dist("zoo-copycat", "9.9", "copycat", "zoo_copycat_plugin", GOOD)
    with pytest.raises(DuplicateNameError) as excinfo:
        api.load_registry()
    message = str(excinfo.value)
    assert "'good-net'" in message
    assert "'good' (zoo-good 1.0)" in message and "'copycat' (zoo-copycat 9.9)" in message


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

"""A plugin whose optional dependency is missing raises PluginUnavailable: listed, explained, never a failure."""

from __future__ import annotations

import pytest

from zoo import api
from zoo.cli import main
from zoo.errors import UnknownNameError

SOURCE = """
from zoo.errors import PluginUnavailable
raise PluginUnavailable("fancylib is not installed; install zoo-fancy[fancylib]")
"""


def test_unavailable_plugin_is_listed_with_its_message_and_registers_nothing(make_dist):
    make_dist("zoo-fancy", "1.2.0", "fancy", "zoo_fancy_plugin", SOURCE)
    reg = api.load_registry()
    info = {p.name: p for p in reg.plugins}["fancy"]
    assert (info.status, info.distribution, info.version) == ("unavailable", "zoo-fancy", "1.2.0")
    assert info.error == "fancylib is not installed; install zoo-fancy[fancylib]"
    assert all(p.status == "ok" for p in reg.plugins if p.name != "fancy")


def test_unavailable_is_not_a_failure_in_strict_mode(make_dist):
    make_dist("zoo-fancy", "1.2.0", "fancy", "zoo_fancy_plugin", SOURCE)
    reg = api.load_registry(strict=True)
    assert {p.name: p.status for p in reg.plugins}["fancy"] == "unavailable"


def test_asking_for_a_missing_name_quotes_the_install_hint(make_dist):
    make_dist("zoo-fancy", "1.2.0", "fancy", "zoo_fancy_plugin", SOURCE)
    with pytest.raises(UnknownNameError, match=r"plugin 'fancy' \(zoo-fancy 1.2.0\) is unavailable: .*install "
                                               r"zoo-fancy\[fancylib\]"):
        api.load_registry().models.get("fancy-net")


def test_zoo_plugins_shows_the_status_and_reason(make_dist, capsys):
    make_dist("zoo-fancy", "1.2.0", "fancy", "zoo_fancy_plugin", SOURCE)
    assert main(["plugins", "--strict-plugins"]) == 0
    line = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("fancy"))
    assert line.split()[:4] == ["fancy", "zoo-fancy", "1.2.0", "unavailable"]
    assert line.endswith("install zoo-fancy[fancylib]")

"""Registry lookup, wildcards and error messages, on a private registry of a fake plugin."""

from __future__ import annotations

import pytest

from zoo import api
from zoo.errors import DuplicateNameError, UnknownNameError
from zoo.interfaces import ModelSpec
from zoo.plugins import PluginInfo
from zoo.registry import Registry
from tests.zoo import fake_plugin


@pytest.fixture
def reg():
    return api.load_registry(plugins=[fake_plugin], autoload=False)


def test_exact_lookup_and_description(reg):
    spec = reg.models.get("tiny-net")
    assert spec.builder is fake_plugin.tiny_net
    assert spec.description == "Two convolutions (a fake model for core tests)."
    assert reg.datasets.get("noise").num_classes == 2
    assert reg.metrics.get("agreement").higher_is_better


def test_miss_suggests_close_names_and_lists_all(reg):
    with pytest.raises(UnknownNameError) as excinfo:
        reg.models.get("tiny-nett")
    assert str(excinfo.value) == (
        "unknown model 'tiny-nett'; did you mean 'tiny-net' or 'tiny-net-wide'?; "
        "available: tiny-net, tiny-net-wide"
    )


def test_wildcards_and_selection(reg):
    assert reg.models.names("tiny*") == ["tiny-net", "tiny-net-wide"]
    assert reg.models.names("*wide") == ["tiny-net-wide"]
    assert reg.models.names("unet*") == []
    assert reg.models.select("tiny-net-wide,tiny-*") == ["tiny-net-wide", "tiny-net"]
    with pytest.raises(UnknownNameError, match="unknown model 'unet\\*'"):
        reg.models.select("unet*")
    with pytest.raises(UnknownNameError, match="unknown model 'nope'"):
        reg.models.select(["tiny-net", "nope"])


def test_duplicate_add_raises_and_never_overwrites():
    registry: Registry[ModelSpec] = Registry("model")
    first = ModelSpec("tiny-net", fake_plugin.tiny_net)
    registry.add(first, PluginInfo("a", "ok", "dist-a", "1"))
    with pytest.raises(DuplicateNameError, match=r"by plugin 'a' \(dist-a 1\) and by plugin 'b' \(dist-b 2\)"):
        registry.add(ModelSpec("tiny-net", fake_plugin.tiny_net_wide), PluginInfo("b", "ok", "dist-b", "2"))
    assert registry.get("tiny-net") is first


def test_build_model_validates_options(reg):
    model = api.build_model("tiny-net", in_channels=1, num_classes=3, width=2, registries=reg)
    assert model[0].in_channels == 1 and model[0].out_channels == 2 and model[2].out_channels == 3
    with pytest.raises(Exception, match=r"unknown option 'depth' for model 'tiny-net'; valid options: width=4, "
                                        r"kernel=3"):
        api.build_model("tiny-net", depth=3, registries=reg)


def test_model_info_counts_parameters_and_macs(reg):
    info = api.model_info("tiny-net", in_channels=3, num_classes=1, image_size=8, registries=reg, width=2)
    # conv3x3 3->2 with bias: 56 params; conv1x1 2->1: 3 params
    assert info.parameters == 59
    # MACs: 8*8*(2*3*3*3) + 8*8*(1*2) = 3456 + 128
    assert info.gmacs == pytest.approx((3456 + 128) / 1e9)
    assert dict(info.options) == {"width": 4, "kernel": 3}

"""The MONAI adapter: MONAI's own 2D networks and parameter counts, any input size, option checks."""

from __future__ import annotations

import importlib.util
import sys

import pytest
import torch

from zoo import api
from zoo.errors import OptionError

nets = pytest.importorskip("monai.networks.nets", reason="the monai extra is not installed (segzoo[monai])")

CHANNELS, STRIDES = (16, 32, 64, 128, 256), (2, 2, 2, 2)


def _references(in_channels: int, num_classes: int) -> dict[str, torch.nn.Module]:
    common = dict(spatial_dims=2, in_channels=in_channels, out_channels=num_classes)
    return {
        "monai-basicunet": nets.BasicUNet(**common),
        "monai-attentionunet": nets.AttentionUnet(**common, channels=CHANNELS, strides=STRIDES),
        "monai-unet-res": nets.UNet(**common, channels=CHANNELS, strides=STRIDES, num_res_units=2),
    }


def test_parameters_are_exactly_monais(capsys):
    for name, reference in _references(1, 3).items():
        model = api.build_model(name, in_channels=1, num_classes=3)
        assert api.count_parameters(model) == sum(p.numel() for p in reference.parameters()), name
        assert [k.removeprefix("model.") for k in model.state_dict()] == list(reference.state_dict()), name
    capsys.readouterr()
    api.build_model("monai-basicunet")
    assert capsys.readouterr().out == ""  # BasicUNet's print from __init__ is kept off zoo's stdout


def test_odd_sizes_work_where_monai_alone_fails():
    model = api.build_model("monai-unet-res", in_channels=1, num_classes=2).eval()
    x = torch.rand(1, 1, 37, 45)
    with torch.no_grad():
        assert model(x).shape == (1, 2, 37, 45)
        with pytest.raises(RuntimeError):
            model.model(x)


def test_option_errors_name_the_bad_values():
    with pytest.raises(OptionError, match=r"channels=\(8, 16\) needs exactly one more entry than strides"):
        api.build_model("monai-unet-res", channels=(8, 16))
    with pytest.raises(OptionError, match=r"features=\(8, 8\) must have 6 entries"):
        api.build_model("monai-basicunet", features=(8, 8))


def test_without_monai_the_plugin_is_unavailable_and_says_how_to_install(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "monai" else real(name, *a))
    monkeypatch.delitem(sys.modules, "zoo_monai.plugin", raising=False)
    reg = api.load_registry()
    info = {p.name: p for p in reg.plugins}["monai"]
    assert info.status == "unavailable" and info.error == "MONAI is not installed; install segzoo[monai]"
    assert reg.models.names("monai-*") == []

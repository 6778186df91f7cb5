"""The smp adapter: smp's own models and parameter counts, any input size, local encoder weights only."""

from __future__ import annotations

import importlib.util
import sys

import pytest
import torch

from zoo import api
from zoo.errors import CheckpointError, UnknownNameError

smp = pytest.importorskip("segmentation_models_pytorch", reason="the smp extra is not installed (segzoo[smp])")

ARCHITECTURES = {"smp-unet-resnet34": smp.Unet, "smp-unetpp-resnet34": smp.UnetPlusPlus,
                 "smp-fpn-resnet34": smp.FPN}


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_parameters_are_exactly_smps(name):
    model = api.build_model(name, in_channels=1, num_classes=3)
    reference = ARCHITECTURES[name](encoder_name="resnet34", encoder_weights=None, in_channels=1, classes=3)
    assert api.count_parameters(model) == sum(p.numel() for p in reference.parameters())
    assert [k.removeprefix("model.") for k in model.state_dict()] == list(reference.state_dict())


def test_padding_keeps_smps_output_on_divisible_inputs_and_crops_odd_ones():
    torch.manual_seed(0)
    model = api.build_model("smp-unet-resnet34", in_channels=3, num_classes=2).eval()
    x = torch.rand(1, 3, 64, 96)
    with torch.no_grad():
        torch.testing.assert_close(model(x), model.model(x))
        odd = model(x[..., :37, :45])
        padded = model.model(torch.nn.functional.pad(x[..., :37, :45], (0, 19, 0, 27), mode="replicate"))
    torch.testing.assert_close(odd, padded[..., :37, :45])


def test_encoder_weights_come_from_a_local_file(tmp_path):
    source = api.build_model("smp-unet-resnet34", in_channels=3, num_classes=1)
    path = tmp_path / "encoder.pth"
    torch.save(source.model.encoder.state_dict(), path)
    model = api.build_model("smp-unet-resnet34", in_channels=3, num_classes=1, encoder_weights=str(path))
    for key, value in source.model.encoder.state_dict().items():
        assert torch.equal(model.model.encoder.state_dict()[key], value), key
    with pytest.raises(CheckpointError, match=r"encoder_weights='imagenet' is not a file.*never downloaded"):
        api.build_model("smp-unet-resnet34", encoder_weights="imagenet")


def test_without_smp_the_plugin_is_unavailable_and_says_how_to_install(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "segmentation_models_pytorch" else real(name, *a))
    monkeypatch.delitem(sys.modules, "zoo_smp.plugin", raising=False)
    reg = api.load_registry(strict=True)
    info = {p.name: p for p in reg.plugins}["smp"]
    assert info.status == "unavailable" and "install segzoo[smp]" in info.error
    assert reg.models.names("smp-*") == []
    with pytest.raises(UnknownNameError, match=r"install segzoo\[smp\]"):
        reg.models.get("smp-unet-resnet34")

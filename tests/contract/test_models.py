"""The model contract, checked for every registered model: the built-in ones and any installed third-party one.

The checks live in ``zoo.testing`` (so plugin authors can run them in their own suites); this module only
parametrises them over the registry of the installed plugins, at the small size ``zoo.testing`` picks.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from zoo import api
from zoo.testing import (
    MODEL_CHECKS,
    CheckFailed,
    check_model_plugin,
    check_name,
    parametrize_model_checks,
)

REGISTRY = api.load_registry()
MODEL_NAMES = REGISTRY.models.names()


def test_the_builtin_unet_family_is_registered():
    expected = {"unet", "unet-attn", "unet-res", "unet-bilinear", "unet-nearest", "unet-pixelshuffle",
                "unet-scse", "unetpp", "unet-resnet34"}
    assert expected <= set(MODEL_NAMES)


@parametrize_model_checks(MODEL_NAMES, registries=REGISTRY)
def test_model_contract(model: str, check) -> None:
    check(model)


# --- the checks themselves must catch the defects they are named after ----------------------------------

class _BuildsInForward(nn.Module):
    """The blog post's defect: a layer constructed (and randomly initialised) inside forward()."""

    def __init__(self, in_channels: int, num_classes: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, 4, 3, padding=1)
        self.num_classes = num_classes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.Conv2d(4, self.num_classes, 1)(self.conv(x))


def builds_in_forward(*, in_channels: int, num_classes: int) -> nn.Module:
    """A broken model for testing the checks."""
    return _BuildsInForward(in_channels, num_classes)


def wrong_size(*, in_channels: int, num_classes: int) -> nn.Module:
    """A model whose output is half the input size (a stride-2 conv)."""
    return nn.Conv2d(in_channels, num_classes, 3, stride=2, padding=1)


class _UsedOnly(nn.ModuleDict):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self["used"](x)


def unused_parameter_model(*, in_channels: int, num_classes: int) -> nn.Module:
    """A model with a parameter that forward never uses."""
    return _UsedOnly({"used": nn.Conv2d(in_channels, num_classes, 1), "unused": nn.Linear(2, 2)})


def _failed(builder) -> set[str]:
    results = check_model_plugin(builder, raise_on_failure=False)
    assert [r.name for r in results] == [check_name(c) for c in MODEL_CHECKS]
    return {r.name for r in results if r.status == "failed"}


def test_checks_catch_a_layer_built_in_forward():
    failed = _failed(builds_in_forward)
    assert {"no-layers-in-forward", "eval-determinism", "state-dict-round-trip"} <= failed


def test_checks_catch_a_wrong_output_size():
    assert {"output-shape", "odd-input-size"} <= _failed(wrong_size)


def test_checks_catch_a_parameter_without_gradient():
    assert _failed(unused_parameter_model) == {"backward"}


def test_a_failure_raises_naming_model_and_check():
    with pytest.raises(CheckFailed, match=r"model builder wrong_size failed check 'output-shape'"):
        check_model_plugin(wrong_size)
    with pytest.raises(AssertionError):  # CheckFailed is an AssertionError, so plain pytest reports it well
        check_model_plugin(wrong_size)

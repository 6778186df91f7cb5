"""smp models as zoo models: ``(N, C, H, W)`` images of any size to logits ``(N, num_classes, H, W)``.

smp's encoders downsample by 32 and smp rejects other sizes ("Expected image height and width divisible by
32"), so :class:`PadToMultiple` pads the input up to a multiple of 32 (replicating the border) and crops the
logits back: the zoo's any-size contract holds and the parameters are exactly smp's own.

Contents: the three builders (wrapped in ``zoo.layers.PadToMultiple``), ``MODELS``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from torch import nn

from zoo.errors import CheckpointError
from zoo.interfaces import ModelSpec
from zoo.layers import PadToMultiple

__all__ = ["smp_unet_resnet34", "smp_unetpp_resnet34", "smp_fpn_resnet34", "MODELS"]

log = logging.getLogger(__name__)
OUTPUT_STRIDE = 32


def _load_encoder(model: Any, path: str | None) -> None:
    """Load encoder weights from a local ``.safetensors`` or ``.pth``/``.pt`` state_dict (never downloaded)."""
    if path is None:
        return
    file = Path(path)
    if not file.is_file():
        raise CheckpointError(f"encoder_weights={path!r} is not a file; give a local state_dict file "
                              f"(.safetensors or .pth); smp weights are never downloaded by zoo")
    if file.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(file))
    else:
        state = torch.load(file, map_location="cpu", weights_only=True)
    # smp encoders drop the classifier head ("fc.*") that ImageNet files carry: the only extra keys allowed.
    state = {k: v for k, v in state.items() if not k.startswith("fc.")}
    # nn.Module's method, not smp's override, which returns None instead of the key report
    missing, unexpected = nn.Module.load_state_dict(model.encoder, state, strict=False)
    if missing or unexpected:
        raise CheckpointError(f"encoder_weights={path!r} does not match the ResNet-34 encoder: missing "
                              f"{missing[:5]}, unexpected {unexpected[:5]}")
    log.info("loaded encoder weights from %s", file)


def _build(architecture: str, *, in_channels: int, num_classes: int, encoder_weights: str | None) -> nn.Module:
    import segmentation_models_pytorch as smp

    model = getattr(smp, architecture)(encoder_name="resnet34", encoder_weights=None, in_channels=in_channels,
                                      classes=num_classes)
    _load_encoder(model, encoder_weights)
    return PadToMultiple(model, OUTPUT_STRIDE)


def smp_unet_resnet34(*, in_channels: int, num_classes: int, encoder_weights: str | None = None) -> nn.Module:
    """smp U-Net with a ResNet-34 encoder (random init; encoder_weights: a local state_dict file).

    Args:
        in_channels: image channels.
        num_classes: output channels (raw logits).
        encoder_weights: path of a local encoder state_dict (``.safetensors`` or ``.pth``); None: random init.
    """
    return _build("Unet", in_channels=in_channels, num_classes=num_classes, encoder_weights=encoder_weights)


def smp_unetpp_resnet34(*, in_channels: int, num_classes: int, encoder_weights: str | None = None) -> nn.Module:
    """smp U-Net++ (nested skips) with a ResNet-34 encoder (random init; encoder_weights: a local file).

    Args:
        in_channels: image channels.
        num_classes: output channels (raw logits).
        encoder_weights: path of a local encoder state_dict; None: random init.
    """
    return _build("UnetPlusPlus", in_channels=in_channels, num_classes=num_classes,
                  encoder_weights=encoder_weights)


def smp_fpn_resnet34(*, in_channels: int, num_classes: int, encoder_weights: str | None = None) -> nn.Module:
    """smp Feature Pyramid Network with a ResNet-34 encoder (random init; encoder_weights: a local file).

    Args:
        in_channels: image channels.
        num_classes: output channels (raw logits).
        encoder_weights: path of a local encoder state_dict; None: random init.
    """
    return _build("FPN", in_channels=in_channels, num_classes=num_classes, encoder_weights=encoder_weights)


MODELS: tuple[ModelSpec, ...] = (
    ModelSpec("smp-unet-resnet34", smp_unet_resnet34, tags=("adapter", "smp")),
    ModelSpec("smp-unetpp-resnet34", smp_unetpp_resnet34, tags=("adapter", "smp", "nested")),
    ModelSpec("smp-fpn-resnet34", smp_fpn_resnet34, tags=("adapter", "smp", "fpn")),
)

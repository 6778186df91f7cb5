"""MONAI networks as zoo models: ``(N, C, H, W)`` images of any size to logits ``(N, num_classes, H, W)``.

MONAI's ``UNet`` and ``AttentionUnet`` concatenate skips that only line up when H and W are divisible by
2**len(strides) (MONAI recommends ``dim % 16 == 0``), so :class:`PadToMultiple` pads the input up to that
multiple (replicating the border) and crops the logits back; the parameters are exactly MONAI's own.
Channel settings follow MONAI's tutorials (``channels=(16, 32, 64, 128, 256)``, ``strides=(2, 2, 2, 2)``).

Contents: the three builders (wrapped in ``zoo.layers.PadToMultiple``), ``MODELS``.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence

import torch
from torch import nn

from zoo.errors import OptionError
from zoo.interfaces import ModelSpec
from zoo.layers import PadToMultiple

__all__ = ["monai_basicunet", "monai_attentionunet", "monai_unet_res", "MODELS"]

TUTORIAL_CHANNELS = (16, 32, 64, 128, 256)
TUTORIAL_STRIDES = (2, 2, 2, 2)


def _multiple(strides: Sequence[int]) -> int:
    if len(strides) < 1 or any(s < 1 for s in strides):
        raise OptionError(f"strides={tuple(strides)} must be one or more positive ints")
    multiple = 1
    for s in strides:
        multiple *= s
    return multiple


def _check_channels(channels: Sequence[int], strides: Sequence[int]) -> None:
    if len(channels) != len(strides) + 1:
        raise OptionError(f"channels={tuple(channels)} needs exactly one more entry than strides={tuple(strides)}")


def monai_basicunet(*, in_channels: int, num_classes: int,
                    features: tuple[int, ...] = (32, 32, 64, 128, 256, 32)) -> nn.Module:
    """MONAI BasicUNet in 2D: two convs per level, instance norm, LeakyReLU, transposed-conv upsampling.

    Args:
        in_channels: image channels.
        num_classes: output channels (raw logits).
        features: six widths: the five encoder levels and the last decoder level (MONAI's default).
    """
    from monai.networks.nets import BasicUNet

    if len(features) != 6:
        raise OptionError(f"features={tuple(features)} must have 6 entries (5 levels + the last decoder level)")
    with contextlib.redirect_stdout(io.StringIO()):  # BasicUNet prints its features from __init__
        model = BasicUNet(spatial_dims=2, in_channels=in_channels, out_channels=num_classes, features=features)
    return PadToMultiple(model, 16)


def monai_attentionunet(*, in_channels: int, num_classes: int, channels: tuple[int, ...] = TUTORIAL_CHANNELS,
                        strides: tuple[int, ...] = TUTORIAL_STRIDES) -> nn.Module:
    """MONAI AttentionUnet in 2D (Oktay et al., 2018): attention gates on the skips.

    Args:
        in_channels: image channels.
        num_classes: output channels (raw logits).
        channels: widths per level.
        strides: downsampling per level, one fewer than ``channels``.
    """
    from monai.networks.nets import AttentionUnet

    _check_channels(channels, strides)
    model = AttentionUnet(spatial_dims=2, in_channels=in_channels, out_channels=num_classes, channels=channels,
                          strides=strides)
    return PadToMultiple(model, _multiple(strides))


def monai_unet_res(*, in_channels: int, num_classes: int, channels: tuple[int, ...] = TUTORIAL_CHANNELS,
                   strides: tuple[int, ...] = TUTORIAL_STRIDES, num_res_units: int = 2) -> nn.Module:
    """MONAI UNet in 2D with residual units (Kerfoot et al., 2018), as in MONAI's tutorials.

    Args:
        in_channels: image channels.
        num_classes: output channels (raw logits).
        channels: widths per level.
        strides: downsampling per level, one fewer than ``channels``.
        num_res_units: residual units per block.
    """
    from monai.networks.nets import UNet

    _check_channels(channels, strides)
    model = UNet(spatial_dims=2, in_channels=in_channels, out_channels=num_classes, channels=channels,
                 strides=strides, num_res_units=num_res_units)
    return PadToMultiple(model, _multiple(strides))


MODELS: tuple[ModelSpec, ...] = (
    ModelSpec("monai-basicunet", monai_basicunet, tags=("adapter", "monai")),
    ModelSpec("monai-attentionunet", monai_attentionunet, tags=("adapter", "monai", "attention")),
    ModelSpec("monai-unet-res", monai_unet_res, tags=("adapter", "monai", "residual")),
)

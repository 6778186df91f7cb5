"""U-Net with a torchvision ResNet-34 encoder (He et al., 2016) and the U-Net decoder of ``unet.py``.

The encoder is ``torchvision.models.resnet34(weights=None)``: nothing is ever downloaded. Pretrained encoder
weights come only from a local file (``weights=PATH``): a safetensors file or a ``torch.save``d state dict with
torchvision's key names (``conv1.weight``, ``layer1.0.conv1.weight``, ...; ``fc.*`` is ignored), read with
``torch.load(weights_only=True)`` so a file cannot run code.

The decoder follows segmentation_models.pytorch's ``Unet("resnet34")`` layout: decoder widths 256, 128, 64, 32,
16 (``width=16`` doubling per level), the stride-2 ResNet stem as the finest skip, and a last stage at full
resolution without a skip.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import Tensor, nn

from zoo.errors import CheckpointError
from zoo.interfaces import ModelSpec
from zoo_unet.blocks import UNetOptionError, positive_int
from zoo_unet.unet import UNet

__all__ = ["ResNetEncoder", "load_encoder_weights", "unet_resnet34", "MODELS"]

RESNET34_CHANNELS = (0, 64, 64, 128, 256, 512)  # per stride 1, 2, 4, 8, 16, 32; no feature at stride 1
MAX_DEPTH = len(RESNET34_CHANNELS)


class ResNetEncoder(nn.Module):
    """The ResNet-34 body (no pooling head, no fc) as a U-Net encoder.

    Submodules keep torchvision's names (``conv1``, ``bn1``, ``layer1`` ...), so torchvision state dicts load
    as they are. With ``depth < 6`` the deepest ResNet stages are not built.

    Args:
        in_channels: image channels; for other than 3, ``conv1`` is rebuilt (and loaded weights are adapted:
            summed over RGB for 1 channel, repeated and rescaled otherwise, as smp does).
        depth: levels, 2..6: strides 1 (no feature), 2 (stem), 4, 8, 16, 32 (layer1..layer4).
        weights: a local weights file to load (see ``load_encoder_weights``), or None for random init.

    ``forward`` returns ``[None, stem, layer1, ...]``: one entry per stride, channels ``self.channels``.
    """

    def __init__(self, in_channels: int, *, depth: int = MAX_DEPTH, weights: str | Path | None = None) -> None:
        super().__init__()
        positive_int("in_channels", in_channels)
        if isinstance(depth, bool) or not isinstance(depth, int) or not 2 <= depth <= MAX_DEPTH:
            raise UNetOptionError(f"depth={depth!r} must be an integer from 2 to {MAX_DEPTH} for a ResNet-34 encoder")
        import torchvision  # here, not at import: loading the plugin must not pay torchvision's 2-5 s import

        resnet = torchvision.models.resnet34(weights=None)
        self.channels = RESNET34_CHANNELS[:depth]
        self.conv1 = resnet.conv1 if in_channels == 3 else nn.Conv2d(in_channels, 64, 7, 2, 3, bias=False)
        self.bn1, self.relu, self.maxpool = resnet.bn1, resnet.relu, resnet.maxpool
        self.stages = tuple(f"layer{k}" for k in range(1, depth - 1))
        for name in self.stages:
            setattr(self, name, getattr(resnet, name))
        if weights is not None:
            load_encoder_weights(self, weights)

    def forward(self, x: Tensor) -> list[Tensor | None]:
        x = self.relu(self.bn1(self.conv1(x)))
        features: list[Tensor | None] = [None, x]
        x = self.maxpool(x)
        for name in self.stages:
            x = getattr(self, name)(x)
            features.append(x)
        return features


def _read_state_dict(path: Path) -> Mapping[str, Tensor]:
    if not path.is_file():
        raise CheckpointError(f"encoder weights file {str(path)!r} does not exist")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # any reader error means "not a file we can load"; say what we expected
        raise CheckpointError(
            f"cannot read encoder weights from {str(path)!r}: {type(exc).__name__}: {exc}; expected a "
            f"'.safetensors' file or a torch state dict saved with torch.save(model.state_dict(), path)"
        ) from None
    if isinstance(state, Mapping) and isinstance(state.get("state_dict"), Mapping):
        state = state["state_dict"]
    if not isinstance(state, Mapping) or not all(isinstance(k, str) and isinstance(v, Tensor)
                                                 for k, v in state.items()):
        raise CheckpointError(f"{str(path)!r} holds a {type(state).__name__}, not a state dict of tensors")
    return {k.removeprefix("module."): v for k, v in state.items()}


def _adapt_first_conv(weight: Tensor, in_channels: int) -> Tensor:
    """RGB conv1 weights for ``in_channels`` inputs: summed for 1, else repeated and rescaled (smp's rule)."""
    if in_channels == 1:
        return weight.sum(dim=1, keepdim=True)
    repeated = weight.repeat(1, math.ceil(in_channels / weight.shape[1]), 1, 1)[:, :in_channels]
    return repeated * (weight.shape[1] / in_channels)


def load_encoder_weights(encoder: ResNetEncoder, path: str | Path) -> None:
    """Load a torchvision ResNet-34 state dict from a local file into ``encoder``.

    Args:
        encoder: the encoder to fill.
        path: a ``.safetensors`` file, or any other file readable by ``torch.load(weights_only=True)``.
            ``fc.*`` keys and the stages the encoder does not build are ignored; a ``state_dict`` entry and a
            ``module.`` key prefix are unwrapped.

    Raises:
        CheckpointError: the file is missing, unreadable, not a state dict, or does not match ResNet-34.
    """
    path = Path(path)
    state = dict(_read_state_dict(path))
    expected = encoder.state_dict()
    in_channels = expected["conv1.weight"].shape[1]
    rgb = state.get("conv1.weight")
    if rgb is not None and rgb.ndim == 4 and rgb.shape[1] != in_channels:
        state["conv1.weight"] = _adapt_first_conv(rgb, in_channels)
    skipped = ("fc.", *(f"layer{k}." for k in range(len(encoder.stages) + 1, 5)))
    state = {k: v for k, v in state.items() if not k.startswith(skipped)}
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(k for k in set(state) & set(expected) if state[k].shape != expected[k].shape)
    if missing or unexpected or wrong:
        parts = [f"{label}: {', '.join(keys[:5])}{' ...' if len(keys) > 5 else ''}"
                 for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong))
                 if keys]
        raise CheckpointError(f"{str(path)!r} is not a torchvision ResNet-34 state dict ({'; '.join(parts)})")
    encoder.load_state_dict(state)


def unet_resnet34(*, in_channels: int, num_classes: int, width: int = 16, depth: int = 6,
                  block: str = "double-conv", up_mode: str = "transpose", gate: str | None = None,
                  decoder_attention: str | None = None, pad_mode: str = "reflect",
                  weights: str | None = None) -> UNet:
    """U-Net with a torchvision ResNet-34 encoder (He et al. 2016); weights only from a local file.

    Args:
        in_channels: image channels.
        num_classes: output channels (logits).
        width: channels of the last decoder stage, doubling towards the deepest (16 -> 256, 128, 64, 32, 16).
        depth: levels 2..6 (6 uses all of ResNet-34; inputs are padded to a multiple of ``2**(depth-1)``).
        block: decoder block, ``"double-conv"`` or ``"residual"``.
        up_mode: ``"transpose"``, ``"bilinear"``, ``"nearest"`` or ``"pixelshuffle"``.
        gate: None or ``"attention"``.
        decoder_attention: None or ``"scse"``.
        pad_mode: ``"reflect"`` or ``"zeros"``.
        weights: path of a local encoder weights file (safetensors or torch state dict); None: random init.
    """
    encoder = ResNetEncoder(in_channels, depth=depth, weights=weights)
    positive_int("width", width)
    decoder_widths = tuple(width * 2**k for k in reversed(range(depth - 1)))
    return UNet(in_channels=in_channels, num_classes=num_classes, encoder=encoder, decoder_widths=decoder_widths,
                block=block, up_mode=up_mode, gate=gate, decoder_attention=decoder_attention,  # type: ignore[arg-type]
                pad_mode=pad_mode)  # type: ignore[arg-type]


MODELS: tuple[ModelSpec, ...] = (ModelSpec("unet-resnet34", unet_resnet34, tags=("pretrainable", "residual")),)

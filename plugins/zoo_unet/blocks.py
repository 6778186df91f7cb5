"""Building blocks of the U-Net family: conv blocks, upsampling, skip gates, decoder attention, padding.

Every block builds all of its layers in ``__init__``; forwards use only stateless functions
(``torch.cat``, ``F.interpolate``, ``F.pad``) besides the registered layers.

Contents: ``DoubleConv`` (Ronneberger et al. 2015), ``ResidualBlock`` (He et al. 2016), ``UpSample``
(transposed conv, interpolation + conv, or sub-pixel conv with ICNR init), ``AttentionGate`` (Oktay et al.
2018), ``SCSE`` (Roy et al. 2018), ``pad_to_multiple``.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from zoo.errors import OptionError

__all__ = [
    "UpMode",
    "PadMode",
    "UP_MODES",
    "PAD_MODES",
    "UNetOptionError",
    "choose",
    "positive_int",
    "DoubleConv",
    "ResidualBlock",
    "UpSample",
    "icnr_",
    "AttentionGate",
    "SCSE",
    "pad_to_multiple",
]

UpMode = Literal["transpose", "bilinear", "nearest", "pixelshuffle"]
PadMode = Literal["reflect", "zeros"]
UP_MODES: tuple[str, ...] = ("transpose", "bilinear", "nearest", "pixelshuffle")
PAD_MODES: tuple[str, ...] = ("reflect", "zeros")


class UNetOptionError(OptionError, ValueError):
    """A bad U-Net option value (a ``zoo.errors.OptionError`` and a ``ValueError``)."""


def choose(option: str, value: object, choices: Iterable[str]) -> str:
    """Return ``value`` if it is one of ``choices``, else raise ``UNetOptionError`` naming them."""
    choices = tuple(choices)
    if isinstance(value, str) and value in choices:
        return value
    message = f"{option}={value!r} is not one of {choices}"
    close = difflib.get_close_matches(str(value), choices, n=1)
    if close:
        message += f"; did you mean {close[0]!r}?"
    raise UNetOptionError(message)


def positive_int(option: str, value: object, minimum: int = 1) -> int:
    """Return ``value`` if it is an int >= ``minimum``, else raise ``UNetOptionError``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise UNetOptionError(f"{option}={value!r} must be an integer >= {minimum}")
    return value


def _norm(channels: int, batch_norm: bool) -> nn.Module:
    return nn.BatchNorm2d(channels) if batch_norm else nn.Identity()


class DoubleConv(nn.Sequential):
    """Two (3x3 conv -> BN -> ReLU) layers: one U-Net level (Ronneberger et al., 2015).

    The convs are padded (the output has the input's size). With ``batch_norm`` the convs have no bias,
    since BN's shift makes it redundant; without it (the paper's layout) they do.

    Args:
        in_channels: input channels.
        out_channels: output channels of both convs.
        batch_norm: put a ``BatchNorm2d`` after each conv.

    Shapes: ``(N, in_channels, H, W) -> (N, out_channels, H, W)``.
    """

    def __init__(self, in_channels: int, out_channels: int, *, batch_norm: bool = True) -> None:
        super().__init__(
            nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=not batch_norm),
            _norm(out_channels, batch_norm),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=not batch_norm),
            _norm(out_channels, batch_norm),
            nn.ReLU(inplace=True),
        )


class ResidualBlock(nn.Module):
    """A residual basic block (He et al., 2016) in place of ``DoubleConv``, as in ResUNet (Zhang et al., 2018).

    ``relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))``, where the shortcut is a 1x1 conv + BN when the
    channel count changes and the identity otherwise. (Zhang et al. use the pre-activation order; the
    post-activation order used here needs no special first block.)

    Args:
        in_channels: input channels.
        out_channels: output channels.
        batch_norm: use BN after each conv (otherwise the convs get a bias).

    Shapes: ``(N, in_channels, H, W) -> (N, out_channels, H, W)``.
    """

    def __init__(self, in_channels: int, out_channels: int, *, batch_norm: bool = True) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=not batch_norm)
        self.bn1 = _norm(out_channels, batch_norm)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=not batch_norm)
        self.bn2 = _norm(out_channels, batch_norm)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut: nn.Module = nn.Identity()
        if in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, bias=not batch_norm), _norm(out_channels, batch_norm)
            )

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


def icnr_(weight: Tensor, scale: int = 2, init: type | None = None) -> Tensor:
    """ICNR initialisation (Aitken et al., 2017) of a conv weight that feeds ``PixelShuffle(scale)``.

    The ``scale**2`` sub-pixel kernels of each output channel start identical, so the sub-pixel conv starts
    as "conv, then nearest-neighbour upsampling" and produces no checkerboard artefacts at initialisation.
    """
    out_channels, *rest = weight.shape
    base = torch.empty(out_channels // scale**2, *rest, dtype=weight.dtype, device=weight.device)
    nn.init.kaiming_normal_(base, nonlinearity="relu")
    # PixelShuffle reads output channel c from input channels c*scale**2 ... c*scale**2 + scale**2 - 1.
    with torch.no_grad():
        weight.copy_(base.repeat_interleave(scale**2, dim=0))
    return weight


class UpSample(nn.Module):
    """Double the spatial size and map ``in_channels`` to ``out_channels``.

    Modes:
        ``transpose``: a 2x2 transposed conv with stride 2 (Ronneberger et al., 2015).
        ``bilinear`` / ``nearest``: interpolation and a 1x1 conv (MONAI's "nontrainable" upsampling). The 1x1
            conv runs before the interpolation: both are linear per pixel, so the result is the same at a
            quarter of the cost.
        ``pixelshuffle``: a 3x3 conv to ``4 * out_channels`` then ``PixelShuffle(2)`` (sub-pixel conv, Shi et
            al., 2016), ICNR-initialised (Aitken et al., 2017).

    Shapes: ``(N, in_channels, H, W) -> (N, out_channels, 2H, 2W)``.
    """

    def __init__(self, in_channels: int, out_channels: int, mode: UpMode = "transpose") -> None:
        super().__init__()
        self.mode = choose("up_mode", mode, UP_MODES)
        self.shuffle: nn.Module | None = None
        if mode == "transpose":
            self.conv: nn.Module = nn.ConvTranspose2d(in_channels, out_channels, 2, stride=2)
        elif mode == "pixelshuffle":
            self.conv = nn.Conv2d(in_channels, out_channels * 4, 3, padding=1)
            icnr_(self.conv.weight)
            nn.init.zeros_(self.conv.bias)
            self.shuffle = nn.PixelShuffle(2)
        else:
            self.conv = nn.Conv2d(in_channels, out_channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv(x)
        if self.shuffle is not None:
            return self.shuffle(x)
        if self.mode in ("bilinear", "nearest"):
            return F.interpolate(x, scale_factor=2.0, mode=self.mode,
                                 align_corners=False if self.mode == "bilinear" else None)
        return x


class AttentionGate(nn.Module):
    """Additive attention gate on a skip connection (Oktay et al., 2018, "Attention U-Net").

    ``psi = sigmoid(BN(conv(relu(W_g g + W_x x))))`` and the gate returns ``x * psi``. Here ``g`` is the decoder
    feature after upsampling, so ``g`` and ``x`` share a resolution (as in MONAI's ``AttentionUnet``; the paper
    instead strides ``W_x`` and resamples ``psi``). Names follow the paper.

    Args:
        gating_channels: channels of ``g`` (the upsampled decoder feature).
        skip_channels: channels of ``x`` (the encoder skip).
        inter_channels: channels of the joint space; default ``skip_channels // 2``.

    Shapes: ``g (N, gating_channels, H, W)``, ``x (N, skip_channels, H, W) -> (N, skip_channels, H, W)``.
    """

    def __init__(self, gating_channels: int, skip_channels: int, inter_channels: int | None = None) -> None:
        super().__init__()
        inter = inter_channels or max(skip_channels // 2, 1)
        self.W_g = nn.Sequential(nn.Conv2d(gating_channels, inter, 1, bias=False), nn.BatchNorm2d(inter))
        self.W_x = nn.Sequential(nn.Conv2d(skip_channels, inter, 1, bias=False), nn.BatchNorm2d(inter))
        self.psi = nn.Sequential(nn.Conv2d(inter, 1, 1, bias=False), nn.BatchNorm2d(1), nn.Sigmoid())
        self.relu = nn.ReLU(inplace=True)

    def forward(self, g: Tensor, x: Tensor) -> Tensor:
        psi = self.psi(self.relu(self.W_g(g) + self.W_x(x)))
        return x * psi


class SCSE(nn.Module):
    """Concurrent spatial and channel squeeze & excitation (Roy et al., 2018): ``x * cSE(x) + x * sSE(x)``.

    Args:
        channels: channels of the feature map.
        reduction: channel reduction of the cSE bottleneck.

    Shapes: ``(N, channels, H, W) -> (N, channels, H, W)``.
    """

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        hidden = max(channels // reduction, 1)
        self.cSE = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Conv2d(channels, hidden, 1), nn.ReLU(inplace=True),
            nn.Conv2d(hidden, channels, 1), nn.Sigmoid(),
        )
        self.sSE = nn.Sequential(nn.Conv2d(channels, 1, 1), nn.Sigmoid())

    def forward(self, x: Tensor) -> Tensor:
        return x * self.cSE(x) + x * self.sSE(x)


def pad_to_multiple(x: Tensor, multiple: int, mode: PadMode = "reflect") -> Tensor:
    """Pad ``x`` at the bottom and right so that its height and width are multiples of ``multiple``.

    ``reflect`` mirrors the image (no artificial edge for the convs to respond to); when the image is too small
    to mirror (padding >= size), it repeats the border pixels instead. ``zeros`` pads with zeros.
    """
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph == 0 and pw == 0:
        return x
    if mode == "zeros":
        return F.pad(x, (0, pw, 0, ph))
    return F.pad(x, (0, pw, 0, ph), mode="reflect" if ph < h and pw < w else "replicate")

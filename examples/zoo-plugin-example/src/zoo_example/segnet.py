"""SegNet-style encoder-decoder (Badrinarayanan, Kendall and Cipolla, TPAMI 2017), small and configurable.

Unlike a U-Net, the decoder gets no encoder features: it upsamples with the encoder's max-pooling *switches*,
placing each value back where its maximum came from. The switches are kept as a mask, not as ``MaxUnpool2d``
indices: ``max_unpool2d`` has no deterministic implementation, and zoo's benchmark trains with
``torch.use_deterministic_algorithms(True)`` (the kit's ``deterministic-algorithms`` check caught this).
Any input size works: odd rows and columns that pooling drops come back as zeros.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["SegNet", "segnet"]


def _conv_block(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False), nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
        nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False), nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class SegNet(nn.Module):
    """Encoder (conv blocks + max-pooling, switches kept) and mirrored decoder (unpooling + conv blocks).

    Args:
        in_channels: image channels.
        num_classes: output channels (raw logits, no activation).
        widths: channels per level, e.g. ``(8, 16, 32)``; the depth is ``len(widths)``.

    Shapes: ``(N, in_channels, H, W)`` -> ``(N, num_classes, H, W)`` for any H, W >= 2 ** depth.
    """

    def __init__(self, in_channels: int, num_classes: int, widths: tuple[int, ...]) -> None:
        super().__init__()
        channels = (in_channels, *widths)
        self.encoders = nn.ModuleList(_conv_block(a, b) for a, b in zip(channels[:-1], channels[1:]))
        # decoder level i maps widths[i] back to widths[i - 1] (the last one to widths[0])
        outs = (widths[0], *widths[:-1])
        self.decoders = nn.ModuleList(_conv_block(w, o) for w, o in zip(widths, outs))
        self.head = nn.Conv2d(widths[0], num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C, H, W)`` -> raw logits ``(N, num_classes, H, W)``."""
        switches = []
        for encoder in self.encoders:
            x = encoder(x)
            pooled = F.max_pool2d(x, 2)
            switches.append(x == _upsample(pooled, x.shape[-2:]))
            x = pooled
        for decoder in reversed(self.decoders):
            switch = switches.pop()
            x = decoder(_upsample(x, switch.shape[-2:]) * switch)
        return self.head(x)


def _upsample(x: torch.Tensor, size: torch.Size) -> torch.Tensor:
    """Each value to its 2x2 block, zero-padded to ``size`` (pooling dropped an odd last row or column)."""
    up = F.interpolate(x, scale_factor=2.0, mode="nearest")
    return F.pad(up, (0, size[-1] - up.shape[-1], 0, size[-2] - up.shape[-2]))


def segnet(*, in_channels: int, num_classes: int, width: int = 16, depth: int = 3) -> nn.Module:
    """SegNet-style encoder-decoder: max-pooling indices instead of skip connections (Badrinarayanan 2017).

    Args:
        in_channels: image channels.
        num_classes: output channels.
        width: channels at the first level; doubled at each level below.
        depth: number of pooling levels.
    """
    if width < 1 or depth < 1:
        from zoo.errors import OptionError

        raise OptionError(f"width={width} and depth={depth} must both be >= 1")
    return SegNet(in_channels, num_classes, tuple(width * 2**i for i in range(depth)))

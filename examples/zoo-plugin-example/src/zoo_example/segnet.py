"""SegNet-style encoder-decoder (Badrinarayanan, Kendall and Cipolla, TPAMI 2017), small and configurable.

Unlike a U-Net, the decoder gets no encoder features: it upsamples with the encoder's max-pooling *indices*
(``MaxUnpool2d``), which places each value back where its maximum came from. Any input size works: unpooling
is given the pre-pooling size, so odd sizes round-trip.
"""

from __future__ import annotations

import torch
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
    """Encoder (conv blocks + max-pooling with indices) and mirrored decoder (unpooling + conv blocks).

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
        self.pool = nn.MaxPool2d(2, 2, return_indices=True)
        self.unpool = nn.MaxUnpool2d(2, 2)
        self.head = nn.Conv2d(widths[0], num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C, H, W)`` -> raw logits ``(N, num_classes, H, W)``."""
        trail = []
        for encoder in self.encoders:
            x = encoder(x)
            size = x.shape[-2:]
            x, indices = self.pool(x)
            trail.append((indices, size))
        for decoder in reversed(self.decoders):
            indices, size = trail.pop()
            x = decoder(self.unpool(x, indices, output_size=size))
        return self.head(x)


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

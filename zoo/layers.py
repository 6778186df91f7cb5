"""Layers that model plugins share (public API for plugin authors, like ``zoo.interfaces``)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["PadToMultiple"]


class PadToMultiple(nn.Module):
    """Run ``model`` on the input padded to a multiple of ``multiple`` and crop its output back.

    Wraps a model that needs H and W divisible by its output stride so that it meets zoo's model contract (any
    input size in, logits of the input's size out).

    Args:
        model: maps ``(N, C, H', W')`` with ``H', W'`` multiples of ``multiple`` to ``(N, K, H', W')``.
        multiple: the size the model needs H and W to be divisible by.
    """

    def __init__(self, model: nn.Module, multiple: int) -> None:
        super().__init__()
        if multiple < 1:
            raise ValueError(f"multiple={multiple!r} must be a positive int")
        self.model = model
        self.multiple = multiple

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C, H, W)`` -> ``(N, K, H, W)`` raw logits."""
        h, w = x.shape[-2:]
        pad_h, pad_w = -h % self.multiple, -w % self.multiple
        if pad_h or pad_w:
            # replicate, not zeros: a black border would be a fake edge next to the image content
            x = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
        return self.model(x)[..., :h, :w]

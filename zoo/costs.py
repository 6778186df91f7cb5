"""What a model costs: trainable parameters and multiply-accumulates of one forward pass."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import nn

__all__ = ["count_parameters", "count_gmacs"]


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def count_gmacs(model: nn.Module, in_channels: int, image_size: int | tuple[int, int]) -> float:
    """Multiply-accumulates (in billions) of one forward pass on one image, by ``torch.utils.flop_counter``."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    h, w = (image_size, image_size) if isinstance(image_size, int) else image_size
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    was_training = model.training
    model.eval()
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(torch.zeros(1, in_channels, h, w, device=device))
    model.train(was_training)
    return counter.get_total_flops() / 2 / 1e9  # flop_counter counts a multiply-add as 2 FLOPs

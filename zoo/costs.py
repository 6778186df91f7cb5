"""What a model costs: trainable parameters and multiply-accumulates of one forward pass."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import nn

__all__ = ["count_parameters", "count_gmacs", "model_stride", "DEFAULT_STRIDE"]

DEFAULT_STRIDE = 32  # a depth-6 encoder; what a model that states nothing is assumed to need


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


def model_stride(model: nn.Module) -> int:
    """The multiple a model wants H and W to be (it pads other sizes itself; padding is wasted compute).

    Read from the first module (in ``model.modules()`` order) with an int ``size_multiple`` (zoo's U-Nets)
    or ``multiple`` (:class:`zoo.layers.PadToMultiple`); :data:`DEFAULT_STRIDE` when none states it.
    """
    for module in model.modules():
        for name in ("size_multiple", "multiple"):
            value = getattr(module, name, None)
            if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
                return value
    return DEFAULT_STRIDE

"""zoo.layers: shared layers for model plugins."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from zoo.layers import PadToMultiple


class _NeedsMultipleOf8(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert x.shape[-2] % 8 == 0 and x.shape[-1] % 8 == 0, x.shape
        return x[:, :1] * 2


def test_pads_to_the_multiple_and_crops_back():
    x = torch.rand(2, 3, 13, 21)
    out = PadToMultiple(_NeedsMultipleOf8(), 8)(x)
    assert out.shape == (2, 1, 13, 21)
    assert torch.equal(out, x[:, :1] * 2)  # replicate padding, cropped back: the image's own pixels unchanged


def test_divisible_input_is_untouched_and_bad_multiple_is_an_error():
    x = torch.rand(1, 3, 16, 24)
    assert torch.equal(PadToMultiple(_NeedsMultipleOf8(), 8)(x), x[:, :1] * 2)
    with pytest.raises(ValueError, match="multiple=0"):
        PadToMultiple(nn.Identity(), 0)

"""Prediction to class indices, padding, and sliding-window inference with blended tiles."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from zoo.inference import logits_to_classes, predict_classes, predict_logits, sliding_window_logits


def test_one_channel_means_logit_above_zero_else_argmax():
    one = torch.tensor([[[[-1.0, 0.0, 2.0]]]])
    assert logits_to_classes(one).tolist() == [[[0, 0, 1]]]
    many = torch.tensor([[[[0.0, 5.0]], [[1.0, 0.0]], [[-1.0, 9.0]]]])
    assert logits_to_classes(many).tolist() == [[[1, 2]]]


class _NeedsMultiple(nn.Module):
    """A per-pixel model that, like a U-Net, only takes sides divisible by 32."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert x.shape[-1] % 32 == 0 and x.shape[-2] % 32 == 0, x.shape
        return torch.cat([x[:, :1], 2 * x[:, :1]], dim=1)


def test_padding_lets_any_size_through_and_crops_back():
    x = torch.randn(2, 1, 45, 70)
    out = predict_logits(_NeedsMultiple(), x)
    assert out.shape == (2, 2, 45, 70) and torch.equal(out[:, 0], x[:, 0])


@pytest.mark.parametrize("overlap", [0.0, 0.25, 0.5])
def test_sliding_window_of_a_pointwise_model_equals_whole_image(overlap):
    torch.manual_seed(0)
    model = nn.Conv2d(3, 4, 1)
    x = torch.randn(2, 3, 50, 77)
    with torch.no_grad():
        whole = model(x)
        tiled = sliding_window_logits(model, x, tile=32, overlap=overlap, batch_size=3)
    assert tiled.shape == whole.shape
    torch.testing.assert_close(tiled, whole, atol=1e-5, rtol=1e-5)


def test_sliding_window_blends_overlaps_instead_of_overwriting():
    class Position(nn.Module):  # output depends on where in the tile a pixel sits: tiles disagree
        def forward(self, x):
            h, w = x.shape[-2:]
            return torch.linspace(0, 1, w).expand(x.shape[0], 1, h, w).clone()

    out = sliding_window_logits(Position(), torch.zeros(1, 1, 32, 48), tile=32, overlap=0.5)
    # columns 16..31 are covered by two tiles: the result lies strictly between the two tiles' values
    left, right = torch.linspace(0, 1, 32)[16:32], torch.linspace(0, 1, 32)[0:16]
    mid = out[0, 0, 5, 16:32]
    assert torch.all(mid <= torch.maximum(left, right) + 1e-6) and torch.all(mid >= torch.minimum(left, right) - 1e-6)
    assert not torch.allclose(mid, left) and not torch.allclose(mid, right)


def test_small_images_and_bad_overlap():
    model = nn.Conv2d(1, 1, 1)
    assert sliding_window_logits(model, torch.randn(1, 1, 10, 12), tile=32).shape == (1, 1, 10, 12)
    with pytest.raises(ValueError, match="overlap"):
        sliding_window_logits(model, torch.randn(1, 1, 10, 12), tile=32, overlap=1.0)


def test_predict_classes_tiled_matches_whole_for_pointwise_model():
    torch.manual_seed(1)
    model = nn.Conv2d(1, 3, 1)
    x = torch.randn(1, 1, 40, 64)
    assert torch.equal(predict_classes(model, x), predict_classes(model, x, tile=32))

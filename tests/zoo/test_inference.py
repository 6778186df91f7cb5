"""Prediction to class indices, padding, and sliding-window inference with blended tiles."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from zoo.inference import (
    logits_to_classes, predict_classes, predict_logits, sliding_window_logits, window_weight,
)


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


# ----------------------------------------------------------------------------------------------------------------
# constant and gaussian blending: MONAI's sliding_window_inference as the oracle


def _conv_net(seed: int = 0) -> nn.Module:
    """A small net whose output depends on context (3x3 convs), so windows disagree near their edges."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(),
                         nn.Conv2d(8, 3, 3, padding=1)).eval()


@pytest.mark.parametrize("blend", ["constant", "gaussian"])
@pytest.mark.parametrize(("size", "tile", "overlap"), [
    ((70, 90), (32, 32), 0.5), ((70, 90), (32, 48), 0.25), ((64, 96), (32, 32), 0.0), ((50, 61), (16, 32), 0.75),
    ((20, 90), (32, 32), 0.5),  # one side smaller than the window: padded like MONAI (zeros, centred)
    ((32, 64), (32, 32), 0.5),  # one side exactly the window
])
def test_matches_monai_sliding_window_inference(blend, size, tile, overlap):
    monai_inferers = pytest.importorskip("monai.inferers")
    model = _conv_net()
    torch.manual_seed(1)
    x = torch.randn(2, 3, *size)
    with torch.inference_mode():
        ours = sliding_window_logits(model, x, tile=tile, overlap=overlap, batch_size=3, pad_multiple=1, blend=blend)
        theirs = monai_inferers.sliding_window_inference(x, tile, 3, model, overlap=overlap, mode=blend,
                                                         sigma_scale=0.125)
    assert ours.shape == theirs.shape == (2, 3, *size)
    assert (ours - theirs).abs().max().item() <= 1e-5


def test_window_weight_is_monais_importance_map():
    monai_utils = pytest.importorskip("monai.data.utils")
    for tile in [(32, 32), (24, 40), (7, 5)]:
        for blend in ("constant", "gaussian"):
            expected = monai_utils.compute_importance_map(tile, mode=blend, sigma_scale=0.125)
            assert torch.equal(window_weight(tile, blend), expected)


@pytest.mark.parametrize("blend", ["constant", "gaussian"])
@pytest.mark.parametrize("size", [(32, 32), (20, 27)])
def test_an_image_that_fits_one_window_equals_whole_image_inference(blend, size):
    model = _conv_net(2)
    x = torch.randn(2, 3, *size)
    with torch.inference_mode():
        whole = predict_logits(model, x)
        tiled = sliding_window_logits(model, x, tile=32, blend=blend)
    assert torch.equal(tiled, whole)
    assert torch.equal(predict_classes(model, x, tile=32, blend=blend), predict_classes(model, x))


def test_gaussian_blending_of_a_pointwise_model_equals_whole_image():
    torch.manual_seed(3)
    model = nn.Conv2d(3, 4, 1)
    x = torch.randn(2, 3, 50, 77)
    with torch.no_grad():
        torch.testing.assert_close(sliding_window_logits(model, x, tile=(16, 32), blend="gaussian"), model(x),
                                   atol=1e-5, rtol=1e-5)


def test_unknown_blend_and_bad_tile():
    model = nn.Conv2d(1, 1, 1)
    with pytest.raises(ValueError, match="blend"):
        sliding_window_logits(model, torch.randn(1, 1, 40, 40), tile=32, blend="cosine")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="tile"):
        sliding_window_logits(model, torch.randn(1, 1, 40, 40), tile=(0, 32))

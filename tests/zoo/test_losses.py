"""Losses: defaults, output channels, hand-computed values, ignore_index masking, finite gradients, errors."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torchvision.ops import sigmoid_focal_loss

from zoo.errors import OptionError, UnknownNameError
from zoo.losses import (
    LOSSES,
    BCELoss,
    CELoss,
    FocalLoss,
    SoftDiceLoss,
    SumLoss,
    build_loss,
    default_loss,
    model_out_channels,
)


def random_batch(channels: int, num_classes: int, seed: int = 0, ignore: int | None = 255):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(2, channels, 6, 6, generator=g, requires_grad=True)
    target = torch.randint(0, num_classes, (2, 6, 6), generator=g)
    if ignore is not None:
        target[:, 0] = ignore
    return logits, target


def test_defaults_follow_the_task() -> None:
    assert default_loss(2) == "bce"
    assert default_loss(3) == "ce"
    assert isinstance(build_loss(None, num_classes=2), BCELoss)
    assert isinstance(build_loss(None, num_classes=5), CELoss)
    with pytest.raises(OptionError, match="num_classes=1"):
        default_loss(1)


@pytest.mark.parametrize(
    ("loss", "binary", "multi"),
    [("bce", 1, None), ("dice+bce", 1, None), ("ce", 2, 4), ("dice", 2, 4), ("dice+ce", 2, 4), ("focal", 2, 4)],
)
def test_model_out_channels(loss: str, binary: int, multi: int | None) -> None:
    assert model_out_channels(loss, 2) == binary
    if multi is None:
        with pytest.raises(OptionError, match=r"binary tasks.*4 classes.*ce, dice, dice\+ce, focal"):
            model_out_channels(loss, 4)
        with pytest.raises(OptionError):
            build_loss(loss, num_classes=4)
    else:
        assert model_out_channels(loss, 4) == multi


def test_unknown_loss_names_the_choices() -> None:
    message = r"unknown loss 'dice\+bc'; did you mean 'dice\+bce'.*available: bce, ce"
    with pytest.raises(UnknownNameError, match=message):
        build_loss("dice+bc", num_classes=2)


def test_bce_hand_computed_and_masked() -> None:
    logits = torch.zeros(1, 1, 1, 3)
    logits[0, 0, 0, 2] = 100.0  # confidently wrong, but the pixel is ignored
    target = torch.tensor([[[1, 0, 255]]])
    assert build_loss("bce", num_classes=2, ignore_index=255)(logits, target).item() == pytest.approx(math.log(2))
    # without ignore_index the 255 pixel is background (target == 1 is the foreground): a loss of about 100
    unmasked = build_loss("bce", num_classes=2)(logits, target).item()
    assert unmasked == pytest.approx((2 * math.log(2) + 100) / 3, rel=1e-4)


def test_ce_matches_torch_with_ignore_index() -> None:
    logits, target = random_batch(4, 4)
    expected = F.cross_entropy(logits, target, ignore_index=255)
    assert build_loss("ce", num_classes=4, ignore_index=255)(logits, target).item() == pytest.approx(expected.item())


def test_soft_dice_hand_computed() -> None:
    # sigmoid(0) = 0.5 on 4 pixels, 2 of them foreground: (2 * 1 + 1) / (2 + 2 + 1) = 0.6
    logits, target = torch.zeros(1, 1, 2, 2), torch.tensor([[[1, 1], [0, 0]]])
    assert build_loss("dice+bce", num_classes=2)(logits, target).item() == pytest.approx(0.4 + math.log(2))
    assert SoftDiceLoss(channels=1)(logits, target).item() == pytest.approx(0.4)
    assert SoftDiceLoss(channels=1, smooth=0.0)(logits, target).item() == pytest.approx(0.5)
    # softmax over 2 equal logits is 0.5 for each class; each class has 2 pixels: both Dice 0.6
    assert build_loss("dice", num_classes=2)(torch.zeros(1, 2, 2, 2), target).item() == pytest.approx(0.4)
    # a perfect, confident prediction: loss 0
    perfect = F.one_hot(target, 2).permute(0, 3, 1, 2).float() * 200 - 100
    assert build_loss("dice", num_classes=2)(perfect, target).item() == pytest.approx(0.0, abs=1e-6)


def test_soft_dice_ignores_void_pixels() -> None:
    logits, target = random_batch(3, 3)
    loss = build_loss("dice", num_classes=3, ignore_index=255)
    changed = logits.detach().clone()
    changed[:, :, 0] = 50.0 * torch.randn(2, 3, 6)  # only the ignored row changes
    assert loss(changed, target).item() == pytest.approx(loss(logits, target).item())


def test_focal_matches_references() -> None:
    logits, target = random_batch(1, 2, ignore=None)
    expected = sigmoid_focal_loss(logits[:, 0], (target == 1).float(), alpha=-1, gamma=2.0, reduction="mean")
    assert FocalLoss(channels=1)(logits, target).item() == pytest.approx(expected.item())
    logits, target = random_batch(3, 3)
    probs = logits.softmax(1)
    valid = target != 255
    p_t = probs.gather(1, torch.where(valid, target, 0).unsqueeze(1)).squeeze(1)[valid]
    expected = (-(1 - p_t) ** 2 * p_t.log()).mean()
    focal = build_loss("focal", num_classes=3, ignore_index=255)
    assert focal(logits, target).item() == pytest.approx(expected.item())
    ce = build_loss("ce", num_classes=3, ignore_index=255)(logits, target)
    assert FocalLoss(channels=3, ignore_index=255, gamma=0.0)(logits, target).item() == pytest.approx(ce.item())
    assert focal(logits, target).item() < ce.item()


def test_sum_losses_add_their_parts() -> None:
    logits, target = random_batch(3, 3)
    combined = build_loss("dice+ce", num_classes=3, ignore_index=255)
    assert isinstance(combined, SumLoss)
    parts = (build_loss(n, num_classes=3, ignore_index=255)(logits, target) for n in ("dice", "ce"))
    assert combined(logits, target).item() == pytest.approx(sum(p.item() for p in parts))


@pytest.mark.parametrize("name", LOSSES)
def test_gradients_are_finite_even_for_extreme_or_void_batches(name: str) -> None:
    num_classes = 2 if name in ("bce", "dice+bce") else 3
    channels = model_out_channels(name, num_classes)
    loss = build_loss(name, num_classes=num_classes, ignore_index=255)
    logits, target = random_batch(channels, num_classes)
    with torch.no_grad():
        logits.mul_(100)  # saturated sigmoid/softmax
    value = loss(logits, target)
    value.backward()
    assert value.ndim == 0 and torch.isfinite(value)
    assert torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0
    assert (logits.grad[:, :, 0] == 0).all()  # the ignored row gets no gradient

    void = torch.full_like(target, 255)
    logits.grad = None
    value = loss(logits, void)
    value.backward()
    assert value.item() == pytest.approx(0.0, abs=1e-6) and torch.isfinite(logits.grad).all()


def test_low_precision_logits_are_promoted() -> None:
    logits, target = random_batch(3, 3)
    loss = build_loss("dice+ce", num_classes=3, ignore_index=255)
    value = loss(logits.detach().bfloat16(), target)
    assert value.dtype == torch.float32
    assert value.item() == pytest.approx(loss(logits.detach(), target).item(), rel=2e-2)


def test_wrong_shapes_are_refused() -> None:
    loss = build_loss("bce", num_classes=2)
    with pytest.raises(ValueError, match=r"expects 1 logit channel\(s\), got 2.*model_out_channels"):
        loss(torch.zeros(1, 2, 4, 4), torch.zeros(1, 4, 4, dtype=torch.int64))
    with pytest.raises(ValueError, match=r"\(N, K, H, W\)"):
        loss(torch.zeros(1, 1, 4, 4), torch.zeros(1, 4, 5, dtype=torch.int64))


@pytest.mark.parametrize("channels", [1, 3])
def test_focal_gamma_below_one_keeps_gradients_finite(channels: int) -> None:
    target = torch.ones(1, 2, 2, dtype=torch.int64)
    logits = torch.zeros(1, channels, 2, 2)
    logits[:, 1 if channels > 1 else 0] = 200.0  # p_t == 1 exactly
    logits.requires_grad_(True)
    FocalLoss(channels=channels, gamma=0.5)(logits, target).backward()
    assert torch.isfinite(logits.grad).all()

"""Training losses, chosen by name: ``bce``, ``ce``, ``dice``, ``dice+bce``, ``dice+ce``, ``focal``.

Every loss maps raw logits ``(N, K, H, W)`` and an int64 target ``(N, H, W)`` of class indices to a scalar: the
mean over the pixels whose target is not ``ignore_index`` (0 if every pixel is ignored, so a batch of void never
makes the loss NaN). Logits are promoted to float32 first, so the losses are safe under autocast.

- ``bce``: binary cross-entropy with logits on a single output channel (``K=1``); the target is ``target == 1``.
  Binary tasks only (``num_classes=2``). The default for binary tasks, as in the blog post the project grew from.
- ``ce``: softmax cross-entropy over ``K = num_classes`` channels. The default for multi-class tasks.
- ``dice``: soft Dice loss ``1 - mean_c (2 sum(p g) + s) / (sum p + sum g + s)`` with softmax probabilities over
  all ``K`` channels (background included) and one-hot targets, summed over the whole batch per class ("batch
  Dice", steadier than per image). The smooth term ``s = 1`` keeps the loss defined (and its gradient finite) when
  a class is absent from a batch.
- ``dice+bce``: the soft Dice of the sigmoid foreground probability plus BCE, equal weights, on one channel
  (binary only).
- ``dice+ce``: soft Dice plus cross-entropy, equal weights, on ``K`` channels.
- ``focal``: the focal loss of Lin et al., 2017 (``-(1 - p_t)^gamma log p_t``, ``gamma = 2``, no alpha
  weighting), softmax over ``K`` channels. With ``gamma = 0`` it is cross-entropy.

``model_out_channels(loss, num_classes)`` says how many channels the model must output for a loss: 1 for the
BCE family on a binary task, ``num_classes`` otherwise.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from zoo.errors import OptionError, check_choice

__all__ = [
    "LOSSES",
    "default_loss",
    "model_out_channels",
    "build_loss",
    "BCELoss",
    "CELoss",
    "SoftDiceLoss",
    "FocalLoss",
    "SumLoss",
]

LOSSES = ("bce", "ce", "dice", "dice+bce", "dice+ce", "focal")
_BINARY_ONLY = ("bce", "dice+bce")  # one sigmoid channel: only meaningful for background vs foreground


def default_loss(num_classes: int) -> str:
    """``"bce"`` for a binary task (``num_classes == 2``), ``"ce"`` otherwise."""
    _check_num_classes(num_classes)
    return "bce" if num_classes == 2 else "ce"


def model_out_channels(loss: str, num_classes: int) -> int:
    """Number of logit channels a model needs for ``loss``: 1 for ``bce``/``dice+bce``, else ``num_classes``.

    Raises:
        UnknownNameError: ``loss`` is not one of ``LOSSES``.
        OptionError: a BCE-family loss on a multi-class task.
    """
    check_choice("loss", loss, LOSSES)
    _check_num_classes(num_classes)
    if loss in _BINARY_ONLY:
        if num_classes != 2:
            others = ", ".join(name for name in LOSSES if name not in _BINARY_ONLY)
            raise OptionError(
                f"loss {loss!r} is for binary tasks (num_classes=2) but this task has {num_classes} classes; "
                f"choose one of {others}"
            )
        return 1
    return num_classes


def build_loss(name: str | None, *, num_classes: int, ignore_index: int | None = None) -> nn.Module:
    """The loss called ``name`` (``None``: ``default_loss(num_classes)``) as a module ``(logits, target) -> scalar``.

    Raises:
        UnknownNameError: ``name`` is not one of ``LOSSES``.
        OptionError: a BCE-family loss on a multi-class task.
    """
    name = default_loss(num_classes) if name is None else name
    channels = model_out_channels(name, num_classes)
    parts = [_PARTS[part](channels=channels, ignore_index=ignore_index) for part in name.split("+")]
    return parts[0] if len(parts) == 1 else SumLoss(*parts)


def _check_num_classes(num_classes: int) -> None:
    if num_classes < 2:
        raise OptionError(
            f"num_classes={num_classes} is not supported; a binary task has num_classes=2 (background, foreground)"
        )


class _PixelLoss(nn.Module):
    """Shared checks and ignore-index handling; subclasses implement ``pixel_loss`` or override ``forward``."""

    def __init__(self, *, channels: int, ignore_index: int | None = None) -> None:
        super().__init__()
        self.channels = channels
        self.ignore_index = ignore_index

    def prepare(self, logits: Tensor, target: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Check shapes; return float32 logits, the target with ignored pixels set to 0, and the valid mask."""
        if logits.ndim != 4 or target.shape != (logits.shape[0], *logits.shape[2:]):
            raise ValueError(
                f"expected logits (N, K, H, W) and target (N, H, W); got {tuple(logits.shape)} and "
                f"{tuple(target.shape)}"
            )
        if logits.shape[1] != self.channels:
            raise ValueError(
                f"{type(self).__name__} expects {self.channels} logit channel(s), got {logits.shape[1]}; build the "
                f"model with zoo.losses.model_out_channels(loss, num_classes) output channels"
            )
        target = target.long()
        if self.ignore_index is None:
            valid = torch.ones_like(target, dtype=torch.bool)
        else:
            valid = target != self.ignore_index
            target = torch.where(valid, target, 0)
        return logits.float(), target, valid

    @staticmethod
    def masked_mean(values: Tensor, valid: Tensor) -> Tensor:
        """Mean of ``values`` over valid pixels; 0 (with a zero gradient) when none is valid."""
        return (values * valid).sum() / valid.sum().clamp_min(1)


class BCELoss(_PixelLoss):
    """Binary cross-entropy with logits on one channel; the target is ``target == 1``, ignored pixels masked."""

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        logits, target, valid = self.prepare(logits, target)
        values = F.binary_cross_entropy_with_logits(logits[:, 0], (target == 1).float(), reduction="none")
        return self.masked_mean(values, valid)


class CELoss(_PixelLoss):
    """Softmax cross-entropy over ``K`` channels, ignored pixels masked."""

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        logits, target, valid = self.prepare(logits, target)
        return self.masked_mean(F.cross_entropy(logits, target, reduction="none"), valid)


class SoftDiceLoss(_PixelLoss):
    """Soft Dice loss over the batch: sigmoid foreground for one channel, softmax over all classes otherwise.

    Args:
        channels: logit channels ``K`` (1: binary with a sigmoid).
        ignore_index: target value of pixels to leave out, or ``None``.
        smooth: added to numerator and denominator of each class's Dice.
    """

    def __init__(self, *, channels: int, ignore_index: int | None = None, smooth: float = 1.0) -> None:
        super().__init__(channels=channels, ignore_index=ignore_index)
        self.smooth = smooth

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        logits, target, valid = self.prepare(logits, target)
        mask = valid.unsqueeze(1).float()
        if self.channels == 1:
            probs = torch.sigmoid(logits)
            truth = (target == 1).unsqueeze(1).float()
        else:
            probs = logits.softmax(dim=1)
            truth = F.one_hot(target, self.channels).permute(0, 3, 1, 2).float()
        probs, truth = probs * mask, truth * mask
        dims = (0, 2, 3)  # sum over the batch and pixels, per class
        intersection = (probs * truth).sum(dims)
        total = probs.sum(dims) + truth.sum(dims)
        dice = (2 * intersection + self.smooth) / (total + self.smooth)
        return 1 - dice.mean()


class FocalLoss(_PixelLoss):
    """Focal loss (Lin et al., 2017): ``-(1 - p_t)^gamma log p_t``, mean over valid pixels.

    Sigmoid for one channel (the target is ``target == 1``), softmax otherwise.

    Args:
        channels: logit channels ``K`` (1: binary with a sigmoid).
        ignore_index: target value of pixels to leave out, or ``None``.
        gamma: focusing parameter; 0 gives cross-entropy.
    """

    def __init__(self, *, channels: int, ignore_index: int | None = None, gamma: float = 2.0) -> None:
        super().__init__(channels=channels, ignore_index=ignore_index)
        if gamma < 0:
            raise ValueError(f"gamma={gamma} must be >= 0")
        self.gamma = gamma

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        logits, target, valid = self.prepare(logits, target)
        if self.channels == 1:
            truth = (target == 1).float()
            # log p_t = -BCE, computed stably from the logits
            log_pt = -F.binary_cross_entropy_with_logits(logits[:, 0], truth, reduction="none")
        else:
            log_pt = logits.log_softmax(dim=1).gather(1, target.unsqueeze(1)).squeeze(1)
        # clamped so that gamma < 1 keeps a finite gradient where p_t reaches 1
        values = -((1 - log_pt.exp()).clamp_min(1e-12) ** self.gamma) * log_pt
        return self.masked_mean(values, valid)


class SumLoss(nn.Module):
    """The sum of several losses on the same ``(logits, target)``, equal weights (``dice+ce``, ``dice+bce``)."""

    def __init__(self, *losses: nn.Module) -> None:
        super().__init__()
        self.losses = nn.ModuleList(losses)

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        return sum((loss(logits, target) for loss in self.losses), logits.new_zeros((), dtype=torch.float32))


_PARTS: dict[str, type[_PixelLoss]] = {"bce": BCELoss, "ce": CELoss, "dice": SoftDiceLoss, "focal": FocalLoss}

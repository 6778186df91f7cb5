"""Overlap metrics from confusion counts: Dice, IoU, pixel accuracy, precision and recall.

Per class ``c`` and image, with ``tp``, ``fp``, ``fn`` counted over the pixels whose target is not
``ignore_index``:

- ``dice = 2 tp / (2 tp + fp + fn)``, NaN when the class is absent from both target and prediction;
- ``iou = tp / (tp + fp + fn)``, NaN in the same case;
- ``precision = tp / (tp + fp)``, NaN when nothing is predicted as ``c``;
- ``recall = tp / (tp + fn)``, NaN when the target has no pixel of ``c``;
- ``accuracy`` = correctly classified pixels / scored pixels over all classes (background included, one column,
  no ``include_background`` option), NaN for an image whose pixels are all ignored.

An undefined value is NaN, never silently 0 or 1. See ``zoo_metrics.base`` for which classes are scored and how
columns are named; per-image class averages are the NaN-ignoring mean over the scored classes.

Aggregation: ``update`` returns the per-image values and adds the image's counts to the split's totals;
``compute`` returns the *pooled* values, the same formulas applied to the counts summed over every image seen
(the class average is the NaN-ignoring mean of the pooled per-class values). Pooled values weigh large objects
more than the mean of per-image values does, so the two differ and can rank models differently.

The counts come from one ``torch.bincount`` over (image, target, prediction) triples, on the masks' device, which
also finds invalid target values. That is about 15x faster than torchmetrics'
``multiclass_stat_scores(multidim_average="samplewise")`` with identical counts (the tests use torchmetrics as the
independent reference). Every overlap metric scoring the same batch reads the same counts: they are computed
once per batch, with the input checks, and kept in ``BATCH_CACHE`` (see ``zoo_metrics.base``), so ``dice``,
``iou``, ``precision``, ``recall`` and ``accuracy`` together cost one bincount per batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from torch import Tensor

from zoo_metrics.base import BATCH_CACHE, ClassColumns, check_masks, raise_bad_target

__all__ = ["OVERLAP_KINDS", "OverlapMetric", "PixelAccuracy", "batch_counts", "confusion_counts", "overlap_scores"]

OverlapKind = Literal["dice", "iou", "precision", "recall"]
OVERLAP_KINDS: tuple[OverlapKind, ...] = ("dice", "iou", "precision", "recall")


def confusion_counts(pred: Tensor, target: Tensor, *, num_classes: int, ignore_index: int | None) -> Tensor:
    """Per-image confusion matrices, int64 ``(N, K, K)`` indexed ``[image, target class, predicted class]``.

    Pixels whose target is ``ignore_index`` are not counted. ``pred`` must already be checked (values in
    ``[0, K)``); the target is checked here, from the counts, which saves a pass over the pixels.

    Raises:
        DatasetError: a target value that is neither a class nor ``ignore_index``.
    """
    n, k = pred.shape[0], num_classes
    if pred.numel() == 0:
        return torch.zeros(n, k, k, dtype=torch.int64)
    target = target.long()
    low, high = (int(v) for v in target.aminmax())
    rows = max(high + 1, k)
    void_row = ignore_index
    if ignore_index is not None and (low < 0 or rows * k * n > 4 * target.numel() + 4096):
        # An unusual ignore_index (negative, or large enough to need too many bins): move it to row k first.
        target = torch.where(target == ignore_index, k, target)
        low, high = (int(v) for v in target.aminmax())
        rows, void_row = max(high + 1, k), k
    if low < 0:
        raise_bad_target(low, num_classes=k, ignore_index=ignore_index)
    # One bincount over (image, target value, prediction); target values >= k (void) land in rows >= k.
    offsets = torch.arange(n, device=pred.device).view(n, 1, 1) * (rows * k)
    index = target * k + pred.long() + offsets
    counts = torch.bincount(index.flatten(), minlength=n * rows * k).view(n, rows, k)
    if rows > k:
        present = (counts[:, k:].sum(dim=(0, 2)).nonzero().flatten() + k).tolist()
        bad = [value for value in present if value != void_row]
        if bad:
            raise_bad_target(bad[0], num_classes=k, ignore_index=ignore_index)
    counts = counts[:, :k]
    if ignore_index is not None and 0 <= ignore_index < k:
        counts = counts.clone()
        counts[:, ignore_index] = 0
    return counts


def batch_counts(pred: Tensor, target: Tensor, *, num_classes: int, ignore_index: int | None) -> Tensor:
    """Checked ``confusion_counts`` on the CPU, once per batch for all the metrics that score it (read-only).

    Raises:
        ValueError, DatasetError: as ``check_masks`` and ``confusion_counts``.
    """

    def compute() -> Tensor:
        check_masks(pred, target, num_classes=num_classes, ignore_index=ignore_index, check_target=False)
        return confusion_counts(pred, target, num_classes=num_classes, ignore_index=ignore_index).cpu()

    return BATCH_CACHE.get(pred, target, ("counts", num_classes, ignore_index), compute)


def overlap_scores(kind: OverlapKind, counts: Tensor) -> Tensor:
    """Per-class scores, float64 ``(..., K)``, from confusion counts ``(..., K, K)``; NaN where undefined."""
    counts = counts.double()
    tp = counts.diagonal(dim1=-2, dim2=-1)
    predicted = counts.sum(dim=-2)  # tp + fp
    actual = counts.sum(dim=-1)  # tp + fn
    if kind == "dice":
        num, den = 2 * tp, predicted + actual
    elif kind == "iou":
        num, den = tp, predicted + actual - tp
    elif kind == "precision":
        num, den = tp, predicted
    elif kind == "recall":
        num, den = tp, actual
    else:
        raise ValueError(f"kind={kind!r} is not one of {OVERLAP_KINDS}")
    return torch.where(den > 0, num / den.clamp_min(1), torch.nan)


class OverlapMetric:
    """Dice, IoU, precision or recall, per class and class-averaged, per image and pooled (see module docstring).

    Args:
        kind: which score.
        num_classes: number of classes (2 for a binary task).
        ignore_index: target value of pixels to leave out, or ``None``.
        class_names: names for the per-class columns.
        include_background: score class 0 too (``None``: only for multi-class tasks).
    """

    def __init__(
        self, kind: OverlapKind, *, num_classes: int, ignore_index: int | None = None,
        class_names: Sequence[str] | None = None, include_background: bool | None = None,
    ) -> None:
        if kind not in OVERLAP_KINDS:
            raise ValueError(f"kind={kind!r} is not one of {OVERLAP_KINDS}")
        self.kind = kind
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.columns = ClassColumns(kind, num_classes=num_classes, class_names=class_names,
                                    include_background=include_background)
        self.reset()

    def reset(self) -> None:
        """Forget everything seen."""
        self._total = torch.zeros(self.num_classes, self.num_classes, dtype=torch.int64)

    @torch.no_grad()
    def update(self, pred: Tensor, target: Tensor) -> dict[str, Tensor]:
        """Add a batch; return its per-image values (float64 ``(N,)`` CPU tensors per column)."""
        counts = batch_counts(pred, target, num_classes=self.num_classes, ignore_index=self.ignore_index)
        self._total += counts.sum(dim=0)
        return self.columns.columns(overlap_scores(self.kind, counts))

    def compute(self) -> dict[str, float]:
        """Pooled values over everything seen since ``reset``."""
        return {name: float(v) for name, v in self.columns.columns(overlap_scores(self.kind, self._total)).items()}


class PixelAccuracy:
    """Pixel accuracy: the fraction of scored pixels whose predicted class is right, per image and pooled.

    Args:
        num_classes: number of classes (2 for a binary task).
        ignore_index: target value of pixels to leave out, or ``None``.
    """

    name = "accuracy"

    def __init__(self, *, num_classes: int, ignore_index: int | None = None) -> None:
        ClassColumns(self.name, num_classes=num_classes, class_names=None, include_background=None)  # checks
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.reset()

    def reset(self) -> None:
        """Forget everything seen."""
        self._correct = 0
        self._scored = 0

    @torch.no_grad()
    def update(self, pred: Tensor, target: Tensor) -> dict[str, Tensor]:
        """Add a batch; return its per-image accuracy (float64 ``(N,)`` CPU tensor), NaN if all pixels ignored."""
        counts = batch_counts(pred, target, num_classes=self.num_classes, ignore_index=self.ignore_index)
        correct = counts.diagonal(dim1=-2, dim2=-1).sum(dim=-1)
        scored = counts.sum(dim=(-2, -1))
        self._correct += int(correct.sum())
        self._scored += int(scored.sum())
        return {self.name: torch.where(scored > 0, correct.double() / scored.clamp_min(1), torch.nan)}

    def compute(self) -> dict[str, float]:
        """Pooled accuracy over everything seen since ``reset`` (NaN if nothing was scored)."""
        return {self.name: self._correct / self._scored if self._scored else float("nan")}


def dice(
    *, num_classes: int, ignore_index: int | None = None, class_names: Sequence[str] | None = None,
    include_background: bool | None = None,
) -> OverlapMetric:
    """Dice coefficient 2TP/(2TP+FP+FN), per class and class-averaged; NaN if class absent from both masks."""
    return OverlapMetric("dice", num_classes=num_classes, ignore_index=ignore_index, class_names=class_names,
                         include_background=include_background)


def iou(
    *, num_classes: int, ignore_index: int | None = None, class_names: Sequence[str] | None = None,
    include_background: bool | None = None,
) -> OverlapMetric:
    """Intersection over union TP/(TP+FP+FN), per class and class-averaged; NaN if class absent from both masks."""
    return OverlapMetric("iou", num_classes=num_classes, ignore_index=ignore_index, class_names=class_names,
                         include_background=include_background)


def precision(
    *, num_classes: int, ignore_index: int | None = None, class_names: Sequence[str] | None = None,
    include_background: bool | None = None,
) -> OverlapMetric:
    """Precision TP/(TP+FP), per class and class-averaged; NaN if the class is never predicted."""
    return OverlapMetric("precision", num_classes=num_classes, ignore_index=ignore_index, class_names=class_names,
                         include_background=include_background)


def recall(
    *, num_classes: int, ignore_index: int | None = None, class_names: Sequence[str] | None = None,
    include_background: bool | None = None,
) -> OverlapMetric:
    """Recall (sensitivity) TP/(TP+FN), per class and class-averaged; NaN if the class is absent from the target."""
    return OverlapMetric("recall", num_classes=num_classes, ignore_index=ignore_index, class_names=class_names,
                         include_background=include_background)


def accuracy(
    *, num_classes: int, ignore_index: int | None = None, class_names: Sequence[str] | None = None,
) -> PixelAccuracy:
    """Pixel accuracy over all classes (background included); NaN if every pixel is ignored."""
    del class_names  # one column over all classes: nothing to name
    return PixelAccuracy(num_classes=num_classes, ignore_index=ignore_index)

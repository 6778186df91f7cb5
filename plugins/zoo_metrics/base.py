"""What every built-in metric shares: input checks, which classes are scored, and the column names.

Conventions (all built-in metrics):

- Masks are int64 class indices ``(N, H, W)``. Class 0 is the background. A binary task is ``num_classes=2``
  (0 background, 1 foreground).
- Pixels whose target is ``ignore_index`` are excluded from everything: from the counts of every class, in the
  prediction as well as in the target, and from the surfaces of the surface metrics.
- ``include_background``: ``None`` (default) scores only the foreground class for a binary task and all classes
  for a multi-class task; ``True``/``False`` include or drop class 0 explicitly.
- Columns: the class average is under the metric's name (``"dice"``). When more than one class is scored, each
  scored class also gets ``"<metric>/<class name>"`` (``"dice/vessel"``), named from ``class_names`` or, without
  them, by the class index (``"dice/2"``). For a binary task the average *is* the foreground's value.
- Per-image class averages are the NaN-ignoring mean over the scored classes (NaN when every class is NaN).

An evaluation pass scores each batch with every metric in turn, and several metrics derive their values from the
same intermediate result (the confusion counts, the boundary distances). ``BATCH_CACHE`` keeps those results, and
the input checks, for the last batch seen, so they run once per batch rather than once per metric.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from zoo.errors import DatasetError, OptionError

__all__ = ["BATCH_CACHE", "BatchCache", "ClassColumns", "check_masks", "nanmean_columns"]


class ClassColumns:
    """The classes a metric scores and the column each one is reported under.

    Args:
        metric: the metric's name, the average's column (``"dice"``).
        num_classes: number of classes, at least 2 (binary tasks are 2: background and foreground).
        class_names: a name per class for the per-class columns; the class index when ``None``.
        include_background: see the module docstring; ``None`` picks by task.

    Raises:
        OptionError: fewer than 2 classes, or ``class_names`` of the wrong length.
    """

    def __init__(
        self, metric: str, *, num_classes: int, class_names: Sequence[str] | None, include_background: bool | None
    ) -> None:
        if num_classes < 2:
            raise OptionError(
                f"num_classes={num_classes} is not supported; a binary task has num_classes=2 (background, foreground)"
            )
        if class_names is not None and len(class_names) != num_classes:
            raise OptionError(
                f"class_names has {len(class_names)} names ({', '.join(class_names)}) but num_classes={num_classes}"
            )
        if include_background is None:
            include_background = num_classes > 2
        self.metric = metric
        self.num_classes = num_classes
        self.include_background = include_background
        self.classes: tuple[int, ...] = tuple(range(0 if include_background else 1, num_classes))
        names = [str(c) for c in range(num_classes)] if class_names is None else [str(n) for n in class_names]
        self.class_columns: dict[str, int] = (
            {f"{metric}/{names[c]}": c for c in self.classes} if len(self.classes) > 1 else {}
        )

    def columns(self, per_class: Tensor) -> dict[str, Tensor]:
        """Columns from per-class values ``(..., num_classes)``: the NaN-ignoring class mean, then each class."""
        scored = per_class[..., list(self.classes)]
        out = {self.metric: nanmean_columns(scored)}
        out.update({column: per_class[..., c] for column, c in self.class_columns.items()})
        return out


def nanmean_columns(values: Tensor) -> Tensor:
    """Mean over the last dimension ignoring NaN; NaN where every value is NaN (torch.nanmean's behaviour)."""
    return torch.nanmean(values, dim=-1)


def check_masks(
    pred: Tensor, target: Tensor, *, num_classes: int, ignore_index: int | None, check_target: bool = True
) -> None:
    """Check that ``pred`` and ``target`` are integer ``(N, H, W)`` masks of the same shape with valid values.

    Args:
        check_target: also check that every target value is a class or ``ignore_index`` (callers that find bad
            values on their own, such as ``confusion_counts``, skip this pass).

    Raises:
        ValueError: wrong shape or dtype, or a predicted class outside ``[0, num_classes)``.
        DatasetError: a target value that is neither a class index nor ``ignore_index``.
    """
    if pred.shape != target.shape or pred.ndim != 3:
        raise ValueError(
            f"pred and target must be class-index masks of the same shape (N, H, W); got pred "
            f"{tuple(pred.shape)} and target {tuple(target.shape)}"
        )
    for name, mask in (("pred", pred), ("target", target)):
        if mask.dtype.is_floating_point or mask.dtype.is_complex or mask.dtype == torch.bool:
            raise ValueError(f"{name} must hold integer class indices (int64); got dtype {mask.dtype}")
    if pred.numel() == 0:
        return
    low, high = (int(v) for v in pred.aminmax())
    if low < 0 or high >= num_classes:
        raise ValueError(f"pred holds class {low if low < 0 else high}, outside [0, {num_classes})")
    if not check_target:
        return
    low, high = (int(v) for v in target.aminmax())
    if (low < 0 or high >= num_classes) and ignore_index is not None:
        # slow path, only when void pixels are present: look at the other values
        low, high = (int(v) for v in torch.where(target == ignore_index, 0, target).aminmax())
    if low < 0 or high >= num_classes:
        raise_bad_target(low if low < 0 else high, num_classes=num_classes, ignore_index=ignore_index)


def raise_bad_target(value: int, *, num_classes: int, ignore_index: int | None) -> None:
    """Raise the ``DatasetError`` for a target value that is neither a class nor ``ignore_index``."""
    raise DatasetError(
        f"target holds value {value}, which is neither a class in [0, {num_classes}) nor ignore_index={ignore_index}"
    )


class BatchCache:
    """Values computed from one ``(pred, target)`` batch, shared by the metrics that score that batch.

    ``get(pred, target, key, compute)`` returns ``compute()``, computed at most once per ``key`` while the batch
    stays the same. The cache keeps its own copy of the last batch and compares contents, not identities,
    versions or data pointers (inference-mode tensors have no version counter, and writes through ``.numpy()``
    bypass it): a new batch, a batch modified in place or a fresh tensor at a recycled address is always
    recomputed, while the same masks passed again, as the same or an equal tensor, reuse the values. The copy
    and the comparison are single passes over the masks, cheap next to the metrics they spare.

    Only the last batch is kept (one copy of the masks plus the cached values stay referenced until the next
    batch or :meth:`clear`). Callers must not modify what they get back. Thread-safe: calls are serialised.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pred: Tensor | None = None
        self._target: Tensor | None = None
        self._values: dict[Hashable, Any] = {}

    def get(self, pred: Tensor, target: Tensor, key: Hashable, compute: Callable[[], Any]) -> Any:
        """``compute()`` for this batch and ``key``, from the cache when this batch was seen last."""
        with self._lock:
            if not self._holds(pred, target):
                self._pred, self._target, self._values = None, None, {}
                self._pred, self._target = pred.detach().clone(), target.detach().clone()
            if key not in self._values:
                self._values[key] = compute()  # an exception caches nothing
            return self._values[key]

    def clear(self) -> None:
        """Drop the cached batch and its values (frees their memory)."""
        with self._lock:
            self._pred, self._target, self._values = None, None, {}

    def _holds(self, pred: Tensor, target: Tensor) -> bool:
        held = (self._pred, self._target)
        if held[0] is None or held[1] is None:
            return False
        for mine, theirs in zip(held, (pred, target)):
            if mine.shape != theirs.shape or mine.dtype != theirs.dtype or mine.device != theirs.device:
                return False
        return _equal(held[0], pred) and _equal(held[1], target)


def _equal(a: Tensor, b: Tensor) -> bool:
    if a.device.type == "cpu":  # numpy compares CPU integer masks about 3x faster than torch.equal
        return bool(np.array_equal(a.numpy(), b.numpy()))
    return torch.equal(a, b)


BATCH_CACHE = BatchCache()  # shared by every built-in metric; keys name what they hold ("counts", "surface")

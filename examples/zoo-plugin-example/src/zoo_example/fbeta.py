"""F-beta of the foreground class: ``(1 + b^2) tp / ((1 + b^2) tp + b^2 fn + fp)``, per image and pooled.

beta > 1 weighs recall more (missed foreground costs more than false alarms). NaN when target and prediction
are both empty (undefined, never a silent 0 or 1); 0 for a false positive on an empty target. Pixels whose
target is ``ignore_index`` count nowhere. Binary tasks only (``num_classes=2``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from zoo.errors import OptionError

__all__ = ["FBeta", "fbeta"]


class FBeta:
    """The metric object (``zoo.interfaces.Metric``): ``update`` per image, ``compute`` pooled."""

    def __init__(self, *, beta: float, ignore_index: int | None) -> None:
        self.beta2 = beta * beta
        self.ignore_index = ignore_index
        self.reset()

    def _score(self, tp: Tensor, fp: Tensor, fn: Tensor) -> Tensor:
        numerator = (1 + self.beta2) * tp
        denominator = numerator + self.beta2 * fn + fp
        return torch.where(denominator > 0, numerator / denominator.clamp(min=1e-12),
                           torch.full_like(denominator, float("nan")))

    def update(self, pred: Tensor, target: Tensor) -> dict[str, Tensor]:
        keep = torch.ones_like(target, dtype=torch.bool) if self.ignore_index is None else target != self.ignore_index
        p, t = (pred == 1) & keep, (target == 1) & keep
        counts = torch.stack([(p & t), (p & ~t), (~p & t)]).flatten(2).sum(2).double()  # (3, N)
        self.totals += counts.sum(1)
        return {"fbeta": self._score(*counts)}

    def compute(self) -> dict[str, float]:
        return {"fbeta": float(self._score(*self.totals))}

    def reset(self) -> None:
        self.totals = torch.zeros(3, dtype=torch.float64)


def fbeta(*, num_classes: int, ignore_index: int | None = None, class_names: Sequence[str] | None = None,
          beta: float = 2.0) -> FBeta:
    """F-beta of the foreground (default beta 2: recall counts more); NaN when both masks are empty.

    Args:
        num_classes: must be 2 (background, foreground).
        ignore_index: target value to leave out.
        class_names: unused (one column).
        beta: recall's weight relative to precision.
    """
    if num_classes != 2:
        raise OptionError(f"fbeta scores binary tasks only; num_classes={num_classes} (expected 2)")
    if beta <= 0:
        raise OptionError(f"beta={beta} must be > 0")
    return FBeta(beta=beta, ignore_index=ignore_index)

"""Training budgets that compare fairly: optimizer steps, epochs, minutes, or TFLOPs of training compute.

A step or epoch budget gives every model the same number of updates, so a heavier model gets more compute. A
compute (or time) budget gives every model the same resources: a model with 2.4x the MACs per image gets 2.4x
fewer images, hence fewer steps at the same batch size (the comparison "nnU-Net Revisited" asks for). Training
compute is counted as ``TFLOPs = GMACs per image x 2 (FLOPs per MAC) x 3 (forward + backward) x images seen``;
a minutes budget becomes TFLOPs through the device's sustained training throughput, an estimate that the
caller should measure (the runner then also stops on the wall clock).
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass
from typing import Any, Literal, cast

from zoo.errors import OptionError

__all__ = ["BUDGET_KINDS", "TRAIN_FLOPS_PER_MAC", "Budget", "BudgetKind", "ResolvedBudget", "resolve_budget",
           "training_tflops"]

BudgetKind = Literal["steps", "epochs", "minutes", "tflops"]
BUDGET_KINDS: tuple[BudgetKind, ...] = ("steps", "epochs", "minutes", "tflops")
TRAIN_FLOPS_PER_MAC = 6  # 2 FLOPs per multiply-accumulate, x 3 for forward + backward

_UNITS: dict[str, BudgetKind] = {
    "step": "steps", "steps": "steps", "epoch": "epochs", "epochs": "epochs", "min": "minutes",
    "mins": "minutes", "minute": "minutes", "minutes": "minutes", "tflop": "tflops", "tflops": "tflops",
}
_PATTERN = re.compile(r"^\s*(?:([a-z]+)\s*[=:]\s*([0-9.eE+-]+)|([0-9.eE+-]+)\s*([a-z]+))\s*$")


@dataclass(frozen=True)
class Budget:
    """How much training a cell gets.

    Attributes:
        kind: ``steps`` (optimizer steps), ``epochs`` (one patch per training item each), ``minutes`` of
            training, or ``tflops`` of training compute.
        value: the amount, > 0.
    """

    kind: BudgetKind
    value: float

    def __post_init__(self) -> None:
        if self.kind not in BUDGET_KINDS:
            raise OptionError(f"budget kind {self.kind!r} is not one of {', '.join(BUDGET_KINDS)}")
        if not (isinstance(self.value, (int, float)) and math.isfinite(self.value) and self.value > 0):
            raise OptionError(f"budget value {self.value!r} must be a positive number")

    @classmethod
    def parse(cls, text: str) -> Budget:
        """Read ``"450 steps"``, ``"135tflops"``, ``"tflops=135"``, ``"20 epochs"`` or ``"10 min"``.

        Raises:
            OptionError: not one of these forms, or not a positive amount.
        """
        match = _PATTERN.match(text.lower())
        unit, number = (match.group(1) or match.group(4), match.group(2) or match.group(3)) if match else ("", "")
        kind = _UNITS.get(unit)
        try:
            value = float(number)
        except ValueError:
            kind = None
        if kind is None:
            raise OptionError(f"budget {text!r} is not an amount and a kind ({', '.join(BUDGET_KINDS)}); "
                              f"e.g. '450 steps', '20 epochs', '10 min' or '135 tflops'")
        return cls(kind, value)

    def __str__(self) -> str:
        unit = {"steps": "steps", "epochs": "epochs", "minutes": "min", "tflops": "TFLOPs"}[self.kind]
        return f"{self.value:g} {unit}"


def training_tflops(gmacs_per_image: float, images: float) -> float:
    """Training compute of ``images`` images (patches) at ``gmacs_per_image`` GMACs per forward pass."""
    return gmacs_per_image * 1e9 * TRAIN_FLOPS_PER_MAC * images / 1e12


@dataclass(frozen=True)
class ResolvedBudget:
    """A budget turned into optimizer steps for one model and recipe (recorded per cell).

    Attributes:
        kind: the budget's kind.
        value: the budget's amount.
        steps: optimizer steps.
        batch_size: images (patches) per step.
        images: images seen, ``steps * batch_size``.
        gmacs_per_image: GMACs of one forward pass at the training patch size.
        tflops: the training compute those steps cost.
        tflops_per_second: the throughput assumed for a minutes budget (``None`` otherwise).
    """

    kind: BudgetKind
    value: float
    steps: int
    batch_size: int
    images: int
    gmacs_per_image: float
    tflops: float
    tflops_per_second: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict."""
        return asdict(self)


def resolve_budget(budget: Budget, *, gmacs_per_image: float, batch_size: int, train_items: int,
                   tflops_per_second: float | None = None) -> ResolvedBudget:
    """Optimizer steps that ``budget`` buys (at least 1; a compute budget is never exceeded by more than that).

    Args:
        budget: the budget.
        gmacs_per_image: GMACs of one forward pass on one training patch.
        batch_size: patches per step.
        train_items: items in the train split (an epoch is one patch per item).
        tflops_per_second: sustained training throughput; needed for a ``minutes`` budget.

    Raises:
        OptionError: a ``minutes`` budget without a throughput, or a non-positive argument.
    """
    if gmacs_per_image <= 0 or batch_size < 1 or train_items < 1:
        raise OptionError(f"gmacs_per_image={gmacs_per_image}, batch_size={batch_size} and "
                          f"train_items={train_items} must be positive")
    if budget.kind == "steps":
        steps = round(budget.value)
    elif budget.kind == "epochs":
        steps = math.ceil(budget.value * train_items / batch_size)
    else:
        if budget.kind == "minutes" and not tflops_per_second:
            raise OptionError("a minutes budget needs the device's training throughput (tflops_per_second)")
        tflops = budget.value if budget.kind == "tflops" else budget.value * 60 * cast(float, tflops_per_second)
        steps = math.floor(tflops / training_tflops(gmacs_per_image, batch_size))
    steps = max(1, steps)
    return ResolvedBudget(kind=budget.kind, value=float(budget.value), steps=steps, batch_size=batch_size,
                          images=steps * batch_size, gmacs_per_image=gmacs_per_image,
                          tflops=training_tflops(gmacs_per_image, steps * batch_size),
                          tflops_per_second=tflops_per_second if budget.kind == "minutes" else None)

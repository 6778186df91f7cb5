"""Hook implementations of the built-in metrics plugin."""

from __future__ import annotations

from collections.abc import Sequence

import zoo
from zoo.interfaces import MetricSpec
from zoo_metrics.overlap import accuracy, dice, iou, precision, recall
from zoo_metrics.surface import assd, hd95, nsd

METRICS: tuple[MetricSpec, ...] = (
    MetricSpec("dice", dice),
    MetricSpec("iou", iou),
    MetricSpec("accuracy", accuracy),
    MetricSpec("precision", precision),
    MetricSpec("recall", recall),
    MetricSpec("hd95", hd95, higher_is_better=False),
    MetricSpec("assd", assd, higher_is_better=False),
    MetricSpec("nsd", nsd),
)


@zoo.hookimpl
def zoo_register_metrics() -> Sequence[MetricSpec]:
    """The overlap metrics (Dice, IoU, accuracy, precision, recall) and surface metrics (HD95, ASSD, NSD)."""
    return METRICS

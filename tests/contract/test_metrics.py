"""The metric contract, checked (with ``zoo.testing``) for every registered metric.

The kit's hand-computed cases (perfect, total miss, both empty, empty target, ignore_index, reset, per-image vs
pooled columns) hold for every metric with the default expectations, except where a metric's documented rule
differs; those exceptions are listed here, each with its reason.
"""

from __future__ import annotations

from zoo import api
from zoo.testing import parametrize_with_checks

REGISTRY = api.load_registry()
METRIC_NAMES = REGISTRY.metrics.names()

# Pixel accuracy scores the background too: an empty prediction of an empty target is all correct.
EXPECTATIONS = {"accuracy": {"both_empty": 1.0}}


def test_the_builtin_metrics_are_checked():
    assert {"dice", "iou", "accuracy", "precision", "recall", "hd95", "assd", "nsd"} <= set(METRIC_NAMES)


@parametrize_with_checks(metrics=METRIC_NAMES, registries=REGISTRY, overrides=EXPECTATIONS)
def test_metric_contract(plugin, check) -> None:
    check(plugin)

"""The metrics plugin through the real entry point: names, directions, options and the Metric protocol."""

from __future__ import annotations

import pytest
import torch

from zoo import api
from zoo.errors import OptionError
from zoo.interfaces import Metric

EXPECTED = {"dice": True, "iou": True, "accuracy": True, "precision": True, "recall": True,
            "hd95": False, "assd": False, "nsd": True}


def test_registered_through_the_entry_point() -> None:
    registries = api.load_registry()
    assert set(EXPECTED) <= set(api.list_metrics())
    for name, higher in EXPECTED.items():
        assert registries.metrics.get(name).higher_is_better is higher, name
        assert registries.metrics.provider(name).name == "metrics"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_metric_follows_the_protocol(name: str) -> None:
    names = ("background", "cell", "nucleus")
    metric = api.build_metric(name, num_classes=3, ignore_index=255, class_names=names)
    assert isinstance(metric, Metric)
    g = torch.Generator().manual_seed(0)
    pred, target = torch.randint(0, 3, (2, 8, 8), generator=g), torch.randint(0, 3, (2, 8, 8), generator=g)
    target[:, 0] = 255
    per_image = metric.update(pred, target)
    pooled = metric.compute()
    assert list(per_image) == list(pooled)
    assert list(per_image)[0] == name
    if name != "accuracy":  # pixel accuracy has one column over all classes
        assert list(per_image)[1:] == [f"{name}/{n}" for n in names]
    assert all(v.shape == (2,) and v.dtype == torch.float64 for v in per_image.values())
    assert all(isinstance(v, float) for v in pooled.values())


def test_options_are_validated() -> None:
    metric = api.build_metric("nsd", num_classes=2, tolerance=0.5)
    assert metric.tolerance == 0.5
    metric = api.build_metric("dice", num_classes=3, include_background=False)
    assert list(metric.update(torch.zeros(1, 2, 2, dtype=torch.int64), torch.zeros(1, 2, 2, dtype=torch.int64))) == [
        "dice", "dice/1", "dice/2"]
    with pytest.raises(OptionError, match="tolerance"):
        api.build_metric("hd95", num_classes=2, tolerance=1.0)

"""The procedural `shapes` dataset."""

from __future__ import annotations

import pytest
import torch

from zoo.errors import DatasetError
from zoo_datasets.shapes import shapes


def test_defaults_follow_the_contract_and_are_deterministic() -> None:
    a, b = shapes(train_items=6, val_items=2, test_items=2), shapes(train_items=6, val_items=2, test_items=2)
    assert (a.in_channels, a.num_classes, a.class_names, a.ignore_index) == (3, 2, ("background", "shape"), None)
    image, mask = a.split("train")[3]
    assert image.shape == (3, 64, 64) and image.dtype == torch.float32 and 0 <= image.min() <= image.max() <= 1
    assert mask.dtype == torch.int64 and set(mask.unique().tolist()) == {0, 1}
    assert torch.equal(image, b.split("train")[3][0]) and torch.equal(mask, b.split("train")[3][1])
    assert a.fingerprint("train") == b.fingerprint("train")
    c = shapes(train_items=6, val_items=2, test_items=2, seed=1)
    assert not torch.equal(mask, c.split("train")[3][1]) and c.fingerprint("train") != a.fingerprint("train")
    # Splits are generated independently: no image repeats across them.
    assert not torch.equal(a.split("val")[0][0], a.split("test")[0][0])


def test_shapes_differ_from_background_but_not_by_a_threshold() -> None:
    ds = shapes(train_items=20, val_items=1, test_items=1, channels=1)
    images = torch.stack([ds.split("train")[i][0][0] for i in range(20)])
    masks = torch.stack([ds.split("train")[i][1] for i in range(20)])
    fg_share = masks.float().mean().item()
    assert 0.04 < fg_share < 0.4
    # The best single global threshold (either polarity) misclassifies a real share of pixels.
    best = max(max(((images > t) == (masks == 1)).float().mean().item(),
                   ((images < t) == (masks == 1)).float().mean().item()) for t in torch.linspace(0, 1, 41))
    assert best < 0.97


def test_multiclass_and_options() -> None:
    ds = shapes(num_classes=4, image_size=32, train_items=8, val_items=1, test_items=1, channels=1)
    assert ds.class_names == ("background", "ellipse", "polygon", "blob") and ds.in_channels == 1
    masks = torch.stack([ds.split("train")[i][1] for i in range(8)])
    assert masks.shape == (8, 32, 32) and set(masks.unique().tolist()) <= {0, 1, 2, 3} and masks.max() > 1
    with pytest.raises(DatasetError, match="num_classes=3 is not one of"):
        shapes(num_classes=3)

"""Behaviour specific to the example's model, dataset and metric."""

import math

import pytest
import torch

from zoo.errors import OptionError
from zoo_example.fbeta import fbeta
from zoo_example.segnet import segnet
from zoo_example.stripes import stripes


def test_segnet_has_no_skip_concatenation_and_keeps_odd_sizes():
    model = segnet(in_channels=1, num_classes=2, width=4, depth=2).eval()
    with torch.no_grad():
        assert model(torch.rand(1, 1, 13, 19)).shape == (1, 2, 13, 19)
    assert [m.in_channels for m in model.modules() if isinstance(m, torch.nn.Conv2d)][:4] == [1, 4, 4, 8]


def test_fbeta_weighs_recall_by_beta():
    target = torch.zeros(1, 4, 4, dtype=torch.int64)
    target[0, :2] = 1                        # 8 foreground pixels
    pred = torch.zeros_like(target)
    pred[0, 0] = 1                           # tp 4, fn 4, fp 0: precision 1, recall 0.5
    value = float(fbeta(num_classes=2, beta=2.0).update(pred, target)["fbeta"][0])
    assert math.isclose(value, 5 * 0.5 / (4 * 1 + 0.5))
    with pytest.raises(OptionError, match="binary"):
        fbeta(num_classes=3)


def test_stripes_masks_are_brighter_stripes():
    image, mask = stripes(image_size=16, train_items=2).split("train")[0]
    assert mask.sum() > 0 and image[0][mask == 1].mean() > image[0][mask == 0].mean()

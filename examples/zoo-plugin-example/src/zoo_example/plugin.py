"""The hook implementations zoo finds through the ``segzoo`` entry point ``example = "zoo_example.plugin"``."""

from __future__ import annotations

from collections.abc import Sequence

import zoo
from zoo.interfaces import DatasetSpec, MetricSpec, ModelSpec

from zoo_example.fbeta import fbeta
from zoo_example.segnet import segnet
from zoo_example.stripes import stripes


@zoo.hookimpl
def zoo_register_models() -> Sequence[ModelSpec]:
    return [ModelSpec("segnet", segnet, tags=("encoder-decoder",))]


@zoo.hookimpl
def zoo_register_datasets() -> Sequence[DatasetSpec]:
    return [DatasetSpec("stripes", stripes, in_channels=1, num_classes=2)]


@zoo.hookimpl
def zoo_register_metrics() -> Sequence[MetricSpec]:
    return [MetricSpec("fbeta", fbeta, higher_is_better=True)]

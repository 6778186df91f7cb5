"""A small in-process plugin for core tests: one model, one dataset, one metric."""

from __future__ import annotations

import torch
from torch import nn

import zoo
from zoo.interfaces import DatasetSpec, MetricSpec, ModelSpec


def tiny_net(*, in_channels: int, num_classes: int, width: int = 4, kernel: int = 3) -> nn.Module:
    """Two convolutions (a fake model for core tests)."""
    return nn.Sequential(nn.Conv2d(in_channels, width, kernel, padding=kernel // 2), nn.ReLU(),
                         nn.Conv2d(width, num_classes, 1))


def tiny_net_wide(*, in_channels: int, num_classes: int, width: int = 16) -> nn.Module:
    """A wider fake model."""
    return tiny_net(in_channels=in_channels, num_classes=num_classes, width=width)


def noise_data(*, size: int = 8, items: int = 4) -> object:
    """Random images (a fake dataset)."""
    return {"size": size, "items": items}


class _Agreement:
    def __init__(self) -> None:
        self.reset()

    def update(self, pred: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        per_image = (pred == target).float().flatten(1).mean(1)
        self.values.append(per_image)
        return {"agreement": per_image}

    def compute(self) -> dict[str, float]:
        return {"agreement": torch.cat(self.values).mean().item()}

    def reset(self) -> None:
        self.values: list[torch.Tensor] = []


def agreement(*, num_classes: int, ignore_index: int | None = None, class_names=None) -> _Agreement:
    """Share of equal pixels (a fake metric)."""
    return _Agreement()


@zoo.hookimpl
def zoo_register_models():
    return [ModelSpec("tiny-net", tiny_net), ModelSpec("tiny-net-wide", tiny_net_wide)]


@zoo.hookimpl
def zoo_register_datasets():
    return [DatasetSpec("noise", noise_data, in_channels=3, num_classes=2)]


@zoo.hookimpl
def zoo_register_metrics():
    return [MetricSpec("agreement", agreement)]

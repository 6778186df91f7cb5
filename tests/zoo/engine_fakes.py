"""Fake plugins for the engine tests: a learnable toy dataset, small nets (plain, OOM-raising, NaN-making) and a
Dice metric."""

from __future__ import annotations

import sys
from collections.abc import Sequence

import pytest
import torch
from torch import nn

import zoo
from zoo.interfaces import DatasetSpec, MetricSpec, ModelSpec


def conv_net(*, in_channels: int, num_classes: int, width: int = 4) -> nn.Module:
    """Two convolutions with batch norm (fake model)."""
    return nn.Sequential(nn.Conv2d(in_channels, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
                         nn.Conv2d(width, num_classes, 1))


class _OOMNet(nn.Module):
    def __init__(self, in_channels: int, num_classes: int, max_batch: int) -> None:
        super().__init__()
        self.net = conv_net(in_channels=in_channels, num_classes=num_classes)
        self.max_batch = max_batch
        self.seen_batches: list[int] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            self.seen_batches.append(x.shape[0])
            if x.shape[0] > self.max_batch:
                raise torch.OutOfMemoryError(f"simulated: batch {x.shape[0]} > {self.max_batch}")
        return self.net(x)


def oom_net(*, in_channels: int, num_classes: int, max_batch: int = 2) -> nn.Module:
    """Raises CUDA-style OOM when training on more than max_batch images (fake model)."""
    return _OOMNet(in_channels, num_classes, max_batch)


class _NaNNet(nn.Module):
    def __init__(self, in_channels: int, num_classes: int, after: int) -> None:
        super().__init__()
        self.net = conv_net(in_channels=in_channels, num_classes=num_classes)
        self.after, self.calls = after, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.net(x)
        if self.training:
            self.calls += 1
            if self.calls > self.after:
                return out * float("nan")
        return out


def nan_net(*, in_channels: int, num_classes: int, after: int = 2) -> nn.Module:
    """Gives NaN logits after `after` training forwards (fake model)."""
    return _NaNNet(in_channels, num_classes, after)


class _Split(torch.utils.data.Dataset):
    def __init__(self, n: int, size: int, seed: int, channels: int) -> None:
        g = torch.Generator().manual_seed(seed)
        self.ids = [f"img{seed}-{i:02d}" for i in range(n)]
        self.masks = torch.zeros(n, size, size, dtype=torch.int64)
        for i in range(n):
            top, left = torch.randint(0, size // 2, (2,), generator=g).tolist()
            self.masks[i, top:top + size // 2, left:left + size // 2] = 1
        noise = 0.15 * torch.rand(n, channels, size, size, generator=g)
        self.images = (0.2 + 0.6 * self.masks[:, None].float() + noise).clamp(0, 1)

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.images[i], self.masks[i]


class Squares:
    """A bright square on a dark background; class 1 is the square."""

    in_channels = 1
    num_classes = 2
    class_names = ("background", "square")
    ignore_index = None

    def __init__(self, items: int, size: int) -> None:
        self._splits = {"train": _Split(items, size, 1, 1), "val": _Split(3, size, 2, 1),
                        "test": _Split(3, size, 3, 1)}

    def split(self, name: str) -> _Split:
        return self._splits[name]


def squares(*, items: int = 8, size: int = 32) -> Squares:
    """Bright squares (fake dataset)."""
    return Squares(items, size)


class _Dice:
    def __init__(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.reset()

    def update(self, pred: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        p, t = (pred == 1).flatten(1).float(), (target == 1).flatten(1).float()
        inter, total = (p * t).sum(1), p.sum(1) + t.sum(1)
        self.inter += inter.sum().item()
        self.total += total.sum().item()
        return {"dice": torch.where(total > 0, 2 * inter / total.clamp_min(1), torch.nan)}

    def compute(self) -> dict[str, float]:
        return {"dice": 2 * self.inter / self.total if self.total else float("nan")}

    def reset(self) -> None:
        self.inter = self.total = 0.0


def dice(*, num_classes: int, ignore_index: int | None = None, class_names: Sequence[str] | None = None) -> _Dice:
    """Dice of class 1 (fake metric)."""
    return _Dice(num_classes)


@zoo.hookimpl
def zoo_register_models():
    return [ModelSpec("conv-net", conv_net), ModelSpec("oom-net", oom_net), ModelSpec("nan-net", nan_net)]


@zoo.hookimpl
def zoo_register_datasets():
    return [DatasetSpec("squares", squares, in_channels=1, num_classes=2)]


@zoo.hookimpl
def zoo_register_metrics():
    return [MetricSpec("dice", dice)]


@pytest.fixture
def registries():
    """A private registry with only these fakes."""
    return zoo.api.load_registry(plugins=[sys.modules[__name__]], autoload=False)


def alerting_identity(op: str) -> type[torch.autograd.Function]:
    """An identity whose backward raises torch's own "no deterministic kernel" alert for ``op`` (as CUDA's
    missing kernels do), so the deterministic checks can be tested on the CPU."""
    from torch._prims_common import alert_not_deterministic

    class _Alerting(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):  # type: ignore[override]
            return x * 1.0

        @staticmethod
        def backward(ctx, grad):  # type: ignore[override]
            alert_not_deterministic(op)
            return grad

    return _Alerting

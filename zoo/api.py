"""The Python API that the ``zoo`` command line wraps. Everything here is usable on its own.

The default registry is built on first use (never at ``import zoo``) from the installed plugins; pass
``plugins=[...]`` and ``autoload=False`` to :func:`load_registry` for a private one (tests, notebooks).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from zoo.costs import count_gmacs, count_parameters
from zoo.options import option_defaults
from zoo.plugins import PluginInfo
from zoo.registry import (METRIC_RESERVED, MODEL_RESERVED, Registries, build_dataset, build_metric, build_model,
                          default_registry, load_registry, reset_default_registry, resolve)

__all__ = [
    "load_registry",
    "default_registry",
    "reset_default_registry",
    "list_models",
    "list_datasets",
    "list_metrics",
    "list_plugins",
    "build_model",
    "build_dataset",
    "build_metric",
    "ModelInfo",
    "model_info",
    "count_parameters",
    "count_gmacs",
    "MODEL_RESERVED",
    "METRIC_RESERVED",
]


def list_models(pattern: str | None = None, *, registries: Registries | None = None) -> list[str]:
    """Names of the registered models, optionally filtered by a wildcard (``'unet*'``)."""
    return resolve(registries).models.names(pattern)


def list_datasets(pattern: str | None = None, *, registries: Registries | None = None) -> list[str]:
    """Names of the registered datasets."""
    return resolve(registries).datasets.names(pattern)


def list_metrics(pattern: str | None = None, *, registries: Registries | None = None) -> list[str]:
    """Names of the registered metrics."""
    return resolve(registries).metrics.names(pattern)


def list_plugins(*, registries: Registries | None = None) -> tuple[PluginInfo, ...]:
    """Every plugin that was found: loaded, failed or blocked."""
    return resolve(registries).plugins


@dataclass(frozen=True)
class ModelInfo:
    """What ``zoo info MODEL`` shows."""

    name: str
    description: str
    provider: PluginInfo
    options: Mapping[str, Any]  # option -> default
    in_channels: int
    num_classes: int
    image_size: int
    parameters: int
    gmacs: float


def model_info(
    name: str, *, in_channels: int = 3, num_classes: int = 1, image_size: int = 256,
    registries: Registries | None = None, **options: Any,
) -> ModelInfo:
    """Description, options with defaults, parameter count and GMACs of a model at ``image_size``."""
    reg = resolve(registries)
    spec = reg.models.get(name)
    model = build_model(name, in_channels=in_channels, num_classes=num_classes, registries=reg, **options)
    return ModelInfo(
        name=name, description=spec.description, provider=reg.models.provider(name),
        options=option_defaults(spec.builder, exclude=MODEL_RESERVED), in_channels=in_channels,
        num_classes=num_classes, image_size=image_size, parameters=count_parameters(model),
        gmacs=count_gmacs(model, in_channels, image_size),
    )

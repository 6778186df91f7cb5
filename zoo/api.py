"""The Python API that the ``zoo`` command line wraps. Everything here is usable on its own.

The default registry is built on first use (never at ``import zoo``) from the installed plugins; pass
``plugins=[...]`` and ``autoload=False`` to :func:`load_registry` for a private one (tests, notebooks).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from zoo.errors import OptionError
from zoo.interfaces import DatasetSpec, MetricSpec, ModelSpec
from zoo.options import option_defaults, validate_options
from zoo.plugins import PluginInfo, env_flag, get_plugin_manager
from zoo.registry import Registries, build_registries

if TYPE_CHECKING:
    from torch import nn

    from zoo.interfaces import Metric, SegmentationDataset

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
]

MODEL_RESERVED = ("in_channels", "num_classes")
_default: Registries | None = None


def load_registry(
    *,
    plugins: Sequence[object] = (),
    autoload: bool | None = None,
    blocked: Sequence[str] | None = None,
    strict: bool | None = None,
) -> Registries:
    """Load plugins into a fresh manager and build the registries (see ``zoo.plugins.get_plugin_manager``)."""
    strict = env_flag("ZOO_STRICT_PLUGINS") if strict is None else strict
    pm, infos = get_plugin_manager(plugins=plugins, autoload=autoload, blocked=blocked, strict=strict)
    return build_registries(pm, infos, strict=strict)


def default_registry(*, strict: bool | None = None) -> Registries:
    """The process-wide registry of installed plugins, built on first use."""
    global _default
    if _default is None:
        _default = load_registry(strict=strict)
    return _default


def reset_default_registry(registries: Registries | None = None) -> None:
    """Forget (or replace) the process-wide registry, e.g. after installing a plugin or changing ZOO_DATA."""
    global _default
    _default = registries


def _reg(registries: Registries | None) -> Registries:
    return registries if registries is not None else default_registry()


def list_models(pattern: str | None = None, *, registries: Registries | None = None) -> list[str]:
    """Names of the registered models, optionally filtered by a wildcard (``'unet*'``)."""
    return _reg(registries).models.names(pattern)


def list_datasets(pattern: str | None = None, *, registries: Registries | None = None) -> list[str]:
    """Names of the registered datasets."""
    return _reg(registries).datasets.names(pattern)


def list_metrics(pattern: str | None = None, *, registries: Registries | None = None) -> list[str]:
    """Names of the registered metrics."""
    return _reg(registries).metrics.names(pattern)


def list_plugins(*, registries: Registries | None = None) -> tuple[PluginInfo, ...]:
    """Every plugin that was found: loaded, failed or blocked."""
    return _reg(registries).plugins


def build_model(
    name: str, *, in_channels: int = 3, num_classes: int = 1, registries: Registries | None = None,
    **options: Any,
) -> nn.Module:
    """Build model ``name`` with validated options.

    Raises:
        UnknownNameError: no such model (the message suggests close names).
        OptionError: an option the model's builder does not take (the message lists the valid ones).
    """
    spec: ModelSpec = _reg(registries).models.get(name)
    if "in_channels" in options or "num_classes" in options:
        raise OptionError("pass in_channels and num_classes as arguments, not as options")
    clean = validate_options(spec.builder, options, what=f"model {name!r}", exclude=MODEL_RESERVED)
    return spec.builder(in_channels=in_channels, num_classes=num_classes, **clean)


def build_dataset(name: str, *, registries: Registries | None = None, **options: Any) -> SegmentationDataset:
    """Build dataset ``name`` with validated options (e.g. ``root=...``)."""
    spec: DatasetSpec = _reg(registries).datasets.get(name)
    clean = validate_options(spec.builder, options, what=f"dataset {name!r}")
    return spec.builder(**clean)


METRIC_RESERVED = ("num_classes", "ignore_index", "class_names")


def build_metric(
    name: str, *, num_classes: int, ignore_index: int | None = None, class_names: Sequence[str] | None = None,
    registries: Registries | None = None, **options: Any,
) -> Metric:
    """Build metric ``name`` for ``num_classes`` classes with validated options.

    Metric builders take keyword ``num_classes``, ``ignore_index`` and ``class_names`` (used to name per-class
    columns, e.g. ``dice/vessel``) plus their own options.
    """
    spec: MetricSpec = _reg(registries).metrics.get(name)
    clean = validate_options(spec.builder, options, what=f"metric {name!r}", exclude=METRIC_RESERVED)
    return spec.builder(num_classes=num_classes, ignore_index=ignore_index,
                        class_names=tuple(class_names) if class_names is not None else None, **clean)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def count_gmacs(model: nn.Module, in_channels: int, image_size: int | tuple[int, int]) -> float:
    """Multiply-accumulates (in billions) of one forward pass on one image, by ``torch.utils.flop_counter``."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    h, w = (image_size, image_size) if isinstance(image_size, int) else image_size
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    was_training = model.training
    model.eval()
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(torch.zeros(1, in_channels, h, w, device=device))
    model.train(was_training)
    return counter.get_total_flops() / 2 / 1e9  # flop_counter counts a multiply-add as 2 FLOPs


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
    reg = _reg(registries)
    spec = reg.models.get(name)
    model = build_model(name, in_channels=in_channels, num_classes=num_classes, registries=reg, **options)
    return ModelInfo(
        name=name, description=spec.description, provider=reg.models.provider(name),
        options=option_defaults(spec.builder, exclude=MODEL_RESERVED), in_channels=in_channels,
        num_classes=num_classes, image_size=image_size, parameters=count_parameters(model),
        gmacs=count_gmacs(model, in_channels, image_size),
    )

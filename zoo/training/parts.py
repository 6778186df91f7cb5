"""Building a run's parts by name: dataset, model, loss and metrics from the registries, and eval loaders.

Shared by the run (from a recipe), checkpoint evaluation and prediction (from a checkpoint's metadata).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from zoo import distributed, losses, registry
from zoo.checkpoint import load_checkpoint
from zoo.errors import CheckpointError, ModelContractError, OptionError
from zoo.training.config import TrainConfig

if TYPE_CHECKING:
    from zoo.interfaces import Metric, SegmentationDataset
    from zoo.registry import Registries

log = logging.getLogger(__name__)

__all__ = ["Parts", "build_parts", "model_meta", "model_contract_named", "build_metrics", "select_metric_source",
           "eval_loader", "model_from_checkpoint", "predict_settings"]


@dataclass
class Parts:
    """What a recipe names, built.

    Attributes:
        dataset: the dataset (all splits).
        model: the freshly initialised model, ``out_channels`` outputs.
        loss_name: the recipe's loss, or the task default.
        out_channels: the model's outputs for that loss and the dataset's classes.
        meta: the metadata saved with every checkpoint (see :func:`model_meta`).
    """

    dataset: SegmentationDataset
    model: nn.Module
    loss_name: str
    out_channels: int
    meta: dict[str, Any]


def model_meta(config: TrainConfig, reg: Registries, dataset: SegmentationDataset, out_channels: int,
               loss_name: str) -> dict[str, Any]:
    """The checkpoint metadata: enough to rebuild the model, its data and its provenance without the recipe file."""
    provider = reg.models.provider(config.model)
    data_provider = reg.datasets.provider(config.dataset)
    return {
        "model": config.model, "model_options": dict(config.model_options),
        "in_channels": int(dataset.in_channels), "out_channels": out_channels,
        "num_classes": int(dataset.num_classes), "class_names": list(dataset.class_names),
        "ignore_index": dataset.ignore_index, "loss": loss_name,
        "dataset": config.dataset, "dataset_options": dict(config.dataset_options),
        "image_size": config.image_size, "eval_image_size": config.eval_image_size,
        "plugin": {"name": provider.name, "distribution": provider.distribution, "version": provider.version},
        "dataset_plugin": {"name": data_provider.name, "distribution": data_provider.distribution,
                           "version": data_provider.version},
        "torch": str(torch.__version__), "config": config.to_dict(),
    }


@contextmanager
def model_contract_named(meta: Mapping[str, Any]) -> Iterator[None]:
    """Prefix a ``ModelContractError`` from the engine with the model's name and plugin (from ``meta``).

    The engine checks every forward it consumes (``zoo.inference.checked_logits``) but does not know the model's
    name; train, eval, predict and a bench cell do.
    """
    try:
        yield
    except ModelContractError as exc:
        plugin = meta.get("plugin") or {}
        dist = f" ({plugin['distribution']} {plugin.get('version')})" if plugin.get("distribution") else ""
        source = f" from plugin {plugin['name']!r}{dist}" if plugin.get("name") else ""
        raise ModelContractError(f"model {meta.get('model')!r}{source}: {exc}") from None


def build_parts(config: TrainConfig, reg: Registries) -> Parts:
    """Build the recipe's dataset, loss choice and model (the model's initial weights draw from the global RNG)."""
    dataset = registry.build_dataset(config.dataset, registries=reg, **config.dataset_options)
    num_classes = int(dataset.num_classes)
    loss_name = config.loss or losses.default_loss(num_classes)
    out_channels = losses.model_out_channels(loss_name, num_classes)
    model = registry.build_model(config.model, in_channels=int(dataset.in_channels), num_classes=out_channels,
                                 registries=reg, **config.model_options)
    return Parts(dataset, model, loss_name, out_channels, model_meta(config, reg, dataset, out_channels, loss_name))


def build_metrics(names: Sequence[str], dataset: SegmentationDataset, reg: Registries) -> dict[str, Metric]:
    """The named metrics for ``dataset`` (``()``: every registered metric that applies to it).

    A metric named explicitly must build (its error is the caller's). With ``()``, a registered metric whose
    builder refuses this dataset with an :class:`OptionError` (e.g. a plugin's binary-only metric on an 11-class
    set) is left out with one warning naming it and why, so installing such a plugin never fails other tasks.
    """
    def build(name: str) -> Metric:
        return registry.build_metric(name, num_classes=int(dataset.num_classes), ignore_index=dataset.ignore_index,
                                     class_names=list(dataset.class_names), registries=reg)

    if names:
        return {name: build(name) for name in names}
    built: dict[str, Metric] = {}
    for name in reg.metrics.names():
        try:
            built[name] = build(name)
        except OptionError as exc:
            log.warning("metric %r does not apply to this dataset and is left out: %s", name, exc)
    return built


def select_metric_source(select_metric: str, reg: Registries, names: Sequence[str]) -> str | None:
    """The metric that produces the ``select_metric`` column, or ``None`` when it cannot be told."""
    base = select_metric.split("/")[0]
    candidates = list(names) or reg.metrics.names()
    return base if base in candidates or base in reg.metrics else None


def eval_loader(split: Any, eval_image_size: int | str | None, image_size: int, batch_size: int,
                num_workers: int = 0) -> Any:
    """The split in order; under torchrun, this rank's shard (``zoo.scoring.evaluate`` gathers the rest).

    Args:
        split: a dataset split.
        eval_image_size: as in :class:`TrainConfig`: ``None`` (``image_size``), a size, or ``"native"``.
        image_size: the training image size.
        batch_size: images per batch at a fixed size; at native size, consecutive images of one size are
            stacked (:class:`~zoo.data.loaders.SameSizeBatches`).
        num_workers: loader worker processes.

    Returns:
        A ``torch.utils.data.DataLoader`` (wrapped in ``SameSizeBatches`` at native size).
    """
    from zoo.data import make_loader

    sampler = distributed.eval_sampler(split)
    if eval_image_size in ("native", "upsampled"):  # scored at the original size (predicted at image_size)
        from zoo.data.loaders import SameSizeBatches

        return SameSizeBatches(make_loader(split, train=False, batch_size=1, image_size=None,
                                           num_workers=num_workers, sampler=sampler))
    size = image_size if eval_image_size is None else int(eval_image_size)
    return make_loader(split, train=False, batch_size=batch_size, image_size=size, num_workers=num_workers,
                       sampler=sampler)


def predict_settings(meta: Mapping[str, Any], *, tiled: bool) -> dict[str, Any]:
    """How a checkpoint's recipe predicts, as ``zoo.scoring.predict_scaled`` arguments: its sliding window
    (``eval_window``, else ``patch_size``, else the training image size; ``None`` unless ``tiled``), overlap,
    blending and input scale. Checkpoints from before these settings blend with a tent, as they did."""
    config = meta.get("config") or {}
    window = config.get("eval_window") or config.get("patch_size") or int(meta["image_size"])
    scale: float | tuple[int, int] = float(config.get("input_scale", 1.0))
    if meta.get("eval_image_size") == "upsampled":  # the resize recipe, scored at the original size
        scale = (int(meta["image_size"]), int(meta["image_size"]))
    return {"tile": (window if isinstance(window, int) else tuple(window)) if tiled else None,
            "overlap": float(config.get("eval_overlap", 0.5)), "blend": config.get("eval_blend", "tent"),
            "input_scale": scale}


def _check_meta(path: Path, meta: Mapping[str, Any]) -> None:
    """The metadata a model is rebuilt from: a model name, channel counts and an options table."""
    problems = [f"{key!r} is missing" for key in ("model", "in_channels", "out_channels", "image_size")
                if key not in meta]
    if "model" in meta and not isinstance(meta["model"], str):
        problems.append(f"model={meta['model']!r} is not a name")
    for key in ("in_channels", "out_channels", "image_size"):
        value = meta.get(key, 1)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            problems.append(f"{key}={value!r} is not a positive whole number")
    if not isinstance(meta.get("model_options", {}), Mapping):
        problems.append(f"model_options={meta['model_options']!r} is not a table")
    if problems:
        raise CheckpointError(f"checkpoint {str(path)!r} has damaged zoo metadata: {'; '.join(problems)}")


def model_from_checkpoint(checkpoint: str | Path, reg: Registries) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild a checkpoint's model by name and load its weights.

    An exported file (``.onnx``, ``.pt2``, see ``zoo.deploy``) loads as a ``DeployedModel`` with the metadata of
    the checkpoint it came from, so evaluation and prediction run it through the same pipeline.

    Args:
        checkpoint: a ``.safetensors`` file, its stem, a run folder (its ``best``), or an exported file.
        reg: the registries that provide the model.

    Returns:
        The model and the checkpoint's metadata, plus ``path``.

    Raises:
        CheckpointError: the weights do not fit the model its metadata names.
    """
    from zoo.deploy import is_deployed, load_deployed

    if is_deployed(checkpoint):
        return load_deployed(checkpoint)
    ckpt = load_checkpoint(checkpoint)
    meta = ckpt.meta
    _check_meta(ckpt.path, meta)
    model = registry.build_model(meta["model"], in_channels=meta["in_channels"], num_classes=meta["out_channels"],
                                 registries=reg, **meta.get("model_options", {}))
    try:
        model.load_state_dict(ckpt.state_dict)
    except RuntimeError as exc:
        raise CheckpointError(f"checkpoint {str(ckpt.path)!r} does not fit model {meta['model']!r} with options "
                              f"{meta.get('model_options')}: {str(exc).splitlines()[0]}") from None
    return model, {**meta, "path": str(ckpt.path)}

"""Scoring a checkpoint on a split (:func:`evaluate_checkpoint`) and writing scores (:func:`write_eval_outputs`)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zoo import registry
from zoo.scoring import EvalResult, evaluate
from zoo.errors import CheckpointError, check_choice
from zoo.fileio import atomic_write_text, output_dir
from zoo.precision import Precision
from zoo.training.parts import (build_metrics, eval_loader, model_contract_named, model_from_checkpoint,
                                predict_settings)

if TYPE_CHECKING:
    from zoo.registry import Registries

__all__ = ["evaluate_checkpoint", "write_eval_outputs"]


def evaluate_checkpoint(checkpoint: str | Path, dataset: str | None = None, *, split: str = "test",
                        dataset_options: Mapping[str, Any] | None = None, metrics: Sequence[str] = (),
                        eval_image_size: int | str | None = "checkpoint", tiled: bool = False,
                        batch_size: int = 8, device: str = "auto", precision: str = "auto",
                        registries: Registries | None = None) -> EvalResult:
    """Score a checkpoint on a split of a dataset.

    Args:
        checkpoint: a ``.safetensors`` file, its stem, or a run folder (its ``best``).
        dataset: registered dataset name; default the one it was trained on (with its options).
        split: ``train``, ``val`` or ``test``.
        dataset_options: options for the dataset's builder (default: the checkpoint's, for its own dataset).
        metrics: metric names (``()``: every registered metric).
        eval_image_size: as in :class:`~zoo.training.TrainConfig`; ``"checkpoint"`` uses the training recipe's.
        tiled: sliding-window inference at native size with the recipe's window (``eval_window``, else
            ``patch_size``, else the training image size), overlap and blending.
        batch_size: images per batch (at a fixed size).
        device, precision: see ``zoo.precision``.
        registries: the plugins to use (default: the installed ones).

    Returns:
        The metrics; ``result.meta`` holds the checkpoint's metadata plus what was scored (dataset, split, size).

    Raises:
        CheckpointError: the dataset's channels do not fit the checkpoint's model.
    """
    from zoo.interfaces import SPLITS

    check_choice("split", split, SPLITS)
    reg = registries if registries is not None else registry.default_registry()
    model, meta = model_from_checkpoint(checkpoint, reg)
    name = dataset or meta["dataset"]
    options = dict(dataset_options) if dataset_options is not None else (
        meta.get("dataset_options", {}) if name == meta["dataset"] else {})
    data = registry.build_dataset(name, registries=reg, **options)
    if int(data.in_channels) != meta["in_channels"]:
        raise CheckpointError(f"dataset {name!r} has {data.in_channels} channels but the checkpoint's model takes "
                              f"{meta['in_channels']}")
    prec = Precision(device, precision)
    model = prec.module(model)
    size = meta.get("eval_image_size") if eval_image_size == "checkpoint" else eval_image_size
    if tiled:
        size = "native"
    part = data.split(split)  # type: ignore[arg-type]
    loader = eval_loader(part, size, int(meta["image_size"]), batch_size)
    with model_contract_named(meta):
        result = evaluate(model, loader, build_metrics(metrics, data, reg), precision=prec, ids=list(part.ids),
                          **predict_settings(meta, tiled=tiled))
    result.meta = {**meta, "eval_dataset": name, "split": split, "eval_image_size": size, "tiled": tiled}
    return result


def write_eval_outputs(result: EvalResult, out_dir: str | Path, *, prefix: str = "eval",
                       extra: Mapping[str, Any] | None = None) -> tuple[Path, Path]:
    """Write ``PREFIX_per_image.csv`` (image_id, metric, value) and ``PREFIX_summary.json``, each atomically.

    Args:
        result: the scores.
        out_dir: created if needed.
        prefix: the files' name prefix (``test`` for a run's test split).
        extra: more entries for the summary.

    Returns:
        The CSV and JSON paths.
    """
    out = output_dir(out_dir)
    csv_path, json_path = out / f"{prefix}_per_image.csv", out / f"{prefix}_summary.json"
    rows = io.StringIO(newline="")
    writer = csv.writer(rows)
    writer.writerow(("image_id", "metric", "value"))
    writer.writerows(result.rows)
    atomic_write_text(csv_path, rows.getvalue())
    summary = {"n_images": result.n_images, "pooled": result.pooled, "per_image_mean": result.mean,
               "nan_count": result.nan_count, **(extra or {})}
    atomic_write_text(json_path, json.dumps(summary, indent=2, default=str, allow_nan=True) + "\n")
    return csv_path, json_path

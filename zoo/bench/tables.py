"""The flat tables of a benchmark: ``runs.csv`` (one :class:`BenchmarkRow` per cell) and ``per_image.csv``.

This module is the only writer of ``runs.csv`` (:func:`write_runs_csv`), both while a grid runs and when
``zoo leaderboard`` re-renders it.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zoo.bench.records import CellRecord, read_records
from zoo.fileio import atomic_write_text

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["BenchmarkRow", "RUN_COLUMNS_HEAD", "RUN_COLUMNS_TAIL", "run_columns", "row_dict", "metric_order",
           "csv_text", "runs_frame", "per_image_frame", "write_runs_csv", "load_tables", "PER_IMAGE_COLUMNS"]

PER_IMAGE_COLUMNS = ["cell_id", "dataset", "model", "variant", "seed", "image_id", "metric", "value"]


# runs.csv columns after the identity, axis and metric columns, in order: costs, recipe, environment, provenance
RUN_COLUMNS_HEAD = ("cell_id", "dataset", "model", "variant", "seed", "status")
RUN_COLUMNS_TAIL = (
    "n_parameters", "gmacs", "train_seconds", "epochs_done", "steps_done", "best_epoch", "infer_images_per_s",
    "infer_latency_ms", "infer_batch_size",
    "ort_images_per_s", "ort_latency_ms", "ort_error",  # the exported ONNX file in ONNX Runtime (deploy_speed)
    "peak_memory_mb", "memory_kind", "allocator",
    "batch_size",  # the global batch (all processes of a torchrun cell together)
    "world_size",  # processes that trained the cell (1 unless torchrun)
    "image_size", "epochs", "max_steps",
    # the planned recipe: training patch (HxW), the scale images were shrunk by for training and prediction (1 =
    # native; scores are always on the original pixels), sampling, how test images were predicted, and the budget
    "patch_size", "input_scale", "sampling", "eval_mode", "budget_kind", "budget_value", "train_tflops", "plan_version",
    "plan_overrides",  # settings given explicitly that replaced the plan's ("" when none; empty when unplanned)
    "optimizer", "lr", "schedule",
    "loss",  # as trained: the task's default loss when the recipe left it unset
    "augment", "device", "device_name", "precision_mode", "channels_last", "compile", "threads", "zoo_version",
    "torch_version", "torchvision_version", "cuda_version", "python_version", "plugin", "plugin_distribution",
    "plugin_version", "dataset_fingerprint", "split_source", "profile", "config_hash", "host", "started_at",
    "finished_at", "wall_seconds", "error",
)
_RECIPE_FIELDS = ("max_steps", "optimizer", "lr", "schedule", "loss", "augment")  # from the record's config


@dataclass(frozen=True)
class BenchmarkRow:
    """One cell's result: a row of ``runs.csv``, a projection of its :class:`~zoo.bench.records.CellRecord`.

    Columns: ``RUN_COLUMNS_HEAD``, then the axis columns of the grid, then one column per metric, then
    ``RUN_COLUMNS_TAIL`` (``values``). Metric columns are named ``<metric>`` (mean of per-image values, NaN
    images left out), ``<metric>_pooled`` (over all pixels of the test split) and ``<metric>/<class>`` /
    ``<metric>/<class>_pooled`` per class.
    """

    cell_id: str
    dataset: str
    model: str
    variant: str
    seed: int
    status: str
    axes: Mapping[str, Any] = field(default_factory=dict)
    metrics: Mapping[str, float] = field(default_factory=dict)
    values: Mapping[str, Any] = field(default_factory=dict)  # RUN_COLUMNS_TAIL -> value

    @classmethod
    def from_record(cls, record: CellRecord) -> BenchmarkRow:
        """The row of one record; the recipe columns come from the record's config when not set on it."""
        values = {name: getattr(record, name, None) for name in RUN_COLUMNS_TAIL}
        for name in _RECIPE_FIELDS:  # the recipe travels in the record's config
            if values.get(name) is None and record.config.get(name) is not None:
                values[name] = record.config[name]
        values.update(_plan_values(record))
        return cls(*(getattr(record, name) for name in RUN_COLUMNS_HEAD), axes=dict(record.axes),
                   metrics={k: (float("nan") if v is None else float(v)) for k, v in record.metrics.items()},
                   values=values)


def _size_text(size: Any) -> str | None:
    """``[608, 608]`` or ``608`` -> ``"608x608"``."""
    if size is None:
        return None
    h, w = (size, size) if isinstance(size, int) else size
    return f"{h}x{w}"


def _plan_values(record: CellRecord) -> dict[str, Any]:
    """The planned-recipe columns of one record (budget and eval mode also for unplanned cells)."""
    config, plan = record.config, record.plan
    native = config.get("eval_image_size") == "native"
    out: dict[str, Any] = {
        "patch_size": _size_text(config.get("patch_size")),
        "input_scale": config.get("input_scale", 1.0) if config.get("patch_size") else None,
        "sampling": config.get("sampling") if config.get("patch_size") else "resize",
        "eval_mode": ("sliding" if config.get("tiled") else "whole") if native else "resized",
        "budget_kind": "steps" if config.get("max_steps") else "epochs",
        "budget_value": config.get("max_steps") or config.get("epochs"),
        "train_tflops": None if record.train_tflops is None else round(record.train_tflops, 3),
        "plan_version": None, "plan_overrides": None,
    }
    if plan:
        budget = plan.get("budget") or {}
        out.update(budget_kind=budget.get("kind"), budget_value=budget.get("value"),
                   plan_version=plan.get("version"), plan_overrides=" ".join(plan.get("overrides") or ()))
    return out


def _metric_sort_key(column: str, order: Sequence[str]) -> tuple[int, int, str]:
    base = column.split("/")[0].removesuffix("_pooled")
    rank = order.index(base) if base in order else len(order)
    per_class = "/" in column
    return rank, int(per_class), column


def run_columns(rows: Sequence[BenchmarkRow], metric_order: Sequence[str] = ()) -> list[str]:
    """The ``runs.csv`` header: head, axis columns, metric columns (by metric, overall before per class), tail."""
    axes: list[str] = []
    metrics: list[str] = []
    for row in rows:
        axes += [a for a in row.axes if a not in axes]
        metrics += [m for m in row.metrics if m not in metrics]
    metrics.sort(key=lambda c: _metric_sort_key(c, metric_order))
    return [*RUN_COLUMNS_HEAD, *axes, *metrics, *RUN_COLUMNS_TAIL]


def row_dict(row: BenchmarkRow) -> dict[str, Any]:
    """A flat mapping column -> value for ``runs.csv``."""
    out: dict[str, Any] = {name: getattr(row, name) for name in RUN_COLUMNS_HEAD}
    out.update({k: (json.dumps(v) if isinstance(v, (list, tuple, dict)) else v) for k, v in row.axes.items()})
    out.update(row.metrics)
    out.update(row.values)
    return out


def metric_order(records: Sequence[CellRecord]) -> list[str]:
    """Metric names in the order the tables show them: the selection metric, the recipe's, then the rest."""
    order: list[str] = []
    for record in records:
        metrics = record.config.get("metrics") or []
        select = str(record.config.get("select_metric", "dice")).split("/")[0]
        for name in [select, *metrics, *record.higher_is_better]:
            if name not in order:
                order.append(name)
    return order


def csv_text(frame: pd.DataFrame) -> str:
    """A table as CSV text with ``\\n`` line ends and no index (what every table file of a benchmark holds)."""
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, lineterminator="\n")
    return buffer.getvalue()


def runs_frame(records: Sequence[CellRecord]) -> pd.DataFrame:
    """One row per record in the fixed column order of :func:`run_columns`."""
    import pandas as pd

    rows = [BenchmarkRow.from_record(r) for r in records]
    return pd.DataFrame([row_dict(r) for r in rows], columns=run_columns(rows, metric_order(records)))


def write_runs_csv(records: Sequence[CellRecord], path: Path) -> Path:
    """Write ``runs.csv`` (one row per record, fixed column order) atomically: its only writer."""
    atomic_write_text(path, csv_text(runs_frame(records)))
    return path


def per_image_frame(records: Sequence[CellRecord]) -> pd.DataFrame:
    """The per-image test scores of every record that has them, with the cell's identity columns."""
    import pandas as pd

    frames = []
    for record in records:
        path = Path(record.directory or ".") / "per_image.csv"
        if record.directory is None or not path.exists():
            continue
        frame = pd.read_csv(path, dtype={"image_id": str})
        frame.insert(0, "cell_id", record.cell_id)
        for i, key in enumerate(("dataset", "model", "variant", "seed"), 1):
            frame.insert(i, key, getattr(record, key))
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)[PER_IMAGE_COLUMNS] if frames else pd.DataFrame(
        columns=PER_IMAGE_COLUMNS)


def load_tables(out_dirs: Sequence[str | Path]) -> tuple[list[CellRecord], pd.DataFrame, pd.DataFrame]:
    """The records of ``out_dirs`` (merged), and their ``runs`` and ``per_image`` tables."""
    records = read_records([Path(d) for d in out_dirs])
    return records, runs_frame(records), per_image_frame(records)

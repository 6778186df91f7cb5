"""The flat tables of a benchmark: ``runs.csv`` (one :class:`BenchmarkRow` per cell) and ``per_image.csv``.

This module is the only writer of ``runs.csv`` (:func:`write_runs_csv`), both while a grid runs and when
``zoo leaderboard`` re-renders it.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zoo.bench.records import CellRecord, read_records
from zoo.fileio import atomic_write_text

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["BenchmarkRow", "RUN_COLUMNS_HEAD", "RUN_COLUMNS_TAIL", "run_columns", "row_dict", "metric_order",
           "csv_text", "runs_frame", "per_image_frame", "write_runs_csv", "load_tables", "PER_IMAGE_COLUMNS"]

PER_IMAGE_COLUMNS = ["cell_id", "dataset", "model", "variant", "seed", "image_id", "metric", "value"]


@dataclass(frozen=True)
class BenchmarkRow:
    """One cell's result: a row of ``runs.csv``.

    Fixed columns come first in the order of the fields below (``RUN_COLUMNS_HEAD``), then the axis columns of
    the grid, then one column per metric (``metrics``), then ``RUN_COLUMNS_TAIL``. Metric columns are named
    ``<metric>`` (mean of per-image values, NaN images left out), ``<metric>_pooled`` (over all pixels of the
    test split) and ``<metric>/<class>`` / ``<metric>/<class>_pooled`` per class.
    """

    cell_id: str
    dataset: str
    model: str
    variant: str
    seed: int
    status: str
    axes: Mapping[str, Any] = field(default_factory=dict)
    metrics: Mapping[str, float] = field(default_factory=dict)
    n_parameters: int | None = None
    gmacs: float | None = None
    train_seconds: float | None = None
    epochs_done: int | None = None
    steps_done: int | None = None
    best_epoch: int | None = None
    infer_images_per_s: float | None = None
    infer_latency_ms: float | None = None
    infer_batch_size: int | None = None
    peak_memory_mb: float | None = None
    memory_kind: str | None = None
    allocator: str | None = None
    batch_size: int | None = None  # the global batch (all processes of a torchrun cell together)
    world_size: int | None = None  # processes that trained the cell (1 unless torchrun)
    image_size: int | None = None
    epochs: int | None = None
    max_steps: int | None = None
    optimizer: str | None = None
    lr: float | None = None
    schedule: str | None = None
    loss: str | None = None  # as trained: the task's default loss when the recipe left it unset
    augment: str | None = None
    device: str | None = None
    device_name: str | None = None
    precision_mode: str | None = None
    channels_last: bool | None = None
    compile: bool | None = None
    threads: int | None = None
    zoo_version: str | None = None
    torch_version: str | None = None
    torchvision_version: str | None = None
    cuda_version: str | None = None
    python_version: str | None = None
    plugin: str | None = None
    plugin_distribution: str | None = None
    plugin_version: str | None = None
    dataset_fingerprint: str | None = None
    split_source: str | None = None
    profile: str | None = None
    config_hash: str | None = None
    host: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    wall_seconds: float | None = None
    error: str | None = None

    @classmethod
    def from_record(cls, record: CellRecord) -> BenchmarkRow:
        """The row of one record; the recipe columns come from the record's config when not set on it."""
        values = {f.name: getattr(record, f.name) for f in fields(cls) if hasattr(record, f.name)}
        for name in _RECIPE_FIELDS:  # the recipe travels in the record's config
            if values.get(name) is None and record.config.get(name) is not None:
                values[name] = record.config[name]
        values["axes"] = dict(record.axes)
        values["metrics"] = {k: (float("nan") if v is None else float(v)) for k, v in record.metrics.items()}
        return cls(**values)


_RECIPE_FIELDS = ("max_steps", "optimizer", "lr", "schedule", "loss", "augment")

RUN_COLUMNS_HEAD = tuple(f.name for f in fields(BenchmarkRow)
                         if f.name not in ("axes", "metrics"))[:6]
RUN_COLUMNS_TAIL = tuple(f.name for f in fields(BenchmarkRow) if f.name not in ("axes", "metrics"))[6:]


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
    out: dict[str, Any] = {}
    for f in fields(row):
        if f.name == "axes":
            out.update({k: (json.dumps(v) if isinstance(v, (list, tuple, dict)) else v) for k, v in row.axes.items()})
        elif f.name == "metrics":
            out.update(row.metrics)
        else:
            out[f.name] = getattr(row, f.name)
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

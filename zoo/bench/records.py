"""Cell records on disk: atomic JSON files, per-cell locks, and the flat rows of ``runs.csv``.

An output directory holds one folder per cell::

    cells/<cell_id>/cell.json        the cell's recipe (written when it is first started)
    cells/<cell_id>/record.json      the result; its presence means "finished" (written last, atomically)
    cells/<cell_id>/per_image.csv    per-image metrics of the test split
    cells/<cell_id>/samples.npz      a few test images, masks and predictions (for the qualitative plot)
    cells/<cell_id>/run/             the training run: config.json, log.jsonl, result.json, test metrics and
                                     checkpoints (see :func:`prune_checkpoints` for which stay after the record)
    cells/<cell_id>/cell.log         the cell process's output
    cells/<cell_id>.lock             held while a process runs the cell

Every file is written to a temporary name and ``os.replace``d, so a reader sees either the old or the new
content. Cells never share a file, so processes running different cells (shards) never interfere, and the
lock keeps two processes off the same cell.
"""

from __future__ import annotations

import json
import logging
import math
import os
import socket
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from zoo.errors import check_choice
from zoo.fileio import atomic_write_text

__all__ = ["STATUSES", "KEEP_CHECKPOINTS", "BenchmarkRow", "prune_checkpoints", "RUN_COLUMNS_HEAD",
           "RUN_COLUMNS_TAIL", "write_json", "read_json", "CellLock", "cell_dir",
           "read_records", "run_columns", "row_dict"]

log = logging.getLogger(__name__)

STATUSES = ("ok", "failed", "diverged", "oom", "timeout")
LOCK_HEARTBEAT_S = 30.0
LOCK_STALE_S = 600.0  # a lock from another host whose heartbeat is this old is abandoned
KEEP_CHECKPOINTS = ("best", "all", "none")  # what a recorded cell keeps of its run's checkpoints
_RESUMABLE = ("timeout",)  # statuses that --rerun-failed resumes from the last checkpoint rather than redoing


def _json_safe(value: Any) -> Any:
    """NaN and infinities become ``None`` (JSON has no NaN); tuples become lists."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def write_json(path: Path, data: Mapping[str, Any]) -> None:
    """Atomically write ``data`` as indented JSON (NaN written as null)."""
    atomic_write_text(path, json.dumps(_json_safe(data), indent=1, sort_keys=False, default=str) + "\n")


def read_json(path: Path) -> dict[str, Any] | None:
    """The JSON object at ``path``, or ``None`` when missing or unreadable (a record being replaced)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def cell_dir(out: Path, cell_id: str) -> Path:
    return out / "cells" / cell_id


def prune_checkpoints(directory: Path, keep: str, *, status: str | None = None) -> list[Path]:
    """Delete what a recorded cell no longer needs from ``DIRECTORY/run`` and return the deleted files.

    A run writes ``last.safetensors`` + ``last.pt`` (weights, optimizer, scheduler and RNG state: everything to
    resume) and ``best.safetensors`` (the weights selected on val, with their metadata). Once the cell is
    recorded, only resuming needs ``last``; for a model with 24 M parameters it is about 300 MB of the 400.

    Args:
        directory: the cell's folder.
        keep: ``"best"`` keeps ``best.safetensors`` (enough for ``zoo eval``/``zoo predict``), ``"all"``
            deletes nothing, ``"none"`` deletes every weights and state file. Logs, ``config.json`` and
            ``result.json`` always stay.
        status: the cell's recorded status; a ``timeout`` cell keeps its resumable state whatever ``keep`` says,
            because ``--rerun-failed`` continues it from there.
    """
    check_choice("checkpoint policy", keep, KEEP_CHECKPOINTS)
    run = directory / "run"
    if keep == "all" or status in _RESUMABLE or not run.is_dir():
        return []
    # every training-state file, every weights file but the kept one, and temporaries a killed save left behind
    doomed = [*run.glob("*.pt"), *run.glob(".*.tmp*"),
              *(p for p in run.glob("*.safetensors") if keep == "none" or p.name != "best.safetensors")]
    for path in doomed:
        path.unlink(missing_ok=True)
    for path in (directory / "record.json", run / "result.json"):  # their checkpoints must name what is left
        data = read_json(path)
        if data is None or not isinstance(data.get("checkpoints"), dict):
            continue
        left = {k: v for k, v in data["checkpoints"].items() if (run / Path(v).name).exists()}
        if left == data["checkpoints"]:
            continue
        data["checkpoints"] = left
        if path.name == "record.json":
            write_json(path, data)
        else:  # the training run's own file: keep its format (NaN stays NaN)
            atomic_write_text(path, json.dumps(data, indent=2) + "\n")
    return sorted(doomed)


class CellLock:
    """An exclusive lock on one cell: a ``<cell_id>.lock`` file created with ``O_CREAT | O_EXCL``.

    The file names the holder (host, pid) and its modification time is a heartbeat (:meth:`touch`). A lock is
    stale, and taken over, when its holder is a dead process on this host, or when its heartbeat is older than
    ``LOCK_STALE_S`` (a holder on another host sharing the folder).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.held = False

    def holder(self) -> dict[str, Any] | None:
        return read_json(self.path)

    def _stale(self) -> bool:
        info = self.holder()
        try:
            age = time.time() - self.path.stat().st_mtime
        except FileNotFoundError:
            return True
        if info is None:  # being written right now, or garbage
            return age > 5.0
        if info.get("host") == socket.gethostname():
            try:
                os.kill(int(info["pid"]), 0)
            except ProcessLookupError:
                return True
            except (PermissionError, ValueError, KeyError, TypeError):
                return False
            return False
        return age > LOCK_STALE_S

    def acquire(self) -> bool:
        """Take the lock; ``False`` when another live process holds it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                if not self._stale():
                    return False
                log.warning("removing stale lock %s (holder %s)", self.path, self.holder())
                self.path.unlink(missing_ok=True)
                continue
            with os.fdopen(fd, "w") as f:
                json.dump({"host": socket.gethostname(), "pid": os.getpid(), "since": time.time()}, f)
            self.held = True
            return True
        return False

    def touch(self) -> None:
        if self.held:
            try:
                os.utime(self.path)
            except FileNotFoundError:
                pass

    def release(self) -> None:
        if self.held:
            self.path.unlink(missing_ok=True)
            self.held = False

    def __enter__(self) -> CellLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def read_records(out_dirs: Iterable[Path]) -> list[dict[str, Any]]:
    """Every ``record.json`` under ``out_dirs`` (merging shards), sorted by cell id; later dirs win ties."""
    found: dict[str, dict[str, Any]] = {}
    for out in out_dirs:
        for path in sorted(Path(out).glob("cells/*/record.json")):
            record = read_json(path)
            if record is None:
                log.warning("skipping unreadable record %s", path)
                continue
            record["_dir"] = str(path.parent)
            found[record["cell_id"]] = record
    return [found[k] for k in sorted(found)]


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
    def from_record(cls, record: Mapping[str, Any]) -> BenchmarkRow:
        names = {f.name for f in fields(cls)}
        values = {k: v for k, v in record.items() if k in names}
        config = record.get("config") or {}
        for name in _RECIPE_FIELDS:  # the recipe travels in the record's config
            if values.get(name) is None and config.get(name) is not None:
                values[name] = config[name]
        values["axes"] = dict(record.get("axes") or {})
        values["metrics"] = {k: (float("nan") if v is None else float(v))
                             for k, v in (record.get("metrics") or {}).items()}
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

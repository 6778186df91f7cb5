"""Cell records: the typed, versioned :class:`CellRecord`, its JSON file, and the cell folder layout.

An output directory holds one folder per cell::

    cells/<cell_id>/cell.json        the cell's recipe (written when it is first started)
    cells/<cell_id>/record.json      the result; its presence means "finished" (written last, atomically)
    cells/<cell_id>/per_image.csv    per-image metrics of the test split
    cells/<cell_id>/samples.npz      a few test images, masks and predictions (for the qualitative plot)
    cells/<cell_id>/run/             the training run: config.json, log.jsonl, result.json, test metrics and
                                     checkpoints (see :func:`prune_checkpoints` for which stay after the record)
    cells/<cell_id>/cell.log         the cell process's output
    cells/<cell_id>.lock             held while a process runs the cell (``zoo.bench.locks``)

Every file is written to a temporary name and ``os.replace``d, so a reader sees either the old or the new
content. Cells never share a file, so processes running different cells (shards) never interfere, and the
lock keeps two processes off the same cell.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import math
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zoo.errors import ZooError, check_choice
from zoo.fileio import atomic_write_text

__all__ = ["STATUSES", "KEEP_CHECKPOINTS", "SCHEMA_VERSION", "CellRecord", "RecordError", "write_json", "read_json",
           "write_record", "read_record", "cell_dir", "prune_checkpoints", "read_records"]

log = logging.getLogger(__name__)
STATUSES = ("ok", "failed", "diverged", "oom", "timeout")
KEEP_CHECKPOINTS = ("best", "all", "none")  # what a recorded cell keeps of its run's checkpoints
_RESUMABLE = ("timeout",)  # statuses that --rerun-failed resumes from the last checkpoint rather than redoing
SCHEMA_VERSION = 3


class RecordError(ZooError):
    """A record file that does not match :class:`CellRecord` (an unknown or missing key, a newer schema)."""


@dataclass
class CellRecord:
    """Everything one benchmark cell left behind: identity, recipe, provenance, results and costs.

    Written once, last, as ``cells/<cell_id>/record.json`` (its presence means "finished"). Every key of the
    file is a field here; :meth:`from_json` refuses unknown and missing keys, and older files are brought up
    to date by :func:`_migrate` (schema 0: the files written before the schema was versioned; schema 1: before
    planned recipes; schema 2: before the deployed file's speed).
    """

    cell_id: str
    dataset: str
    model: str
    variant: str
    seed: int
    status: str = "failed"
    axes: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float | None] = field(default_factory=dict)  # column -> test value (see BenchmarkRow)
    # the recipe
    batch_size: int | None = None  # the global batch actually trained (all processes of a torchrun cell)
    image_size: int | None = None
    epochs: int | None = None
    profile: str | None = None
    config_hash: str | None = None
    config: dict[str, Any] = field(default_factory=dict)  # zoo.training.TrainConfig as trained
    loss: str | None = None  # as trained: the task's default loss when the recipe left it unset
    # provenance
    host: str | None = None
    started_at: str | None = None
    zoo_version: str | None = None
    python_version: str | None = None
    torch_version: str | None = None
    cuda_version: str | None = None
    torchvision_version: str | None = None
    plugin: str | None = None
    plugin_distribution: str | None = None
    plugin_version: str | None = None
    # training
    error: str | None = None
    epochs_done: int | None = None
    steps_done: int | None = None
    train_seconds: float | None = None
    best_epoch: int | None = None
    n_parameters: int | None = None
    world_size: int | None = None
    device: str | None = None
    device_name: str | None = None
    precision_mode: str | None = None
    channels_last: bool | None = None
    compile: bool | None = None
    history: list[dict[str, Any]] = field(default_factory=list)  # one entry per epoch (zoo.engine's log)
    nonfinite_losses: int | None = None
    # costs measured after training
    peak_memory_mb: float | None = None
    memory_kind: str | None = None
    threads: int | None = None
    allocator: str | None = None
    gmacs: float | None = None
    infer_images_per_s: float | None = None
    infer_latency_ms: float | None = None
    infer_batch_size: int | None = None
    # the deployed file (schema 3; a grid run with deploy_speed): ONNX Runtime on the CPU, measured as above
    ort_images_per_s: float | None = None
    ort_latency_ms: float | None = None
    ort_error: str | None = None  # why the model could not be exported or run (the cell stays ok)
    # test results beyond the metric columns
    nan_counts: dict[str, int] = field(default_factory=dict)
    higher_is_better: dict[str, bool] = field(default_factory=dict)
    checkpoints: dict[str, str] = field(default_factory=dict)
    # the data
    dataset_fingerprint: str | None = None
    # the planned recipe (schema 2): zoo.plan.Plan.to_dict() plus "overrides" (the settings given explicitly that
    # replaced the plan's), or None for an unplanned cell; train_tflops: GMACs at the training patch x 6 x images
    plan: dict[str, Any] | None = None
    train_tflops: float | None = None
    split_source: str | None = None
    class_names: list[str] = field(default_factory=list)
    finished_at: str | None = None
    wall_seconds: float | None = None
    schema: int = SCHEMA_VERSION
    # where the record was read from (not part of the file)
    directory: Path | None = field(default=None, compare=False, repr=False)

    def update(self, **values: Any) -> None:
        """Set several fields at once; an unknown name is an error (a typo must not become an empty column)."""
        unknown = sorted(set(values) - _FIELDS)
        if unknown:
            raise RecordError(f"unknown record field(s) {unknown}; valid: {', '.join(sorted(_FIELDS))}")
        for name, value in values.items():
            setattr(self, name, value)

    def to_json(self) -> dict[str, Any]:
        """The file's content: every field but ``directory``, NaN as ``null``."""
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "directory"}
        return _json_safe(data)

    @classmethod
    def from_json(cls, data: Mapping[str, Any], *, directory: Path | None = None) -> CellRecord:
        """Parse a record file's content, migrating older schemas.

        Raises:
            RecordError: an unknown or missing key, or a schema newer than this zoo understands.
        """
        if not isinstance(data, Mapping):
            raise RecordError(f"a record must be a JSON object, not {type(data).__name__}")
        data = _migrate(dict(data))
        unknown = sorted(set(data) - _FIELDS)
        missing = sorted(_FIELDS - set(data))
        if unknown or missing:
            raise RecordError(f"record {data.get('cell_id')!r} does not match schema {SCHEMA_VERSION}: "
                              f"unknown key(s) {unknown}, missing key(s) {missing}")
        wrong = [f"{name}={data[name]!r}"[:80] for name, hint in _hints().items()
                 if name in data and not _has_type(data[name], hint)]
        if wrong:
            raise RecordError(f"record {data.get('cell_id')!r} has values of the wrong type: {', '.join(wrong)}")
        return cls(**data, directory=directory)


_FIELDS = {f.name for f in dataclasses.fields(CellRecord)} - {"directory"}


@functools.cache
def _hints() -> dict[str, Any]:
    """Each record field's type (resolved from the annotations)."""
    hints = typing.get_type_hints(CellRecord)
    return {name: hints[name] for name in _FIELDS}


def _has_type(value: Any, hint: Any) -> bool:
    """Whether a JSON value fits a field's type: a hand-edited or damaged record must not reach the tables."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_has_type(value, a) for a in args)
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if origin is dict:
        return isinstance(value, dict) and all(isinstance(k, str) and _has_type(v, args[1]) for k, v in value.items())
    if origin is list:
        return isinstance(value, list) and all(_has_type(v, args[0]) for v in value)
    return True


def _migrate(data: dict[str, Any]) -> dict[str, Any]:
    """Bring a record file of an older schema to :data:`SCHEMA_VERSION`."""
    version = data.get("schema", 0)
    if not isinstance(version, int) or version > SCHEMA_VERSION:
        raise RecordError(f"record {data.get('cell_id')!r} has schema {version!r}; this zoo reads up to "
                          f"{SCHEMA_VERSION} (upgrade segzoo)")
    if version == 0:  # before the schema: fields added over time were simply absent, and `_dir` was in memory
        data.pop("_dir", None)
        defaults = CellRecord(cell_id="", dataset="", model="", variant="", seed=0).to_json()
        data = {**{k: v for k, v in defaults.items() if k not in data}, **data, "schema": 1}
    if data["schema"] == 1:  # schema 2 added the planned recipe; older cells were never planned
        data = {**data, "plan": None, "train_tflops": None, "schema": 2}
    if data["schema"] == 2:  # schema 3 added the deployed file's speed; older cells did not measure it
        data = {**data, "ort_images_per_s": None, "ort_latency_ms": None, "ort_error": None, "schema": 3}
    return data


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
    """The folder of one cell in an output directory."""
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


def write_record(directory: Path, record: CellRecord) -> Path:
    """Write ``DIRECTORY/record.json`` atomically."""
    path = directory / "record.json"
    write_json(path, record.to_json())
    return path


def read_record(directory: Path) -> CellRecord | None:
    """The record in ``directory``; ``None`` when there is none yet or it is being replaced.

    Raises:
        RecordError: the file does not match the schema.
    """
    data = read_json(directory / "record.json")
    return None if data is None else CellRecord.from_json(data, directory=directory)


def read_records(out_dirs: Iterable[Path]) -> list[CellRecord]:
    """Every record under ``out_dirs`` (merging shards), sorted by cell id; later dirs win ties.

    A record that cannot be read or does not match the schema is reported (naming the file) and left out;
    the others are returned.
    """
    found: dict[str, CellRecord] = {}
    for out in out_dirs:
        for path in sorted(Path(out).glob("cells/*/record.json")):
            try:
                record = read_record(path.parent)
            except RecordError as exc:
                log.warning("skipping %s: %s", path, exc)
                continue
            if record is None:
                log.warning("skipping unreadable record %s", path)
                continue
            found[record.cell_id] = record
    return [found[k] for k in sorted(found)]

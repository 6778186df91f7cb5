"""A training run by name: the recipe (:class:`TrainConfig`), :func:`run` and :func:`evaluate_checkpoint`.

This is the stable API that ``zoo train`` / ``zoo eval`` and the benchmark harness call. ``run`` builds the
dataset, model, loss and metrics from the registries, fits on the train split with model selection on val,
then loads the best weights and scores the test split (never used for selection).

Outputs in ``out_dir``: ``config.json`` (the recipe), ``log.jsonl`` (one JSON object per epoch: losses, val
metrics, learning rate, seconds), checkpoints ``last`` and ``best`` (``.safetensors`` weights + ``.pt`` state,
see ``zoo.checkpoint``), ``test_per_image.csv`` and ``result.json``.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from zoo import costs, distributed, registry
from zoo.checkpoint import checkpoint_paths, load_checkpoint, load_training_state, save_checkpoint
from zoo.engine import (OPTIMIZERS, SCHEDULES, EvalResult, FitState, LoopState, build_optimizer, build_scheduler,
                        evaluate, fit)
from zoo.errors import CheckpointError, OptionError, ZooError, check_choice
from zoo.fileio import atomic_write_text
from zoo.precision import DEVICES, PRECISIONS, Precision, device_name
from zoo.seeding import rng_state, seed_everything, set_rng_state

if TYPE_CHECKING:
    from zoo.interfaces import Metric, SegmentationDataset
    from zoo.registry import Registries

__all__ = ["TrainConfig", "RunResult", "EvalResult", "run", "evaluate_checkpoint", "write_eval_outputs",
           "predict_files", "PREDICT_MODES", "RESUMABLE_CHANGES"]

log = logging.getLogger(__name__)

#: fields that may differ between an interrupted run and its resumption
RESUMABLE_CHANGES = ("epochs", "max_steps", "num_workers")


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run (recorded with its results; ``asdict`` gives JSON).

    Defaults follow the blog post's recipe: Adam, lr 1e-3, batch 16, 128x128 images, the task's default loss
    (BCE with logits for binary masks, cross-entropy otherwise), 25 epochs.

    Attributes:
        model, dataset: registered names; ``model_options`` / ``dataset_options`` go to their builders.
        epochs: budget in epochs, unless ``max_steps`` (optimizer steps) is set, which then replaces it.
        batch_size, image_size: training batches of ``image_size`` squares (augmentation crops and resizes).
            ``batch_size`` is the *global* batch: under ``torchrun`` with W processes each takes
            ``batch_size / W`` images of the same batches one process would see (see ``zoo.distributed``).
        eval_image_size: how val/test are scored. ``None``: images and masks resized to ``image_size`` (the
            training scale; fast). An int: resized to that size. ``"native"``: at the original size (batch 1,
            padded to a multiple of 32), and with ``tiled=True`` by sliding ``image_size`` windows.
        optimizer: ``adam``, ``adamw`` or ``sgd``; ``schedule``: per-step ``constant``, ``cosine`` or ``poly``.
        loss: a ``zoo.losses`` name, or ``None`` for the task default.
        augment: ``none``, ``light`` or ``strong`` (``zoo.data``).
        val_every: validate every N epochs (and always after the last).
        select_metric: the val column that picks the best checkpoint, as pooled over the split (all pixels of all
            val images), with the direction of the metric that produces it.
        grad_clip: clip the global gradient norm to this value.
        metrics: metric names scored on test (``()``: every registered metric). Validation computes only the
            metric that produces ``select_metric`` when it can tell which one, else all of them.
        device, precision, channels_last, compile: see ``zoo.precision``. ``precision="auto"`` (default) is
            bf16 autocast + channels_last on a CPU with native bf16 or on CUDA, fp32 elsewhere; ``"fp32"``
            turns the fast path off. ``channels_last=None`` follows the precision. ``compile`` wraps the model
            in ``torch.compile``.
        deterministic: ``torch.use_deterministic_algorithms(True)``.
        seed: seeds Python, NumPy, torch and the per-epoch loader order.
        tiled: sliding-window inference for val/test (with ``eval_image_size="native"``).
        sync_bn: under ``torchrun``, batch-norm statistics over the global batch (``SyncBatchNorm``, CUDA only);
            without it each process normalises with its own ``batch_size / W`` images. No effect on one process.
    """

    model: str
    dataset: str
    model_options: Mapping[str, Any] = field(default_factory=dict)
    dataset_options: Mapping[str, Any] = field(default_factory=dict)
    epochs: int = 25
    max_steps: int | None = None
    batch_size: int = 16
    image_size: int = 128
    eval_image_size: int | str | None = None
    optimizer: str = "adam"
    lr: float = 1e-3
    weight_decay: float = 0.0
    schedule: str = "constant"
    loss: str | None = None
    augment: str = "light"
    val_every: int = 1
    select_metric: str = "dice"
    grad_clip: float | None = None
    metrics: tuple[str, ...] = ()
    device: str = "auto"
    precision: str = "auto"
    channels_last: bool | None = None
    compile: bool = False
    deterministic: bool = False
    seed: int = 0
    num_workers: int = 0
    tiled: bool = False
    sync_bn: bool = False

    def __post_init__(self) -> None:
        check_choice("optimizer", self.optimizer, OPTIMIZERS)
        check_choice("schedule", self.schedule, SCHEDULES)
        check_choice("precision", self.precision, PRECISIONS)
        check_choice("device", self.device.split(":")[0], DEVICES)
        for name in ("epochs", "batch_size", "image_size", "val_every"):
            if int(getattr(self, name)) < 1:
                raise OptionError(f"{name}={getattr(self, name)!r} must be >= 1")
        if self.max_steps is not None and self.max_steps < 1:
            raise OptionError(f"max_steps={self.max_steps!r} must be >= 1 or None")
        if not (self.eval_image_size is None or self.eval_image_size == "native"
                or (isinstance(self.eval_image_size, int) and self.eval_image_size > 0)):
            raise OptionError(f"eval_image_size={self.eval_image_size!r} must be None, 'native' or a size > 0")
        object.__setattr__(self, "model_options", dict(self.model_options))
        object.__setattr__(self, "dataset_options", dict(self.dataset_options))
        object.__setattr__(self, "metrics", tuple(self.metrics))

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> TrainConfig:
        """Build from a mapping (TOML ``[train]`` table, ``config.json``); unknown keys raise ``OptionError``."""
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(values) - set(names))
        if unknown:
            raise OptionError(f"unknown training setting(s) {', '.join(map(repr, unknown))}; "
                              f"valid: {', '.join(names)}")
        return cls(**dict(values))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (tuples become lists)."""
        return json.loads(json.dumps(asdict(self)))


@dataclass
class RunResult:
    """What a run produced. ``status``: ``ok``, ``diverged``, ``oom``, ``failed`` or ``interrupted``."""

    config: TrainConfig
    status: str = "failed"
    error: str | None = None
    epochs_done: int = 0
    steps_done: int = 0
    train_seconds: float = 0.0
    best_epoch: int | None = None
    best_score: float | None = None
    test_pooled: dict[str, float] = field(default_factory=dict)
    test_mean: dict[str, float] = field(default_factory=dict)
    test_nan_count: dict[str, int] = field(default_factory=dict)
    per_image: list[tuple[str, str, float]] = field(default_factory=list)
    batch_size_used: int | None = None
    device: str = ""
    device_name: str = ""
    precision: dict[str, Any] = field(default_factory=dict)
    n_parameters: int = 0
    checkpoints: dict[str, str] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    nonfinite_losses: int = 0
    skipped_steps: int = 0
    world_size: int = 1  # processes that trained it (torchrun); batch_size_used is the global batch
    batch_size_per_process: int | None = None

    def to_dict(self, *, per_image: bool = False) -> dict[str, Any]:
        """JSON-ready summary (``per_image`` rows only when asked: they can be long)."""
        data = asdict(self)
        data["config"] = self.config.to_dict()
        if not per_image:
            data.pop("per_image")
        return json.loads(json.dumps(data, default=str))


# ------------------------------------------------------------------------------------------------------------
# Building the parts by name


@dataclass
class _Parts:
    dataset: SegmentationDataset
    model: nn.Module
    loss_name: str
    out_channels: int
    meta: dict[str, Any]


def _model_meta(config: TrainConfig, reg: Registries, dataset: SegmentationDataset, out_channels: int,
                loss_name: str) -> dict[str, Any]:
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


def _build_parts(config: TrainConfig, reg: Registries) -> _Parts:
    from zoo import losses

    dataset = registry.build_dataset(config.dataset, registries=reg, **config.dataset_options)
    num_classes = int(dataset.num_classes)
    loss_name = config.loss or losses.default_loss(num_classes)
    out_channels = losses.model_out_channels(loss_name, num_classes)
    model = registry.build_model(config.model, in_channels=int(dataset.in_channels), num_classes=out_channels,
                            registries=reg, **config.model_options)
    return _Parts(dataset, model, loss_name, out_channels,
                  _model_meta(config, reg, dataset, out_channels, loss_name))


def _build_metrics(names: Sequence[str], dataset: SegmentationDataset, reg: Registries) -> dict[str, Metric]:
    names = list(names) or reg.metrics.names()
    return {name: registry.build_metric(name, num_classes=int(dataset.num_classes), ignore_index=dataset.ignore_index,
                                   class_names=list(dataset.class_names), registries=reg) for name in names}


def _eval_loader(split: Any, eval_image_size: int | str | None, image_size: int, batch_size: int,
                 num_workers: int = 0) -> Any:
    """The split in order; under torchrun, this rank's shard (``zoo.engine.evaluate`` gathers the rest)."""
    from zoo.data import make_loader

    sampler = distributed.eval_sampler(split)
    if eval_image_size == "native":
        return make_loader(split, train=False, batch_size=1, image_size=None, num_workers=num_workers,
                           sampler=sampler)
    size = image_size if eval_image_size is None else int(eval_image_size)
    return make_loader(split, train=False, batch_size=batch_size, image_size=size, num_workers=num_workers,
                       sampler=sampler)


def _loop_state_dict(state: FitState) -> dict[str, Any]:
    return {"epoch": state.epoch, "loop": asdict(state.loop), "best_score": state.best_score,
            "best_epoch": state.best_epoch, "history": json.dumps(state.history), "train_seconds": state.train_seconds}


def _fit_state_from(saved: Mapping[str, Any]) -> FitState:
    return FitState(epoch=saved["epoch"], loop=LoopState(**saved["loop"]), best_score=saved["best_score"],
                    best_epoch=saved["best_epoch"], history=json.loads(saved["history"]),
                    train_seconds=saved["train_seconds"])


def _check_resumable(saved_config: Mapping[str, Any], config: TrainConfig) -> None:
    now = config.to_dict()
    differ = [k for k in now if k not in RESUMABLE_CHANGES and now[k] != saved_config.get(k)]
    if differ:
        detail = ", ".join(f"{k}: {saved_config.get(k)!r} -> {now[k]!r}" for k in differ)
        raise CheckpointError(f"cannot resume: the recipe differs from the checkpoint's ({detail}); "
                              f"only {', '.join(RESUMABLE_CHANGES)} may change")


def _write_jsonl(path: Path, records: Sequence[Mapping[str, Any]]) -> None:
    atomic_write_text(path, "".join(json.dumps(record, default=str) + "\n" for record in records))


def _select_metric_source(select_metric: str, reg: Registries, names: Sequence[str]) -> str | None:
    base = select_metric.split("/")[0]
    candidates = list(names) or reg.metrics.names()
    return base if base in candidates or base in reg.metrics else None


# ------------------------------------------------------------------------------------------------------------
# The run


def run(config: TrainConfig, out_dir: str | Path, *, resume: bool = False, quiet: bool = False,
        registries: Registries | None = None, unsafe_load: bool = False,
        on_epoch_end: Callable[[FitState, dict[str, Any]], bool | None] | None = None) -> RunResult:
    """Train ``config`` into ``out_dir``, select on val, score the best weights on test.

    Args:
        config: the recipe.
        out_dir: created if needed; holds checkpoints, ``log.jsonl``, ``config.json``, ``result.json``.
        resume: continue from ``out_dir/last`` if it exists (the recipe must match, except
            :data:`RESUMABLE_CHANGES`); a resumed deterministic CPU run ends with the same weights as an
            uninterrupted one.
        quiet: no progress bars (they are also off when stderr is not a terminal).
        registries: the plugins to use (default: the installed ones).
        unsafe_load: allow a training-state pickle outside torch's weights-only allowlist (trusted files only).
        on_epoch_end: called after each epoch (after checkpoints are written); returning True stops the run
            with status ``interrupted``.

    Under ``torchrun`` (``WORLD_SIZE`` > 1) the run is data-parallel (``DistributedDataParallel``, see
    ``zoo.distributed``): ``config.batch_size`` is the global batch, validation and test score the whole split
    once, only rank 0 writes files, and every rank returns the same result. The checkpoints hold the plain
    model's weights, so they load in a single-process run and back.

    Returns:
        A :class:`RunResult`. Divergence, CUDA OOM after the allowed back-offs and errors during training are
        reported in ``status``/``error``, not raised; bad names or options raise ``ZooError`` up front.
    """
    with distributed.session(config.device) as device:
        return _run(config, Path(out_dir), device=device, resume=resume, quiet=quiet, registries=registries,
                    unsafe_load=unsafe_load, on_epoch_end=on_epoch_end)


def _run(config: TrainConfig, out: Path, *, device: str, resume: bool, quiet: bool, registries: Registries | None,
         unsafe_load: bool, on_epoch_end: Callable[[FitState, dict[str, Any]], bool | None] | None) -> RunResult:
    from torch.nn.parallel import DistributedDataParallel

    from zoo.data import make_loader
    from zoo import losses

    world, main = distributed.world_size(), distributed.is_main()
    if config.batch_size % world:
        raise OptionError(f"batch_size={config.batch_size} is the global batch and must be divisible by the "
                          f"{world} processes; use a multiple of {world}")
    per_process = config.batch_size // world
    quiet = quiet or not main
    if main:
        out.mkdir(parents=True, exist_ok=True)
    reg = registries if registries is not None else registry.default_registry()
    seed_everything(config.seed, deterministic=config.deterministic)
    parts = _build_parts(config, reg)
    dataset, meta = parts.dataset, parts.meta
    precision = Precision(device, config.precision, channels_last=config.channels_last)
    model = parts.model
    if config.sync_bn and world > 1:
        if precision.device.type != "cuda":
            raise OptionError(f"sync_bn needs CUDA (torch's SyncBatchNorm has no {precision.device.type} "
                              f"kernel); drop --sync-bn, or use a model without batch norm for exact equality")
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)  # same state_dict keys as BatchNorm
    model = precision.module(model)  # the plain module: saved, loaded, and scored
    train_model: nn.Module = model
    if world > 1:  # averages gradients over the ranks during backward; rank 0's initial weights win
        train_model = DistributedDataParallel(model, device_ids=[precision.device.index]
                                              if precision.device.type == "cuda" else None)
    if config.compile:
        train_model = torch.compile(train_model)  # type: ignore[assignment]
    eval_model = model if world > 1 else train_model  # DDP's forward would sync buffers: score the module
    loss_fn = losses.build_loss(parts.loss_name, num_classes=int(dataset.num_classes),
                                ignore_index=dataset.ignore_index)
    test_metrics = _build_metrics(config.metrics, dataset, reg)
    source = _select_metric_source(config.select_metric, reg, config.metrics)
    if source is None:
        val_metrics = test_metrics
    else:
        val_metrics = {source: test_metrics[source] if source in test_metrics
                       else _build_metrics([source], dataset, reg)[source]}
    higher = reg.metrics.get(source).higher_is_better if source else True

    train_split, val_split = dataset.split("train"), dataset.split("val")
    pin = precision.device.type == "cuda"

    def train_loader(epoch: int) -> Any:
        # the order of each epoch depends only on (seed, epoch), so a resumed run sees the same batches
        seed = config.seed * 1_000_003 + epoch
        if world == 1:
            return make_loader(train_split, train=True, batch_size=config.batch_size, image_size=config.image_size,
                               augment=config.augment, seed=seed, num_workers=config.num_workers, pin_memory=pin)
        sampler = distributed.GlobalBatchSampler(len(train_split), batch_size=config.batch_size, seed=seed,
                                                 rank=distributed.rank(), world=world)
        return make_loader(train_split, train=True, batch_size=per_process, image_size=config.image_size,
                           augment=config.augment, seed=seed, num_workers=config.num_workers, pin_memory=pin,
                           drop_last=False, sampler=sampler)

    steps_per_epoch = len(train_loader(0))
    total_steps = config.max_steps or config.epochs * steps_per_epoch
    optimizer = build_optimizer(config.optimizer, model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    scheduler = build_scheduler(config.schedule, optimizer, total_steps=total_steps)
    val_loader = _eval_loader(val_split, config.eval_image_size, config.image_size, per_process,
                              config.num_workers)
    tile = config.image_size if config.tiled and config.eval_image_size == "native" else None

    def validate() -> EvalResult:
        return evaluate(eval_model, val_loader, val_metrics, precision=precision,
                        loss_fn=loss_fn if tile is None else None, ids=list(val_split.ids), tile=tile)

    last_stem, best_stem = out / "last", out / "best"
    state: FitState | None = None
    if resume and checkpoint_paths(last_stem)[1].exists():
        saved = load_training_state(last_stem, unsafe=unsafe_load)
        _check_resumable(saved["meta"]["config"], config)
        weights = load_checkpoint(checkpoint_paths(last_stem)[0])
        if weights.meta.get("step") != saved["step"]:
            raise CheckpointError(f"{last_stem}: weights are from step {weights.meta.get('step')} but the training "
                                  f"state is from step {saved['step']}; the run was interrupted while saving")
        model.load_state_dict(weights.state_dict)
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        precision.scaler.load_state_dict(saved["scaler"])
        precision.skipped_steps = saved["skipped_steps"]
        set_rng_state(saved["rng"])
        state = _fit_state_from(saved["fit"])
        log.info("resuming %s at epoch %d, step %d", out, state.epoch, state.loop.step)
    elif resume:
        log.info("nothing to resume in %s; starting afresh", out)
    if world > 1 and distributed.rank() > 0:
        # augmentation draws from the global RNG: give each rank its own stream (rank 0 keeps one process's)
        torch.manual_seed(config.seed + 1_000_033 * distributed.rank() + (state.loop.step if state else 0))
    if main:
        (out / "config.json").write_text(json.dumps(config.to_dict(), indent=2) + "\n")

    def save(stem: Path, fit_state: FitState, with_state: bool) -> None:
        step_meta = {**meta, "epoch": fit_state.epoch, "step": fit_state.loop.step}
        training = None
        if with_state:
            training = {"step": fit_state.loop.step, "optimizer": optimizer.state_dict(),
                        "scheduler": scheduler.state_dict(), "scaler": precision.scaler.state_dict(),
                        "skipped_steps": precision.skipped_steps, "rng": rng_state(),
                        "fit": _loop_state_dict(fit_state)}
        save_checkpoint(stem, model, step_meta, training)

    def epoch_end(fit_state: FitState, record: dict[str, Any]) -> bool | None:
        if not main:
            return on_epoch_end(fit_state, record) if on_epoch_end is not None else None
        if fit_state.status != "diverged":
            save(last_stem, fit_state, with_state=True)
            if record.get("is_best"):
                save(best_stem, fit_state, with_state=False)
        _write_jsonl(out / "log.jsonl", fit_state.history)
        return on_epoch_end(fit_state, record) if on_epoch_end is not None else None

    result = RunResult(config=config, device=str(precision.device), device_name=device_name(precision.device),
                       precision=precision.describe() | {"compile": config.compile,
                                                         "deterministic": config.deterministic},
                       n_parameters=costs.count_parameters(model))
    fit_state = state or FitState()
    try:
        fit_state = fit(train_model, train_loader, loss_fn, optimizer, precision=precision, epochs=config.epochs,
                        max_steps=config.max_steps, scheduler=scheduler, grad_clip=config.grad_clip,
                        validate=validate, val_every=config.val_every, select_metric=config.select_metric,
                        higher_is_better=higher, state=fit_state, on_epoch_end=epoch_end, quiet=quiet)
        result.status = fit_state.status
        if fit_state.status == "diverged":
            result.error = (f"training diverged: {fit_state.loop.nonfinite_streak} non-finite losses in a row "
                            f"at step {fit_state.loop.step}")
    except torch.OutOfMemoryError as exc:
        result.status, result.error = "oom", f"out of memory after {fit_state.loop.oom_backoffs} back-offs: {exc}"
        log.error("%s", result.error)
    except ZooError:
        raise
    except Exception as exc:  # reported in the result so a benchmark records the failure and goes on
        log.exception("training failed")
        result.status, result.error = "failed", f"{type(exc).__name__}: {exc}"

    result.epochs_done, result.steps_done = fit_state.epoch, fit_state.loop.step
    result.train_seconds, result.history = fit_state.train_seconds, fit_state.history
    result.best_epoch, result.best_score = fit_state.best_epoch, fit_state.best_score
    result.batch_size_used = fit_state.loop.micro_batch * world if fit_state.loop.micro_batch else config.batch_size
    result.world_size, result.batch_size_per_process = world, result.batch_size_used // world
    result.nonfinite_losses, result.skipped_steps = fit_state.loop.nonfinite_total, precision.skipped_steps
    for name, stem in (("last", last_stem), ("best", best_stem)):
        if checkpoint_paths(stem)[0].exists():
            result.checkpoints[name] = str(checkpoint_paths(stem)[0])
    result.checkpoints = distributed.broadcast_from_main(result.checkpoints)  # rank 0 wrote (and sees) them
    if result.status == "ok" and "best" in result.checkpoints:
        best = load_checkpoint(result.checkpoints["best"]).state_dict if main else None
        model.load_state_dict(distributed.broadcast_from_main(best))  # no shared file system needed
        test_split = dataset.split("test")
        test = evaluate(eval_model, _eval_loader(test_split, config.eval_image_size, config.image_size,
                                                 per_process, config.num_workers),
                        test_metrics, precision=precision, ids=list(test_split.ids), tile=tile)
        result.test_pooled, result.test_mean, result.test_nan_count = test.pooled, test.mean, test.nan_count
        result.per_image = test.rows
        if main:
            write_eval_outputs(test, out, prefix="test")
    if main:
        (out / "result.json").write_text(json.dumps(result.to_dict(), indent=2) + "\n")
    return result


# ------------------------------------------------------------------------------------------------------------
# Evaluating a checkpoint


def _model_from_checkpoint(checkpoint: str | Path, reg: Registries) -> tuple[nn.Module, dict[str, Any]]:
    ckpt = load_checkpoint(checkpoint)
    meta = ckpt.meta
    model = registry.build_model(meta["model"], in_channels=meta["in_channels"], num_classes=meta["out_channels"],
                            registries=reg, **meta.get("model_options", {}))
    try:
        model.load_state_dict(ckpt.state_dict)
    except RuntimeError as exc:
        raise CheckpointError(f"checkpoint {str(ckpt.path)!r} does not fit model {meta['model']!r} with options "
                              f"{meta.get('model_options')}: {str(exc).splitlines()[0]}") from None
    return model, {**meta, "path": str(ckpt.path)}


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
        eval_image_size: as in :class:`TrainConfig`; ``"checkpoint"`` uses the training recipe's.
        tiled: sliding-window inference at native size with the training image size as tile.

    Returns:
        The metrics; ``result.meta`` holds the checkpoint's metadata plus what was scored (dataset, split, size).
    """
    from zoo.interfaces import SPLITS

    check_choice("split", split, SPLITS)
    reg = registries if registries is not None else registry.default_registry()
    model, meta = _model_from_checkpoint(checkpoint, reg)
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
    loader = _eval_loader(part, size, int(meta["image_size"]), batch_size)
    tile = int(meta["image_size"]) if tiled else None
    result = evaluate(model, loader, _build_metrics(metrics, data, reg), precision=prec, ids=list(part.ids),
                      tile=tile)
    result.meta = {**meta, "eval_dataset": name, "split": split, "eval_image_size": size, "tiled": tiled}
    return result


def write_eval_outputs(result: EvalResult, out_dir: str | Path, *, prefix: str = "eval",
                       extra: Mapping[str, Any] | None = None) -> tuple[Path, Path]:
    """Write ``PREFIX_per_image.csv`` (image_id, metric, value) and ``PREFIX_summary.json``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    csv_path, json_path = out / f"{prefix}_per_image.csv", out / f"{prefix}_summary.json"
    with csv_path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(("image_id", "metric", "value"))
        writer.writerows(result.rows)
    summary = {"n_images": result.n_images, "pooled": result.pooled, "per_image_mean": result.mean,
               "nan_count": result.nan_count, **(extra or {})}
    json_path.write_text(json.dumps(summary, indent=2, default=str, allow_nan=True) + "\n")
    return csv_path, json_path


# ------------------------------------------------------------------------------------------------------------
# Predicting image files

PREDICT_MODES = ("resize", "native", "tiled")
_PALETTE = ((0, 0, 0), (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48),
            (145, 30, 180), (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212), (0, 128, 128))


def _overlay(image: torch.Tensor, mask: torch.Tensor, alpha: float = 0.5) -> torch.Tensor:
    """uint8 RGB ``(H, W, 3)``: the image with classes 1.. tinted (class 0 left as is)."""
    rgb = image.expand(3, -1, -1) if image.shape[0] == 1 else image[:3]
    rgb = rgb.permute(1, 2, 0).float()
    colours = torch.tensor([_PALETTE[i % len(_PALETTE)] for i in range(int(mask.max()) + 1)], dtype=torch.float32)
    tint = colours[mask]
    blended = torch.where((mask > 0)[..., None], (1 - alpha) * rgb + alpha * tint, rgb)
    return blended.round().clamp(0, 255).to(torch.uint8)


@torch.inference_mode()
def predict_files(checkpoint: str | Path, images: Sequence[str | Path], out_dir: str | Path, *,
                  mode: str = "resize", batch_size: int = 8, device: str = "auto", precision: str = "auto",
                  compile: bool = False, registries: Registries | None = None) -> list[Path]:
    """Write a class-index mask PNG and an overlay PNG for each image file, at the image's own size.

    Args:
        checkpoint: a ``.safetensors`` file, its stem, or a run folder (its ``best``).
        images: image files of any size and channel count the model can take (gray <-> RGB is adapted).
        out_dir: gets ``<stem>_mask.png`` (uint8 class indices) and ``<stem>_overlay.png``.
        mode: ``resize`` (to the training image size, as the recipe scores; logits are resized back),
            ``native`` (the whole image at its own size) or ``tiled`` (sliding training-size windows).
        batch_size: images per forward pass (``resize``), windows per pass (``tiled``).
        compile: ``torch.compile`` the model first (CUDA graphs on a GPU; see
            ``zoo.precision.compile_for_inference``): worth it only for many images of one size.

    Returns:
        The mask paths, in the order of ``images``.
    """
    import torch.nn.functional as F
    from PIL import Image

    from zoo.data import adapt_channels, normalize_image, read_image
    from zoo.inference import logits_to_classes, predict_logits, sliding_window_logits

    check_choice("prediction mode", mode, PREDICT_MODES)
    reg = registries if registries is not None else registry.default_registry()
    model, meta = _model_from_checkpoint(checkpoint, reg)
    prec = Precision(device, precision)
    model = prec.module(model).eval()
    if compile:
        from zoo.precision import compile_for_inference

        model = compile_for_inference(model, prec)
    size = int(meta["image_size"])
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    paths = [Path(p) for p in images]
    for first in range(0, len(paths), batch_size):
        chunk = paths[first:first + batch_size]
        raws = [adapt_channels(read_image(p), int(meta["in_channels"]), p) for p in chunk]
        with prec.autocast():
            if mode == "resize":
                # one batch, resized like the eval loader; each image's logits go back to its own size
                small = torch.cat([F.interpolate(r[None].float().div(255), size=(size, size), mode="bilinear",
                                                 antialias=True) for r in raws])
                logits_small = predict_logits(model, prec.tensor(normalize_image(small)))
                all_logits = [F.interpolate(l[None], size=r.shape[-2:], mode="bilinear")
                              for l, r in zip(logits_small, raws)]
            else:
                all_logits = []
                for r in raws:
                    x = prec.tensor(normalize_image(r.float().div(255))[None])
                    all_logits.append(sliding_window_logits(model, x, tile=size, batch_size=batch_size)
                                      if mode == "tiled" else predict_logits(model, x))
        for path, raw, logits in zip(chunk, raws, all_logits):
            mask = logits_to_classes(logits.float())[0].cpu()
            mask_path, overlay_path = out / f"{path.stem}_mask.png", out / f"{path.stem}_overlay.png"
            Image.fromarray(mask.to(torch.uint8).numpy(), mode="L").save(mask_path)
            Image.fromarray(_overlay(raw, mask).numpy(), mode="RGB").save(overlay_path)
            written.append(mask_path)
            log.info("%s -> %s", path, mask_path)
    return written

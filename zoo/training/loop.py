"""The run: train a recipe into a folder, select on val, score the best weights on test.

:func:`run` reads top to bottom like nanoGPT's ``train.py``: processes and seed, the parts by name, the model
wrapped for training (sync-BN, DDP, compile), data, optimizer and schedule, resume, the loop over epochs
(:func:`zoo.engine.fit`; after each epoch rank 0 writes the checkpoints and ``log.jsonl``), then the test score and
``result.json``. Each step that is more than a line is a named helper below it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from zoo import costs, distributed, losses, registry
from zoo.checkpoint import load_checkpoint
from zoo.engine import FitState, build_optimizer, build_scheduler, fit
from zoo.scoring import EvalResult, evaluate
from zoo.errors import OptionError, ZooError
from zoo.fileio import atomic_write_text, output_dir
from zoo.precision import Precision, device_name
from zoo.seeding import check_deterministic_step, seed_everything
from zoo.training.checkpoints import RunCheckpoints
from zoo.training.config import RunResult, TrainConfig
from zoo.training.evaluation import write_eval_outputs
from zoo.training.parts import (Parts, build_metrics, build_parts, eval_loader, model_contract_named,
                                select_metric_source)

if TYPE_CHECKING:
    from zoo.interfaces import Metric, SegmentationDataset
    from zoo.registry import Registries

__all__ = ["run"]

log = logging.getLogger(__name__)
# What a run folder holds: --out may name a folder with any of these (a run to redo or resume), or an empty one.
RUN_FILES = ("config.json", "log.jsonl", "last.pt", "last.safetensors", "best.safetensors", "result.json")

#: ``on_epoch_end(state, record)``: called after each epoch; returning True stops the run
EpochHook = Callable[[FitState, dict[str, Any]], bool | None]


def run(config: TrainConfig, out_dir: str | Path, *, resume: bool = False, quiet: bool = False,
        registries: Registries | None = None, unsafe_load: bool = False,
        on_epoch_end: EpochHook | None = None) -> RunResult:
    """Train ``config`` into ``out_dir``, select on val, score the best weights on test.

    Args:
        config: the recipe.
        out_dir: created if needed; holds checkpoints, ``log.jsonl``, ``config.json``, ``result.json``.
        resume: continue from ``out_dir/last`` if it exists (the recipe must match, except
            :data:`~zoo.training.RESUMABLE_CHANGES`); a resumed deterministic CPU run ends with the same weights
            as an uninterrupted one.
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
        A :class:`~zoo.training.RunResult`. Divergence, CUDA OOM after the allowed back-offs and errors during
        training are reported in ``status``/``error``, not raised; bad names or options raise ``ZooError`` up front.
    """
    with distributed.session(config.device) as device:
        return _run(config, Path(out_dir), device=device, resume=resume, quiet=quiet, registries=registries,
                    unsafe_load=unsafe_load, on_epoch_end=on_epoch_end)


def _run(config: TrainConfig, out: Path, *, device: str, resume: bool, quiet: bool, registries: Registries | None,
         unsafe_load: bool, on_epoch_end: EpochHook | None) -> RunResult:
    """The run inside the process group: one process, or this rank's share under torchrun."""
    procs = _processes(config.batch_size)
    quiet = quiet or not procs.main
    if procs.main:  # before anything is built: a bad --out fails in one line, and nothing is half-written
        output_dir(out, owned=RUN_FILES)
    reg = registries if registries is not None else registry.default_registry()
    seed_everything(config.seed, deterministic=config.deterministic)

    # the parts by name, and the model wrapped for training (the plain module is what is saved and scored)
    parts = build_parts(config, reg)
    dataset = parts.dataset
    precision = Precision(device, config.precision, channels_last=config.channels_last)
    loss_fn = _build_loss(config, parts, precision)
    model, train_model, eval_model = _wrap_model(parts.model, config, precision, procs.world)
    scoring = _build_scoring(config, dataset, reg)

    # data, optimizer and learning-rate schedule
    train_split, val_split = dataset.split("train"), dataset.split("val")
    train_loader = partial(_train_loader, split=train_split, config=config, procs=procs,
                           pin_memory=precision.device.type == "cuda")
    total_steps = config.max_steps or config.epochs * len(train_loader(0))
    optimizer = build_optimizer(config.optimizer, model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    scheduler = build_scheduler(config.schedule, optimizer, total_steps=total_steps)
    predict = _predict_options(config)
    validate = partial(evaluate, eval_model, _eval_loader(val_split, config, procs), scoring.val_metrics,
                       precision=precision, loss_fn=loss_fn if predict["tile"] is None else None,
                       ids=list(val_split.ids), **predict)

    # resume from out/last, or start afresh
    checkpoints = RunCheckpoints(out, parts.meta, model, optimizer, scheduler, precision)
    state = (checkpoints.resume(config, unsafe=unsafe_load) if resume else None) or FitState()
    _seed_this_rank(config, procs, state)
    if procs.main:
        atomic_write_text(out / "config.json", json.dumps(config.to_dict(), indent=2) + "\n")

    # the loop over epochs; after each one, rank 0 writes the checkpoints and log.jsonl
    end_epoch = partial(_end_epoch, checkpoints=checkpoints if procs.main else None, log_path=out / "log.jsonl",
                        hook=on_epoch_end)
    result = _new_result(config, precision, model)
    with model_contract_named(parts.meta), _failures_reported(result, state):
        state = fit(train_model, train_loader, loss_fn, optimizer, precision=precision, epochs=config.epochs,
                    max_steps=config.max_steps, scheduler=scheduler, grad_clip=config.grad_clip, validate=validate,
                    val_every=config.val_every, select_metric=config.select_metric,
                    higher_is_better=scoring.higher_is_better, state=state, on_epoch_end=end_epoch, quiet=quiet)
        result.status = state.status
    _record_training(result, state, precision, procs.world)
    result.checkpoints = distributed.broadcast_from_main(checkpoints.files())  # rank 0 wrote (and sees) them

    # the best weights on the test split (never used for selection)
    if result.status == "ok" and "best" in result.checkpoints:
        test = _score_test(result, model, eval_model, dataset.split("test"), scoring.test_metrics,
                           precision=precision, config=config, procs=procs, predict=predict)
        if procs.main:
            write_eval_outputs(test, out, prefix="test")
    if procs.main:
        atomic_write_text(out / "result.json", json.dumps(result.to_dict(), indent=2) + "\n")
    return result


# ------------------------------------------------------------------------------------------------------------
# Processes (torchrun) and the model wrapped for them


@dataclass(frozen=True)
class _Processes:
    """This process's place in the run (one process: world 1, main)."""

    world: int
    main: bool  # rank 0: the one that writes files
    per_process: int  # images of each global batch this process takes


def _processes(batch_size: int) -> _Processes:
    """The processes of this run; the global batch must split evenly over them."""
    world, main = distributed.world_size(), distributed.is_main()
    if batch_size % world:
        raise OptionError(f"batch_size={batch_size} is the global batch and must be divisible by the "
                          f"{world} processes; use a multiple of {world}")
    return _Processes(world=world, main=main, per_process=batch_size // world)


def _wrap_model(model: nn.Module, config: TrainConfig, precision: Precision,
                world: int) -> tuple[nn.Module, nn.Module, nn.Module]:
    """DDP setup: (the plain module, saved, loaded and scored; the module that trains; the one that validates)."""
    from torch.nn.parallel import DistributedDataParallel

    if config.sync_bn and world > 1:
        if precision.device.type != "cuda":
            raise OptionError(f"sync_bn needs CUDA (torch's SyncBatchNorm has no {precision.device.type} "
                              f"kernel); drop --sync-bn, or use a model without batch norm for exact equality")
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)  # same state_dict keys as BatchNorm
    model = precision.module(model)
    train_model: nn.Module = model
    if world > 1:  # averages gradients over the ranks during backward; rank 0's initial weights win
        # zoo.engine reduces gradients and broadcasts buffers itself, after the ranks agree on out-of-memory
        train_model = DistributedDataParallel(model, device_ids=[precision.device.index]
                                              if precision.device.type == "cuda" else None, broadcast_buffers=False)
    if config.compile:
        train_model = torch.compile(train_model)  # type: ignore[assignment]
    eval_model = model if world > 1 else train_model  # DDP's forward would sync buffers: score the module
    return model, train_model, eval_model


def _build_loss(config: TrainConfig, parts: Parts, precision: Precision) -> nn.Module:
    """The training loss, once :func:`_check_deterministic_kernels` has passed a training step of the model
    with it."""
    dataset = parts.dataset
    loss_fn = losses.build_loss(parts.loss_name, num_classes=int(dataset.num_classes),
                                ignore_index=_train_ignore_index(config, dataset))
    _check_deterministic_kernels(config, precision.module(parts.model), loss_fn, precision,
                                 in_channels=int(parts.meta["in_channels"]), num_classes=int(dataset.num_classes))
    return loss_fn


def _check_deterministic_kernels(config: TrainConfig, model: nn.Module, loss_fn: nn.Module, precision: Precision, *,
                                 in_channels: int, num_classes: int) -> None:
    """``--deterministic`` off the CPU: fail before training, naming the op, when a training step of this model
    and loss at the training size needs one without a deterministic kernel (``zoo.seeding``)."""
    if not config.deterministic or precision.device.type == "cpu":
        return  # every op zoo's models use has a deterministic CPU kernel (the kit checks plugins for it)
    patch = config.patch_size if config.patch_size is not None else config.image_size
    h, w = (patch, patch) if isinstance(patch, int) else (int(patch[0]), int(patch[1]))
    generator = torch.Generator().manual_seed(0)  # the global generators stay as the seed left them
    images = torch.randn(2, in_channels, h, w, generator=generator)
    masks = torch.randint(0, num_classes, (2, h, w), generator=generator)
    check_deterministic_step(model, precision.tensor(images), precision.tensor(masks), loss_fn,
                             autocast=precision.autocast, what=f"model {config.model!r} with its loss at {h}x{w}")


def _seed_this_rank(config: TrainConfig, procs: _Processes, state: FitState) -> None:
    """Under torchrun, give each rank past 0 its own RNG stream."""
    if procs.world > 1 and distributed.rank() > 0:
        # augmentation draws from the global RNG: give each rank its own stream (rank 0 keeps one process's)
        torch.manual_seed(config.seed + 1_000_033 * distributed.rank() + state.loop.step)


# ------------------------------------------------------------------------------------------------------------
# Data and scoring


@dataclass(frozen=True)
class _Scoring:
    """The metrics scored on test and on val, and the direction of the selection metric."""

    test_metrics: dict[str, Metric]
    val_metrics: dict[str, Metric]
    higher_is_better: bool


def _build_scoring(config: TrainConfig, dataset: SegmentationDataset, reg: Registries) -> _Scoring:
    """Test scores every asked metric; val only the one behind ``select_metric`` when it can tell which."""
    test_metrics = build_metrics(config.metrics, dataset, reg)
    source = select_metric_source(config.select_metric, reg, config.metrics)
    if source is None:
        val_metrics = test_metrics
    else:
        val_metrics = {source: test_metrics[source] if source in test_metrics
                       else build_metrics([source], dataset, reg)[source]}
    higher = reg.metrics.get(source).higher_is_better if source else True
    return _Scoring(test_metrics, val_metrics, higher)


def _train_ignore_index(config: TrainConfig, dataset: SegmentationDataset) -> int | None:
    """The label the training loss ignores: the dataset's, or the patch sampler's pad label when it pads."""
    from zoo.data.patches import pad_label_for

    if config.patch_size is None:
        return dataset.ignore_index
    return pad_label_for(dataset.ignore_index)  # padded pixels are never trained as background


def _patch_spec(config: TrainConfig, split: Any) -> Any:
    """The native-scale patches the recipe trains on (``zoo.data.patches.PatchSpec``), or ``None``."""
    from zoo.data.patches import PatchSpec, pad_label_for

    if config.patch_size is None:
        return None
    return PatchSpec(tuple(config.patch_size), config.sampling, config.foreground_share,  # type: ignore[arg-type]
                     config.foreground_classes, config.scale_jitter, config.input_scale,
                     pad_label_for(getattr(split, "ignore_index", None)))


def _train_loader(epoch: int, *, split: Any, config: TrainConfig, procs: _Processes, pin_memory: bool) -> Any:
    """The training batches of ``epoch`` (this rank's share of each global batch under torchrun)."""
    from zoo.data import make_loader

    # the order of each epoch depends only on (seed, epoch), so a resumed run sees the same batches
    seed = config.seed * 1_000_003 + epoch
    common = {"train": True, "image_size": config.image_size, "augment": config.augment, "seed": seed,
              "num_workers": config.num_workers, "pin_memory": pin_memory, "patch": _patch_spec(config, split)}
    if procs.world == 1:
        return make_loader(split, batch_size=config.batch_size, **common)
    sampler = distributed.GlobalBatchSampler(len(split), batch_size=config.batch_size, seed=seed,
                                             rank=distributed.rank(), world=procs.world)
    return make_loader(split, batch_size=procs.per_process, drop_last=False, sampler=sampler, **common)


def _predict_options(config: TrainConfig) -> dict[str, Any]:
    """How val and test are predicted (``zoo.scoring.evaluate``'s keywords): tiled at native size when the
    recipe says so, with its overlap and blend, and at the input scale (the training size when upsampled)."""
    tile = config.eval_tile if config.tiled and config.eval_image_size == "native" else None
    upsampled = (config.image_size, config.image_size) if config.eval_image_size == "upsampled" else None
    return {"tile": tile, "overlap": config.eval_overlap, "blend": config.eval_blend,
            "input_scale": upsampled or config.input_scale}


def _eval_loader(split: Any, config: TrainConfig, procs: _Processes) -> Any:
    """A val or test loader as the recipe scores (this rank's shard under torchrun)."""
    return eval_loader(split, config.eval_image_size, config.image_size, procs.per_process, config.num_workers)


def _score_test(result: RunResult, model: nn.Module, eval_model: nn.Module, split: Any,
                metrics: Mapping[str, Metric], *, precision: Precision, config: TrainConfig, procs: _Processes,
                predict: Mapping[str, Any]) -> EvalResult:
    """Load the best weights into ``model`` and score ``split`` into ``result``."""
    best = load_checkpoint(result.checkpoints["best"]).state_dict if procs.main else None
    model.load_state_dict(distributed.broadcast_from_main(best))  # no shared file system needed
    test = evaluate(eval_model, _eval_loader(split, config, procs), metrics, precision=precision,
                    ids=list(split.ids), **predict)
    result.test_pooled, result.test_mean, result.test_nan_count = test.pooled, test.mean, test.nan_count
    result.per_image = test.rows
    return test


# ------------------------------------------------------------------------------------------------------------
# After each epoch, and the result


def _end_epoch(state: FitState, record: dict[str, Any], *, checkpoints: RunCheckpoints | None, log_path: Path,
               hook: EpochHook | None) -> bool | None:
    """Rank 0 (given ``checkpoints``) saves ``last``/``best`` and rewrites the log; then the caller's hook."""
    if checkpoints is not None:
        if state.status != "diverged":
            checkpoints.save(state, best=bool(record.get("is_best")))
        _write_log(log_path, state.history)
    return hook(state, record) if hook is not None else None


def _write_log(path: Path, records: Sequence[Mapping[str, Any]]) -> None:
    """``log.jsonl``: one JSON object per epoch."""
    atomic_write_text(path, "".join(json.dumps(record, default=str) + "\n" for record in records))


def _new_result(config: TrainConfig, precision: Precision, model: nn.Module) -> RunResult:
    """The result before training: the recipe, the device and the model's size."""
    return RunResult(config=config, device=str(precision.device), device_name=device_name(precision.device),
                     precision=precision.describe() | {"compile": config.compile,
                                                       "deterministic": config.deterministic},
                     n_parameters=costs.count_parameters(model))


@contextmanager
def _failures_reported(result: RunResult, state: FitState) -> Iterator[None]:
    """CUDA OOM and unexpected errors during training go into ``result``; a ``ZooError`` (a bad option) is raised."""
    try:
        yield
    except torch.OutOfMemoryError as exc:
        result.status, result.error = "oom", f"out of memory after {state.loop.oom_backoffs} back-offs: {exc}"
        log.error("%s", result.error)
    except ZooError:
        raise
    except Exception as exc:  # reported in the result so a benchmark records the failure and goes on
        log.exception("training failed")
        result.status, result.error = "failed", f"{type(exc).__name__}: {exc}"


def _record_training(result: RunResult, state: FitState, precision: Precision, world: int) -> None:
    """Copy where training ended (epochs, steps, best, batch size, skipped steps) into ``result``."""
    if result.status == "diverged":
        result.error = (f"training diverged: {state.loop.nonfinite_streak} non-finite losses in a row "
                        f"at step {state.loop.step}")
    result.epochs_done, result.steps_done = state.epoch, state.loop.step
    result.train_seconds, result.history = state.train_seconds, state.history
    result.best_epoch, result.best_score = state.best_epoch, state.best_score
    result.batch_size_used = state.loop.micro_batch * world if state.loop.micro_batch else result.config.batch_size
    result.world_size, result.batch_size_per_process = world, result.batch_size_used // world
    result.nonfinite_losses, result.skipped_steps = state.loop.nonfinite_total, precision.skipped_steps

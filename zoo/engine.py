"""The training loop as plain functions: ``train_one_epoch`` and ``fit`` (``evaluate`` lives in ``zoo.scoring``).

Each optimizer step reads zero_grad -> autocast forward -> backward -> step (nanoGPT). Device, autocast and
grad scaling go through ``zoo.precision.Precision``; checkpoints, logs and datasets are the caller's business
(``zoo.training``), reached through the ``on_epoch_end`` callback of :func:`fit`.
"""

from __future__ import annotations

import functools
import logging
import math
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from zoo import distributed
from zoo.errors import OptionError, check_choice
from zoo.inference import checked_logits
from zoo.memory import agree_out_of_memory, free_memory, is_out_of_memory
from zoo.precision import Precision
from zoo.scoring import EvalResult, evaluate, predict_scaled  # re-exported: the loop's public names

__all__ = ["OPTIMIZERS", "SCHEDULES", "build_optimizer", "build_scheduler", "LoopState", "EpochStats",
           "EvalResult", "FitState", "train_one_epoch", "predict_scaled", "evaluate", "fit"]

log = logging.getLogger(__name__)
OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("constant", "cosine", "poly")


def build_optimizer(name: str, params: Iterable[nn.Parameter], *, lr: float,
                    weight_decay: float = 0.0) -> torch.optim.Optimizer:
    """``adam``, ``adamw`` or ``sgd`` (momentum 0.9, Nesterov)."""
    check_choice("optimizer", name, OPTIMIZERS)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    return torch.optim.SGD(params, lr=lr, momentum=0.9, nesterov=True, weight_decay=weight_decay)


def build_scheduler(name: str, optimizer: torch.optim.Optimizer, *, total_steps: int,
                    power: float = 0.9) -> torch.optim.lr_scheduler.LambdaLR:
    """A per-step learning-rate factor: ``constant``, ``cosine`` (to 0) or ``poly`` ((1 - t)^power, as DeepLab)."""
    check_choice("schedule", name, SCHEDULES)
    total = max(1, total_steps)
    factors: dict[str, Callable[[int], float]] = {
        "constant": lambda step: 1.0,
        "cosine": lambda step: 0.5 * (1 + math.cos(math.pi * min(step, total) / total)),
        "poly": lambda step: (1 - min(step, total) / total) ** power,
    }
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factors[name])


@dataclass
class LoopState:
    """Counters that live across epochs (and are saved with a checkpoint)."""

    step: int = 0  # optimizer steps taken
    nonfinite_streak: int = 0  # consecutive steps with a NaN/inf loss
    nonfinite_total: int = 0
    micro_batch: int | None = None  # set after a CUDA OOM: forward/backward this many images at a time
    oom_backoffs: int = 0


@dataclass(frozen=True)
class EpochStats:
    loss: float  # mean of the finite step losses (NaN if none)
    steps: int
    diverged: bool
    seconds: float
    data_seconds: float = 0.0  # of ``seconds``, the time spent waiting for the loader (augmentation, with 0 workers)


def _forward_backward(model: nn.Module, images: Tensor, masks: Tensor, loss_fn: nn.Module,
                      precision: Precision, micro: int) -> tuple[Tensor | None, str]:
    """Accumulate gradients over chunks of ``micro`` images; return the batch's loss (detached), or ``None`` and
    the error when any rank ran out of memory.

    Under DDP the gradients are reduced once every rank has finished all chunks (``distributed.no_grad_sync``,
    then ``distributed.all_reduce_gradients``), and the ranks agree after each chunk whether one ran out of memory
    (``zoo.memory.agree_out_of_memory``): with DDP's own reduction during backward, a rank that failed would
    leave the others waiting in a gradient all-reduce it never joins.
    """
    n = images.shape[0]
    total = torch.zeros((), device=images.device)
    for start in range(0, n, micro):
        x, y = images[start:start + micro], masks[start:start + micro]
        error = ""
        try:
            with distributed.no_grad_sync(model):
                with precision.autocast():
                    loss = loss_fn(checked_logits(model(x), x), y)
                if micro < n:  # weight chunks so the gradient equals the whole batch's
                    loss = loss * (x.shape[0] / n)
                precision.backward(loss)
            total += loss.detach().float()
        except (torch.OutOfMemoryError, RuntimeError) as exc:
            if not is_out_of_memory(exc):
                raise
            error = f"{type(exc).__name__}: {exc}"  # the message only: the traceback pins the step's tensors
        if agree_out_of_memory(bool(error), precision.device):  # every rank, every chunk: the same decision
            return None, error or "out of memory on another rank"
    distributed.all_reduce_gradients(model)
    return total, ""


def _next_batch(batches: Iterator[tuple[Tensor, Tensor]]) -> tuple[tuple[Tensor, Tensor] | None, float]:
    """The loader's next batch (``None`` when it is exhausted) and the seconds spent waiting for it."""
    waited = time.perf_counter()
    batch = next(batches, None)
    return batch, time.perf_counter() - waited


def _backward_with_backoff(model: nn.Module, images: Tensor, masks: Tensor, loss_fn: nn.Module,
                           optimizer: torch.optim.Optimizer, precision: Precision, state: LoopState,
                           max_oom_backoffs: int) -> Tensor:
    """Zero the gradients and accumulate the batch's; after an out-of-memory error, free memory and retry with
    half as many images per pass (recorded in ``state``). Returns the batch's loss (detached).

    Raises:
        torch.OutOfMemoryError: still out of memory after ``max_oom_backoffs`` back-offs, or at one image per pass.
    """
    while True:
        micro = state.micro_batch or images.shape[0]
        optimizer.zero_grad(set_to_none=True)
        loss, error = _forward_backward(model, images, masks, loss_fn, precision, micro)
        if loss is not None:
            return loss
        if state.oom_backoffs >= max_oom_backoffs or micro <= 1:
            raise torch.OutOfMemoryError(f"{error} (after {state.oom_backoffs} back-offs, {micro} images per "
                                         f"pass)")
        optimizer.zero_grad(set_to_none=True)
        free_memory()
        state.micro_batch = max(1, micro // 2)
        state.oom_backoffs += 1
        log.warning("out of memory with %d images per pass; retrying with %d", micro, state.micro_batch)


def _count_nonfinite(state: LoopState, max_nonfinite: int) -> bool:
    """Count a batch whose loss is NaN or inf (it takes no step); True when that makes ``max_nonfinite`` in a row."""
    state.nonfinite_streak += 1
    state.nonfinite_total += 1
    log.warning("non-finite loss at step %d (%d in a row)", state.step, state.nonfinite_streak)
    return state.nonfinite_streak >= max_nonfinite


def _optimizer_step(model: nn.Module, optimizer: torch.optim.Optimizer, precision: Precision,
                    scheduler: torch.optim.lr_scheduler.LRScheduler | None, grad_clip: float | None,
                    state: LoopState) -> None:
    """Step the optimizer (and the schedule) on the accumulated gradients and count the step into ``state``."""
    precision.step(optimizer, grad_clip=grad_clip)
    distributed.broadcast_buffers(model)  # rank 0's batch-norm statistics, as DDP's own forward would sync
    if scheduler is not None:
        scheduler.step()
    state.step += 1


def _show_progress(progress: Any, steps: int, loss: Tensor) -> None:
    """Advance the optional tqdm bar; show the loss every ten steps (a log point: ``.item()`` syncs)."""
    if progress is not None:
        progress.update(1)
        if steps % 10 == 1:  # log point
            progress.set_postfix(loss=f"{loss.item():.4f}")


def train_one_epoch(model: nn.Module, loader: Iterable[tuple[Tensor, Tensor]], loss_fn: nn.Module,
                    optimizer: torch.optim.Optimizer, *, precision: Precision,
                    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None, grad_clip: float | None = None,
                    state: LoopState | None = None, max_steps: int | None = None, max_nonfinite: int = 3,
                    max_oom_backoffs: int = 4, progress: Any = None) -> EpochStats:
    """One pass over ``loader``: a step per batch, until the loader or ``max_steps`` runs out.

    A batch whose loss is NaN or inf takes no step; ``max_nonfinite`` in a row end the epoch with
    ``diverged=True``. A CUDA out-of-memory error (``torch.OutOfMemoryError``, or a cuDNN/cuBLAS allocation
    failure) frees memory and retries the batch in halves (the gradient is the same, batch-norm statistics are per
    half), at most ``max_oom_backoffs`` times per run. Under ``torchrun`` the ranks decide together: when one runs
    out of memory, all of them back off (or all give up), so their collectives keep matching
    (:func:`_forward_backward`); with ``SyncBatchNorm``, whose forward is itself a collective, an out-of-memory
    error cannot be recovered and ends the run on every rank.

    Args:
        progress: an optional tqdm bar, updated per batch.

    Raises:
        torch.OutOfMemoryError: still out of memory after the allowed back-offs (on every rank).
    """
    state = state if state is not None else LoopState()
    model.train()
    started = time.perf_counter()
    loss_sum = torch.zeros((), device=precision.device)
    finite_steps = steps = 0
    diverged = False
    batches, data_seconds = iter(loader), 0.0
    while True:
        batch, waited = _next_batch(batches)
        data_seconds += waited
        if batch is None or (max_steps is not None and state.step >= max_steps):
            break
        images, masks = precision.tensor(batch[0]), precision.tensor(batch[1])
        loss = _backward_with_backoff(model, images, masks, loss_fn, optimizer, precision, state, max_oom_backoffs)
        # under DDP every rank must take the same branch below, so they all judge the global batch's loss
        loss = distributed.all_reduce_mean(loss)
        # sync point: a NaN must never be stepped into the weights, and divergence must stop the run
        if not bool(torch.isfinite(loss)):
            if _count_nonfinite(state, max_nonfinite):
                diverged = True
                break
            continue
        state.nonfinite_streak = 0
        _optimizer_step(model, optimizer, precision, scheduler, grad_clip, state)
        steps += 1
        finite_steps += 1
        loss_sum += loss
        _show_progress(progress, steps, loss)
    mean = (loss_sum / finite_steps).item() if finite_steps else float("nan")
    return EpochStats(loss=mean, steps=steps, diverged=diverged, seconds=time.perf_counter() - started,
                      data_seconds=data_seconds)


@dataclass
class FitState:
    """Where a run stands; everything :func:`fit` needs to continue it."""

    epoch: int = 0  # epochs completed
    loop: LoopState = field(default_factory=LoopState)
    best_score: float | None = None
    best_epoch: int | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    status: str = "running"  # then "ok", "diverged" or "interrupted"
    train_seconds: float = 0.0


def _better(score: float, best: float | None, higher_is_better: bool) -> bool:
    if best is None:
        return True  # the first validation always gives a best checkpoint
    if math.isnan(score):
        return False
    if math.isnan(best):
        return True
    return score > best if higher_is_better else score < best


def _bars_enabled(quiet: bool) -> bool:
    return not quiet and sys.stderr.isatty()


def fit(model: nn.Module, train_loader: Callable[[int], Iterable[tuple[Tensor, Tensor]]], loss_fn: nn.Module,
        optimizer: torch.optim.Optimizer, *, precision: Precision, epochs: int, max_steps: int | None = None,
        scheduler: torch.optim.lr_scheduler.LRScheduler | None = None, grad_clip: float | None = None,
        validate: Callable[[], EvalResult] | None = None, val_every: int = 1, select_metric: str = "dice",
        higher_is_better: bool = True, state: FitState | None = None, max_nonfinite: int = 3,
        on_epoch_end: Callable[[FitState, dict[str, Any]], bool | None] | None = None,
        quiet: bool = False) -> FitState:
    """Train until the budget is spent, validating every ``val_every`` epochs and after the last one.

    Args:
        train_loader: ``epoch -> loader``, so each epoch's order is a function of the epoch (exact resumes).
        epochs: the budget in epochs, unless ``max_steps`` is given (then that is the budget).
        validate: returns the validation metrics; the model is best when its pooled ``select_metric`` improves.
        state: continue from here (``resume``); default a fresh start.
        on_epoch_end: called with the state and the epoch's record (``record["is_best"]`` marks a new best);
            returning True stops the run with status ``"interrupted"``.

    Returns:
        The final state; ``status`` is ``"ok"``, ``"diverged"`` or ``"interrupted"``.
    """
    state = state if state is not None else FitState()
    bars = _bars_enabled(quiet)
    spent = functools.partial(_budget_spent, state, epochs, max_steps)
    by_step = bool(max_steps)  # one progress bar over steps, else one over epochs plus one per epoch
    epoch_bar = _run_bar(state, epochs, max_steps, by_step=by_step, disable=not bars)
    state.status = "running"
    try:
        while not spent():
            loader = train_loader(state.epoch)
            batch_bar = _epoch_bar(loader, state.epoch, disable=not bars or by_step)
            stats = train_one_epoch(model, loader, loss_fn, optimizer, precision=precision, scheduler=scheduler,
                                    grad_clip=grad_clip, state=state.loop, max_steps=max_steps,
                                    max_nonfinite=max_nonfinite, progress=epoch_bar if by_step else batch_bar)
            batch_bar.close()
            record = _end_of_epoch(state, stats, optimizer, precision)
            postfix = {"loss": f"{stats.loss:.4f}"}
            if stats.diverged:
                state.status = "diverged"
            elif validate is not None and (state.epoch % val_every == 0 or spent()):
                score = _validate_epoch(validate, state, record, select_metric, higher_is_better)
                postfix[select_metric] = f"{score:.4f}"
            epoch_bar.set_postfix(postfix)
            if not by_step:
                epoch_bar.update(1)
            state.history.append(record)
            log.debug("epoch %d: %s", state.epoch, record)
            stop = on_epoch_end(state, record) if on_epoch_end is not None else False
            if _ended_early(state, stop, spent):
                return state
    finally:
        epoch_bar.close()
    state.status = "ok"
    return state


def _budget_spent(state: FitState, epochs: int, max_steps: int | None) -> bool:
    return state.loop.step >= max_steps if max_steps is not None else state.epoch >= epochs


def _run_bar(state: FitState, epochs: int, max_steps: int | None, *, by_step: bool, disable: bool) -> Any:
    """The run's progress bar: over steps when the budget is ``max_steps``, else over epochs."""
    from tqdm.auto import tqdm

    return tqdm(total=max_steps if max_steps is not None else epochs, initial=state.loop.step if by_step else state.epoch,
                desc="train", unit="step" if by_step else "epoch", disable=disable, dynamic_ncols=True)


def _epoch_bar(loader: Iterable[tuple[Tensor, Tensor]], epoch: int, *, disable: bool) -> Any:
    """One epoch's progress bar over its batches (sized when the loader has a length)."""
    from tqdm.auto import tqdm

    return tqdm(total=len(loader) if hasattr(loader, "__len__") else None,  # type: ignore[arg-type]
                desc=f"epoch {epoch + 1}", leave=False, disable=disable, dynamic_ncols=True)


def _ended_early(state: FitState, stop: bool | None, spent: Callable[[], bool]) -> bool:
    """Whether the run ends before its budget: it diverged, or ``on_epoch_end`` asked to stop (``"interrupted"``)."""
    if state.status == "diverged":
        log.error("training diverged: %d non-finite losses in a row at step %d",
                  state.loop.nonfinite_streak, state.loop.step)
        return True
    if stop and not spent():
        state.status = "interrupted"
        return True
    return False


def _end_of_epoch(state: FitState, stats: EpochStats, optimizer: torch.optim.Optimizer,
                  precision: Precision) -> dict[str, Any]:
    """Count the epoch into ``state`` and return its log record."""
    state.epoch += 1
    state.train_seconds += stats.seconds
    return {"epoch": state.epoch, "step": state.loop.step, "train_loss": stats.loss,
            "lr": optimizer.param_groups[0]["lr"], "seconds": stats.seconds, "data_seconds": stats.data_seconds,
            "nonfinite_losses": state.loop.nonfinite_total, "skipped_steps": precision.skipped_steps,
            "micro_batch": state.loop.micro_batch}


def _validate_epoch(validate: Callable[[], EvalResult], state: FitState, record: dict[str, Any],
                    select_metric: str, higher_is_better: bool) -> float:
    """Validate, add the scores to the epoch's record, and keep the best epoch; returns the selection score."""
    started = time.perf_counter()
    result = validate()
    record["val_seconds"] = time.perf_counter() - started
    if result.loss is not None:
        record["val_loss"] = result.loss
    record.update({f"val/{k}": v for k, v in result.pooled.items()})
    if select_metric not in result.pooled:
        raise OptionError(f"select_metric {select_metric!r} is not among the validation columns: "
                          f"{', '.join(sorted(result.pooled)) or 'none'}")
    score = result.pooled[select_metric]
    if _better(score, state.best_score, higher_is_better):
        state.best_score, state.best_epoch = score, state.epoch
        record["is_best"] = True
    return score

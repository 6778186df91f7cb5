"""Scoring a model on a split: whole images or sliding windows, at a scale, gathered across ranks.

:func:`evaluate` is what validation and test scoring run (``zoo.engine.fit`` calls it through the caller's
``validate``); :func:`predict_scaled` is the one prediction path that evaluation, ``zoo predict``, bench samples and
exported pipelines share.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from zoo import distributed
from zoo.inference import Blend, logits_to_classes, predict_logits, sliding_window_logits
from zoo.interfaces import Metric
from zoo.memory import free_memory, is_out_of_memory
from zoo.precision import Precision

__all__ = ["EvalResult", "predict_scaled", "evaluate"]

log = logging.getLogger(__name__)


@dataclass
class EvalResult:
    """Metrics of one split.

    ``pooled``: each metric over all pixels of the split; ``mean``: the mean of the per-image values with NaN
    (undefined, e.g. empty ground truth and prediction) images left out, counted in ``nan_count``; ``rows``:
    ``(image_id, column, value)`` for every image and column.
    """

    pooled: dict[str, float] = field(default_factory=dict)
    mean: dict[str, float] = field(default_factory=dict)
    nan_count: dict[str, int] = field(default_factory=dict)
    rows: list[tuple[str, str, float]] = field(default_factory=list)
    n_images: int = 0
    loss: float | None = None
    columns_by_metric: dict[str, list[str]] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)  # what was scored (set by zoo.training.evaluate_checkpoint)


def _score(metrics: Mapping[str, Metric], pred: Tensor, masks: Tensor, per_image: dict[str, list[Tensor]],
           columns_by_metric: dict[str, list[str]]) -> None:
    for name, metric in metrics.items():
        values = metric.update(pred, masks)
        columns_by_metric.setdefault(name, list(values))
        for column, tensor in values.items():
            per_image.setdefault(column, []).append(tensor.detach().float().cpu())


def predict_scaled(model: nn.Module, images: Tensor, *, tile: int | tuple[int, int] | None = None,
                   overlap: float = 0.5, blend: Blend = "tent", input_scale: float | tuple[int, int] = 1.0,
                   batch_size: int = 8) -> Tensor:
    """Logits at the images' own size: the images rescaled by ``input_scale`` (bilinear; a factor, or an
    ``(h, w)`` size every image is resized to, as the resize recipe trains), predicted whole or by sliding
    ``tile`` windows, and the logits resized back (bilinear), so scores stay at native resolution."""
    h, w = images.shape[-2:]
    x = images
    if isinstance(input_scale, tuple) or input_scale != 1.0:
        size = (tuple(input_scale) if isinstance(input_scale, tuple) else
                (max(1, round(h * input_scale)), max(1, round(w * input_scale))))
        x = F.interpolate(images.float(), size=size, mode="bilinear", align_corners=False,
                          antialias=size[0] * size[1] < h * w).to(images.dtype)
    if tile is None:
        logits = predict_logits(model, x)
    else:
        logits = sliding_window_logits(model, x, tile=tile, overlap=overlap, blend=blend, batch_size=batch_size)
    if logits.shape[-2:] != (h, w):
        logits = F.interpolate(logits, size=(h, w), mode="bilinear", align_corners=False)
    return logits


def _predict_backing_off(predict: Callable[[Tensor], Tensor], images: Tensor, chunk: list[int]) -> Tensor:
    """``predict(images)``, in chunks of ``chunk[0]`` images once one ran out of memory (halved each time, down
    to one image). No collective runs inside a prediction, so under ``torchrun`` each rank may back off alone."""
    while True:
        size = chunk[0] if chunk else images.shape[0]
        try:
            return torch.cat([predict(images[i:i + size]) for i in range(0, images.shape[0], size)])
        except (torch.OutOfMemoryError, RuntimeError) as exc:
            if not is_out_of_memory(exc) or size <= 1:
                raise
        free_memory()
        chunk[:] = [max(1, size // 2)]
        log.warning("out of memory predicting %d images per pass; retrying with %d", size, chunk[0])


@dataclass
class _Tally:
    """What scoring a split accumulates batch by batch."""

    per_image: dict[str, list[Tensor]] = field(default_factory=dict)
    columns_by_metric: dict[str, list[str]] = field(default_factory=dict)
    order: list[int] = field(default_factory=list)  # split index of each scored image (distributed only)
    seen: set[int] = field(default_factory=set)
    chunk: list[int] = field(default_factory=list)  # images per pass after an out-of-memory failure (whole split)
    loss_sum: float = 0.0
    weight: int = 0
    n: int = 0


def _predict_batch(predict: Callable[[Tensor], Tensor], images: Tensor, masks: Tensor, real: list[bool],
                   chunk: list[int], *, precision: Precision,
                   loss_fn: nn.Module | None) -> tuple[Tensor, tuple[float, int] | None]:
    """One batch's logits and, with ``loss_fn``, its ``(loss, weight)`` over the real (non-padding) images."""
    with precision.autocast():
        logits = _predict_backing_off(predict, images, chunk)
        batch_loss = None
        if loss_fn is not None and any(real):  # padding repeats are not counted
            rows = real if not all(real) else slice(None)
            batch_loss = (float(loss_fn(logits[rows], masks[rows])), sum(real))  # log point
    return logits, batch_loss


def _score_gathered(tally: _Tally, parts: list[Any], metrics: Mapping[str, Metric]) -> None:
    """On rank 0, score the masks every rank gathered, dropping padding and indices already scored."""
    for part_indices, part_real, part_pred, part_masks, part_loss in parts:
        keep = [j for j, (i, r) in enumerate(zip(part_indices, part_real)) if r and i not in tally.seen]
        if part_loss is not None:
            tally.loss_sum, tally.weight = tally.loss_sum + part_loss[0] * part_loss[1], tally.weight + part_loss[1]
        if not keep:
            continue
        tally.seen.update(part_indices[j] for j in keep)
        tally.order += [part_indices[j] for j in keep]
        _score(metrics, part_pred[keep].long(), part_masks[keep].long(), tally.per_image, tally.columns_by_metric)


def _score_loader(predict: Callable[[Tensor], Tensor], loader: Iterable[tuple[Tensor, Tensor]],
                  metrics: Mapping[str, Metric], *, precision: Precision, loss_fn: nn.Module | None,
                  shard: Any) -> _Tally:
    """Predict and score every batch of ``loader`` (gathered to rank 0 when ``shard`` is set)."""
    tally = _Tally()
    for images, masks in loader:
        images, masks = precision.tensor(images), precision.tensor(masks)
        size, n = images.shape[0], tally.n
        indices, real = (shard[0][n:n + size], shard[1][n:n + size]) if shard is not None else ([], [True] * size)
        tally.n += size
        logits, batch_loss = _predict_batch(predict, images, masks, real, tally.chunk, precision=precision,
                                            loss_fn=loss_fn)
        pred = logits_to_classes(logits)
        if shard is None:
            _score(metrics, pred, masks, tally.per_image, tally.columns_by_metric)
            if batch_loss is not None:
                tally.loss_sum, tally.weight = (tally.loss_sum + batch_loss[0] * batch_loss[1],
                                                tally.weight + batch_loss[1])
            continue
        parts = distributed.gather_to_main((indices, real, distributed.compact_mask(pred),
                                            distributed.compact_mask(masks), batch_loss))
        _score_gathered(tally, parts or [], metrics)
    return tally


def _summarize(result: EvalResult, metrics: Mapping[str, Metric], per_image: dict[str, list[Tensor]],
               index: list[int], ids: list[str]) -> None:
    """Fill ``result``'s pooled values and, in split order, its per-image rows, means and NaN counts."""
    for name, metric in metrics.items():
        result.pooled.update({k: float(v) for k, v in metric.compute().items()})
    rank_of = sorted(range(len(index)), key=index.__getitem__)  # split order
    names = [ids[index[j]] if index[j] < len(ids) else str(index[j]) for j in rank_of]
    for column, chunks in per_image.items():
        values = torch.cat(chunks)[rank_of]
        finite = ~torch.isnan(values)
        result.nan_count[column] = int((~finite).sum())
        result.mean[column] = float(values[finite].mean()) if finite.any() else float("nan")
        result.rows += [(names[i], column, float(v)) for i, v in enumerate(values.tolist())]


@torch.inference_mode()
def evaluate(model: nn.Module, loader: Iterable[tuple[Tensor, Tensor]], metrics: Mapping[str, Metric], *,
             precision: Precision, loss_fn: nn.Module | None = None, ids: list[str] | None = None,
             tile: int | tuple[int, int] | None = None, overlap: float = 0.5, blend: Blend = "tent",
             input_scale: float | tuple[int, int] = 1.0) -> EvalResult:
    """Score ``model`` on every batch of ``loader`` (kept in order, so image ``i`` is ``ids[i]``).

    A batch that runs out of device memory is predicted again in halves (down to one image per pass), and the
    smaller size is kept for the rest of the split; batch-norm in eval mode makes that exact.

    Under ``torchrun``, a loader whose sampler is a ``DistributedSampler`` (``zoo.distributed.eval_sampler``) is
    scored as the whole split: each rank predicts its shard, the predicted and true masks are gathered to rank 0
    batch by batch, the sampler's padding duplicates are dropped by index, rank 0 updates the metrics (so pooled
    counts and per-image rows are exactly those of one process, rows in split order), and every rank receives
    the result.

    The loss is the mean of the batch losses weighted by batch size (the mean over images for a loss that
    averages over pixels), so it does not depend on how the split was batched or sharded.

    Args:
        metrics: name -> metric; each is reset first.
        loss_fn: also report the mean loss (only without tiling).
        ids: image ids; default ``loader.dataset.ids`` or the index.
        tile: predict by sliding windows of this side or ``(H, W)`` (see ``zoo.inference``); else whole padded
            images.
        overlap, blend: of the sliding windows (``zoo.inference.sliding_window_logits``).
        input_scale: predict on images rescaled by this factor (or resized to this ``(h, w)``); logits are
            resized back and scored at the loader's (native) resolution (:func:`predict_scaled`).
    """
    model.eval()
    ids = ids if ids is not None else list(getattr(getattr(loader, "dataset", None), "ids", []) or [])
    for metric in metrics.values():
        metric.reset()
    shard = distributed.shard_of(loader)
    predict = functools.partial(predict_scaled, model, tile=tile, overlap=overlap, blend=blend,
                                input_scale=input_scale)
    tally = _score_loader(predict, loader, metrics, precision=precision,
                          loss_fn=loss_fn if tile is None else None, shard=shard)
    result = EvalResult(n_images=len(tally.order) if shard is not None else tally.n,
                        loss=tally.loss_sum / tally.weight if tally.weight else None,
                        columns_by_metric=tally.columns_by_metric)
    if shard is not None and not distributed.is_main():
        return distributed.broadcast_from_main(result)
    _summarize(result, metrics, tally.per_image, tally.order if shard is not None else list(range(tally.n)), ids)
    return distributed.broadcast_from_main(result) if shard is not None else result

"""From logits to class-index masks, whole-image (padded) or by sliding window with blended overlapping tiles.

Binary models may have one output channel: class 1 where the logit is above 0, else class 0. Models with
``K >= 2`` channels predict the argmax.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["logits_to_classes", "predict_logits", "sliding_window_logits", "predict_classes"]


def logits_to_classes(logits: Tensor) -> Tensor:
    """``(N, K, H, W)`` logits -> int64 ``(N, H, W)`` class indices (``K == 1``: logit > 0 means class 1)."""
    if logits.shape[1] == 1:
        return (logits[:, 0] > 0).long()
    return logits.argmax(dim=1)


def _pad_to_multiple(x: Tensor, multiple: int) -> tuple[Tensor, tuple[int, int]]:
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        # reflect keeps image statistics at the border; it needs the pad smaller than the side
        mode = "reflect" if ph < h and pw < w else "replicate"
        x = F.pad(x, (0, pw, 0, ph), mode=mode)
    return x, (h, w)


def predict_logits(model: nn.Module, images: Tensor, *, pad_multiple: int = 32) -> Tensor:
    """Run ``model`` on whole images, padding H and W up to a multiple of ``pad_multiple`` and cropping back.

    Many encoder-decoder nets need sides divisible by ``2**depth``; 32 covers depth 5.
    """
    x, (h, w) = _pad_to_multiple(images, pad_multiple)
    return model(x)[..., :h, :w].float()


def _blend_window(size: int, device: torch.device) -> Tensor:
    """A 2-D weight that falls towards tile edges, so overlapping tiles blend without seams."""
    ramp = torch.minimum(torch.arange(size, device=device) + 1.0, torch.arange(size, 0, -1, device=device) + 0.0)
    ramp = ramp / ramp.max()
    return (ramp[:, None] * ramp[None, :]).clamp_min(1e-3)


def _starts(length: int, tile: int, stride: int) -> list[int]:
    if length <= tile:
        return [0]
    starts = list(range(0, length - tile, stride))
    return starts + [length - tile]


def sliding_window_logits(model: Callable[[Tensor], Tensor], images: Tensor, *, tile: int, overlap: float = 0.5,
                          batch_size: int = 8, pad_multiple: int = 32) -> Tensor:
    """Logits of images of any size from overlapping ``tile x tile`` windows, blended by a tent-shaped weight.

    Args:
        model: maps ``(B, C, tile, tile)`` to ``(B, K, tile, tile)`` logits.
        images: ``(N, C, H, W)``; sides smaller than ``tile`` are padded.
        tile: window side (usually the training image size).
        overlap: fraction of a tile shared with its neighbour, in ``[0, 1)``.
        batch_size: windows per forward pass.
        pad_multiple: passed to :func:`predict_logits` for each window.

    Returns:
        float32 logits ``(N, K, H, W)``.
    """
    if not 0 <= overlap < 1:
        raise ValueError(f"overlap={overlap!r} is not in [0, 1)")
    n, _, h, w = images.shape
    ph, pw = max(tile - h, 0), max(tile - w, 0)
    x = F.pad(images, (0, pw, 0, ph), mode="replicate") if ph or pw else images
    hh, ww = x.shape[-2:]
    stride = max(1, int(math.floor(tile * (1 - overlap))))
    boxes = [(top, left) for top in _starts(hh, tile, stride) for left in _starts(ww, tile, stride)]
    weight = _blend_window(tile, x.device)
    out: Tensor | None = None
    norm = torch.zeros(1, 1, hh, ww, device=x.device)
    for i in range(n):
        for j in range(0, len(boxes), batch_size):
            chunk = boxes[j:j + batch_size]
            windows = torch.stack([x[i, :, t:t + tile, l:l + tile] for t, l in chunk])
            logits = predict_logits(model, windows, pad_multiple=pad_multiple)  # type: ignore[arg-type]
            if out is None:
                out = torch.zeros(n, logits.shape[1], hh, ww, device=x.device)
            for (t, l), tile_logits in zip(chunk, logits):
                out[i, :, t:t + tile, l:l + tile] += tile_logits * weight
                if i == 0:
                    norm[0, 0, t:t + tile, l:l + tile] += weight
    assert out is not None
    return (out / norm)[..., :h, :w]


@torch.inference_mode()
def predict_classes(model: nn.Module, images: Tensor, *, tile: int | None = None, overlap: float = 0.5,
                    batch_size: int = 8, autocast: Callable[[], object] | None = None) -> Tensor:
    """Class-index masks ``(N, H, W)`` for ``(N, C, H, W)`` normalised images; tiled when ``tile`` is given."""
    model.eval()
    ctx = autocast() if autocast is not None else torch.autocast("cpu", enabled=False)
    with ctx:  # type: ignore[attr-defined]
        if tile is None:
            logits = predict_logits(model, images)
        else:
            logits = sliding_window_logits(model, images, tile=tile, overlap=overlap, batch_size=batch_size)
    return logits_to_classes(logits)

"""From logits to class-index masks, whole-image (padded) or by sliding window with blended overlapping tiles.

Binary models may have one output channel: class 1 where the logit is above 0, else class 0. Models with
``K >= 2`` channels predict the argmax.

Sliding windows (:func:`sliding_window_logits`) blend overlapping tiles by a weight per pixel of the tile:

- ``tent`` (the default, zoo's original): a product of linear ramps falling towards the tile edges; sides
  smaller than the tile are padded at the end by replicating the border.
- ``constant`` and ``gaussian``: MONAI's ``sliding_window_inference`` modes, with its window grid, weights
  (a gaussian of ``sigma = sigma_scale x tile side``, clamped below at its minimum or 1e-3) and padding (a side
  smaller than the tile is padded with zeros on both sides, half before); for a fixed model the output matches
  MONAI's within float rounding. One difference, on purpose: an image that fits in one window is run whole
  (padded only to ``pad_multiple``), so the result equals whole-image inference, where MONAI would pad it to
  the window with zeros.

Windows of all images are batched together, ``batch_size`` per forward pass, and accumulated in place.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from zoo.errors import ModelContractError
from zoo.interfaces import model_output_problem

__all__ = ["BLENDS", "Blend", "checked_logits", "logits_to_classes", "predict_classes", "predict_logits",
           "sliding_window_logits", "window_weight"]

Blend = Literal["tent", "constant", "gaussian"]
BLENDS: tuple[Blend, ...] = ("tent", "constant", "gaussian")


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


def checked_logits(out: object, images: Tensor, *, channels: int | None = None) -> Tensor:
    """``out``, a model's forward on ``images``, if it keeps the model contract, else ``ModelContractError``.

    Cheap (a type and shape comparison), so the engine checks every forward it consumes: a model that returns a
    dict or the wrong shape fails in contract words at its first forward, not deep inside a loss or a metric.

    Raises:
        ModelContractError: what the model returned and what is expected (``zoo.interfaces.model_output_problem``).
    """
    problem = model_output_problem(out, batch=images.shape[0], size=(images.shape[-2], images.shape[-1]),
                                   channels=channels)
    if problem is not None:
        raise ModelContractError(problem)
    return out  # type: ignore[return-value]


def predict_logits(model: nn.Module, images: Tensor, *, pad_multiple: int = 32) -> Tensor:
    """Run ``model`` on whole images, padding H and W up to a multiple of ``pad_multiple`` and cropping back.

    Many encoder-decoder nets need sides divisible by ``2**depth``; 32 covers depth 5.

    Raises:
        ModelContractError: the model's output is not logits ``(N, K, H, W)`` (see :func:`checked_logits`).
    """
    x, (h, w) = _pad_to_multiple(images, pad_multiple)
    return checked_logits(model(x), x)[..., :h, :w].float()


def _tent(size: int, device: torch.device) -> Tensor:
    ramp = torch.minimum(torch.arange(size, device=device) + 1.0, torch.arange(size, 0, -1, device=device) + 0.0)
    return ramp / ramp.max()


def _gaussian(size: int, sigma_scale: float, device: torch.device) -> Tensor:
    # MONAI's compute_importance_map: centred on (size - 1) / 2, sigma = sigma_scale * size, not normalised
    x = torch.arange(-(size - 1) / 2.0, (size - 1) / 2.0 + 1, dtype=torch.float, device=device)
    return torch.exp(x ** 2 / (-2 * (sigma_scale * size) ** 2))


def window_weight(tile: tuple[int, int], blend: Blend = "gaussian", *, sigma_scale: float = 0.125,
                  device: torch.device | str = "cpu") -> Tensor:
    """The float32 ``(tile_h, tile_w)`` weight each window's logits are multiplied by before blending.

    Args:
        tile: the window's height and width.
        blend: ``tent``, ``constant`` or ``gaussian`` (see the module docstring).
        sigma_scale: the gaussian's standard deviation as a fraction of the tile side.
        device: where to build it.
    """
    if blend not in BLENDS:
        raise ValueError(f"blend={blend!r} is not one of {BLENDS}")
    device = torch.device(device)
    th, tw = tile
    if blend == "constant":
        return torch.ones(th, tw, device=device)
    if blend == "tent":
        return (_tent(th, device)[:, None] * _tent(tw, device)[None, :]).clamp_min(1e-3)
    weight = _gaussian(th, sigma_scale, device)[:, None] * _gaussian(tw, sigma_scale, device)[None, :]
    return weight.clamp_min(max(float(weight.min()), 1e-3))


def _starts(length: int, tile: int, stride: int) -> list[int]:
    if length <= tile:
        return [0]
    starts = list(range(0, length - tile, stride))
    return starts + [length - tile]


def _pad_for_windows(images: Tensor, tile: tuple[int, int], blend: Blend) -> tuple[Tensor, tuple[int, int]]:
    """Pad sides smaller than the tile; return the padded images and the (top, left) offset of the original."""
    h, w = images.shape[-2:]
    ph, pw = max(tile[0] - h, 0), max(tile[1] - w, 0)
    if not (ph or pw):
        return images, (0, 0)
    if blend == "tent":
        return F.pad(images, (0, pw, 0, ph), mode="replicate"), (0, 0)
    return F.pad(images, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2)), (ph // 2, pw // 2)


def _blend_windows(model: Callable[[Tensor], Tensor], x: Tensor, boxes: list[tuple[int, int]], weight: Tensor,
                   batch_size: int, pad_multiple: int) -> Tensor:
    """Blend the logits of every ``box`` window of every image of ``x`` into float32 ``(N, K, H, W)``."""
    n, (hh, ww), (th, tw) = x.shape[0], x.shape[-2:], weight.shape
    jobs = [(i, top, left) for i in range(n) for top, left in boxes]
    out: Tensor | None = None
    for j in range(0, len(jobs), batch_size):
        chunk = jobs[j:j + batch_size]
        windows = torch.stack([x[i, :, t:t + th, l:l + tw] for i, t, l in chunk])
        logits = predict_logits(model, windows, pad_multiple=pad_multiple)  # type: ignore[arg-type]
        if out is None:
            out = torch.zeros(n, logits.shape[1], hh, ww, device=x.device)
        for (i, t, l), tile_logits in zip(chunk, logits):
            out[i, :, t:t + th, l:l + tw].addcmul_(tile_logits, weight)
    norm = torch.zeros(hh, ww, device=x.device)
    for t, l in boxes:
        norm[t:t + th, l:l + tw] += weight
    assert out is not None
    return out.div_(norm)


def sliding_window_logits(model: Callable[[Tensor], Tensor], images: Tensor, *, tile: int | tuple[int, int],
                          overlap: float = 0.5, batch_size: int = 8, pad_multiple: int = 32, blend: Blend = "tent",
                          sigma_scale: float = 0.125) -> Tensor:
    """Logits of images of any size from overlapping windows, blended by a per-pixel weight.

    Args:
        model: maps ``(B, C, th, tw)`` to ``(B, K, th, tw)`` logits.
        images: ``(N, C, H, W)``; sides smaller than the tile are padded (see the module docstring).
        tile: window side, or ``(height, width)`` (usually the training patch size).
        overlap: fraction of a tile shared with its neighbour, in ``[0, 1)``; windows start every
            ``int(tile * (1 - overlap))`` pixels and the last one ends at the image's edge (MONAI's grid).
        batch_size: windows per forward pass (windows of different images share a batch).
        pad_multiple: passed to :func:`predict_logits` for each window (and for an image run whole).
        blend: ``tent`` (default), ``constant`` or ``gaussian`` (MONAI's modes).
        sigma_scale: the gaussian's standard deviation as a fraction of the tile side.

    Returns:
        float32 logits ``(N, K, H, W)``.

    Raises:
        ValueError: ``overlap`` outside ``[0, 1)``, an unknown ``blend`` or a tile side below 1.
    """
    th, tw = (tile, tile) if isinstance(tile, int) else tile
    if not 0 <= overlap < 1:
        raise ValueError(f"overlap={overlap!r} is not in [0, 1)")
    if blend not in BLENDS:
        raise ValueError(f"blend={blend!r} is not one of {BLENDS}")
    if th < 1 or tw < 1:
        raise ValueError(f"tile={tile!r} must have positive sides")
    h, w = images.shape[-2:]
    if blend != "tent" and h <= th and w <= tw:
        return predict_logits(model, images, pad_multiple=pad_multiple)  # type: ignore[arg-type]
    x, (top, left) = _pad_for_windows(images, (th, tw), blend)
    hh, ww = x.shape[-2:]
    stride_h = th if hh == th else max(1, int(th * (1 - overlap)))
    stride_w = tw if ww == tw else max(1, int(tw * (1 - overlap)))
    boxes = [(t, l) for t in _starts(hh, th, stride_h) for l in _starts(ww, tw, stride_w)]
    weight = window_weight((th, tw), blend, sigma_scale=sigma_scale, device=x.device)
    out = _blend_windows(model, x, boxes, weight, batch_size, pad_multiple)
    return out[..., top:top + h, left:left + w]


@torch.inference_mode()
def predict_classes(model: nn.Module, images: Tensor, *, tile: int | tuple[int, int] | None = None,
                    overlap: float = 0.5, batch_size: int = 8, autocast: Callable[[], object] | None = None,
                    blend: Blend = "tent", sigma_scale: float = 0.125) -> Tensor:
    """Class-index masks ``(N, H, W)`` for ``(N, C, H, W)`` normalised images; tiled when ``tile`` is given."""
    model.eval()
    ctx = autocast() if autocast is not None else torch.autocast("cpu", enabled=False)
    with ctx:  # type: ignore[attr-defined]
        if tile is None:
            logits = predict_logits(model, images)
        else:
            logits = sliding_window_logits(model, images, tile=tile, overlap=overlap, batch_size=batch_size,
                                           blend=blend, sigma_scale=sigma_scale)
    return logits_to_classes(logits)

"""Predicting image files with a checkpoint: a class-index mask PNG and a tinted overlay PNG per image."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from zoo import registry
from zoo.errors import check_choice
from zoo.inference import logits_to_classes, predict_logits
from zoo.precision import Precision
from zoo.training.parts import model_from_checkpoint, predict_settings

if TYPE_CHECKING:
    from zoo.registry import Registries

__all__ = ["PREDICT_MODES", "predict_files"]

log = logging.getLogger(__name__)

PREDICT_MODES = ("resize", "native", "tiled")
_PALETTE = ((0, 0, 0), (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48),
            (145, 30, 180), (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212), (0, 128, 128))


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
        device, precision: see ``zoo.precision``.
        compile: ``torch.compile`` the model first (CUDA graphs on a GPU; see
            ``zoo.precision.compile_for_inference``): worth it only for many images of one size.
        registries: the plugins to use (default: the installed ones).

    Returns:
        The mask paths, in the order of ``images``.
    """
    from zoo.data import adapt_channels, read_image

    check_choice("prediction mode", mode, PREDICT_MODES)
    reg = registries if registries is not None else registry.default_registry()
    model, meta = model_from_checkpoint(checkpoint, reg)
    prec = Precision(device, precision)
    model = prec.module(model).eval()
    if compile:
        from zoo.precision import compile_for_inference

        model = compile_for_inference(model, prec)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    paths = [Path(p) for p in images]
    for first in range(0, len(paths), batch_size):
        chunk = paths[first:first + batch_size]
        raws = [adapt_channels(read_image(p), int(meta["in_channels"]), p) for p in chunk]
        with prec.autocast():
            all_logits = _logits(model, raws, prec, mode=mode, meta=meta, batch_size=batch_size)
        for path, raw, logits in zip(chunk, raws, all_logits):
            written.append(_write_prediction(path, raw, logits, out))
    return written


def _logits(model: nn.Module, raws: Sequence[Tensor], prec: Precision, *, mode: str, meta: dict[str, Any],
            batch_size: int) -> list[Tensor]:
    """Each uint8 ``(C, H, W)`` image's logits ``(1, K, H, W)``, at the image's own size.

    A recipe trained on native-scale patches is scored at native resolution, so ``resize`` (as the recipe
    scores) runs its own whole-image or sliding-window scoring, with its input scale.
    """
    from zoo.data import normalize_image
    from zoo.engine import predict_scaled

    config = meta.get("config") or {}
    if mode == "resize" and config.get("patch_size"):
        mode = "tiled" if config.get("tiled") else "native"
    if mode == "resize":
        size = int(meta["image_size"])
        # one batch, resized like the eval loader; each image's logits go back to its own size
        small = torch.cat([F.interpolate(r[None].float().div(255), size=(size, size), mode="bilinear",
                                         antialias=True) for r in raws])
        logits_small = predict_logits(model, prec.tensor(normalize_image(small)))
        return [F.interpolate(lg[None], size=r.shape[-2:], mode="bilinear") for lg, r in zip(logits_small, raws)]
    settings = predict_settings(meta, tiled=mode == "tiled")
    return [predict_scaled(model, prec.tensor(normalize_image(r.float().div(255))[None]), batch_size=batch_size,
                           **settings) for r in raws]


def _write_prediction(path: Path, raw: Tensor, logits: Tensor, out: Path) -> Path:
    """Save ``<stem>_mask.png`` and ``<stem>_overlay.png`` for one image; return the mask's path."""
    from PIL import Image

    mask = logits_to_classes(logits.float())[0].cpu()
    mask_path, overlay_path = out / f"{path.stem}_mask.png", out / f"{path.stem}_overlay.png"
    Image.fromarray(mask.to(torch.uint8).numpy(), mode="L").save(mask_path)
    Image.fromarray(_overlay(raw, mask).numpy(), mode="RGB").save(overlay_path)
    log.info("%s -> %s", path, mask_path)
    return mask_path


def _overlay(image: Tensor, mask: Tensor, alpha: float = 0.5) -> Tensor:
    """uint8 RGB ``(H, W, 3)``: the image with classes 1.. tinted (class 0 left as is)."""
    rgb = image.expand(3, -1, -1) if image.shape[0] == 1 else image[:3]
    rgb = rgb.permute(1, 2, 0).float()
    colours = torch.tensor([_PALETTE[i % len(_PALETTE)] for i in range(int(mask.max()) + 1)], dtype=torch.float32)
    tint = colours[mask]
    blended = torch.where((mask > 0)[..., None], (1 - alpha) * rgb + alpha * tint, rgb)
    return blended.round().clamp(0, 255).to(torch.uint8)

"""Predicting image files with a checkpoint: a class-index mask PNG and a tinted overlay PNG per image."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from zoo import registry
from zoo.errors import OptionError, ZooError, check_choice
from zoo.fileio import atomic_write, output_dir
from zoo.inference import logits_to_classes, predict_logits
from zoo.precision import Precision
from zoo.training.parts import model_contract_named, model_from_checkpoint, predict_settings

if TYPE_CHECKING:
    from zoo.registry import Registries

__all__ = ["PREDICT_MODES", "PredictionResult", "predict_files"]

log = logging.getLogger(__name__)

PREDICT_MODES = ("resize", "native", "tiled")
_PALETTE = ((0, 0, 0), (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48),
            (145, 30, 180), (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212), (0, 128, 128))


@dataclass(frozen=True)
class PredictionResult:
    """What :func:`predict_files` did: the masks it wrote and the images it could not predict.

    Attributes:
        masks: the mask paths written, in the order of the images.
        failures: ``(image path, reason)`` for each image that was not predicted (unreadable, oversized, wrong
            channel count, or an output name taken by an earlier image); its outputs are not written.
    """

    masks: list[Path] = field(default_factory=list)
    failures: list[tuple[Path, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every image was predicted."""
        return not self.failures


@torch.inference_mode()
def predict_files(checkpoint: str | Path, images: Sequence[str | Path], out_dir: str | Path, *,
                  mode: str = "resize", batch_size: int = 8, device: str = "auto", precision: str = "auto",
                  compile: bool = False, registries: Registries | None = None) -> PredictionResult:
    """Write a class-index mask PNG and an overlay PNG for each image file, at the image's own size.

    One bad file does not stop the others: an image that cannot be read (missing, corrupt, over the pixel limit,
    a channel count the model cannot take) is recorded in the result's ``failures`` with the reason, and the
    rest are predicted. Each output file is written atomically, so none is ever half-written.

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
        The masks written, in the order of ``images``, and the images that failed.

    Raises:
        ZooError: a problem with the checkpoint or the options (before any image is read).
    """
    check_choice("prediction mode", mode, PREDICT_MODES)
    if batch_size < 1:
        raise OptionError(f"batch_size={batch_size} must be >= 1")
    reg = registries if registries is not None else registry.default_registry()
    model, meta, prec = _load_model(checkpoint, reg, device=device, precision=precision, compile=compile)
    out = output_dir(out_dir)
    result = PredictionResult()
    readable = _read_images(images, meta, result.failures)
    for first in range(0, len(readable), batch_size):
        chunk = readable[first:first + batch_size]
        raws = [raw for _, raw in chunk]
        with model_contract_named(meta), prec.autocast():
            all_logits = _logits(model, raws, prec, mode=mode, meta=meta, batch_size=batch_size)
        for (path, raw), logits in zip(chunk, all_logits):
            result.masks.append(_write_prediction(path, raw, logits, out))
    for path, reason in result.failures:
        log.debug("%s: not predicted: %s", path, reason)
    return result


def _load_model(checkpoint: str | Path, reg: Registries, *, device: str, precision: str,
                compile: bool) -> tuple[nn.Module, dict[str, Any], Precision]:
    """The checkpoint's model in eval mode on the device (compiled for inference if asked), its metadata and the
    precision it runs at."""
    model, meta = model_from_checkpoint(checkpoint, reg)
    prec = Precision(device, precision)
    model = prec.module(model).eval()
    if compile:
        from zoo.precision import compile_for_inference

        model = compile_for_inference(model, prec)
    return model, meta, prec


def _read_images(images: Sequence[str | Path], meta: dict[str, Any],
                 failures: list[tuple[Path, str]]) -> list[tuple[Path, Tensor]]:
    """Each readable image with its channels adapted to the model's; an unreadable one, or one whose outputs
    would overwrite an earlier image's, goes into ``failures`` with the reason."""
    from zoo.data import adapt_channels, read_image

    readable: list[tuple[Path, Tensor]] = []
    stems: dict[str, Path] = {}
    for path in (Path(p) for p in images):
        if path.stem in stems:
            why = f"its outputs ({path.stem}_mask.png) would overwrite those of {str(stems[path.stem])!r}"
            failures.append((path, why))
            continue
        try:
            readable.append((path, adapt_channels(read_image(path), int(meta["in_channels"]), path)))
        except ZooError as exc:
            failures.append((path, str(exc)))
            continue
        stems[path.stem] = path
    return readable


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
    mask_image = Image.fromarray(mask.to(torch.uint8).numpy(), mode="L")
    overlay = Image.fromarray(_overlay(raw, mask).numpy(), mode="RGB")
    atomic_write(mask_path, lambda tmp: mask_image.save(tmp, format="PNG"), fsync=False)
    atomic_write(overlay_path, lambda tmp: overlay.save(tmp, format="PNG"), fsync=False)
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

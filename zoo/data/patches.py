"""Native-scale training patches: whole images padded to the patch, or random crops, some centred on foreground.

A planned recipe (``zoo.planner``) trains on patches cut from the images at their own scale instead of images
shrunk to one small square. :class:`PatchSampler` is a joint image/mask transform (``zoo.data.JointTransform``)
that cuts one ``(H, W)`` patch per item:

- ``whole``: the image centred in the patch, padded where it is smaller and centre-cropped where it is larger.
- ``crop``: a random window; with probability ``foreground_share`` it is centred on a random pixel of a
  foreground class (nnU-Net's foreground oversampling), else placed uniformly. A window larger than the image
  is placed at a random offset, so the padding moves around.

Pixels are copied, never resampled, unless a scale is asked for (``scale_jitter`` or ``input_scale``): then the
window is cut at ``patch / scale`` and resized to the patch, the image bilinearly (with antialiasing when
shrinking) and the mask by nearest neighbour. Padded image pixels mirror the image (so per-image normalisation is
not skewed by a border of zeros); padded mask pixels get ``pad_label`` (the dataset's ``ignore_index``, else
:data:`PAD_LABEL`), which the training loss ignores, so padding is never trained as background. Masks come out
int64.

:class:`FlipRotate` applies the augmentation steps of a ``+``-joined step list (:data:`AUGMENT_STEPS`):
random horizontal and vertical flips and random 90-degree rotations (only 0 or 180 degrees for a non-square
patch, which a quarter turn would reshape). :func:`check_augment` accepts a preset or such a list.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from zoo.errors import OptionError, UnknownNameError, unknown_name_message

__all__ = ["AUGMENT_STEPS", "PAD_LABEL", "SAMPLINGS", "FlipRotate", "PatchSampler", "PatchSpec", "augment_steps",
           "check_augment", "pad_label_for"]

SAMPLINGS: tuple[str, ...] = ("whole", "crop")
AUGMENT_STEPS: tuple[str, ...] = ("hflip", "vflip", "rot90")
_PRESETS = ("none", "light", "strong")  # zoo.data.transforms.AUGMENT_PRESETS (that module imports this one)
#: the mask label of padded pixels when a dataset has no ignore_index (never a class index)
PAD_LABEL = -1


def augment_steps(augment: str) -> tuple[str, ...] | None:
    """The steps of a ``+``-joined list (``"hflip+rot90"`` -> ``("hflip", "rot90")``), or ``None`` for a preset."""
    if augment in _PRESETS:
        return None
    if "+" not in augment and augment not in AUGMENT_STEPS:
        raise UnknownNameError(unknown_name_message("augmentation preset", augment, _PRESETS)
                               + f"; or '+'-joined steps of {', '.join(AUGMENT_STEPS)} (e.g. 'hflip+vflip+rot90')")
    steps = tuple(s.strip() for s in augment.split("+"))
    bad = [s for s in steps if s not in AUGMENT_STEPS]
    if bad or not augment.strip():
        raise OptionError(f"augment={augment!r} is not a preset ({', '.join(_PRESETS)}) or a '+'-joined list of "
                          f"{', '.join(AUGMENT_STEPS)} (e.g. 'hflip+vflip+rot90')")
    return steps


def check_augment(augment: str) -> str:
    """Return ``augment`` if it is a preset or a valid step list, else raise ``OptionError`` naming both."""
    if not isinstance(augment, str):
        raise OptionError(f"augment={augment!r} must be a string: a preset ({', '.join(_PRESETS)}) or steps "
                          f"such as 'hflip+vflip+rot90'")
    augment_steps(augment)
    return augment


def pad_label_for(ignore_index: int | None) -> int:
    """The mask label for padded pixels: the dataset's ``ignore_index``, else :data:`PAD_LABEL`."""
    return PAD_LABEL if ignore_index is None else int(ignore_index)


@dataclass(frozen=True)
class PatchSpec:
    """How :class:`PatchSampler` cuts patches (the ``TrainConfig`` fields of the same names).

    Attributes:
        size: the patch ``(H, W)`` after scaling.
        sampling: ``whole`` or ``crop``.
        foreground_share: with ``crop``: the share of patches centred on a foreground pixel.
        foreground_classes: the classes that count as foreground (``()``: every class but 0).
        scale_jitter: ``(low, high)`` range of a random scale per patch, or ``None``.
        input_scale: a fixed scale applied to every image (1.0: native).
        pad_label: the mask label of padded pixels.
    """

    size: tuple[int, int]
    sampling: Literal["whole", "crop"] = "crop"
    foreground_share: float = 0.0
    foreground_classes: tuple[int, ...] = ()
    scale_jitter: tuple[float, float] | None = None
    input_scale: float = 1.0
    pad_label: int = PAD_LABEL

    def __post_init__(self) -> None:
        if self.sampling not in SAMPLINGS:
            raise OptionError(f"sampling={self.sampling!r} is not one of {', '.join(SAMPLINGS)}")
        if min(self.size) < 1:
            raise OptionError(f"patch size {self.size!r} must have sides >= 1")


def _reflect(index: Tensor, n: int) -> Tensor:
    """Map indices outside ``[0, n)`` back inside by mirroring at the borders (any distance)."""
    if n == 1:
        return torch.zeros_like(index)
    period = 2 * (n - 1)
    index = index.abs() % period
    return torch.where(index >= n, period - index, index)


def _window(image: Tensor, mask: Tensor, top: int, left: int, size: tuple[int, int],
            pad_label: int) -> tuple[Tensor, Tensor]:
    """The ``size`` window at ``(top, left)`` (may reach outside): image mirrored, mask ``pad_label`` outside."""
    h, w = mask.shape[-2:]
    if top >= 0 and left >= 0 and top + size[0] <= h and left + size[1] <= w:  # inside: a plain slice
        return image[:, top:top + size[0], left:left + size[1]], mask[top:top + size[0], left:left + size[1]].long()
    rows, cols = torch.arange(top, top + size[0]), torch.arange(left, left + size[1])
    out_image = image[:, _reflect(rows, h)][:, :, _reflect(cols, w)]
    out_mask = mask.long()[_reflect(rows, h)][:, _reflect(cols, w)]
    outside = ((rows < 0) | (rows >= h))[:, None] | ((cols < 0) | (cols >= w))[None, :]
    if bool(outside.any()):
        out_mask = out_mask.masked_fill(outside, pad_label)
    return out_image, out_mask


def _resized(image: Tensor, mask: Tensor, size: tuple[int, int]) -> tuple[Tensor, Tensor]:
    """Image bilinear (antialiased when shrinking), mask nearest, to ``size``; the image keeps its dtype."""
    if tuple(mask.shape[-2:]) == tuple(size):
        return image, mask
    shrink = size[0] < mask.shape[-2] or size[1] < mask.shape[-1]
    out = F.interpolate(image[None].float(), size=size, mode="bilinear", align_corners=False, antialias=shrink)[0]
    if image.dtype == torch.uint8:
        out = out.round_().clamp_(0, 255).to(torch.uint8)
    labels = F.interpolate(mask[None, None].float(), size=size, mode="nearest-exact")[0, 0].long()
    return out, labels


def _centre(length: int, region: int) -> int:
    """The start of a centred ``region`` window (padding splits as ``pad // 2`` before, the rest after)."""
    return (length - region) // 2 if length >= region else -((region - length) // 2)


def _offset(length: int, region: int) -> int:
    """A uniform start for a ``region`` window on a ``length`` side (negative: the window pads that side)."""
    low, high = min(0, length - region), max(0, length - region)
    return int(torch.randint(low, high + 1, ()).item())


class PatchSampler:
    """Cut one native-scale patch from an ``(image (C, H, W), mask (H, W))`` pair (see the module docstring)."""

    def __init__(self, spec: PatchSpec) -> None:
        self.spec = spec

    def _scale(self) -> float:
        scale = self.spec.input_scale
        if self.spec.scale_jitter is not None:
            low, high = self.spec.scale_jitter
            scale *= low + (high - low) * float(torch.rand(()))
        return scale

    def _foreground(self, mask: Tensor) -> tuple[int, int] | None:
        """A random pixel of a foreground class, or ``None`` when the mask has none."""
        classes = self.spec.foreground_classes
        if classes:
            hits = torch.isin(mask, torch.tensor(classes, dtype=mask.dtype))
        else:
            hits = (mask.long() > 0) & (mask.long() != self.spec.pad_label)
        points = hits.nonzero()
        if points.shape[0] == 0:
            return None
        y, x = points[int(torch.randint(points.shape[0], ()).item())].tolist()
        return y, x

    def _origin(self, mask: Tensor, region: tuple[int, int]) -> tuple[int, int]:
        """The window's top-left corner for ``whole`` or ``crop`` sampling."""
        h, w = mask.shape[-2:]
        if self.spec.sampling == "whole":
            return _centre(h, region[0]), _centre(w, region[1])
        share = self.spec.foreground_share
        centre = self._foreground(mask) if share > 0 and float(torch.rand(())) < share else None
        if centre is None:
            return _offset(h, region[0]), _offset(w, region[1])
        # centred on the pixel, moved inside the image where the image is larger than the window
        top, left = centre[0] - region[0] // 2, centre[1] - region[1] // 2
        top = min(max(top, min(0, h - region[0])), max(0, h - region[0]))
        left = min(max(left, min(0, w - region[1])), max(0, w - region[1]))
        return top, left

    def __call__(self, image: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        size = self.spec.size
        scale = self._scale()
        region = (max(1, round(size[0] / scale)), max(1, round(size[1] / scale))) if scale != 1.0 else size
        top, left = self._origin(mask, region)
        image, mask = _window(image, mask, top, left, region, self.spec.pad_label)
        return _resized(image, mask, size)


class FlipRotate:
    """Random flips and 90-degree rotations of an image/mask pair (the steps of an ``augment`` step list)."""

    def __init__(self, steps: tuple[str, ...]) -> None:
        self.steps = steps

    def __call__(self, image: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        if "hflip" in self.steps and float(torch.rand(())) < 0.5:
            image, mask = image.flip(-1), mask.flip(-1)
        if "vflip" in self.steps and float(torch.rand(())) < 0.5:
            image, mask = image.flip(-2), mask.flip(-2)
        if "rot90" in self.steps:
            square = image.shape[-1] == image.shape[-2]
            k = int(torch.randint(4, ())) if square else 2 * int(torch.randint(2, ()))
            if k:
                image, mask = image.rot90(k, (-2, -1)), mask.rot90(k, (-2, -1))
        return image.contiguous(), mask.contiguous()

"""Per-image normalisation and the joint image/mask transforms that loaders apply.

:func:`build_transform` turns an augmentation preset (:data:`AUGMENT_PRESETS`) into one
``torchvision.transforms.v2`` pipeline that moves image and mask together: the image is resampled bilinearly,
the mask nearest, and mask pixels that come from outside the image get the dataset's ``ignore_index``
(:func:`_fill`). Each preset is a list of steps, so a new step is one more entry in :func:`_augment_steps`.
:func:`normalize_image` is applied after the transform, per batch, by the loader's collate function.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from zoo.errors import check_choice

__all__ = ["AUGMENT_PRESETS", "NORMALIZE_EPS", "JointTransform", "build_transform", "normalize_image"]

AUGMENT_PRESETS: tuple[str, ...] = ("none", "light", "strong")
NORMALIZE_EPS = 1e-6

#: A transform of an ``(image (C, H, W), mask (H, W))`` pair that keeps the two aligned.
JointTransform = Callable[[Tensor, Tensor], tuple[Tensor, Tensor]]


def normalize_image(image: Tensor) -> Tensor:
    """Per-image, per-channel standardisation ``(x - mean) / (std + eps)`` of ``(C, H, W)`` or ``(B, C, H, W)``.

    Stateless (no dataset statistics), so an image at predict time is normalised exactly as in training.
    """
    if image.ndim not in (3, 4):
        raise ValueError(f"normalize_image expects (C, H, W) or (B, C, H, W); got shape {tuple(image.shape)}")
    image = image.float()
    std, mean = torch.std_mean(image, dim=(-2, -1), keepdim=True, correction=0)
    return (image - mean) / (std + NORMALIZE_EPS)


def _fill(ignore_index: int | None) -> dict[type, int]:
    """The v2 ``fill`` for pixels brought in from outside the image: 0 for images, ``ignore_index`` (or 0) for masks."""
    from torchvision import tv_tensors

    return {tv_tensors.Image: 0, tv_tensors.Mask: 0 if ignore_index is None else ignore_index}


def _augment_steps(augment: str, size: list[int] | None, ignore_index: int | None) -> list[Any]:
    """The training steps of the ``light`` or ``strong`` preset, in the order they run."""
    from torchvision.transforms import v2

    strong = augment == "strong"
    steps: list[Any] = [
        v2.RandomHorizontalFlip(), v2.RandomVerticalFlip(),
        v2.RandomRotation(30 if strong else 10, interpolation=v2.InterpolationMode.BILINEAR, fill=_fill(ignore_index)),
    ]
    if size is not None:
        steps.append(v2.RandomResizedCrop(size, scale=(0.25, 1.0) if strong else (0.5, 1.0), antialias=True))
    if strong:
        steps.append(v2.ColorJitter(brightness=0.3, contrast=0.3))
    return steps


def _joint(steps: list[Any]) -> JointTransform:
    """Compose ``steps`` into one transform of plain tensors, the image as an ``Image`` and the mask as a ``Mask``."""
    from torchvision import tv_tensors
    from torchvision.transforms import v2

    compose = v2.Compose(steps)

    def transform(image: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        out_image, out_mask = compose(tv_tensors.Image(image), tv_tensors.Mask(mask))
        return out_image.as_subclass(Tensor), out_mask.as_subclass(Tensor)

    return transform


def build_transform(augment: str, *, train: bool, image_size: int | None, ignore_index: int | None = None
                    ) -> JointTransform | None:
    """The joint image/mask transform for a loader, or ``None`` when there is nothing to do.

    Presets (train only): ``none`` resizes to ``image_size``; ``light`` adds horizontal/vertical flips, a small
    rotation (10 degrees) and ``RandomResizedCrop(scale=(0.5, 1))``; ``strong`` adds 90-degree-range rotations
    (30 degrees), a wider crop scale (0.25, 1) and brightness/contrast jitter. Masks are always resampled nearest;
    pixels rotated in from outside get ``ignore_index`` (or 0).

    Args:
        augment: one of :data:`AUGMENT_PRESETS` (only used when ``train``).
        train: augment with the preset; otherwise only resize.
        image_size: the square output size; ``None`` keeps native sizes.
        ignore_index: the mask value for pixels brought in from outside the image.

    Raises:
        UnknownNameError: ``augment`` is not a preset.
    """
    from torchvision.transforms import v2

    check_choice("augmentation preset", augment, AUGMENT_PRESETS)
    size = [image_size, image_size] if image_size is not None else None
    if not train or augment == "none":
        steps: list[Any] = [v2.Resize(size, antialias=True)] if size is not None else []
    else:
        steps = _augment_steps(augment, size, ignore_index)
    return _joint(steps) if steps else None

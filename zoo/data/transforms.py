"""Per-image normalisation and the joint image/mask transforms that loaders apply.

:func:`build_transform` turns an augmentation preset (:data:`AUGMENT_PRESETS`) into one
``torchvision.transforms.v2`` pipeline that moves image and mask together: the image is resampled bilinearly,
the mask nearest, and mask pixels that come from outside the image get the dataset's ``ignore_index``
(:func:`_fill`). Each preset is a list of steps, so a new step is one more entry in :func:`_augment_steps`.
``augment`` may also be a ``+``-joined step list (``hflip+vflip+rot90``, :class:`~zoo.data.patches.FlipRotate`).
Given a :class:`~zoo.data.patches.PatchSpec`, training cuts native-scale patches
(:class:`~zoo.data.patches.PatchSampler`) instead of resizing, and a preset's random resized crop is left out.
:func:`normalize_image` is applied after the transform, per batch, by the loader's collate function.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from zoo.data.patches import FlipRotate, PatchSampler, PatchSpec, augment_steps, check_augment

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


def _chain(*transforms: JointTransform | None) -> JointTransform | None:
    """Apply the given transforms in order (``None`` entries skipped)."""
    parts = [t for t in transforms if t is not None]
    if len(parts) <= 1:
        return parts[0] if parts else None

    def transform(image: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        for part in parts:
            image, mask = part(image, mask)
        return image, mask

    return transform


def _patch_transform(augment: str, patch: PatchSpec) -> JointTransform | None:
    """Native-scale patches, then the step list's flips and rotations or the preset's steps without its crop."""
    steps = augment_steps(augment)
    if steps is not None:
        return _chain(PatchSampler(patch), FlipRotate(steps))
    after = _joint(_augment_steps(augment, None, patch.pad_label)) if augment != "none" else None
    return _chain(PatchSampler(patch), after)


def build_transform(augment: str, *, train: bool, image_size: int | None, ignore_index: int | None = None,
                    patch: PatchSpec | None = None) -> JointTransform | None:
    """The joint image/mask transform for a loader, or ``None`` when there is nothing to do.

    Presets (train only): ``none`` resizes to ``image_size``; ``light`` adds horizontal/vertical flips, a small
    rotation (10 degrees) and ``RandomResizedCrop(scale=(0.5, 1))``; ``strong`` adds 90-degree-range rotations
    (30 degrees), a wider crop scale (0.25, 1) and brightness/contrast jitter. Masks are always resampled nearest;
    pixels rotated in from outside get ``ignore_index`` (or 0).

    Args:
        augment: one of :data:`AUGMENT_PRESETS` or a step list such as ``hflip+rot90`` (only used when ``train``).
        train: augment with the preset; otherwise only resize.
        image_size: the square output size; ``None`` keeps native sizes.
        ignore_index: the mask value for pixels brought in from outside the image.
        patch: train on native-scale patches (``image_size`` is then not used for training).

    Raises:
        OptionError: ``augment`` is neither a preset nor a step list.
    """
    from torchvision.transforms import v2

    check_augment(augment)
    if train and patch is not None:
        return _patch_transform(augment, patch)
    size = [image_size, image_size] if image_size is not None else None
    steps: list[Any] = [v2.Resize(size, antialias=True)] if size is not None else []
    if not train or augment == "none":
        return _joint(steps) if steps else None
    listed = augment_steps(augment)
    if listed is not None:
        return _chain(_joint(steps) if steps else None, FlipRotate(listed))
    return _joint(_augment_steps(augment, size, ignore_index))

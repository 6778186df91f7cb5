"""DataLoaders for training and evaluation: transform per item, normalise per batch, seeded shuffling and workers.

:func:`make_loader` reads a :class:`~zoo.data.CachedSplit` through its uint8 :meth:`~zoo.data.CachedSplit.raw`
items, so augmentation runs on uint8 and images are scaled and normalised (:func:`zoo.data.normalize_image`)
once per batch.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Sampler

from zoo.data.patches import PatchSpec, check_augment
from zoo.data.transforms import JointTransform, build_transform, normalize_image
from zoo.errors import DatasetError

__all__ = ["make_loader", "seed_worker", "SameSizeBatches"]


class _LoaderDataset(Dataset):
    """Applies the transform to the uint8 items of a split (or the float items of a foreign split)."""

    def __init__(self, split: Any, transform: JointTransform | None) -> None:
        self.split = split
        self.transform = transform
        self._raw = getattr(split, "raw", None)

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        image, mask = self._raw(index) if self._raw is not None else self.split[index]
        if self.transform is not None:
            image, mask = self.transform(image, mask)
        return image, mask


def _collate(batch: Sequence[tuple[Tensor, Tensor]]) -> tuple[Tensor, Tensor]:
    """Stack a batch, scale uint8 images to [0, 1] and normalise them; masks become int64."""
    images = torch.stack([b[0] for b in batch])
    masks = torch.stack([b[1] for b in batch]).long()
    images = images.float().div_(255.0) if images.dtype == torch.uint8 else images.float()
    return normalize_image(images), masks


def seed_worker(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: seed numpy and ``random`` from the worker's torch seed."""
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


def make_loader(split: Any, *, train: bool, batch_size: int, image_size: int | None = None,
                augment: str = "light", seed: int = 0, num_workers: int = 0, pin_memory: bool = False,
                drop_last: bool | None = None, sampler: Sampler | None = None,
                patch: PatchSpec | None = None) -> DataLoader:
    """A DataLoader of ``(images float32 (B, C, S, S) normalised, masks int64 (B, S, S))``.

    Args:
        split: a ``SplitDataset`` (a :class:`CachedSplit` is fastest: augmentation then runs on uint8).
        train: shuffle (seeded) and augment with ``augment``; otherwise keep the split's order, no augmentation.
        batch_size: items per batch.
        image_size: train: crop/resize to this square size; eval: resize to it (image bilinear with antialias,
            mask nearest); ``None`` keeps native sizes (use ``batch_size=1`` when sizes differ).
        augment: one of :data:`AUGMENT_PRESETS` or a step list such as ``hflip+vflip+rot90`` (ignored when
            ``train=False``).
        seed: seeds the shuffling generator and, through it, the workers. In the main process
            (``num_workers=0``) augmentation draws from torch's global RNG, so seed it with ``torch.manual_seed``.
        num_workers: worker processes (persistent when > 0).
        pin_memory: pin batches (for CUDA).
        drop_last: default: drop the last incomplete batch when training and the split is larger than a batch.
        sampler: replaces the seeded shuffle.
        patch: train on native-scale patches (:class:`~zoo.data.patches.PatchSpec`) instead of ``image_size``
            squares; batches are then ``(B, C, H, W)`` of the patch size.

    Raises:
        OptionError: ``augment`` is neither a preset nor a step list.
        ValueError: ``batch_size`` is below 1.
        DatasetError: the split is empty.
    """
    check_augment(augment)
    if batch_size < 1:
        raise ValueError(f"batch_size={batch_size} must be >= 1")
    if len(split) == 0:
        raise DatasetError("cannot make a loader for an empty split")
    transform = build_transform(augment, train=train, image_size=image_size,
                                ignore_index=getattr(split, "ignore_index", None), patch=patch)
    generator = torch.Generator().manual_seed(seed)
    if drop_last is None:
        drop_last = train and len(split) > batch_size
    return DataLoader(
        _LoaderDataset(split, transform), batch_size=batch_size, shuffle=train and sampler is None,
        sampler=sampler, num_workers=num_workers, pin_memory=pin_memory, drop_last=drop_last,
        collate_fn=_collate, generator=generator, worker_init_fn=seed_worker if num_workers > 0 else None,
        persistent_workers=num_workers > 0,
    )


class SameSizeBatches:
    """Consecutive same-size batches of a native-size evaluation loader, stacked into one forward pass.

    Native-size scoring loads one image per batch because a split's sizes may differ; on a split whose images
    share a size (most do) that costs one forward pass per image, which dominated validation at 64 px. This
    stacks consecutive batches while the size stays the same, up to ``max_pixels`` pixels and ``max_images``
    images per batch, keeping the split's order (per-image rows and distributed shards line up as before).

    Args:
        loader: a loader of ``(images (B, C, H, W), masks (B, H, W))`` in split order.
        max_pixels: the most image pixels per stacked batch (one image larger than this still forms a batch).
        max_images: the most images per stacked batch.
    """

    def __init__(self, loader: Any, *, max_pixels: int = 2**20, max_images: int = 32) -> None:
        self.loader, self.max_pixels, self.max_images = loader, max_pixels, max_images
        self.dataset, self.sampler = getattr(loader, "dataset", None), getattr(loader, "sampler", None)

    def __iter__(self) -> Any:
        images: list[Tensor] = []
        masks: list[Tensor] = []
        count = 0
        for image, mask in self.loader:
            size = image.shape[1:]
            full = count + image.shape[0] > self.max_images or (
                (count + image.shape[0]) * size[-2] * size[-1] > self.max_pixels)
            if images and (size != images[0].shape[1:] or full):
                yield torch.cat(images), torch.cat(masks)
                images, masks, count = [], [], 0
            images.append(image)
            masks.append(mask)
            count += image.shape[0]
        if images:
            yield torch.cat(images), torch.cat(masks)

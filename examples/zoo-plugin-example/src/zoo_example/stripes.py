"""``stripes``: generated bright stripes on smooth noise, binary (background, stripe). No files needed.

Items are generated from ``(seed, split, index)`` alone, so every build gives the same splits and pixels.
"""

from __future__ import annotations

import torch

from zoo.data import BaseDataset, CachedSplit
from zoo.errors import DatasetError

__all__ = ["stripes"]

_SPLIT_SEED = {"train": 0, "val": 1, "test": 2}


def _item(seed: int, split: str, index: int, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed * 1_000_003 + _SPLIT_SEED[split] * 10_007 + index)
    mask = torch.zeros(size, size, dtype=torch.uint8)
    for _ in range(int(torch.randint(1, 4, (1,), generator=generator))):
        start = int(torch.randint(0, size - 2, (1,), generator=generator))
        thickness = int(torch.randint(2, max(3, size // 6), (1,), generator=generator))
        if torch.rand(1, generator=generator) < 0.5:
            mask[start:start + thickness] = 1
        else:
            mask[:, start:start + thickness] = 1
    noise = torch.rand(1, 1, size, size, generator=generator)
    smooth = torch.nn.functional.avg_pool2d(noise, 3, stride=1, padding=1, count_include_pad=False)[0]
    image = 0.3 + 0.4 * smooth + 0.25 * mask
    return (image.clamp(0, 1) * 255).round().to(torch.uint8), mask


def stripes(*, image_size: int = 32, train_items: int = 32, val_items: int = 8, test_items: int = 8,
            seed: int = 0) -> BaseDataset:
    """Generated bright stripes on smooth noise (binary, grayscale; no files needed).

    Args:
        image_size: square image side in pixels (>= 8).
        train_items, val_items, test_items: split sizes.
        seed: the generation seed.
    """
    if image_size < 8:
        raise DatasetError(f"image_size={image_size} must be >= 8 for dataset 'stripes'")
    counts = {"train": train_items, "val": val_items, "test": test_items}

    def make_split(split: str, count: int) -> CachedSplit:
        return CachedSplit([f"{split}-{i}" for i in range(count)], lambda i: _item(seed, split, i, image_size))

    return BaseDataset(name="stripes", in_channels=1, num_classes=2, class_names=("background", "stripe"),
                       ignore_index=None, splits={k: make_split(k, n) for k, n in counts.items()},
                       split_source=f"generated:seed={seed}",
                       params={"image_size": image_size, "seed": seed, **counts})

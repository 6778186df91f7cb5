"""Tiny on-disk datasets in the exact layouts the loaders read (written into tmp_path by the tests)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image


def save(path: Path, array: np.ndarray, mode: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array, mode=mode).save(path) if mode else Image.fromarray(array).save(path)
    return path


def pair(rng: np.random.Generator, size: tuple[int, int] = (16, 20), classes: int = 2, channels: int = 3
         ) -> tuple[np.ndarray, np.ndarray]:
    h, w = size
    image = rng.integers(0, 256, (h, w, channels) if channels > 1 else (h, w), dtype=np.uint8)
    mask = rng.integers(0, classes, (h, w), dtype=np.uint8)
    return image, mask


def write_folder(root: Path, ids: Sequence[str], *, classes: Sequence[str] = ("background", "fg"),
                 split: dict[str, str] | None = None, seed: int = 0, size: tuple[int, int] = (16, 20),
                 channels: int = 3, mask_scale: int = 1) -> Path:
    """root/images/<id>.png, root/masks/<id>.png, classes.txt and (optionally) split.csv."""
    rng = np.random.default_rng(seed)
    for item_id in ids:
        image, mask = pair(rng, size, len(classes), channels)
        save(root / "images" / f"{item_id}.png", image)
        save(root / "masks" / f"{item_id}.png", (mask * mask_scale).astype(np.uint8))
    (root / "classes.txt").write_text("\n".join(classes) + "\n")
    if split is not None:
        (root / "split.csv").write_text("id,split\n" + "".join(f"{k},{v}\n" for k, v in split.items()))
    return root

"""``shapes``: procedurally generated images (ellipses, polygons, blobs on textured noise) with exact masks.

Every item is generated from ``(seed, split, index)`` alone, so a split is identical across runs and machines
and items can be made lazily (then cached as uint8). Objects differ from the background only slightly in mean
intensity and in texture, and pixel noise and blur soften the edges, so a tiny U-Net does well but not perfectly.
Binary by default (background, shape); with ``num_classes=4`` the class is the shape kind.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage

from zoo.data import BaseDataset, CachedSplit, DecodeCache, DEFAULT_CACHE_MB
from zoo.errors import DatasetError

__all__ = ["shapes", "render_item", "SHAPE_KINDS"]

SHAPE_KINDS = ("ellipse", "polygon", "blob")
_SPLIT_INDEX = {"train": 0, "val": 1, "test": 2}


def _texture(rng: np.random.Generator, size: int, sigma: float) -> np.ndarray:
    """Smoothed Gaussian noise scaled to unit standard deviation."""
    field = ndimage.gaussian_filter(rng.standard_normal((size, size)), sigma, mode="wrap")
    return field / (field.std() + 1e-8)


def _star_mask(yy: np.ndarray, xx: np.ndarray, cy: float, cx: float, angles: np.ndarray, radii: np.ndarray
               ) -> np.ndarray:
    """Pixels inside the star-shaped polygon with vertices at ``angles``/``radii`` around ``(cy, cx)``."""
    dy, dx = yy - cy, xx - cx
    phi = np.mod(np.arctan2(dy, dx), 2 * np.pi)
    dist = np.hypot(dy, dx)
    k = np.searchsorted(angles, phi, side="right") - 1  # vertex before phi (angles[0] == 0)
    a0, r0 = angles[k], radii[k]
    a1 = np.where(k + 1 < len(angles), angles[(k + 1) % len(angles)], 2 * np.pi)
    r1 = radii[(k + 1) % len(angles)]
    # Distance along the ray at phi to the edge between vertex k and k+1 (law of sines in the triangle).
    edge = r0 * r1 * np.sin(a1 - a0) / (r0 * np.sin(phi - a0) + r1 * np.sin(a1 - phi) + 1e-9)
    return dist <= edge


def _shape(rng: np.random.Generator, kind: str, yy: np.ndarray, xx: np.ndarray, size: int) -> np.ndarray:
    r = rng.uniform(0.08, 0.2) * size
    cy, cx = rng.uniform(r * 0.5, size - r * 0.5, 2)
    if kind == "ellipse":
        a, b = r, r * rng.uniform(0.45, 1.0)
        t = rng.uniform(0, np.pi)
        u = (xx - cx) * np.cos(t) + (yy - cy) * np.sin(t)
        v = -(xx - cx) * np.sin(t) + (yy - cy) * np.cos(t)
        return (u / a) ** 2 + (v / b) ** 2 <= 1.0
    if kind == "polygon":
        n = int(rng.integers(3, 7))
        angles = np.sort(np.concatenate([[0.0], rng.uniform(0, 2 * np.pi, n - 1)]))
        return _star_mask(yy, xx, cy, cx, angles, r * rng.uniform(0.6, 1.2, n))
    # A blob: a radius that wobbles smoothly with the angle.
    m = 64
    angles = np.linspace(0, 2 * np.pi, m, endpoint=False)
    wobble = sum(rng.uniform(0.05, 0.25) * np.cos(f * angles + rng.uniform(0, 2 * np.pi)) for f in (2, 3, 5))
    return _star_mask(yy, xx, cy, cx, angles, r * (1 + wobble))


def render_item(*, seed: int, split: str, index: int, image_size: int, channels: int, num_classes: int,
                max_shapes: int, contrast: float, noise: float) -> tuple[np.ndarray, np.ndarray]:
    """One image ``(C, S, S)`` uint8 and its mask ``(S, S)`` uint8, determined by the arguments alone."""
    rng = np.random.default_rng([seed, _SPLIT_INDEX[split], index])
    s = image_size
    yy, xx = np.mgrid[0:s, 0:s].astype(np.float64)
    background = 0.5 + 0.1 * _texture(rng, s, rng.uniform(1.0, 3.0))
    gradient = rng.uniform(-0.15, 0.15) * (xx / s - 0.5) + rng.uniform(-0.15, 0.15) * (yy / s - 0.5)
    image = background + gradient
    mask = np.zeros((s, s), np.uint8)
    fine = _texture(rng, s, 0.7)
    for _ in range(int(rng.integers(1, max_shapes + 1))):
        kind_index = int(rng.integers(len(SHAPE_KINDS)))
        inside = _shape(rng, SHAPE_KINDS[kind_index], yy, xx, s)
        # Brighter or darker than the local background, with a finer texture: a cue to learn, never a threshold.
        sign = 1.0 if rng.random() < 0.7 else -1.0
        level = sign * contrast * rng.uniform(0.6, 1.4)
        image = np.where(inside, image + level + 0.1 * fine, image)
        mask[inside] = 1 + kind_index if num_classes > 2 else 1
    # Distractors: faint background-class blotches the model has to learn to ignore.
    for _ in range(int(rng.integers(0, 3))):
        spot = _shape(rng, "blob", yy, xx, s)
        image = np.where(spot & (mask == 0), image + 0.4 * contrast * rng.choice([-1.0, 1.0]), image)
    image = ndimage.gaussian_filter(image, 0.8) + noise * 0.1 * rng.standard_normal((s, s))
    tint = rng.uniform(0.8, 1.2, (channels, 1, 1)) if channels > 1 else np.ones((1, 1, 1))
    pixels = np.clip(image[None] * tint, 0, 1)
    return (pixels * 255).round().astype(np.uint8), mask


def shapes(*, image_size: int = 64, train_items: int = 160, val_items: int = 40, test_items: int = 40,
           num_classes: int = 2, channels: int = 3, max_shapes: int = 4, contrast: float = 0.45,
           noise: float = 0.6, seed: int = 0, cache_mb: float = DEFAULT_CACHE_MB) -> BaseDataset:
    """Procedural ellipses, polygons and blobs on textured noise (the built-in default; no files needed).

    Args:
        image_size: square image side in pixels.
        train_items, val_items, test_items: split sizes.
        num_classes: 2 (background, shape) or 4 (background, ellipse, polygon, blob).
        channels: 1 (grayscale) or 3 (tinted RGB).
        max_shapes: at most this many shapes per image (at least one).
        contrast: mean intensity step between shapes and background (smaller is harder).
        noise: pixel noise level (larger is harder).
        seed: the generation seed; the same seed gives the same images, masks and splits.
        cache_mb: memory budget for generated items.
    """
    if num_classes not in (2, 4):
        raise DatasetError(f"num_classes={num_classes} is not one of (2, 4) for dataset 'shapes'")
    if channels not in (1, 3):
        raise DatasetError(f"channels={channels} is not one of (1, 3) for dataset 'shapes'")
    if image_size < 8 or max_shapes < 1 or min(train_items, val_items, test_items) < 0:
        raise DatasetError(f"invalid shapes options: image_size={image_size} (>= 8), max_shapes={max_shapes} "
                           f"(>= 1), item counts {train_items}/{val_items}/{test_items} (>= 0)")
    params = dict(image_size=image_size, num_classes=num_classes, channels=channels, max_shapes=max_shapes,
                  contrast=contrast, noise=noise, seed=seed)
    cache = DecodeCache(cache_mb)

    def make_split(split: str, count: int) -> CachedSplit:
        def load(i: int) -> tuple[torch.Tensor, torch.Tensor]:
            image, mask = render_item(split=split, index=i, **params)
            return torch.from_numpy(image), torch.from_numpy(mask)

        return CachedSplit([f"{split}-{i:04d}" for i in range(count)], load, cache=cache)

    counts = {"train": train_items, "val": val_items, "test": test_items}
    names = ("background", "shape") if num_classes == 2 else ("background", *SHAPE_KINDS)
    return BaseDataset(name="shapes", in_channels=channels, num_classes=num_classes, class_names=names,
                       ignore_index=None, splits={k: make_split(k, n) for k, n in counts.items()},
                       split_source=f"generated:seed={seed}", params={**params, **counts})

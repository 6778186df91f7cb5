"""Reading image and mask files into tensors, with errors that name the file.

Images come back as uint8 ``(C, H, W)`` (16-bit and float pixels are converted by :func:`to_uint8`), masks as
integer ``(H, W)`` class indices (or ``(H, W, 3)`` for colour-coded RGB masks). :func:`adapt_channels` brings an
image to the channel count a dataset declares.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from zoo.errors import DatasetError

__all__ = ["IMAGE_SUFFIXES", "adapt_channels", "read_array", "read_image", "read_mask", "to_uint8"]

IMAGE_SUFFIXES: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".gif", ".webp")


def _open(path: str | Path, what: str) -> Any:
    """Open and load ``path`` with PIL, raising ``DatasetError`` naming the file when that fails."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{what} file {str(path)!r} does not exist")
    try:
        img = Image.open(path)
        img.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise DatasetError(f"cannot read {what} {str(path)!r}: corrupt or unsupported file ({exc})") from None
    return img


def read_array(path: str | Path, *, what: str = "image", page: int = 0) -> np.ndarray:
    """Decode one image file (or one page of a multi-page TIFF) into a numpy array ``(H, W)`` or ``(H, W, C)``.

    Palette images give their palette indices (so palette masks read as class indices).

    Raises:
        DatasetError: the file is missing, corrupt or unreadable, or has no page ``page``.
    """
    img = _open(path, what)
    if page:
        try:
            img.seek(page)
        except EOFError:
            raise DatasetError(f"{what} {str(path)!r} has no page {page}") from None
    if img.mode in ("I;16", "I;16B", "I;16L"):
        return np.array(img, dtype=np.uint16)
    return np.array(img)


def to_uint8(array: np.ndarray, path: str | Path) -> np.ndarray:
    """Bring decoded image pixels to uint8: 16-bit is scaled, float must be finite and in [0, 1] or [0, 255].

    Raises:
        DatasetError: NaN or Inf pixels, or float values outside those ranges (naming the file and the value).
    """
    if array.dtype == np.uint8:
        return array
    if array.dtype == np.bool_:
        return array.astype(np.uint8) * 255
    if np.issubdtype(array.dtype, np.floating):
        bad = ~np.isfinite(array)
        if bad.any():
            raise DatasetError(f"image {str(path)!r} has {int(bad.sum())} NaN/Inf pixels "
                               f"(first value {array[bad].flat[0]})")
        lo, hi = float(array.min()), float(array.max())
        if lo < 0 or hi > 255:
            raise DatasetError(f"image {str(path)!r} has float values in [{lo:g}, {hi:g}]; expected [0, 1] or [0, 255]")
        scale = 255.0 if hi <= 1.0 else 1.0
        return np.clip(np.rint(array * scale), 0, 255).astype(np.uint8)
    if np.issubdtype(array.dtype, np.integer):
        hi = int(array.max()) if array.size else 0
        if hi <= 255 and int(array.min()) >= 0:
            return array.astype(np.uint8)
        return (array.astype(np.float64) / (65535 if hi <= 65535 else hi) * 255).round().astype(np.uint8)
    raise DatasetError(f"image {str(path)!r} has unsupported pixel type {array.dtype}")


def read_image(path: str | Path, *, page: int = 0) -> Tensor:
    """Read an image file as uint8 ``(C, H, W)`` (grayscale gives ``C=1``; 16-bit and float are converted).

    Raises:
        DatasetError: naming the file when it is missing, corrupt, unreadable or has NaN/Inf pixels.
    """
    array = to_uint8(read_array(path, what="image", page=page), path)
    if array.ndim == 2:
        array = array[:, :, None]
    return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)))


def read_mask(path: str | Path, *, page: int = 0) -> Tensor:
    """Read a mask file as ``(H, W)`` (uint8, or int64 for 16/32-bit masks), or ``(H, W, 3)`` uint8 for RGB masks.

    Palette PNGs give their indices. An RGB mask whose channels are equal is read as one channel.

    Raises:
        DatasetError: naming the file when it is missing, corrupt or unreadable, or holds non-integer values.
    """
    array = read_array(path, what="mask", page=page)
    if np.issubdtype(array.dtype, np.floating):
        if not np.isfinite(array).all() or not np.array_equal(array, np.round(array)):
            raise DatasetError(f"mask {str(path)!r} holds non-integer or NaN/Inf values; masks must be class indices")
        array = array.astype(np.int64)
    if array.dtype == np.bool_:
        array = array.astype(np.uint8)
    if array.ndim == 3:
        array = array[:, :, :3]
        if array.shape[2] == 1 or (np.array_equal(array[..., 0], array[..., 1])
                                   and np.array_equal(array[..., 0], array[..., 2])):
            array = array[..., 0]
    if array.dtype not in (np.uint8, np.int64):
        array = array.astype(np.int64)
    return torch.from_numpy(np.ascontiguousarray(array))


def adapt_channels(image: Tensor, channels: int, path: str | Path) -> Tensor:
    """Bring a uint8 ``(C, H, W)`` image to ``channels``: gray -> RGB by repeat, RGBA -> RGB, equal RGB -> gray.

    Raises:
        DatasetError: the image cannot be converted (e.g. real colour where one channel is declared).
    """
    c = image.shape[0]
    if c == channels:
        return image
    if c == 4 and channels == 3:
        return image[:3]
    if c == 1 and channels == 3:
        return image.expand(3, -1, -1).contiguous()
    if c in (3, 4) and channels == 1 and torch.equal(image[0], image[1]) and torch.equal(image[0], image[2]):
        return image[:1].contiguous()
    raise DatasetError(f"image {str(path)!r} has {c} channels; the dataset declares {channels}")

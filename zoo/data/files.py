"""Reading image and mask files into tensors, with errors that name the file.

Images come back as uint8 ``(C, H, W)`` (16-bit and float pixels are converted by :func:`to_uint8`), masks as
integer ``(H, W)`` class indices (or ``(H, W, 3)`` for colour-coded RGB masks). :func:`adapt_channels` brings an
image to the channel count a dataset declares.

Every file is checked against a pixel limit from its header, before any pixel is decoded: a decompression bomb
(a small PNG that claims 20000x20000 pixels) is an :class:`~zoo.errors.OversizedImageError` naming the file, its
size and the setting that raises the limit (``ZOO_MAX_IMAGE_PIXELS``; default: Pillow's
``Image.MAX_IMAGE_PIXELS``, about 89.5 million pixels), never Pillow's ``DecompressionBombError``.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from zoo.errors import DatasetError, OversizedImageError

__all__ = ["IMAGE_SUFFIXES", "MAX_PIXELS_ENV", "adapt_channels", "image_header", "max_image_pixels", "read_array",
           "read_image", "read_mask", "to_uint8"]

IMAGE_SUFFIXES: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".gif", ".webp")
MAX_PIXELS_ENV = "ZOO_MAX_IMAGE_PIXELS"
_PIL_LIMIT = threading.Lock()


def max_image_pixels() -> int | None:
    """The largest image (height x width) zoo decodes: ``ZOO_MAX_IMAGE_PIXELS``, else Pillow's limit.

    ``ZOO_MAX_IMAGE_PIXELS=0`` (or ``none``) lifts the limit, for trusted files only.

    Raises:
        DatasetError: the setting is not a whole number.
    """
    from PIL import Image

    value = os.environ.get(MAX_PIXELS_ENV, "").strip().lower().replace("_", "")
    if not value:
        return Image.MAX_IMAGE_PIXELS
    if value in ("0", "none"):
        return None
    try:
        limit = int(float(value)) if "e" in value else int(value)
    except ValueError:
        raise DatasetError(f"{MAX_PIXELS_ENV}={os.environ[MAX_PIXELS_ENV]!r} is not a number of pixels "
                           f"(e.g. 400000000, or 0 for no limit)") from None
    if limit < 0:
        raise DatasetError(f"{MAX_PIXELS_ENV}={limit} must be >= 0 (0 for no limit)")
    return limit or None


@contextlib.contextmanager
def _header_only() -> Iterator[None]:
    """Let ``Image.open`` read any header: zoo checks the size itself (:func:`_check_pixels`) before decoding.

    Pillow's own check raises from ``Image.open`` above twice its limit, before the size can be named.
    """
    import warnings

    from PIL import Image

    with _PIL_LIMIT, warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
        try:
            yield
        finally:
            Image.MAX_IMAGE_PIXELS = saved


def _check_pixels(size: tuple[int, int], path: Path, what: str, limit: int | None) -> None:
    width, height = size
    if limit is not None and width * height > limit:
        raise OversizedImageError(
            f"{what} {str(path)!r} is {width}x{height} ({width * height / 1e6:.1f} M pixels), over the limit of "
            f"{limit / 1e6:.1f} M pixels (a possible decompression bomb; not decoded); if the file is trusted, "
            f"set {MAX_PIXELS_ENV}={width * height} (or 0 for no limit)")


def _open_header(path: Path, what: str) -> Any:
    """``Image.open`` (header only, size not yet checked), raising ``DatasetError`` naming the file."""
    from PIL import Image, UnidentifiedImageError

    if not path.is_file():
        raise DatasetError(f"{what} file {str(path)!r} does not exist")
    try:
        with _header_only():
            return Image.open(path)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise DatasetError(f"cannot read {what} {str(path)!r}: corrupt or unsupported file ({exc})") from None


def image_header(path: str | Path, *, what: str = "image") -> tuple[str, tuple[int, int]]:
    """Pillow mode and ``(width, height)`` of an image file, from its header alone (cheap; no size limit).

    Raises:
        DatasetError: the file is missing, corrupt or not an image.
    """
    with _open_header(Path(path), what) as img:
        return img.mode, img.size


def _open(path: str | Path, what: str) -> Any:
    """Open ``path`` with PIL, check its size from the header, then decode it; errors name the file.

    Raises:
        OversizedImageError: over :func:`max_image_pixels` (nothing decoded).
        DatasetError: missing, corrupt or unreadable.
    """
    from PIL import Image

    path = Path(path)
    limit = max_image_pixels()
    img = _open_header(path, what)
    try:
        _check_pixels(img.size, path, what, limit)
        with contextlib.ExitStack() as stack:
            if limit is None or (Image.MAX_IMAGE_PIXELS is not None and limit > Image.MAX_IMAGE_PIXELS):
                stack.enter_context(_header_only())  # a raised limit: decoding must not trip Pillow's own check
            img.load()
    except DatasetError:
        img.close()
        raise
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        img.close()
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

"""Data helpers shared by dataset plugins and the engine: file reading, validation, caching, loaders, checks.

Dataset plugins build their splits from :class:`CachedSplit` (decode each item once, keep it in memory as
uint8 while a :class:`DecodeCache` budget allows) and :class:`BaseDataset` (metadata, splits, fingerprint,
split source). The engine builds loaders with :func:`make_loader`, which applies the named augmentation preset
(:data:`AUGMENT_PRESETS`) with ``torchvision.transforms.v2`` on image and mask jointly and normalises images
with :func:`normalize_image`. :func:`check_dataset` scans a dataset and reports every problem it finds.

Item contract (``zoo.interfaces.SplitDataset``): ``split[i]`` is ``(image, mask)``, image float32 ``(C, H, W)``
in ``[0, 1]``, mask int64 ``(H, W)`` of class indices or ``ignore_index``.

Import these names from ``zoo.data`` itself (plugins may import nothing else); the modules behind it are:

- ``files``: reading image and mask files (:func:`read_image`, :func:`read_mask`, :func:`adapt_channels`), with a
  pixel limit checked from the header (:func:`max_image_pixels`, ``ZOO_MAX_IMAGE_PIXELS``).
- ``validation``: :class:`Problem` reporting, :func:`validate_pair` and the whole-dataset :func:`check_dataset`.
- ``cache``: the decode cache (:class:`DecodeCache`, :class:`CachedSplit`).
- ``datasets``: :class:`BaseDataset`, split assignment (:func:`seeded_split`, :func:`read_split_csv`), class lists.
- ``transforms``: :func:`normalize_image` and the augmentation presets (:func:`build_transform`).
- ``loaders``: :func:`make_loader` and :func:`seed_worker`.
- ``preview``: :func:`save_preview`, the PNG grid of ``zoo datasets show``.
"""

from __future__ import annotations

from zoo.data.cache import DEFAULT_CACHE_MB, CachedSplit, DecodeCache
from zoo.data.datasets import VOID_NAMES, BaseDataset, fingerprint_of, read_classes, read_split_csv, seeded_split
from zoo.data.files import (IMAGE_SUFFIXES, MAX_PIXELS_ENV, adapt_channels, image_header, max_image_pixels, read_array,
                            read_image, read_mask, to_uint8)
from zoo.data.loaders import make_loader, seed_worker
from zoo.data.preview import save_preview
from zoo.data.transforms import AUGMENT_PRESETS, build_transform, normalize_image
from zoo.data.validation import CheckReport, Problem, check_dataset, collect_problems, report_problems, validate_pair

__all__ = [
    "AUGMENT_PRESETS",
    "DEFAULT_CACHE_MB",
    "IMAGE_SUFFIXES",
    "MAX_PIXELS_ENV",
    "VOID_NAMES",
    "BaseDataset",
    "CachedSplit",
    "CheckReport",
    "DecodeCache",
    "Problem",
    "adapt_channels",
    "build_transform",
    "check_dataset",
    "collect_problems",
    "fingerprint_of",
    "image_header",
    "make_loader",
    "max_image_pixels",
    "normalize_image",
    "read_array",
    "read_classes",
    "read_image",
    "read_mask",
    "read_split_csv",
    "report_problems",
    "save_preview",
    "seed_worker",
    "seeded_split",
    "to_uint8",
    "validate_pair",
]

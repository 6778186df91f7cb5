"""The data directory: every folder-layout dataset under ``$ZOO_DATA/<name>/`` becomes a dataset called ``<name>``.

``zoo --data-dir DIR`` sets ``ZOO_DATA`` before the registry is built. A sub-folder counts when it has
``images/`` and ``masks/``. Names that a named loader owns (``drive``, ``camvid``, ...) are skipped: those
loaders read the same folder by default (their ``root`` defaults to ``$ZOO_DATA/<name>``), so the name still
works and keeps the loader's extra options (e.g. ``drive --fov true``). Folder names that are not valid registry
names are skipped with a warning. Registration reads ``classes.txt`` and one image header per folder, no pixels.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Collection
from pathlib import Path

from zoo.data import DEFAULT_CACHE_MB, VOID_NAMES, BaseDataset, read_classes
from zoo.interfaces import DatasetSpec

from zoo_datasets.folder import folder_dataset, image_channels, is_folder_layout

__all__ = ["data_dir_specs", "make_data_dir_builder"]

log = logging.getLogger(__name__)


def make_data_dir_builder(name: str, root: Path) -> Callable[..., BaseDataset]:
    """The builder of data-dir entry ``name``: the ``folder`` loader with ``root`` defaulting to ``root``."""

    def build(*, root: str | None = None, mask_map: str = "index", mask_values: tuple[int, ...] | None = None,
              void_values: tuple[int, ...] = (), ignore_index: int | None = None, split_seed: int = 0,
              roi: bool = False, cache_mb: float = DEFAULT_CACHE_MB) -> BaseDataset:
        return folder_dataset(name, Path(root) if root is not None else default_root, mask_map=mask_map,
                              mask_values=mask_values, void_values=void_values, ignore_index=ignore_index,
                              split_seed=split_seed, roi=roi, cache_mb=cache_mb)

    default_root = root
    build.__name__ = build.__qualname__ = f"data_dir_{name.replace('-', '_')}"
    build.__doc__ = f"Folder-layout data in {root} (from ZOO_DATA); options as for 'folder'."
    return build


def _metadata(root: Path) -> tuple[int | None, int | None]:
    """(in_channels, num_classes) from classes.txt and one image header, or None where unknown."""
    num_classes = None
    if (root / "classes.txt").is_file():
        names, _ = read_classes(root / "classes.txt")
        num_classes = len(names) - (1 if len(names) > 1 and names[-1].strip().lower() in VOID_NAMES else 0)
    in_channels = None
    first = next((p for p in sorted((root / "images").iterdir()) if p.is_file()), None)
    if first is not None:
        try:
            in_channels = image_channels(first)
        except Exception:  # a corrupt first image is reported by check/build, not at registration
            in_channels = None
    return in_channels, num_classes


def data_dir_specs(owned: Collection[str], data_dir: str | None = None) -> list[DatasetSpec]:
    """Specs for the folder-layout datasets under ``data_dir`` (default ``$ZOO_DATA``), skipping ``owned`` names."""
    data_dir = data_dir if data_dir is not None else os.environ.get("ZOO_DATA")
    if not data_dir:
        return []
    base = Path(data_dir)
    if not base.is_dir():
        log.warning("ZOO_DATA=%s is not a folder; no data-dir datasets registered", data_dir)
        return []
    specs = []
    for sub in sorted(p for p in base.iterdir() if p.is_dir() and is_folder_layout(p)):
        name = sub.name
        if name in owned:
            continue
        if not _valid_name(name):
            log.warning("data dir entry %r is not a valid dataset name (lowercase letters, digits, '-' or '_'); "
                        "skipped", name)
            continue
        in_channels, num_classes = _metadata(sub)
        builder = make_data_dir_builder(name, sub)
        specs.append(DatasetSpec(name, builder, description=f"folder-layout data in {sub.resolve()}",
                                 in_channels=in_channels, num_classes=num_classes))
    return specs


def _valid_name(name: str) -> bool:
    # The registry's rule (zoo.registry.NAME_PATTERN), repeated because plugins use only the public API.
    return re.fullmatch(r"[a-z0-9]+(?:[-_][a-z0-9]+)*", name) is not None

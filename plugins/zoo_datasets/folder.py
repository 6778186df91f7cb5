"""``folder``: the generic layout, and the item assembly that every file-based loader here shares.

Layout::

    root/images/<id>.<ext>    image (PNG, JPEG, TIFF, ...; grayscale or RGB)
    root/masks/<id>.png       class-index mask, same height and width (or mapped: see MaskMapping)
    root/split.csv            optional ``id,split`` lines (split in train, val, test); without it a seeded
                              70/15/15 split is made and recorded as the split source
    root/classes.txt          optional class names in index order; ``name R G B`` lines give colours for RGB
                              masks; a last class named void/unlabelled/ignore becomes ``ignore_index``
    root/fov/<id>.png         optional region-of-interest masks (nonzero = inside), used with ``roi=True``
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from zoo.data import (
    DEFAULT_CACHE_MB, IMAGE_SUFFIXES, VOID_NAMES, BaseDataset, CachedSplit, DecodeCache, Problem, adapt_channels,
    image_header, read_array, read_classes, read_image, read_mask, read_split_csv, report_problems, seeded_split,
    validate_pair,
)
from zoo.errors import DatasetError, check_choice
from zoo.interfaces import SPLITS

__all__ = ["Item", "MaskMapping", "MASK_MAPS", "assemble", "scan_folder", "folder", "folder_dataset", "is_folder_layout"]

log = logging.getLogger(__name__)
MASK_MAPS = ("index", "binary", "rgb")
DEFAULT_IGNORE = 255


@dataclass(frozen=True)
class Item:
    """Where one item's pixels come from.

    ``masks`` (several files) are merged as a union of their nonzero pixels (instance masks); ``roi`` is a
    region-of-interest mask: pixels where it is zero become ``ignore_index``.
    """

    id: str
    image: Path
    mask: Path | None = None
    image_page: int = 0
    mask_page: int = 0
    masks: tuple[Path, ...] = ()
    roi: Path | None = None


@dataclass(frozen=True)
class MaskMapping:
    """How raw mask pixels become class indices.

    ``index``: values are class indices (palette PNGs give their indices). ``binary``: nonzero -> 1.
    ``rgb``: colours in ``colors`` (index order) -> their index. ``values``: raw value ``values[k]`` -> ``k``
    (e.g. ``(0, 255)`` turns 0/255 into 0/1) and ``extra`` adds ``(raw, k)`` pairs. ``void``: raw values (or colours) that become ``ignore_index``.
    """

    mode: str = "index"
    values: tuple[int, ...] = ()
    extra: tuple[tuple[int, int], ...] = ()
    colors: tuple[tuple[int, int, int], ...] = ()
    void: tuple[int, ...] = ()
    void_colors: tuple[tuple[int, int, int], ...] = ()

    def apply(self, raw: Tensor, *, ignore_index: int | None, path: Path) -> Tensor:
        fill = ignore_index if ignore_index is not None else -1
        if self.mode == "rgb":
            if raw.ndim != 3:
                raise DatasetError(f"mask {str(path)!r} is single-channel but mask_map='rgb' expects colour masks")
            code = (raw[..., 0].long() << 16) | (raw[..., 1].long() << 8) | raw[..., 2].long()
            out = torch.full(code.shape, -2, dtype=torch.int64)
            for k, (r, g, b) in enumerate(self.colors):
                out[code == (r << 16 | g << 8 | b)] = k
            for r, g, b in self.void_colors:
                out[code == (r << 16 | g << 8 | b)] = fill
            unknown = out == -2
            if unknown.any():
                colours = torch.unique(code[unknown])[:5].tolist()
                raise DatasetError(f"mask {str(path)!r} has colours {[((c >> 16) & 255, (c >> 8) & 255, c & 255) for c in colours]} "
                                   f"that are not in the class colour table {list(self.colors)}")
            return out
        if raw.ndim == 3:
            raise DatasetError(f"mask {str(path)!r} is an RGB image; use mask_map='rgb' with colours in classes.txt "
                               f"('name R G B' lines), or save class-index masks")
        if self.mode == "binary":
            out = (raw != 0).to(torch.uint8)
            for v in self.void:
                out[raw == v] = fill
            return out
        if self.values:
            lut = torch.full((max(int(raw.max()), *self.values, *self.void, *(v for v, _ in self.extra)) + 1,), -2, dtype=torch.int64)
            for k, v in enumerate(self.values):
                lut[v] = k
            for v, k in self.extra:
                lut[v] = k
            for v in self.void:
                lut[v] = fill
            out = lut[raw.long()]
            if (out == -2).any():
                bad = torch.unique(raw[out == -2])[:10].tolist()
                raise DatasetError(f"mask {str(path)!r} has values {bad} that are not in mask_values {list(self.values)}")
            return out
        if self.void and ignore_index is not None:
            out = raw.clone()
            for v in self.void:
                out[raw == v] = ignore_index
            return out
        return raw


def _mask_dtype(num_classes: int, ignore_index: int | None) -> torch.dtype:
    fits = num_classes <= 256 and (ignore_index is None or 0 <= ignore_index <= 255)
    return torch.uint8 if fits else torch.int64


def _load_item(item: Item, *, in_channels: int, num_classes: int, ignore_index: int | None,
               mapping: MaskMapping) -> tuple[Tensor, Tensor]:
    image = adapt_channels(read_image(item.image, page=item.image_page), in_channels, item.image)
    if item.masks:
        mask_path = item.masks[0]
        merged: Tensor | None = None
        for path in item.masks:
            part = read_mask(path)
            part = part if part.ndim == 2 else part.amax(-1)
            if merged is not None and part.shape != merged.shape:
                raise DatasetError(f"instance mask {str(path)!r} is {part.shape[1]}x{part.shape[0]} but "
                                   f"{str(item.masks[0])!r} is {merged.shape[1]}x{merged.shape[0]}")
            merged = part != 0 if merged is None else merged | (part != 0)
        assert merged is not None
        mask = merged.to(torch.uint8)
    else:
        assert item.mask is not None
        mask_path = item.mask
        mask = mapping.apply(read_mask(item.mask, page=item.mask_page), ignore_index=ignore_index, path=item.mask)
    validate_pair(image, mask, num_classes=num_classes, ignore_index=ignore_index, image_path=item.image,
                  mask_path=mask_path)
    if item.roi is not None:
        roi = read_mask(item.roi)
        roi = roi if roi.ndim == 2 else roi.amax(-1)
        if roi.shape != mask.shape:
            raise DatasetError(f"region mask {str(item.roi)!r} is {roi.shape[1]}x{roi.shape[0]} but the mask "
                               f"{str(mask_path)!r} is {mask.shape[1]}x{mask.shape[0]}")
        mask = mask.clone()
        mask[roi == 0] = ignore_index if ignore_index is not None else DEFAULT_IGNORE
    return image, mask.to(_mask_dtype(num_classes, ignore_index))


def assemble(name: str, items: dict[str, list[Item]], *, class_names: Sequence[str], ignore_index: int | None,
             in_channels: int, mapping: MaskMapping = MaskMapping(), cache_mb: float = DEFAULT_CACHE_MB,
             split_source: str, params: dict, root: Path | None, problems: Sequence[Problem] = ()) -> BaseDataset:
    """Build a :class:`~zoo.data.BaseDataset` over file items, after reporting ``problems`` (raise or collect)."""
    report_problems(problems, f"dataset {name!r} at {str(root)!r}" if root else f"dataset {name!r}")
    num_classes = len(class_names)
    cache = DecodeCache(cache_mb)

    def make_split(split_items: list[Item]) -> CachedSplit:
        def load(i: int) -> tuple[Tensor, Tensor]:
            return _load_item(split_items[i], in_channels=in_channels, num_classes=num_classes,
                              ignore_index=ignore_index, mapping=mapping)

        def describe(i: int) -> str:
            it = split_items[i]
            return f"item {it.id!r} ({it.image})"

        return CachedSplit([it.id for it in split_items], load, cache=cache, ignore_index=ignore_index,
                           describe=describe)

    return BaseDataset(name=name, in_channels=in_channels, num_classes=num_classes, class_names=tuple(class_names),
                       ignore_index=ignore_index, splits={s: make_split(items.get(s, [])) for s in SPLITS},
                       split_source=split_source, params=params, root=str(root) if root else None)


def _files_by_stem(directory: Path, what: str, problems: list[Problem]) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for path in sorted(directory.iterdir()):
        if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith("."):
            if path.stem in found:
                problems.append(Problem("duplicate", f"two {what} files for id {path.stem!r}: "
                                                     f"{found[path.stem].name} and {path.name}"))
                continue
            found[path.stem] = path
    return found


def image_channels(path: Path) -> int:
    """Channels of an image file, from its header (cheap)."""
    mode, _ = image_header(path)
    return {"1": 1, "L": 1, "P": 3, "I": 1, "F": 1, "I;16": 1, "I;16B": 1, "I;16L": 1, "LA": 1}.get(mode, 3)


def _first_channels(paths: Sequence[Path]) -> int:
    """Channels of the first readable image (a corrupt one is reported when its item is loaded)."""
    for path in paths[:20]:
        try:
            return image_channels(path)
        except DatasetError:
            continue
    return 3


def is_folder_layout(root: Path) -> bool:
    """Whether ``root`` has the generic ``images/`` + ``masks/`` layout."""
    return (root / "images").is_dir() and (root / "masks").is_dir()


@dataclass
class FolderScan:
    """The result of indexing a folder-layout root (cheap: no pixels are decoded)."""

    items: dict[str, list[Item]]
    split_source: str
    class_names: list[str]
    colors: list[tuple[int, int, int] | None]
    ignore_index: int | None
    in_channels: int
    problems: list[Problem] = field(default_factory=list)


def scan_folder(root: Path, *, num_classes: int | None = None, ignore_index: int | None = None,
                in_channels: int | None = None, split_seed: int = 0, roi: bool = False,
                mask_map: str = "index") -> FolderScan:
    """Index ``root`` (see the module docstring), collecting every structural problem.

    Raises:
        DatasetError: ``root`` or its ``images/`` folder does not exist, or the class count is unknown.
    """
    if not root.is_dir():
        raise DatasetError(f"dataset root {str(root)!r} does not exist or is not a folder")
    problems: list[Problem] = []
    if not (root / "images").is_dir():
        raise DatasetError(f"{str(root)!r} has no images/ folder (expected root/images/<id>.<ext> and "
                           f"root/masks/<id>.png)")
    images = _files_by_stem(root / "images", "image", problems)
    masks = _files_by_stem(root / "masks", "mask", problems) if (root / "masks").is_dir() else {}
    if not (root / "masks").is_dir():
        problems.append(Problem("missing-mask", f"{str(root)!r} has no masks/ folder"))
    for stem in sorted(set(masks) - set(images)):
        problems.append(Problem("missing-image", f"mask {str(masks[stem])!r} has no image "
                                                 f"(expected {str(root / 'images' / stem)}.<ext>)"))
    for stem in sorted(set(images) - set(masks)):
        if (root / "masks").is_dir():
            problems.append(Problem("missing-mask", f"image {str(images[stem])!r} has no mask "
                                                    f"(expected {str(root / 'masks' / stem)}.png)"))
    usable = sorted(set(images) & set(masks))

    split_file = root / "split.csv"
    if split_file.is_file():
        assignment, split_problems = read_split_csv(split_file)
        problems += split_problems
        listed = {i for ids in assignment.values() for i in ids}
        missing = sorted(i for i in listed if i not in images)
        if missing:
            problems.append(Problem("split-file", f"{str(split_file)!r} names {len(missing)} ids with no image: "
                                                  f"{', '.join(missing[:10])}{' ...' if len(missing) > 10 else ''}"))
        unlisted = sorted(set(usable) - listed)
        if unlisted:
            problems.append(Problem("unlisted", f"{len(unlisted)} items are not in {str(split_file)!r} and are "
                                                f"unused: {', '.join(unlisted[:10])}", "warning"))
        usable_set = set(usable)
        assignment = {s: [i for i in ids if i in usable_set] for s, ids in assignment.items()}
        split_source = f"file:{split_file}"
    else:
        assignment = seeded_split(usable, seed=split_seed)
        split_source = f"seed:{split_seed} (70/15/15 of sorted ids)"

    classes_file = root / "classes.txt"
    colors: list[tuple[int, int, int] | None] = []
    if classes_file.is_file():
        class_names, colors = read_classes(classes_file)
    elif num_classes is not None:
        class_names = [f"class{k}" for k in range(num_classes)]
    elif mask_map == "binary":
        class_names = ["background", "foreground"]
    else:
        raise DatasetError(f"{str(root)!r} has no classes.txt; add one (one class name per line) or pass "
                           f"num_classes")
    if ignore_index is None and class_names and class_names[-1].strip().lower() in VOID_NAMES and len(class_names) > 1:
        ignore_index = len(class_names) - 1
    if ignore_index is not None and 0 <= ignore_index < len(class_names):
        if ignore_index != len(class_names) - 1:
            raise DatasetError(f"ignore_index={ignore_index} names class {class_names[ignore_index]!r}; only the "
                               f"last class in classes.txt can be void")
        class_names = class_names[:-1]
    if num_classes is not None and num_classes != len(class_names):
        raise DatasetError(f"num_classes={num_classes} but {str(classes_file)!r} names {len(class_names)} classes")

    if in_channels is None:
        in_channels = _first_channels([images[i] for i in usable])
    items = {s: [Item(i, images[i], masks[i], roi=(root / "fov" / f"{i}.png") if roi else None) for i in ids]
             for s, ids in assignment.items()}
    if roi:
        for ids in items.values():
            for it in ids:
                if it.roi is not None and not it.roi.is_file():
                    problems.append(Problem("missing-roi", f"region mask {str(it.roi)!r} does not exist"))
        items = {s: [it for it in ids if it.roi is not None and it.roi.is_file()] for s, ids in items.items()}
    return FolderScan(items, split_source, class_names, colors, ignore_index, in_channels, problems)


def folder_dataset(name: str, root: Path, *, mask_map: str = "index", mask_values: Sequence[int] | None = None,
                   void_values: Sequence[int] = (), num_classes: int | None = None, ignore_index: int | None = None,
                   in_channels: int | None = None, split_seed: int = 0, roi: bool = False,
                   cache_mb: float = DEFAULT_CACHE_MB) -> BaseDataset:
    """Build a folder-layout dataset (the body of ``folder`` and of every ``ZOO_DATA`` entry)."""
    check_choice("mask_map", mask_map, MASK_MAPS)
    if isinstance(mask_values, int):
        mask_values = (mask_values,)
    if isinstance(void_values, int):
        void_values = (void_values,)
    scan = scan_folder(Path(root), num_classes=num_classes, ignore_index=ignore_index, in_channels=in_channels,
                       split_seed=split_seed, roi=roi, mask_map=mask_map)
    colors: tuple = ()
    void_colors: tuple = ()
    if mask_map == "rgb":
        all_names, all_colors = read_classes(Path(root) / "classes.txt") if (Path(root) / "classes.txt").is_file() \
            else ([], [])
        if not all_colors or any(c is None for c in all_colors):
            raise DatasetError(f"mask_map='rgb' needs a colour for every class in {str(Path(root) / 'classes.txt')!r} "
                               f"('name R G B' lines)")
        colors = tuple(all_colors[:len(scan.class_names)])  # type: ignore[arg-type]
        void_colors = tuple(all_colors[len(scan.class_names):])  # type: ignore[arg-type]
    if mask_values is not None and len(mask_values) != len(scan.class_names):
        raise DatasetError(f"mask_values={tuple(mask_values)} has {len(mask_values)} entries but there are "
                           f"{len(scan.class_names)} classes ({', '.join(scan.class_names)})")
    ignore = scan.ignore_index
    if void_values and ignore is None:
        ignore = DEFAULT_IGNORE
    mapping = MaskMapping(mode=mask_map, values=tuple(mask_values or ()), colors=colors,
                          void=tuple(void_values), void_colors=void_colors)
    if roi and ignore is None:
        ignore = DEFAULT_IGNORE
    params = dict(root=str(Path(root).resolve()), mask_map=mask_map, mask_values=mask_values,
                  void_values=tuple(void_values), ignore_index=ignore, in_channels=scan.in_channels,
                  split_seed=split_seed if scan.split_source.startswith("seed") else None, roi=roi)
    return assemble(name, scan.items, class_names=scan.class_names, ignore_index=ignore,
                    in_channels=scan.in_channels, mapping=mapping, cache_mb=cache_mb,
                    split_source=scan.split_source, params=params, root=Path(root), problems=scan.problems)


def folder(*, root: str | None = None, mask_map: str = "index", mask_values: tuple[int, ...] | None = None,
           void_values: tuple[int, ...] = (), num_classes: int | None = None, ignore_index: int | None = None,
           in_channels: int | None = None, split_seed: int = 0, roi: bool = False,
           cache_mb: float = DEFAULT_CACHE_MB) -> BaseDataset:
    """Generic layout: root/images/<id>.<ext>, root/masks/<id>.png, optional split.csv and classes.txt.

    Args:
        root: the dataset folder (required).
        mask_map: ``index`` (masks hold class indices), ``binary`` (nonzero -> 1) or ``rgb`` (colours from
            ``classes.txt`` lines ``name R G B``).
        mask_values: raw mask values in class order, e.g. ``0,255`` maps 0/255 to 0/1.
        void_values: raw mask values that become ``ignore_index`` (255 unless set).
        num_classes: needed only without classes.txt.
        ignore_index: the void label; by default the last class of classes.txt when it is named void/unlabelled.
        in_channels: force 1 or 3 channels (default: from the first image).
        split_seed: seed of the 70/15/15 split used when there is no split.csv (recorded as the split source).
        roi: read root/fov/<id>.png and set pixels outside it to ``ignore_index``.
        cache_mb: memory budget for decoded items.
    """
    if root is None:
        raise DatasetError("dataset 'folder' needs --root DIR (a folder with images/ and masks/)")
    return folder_dataset("folder", Path(root), mask_map=mask_map, mask_values=mask_values, void_values=void_values,
                          num_classes=num_classes, ignore_index=ignore_index, in_channels=in_channels,
                          split_seed=split_seed, roi=roi, cache_mb=cache_mb)

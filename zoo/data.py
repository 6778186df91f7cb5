"""Data helpers shared by dataset plugins and the engine: file reading, validation, caching, loaders, checks.

Dataset plugins build their splits from :class:`CachedSplit` (decode each item once, keep it in memory as
uint8 while a :class:`DecodeCache` budget allows) and :class:`BaseDataset` (metadata, splits, fingerprint,
split source). The engine builds loaders with :func:`make_loader`, which applies the named augmentation preset
(:data:`AUGMENT_PRESETS`) with ``torchvision.transforms.v2`` on image and mask jointly and normalises images
with :func:`normalize_image`. :func:`check_dataset` scans a dataset and reports every problem it finds.

Item contract (``zoo.interfaces.SplitDataset``): ``split[i]`` is ``(image, mask)``, image float32 ``(C, H, W)``
in ``[0, 1]``, mask int64 ``(H, W)`` of class indices or ``ignore_index``.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import json
import logging
import math
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Sampler

from zoo.errors import DatasetError, check_choice
from zoo.interfaces import SPLITS

__all__ = [
    "AUGMENT_PRESETS",
    "IMAGE_SUFFIXES",
    "DEFAULT_CACHE_MB",
    "Problem",
    "read_image",
    "read_mask",
    "read_array",
    "to_uint8",
    "adapt_channels",
    "validate_pair",
    "collect_problems",
    "report_problems",
    "DecodeCache",
    "CachedSplit",
    "BaseDataset",
    "fingerprint_of",
    "seeded_split",
    "read_split_csv",
    "read_classes",
    "VOID_NAMES",
    "normalize_image",
    "build_transform",
    "make_loader",
    "seed_worker",
    "CheckReport",
    "check_dataset",
    "save_preview",
]

log = logging.getLogger(__name__)

AUGMENT_PRESETS: tuple[str, ...] = ("none", "light", "strong")
IMAGE_SUFFIXES: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".gif", ".webp")
DEFAULT_CACHE_MB = 2048
NORMALIZE_EPS = 1e-6


# ----------------------------------------------------------------------------------------------------------------
# Reading files


def _open(path: str | Path, what: str) -> Any:
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


# ----------------------------------------------------------------------------------------------------------------
# Validation and problem reporting


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a dataset: ``severity`` is ``"error"`` or ``"warning"``; ``kind`` is a short tag."""

    kind: str
    message: str
    severity: str = "error"

    def __str__(self) -> str:
        return f"{self.severity}: {self.message}"


_COLLECTOR: contextvars.ContextVar[list[Problem] | None] = contextvars.ContextVar("zoo_data_problems", default=None)


@contextlib.contextmanager
def collect_problems() -> Iterator[list[Problem]]:
    """While active, :func:`report_problems` records structural problems here instead of raising.

    ``zoo datasets check`` builds datasets inside this so that one missing file does not hide the others.
    """
    problems: list[Problem] = []
    token = _COLLECTOR.set(problems)
    try:
        yield problems
    finally:
        _COLLECTOR.reset(token)


def report_problems(problems: Sequence[Problem], what: str) -> None:
    """Raise ``DatasetError`` listing every error in ``problems``, or record them all under :func:`collect_problems`.

    Dataset builders call this once after indexing their files, with every problem they found, and then carry on
    without the broken items. Warnings are logged (or recorded), never raised.
    """
    collector = _COLLECTOR.get()
    if collector is not None:
        collector.extend(problems)
        return
    for p in problems:
        if p.severity != "error":
            log.warning("%s: %s", what, p.message)
    errors = [p for p in problems if p.severity == "error"]
    if errors:
        shown = "; ".join(p.message for p in errors[:5])
        more = f" (and {len(errors) - 5} more; run 'zoo datasets check' for the full list)" if len(errors) > 5 else ""
        raise DatasetError(f"{what}: {shown}{more}")


def validate_pair(image: Tensor, mask: Tensor, *, num_classes: int, ignore_index: int | None,
                  image_path: str | Path, mask_path: str | Path) -> None:
    """Check that a decoded image and mask agree in size and that every mask value is a class or ``ignore_index``.

    Raises:
        DatasetError: naming the files and the bad sizes or values.
    """
    if tuple(image.shape[-2:]) != tuple(mask.shape[-2:]):
        ih, iw = image.shape[-2:]
        mh, mw = mask.shape[-2:]
        raise DatasetError(f"image {str(image_path)!r} is {iw}x{ih} but its mask {str(mask_path)!r} is {mw}x{mh}")
    values = torch.unique(mask)
    bad = values[(values < 0) | (values >= num_classes)]
    if ignore_index is not None:
        bad = bad[bad != ignore_index]
    if bad.numel():
        allowed = f"0..{num_classes - 1}" + (f" or ignore_index {ignore_index}" if ignore_index is not None else "")
        raise DatasetError(f"mask {str(mask_path)!r} has values {bad.tolist()[:10]} outside the declared classes "
                           f"({allowed})")


# ----------------------------------------------------------------------------------------------------------------
# Caching splits


class DecodeCache:
    """A memory budget shared by the splits of one dataset: decoded items are kept while they fit.

    Args:
        budget_mb: megabytes of decoded uint8 pixels to keep; 0 disables caching.
    """

    def __init__(self, budget_mb: float = DEFAULT_CACHE_MB) -> None:
        if budget_mb < 0:
            raise DatasetError(f"cache_mb={budget_mb} must be >= 0")
        self.budget_bytes = int(budget_mb * 2**20)
        self.used_bytes = 0
        self.full = False

    def admit(self, nbytes: int) -> bool:
        """Reserve ``nbytes`` if they fit the budget."""
        if self.used_bytes + nbytes > self.budget_bytes:
            if not self.full and self.budget_bytes:
                log.info("decode cache budget of %d MB is full; further items are decoded on every access",
                         self.budget_bytes // 2**20)
            self.full = True
            return False
        self.used_bytes += nbytes
        return True


Loader = Callable[[int], tuple[Tensor, Tensor]]


class CachedSplit(Dataset):
    """A split whose items come from ``load(i) -> (uint8 image (C,H,W), integer mask (H,W))``, decoded once.

    ``split[i]`` converts to the item contract (float32 in [0, 1], int64). :meth:`raw` gives the cached uint8
    pair, which :func:`make_loader` uses so that augmentation runs on uint8 (faster) before normalisation.

    Args:
        ids: item names, in order.
        load: decodes item ``i`` (and validates it, raising ``DatasetError`` naming the file).
        cache: the shared budget; ``None`` disables caching.
        ignore_index: the dataset's void label (used as the fill value when augmentation rotates a mask).
        describe: ``describe(i)`` names item ``i``'s files for error messages.
    """

    def __init__(self, ids: Sequence[str], load: Loader, *, cache: DecodeCache | None = None,
                 ignore_index: int | None = None, describe: Callable[[int], str] | None = None) -> None:
        self.ids = list(ids)
        self._load = load
        self._cache = cache
        self._items: dict[int, tuple[Tensor, Tensor]] = {}
        self.ignore_index = ignore_index
        self.describe = describe or (lambda i: self.ids[i])

    def __len__(self) -> int:
        return len(self.ids)

    def raw(self, index: int) -> tuple[Tensor, Tensor]:
        """Item ``index`` as decoded: uint8 image ``(C, H, W)`` and integer mask ``(H, W)``."""
        if index < 0:
            index += len(self.ids)
        item = self._items.get(index)
        if item is None:
            if not 0 <= index < len(self.ids):
                raise IndexError(f"index {index} out of range for a split of {len(self.ids)} items")
            item = self._load(index)
            if self._cache is not None and self._cache.admit(item[0].nbytes + item[1].nbytes):
                self._items[index] = item
        return item

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        image, mask = self.raw(index)
        return image.float().div_(255.0), mask.long()

    @property
    def cached_items(self) -> int:
        """How many items are held in memory."""
        return len(self._items)


# ----------------------------------------------------------------------------------------------------------------
# Datasets, splits, fingerprints


def fingerprint_of(payload: Any) -> str:
    """A short stable hash (16 hex digits) of a JSON-able payload."""
    text = json.dumps(payload, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass
class BaseDataset:
    """Metadata plus fixed splits: what dataset builders return (``zoo.interfaces.SegmentationDataset``).

    Attributes:
        name: the registry name (or a label).
        in_channels, num_classes, class_names, ignore_index: the dataset contract.
        splits: split name -> split dataset (missing names are empty splits).
        split_source: where the split assignment comes from, e.g. ``"file:/data/x/split.csv"``,
            ``"seed:0 (70/15/15)"``, ``"published"`` or ``"generated:seed=0"``; benchmarks record it.
        params: the options that determine the content (for :meth:`fingerprint`).
        root: the folder read, if any.
        extras: free-form facts for ``zoo datasets check`` (e.g. ``{"fov": "fov/"}``).
    """

    name: str
    in_channels: int
    num_classes: int
    class_names: tuple[str, ...]
    ignore_index: int | None
    splits: dict[str, CachedSplit]
    split_source: str
    params: dict[str, Any] = field(default_factory=dict)
    root: str | None = None
    extras: dict[str, Any] = field(default_factory=dict)

    def split(self, name: str) -> CachedSplit:
        """The split ``name`` (``train``, ``val`` or ``test``).

        Raises:
            UnknownNameError: not a split name.
            DatasetError: the split is empty.
        """
        check_choice("split", name, SPLITS)
        split = self.splits.get(name)
        if split is None or len(split) == 0:
            raise DatasetError(f"split {name!r} of dataset {self.name!r} is empty"
                               + (f" (root {self.root!r}, split from {self.split_source})" if self.root else ""))
        return split

    def fingerprint(self, split: str | None = None) -> str:
        """Hash of the ids, their split assignment and the generation parameters (of one split, or of all)."""
        names = [split] if split is not None else list(SPLITS)
        assignment = {n: list(self.splits[n].ids) if n in self.splits else [] for n in names}
        return fingerprint_of({"name": self.name, "params": self.params, "classes": list(self.class_names),
                               "ignore_index": self.ignore_index, "splits": assignment})


def seeded_split(ids: Sequence[str], *, seed: int, fractions: tuple[float, float, float] = (0.7, 0.15, 0.15)
                 ) -> dict[str, list[str]]:
    """Deterministic train/val/test assignment of ``ids`` (sorted first, then shuffled by ``seed``)."""
    ordered = sorted(ids)
    random.Random(seed).shuffle(ordered)
    n = len(ordered)
    n_val = int(round(n * fractions[1]))
    n_test = int(round(n * fractions[2]))
    if n >= 3:
        n_val, n_test = max(n_val, 1), max(n_test, 1)
    n_train = n - n_val - n_test
    return {"train": sorted(ordered[:n_train]), "val": sorted(ordered[n_train:n_train + n_val]),
            "test": sorted(ordered[n_train + n_val:])}


def read_split_csv(path: str | Path) -> tuple[dict[str, list[str]], list[Problem]]:
    """Read an ``id,split`` CSV (header optional) into split -> ids, with any malformed lines as problems."""
    path = Path(path)
    splits: dict[str, list[str]] = {s: [] for s in SPLITS}
    problems: list[Problem] = []
    seen: dict[str, str] = {}
    for lineno, line in enumerate(path.read_text().splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = [p.strip() for p in line.split(",")]
        if lineno == 1 and parts[:2] == ["id", "split"]:
            continue
        if len(parts) != 2 or parts[1] not in SPLITS:
            problems.append(Problem("split-file", f"{str(path)!r} line {lineno}: {line!r} is not 'id,split' with "
                                                  f"split one of {', '.join(SPLITS)}"))
            continue
        if parts[0] in seen:
            problems.append(Problem("split-file", f"{str(path)!r} line {lineno}: id {parts[0]!r} is listed twice"))
            continue
        seen[parts[0]] = parts[1]
        splits[parts[1]].append(parts[0])
    return splits, problems


VOID_NAMES = frozenset({"void", "unlabelled", "unlabeled", "ignore", "background_ignore", "unknown"})


def read_classes(path: str | Path) -> tuple[list[str], list[tuple[int, int, int] | None]]:
    """Read ``classes.txt``: one class per line, ``name`` or ``name R G B`` (a colour for RGB masks)."""
    names: list[str] = []
    colors: list[tuple[int, int, int] | None] = []
    for line in Path(path).read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.replace(",", " ").split()
        if len(parts) >= 4 and all(p.isdigit() and int(p) < 256 for p in parts[-3:]):
            names.append(" ".join(parts[:-3]))
            colors.append((int(parts[-3]), int(parts[-2]), int(parts[-1])))
        else:
            names.append(line)
            colors.append(None)
    return names, colors


# ----------------------------------------------------------------------------------------------------------------
# Normalisation, transforms, loaders


def normalize_image(image: Tensor) -> Tensor:
    """Per-image, per-channel standardisation ``(x - mean) / (std + eps)`` of ``(C, H, W)`` or ``(B, C, H, W)``.

    Stateless (no dataset statistics), so an image at predict time is normalised exactly as in training.
    """
    if image.ndim not in (3, 4):
        raise ValueError(f"normalize_image expects (C, H, W) or (B, C, H, W); got shape {tuple(image.shape)}")
    image = image.float()
    std, mean = torch.std_mean(image, dim=(-2, -1), keepdim=True, correction=0)
    return (image - mean) / (std + NORMALIZE_EPS)


def build_transform(augment: str, *, train: bool, image_size: int | None, ignore_index: int | None = None
                    ) -> Callable[[Any, Any], tuple[Tensor, Tensor]] | None:
    """The joint image/mask transform for a loader, or ``None`` when there is nothing to do.

    Presets (train only): ``none`` resizes to ``image_size``; ``light`` adds horizontal/vertical flips, a small
    rotation (10 degrees) and ``RandomResizedCrop(scale=(0.5, 1))``; ``strong`` adds 90-degree-range rotations
    (30 degrees), a wider crop scale (0.25, 1) and brightness/contrast jitter. Masks are always resampled nearest;
    pixels rotated in from outside get ``ignore_index`` (or 0).
    """
    from torchvision import tv_tensors
    from torchvision.transforms import v2

    check_choice("augmentation preset", augment, AUGMENT_PRESETS)
    size = [image_size, image_size] if image_size is not None else None
    steps: list[Any] = []
    if not train or augment == "none":
        if size is not None:
            steps.append(v2.Resize(size, antialias=True))
    else:
        strong = augment == "strong"
        fill = {tv_tensors.Image: 0, tv_tensors.Mask: 0 if ignore_index is None else ignore_index}
        steps += [v2.RandomHorizontalFlip(), v2.RandomVerticalFlip(),
                  v2.RandomRotation(30 if strong else 10, interpolation=v2.InterpolationMode.BILINEAR, fill=fill)]
        if size is not None:
            steps.append(v2.RandomResizedCrop(size, scale=(0.25, 1.0) if strong else (0.5, 1.0), antialias=True))
        if strong:
            steps.append(v2.ColorJitter(brightness=0.3, contrast=0.3))
    if not steps:
        return None
    compose = v2.Compose(steps)

    def transform(image: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        out_image, out_mask = compose(tv_tensors.Image(image), tv_tensors.Mask(mask))
        return out_image.as_subclass(Tensor), out_mask.as_subclass(Tensor)

    return transform


class _LoaderDataset(Dataset):
    """Applies the transform to the uint8 items of a split (or the float items of a foreign split)."""

    def __init__(self, split: Any, transform: Callable[[Tensor, Tensor], tuple[Tensor, Tensor]] | None) -> None:
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
                drop_last: bool | None = None, sampler: Sampler | None = None) -> DataLoader:
    """A DataLoader of ``(images float32 (B, C, S, S) normalised, masks int64 (B, S, S))``.

    Args:
        split: a ``SplitDataset`` (a :class:`CachedSplit` is fastest: augmentation then runs on uint8).
        train: shuffle (seeded) and augment with ``augment``; otherwise keep the split's order, no augmentation.
        batch_size: items per batch.
        image_size: train: crop/resize to this square size; eval: resize to it (image bilinear with antialias,
            mask nearest); ``None`` keeps native sizes (use ``batch_size=1`` when sizes differ).
        augment: one of :data:`AUGMENT_PRESETS` (ignored when ``train=False``).
        seed: seeds the shuffling generator and, through it, the workers. In the main process
            (``num_workers=0``) augmentation draws from torch's global RNG, so seed it with ``torch.manual_seed``.
        num_workers: worker processes (persistent when > 0).
        pin_memory: pin batches (for CUDA).
        drop_last: default: drop the last incomplete batch when training and the split is larger than a batch.
        sampler: replaces the seeded shuffle.
    """
    check_choice("augmentation preset", augment, AUGMENT_PRESETS)
    if batch_size < 1:
        raise ValueError(f"batch_size={batch_size} must be >= 1")
    if len(split) == 0:
        raise DatasetError("cannot make a loader for an empty split")
    transform = build_transform(augment, train=train, image_size=image_size,
                                ignore_index=getattr(split, "ignore_index", None))
    generator = torch.Generator().manual_seed(seed)
    if drop_last is None:
        drop_last = train and len(split) > batch_size
    return DataLoader(
        _LoaderDataset(split, transform), batch_size=batch_size, shuffle=train and sampler is None,
        sampler=sampler, num_workers=num_workers, pin_memory=pin_memory, drop_last=drop_last,
        collate_fn=_collate, generator=generator, worker_init_fn=seed_worker if num_workers > 0 else None,
        persistent_workers=num_workers > 0,
    )


# ----------------------------------------------------------------------------------------------------------------
# Checking a whole dataset


@dataclass
class CheckReport:
    """What :func:`check_dataset` found.

    Attributes:
        problems: every error and warning, in scan order.
        counts: split -> number of items scanned.
        class_pixels: split -> per-class pixel counts (index ``num_classes`` counts ``ignore_index`` pixels).
    """

    name: str
    class_names: tuple[str, ...]
    ignore_index: int | None
    split_source: str
    problems: list[Problem] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    class_pixels: dict[str, list[int]] = field(default_factory=dict)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity != "error"]

    @property
    def ok(self) -> bool:
        return not self.errors

    def frequencies(self, split: str | None = None) -> list[float]:
        """Per-class share of labelled pixels (ignored pixels excluded), for one split or all."""
        n = len(self.class_names)
        rows = [self.class_pixels[split]] if split is not None else list(self.class_pixels.values())
        totals = [sum(r[c] for r in rows) for c in range(n)]
        labelled = sum(totals)
        return [t / labelled if labelled else math.nan for t in totals]


def check_dataset(dataset: Any, *, splits: Sequence[str] = SPLITS, limit: int | None = None,
                  problems: Sequence[Problem] = (), progress: Callable[[str, int, int], None] | None = None
                  ) -> CheckReport:
    """Load every item of every split, keep going after bad ones, and report problems and class frequencies.

    Args:
        dataset: a built ``SegmentationDataset``.
        splits: the splits to scan.
        limit: scan at most this many items per split (the fast check before a benchmark).
        problems: structural problems found while building (from :func:`collect_problems`).
        progress: called as ``progress(split, done, total)``.
    """
    n = dataset.num_classes
    ignore = dataset.ignore_index
    report = CheckReport(name=getattr(dataset, "name", "?"), class_names=tuple(dataset.class_names),
                         ignore_index=ignore, split_source=str(getattr(dataset, "split_source", "?")),
                         problems=list(problems))
    seen_ids: dict[str, str] = {}
    for split_name in splits:
        try:
            split = dataset.split(split_name)
        except DatasetError as exc:
            report.problems.append(Problem("empty-split", str(exc)))
            continue
        pixels = [0] * (n + 1)
        total = len(split) if limit is None else min(limit, len(split))
        describe = getattr(split, "describe", lambda i: split.ids[i])
        for i in range(total):
            item_id = split.ids[i]
            if item_id in seen_ids and seen_ids[item_id] != split_name:
                report.problems.append(Problem("split-overlap", f"id {item_id!r} is in both {seen_ids[item_id]!r} "
                                                                f"and {split_name!r}"))
            seen_ids[item_id] = split_name
            try:
                image, mask = split[i]
            except DatasetError as exc:
                report.problems.append(Problem("item", str(exc)))
                continue
            if not torch.isfinite(image).all():
                report.problems.append(Problem("nan", f"{describe(i)}: image has NaN/Inf values"))
                continue
            counts = torch.bincount(mask[(mask >= 0) & (mask < n)].flatten(), minlength=n)
            for c in range(n):
                pixels[c] += int(counts[c])
            pixels[n] += int(mask.numel() - counts.sum())
            if n > 1 and int(counts[1:].sum()) == 0:
                report.problems.append(Problem("all-background", f"{describe(i)}: mask is all background "
                                                                 f"({report.class_names[0]!r})", "warning"))
            if progress is not None:
                progress(split_name, i + 1, total)
        report.counts[split_name] = total
        report.class_pixels[split_name] = pixels
    return report



# ----------------------------------------------------------------------------------------------------------------
# Looking at the data


def save_preview(dataset: Any, path: str | Path, *, split: str = "train", count: int = 8, columns: int = 4,
                 alpha: float = 0.45) -> Path:
    """Save a PNG grid of the first ``count`` items of ``split`` with their masks overlaid in colour.

    Class 0 is left uncoloured; ``ignore_index`` pixels are shown hatched grey. Uses matplotlib's Agg backend.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    part = dataset.split(split)
    count = min(count, len(part))
    columns = max(1, min(columns, count))
    rows = math.ceil(count / columns)
    n = dataset.num_classes
    cmap = plt.get_cmap("tab20" if n > 10 else "tab10")
    fig, axes = plt.subplots(rows, columns, figsize=(3 * columns, 3 * rows + 0.6), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for i in range(count):
        image, mask = part[i]
        ax = axes.flat[i]
        shown = image.permute(1, 2, 0).numpy()
        ax.imshow(shown[..., 0] if shown.shape[2] == 1 else shown[..., :3], cmap="gray", vmin=0, vmax=1)
        overlay = np.zeros((*mask.shape, 4))
        m = mask.numpy()
        for c in range(1, n):
            overlay[m == c] = (*cmap(c % cmap.N)[:3], alpha)
        if dataset.ignore_index is not None:
            overlay[m == dataset.ignore_index] = (0.5, 0.5, 0.5, alpha)
        ax.imshow(overlay, interpolation="nearest")
        ax.set_title(str(part.ids[i])[:24], fontsize=8)
    handles = [Patch(color=cmap(c % cmap.N), label=str(dataset.class_names[c])) for c in range(1, n)]
    if dataset.ignore_index is not None:
        handles.append(Patch(color=(0.5, 0.5, 0.5), label=f"ignore ({dataset.ignore_index})"))
    fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 6) or 1, fontsize=8, frameon=False)
    fig.suptitle(f"{getattr(dataset, 'name', '')} / {split}", fontsize=10)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path

"""Dataset fingerprint: what a recipe needs to know about a dataset, read once from its train split.

:func:`fingerprint_dataset` reads every train item (or ``max_items`` of them, evenly spaced) and reports image
sizes, channels, intensity statistics, class pixel shares, the scale of each class's structures, the ignore
index and region of interest, and the number of items. :mod:`zoo.planner` turns it into a recipe.

Definitions (all in pixels at native resolution):

- *Objects* of a class are its 8-connected components (``scipy.ndimage.label``). ``median_area`` and
  ``median_extent`` (the longer bounding-box side) are medians over all objects of the split; ``typical_area``
  and ``typical_extent`` weight each object by its area (the object a typical pixel belongs to), which specks of
  annotation noise cannot swamp.
- *Thickness* uses one distance transform per image: ``d`` is the Euclidean distance
  (``scipy.ndimage.distance_transform_edt``) from each pixel to the nearest *boundary* pixel, a pixel with a
  4-neighbour of another label (void counts as a label; the image border does not). The medial axis is
  approximated by the centres of maximal disks: pixels whose disk (radius ``d``) is not contained in the disk
  of a same-label 8-neighbour (``d(q) >= d(p) + |p - q| - 0.7``; the tolerance drops the staircase of a
  digital boundary). ``median_thickness`` is the median of ``2 * d + 1`` over the class's axis pixels, each
  weighted by ``2 * d + 1`` (the pixels across the structure there): a median per unit of structure area
  rather than per axis pixel, so the few spurious axis points of a ragged boundary cannot outvote the centre
  of a blob. It is exactly the width of a straight band of odd width (one less for even widths), the minor
  diameter of an ellipse and the diameter of a disk, less 1-2 px for disks a few pixels across (their
  boundary pixels lie inside). Images with a single label add nothing. Values are binned at 0.5 px.
- Intensities are pooled over labelled pixels (void and outside the ROI excluded) as 256-level histograms per
  channel of the decoded uint8 images (float items are quantised): exact mean and standard deviation in
  ``[0, 1]``; percentiles by the inverted CDF (numpy's ``method="inverted_cdf"``).
- ``top_share`` / ``left_share``: the share of a class's pixels in the top / left half of their images (the
  middle row or column of an odd side is not counted). Far from 0.5 means the layout has an orientation.
- A *region of interest* is reported when the dataset was built with ``roi=True`` (the folder layout's option)
  or, from the masks alone, when at least 90% of the items have void on at least half of their border pixels
  (a field-of-view mask: scattered void labels such as CamVid's leave the border mostly labelled).

Fingerprints are cached as JSON in ``$XDG_CACHE_HOME/segzoo/fingerprints`` (default ``~/.cache/segzoo``, the
folder zoo already uses for its per-user state; decoded pixels themselves are only cached in memory), keyed by
a hash of the dataset identity (its :meth:`~zoo.data.BaseDataset.fingerprint`: name, options, classes, ignore
index and split assignment), ``max_items`` and :data:`FINGERPRINT_VERSION`. Pixel edits under the same ids are
not seen by the key: pass ``refresh=True``.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from zoo.data import fingerprint_of
from zoo.fileio import atomic_write_text

__all__ = ["FINGERPRINT_VERSION", "PERCENTILES", "ClassStats", "Fingerprint", "default_cache_dir",
           "fingerprint_dataset", "structure_stats"]

log = logging.getLogger(__name__)

FINGERPRINT_VERSION = 1
PERCENTILES = (0.5, 50.0, 99.5)
_EIGHT = np.ones((3, 3), dtype=bool)
_TOLERANCE = 0.7
_WIDTH_STEPS = 2  # thickness histogram bins per pixel
_WIDTH_BINS = 4096 * _WIDTH_STEPS + 1


@dataclass(frozen=True)
class ClassStats:
    """What one class looks like in the train split (``None`` where the class never occurs).

    Attributes:
        index: the class index in the masks.
        name: the class name.
        pixel_share: share of the labelled pixels (void excluded) that belong to the class.
        image_share: share of the items in which the class occurs.
        objects: number of 8-connected objects over the split.
        median_area: median object area.
        median_extent: median of the objects' longer bounding-box side.
        typical_area: area of the object a typical pixel of the class belongs to (area-weighted median):
            unlike ``median_area`` it is not swamped by specks of annotation noise.
        typical_extent: longer bounding-box side of that object (area-weighted median of the extents).
        median_thickness: median over the class's pixels of the local width (see the module docstring).
        top_share: share of the class's pixels in the top half of their images.
        left_share: share of the class's pixels in the left half of their images.
    """

    index: int
    name: str
    pixel_share: float
    image_share: float
    objects: int
    median_area: float | None
    median_extent: float | None
    typical_area: float | None
    typical_extent: float | None
    median_thickness: float | None
    top_share: float | None
    left_share: float | None


@dataclass(frozen=True)
class Fingerprint:
    """Facts about a dataset's train split that a recipe is derived from (see the module docstring).

    Attributes:
        version: :data:`FINGERPRINT_VERSION` when it was computed.
        dataset: the dataset's name.
        identity: hash of the dataset identity and the reading options (the cache key).
        split: the split read.
        items: number of items read.
        channels: image channels.
        num_classes: number of classes (void excluded).
        heights: (min, median, max) image height.
        widths: (min, median, max) image width.
        intensity_mean: per-channel mean in ``[0, 1]`` over labelled pixels.
        intensity_std: per-channel standard deviation.
        percentiles: the percentiles in :attr:`intensity_percentiles`.
        intensity_percentiles: per percentile, the per-channel values.
        classes: per-class statistics, in index order.
        ignore_index: the void label, or ``None``.
        ignore_share: share of all pixels that are void (outside the ROI included).
        roi: whether the dataset has a region of interest (field of view).
        roi_share: share of the pixels inside the region of interest (1.0 without one).
    """

    version: int
    dataset: str
    identity: str
    split: str
    items: int
    channels: int
    num_classes: int
    heights: tuple[int, int, int]
    widths: tuple[int, int, int]
    intensity_mean: tuple[float, ...]
    intensity_std: tuple[float, ...]
    percentiles: tuple[float, ...]
    intensity_percentiles: tuple[tuple[float, ...], ...]
    classes: tuple[ClassStats, ...]
    ignore_index: int | None
    ignore_share: float
    roi: bool
    roi_share: float

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict (tuples become lists)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Fingerprint:
        """The inverse of :meth:`to_dict`."""
        values = dict(data)
        values["classes"] = tuple(ClassStats(**c) for c in values["classes"])
        for name in ("heights", "widths", "intensity_mean", "intensity_std", "percentiles"):
            values[name] = tuple(values[name])
        values["intensity_percentiles"] = tuple(tuple(p) for p in values["intensity_percentiles"])
        return cls(**values)


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/segzoo/fingerprints`` (``~/.cache/segzoo/fingerprints`` without it)."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "segzoo" / "fingerprints"


# ----------------------------------------------------------------------------------------------------------------
# Per-image structure measurements


def _boundary(mask: np.ndarray) -> np.ndarray:
    """Pixels with a 4-neighbour of a different label."""
    edge = np.zeros(mask.shape, dtype=bool)
    vertical = mask[1:, :] != mask[:-1, :]
    horizontal = mask[:, 1:] != mask[:, :-1]
    edge[1:, :] |= vertical
    edge[:-1, :] |= vertical
    edge[:, 1:] |= horizontal
    edge[:, :-1] |= horizontal
    return edge


def _ridge(distance: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Centres of maximal disks: pixels whose disk no same-label 8-neighbour's disk contains (0.7 px tolerance)."""
    h, w = mask.shape
    padded_d = np.pad(distance, 1, constant_values=-np.inf)
    padded_m = np.pad(mask, 1, constant_values=-1)
    ridge = np.ones(mask.shape, dtype=bool)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            if dy == 0 and dx == 0:
                continue
            nd = padded_d[1 + dy:1 + dy + h, 1 + dx:1 + dx + w]
            nm = padded_m[1 + dy:1 + dy + h, 1 + dx:1 + dx + w]
            # q's disk contains p's when d(q) >= d(p) + |p - q|; the tolerance drops staircase pixels of a
            # digital boundary, whose inner neighbour is a little less than one step deeper
            ridge &= ~((nm == mask) & (nd - distance >= math.hypot(dy, dx) - _TOLERANCE))
    return ridge


def structure_stats(mask: np.ndarray, classes: Sequence[int]) -> dict[int, dict[str, np.ndarray]]:
    """Per class: object areas, object extents and per-pixel widths in one ``(H, W)`` integer mask.

    Args:
        mask: class indices (void is just another label here).
        classes: the classes to measure.

    Returns:
        class -> ``{"areas", "extents", "widths"}`` arrays (empty where the class is absent): one area and extent
        per 8-connected object, and the width ``2 * d + 1`` at each medial-axis pixel (see the module docstring).
    """
    edge = _boundary(mask)
    distance = ndimage.distance_transform_edt(~edge) if edge.any() else None
    axis = _ridge(distance, mask) if distance is not None else None
    out: dict[int, dict[str, np.ndarray]] = {}
    for c in classes:
        inside = mask == c
        if not inside.any():
            out[c] = {"areas": np.empty(0), "extents": np.empty(0), "widths": np.empty(0)}
            continue
        labels, count = ndimage.label(inside, structure=_EIGHT)
        areas = np.bincount(labels.ravel(), minlength=count + 1)[1:]
        boxes = ndimage.find_objects(labels)
        extents = np.array([max(b[0].stop - b[0].start, b[1].stop - b[1].start) for b in boxes], dtype=float)
        widths = 2 * distance[axis & inside] + 1 if distance is not None and axis is not None else np.empty(0)
        out[c] = {"areas": areas.astype(float), "extents": extents, "widths": widths}
    return out


# ----------------------------------------------------------------------------------------------------------------
# Accumulating over a split


class _Accumulator:
    """Running counts over the items of a split: histograms, so memory does not grow with the pixels read."""

    def __init__(self, num_classes: int, ignore_index: int | None, channels: int) -> None:
        k = num_classes
        self.num_classes, self.ignore_index = k, ignore_index
        self.heights: list[int] = []
        self.widths: list[int] = []
        self.intensity = np.zeros((channels, 256), np.int64)  # labelled pixels per channel and uint8 level
        self.pixels = self.ignored = self.border_void = 0
        self.counts, self.present = np.zeros(k, np.int64), np.zeros(k, np.int64)
        self.halves = np.zeros((4, k), np.int64)  # top, bottom, left, right
        self.thickness = np.zeros((k, _WIDTH_BINS))
        self.objects: dict[int, tuple[list[np.ndarray], list[np.ndarray]]] = {c: ([], []) for c in range(k)}

    def add(self, image: np.ndarray, mask: np.ndarray) -> None:
        """Add one item: ``image`` uint8 ``(C, H, W)``, ``mask`` integer ``(H, W)``."""
        h, w = mask.shape
        self.heights.append(h)
        self.widths.append(w)
        self.pixels += h * w
        void = mask == self.ignore_index if self.ignore_index is not None else np.zeros(mask.shape, dtype=bool)
        self.ignored += int(void.sum())
        border = np.concatenate([void[0], void[-1], void[1:-1, 0], void[1:-1, -1]])
        self.border_void += int(border.mean() >= 0.5)
        labelled = image[:, ~void]
        for ch in range(min(len(labelled), len(self.intensity))):
            self.intensity[ch] += np.bincount(labelled[ch], minlength=256)
        self._add_classes(np.where(void, self.num_classes, mask))

    def _add_classes(self, labels: np.ndarray) -> None:
        k, (h, w) = self.num_classes, labels.shape
        counts = np.bincount(labels.ravel(), minlength=k + 1)[:k]
        self.counts += counts
        self.present += counts > 0
        parts = (np.s_[:h // 2, :], np.s_[h - h // 2:, :], np.s_[:, :w // 2], np.s_[:, w - w // 2:])
        for row, part in enumerate(parts):
            self.halves[row] += np.bincount(labels[part].ravel(), minlength=k + 1)[:k]
        for c, found in structure_stats(labels, [c for c in range(k) if counts[c]]).items():
            self.objects[c][0].append(found["areas"])
            self.objects[c][1].append(found["extents"])
            bins = np.minimum(np.round(found["widths"] * _WIDTH_STEPS).astype(np.int64), _WIDTH_BINS - 1)
            # weighted by the width itself: the pixels across the structure at that axis point
            self.thickness[c] += np.bincount(bins, weights=found["widths"], minlength=_WIDTH_BINS)


def _histogram_quantile(counts: np.ndarray, q: float) -> int | None:
    """The smallest bin whose cumulative count reaches ``q`` of the total (numpy's ``inverted_cdf``)."""
    total = counts.sum()
    if not total:
        return None
    return int(np.searchsorted(np.cumsum(counts), q * total, side="left"))


def _weighted_median(values: np.ndarray, weights: np.ndarray) -> float | None:
    """The median of ``values`` when each counts ``weights`` times (the lower one on a tie)."""
    if not values.size:
        return None
    order = np.argsort(values, kind="stable")
    cumulative = np.cumsum(weights[order])
    return float(values[order][np.searchsorted(cumulative, 0.5 * cumulative[-1], side="left")])


def _class_stats(acc: _Accumulator, class_names: Sequence[str], items: int) -> tuple[ClassStats, ...]:
    total = acc.counts.sum()
    stats = []
    for c in range(acc.num_classes):
        areas = np.concatenate(acc.objects[c][0]) if acc.objects[c][0] else np.empty(0)
        extents = np.concatenate(acc.objects[c][1]) if acc.objects[c][1] else np.empty(0)
        width_bin = _histogram_quantile(acc.thickness[c], 0.5)
        top, bottom, left, right = acc.halves[:, c]
        stats.append(ClassStats(
            index=c, name=str(class_names[c]) if c < len(class_names) else f"class{c}",
            pixel_share=float(acc.counts[c] / total) if total else 0.0,
            image_share=float(acc.present[c] / items) if items else 0.0, objects=int(areas.size),
            median_area=float(np.median(areas)) if areas.size else None,
            median_extent=float(np.median(extents)) if extents.size else None,
            typical_area=_weighted_median(areas, areas), typical_extent=_weighted_median(extents, areas),
            median_thickness=width_bin / _WIDTH_STEPS if width_bin is not None else None,
            top_share=float(top / (top + bottom)) if top + bottom else None,
            left_share=float(left / (left + right)) if left + right else None))
    return tuple(stats)


def _intensity(acc: _Accumulator) -> tuple[tuple[float, ...], tuple[float, ...], tuple[tuple[float, ...], ...]]:
    levels = np.arange(256, dtype=np.float64) / 255.0
    means, stds, pcts = [], [], []
    for counts in acc.intensity:
        n = counts.sum()
        mean = float((counts * levels).sum() / n) if n else math.nan
        var = float((counts * (levels - mean) ** 2).sum() / n) if n else math.nan
        means.append(mean)
        stds.append(math.sqrt(var) if n else math.nan)
        pcts.append([levels[b] if (b := _histogram_quantile(counts, p / 100)) is not None else math.nan
                     for p in PERCENTILES])
    return tuple(means), tuple(stds), tuple(tuple(float(row[i]) for row in pcts) for i in range(len(PERCENTILES)))


def _sizes(values: list[int]) -> tuple[int, int, int]:
    return (min(values), round(float(np.median(values))), max(values)) if values else (0, 0, 0)


# ----------------------------------------------------------------------------------------------------------------
# The public entry point


def _identity(dataset: Any, split: str, max_items: int | None) -> str:
    method = getattr(dataset, "fingerprint", None)
    if callable(method):
        base = method(split)
    else:
        part = dataset.split(split)
        base = fingerprint_of({"name": getattr(dataset, "name", type(dataset).__name__),
                               "classes": list(dataset.class_names), "ignore_index": dataset.ignore_index,
                               "ids": list(getattr(part, "ids", range(len(part))))})
    return fingerprint_of({"dataset": base, "split": split, "max_items": max_items,
                           "version": FINGERPRINT_VERSION})


def _read_item(part: Any, index: int) -> tuple[np.ndarray, np.ndarray]:
    """Item ``index`` as (uint8 image, integer mask): the decoded pair where there is one, else quantised."""
    raw = getattr(part, "raw", None)
    image, mask = raw(index) if callable(raw) else part[index]
    array = image.numpy()
    if array.dtype != np.uint8:  # the item contract: float in [0, 1]
        array = np.clip(np.round(array.astype(np.float64) * 255.0), 0, 255).astype(np.uint8)
    return array, mask.numpy().astype(np.int64)


def _compute(dataset: Any, split: str, max_items: int | None, identity: str) -> Fingerprint:
    part = dataset.split(split)
    n = len(part)
    indices = list(range(n)) if max_items is None or max_items >= n else \
        sorted({int(i) for i in np.linspace(0, n - 1, max_items)})
    acc = _Accumulator(int(dataset.num_classes), dataset.ignore_index, int(dataset.in_channels))
    for i in indices:
        acc.add(*_read_item(part, i))
    mean, std, pct = _intensity(acc)
    declared = bool((getattr(dataset, "params", None) or {}).get("roi"))
    roi = declared or (bool(indices) and acc.ignored > 0 and acc.border_void >= 0.9 * len(indices))
    ignore_share = acc.ignored / acc.pixels if acc.pixels else 0.0
    return Fingerprint(
        version=FINGERPRINT_VERSION, dataset=str(getattr(dataset, "name", type(dataset).__name__)),
        identity=identity, split=split, items=len(indices), channels=int(dataset.in_channels),
        num_classes=int(dataset.num_classes), heights=_sizes(acc.heights), widths=_sizes(acc.widths),
        intensity_mean=mean, intensity_std=std, percentiles=PERCENTILES, intensity_percentiles=pct,
        classes=_class_stats(acc, dataset.class_names, len(indices)), ignore_index=dataset.ignore_index,
        ignore_share=ignore_share, roi=roi, roi_share=1.0 - ignore_share if roi else 1.0)


def fingerprint_dataset(dataset: Any, *, max_items: int | None = None, split: str = "train",
                        cache_dir: str | Path | None = None, cache: bool = True, refresh: bool = False
                        ) -> Fingerprint:
    """Read a dataset's train split once and describe it (see the module docstring for the definitions).

    Args:
        dataset: a built dataset (``zoo.interfaces.SegmentationDataset``).
        max_items: read at most this many items, evenly spaced over the split (``None``: all).
        split: the split to read; recipes are planned from ``train``.
        cache_dir: where fingerprints are cached (default :func:`default_cache_dir`).
        cache: read and write the cache; ``False`` always computes and writes nothing.
        refresh: compute again even when a cached fingerprint exists (and overwrite it).

    Returns:
        The dataset's :class:`Fingerprint`.

    Raises:
        ValueError: ``max_items`` is below 1.
        DatasetError: the split is empty or an item cannot be read.
    """
    if max_items is not None and max_items < 1:
        raise ValueError(f"max_items={max_items!r} must be None or at least 1")
    identity = _identity(dataset, split, max_items)
    path = Path(cache_dir if cache_dir is not None else default_cache_dir()) / f"{identity}.json"
    if cache and not refresh and path.is_file():
        try:
            return Fingerprint.from_dict(json.loads(path.read_text(encoding="utf-8")))
        except (ValueError, TypeError, KeyError) as exc:  # a file from another version: recompute it
            log.info("ignoring unreadable fingerprint cache %s (%s)", path, exc)
    result = _compute(dataset, split, max_items, identity)
    if cache:
        try:
            atomic_write_text(path, json.dumps(result.to_dict(), indent=1) + "\n")
        except OSError as exc:  # a read-only cache folder costs a recomputation next time, nothing else
            log.warning("could not cache the fingerprint in %s: %s", path, exc)
    return result

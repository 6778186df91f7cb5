"""Surface-distance metrics, in pixels: HD95, ASSD and NSD (normalized surface Dice).

For each image and scored class, the class's prediction mask and target mask (with ``ignore_index`` pixels removed
from both) are reduced to their boundaries: the mask pixels with a 4-connected neighbour outside the mask, the
outside of the image counting as outside (a binary erosion with a cross and ``border_value=0``, as MONAI's
``get_mask_edges``). ``d(P->G)`` are the Euclidean distances from each prediction boundary pixel to the nearest
target boundary pixel, ``d(G->P)`` the other way round. Then:

- ``hd95 = max(p95(d(P->G)), p95(d(G->P)))``, the 95th percentile (numpy's linear interpolation) of each directed
  set, the larger of the two (as MONAI and DeepMind's surface-distance do); lower is better;
- ``assd = (sum d(P->G) + sum d(G->P)) / (|P| + |G|)``, the mean over both boundaries; lower is better;
- ``nsd = (#{d(P->G) <= tau} + #{d(G->P) <= tau}) / (|P| + |G|)``, the share of boundary within ``tolerance``
  pixels of the other boundary (Nikolov et al., 2018); higher is better.

Empty masks: HD95 and ASSD are NaN when either mask is empty (the distance to nothing is undefined, not 0 or
inf). NSD is NaN when both are empty and 0 when exactly one is (no boundary pixel is near a missing surface).

Aggregation: there are no counts to pool, so ``compute`` returns, for every column, the mean over the images seen
of the per-image values, NaNs excluded (NaN if all were NaN). Class columns and averages follow
``zoo_metrics.base``.

How the distances are computed: exactly, in integers, on the CPU, for all images of a batch at once
(``BoundaryDistances``). A boundary pixel with a pixel of the other boundary in its 3x3 neighbourhood has
squared distance 0, 1 or 2, the three smallest on the grid. For the others, the other boundary's pixels of every
image are stacked into one point set, each image moved ``2 (H + W)`` rows below the previous one (further from
every other image than any two pixels of one image can be); one k-d tree (``scipy.spatial.cKDTree``, exact
nearest neighbours) per direction then finds each one's nearest pixel of the other boundary, always in its own
image (only images holding both boundaries are stacked). The squared distance is recomputed from the integer
coordinates. The cost grows with the boundary pixels (``B log B``), not with their number times the image width
as a brute-force pass over columns does. One computation per batch (all scored classes stacked) serves
``hd95``, ``assd`` and ``nsd`` alike (``BATCH_CACHE``, see ``zoo_metrics.base``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import torch
from scipy.spatial import cKDTree
from torch import Tensor

from zoo_metrics.base import BATCH_CACHE, ClassColumns, check_masks, nanmean_columns

__all__ = ["SURFACE_KINDS", "BoundaryDistances", "SurfaceMetric", "batch_distances", "boundaries"]

SurfaceKind = Literal["hd95", "assd", "nsd"]
SURFACE_KINDS: tuple[SurfaceKind, ...] = ("hd95", "assd", "nsd")
_CHUNK = 1 << 20  # boundary pixels queried at once: bounds the memory of the answers


def boundaries(masks: np.ndarray) -> np.ndarray:
    """Boundary pixels of boolean masks ``(N, H, W)``: mask pixels with a 4-neighbour outside (or off the image)."""
    inner = masks.copy()
    inner[:, 1:] &= masks[:, :-1]
    inner[:, :-1] &= masks[:, 1:]
    inner[:, :, 1:] &= masks[:, :, :-1]
    inner[:, :, :-1] &= masks[:, :, 1:]
    inner[:, [0, -1]] = False  # the outside of the image counts as outside the mask
    inner[:, :, [0, -1]] = False
    return masks & ~inner


# the neighbours of a pixel at squared distance 0, 1 and 2, the three smallest on the pixel grid
_RINGS = ((2, ((-1, -1), (-1, 1), (1, -1), (1, 1))), (1, ((-1, 0), (1, 0), (0, -1), (0, 1))), (0, ((0, 0),)))


def _near(target: np.ndarray, image: np.ndarray, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Squared distance from pixels ``(image, i, j)`` to the nearest ``target`` pixel where it is 0, 1 or 2 (a
    look at the 3x3 neighbourhood), -1 where it is larger."""
    padded = np.pad(target, ((0, 0), (1, 1), (1, 1)))
    out = np.full(i.size, -1, dtype=np.int64)
    for squared, steps in _RINGS:  # the nearer ring is written last
        hit = np.zeros(i.size, dtype=bool)
        for di, dj in steps:
            hit |= padded[image, i + 1 + di, j + 1 + dj]
        out[hit] = squared
    return out


def _squared_distances(source: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Squared distance (int64) from each ``source`` pixel to the nearest ``target`` pixel of the same image.

    Both ``(N, H, W)`` boolean; every image must hold a ``target`` pixel. Returns the distances and each one's
    image index, grouped by image in increasing order (``np.nonzero``'s order).
    """
    n, h, w = target.shape
    image, i, j = np.nonzero(source)
    out = _near(target, image, i, j)
    far = np.flatnonzero(out < 0)  # half of the 64 px benchmark's boundary pixels, an eighth at 512 px
    if far.size:
        # image k moved 2 (H + W) k rows down: further from every other image than any two pixels of one image,
        # so the nearest target pixel is always in the source pixel's own image
        stride = 2 * (h + w)
        timage, ti, tj = np.nonzero(target)
        others = np.stack([ti + timage * stride, tj], axis=1)
        points = np.stack([i[far] + image[far] * stride, j[far]], axis=1)
        # an unbalanced, uncompacted tree builds about 1.5x faster here and answers the same (exact) queries
        tree = cKDTree(others, balanced_tree=False, compact_nodes=False)
        for s in range(0, far.size, _CHUNK):
            part = points[s:s + _CHUNK]
            offset = part - others[tree.query(part)[1]]
            out[far[s:s + _CHUNK]] = np.einsum("ij,ij->i", offset, offset)
    return out, image


class _Directed:
    """One direction's distances, sorted within each image, with each image's count and start offset."""

    def __init__(self, squared: np.ndarray, image: np.ndarray, n: int) -> None:
        key = image * (int(squared.max()) + 1 if squared.size else 1) + squared  # exact: integers
        self.image = image  # already in increasing order (np.nonzero's)
        self.values = np.sqrt(squared[np.argsort(key, kind="stable")].astype(np.float64))
        self.counts = np.bincount(image, minlength=n)
        self.starts = np.cumsum(self.counts) - self.counts

    def percentile(self, q: float) -> np.ndarray:
        """Per-image percentile, numpy's ``linear`` method step by step (the same float operations)."""
        counts = np.maximum(self.counts, 1)
        virtual = (counts - 1) * q
        previous = np.floor(virtual)
        gamma = virtual - previous
        a = self.values[self.starts + previous.astype(np.int64)]
        b = self.values[self.starts + np.minimum(previous.astype(np.int64) + 1, counts - 1)]
        diff = b - a
        return np.where(gamma >= 0.5, b - diff * (1 - gamma), a + diff * gamma)

    def sums(self) -> np.ndarray:
        return np.bincount(self.image, weights=self.values, minlength=self.counts.size)

    def within(self, tolerance: float) -> np.ndarray:
        return np.bincount(self.image[self.values <= tolerance], minlength=self.counts.size)


class BoundaryDistances:
    """Both directed boundary distances of one class, for every image of a batch; the three scores from them.

    Args:
        pred_edges: prediction boundaries, boolean ``(N, H, W)`` (see :func:`boundaries`).
        target_edges: target boundaries, same shape.
    """

    def __init__(self, pred_edges: np.ndarray, target_edges: np.ndarray) -> None:
        self.pred_count = np.count_nonzero(pred_edges, axis=(1, 2))  # |P| per image
        self.target_count = np.count_nonzero(target_edges, axis=(1, 2))  # |G| per image
        self._paired = np.flatnonzero((self.pred_count > 0) & (self.target_count > 0))
        p, g = pred_edges, target_edges
        if self._paired.size < pred_edges.shape[0]:  # leave out images without both boundaries
            p, g = pred_edges[self._paired], target_edges[self._paired]
        m = self._paired.size
        empty = (np.zeros(0, np.int64), np.zeros(0, np.int64))
        # d(P->G) and d(G->P), indexed by position among the images where both boundaries exist
        self.to_target = _Directed(*(_squared_distances(p, g) if m else empty), m)
        self.to_pred = _Directed(*(_squared_distances(g, p) if m else empty), m)

    def score(self, kind: SurfaceKind, *, tolerance: float = 2.0) -> np.ndarray:
        """Per-image ``kind`` (float64 ``(N,)``) with the module docstring's NaN rules."""
        out = np.full(self.pred_count.size, np.nan)
        if kind == "nsd":  # no boundary pixel is near a missing surface: 0 when exactly one mask is empty
            out[(self.pred_count > 0) | (self.target_count > 0)] = 0.0
        elif kind not in SURFACE_KINDS:
            raise ValueError(f"kind={kind!r} is not one of {SURFACE_KINDS}")
        if not self._paired.size:
            return out
        to_target, to_pred = self.to_target, self.to_pred
        if kind == "hd95":
            out[self._paired] = np.maximum(to_target.percentile(0.95), to_pred.percentile(0.95))
            return out
        total = to_target.counts + to_pred.counts
        if kind == "assd":
            out[self._paired] = (to_target.sums() + to_pred.sums()) / total
        else:
            out[self._paired] = (to_target.within(tolerance) + to_pred.within(tolerance)) / total
        return out


def batch_distances(
    pred: Tensor, target: Tensor, *, num_classes: int, ignore_index: int | None, classes: tuple[int, ...]
) -> BoundaryDistances:
    """Checked ``BoundaryDistances`` of ``classes`` in masks ``(N, H, W)``, ``ignore_index`` pixels removed.

    The classes are stacked class-major: class ``classes[k]`` of image ``i`` is entry ``k * N + i``. Computed
    once per batch for every surface metric that scores it (read-only).

    Raises:
        ValueError, DatasetError: as ``check_masks``.
    """

    def compute() -> BoundaryDistances:
        check_masks(pred, target, num_classes=num_classes, ignore_index=ignore_index)
        pred_np, target_np = pred.cpu().numpy(), target.cpu().numpy()
        wanted = np.array(classes).reshape(-1, 1, 1, 1)
        pred_masks, target_masks = pred_np[None] == wanted, target_np[None] == wanted  # (classes, N, H, W)
        if ignore_index is not None:
            valid = target_np != ignore_index
            pred_masks &= valid
            target_masks &= valid
        shape = (-1, *pred_np.shape[1:])
        return BoundaryDistances(boundaries(pred_masks.reshape(shape)), boundaries(target_masks.reshape(shape)))

    return BATCH_CACHE.get(pred, target, ("surface", num_classes, ignore_index, classes), compute)


class SurfaceMetric:
    """HD95, ASSD or NSD per class and class-averaged, per image; pooled as the mean over images (NaNs excluded).

    Args:
        kind: which score (see the module docstring).
        num_classes: number of classes (2 for a binary task).
        ignore_index: target value of pixels to remove from both masks, or ``None``.
        class_names: names for the per-class columns.
        include_background: score class 0 too (``None``: only for multi-class tasks).
        tolerance: NSD's tolerance in pixels (a boundary pixel counts if its distance is ``<= tolerance``).
    """

    def __init__(
        self, kind: SurfaceKind, *, num_classes: int, ignore_index: int | None = None,
        class_names: Sequence[str] | None = None, include_background: bool | None = None, tolerance: float = 2.0,
    ) -> None:
        if kind not in SURFACE_KINDS:
            raise ValueError(f"kind={kind!r} is not one of {SURFACE_KINDS}")
        if tolerance < 0:
            raise ValueError(f"tolerance={tolerance} must be >= 0 pixels")
        self.kind = kind
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.tolerance = float(tolerance)
        self.columns = ClassColumns(kind, num_classes=num_classes, class_names=class_names,
                                    include_background=include_background)
        self.reset()

    def reset(self) -> None:
        """Forget everything seen."""
        self._seen: list[dict[str, Tensor]] = []

    @torch.no_grad()
    def update(self, pred: Tensor, target: Tensor) -> dict[str, Tensor]:
        """Add a batch; return its per-image values (float64 ``(N,)`` CPU tensors per column)."""
        classes = self.columns.classes
        values = np.full((pred.shape[0], self.num_classes), np.nan)
        if pred.numel() == 0:  # no pixels, no surfaces: NaN
            check_masks(pred, target, num_classes=self.num_classes, ignore_index=self.ignore_index)
        else:
            distances = batch_distances(pred, target, num_classes=self.num_classes, ignore_index=self.ignore_index,
                                        classes=classes)
            values[:, classes] = distances.score(self.kind, tolerance=self.tolerance).reshape(len(classes), -1).T
        columns = self.columns.columns(torch.from_numpy(values))
        self._seen.append(columns)
        return columns

    def compute(self) -> dict[str, float]:
        """Mean over the images seen of each column, NaNs excluded (NaN when nothing defined was seen)."""
        names = [self.columns.metric, *self.columns.class_columns]
        if not self._seen:
            return {name: float("nan") for name in names}
        return {name: float(nanmean_columns(torch.cat([batch[name] for batch in self._seen]))) for name in names}


def hd95(
    *, num_classes: int, ignore_index: int | None = None, class_names: Sequence[str] | None = None,
    include_background: bool | None = None,
) -> SurfaceMetric:
    """95th-percentile symmetric Hausdorff distance in pixels; NaN if either mask is empty."""
    return SurfaceMetric("hd95", num_classes=num_classes, ignore_index=ignore_index, class_names=class_names,
                         include_background=include_background)


def assd(
    *, num_classes: int, ignore_index: int | None = None, class_names: Sequence[str] | None = None,
    include_background: bool | None = None,
) -> SurfaceMetric:
    """Average symmetric surface distance in pixels; NaN if either mask is empty."""
    return SurfaceMetric("assd", num_classes=num_classes, ignore_index=ignore_index, class_names=class_names,
                         include_background=include_background)


def nsd(
    *, num_classes: int, ignore_index: int | None = None, class_names: Sequence[str] | None = None,
    include_background: bool | None = None, tolerance: float = 2.0,
) -> SurfaceMetric:
    """Normalized surface Dice: boundary share within `tolerance` pixels; 0 if one mask empty, NaN if both."""
    return SurfaceMetric("nsd", num_classes=num_classes, ignore_index=ignore_index, class_names=class_names,
                         include_background=include_background, tolerance=tolerance)

"""Surface-distance metrics, in pixels: HD95, ASSD and NSD (normalized surface Dice).

For each image and scored class, the class's prediction mask and target mask (with ``ignore_index`` pixels removed
from both) are reduced to their boundaries: the mask pixels with a 4-connected neighbour outside the mask, the
outside of the image counting as outside (scipy ``binary_erosion`` with a cross and ``border_value=0``, as MONAI's
``get_mask_edges``). ``d(P->G)`` are the Euclidean distances from each prediction boundary pixel to the nearest
target boundary pixel (from a distance transform), ``d(G->P)`` the other way round. Then:

- ``hd95 = max(p95(d(P->G)), p95(d(G->P)))``, the 95th percentile (numpy's linear interpolation) of each directed
  set, the larger of the two (as MONAI and DeepMind's surface-distance do); lower is better;
- ``assd = (sum d(P->G) + sum d(G->P)) / (|P| + |G|)``, the mean over both boundaries; lower is better;
- ``nsd = (#{d(P->G) <= tau} + #{d(G->P) <= tau}) / (|P| + |G|)``, the share of boundary within ``tolerance``
  pixels of the other boundary (Nikolov et al., 2018); higher is better.

Empty masks: HD95 and ASSD are NaN when either mask is empty (the distance to nothing is undefined, not 0 or
inf). NSD is NaN when both are empty and 0 when exactly one is (no boundary pixel is near a missing surface).

Aggregation: there are no counts to pool, so ``compute`` returns, for every column, the mean over the images seen
of the per-image values, NaNs excluded (NaN if all were NaN). Class columns and averages follow
``zoo_metrics.base``. Distances are computed on the CPU with scipy, cropped to the boxes around both boundaries.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import torch
from scipy import ndimage
from torch import Tensor

from zoo_metrics.base import ClassColumns, check_masks, nanmean_columns

__all__ = ["SURFACE_KINDS", "SurfaceMetric", "boundaries", "surface_distances", "surface_score"]

SurfaceKind = Literal["hd95", "assd", "nsd"]
SURFACE_KINDS: tuple[SurfaceKind, ...] = ("hd95", "assd", "nsd")
_CROSS = ndimage.generate_binary_structure(2, 1)


def boundaries(masks: np.ndarray) -> np.ndarray:
    """Boundary pixels of boolean masks ``(N, H, W)``: mask pixels with a 4-neighbour outside (or off the image)."""
    # A (1, 3, 3) structure erodes every image on its own in one call.
    return masks & ~ndimage.binary_erosion(masks, structure=_CROSS[None], border_value=0)


def surface_distances(pred_edge: np.ndarray, target_edge: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Distances ``d(P->G)``, ``d(G->P)`` between two boundary masks ``(H, W)``; ``None`` if either is empty."""
    if not (pred_edge.any() and target_edge.any()):
        return None
    union = pred_edge | target_edge
    rows, cols = np.any(union, axis=1), np.any(union, axis=0)
    # Every boundary pixel lies in this box, so distances computed inside it are exact.
    r0, r1 = np.flatnonzero(rows)[[0, -1]]
    c0, c1 = np.flatnonzero(cols)[[0, -1]]
    p, g = pred_edge[r0:r1 + 1, c0:c1 + 1], target_edge[r0:r1 + 1, c0:c1 + 1]
    to_target = ndimage.distance_transform_edt(~g)[p]
    to_pred = ndimage.distance_transform_edt(~p)[g]
    return to_target, to_pred


def surface_score(kind: SurfaceKind, pred_edge: np.ndarray, target_edge: np.ndarray, tolerance: float) -> float:
    """One image's and class's score from its two boundary masks (NaN rules in the module docstring)."""
    distances = surface_distances(pred_edge, target_edge)
    if distances is None:
        if kind == "nsd" and (pred_edge.any() or target_edge.any()):
            return 0.0
        return float("nan")
    to_target, to_pred = distances
    if kind == "hd95":
        return float(max(np.percentile(to_target, 95), np.percentile(to_pred, 95)))
    total = to_target.size + to_pred.size
    if kind == "assd":
        return float((to_target.sum() + to_pred.sum()) / total)
    if kind == "nsd":
        return float((np.count_nonzero(to_target <= tolerance) + np.count_nonzero(to_pred <= tolerance)) / total)
    raise ValueError(f"kind={kind!r} is not one of {SURFACE_KINDS}")


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
        check_masks(pred, target, num_classes=self.num_classes, ignore_index=self.ignore_index)
        pred_np, target_np = pred.cpu().numpy(), target.cpu().numpy()
        valid = target_np != self.ignore_index if self.ignore_index is not None else np.ones(target_np.shape, bool)
        values = np.full((pred_np.shape[0], self.num_classes), np.nan)
        for c in self.columns.classes:
            pred_edges = boundaries((pred_np == c) & valid)
            target_edges = boundaries((target_np == c) & valid)
            for i in range(pred_np.shape[0]):
                values[i, c] = surface_score(self.kind, pred_edges[i], target_edges[i], self.tolerance)
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

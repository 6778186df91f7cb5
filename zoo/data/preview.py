"""Looking at the data: the PNG grid of images with their masks overlaid that ``zoo datasets show`` writes."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["save_preview"]


def _overlay(mask: np.ndarray, num_classes: int, ignore_index: int | None, cmap: Any, alpha: float) -> np.ndarray:
    """An RGBA ``(H, W, 4)`` layer colouring classes 1.. by ``cmap`` and ``ignore_index`` grey."""
    overlay = np.zeros((*mask.shape, 4))
    for c in range(1, num_classes):
        overlay[mask == c] = (*cmap(c % cmap.N)[:3], alpha)
    if ignore_index is not None:
        overlay[mask == ignore_index] = (0.5, 0.5, 0.5, alpha)
    return overlay


def save_preview(dataset: Any, path: str | Path, *, split: str = "train", count: int = 8, columns: int = 4,
                 alpha: float = 0.45) -> Path:
    """Save a PNG grid of the first ``count`` items of ``split`` with their masks overlaid in colour.

    Class 0 is left uncoloured; ``ignore_index`` pixels are shown hatched grey. Uses matplotlib's Agg backend.

    Args:
        dataset: a built ``SegmentationDataset``.
        path: the PNG to write (its folder is created).
        split: the split to show.
        count: how many items (at most the split's size).
        columns: items per row.
        alpha: opacity of the mask colours.

    Returns:
        ``path``, as a ``Path``.
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
        ax.imshow(_overlay(mask.numpy(), n, dataset.ignore_index, cmap, alpha), interpolation="nearest")
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

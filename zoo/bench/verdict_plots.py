"""Plots of the verdicts (issue 13): an all-pairs significance map and a blob plot of bootstrap ranks per dataset.

- ``pairs_<dataset>.png``: variants x variants, each cell the recipe verdict of the row variant against the
  column variant (better, worse, no verdict, too few seeds or images) with its Holm-adjusted p.
- ``ranks_<dataset>.png`` (challengeR's blob plot, Wiesenfarth et al. 2021): per variant, in point-rank order, a
  disc for every rank it took in the bootstrap, its area the share of replicates; the black dot is the median
  rank and the line the 95% rank interval.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from zoo.bench.plots import _pyplot, _save
from zoo.bench.ranking import significance_map

__all__ = ["significance_plot", "blob_plot", "VERDICT_COLOURS"]

VERDICT_COLOURS = {"better": "#55a868", "worse": "#c44e52", "no verdict": "#dddddd", "too few": "#f2f2f2"}


def _verdict_key(verdict: object) -> str:
    text = str(verdict)
    return "too few" if text.startswith("too few") else text if text in VERDICT_COLOURS else "no verdict"


def significance_plot(pairs: pd.DataFrame, dataset: str, path: Path, *, order: list[str] | None = None
                      ) -> Path | None:
    """The all-pairs recipe verdicts of ``dataset`` (:func:`zoo.bench.ranking.pairwise_verdicts`) as a map.

    Args:
        order: the variants' order on both axes (default: as in ``pairs``), e.g. by point rank.
    """
    if pairs.empty or not (pairs["dataset"] == dataset).any():
        return None
    verdicts = significance_map(pairs, dataset=dataset, value="verdict")
    p_adjusted = significance_map(pairs, dataset=dataset, value="p_adjusted")
    names = [n for n in (order or list(verdicts.index)) if n in verdicts.index]
    verdicts, p_adjusted = verdicts.loc[names, names], p_adjusted.loc[names, names]
    plt = _pyplot()
    size = 1.2 + 0.55 * len(names)
    fig, ax = plt.subplots(figsize=(size + 1.5, size))
    keys = list(VERDICT_COLOURS)
    codes = np.array([[keys.index(_verdict_key(v)) if a != b else -1 for b, v in zip(names, row)]
                      for a, row in zip(names, verdicts.to_numpy())])
    from matplotlib.colors import ListedColormap

    cmap = ListedColormap(["white", *VERDICT_COLOURS.values()])
    ax.imshow(codes + 1, cmap=cmap, vmin=0, vmax=len(keys), interpolation="nearest")
    for i, j in np.ndindex(codes.shape):
        if i != j and np.isfinite(p_adjusted.iat[i, j]):
            ax.text(j, i, f"{p_adjusted.iat[i, j]:.2f}", ha="center", va="center", fontsize=6)
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right", fontsize=7)
    ax.set_yticks(range(len(names)), names, fontsize=7)
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in VERDICT_COLOURS.values()]
    ax.legend(handles, [f"row {k} than column" if k in ("better", "worse") else
                        ("too few seeds or images" if k == "too few" else k) for k in keys],
              loc="upper left", bbox_to_anchor=(1.02, 1), fontsize=7)
    ax.set_title(f"{dataset}: recipe verdicts of all pairs (Holm-adjusted p)", fontsize=9)
    return _save(fig, path)


def blob_plot(frequencies: pd.DataFrame, ranks: pd.DataFrame, dataset: str, path: Path) -> Path | None:
    """challengeR's blob plot of ``dataset``'s bootstrap ranks (``frequencies``/``ranks``: the analysis's
    ``rank_frequencies`` and ``ranks`` tables)."""
    mine = ranks[ranks["dataset"] == dataset].sort_values("rank", kind="stable")
    if mine.empty:
        return None
    freq = frequencies[frequencies["dataset"] == dataset]
    names = list(mine["variant"])
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(1.5 + 0.6 * len(names), 3.8))
    for x, (_, row) in enumerate(mine.iterrows()):
        blobs = freq[freq["variant"] == row["variant"]]
        ax.scatter(np.full(len(blobs), x), blobs["rank"], s=600 * blobs["share"], color="#4c72b0", alpha=0.6,
                   edgecolors="none")
        ax.plot([x, x], [row["rank_low"], row["rank_high"]], color="black", linewidth=1)
        ax.scatter([x], [row["median_rank"]], color="black", s=12, zorder=3)
    ax.set_xticks(range(len(names)), names, rotation=30, ha="right", fontsize=7)
    ax.set_ylim(len(names) + 0.5, 0.5)
    ax.set_yticks(range(1, len(names) + 1))
    ax.set_ylabel("rank (1 = best)")
    ax.grid(axis="y", alpha=0.3)
    ax.set_title(f"{dataset}: bootstrap ranks (area = share; dot = median; line = 95% interval)", fontsize=9)
    return _save(fig, path)

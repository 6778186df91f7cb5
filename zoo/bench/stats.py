"""Statistics of a leaderboard: bootstrap intervals and paired comparisons (definitions in the README).

- ``bootstrap_ci``: a 95% percentile bootstrap interval over test images and seeds: each of ``n_boot``
  replicates resamples the seeds and (independently) the test images with replacement and takes the mean over
  resampled seeds of the NaN-mean over resampled images. The generator is seeded from names
  (:func:`seeded_rng`), so the interval is reproducible.
- ``paired_comparison`` matches each variant's per-image scores with the baseline's (same dataset, axis values,
  seed and image) and runs a two-sided Wilcoxon signed-rank test on the differences.
"""

from __future__ import annotations

import math
import warnings
import zlib
from collections.abc import Sequence

import numpy as np
import pandas as pd

__all__ = ["N_BOOT", "seeded_rng", "bootstrap_ci", "paired_comparison"]

N_BOOT = 1000


def seeded_rng(*key: str) -> np.random.Generator:
    """A generator seeded from names (dataset, variant, column), so every statistic is reproducible."""
    return np.random.default_rng([0, zlib.crc32("\x1f".join(key).encode())])


def bootstrap_ci(values: np.ndarray, rng: np.random.Generator, *, n_boot: int = N_BOOT,
                 level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap of the seed-mean of per-image NaN-means, resampling seeds and images.

    Args:
        values: ``(seeds, images)``; NaN where a value is undefined.
    """
    values = np.asarray(values, dtype=float)
    if values.size == 0 or np.isnan(values).all():
        return math.nan, math.nan
    n_seeds, n_images = values.shape
    seeds = rng.integers(0, n_seeds, (n_boot, n_seeds))
    images = rng.integers(0, n_images, (n_boot, n_images))
    samples = values[seeds[:, :, None], images[:, None, :]]  # (n_boot, seeds, images)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # "Mean of empty slice" for all-NaN resamples
        stats = np.nanmean(np.nanmean(samples, axis=2), axis=1)
    stats = stats[~np.isnan(stats)]
    if stats.size == 0:
        return math.nan, math.nan
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(stats, [tail, 100 - tail])
    return float(low), float(high)


def paired_comparison(runs: pd.DataFrame, per_image: pd.DataFrame, *, baseline: str, metric: str,
                      axes: Sequence[str] = ()) -> pd.DataFrame:
    """Wilcoxon signed-rank tests of every variant against ``baseline`` (a model name) on per-image scores.

    Returns one row per (dataset, variant): pairs used, both means over the pairs, the mean difference
    (variant minus baseline) and the two-sided p-value (NaN when there are no non-zero differences).
    """
    from scipy.stats import wilcoxon

    columns = ["dataset", "metric", "baseline", "variant", "n_pairs", "baseline_mean", "variant_mean",
               "mean_difference", "p_value", "significant_0.05"]
    if runs.empty or per_image.empty or not baseline:
        return pd.DataFrame(columns=columns)
    ok = runs[runs["status"] == "ok"]
    scores = per_image[(per_image["metric"] == metric) & per_image["cell_id"].isin(ok["cell_id"])]
    meta_cols = ["cell_id", "dataset", "model", "variant", "seed", *axes]
    scores = scores[["cell_id", "image_id", "value"]].merge(ok[meta_cols], on="cell_id")
    rows = []
    for dataset, frame in scores.groupby("dataset", sort=True):
        base = frame[frame["model"] == baseline]
        if base.empty:
            continue
        join = ["seed", "image_id", *axes]
        for variant, other in frame[frame["model"] != baseline].groupby("variant", sort=True):
            pairs = other.merge(base, on=join, suffixes=("", "_base")).dropna(subset=["value", "value_base"])
            diff = (pairs["value"] - pairs["value_base"]).to_numpy()
            p_value = math.nan
            if len(diff) and np.any(diff != 0):
                p_value = float(wilcoxon(diff, zero_method="wilcox", alternative="two-sided").pvalue)
            rows.append({"dataset": dataset, "metric": metric, "baseline": pairs["variant_base"].iloc[0]
                         if len(pairs) else baseline, "variant": variant, "n_pairs": len(diff),
                         "baseline_mean": float(pairs["value_base"].mean()) if len(diff) else math.nan,
                         "variant_mean": float(pairs["value"].mean()) if len(diff) else math.nan,
                         "mean_difference": float(diff.mean()) if len(diff) else math.nan,
                         "p_value": p_value,
                         "significant_0.05": bool(p_value < 0.05) if not math.isnan(p_value) else False})
    return pd.DataFrame(rows, columns=columns)

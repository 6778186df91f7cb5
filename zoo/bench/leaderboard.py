"""Leaderboard statistics from cell records: per-dataset tables, the overall ranking and paired comparisons.

Definitions (also in the README):

- A cell's score for a metric column is the mean of its per-image test values, NaN images left out.
- ``<col>_mean`` and ``<col>_std`` are the mean and sample standard deviation (ddof 1) of that score over the
  seeds whose cell is ``ok``; ``n_seeds`` counts them.
- ``<col>_ci_low``/``<col>_ci_high``: a 95% percentile bootstrap interval over test images and seeds: each of
  ``n_boot`` replicates resamples the seeds and (independently) the test images with replacement and takes the
  mean over resampled seeds of the NaN-mean over resampled images. The generator is seeded from the dataset,
  variant and column names, so the interval is reproducible.
- ``rank`` orders the variants of a dataset by the main metric's mean (1 = best; direction from the metric).
  The overall table ranks variants by their mean rank across datasets.
- The paired comparison matches each variant's per-image scores with the baseline's (same dataset, axis values,
  seed and image) and runs a two-sided Wilcoxon signed-rank test on the differences.
"""

from __future__ import annotations

import math
import warnings
import zlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["leaderboard_table", "overall_table", "paired_comparison", "bootstrap_ci", "COST_COLUMNS",
           "metric_columns", "N_BOOT"]

N_BOOT = 1000
COST_COLUMNS = ("n_parameters", "gmacs", "train_seconds", "infer_images_per_s", "infer_latency_ms",
                "peak_memory_mb")
_KEYS = ("dataset", "variant")


def metric_columns(runs: pd.DataFrame, metric_names: Sequence[str]) -> list[str]:
    """The per-image-mean metric columns of ``runs`` (not ``_pooled``), in table order."""
    return [c for c in runs.columns if c.split("/")[0] in metric_names and not c.endswith("_pooled")]


def _rng(*key: str) -> np.random.Generator:
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


def _rank(values: pd.Series, higher_is_better: bool) -> pd.Series:
    return values.rank(ascending=not higher_is_better, method="min", na_option="keep")


def leaderboard_table(runs: pd.DataFrame, per_image: pd.DataFrame, *, metric_names: Sequence[str],
                      main_metric: str, higher_is_better: Mapping[str, bool], n_boot: int = N_BOOT
                      ) -> pd.DataFrame:
    """One row per (dataset, variant): seeds, metric mean/std/CI, pooled means, cost means and rank.

    Args:
        runs: ``runs.csv`` as a DataFrame (every status; only ``ok`` rows are scored).
        per_image: ``per_image.csv`` (cell_id, image_id, metric, value).
        metric_names: the metric families to report (``dice``, ``iou``...).
        main_metric: the column that ranks.
    """
    ok = runs[runs["status"] == "ok"]
    columns = metric_columns(runs, metric_names)
    ok_cells = per_image[per_image["cell_id"].isin(ok["cell_id"])]
    by_cell_metric = {key: frame for key, frame in ok_cells.groupby(["cell_id", "metric"], sort=False)}
    rows: list[dict[str, Any]] = []
    for (dataset, variant), group in runs.groupby(list(_KEYS), sort=True):
        good = group[group["status"] == "ok"]
        row: dict[str, Any] = {"dataset": dataset, "model": group["model"].iloc[0], "variant": variant,
                               "n_seeds": len(good), "n_cells": len(group),
                               "n_failed": int((group["status"] != "ok").sum())}
        for column in columns:
            row[f"{column}_mean"] = good[column].mean() if len(good) else math.nan
            row[f"{column}_std"] = good[column].std() if len(good) else math.nan
            series = []
            for cell_id in good["cell_id"]:
                frame = by_cell_metric.get((cell_id, column))
                if frame is not None:
                    series.append(frame.set_index("image_id")["value"])
            if series:
                matrix = pd.concat(series, axis=1).T.to_numpy(dtype=float)
                low, high = bootstrap_ci(matrix, _rng(str(dataset), str(variant), column), n_boot=n_boot)
            else:
                low, high = math.nan, math.nan
            row[f"{column}_ci_low"], row[f"{column}_ci_high"] = low, high
            pooled = f"{column}_pooled"
            if pooled in runs.columns:
                row[f"{pooled}_mean"] = good[pooled].mean() if len(good) else math.nan
        for cost in COST_COLUMNS:
            if cost in runs.columns:
                row[cost] = good[cost].mean() if len(good) else math.nan
        rows.append(row)
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    key = f"{main_metric}_mean"
    higher = higher_is_better.get(main_metric.split("/")[0], True)
    table["rank"] = (table.groupby("dataset")[key].transform(lambda s: _rank(s, higher))
                     if key in table.columns else math.nan)
    table["rank"] = table["rank"].astype("Int64")  # written as 1, 2, ... (empty when unranked)
    table = table.sort_values(["dataset", "rank", "variant"], na_position="last").reset_index(drop=True)
    front = ["dataset", "rank", "model", "variant", "n_seeds", "n_cells", "n_failed"]
    return table[front + [c for c in table.columns if c not in front]]


def overall_table(board: pd.DataFrame, *, main_metric: str) -> pd.DataFrame:
    """Variants ranked by mean rank across datasets (a variant missing on a dataset is ranked there last)."""
    if board.empty:
        return pd.DataFrame(columns=["overall_rank", "variant", "model", "mean_rank", "n_datasets"])
    datasets = sorted(board["dataset"].unique())
    ranks = board.pivot_table(index="variant", columns="dataset", values="rank", aggfunc="first")
    ranks = ranks.reindex(columns=datasets)
    worst = {d: board[board["dataset"] == d]["variant"].nunique() for d in datasets}
    filled = ranks.fillna(pd.Series(worst))
    key = f"{main_metric}_mean"
    scores = board.pivot_table(index="variant", columns="dataset", values=key, aggfunc="first") \
        if key in board.columns else pd.DataFrame(index=ranks.index)
    out = pd.DataFrame({"variant": ranks.index,
                        "model": [board[board["variant"] == v]["model"].iloc[0] for v in ranks.index],
                        "mean_rank": filled.mean(axis=1).to_numpy(),
                        "n_datasets": ranks.notna().sum(axis=1).to_numpy()})
    for dataset in datasets:
        out[f"rank/{dataset}"] = ranks[dataset].to_numpy()
        if dataset in scores.columns:
            out[f"{main_metric}/{dataset}"] = scores[dataset].to_numpy()
    out = out.sort_values(["mean_rank", "variant"]).reset_index(drop=True)
    out.insert(0, "overall_rank", out["mean_rank"].rank(method="min").astype(int))
    return out


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

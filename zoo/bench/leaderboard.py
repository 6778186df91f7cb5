"""Leaderboard tables from cell records: per dataset and variant, and the overall ranking.

Definitions (also in the README):

- A cell's score for a metric column is the mean of its per-image test values, NaN images left out.
- ``<col>_mean`` and ``<col>_std`` are the mean and sample standard deviation (ddof 1) of that score over the
  seeds whose cell is ``ok``; ``n_seeds`` counts them.
- ``<col>_ci_low``/``<col>_ci_high``: a 95% bootstrap interval over test images and seeds
  (``zoo.bench.stats.bootstrap_ci``), seeded from the dataset, variant and column names.
- ``rank`` orders the variants of a dataset by the main metric's mean (1 = best; direction from the metric).
  ``median_rank``, ``rank_low``/``rank_high`` (95% interval) and ``tied_for_first`` come from the bootstrap
  ranking (``zoo.bench.ranking.ranking_stability``); ``beats_floor`` is False for a model whose recipe
  interval of the difference from its dataset's best floor does not clear 0 (``zoo.bench.ranking.floor_flags``).
- Floor rows (``model`` = ``floor``, variant ``floor: all <class>``, no rank) hold the trivial predictors'
  scores: per-image means, an interval over images, and pooled values (``zoo.bench.floors``).
- The overall table ranks variants by their mean rank across datasets, and by their mean rank over the
  datasets that tell at least one pair apart (``mean_rank_separating``).
- Bootstrap intervals: ``zoo.bench.stats``; verdicts: ``zoo.bench.verdicts``.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from zoo.bench.stats import N_BOOT, bootstrap_ci, seeded_rng

__all__ = ["leaderboard_table", "overall_table", "COST_COLUMNS", "TIMED_COSTS", "metric_columns", "with_verdicts",
           "floor_rows", "RANK_COLUMNS", "timing_caveat"]

COST_COLUMNS = ("n_parameters", "gmacs", "train_seconds", "infer_images_per_s", "infer_latency_ms",
                "ort_images_per_s", "ort_latency_ms", "peak_memory_mb")
#: costs measured in seconds on the cell's machine: the median over seeds (one cell slowed by another job does not
#: move it), and compared across variants only when :func:`timing_caveat` finds nothing against it
TIMED_COSTS = ("train_seconds", "infer_images_per_s", "infer_latency_ms", "ort_images_per_s", "ort_latency_ms")
TIMING_SPREAD = 1.5  # a variant's training time varying more than this over its seeds says the machine was shared
_KEYS = ("dataset", "variant")
RANK_COLUMNS = ("median_rank", "rank_low", "rank_high", "tied_for_first")


def metric_columns(runs: pd.DataFrame, metric_names: Sequence[str]) -> list[str]:
    """The per-image-mean metric columns of ``runs`` (not ``_pooled``), in table order."""
    return [c for c in runs.columns if c.split("/")[0] in metric_names and not c.endswith("_pooled")]


def _rank(values: pd.Series, higher_is_better: bool) -> pd.Series:
    return values.rank(ascending=not higher_is_better, method="min", na_option="keep")


def _cost_mean(good: pd.DataFrame, cost: str) -> float:
    """The mean of a cost over a variant's ok cells (the median of a timed one, :data:`TIMED_COSTS`); NaN for peak
    memory measured as different kinds (CUDA allocations and process RSS are different quantities, never averaged
    together)."""
    if not len(good):
        return math.nan
    if cost == "peak_memory_mb" and "memory_kind" in good.columns and good["memory_kind"].nunique(dropna=False) > 1:
        return math.nan
    return good[cost].median() if cost in TIMED_COSTS else good[cost].mean()  # type: ignore[no-any-return]


def timing_caveat(runs: pd.DataFrame, dataset: str) -> str | None:
    """Why the timed costs of ``dataset``'s variants cannot be compared, or ``None`` when nothing says so.

    Training compute (GMACs, ``train_tflops``) is fixed by the recipe; seconds depend on the machine and on what
    else ran on it. Flagged: cells on different devices or with different thread counts, and a variant whose
    training time varies more than :data:`TIMING_SPREAD` times over its seeds (same steps, same work).
    """
    ok = runs[(runs["dataset"] == dataset) & (runs["status"] == "ok")] if "status" in runs.columns else runs
    reasons = []
    for column, what in (("device_name", "devices"), ("threads", "thread counts")):
        values = sorted({str(v) for v in ok[column].dropna()}) if column in ok.columns else []
        if len(values) > 1:
            reasons.append(f"cells ran on {len(values)} {what} ({', '.join(values)})")
    varied = []
    if "train_seconds" in ok.columns:
        for variant, seconds in ok.groupby("variant", sort=True)["train_seconds"]:
            seconds = seconds.dropna()
            if len(seconds) > 1 and seconds.min() > 0 and seconds.max() / seconds.min() > TIMING_SPREAD:
                varied.append(f"`{variant}` x{seconds.max() / seconds.min():.1f}")
    if varied:
        reasons.append("training time varies over seeds of the same work (" + ", ".join(varied) +
                       "): other jobs shared the machine")
    if not reasons:
        return None
    return ("**Timings** (train s, infer img/s: medians over seeds) are not comparable across variants here: " +
            "; ".join(reasons) + ". GMACs and parameters are the comparable costs.")


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
                low, high = bootstrap_ci(matrix, seeded_rng(str(dataset), str(variant), column), n_boot=n_boot)
            else:
                low, high = math.nan, math.nan
            row[f"{column}_ci_low"], row[f"{column}_ci_high"] = low, high
            pooled = f"{column}_pooled"
            if pooled in runs.columns:
                row[f"{pooled}_mean"] = good[pooled].mean() if len(good) else math.nan
        for cost in COST_COLUMNS:
            if cost in runs.columns:
                row[cost] = _cost_mean(good, cost)
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


def with_verdicts(board: pd.DataFrame, ranks: pd.DataFrame, flags: pd.DataFrame) -> pd.DataFrame:
    """``board`` with the bootstrap rank columns after ``rank`` and ``beats_floor`` last (NA without floors)."""
    if board.empty:
        return board
    out = board.copy()
    if not ranks.empty:
        extra = ranks[["dataset", "variant", *RANK_COLUMNS]]
        out = out.merge(extra, on=["dataset", "variant"], how="left")
        for column in ("rank_low", "rank_high"):
            out[column] = out[column].astype("Int64")
        at = list(out.columns).index("rank") + 1
        out = out[[*out.columns[:at].drop(list(RANK_COLUMNS), errors="ignore"), *RANK_COLUMNS,
                   *(c for c in out.columns[at:] if c not in RANK_COLUMNS)]]
    beats = pd.Series(pd.NA, index=out.index, dtype="boolean")
    if not flags.empty:
        flagged = flags.set_index(["dataset", "variant"])["flagged"]
        keys = pd.MultiIndex.from_frame(out[["dataset", "variant"]])
        # a variant without a flag (all its cells failed) stays NA
        beats = pd.Series((~flagged.reindex(keys).astype("boolean")).array, index=out.index, dtype="boolean")
    out["beats_floor"] = beats
    return out


def floor_rows(floors: pd.DataFrame, shown: Mapping[str, Sequence[str]], columns: Sequence[str],
               n_boot: int = N_BOOT) -> pd.DataFrame:
    """Leaderboard rows of the shown floors: per metric column the mean over images, a bootstrap interval over
    images, and the pooled value (``floors``: ``floors.csv``; ``shown``: dataset -> floor names)."""
    rows = []
    for dataset, names in shown.items():
        part = floors[floors["dataset"] == dataset]
        for name in names:
            mine = part[part["floor"] == name]
            per_image, pooled = mine[mine["image_id"].notna()], mine[mine["image_id"].isna()]
            row: dict[str, Any] = {"dataset": dataset, "model": "floor", "variant": name, "n_seeds": 0,
                                   "n_cells": 0, "n_failed": 0}
            for column in columns:
                values = per_image.loc[per_image["metric"] == column, "value"].to_numpy(float)
                finite = values[np.isfinite(values)]
                row[f"{column}_mean"] = float(finite.mean()) if len(finite) else math.nan
                low, high = (bootstrap_ci(values[None], seeded_rng(str(dataset), name, column), n_boot=n_boot)
                             if len(finite) else (math.nan, math.nan))
                row[f"{column}_ci_low"], row[f"{column}_ci_high"] = low, high
                value = pooled.loc[pooled["metric"] == column, "value"]
                row[f"{column}_pooled_mean"] = float(value.iloc[0]) if len(value) else math.nan
            rows.append(row)
    return pd.DataFrame(rows)


def overall_table(board: pd.DataFrame, *, main_metric: str, separating: Collection[str] | None = None
                  ) -> pd.DataFrame:
    """Variants ranked by mean rank across datasets (a variant missing on a dataset is ranked there last).

    Args:
        board: the leaderboard's model rows.
        main_metric: the ranking column.
        separating: the datasets that tell at least one pair apart; adds ``mean_rank_separating`` (NaN when
            none does), the mean rank over those alone.
    """
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
    if separating is not None:
        kept = [d for d in datasets if d in separating]
        out["mean_rank_separating"] = filled[kept].mean(axis=1).to_numpy() if kept else math.nan
    for dataset in datasets:
        out[f"rank/{dataset}"] = ranks[dataset].to_numpy()
        if dataset in scores.columns:
            out[f"{main_metric}/{dataset}"] = scores[dataset].to_numpy()
    out = out.sort_values(["mean_rank", "variant"]).reset_index(drop=True)
    out.insert(0, "overall_rank", out["mean_rank"].rank(method="min").astype(int))
    return out

"""Benchmark plots (matplotlib, Agg backend): bars with CIs and floors, quality vs cost, training curves,
qualitative grid; the verdict plots (significance maps, blob plots) are in ``zoo.bench.verdict_plots``.

Every function takes the tables the leaderboard step computed (or the records), writes one PNG and returns its
path, or ``None`` when there is nothing to draw.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from zoo.bench.records import CellRecord
from zoo.fileio import atomic_write

if TYPE_CHECKING:
    from zoo.bench.analysis import Analysis

__all__ = ["bar_chart", "cost_scatter", "training_curves", "qualitative_grid", "pareto_front", "write_plots"]

log = logging.getLogger(__name__)


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=True)  # never open windows; works on headless machines
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path) -> Path:
    plt = _pyplot()
    # a name of this process's own: shards sharing one output folder render the same plots at the same time
    try:
        return atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=110, bbox_inches="tight"), fsync=False)
    finally:
        plt.close(fig)


def bar_chart(board: pd.DataFrame, metric: str, path: Path) -> Path | None:
    """One panel per dataset: the mean of ``metric`` per variant with its bootstrap 95% CI as error bars, and
    the dataset's floors (rows whose ``model`` is ``floor``) as dashed reference lines."""
    key = f"{metric}_mean"
    if board.empty or key not in board.columns:
        return None
    floors = board[board["model"] == "floor"]
    board = board[board["model"] != "floor"]
    plt = _pyplot()
    datasets = sorted(board["dataset"].unique())
    fig, axes = plt.subplots(1, len(datasets), figsize=(max(4.0, 1.0 + 0.7 * board["variant"].nunique())
                                                        * len(datasets), 3.6), squeeze=False)
    for ax, dataset in zip(axes[0], datasets):
        part = board[board["dataset"] == dataset].sort_values("variant")
        means = part[key].to_numpy(dtype=float)
        low = part.get(f"{metric}_ci_low", pd.Series(np.nan, index=part.index)).to_numpy(dtype=float)
        high = part.get(f"{metric}_ci_high", pd.Series(np.nan, index=part.index)).to_numpy(dtype=float)
        err = np.vstack([np.nan_to_num(means - low), np.nan_to_num(high - means)]).clip(min=0)
        x = np.arange(len(part))
        ax.bar(x, np.nan_to_num(means), yerr=err, capsize=4, color="#4c72b0")
        for i, (_, floor) in enumerate(floors[floors["dataset"] == dataset].iterrows()):
            if not math.isnan(floor[key]):
                ax.axhline(floor[key], color=f"C{i + 1}", linestyle="--", linewidth=1,
                           label=f"{floor['variant']}: {floor[key]:.3f}")
        if len(floors[floors["dataset"] == dataset]):
            ax.legend(fontsize=7, loc="lower right")
        ax.set_xticks(x, part["variant"], rotation=30, ha="right")
        ax.set_title(dataset)
        ax.set_ylabel(f"{metric} (test, mean over seeds)")
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle(f"{metric} (per-image mean): mean over seeds with 95% bootstrap CI over test images and seeds; "
                 f"dashed: floors", fontsize=10)
    return _save(fig, path)


def pareto_front(cost: Sequence[float], quality: Sequence[float], *, lower_cost_is_better: bool) -> list[int]:
    """Indices of the points no other point beats on both axes (quality higher, cost lower or higher)."""
    points = [(c if lower_cost_is_better else -c, -q, i) for i, (c, q) in enumerate(zip(cost, quality))
              if not (math.isnan(c) or math.isnan(q))]
    front, best = [], math.inf
    for c, neg_q, i in sorted(points):
        if neg_q < best:
            front.append(i)
            best = neg_q
    return front


def _cost_panels(board: pd.DataFrame, dataset: str, untimed: Collection[str]) -> list[tuple[str, str, bool]]:
    """(column, axis label, lower is better) of a dataset's two panels: speed (GMACs where its timings cannot be
    compared, :func:`zoo.bench.leaderboard.timing_caveat`) and parameters."""
    speed = (("gmacs", "GMACs per image (lower is better; timings not comparable here)", True)
             if dataset in untimed else ("infer_images_per_s", "inference images/s (higher is better)", False))
    return [c for c in (speed, ("n_parameters", "parameters (lower is better)", True)) if c[0] in board.columns]


def _millions(ax: Any) -> None:
    """Parameters in millions on a log axis: decades and their 2s and 5s labelled, the other minor ticks not."""
    from matplotlib.ticker import FuncFormatter

    def label(value: float, _: int) -> str:
        lead = round(value / 10 ** math.floor(math.log10(value))) if value > 0 else 0
        return f"{value / 1e6:g} M" if lead in (1, 2, 5) else ""

    ax.xaxis.set_major_formatter(FuncFormatter(label))
    ax.xaxis.set_minor_formatter(FuncFormatter(label))


def _scatter_panel(ax: Any, part: pd.DataFrame, quality: np.ndarray, cost: str, label: str, lower: bool) -> None:
    x = part[cost].to_numpy(dtype=float)
    ax.scatter(x, quality, color="#4c72b0", zorder=3)
    for xi, qi, name in zip(x, quality, part["variant"]):
        if not (math.isnan(xi) or math.isnan(qi)):
            ax.annotate(name, (xi, qi), fontsize=7, xytext=(3, 3), textcoords="offset points")
    front = pareto_front(x, quality, lower_cost_is_better=lower)
    if front:
        order = sorted(front, key=lambda i: x[i])
        ax.plot(x[order], quality[order], color="#dd8452", linestyle="--", zorder=2, label="Pareto front")
        ax.scatter(x[front], quality[front], facecolors="none", edgecolors="#dd8452", s=120, zorder=4)
        ax.legend(fontsize=7, loc="best")
    if cost == "n_parameters" and np.nanmin(x) > 0 and np.nanmax(x) / np.nanmin(x) > 10:
        ax.set_xscale("log")
        _millions(ax)
    ax.set_xlabel(label)


def cost_scatter(board: pd.DataFrame, metric: str, path: Path, *, untimed: Collection[str] = ()) -> Path | None:
    """Quality vs inference images/s (vs GMACs for the datasets in ``untimed``, whose timings cannot be
    compared) and vs parameters, one row of panels per dataset, Pareto front marked."""
    key = f"{metric}_mean"
    board = board[board["model"] != "floor"] if "model" in board.columns else board
    if board.empty or key not in board.columns:
        return None
    datasets = sorted(board["dataset"].unique())
    panels = {d: _cost_panels(board, d, untimed) for d in datasets}
    width = max(len(p) for p in panels.values())
    if not width:
        return None
    plt = _pyplot()
    fig, axes = plt.subplots(len(datasets), width, figsize=(5.2 * width, 3.8 * len(datasets)), squeeze=False,
                             layout="constrained")
    for row, dataset in enumerate(datasets):
        part = board[board["dataset"] == dataset].reset_index(drop=True)
        quality = part[key].to_numpy(dtype=float)
        for col in range(width):
            ax = axes[row][col]
            if col >= len(panels[dataset]):
                ax.set_visible(False)
                continue
            _scatter_panel(ax, part, quality, *panels[dataset][col])
            ax.set_ylabel(f"{metric} (test)")
            ax.set_title(dataset)
            ax.grid(alpha=0.3)
    return _save(fig, path)


def training_curves(records: Sequence[CellRecord], path: Path, *, val_metric: str = "dice"
                    ) -> Path | None:
    """Per dataset: training loss and validation ``val_metric`` by epoch, one line per cell (colour = variant)."""
    runs = [r for r in records if r.history]
    if not runs:
        return None
    plt = _pyplot()
    datasets = sorted({r.dataset for r in runs})
    variants = sorted({r.variant for r in runs})
    colors = {v: plt.cm.tab10(i % 10) for i, v in enumerate(variants)}
    fig, axes = plt.subplots(len(datasets), 2, figsize=(10, 3.4 * len(datasets)), squeeze=False)
    for row, dataset in enumerate(datasets):
        seen: set[str] = set()
        for record in (r for r in runs if r.dataset == dataset):
            history = record.history
            epochs = [h.get("epoch") for h in history]
            label = record.variant if record.variant not in seen else None
            seen.add(record.variant)
            color = colors[record.variant]
            axes[row][0].plot(epochs, [h.get("train_loss", math.nan) for h in history], color=color, alpha=0.8,
                              label=label)
            val = [(h.get("epoch"), h.get(f"val/{val_metric}")) for h in history if h.get(f"val/{val_metric}")
                   is not None]
            if val:
                axes[row][1].plot(*zip(*val), color=color, alpha=0.8, marker=".")
        axes[row][0].set_title(f"{dataset}: training loss")
        axes[row][1].set_title(f"{dataset}: validation {val_metric} (pooled)")
        for ax in axes[row]:
            ax.set_xlabel("epoch")
            ax.grid(alpha=0.3)
        axes[row][0].legend(fontsize=7)
    return _save(fig, path)


def qualitative_grid(samples: Mapping[str, Any], dataset: str, path: Path, *, n_classes: int | None = None
                     ) -> Path | None:
    """Rows = test images; columns = input, ground truth and each variant's prediction.

    Args:
        samples: variant -> the loaded ``samples.npz`` of one of its cells (all from the same test images).
    """
    if not samples:
        return None
    plt = _pyplot()
    variants = sorted(samples)
    first = samples[variants[0]]
    n_images = sum(1 for k in first if k.startswith("image_"))
    if n_images == 0:
        return None
    ids = list(first["ids"]) if "ids" in first else [str(i) for i in range(n_images)]
    vmax = n_classes - 1 if n_classes else max(int(np.max(first[f"mask_{i}"])) for i in range(n_images)) or 1
    cols = 2 + len(variants)
    fig, axes = plt.subplots(n_images, cols, figsize=(2.1 * cols, 2.1 * n_images), squeeze=False)
    for i in range(n_images):
        image = np.asarray(first[f"image_{i}"])
        shown = image[0] if image.shape[0] == 1 else np.transpose(image[:3], (1, 2, 0))
        panels = [("input", shown, "gray"), ("ground truth", np.asarray(first[f"mask_{i}"]), "viridis")]
        panels += [(v, np.asarray(samples[v].get(f"pred_{i}")) if f"pred_{i}" in samples[v] else None, "viridis")
                   for v in variants]
        for j, (title, data, cmap) in enumerate(panels):
            ax = axes[i][j]
            ax.axis("off")
            if data is None:
                continue
            if j == 0:
                ax.imshow(data, cmap=cmap)
            else:
                ax.imshow(data, cmap=cmap, vmin=0, vmax=vmax, interpolation="nearest")
            if i == 0:
                ax.set_title(title, fontsize=8)
        axes[i][0].text(-0.05, 0.5, str(ids[i]) if i < len(ids) else "", transform=axes[i][0].transAxes,
                        rotation=90, va="center", ha="right", fontsize=7)
    fig.suptitle(f"{dataset}: test images, ground truth and predictions", fontsize=10)
    return _save(fig, path)


def write_plots(records: Sequence[CellRecord], board: pd.DataFrame, main: str, folder: Path,
                analysis: Analysis | None = None, runs: pd.DataFrame | None = None) -> dict[str, Path]:
    """Every plot of a benchmark into ``folder``; returns plot name -> path (plots without data are skipped).

    Args:
        records: the cells (curves, qualitative grids).
        board: the leaderboard, floor rows included (reference lines).
        main: the main metric column.
        folder: where to write.
        analysis: the verdicts, for the significance maps and blob plots (``zoo.bench.verdict_plots``).
        runs: the cells' table; a dataset whose timings it cannot compare plots GMACs instead of images/s.
    """
    from zoo.bench.leaderboard import timing_caveat
    from zoo.bench.verdict_plots import blob_plot, significance_plot

    untimed = ({d for d in runs["dataset"].unique() if timing_caveat(runs, d)}
               if runs is not None and "dataset" in runs.columns else set())

    out: dict[str, Path] = {}
    folder.mkdir(parents=True, exist_ok=True)
    safe = main.replace("/", "_")
    for key, path in (("bar", bar_chart(board, main, folder / f"bar_{safe}.png")),
                      ("cost", cost_scatter(board, main, folder / f"cost_{safe}.png", untimed=untimed)),
                      ("curves", training_curves(records, folder / "curves.png", val_metric=main))):
        if path is not None:
            out[key] = path
    for dataset in sorted(analysis.ranks["dataset"].unique()) if analysis is not None and len(analysis.ranks) else []:
        order = list(analysis.ranks.loc[analysis.ranks["dataset"] == dataset].sort_values("rank")["variant"])
        for key, path in ((f"pairs_{dataset}", significance_plot(analysis.pairs, dataset,
                                                                 folder / f"pairs_{dataset}.png", order=order)),
                          (f"ranks_{dataset}", blob_plot(analysis.rank_frequencies, analysis.ranks, dataset,
                                                         folder / f"ranks_{dataset}.png"))):
            if path is not None:
                out[key] = path
    ok = [r for r in records if r.status == "ok"]
    for dataset in sorted({r.dataset for r in ok}):
        samples: dict[str, Any] = {}
        n_classes = None
        for record in sorted((r for r in ok if r.dataset == dataset), key=lambda r: r.seed):
            path = Path(record.directory or ".") / "samples.npz"
            if record.variant in samples or not path.exists():
                continue
            with np.load(path) as data:
                samples[record.variant] = {k: data[k] for k in data.files}
            n_classes = len(record.class_names) or n_classes
        path = qualitative_grid(samples, dataset, folder / f"qualitative_{dataset}.png", n_classes=n_classes)
        if path is not None:
            out[f"qualitative_{dataset}"] = path
    return out

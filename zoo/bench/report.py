"""Render a benchmark from its records: every table, ``leaderboard.md`` and the plots (``zoo leaderboard``).

Output directory::

    plan.json         what was asked (models, datasets, seeds, profile, recipe, axes)
    cells/            one folder per cell (see ``zoo.bench.records``), the only thing written while running
    runs.csv          one row per cell (columns: ``zoo.bench.tables.BenchmarkRow``)
    per_image.csv     cell_id, dataset, model, variant, seed, image_id, metric, value
    floors.csv        the trivial predictors' scores on the test masks (``zoo.bench.floors``; a cache: computed
                      when missing, which needs the data)
    leaderboard.csv   per dataset and variant: seeds, mean/std/95% CI of every metric, costs, rank and rank
                      interval, beats_floor; then the floor rows
    leaderboard_overall.csv   variants by mean rank across datasets (and across the datasets that separate)
    comparison.csv    every variant against the baseline: recipe verdict and model comparison (``zoo.bench.analysis``)
    pairs.csv         recipe verdicts of every pair of variants per dataset
    separation.csv    per dataset: variance shares, pairs told apart, rank agreement, variance components
    seed_advice.csv   per dataset and difference: power now and the seeds (and images) a verdict needs
    leaderboard.md    the tables in Markdown
    report.html       the page: every table, the plots and each cell's details in one self-contained file
                      (``zoo.bench.page``)
    plots/            bar_<metric>.png, cost_<metric>.png, curves.png, pairs_<dataset>.png, ranks_<dataset>.png,
                      qualitative_<dataset>.png
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from zoo.bench import leaderboard as lb
from zoo.bench.analysis import (Analysis, analyse, baseline_map, comparison_table, pairs_table, score_table,
                                separation_table)
from zoo.bench.floors import (FLOOR_FILE, FloorSet, floor_scores, load_floors, minority_class, minority_table,
                              shown_floors, write_floors)
from zoo.bench.markdown import Page, render_markdown
from zoo.bench.records import CellRecord, read_json
from zoo.bench.tables import csv_text, load_tables, metric_order, write_runs_csv
from zoo.fileio import atomic_write_text

if TYPE_CHECKING:
    from zoo.registry import Registries

__all__ = ["write_leaderboard", "TABLE_FILES"]

TABLE_FILES = {"runs": "runs.csv", "per_image": "per_image.csv", "floors": FLOOR_FILE,
               "leaderboard": "leaderboard.csv", "overall": "leaderboard_overall.csv",
               "comparison": "comparison.csv", "pairs": "pairs.csv", "separation": "separation.csv",
               "seed_advice": "seed_advice.csv", "markdown": "leaderboard.md"}


def _higher_is_better(records: Sequence[CellRecord]) -> dict[str, bool]:
    higher: dict[str, bool] = {}
    for record in records:
        higher.update(record.higher_is_better)
    return higher


def _board(models: pd.DataFrame, analysis: Analysis, floors: FloorSet, columns: Sequence[str]) -> pd.DataFrame:
    """The leaderboard: model rows with rank intervals and floor flags, then each dataset's shown floors."""
    board = lb.with_verdicts(models, analysis.ranks, analysis.floor_flags).copy()
    if board.empty or floors.frame.empty:
        return board
    shown = {d: shown_floors(floors.frame, d, analysis.metric, higher_is_better=analysis.higher_is_better)
             for d in board["dataset"].unique()}
    rows = lb.floor_rows(floors.frame, shown, columns)
    if rows.empty:
        return board
    both = pd.concat([board, rows.reindex(columns=board.columns)], ignore_index=True)
    for column in ("rank", "rank_low", "rank_high"):  # the floors' empty ranks must not turn 1 into 1.0
        if column in both.columns:
            both[column] = both[column].astype("Int64")
    return both.sort_values("dataset", kind="stable").reset_index(drop=True)  # each dataset's floors after its models


def _minority(runs: pd.DataFrame, per_image: pd.DataFrame, floors: FloorSet) -> dict[str, tuple[str, pd.DataFrame]]:
    """dataset -> (minority class, its Dice table) for the binary sets whose foreground is the majority."""
    ok = per_image[per_image["cell_id"].isin(runs.loc[runs["status"] == "ok", "cell_id"])] if len(runs) else per_image
    out = {}
    for dataset in sorted(floors.frame["dataset"].unique()):
        name = minority_class(floors.frame, dataset)
        table = minority_table(ok, floors.frame, dataset) if name else pd.DataFrame()
        if name and not table.empty:
            out[str(dataset)] = (name, table)
    return out


def _separating(analysis: Analysis) -> set[str]:
    """The datasets on which at least one pair of variants is told apart."""
    sep = analysis.separation
    return set(sep.loc[sep["pairs_separated"] > 0, "dataset"]) if "pairs_separated" in sep.columns else set()


def _write_tables(dest: Path, records: Sequence[CellRecord], floors: FloorSet, per_image: pd.DataFrame,
                  board: pd.DataFrame, overall: pd.DataFrame, analysis: Analysis) -> dict[str, Path]:
    """Write ``runs.csv``, ``floors.csv`` and the other CSV tables; returns name -> path for all of
    :data:`TABLE_FILES` (``leaderboard.md`` is the caller's to write)."""
    written = {name: dest / file for name, file in TABLE_FILES.items()}
    write_runs_csv(records, written["runs"])
    write_floors(floors, written["floors"])
    for name, frame in (("per_image", per_image), ("leaderboard", board), ("overall", overall),
                        ("comparison", comparison_table(analysis)), ("pairs", pairs_table(analysis)),
                        ("separation", separation_table(analysis)), ("seed_advice", analysis.advice)):
        atomic_write_text(written[name], csv_text(frame))
    return written


def write_leaderboard(out_dirs: Sequence[str | Path], dest: str | Path, *, baseline: str | None = None,
                      metric: str | None = None, plots: bool = True, html: bool = True,
                      registries: Registries | None = None, samples: Collection[str] | None = None
                      ) -> dict[str, Path]:
    """Regenerate every table and plot in ``dest`` from the records under ``out_dirs`` (shards are merged).

    Args:
        out_dirs: benchmark output directories (each with a ``cells/`` folder).
        dest: where to write (created).
        baseline: the model every variant is compared with (default: the first model in the first ``plan.json``).
        metric: the main metric column (default: the recipe's ``select_metric``, usually ``dice``).
        plots: also draw the PNGs.
        html: also write the page, ``report.html`` (after the plots, which it embeds).
        samples: the datasets whose qualitative grid (test images) the page embeds (default: all).
        registries: the plugins that build datasets and metrics for the floors (default: the installed ones;
            ``ZOO_DATA`` or ``zoo --data-dir`` says where the data is). Floors cached in a ``floors.csv`` of
            ``dest`` or ``out_dirs`` are reused; a dataset that cannot be built gets one line in
            ``leaderboard.md`` and no floors.

    Returns:
        Output name -> path.
    """
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    records, runs, per_image = load_tables(out_dirs)
    plan = next((p for p in (read_json(Path(d) / "plan.json") for d in out_dirs) if p), None)
    order = metric_order(records)
    main = metric or (order[0] if order else "dice")
    if baseline is None:
        baseline = (plan or {}).get("models", [None])[0] if plan else None
    axes = sorted({a for r in records for a in r.axes})
    higher = _higher_is_better(records)
    columns = lb.metric_columns(runs, order)
    floors = load_floors(records, [dest / FLOOR_FILE, *(Path(d) / FLOOR_FILE for d in out_dirs)], order,
                         registries=registries)
    models = lb.leaderboard_table(runs, per_image, metric_names=order, main_metric=main, higher_is_better=higher)
    scores = pd.concat([score_table(runs, per_image, main), floor_scores(floors.frame, main)], ignore_index=True)
    analysis = analyse(scores, metric=main, higher_is_better=higher.get(main.split("/")[0], True),
                       baseline=baseline_map(runs, baseline, axes))
    board = _board(models, analysis, floors, columns)
    overall = lb.overall_table(models, main_metric=main, separating=_separating(analysis))
    written = _write_tables(dest, records, floors, per_image, board, overall, analysis)
    page = Page(board, overall, analysis, runs, main, plan, floors, _minority(runs, per_image, floors))
    atomic_write_text(written["markdown"], render_markdown(page))
    if plots:
        from zoo.bench.plots import write_plots

        written.update(write_plots(records, board, main, dest / "plots", analysis, runs))
    if html:
        from zoo.bench.page import write_report

        written["report"] = write_report(dest, metric=main, sources=out_dirs, samples=samples)
    return written

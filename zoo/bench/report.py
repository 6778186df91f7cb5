"""Render a benchmark from its records: every table, ``leaderboard.md`` and the plots (``zoo leaderboard``).

Output directory::

    plan.json         what was asked (models, datasets, seeds, profile, recipe, axes)
    cells/            one folder per cell (see ``zoo.bench.records``), the only thing written while running
    runs.csv          one row per cell (columns: ``zoo.bench.tables.BenchmarkRow``)
    per_image.csv     cell_id, dataset, model, variant, seed, image_id, metric, value
    leaderboard.csv   per dataset and variant: seeds, mean/std/95% CI of every metric, costs, rank
    leaderboard_overall.csv   variants by mean rank across datasets
    comparison.csv    paired tests against the baseline (first) model
    leaderboard.md    the tables in Markdown
    plots/            bar_<metric>.png, cost_<metric>.png, curves.png, qualitative_<dataset>.png
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from zoo.bench import leaderboard as lb
from zoo.bench.markdown import render_markdown
from zoo.bench.records import CellRecord, read_json
from zoo.bench.stats import paired_comparison
from zoo.bench.tables import csv_text, load_tables, metric_order, write_runs_csv
from zoo.fileio import atomic_write_text

__all__ = ["write_leaderboard", "TABLE_FILES"]

TABLE_FILES = {"runs": "runs.csv", "per_image": "per_image.csv", "leaderboard": "leaderboard.csv",
               "overall": "leaderboard_overall.csv", "comparison": "comparison.csv", "markdown": "leaderboard.md"}


def _higher_is_better(records: Sequence[CellRecord]) -> dict[str, bool]:
    higher: dict[str, bool] = {}
    for record in records:
        higher.update(record.higher_is_better)
    return higher


def write_leaderboard(out_dirs: Sequence[str | Path], dest: str | Path, *, baseline: str | None = None,
                      metric: str | None = None, plots: bool = True) -> dict[str, Path]:
    """Regenerate every table and plot in ``dest`` from the records under ``out_dirs`` (shards are merged).

    Args:
        out_dirs: benchmark output directories (each with a ``cells/`` folder).
        dest: where to write (created).
        baseline: the model of the paired comparison (default: the first model in the first ``plan.json``).
        metric: the main metric column (default: the recipe's ``select_metric``, usually ``dice``).
        plots: also draw the PNGs.

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
    board = lb.leaderboard_table(runs, per_image, metric_names=order, main_metric=main,
                                 higher_is_better=_higher_is_better(records))
    overall = lb.overall_table(board, main_metric=main)
    comparison = paired_comparison(runs, per_image, baseline=baseline or "", metric=main, axes=axes)
    written = {name: dest / file for name, file in TABLE_FILES.items()}
    write_runs_csv(records, written["runs"])
    for name, frame in (("per_image", per_image), ("leaderboard", board), ("overall", overall),
                        ("comparison", comparison)):
        atomic_write_text(written[name], csv_text(frame))
    atomic_write_text(written["markdown"], render_markdown(board, overall, comparison, runs, main, plan))
    if plots:
        from zoo.bench.plots import write_plots

        written.update(write_plots(records, board, main, dest / "plots"))
    return written

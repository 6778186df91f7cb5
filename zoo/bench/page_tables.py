"""The tables of ``report.html`` (``zoo.bench.page``), built from a benchmark folder's CSVs.

Each builder turns one CSV (or one dataset's part of it) into a :class:`Table`: columns, and rows of cells that
carry both the text shown and the exact value the page sorts by (``data-value``), so a reader of the page can
check it against the CSV. A row names the variants it concerns (``data-variants``), which is what the page's
variant filter hides. Floors go in a separate, unsorted row group under the models.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from zoo.bench.markdown import PER_IMAGE, POOLED, fmt

__all__ = ["Column", "Value", "Row", "Table", "slug", "leaderboard_table", "metrics_table", "per_class_table",
           "advice_table", "comparison_table", "pairs_table", "overall_table", "cells_table"]


@dataclass(frozen=True)
class Column:
    """A column header; ``numeric`` right-aligns it and sorts it as numbers."""

    label: str
    numeric: bool = False
    title: str = ""  # a longer explanation, shown as the header's tooltip


@dataclass(frozen=True)
class Value:
    """One table cell: the text shown, the exact value sorted by, links to cell details ``(label, cell_id)``."""

    text: str
    value: str = ""
    links: tuple[tuple[str, str], ...] = ()
    verdict: str = ""  # better / worse / none: a badge class


@dataclass(frozen=True)
class Row:
    """A row; its first cell is the row header. ``variants`` are what the variant filter checks."""

    cells: Sequence[Value]
    variants: tuple[str, ...] = ()


@dataclass
class Table:
    """A captioned table; ``fixed`` rows (the floors) stay under the sorted ones."""

    id: str
    caption: str
    columns: Sequence[Column]
    rows: list[Row] = field(default_factory=list)
    fixed: list[Row] = field(default_factory=list)
    sortable: bool = True
    row_header: int = 0  # index of the column whose cells are row headers (<th scope="row">)


def slug(text: Any) -> str:
    """An HTML id fragment for a dataset, variant or cell id."""
    return re.sub(r"[^A-Za-z0-9_-]+", "-", str(text)).strip("-") or "x"


def _missing(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def _raw(value: Any) -> str:
    """The exact value for ``data-value``: ``repr`` of a float (round-trips), empty for missing."""
    if _missing(value):
        return ""
    if isinstance(value, (bool, str)):
        return str(value)
    return repr(float(value)) if isinstance(value, float) else str(value)


def num(value: Any, digits: int = 3, *, scale: float = 1.0) -> Value:
    """A number shown with ``digits`` decimals and sorted by its exact value."""
    if _missing(value):
        return Value("-")
    return Value(fmt(float(value) * scale, digits), _raw(value))


def text(value: Any) -> Value:
    return Value("-" if _missing(value) else str(value), _raw(value))


def _p(value: Any) -> Value:
    if _missing(value):
        return Value("-")
    return Value("<0.001" if value < 0.001 else f"{value:.3f}", _raw(value))


def _interval(low: Any, high: Any, digits: int = 3, *, centre: Any = None) -> Value:
    """``[low, high]`` (or ``centre [low, high]``), sorted by ``centre`` or else ``low``."""
    shown = f"[{fmt(low, digits)}, {fmt(high, digits)}]"
    if centre is not None:
        shown = f"{'-' if _missing(centre) else f'{centre:+.{digits}f}'} {shown}"
    return Value(shown, _raw(low if centre is None else centre))


def _yes_no(value: Any, *, no: str = "no") -> Value:
    if _missing(value) or value == "":
        return Value("-")
    truth = value is True or str(value).lower() == "true"
    return Value("yes" if truth else no, "1" if truth else "0")


def _verdict(value: Any) -> Value:
    shown = "-" if _missing(value) else str(value)
    kind = shown if shown in ("better", "worse") else "none"
    return Value(shown, shown, verdict=kind)


# --- per dataset ----------------------------------------------------------------------------------------------

LEADERBOARD_COSTS = (("params (M)", "n_parameters", 3, 1e-6), ("GMACs", "gmacs", 3, 1.0),
                     ("train s", "train_seconds", 1, 1.0), ("infer img/s", "infer_images_per_s", 1, 1.0),
                     ("latency ms", "infer_latency_ms", 2, 1.0), ("peak MB", "peak_memory_mb", 0, 1.0))


def _leaderboard_columns(main: str) -> list[Column]:
    return [Column("rank", True), Column("95% rank interval", True, "2.5th-97.5th percentile of bootstrap ranks"),
            Column("tied for 1st"), Column("variant"), Column("ok seeds", True, "ok cells / cells"),
            Column(f"{main} ({PER_IMAGE})", True, "mean over test images of each trained model, then over seeds"),
            Column("std over seeds", True), Column("95% CI", True, "bootstrap over test images and seeds"),
            Column(f"{main} ({POOLED})", True, "over all test pixels"),
            Column("beats floor", False, "the recipe interval of (variant - best floor) clears 0"),
            *(Column(label, True) for label, *_ in LEADERBOARD_COSTS), Column("cells")]


def _model_row(r: pd.Series, main: str, cells: Sequence[tuple[str, str]]) -> Row:
    interval = Value("-") if _missing(r.get("rank_low")) else Value(
        f"{int(r['rank_low'])}-{int(r['rank_high'])}", _raw(r.get("median_rank")))
    seeds = Value(f"{int(r['n_seeds'])}/{int(r['n_cells'])}", _raw(int(r["n_seeds"])))
    costs = [num(r.get(column), digits, scale=scale) for _, column, digits, scale in LEADERBOARD_COSTS]
    return Row([num(r.get("rank"), 0), interval, _yes_no(r.get("tied_for_first"), no=""), text(r["variant"]), seeds,
                num(r.get(f"{main}_mean")), num(r.get(f"{main}_std")),
                _interval(r.get(f"{main}_ci_low"), r.get(f"{main}_ci_high")), num(r.get(f"{main}_pooled_mean")),
                _yes_no(r.get("beats_floor")), *costs, Value(f"{len(cells)} cells", links=tuple(cells))],
               (str(r["variant"]),))


def _floor_row(r: pd.Series, main: str) -> Row:
    dash = Value("-")
    return Row([Value("floor"), Value(""), Value(""), text(r["variant"]), dash, num(r.get(f"{main}_mean")), dash,
                _interval(r.get(f"{main}_ci_low"), r.get(f"{main}_ci_high")), num(r.get(f"{main}_pooled_mean")),
                Value(""), *(dash for _ in LEADERBOARD_COSTS), Value("")])


def leaderboard_table(part: pd.DataFrame, dataset: str, main: str,
                      cells: Mapping[str, Sequence[tuple[str, str]]]) -> Table:
    """One dataset's leaderboard: models by rank, then its floors (``cells``: variant -> (label, cell id))."""
    models, floors = part[part["model"] != "floor"], part[part["model"] == "floor"]
    return Table(f"leaderboard-{slug(dataset)}", f"{dataset}: leaderboard by {main} ({PER_IMAGE}), then the floors",
                 _leaderboard_columns(main),
                 [_model_row(r, main, cells.get(str(r["variant"]), ())) for _, r in models.iterrows()],
                 [_floor_row(r, main) for _, r in floors.iterrows()], row_header=3)


def metrics_table(part: pd.DataFrame, dataset: str, main: str, metrics: Sequence[str]) -> Table | None:
    """Every other (whole-image) metric's mean over seeds, per variant."""
    others = [m for m in metrics if m != main and f"{m}_mean" in part.columns and part[f"{m}_mean"].notna().any()]
    models = part[part["model"] != "floor"]
    if not others or models.empty:
        return None
    rows = [Row([text(r["variant"]), *(num(r[f"{m}_mean"]) for m in others)], (str(r["variant"]),))
            for _, r in models.iterrows()]
    return Table(f"metrics-{slug(dataset)}", f"{dataset}: the other metrics ({PER_IMAGE} over seeds)",
                 [Column("variant"), *(Column(m, True) for m in others)], rows)


def per_class_table(part: pd.DataFrame, dataset: str, main: str) -> Table | None:
    """The main metric per class (multi-class sets), per variant."""
    base = main.split("/")[0]
    models = part[part["model"] != "floor"]
    columns = [c for c in part.columns if c.startswith(f"{base}/") and c.endswith("_mean")
               and not c.endswith("_pooled_mean") and models[c].notna().any()]
    if not columns or models.empty:
        return None
    names = [c[len(base) + 1:-len("_mean")] for c in columns]
    rows = [Row([text(r["variant"]), *(num(r[c]) for c in columns)], (str(r["variant"]),))
            for _, r in models.iterrows()]
    return Table(f"classes-{slug(dataset)}", f"{dataset}: {base} per class ({PER_IMAGE} over seeds; a class absent "
                 f"from both masks of an image is left out of that image)",
                 [Column("variant"), *(Column(n, True) for n in names)], rows)


def advice_table(part: pd.DataFrame, dataset: str) -> Table | None:
    """Seeds (and images) a recipe verdict needs at 80% power, per difference."""
    if part.empty or part["seed_var"].isna().all():
        return None
    first = part.iloc[0]
    family = int(first["family"])

    def count(value: Any) -> Value:
        return Value("> 100", "1e9") if _missing(value) else Value(str(int(value)), _raw(value))

    rows = [Row([num(r["delta"], 2), num(r["power_now"], 2), count(r["seeds_needed"]),
                 count(r["seeds_needed_family"]), count(r["images_needed_family"])]) for _, r in part.iterrows()]
    return Table(f"advice-{slug(dataset)}", f"{dataset}: seeds needed for a recipe verdict at 80% power (seed SD "
                 f"{math.sqrt(first['seed_var']):.3f}, {int(first['n_images'])} test images)",
                 [Column("difference", True), Column(f"power now ({fmt(first['n_seeds'], 0)} seeds)", True),
                  Column("seeds per variant, one comparison (alpha 0.05)", True),
                  Column(f"seeds per variant, this dataset's family (alpha 0.05/{family})", True),
                  Column("test images needed at those seeds", True)], rows, sortable=False)


def comparison_table(part: pd.DataFrame, dataset: str, kind: str) -> Table | None:
    """Every variant against the baseline: the recipe verdict (``kind="recipe"``) or the model comparison."""
    if part.empty:
        return None
    pre = "" if kind == "recipe" else "model_"
    unit = "seeds" if kind == "recipe" else "images"
    rows = []
    for _, r in part.iterrows():
        n = (Value(f"{int(r['n_seeds'])} v {int(r['n_seeds_baseline'])}", _raw(int(r["n_seeds"])))
             if kind == "recipe" else num(r["n_images"], 0))
        rows.append(Row([text(r["variant"]), text(r["baseline"]), n,
                         _interval(r[f"{pre}ci_low"], r[f"{pre}ci_high"], 4, centre=r[f"{pre}mean_difference"]),
                         _interval(r[f"{pre}p_improvement_low"], r[f"{pre}p_improvement_high"], 2,
                                   centre=r[f"{pre}p_improvement"]),
                         _p(r[f"{pre}p_value"]), _p(r[f"{pre}p_adjusted"]), _verdict(r[f"{pre}verdict"])],
                        (str(r["variant"]), str(r["baseline"]))))
    title = ("recipe verdicts against the baseline (seeds as the unit: is the variant better when trained again?)"
             if kind == "recipe" else "model comparisons against the baseline (images as the unit: do these trained "
                                      "models differ on this test set?)")
    return Table(f"{kind}-{slug(dataset)}", f"{dataset}: {title}",
                 [Column("variant"), Column("baseline"), Column(unit, True),
                  Column("difference [95% CI]", True, "variant - baseline"),
                  Column("P(A>B) [95% CI]", True, "probability of improvement"), Column("p", True),
                  Column("p (Holm)", True, "Holm-adjusted over this dataset's comparisons of this kind"),
                  Column("verdict")], rows)


def pairs_table(part: pd.DataFrame, dataset: str) -> Table | None:
    """The recipe verdict of every pair of variants of one dataset (Holm over its pairs)."""
    if part.empty:
        return None
    rows = [Row([text(r["variant_a"]), text(r["variant_b"]),
                 _interval(r["ci_low"], r["ci_high"], 4, centre=r["mean_difference"]),
                 _interval(r["p_improvement_low"], r["p_improvement_high"], 2, centre=r["p_improvement"]),
                 _p(r["p_value"]), _p(r["p_adjusted"]), _verdict(r["verdict"])],
                (str(r["variant_a"]), str(r["variant_b"]))) for _, r in part.iterrows()]
    return Table(f"pairs-{slug(dataset)}", f"{dataset}: every pair (recipe verdicts, Holm-adjusted over this "
                 f"dataset's pairs)", [Column("A"), Column("B"), Column("A - B [95% CI]", True),
                                       Column("P(A>B) [95% CI]", True), Column("p", True), Column("p (Holm)", True),
                                       Column("verdict")], rows)


# --- the whole benchmark --------------------------------------------------------------------------------------

def overall_table(overall: pd.DataFrame, main: str, idle: Sequence[str]) -> Table | None:
    """Variants by mean rank across datasets, with each dataset's rank and score."""
    if overall.empty:
        return None
    datasets = [c.removeprefix("rank/") for c in overall.columns if c.startswith("rank/")]
    columns = [Column("rank", True), Column("variant"), Column("mean rank", True),
               Column("mean rank, separating datasets", True, "over the datasets that tell at least one pair apart")]
    for d in datasets:
        columns += [Column(f"rank on {d}" + (" (separates nothing)" if d in idle else ""), True),
                    Column(f"{main} on {d}", True)]
    rows = [Row([num(r["overall_rank"], 0), text(r["variant"]), num(r["mean_rank"], 2),
                 num(r.get("mean_rank_separating"), 2),
                 *(v for d in datasets for v in (num(r.get(f"rank/{d}"), 0), num(r.get(f"{main}/{d}"))))],
                (str(r["variant"]),)) for _, r in overall.iterrows()]
    return Table("overall", f"Overall: variants by mean rank across datasets ({main}, {PER_IMAGE})", columns, rows,
                 row_header=1)


def cells_table(runs: pd.DataFrame, main: str, linked: Collection[str]) -> Table:
    """One row per cell, linking to its detail view (those in ``linked``); failed cells show their error."""
    columns = [Column("cell"), Column("dataset"), Column("variant"), Column("seed", True), Column("status"),
               Column(f"{main} ({PER_IMAGE})", True), Column("train s", True), Column("epochs", True),
               Column("best epoch", True), Column("wall s", True), Column("error")]
    rows = []
    for _, r in runs.iterrows():
        error = "" if _missing(r.get("error")) else str(r["error"])
        cell = str(r["cell_id"])
        rows.append(Row([Value(cell, cell, links=((cell, cell),) if cell in linked else ()),
                         text(r["dataset"]), text(r["variant"]), num(r["seed"], 0), text(r["status"]),
                         num(r.get(main)), num(r.get("train_seconds"), 1), num(r.get("epochs_done"), 0),
                         num(r.get("best_epoch"), 0), num(r.get("wall_seconds"), 1),
                         Value(error[:160] + ("..." if len(error) > 160 else ""), error)],
                        (str(r["variant"]),)))
    return Table("cells", "Every cell of the grid (open one for its recipe, plan, environment and training curve)",
                 columns, rows)

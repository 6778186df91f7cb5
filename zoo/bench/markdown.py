"""``leaderboard.md``: the benchmark's tables rendered as Markdown.

Per dataset: the leaderboard (models with their bootstrap rank interval, then the floors), the line saying
whether the dataset separates the models, the seeds-needed table, and for a multi-class set its per-class
table (for a binary set whose foreground is the majority, its minority class). Then the overall ranking, the
recipe verdicts and model comparisons against the baseline, the all-pairs summary and the unfinished cells.
Every score column says its aggregation: "per-image mean" (the mean over test images, then over seeds) or
"pooled" (over all test pixels).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from zoo.bench.analysis import ALPHA, Analysis
from zoo.bench.floors import FloorSet
from zoo.bench.leaderboard import timing_caveat
from zoo.bench.plan_text import recipe_line
from zoo.bench.verdicts import min_images

__all__ = ["Page", "render_markdown", "markdown_table", "fmt"]

PER_IMAGE = "per-image mean"
POOLED = "pooled"


def fmt(value: Any, digits: int = 3) -> str:
    """A cell of a table: ``-`` for missing, fixed digits for floats."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _p(value: Any) -> str:
    return "-" if value is None or pd.isna(value) else ("<0.001" if value < 0.001 else f"{value:.3f}")


def _interval(low: Any, high: Any, digits: int = 3) -> str:
    return f"[{fmt(low, digits)}, {fmt(high, digits)}]"


def _count(value: Any) -> str:
    return "> 100" if value is None or pd.isna(value) else str(int(value))


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in rows]
    return "\n".join(lines)


@dataclass(frozen=True)
class Page:
    """What ``leaderboard.md`` shows (built by :func:`zoo.bench.report.write_leaderboard`).

    ``board``: the leaderboard with its floor rows; ``minority``: dataset -> (class name, rows ``variant,
    n_seeds, mean, std``) for binary sets whose foreground is the majority.
    """

    board: pd.DataFrame
    overall: pd.DataFrame
    analysis: Analysis
    runs: pd.DataFrame
    main: str
    plan: Mapping[str, Any] | None
    floors: FloorSet
    minority: Mapping[str, tuple[str, pd.DataFrame]] = field(default_factory=dict)


# --- one dataset --------------------------------------------------------------------------------------------

def _model_row(r: pd.Series, main: str) -> list[Any]:
    params = r.get("n_parameters")
    interval = "-" if pd.isna(r.get("rank_low")) else f"{r['rank_low']}-{r['rank_high']}"
    beats = r.get("beats_floor")
    return ["-" if pd.isna(r["rank"]) else int(r["rank"]), interval,
            "yes" if r.get("tied_for_first") is True else "", r["variant"], f"{r['n_seeds']}/{r['n_cells']}",
            fmt(r.get(f"{main}_mean")), fmt(r.get(f"{main}_std")),
            _interval(r.get(f"{main}_ci_low"), r.get(f"{main}_ci_high")), fmt(r.get(f"{main}_pooled_mean")),
            "-" if beats is None or pd.isna(beats) else ("yes" if beats else "**no**"),
            fmt(params / 1e6, 3) if params is not None and not pd.isna(params) else "-", fmt(r.get("gmacs")),
            fmt(r.get("train_seconds"), 1), fmt(r.get("infer_images_per_s"), 1), fmt(r.get("peak_memory_mb"), 0)]


def _floor_row(r: pd.Series, main: str) -> list[Any]:
    return ["floor", "", "", r["variant"], "-", fmt(r.get(f"{main}_mean")), "-",
            _interval(r.get(f"{main}_ci_low"), r.get(f"{main}_ci_high")), fmt(r.get(f"{main}_pooled_mean")),
            "", "-", "-", "-", "-", "-"]


def _leaderboard(part: pd.DataFrame, main: str) -> str:
    models, floors = part[part["model"] != "floor"], part[part["model"] == "floor"]
    rows = [_model_row(r, main) for _, r in models.iterrows()] + [_floor_row(r, main) for _, r in floors.iterrows()]
    return markdown_table(
        ["rank", "95% rank interval", "tied for 1st", "variant", "ok seeds", f"{main} ({PER_IMAGE})",
         "std over seeds", "95% CI", f"{main} ({POOLED})", "beats floor", "params (M)", "GMACs", "train s",
         "infer img/s", "peak MB"], rows)


def _separation(analysis: Analysis, dataset: str) -> list[str]:
    sep = analysis.separation
    if sep.empty or "dataset" not in sep.columns:  # nothing scored (every cell failed)
        return []
    row = sep[sep["dataset"] == dataset]
    if row.empty or "verdict" not in row.columns or pd.isna(row["verdict"].iloc[0]):
        return []
    r = row.iloc[0]
    agreement = (f" Bootstrap rankings agree with the point ranking at Kendall's tau {r['kendall_tau']:.2f}; "
                 f"{r['share_identical']:.1%} of them are identical.") if not pd.isna(r["kendall_tau"]) else ""
    return [f"**Separation:** {r['verdict'][0].upper()}{r['verdict'][1:]}.{agreement}", ""]


def _advice(analysis: Analysis, dataset: str) -> list[str]:
    advice = analysis.advice
    part = advice[advice["dataset"] == dataset] if not advice.empty else advice
    if part.empty:
        return []
    first = part.iloc[0]
    if pd.isna(first["seed_var"]):
        return ["Seed advice needs at least 2 seeds per variant.", ""]
    rows = [[f"{r['delta']:g}", f"{r['power_now']:.2f}", _count(r["seeds_needed"]), _count(r["seeds_needed_family"]),
             _count(r["images_needed_family"])] for _, r in part.iterrows()]
    family, n_images = int(first["family"]), int(first["n_images"])
    few = ([f"With {n_images} test images no number of seeds gives a verdict: the image test needs at least "
            f"{min_images(ALPHA)} ({min_images(ALPHA / family)} for this dataset's family)."] if n_images < min_images(ALPHA)
           else [])
    return [f"Seeds needed for a recipe verdict at 80% power (seed SD {math.sqrt(first['seed_var']):.3f}, "
            f"{n_images} test images):{' ' + few[0] if few else ''}", "",
            markdown_table(["difference", f"power now ({fmt(first['n_seeds'], 0)} seeds)",
                            "seeds per variant, one comparison (alpha 0.05)",
                            f"seeds per variant, this dataset's family (alpha 0.05/{family})",
                            "test images needed at those seeds (or 100)"], rows), ""]


def _per_class(page: Page, dataset: str) -> list[str]:
    base = page.main.split("/")[0]
    part = page.board[(page.board["dataset"] == dataset) & (page.board["model"] != "floor")]
    columns = [c for c in part.columns if c.startswith(f"{base}/") and c.endswith("_mean")
               and not c.endswith("_pooled_mean") and part[c].notna().any()]
    if not columns:
        return []
    names = [c[len(base) + 1:-len("_mean")] for c in columns]
    rows = [[r["variant"], *(fmt(r[c]) for c in columns)] for _, r in part.iterrows()]
    floors = page.floors.frame
    own = floors[(floors["dataset"] == dataset) & floors["image_id"].notna()]
    if not own.empty:
        rows.append(["floor: each class everywhere", *(fmt(own.loc[(own["floor"] == f"floor: all {n}")
                                                                   & (own["metric"] == f"{base}/{n}"), "value"].mean())
                                                        for n in names)])
    return [f"Per class, `{base}` ({PER_IMAGE} over seeds; a class absent from both masks of an image is left out "
            f"of that image):", "", markdown_table(["variant", *names], rows), ""]


def _minority(page: Page, dataset: str) -> list[str]:
    if dataset not in page.minority:
        return []
    name, table = page.minority[dataset]
    rows = [[r["variant"], "-" if r["n_seeds"] == 0 else int(r["n_seeds"]), fmt(r["mean"]), fmt(r["std"])]
            for _, r in table.iterrows()]
    return [f"The foreground is the majority of the test pixels here, so the minority class `{name}` is the "
            f"informative one. Its Dice ({PER_IMAGE}), recovered from each image's recorded recall and accuracy "
            f"and its pixel counts:", "", markdown_table(["variant", "ok seeds", f"dice/{name} ({PER_IMAGE})",
                                                          "std over seeds"], rows), ""]


# --- the leaderboard as a whole ----------------------------------------------------------------------------

def _overall(page: Page) -> list[str]:
    overall, board = page.overall, page.board
    if overall.empty or board[board["model"] != "floor"]["dataset"].nunique() < 2:
        return []
    rank_cols = [c for c in overall.columns if c.startswith("rank/")]
    sep = page.analysis.separation
    # one model per dataset has no pairs, so no pairs_separated column: nothing to call idle
    idle = sorted(sep.loc[sep["pairs_separated"] == 0, "dataset"]) if "pairs_separated" in sep.columns else []
    rows = [[r["overall_rank"], r["variant"], fmt(r["mean_rank"], 2), fmt(r.get("mean_rank_separating"), 2),
             *(fmt(r[c], 0) for c in rank_cols)] for _, r in overall.iterrows()]
    headers = [c + (" (separates nothing)" if c.removeprefix("rank/") in idle else "") for c in rank_cols]
    note = (f"Datasets that separate no pair at this budget: {', '.join(f'`{d}`' for d in idle)}; their ranks are "
            f"mostly seed noise, and the mean rank over separating datasets leaves them out"
            f"{' (none is left here)' if len(idle) == len(rank_cols) else ''}.") if idle else ""
    return [f"## Overall (mean rank across datasets by `{page.main}`, {PER_IMAGE})", "",
            markdown_table(["rank", "variant", "mean rank", "mean rank, separating datasets", *headers], rows), "",
            *([note, ""] if note else [])]


def _comparisons(analysis: Analysis, kind: str) -> list[str]:
    table = analysis.comparison
    part = table[table["kind"] == kind] if not table.empty else table
    if part.empty:
        return []
    unit = "seeds" if kind == "recipe" else "images"
    rows = [[r["dataset"], r["variant_a"], r["variant_b"],
             f"{r['n_seeds_a']} v {r['n_seeds_b']}" if kind == "recipe" else r["n_images"],
             f"{r['mean_difference']:+.4f} {_interval(r['ci_low'], r['ci_high'], 4)}",
             f"{fmt(r['p_improvement'], 2)} {_interval(r['p_improvement_low'], r['p_improvement_high'], 2)}",
             _p(r["p_value"]), _p(r["p_adjusted"]), r["verdict"]] for _, r in part.iterrows()]
    title = ("Recipe verdicts against the baseline (seeds as the unit: is the variant better when trained again?)"
             if kind == "recipe" else
             "Model comparisons against the baseline (images as the unit: do these trained models differ on "
             "this test set?)")
    return [f"## {title}", "",
            f"`{analysis.metric}` ({PER_IMAGE}); difference = variant - baseline with its 95% CI; P(A>B) with its "
            f"95% CI; p-values raw and Holm-adjusted over the {len(part)} comparisons of this table; the verdict "
            f"reads the adjusted p at 0.05.", "",
            markdown_table(["dataset", "variant", "baseline", unit, "difference [95% CI]", "P(A>B) [95% CI]", "p",
                            "p (Holm)", "verdict"], rows), ""]


def _pairs(analysis: Analysis) -> list[str]:
    pairs = analysis.pairs
    if pairs.empty:
        return []
    rows = []
    for dataset, part in pairs.groupby("dataset", sort=True):
        told = part[part["verdict"].isin(("better", "worse"))]
        names = ", ".join(f"{r['variant_a']} {r['verdict']} than {r['variant_b']}" for _, r in told.iterrows())
        too_few = part["verdict"].str.startswith("too few").sum()
        rows.append([dataset, len(part), len(told), too_few, names or "-"])
    return ["## All pairs (recipe verdicts, Holm-adjusted per dataset)", "",
            "Every pair's verdict is in `pairs.csv`, drawn in `plots/pairs_<dataset>.png`; the rank intervals in "
            "`plots/ranks_<dataset>.png`.", "",
            markdown_table(["dataset", "pairs", "told apart", "too few seeds or images", "verdicts"], rows), ""]


def render_markdown(page: Page) -> str:
    """``leaderboard.md`` (see the module docstring)."""
    main, plan, runs, board = page.main, page.plan, page.runs, page.board
    parts = ["# Benchmark leaderboard", ""]
    if plan:
        parts += [f"Plan `{plan.get('name')}`: models {', '.join(plan.get('models', []))}; datasets "
                  f"{', '.join(plan.get('datasets', []))}; seeds {', '.join(map(str, plan.get('seeds', [])))}; "
                  f"profile `{plan.get('profile')}`.", ""]
    devices = sorted({str(d) for d in runs.get("device_name", []) if isinstance(d, str)})
    if devices:
        parts += [f"Device: {', '.join(devices)}.", ""]
    parts += [f"Main metric: `{main}` on the test split, {PER_IMAGE} (the mean over test images of each trained "
              f"model, then over seeds; 95% CI by bootstrap over test images and seeds) and {POOLED} (over all test "
              f"pixels). The rank interval is the 95% interval of bootstrap ranks (seeds and images resampled); a "
              f"variant whose interval includes 1 is tied for first. Floors are constant predictors scored on the "
              f"test masks; \"beats floor\" is no when the variant's recipe interval of the difference from the best "
              f"floor does not clear 0. Costs are means over seeds (timings: medians); inference at the training "
              f"image size.", ""]
    parts += [f"{note}" for note in page.floors.notes] + ([""] if page.floors.notes else [])
    for dataset in sorted(board["dataset"].unique()) if not board.empty else []:
        recipe = recipe_line(plan, runs, dataset)
        parts += [f"## {dataset}", "", *([recipe, ""] if recipe else []),
                  _leaderboard(board[board["dataset"] == dataset], main), ""]
        caveat = timing_caveat(runs, dataset) if "dataset" in runs.columns else None
        parts += [caveat, ""] if caveat else []
        parts += _separation(page.analysis, dataset) + _advice(page.analysis, dataset)
        parts += _per_class(page, dataset) + _minority(page, dataset)
    parts += _overall(page) + _comparisons(page.analysis, "recipe") + _comparisons(page.analysis, "model")
    parts += _pairs(page.analysis)
    bad = runs[runs["status"] != "ok"] if "status" in runs.columns else runs.iloc[0:0]
    if not bad.empty:
        rows = [[r["cell_id"], r["status"], str(r.get("error") or "")[:160]] for _, r in bad.iterrows()]
        parts += ["## Cells that did not finish", "", markdown_table(["cell", "status", "error"], rows), ""]
    return "\n".join(parts)


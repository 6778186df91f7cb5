"""The verdict statistics of one leaderboard, computed once for its tables, page and plots (issue 13).

:func:`analyse` turns the per-image table of the ``ok`` cells (plus the floors) into the long score table of
:mod:`zoo.bench.verdicts` for the main metric and runs every statistic on it:

- ``comparison``: every variant against the baseline (the first ``--models`` model at the same axis values),
  recipe verdicts and model comparisons, each kind Holm-adjusted within each dataset;
- ``pairs``: all-pairs recipe verdicts, Holm-adjusted per dataset (``pairs.csv``, the significance maps);
- ``ranks``/``rank_frequencies``: the bootstrap ranking of each dataset (rank interval, blob plots);
- ``separation``: per dataset, the variance shares, pairs told apart, Kendall's tau and the one-line verdict;
- ``advice``: seeds needed for a difference of 0.01, 0.02 and 0.05 at 80% power, for one planned comparison
  (alpha 0.05) and for the dataset's family of m baseline comparisons (Holm's first step, 0.05 / m);
- ``floor_flags``: the models that do not clear their dataset's best floor by more than their interval.

Every generator is seeded from names, so a re-render gives the same bytes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import pandas as pd

from zoo.bench import ranking
from zoo.bench.stats import seeded_rng
from zoo.bench.verdicts import SCORE_COLUMNS, _models_only, compare_to_baseline

__all__ = ["Analysis", "DELTAS", "ALPHA", "score_table", "baseline_map", "analyse"]

DELTAS = (0.01, 0.02, 0.05)
ALPHA = 0.05


@dataclass(frozen=True)
class Analysis:
    """The verdict tables of one leaderboard's main metric (see the module docstring)."""

    metric: str
    higher_is_better: bool
    scores: pd.DataFrame
    comparison: pd.DataFrame
    pairs: pd.DataFrame
    ranks: pd.DataFrame
    rank_frequencies: pd.DataFrame
    separation: pd.DataFrame
    advice: pd.DataFrame
    floor_flags: pd.DataFrame

    @property
    def family_sizes(self) -> dict[str, int]:
        """Each dataset's number of recipe verdicts against the baseline (the family Holm adjusts over)."""
        return _family_sizes(self.comparison)


def score_table(runs: pd.DataFrame, per_image: pd.DataFrame, column: str) -> pd.DataFrame:
    """The long score table (``SCORE_COLUMNS``) of one metric column over the ``ok`` cells."""
    ok = runs.loc[runs["status"] == "ok", "cell_id"] if "status" in runs.columns else runs.iloc[0:0]
    part = per_image[(per_image["metric"] == column) & per_image["cell_id"].isin(ok)]
    frame = part[list(SCORE_COLUMNS)].copy()
    frame["image_id"] = frame["image_id"].astype(str)
    frame["value"] = frame["value"].astype(float)
    return frame.reset_index(drop=True)


def baseline_map(runs: pd.DataFrame, baseline: str | None, axes: Sequence[str]) -> dict[str, str]:
    """Each variant's reference: the variant of model ``baseline`` with the same axis values."""
    if not baseline or runs.empty:
        return {}
    keys = runs.assign(_key=runs[list(axes)].astype(str).agg("\x1f".join, axis=1) if axes else "")
    reference = dict(keys.loc[keys["model"] == baseline, ["_key", "variant"]].drop_duplicates("_key").to_numpy())
    return {str(v): reference[k] for v, k in keys[["variant", "_key"]].drop_duplicates().to_numpy()
            if k in reference}


def _per_dataset(models: pd.DataFrame, pairs: pd.DataFrame, higher: bool
                 ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Rank stability and separation of each dataset."""
    ranks, frequencies, separation = [], [], []
    for dataset, frame in models.groupby("dataset", sort=True):
        stability = ranking.ranking_stability(frame, rng=seeded_rng(str(dataset), "ranking"), higher_is_better=higher)
        ranks.append(stability.table.assign(dataset=dataset))
        frequencies.append(stability.frequencies.assign(dataset=dataset))
        row = {"dataset": dataset, "kendall_tau": stability.kendall_tau,
               "share_identical": stability.share_identical}
        if frame["variant"].nunique() > 1:
            row = {**asdict(ranking.dataset_separation(frame, pairs=pairs, higher_is_better=higher)), **row}
        separation.append(row)
    first = ["dataset"]
    return (pd.concat(ranks, ignore_index=True)[first + list(ranks[0].columns.drop("dataset"))] if ranks else
            pd.DataFrame(), pd.concat(frequencies, ignore_index=True) if frequencies else pd.DataFrame(),
            pd.DataFrame(separation))


def _family_sizes(comparison: pd.DataFrame) -> dict[str, int]:
    """Each dataset's number of recipe verdicts against the baseline."""
    if comparison.empty:
        return {}
    return {str(d): int(n) for d, n in comparison[comparison["kind"] == "recipe"].groupby("dataset").size().items()}


_COMPONENTS = ("seed_var", "interaction_var", "noise_var")


def advice_components(models: pd.DataFrame, baseline: Mapping[str, str]) -> pd.DataFrame:
    """Per dataset, the variance components the seed advice plans with: those of the typical comparison against
    the baseline (each comparison's own two variants, then the median of each component over the dataset's
    comparisons), so one model whose seeds collapse raises its own comparison, not every one; the components of
    all variants pooled (:func:`zoo.bench.ranking.variance_components`) for a dataset without comparisons."""
    pooled = ranking.variance_components(models)
    rows = []
    for dataset, frame in models.groupby("dataset", sort=False):
        present = set(frame["variant"])
        parts = [ranking.variance_components(frame[frame["variant"].isin((variant, reference))])
                 for variant, reference in baseline.items()
                 if variant != reference and variant in present and reference in present]
        if not parts:
            rows.append(pooled[pooled["dataset"] == dataset].iloc[0].to_dict())
            continue
        pair = pd.concat(parts, ignore_index=True)
        rows.append({"dataset": dataset, "n_variants": len(present), "n_seeds": float(pair["n_seeds"].median()),
                     "n_images": int(pair["n_images"].median()),
                     **{c: float(pair[c].median()) for c in _COMPONENTS}})
    return pd.DataFrame(rows, columns=pooled.columns)


def _advice(models: pd.DataFrame, families: Mapping[str, int], baseline: Mapping[str, str]) -> pd.DataFrame:
    """Seed advice at alpha (one comparison) and at Holm's first step over each dataset's family."""
    components = advice_components(models, baseline)
    if components.empty:
        return pd.DataFrame()
    one = ranking.seed_advice(components, deltas=DELTAS, alpha=ALPHA)
    family = components["dataset"].map(lambda d: max(families.get(str(d), 1), 1))
    many = pd.concat([ranking.seed_advice(components[family == m], deltas=DELTAS, alpha=ALPHA / m)
                      for m in sorted(family.unique())], ignore_index=True)
    out = one.merge(many[["dataset", "delta", "seeds_needed", "images_needed"]], on=["dataset", "delta"],
                    suffixes=("", "_family"))
    out = out.merge(components[["dataset", "seed_var", "interaction_var", "noise_var"]], on="dataset")
    out.insert(2, "family", out["dataset"].map(lambda d: max(families.get(str(d), 1), 1)).astype(int))
    return out


def analyse(scores: pd.DataFrame, *, metric: str, higher_is_better: bool,
            baseline: Mapping[str, str]) -> Analysis:
    """Every verdict statistic of one metric's score table (floors included as ``floor: `` variants).

    Args:
        scores: the long score table of the leaderboard (:func:`score_table`, plus floor rows).
        metric: the metric column, for the page.
        higher_is_better: the metric's direction.
        baseline: each variant's reference (:func:`baseline_map`); empty for no baseline comparison.
    """
    models = _models_only(scores)
    scored = set(models["variant"])
    # a baseline whose cells all failed has nothing to compare against: no comparison rows, the rest goes on
    comparable = any(variant in scored and reference in scored for variant, reference in baseline.items())
    comparison = (compare_to_baseline(models, baseline=dict(baseline), higher_is_better=higher_is_better,
                                      alpha=ALPHA) if comparable else pd.DataFrame())
    pairs = (ranking.pairwise_verdicts(models, higher_is_better=higher_is_better, alpha=ALPHA)
             if not models.empty else pd.DataFrame())
    ranks, frequencies, separation = _per_dataset(models, pairs, higher_is_better)
    flags = (ranking.floor_flags(scores, higher_is_better=higher_is_better) if len(models) < len(scores)
             else pd.DataFrame())
    return Analysis(metric, higher_is_better, scores, comparison, pairs, ranks, frequencies, separation,
                    _advice(models, _family_sizes(comparison), baseline) if not models.empty else pd.DataFrame(),
                    flags)


_SHARED = ["mean_difference", "ci_low", "ci_high", "p_improvement", "p_improvement_low", "p_improvement_high",
           "p_value", "p_adjusted", "significant", "verdict"]


def comparison_table(analysis: Analysis) -> pd.DataFrame:
    """``comparison.csv``: one row per (dataset, variant) against its baseline; the recipe verdict's columns
    first (``verdict`` is the recipe verdict), then the model comparison's, prefixed ``model_``."""
    columns = ["dataset", "metric", "variant", "baseline", "n_seeds", "n_seeds_baseline", "n_images", *_SHARED,
               "min_p_seeds", "min_p_images", *(f"model_{c}" for c in _SHARED)]
    table = analysis.comparison
    if table.empty:
        return pd.DataFrame(columns=columns)
    keys = {"variant_a": "variant", "variant_b": "baseline", "n_seeds_a": "n_seeds", "n_seeds_b": "n_seeds_baseline"}
    recipe = table[table["kind"] == "recipe"].rename(columns=keys)
    model = table[table["kind"] == "model"].rename(columns={**keys, **{c: f"model_{c}" for c in _SHARED}})
    out = recipe.merge(model[["dataset", "variant", *(f"model_{c}" for c in _SHARED)]], on=["dataset", "variant"],
                       how="left")
    out.insert(1, "metric", analysis.metric)
    return out[columns].reset_index(drop=True)


def pairs_table(analysis: Analysis) -> pd.DataFrame:
    """``pairs.csv``: every pair of variants of each dataset, recipe verdicts Holm-adjusted per dataset."""
    if analysis.pairs.empty:
        return analysis.pairs
    out = analysis.pairs.drop(columns=["kind"])
    out.insert(1, "metric", analysis.metric)
    return out


def separation_table(analysis: Analysis) -> pd.DataFrame:
    """``separation.csv``: per dataset, the separation, rank agreement and variance components."""
    if analysis.separation.empty:
        return analysis.separation
    out = analysis.separation.copy()
    out.insert(1, "metric", analysis.metric)
    if not analysis.advice.empty:
        components = analysis.advice.drop_duplicates("dataset")[["dataset", "n_seeds", "n_images", "seed_var",
                                                                "interaction_var", "noise_var"]]
        out = out.merge(components, on="dataset", how="left")
    return out

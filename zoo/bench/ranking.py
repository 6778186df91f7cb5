"""What a grid's leaderboard can tell apart: all-pairs maps, rank stability, separation, floors, seed advice.

Built on the comparisons of :mod:`zoo.bench.verdicts` (same long score table, same definitions).

- **All-pairs map**: the verdict of every pair of variants of a dataset, Holm-adjusted over its pairs.

- **Ranking stability** (challengeR, Wiesenfarth et al. 2021): each bootstrap replicate resamples the test
  images (shared by all variants) and, within each variant, its seeds, both with replacement; a variant's score
  is the mean over resampled seeds of the NaN-mean over resampled images, and variants are ranked (1 = best,
  ties share the lowest rank). Per variant: point rank, median rank and the 95% rank interval
  (``rank_low``, ``rank_high``: lower and upper percentiles of the replicate ranks); variants whose interval
  includes 1 are tied for first. Agreement with the point ranking: the mean Kendall's tau-b over replicates and
  the share of replicates that rank exactly alike.
- **Separation** of one dataset: the cell scores (per-seed means) in a one-way ANOVA by variant. ``eta_squared``
  is SS_between / SS_total; the shares of variance are the random-effects components, model
  ``max(0, (MS_b - MS_w) / n0)`` and seed ``MS_w`` (``n0 = (N - sum n_v^2 / N) / (k - 1)``), over their sum; the
  number of pairs told apart comes from the Holm-adjusted all-pairs recipe verdicts.
- **Seed advice**: the variance of a per-image score splits into a trained model's offset (``seed_var``), a
  variant x image interaction (``interaction_var``) and (model, image) noise (``noise_var``), estimated by
  two-way ANOVA on complete images. The recipe verdict's mean difference between n v n seeds on n_I images then
  has variance ``2 (seed_var + noise_var / n_I) / n + 2 interaction_var / n_I``, and its power is read off a
  noncentral t with Satterthwaite's degrees of freedom, zero where the smallest attainable p (seeds or images)
  exceeds alpha. :func:`simulate_power` checks it against the test itself.
- **Floors**: a trained variant is flagged when the recipe-verdict interval of its difference from the best
  trivial predictor of its dataset (a variant named ``FLOOR_PREFIX + name``, no seed spread) does not clear 0.
- **Simulation**: synthetic leaderboards with a planted truth give the family-wise error rate and the power of
  both kinds of verdict (:func:`simulate_power`; the README's figures come from it).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from zoo.bench.verdicts import (FLOOR_PREFIX, MAX_EXACT, N_BOOT, N_PERM, Kind, _comparison_rows,
                                _difference_interval, _image_weights, _models_only, _noise_var, _paired,
                                _recipe_p, _signed_rank_p, holm, holm_verdicts, min_images, min_seeds,
                                score_matrices)

__all__ = ["RankStability", "Separation", "SimulationResult", "pairwise_verdicts", "significance_map",
           "ranking_stability", "dataset_separation", "variance_components", "recipe_power", "seed_advice",
           "floor_flags", "simulate_power"]


# --- all-pairs verdicts -------------------------------------------------------------------------------------

def pairwise_verdicts(scores: pd.DataFrame, *, kind: Kind = "recipe", seed: int = 0,
                      higher_is_better: bool = True, alpha: float = 0.05, n_perm: int = N_PERM,
                      max_exact: int = MAX_EXACT, n_boot: int = N_BOOT) -> pd.DataFrame:
    """Every pair of variants of every dataset, Holm-adjusted over the pairs of each dataset.

    Args:
        scores: the long score table of one metric (floors are left out).
        kind: "recipe" (seeds as the unit) or "model" (images as the unit).
        seed: see :func:`~zoo.bench.verdicts.compare_to_baseline`.
        higher_is_better: the metric's direction.
        alpha: the family-wise error rate of each dataset's map.
        n_perm, max_exact, n_boot: see :func:`~zoo.bench.verdicts.recipe_verdict`.

    Returns:
        One row per (dataset, A, B), A before B in the table's order, with the columns of
        :func:`~zoo.bench.verdicts.compare_to_baseline`; :func:`significance_map` squares one dataset.
    """
    if kind not in ("recipe", "model"):
        raise ValueError(f"kind={kind!r} is not one of ('recipe', 'model')")
    table = _comparison_rows(scores, lambda vs: list(itertools.combinations(vs, 2)), kinds=(kind,), seed=seed,
                             higher_is_better=higher_is_better, n_perm=n_perm, max_exact=max_exact, n_boot=n_boot)
    families = [holm_verdicts(t, alpha=alpha) for _, t in table.groupby("dataset", sort=False)]
    return pd.concat(families, ignore_index=True) if families else holm_verdicts(table, alpha=alpha)


_MIRRORED = {"p_value": lambda x: x, "p_adjusted": lambda x: x, "mean_difference": lambda x: -x,
             "p_improvement": lambda x: 1 - x,
             "verdict": lambda x: {"better": "worse", "worse": "better"}.get(x, x)}


def significance_map(pairs: pd.DataFrame, *, dataset: str, value: str = "p_adjusted") -> pd.DataFrame:
    """One dataset of :func:`pairwise_verdicts` as a variants x variants table (row against column).

    Args:
        pairs: the output of :func:`pairwise_verdicts`.
        dataset: the dataset to square.
        value: the column shown, one of ``_MIRRORED``'s keys; the cell below the diagonal is the mirror of the
            one above (p-values equal, ``mean_difference`` negated, ``p_improvement`` 1 - p, ``verdict``
            "better" <-> "worse"). The diagonal is empty.
    """
    if value not in _MIRRORED:
        raise ValueError(f"value={value!r} is not one of {tuple(_MIRRORED)}")
    rows = pairs[pairs["dataset"] == dataset]
    names = list(pd.unique(pd.concat([rows["variant_a"], rows["variant_b"]])))
    square = pd.DataFrame(None, index=pd.Index(names, name="variant"), columns=names, dtype=object)
    for a, b, x in zip(rows["variant_a"], rows["variant_b"], rows[value]):
        square.loc[a, b], square.loc[b, a] = x, _MIRRORED[value](x)
    return square if value == "verdict" else square.astype(float)


# --- ranking stability --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RankStability:
    """Bootstrap ranking of one dataset's variants.

    ``table``: one row per variant (``variant, score, rank, median_rank, rank_low, rank_high,
    tied_for_first``), in point-rank order. ``kendall_tau``: mean Kendall's tau-b between replicate and point
    rankings. ``share_identical``: share of replicates ranking every variant as the point ranking does.
    ``frequencies``: ``variant, rank, share`` (the share of replicates giving the variant that rank), what a
    blob plot draws.
    """

    table: pd.DataFrame
    kendall_tau: float
    share_identical: float
    frequencies: pd.DataFrame = field(default_factory=pd.DataFrame)


def _cell_scores(x: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Per-seed NaN-means of ``(seeds, images)`` scores under image weights ``(n_boot, images)``."""
    finite = np.isfinite(x)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (weights @ np.where(finite, x, 0.0).T) / (weights @ finite.T)


def ranking_stability(scores: pd.DataFrame, *, rng: np.random.Generator, higher_is_better: bool = True,
                      n_boot: int = N_BOOT, level: float = 0.95) -> RankStability:
    """Bootstrap the ranking of one dataset's variants (images and each variant's seeds resampled).

    Args:
        scores: the long score table of one dataset and metric (floors are left out).
        rng: draws the replicates: per replicate the image weights, then each variant's seeds in table order.
        higher_is_better: the metric's direction.
        n_boot: bootstrap replicates.
        level: coverage of the rank intervals.
    """
    mats = score_matrices(_models_only(scores))
    names, sign = list(mats), (1.0 if higher_is_better else -1.0)
    n_images = next(iter(mats.values())).shape[1]
    point = np.array([np.nanmean(np.nanmean(x, axis=1)) for x in mats.values()])
    weights = _image_weights(rng, n_boot, n_images)
    boot = np.empty((n_boot, len(names)))
    for j, x in enumerate(mats.values()):
        cells = _cell_scores(x, weights)
        picked = np.take_along_axis(cells, rng.integers(0, x.shape[0], cells.shape), axis=1)
        with np.errstate(invalid="ignore"):
            boot[:, j] = np.nanmean(picked, axis=1) if picked.size else np.nan
    rank = stats.rankdata(-sign * point, method="min", nan_policy="omit")
    ranks = stats.rankdata(-sign * boot, method="min", axis=1, nan_policy="omit")
    tail = (1 - level) / 2
    low = np.nanquantile(ranks, tail, axis=0, method="lower")
    table = pd.DataFrame({"variant": names, "score": point, "rank": rank,
                          "median_rank": np.nanmedian(ranks, axis=0), "rank_low": low,
                          "rank_high": np.nanquantile(ranks, 1 - tail, axis=0, method="higher"),
                          "tied_for_first": low == 1})
    taus = [stats.kendalltau(rank, r).statistic for r in ranks] if len(names) > 1 else [math.nan]
    frequencies = pd.DataFrame([(name, int(r), float(np.mean(ranks[:, j] == r))) for j, name in enumerate(names)
                                for r in np.unique(ranks[:, j][~np.isnan(ranks[:, j])])],
                               columns=["variant", "rank", "share"])
    return RankStability(table.sort_values("rank", kind="stable").reset_index(drop=True),
                         float(np.nanmean(taus)) if not np.isnan(taus).all() else math.nan,
                         float(np.mean((ranks == rank).all(axis=1))), frequencies)


# --- separation ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Separation:
    """Does one dataset separate the models at this budget? (see the module docstring for definitions)"""

    dataset: str
    n_variants: int
    n_models: int
    model_share: float
    seed_share: float
    eta_squared: float
    anova_p: float
    pairs_separated: int
    n_pairs: int
    verdict: str


def dataset_separation(scores: pd.DataFrame, *, pairs: pd.DataFrame | None = None, seed: int = 0,
                       higher_is_better: bool = True, alpha: float = 0.05, n_perm: int = N_PERM,
                       max_exact: int = MAX_EXACT, n_boot: int = N_BOOT) -> Separation:
    """Share of the cell-score variance due to the model vs the seed, and the pairs a dataset tells apart.

    Args:
        scores: the long score table of one dataset and metric (floors are left out).
        pairs: :func:`pairwise_verdicts` (recipe) with this dataset's rows, if already computed.
        seed: seeds the pairwise verdicts when ``pairs`` is not given.
        higher_is_better: the metric's direction.
        alpha: the family-wise error rate of the pairwise verdicts.
        n_perm, max_exact, n_boot: see :func:`~zoo.bench.verdicts.recipe_verdict`.

    Returns:
        The decomposition, the count of pairs with a recipe verdict, and a one-line ``verdict`` such as
        "at this budget, `drive` separates 0 of 36 pairs; seeds explain 60% of the variance".
    """
    models = _models_only(scores)
    dataset = str(models["dataset"].iloc[0])
    groups = [c[np.isfinite(c)] for c in (np.nanmean(x, axis=1) for x in score_matrices(models).values())]
    groups = [g for g in groups if len(g)]
    sizes, cells = np.array([len(g) for g in groups]), np.concatenate(groups)
    k, n = len(groups), len(cells)
    ss_between = float(sum(len(g) * (g.mean() - cells.mean()) ** 2 for g in groups))
    ss_within = float(sum(((g - g.mean()) ** 2).sum() for g in groups))
    ms_within = ss_within / (n - k) if n > k else math.nan
    n0 = (n - (sizes**2).sum() / n) / (k - 1) if k > 1 else math.nan
    model_var = max(0.0, (ss_between / (k - 1) - ms_within) / n0) if k > 1 and n > k else math.nan
    model_share = float(model_var / (model_var + ms_within)) if model_var + ms_within > 0 else math.nan
    anova_p = float(stats.f_oneway(*groups).pvalue) if k > 1 and n > k else math.nan
    if pairs is None:
        pairs = pairwise_verdicts(models, seed=seed, higher_is_better=higher_is_better, alpha=alpha,
                                  n_perm=n_perm, max_exact=max_exact, n_boot=n_boot)
    pairs = pairs[pairs["dataset"] == dataset]
    told_apart = int(pairs["verdict"].isin(("better", "worse")).sum())
    verdict = (f"at this budget, `{dataset}` separates {told_apart} of {len(pairs)} pairs; "
               f"seeds explain {1 - model_share:.0%} of the variance")
    return Separation(dataset, k, n, model_share, 1 - model_share,
                      ss_between / (ss_between + ss_within) if ss_between + ss_within > 0 else math.nan,
                      anova_p, told_apart, len(pairs), verdict)


# --- seed advice --------------------------------------------------------------------------------------------

def variance_components(scores: pd.DataFrame) -> pd.DataFrame:
    """Seed, variant x image and noise variance of the per-image scores, per dataset (ANOVA estimates).

    Args:
        scores: the long score table of one metric (floors are left out).

    Returns:
        One row per dataset: ``n_variants``, ``n_seeds`` (median per variant), ``n_images`` (scored by every
        model), ``seed_var``, ``interaction_var`` and ``noise_var``. The noise is the pooled seed x image
        residual of each variant; the seed variance is the pooled variance of per-seed means less its noise
        share; the interaction is the variant x image residual of seed-averaged scores less its noise share
        (both floored at 0; NaN where the design cannot estimate them).
    """
    rows = []
    for dataset, frame in _models_only(scores).groupby("dataset", sort=False):
        mats = list(score_matrices(frame).values())
        own = [x[:, np.isfinite(x).all(axis=0)] for x in mats]
        reps = [x for x in own if x.shape[0] > 1 and x.shape[1] > 1]
        noise = _noise_var(*reps) if reps else math.nan
        dof = sum(len(x) - 1 for x in reps)
        seed_var = (max(0.0, sum((len(x) - 1) * (x.mean(axis=1).var(ddof=1) - noise / x.shape[1]) for x in reps)
                        / dof) if dof else math.nan)
        common = np.all([np.isfinite(x).all(axis=0) for x in mats], axis=0)
        means = np.array([x[:, common].mean(axis=0) for x in mats])
        k, n_i = means.shape
        interaction = math.nan
        if k > 1 and n_i > 1:
            r = means - means.mean(axis=1, keepdims=True) - means.mean(axis=0) + means.mean()
            ms = float((r * r).sum()) / ((k - 1) * (n_i - 1))
            interaction = max(0.0, ms - np.nan_to_num(noise) * np.mean([1 / len(x) for x in mats]))
        rows.append({"dataset": dataset, "n_variants": k, "n_seeds": float(np.median([len(x) for x in mats])),
                     "n_images": int(n_i), "seed_var": seed_var, "interaction_var": interaction,
                     "noise_var": noise})
    return pd.DataFrame(rows, columns=["dataset", "n_variants", "n_seeds", "n_images", "seed_var",
                                       "interaction_var", "noise_var"])


def recipe_power(delta: float, *, n_seeds: float | np.ndarray, n_images: float | np.ndarray, seed_var: float,
                 interaction_var: float, noise_var: float, alpha: float = 0.05) -> np.ndarray:
    """Approximate power of a recipe verdict (n v n seeds, two-sided ``alpha``) to detect a difference ``delta``.

    Args:
        delta: the true mean difference.
        n_seeds: seeds per variant (broadcasts with ``n_images``).
        n_images: paired test images.
        seed_var: variance of a trained model's offset.
        interaction_var: variance of the variant x image interaction.
        noise_var: variance of the (model, image) noise.
        alpha: the threshold the p-value must reach (Holm's first step is ``alpha / m``).

    Returns:
        The power, 0 where the seeds or images cannot produce a p-value below ``alpha``.
    """
    n, n_i = np.broadcast_arrays(np.asarray(n_seeds, float), np.asarray(n_images, float))
    seed_part = 2 * (seed_var + noise_var / n_i) / n
    image_part = 2 * interaction_var / n_i
    var = seed_part + image_part
    with np.errstate(divide="ignore", invalid="ignore"):
        df = var**2 / (seed_part**2 / (2 * n - 2) + np.where(n_i > 1, image_part**2 / (n_i - 1), 0.0))
        crit = stats.t.ppf(1 - alpha / 2, df)
        shift = abs(delta) / np.sqrt(var)
        power = stats.nct.sf(crit, df, shift) + stats.nct.cdf(-crit, df, shift)
    reachable = (n >= min_seeds(alpha)) & (n_i >= min_images(alpha))
    return np.where(reachable, np.nan_to_num(power, nan=1.0 if delta else 0.0), 0.0)


def seed_advice(components: pd.DataFrame, *, deltas: Sequence[float] = (0.01, 0.02, 0.05), power: float = 0.8,
                alpha: float = 0.05, max_seeds: int = 100, max_images: int = 2000) -> pd.DataFrame:
    """Seeds (and test images) a recipe verdict needs to detect each difference with the given power.

    Args:
        components: the output of :func:`variance_components`.
        deltas: the differences to detect, in metric units.
        power: the target power.
        alpha: the threshold (pass ``alpha / m`` to plan for Holm's first step over m comparisons).
        max_seeds: search limit for seeds per variant.
        max_images: search limit for test images.

    Returns:
        One row per (dataset, delta): ``n_seeds`` and ``n_images`` now, ``power_now`` (at the median seed
        count), ``seeds_needed`` (fewest seeds per variant at the current images; NaN past ``max_seeds``) and
        ``images_needed`` (fewest images at ``seeds_needed`` seeds, or at ``max_seeds`` when none suffice; NaN
        past ``max_images``).
    """
    seeds, images = np.arange(2, max_seeds + 1), np.arange(1, max_images + 1)
    rows = []
    for row in components.itertuples(index=False):
        var = {k: float(np.nan_to_num(getattr(row, k))) for k in ("seed_var", "interaction_var", "noise_var")}
        for delta in deltas:
            by_seeds = np.flatnonzero(recipe_power(delta, n_seeds=seeds, n_images=row.n_images, alpha=alpha,
                                                   **var) >= power)
            needed = float(seeds[by_seeds[0]]) if len(by_seeds) else math.nan
            by_images = np.flatnonzero(recipe_power(delta, n_seeds=max_seeds if math.isnan(needed) else needed,
                                                    n_images=images, alpha=alpha, **var) >= power)
            now = recipe_power(delta, n_seeds=row.n_seeds, n_images=row.n_images, alpha=alpha, **var)
            rows.append({"dataset": row.dataset, "delta": delta, "n_seeds": row.n_seeds, "n_images": row.n_images,
                         "power_now": float(now), "seeds_needed": needed,
                         "images_needed": float(images[by_images[0]]) if len(by_images) else math.nan})
    return pd.DataFrame(rows, columns=["dataset", "delta", "n_seeds", "n_images", "power_now", "seeds_needed",
                                       "images_needed"])


# --- floors -------------------------------------------------------------------------------------------------

def floor_flags(scores: pd.DataFrame, *, higher_is_better: bool = True, level: float = 0.95) -> pd.DataFrame:
    """Flag the models that do not beat their dataset's best trivial predictor by more than their interval.

    Args:
        scores: the long score table of one metric, floors included as variants named ``FLOOR_PREFIX + name``
            (their seed may be NaN; several rows of one floor and image are averaged).
        higher_is_better: the metric's direction.
        level: coverage of the interval of the difference.

    Returns:
        One row per (dataset, trained variant) of datasets with a floor: ``floor`` (the best one), ``floor_score``,
        ``score`` (the variant's mean over seeds), ``difference`` (variant - floor on the paired images) with the
        Welch-Satterthwaite interval of a recipe verdict (the floor has no seed spread), and ``flagged`` when
        that interval does not clear the floor in the metric's direction.
    """
    sign, rows = (1.0 if higher_is_better else -1.0), []
    for dataset, frame in scores.groupby("dataset", sort=False):
        mats = score_matrices(frame)
        floors = {n: np.nanmean(x, axis=0, keepdims=True) for n, x in mats.items() if n.startswith(FLOOR_PREFIX)}
        if not floors:
            continue
        best = max(floors, key=lambda n: sign * np.nanmean(floors[n]))
        for variant, x in mats.items():
            if variant in floors:
                continue
            a, b = (sign * y for y in _paired(x, floors[best]))
            diff, low, high = ((math.nan,) * 3 if a.size == 0 else _difference_interval(a, b, level))
            rows.append({"dataset": dataset, "variant": variant, "floor": best,
                         "floor_score": float(np.nanmean(floors[best])), "score": float(np.nanmean(x)),
                         "difference": sign * diff, "ci_low": min(sign * low, sign * high),
                         "ci_high": max(sign * low, sign * high), "flagged": not low > 0})
    return pd.DataFrame(rows, columns=["dataset", "variant", "floor", "floor_score", "score", "difference",
                                       "ci_low", "ci_high", "flagged"])


# --- simulation ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SimulationResult:
    """Error rates of the verdicts on synthetic leaderboards with a planted truth (:func:`simulate_power`).

    ``fwer``: share of leaderboards with a verdict on a comparison whose variants differ only by seed (NaN
    without one). ``power``: share with the correct verdict ("better") for the variant given ``delta`` (NaN
    when ``delta`` is 0). ``image_fwer``/``image_power``: the same for the model comparison (images as the
    unit), which ignores the seed effect: the negative control.
    """

    n_leaderboards: int
    n_seeds: int
    n_images: int
    n_variants: int
    delta: float
    seed_sd: float
    fwer: float
    power: float
    image_fwer: float
    image_power: float


def simulate_power(*, n_seeds: int, delta: float, rng: np.random.Generator, n_images: int = 20,
                   n_variants: int = 4, seed_sd: float = 0.02, image_sd: float = 0.1, noise_sd: float = 0.05,
                   interaction_sd: float = 0.0, n_leaderboards: int = 200, alpha: float = 0.05, n_perm: int = N_PERM,
                   max_exact: int = MAX_EXACT) -> SimulationResult:
    """Family-wise error and power of Holm-adjusted verdicts against a baseline on synthetic leaderboards.

    Each leaderboard scores ``n_variants`` variants x ``n_seeds`` seeds on ``n_images`` shared images:
    ``0.5 + delta [variant 1] + seed_sd * N(model) + image_sd * N(image) + noise_sd * N(model, image)
    + interaction_sd * N(variant, image)``: every trained model has its own offset, the images their difficulty,
    each (model, image) its noise, and optionally each variant its own strengths on some images.
    Variants 1.. are compared with variant 0 (one family of ``n_variants - 1``), by recipe verdict and by
    model comparison.

    Args:
        n_seeds: trained models per variant.
        delta: the planted improvement of variant 1; 0 makes every comparison a null.
        rng: draws the leaderboards (and Monte Carlo permutations, if any).
        n_images: test images.
        n_variants: variants per leaderboard, the baseline included.
        seed_sd: standard deviation of a trained model's offset.
        image_sd: standard deviation of an image's difficulty.
        noise_sd: standard deviation of the (model, image) noise.
        interaction_sd: standard deviation of the variant x image interaction (0 in the issue's simulation).
        n_leaderboards: synthetic leaderboards.
        alpha: the family-wise error rate of Holm's adjustment.
        n_perm, max_exact: see :func:`~zoo.bench.verdicts.recipe_verdict`.
    """
    shape = (n_variants, n_seeds, n_images)
    hits = np.zeros((2, n_leaderboards, n_variants - 1), dtype=bool)  # (recipe, model), board, comparison
    planted = 1 if delta else 0
    for board in range(n_leaderboards):
        y = (0.5 + seed_sd * rng.standard_normal(shape[:2])[..., None] + image_sd * rng.standard_normal(n_images)
             + noise_sd * rng.standard_normal(shape) + interaction_sd * rng.standard_normal((n_variants, 1, n_images)))
        y[1] += delta
        others, base = y[1:], np.broadcast_to(y[0], (n_variants - 1, n_seeds, n_images))
        p_recipe = _recipe_p(others, base, rng, n_perm=n_perm, max_exact=max_exact)[0]
        d = others.mean(axis=(1, 2)) - y[0].mean()
        # a null comparison counts any verdict; the planted one only the right direction
        right = (np.arange(n_variants - 1) >= planted) | (np.sign(d) == np.sign(delta))
        p_image = _signed_rank_p(others.mean(axis=1) - y[0].mean(axis=0))
        hits[:, board] = (holm(p_recipe) <= alpha) & right, (holm(p_image) <= alpha) & right
    null = slice(planted, None)
    rates = [(float(h[:, null].any(axis=1).mean()) if h[:, null].size else math.nan,
              float(h[:, 0].mean()) if delta else math.nan) for h in hits]
    return SimulationResult(n_leaderboards, n_seeds, n_images, n_variants, delta, seed_sd, *rates[0], *rates[1])

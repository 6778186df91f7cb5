"""Verdicts a reader can trust: recipe verdicts, model comparisons and Holm's adjustment (issue 13).

A leaderboard answers two questions, kept apart and named as such:

- **Recipe verdict**: is variant A a better recipe than B when trained again? The trained model (variant x
  seed) is the unit of replication; the test images are paired. The mean difference A - B has a
  Welch-Satterthwaite interval whose variance has seed and image terms,
  ``var(m_A)/n_A + var(m_B)/n_B + max(0, var(d) - s2 (1/n_A + 1/n_B)) / n_I`` (``m``: per-seed means; ``d``:
  seed-averaged per-image differences; ``s2``: pooled seed x image residual variance, whose share of ``var(d)``
  the seed terms already hold). The p-value is the larger of two tests (an intersection-union test):
  1. *seeds*: a permutation test of the variant labels over the trained models whose statistic is the mean
     difference over that standard error (every split enumerated up to ``max_exact``, else ``n_perm`` Monte
     Carlo splits): exact when the recipes differ only by seed, and studentizing with the image term keeps
     it near its level when a variant is better on some images and worse on others;
  2. *images*: a two-sided Wilcoxon signed-rank test of the seed-averaged per-image differences, set to 1
     when their ranks lean against the mean difference, so a verdict never rests on a few images.
  ``P(A > B)`` (rliable's probability of improvement) is the share of (seed of A, seed of B) pairs whose
  per-seed means favour A, ties half, with a percentile interval from a two-level bootstrap (the shared
  images, then each variant's seeds, resampled).
- **Model comparison**: do these trained models differ on this test set? Images are the unit, each averaged
  over seeds: two-sided Wilcoxon signed-rank p, mean difference with a percentile bootstrap interval over
  images, and ``P(A > B)``: the share of images whose seed-averaged score favours A (ties half).

The smallest attainable p says when no verdict is possible: ``2 / C(2n, n)`` for n v n seeds (0.1 at 3 v 3,
2/252 at 5 v 5; ``1 / C(n_A + n_B, n_A)`` for unequal counts) and ``2 / 2**n_I`` over n_I images (0.125 at 4).
Holm's adjustment runs over the comparisons of one dataset per metric and kind (a reader's question is about one
dataset: which model segments *their* data best); a comparison whose smallest p cannot pass it reads "too few seeds for a verdict" (or test images) with the number a family of its size needs
(:func:`min_seeds`, :func:`min_images`), so 3 seeds or a 4-image split never give a verdict.
Input: a long score table (``SCORE_COLUMNS``) of one metric, a row per (trained model, test image), NaN where
undefined; a comparison uses the images all its models scored. Floors (``FLOOR_PREFIX``) are left out here.
"""

from __future__ import annotations

import itertools
import math
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from functools import lru_cache
from typing import Literal

import numpy as np
import pandas as pd
from scipy import stats

__all__ = ["SCORE_COLUMNS", "FLOOR_PREFIX", "N_BOOT", "N_PERM", "MAX_EXACT", "Comparison", "score_matrices",
           "recipe_verdict", "model_comparison", "holm", "min_seeds", "min_images", "holm_verdicts",
           "compare_to_baseline"]

SCORE_COLUMNS = ("dataset", "variant", "seed", "image_id", "value")
FLOOR_PREFIX = "floor: "
N_BOOT = 1000
N_PERM = 9999
MAX_EXACT = 20_000  # every split up to 8 v 8 seeds (12,870); Monte Carlo beyond
Kind = Literal["recipe", "model"]


# --- inputs -------------------------------------------------------------------------------------------------

def score_matrices(scores: pd.DataFrame) -> dict[str, np.ndarray]:
    """Per variant of one dataset, its ``(seeds, images)`` scores on the dataset's shared image axis.

    Args:
        scores: the long score table (``SCORE_COLUMNS``) of one dataset and metric.

    Returns:
        Variants in order of first appearance; rows are seeds in ascending order (a NaN seed, as floors
        have, counts as -1), columns the union of image ids in sorted order, NaN where a model has no value.

    Raises:
        ValueError: a column is missing, datasets are mixed, or a (variant, seed, image) repeats.
    """
    missing = [c for c in SCORE_COLUMNS if c not in scores.columns]
    if missing:
        raise ValueError(f"score table lacks columns {missing}; expected {list(SCORE_COLUMNS)}")
    datasets = list(pd.unique(scores["dataset"]))
    if len(datasets) > 1:
        raise ValueError(f"score table mixes datasets {datasets}; pass one dataset's rows")
    keys = ["variant", "seed", "image_id"]
    repeated = scores.duplicated(keys)
    if repeated.any():
        raise ValueError(f"{int(repeated.sum())} repeated (variant, seed, image_id) rows, first "
                         f"{tuple(scores.loc[repeated, keys].iloc[0])}; keep one row per trained model and image")
    wide = (scores.assign(seed=scores["seed"].fillna(-1))
            .pivot(index=["variant", "seed"], columns="image_id", values="value").sort_index(axis=1))
    return {v: wide.loc[v].sort_index().to_numpy(float) for v in pd.unique(scores["variant"])}


def _models_only(scores: pd.DataFrame) -> pd.DataFrame:
    """The rows of trained models (floors left out)."""
    return scores[~scores["variant"].astype(str).str.startswith(FLOOR_PREFIX)]


def _paired(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both arrays restricted to the images every trained model of either scored."""
    keep = np.isfinite(a).all(axis=0) & np.isfinite(b).all(axis=0)
    return a[:, keep], b[:, keep]


def _interval(samples: np.ndarray, level: float) -> tuple[float, ...]:
    """Percentile interval of bootstrap replicates."""
    return tuple(float(x) for x in np.percentile(samples, [50 - level * 50, 50 + level * 50]))


# --- the two tests of a recipe verdict ---------------------------------------------------------------------

@lru_cache(maxsize=8)
def _splits(n_a: int, n_b: int) -> np.ndarray:
    """Every assignment of ``n_a`` of ``n_a + n_b`` trained models to A, as 0/1 columns ``(n, splits)``."""
    flat = itertools.chain.from_iterable(itertools.combinations(range(n_a + n_b), n_a))
    rows = np.fromiter(flat, dtype=np.int64).reshape(-1, n_a)
    masks = np.zeros((n_a + n_b, len(rows)))
    np.put_along_axis(masks, rows.T, 1.0, axis=0)
    masks.flags.writeable = False  # cached: shared by every later call
    return masks


def _studentized_t(masks: np.ndarray, y: np.ndarray, n_a: int) -> np.ndarray:
    """Mean difference A - B over its standard error (the interval's seed and image terms), for each split
    (``masks``: ``(n, splits)``, 1 marks A) of the ``(n, images)`` scores ``y`` of n trained models. Centring
    each image leaves the statistic unchanged and turns every image sum into a quadratic form in a mask."""
    y = y - y.mean(axis=0)
    (n, n_i), n_b = y.shape, y.shape[0] - n_a
    h = 1 / n_a + 1 / n_b
    m = y.mean(axis=1)  # per-seed means; they sum to 0
    s_a, q_a = m @ masks, (m * m) @ masks
    var = (np.maximum(q_a - s_a**2 / n_a, 0.0) / (n_a - 1) / n_a
           + np.maximum((m * m).sum() - q_a - s_a**2 / n_b, 0.0) / (n_b - 1) / n_b)
    if n_i > 1:  # var(d) over images is h^2 w / (n_i - 1); the pooled seed x image residual is (total - h w)
        w = (((y @ y.T) @ masks) * masks).sum(axis=0) - n_i * s_a**2
        noise = np.maximum((y * y).sum() - n_i * (m * m).sum() - h * w, 0.0) / ((n - 2) * (n_i - 1))
        var = var + np.maximum(h * h * w / (n_i - 1) - noise * h, 0.0) / n_i
    diff, se = s_a * h, np.sqrt(var)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(se > 0, diff / se, np.where(diff == 0, 0.0, np.sign(diff) * np.inf))


def _seed_test(a: np.ndarray, b: np.ndarray, rng: np.random.Generator, *, n_perm: int,
               max_exact: int) -> tuple[np.ndarray, float]:
    """Two-sided permutation p per ``(comparisons, seeds, images)`` pair, and the smallest p the design allows."""
    n_a, n_b = a.shape[1], b.shape[1]
    n_splits = math.comb(n_a + n_b, n_a)
    labels = np.r_[np.ones(n_a), np.zeros(n_b)]
    exact = n_splits <= max_exact
    masks = _splits(n_a, n_b) if exact else rng.permuted(np.tile(labels[:, None], (1, n_perm)), axis=0)
    p = np.empty(len(a))
    for k, y in enumerate(np.concatenate([a, b], axis=1)):
        observed = abs(_studentized_t(labels[:, None], y, n_a)[0]) * (1 - 1e-9)  # tolerance: summation order
        hits = np.sum(np.abs(_studentized_t(masks, y, n_a)) >= observed)
        p[k] = hits / n_splits if exact else (1 + hits) / (1 + n_perm)
    floor = (2 if n_a == n_b else 1) / n_splits
    return p, floor if exact else max(floor, 1 / (1 + n_perm))


def _signed_rank_p(d: np.ndarray, direction: np.ndarray | None = None) -> np.ndarray:
    """Two-sided Wilcoxon signed-rank p of each row of ``d`` (zeros dropped), never below the exact floor.

    With ``direction`` (+1/-1 per row), the p of a row whose ranks lean the other way is 1, so a verdict
    and its mean difference agree. scipy's approximations are bounded below by ``2 / 2**n`` (n nonzero).
    """
    d = np.atleast_2d(d)
    n = (d != 0).sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = np.asarray(stats.wilcoxon(d, axis=-1).pvalue, dtype=float) if d.shape[-1] else np.ones(len(d))
    p = np.where(n > 0, np.maximum(np.nan_to_num(p, nan=1.0), 2.0 ** (1 - n)), 1.0)
    if direction is not None:
        ranks = stats.rankdata(np.abs(d), axis=-1) * (d != 0)
        lean = np.sign((ranks * (d > 0)).sum(axis=-1) - ranks.sum(axis=-1) / 2)
        p = np.where(lean == np.sign(direction), p, 1.0)
    return np.minimum(p, 1.0)


def _image_floor(n_images: int) -> float:
    """The smallest two-sided signed-rank p over ``n_images`` images."""
    return min(1.0, 2.0 ** (1 - n_images))


def _recipe_p(a: np.ndarray, b: np.ndarray, rng: np.random.Generator, *, n_perm: int,
              max_exact: int) -> tuple[np.ndarray, float, float]:
    """Recipe p-values of paired, oriented ``(comparisons, seeds, images)`` arrays, and the floors."""
    n_a, n_b, n_i = a.shape[1], b.shape[1], a.shape[2]
    if min(n_a, n_b) < 2 or n_i == 0:  # no seed spread to compare against
        return np.ones(len(a)), 1.0 if min(n_a, n_b) < 2 else 0.0, _image_floor(n_i)
    p_seeds, floor = _seed_test(a, b, rng, n_perm=n_perm, max_exact=max_exact)
    d = a.mean(axis=1) - b.mean(axis=1)
    return np.maximum(p_seeds, _signed_rank_p(d, np.sign(d.mean(axis=1)))), floor, _image_floor(n_i)


def _noise_var(*arrays: np.ndarray) -> float:
    """Pooled seed x image residual variance of ``(seeds, images)`` arrays (two-way, one value per cell)."""
    ss, dof = 0.0, 0
    for x in arrays:
        r = x - x.mean(axis=1, keepdims=True) - x.mean(axis=0) + x.mean()
        ss, dof = ss + float((r * r).sum()), dof + (x.shape[0] - 1) * (x.shape[1] - 1)
    return ss / dof if dof else 0.0


def _difference_interval(a: np.ndarray, b: np.ndarray, level: float) -> tuple[float, float, float]:
    """Mean difference A - B of paired arrays with its Welch-Satterthwaite interval (a 1-row array is fixed)."""
    n_a, n_b, n_i = a.shape[0], b.shape[0], a.shape[1]
    m_a, m_b = a.mean(axis=1), b.mean(axis=1)
    diff = float(m_a.mean() - m_b.mean())
    parts = [(float(m.var(ddof=1)) / len(m), len(m) - 1) for m in (m_a, m_b) if len(m) > 1]
    if n_i > 1:
        d = a.mean(axis=0) - b.mean(axis=0)
        noise = _noise_var(a, b) * sum(1 / n for n in (n_a, n_b) if n > 1)
        parts.append((max(0.0, float(d.var(ddof=1)) - noise) / n_i, n_i - 1))
    var = sum(v for v, _ in parts)
    if not var > 0:
        return diff, diff, diff
    df = var**2 / sum(v**2 / k for v, k in parts if v > 0)
    half = float(stats.t.ppf(0.5 + level / 2, df)) * math.sqrt(var)
    return diff, diff - half, diff + half


def _improvement(m_a: np.ndarray, m_b: np.ndarray) -> np.ndarray:
    """P(A > B) over all pairs along the last axes (ties half); leading axes are replicates."""
    a, b = m_a[..., :, None], m_b[..., None, :]
    return ((a > b) + (a == b) / 2).mean(axis=(-2, -1))


def _image_weights(rng: np.random.Generator, n_boot: int, n_images: int) -> np.ndarray:
    """Bootstrap resamples of the images as weights: ``(n_boot, n_images)`` counts / n_images."""
    return rng.multinomial(n_images, np.full(n_images, 1 / n_images), size=n_boot) / n_images


# --- comparisons --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Comparison:
    """Variant A against variant B on one dataset and metric (one row of a comparison table).

    ``mean_difference`` (A - B) and its interval are in metric units; ``a_better`` and ``p_improvement`` follow
    the metric's direction. ``min_p_seeds``/``min_p_images``: the smallest p the seed counts / images allow
    (``min_p_seeds`` is 0 for a model comparison, which does not use seeds as the unit).
    """

    kind: Kind
    variant_a: str
    variant_b: str
    n_seeds_a: int
    n_seeds_b: int
    n_images: int
    mean_difference: float
    ci_low: float
    ci_high: float
    a_better: bool
    p_value: float
    min_p_seeds: float
    min_p_images: float
    p_improvement: float
    p_improvement_low: float
    p_improvement_high: float


def _comparison(kind: Kind, names: tuple[str, str], a: np.ndarray, b: np.ndarray, sign: float,
                interval: Sequence[float], p: Sequence[float], improvement: Sequence[float]) -> Comparison:
    """A :class:`Comparison` from oriented statistics, turned back into metric units."""
    diff, low, high = (sign * x for x in interval)
    return Comparison(kind, *names, a.shape[0], b.shape[0], a.shape[1], diff, min(low, high), max(low, high),
                      bool(sign * diff > 0), *p, *improvement)


def _recipe(names: tuple[str, str], a: np.ndarray, b: np.ndarray, rng: np.random.Generator, *, sign: float,
            n_perm: int, max_exact: int, n_boot: int, level: float) -> Comparison:
    """The recipe verdict statistics of two ``(seeds, images)`` arrays (intervals NaN below 2 seeds each)."""
    a, b = (sign * x for x in _paired(a, b))
    p = tuple(float(np.squeeze(x)) for x in _recipe_p(a[None], b[None], rng, n_perm=n_perm, max_exact=max_exact))
    if min(a.shape[0], b.shape[0]) < 2 or a.shape[1] == 0:
        return _comparison("recipe", names, a, b, sign, (math.nan,) * 3, p, (math.nan,) * 3)
    weights = _image_weights(rng, n_boot, a.shape[1])
    m_a, m_b = weights @ a.T, weights @ b.T  # (n_boot, seeds): per-seed means over resampled images
    m_a = np.take_along_axis(m_a, rng.integers(0, a.shape[0], m_a.shape), axis=1)
    m_b = np.take_along_axis(m_b, rng.integers(0, b.shape[0], m_b.shape), axis=1)
    improvement = (float(_improvement(a.mean(axis=1), b.mean(axis=1))), *_interval(_improvement(m_a, m_b), level))
    return _comparison("recipe", names, a, b, sign, _difference_interval(a, b, level), p, improvement)


def _model(names: tuple[str, str], a: np.ndarray, b: np.ndarray, rng: np.random.Generator, *, sign: float,
           n_boot: int, level: float) -> Comparison:
    """The model comparison statistics of two ``(seeds, images)`` arrays (images as the unit)."""
    a, b = (sign * x for x in _paired(a, b))
    n_i = a.shape[1]
    if n_i == 0 or min(a.shape[0], b.shape[0]) == 0:
        return _comparison("model", names, a, b, sign, (math.nan,) * 3, (1.0, 0.0, 1.0), (math.nan,) * 3)
    d = a.mean(axis=0) - b.mean(axis=0)
    better = (d > 0) + (d == 0) / 2
    weights = _image_weights(rng, n_boot, n_i)
    interval = (float(d.mean()), *_interval(weights @ d, level))
    improvement = (float(better.mean()), *_interval(weights @ better, level))
    p = (float(_signed_rank_p(d)[0]), 0.0, _image_floor(n_i))
    return _comparison("model", names, a, b, sign, interval, p, improvement)


def recipe_verdict(scores: pd.DataFrame, variant_a: str, variant_b: str, *, rng: np.random.Generator,
                   higher_is_better: bool = True, n_perm: int = N_PERM, max_exact: int = MAX_EXACT,
                   n_boot: int = N_BOOT, level: float = 0.95) -> Comparison:
    """Is ``variant_a`` a better recipe than ``variant_b`` when trained again? (seeds as the unit)

    Args:
        scores: the long score table of one dataset and metric.
        variant_a, variant_b: the variant compared (A) and the reference (B).
        rng: draws the bootstrap and, beyond ``max_exact`` seed splits, the Monte Carlo permutations.
        higher_is_better: the metric's direction.
        n_perm, max_exact: every split of the trained models is enumerated up to ``max_exact`` splits,
            beyond that ``n_perm`` random ones are drawn.
        n_boot: bootstrap replicates of the ``P(A > B)`` interval.
        level: coverage of the intervals.

    Returns:
        The unadjusted comparison; :func:`holm_verdicts` turns a family of them into verdicts.
    """
    return _recipe((variant_a, variant_b), *_pair_of(scores, variant_a, variant_b), rng,
                   sign=1.0 if higher_is_better else -1.0, n_perm=n_perm, max_exact=max_exact, n_boot=n_boot,
                   level=level)


def model_comparison(scores: pd.DataFrame, variant_a: str, variant_b: str, *, rng: np.random.Generator,
                     higher_is_better: bool = True, n_boot: int = N_BOOT, level: float = 0.95) -> Comparison:
    """Do the trained models of ``variant_a`` and ``variant_b`` differ on this test set? (images as the unit)

    Args:
        scores, variant_a, variant_b, higher_is_better, level: as for :func:`recipe_verdict`.
        rng: draws the bootstrap over images.
        n_boot: bootstrap replicates of both intervals.
    """
    return _model((variant_a, variant_b), *_pair_of(scores, variant_a, variant_b), rng,
                  sign=1.0 if higher_is_better else -1.0, n_boot=n_boot, level=level)


def _pair_of(scores: pd.DataFrame, variant_a: str, variant_b: str) -> tuple[np.ndarray, np.ndarray]:
    """The two variants' arrays, or an error listing the variants there are."""
    mats = score_matrices(scores)
    if missing := [v for v in (variant_a, variant_b) if v not in mats]:
        raise ValueError(f"variant {missing[0]!r} has no scores here; available: {', '.join(map(str, mats))}")
    return mats[variant_a], mats[variant_b]


# --- multiplicity and verdicts ------------------------------------------------------------------------------

def holm(p_values: Sequence[float] | np.ndarray) -> np.ndarray:
    """Holm's step-down adjusted p-values; NaN entries stay NaN and are not counted in the family."""
    p = np.asarray(p_values, dtype=float)
    adjusted = np.full(p.shape, np.nan)
    present = np.flatnonzero(~np.isnan(p))
    order = present[np.argsort(p[present], kind="stable")]
    steps = (len(order) - np.arange(len(order))) * p[order]
    adjusted[order] = np.minimum(1.0, np.maximum.accumulate(steps))
    return adjusted


def min_seeds(alpha: float) -> int:
    """Fewest seeds per variant (n v n) whose permutation test can reach ``alpha``: 4 at 0.05, 7 at 0.05/40."""
    n = 2
    while 2 / math.comb(2 * n, n) > alpha:
        n += 1
    return n


def min_images(alpha: float) -> int:
    """Fewest test images whose signed-rank test can reach ``alpha``: 6 at 0.05, 11 at 0.05/40."""
    return max(1, math.ceil(math.log2(2 / alpha) - 1e-12))


def holm_verdicts(table: pd.DataFrame, *, alpha: float = 0.05) -> pd.DataFrame:
    """Adjust one family of comparisons (one dataset, one metric, one kind) and give each its verdict.

    Args:
        table: rows of :class:`Comparison` fields (plus any others, kept).
        alpha: the family-wise error rate.

    Returns:
        ``table`` with ``p_adjusted`` (Holm), ``significant`` (on the adjusted p) and ``verdict``: "better" or
        "worse" (A against B), "no verdict", or "too few seeds for a verdict (need N per variant)" / "too few
        test images for a verdict (need N)" when even the smallest attainable p-values could not pass Holm's
        adjustment; N is what a family of this size needs at its first step (``alpha / len(table)``).
    """
    out = table.copy()
    if out.empty:
        return out.assign(p_adjusted=[], significant=[], verdict=[])
    out["p_adjusted"] = holm(out["p_value"])
    out["significant"] = out["p_adjusted"] <= alpha
    reachable = holm(np.maximum(out["min_p_seeds"], out["min_p_images"])) <= alpha
    first_step = alpha / len(out)
    need_seeds, need_images = min_seeds(first_step), min_images(first_step)
    verdicts = []
    for row, ok in zip(out.itertuples(index=False), reachable):
        if ok:
            verdicts.append(("better" if row.a_better else "worse") if row.significant else "no verdict")
            continue
        # unreachable implies a floor above alpha / m, since m * floor bounds the adjusted floor
        what, need = (" and ".join(x) for x in zip(*[(w, n) for w, n, floor in (
            ("seeds", f"{need_seeds} per variant", row.min_p_seeds),
            ("test images", f"{need_images} images", row.min_p_images)) if floor > first_step]))
        verdicts.append(f"too few {what} for a verdict (need {need})")
    out["verdict"] = verdicts
    return out


def _comparison_rows(scores: pd.DataFrame, pairs_of: Callable[[list[str]], list[tuple[str, str]]], *,
                     kinds: Sequence[Kind], seed: int, higher_is_better: bool, n_perm: int, max_exact: int,
                     n_boot: int) -> pd.DataFrame:
    """Comparisons of every dataset's pairs (from ``pairs_of(variants)``), unadjusted."""
    sign, rows = (1.0 if higher_is_better else -1.0), []
    for dataset, frame in _models_only(scores).groupby("dataset", sort=False):
        mats = score_matrices(frame)
        for a, b in pairs_of(list(mats)):
            # one generator per comparison, so a row does not change when others are added
            rng = np.random.default_rng([seed, zlib.crc32("\x1f".join(map(str, (dataset, a, b))).encode())])
            for kind in kinds:
                comp = (_recipe((a, b), mats[a], mats[b], rng, sign=sign, n_perm=n_perm, max_exact=max_exact,
                                n_boot=n_boot, level=0.95) if kind == "recipe" else
                        _model((a, b), mats[a], mats[b], rng, sign=sign, n_boot=n_boot, level=0.95))
                rows.append({"dataset": dataset, **asdict(comp)})
    return pd.DataFrame(rows, columns=["dataset", *(f.name for f in fields(Comparison))])


def compare_to_baseline(scores: pd.DataFrame, *, baseline: str | Mapping[str, str], seed: int = 0,
                        higher_is_better: bool = True,
                        alpha: float = 0.05, n_perm: int = N_PERM, max_exact: int = MAX_EXACT,
                        n_boot: int = N_BOOT) -> pd.DataFrame:
    """Recipe verdicts and model comparisons of every variant against ``baseline``, Holm-adjusted.

    Args:
        scores: the long score table of one metric, every dataset of the leaderboard (floors are left out).
        baseline: the reference variant (B), or each variant's own (variant -> reference: the baseline model
            at the same axis values); datasets without it are skipped.
        seed: each comparison's generator is seeded from (seed, dataset, A, B), so rows are reproducible and
            do not change when other variants are added.
        higher_is_better: the metric's direction.
        alpha: the family-wise error rate; each kind (recipe, model) of each dataset is one family.
        n_perm, max_exact, n_boot: see :func:`recipe_verdict`.

    Returns:
        One row per (kind, dataset, variant): ``dataset``, :class:`Comparison`'s fields, :func:`holm_verdicts`'s.

    Raises:
        ValueError: ``baseline`` is in no dataset.
    """
    variants = list(pd.unique(_models_only(scores)["variant"]))
    reference = (lambda v: baseline) if isinstance(baseline, str) else baseline.get
    if not any(reference(v) in variants for v in variants):
        raise ValueError(f"baseline {baseline!r} has no scores; available: {', '.join(map(str, variants))}")
    table = _comparison_rows(scores, lambda vs: [(v, reference(v)) for v in vs if reference(v) in vs
                                                 and v != reference(v)],
                             kinds=("recipe", "model"), seed=seed, higher_is_better=higher_is_better,
                             n_perm=n_perm, max_exact=max_exact, n_boot=n_boot)
    families = [holm_verdicts(t, alpha=alpha) for _, t in table.groupby(["kind", "dataset"], sort=False)]
    return pd.concat(families, ignore_index=True) if families else holm_verdicts(table, alpha=alpha)

"""Recipe verdicts, model comparisons, Holm, rank stability, separation, floors and seed advice (issue 13).

Covers ``zoo.bench.verdicts`` and its helper ``zoo.bench.ranking``. Every statistic is checked against a direct
computation (scipy, numpy, plain loops) on a small fixture; the simulations plant a truth (a seed offset per
trained model, an image difficulty and per-(model, image) noise) and check the family-wise error rate after
Holm, that the image-level test (the negative control) fails it, and that a 4-image split never gives a verdict.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from zoo.bench import ranking as rk
from zoo.bench import verdicts as vd


def _table(cube: dict[str, np.ndarray], dataset: str = "shapes") -> pd.DataFrame:
    """The long score table of ``{variant: (seeds, images)}``."""
    rows = [(dataset, variant, seed, f"img{i:02d}", float(x[seed, i]))
            for variant, x in cube.items() for seed in range(x.shape[0]) for i in range(x.shape[1])]
    return pd.DataFrame(rows, columns=list(vd.SCORE_COLUMNS))


def _cube(rng: np.random.Generator, *, seeds: int = 4, images: int = 8, effects=(0.0, 0.03, -0.02),
          seed_sd: float = 0.02) -> dict[str, np.ndarray]:
    """Synthetic scores: a seed offset per trained model, an image difficulty and per-(model, image) noise."""
    difficulty = rng.normal(0, 0.1, images)
    return {name: 0.7 + effect + rng.normal(0, seed_sd, (seeds, 1)) + difficulty + rng.normal(0, 0.05, (seeds, images))
            for name, effect in zip(("unet", "unet-attn", "unet-res"), effects)}


@pytest.fixture
def cube() -> dict[str, np.ndarray]:
    return _cube(np.random.default_rng(7))


@pytest.fixture
def scores(cube) -> pd.DataFrame:
    return _table(cube)


# --- inputs -------------------------------------------------------------------------------------------------

def test_score_matrices_pivot_per_variant_and_reject_bad_tables(scores, cube):
    mats = vd.score_matrices(scores.sample(frac=1, random_state=0))
    assert list(mats) == list(pd.unique(scores.sample(frac=1, random_state=0)["variant"]))
    np.testing.assert_array_equal(mats["unet-attn"], cube["unet-attn"])
    with pytest.raises(ValueError, match="mixes datasets"):
        vd.score_matrices(pd.concat([scores, scores.assign(dataset="drive")]))
    with pytest.raises(ValueError, match="repeated"):
        vd.score_matrices(pd.concat([scores, scores.head(1)]))
    with pytest.raises(ValueError, match="lacks columns"):
        vd.score_matrices(scores.drop(columns="seed"))
    with pytest.raises(ValueError, match="available: unet, unet-attn, unet-res"):
        vd.recipe_verdict(scores, "unet-atn", "unet", rng=np.random.default_rng(0))


def test_a_comparison_uses_the_images_every_model_scored(cube):
    cube["unet"][1, 3] = np.nan
    holed = _table(cube)
    full = _table({k: np.delete(v, 3, axis=1) for k, v in cube.items()})
    a = vd.recipe_verdict(holed, "unet-attn", "unet", rng=np.random.default_rng(0))
    b = vd.recipe_verdict(full, "unet-attn", "unet", rng=np.random.default_rng(0))
    assert a == b and a.n_images == 7


# --- recipe verdict -----------------------------------------------------------------------------------------

def _welch(x: np.ndarray, y: np.ndarray) -> float:
    return stats.ttest_ind(x, y, equal_var=False).statistic


def _variance_parts(a: np.ndarray, b: np.ndarray) -> tuple[float, list[float]]:
    """The mean difference and the seed, seed and image terms of its variance, from the definitions, by loops."""
    (n_a, n_i), n_b = a.shape, b.shape[0]
    residual_ss, dof = 0.0, 0
    for x in (a, b):
        for s in range(x.shape[0]):
            for i in range(n_i):
                r = x[s, i] - x[s].mean() - x[:, i].mean() + x.mean()
                residual_ss += r * r
        dof += (x.shape[0] - 1) * (n_i - 1)
    d = a.mean(axis=0) - b.mean(axis=0)
    image = max(0.0, np.var(d, ddof=1) - residual_ss / dof * (1 / n_a + 1 / n_b)) / n_i if n_i > 1 else 0.0
    return d.mean(), [np.var(a.mean(axis=1), ddof=1) / n_a, np.var(b.mean(axis=1), ddof=1) / n_b, image]


def _permutation_p(a: np.ndarray, b: np.ndarray) -> float:
    """Share of all splits of the trained models whose |difference / standard error| reaches the observed one."""
    def studentized(x: np.ndarray, y: np.ndarray) -> float:
        diff, parts = _variance_parts(x, y)
        return abs(diff) / math.sqrt(sum(parts))

    pooled, observed = np.r_[a, b], studentized(a, b)
    ts = [studentized(pooled[list(idx)], np.delete(pooled, idx, axis=0))
          for idx in itertools.combinations(range(len(pooled)), len(a))]
    return float(np.mean(np.array(ts) >= observed * (1 - 1e-9)))


@pytest.mark.parametrize("n_a,n_b", [(3, 3), (4, 3), (5, 5)])
def test_seed_test_is_an_exact_permutation_test_of_the_studentized_difference(n_a, n_b):
    rng = np.random.default_rng(n_a * 10 + n_b)
    for _ in range(2):
        a = rng.normal(0.02, 0.02, (n_a, 1)) + rng.normal(0, 0.05, (n_a, 6))
        b = rng.normal(0.0, 0.02, (n_b, 1)) + rng.normal(0, 0.05, (n_b, 6))
        p, floor = vd._seed_test(a[None], b[None], rng, n_perm=10, max_exact=10**6)
        assert p[0] == pytest.approx(_permutation_p(a, b), rel=1e-12)
        assert floor == (2 if n_a == n_b else 1) / math.comb(n_a + n_b, n_a)
        monte_carlo, mc_floor = vd._seed_test(a[None], b[None], rng, n_perm=4000, max_exact=1)
        assert monte_carlo[0] == pytest.approx(p[0], abs=0.03) and mc_floor == max(floor, 1 / 4001)
        if n_a == n_b:  # one image: Welch's t, whose null distribution is symmetric, so scipy's p agrees
            expected = stats.permutation_test((a[:, 0], b[:, 0]), _welch, permutation_type="independent",
                                              n_resamples=np.inf).pvalue
            assert vd._seed_test(a[None, :, :1], b[None, :, :1], rng, n_perm=10, max_exact=10**6)[0][0] == \
                pytest.approx(expected, rel=1e-12)


def test_recipe_p_is_the_larger_of_the_seed_and_image_tests(cube, scores):
    a, b = cube["unet-attn"], cube["unet"]
    verdict = vd.recipe_verdict(scores, "unet-attn", "unet", rng=np.random.default_rng(0))
    seeds_p = _permutation_p(a, b)
    d = a.mean(axis=0) - b.mean(axis=0)
    ranks = stats.rankdata(np.abs(d))
    assert np.sign(ranks[d > 0].sum() - ranks[d < 0].sum()) == np.sign(d.mean())  # the ranks agree with the mean
    assert verdict.p_value == pytest.approx(max(seeds_p, stats.wilcoxon(d).pvalue), rel=1e-12)
    assert (verdict.min_p_seeds, verdict.min_p_images) == (2 / 70, 2 / 2**8)


def test_image_gate_refuses_ranks_that_lean_against_the_mean():
    d = np.array([0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.07, -0.9])  # most images favour A; the mean favours B
    assert vd._signed_rank_p(d)[0] == pytest.approx(stats.wilcoxon(d).pvalue)
    assert vd._signed_rank_p(d, np.sign(d.mean()))[0] == 1.0
    assert vd._signed_rank_p(d, np.array(1.0))[0] == pytest.approx(stats.wilcoxon(d).pvalue)


def test_smallest_attainable_p_values():
    assert 2 / math.comb(6, 3) == pytest.approx(0.1) and 2 / math.comb(10, 5) == pytest.approx(2 / 252)
    assert [vd.min_seeds(a) for a in (0.1, 0.05, 0.05 / 3, 0.05 / 40)] == [3, 4, 5, 7]
    assert [vd.min_images(a) for a in (0.125, 0.05, 0.05 / 40)] == [4, 6, 11]
    # the exact signed-rank test over 4 images cannot go below 0.125, whatever the data
    best = min(stats.wilcoxon(np.array(signs) * [1.0, 2, 3, 4]).pvalue
               for signs in itertools.product((-1, 1), repeat=4))
    assert best == pytest.approx(0.125) == vd._image_floor(4)


def test_recipe_interval_is_welchs_when_images_add_nothing():
    rng = np.random.default_rng(3)
    difficulty = rng.normal(0, 0.1, 6)
    m_a, m_b = rng.normal(0.03, 0.02, 5), rng.normal(0, 0.01, 4)
    a, b = m_a[:, None] + difficulty, m_b[:, None] + difficulty  # no noise, no interaction
    diff, low, high = vd._difference_interval(a, b, 0.95)
    ci = stats.ttest_ind(m_a, m_b, equal_var=False).confidence_interval(0.95)
    assert diff == pytest.approx(m_a.mean() - m_b.mean())
    assert (low, high) == pytest.approx((ci.low, ci.high), rel=1e-9)


def test_recipe_interval_adds_the_image_term_by_direct_computation(cube):
    a, b = cube["unet-attn"], cube["unet"]
    (n_a, n_i), n_b = a.shape, b.shape[0]
    diff, parts = _variance_parts(a, b)
    df = sum(parts) ** 2 / (parts[0] ** 2 / (n_a - 1) + parts[1] ** 2 / (n_b - 1) + parts[2] ** 2 / (n_i - 1))
    half = stats.t.ppf(0.975, df) * math.sqrt(sum(parts))
    assert parts[2] > 0
    assert vd._difference_interval(a, b, 0.95) == pytest.approx((diff, diff - half, diff + half))


def test_probability_of_improvement_and_its_two_level_bootstrap(cube, scores):
    a, b = cube["unet-attn"], cube["unet"]
    verdict = vd.recipe_verdict(scores, "unet-attn", "unet", rng=np.random.default_rng(5), n_boot=300)
    u = stats.mannwhitneyu(a.mean(axis=1), b.mean(axis=1)).statistic
    assert verdict.p_improvement == pytest.approx(u / (len(a) * len(b)))
    # the same draws, one replicate at a time: images, then the seeds of A, then those of B
    rng = np.random.default_rng(5)
    vd._recipe_p(a[None], b[None], rng, n_perm=vd.N_PERM, max_exact=vd.MAX_EXACT)  # exact: draws nothing
    counts = rng.multinomial(8, np.full(8, 1 / 8), size=300)
    pick_a, pick_b = rng.integers(0, 4, (300, 4)), rng.integers(0, 4, (300, 4))
    replicates = []
    for k in range(300):
        images = np.repeat(np.arange(8), counts[k])
        m_a, m_b = a[pick_a[k]][:, images].mean(axis=1), b[pick_b[k]][:, images].mean(axis=1)
        replicates.append(stats.mannwhitneyu(m_a, m_b).statistic / 16)
    assert (verdict.p_improvement_low, verdict.p_improvement_high) == pytest.approx(
        tuple(np.percentile(replicates, [2.5, 97.5])))


def test_lower_is_better_mirrors_the_verdict(scores):
    up = vd.recipe_verdict(scores, "unet-attn", "unet", rng=np.random.default_rng(1))
    down = vd.recipe_verdict(scores.assign(value=-scores["value"]), "unet-attn", "unet",
                             rng=np.random.default_rng(1), higher_is_better=False)
    assert down.mean_difference == pytest.approx(-up.mean_difference)
    assert (down.ci_low, down.ci_high) == pytest.approx((-up.ci_high, -up.ci_low))
    assert down.a_better == up.a_better and down.p_value == up.p_value
    assert down.p_improvement == pytest.approx(up.p_improvement)


# --- model comparison ---------------------------------------------------------------------------------------

def test_model_comparison_is_a_wilcoxon_over_seed_averaged_images(cube, scores):
    a, b = cube["unet-res"], cube["unet"]
    comp = vd.model_comparison(scores, "unet-res", "unet", rng=np.random.default_rng(2), n_boot=200)
    d = a.mean(axis=0) - b.mean(axis=0)
    assert comp.kind == "model" and comp.p_value == pytest.approx(stats.wilcoxon(d).pvalue)
    assert comp.mean_difference == pytest.approx(d.mean())
    assert comp.p_improvement == pytest.approx(np.mean(d > 0))
    counts = np.random.default_rng(2).multinomial(8, np.full(8, 1 / 8), size=200)
    means = [d[np.repeat(np.arange(8), c)].mean() for c in counts]
    assert (comp.ci_low, comp.ci_high) == pytest.approx(tuple(np.percentile(means, [2.5, 97.5])))
    assert (comp.min_p_seeds, comp.min_p_images) == (0.0, 2 / 2**8)


# --- Holm and verdicts --------------------------------------------------------------------------------------

def _holm_textbook(p: list[float]) -> list[float]:
    present = [i for i, x in enumerate(p) if not math.isnan(x)]
    order = sorted(present, key=lambda i: p[i])
    out, running = [math.nan] * len(p), 0.0
    for step, i in enumerate(order):
        running = max(running, min(1.0, (len(order) - step) * p[i]))
        out[i] = running
    return out


def test_holm_is_the_textbook_step_down():
    rng = np.random.default_rng(0)
    for _ in range(20):
        p = list(rng.uniform(0, 0.1, 7) ** rng.uniform(0.5, 2))
        p[3], p[5] = p[1], math.nan  # ties and a missing comparison
        np.testing.assert_allclose(vd.holm(p), _holm_textbook(p), equal_nan=True)


def test_verdicts_name_too_few_seeds_and_images(scores):
    three = scores[scores["seed"] < 3]
    table = vd.compare_to_baseline(three, baseline="unet", seed=1)
    recipe = table[table["kind"] == "recipe"]
    assert (recipe["verdict"] == "too few seeds for a verdict (need 5 per variant)").all()  # Holm over 2
    four_images = scores[scores["image_id"] < "img04"]
    table = vd.compare_to_baseline(four_images, baseline="unet", seed=1)
    assert set(table["verdict"]) == {"too few seeds and test images for a verdict (need 5 per variant and 7 images)",
                                     "too few test images for a verdict (need 7 images)"}


def test_holm_verdicts_mark_significance_on_the_adjusted_p():
    table = pd.DataFrame({"p_value": [0.001, 0.02, 0.04], "min_p_seeds": 1e-4, "min_p_images": 1e-4,
                          "a_better": [True, False, True]})
    out = vd.holm_verdicts(table, alpha=0.05)
    assert out["p_adjusted"].tolist() == pytest.approx([0.003, 0.04, 0.04])
    assert out["verdict"].tolist() == ["better", "worse", "better"]
    assert vd.holm_verdicts(table.assign(p_value=[0.001, 0.03, 0.04]))["verdict"].tolist() == [
        "better", "no verdict", "no verdict"]


def test_compare_to_baseline_adjusts_each_kind_within_each_dataset(scores, cube):
    both = pd.concat([scores, _table(cube, "drive")])
    table = vd.compare_to_baseline(both, baseline="unet", seed=3)
    assert len(table) == 8 and set(table["variant_b"]) == {"unet"}
    for _, family in table.groupby(["kind", "dataset"]):
        np.testing.assert_allclose(family["p_adjusted"], _holm_textbook(family["p_value"].tolist()))
    again = vd.compare_to_baseline(both[both["variant"] != "unet-res"], baseline="unet", seed=3)
    kept = table[table["variant_a"] == "unet-attn"].reset_index(drop=True)
    pd.testing.assert_series_equal(again["p_improvement_low"], kept["p_improvement_low"])  # rows do not move
    with pytest.raises(ValueError, match="baseline 'unett' has no scores; available: unet, unet-attn"):
        vd.compare_to_baseline(scores, baseline="unett")


# --- all-pairs map, ranking, separation --------------------------------------------------------------------

def test_significance_map_mirrors_the_pairs(scores):
    pairs = rk.pairwise_verdicts(scores, seed=0, n_boot=50)
    assert len(pairs) == 3
    np.testing.assert_allclose(pairs["p_adjusted"], _holm_textbook(pairs["p_value"].tolist()))
    square = rk.significance_map(pairs, dataset="shapes")
    np.testing.assert_allclose(square.to_numpy(), square.to_numpy().T, equal_nan=True)
    diff = rk.significance_map(pairs, dataset="shapes", value="mean_difference")
    assert diff.loc["unet-attn", "unet"] == pytest.approx(-diff.loc["unet", "unet-attn"])
    with pytest.raises(ValueError, match="is not one of"):
        rk.significance_map(pairs, dataset="shapes", value="ci_low")


def test_ranking_stability_by_direct_computation(cube, scores):
    result = rk.ranking_stability(scores, rng=np.random.default_rng(4), n_boot=200)
    names = list(cube)
    point = np.array([cube[n].mean() for n in names])
    point_rank = stats.rankdata(-point, method="min")
    rng = np.random.default_rng(4)
    counts = rng.multinomial(8, np.full(8, 1 / 8), size=200)
    picks = [rng.integers(0, 4, (200, 4)) for _ in names]
    ranks, taus = [], []
    for k in range(200):
        images = np.repeat(np.arange(8), counts[k])
        boot = [cube[n][picks[j][k]][:, images].mean() for j, n in enumerate(names)]
        ranks.append(stats.rankdata(-np.array(boot), method="min"))
        taus.append(stats.kendalltau(point_rank, ranks[-1]).statistic)
    ranks = np.array(ranks)
    table = result.table.set_index("variant").loc[names]
    np.testing.assert_array_equal(table["rank"], point_rank)
    np.testing.assert_array_equal(table["median_rank"], np.median(ranks, axis=0))
    np.testing.assert_array_equal(table["rank_low"], np.quantile(ranks, 0.025, axis=0, method="lower"))
    np.testing.assert_array_equal(table["rank_high"], np.quantile(ranks, 0.975, axis=0, method="higher"))
    assert result.kendall_tau == pytest.approx(np.mean(taus))
    assert result.share_identical == pytest.approx(np.mean((ranks == point_rank).all(axis=1)))
    assert table["tied_for_first"].tolist() == (table["rank_low"] == 1).tolist()


def test_ranking_stability_separates_clear_winners_and_ties_lookalikes():
    far = _table(_cube(np.random.default_rng(1), effects=(0.0, 0.5, -0.5)))
    result = rk.ranking_stability(far, rng=np.random.default_rng(0), n_boot=100)
    assert result.table["variant"].tolist() == ["unet-attn", "unet", "unet-res"]
    assert (result.table["rank_low"] == result.table["rank_high"]).all() and result.kendall_tau == 1
    same = _table(_cube(np.random.default_rng(1), effects=(0.0, 0.0, 0.0), seed_sd=0.05))
    assert rk.ranking_stability(same, rng=np.random.default_rng(0), n_boot=100).table["tied_for_first"].sum() >= 2


def test_dataset_separation_by_direct_computation(cube, scores):
    sep = rk.dataset_separation(scores, seed=0, n_boot=50)
    groups = [cube[n].mean(axis=1) for n in cube]
    cells = np.concatenate(groups)
    ss_total = ((cells - cells.mean()) ** 2).sum()
    ss_within = sum(((g - g.mean()) ** 2).sum() for g in groups)
    assert sep.eta_squared == pytest.approx(1 - ss_within / ss_total)
    assert sep.anova_p == pytest.approx(stats.f_oneway(*groups).pvalue)
    ms_between, ms_within = (ss_total - ss_within) / 2, ss_within / 9
    model_var = max(0.0, (ms_between - ms_within) / 4)
    assert sep.seed_share == pytest.approx(ms_within / (model_var + ms_within))
    assert (sep.n_pairs, sep.n_models) == (3, 12)
    assert sep.verdict == (f"at this budget, `shapes` separates {sep.pairs_separated} of 3 pairs; "
                           f"seeds explain {sep.seed_share:.0%} of the variance")


# --- floors -------------------------------------------------------------------------------------------------

def test_floor_flags_models_that_do_not_clear_the_best_floor(cube, scores):
    floor = cube["unet"].mean(axis=0) - 0.002  # about as good as unet, far below unet-attn + 0.3
    trivial = pd.DataFrame({"dataset": "shapes", "variant": "floor: all foreground", "seed": np.nan,
                            "image_id": [f"img{i:02d}" for i in range(8)], "value": floor})
    worse = trivial.assign(variant="floor: all background", value=0.1)
    boosted = scores.assign(value=scores["value"] + 0.3 * (scores["variant"] == "unet-attn"))
    flags = rk.floor_flags(pd.concat([boosted, trivial, worse])).set_index("variant")
    assert set(flags["floor"]) == {"floor: all foreground"}
    assert flags["flagged"].to_dict() == {"unet": True, "unet-attn": False, "unet-res": True}
    assert flags.loc["unet-attn", "difference"] == pytest.approx(cube["unet-attn"].mean() + 0.3 - floor.mean())
    assert flags.loc["unet", "ci_low"] < 0 < flags.loc["unet-attn", "ci_low"]
    assert "floor: all foreground" not in set(vd.compare_to_baseline(
        pd.concat([scores, trivial]), baseline="unet", n_boot=20)["variant_a"])


# --- seed advice --------------------------------------------------------------------------------------------

def test_variance_components_recover_the_planted_ones():
    rng = np.random.default_rng(0)
    seed_sd, inter_sd, noise_sd = 0.03, 0.02, 0.05
    cube = {f"v{k}": rng.normal(0, seed_sd, (20, 1)) + rng.normal(0, inter_sd, (1, 200))
            + rng.normal(0, noise_sd, (20, 200)) for k in range(6)}
    components = rk.variance_components(_table(cube)).iloc[0]
    assert (components["n_seeds"], components["n_images"]) == (20, 200)
    assert math.sqrt(components["seed_var"]) == pytest.approx(seed_sd, rel=0.2)
    assert math.sqrt(components["interaction_var"]) == pytest.approx(inter_sd, rel=0.2)
    assert math.sqrt(components["noise_var"]) == pytest.approx(noise_sd, rel=0.02)


def test_the_advice_plans_with_the_typical_comparison_not_one_unstable_model():
    from zoo.bench.analysis import advice_components

    rng = np.random.default_rng(0)
    seed_sd, inter_sd, noise_sd, images = 0.01, 0.01, 0.03, 150
    names = ["unet", "a", "b", "c", "d", "shaky"]
    cube = {name: rng.normal(0, seed_sd, (12, 1)) + rng.normal(0, inter_sd, (1, images))
            + rng.normal(0, noise_sd, (12, images)) for name in names}
    scores = _table(cube)
    baseline = {name: "unet" for name in names}
    calm = advice_components(scores, baseline).iloc[0]
    assert math.sqrt(calm["seed_var"]) == pytest.approx(seed_sd, rel=0.35)
    # negative control: with every model alike, the typical comparison and all variants pooled agree
    pooled = rk.variance_components(scores).iloc[0]
    assert calm["seed_var"] == pytest.approx(pooled["seed_var"], rel=0.5)
    # one model's seeds collapse (SD 0.15): pooled over all variants its variance reaches every comparison's advice
    # (seed SD about 0.06, six times the planted one); the typical comparison stays near the planted 0.01
    cube["shaky"] = cube["shaky"] + rng.normal(0, 0.15, (12, 1))
    scores = _table(cube)
    pooled = rk.variance_components(scores).iloc[0]
    typical = advice_components(scores, baseline).iloc[0]
    assert math.sqrt(pooled["seed_var"]) > 4 * seed_sd
    assert math.sqrt(typical["seed_var"]) == pytest.approx(seed_sd, rel=0.35)
    # without a baseline there is no typical comparison: all variants pooled
    assert advice_components(scores, {}).iloc[0]["seed_var"] == pytest.approx(pooled["seed_var"])


def test_seed_advice_follows_recipe_power():
    components = pd.DataFrame([{"dataset": "shapes", "n_variants": 9, "n_seeds": 3.0, "n_images": 20,
                                "seed_var": 0.02**2, "interaction_var": 0.0, "noise_var": 0.05**2},
                               {"dataset": "isbi", "n_variants": 9, "n_seeds": 3.0, "n_images": 4,
                                "seed_var": 0.02**2, "interaction_var": 0.0, "noise_var": 0.05**2}])
    advice = rk.seed_advice(components).set_index(["dataset", "delta"])
    needed = advice.loc[("shapes", 0.02), "seeds_needed"]
    kwargs = {"n_images": 20, "seed_var": 0.02**2, "interaction_var": 0.0, "noise_var": 0.05**2}
    assert rk.recipe_power(0.02, n_seeds=needed, **kwargs) >= 0.8 > rk.recipe_power(0.02, n_seeds=needed - 1, **kwargs)
    assert advice.loc["shapes", "seeds_needed"].is_monotonic_decreasing
    assert advice.loc[("shapes", 0.01), "seeds_needed"] > needed > advice.loc[("shapes", 0.05), "seeds_needed"]
    assert (advice.loc["isbi", "power_now"] == 0).all() and advice.loc["isbi", "seeds_needed"].isna().all()
    assert (advice.loc["isbi", "images_needed"] >= 6).all()
    assert rk.recipe_power(0.5, n_seeds=3, **kwargs) == 0  # 3 v 3 cannot reach 0.05


def test_recipe_power_agrees_with_the_simulated_test():
    sim = rk.simulate_power(n_seeds=8, delta=0.03, rng=np.random.default_rng(8), n_variants=2,
                            n_leaderboards=200, n_perm=999, max_exact=20_000)
    analytic = rk.recipe_power(0.03, n_seeds=8, n_images=20, seed_var=0.02**2, interaction_var=0.0,
                               noise_var=0.05**2)
    print(f"power at 8 seeds, delta 0.03: simulated {sim.power:.2f}, analytic {float(analytic):.2f}")
    assert sim.power == pytest.approx(float(analytic), abs=0.12)


# --- simulations with a planted truth -----------------------------------------------------------------------

N_BOARDS = 200
# the most leaderboards with a false verdict that a true rate of 5% gives with probability 0.99
FWER_BOUND = int(stats.binom.ppf(0.99, N_BOARDS, 0.05))


def _fast(n_seeds: int) -> dict:
    """Exact permutations up to 5 v 5; Monte Carlo (999 splits, p >= 0.001) at 10 seeds to keep the test short."""
    return {"n_perm": 999, "max_exact": 20_000} if n_seeds > 5 else {}


@pytest.mark.parametrize("seed_sd", [0.02, 0.135], ids=["seed-sd-0.02", "drive-like-0.135"])
@pytest.mark.parametrize("n_seeds", [3, 5, 10])
def test_recipe_verdicts_keep_the_family_wise_error_rate(n_seeds, seed_sd):
    sim = rk.simulate_power(n_seeds=n_seeds, delta=0.0, rng=np.random.default_rng(n_seeds), seed_sd=seed_sd,
                            n_leaderboards=N_BOARDS, **_fast(n_seeds))
    print(f"FWER, {n_seeds} seeds, seed SD {seed_sd}: recipe {sim.fwer:.3f}, image-level {sim.image_fwer:.3f} "
          f"(bound {FWER_BOUND / N_BOARDS:.3f})")
    assert sim.fwer * N_BOARDS <= FWER_BOUND
    assert sim.image_fwer * N_BOARDS > FWER_BOUND  # the negative control fails: the simulation can fail
    if n_seeds == 3:
        assert sim.fwer == 0  # 3 v 3 seeds never give a verdict


def test_recipe_verdicts_keep_the_error_rate_with_a_variant_image_interaction():
    sim = rk.simulate_power(n_seeds=10, delta=0.0, rng=np.random.default_rng(11), interaction_sd=0.02,
                            n_leaderboards=N_BOARDS, **_fast(10))
    print(f"FWER, 10 seeds, interaction SD 0.02: recipe {sim.fwer:.3f}, image-level {sim.image_fwer:.3f}")
    assert sim.fwer * N_BOARDS <= FWER_BOUND


def test_power_grows_with_seeds_and_effect():
    power = {}
    for n_seeds, delta in itertools.product((5, 10), (0.02, 0.05)):
        sim = rk.simulate_power(n_seeds=n_seeds, delta=delta, rng=np.random.default_rng(100 + n_seeds),
                                n_leaderboards=N_BOARDS, **_fast(n_seeds))
        power[n_seeds, delta] = sim.power
        print(f"power, {n_seeds} seeds, delta {delta}: recipe {sim.power:.2f}, image-level {sim.image_power:.2f}")
    assert power[5, 0.02] < power[10, 0.02] and power[5, 0.05] < power[10, 0.05]
    assert power[5, 0.02] < power[5, 0.05] and power[10, 0.05] > 0.8


def test_a_four_image_split_never_gives_a_verdict():
    sim = rk.simulate_power(n_seeds=10, delta=0.5, rng=np.random.default_rng(4), n_images=4,
                            n_leaderboards=50, **_fast(10))
    assert sim.power == 0 and sim.fwer == 0 and sim.image_power == 0 and sim.image_fwer == 0

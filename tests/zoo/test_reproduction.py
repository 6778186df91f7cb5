"""The reproduction table: exact confusion counts from recall, accuracy and pixel counts; the pooled interval's
coverage by simulation with planted truth (and a negative control that ignores the images); the committed block."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from zoo.bench import reproduction as rp
from zoo.bench.records import read_records

ROOT = Path(__file__).resolve().parents[2]
DRIVE = ROOT / "results" / "drive-unet-planned"
PUBLISHED = ROOT / "docs" / "published-figures.csv"


def test_confusion_counts_are_recovered_exactly_from_recall_accuracy_and_pixel_counts():
    rng = np.random.default_rng(0)
    target = rng.random((12, 40, 50)) < rng.uniform(0.05, 0.4, (12, 1, 1))
    pred = np.where(rng.random(target.shape) < 0.15, ~target, target)
    tp, fn = (pred & target).sum((1, 2)), (~pred & target).sum((1, 2))
    tn, fp = (~pred & ~target).sum((1, 2)), (pred & ~target).sum((1, 2))
    positives, negatives = target.sum((1, 2)), (~target).sum((1, 2))
    counts = rp.confusion_counts(tp / positives, (tp + tn) / (positives + negatives), positives, negatives)
    for name, direct in (("tp", tp), ("fn", fn), ("tn", tn), ("fp", fp)):
        np.testing.assert_allclose(counts[name], direct, atol=1e-6)


def _simulate(rng, *, n_seeds=5, n_images=20, image_sd=0.08, seed_sd=0.004, positives=2000):
    """Per-image sensitivities vary around 0.75 (image difficulty) plus a small shift per seed (training run)."""
    difficulty = rng.normal(0, image_sd, n_images)
    shift = rng.normal(0, seed_sd, (n_seeds, 1))
    rate = np.clip(0.75 + difficulty + shift, 0.01, 0.99)
    tp = rng.binomial(positives, rate).astype(float)
    fn = positives - tp
    negatives = 10 * positives
    fp = rng.binomial(negatives, 0.02, (n_seeds, n_images)).astype(float)
    return {"tp": tp, "fn": fn, "fp": fp, "tn": negatives - fp}


@pytest.mark.parametrize("images_resampled, expect", [(True, (0.88, 0.995)), (False, (0.0, 0.6))])
def test_pooled_interval_covers_the_planted_sensitivity(images_resampled, expect):
    """Truth: 0.75, the mean sensitivity over the population of images and training runs. The negative control
    sums each seed's images first, so the bootstrap resamples seeds only and misses the image variance."""
    rng = np.random.default_rng(1)
    hits, sims = 0, 300
    for i in range(sims):
        counts = _simulate(rng)
        if not images_resampled:
            counts = {k: v.sum(axis=1, keepdims=True) for k, v in counts.items()}
        _, low, high = rp.pooled_ci(counts, "recall", np.random.default_rng(i), n_boot=400)
        hits += low <= 0.75 <= high
    assert expect[0] <= hits / sims <= expect[1]


@pytest.mark.skipif(not (DRIVE / "cells").is_dir(), reason="results/drive-unet-planned is not in this checkout")
def test_the_derived_pooled_dice_equals_the_recorded_one_on_drive():
    frame = rp.per_image_figures(DRIVE, "drive")
    for record in read_records([DRIVE]):
        if record.status != "ok":
            continue
        part = frame[frame["seed"] == record.seed]
        tp, fp, fn = part["tp"].sum(), part["fp"].sum(), part["fn"].sum()
        assert 2 * tp / (2 * tp + fp + fn) == pytest.approx(record.metrics["dice_pooled"], abs=1e-5)
        # the derived specificity is a proportion and the per-image Dice is the scored one
        assert part["specificity"].between(0.9, 1).all()
        assert part["dice"].mean() == pytest.approx(record.metrics["dice"], abs=1e-6)  # the record holds float32


@pytest.mark.skipif(not (DRIVE / "cells").is_dir(), reason="results/drive-unet-planned is not in this checkout")
def test_the_block_has_our_rows_and_one_row_per_published_source(tmp_path):
    block = rp.reproduction_block(DRIVE, "drive", PUBLISHED)
    published = pd.read_csv(PUBLISHED)
    n_sources = len(published[published["dataset"] == "drive"].groupby(["source", "model"]))
    assert block.count("\n") == 2 + 2 + n_sources and "| ours, pooled over all test pixels [95% CI" in block
    page = tmp_path / "README.md"
    begin = rp.BEGIN.format(folder=DRIVE.name, dataset="drive")
    page.write_text(f"# kept\n\n{begin}\nold\n{rp.END}\n\nkept too\n")
    assert rp.update_reproduction_block(page, DRIVE, "drive", PUBLISHED) is True
    assert page.read_text() == f"# kept\n\n{begin}\n{block}{rp.END}\n\nkept too\n"
    assert rp.update_reproduction_block(page, DRIVE, "drive", PUBLISHED) is False
    with pytest.raises(ValueError, match="no block"):
        rp.update_reproduction_block(page, DRIVE, "isbi2012_em", PUBLISHED)


@pytest.mark.skipif(not (DRIVE / "cells").is_dir(), reason="results/drive-unet-planned is not in this checkout")
def test_zoo_leaderboard_readme_rewrites_every_block_of_its_folder(tmp_path, capsys):
    import shutil

    from zoo import cli
    from zoo.bench.summary import BEGIN, END, results_summary

    folder = tmp_path / DRIVE.name
    shutil.copytree(DRIVE, folder, ignore=shutil.ignore_patterns("*.safetensors", "*.pt", "plots", "report.html"))
    summary = BEGIN.format(folder=folder.name)
    repro = rp.BEGIN.format(folder=folder.name, dataset="drive")
    page = tmp_path / "README.md"
    page.write_text(f"a\n{summary}\nstale\n{END}\nb\n{repro}\nstale\n{rp.END}\nc\n")
    assert cli.main(["leaderboard", str(folder), "--no-plots", "--no-html", "--readme", str(page)]) == 2
    assert "give the published figures' CSV" in capsys.readouterr().err
    assert cli.main(["leaderboard", str(folder), "--no-plots", "--no-html", "--readme", str(page),
                     "--published", str(PUBLISHED)]) == 0
    text = page.read_text()
    assert text == (f"a\n{summary}\n{results_summary(folder)}{END}\nb\n{repro}\n"
                    f"{rp.reproduction_block(folder, 'drive', PUBLISHED)}{rp.END}\nc\n")


def test_every_committed_reproduction_block_matches_its_records():
    import re

    page = ROOT / "results" / "README.md"
    text = page.read_text(encoding="utf-8")
    marker = re.escape(rp.BEGIN).replace(re.escape("{folder!r}"), "'([^']+)'").replace(re.escape("{dataset!r}"),
                                                                                          "'([^']+)'")
    blocks = re.findall(marker + r"\n(.*?)" + re.escape(rp.END), text, flags=re.DOTALL)
    for folder, dataset, body in blocks:
        if not (ROOT / "results" / folder / "cells").is_dir():
            continue
        assert body == rp.reproduction_block(ROOT / "results" / folder, dataset, PUBLISHED), (
            f"run: zoo leaderboard results/{folder} --readme results/README.md --published {PUBLISHED.name}")

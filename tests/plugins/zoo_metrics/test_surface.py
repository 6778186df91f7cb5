"""Surface metrics: hand-computed cases, empty-mask rules, ignore_index, and a brute-force numpy reference."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from zoo.errors import DatasetError
from zoo_metrics.surface import assd, hd95, nsd


def square(size: int, top: int, left: int, side: int, value: int = 1) -> torch.Tensor:
    mask = torch.zeros(size, size, dtype=torch.int64)
    mask[top:top + side, left:left + side] = value
    return mask


def blobs(n: int, num_classes: int, size: int, seed: int) -> torch.Tensor:
    """Smooth random class masks (upsampled noise), so boundaries look like real segmentations."""
    g = torch.Generator().manual_seed(seed)
    noise = torch.rand(n, num_classes, max(size // 8, 2), max(size // 8, 2), generator=g)
    return F.interpolate(noise, size=(size, size), mode="bilinear").argmax(1)


def test_single_pixels_three_apart() -> None:
    pred, target = square(8, 2, 5, 1)[None], square(8, 2, 2, 1)[None]
    assert hd95(num_classes=2).update(pred, target)["hd95"].tolist() == [3.0]
    assert assd(num_classes=2).update(pred, target)["assd"].tolist() == [3.0]
    assert nsd(num_classes=2, tolerance=2.0).update(pred, target)["nsd"].tolist() == [0.0]
    assert nsd(num_classes=2, tolerance=3.0).update(pred, target)["nsd"].tolist() == [1.0]


def test_square_shifted_by_one_pixel() -> None:
    # A 3x3 square's boundary is its ring of 8 pixels. Shifted right by one, 4 of the 8 ring pixels of each
    # lie on the other ring (distance 0) and 4 are one pixel away: hd95 = 1, assd = 8 / 16, nsd(0) = 8 / 16.
    pred, target = square(8, 2, 3, 3)[None], square(8, 2, 2, 3)[None]
    assert hd95(num_classes=2).update(pred, target)["hd95"].tolist() == [1.0]
    assert assd(num_classes=2).update(pred, target)["assd"].tolist() == [0.5]
    assert nsd(num_classes=2, tolerance=0.0).update(pred, target)["nsd"].tolist() == [0.5]
    assert nsd(num_classes=2, tolerance=1.0).update(pred, target)["nsd"].tolist() == [1.0]


def test_empty_mask_rules() -> None:
    empty, blob = torch.zeros(8, 8, dtype=torch.int64), square(8, 1, 1, 3)
    pred = torch.stack([empty, blob, empty, blob])
    target = torch.stack([empty, empty, blob, blob])  # both empty, empty GT, empty prediction, perfect
    for builder in (hd95, assd):
        metric = builder(num_classes=2)
        got = metric.update(pred, target)[builder.__name__].tolist()
        assert [math.isnan(v) for v in got] == [True, True, True, False] and got[3] == 0.0
        assert metric.compute() == {builder.__name__: 0.0}  # pooled: mean over the defined images only
    got = nsd(num_classes=2).update(pred, target)["nsd"].tolist()
    assert math.isnan(got[0]) and got[1:] == [0.0, 0.0, 1.0]


def test_ignored_pixels_are_removed_from_both_masks() -> None:
    pred, target = square(16, 2, 2, 4), square(16, 2, 3, 4)
    baseline = hd95(num_classes=2).update(pred[None], target[None])["hd95"].item()
    # a stray predicted blob far away, inside a void region of the target, must not change the distance
    pred[10:14, 10:14] = 1
    target[9:15, 9:15] = 255
    assert hd95(num_classes=2, ignore_index=255).update(pred[None], target[None])["hd95"].item() == baseline
    assert hd95(num_classes=2).update(pred[None], torch.where(target == 255, 0, target)[None])["hd95"].item() > 8


def test_multiclass_columns_and_pooling() -> None:
    pred = torch.stack([square(8, 0, 0, 3, 1) + square(8, 5, 5, 2, 2), square(8, 0, 0, 3, 1)])
    target = torch.stack([square(8, 0, 1, 3, 1) + square(8, 5, 5, 2, 2), square(8, 0, 0, 3, 1)])
    metric = assd(num_classes=3, include_background=False, class_names=("bg", "cell", "nucleus"))
    result = metric.update(pred, target)
    assert list(result) == ["assd", "assd/cell", "assd/nucleus"]
    assert result["assd/nucleus"][0].item() == 0.0 and math.isnan(result["assd/nucleus"][1].item())
    assert result["assd"].tolist() == [pytest.approx(result["assd/cell"][0].item() / 2), 0.0]
    pooled = metric.compute()
    assert pooled["assd/cell"] == pytest.approx(result["assd/cell"].mean().item())
    assert pooled["assd/nucleus"] == 0.0  # the NaN image is left out
    assert pooled["assd"] == pytest.approx(result["assd"].mean().item())
    metric.reset()
    assert all(math.isnan(v) for v in metric.compute().values())


def _brute_force(pred: np.ndarray, target: np.ndarray, tolerance: float) -> tuple[float, float, float]:
    """hd95, assd, nsd of two boolean masks by explicit neighbour checks and all pairwise distances."""

    def edge(mask: np.ndarray) -> np.ndarray:
        padded = np.pad(mask, 1)
        inner = padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
        return np.argwhere(mask & ~inner).astype(float)

    p, g = edge(pred), edge(target)
    if len(p) == 0 or len(g) == 0:
        nsd_value = math.nan if len(p) == len(g) == 0 else 0.0
        return math.nan, math.nan, nsd_value
    pairwise = np.sqrt(((p[:, None, :] - g[None, :, :]) ** 2).sum(-1))
    to_target, to_pred = pairwise.min(axis=1), pairwise.min(axis=0)
    both = np.concatenate([to_target, to_pred])
    return (max(np.percentile(to_target, 95), np.percentile(to_pred, 95)), both.mean(),
            float(np.mean(both <= tolerance)))


@pytest.mark.parametrize("num_classes", [2, 3])
def test_matches_brute_force_on_random_masks(num_classes: int) -> None:
    pred, target = blobs(8, num_classes, 24, seed=1), blobs(8, num_classes, 24, seed=2)
    target[:, :2] = 255
    pred[0] = 0  # an empty prediction for the foreground classes
    valid = (target != 255).numpy()
    metrics = {b.__name__: b(num_classes=num_classes, ignore_index=255, include_background=True)
               for b in (hd95, assd, nsd)}
    results = {name: m.update(pred, target) for name, m in metrics.items()}
    for c in range(num_classes):
        for i in range(len(pred)):
            expected = _brute_force((pred[i] == c).numpy() & valid[i], (target[i] == c).numpy() & valid[i], 2.0)
            got = [results[name][f"{name}/{c}"][i].item() for name in ("hd95", "assd", "nsd")]
            np.testing.assert_allclose(got, expected, rtol=1e-10, equal_nan=True)


def random_masks(rng: np.random.Generator, n: int, h: int, w: int, num_classes: int) -> torch.Tensor:
    """Class masks of every kind: empty, full, one class touching the border, salt and pepper, a random box."""
    masks = np.zeros((n, h, w), np.int64)
    for i in range(n):
        kind = rng.integers(5)
        if kind == 1:
            masks[i] = rng.integers(num_classes)
        elif kind == 2:
            masks[i, : rng.integers(1, h + 1), rng.integers(w):] = rng.integers(1, num_classes)
        elif kind == 3:
            masks[i] = rng.integers(num_classes, size=(h, w)) * (rng.random((h, w)) < rng.random())
        elif kind == 4:
            top, left = rng.integers(h), rng.integers(w)
            masks[i, top:top + rng.integers(1, h + 1), left:left + rng.integers(1, w + 1)] = 1
    return torch.from_numpy(masks)


@pytest.mark.parametrize("seed", range(12))
def test_matches_brute_force_on_random_sizes_and_kinds(seed: int) -> None:
    # Several images per batch (the distances of a batch are computed together), empty and full masks, masks
    # touching the border, sizes down to 1 px, void pixels: every value equals the pairwise brute force.
    rng = np.random.default_rng(seed)
    n, h, w, num_classes = rng.integers(1, 7), rng.integers(1, 41), rng.integers(1, 41), rng.integers(2, 4)
    pred, target = (random_masks(rng, n, h, w, num_classes) for _ in range(2))
    ignore = 255 if seed % 2 else None
    if ignore is not None:
        target[torch.from_numpy(rng.random((n, h, w)) < 0.1)] = ignore
    valid = (target != 255).numpy()
    results = {b.__name__: b(num_classes=num_classes, ignore_index=ignore, include_background=True,
                             **({"tolerance": 1.5} if b is nsd else {})).update(pred, target)
               for b in (hd95, assd, nsd)}
    for c in range(num_classes):
        for i in range(n):
            expected = _brute_force((pred[i] == c).numpy() & valid[i], (target[i] == c).numpy() & valid[i], 1.5)
            got = [results[name][f"{name}/{c}"][i].item() for name in ("hd95", "assd", "nsd")]
            np.testing.assert_allclose(got, expected, rtol=1e-10, equal_nan=True)


@pytest.mark.slow
def test_hd95_is_fast_enough_for_a_test_split() -> None:
    pred, target = blobs(100, 2, 128, seed=3), blobs(100, 2, 128, seed=4)
    metric = hd95(num_classes=2)
    start = time.process_time()  # CPU time: steadier than wall time on a shared machine
    metric.update(pred, target)
    metric.compute()
    # about 0.15 s on a 2-core CPU; the bound leaves room for a busy machine but not for a 100x slowdown
    # (torchmetrics' HausdorffDistance was about 175x slower)
    assert time.process_time() - start < 5.0


def test_bad_target_values_are_refused() -> None:
    target = torch.zeros(1, 4, 4, dtype=torch.int64)
    target[0, 0] = 255
    target[0, 1, 1] = 2
    with pytest.raises(DatasetError, match="value 2,"):
        hd95(num_classes=2, ignore_index=255).update(torch.zeros_like(target), target)

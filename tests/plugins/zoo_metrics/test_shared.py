"""The per-batch sharing and the stacked distance computation: never stale, and exact against scipy's EDT."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import ndimage

import zoo_metrics.surface as surface
from zoo_metrics.base import BATCH_CACHE
from zoo_metrics.overlap import accuracy, dice, iou, precision, recall
from zoo_metrics.surface import BoundaryDistances, assd, boundaries, hd95, nsd

BUILDERS = (dice, iou, precision, recall, accuracy, hd95, assd, nsd)


def blobs(n: int, num_classes: int, h: int, w: int, seed: int) -> torch.Tensor:
    """Smooth random class masks (upsampled noise); objects reach the image border."""
    g = torch.Generator().manual_seed(seed)
    noise = torch.rand(n, num_classes, max(h // 6, 2), max(w // 6, 2), generator=g)
    return F.interpolate(noise, size=(h, w), mode="bilinear").argmax(1)


def fresh(builder, pred: torch.Tensor, target: torch.Tensor, **options) -> dict[str, torch.Tensor]:
    """What a metric returns with nothing cached (the reference for the shared computation)."""
    BATCH_CACHE.clear()
    out = builder(**options).update(pred.clone(), target.clone())
    BATCH_CACHE.clear()
    return out


def assert_same(got: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> None:
    assert list(got) == list(expected)
    for column in expected:
        torch.testing.assert_close(got[column], expected[column], rtol=0, atol=0, equal_nan=True)


def score_all(pred: torch.Tensor, target: torch.Tensor, **options) -> dict[str, dict[str, torch.Tensor]]:
    return {b.__name__: b(**options).update(pred, target) for b in BUILDERS}


def test_two_batches_of_the_same_shape_in_a_row() -> None:
    a_pred, a_target = blobs(3, 3, 20, 20, seed=1), blobs(3, 3, 20, 20, seed=2)
    b_pred, b_target = blobs(3, 3, 20, 20, seed=3), blobs(3, 3, 20, 20, seed=4)
    options = {"num_classes": 3, "ignore_index": None}
    first, second = score_all(a_pred, a_target, **options), score_all(b_pred, b_target, **options)
    for b in BUILDERS:
        assert_same(first[b.__name__], fresh(b, a_pred, a_target, **options))
        assert_same(second[b.__name__], fresh(b, b_pred, b_target, **options))
    assert not torch.equal(first["hd95"]["hd95"], second["hd95"]["hd95"])  # the batches really differ


@pytest.mark.parametrize("how", ["torch in place", "through .numpy()", "inference mode"])
def test_a_batch_modified_in_place_is_recomputed(how: str) -> None:
    pred, target = blobs(2, 2, 24, 24, seed=5), blobs(2, 2, 24, 24, seed=6)
    options = {"num_classes": 2, "ignore_index": None}
    if how == "inference mode":  # inference tensors have no version counter: only the contents tell
        with torch.inference_mode():
            pred, target = pred.clone(), target.clone()
    before = score_all(pred, target, **options)
    with torch.inference_mode(how == "inference mode"):
        if how == "through .numpy()":  # bypasses torch's version counter
            pred.numpy()[0, 4:12, 4:12] = 1 - pred.numpy()[0, 4:12, 4:12]
        else:
            pred[0, 4:12, 4:12] = 1 - pred[0, 4:12, 4:12]
        after = score_all(pred, target, **options)
    for b in BUILDERS:
        assert_same(after[b.__name__], fresh(b, pred, target, **options))
    assert not torch.equal(before["dice"]["dice"], after["dice"]["dice"])
    assert not torch.equal(before["assd"]["assd"], after["assd"]["assd"])


def test_metrics_with_different_options_share_nothing_wrong() -> None:
    # Same batch, different ignore_index / classes / tolerance: each keeps its own values.
    pred, target = blobs(2, 3, 20, 20, seed=7), blobs(2, 3, 20, 20, seed=8)
    target[:, :3] = 255
    runs = [(nsd, {"num_classes": 3, "ignore_index": 255, "tolerance": 1.0}),
            (nsd, {"num_classes": 3, "ignore_index": 255, "tolerance": 3.0}),
            (hd95, {"num_classes": 3, "ignore_index": 255, "include_background": False}),
            (hd95, {"num_classes": 3, "ignore_index": 255}),
            (dice, {"num_classes": 3, "ignore_index": 255}),
            (dice, {"num_classes": 4, "ignore_index": 255})]
    got = [builder(**options).update(pred, target) for builder, options in runs]  # all on one cached batch
    for (builder, options), values in zip(runs, got):
        assert_same(values, fresh(builder, pred, target, **options))


def test_bad_values_are_refused_on_every_call() -> None:
    target = torch.zeros(1, 4, 4, dtype=torch.int64)
    target[0, 1, 1] = 7
    for builder in (dice, hd95, dice, hd95):  # a failed check caches nothing
        with pytest.raises(Exception, match="value 7"):
            builder(num_classes=2).update(torch.zeros_like(target), target)


def edt_reference(pred_edge: np.ndarray, target_edge: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """d(P->G) and d(G->P) of one image from scipy's full-image distance transforms, each sorted."""
    return (np.sort(ndimage.distance_transform_edt(~target_edge)[pred_edge]),
            np.sort(ndimage.distance_transform_edt(~pred_edge)[target_edge]))


def directed(d: surface._Directed, k: int) -> np.ndarray:
    return d.values[d.starts[k]:d.starts[k] + d.counts[k]]


@pytest.mark.parametrize(("h", "w"), [(24, 24), (17, 40), (40, 13)])
@pytest.mark.parametrize("seed", [0, 1])
def test_stacked_distances_equal_scipy(h: int, w: int, seed: int) -> None:
    pred = (blobs(6, 3, h, w, seed=seed) == 1).numpy()
    target = (blobs(6, 3, h, w, seed=seed + 10) == 1).numpy()
    pred[0], target[1] = False, False  # an empty mask on each side
    pred[2, :, :] = True  # a mask filling the image: its boundary is the image border
    target[3] = False
    target[3, -3:, -4:] = True  # a small object in the corner, next to the image below it in the stack
    pe, te = boundaries(pred), boundaries(target)
    got = BoundaryDistances(pe, te)
    for k, i in enumerate(np.flatnonzero(pe.any(axis=(1, 2)) & te.any(axis=(1, 2)))):
        expected_to_target, expected_to_pred = edt_reference(pe[i], te[i])
        np.testing.assert_array_equal(directed(got.to_target, k), expected_to_target)
        np.testing.assert_array_equal(directed(got.to_pred, k), expected_to_pred)
        np.testing.assert_array_equal(
            got.score("hd95")[i],
            max(np.percentile(expected_to_target, 95), np.percentile(expected_to_pred, 95)))


def test_objects_touching_the_border_on_every_side() -> None:
    # Two objects in opposite corners: every edge pixel is on the border.
    pred = np.zeros((1, 12, 12), bool)
    target = np.zeros((1, 12, 12), bool)
    pred[0, :3, :3] = True
    target[0, -2:, -5:] = True
    pe, te = boundaries(pred), boundaries(target)
    got = BoundaryDistances(pe, te)
    expected_to_target, expected_to_pred = edt_reference(pe[0], te[0])
    np.testing.assert_array_equal(directed(got.to_target, 0), expected_to_target)
    np.testing.assert_array_equal(directed(got.to_pred, 0), expected_to_pred)


def test_chunked_queries_on_a_large_image(monkeypatch: pytest.MonkeyPatch) -> None:
    # Queries in small chunks, on an image of over 1024 px each way, give the same distances.
    pred = np.zeros((1, 1030, 1030), bool)
    target = np.zeros((1, 1030, 1030), bool)
    pred[0, 5:40, 3:1000] = True
    target[0, 900:1020, 20:1027] = True
    target[0, 3:9, 500:520] = True
    pe, te = boundaries(pred), boundaries(target)
    monkeypatch.setattr(surface, "_CHUNK", 4096)
    got = BoundaryDistances(pe, te)
    expected_to_target, expected_to_pred = edt_reference(pe[0], te[0])
    np.testing.assert_array_equal(directed(got.to_target, 0), expected_to_target)
    np.testing.assert_array_equal(directed(got.to_pred, 0), expected_to_pred)

"""Overlap metrics: hand-computed cases, edge cases, torchmetrics as the independent reference, pooling."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from torchmetrics.functional.classification import multiclass_stat_scores

from zoo.errors import DatasetError, OptionError
from zoo_metrics.overlap import accuracy, dice, iou, precision, recall

NAN = float("nan")


def masks(*rows_per_image: list[list[int]]) -> torch.Tensor:
    return torch.tensor(rows_per_image, dtype=torch.int64)


def values(result: dict[str, torch.Tensor], column: str) -> list[float]:
    return result[column].tolist()


def assert_same(actual: list[float], expected: list[float]) -> None:
    """Equal within 1e-12, with NaN matching only NaN."""
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected):
        assert (math.isnan(a) and math.isnan(e)) or a == pytest.approx(e, abs=1e-12), (actual, expected)


# pred and target of one binary image: tp=2, fp=1, fn=1, tn=2
PRED = masks([[1, 1, 1], [0, 0, 0]])
TARGET = masks([[1, 1, 0], [1, 0, 0]])


@pytest.mark.parametrize(
    ("builder", "expected"),
    [(dice, 4 / 6), (iou, 2 / 4), (precision, 2 / 3), (recall, 2 / 3), (accuracy, 4 / 6)],
)
def test_binary_hand_computed(builder, expected: float) -> None:
    metric = builder(num_classes=2)
    result = metric.update(PRED, TARGET)
    assert list(result) == [builder.__name__]  # binary: one column, the foreground's value
    assert values(result, builder.__name__) == [pytest.approx(expected)]
    assert metric.compute() == {builder.__name__: pytest.approx(expected)}


def test_ignore_index_excludes_pixels_from_every_count() -> None:
    # The second row is ignored: its fp (pred 1, target 255) and tn must not count.
    pred = masks([[1, 1, 0], [1, 1, 0]])
    target = masks([[1, 0, 0], [255, 255, 255]])
    assert values(dice(num_classes=2, ignore_index=255).update(pred, target), "dice") == [pytest.approx(2 / 3)]
    assert values(precision(num_classes=2, ignore_index=255).update(pred, target), "precision") == [0.5]
    assert values(accuracy(num_classes=2, ignore_index=255).update(pred, target), "accuracy") == [
        pytest.approx(2 / 3)
    ]
    # every pixel ignored: nothing is defined
    all_void = torch.full((1, 2, 3), 255)
    assert math.isnan(values(accuracy(num_classes=2, ignore_index=255).update(pred, all_void), "accuracy")[0])
    assert math.isnan(values(dice(num_classes=2, ignore_index=255).update(pred, all_void), "dice")[0])


def test_ignore_index_inside_the_class_range() -> None:
    # ignore_index=0: target pixels of class 0 leave the counts; a prediction of 0 elsewhere is a false positive.
    pred = masks([[1, 0], [1, 2]])
    target = masks([[0, 1], [1, 2]])
    result = dice(num_classes=3, ignore_index=0).update(pred, target)
    # pixel (0, 0) is ignored, so its prediction 1 is not a class-1 false positive
    assert_same(values(result, "dice/0") + values(result, "dice/1") + values(result, "dice/2"), [0.0, 2 / 3, 1.0])
    result = dice(num_classes=3, ignore_index=0).update(masks([[1, 1], [1, 2]]), target)
    assert_same(values(result, "dice/0"), [NAN])  # class 0 is never counted in either mask


def test_empty_masks_give_nan_not_zero_or_one() -> None:
    empty = masks([[0, 0], [0, 0]])
    blob = masks([[0, 1], [0, 0]])
    pred = torch.cat([empty, blob, empty])
    target = torch.cat([empty, empty, blob])  # image 0: both empty; 1: empty GT; 2: empty prediction
    assert_same(values(dice(num_classes=2).update(pred, target), "dice"), [NAN, 0.0, 0.0])
    assert_same(values(iou(num_classes=2).update(pred, target), "iou"), [NAN, 0.0, 0.0])
    assert_same(values(precision(num_classes=2).update(pred, target), "precision"), [NAN, 0.0, NAN])
    assert_same(values(recall(num_classes=2).update(pred, target), "recall"), [NAN, NAN, 0.0])
    assert_same(values(accuracy(num_classes=2).update(pred, target), "accuracy"), [1.0, 0.75, 0.75])


def test_multiclass_columns_names_and_background() -> None:
    pred = masks([[0, 1, 1, 2]])
    target = masks([[0, 1, 2, 2]])
    names = ("background", "road", "car")
    result = dice(num_classes=3, class_names=names).update(pred, target)
    assert list(result) == ["dice", "dice/background", "dice/road", "dice/car"]
    per_class = [1.0, 2 / 3, 2 / 3]
    assert_same([values(result, f"dice/{n}")[0] for n in names], per_class)
    assert values(result, "dice") == [pytest.approx(sum(per_class) / 3)]

    result = dice(num_classes=3, include_background=False).update(pred, target)
    assert list(result) == ["dice", "dice/1", "dice/2"]  # index names without class_names
    assert values(result, "dice") == [pytest.approx(2 / 3)]

    # binary with the background included: both classes get columns, the average covers both
    pred = masks([[1, 1, 1], [1, 0, 0]])  # against TARGET: foreground tp 3, fp 1; background tp 2, fn 1
    result = dice(num_classes=2, include_background=True, class_names=("bg", "fg")).update(pred, TARGET)
    assert list(result) == ["dice", "dice/bg", "dice/fg"]
    assert_same(values(result, "dice/bg") + values(result, "dice/fg"), [4 / 5, 6 / 7])
    assert values(result, "dice") == [pytest.approx((4 / 5 + 6 / 7) / 2)]


def test_class_average_skips_nan_classes() -> None:
    # Class 2 appears in neither mask: NaN, left out of the average instead of counting as 0 or 1.
    pred = masks([[0, 1], [1, 1]])
    target = masks([[0, 1], [0, 1]])
    result = iou(num_classes=3).update(pred, target)
    assert_same(values(result, "iou/2"), [NAN])
    assert values(result, "iou") == [pytest.approx((1 / 2 + 2 / 3) / 2)]


def _reference(kind: str, pred: torch.Tensor, target: torch.Tensor, num_classes: int, ignore: int) -> np.ndarray:
    """Per-image, per-class scores from torchmetrics' stat scores and the textbook formulas in numpy."""
    stats = multiclass_stat_scores(pred, target, num_classes=num_classes, average=None,
                                   multidim_average="samplewise", ignore_index=ignore).numpy().astype(float)
    tp, fp, fn = stats[..., 0], stats[..., 1], stats[..., 3]
    num, den = {"dice": (2 * tp, 2 * tp + fp + fn), "iou": (tp, tp + fp + fn),
                "precision": (tp, tp + fp), "recall": (tp, tp + fn)}[kind]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / den, np.nan)


@pytest.mark.parametrize("builder", [dice, iou, precision, recall])
@pytest.mark.parametrize("num_classes", [2, 4])
def test_matches_torchmetrics_on_random_masks(builder, num_classes: int) -> None:
    g = torch.Generator().manual_seed(num_classes)
    pred = torch.randint(0, num_classes, (6, 16, 16), generator=g)
    target = torch.randint(0, num_classes, (6, 16, 16), generator=g)
    target[:, :3] = 255
    pred[0] = 0  # make some classes absent
    target[0, 3:] = 0
    target[1] = 255  # every class undefined: the average is NaN too
    kind = builder.__name__
    expected = _reference(kind, pred, target, num_classes, 255)
    result = builder(num_classes=num_classes, ignore_index=255).update(pred, target)
    if num_classes == 2:
        np.testing.assert_allclose(result[kind].numpy(), expected[:, 1], rtol=1e-12)
    else:
        for c in range(num_classes):
            np.testing.assert_allclose(result[f"{kind}/{c}"].numpy(), expected[:, c], rtol=1e-12)
        with warnings.catch_warnings():  # numpy warns about the all-NaN image
            warnings.simplefilter("ignore", RuntimeWarning)
            np.testing.assert_allclose(result[kind].numpy(), np.nanmean(expected, axis=1), rtol=1e-12)


def test_accuracy_matches_a_direct_count() -> None:
    g = torch.Generator().manual_seed(1)
    pred = torch.randint(0, 3, (5, 12, 12), generator=g)
    target = torch.randint(0, 3, (5, 12, 12), generator=g)
    target[:, 0] = 255
    valid = target != 255
    expected = ((pred == target) & valid).sum((1, 2)) / valid.sum((1, 2))
    metric = accuracy(num_classes=3, ignore_index=255)
    np.testing.assert_allclose(metric.update(pred, target)["accuracy"].numpy(), expected.numpy())
    assert metric.compute()["accuracy"] == pytest.approx(float(((pred == target) & valid).sum() / valid.sum()))


def test_pooled_differs_from_per_image_mean() -> None:
    # Image 0: a 1-pixel object, found. Image 1: an 8-pixel object, half found.
    small_pred, small_target = torch.zeros(1, 4, 4, dtype=torch.int64), torch.zeros(1, 4, 4, dtype=torch.int64)
    small_pred[0, 0, 0] = small_target[0, 0, 0] = 1
    big_target = torch.zeros(1, 4, 4, dtype=torch.int64)
    big_target[0, :2] = 1
    big_pred = torch.zeros(1, 4, 4, dtype=torch.int64)
    big_pred[0, 0] = 1
    metric = dice(num_classes=2)
    per_image = metric.update(small_pred, small_target)["dice"].tolist() + metric.update(big_pred, big_target)[
        "dice"].tolist()
    assert per_image == [1.0, pytest.approx(2 * 4 / (4 + 8))]
    pooled = metric.compute()["dice"]
    assert pooled == pytest.approx(2 * 5 / (5 + 9))  # tp 5, |pred| 5, |target| 9 over the split
    assert pooled != pytest.approx(np.mean(per_image))


def test_updates_accumulate_and_reset_forgets() -> None:
    g = torch.Generator().manual_seed(2)
    pred = torch.randint(0, 3, (6, 8, 8), generator=g)
    target = torch.randint(0, 3, (6, 8, 8), generator=g)
    split, whole = iou(num_classes=3), iou(num_classes=3)
    split.update(pred[:2], target[:2])
    split.update(pred[2:], target[2:])
    whole.update(pred, target)
    assert split.compute() == pytest.approx(whole.compute())
    split.reset()
    assert all(math.isnan(v) for v in split.compute().values())


def test_bad_input_is_refused() -> None:
    metric = dice(num_classes=2, ignore_index=255)
    with pytest.raises(ValueError, match="same shape"):
        metric.update(torch.zeros(1, 2, 2, dtype=torch.int64), torch.zeros(1, 2, 3, dtype=torch.int64))
    with pytest.raises(ValueError, match="integer class indices"):
        metric.update(torch.zeros(1, 2, 2), torch.zeros(1, 2, 2, dtype=torch.int64))
    with pytest.raises(ValueError, match="pred holds class 2"):
        metric.update(torch.full((1, 2, 2), 2), torch.zeros(1, 2, 2, dtype=torch.int64))
    with pytest.raises(DatasetError, match="value 7"):
        metric.update(torch.zeros(1, 2, 2, dtype=torch.int64), torch.full((1, 2, 2), 7))
    with pytest.raises(OptionError, match="2 names"):
        dice(num_classes=3, class_names=("a", "b"))
    with pytest.raises(OptionError, match="num_classes=1"):
        accuracy(num_classes=1)


@pytest.mark.parametrize("void", [-100, 65535])
def test_any_ignore_value_gives_the_same_scores(void: int) -> None:
    g = torch.Generator().manual_seed(3)
    pred = torch.randint(0, 3, (4, 8, 8), generator=g)
    target = torch.randint(0, 3, (4, 8, 8), generator=g)
    target[:, :2] = 255
    expected = iou(num_classes=3, ignore_index=255).update(pred, target)
    got = iou(num_classes=3, ignore_index=void).update(pred, torch.where(target == 255, void, target))
    for column in expected:
        np.testing.assert_array_equal(got[column].numpy(), expected[column].numpy())


@pytest.mark.parametrize("builder", [dice, accuracy])
@pytest.mark.parametrize("bad", [-1, 3, 254])
def test_bad_target_values_are_found_among_void_pixels(builder, bad: int) -> None:
    target = torch.zeros(2, 4, 4, dtype=torch.int64)
    target[:, 0] = 255
    target[1, 2, 2] = bad
    with pytest.raises(DatasetError, match=f"value {bad},"):
        builder(num_classes=3, ignore_index=255).update(torch.zeros_like(target), target)

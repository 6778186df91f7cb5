"""Floors: constant predictors scored on the test masks, against direct numpy computations (issue 13)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

import zoo
from zoo import registry
from zoo.bench import floors as fl
from zoo.bench.records import CellRecord
from zoo.interfaces import DatasetSpec, MetricSpec

RNG = np.random.default_rng(3)
# three 6 x 5 test masks of a binary set: one with foreground, one mostly foreground, one empty
MASKS = [(RNG.random((6, 5)) < share).astype(np.int64) for share in (0.3, 0.8, 0.0)]


class _Split:
    def __init__(self, masks: list[np.ndarray]) -> None:
        self.masks, self.ids = masks, [f"im{i}" for i in range(len(masks))]

    def __len__(self) -> int:
        return len(self.masks)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        mask = torch.as_tensor(self.masks[index])
        return torch.rand(1, *mask.shape), mask


class _Data:
    in_channels, num_classes, class_names, ignore_index = 1, 2, ("background", "cell"), None

    def split(self, name: str) -> _Split:
        return _Split(MASKS)

    def fingerprint(self) -> str:
        return "f00d"


def fixed_masks() -> _Data:
    """Three fixed binary test masks (a fake dataset)."""
    return _Data()


class _ForegroundDice:
    """Per-image Dice of class 1 (NaN when both masks are empty) and the pooled one."""

    def __init__(self) -> None:
        self.reset()

    def update(self, pred: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        p, t = (pred == 1).flatten(1).double(), (target == 1).flatten(1).double()
        self.sums.append(torch.stack([(p * t).sum(1), p.sum(1) + t.sum(1)]))
        inter, total = self.sums[-1]
        return {"fg-dice": torch.where(total > 0, 2 * inter / total, torch.nan)}

    def compute(self) -> dict[str, float]:
        inter, total = torch.cat(self.sums, dim=1).sum(1)
        return {"fg-dice": float(2 * inter / total)}

    def reset(self) -> None:
        self.sums: list[torch.Tensor] = []


def fg_dice(*, num_classes: int, ignore_index: int | None = None, class_names=None) -> _ForegroundDice:
    """Foreground Dice (a fake metric)."""
    return _ForegroundDice()


class _Plugin:
    @zoo.hookimpl
    def zoo_register_datasets(self):
        return [DatasetSpec("fixed-masks", fixed_masks, in_channels=1, num_classes=2)]

    @zoo.hookimpl
    def zoo_register_metrics(self):
        return [MetricSpec("fg-dice", fg_dice)]


@pytest.fixture(scope="module")
def reg():
    return registry.load_registry(plugins=[_Plugin()], autoload=False)


def _record(dataset: str = "fixed-masks", fingerprint: str | None = "f00d") -> CellRecord:
    return CellRecord(cell_id=f"{dataset}__m__s0", dataset=dataset, model="m", variant="m", seed=0, status="ok",
                      dataset_fingerprint=fingerprint, config={"eval_image_size": "native", "image_size": 6})


def _numpy_dice(pred: np.ndarray, target: np.ndarray) -> float:
    total = pred.sum() + target.sum()
    return 2 * (pred * target).sum() / total if total else math.nan


def test_floors_equal_a_direct_numpy_computation(reg):
    frame = fl.compute_floors(_record(), ["fg-dice"], registries=reg)
    assert list(frame.columns) == fl.FLOOR_COLUMNS and set(frame["dataset_fingerprint"]) == {"f00d"}
    assert set(frame["scored_at"]) == {"native"}
    for c, name in enumerate(("background", "cell")):
        rows = frame[frame["floor"] == fl.floor_name(name)]
        per_image = rows[rows["image_id"].notna()].set_index("image_id")["value"]
        expected = [_numpy_dice(np.full_like(m, c) == 1, m == 1) for m in MASKS]
        np.testing.assert_allclose(per_image.loc[["im0", "im1", "im2"]], expected, equal_nan=True)
        pooled = rows.loc[rows["image_id"].isna(), "value"].item()
        stacked = np.concatenate([m.ravel() for m in MASKS])
        assert pooled == pytest.approx(_numpy_dice(np.full_like(stacked, c) == 1, stacked == 1))
    pixels = frame[frame["floor"] == fl.MASKS].pivot(index="image_id", columns="metric", values="value")
    np.testing.assert_array_equal(pixels["pixels/cell"], [m.sum() for m in MASKS])
    np.testing.assert_array_equal(pixels["pixels/background"], [(m == 0).sum() for m in MASKS])
    # the table shows the majority class and the foreground; the score table gets seedless floor rows
    majority = "cell" if sum(m.sum() for m in MASKS) > sum((m == 0).sum() for m in MASKS) else "background"
    assert fl.shown_floors(frame, "fixed-masks", "fg-dice")[0] == fl.floor_name(majority)
    assert fl.floor_name("cell") in fl.shown_floors(frame, "fixed-masks", "fg-dice")
    scores = fl.floor_scores(frame, "fg-dice")
    assert scores["seed"].isna().all() and len(scores) == 2 * len(MASKS)


def test_floors_are_cached_and_a_missing_dataset_is_one_line(reg, tmp_path):
    computed = fl.load_floors([_record(), _record("absent-set")], [tmp_path / fl.FLOOR_FILE], ["fg-dice"],
                              registries=reg)
    assert set(computed.frame["dataset"]) == {"fixed-masks"}
    (note,) = computed.notes
    assert note.startswith("No floors for `absent-set`") and "\n" not in note and "--data-dir" in note
    fl.write_floors(computed, tmp_path / fl.FLOOR_FILE)
    empty = registry.load_registry(plugins=[], autoload=False)  # the cache needs no dataset
    cached = fl.load_floors([_record()], [tmp_path / fl.FLOOR_FILE], ["fg-dice"], registries=empty)
    assert cached.notes == ()
    pd.testing.assert_frame_equal(cached.frame.reset_index(drop=True), computed.frame.reset_index(drop=True),
                                  check_dtype=False)
    # a different fingerprint means different data, a different size other masks: the cache is not used
    resized = _record()
    resized.config = {**resized.config, "eval_image_size": 4}
    for record in (_record(fingerprint="beef"), resized):
        stale = fl.load_floors([record], [tmp_path / fl.FLOOR_FILE], ["fg-dice"], registries=empty)
        assert stale.frame.empty and "fixed-masks" in stale.notes[0]
    # a metric the cache lacks is computed when the data is there, and the cache is kept when it is not
    assert fl.load_floors([_record()], [tmp_path / fl.FLOOR_FILE], ["fg-dice", "other"], registries=empty).notes == ()


def test_minority_dice_matches_the_background_dice_of_the_built_in_metrics():
    reg = registry.default_registry()
    if not {"dice", "recall", "accuracy"} <= set(reg.metrics.names()):
        pytest.skip("the built-in metrics are not installed")
    rng = np.random.default_rng(0)
    target = torch.as_tensor(rng.random((6, 16, 16)) < 0.75).long()  # the foreground is the majority
    pred = torch.where(torch.as_tensor(rng.random((6, 16, 16)) < 0.2), 1 - target, target)
    pred[0], target[1] = 1, 1  # an image predicting no background; one with no background at all
    metrics = {n: registry.build_metric(n, num_classes=2, registries=reg) for n in ("recall", "accuracy")}
    rows = [("m", 0, str(i), name, float(v)) for name, metric in metrics.items()
            for i, v in enumerate(metric.update(pred, target)[name].tolist())]
    scores = pd.DataFrame(rows, columns=["variant", "seed", "image_id", "metric", "value"])
    counts = pd.DataFrame([("d", fl.MASKS, str(i), f"pixels/{n}", float((target[i] == c).sum()))
                           for i in range(6) for c, n in enumerate(("bg", "fg"))], columns=fl.FLOOR_COLUMNS[:1] + [
                               "floor", "image_id", "metric", "value"])
    derived = fl.minority_dice(scores, counts, "d")["value"].to_numpy()
    direct = [_numpy_dice((p == 0).numpy(), (t == 0).numpy()) for p, t in zip(pred, target)]
    np.testing.assert_allclose(derived, direct, atol=1e-6, equal_nan=True)
    assert fl.minority_class(counts, "d") == "bg"
    both_dice = registry.build_metric("dice", num_classes=2, include_background=True, registries=reg)
    np.testing.assert_allclose(derived, both_dice.update(pred, target)["dice/0"].numpy(), atol=1e-6, equal_nan=True)


def test_floors_ask_only_for_the_metrics_the_datasets_cells_were_scored_with(reg, tmp_path):
    """A folder's metric names are the union over its datasets; another dataset's (e.g. binary-only) metric is
    not asked of this one, which its registry could not even build."""
    from zoo.errors import OptionError

    def refuses(**_):
        raise OptionError("binary-only scores binary tasks only")

    class _Refusing:
        @zoo.hookimpl
        def zoo_register_metrics(self):
            return [MetricSpec("binary-only", refuses)]

    both = registry.load_registry(plugins=[_Plugin(), _Refusing()], autoload=False)
    record = _record()
    record.metrics = {"fg-dice": 0.5, "fg-dice_pooled": 0.5}
    floors = fl.load_floors([record], [tmp_path / fl.FLOOR_FILE], ["fg-dice", "binary-only"], registries=both)
    assert floors.notes == () and set(floors.frame["metric"].str.split("/").str[0]) >= {"fg-dice"}
    assert fl.scored_names(record, ["fg-dice", "binary-only"]) == ["fg-dice"]
    assert fl.scored_names(_record(), ["fg-dice", "x"]) == ["fg-dice", "x"]  # a record without metrics: all

"""zoo.data: readers, validation, caching, loaders, augmentation presets, normalisation and the dataset check."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from zoo import data
from zoo.errors import DatasetError, UnknownNameError


def _split(n: int = 6, size: int = 12, classes: int = 3, ignore_index: int | None = None,
           cache_mb: float = 10) -> tuple[data.CachedSplit, list[int]]:
    calls: list[int] = []

    def load(i: int) -> tuple[torch.Tensor, torch.Tensor]:
        calls.append(i)
        g = torch.Generator().manual_seed(i)
        image = torch.randint(0, 256, (3, size, size), generator=g, dtype=torch.uint8)
        mask = torch.randint(0, classes, (size, size), generator=g, dtype=torch.uint8)
        return image, mask

    return data.CachedSplit([f"id{i}" for i in range(n)], load, cache=data.DecodeCache(cache_mb),
                            ignore_index=ignore_index), calls


def _dataset(split: data.CachedSplit, classes: int = 3) -> data.BaseDataset:
    return data.BaseDataset(name="toy", in_channels=3, num_classes=classes, class_names=tuple(f"c{k}" for k in
                            range(classes)), ignore_index=None, splits={"train": split, "val": split, "test": split},
                            split_source="test")


def test_read_image_and_mask(tmp_path: Path) -> None:
    rgb = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "a.png")
    image = data.read_image(tmp_path / "a.png")
    assert image.dtype == torch.uint8 and torch.equal(image, torch.from_numpy(rgb).permute(2, 0, 1))
    Image.fromarray(np.full((5, 7), 2, np.uint8)).save(tmp_path / "m.png")
    assert data.read_mask(tmp_path / "m.png").shape == (5, 7)
    with pytest.raises(DatasetError, match="missing.png' does not exist"):
        data.read_image(tmp_path / "missing.png")
    (tmp_path / "bad.png").write_bytes(b"garbage")
    with pytest.raises(DatasetError, match="bad.png': corrupt"):
        data.read_mask(tmp_path / "bad.png")
    Image.fromarray(np.array([[0.0, np.inf]], np.float32), mode="F").save(tmp_path / "inf.tif")
    with pytest.raises(DatasetError, match="inf.tif' has 1 NaN/Inf"):
        data.read_image(tmp_path / "inf.tif")
    Image.fromarray(np.array([[0.0, 1.0]], np.float32), mode="F").save(tmp_path / "f.tif")
    assert data.read_image(tmp_path / "f.tif").tolist() == [[[0, 255]]]


def test_validate_pair_names_files_and_values() -> None:
    image, mask = torch.zeros(1, 4, 4), torch.tensor([[0, 1], [5, 255]])
    with pytest.raises(DatasetError, match="img.png' is 4x4 but its mask 'm.png' is 2x2"):
        data.validate_pair(image, mask, num_classes=2, ignore_index=None, image_path="img.png", mask_path="m.png")
    with pytest.raises(DatasetError, match=r"values \[5\] outside .*0..1 or ignore_index 255"):
        data.validate_pair(torch.zeros(1, 2, 2), mask, num_classes=2, ignore_index=255, image_path="i",
                           mask_path="m")


def test_normalize_image_is_per_image_per_channel() -> None:
    x = torch.rand(2, 3, 8, 8) * torch.tensor([1.0, 0.1, 0.5]).view(1, 3, 1, 1)
    y = data.normalize_image(x)
    assert torch.allclose(y.mean((-2, -1)), torch.zeros(2, 3), atol=1e-5)
    assert torch.allclose(y.std((-2, -1), correction=0), torch.ones(2, 3), atol=1e-3)
    assert torch.allclose(data.normalize_image(x[1]), y[1])
    assert torch.equal(data.normalize_image(torch.full((1, 4, 4), 0.3)), torch.zeros(1, 4, 4))


def test_cache_decodes_once_within_budget() -> None:
    split, calls = _split()
    for _ in range(3):
        for i in range(len(split)):
            image, mask = split[i]
    assert calls == list(range(6)) and split.cached_items == 6
    assert image.dtype == torch.float32 and mask.dtype == torch.int64 and image.max() <= 1
    tiny, calls = _split(cache_mb=2 * (3 * 144 + 144) / 2**20)  # room for two items
    for _ in range(2):
        for i in range(len(tiny)):
            tiny[i]
    assert tiny.cached_items == 2 and len(calls) == 2 + 2 * 4
    off, calls = _split(cache_mb=0)
    off[0], off[0]
    assert calls == [0, 0]


def test_eval_loader_keeps_order_and_resizes_masks_nearest() -> None:
    split, _ = _split(n=5)
    loader = data.make_loader(split, train=False, batch_size=2, image_size=8)
    batches = list(loader)
    assert [b[0].shape[0] for b in batches] == [2, 2, 1]
    images, masks = batches[0]
    assert images.shape == (2, 3, 8, 8) and masks.shape == (2, 8, 8) and masks.dtype == torch.int64
    assert set(masks.unique().tolist()) <= {0, 1, 2}
    native = next(iter(data.make_loader(split, train=False, batch_size=5)))
    for i in range(5):
        image, mask = split[i]
        assert torch.equal(native[1][i], mask)
        assert torch.allclose(native[0][i], data.normalize_image(image), atol=1e-5)


@pytest.mark.parametrize("preset", data.AUGMENT_PRESETS)
def test_train_loader_presets_are_seeded_and_keep_mask_labels(preset: str) -> None:
    split, _ = _split(n=8, size=16, ignore_index=255)

    def run() -> list[torch.Tensor]:
        torch.manual_seed(0)
        return [m for _, m in data.make_loader(split, train=True, batch_size=4, image_size=10, augment=preset, seed=3)]

    first, second = run(), run()
    assert all(torch.equal(a, b) for a, b in zip(first, second))
    assert first[0].shape == (4, 10, 10)
    assert set(torch.cat(first).unique().tolist()) <= {0, 1, 2, 255}


def test_loader_arguments_are_checked() -> None:
    split, _ = _split()
    with pytest.raises(UnknownNameError, match="unknown augmentation preset 'medium'.*light"):
        data.make_loader(split, train=True, batch_size=2, augment="medium")
    empty = data.CachedSplit([], lambda i: (torch.zeros(1), torch.zeros(1)))
    with pytest.raises(DatasetError, match="empty split"):
        data.make_loader(empty, train=False, batch_size=1)


def test_seeded_split_is_deterministic_and_complete() -> None:
    ids = [f"x{i}" for i in range(20)]
    a = data.seeded_split(ids, seed=0)
    assert a == data.seeded_split(list(reversed(ids)), seed=0) != data.seeded_split(ids, seed=1)
    assert sorted(a["train"] + a["val"] + a["test"]) == sorted(ids)


def test_check_dataset_counts_pixels_and_reports_bad_items() -> None:
    split, _ = _split(n=4, classes=2)
    report = data.check_dataset(_dataset(split, classes=2), splits=("train",))
    masks = torch.stack([split[i][1] for i in range(4)])
    assert report.ok and report.counts == {"train": 4}
    assert report.class_pixels["train"][:2] == [int((masks == 0).sum()), int((masks == 1).sum())]
    assert report.frequencies("train")[1] == pytest.approx(float((masks == 1).float().mean()))

    def broken(i: int) -> tuple[torch.Tensor, torch.Tensor]:
        if i == 1:
            raise DatasetError("mask 'x1.png' is broken")
        return torch.zeros(1, 2, 2, dtype=torch.uint8), torch.zeros(2, 2, dtype=torch.uint8)

    bad = data.CachedSplit(["x0", "x1", "x2"], broken)
    report = data.check_dataset(_dataset(bad, classes=2), splits=("train",))
    assert [p.message for p in report.errors] == ["mask 'x1.png' is broken"]
    assert [p.kind for p in report.warnings] == ["all-background", "all-background"]


def test_fingerprint_depends_on_split_assignment() -> None:
    split, _ = _split(n=3)
    ds = _dataset(split)
    other = data.BaseDataset(**{**ds.__dict__, "splits": {"train": data.CachedSplit(["id0"], split._load)}})
    assert ds.fingerprint("train") == _dataset(split).fingerprint("train") != other.fingerprint("train")
    with pytest.raises(DatasetError, match="split 'val' of dataset 'toy' is empty"):
        other.split("val")


def test_same_size_batches_stack_consecutive_images_of_one_size_in_order() -> None:
    from zoo.data.loaders import SameSizeBatches

    sizes = [(4, 4), (4, 4), (4, 4), (6, 4), (4, 4), (4, 4), (4, 4), (4, 4), (4, 4)]
    items = [(torch.full((1, 3, h, w), float(i)), torch.full((1, h, w), i)) for i, (h, w) in enumerate(sizes)]
    batches = list(SameSizeBatches(items, max_images=4))
    assert [b[0].shape[0] for b in batches] == [3, 1, 4, 1]  # a new size or a full batch starts the next
    assert torch.cat([b[1][:, 0, 0] for b in batches]).tolist() == list(range(9))  # the split's order
    assert all(torch.equal(b[0][:, 0, 0, 0].long(), b[1][:, 0, 0]) for b in batches)  # images stay with masks
    by_pixels = list(SameSizeBatches(items, max_pixels=2 * 16))  # two 4x4 images per batch at most
    assert [b[0].shape[0] for b in by_pixels] == [2, 1, 1, 2, 2, 1]
    assert [b[0].shape[0] for b in SameSizeBatches(items, max_pixels=1)] == [1] * 9  # an image alone always fits


def test_native_scoring_of_stacked_images_equals_scoring_one_at_a_time() -> None:
    from zoo.data.loaders import SameSizeBatches
    from tests.zoo.engine_fakes import dice
    from zoo.precision import Precision
    from zoo.scoring import evaluate

    torch.manual_seed(0)
    split, _ = _split(n=7)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.BatchNorm2d(8), torch.nn.ReLU(),
                                torch.nn.Conv2d(8, 3, 3, padding=1))
    one = data.make_loader(split, train=False, batch_size=1)
    stacked = SameSizeBatches(data.make_loader(split, train=False, batch_size=1))
    assert [b[0].shape[0] for b in stacked] == [7]
    scores = [evaluate(model, loader, {"dice": dice(num_classes=3)}, precision=Precision("cpu", "fp32"))
              for loader in (one, stacked)]
    assert [r[:2] for r in scores[0].rows] == [r[:2] for r in scores[1].rows]
    assert [r[2] for r in scores[0].rows] == pytest.approx([r[2] for r in scores[1].rows], abs=1e-6)
    assert scores[0].pooled == pytest.approx(scores[1].pooled, abs=1e-6)

"""The generic folder layout: reading, mask mappings, splits, and one defect of each kind."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from zoo.data import check_dataset, collect_problems
from zoo.errors import DatasetError
from zoo_datasets.folder import folder

from tests.plugins.zoo_datasets.fixtures import save, write_folder

SPLIT = {"a": "train", "b": "train", "c": "val", "d": "test"}


def test_reads_items_in_contract_form(tmp_path: Path) -> None:
    root = write_folder(tmp_path / "d", list(SPLIT), split=SPLIT)
    ds = folder(root=str(root))
    assert (ds.in_channels, ds.num_classes, ds.class_names, ds.ignore_index) == (3, 2, ("background", "fg"), None)
    train = ds.split("train")
    assert list(train.ids) == ["a", "b"] and len(ds.split("val")) == 1
    image, mask = train[1]
    assert image.dtype == torch.float32 and image.shape == (3, 16, 20) and 0 <= image.min() and image.max() <= 1
    assert mask.dtype == torch.int64 and mask.shape == (16, 20)
    expected = np.array(Image.open(root / "masks" / "b.png"))
    assert torch.equal(mask, torch.from_numpy(expected).long())
    assert ds.split_source.startswith("file:")


def test_seeded_split_without_split_csv_is_recorded_and_reproducible(tmp_path: Path) -> None:
    root = write_folder(tmp_path / "d", [f"{i:02d}" for i in range(20)])
    a, b, c = folder(root=str(root)), folder(root=str(root)), folder(root=str(root), split_seed=1)
    assert a.split_source.startswith("seed:0")
    assert {s: list(a.split(s).ids) for s in ("train", "val", "test")} == \
           {s: list(b.split(s).ids) for s in ("train", "val", "test")}
    assert a.fingerprint("train") == b.fingerprint("train") != c.fingerprint("train")
    assert sorted(a.split("train").ids + a.split("val").ids + a.split("test").ids) == [f"{i:02d}" for i in range(20)]
    assert (len(a.split("train")), len(a.split("val")), len(a.split("test"))) == (14, 3, 3)


def test_mask_values_maps_0_255_to_classes(tmp_path: Path) -> None:
    root = write_folder(tmp_path / "d", list(SPLIT), split=SPLIT, mask_scale=255)
    with pytest.raises(DatasetError, match=r"values \[255\] outside the declared classes"):
        folder(root=str(root)).split("train")[0]
    ds = folder(root=str(root), mask_values=(0, 255))
    raw = np.array(Image.open(root / "masks" / "a.png"))
    assert torch.equal(ds.split("train")[0][1], torch.from_numpy(raw // 255).long())
    assert torch.equal(folder(root=str(root), mask_map="binary").split("train")[0][1],
                       torch.from_numpy(raw // 255).long())


def test_rgb_colour_table_and_void_class(tmp_path: Path) -> None:
    root = tmp_path / "d"
    colours = {0: (0, 0, 0), 1: (255, 0, 0), 2: (0, 255, 0)}
    index = np.array([[0, 1, 2, 1], [2, 2, 0, 0]], dtype=np.uint8)
    rgb = np.stack([np.array([colours[v][c] for v in index.flat]).reshape(index.shape) for c in range(3)], -1)
    save(root / "images" / "x.png", np.zeros((2, 4, 3), np.uint8))
    save(root / "masks" / "x.png", rgb.astype(np.uint8))
    (root / "classes.txt").write_text("sky 0 0 0\nroad 255 0 0\nvoid 0 255 0\n")
    (root / "split.csv").write_text("x,train\n")
    ds = folder(root=str(root), mask_map="rgb")
    assert ds.class_names == ("sky", "road") and ds.ignore_index == 2
    assert ds.split("train")[0][1].tolist() == [[0, 1, 2, 1], [2, 2, 0, 0]]


def test_one_defect_of_each_kind_yields_exactly_those_errors(tmp_path: Path) -> None:
    ids = ["good1", "good2", "sizes", "values", "nomask", "corrupt", "nan", "v1", "t1"]
    split = {i: "train" for i in ids[:7]} | {"v1": "val", "t1": "train", "ghost": "train"}
    root = write_folder(tmp_path / "d", ids, split=split)
    save(root / "masks" / "sizes.png", np.zeros((10, 10), np.uint8))                      # size mismatch
    save(root / "masks" / "values.png", np.full((16, 20), 7, np.uint8))                    # value outside classes
    (root / "masks" / "nomask.png").unlink()                                               # missing mask
    save(root / "masks" / "orphan.png", np.zeros((16, 20), np.uint8))                     # missing image
    (root / "images" / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really a png")   # corrupt file
    (root / "images" / "nan.png").unlink()
    nan = np.full((16, 20), 0.5, np.float32)
    nan[3, 4] = np.nan
    Image.fromarray(nan, mode="F").save(root / "images" / "nan.tif")                      # NaN pixel
    # "ghost" in split.csv has no files (split file naming missing ids); nothing is in "test" (empty split).

    with collect_problems() as problems:
        ds = folder(root=str(root))
    report = check_dataset(ds, problems=problems)
    errors = sorted(str(p.message) for p in report.errors)
    assert len(errors) == 8, "\n".join(errors)
    expected = [
        ("nomask.png' has no mask", "missing mask"),
        ("orphan.png' has no image", "missing image"),
        ("names 1 ids with no image: ghost", "split file naming a missing id"),
        ("split 'test'", "empty split"),
        ("sizes.png' is 20x16 but its mask", "size mismatch"),
        ("values.png' has values [7] outside the declared classes (0..1)", "bad mask value"),
        ("corrupt.png': corrupt", "corrupt file"),
        ("nan.tif' has 1 NaN/Inf pixels", "NaN"),
    ]
    for fragment, kind in expected:
        assert sum(fragment in e for e in errors) == 1, f"{kind}: {fragment!r} not in {errors}"
    assert not report.warnings
    # The good items were still scanned and counted.
    assert report.class_pixels["train"][0] + report.class_pixels["train"][1] == 3 * 16 * 20  # good1, good2, t1
    # Outside check, building the same dataset raises one error listing the structural problems.
    with pytest.raises(DatasetError, match="has no image.*has no mask.*ghost"):
        folder(root=str(root))


def test_all_background_masks_are_warned_about(tmp_path: Path) -> None:
    root = write_folder(tmp_path / "d", list(SPLIT), split=SPLIT)
    save(root / "masks" / "c.png", np.zeros((16, 20), np.uint8))
    report = check_dataset(folder(root=str(root)))
    assert report.ok
    assert [p.kind for p in report.warnings] == ["all-background"] and "'c'" in report.warnings[0].message


def test_bad_root_and_missing_classes(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="does not exist"):
        folder(root=str(tmp_path / "nope"))
    with pytest.raises(DatasetError, match="needs --root"):
        folder()
    root = write_folder(tmp_path / "d", list(SPLIT), split=SPLIT)
    (root / "classes.txt").unlink()
    with pytest.raises(DatasetError, match="no classes.txt"):
        folder(root=str(root))
    assert folder(root=str(root), num_classes=2).num_classes == 2

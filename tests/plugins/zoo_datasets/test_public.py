"""Named public loaders, each on a tiny fixture written in the publisher's exact layout (nothing downloaded)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from zoo.errors import DatasetError
from zoo_datasets.public import camvid, drive, dsb2018, isbi2012, oxford_pets, voc2012

from tests.plugins.zoo_datasets.fixtures import save


def _slices(n: int, rng: np.random.Generator) -> tuple[list[np.ndarray], list[np.ndarray]]:
    images = [rng.integers(0, 256, (12, 12), dtype=np.uint8) for _ in range(n)]
    labels = [(rng.integers(0, 2, (12, 12)) * 255).astype(np.uint8) for _ in range(n)]
    return images, labels


def test_isbi2012_multipage_tiff_stacks(tmp_path: Path) -> None:
    images, labels = _slices(10, np.random.default_rng(0))
    frames = [Image.fromarray(a) for a in images]
    frames[0].save(tmp_path / "train-volume.tif", save_all=True, append_images=frames[1:])
    frames = [Image.fromarray(a) for a in labels]
    frames[0].save(tmp_path / "train-labels.tif", save_all=True, append_images=frames[1:])
    ds = isbi2012(root=str(tmp_path))
    assert (ds.in_channels, ds.num_classes, ds.class_names) == (1, 2, ("membrane", "cell_interior"))
    # Contiguous z-blocks (70/15/15 of 10 slices): train 0-5, val 6-7, test 8-9.
    assert list(ds.split("train").ids) == [str(k) for k in range(6)] and list(ds.split("test").ids) == ["8", "9"]
    image, mask = ds.split("val")[1]
    assert torch.equal(image[0], torch.from_numpy(images[7]).float() / 255)
    assert torch.equal(mask, torch.from_numpy(labels[7] // 255).long())


def test_isbi2012_per_slice_folders_sort_numerically(tmp_path: Path) -> None:
    images, labels = _slices(12, np.random.default_rng(1))
    for k in range(12):
        save(tmp_path / "train" / "image" / f"{k}.png", images[k])
        save(tmp_path / "train" / "label" / f"{k}.png", labels[k])
    ds = isbi2012(root=str(tmp_path))
    assert list(ds.split("test").ids) == ["10", "11"]
    assert torch.equal(ds.split("test")[0][1], torch.from_numpy(labels[10] // 255).long())


def _write_drive(root: Path, rng: np.random.Generator) -> None:
    for folder, numbers, suffix in (("training", ["21", "22", "38"], "training"), ("test", ["01"], "test")):
        for n in numbers:
            save(root / folder / "images" / f"{n}_{suffix}.tif", rng.integers(0, 256, (10, 9, 3), dtype=np.uint8))
            vessels = (rng.integers(0, 2, (10, 9)) * 255).astype(np.uint8)
            Image.fromarray(vessels).save(root / folder / "1st_manual" / f"{n}_manual1.gif") if (
                root / folder / "1st_manual").mkdir(parents=True, exist_ok=True) is None else None
            fov = np.zeros((10, 9), np.uint8)
            fov[2:8, 2:7] = 255
            (root / folder / "mask").mkdir(parents=True, exist_ok=True)
            Image.fromarray(fov).save(root / folder / "mask" / f"{n}_{suffix}_mask.gif")


def test_drive_publisher_layout_split_and_fov(tmp_path: Path) -> None:
    _write_drive(tmp_path, np.random.default_rng(2))
    ds = drive(root=str(tmp_path))
    assert [list(ds.split(s).ids) for s in ("train", "val", "test")] == [["21", "22"], ["38"], ["01"]]
    assert ds.ignore_index is None and set(ds.split("train")[0][1].unique().tolist()) <= {0, 1}
    manual = np.array(Image.open(tmp_path / "training" / "1st_manual" / "21_manual1.gif"))
    assert torch.equal(ds.split("train")[0][1], torch.from_numpy(manual > 0).long())
    fov = drive(root=str(tmp_path), fov=True)
    mask = fov.split("train")[0][1]
    assert fov.ignore_index == 255
    assert (mask[:2] == 255).all() and (mask[2:8, 2:7] != 255).all()


def test_drive_folder_layout_via_zoo_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "drive"
    save(root / "images" / "01.png", np.zeros((6, 6, 3), np.uint8))
    save(root / "masks" / "01.png", np.ones((6, 6), np.uint8))
    fov = np.zeros((6, 6), np.uint8)
    fov[1:5, 1:5] = 1
    save(root / "fov" / "01.png", fov)
    (root / "classes.txt").write_text("background\nvessel\n")
    (root / "split.csv").write_text("id,split\n01,test\n")
    monkeypatch.setenv("ZOO_DATA", str(tmp_path))
    mask = drive(fov=True).split("test")[0][1]
    assert int((mask == 255).sum()) == 36 - 16 and int((mask == 1).sum()) == 16


def test_camvid_segnet_layout_void_is_ignored(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    for split, names in (("train", ["a", "b"]), ("val", ["c"]), ("test", ["d"])):
        for name in names:
            save(tmp_path / split / f"{name}.png", rng.integers(0, 256, (6, 8, 3), dtype=np.uint8))
            save(tmp_path / f"{split}annot" / f"{name}.png", rng.integers(0, 12, (6, 8), dtype=np.uint8))
    ds = camvid(root=str(tmp_path))
    assert (ds.num_classes, ds.ignore_index, len(ds.class_names)) == (11, 11, 11)
    assert list(ds.split("train").ids) == ["a", "b"]
    assert ds.split("val")[0][1].max() <= 11


def test_dsb2018_instance_masks_are_merged(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    ids = [f"{k:064x}" for k in range(8)]
    for i in ids:
        save(tmp_path / "stage1_train" / i / "images" / f"{i}.png", rng.integers(0, 256, (8, 8, 4), dtype=np.uint8))
        for j in range(2):
            inst = np.zeros((8, 8), np.uint8)
            inst[j * 4:(j * 4) + 3, 1:4] = 255
            save(tmp_path / "stage1_train" / i / "masks" / f"m{j}.png", inst)
    ds = dsb2018(root=str(tmp_path))
    assert ds.in_channels == 3 and ds.split_source.startswith("seed:0")
    image, mask = ds.split("train")[0]
    assert image.shape == (3, 8, 8) and int(mask.sum()) == 2 * 9
    assert sum(len(ds.split(s)) for s in ("train", "val", "test")) == 8
    bad = tmp_path / "stage1_train" / ids[0] / "masks"
    for f in bad.iterdir():
        f.unlink()
    with pytest.raises(DatasetError, match="holds no instance masks"):
        dsb2018(root=str(tmp_path))


def test_voc2012_through_torchvision(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    voc = tmp_path / "VOCdevkit" / "VOC2012"
    names = [f"2007_{k:06d}" for k in range(12)]
    for n in names:
        save(voc / "JPEGImages" / f"{n}.jpg", rng.integers(0, 256, (7, 9, 3), dtype=np.uint8))
        mask = Image.fromarray(np.where(rng.random((7, 9)) < 0.2, 255, rng.integers(0, 21, (7, 9))).astype(np.uint8),
                               mode="P")
        mask.putpalette([v for k in range(256) for v in (k, k, k)])
        (voc / "SegmentationClass").mkdir(parents=True, exist_ok=True)
        mask.save(voc / "SegmentationClass" / f"{n}.png")
    (voc / "ImageSets" / "Segmentation").mkdir(parents=True)
    (voc / "ImageSets" / "Segmentation" / "train.txt").write_text("\n".join(names[:10]) + "\n")
    (voc / "ImageSets" / "Segmentation" / "val.txt").write_text("\n".join(names[10:]) + "\n")
    ds = voc2012(root=str(tmp_path))
    assert (ds.num_classes, ds.ignore_index) == (21, 255)
    assert (len(ds.split("train")), len(ds.split("val")), len(ds.split("test"))) == (9, 1, 2)
    mask = ds.split("test")[0][1]
    raw = np.array(Image.open(voc / "SegmentationClass" / f"{names[10]}.png"))
    assert torch.equal(mask, torch.from_numpy(raw).long())
    with pytest.raises(DatasetError, match="nothing is downloaded"):
        voc2012(root=str(tmp_path / "VOCdevkit"))


def test_oxford_pets_trimaps(tmp_path: Path) -> None:
    rng = np.random.default_rng(6)
    base = tmp_path / "oxford-iiit-pet"
    names = [f"Abyssinian_{k}" for k in range(1, 12)]
    for n in names:
        save(base / "images" / f"{n}.jpg", rng.integers(0, 256, (6, 6, 3), dtype=np.uint8))
        save(base / "annotations" / "trimaps" / f"{n}.png", rng.integers(1, 4, (6, 6), dtype=np.uint8))
    (base / "annotations" / "trainval.txt").write_text("".join(f"{n} 1 1 1\n" for n in names[:10]))
    (base / "annotations" / "test.txt").write_text("".join(f"{n} 1 1 1\n" for n in names[10:]))
    trimap = torch.from_numpy(np.array(Image.open(base / "annotations" / "trimaps" / f"{names[10]}.png")))
    ds = oxford_pets(root=str(tmp_path))
    mask = ds.split("test")[0][1]
    assert ds.class_names == ("background", "pet") and ds.ignore_index == 255
    assert torch.equal(mask == 1, trimap == 1) and torch.equal(mask == 0, trimap == 2)
    assert torch.equal(mask == 255, trimap == 3)
    as_pet = oxford_pets(root=str(tmp_path), border="pet").split("test")[0][1]
    assert torch.equal(as_pet == 1, (trimap == 1) | (trimap == 3))

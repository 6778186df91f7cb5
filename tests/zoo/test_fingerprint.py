"""The dataset fingerprint: its numbers against direct computations on tiny synthetic datasets, and its cache."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from scipy import ndimage

from tests.conftest import require_shared_data
from zoo import fingerprint as fp_module
from zoo.data import BaseDataset, CachedSplit
from zoo.fingerprint import Fingerprint, default_cache_dir, fingerprint_dataset, structure_stats

VOID = 255


def _masks(shape: tuple[int, int], rng: np.random.Generator, *, ring: bool) -> np.ndarray:
    """Class 1: a horizontal band 5 px wide; class 2: a disk of radius 6; void: a border ring or a speck."""
    h, w = shape
    mask = np.zeros(shape, np.int64)
    top = int(rng.integers(4, h - 12))
    mask[top:top + 5, 3:w - 3] = 1
    yy, xx = np.mgrid[0:h, 0:w]
    cy, cx = h - 10, int(rng.integers(9, w - 9))
    mask[(yy - cy) ** 2 + (xx - cx) ** 2 <= 36] = 2
    if ring:
        mask[:2, :], mask[-2:, :], mask[:, :2], mask[:, -2:] = VOID, VOID, VOID, VOID
    else:
        mask[h // 2, w // 2] = VOID
    return mask


def _dataset(shapes: list[tuple[int, int]], *, ring: bool = False, raw: bool = True, seed: int = 0
             ) -> tuple[BaseDataset, list[tuple[np.ndarray, np.ndarray]]]:
    rng = np.random.default_rng(seed)
    items = [(rng.integers(0, 256, (2, *s), dtype=np.uint8), _masks(s, rng, ring=ring)) for s in shapes]

    def load(i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.from_numpy(items[i][0]), torch.from_numpy(items[i][1].astype(np.uint8))

    split = CachedSplit([f"id{i}" for i in range(len(items))], load)
    if not raw:  # a foreign split: only __getitem__, float images in [0, 1]
        split = _FloatOnly(split)  # type: ignore[assignment]
    ds = BaseDataset(name="toy", in_channels=2, num_classes=3, class_names=("bg", "band", "disk"),
                     ignore_index=VOID, splits={"train": split}, split_source="test",
                     params={"seed": seed, "ring": ring, "shapes": shapes})
    return ds, items


class _FloatOnly:
    def __init__(self, split: CachedSplit) -> None:
        self.ids, self._split = split.ids, split

    def __len__(self) -> int:
        return len(self._split)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self._split[i]


def test_numbers_match_a_direct_computation(tmp_path):
    shapes = [(40, 48), (32, 32), (56, 40)]
    ds, items = _dataset(shapes)
    fp = fingerprint_dataset(ds, cache_dir=tmp_path)
    assert fp.items == 3 and fp.channels == 2 and fp.num_classes == 3
    assert fp.heights == (32, 40, 56) and fp.widths == (32, 40, 48)
    masks = [m for _, m in items]
    labelled = np.concatenate([img[:, m != VOID] for img, m in items], axis=1) / 255.0
    np.testing.assert_allclose(fp.intensity_mean, labelled.mean(axis=1), atol=1e-12)
    np.testing.assert_allclose(fp.intensity_std, labelled.std(axis=1), atol=1e-12)
    direct = np.percentile(labelled, fp.percentiles, axis=1, method="inverted_cdf")
    np.testing.assert_allclose(fp.intensity_percentiles, direct, atol=1e-12)
    counts = np.array([sum(int((m == c).sum()) for m in masks) for c in range(3)])
    np.testing.assert_allclose([c.pixel_share for c in fp.classes], counts / counts.sum())
    total = sum(m.size for m in masks)
    assert fp.ignore_share == pytest.approx(sum(int((m == VOID).sum()) for m in masks) / total)
    assert not fp.roi and fp.roi_share == 1.0
    areas = [float(a) for m in masks for a in np.bincount(ndimage.label(m == 2)[0].ravel())[1:]]
    disk = fp.classes[2]
    assert disk.objects == 3 and disk.median_area == np.median(areas) == disk.typical_area
    assert disk.median_extent == 13 and disk.image_share == 1.0
    assert fp.classes[1].median_thickness == 5.0  # a straight band: exactly its width
    assert 11 <= disk.median_thickness <= 13  # a digital disk of radius 6: about its diameter
    top = sum(int((m[:m.shape[0] // 2] == 2).sum()) for m in masks)
    bottom = sum(int((m[m.shape[0] - m.shape[0] // 2:] == 2).sum()) for m in masks)
    assert disk.top_share == pytest.approx(top / (top + bottom)) and disk.top_share < 0.1


def test_region_of_interest_is_found_from_void_on_the_border(tmp_path):
    fp = fingerprint_dataset(_dataset([(40, 40)] * 3, ring=True)[0], cache_dir=tmp_path)
    assert fp.roi
    assert fp.roi_share == pytest.approx(1 - (40 * 40 - 36 * 36) / (40 * 40))


def test_float_items_without_raw_access_are_quantised(tmp_path):
    ds, _ = _dataset([(32, 32), (40, 32)], raw=False)
    reference = fingerprint_dataset(_dataset([(32, 32), (40, 32)])[0], cache=False)
    got = fingerprint_dataset(ds, cache=False)
    assert got.intensity_mean == pytest.approx(reference.intensity_mean)
    assert got.classes == reference.classes


def test_structure_stats_widths_of_known_shapes():
    band = np.zeros((30, 40), np.int64)
    band[10:17, 2:38] = 1
    widths = structure_stats(band, [1])[1]["widths"]
    assert np.median(widths) == 7.0
    single = structure_stats(np.ones((8, 8), np.int64), [1, 2])
    assert single[1]["widths"].size == 0 and single[1]["areas"].tolist() == [64.0]
    assert single[2]["areas"].size == 0


def test_cache_round_trip_key_and_refresh(tmp_path, monkeypatch):
    ds, _ = _dataset([(32, 32), (40, 40), (48, 32)])
    first = fingerprint_dataset(ds, cache_dir=tmp_path)
    files = list(tmp_path.glob("*.json"))
    assert [f.stem for f in files] == [first.identity]
    assert Fingerprint.from_dict(json.loads(files[0].read_text())) == first == Fingerprint.from_dict(first.to_dict())

    def boom(*args, **kwargs):
        raise AssertionError("recomputed although cached")

    monkeypatch.setattr(fp_module, "_compute", boom)
    assert fingerprint_dataset(ds, cache_dir=tmp_path) == first
    with pytest.raises(AssertionError, match="recomputed"):
        fingerprint_dataset(ds, cache_dir=tmp_path, refresh=True)
    with pytest.raises(AssertionError, match="recomputed"):
        fingerprint_dataset(ds, cache_dir=tmp_path, max_items=2)  # another key
    monkeypatch.undo()
    two = fingerprint_dataset(ds, cache_dir=tmp_path, max_items=2)
    assert two.items == 2 and two.identity != first.identity and two.heights == (32, 40, 48)  # first and last


def test_cache_off_writes_nothing_and_default_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "segzoo" / "fingerprints"
    fingerprint_dataset(_dataset([(32, 32)])[0], cache=False)
    assert not (tmp_path / "xdg").exists()
    fingerprint_dataset(_dataset([(32, 32)])[0])
    assert len(list(default_cache_dir().glob("*.json"))) == 1
    with pytest.raises(ValueError, match="max_items"):
        fingerprint_dataset(_dataset([(32, 32)])[0], max_items=0)


def test_drive_fingerprint_on_the_shared_data():
    from zoo.registry import build_dataset

    root = require_shared_data("drive")
    fp = fingerprint_dataset(build_dataset("drive", root=str(root), fov=True), max_items=3, cache=False)
    vessel = fp.classes[1]
    assert fp.roi and 0.6 < fp.roi_share < 0.75
    assert fp.heights[1] == 584 and fp.widths[1] == 565
    assert 0.08 < vessel.pixel_share < 0.2 and vessel.median_thickness <= 6

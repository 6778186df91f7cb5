"""The real datasets in ../shared/data (skipped with a reason where that folder is absent)."""

from __future__ import annotations

import pytest
import torch

from zoo import api
from zoo.cli import main
from zoo_datasets import plugin

from tests.conftest import SHARED_DATA, require_shared_data

EXPECTED = {  # name: (in_channels, num_classes, ignore_index, train/val/test sizes)
    "isbi2012_em": (1, 2, None, (21, 5, 4)),
    "camvid": (3, 11, 11, (92, 26, 59)),
    "drive": (3, 2, None, (17, 3, 20)),
    "dsb2018_nuclei": (3, 2, None, (232, 50, 50)),
}


@pytest.mark.parametrize("name", list(EXPECTED))
def test_shared_set_loads_by_name_from_zoo_data(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    require_shared_data(name)
    monkeypatch.setenv("ZOO_DATA", str(SHARED_DATA))
    ds = api.build_dataset(name, registries=api.load_registry(plugins=[plugin], autoload=False))
    channels, classes, ignore, sizes = EXPECTED[name]
    assert (ds.in_channels, ds.num_classes, ds.ignore_index) == (channels, classes, ignore)
    assert tuple(len(ds.split(s)) for s in ("train", "val", "test")) == sizes
    assert ds.split_source.startswith("file:")
    for split in ("train", "test"):
        image, mask = ds.split(split)[0]
        assert image.shape[0] == channels and image.shape[1:] == mask.shape and mask.dtype == torch.int64
        labels = mask[mask != ignore] if ignore is not None else mask
        assert 0 <= labels.min() and labels.max() < classes


def test_drive_fov_from_shared_copy(monkeypatch: pytest.MonkeyPatch) -> None:
    require_shared_data("drive")
    monkeypatch.setenv("ZOO_DATA", str(SHARED_DATA))
    ds = api.build_dataset("drive", registries=api.load_registry(plugins=[plugin], autoload=False), fov=True)
    mask = ds.split("val")[0][1]
    assert ds.ignore_index == 255 and 0.2 < (mask == 255).float().mean() < 0.45


def test_check_isbi2012_em_is_clean(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    require_shared_data("isbi2012_em")
    monkeypatch.setenv("ZOO_DATA", str(SHARED_DATA))  # --data-dir sets it; monkeypatch restores it afterwards
    assert main(["--data-dir", str(SHARED_DATA), "datasets", "check", "isbi2012_em"]) == 0
    out = capsys.readouterr().out
    assert "result: clean" in out and "membrane" in out and "21.96%" in out

"""Registration, the ZOO_DATA data dir, and `zoo datasets` / `check` / `show` through the CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from zoo import api
from zoo.cli import main
from zoo.interfaces import SegmentationDataset
from zoo_datasets import plugin

from tests.plugins.zoo_datasets.fixtures import save, write_folder


def _registry():
    return api.load_registry(plugins=[plugin], autoload=False)


def test_builtins_are_registered_with_metadata(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ZOO_DATA", raising=False)
    reg = _registry()
    assert reg.datasets.names() == ["camvid", "drive", "dsb2018", "folder", "isbi2012", "oxford-pets", "shapes",
                                    "voc2012"]
    ds = api.build_dataset("shapes", registries=reg, train_items=2, val_items=1, test_items=1)
    assert isinstance(ds, SegmentationDataset)


def test_zoo_data_registers_folder_datasets_by_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_folder(tmp_path / "my_cells", ["a", "b", "c"], classes=("bg", "cell", "void"), channels=1,
                 split={"a": "train", "b": "val", "c": "test"})
    write_folder(tmp_path / "drive", ["a"], split={"a": "train"})     # owned by the named loader: not duplicated
    write_folder(tmp_path / "Bad Name", ["a"], split={"a": "train"})  # not a valid name: skipped
    (tmp_path / "notes").mkdir()                                      # not a dataset
    monkeypatch.setenv("ZOO_DATA", str(tmp_path))
    reg = _registry()
    assert "my_cells" in reg.datasets and "Bad Name" not in reg.datasets and "notes" not in reg.datasets
    spec = reg.datasets.get("my_cells")
    assert (spec.in_channels, spec.num_classes) == (1, 2)
    ds = api.build_dataset("my_cells", registries=reg)
    assert (ds.num_classes, ds.ignore_index, list(ds.split("val").ids)) == (2, 2, ["b"])
    assert api.build_dataset("drive", registries=reg).split("train").ids == ["a"]


def test_cli_list_check_show(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
                            ) -> None:
    monkeypatch.setenv("ZOO_DATA", str(tmp_path))  # --data-dir sets it; monkeypatch restores it afterwards
    root = write_folder(tmp_path / "cells", ["a", "b", "c"], split={"a": "train", "b": "val", "c": "test"})
    assert main(["--data-dir", str(tmp_path), "datasets", "cell*"]) == 0
    out = capsys.readouterr().out
    assert "cells" in out and "shapes" not in out
    assert main(["datasets", "check", "cells", "--data-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    masks = np.stack([np.array(__import__("PIL.Image").Image.open(root / "masks" / f"{i}.png")) for i in "abc"])
    assert f"{100 * (masks == 1).mean():.2f}%" in out and "result: clean" in out
    save(root / "masks" / "b.png", np.full((16, 20), 9, np.uint8))
    (root / "images" / "c.png").write_bytes(b"broken")
    assert main(["datasets", "check", "folder", "--root", str(root)]) == 1
    out = capsys.readouterr().out
    assert "values [9]" in out and "c.png': corrupt" in out and "result: 2 error(s)" in out
    png = tmp_path / "grid.png"
    assert main(["datasets", "show", "shapes", "--out", str(png), "--train-items", "4", "--count", "4"]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["datasets", "check"]) == 2
    assert main(["datasets", "check", "folder", "--bogus", "1"]) == 2
    assert "unknown option 'bogus'" in capsys.readouterr().err

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


def test_check_names_a_decompression_bomb_without_decoding_it(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.zoo.bad_files import write_bomb_png

    root = write_folder(tmp_path / "cells", ["a", "b", "c"], split={"a": "train", "b": "val", "c": "test"})
    write_bomb_png(root / "images" / "b.png")  # 20000 x 20000 claimed in 70 bytes; the first image stays readable
    write_bomb_png(root / "masks" / "c.png", 12000, 12000)
    assert main(["datasets", "check", "folder", "--root", str(root)]) == 1
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    bad = [line.strip() for line in out.splitlines() if line.strip().startswith("error:")]
    assert len(bad) == 2 and "result: 2 error(s)" in out
    assert f"image {str(root / 'images' / 'b.png')!r} is 20000x20000 (400.0 M pixels), over the limit" in bad[0]
    assert f"mask {str(root / 'masks' / 'c.png')!r} is 12000x12000" in bad[1]
    assert "ZOO_MAX_IMAGE_PIXELS=144000000" in bad[1]

    from zoo.data import check_dataset

    report = check_dataset(api.build_dataset("folder", root=str(root)))
    assert [p.kind for p in report.errors] == ["oversized", "oversized"]  # a named defect

    monkeypatch.setenv("ZOO_MAX_IMAGE_PIXELS", "1000")  # configurable: now the 20x16 images pass, a larger not
    save(root / "images" / "a.png", np.zeros((40, 30, 3), np.uint8))
    report = check_dataset(api.build_dataset("folder", root=str(root)), splits=("train",))
    assert [p.kind for p in report.errors] == ["oversized"] and "1200 pixels" not in report.errors[0].message
    assert "30x40" in report.errors[0].message

"""``zoo train``, ``zoo eval`` and ``zoo predict`` through ``main([...])`` on fake plugins and tiny data."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
from PIL import Image

from zoo import api
from zoo.cli import main

from tests.conftest import require_shared_data
from tests.zoo.engine_fakes import registries  # noqa: F401  (fixture)

TRAIN = ["train", "--model", "conv-net", "--dataset", "squares", "--epochs", "2", "--batch-size", "4",
         "--image-size", "32", "--device", "cpu", "--quiet", "--deterministic"]


@pytest.fixture
def fakes(registries):
    api.reset_default_registry(registries)
    return registries


def test_train_eval_predict_round_trip(tmp_path, fakes, capsys):
    run_dir = tmp_path / "run"
    assert main(TRAIN + ["--out", str(run_dir), "--width", "3", "--items", "8"]) == 0
    out = capsys.readouterr().out
    assert "ok after 2 epochs" in out and "dice" in out
    config = json.loads((run_dir / "config.json").read_text())
    assert config["model_options"] == {"width": 3} and config["dataset_options"] == {"items": 8}
    assert len((run_dir / "log.jsonl").read_text().splitlines()) == 2

    assert main(["eval", "--checkpoint", str(run_dir), "--out", str(tmp_path / "ev"), "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "per-image mean" in out and "dice" in out
    rows = list(csv.DictReader((tmp_path / "ev" / "test_per_image.csv").open()))
    assert {r["image_id"] for r in rows} == {f"img3-{i:02d}" for i in range(3)} and rows[0]["metric"] == "dice"
    summary = json.loads((tmp_path / "ev" / "test_summary.json").read_text())
    result = json.loads((run_dir / "result.json").read_text())
    assert summary["pooled"]["dice"] == pytest.approx(result["test_pooled"]["dice"])

    images = []
    for name, shape in (("gray", (45, 61)), ("rgb", (40, 40, 3))):
        array = np.zeros(shape, dtype=np.uint8)
        array[10:30, 10:30] = 230
        Image.fromarray(array).save(tmp_path / f"{name}.png")
        images.append(str(tmp_path / f"{name}.png"))
    images[1] = str(tmp_path / "rgb.png")
    for mode in ([], ["--tiled"], ["--native"]):
        pred_dir = tmp_path / ("pred" + "".join(mode))
        assert main(["predict", *images, "--checkpoint", str(run_dir / "best.safetensors"), "--out",
                     str(pred_dir), "--device", "cpu", *mode]) == 0
        mask = np.array(Image.open(pred_dir / "gray_mask.png"))
        assert mask.shape == (45, 61) and set(np.unique(mask)) <= {0, 1}
        overlay = Image.open(pred_dir / "rgb_overlay.png")
        assert overlay.mode == "RGB" and overlay.size == (40, 40)


def test_config_file_is_overridden_by_the_command_line(tmp_path, fakes):
    cfg = tmp_path / "recipe.toml"
    cfg.write_text('[train]\nmodel = "conv-net"\ndataset = "squares"\nepochs = 5\nlr = 0.01\nimage_size = 32\n'
                   'device = "cpu"\nbatch_size = 4\n[model]\nwidth = 2\n[dataset]\nitems = 8\n')
    assert main(["train", "--config", str(cfg), "--epochs", "1", "--quiet", "--out", str(tmp_path / "r")]) == 0
    config = json.loads((tmp_path / "r" / "config.json").read_text())
    assert (config["epochs"], config["lr"], config["model_options"], config["dataset_options"]) == (
        1, 0.01, {"width": 2}, {"items": 8})


def test_unknown_option_lists_model_and_dataset_options(tmp_path, fakes, capsys):
    assert main(TRAIN + ["--out", str(tmp_path), "--depth", "3"]) == 2
    err = capsys.readouterr().err
    assert "--depth" in err and "width=4" in err and "items=8" in err


def test_resume_through_the_cli_and_unsafe_state_refusal(tmp_path, fakes, capsys):
    run_dir = tmp_path / "run"
    assert main(TRAIN + ["--out", str(run_dir), "--epochs", "1"]) == 0
    assert main(TRAIN + ["--out", str(run_dir), "--epochs", "2", "--resume"]) == 0
    log = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log] == [1, 2]
    state = torch.load(run_dir / "last.pt", weights_only=True)
    state["evil"] = torch.nn.Identity()  # any non-allowlisted global
    torch.save(state, run_dir / "last.pt")
    capsys.readouterr()
    assert main(TRAIN + ["--out", str(run_dir), "--epochs", "3", "--resume"]) == 2
    assert "torch.nn.modules.linear.Identity" in capsys.readouterr().err


def test_missing_model_is_a_usage_error(capsys, fakes):
    assert main(["train", "--dataset", "squares"]) == 2
    assert "--model" in capsys.readouterr().err


@pytest.mark.slow
def test_real_unet_trains_on_isbi_through_the_cli(tmp_path, monkeypatch, capsys):
    """End to end with the built-in plugins on the real ISBI 2012 data (two short epochs, small images)."""
    data = require_shared_data("isbi2012_em")
    monkeypatch.setenv("ZOO_DATA", str(data.parent))
    args = ["train", "--model", "unet", "--dataset", "isbi2012_em", "--width", "4", "--depth", "3",
            "--image-size", "64", "--batch-size", "4", "--epochs", "2", "--device", "cpu", "--quiet",
            "--metrics", "dice,iou", "--out", str(tmp_path / "run")]
    assert main(args) == 0, capsys.readouterr().err
    assert main(["eval", "--checkpoint", str(tmp_path / "run"), "--metrics", "dice", "--out",
                 str(tmp_path / "ev"), "--device", "cpu"]) == 0
    summary = json.loads((tmp_path / "ev" / "test_summary.json").read_text())
    assert summary["n_images"] == 4 and 0 <= summary["pooled"]["dice"] <= 1


def test_predict_writes_every_image_it_can_and_names_the_bad_ones(tmp_path, fakes, capsys):
    from tests.zoo.bad_files import write_bomb_png, write_truncated_png

    run_dir = tmp_path / "run"
    assert main(TRAIN + ["--out", str(run_dir), "--epochs", "1", "--items", "8"]) == 0
    images = [tmp_path / "a.png", write_truncated_png(tmp_path / "broken.png"), tmp_path / "c.png",
              write_bomb_png(tmp_path / "bomb.png"), tmp_path / "sub" / "a.png"]
    for path in (images[0], images[2], images[4]):
        path.parent.mkdir(exist_ok=True)
        Image.fromarray(np.full((20, 24), 200, dtype=np.uint8)).save(path)
    capsys.readouterr()
    out_dir = tmp_path / "pred"
    assert main(["predict", *map(str, images), "--checkpoint", str(run_dir), "--out", str(out_dir),
                 "--device", "cpu"]) == 1
    out, err = capsys.readouterr()
    assert sorted(p.name for p in out_dir.iterdir()) == ["a_mask.png", "a_overlay.png", "c_mask.png",
                                                         "c_overlay.png"]
    lines = [line for line in err.splitlines() if not line.startswith("zoo: INFO: ")]  # (the written masks)
    assert len(lines) == 3 and all(line.startswith("zoo: error: ") for line in lines), lines
    assert f"{images[1]}: cannot read image" in lines[0] and "corrupt" in lines[0]
    assert f"{images[3]}: image" in lines[1] and "20000x20000" in lines[1] and "ZOO_MAX_IMAGE_PIXELS=" in lines[1]
    assert f"{images[4]}: its outputs (a_mask.png) would overwrite those of" in lines[2]
    assert out.strip() == f"wrote 2 masks and overlays to {out_dir}; 3 of 5 images failed"


def test_predict_accepts_compile_and_precision_flags():
    from zoo.cli import build_parser

    args = build_parser().parse_args(["predict", "a.png", "--checkpoint", "c", "--out", "o", "--compile",
                                      "--precision", "fp32"])
    assert args.compile is True and args.precision == "fp32"


@pytest.mark.parametrize("flags, message", [
    (["--lr", "-1"], "zoo: error: lr=-1.0 must be > 0\n"),
    (["--lr", "nan"], "zoo: error: lr=nan must be a finite number\n"),
    (["--weight-decay", "-0.1"], "zoo: error: weight_decay=-0.1 must be >= 0\n"),
    (["--grad-clip", "0"], "zoo: error: grad_clip=0.0 must be > 0\n"),
    (["--num-workers", "-2"], "zoo: error: num_workers=-2 must be >= 0\n"),
])
def test_bad_numbers_are_one_line_before_anything_is_written(capsys, tmp_path, flags, message):
    for command in (["train", "--model", "unet", "--dataset", "shapes"], ["bench", "--models", "unet"]):
        code, _, err = _run(capsys, *command, *flags, "--out", str(tmp_path / "out"))
        assert (code, err) == (2, message)
        assert not (tmp_path / "out").exists()


def test_bad_output_folders_are_one_line(capsys, tmp_path):
    (tmp_path / "file").write_text("x")
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "thesis.tex").write_text("x")
    for command in (["train", "--model", "unet", "--dataset", "shapes"], ["bench", "--models", "unet"]):
        code, _, err = _run(capsys, *command, "--out", str(tmp_path / "file"))
        assert (code, err) == (2, f"zoo: error: --out {str(tmp_path / 'file')!r} is a file, not a folder; give a "
                                  f"folder path\n")
        code, _, err = _run(capsys, *command, "--out", str(tmp_path / "file" / "run"))
        assert code == 2 and err == (f"zoo: error: --out {str(tmp_path / 'file' / 'run')!r} cannot be created: "
                                     f"{str(tmp_path / 'file')!r} is a file, not a folder\n")
        code, _, err = _run(capsys, *command, "--out", str(tmp_path / "foreign"))
        assert code == 2 and "already holds other files (thesis.tex)" in err and len(err.splitlines()) == 1


def _run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err
